#include "labels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int compare_labels(const void *a, const void *b)
{
    return strcmp(((const struct tl_label *)a)->key, ((const struct tl_label *)b)->key);
}

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

enum tl_err tl_labels_from_json(const cJSON *labels, struct tl_labels *out)
{
    struct tl_labels result_set = {NULL, 0};
    if (!cJSON_IsObject(labels)) {
        *out = result_set;
        return TL_OK;
    }
    size_t n = (size_t)cJSON_GetArraySize(labels);
    if (n == 0) {
        *out = result_set;
        return TL_OK;
    }
    result_set.items = calloc(n, sizeof(*result_set.items));
    if (!result_set.items)
        return TL_ENOMEM;
    const cJSON *item;
    cJSON_ArrayForEach(item, labels)
    {
        if (!cJSON_IsString(item) || item->string == NULL)
            continue; /* label values are strings; anything else cannot be selected on */
        struct tl_label *label = &result_set.items[result_set.count];
        label->key = strdup(item->string);
        label->value = strdup(item->valuestring);
        result_set.count++;
        if (!label->key || !label->value) {
            tl_labels_free(&result_set);
            return TL_ENOMEM;
        }
    }
    qsort(result_set.items, result_set.count, sizeof(*result_set.items), compare_labels);
    *out = result_set;
    return TL_OK;
}

const char *tl_labels_get(const struct tl_labels *labels, const char *key)
{
    if (labels == NULL || labels->count == 0)
        return NULL;
    struct tl_label probe = {(char *)key, NULL};
    const struct tl_label *hit =
        bsearch(&probe, labels->items, labels->count, sizeof(*labels->items), compare_labels);
    return hit ? hit->value : NULL;
}

bool tl_labels_equal(const struct tl_labels *a, const struct tl_labels *b)
{
    if (a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++) {
        if (strcmp(a->items[i].key, b->items[i].key) != 0 ||
            strcmp(a->items[i].value, b->items[i].value) != 0)
            return false;
    }
    return true;
}

void tl_labels_free(struct tl_labels *labels)
{
    if (labels == NULL)
        return;
    for (size_t i = 0; i < labels->count; i++) {
        free(labels->items[i].key);
        free(labels->items[i].value);
    }
    free(labels->items);
    labels->items = NULL;
    labels->count = 0;
}

/* DNS-1123 subdomain (the optional prefix) and "name" part rules of IsQualifiedName. */
static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool name_part_valid(const char *s, size_t len)
{
    if (len == 0 || len > 63 || !is_alnum(s[0]) || !is_alnum(s[len - 1]))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!is_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return false;
    }
    return true;
}

static bool dns_subdomain_valid(const char *s, size_t len)
{
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
        if (!ok)
            return false;
    }
    return is_alnum(s[0]) && is_alnum(s[len - 1]);
}

bool tl_label_key_valid(const char *key)
{
    const char *slash = strchr(key, '/');
    if (slash == NULL)
        return name_part_valid(key, strlen(key));
    return dns_subdomain_valid(key, (size_t)(slash - key)) &&
           name_part_valid(slash + 1, strlen(slash + 1));
}

bool tl_label_value_valid(const char *value)
{
    size_t len = strlen(value);
    return len == 0 || name_part_valid(value, len);
}

static void selector_reset(struct tl_selector *selector)
{
    selector->reqs = NULL;
    selector->count = 0;
    selector->match_nothing = false;
}

/* Appends a requirement with room for nvalues values, filled by add_value(). */
static struct tl_selector_requirement *add_requirement(struct tl_selector *selector,
                                                       const char *key, enum tl_selector_op op,
                                                       size_t nvalues)
{
    struct tl_selector_requirement *req = &selector->reqs[selector->count++];
    memset(req, 0, sizeof(*req));
    req->op = op;
    req->key = strdup(key);
    if (!req->key)
        return NULL;
    if (nvalues > 0) {
        req->values = calloc(nvalues, sizeof(*req->values));
        if (!req->values)
            return NULL;
    }
    return req;
}

/* Values are kept sorted so matching is a binary search. */
static enum tl_err add_value(struct tl_selector_requirement *req, const char *value)
{
    req->values[req->nvalues] = strdup(value);
    if (!req->values[req->nvalues])
        return TL_ENOMEM;
    req->nvalues++;
    qsort(req->values, req->nvalues, sizeof(*req->values), compare_strings);
    return TL_OK;
}

