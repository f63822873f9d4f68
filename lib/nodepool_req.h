/* nodepool_req: a Karpenter NodePool's spec as the planner reads it (requirements with minValues,
 * limits, disruption) parsed from JSON, and which catalog instance and capacity types it allows. */
#ifndef TL_NODEPOOL_REQ_H
#define TL_NODEPOOL_REQ_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "error.h"

/* Well-known labels the matcher evaluates against the catalog (Karpenter's AWS labels). */
#define TL_LABEL_INSTANCE_TYPE       "node.kubernetes.io/instance-type"
#define TL_LABEL_INSTANCE_CATEGORY   "karpenter.k8s.aws/instance-category"
#define TL_LABEL_INSTANCE_FAMILY     "karpenter.k8s.aws/instance-family"
#define TL_LABEL_INSTANCE_GENERATION "karpenter.k8s.aws/instance-generation"
#define TL_LABEL_INSTANCE_SIZE       "karpenter.k8s.aws/instance-size"
#define TL_LABEL_INSTANCE_CPU        "karpenter.k8s.aws/instance-cpu"
#define TL_LABEL_INSTANCE_MEMORY     "karpenter.k8s.aws/instance-memory"
#define TL_LABEL_INSTANCE_GPU_COUNT  "karpenter.k8s.aws/instance-gpu-count"
#define TL_LABEL_ARCH                "kubernetes.io/arch"
#define TL_LABEL_OS                  "kubernetes.io/os"
#define TL_LABEL_CAPACITY_TYPE       "karpenter.sh/capacity-type"

/* Karpenter caps minValues at 50 (NodePool CRD). */
#define TL_MIN_VALUES_MAX 50

enum tl_req_op {
    TL_REQ_IN,
    TL_REQ_NOT_IN,
    TL_REQ_EXISTS,
    TL_REQ_DOES_NOT_EXIST,
    TL_REQ_GT,
    TL_REQ_LT,
    TL_REQ_GTE,
    TL_REQ_LTE,
};

/* Capacity types as bits of a mask; "reserved" (capacity reservations) is parsed, never planned. */
enum tl_capacity_type { TL_CAPACITY_ON_DEMAND = 1, TL_CAPACITY_SPOT = 2 };

struct tl_nodepool_req {
    char *key;
    enum tl_req_op op;
    char **values; /* as written */
    size_t nvalues;
    int64_t number;     /* the one value of Gt, Lt, Gte and Lte */
    int32_t min_values; /* 0 when unset */
};

/* Requirements are ANDed, as Karpenter does; all memory is owned. */
struct tl_nodepool_reqs {
    struct tl_nodepool_req *items;
    size_t count;
};

enum tl_consolidation_policy {
    TL_CONSOLIDATE_WHEN_EMPTY_OR_UNDERUTILIZED, /* Karpenter's default */
    TL_CONSOLIDATE_WHEN_EMPTY,
    TL_CONSOLIDATE_BALANCED,
};

struct tl_nodepool_spec {
    char *name;
    struct tl_nodepool_reqs reqs;
    int64_t limit_cpu_milli;    /* spec.limits.cpu; < 0 when unset */
    int64_t limit_memory_bytes; /* spec.limits.memory; < 0 when unset */
    int64_t limit_nodes;        /* spec.limits.nodes; < 0 when unset */
    enum tl_consolidation_policy consolidation;
    bool consolidate_never; /* consolidateAfter: Never turns consolidation off */
    int64_t weight;
};

/*
 * Parses a karpenter.sh/v1 NodePool object (borrowed; nothing in *out points into it). Taints,
 * labels, expireAfter and budgets are not read. On error *out is untouched and errbuf names the
 * field, e.g. `spec.template.spec.requirements[1].minValues: must be between 1 and 50`.
 * Free with tl_nodepool_spec_free.
 */
enum tl_err tl_nodepool_spec_parse(const cJSON *nodepool, struct tl_nodepool_spec *out,
                                   char *errbuf, size_t errlen);
/* Frees what spec owns (not spec itself) and zeroes it; NULL is a no-op. */
void tl_nodepool_spec_free(struct tl_nodepool_spec *spec);
/* Deep copy into *out; free with tl_nodepool_spec_free. */
enum tl_err tl_nodepool_spec_copy(const struct tl_nodepool_spec *src, struct tl_nodepool_spec *out);

