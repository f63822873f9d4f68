/* nodepool_reconcile: one Recommendation per Karpenter NodePool a policy selects, with the
 * planner's advice in status.nodePool, and an approved revision applied to the NodePool. */
#ifndef TL_NODEPOOL_RECONCILE_H
#define TL_NODEPOOL_RECONCILE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event_dedup.h"
#include "kube_store.h"
#include "labels.h"
#include "nodepool_plan.h"
#include "objects.h"
#include "policy.h"

/* Work queue key "n/NAME": plan NodePool NAME and keep its Recommendation. The module's public
 * names are tl_np_* (pure parts, for tests) and tl_nodepool_* / tl_reconcile_nodepool (the
 * operator's side). */
#define TL_KEY_NODEPOOL_PREFIX "n/"
/* The label Karpenter puts on the nodes of a NodePool. */
#define TL_LABEL_NODEPOOL "karpenter.sh/nodepool"

struct tl_operator;

/* ---- Projections (informer caches) ---- */

/* A Karpenter node: its pool, instance type and capacity type. */
struct tl_np_node {
    char *pool;                     /* label karpenter.sh/nodepool; NULL on other nodes */
    char *instance_type;            /* label node.kubernetes.io/instance-type; NULL when absent */
    enum tl_capacity_type capacity; /* reserved and unknown count as on-demand */
};

/* Parses a v1 Node (borrowed). Caller frees *out with tl_np_node_free. */
enum tl_err tl_np_node_from_json(const cJSON *obj, struct tl_np_node **out);
void tl_np_node_free(struct tl_np_node *node);

/* A karpenter.sh/v1 NodePool: its labels (for policy selectors) and its parsed spec. */
struct tl_np_pool {
    struct tl_labels labels;
    bool valid;
    struct tl_nodepool_spec spec; /* only when valid */
    char *invalid_reason;         /* the field-naming message when not valid */
};

/* Parses a NodePool (borrowed); an invalid spec still gives TL_OK with valid false. Caller
 * frees *out with tl_np_pool_free. */
enum tl_err tl_np_pool_from_json(const cJSON *obj, struct tl_np_pool **out);
void tl_np_pool_free(struct tl_np_pool *pool);

/* ---- The planner's input, from the caches ---- */

/* One workload's pod, as the planner counts it: millicores and bytes per pod. */
struct tl_np_requests {
    int64_t cpu_milli;
    int64_t memory_bytes;
    int64_t rec_cpu_milli; /* from the workload's Recommendation; the current values without */
    int64_t rec_memory_bytes;
    bool advised;                  /* the Recommendation had advice (confidence above None) */
    enum tl_confidence confidence; /* its confidence when advised */
};

/*
 * A pod's effective requests for the workload w (borrowed), as the scheduler counts them:
 * the larger of the containers and sidecars together, and the largest init container plus
 * the sidecars. rec_status (borrowed, may be NULL) is the status of the workload's
 * Recommendation: its containers[].recommended.requests replace the current values of
 * containers and sidecars (init containers keep theirs: remediation does not change them).
 */
void tl_np_workload_requests(const struct tl_workload *w, const cJSON *rec_status,
                             struct tl_np_requests *out);

/* The caches the input is built from, all borrowed. */
struct tl_np_caches {
    const struct tl_kube_store *pods;         /* struct tl_pod */
    const struct tl_kube_store *nodes;        /* struct tl_np_node */
    const struct tl_kube_store *workloads[3]; /* Deployments, StatefulSets, DaemonSets */
    const struct tl_kube_store *recs;         /* struct tl_rec_obj */
};

/* What the planner needs for one NodePool; everything owned. */
struct tl_np_input {
    struct tl_plan_pod *pods; /* one per pod; one per DaemonSet with pods in the pool */
    size_t npods;
    struct tl_plan_node *nodes;
    size_t nnodes;
    size_t running_pods;           /* pods on the pool's nodes, DaemonSet pods included */
    size_t advised_workloads;      /* workloads whose Recommendation gave recommended requests */
    enum tl_confidence confidence; /* the lowest of theirs; Medium when none has advice */
    char last_analysis[32];        /* the newest lastAnalysisTime among them; "" when none */
    double cpu_cores;              /* requests of the running pods, for status.display */
    double rec_cpu_cores;
    double memory_bytes;
    double rec_memory_bytes;
};

/*
 * Gathers the pool's nodes (label karpenter.sh/nodepool=pool) and the pods scheduled on them.
 * A pod's requests come from its workload (tl_np_workload_requests with the workload's
 * Recommendation), or, when it has no Deployment, StatefulSet or DaemonSet in the caches, from
 * the spec of its running containers (unchanged: nothing recommends other values). Pods that
 * finished hold nothing (their projection has no node). Free with tl_np_input_free.
 */
enum tl_err tl_np_input_build(const struct tl_np_caches *caches, const char *pool,
                              struct tl_np_input *out);
/* Frees what in owns and zeroes it; NULL is a no-op. */
void tl_np_input_free(struct tl_np_input *in);

