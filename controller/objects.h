/* objects: the compact projections the controller caches of each watched kind, and their parsers.
 */
#ifndef TL_OBJECTS_H
#define TL_OBJECTS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "labels.h"
#include "pod_owner.h"
#include "policy.h"
#include "recommend.h"

enum tl_container_type { TL_CONTAINER_APP, TL_CONTAINER_INIT, TL_CONTAINER_SIDECAR };

struct tl_container {
    char *name;
    enum tl_container_type type;
    struct tl_resources resources; /* cores and bytes; 0 when unset */
};

/* A Deployment, StatefulSet or DaemonSet: what sizing and selection need. */
struct tl_workload {
    enum tl_workload_kind kind;
    struct tl_labels labels;
    bool ignored; /* annotation tailor.dev/ignore: "true" */
    int replicas; /* spec.replicas; for DaemonSets the desired number scheduled */
    int ready_replicas;
    int updated_replicas;
    int64_t generation;
    int64_t observed_generation;
    struct tl_container *containers;
    size_t ncontainers;
    struct tl_labels template_labels; /* the pods' labels, which PDBs select on */
};

/* A container's health as the kubelet reports it. */
struct tl_container_health {
    char *name;
    bool ready;
    int restarts;
    bool oom_killed;               /* lastState.terminated.reason is OOMKilled */
    double oom_finished;           /* when that termination ended, epoch seconds */
    bool crash_loop;               /* state.waiting.reason is CrashLoopBackOff */
    double memory_limit;           /* bytes, from the pod's spec: the limit it was killed at */
    struct tl_resources resources; /* the pod's spec values (what a resize changes) */
};

/* A Pod: which workload it belongs to, and whether it is healthy. */
struct tl_pod {
    char *owner_kind; /* the workload's kind: a ReplicaSet owner is read as its Deployment */
    char *owner_name;
    bool ready;
    double created;         /* epoch seconds */
    bool resize_infeasible; /* condition PodResizePending with reason Infeasible */
    char *node_name;        /* spec.nodeName while the pod holds resources there; NULL when
                               unscheduled or Succeeded/Failed */
    struct tl_container_health *containers;
    size_t ncontainers;
};

struct tl_pdb {
    struct tl_selector selector;
    int disruptions_allowed;
};

struct tl_hpa {
    char *target_kind;
    char *target_name;
    int min_replicas;
    int max_replicas;
    int cpu_target_percent; /* 0 when the HPA does not scale on CPU utilization */
    int memory_target_percent;
    int current_replicas;
};

struct tl_namespace {
    struct tl_labels labels;
};

struct tl_condition {
    char *type;
    char *status;
    char *reason;
    char *message;
    char *last_transition_time;
};

/* An OptimizationPolicy: the parsed spec, or why it could not be parsed. */
struct tl_policy_obj {
    bool valid;
    struct tl_policy policy; /* only when valid */
    char *invalid_reason;    /* the field-naming message when not valid */
    int64_t generation;
    char *created; /* metadata.creationTimestamp, RFC 3339, for the overlap rule */
    int64_t observed_generation;
    char *status_json; /* compact status as last seen, to write only changes; may be NULL */
    struct tl_condition *conditions;
    size_t nconditions;
};

/* A Recommendation this controller keeps. */
struct tl_rec_obj {
    char *target_kind;
    char *target_name;
    char *policy_ns;
    char *policy_name;
    int64_t approved_revision; /* 0 when none */
    int64_t unblock_revision;
    int64_t revision;
    int64_t generation;
    double savings_usd; /* status.savings.monthlyUSD, summed into the policy's status */
    char *phase;
    char *status_json; /* compact text of the status as seen; it carries history and
                          conditions, which a rewrite must keep. NULL when there is none */
};

/* Parsers used as informer projections; each returns TL_OK and an owned struct, or an error. */
enum tl_err tl_workload_from_json(const cJSON *obj, enum tl_workload_kind kind,
                                  struct tl_workload **out);
void tl_workload_free(struct tl_workload *w);
enum tl_err tl_hpa_from_json(const cJSON *obj, struct tl_hpa **out);
void tl_hpa_free(struct tl_hpa *h);
enum tl_err tl_namespace_from_json(const cJSON *obj, struct tl_namespace **out);
void tl_namespace_free(struct tl_namespace *n);
enum tl_err tl_policy_obj_from_json(const cJSON *obj, struct tl_policy_obj **out);
void tl_policy_obj_free(struct tl_policy_obj *p);
enum tl_err tl_rec_obj_from_json(const cJSON *obj, struct tl_rec_obj **out);
void tl_rec_obj_free(struct tl_rec_obj *r);

enum tl_err tl_pod_from_json(const cJSON *obj, struct tl_pod **out);
void tl_pod_free(struct tl_pod *p);
enum tl_err tl_pdb_from_json(const cJSON *obj, struct tl_pdb **out);
void tl_pdb_free(struct tl_pdb *p);

/* Parses an RFC 3339 UTC time ("2026-11-21T10:00:00Z", fraction allowed); 0 when malformed. */
double tl_parse_time(const char *text);

/* Parses a Kubernetes resource quantity into cores (cpu) or bytes (memory); 0 when absent. */
double tl_resource_value(const cJSON *quantity, bool memory);

/* tl_workload_kind_name is in pod_owner.h. */
bool tl_workload_kind_parse(const char *name, enum tl_workload_kind *out);
/* "deployment-web": the Recommendation name for a workload, lower case. Caller frees. */
char *tl_rec_name(enum tl_workload_kind kind, const char *name);

#endif
