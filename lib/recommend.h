/* recommend: turns one container's usage histograms into requests, limits, bounds and a confidence.
 */
#ifndef TL_RECOMMEND_H
#define TL_RECOMMEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "histogram.h"

enum tl_limit_mode { TL_LIMIT_REMOVE, TL_LIMIT_KEEP_RATIO, TL_LIMIT_SET_TO_REQUEST, TL_LIMIT_KEEP };
enum tl_confidence {
    TL_CONFIDENCE_NONE,
    TL_CONFIDENCE_LOW,
    TL_CONFIDENCE_MEDIUM,
    TL_CONFIDENCE_HIGH
};

/* How one resource is sized. Values in cores (CPU) or bytes (memory); 0 bounds mean none. */
struct tl_resource_rule {
    double percentile; /* 50..100 */
    double headroom_percent;
    double min;
    double max;
};

struct tl_recommend_policy {
    struct tl_resource_rule cpu;
    struct tl_resource_rule memory;
    enum tl_limit_mode cpu_limit;
    enum tl_limit_mode memory_limit;
    double oom_bump_percent; /* memory above the usage at an OOM kill; VPA uses 20 */
    bool guaranteed;         /* limits = requests, for latency- or memory-critical services */
    double sample_interval;  /* seconds between samples, to measure coverage */
};

/* Requests and limits of one container; 0 means unset. */
struct tl_resources {
    double cpu_request;
    double cpu_limit;
    double memory_request;
    double memory_limit;
};

/* What was observed of one container (all its pods merged). Histograms are borrowed. */
struct tl_usage {
    const struct tl_histogram *cpu;
    const struct tl_histogram *memory;
    unsigned oom_kills;     /* in the history window */
    double oom_memory;      /* bytes in use (or the limit) at the last OOM kill; 0 if unknown */
    double throttled_ratio; /* share of CFS periods throttled, 0..1; < 0 if unknown */
    double now;             /* seconds; the end of the history window */
    double window;          /* seconds of history the policy asked for */
    /* An HPA that scales this workload on CPU utilization (percent), or 0. */
    double hpa_cpu_target_percent;
};

struct tl_usage_summary {
    double cpu_p50, cpu_p95, cpu_max;
    double memory_p50, memory_p99, memory_max;
    double cpu_mean, cpu_stddev;
    uint64_t samples;
    double history_seconds; /* from the first to the last sample */
    double coverage;        /* samples seen / samples expected over that span, 0..1 */
};

struct tl_advice {
    struct tl_resources recommended;
    struct tl_resources lower; /* requests below these are likely to starve the container */
    struct tl_resources upper; /* requests above these are likely waste */
    struct tl_usage_summary usage;
    enum tl_confidence confidence;
    bool oom_bumped;     /* memory was raised because of OOM kills */
    bool hpa_consistent; /* CPU request sized for an HPA's target */
    bool capped_by_confidence;
    char explanation[320]; /* one plain sentence with the numbers that drove the advice */
};

/* Policy defaults: CPU p95 + 15%, memory p99 + 20%, CPU limit removed, memory ratio kept. */
void tl_recommend_policy_defaults(struct tl_recommend_policy *policy);

/*
 * Computes the advice for one container from its usage, its current resources and the policy.
 * Pure: the same inputs always give the same advice. Never fails; with no usage the advice keeps
 * the current values, has confidence None and says why.
 */
void tl_recommend_container(const struct tl_recommend_policy *policy, const struct tl_usage *usage,
                            const struct tl_resources *current, struct tl_advice *out);

/* Confidence from the length and coverage of the history (see recommend.c for the rule). */
enum tl_confidence tl_recommend_confidence(double history_seconds, double coverage);

const char *tl_confidence_name(enum tl_confidence confidence);
const char *tl_limit_mode_name(enum tl_limit_mode mode);
/* Parses "Remove", "KeepRatio", "SetToRequest", "Keep". */
bool tl_limit_mode_parse(const char *text, enum tl_limit_mode *out);
bool tl_confidence_parse(const char *text, enum tl_confidence *out);

/* Rounds up to the granularity people write: 1m under 100m, 5m under 1 core, 10m above. */
double tl_round_cpu(double cores);
/* Rounds up to 1Mi under 1Gi, 16Mi above. */
double tl_round_memory(double bytes);

/* QoS class of a pod from its containers' resources (Kubernetes' rules). */
enum tl_qos { TL_QOS_BEST_EFFORT, TL_QOS_BURSTABLE, TL_QOS_GUARANTEED };
enum tl_qos tl_qos_of(const struct tl_resources *containers, size_t count);
const char *tl_qos_name(enum tl_qos qos);

#endif
