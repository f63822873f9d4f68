/* usage: per workload-container usage histograms kept across collection cycles, and the folding
 * of one namespace's Prometheus answers into them without counting a sample twice. */
#ifndef TL_USAGE_H
#define TL_USAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "histogram.h"
#include "pod_owner.h"
#include "policy.h"
#include "prom.h"
#include "recommend.h"
#include "usage_query.h"

/*
 * What is known of one container of one workload, all its pods merged: one CPU and one memory
 * sample per pod per step (weight 1, decaying with a 24 h half-life), and the facts of the last
 * facts query, which replace the previous ones.
 */
struct tl_container_usage {
    struct tl_histogram cpu;    /* cores, tl_histogram_cpu_defaults */
    struct tl_histogram memory; /* bytes, peak per step, tl_histogram_memory_defaults */
    unsigned oom_kills;         /* in the history window */
    double oom_memory;          /* memory limit of the OOM-killed pods (bytes); 0 if none */
    double throttled_ratio;     /* CFS periods throttled / periods, 0..1; < 0 if unknown */
    double covered_until;       /* end of the last window that brought samples (seconds) */
};

struct tl_usage_store;

/* Returns NULL on allocation failure. Caller frees with tl_usage_store_destroy. */
struct tl_usage_store *tl_usage_store_create(void);

void tl_usage_store_destroy(struct tl_usage_store *store);

/* Borrowed; valid until the store folds, forgets or is destroyed. NULL when nothing is known. */
const struct tl_container_usage *tl_usage_store_get(const struct tl_usage_store *store,
                                                    const char *ns, enum tl_workload_kind kind,
                                                    const char *workload, const char *container);

/*
 * Fills *out for tl_recommend_container (now and window in seconds; hpa_cpu_target_percent 0):
 * the histograms are borrowed like tl_usage_store_get's answer. false, *out untouched, when
 * nothing is known of the container.
 */
bool tl_usage_store_usage(const struct tl_usage_store *store, const char *ns,
                          enum tl_workload_kind kind, const char *workload, const char *container,
                          double now, double window, struct tl_usage *out);

/* Called for each known container of a workload; container and usage borrowed for the call. */
typedef void (*tl_usage_container_fn)(void *arg, const char *container,
                                      const struct tl_container_usage *usage);

/* Visits the containers of one workload; returns how many there were. */
size_t tl_usage_store_each_container(const struct tl_usage_store *store, const char *ns,
                                     enum tl_workload_kind kind, const char *workload,
                                     tl_usage_container_fn fn, void *arg);

/* Seconds up to which a namespace's history has been folded; 0 when none has. */
double tl_usage_store_covered_until(const struct tl_usage_store *store, const char *ns);

/* Start of the window of the fold that began the namespace's history; 0 when none has. */
double tl_usage_store_since(const struct tl_usage_store *store, const char *ns);

/* Drops everything known of a namespace (its policy no longer selects it). */
void tl_usage_store_forget_namespace(struct tl_usage_store *store, const char *ns);

struct tl_usage_store_stats {
    size_t namespaces;
    size_t containers;
    size_t bytes; /* heap held, roughly */
};

void tl_usage_store_stats_get(const struct tl_usage_store *store, struct tl_usage_store_stats *out);

/* One namespace's answers for one cycle. Everything is borrowed. */
struct tl_usage_batch {
    const char *ns;
    const struct tl_workload_ref *workloads; /* pods are attributed to these (pod_owner.h) */
    size_t nworkloads;
    double from;                         /* samples at or before this time are already in */
    double to;                           /* samples after it belong to a later cycle */
    const struct tl_prom_result *cpu;    /* range answers; NULL both when no new window */
    const struct tl_prom_result *memory; /* was queried */
    const struct tl_prom_result *facts;  /* the instant facts answer; NULL: keep the old facts */
    bool replace; /* a refetch of the whole window: replaces the namespace's history */
};

struct tl_usage_fold_stats {
    size_t series;    /* series read */
    size_t samples;   /* samples added to histograms */
    size_t skipped;   /* samples already folded, outside (from, to], negative or not finite */
    size_t unmatched; /* series without pod or container label or whose pod fits no workload */
};

/*
 * Adds the batch's samples in (max(from, covered_until(ns)), to] to the histograms of the
 * workload-containers their pods belong to, replaces the namespace's facts when a facts answer is
 * given, and moves the namespace's coverage to `to`. Samples at or before the coverage are
 * skipped, so folding the same window twice, or two overlapping cycles, never counts a sample
 * twice. settings give the pod and container label names. TL_ENOMEM may leave the batch partly
 * folded; the coverage still moves, so nothing is counted twice on the next cycle.
 *
 * With replace, the batch becomes the namespace's whole history (samples in (from, to]) once it
 * is folded completely; on failure the old history stays untouched. *stats (may be NULL) is
 * always written.
 */
enum tl_err tl_usage_store_fold(struct tl_usage_store *store,
                                const struct tl_usage_settings *settings,
                                const struct tl_usage_batch *batch,
                                struct tl_usage_fold_stats *stats);

#endif
