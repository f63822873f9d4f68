/* assign: which policy sizes which workload: selection, namespace scope and the overlap rule. */
#ifndef TL_ASSIGN_H
#define TL_ASSIGN_H

#include <stdbool.h>
#include <stddef.h>

#include "objects.h"

/* A policy as the assignment sees it; everything borrowed. */
struct tl_policy_ref {
    const char *ns;
    const char *name;
    const struct tl_policy_obj *obj;
};

/*
 * Why a valid policy may select nothing at all, or NULL when it is in scope: only a policy in
 * the operator's namespace may reach other namespaces (namespaceSelector), NodePools, or a
 * Prometheus credential Secret.
 */
const char *tl_policy_scope_problem(const struct tl_policy_ref *policy, const char *operator_ns);

/* Whether the policy selects the workload (kind, labels, namespace scope; ignored ones never). */
bool tl_policy_selects(const struct tl_policy_ref *policy, const char *operator_ns,
                       const char *workload_ns, const struct tl_workload *workload,
                       const struct tl_labels *namespace_labels);

/*
 * The winner among policies that all select one workload in workload_ns (docs/api.md): a policy
 * in the workload's own namespace beats one from elsewhere, then the selector with more terms,
 * then the older policy, then namespace/name order. Returns its index, or -1 when n is 0.
 */
long tl_policy_pick(const struct tl_policy_ref *candidates, size_t n, const char *workload_ns);

#endif
