/* usage_collect: collection cycles that bring one namespace's usage history from Prometheus into a
 * usage store: three queries per namespace per cycle, only new samples after the first. */
#ifndef TL_USAGE_COLLECT_H
#define TL_USAGE_COLLECT_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "pod_owner.h"
#include "prom.h"
#include "usage.h"
#include "usage_query.h"

struct tl_usage_collector;

/*
 * Takes ownership of prom (destroyed with the collector, which is what cancels queries still
 * running safely) only on success; store is borrowed and must outlive the collector. Returns NULL
 * on allocation failure, prom then still the caller's.
 */
struct tl_usage_collector *tl_usage_collector_create(struct tl_prom *prom,
                                                     struct tl_usage_store *store);

/* Cancels running cycles (their callbacks are not called), destroys the prom client, frees.
 * Not from inside a cycle's callback. NULL is a no-op. */
void tl_usage_collector_destroy(struct tl_usage_collector *collector);

/* The collector's Prometheus client (borrowed), e.g. for tl_prom_stats_get. */
struct tl_prom *tl_usage_collector_prom(const struct tl_usage_collector *collector);

/* How one cycle ended; everything borrowed for the callback only. */
struct tl_usage_cycle {
    const char *ns;
    enum tl_err err;
    const char *message; /* what failed and which query; NULL on success */
    unsigned queries;    /* queries the cycle sent: 3, or 1 when there was no new window */
    double from;         /* the window fetched: samples in (from, to] */
    double to;
    bool replaced; /* the whole window was fetched again and replaced the history */
    struct tl_usage_fold_stats stats;
};

typedef void (*tl_usage_done_fn)(void *arg, const struct tl_usage_cycle *cycle);

/*
 * Starts one cycle for namespace ns: a CPU and a memory range query over the samples not yet in
 * the store (the whole history the first time, then (covered_until, now]), at settings' step and
 * aligned to it, and one instant facts query (usage_query.h). Once the history held spans twice
 * settings' history, the whole window is fetched again and replaces it, so old peaks leave. When
 * all three have answered, the answers are folded into the store together; if any failed, nothing
 * is folded, the history already collected stays, the failure is logged with ns=..., and the next
 * cycle fetches the same window again. Pods are attributed to the given workloads by name
 * (pod_owner.h).
 *
 * Everything is copied. done is called once, from the loop, unless the collector is destroyed
 * first; a call that returns an error never calls it. TL_ESTATE if a cycle for ns is running.
 */
enum tl_err tl_usage_collect(struct tl_usage_collector *collector, const char *ns,
                             const struct tl_workload_ref *workloads, size_t nworkloads,
                             const struct tl_usage_settings *settings, double now,
                             tl_usage_done_fn done, void *arg);

/* Whether a cycle for ns is running. */
bool tl_usage_collecting(const struct tl_usage_collector *collector, const char *ns);

#endif
