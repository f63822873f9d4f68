/* guardrails: whether an automatic change may happen now, and how big one step may be. */
#ifndef TL_GUARDRAILS_H
#define TL_GUARDRAILS_H

#include <stdbool.h>
#include <stddef.h>

#include "policy.h"
#include "recommend.h"

struct tl_guard_input {
    const struct tl_policy *policy;
    enum tl_confidence confidence;
    double change_percent; /* the largest relative change the advice makes, over containers */
    bool rolling;          /* the workload is already rolling out */
    int pdb_allowed;       /* disruptionsAllowed of a PDB covering its pods; < 0: none */
    bool kill_switch;
    double now;          /* epoch seconds */
    double last_applied; /* when a change was last applied to it; 0: never */
    int applying_in_namespace;
    int applying_in_cluster;
};

struct tl_guard_result {
    bool allowed;
    const char *reason; /* a condition reason: "OutsideWindow", "Cooldown", ... */
    char message[256];
    double retry_after; /* seconds until it is worth checking again; 0: on the next event */
};

/* Every guardrail an automatic change must pass, in a fixed order; the first that fails wins. */
void tl_guard_check_auto(const struct tl_guard_input *in, struct tl_guard_result *out);

/* Whether the policy's window (if any) is open now; manual approvals wait for it too. */
bool tl_guard_window_open(const struct tl_policy *policy, double now, double *opens_in);

/*
 * One step from current toward recommended, each value moving by at most max_percent of its
 * current value (a value not set now, or removed by the advice, moves at once).
 */
void tl_guard_step(const struct tl_resources *current, const struct tl_resources *recommended,
                   double max_percent, struct tl_resources *out);

#endif
