/* workqueue: a deduplicating key queue with delayed and rate-limited adds, drained on the loop. */
#ifndef TL_WORKQUEUE_H
#define TL_WORKQUEUE_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/*
 * The semantics of client-go's util/workqueue, for a single-threaded loop:
 * - a key waiting in the queue is there once: adding it again is a no-op (bursts collapse);
 * - a key is never handed out twice at once: `get` moves it to the processing set, and an `add`
 *   while it is processing only marks it dirty, so it comes back once `done` is called;
 * - otherwise keys come out first in, first out.
 * Keys are strings (e.g. "Deployment/shop/web"); the queue keeps its own copies.
 */
struct tl_workqueue;

/* Seconds on any monotonic origin; lets tests drive time without sleeping. */
typedef double (*tl_workqueue_clock_fn)(void *ctx);

/* Zero fields take the defaults, which are client-go's DefaultControllerRateLimiter. */
struct tl_workqueue_config {
    double backoff_base;     /* first per-key retry delay, seconds; default 0.005 */
    double backoff_max;      /* cap on the per-key retry delay, seconds; default 1000 */
    double qps;              /* global retry rate; default 10; negative means unlimited */
    double burst;            /* global retry burst; default 100 */
    unsigned batch;          /* keys handed to the drain callback per loop iteration; default 32 */
    unsigned max_processing; /* keys processing at once (async reconciles); default 0 = no cap */
    tl_workqueue_clock_fn clock; /* NULL: CLOCK_MONOTONIC */
    void *clock_ctx;             /* borrowed, passed to clock */
    uint64_t seed;               /* jitter seed for the per-key backoff; 0 picks a fixed one */
};

/*
 * Counters and gauges for /metrics, named after client-go's workqueue metrics. Latency is from
 * the add that made a key dirty to the `get` that handed it out; work time is `get` to `done`.
 */
struct tl_workqueue_metrics {
    size_t depth;             /* keys ready to be handed out */
    size_t processing;        /* keys handed out and not yet done */
    size_t delayed;           /* keys waiting for an add_after deadline */
    uint64_t adds_total;      /* adds that made a key dirty (collapsed duplicates excluded) */
    uint64_t retries_total;   /* add_rate_limited calls */
    double queue_latency_sum; /* seconds, over queue_latency_count gets */
    uint64_t queue_latency_count;
    double work_duration_sum; /* seconds, over work_duration_count dones */
    uint64_t work_duration_count;
    double longest_running; /* seconds the oldest key still processing has run; 0 if none */
    double unfinished_work; /* seconds summed over all keys still processing */
};

/*
 * Creates a queue. `loop` (borrowed, must outlive the queue) may be NULL: delayed keys then become
 * ready only when get, len, next_delay or metrics_get look at the clock (which is what unit tests
 * want), and tl_workqueue_start is unavailable. With a loop, one ev_timer moves them in on time.
 * `config` may be NULL for all defaults; it is copied. Returns NULL when out of memory. Caller
 * frees with tl_workqueue_destroy.
 */
struct tl_workqueue *tl_workqueue_create(struct ev_loop *loop,
                                         const struct tl_workqueue_config *config);

/*
 * Stops the loop watchers and frees every key, queued, delayed or processing. Keys borrowed from
 * `get` become invalid. NULL is a no-op.
 */
void tl_workqueue_destroy(struct tl_workqueue *q);

/*
 * Queues `key` (borrowed; copied). TL_EINVAL for NULL or "", TL_ETOOBIG past 4096 bytes,
 * TL_ESTATE after shutdown, TL_ENOMEM.
 */
enum tl_err tl_workqueue_add(struct tl_workqueue *q, const char *key);

/*
 * Queues `key` once `seconds` have passed (at once if <= 0). A key already waiting keeps the
 * earlier of its two deadlines. Errors as tl_workqueue_add.
 */
enum tl_err tl_workqueue_add_after(struct tl_workqueue *q, const char *key, double seconds);

/*
 * Queues `key` after the larger of its own exponential backoff (which this call advances) and
 * the wait for a token of the global bucket (which this call reserves). Writes the chosen delay
 * to *delay when `delay` is not NULL and the call succeeds. Errors as tl_workqueue_add.
 */
enum tl_err tl_workqueue_add_rate_limited(struct tl_workqueue *q, const char *key, double *delay);

/* Resets `key`'s backoff after a success; does not remove it from the queue. */
void tl_workqueue_forget(struct tl_workqueue *q, const char *key);

/* How many times `key` was rate-limited since it was last forgotten. */
unsigned tl_workqueue_num_requeues(const struct tl_workqueue *q, const char *key);

/*
 * Hands out the next ready key and marks it processing. *key is borrowed: valid until
 * tl_workqueue_done for it (or destroy). TL_ENOTFOUND when no key is ready or max_processing keys
 * are processing, TL_ESTATE after shutdown.
 */
enum tl_err tl_workqueue_get(struct tl_workqueue *q, const char **key);

/*
 * Ends processing of `key` (the borrowed pointer from get, or an equal string). A key added again
 * while it was processing is queued again now. TL_ENOTFOUND if `key` is not processing.
 */
enum tl_err tl_workqueue_done(struct tl_workqueue *q, const char *key);

/*
 * Called with each key handed out by the drain. It must call tl_workqueue_done for the key, now
 * or later (after an asynchronous request); until then the key stays processing.
 */
typedef void (*tl_workqueue_fn)(struct tl_workqueue *q, const char *key, void *ctx);

/*
 * Drains the queue on the loop: each loop iteration hands at most `batch` keys to `fn`, all of
 * them ready when the iteration's batch began, so a flood of keys never starves I/O; while keys
 * are ready the loop does not block, and ev_run keeps running. Do not destroy the queue from `fn`
 * (shutdown is fine). `ctx` is borrowed.
 * TL_ESTATE without a loop, after shutdown, or if already started.
 */
enum tl_err tl_workqueue_start(struct tl_workqueue *q, tl_workqueue_fn fn, void *ctx);

/*
 * Stops handing out keys and accepting adds; drops delayed keys and stops the watchers. Keys still
 * processing can be finished with tl_workqueue_done. Idempotent.
 */
void tl_workqueue_shutdown(struct tl_workqueue *q);

bool tl_workqueue_shutting_down(const struct tl_workqueue *q);

/* Keys ready to be handed out (client-go's Len), after moving due delayed keys in. */
size_t tl_workqueue_len(struct tl_workqueue *q);

/*
 * Seconds until the earliest delayed key is due (0 if overdue). TL_ENOTFOUND when nothing waits.
 * *seconds is written only on success.
 */
enum tl_err tl_workqueue_next_delay(struct tl_workqueue *q, double *seconds);

/* Fills *out with the current metrics, after moving due delayed keys in. */
void tl_workqueue_metrics_get(struct tl_workqueue *q, struct tl_workqueue_metrics *out);

#endif
