/* remediate: the approval and verification state machine of one Recommendation (pure). */
#ifndef TL_REMEDIATE_H
#define TL_REMEDIATE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "event_dedup.h"
#include "guardrails.h"
#include "objects.h"

#define TL_REMEDY_MAX_CONTAINERS 64

/* How the workload's pods are doing since a change started. */
struct tl_workload_health {
    int oom_kills;   /* containers OOM-killed after the change started */
    int crash_loops; /* containers in CrashLoopBackOff */
    int pods;
    int ready_pods;
    char problem[200]; /* the first problem seen, for messages: "pod x container y OOMKilled" */
    bool resize_infeasible; /* a pod's in-place resize was refused by its node */
};

/* Everything borrowed. guard is filled by the caller except policy, confidence and change. */
struct tl_remediate_input {
    const struct tl_policy *policy;
    const struct tl_workload *workload;
    const cJSON *previous; /* the status as last seen; NULL for a new Recommendation */
    int64_t approved_revision;
    int64_t unblock_revision;
    struct tl_workload_health health;
    const struct tl_hpa *hpa; /* the HPA scaling the workload, or NULL */
    /* method InPlace: whether every pod already runs with these values (per container). */
    bool (*pods_at)(void *arg, const struct tl_resources *values, size_t n);
    void *pods_arg;
    struct tl_guard_input guard;
    bool dry_run;
    double now;
};

enum tl_remedy_kind {
    TL_REMEDY_NONE,
    TL_REMEDY_APPLY,    /* write `values` to the workload (again: applying is idempotent) */
    TL_REMEDY_ROLLBACK, /* write `values` (what was there before) back */
};

/* How values reach the workload: its pod template (a rollout), or its running pods. */
enum tl_remedy_how { TL_REMEDY_TEMPLATE, TL_REMEDY_RESIZE };

struct tl_remedy {
    enum tl_remedy_kind kind;
    enum tl_remedy_how how; /* resize for method InPlace, unless it fell back to the template */
    struct tl_resources values[TL_REMEDY_MAX_CONTAINERS]; /* per workload container */
    size_t count;
    int64_t revision;
    double requeue_after; /* seconds; 0: no timed recheck needed */
    /* HPA settings to write with the same change (server-side apply), when apply is set. */
    struct {
        bool apply;
        bool create; /* no HPA yet: the policy's hpa.create asked for one */
        int min_replicas;
        int max_replicas;
        int target_percent; /* CPU utilization */
    } hpa;
    /* An Event to record, when reason is not NULL. */
    enum tl_event_type event_type;
    const char *event_reason;
    const char *event_action;
    char note[512];
};

/*
 * Decides what remediation does now and edits the desired `status` (from tl_rec_status_build)
 * to match: phase, verification, history, blockedRevision, lastAppliedRevision and a
 * "Remediation" condition. Pure; the caller writes the status first and only then the
 * workload, so a restart in between finds the state it needs and never loses an approval.
 * Nothing is written to a workload in mode Off, and under dry_run the decision is only reported.
 */
void tl_remediate(const struct tl_remediate_input *in, cJSON *status, struct tl_remedy *out);

#endif
