#include "assign.h"

#include <string.h>

const char *tl_policy_scope_problem(const struct tl_policy_ref *policy, const char *operator_ns)
{
    const struct tl_policy *p = &policy->obj->policy;
    if (strcmp(policy->ns, operator_ns) == 0)
        return NULL;
    if (p->has_namespace_selector)
        return "spec.namespaceSelector is honoured only for policies in the operator's namespace";
    if (p->node_pools.enabled)
        return "spec.nodePools is honoured only for policies in the operator's namespace";
    if (p->metrics.headers_secret)
        return "spec.metrics.prometheus.headersSecretRef is honoured only for policies in the "
               "operator's namespace";
    return NULL;
}

bool tl_policy_selects(const struct tl_policy_ref *policy, const char *operator_ns,
                       const char *workload_ns, const struct tl_workload *workload,
                       const struct tl_labels *namespace_labels)
{
    const struct tl_policy_obj *obj = policy->obj;
    if (!obj->valid || workload->ignored || tl_policy_scope_problem(policy, operator_ns))
        return false;
    const struct tl_policy *p = &obj->policy;
    if (!(p->workload_kinds & workload->kind))
        return false;
    if (p->has_namespace_selector) {
        static const struct tl_labels none = {NULL, 0};
        if (!tl_selector_matches(&p->namespace_selector,
                                 namespace_labels ? namespace_labels : &none))
            return false;
    }
    else if (strcmp(policy->ns, workload_ns) != 0) {
        return false;
    }
    return tl_selector_matches(&p->selector, &workload->labels);
}

/* Negative when a should win over b. */
static int compare(const struct tl_policy_ref *a, const struct tl_policy_ref *b,
                   const char *workload_ns)
{
    bool a_local = strcmp(a->ns, workload_ns) == 0;
    bool b_local = strcmp(b->ns, workload_ns) == 0;
    if (a_local != b_local)
        return a_local ? -1 : 1;
    size_t a_terms = tl_policy_specificity(&a->obj->policy);
    size_t b_terms = tl_policy_specificity(&b->obj->policy);
    if (a_terms != b_terms)
        return a_terms > b_terms ? -1 : 1;
    /* RFC 3339 UTC timestamps of one format order as strings do. */
    const char *a_created = a->obj->created ? a->obj->created : "";
    const char *b_created = b->obj->created ? b->obj->created : "";
    int by_age = strcmp(a_created, b_created);
    if (by_age != 0)
        return by_age;
    int by_ns = strcmp(a->ns, b->ns);
    return by_ns != 0 ? by_ns : strcmp(a->name, b->name);
}

long tl_policy_pick(const struct tl_policy_ref *candidates, size_t n, const char *workload_ns)
{
    if (n == 0)
        return -1;
    size_t best = 0;
    for (size_t i = 1; i < n; i++) {
        if (compare(&candidates[i], &candidates[best], workload_ns) < 0)
            best = i;
    }
    return (long)best;
}
