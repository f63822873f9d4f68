/* prom: the Prometheus HTTP API client (instant and range queries) and its response parser. */
#ifndef TL_PROM_H
#define TL_PROM_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "http.h"

/* One sample of a series. */
struct tl_prom_point {
    double t; /* seconds since the epoch */
    double v; /* NaN and infinities are kept as Prometheus sent them */
};

/* Labels of a series, sorted by name: a compact copy, owned by the result. */
struct tl_prom_label {
    char *name;
    char *value;
};

struct tl_prom_series {
    struct tl_prom_label *labels;
    size_t nlabels;
    struct tl_prom_point *points; /* one for an instant vector */
    size_t npoints;
};

/* A parsed answer: a matrix (range query), a vector (instant query) or a scalar (one series, no
 * labels). */
struct tl_prom_result {
    struct tl_prom_series *series;
    size_t count;
    size_t samples; /* points over all series */
};

/* Borrowed label value of a series, or NULL. */
const char *tl_prom_label(const struct tl_prom_series *series, const char *name);

void tl_prom_result_free(struct tl_prom_result *result);

/*
 * Parses a /api/v1/query or /api/v1/query_range body. A Prometheus error answer gives TL_EINVAL
 * with its errorType and message in errbuf ("bad_data: parse error at char 5: ..."); a body that
 * is not the API's shape names what was wrong ("data.result[3].values[7]: expected [time,
 * \"value\"]"). *out is written only on success; caller frees with tl_prom_result_free.
 */
enum tl_err tl_prom_parse(const char *body, size_t len, struct tl_prom_result *out, char *errbuf,
                          size_t errlen);

struct tl_prom;

struct tl_prom_options {
    const char *url;          /* base URL, e.g. "http://prometheus.monitoring:9090" */
    const char *bearer_token; /* NULL for none; never logged */
    const char *const
        *headers;   /* extra "Name: value" lines (X-Scope-OrgID for Mimir...), NULL-terminated */
    double timeout; /* per attempt, seconds; default 30 */
    size_t max_response;   /* bytes; default 256 MiB */
    unsigned max_attempts; /* attempts for 5xx, 429 and network errors; default 3 */
};

/*
 * Creates a client on the given loop and transport (both borrowed; must outlive it). Options are
 * copied. Returns NULL on allocation failure or when the URL is missing or not http(s).
 */
struct tl_prom *tl_prom_create(struct ev_loop *loop, struct tl_http *http,
                               const struct tl_prom_options *opts);

/* Cancels queries still running (their callbacks are not called) and frees. NULL is a no-op. */
void tl_prom_destroy(struct tl_prom *prom);

/*
 * Called once per query unless the client is destroyed first. On TL_OK, result is owned by the
 * callee (free it with tl_prom_result_free); on error it is NULL and message says what failed
 * (HTTP status, Prometheus' own error text, or the transport error).
 */
typedef void (*tl_prom_done_fn)(void *arg, enum tl_err err, struct tl_prom_result *result,
                                const char *message);

/* Instant query at time t (seconds; <= 0 means now). */
enum tl_err tl_prom_query(struct tl_prom *prom, const char *query, double t, tl_prom_done_fn done,
                          void *arg);

/*
 * Range query from start to end at step seconds. Prometheus refuses more than 11,000 points per
 * series, so longer ranges are split into consecutive windows and the answers joined.
 */
enum tl_err tl_prom_query_range(struct tl_prom *prom, const char *query, double start, double end,
                                double step, tl_prom_done_fn done, void *arg);

/* Counters for /metrics. */
struct tl_prom_stats {
    uint64_t queries; /* HTTP requests sent, retries included */
    uint64_t errors;  /* queries that ended in an error */
    double seconds;   /* total time spent waiting for answers */
    uint64_t bytes;   /* response bytes received */
};

void tl_prom_stats_get(const struct tl_prom *prom, struct tl_prom_stats *out);

#endif
