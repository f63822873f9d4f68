/* metrics: Prometheus counters, gauges and histograms with capped series, and their exposition. */
#ifndef TL_METRICS_H
#define TL_METRICS_H

#include <stddef.h>

#include "error.h"

/*
 * Each metric is registered once with a name, help text and fixed label names; every
 * observation then gives the label values, in the same order, as trailing arguments:
 *
 *     tl_metrics_counter_add(applied, 1, "Deployment", "success");
 *
 * A series (one combination of label values) is created the first time it is seen. Past
 * max_series series in one metric, observations of new combinations are dropped and counted in
 * tailor_metrics_dropped_series_total{metric="<name>"}, so a label fed by user data cannot grow
 * memory without bound. Once a series exists, an observation allocates nothing.
 *
 * Not thread-safe: everything runs on the one event loop. The variadic observation functions read
 * exactly as many `const char *` arguments as the metric has label names; a NULL value counts as
 * "". The `_v` forms take an array instead. Label values are borrowed for the call (copied when a
 * series is created). A NULL metric handle (its registration failed) makes every call a no-op.
 */

#define TL_METRICS_MAX_LABELS   8     /* label names per metric */
#define TL_METRICS_MAX_BUCKETS  64    /* histogram upper bounds, +Inf excluded */
#define TL_METRICS_MAX_VALUE    1024  /* bytes in one label value; longer ones are dropped */
#define TL_METRICS_MAX_SERIES   10000 /* default cap on series per metric */
#define TL_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct tl_metrics;
struct tl_counter;
struct tl_gauge;
struct tl_metrics_hist;
struct tl_httpd;

/*
 * Creates an empty registry (it already holds tailor_metrics_dropped_series_total). max_series is
 * the cap on series per metric; 0 means TL_METRICS_MAX_SERIES. Returns NULL when out of memory.
 * Caller frees with tl_metrics_destroy.
 */
struct tl_metrics *tl_metrics_create(size_t max_series);

/* Frees the registry and every metric handle it gave out. NULL is a no-op. */
void tl_metrics_destroy(struct tl_metrics *m);

/*
 * Register a metric. name must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]* without a leading "__" (and not "le" for histograms), without
 * duplicates; help must not be empty. labels is a NULL-terminated array, or NULL for none; names
 * and help are copied. TL_EINVAL names the rule broken in the log; TL_ECONFLICT when the name, or
 * one of the sample names it produces (a histogram's _bucket, _sum, _count), is taken. On success
 * *out is borrowed from the registry, valid until tl_metrics_destroy. Counters should end in
 * _total (promtool insists). A metric without labels is exposed from the start with value 0.
 */
enum tl_err tl_metrics_counter(struct tl_metrics *m, const char *name, const char *help,
                               const char *const *labels, struct tl_counter **out);
enum tl_err tl_metrics_gauge(struct tl_metrics *m, const char *name, const char *help,
                             const char *const *labels, struct tl_gauge **out);
/*
 * bounds: nbounds strictly increasing finite upper bounds (1..TL_METRICS_MAX_BUCKETS); the +Inf
 * bucket is implicit (a trailing +Inf in bounds is accepted and ignored). Copied.
 */
enum tl_err tl_metrics_histogram(struct tl_metrics *m, const char *name, const char *help,
                                 const char *const *labels, const double *bounds, size_t nbounds,
                                 struct tl_metrics_hist **out);

/*
 * Fills out[0..count) with start, start*factor, ... (start > 0, factor > 1, count <=
 * TL_METRICS_MAX_BUCKETS). TL_EINVAL otherwise, and out is left alone.
 */
enum tl_err tl_metrics_exponential_bounds(double start, double factor, size_t count, double *out);

/* Adds v (>= 0; a negative or NaN v is ignored: counters only go up). */
void tl_metrics_counter_add(struct tl_counter *c, double v, ...);
void tl_metrics_counter_add_v(struct tl_counter *c, double v, const char *const *values);

void tl_metrics_gauge_set(struct tl_gauge *g, double v, ...);
void tl_metrics_gauge_set_v(struct tl_gauge *g, double v, const char *const *values);
void tl_metrics_gauge_add(struct tl_gauge *g, double v, ...);
void tl_metrics_gauge_add_v(struct tl_gauge *g, double v, const char *const *values);

/* Counts v in the first bucket whose bound is >= v. NaN is ignored. */
void tl_metrics_histogram_observe(struct tl_metrics_hist *h, double v, ...);
void tl_metrics_histogram_observe_v(struct tl_metrics_hist *h, double v, const char *const *values);

/*
 * Forget one series (e.g. the workload it described was deleted), so it is no longer exposed.
 * Returns TL_ENOTFOUND when there is no such series.
 */
enum tl_err tl_metrics_counter_remove(struct tl_counter *c, ...);
enum tl_err tl_metrics_gauge_remove(struct tl_gauge *g, ...);
enum tl_err tl_metrics_histogram_remove(struct tl_metrics_hist *h, ...);

/* Forgets every series of g (for gauges rebuilt from scratch on each pass). */
void tl_metrics_gauge_clear(struct tl_gauge *g);

/*
 * Current value of one series, for tests and for code that reads its own gauges. TL_ENOTFOUND
 * when the series does not exist; *out is written only on success.
 */
enum tl_err tl_metrics_counter_get(const struct tl_counter *c, double *out, ...);
enum tl_err tl_metrics_gauge_get(const struct tl_gauge *g, double *out, ...);

/* Series currently held by the metric registered under name; 0 when there is no such metric. */
size_t tl_metrics_series_count(const struct tl_metrics *m, const char *name);

/*
 * Renders the whole registry in the Prometheus text format 0.0.4: metrics sorted by name, each
 * with # HELP and # TYPE, series sorted by label values. *out is NUL-terminated and caller-freed;
 * *len excludes the NUL. TL_ENOMEM on allocation failure, TL_ETOOBIG past 256 MiB.
 */
enum tl_err tl_metrics_render(struct tl_metrics *m, char **out, size_t *len);

/*
 * Serves the registry at GET /metrics on h (TL_METRICS_CONTENT_TYPE, rendered per scrape).
 * m is borrowed and must outlive h. TL_ECONFLICT when /metrics is already routed.
 */
enum tl_err tl_metrics_serve(struct tl_httpd *h, struct tl_metrics *m);

#endif