static bool parse_op(const char *text, enum tl_selector_op *op)
{
    static const struct {
        const char *name;
        enum tl_selector_op op;
    } ops[] = {{"In", TL_SEL_IN},
               {"NotIn", TL_SEL_NOT_IN},
               {"Exists", TL_SEL_EXISTS},
               {"DoesNotExist", TL_SEL_DOES_NOT_EXIST}};
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(text, ops[i].name) == 0) {
            *op = ops[i].op;
            return true;
        }
    }
    return false;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(errbuf, errlen, __VA_ARGS__);                                                     \
        result = TL_EINVAL;                                                                        \
        goto out;                                                                                  \
    } while (0)

/* Checks one matchExpressions entry; the caller adds it once it is known to be well formed. */
static enum tl_err check_expression(const cJSON *expr, const char *field, size_t index,
                                    enum tl_selector_op *op, char *errbuf, size_t errlen)
{
    enum tl_err result = TL_OK;
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(expr, "key");
    const cJSON *operator= cJSON_GetObjectItemCaseSensitive(expr, "operator");
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(expr, "values");
    if (!cJSON_IsObject(expr))
        FAIL("%s.matchExpressions[%zu]: must be an object", field, index);
    if (!cJSON_IsString(key) || !tl_label_key_valid(key->valuestring))
        FAIL("%s.matchExpressions[%zu].key: must be a valid label key", field, index);
    if (!cJSON_IsString(operator) || !parse_op(operator->valuestring, op))
        FAIL("%s.matchExpressions[%zu].operator: unsupported value %s%s%s: supported values: "
             "\"In\", \"NotIn\", \"Exists\", \"DoesNotExist\"",
             field, index, cJSON_IsString(operator) ? "\"" : "",
             cJSON_IsString(operator) ? operator->valuestring : "(missing)",
             cJSON_IsString(operator) ? "\"" : "");
    if (values != NULL && !cJSON_IsNull(values) && !cJSON_IsArray(values))
        FAIL("%s.matchExpressions[%zu].values: must be a list of strings", field, index);
    size_t n = cJSON_IsArray(values) ? (size_t)cJSON_GetArraySize(values) : 0;
    if ((*op == TL_SEL_IN || *op == TL_SEL_NOT_IN) && n == 0)
        FAIL("%s.matchExpressions[%zu].values: must be non-empty for operator \"%s\"", field,
             index, operator->valuestring);
    if ((*op == TL_SEL_EXISTS || *op == TL_SEL_DOES_NOT_EXIST) && n > 0)
        FAIL("%s.matchExpressions[%zu].values: must be empty for operator \"%s\"", field,
             index, operator->valuestring);
    size_t i = 0;
    const cJSON *value;
    cJSON_ArrayForEach(value, values)
    {
        if (!cJSON_IsString(value) || !tl_label_value_valid(value->valuestring))
            FAIL("%s.matchExpressions[%zu].values[%zu]: must be a valid label value", field, index,
                 i);
        i++;
    }
out:
    return result;
}

enum tl_err tl_selector_parse(const cJSON *selector, const char *field, struct tl_selector *out,
                              char *errbuf, size_t errlen)
{
    enum tl_err result = TL_OK;
    struct tl_selector compiled;
    selector_reset(&compiled);
    if (selector == NULL || cJSON_IsNull(selector)) {
        *out = compiled;
        return TL_OK;
    }
    if (!cJSON_IsObject(selector)) {
        snprintf(errbuf, errlen, "%s: must be an object", field);
        return TL_EINVAL;
    }
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(selector, "matchLabels");
    const cJSON *exprs = cJSON_GetObjectItemCaseSensitive(selector, "matchExpressions");
    if (labels && !cJSON_IsNull(labels) && !cJSON_IsObject(labels))
        FAIL("%s.matchLabels: must be a map of strings", field);
    if (exprs && !cJSON_IsNull(exprs) && !cJSON_IsArray(exprs))
        FAIL("%s.matchExpressions: must be a list", field);
    size_t capacity = (cJSON_IsObject(labels) ? (size_t)cJSON_GetArraySize(labels) : 0) +
                      (cJSON_IsArray(exprs) ? (size_t)cJSON_GetArraySize(exprs) : 0);
    if (capacity == 0) {
        *out = compiled;
        return TL_OK;
    }
    compiled.reqs = calloc(capacity, sizeof(*compiled.reqs));
    if (!compiled.reqs)
        return TL_ENOMEM;

    const cJSON *item;
    cJSON_ArrayForEach(item, labels)
    {
        if (!tl_label_key_valid(item->string))
            FAIL("%s.matchLabels: invalid label key \"%s\"", field, item->string);
        if (!cJSON_IsString(item) || !tl_label_value_valid(item->valuestring))
            FAIL("%s.matchLabels.%s: must be a valid label value", field, item->string);
        /* matchLabels {k: v} is the requirement "k In (v)". */
        struct tl_selector_requirement *req =
            add_requirement(&compiled, item->string, TL_SEL_IN, 1);
        result = req ? add_value(req, item->valuestring) : TL_ENOMEM;
        if (result != TL_OK)
            goto out;
    }
    size_t index = 0;
    cJSON_ArrayForEach(item, exprs)
    {
        enum tl_selector_op op = TL_SEL_IN;
        result = check_expression(item, field, index, &op, errbuf, errlen);
        if (result != TL_OK)
            goto out;
        const cJSON *values = cJSON_GetObjectItemCaseSensitive(item, "values");
        struct tl_selector_requirement *req =
            add_requirement(&compiled, cJSON_GetObjectItemCaseSensitive(item, "key")->valuestring,
                            op, cJSON_IsArray(values) ? (size_t)cJSON_GetArraySize(values) : 0);
        if (!req) {
            result = TL_ENOMEM;
            goto out;
        }
        const cJSON *value;
        cJSON_ArrayForEach(value, values)
        {
            result = add_value(req, value->valuestring);
            if (result != TL_OK)
                goto out;
        }
        index++;
    }
out:
    if (result != TL_OK) {
        if (result == TL_ENOMEM)
            snprintf(errbuf, errlen, "%s: out of memory", field);
        tl_selector_free(&compiled);
        return result;
    }
    *out = compiled;
    return TL_OK;
}

