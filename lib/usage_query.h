/* usage_query: where usage history lives in Prometheus (series, labels, step) and the PromQL that
 * fetches one namespace's history in three queries. */
#ifndef TL_USAGE_QUERY_H
#define TL_USAGE_QUERY_H

#include "error.h"
#include "policy.h"

/*
 * Every string is borrowed. NULL (or <= 0 for numbers) means the default in brackets, which are
 * the names cAdvisor (through the kubelet) and kube-state-metrics use.
 */
struct tl_usage_settings {
    const char *cpu_series;        /* [container_cpu_usage_seconds_total] counter of CPU seconds */
    const char *memory_series;     /* [container_memory_working_set_bytes] gauge of bytes */
    const char *throttled_series;  /* [container_cpu_cfs_throttled_periods_total] */
    const char *periods_series;    /* [container_cpu_cfs_periods_total] */
    const char *restarts_series;   /* [kube_pod_container_status_restarts_total] */
    const char *terminated_series; /* [kube_pod_container_status_last_terminated_reason] */
    const char *limits_series;     /* [kube_pod_container_resource_limits] */
    const char *namespace_label;   /* [namespace] */
    const char *pod_label;         /* [pod] */
    const char *container_label;   /* [container] */
    const char *extra_selector;    /* [none] matchers without braces, e.g. cluster="prod" */
    double history;                /* [14 days] seconds of history kept in view */
    double step;                   /* [300] seconds between two samples of one pod */
    double rate_window;            /* [step] seconds the CPU rate is taken over */
};

/* The label the facts query tags each of its parts with, and the tags. */
#define TL_USAGE_FACT_LABEL     "tailor_fact"
#define TL_USAGE_FACT_THROTTLED "throttled" /* CFS periods throttled in the window */
#define TL_USAGE_FACT_PERIODS   "periods"   /* CFS periods in the window */
#define TL_USAGE_FACT_OOM_KILLS "oom_kills" /* OOM kills in the window */
#define TL_USAGE_FACT_OOM_LIMIT "oom_limit" /* memory limit of a container that was OOM-killed */

/* Copies in into *out with every unset field replaced by its default. Strings stay borrowed. */
void tl_usage_settings_resolve(const struct tl_usage_settings *in, struct tl_usage_settings *out);

/* Settings from a policy's spec.metrics (strings borrowed from policy), defaults elsewhere. */
void tl_usage_settings_from_policy(const struct tl_policy *policy, struct tl_usage_settings *out);

/*
 * The three queries of one namespace. *out is a NUL-terminated string the caller frees; written
 * only on success. TL_ETOOBIG if the text would pass 64 KiB (a giant extra selector).
 *
 * cpu (range, at step):     sum by (pod, container) (rate(<cpu>{<sel>}[<rate window>]))
 * memory (range, at step):  max by (pod, container) (max_over_time(<memory>{<sel>}[<step>]))
 * facts (instant):          per pod and container, tagged with TL_USAGE_FACT_LABEL: CFS periods
 *                           throttled and elapsed, OOM kills and the memory limit of containers
 *                           that were OOM-killed, all over the history window.
 */
enum tl_err tl_usage_query_cpu(const struct tl_usage_settings *settings, const char *ns,
                               char **out);
enum tl_err tl_usage_query_memory(const struct tl_usage_settings *settings, const char *ns,
                                  char **out);
enum tl_err tl_usage_query_facts(const struct tl_usage_settings *settings, const char *ns,
                                 char **out);

#endif