/* ---- The status ---- */

/* Bits of the NodePool fields a revision changes. */
enum tl_np_change {
    TL_NP_CHANGE_REQUIREMENTS = 1,
    TL_NP_CHANGE_LIMITS = 2,
    TL_NP_CHANGE_CONSOLIDATION = 4,
};

/* Everything borrowed. */
struct tl_np_status_input {
    const char *name;                  /* the NodePool's */
    const struct tl_np_pool *pool;     /* the NodePool as cached */
    const struct tl_plan_result *plan; /* NULL when no plan was made: problem says why */
    /* The fleet the advised changes lead to (the plan with the narrowed requirements); NULL:
     * plan->after_recommended. */
    const struct tl_plan_fleet *proposed;
    const char *problem;
    const char *region;
    const struct tl_np_input *input; /* may be NULL with a problem */
    const cJSON *previous;           /* the Recommendation's status as last seen, or NULL */
    int64_t approved_revision;       /* 0 when none */
    int64_t generation;              /* the Recommendation's metadata.generation */
    double now;
};

/* What the status build decided, for remediation. */
struct tl_np_status_info {
    int64_t revision;
    unsigned changes;          /* enum tl_np_change bits the fresh plan advises */
    unsigned revision_changes; /* the bits of the revision shown (kept while it is current) */
    bool material;             /* a new revision */
    bool drifts;               /* applying the advice makes Karpenter replace running nodes */
};

/*
 * Builds the whole desired status (caller frees with cJSON_Delete; NULL when out of memory).
 * Pure. The revision moves when the proposal moves: its requirements, its limits or the set
 * of fields it changes; a proposal that disappears because it is in place keeps its revision.
 * History and lastAppliedRevision are carried over; phase is Pending or Approved while the
 * plan advises a change, else UpToDate (Applied when this revision was applied).
 */
cJSON *tl_np_status_build(const struct tl_np_status_input *in, struct tl_np_status_info *info);

/* ---- Remediation ---- */

struct tl_np_remediate_input {
    const struct tl_policy *policy;
    const struct tl_np_status_info *info;
    const cJSON *previous;
    int64_t approved_revision;
    bool kill_switch; /* Auto mode only, as for workloads */
    bool dry_run;
    double now;
    const char *change; /* the change in words, for conditions and events ("" when none) */
};

struct tl_np_action {
    bool apply; /* write the NodePool now, then tl_np_record_apply */
    int64_t revision;
    const char *by;       /* "manual" or "auto" */
    double requeue_after; /* seconds; 0: no timed recheck */
    /* An Event to record, when reason is not NULL. */
    enum tl_event_type event_type;
    const char *event_reason;
    const char *event_action;
    char note[512];
};

/*
 * Decides whether the revision is written to the NodePool now (Manual: approved, within the
 * policy's window; Auto: every guardrail, and allowDrift for a change that drifts nodes) and
 * edits status (from tl_np_status_build) to say so. Pure.
 */
void tl_np_remediate(const struct tl_np_remediate_input *in, cJSON *status,
                     struct tl_np_action *out);

/*
 * Records the outcome of the write tl_np_remediate asked for: history, phase (Applied or
 * Failed), lastAppliedRevision and the Remediation condition; fills the action's Event.
 * from/to (borrowed) describe the fields before and after; why is the failure, or NULL.
 */
void tl_np_record_apply(cJSON *status, const cJSON *previous, struct tl_np_action *action, bool ok,
                        const char *why, const char *from, const char *to, double now);

/*
 * The server-side apply configuration (caller frees with cJSON_Delete) that makes NodePool
 * `name` match the plan's advised changes: only the fields they name. NULL when out of memory
 * or when nothing is advised. from and to (caller's buffers) get the fields before and after
 * in words, for history and Events.
 */
cJSON *tl_np_apply_body(const char *name, const struct tl_nodepool_spec *current,
                        const struct tl_plan_result *plan, char *from, size_t from_len, char *to,
                        size_t to_len);

/* "nodepool-NAME", cut with a hash suffix to fit 253 characters. Caller frees; NULL on ENOMEM. */
char *tl_np_rec_name(const char *pool);

/* ---- The operator's side ---- */

/* Starts the NodePool and Node informers (op->nodepools, op->nodes). */
enum tl_err tl_nodepool_informers_start(struct tl_operator *op);
/* Destroys them and clears the pointers; safe to call twice. */
void tl_nodepool_informers_stop(struct tl_operator *op);
/* Queues every NodePool, and the target of every NodePool Recommendation. */
void tl_nodepool_enqueue_all(struct tl_operator *op);
/* A Recommendation changed (borrowed item): its NodePool, or for a workload's, every pool soon. */
void tl_nodepool_rec_changed(struct tl_operator *op, const struct tl_kube_store_item *item);
/* Reconciles key "n/NAME"; calls tl_operator_finish for it. */
void tl_reconcile_nodepool(struct tl_operator *op, const char *key);

#endif