static bool has_value(const struct tl_selector_requirement *req, const char *value)
{
    return bsearch(&value, req->values, req->nvalues, sizeof(*req->values), compare_strings) !=
           NULL;
}

bool tl_selector_matches(const struct tl_selector *selector, const struct tl_labels *labels)
{
    if (selector->match_nothing)
        return false;
    for (size_t i = 0; i < selector->count; i++) {
        const struct tl_selector_requirement *req = &selector->reqs[i];
        const char *value = tl_labels_get(labels, req->key);
        switch (req->op) {
        case TL_SEL_IN:
            if (!value || !has_value(req, value))
                return false;
            break;
        case TL_SEL_NOT_IN: /* a missing key is "not in" any set, as in apimachinery */
            if (value && has_value(req, value))
                return false;
            break;
        case TL_SEL_EXISTS:
            if (!value)
                return false;
            break;
        case TL_SEL_DOES_NOT_EXIST:
            if (value)
                return false;
            break;
        }
    }
    return true;
}

bool tl_selector_is_empty(const struct tl_selector *selector)
{
    return selector->count == 0 && !selector->match_nothing;
}

/* Appends to a growing heap string; on failure frees it and returns NULL. */
static char *append(char *buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        size_t grown = (*cap + n + 1) * 2;
        char *bigger = realloc(buf, grown);
        if (!bigger) {
            free(buf);
            return NULL;
        }
        buf = bigger;
        *cap = grown;
    }
    memcpy(buf + *len, s, n + 1);
    *len += n;
    return buf;
}

char *tl_selector_to_string(const struct tl_selector *selector)
{
    size_t len = 0;
    size_t cap = 64;
    char *buf = calloc(1, cap);
    for (size_t i = 0; buf && i < selector->count; i++) {
        const struct tl_selector_requirement *req = &selector->reqs[i];
        if (i > 0)
            buf = append(buf, &len, &cap, ",");
        if (buf && req->op == TL_SEL_DOES_NOT_EXIST)
            buf = append(buf, &len, &cap, "!");
        if (buf)
            buf = append(buf, &len, &cap, req->key);
        if (!buf || req->op == TL_SEL_EXISTS || req->op == TL_SEL_DOES_NOT_EXIST)
            continue;
        if (req->op == TL_SEL_IN && req->nvalues == 1) {
            buf = append(buf, &len, &cap, "=");
            if (buf)
                buf = append(buf, &len, &cap, req->values[0]);
            continue;
        }
        buf = append(buf, &len, &cap, req->op == TL_SEL_IN ? " in (" : " notin (");
        for (size_t v = 0; buf && v < req->nvalues; v++) {
            if (v > 0)
                buf = append(buf, &len, &cap, ",");
            if (buf)
                buf = append(buf, &len, &cap, req->values[v]);
        }
        if (buf)
            buf = append(buf, &len, &cap, ")");
    }
    return buf;
}

void tl_selector_free(struct tl_selector *selector)
{
    if (selector == NULL)
        return;
    for (size_t i = 0; i < selector->count; i++) {
        free(selector->reqs[i].key);
        for (size_t v = 0; v < selector->reqs[i].nvalues; v++)
            free(selector->reqs[i].values[v]);
        free(selector->reqs[i].values);
    }
    free(selector->reqs);
    selector_reset(selector);
}