/*
 * Parses a requirements array (borrowed). `field` prefixes messages ("spec.template.spec.
 * requirements"). NULL gives no requirements. Enforces the NodePool CRD's rules: In has values,
 * Exists and DoesNotExist have none, Gt/Lt/Gte/Lte one non-negative integer, minValues 1..50 and
 * no more than the values of an In. Free *out with tl_nodepool_reqs_free.
 */
enum tl_err tl_nodepool_reqs_parse(const cJSON *requirements, const char *field,
                                   struct tl_nodepool_reqs *out, char *errbuf, size_t errlen);
enum tl_err tl_nodepool_reqs_copy(const struct tl_nodepool_reqs *src, struct tl_nodepool_reqs *out);
/* Frees what reqs owns and zeroes it; NULL is a no-op. */
void tl_nodepool_reqs_free(struct tl_nodepool_reqs *reqs);

/* True for the keys above: a requirement on any other key (a zone, a custom label, the
 * hypervisor) does not narrow the catalog here. */
bool tl_nodepool_req_key_known(const char *key);

/*
 * Writes the value Karpenter gives label key on nodes of type into buf (caller's) and returns
 * true; false when the type has no such label (instance-gpu-count on a type without GPUs) or the
 * key is not one the catalog answers. Capacity type is not an instance-type label.
 */
bool tl_nodepool_req_label(const struct tl_instance_type *type, const char *key, char *buf,
                           size_t len);

/* Whether the requirements allow nodes of type, whatever the capacity type. */
bool tl_nodepool_reqs_allow(const struct tl_nodepool_reqs *reqs,
                            const struct tl_instance_type *type);

/* The capacity types (TL_CAPACITY_* bits) the requirements allow; both when unconstrained. */
unsigned tl_nodepool_reqs_capacity(const struct tl_nodepool_reqs *reqs);

/*
 * Sets allowed[i] (caller's array of tl_catalog_type_count) to whether the requirements allow
 * tl_catalog_types[i], and returns how many they allow.
 */
size_t tl_nodepool_reqs_select(const struct tl_nodepool_reqs *reqs, bool *allowed);

/*
 * Whether every minValues is met: for each key, the allowed types (or capacity types) carry at
 * least the largest minValues given for it in distinct values. When not, why (caller's buffer,
 * may be NULL) says which key falls short, e.g. `karpenter.k8s.aws/instance-family has 2
 * values, minValues is 5`.
 */
bool tl_nodepool_reqs_min_values_met(const struct tl_nodepool_reqs *reqs, char *why, size_t whylen);

/*
 * Narrows key to the values in keep plus the first few of extra (tried in order) that minValues
 * needs: replaces the values of an In requirement on key (keeping its minValues), or appends
 * `key In [...]`. Values are written sorted. On success *out is a new set the caller frees with
 * tl_nodepool_reqs_free and *nextra_used says how many of extra were added. TL_ENOTFOUND with
 * errbuf filled when even all of extra cannot meet minValues; TL_EINVAL for an unknown key.
 */
enum tl_err tl_nodepool_reqs_narrow(const struct tl_nodepool_reqs *reqs, const char *key,
                                    const char *const *keep, size_t nkeep, const char *const *extra,
                                    size_t nextra, struct tl_nodepool_reqs *out,
                                    size_t *nextra_used, char *errbuf, size_t errlen);

/* Adds spot to an existing capacity-type In requirement, or returns a plain copy when the
 * requirements already allow spot. Caller frees *out. */
enum tl_err tl_nodepool_reqs_allow_spot(const struct tl_nodepool_reqs *reqs,
                                        struct tl_nodepool_reqs *out);

/* "karpenter.k8s.aws/instance-family In [m6a, m7g]"; caller frees; NULL on ENOMEM. */
char *tl_nodepool_req_to_string(const struct tl_nodepool_req *req);

const char *tl_req_op_name(enum tl_req_op op);
const char *tl_capacity_type_name(enum tl_capacity_type type);
const char *tl_consolidation_policy_name(enum tl_consolidation_policy policy);

#endif
