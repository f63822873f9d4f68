/* nodepool_plan: plans the nodes a Karpenter NodePool needs for its pods (bin-packing over the
 * catalog types it allows), prices the plan against the current nodes, and finds the cheapest
 * NodePool change that reaches it. Pure computation: no I/O, no logging. */
#ifndef TL_NODEPOOL_PLAN_H
#define TL_NODEPOOL_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allocatable.h"
#include "error.h"
#include "nodepool_req.h"

/* One pod the caller has decided belongs to the pool (its nodeSelector or affinity picks it). */
struct tl_plan_pod {
    const char *name;  /* "shop/web-7d9f" for messages; borrowed for the call */
    int64_t cpu_milli; /* current requests, all containers */
    int64_t memory_bytes;
    int64_t rec_cpu_milli; /* recommended requests; 0 keeps the current value */
    int64_t rec_memory_bytes;
    /* One entry per DaemonSet (its pod's requests), not per running pod: it is overhead on
     * every node instead of something to pack. */
    bool daemonset;
};

/* One node the pool runs now. */
struct tl_plan_node {
    const char *instance_type; /* borrowed for the call */
    enum tl_capacity_type capacity;
};

struct tl_plan_input {
    const char *region;                      /* "us-east-1" */
    const struct tl_nodepool_spec *nodepool; /* borrowed */
    const struct tl_plan_pod *pods;          /* borrowed */
    size_t npods;
    const struct tl_plan_node *nodes; /* borrowed */
    size_t nnodes;
    struct tl_allocatable_options allocatable; /* the EC2NodeClass kubelet settings */
    /* TL_ARCH_UNKNOWN: any architecture the pool allows. TL_ARCH_AMD64 or TL_ARCH_ARM64: only
     * that one, when the pods' images or node selectors need it; the planner cannot see that. */
    enum tl_arch arch;
    /* Guard: never advise a plan that costs more than this many percent above the current
     * nodes (10). */
    double max_cost_increase_percent;
};

/* Input bounds, far above any cluster, that keep every sum exact in 64 bits. */
#define TL_PLAN_PODS_MAX         10000000
#define TL_PLAN_NODES_MAX        1000000
#define TL_PLAN_CPU_MILLI_MAX    INT64_C(1000000000) /* a million cores */
#define TL_PLAN_MEMORY_BYTES_MAX (INT64_C(1) << 50)  /* a pebibyte */

/* Defaults: Karpenter's allocatable defaults and a 10% guard; the rest zero. */
void tl_nodepool_plan_input_defaults(struct tl_plan_input *input);

#define TL_PLAN_TYPE_NAME_MAX 40

/* Nodes of one instance type and capacity type. */
struct tl_plan_line {
    char type[TL_PLAN_TYPE_NAME_MAX];
    enum tl_capacity_type capacity;
    uint32_t count;
    double hourly_usd; /* per node at this capacity type; 0 when priced is false */
    bool priced;
};

struct tl_plan_fleet {
    struct tl_plan_line *lines; /* most numerous first, then by name */
    size_t nlines;
    uint32_t nodes;
    int64_t capacity_cpu_milli; /* what NodePool limits count */
    int64_t capacity_memory_bytes;
    int64_t requested_cpu_milli; /* packed pods plus DaemonSets on every node; 0 for before */
    int64_t requested_memory_bytes;
    double monthly_usd;          /* 730 h, each node at its capacity type */
    double monthly_ondemand_usd; /* the same nodes, all on-demand */
    double monthly_spot_usd;     /* the same nodes, all spot */
    uint32_t unpriced_nodes;     /* unknown type or no price in the region: costed at 0 */
    bool within_limits;          /* capacity and node count fit spec.limits */
};

enum tl_plan_change_kind {
    TL_PLAN_CHANGE_REQUIREMENTS,  /* narrow the requirements to the plan's types */
    TL_PLAN_CHANGE_CONSOLIDATION, /* let Karpenter replace underutilized nodes */
    TL_PLAN_CHANGE_LIMITS,        /* make room for the plan under spec.limits */
    TL_PLAN_CHANGE_SPOT,          /* allow spot: always optional */
};

struct tl_plan_change {
    enum tl_plan_change_kind kind;
    const char *field; /* static: "spec.template.spec.requirements", "spec.limits", ... */
    char *summary;     /* the new value in words; owned */
    /* The whole new requirements list for REQUIREMENTS and SPOT; empty otherwise. */
    struct tl_nodepool_reqs requirements;
    int64_t limit_cpu_milli; /* LIMITS: new values, < 0 for a limit left unset */
    int64_t limit_memory_bytes;
    int64_t limit_nodes;
    enum tl_consolidation_policy consolidation; /* CONSOLIDATION */
    bool drifts;            /* Karpenter will replace running nodes the change excludes */
    uint32_t drifted_nodes; /* how many */
    bool optional;          /* offered with a caveat, not part of the advice */
    double monthly_usd;     /* the plan's monthly cost with this change */
    char note[320];
};

enum tl_plan_verdict {
    TL_PLAN_NO_ADVICE,        /* reason says why */
    TL_PLAN_NO_CHANGE_NEEDED, /* the plan is cheaper and Karpenter reaches it unaided */
    TL_PLAN_CHANGE,           /* apply the changes that are not optional */
};

struct tl_plan_result {
    struct tl_plan_fleet before; /* the current nodes, priced */
    /* Plans for the current and the recommended requests; empty when a pod fits no type. */
    struct tl_plan_fleet after_current;
    struct tl_plan_fleet after_recommended;
    enum tl_capacity_type planned_capacity; /* spot when the pool allows it: Karpenter's choice */
    enum tl_plan_verdict verdict;
    struct tl_plan_change *changes;
    size_t nchanges;
    double monthly_before_usd;
    double monthly_after_usd; /* with the advised changes applied */
    double monthly_savings_usd;
    char reason[320];       /* one sentence: the advice, or why there is none */
    size_t allowed_types;   /* catalog types the requirements allow */
    size_t candidate_types; /* of those: priced, with room for pods, not dominated */
};

/*
 * Plans the pool. TL_OK whenever the input is well formed, even with no advice (the verdict and
 * reason say so); TL_EINVAL for NULL fields or negative requests, TL_ERANGE for a request above
 * the bounds, TL_ETOOBIG for more pods or nodes than the bounds, TL_ENOTFOUND for an unknown
 * region, TL_ENOMEM. Deterministic: the same input gives the same result. On success the caller
 * frees *out with tl_nodepool_plan_result_free; on error *out is untouched.
 */
enum tl_err tl_nodepool_plan_compute(const struct tl_plan_input *input, struct tl_plan_result *out);

/* Frees what result owns and zeroes it; NULL is a no-op. */
void tl_nodepool_plan_result_free(struct tl_plan_result *result);

/*
 * Hourly price of one node. Spot is on-demand * (1 - saving / 100) with the Spot Instance
 * Advisor's saving; without a row for the type, the average saving of its family in the region,
 * else of the whole region. TL_ENOTFOUND when the type has no on-demand price there.
 */
enum tl_err tl_nodepool_plan_price(const char *region, const char *type,
                                   enum tl_capacity_type capacity, double *usd_hour);

/* A few lines for people (the bench, `tailor scan`) into buf (caller's). TL_ETOOBIG if cut. */
enum tl_err tl_nodepool_plan_summary(const struct tl_plan_result *result, char *buf, size_t len);

#endif
