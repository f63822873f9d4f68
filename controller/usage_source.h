/* usage_source: the operator's usage history: collection cycles per namespace and the lookups. */
#ifndef TL_USAGE_SOURCE_H
#define TL_USAGE_SOURCE_H

#include <stdbool.h>

#include "error.h"
#include "recommend.h"

struct tl_operator;
struct tl_usage_source;

/*
 * Starts collecting for op: every namespace with selected workloads is collected once at once
 * and then every policy interval, from the policy's Prometheus (or --prometheus-url); workloads
 * of a namespace are queued again after each cycle. Caller frees with tl_usage_source_destroy.
 */
struct tl_usage_source *tl_usage_source_create(struct tl_operator *op);
void tl_usage_source_destroy(struct tl_usage_source *src);

/* Starts the cycles that are due; called after the caches sync and on a timer. */
void tl_usage_source_poll(struct tl_usage_source *src);

/*
 * Fills *out (histograms borrowed until the next collection) with the usage of one container of
 * a workload, and *analyzed_at with when its namespace was last collected. false when nothing
 * is known.
 */
bool tl_usage_source_get(struct tl_usage_source *src, const char *ns, const char *kind,
                         const char *name, const char *container, struct tl_usage *out,
                         double *analyzed_at);

/* Prometheus traffic summed over every endpoint, for /metrics. */
struct tl_prom_stats;
void tl_usage_source_prom_stats(struct tl_usage_source *src, struct tl_prom_stats *out);

/* Why a workload has no usage yet, for its explanation; NULL when it has. Borrowed. */
const char *tl_usage_source_problem(struct tl_usage_source *src, const char *ns);

#endif
