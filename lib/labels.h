/* labels: label sets and Kubernetes label selectors (matchLabels/matchExpressions) matched on them.
 */
#ifndef TL_LABELS_H
#define TL_LABELS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct tl_label {
    char *key;
    char *value;
};

/* A label set sorted by key, owned: a compact copy of metadata.labels for caches. */
struct tl_labels {
    struct tl_label *items;
    size_t count;
};

/* Copies a metadata.labels object (NULL or not an object gives an empty set). */
enum tl_err tl_labels_from_json(const cJSON *labels, struct tl_labels *out);
/* Borrowed value for key, or NULL. */
const char *tl_labels_get(const struct tl_labels *labels, const char *key);
bool tl_labels_equal(const struct tl_labels *a, const struct tl_labels *b);
void tl_labels_free(struct tl_labels *labels);

enum tl_selector_op { TL_SEL_IN, TL_SEL_NOT_IN, TL_SEL_EXISTS, TL_SEL_DOES_NOT_EXIST };

struct tl_selector_requirement {
    char *key;
    enum tl_selector_op op;
    char **values; /* sorted */
    size_t nvalues;
};

/* A compiled metav1.LabelSelector: matchLabels become In requirements with one value. */
struct tl_selector {
    struct tl_selector_requirement *reqs;
    size_t count;
    bool match_nothing; /* a null selector where the API says null selects nothing */
};

/*
 * Compiles a LabelSelector object. `field` is the path used in messages ("spec.selector"). An
 * absent selector (NULL) or {} selects everything. On error errbuf names the exact field, e.g.
 * `spec.selector.matchExpressions[1].values: must be empty for operator "Exists"`.
 */
enum tl_err tl_selector_parse(const cJSON *selector, const char *field, struct tl_selector *out,
                              char *errbuf, size_t errlen);
bool tl_selector_matches(const struct tl_selector *selector, const struct tl_labels *labels);
/* True when the selector has no requirement (selects everything). */
bool tl_selector_is_empty(const struct tl_selector *selector);
/* Renders the selector in the labelSelector query syntax ("a=b,c in (x,y),!d"); caller frees. */
char *tl_selector_to_string(const struct tl_selector *selector);
void tl_selector_free(struct tl_selector *selector);

/* Validates a label key or value by the apimachinery rules (qualified name, 63 characters). */
bool tl_label_key_valid(const char *key);
bool tl_label_value_valid(const char *value);

#endif
