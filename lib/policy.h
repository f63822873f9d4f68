/* policy: an OptimizationPolicy spec, parsed and validated into what the controller acts on. */
#ifndef TL_POLICY_H
#define TL_POLICY_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cron.h"
#include "error.h"
#include "labels.h"
#include "recommend.h"

enum tl_workload_kind {
    TL_KIND_DEPLOYMENT = 1 << 0,
    TL_KIND_STATEFULSET = 1 << 1,
    TL_KIND_DAEMONSET = 1 << 2,
};

enum tl_metrics_source { TL_METRICS_PROMETHEUS, TL_METRICS_SERVER };
enum tl_approval_mode { TL_APPROVAL_OFF, TL_APPROVAL_MANUAL, TL_APPROVAL_AUTO };
enum tl_apply_method { TL_APPLY_PATCH, TL_APPLY_IN_PLACE };
enum tl_qos_policy { TL_QOS_PRESERVE, TL_QOS_WANT_GUARANTEED, TL_QOS_WANT_BURSTABLE };

/* Strings are owned by the policy; NULL when unset. Durations in milliseconds. */
struct tl_policy {
    struct tl_selector selector;
    struct tl_selector namespace_selector;
    bool has_namespace_selector; /* reaches beyond the policy's own namespace */
    unsigned workload_kinds;     /* enum tl_workload_kind bits */

    struct {
        enum tl_metrics_source source;
        char *prometheus_url; /* NULL: the operator's --prometheus-url */
        char *headers_secret;
        char *extra_selector; /* PromQL label matchers added to every query */
        char *cpu_series;
        char *memory_series;
        char *namespace_label;
        char *pod_label;
        char *container_label;
        int64_t history_ms;
        int64_t interval_ms;
    } metrics;

    struct tl_recommend_policy recommend;
    enum tl_qos_policy qos;
    char **exclude_containers;
    size_t nexclude;

    struct {
        bool enabled;
        bool create;
        int min_replicas;
        int max_replicas;
        int target_min;
        int target_max;
    } hpa;

    struct {
        bool enabled; /* spec.nodePools is present */
        struct tl_selector selector;
        int max_cost_increase_percent;
        bool allow_drift;
    } node_pools;

    struct {
        char *region;
        bool spot;
        int spot_discount_percent;   /* -1: from the catalog */
        double custom_cpu_core_hour; /* < 0: from the catalog */
        double custom_memory_gib_hour;
    } pricing;

    struct {
        enum tl_approval_mode mode;
        int max_change_percent;
        int min_change_percent;
        enum tl_confidence min_confidence;
        int64_t cooldown_ms;
        bool has_window;
        struct tl_cron window;
        int64_t window_ms;
        enum tl_apply_method method;
        bool fallback_to_patch;
        int max_per_namespace;
        int max_cluster;
        int64_t verification_ms;
        int max_consecutive_rollbacks;
    } approval;
};

/*
 * Parses spec (borrowed) into *out, applying the same defaults as the CRD so a policy created
 * without them (or on a server that does not default) means the same thing. On failure errbuf
 * names the field the way Kubernetes does ("spec.resources.cpu.percentile: must be between 50
 * and 100, got 150") and *out is untouched; on success the caller frees with tl_policy_free.
 */
enum tl_err tl_policy_parse(const cJSON *spec, struct tl_policy *out, char *errbuf, size_t errlen);

void tl_policy_free(struct tl_policy *policy);

/* Number of selector terms, for the overlap rule (the more specific selector wins). */
size_t tl_policy_specificity(const struct tl_policy *policy);

bool tl_policy_excludes_container(const struct tl_policy *policy, const char *container);

const char *tl_approval_mode_name(enum tl_approval_mode mode);

#endif
