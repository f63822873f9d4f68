#include "workqueue.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ratelimit.h"

#define KEY_MAX         4096
#define NOT_IN_HEAP     SIZE_MAX
#define INITIAL_BUCKETS 64

/*
 * One record per key the queue knows about. A key lives here while it is dirty (queued or waiting
 * for `done`), processing, waiting in the delay heap, or has retry history; once none of those
 * holds, the record is freed (release_if_idle).
 */
struct entry {
    struct entry *chain;      /* next in the hash bucket */
    struct entry *next_ready; /* next in the FIFO of ready keys */
    struct entry *prev_proc;  /* processing list, oldest first */
    struct entry *next_proc;
    uint64_t hash;
    size_t heap_index; /* NOT_IN_HEAP unless waiting for a deadline */
    uint64_t heap_seq; /* insertion order, so equal deadlines leave first in, first out */
    double deadline;
    double added_at;   /* when the key last became dirty */
    double started_at; /* when `get` handed it out */
    struct tl_backoff backoff;
    unsigned requeues;
    bool dirty;
    bool processing;
    char key[];
};

struct tl_workqueue {
    struct ev_loop *loop;
    struct tl_workqueue_config cfg;

    struct entry **buckets;
    size_t nbuckets;
    size_t count;

    struct entry *ready_head;
    struct entry *ready_tail;
    size_t depth;

    struct entry *proc_head;
    struct entry *proc_tail;
    size_t nprocessing;

    struct entry **heap;
    size_t heap_len;
    size_t heap_cap;
    uint64_t heap_seq;

    struct tl_token_bucket bucket;

    ev_timer timer;
    ev_prepare prepare;
    ev_idle idle;
    tl_workqueue_fn fn;
    void *fn_ctx;
    bool started;
    bool shut;

    uint64_t adds_total;
    uint64_t retries_total;
    double latency_sum;
    uint64_t latency_count;
    double work_sum;
    uint64_t work_count;
};

/*
 * Not ev_now(): that follows the wall clock, which can jump, and is cached for a whole loop
 * iteration, which would blur the latency metrics. The timer is armed with relative delays, so
 * the two clocks never need to agree.
 */
static double now_of(const struct tl_workqueue *q)
{
    if (q->cfg.clock)
        return q->cfg.clock(q->cfg.clock_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* FNV-1a, 64-bit (Fowler, Noll, Vo). */
static uint64_t hash_key(const char *key)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static enum tl_err check_key(const char *key)
{
    if (!key || !*key)
        return TL_EINVAL;
    if (strnlen(key, KEY_MAX + 1) > KEY_MAX)
        return TL_ETOOBIG;
    return TL_OK;
}

static struct entry *find(const struct tl_workqueue *q, const char *key, uint64_t hash)
{
    for (struct entry *e = q->buckets[hash & (q->nbuckets - 1)]; e; e = e->chain) {
        if (e->hash == hash && strcmp(e->key, key) == 0)
            return e;
    }
    return NULL;
}

/* Doubles the bucket array once the table holds one entry per bucket; a failure keeps the old. */
static void maybe_grow(struct tl_workqueue *q)
{
    if (q->count < q->nbuckets || q->nbuckets > SIZE_MAX / 2 / sizeof(struct entry *))
        return;
    size_t nbuckets = q->nbuckets * 2;
    struct entry **buckets = calloc(nbuckets, sizeof(struct entry *));
    if (!buckets)
        return;
    for (size_t i = 0; i < q->nbuckets; i++) {
        struct entry *e = q->buckets[i];
        while (e) {
            struct entry *next = e->chain;
            size_t slot = e->hash & (nbuckets - 1);
            e->chain = buckets[slot];
            buckets[slot] = e;
            e = next;
        }
    }
    free(q->buckets);
    q->buckets = buckets;
    q->nbuckets = nbuckets;
}

static struct entry *find_or_create(struct tl_workqueue *q, const char *key)
{
    uint64_t hash = hash_key(key);
    struct entry *e = find(q, key, hash);
    if (e)
        return e;
    size_t len = strlen(key);
    e = calloc(1, sizeof(*e) + len + 1);
    if (!e)
        return NULL;
    memcpy(e->key, key, len + 1);
    e->hash = hash;
    e->heap_index = NOT_IN_HEAP;
    /* Decorrelate the jitter of keys that fail together. */
    tl_backoff_init(&e->backoff, q->cfg.backoff_base, q->cfg.backoff_max, q->cfg.seed ^ hash);
    size_t slot = hash & (q->nbuckets - 1);
    e->chain = q->buckets[slot];
    q->buckets[slot] = e;
    q->count++;
    maybe_grow(q);
    return e;
}

static void release_if_idle(struct tl_workqueue *q, struct entry *e)
{
    if (e->dirty || e->processing || e->heap_index != NOT_IN_HEAP || e->requeues > 0)
        return;
    struct entry **link = &q->buckets[e->hash & (q->nbuckets - 1)];
    while (*link != e)
        link = &(*link)->chain;
    *link = e->chain;
    q->count--;
    free(e);
}

static void push_ready(struct tl_workqueue *q, struct entry *e)
{
    e->next_ready = NULL;
    if (q->ready_tail)
        q->ready_tail->next_ready = e;
    else
        q->ready_head = e;
    q->ready_tail = e;
    q->depth++;
}

static struct entry *pop_ready(struct tl_workqueue *q)
{
    struct entry *e = q->ready_head;
    if (!e)
        return NULL;
    q->ready_head = e->next_ready;
    if (!q->ready_head)
        q->ready_tail = NULL;
    e->next_ready = NULL;
    q->depth--;
    return e;
}

/* client-go's Add: a dirty key is already on its way; a processing one is re-queued by `done`. */
static void mark_dirty(struct tl_workqueue *q, struct entry *e, double now)
{
    if (e->dirty)
        return;
    e->dirty = true;
    e->added_at = now;
    q->adds_total++;
    if (!e->processing)
        push_ready(q, e);
}

static bool heap_less(const struct entry *a, const struct entry *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return a->heap_seq < b->heap_seq;
}

static void heap_place(struct tl_workqueue *q, size_t i, struct entry *e)
{
    q->heap[i] = e;
    e->heap_index = i;
}

static void sift_up(struct tl_workqueue *q, size_t i)
{
    struct entry *e = q->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(e, q->heap[parent]))
            break;
        heap_place(q, i, q->heap[parent]);
        i = parent;
    }
    heap_place(q, i, e);
}

static void sift_down(struct tl_workqueue *q, size_t i)
{
    struct entry *e = q->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= q->heap_len)
            break;
        if (child + 1 < q->heap_len && heap_less(q->heap[child + 1], q->heap[child]))
            child++;
        if (!heap_less(q->heap[child], e))
            break;
        heap_place(q, i, q->heap[child]);
        i = child;
    }
    heap_place(q, i, e);
}

static enum tl_err heap_push(struct tl_workqueue *q, struct entry *e)
{
    if (q->heap_len == q->heap_cap) {
        size_t cap = q->heap_cap ? q->heap_cap * 2 : 16;
        if (cap > SIZE_MAX / sizeof(struct entry *))
            return TL_ENOMEM;
        struct entry **heap = realloc(q->heap, cap * sizeof(struct entry *));
        if (!heap)
            return TL_ENOMEM;
        q->heap = heap;
        q->heap_cap = cap;
    }
    e->heap_seq = q->heap_seq++;
    heap_place(q, q->heap_len++, e);
    sift_up(q, e->heap_index);
    return TL_OK;
}

static struct entry *heap_pop(struct tl_workqueue *q)
{
    struct entry *top = q->heap[0];
    q->heap_len--;
    if (q->heap_len > 0) {
        heap_place(q, 0, q->heap[q->heap_len]);
        sift_down(q, 0);
    }
    top->heap_index = NOT_IN_HEAP;
    return top;
}

/* One timer for the earliest deadline; stopped before it is re-armed, as libev requires. */
static void arm_timer(struct tl_workqueue *q, double now)
{
    if (!q->loop)
        return;
    ev_timer_stop(q->loop, &q->timer);
    if (q->heap_len == 0 || q->shut)
        return;
    double delay = q->heap[0]->deadline - now;
    ev_timer_set(&q->timer, delay > 0 ? delay : 0, 0.);
    ev_timer_start(q->loop, &q->timer);
}

static bool can_hand_out(const struct tl_workqueue *q)
{
    return q->depth > 0 && (q->cfg.max_processing == 0 || q->nprocessing < q->cfg.max_processing);
}

/*
 * The idle watcher does no work: while it is active the loop polls without blocking and stays
 * alive, so the prepare watcher gets to run the next batch on the next iteration.
 */
static void update_idle(struct tl_workqueue *q)
{
    if (!q->started)
        return;
    if (!q->shut && can_hand_out(q))
        ev_idle_start(q->loop, &q->idle);
    else
        ev_idle_stop(q->loop, &q->idle);
}

static void promote_due(struct tl_workqueue *q)
{
    if (q->heap_len == 0)
        return;
    double now = now_of(q);
    bool moved = false;
    while (q->heap_len > 0 && q->heap[0]->deadline <= now) {
        mark_dirty(q, heap_pop(q), now);
        moved = true;
    }
    if (moved) {
        arm_timer(q, now);
        update_idle(q);
    }
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tl_workqueue *q = w->data;
    promote_due(q);
    /*
     * libev counts a delay from the start of the loop iteration that armed it, so it can fire a
     * little before our clock reaches the deadline; then it is armed again for the rest.
     */
    arm_timer(q, now_of(q));
}

static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    struct tl_workqueue *q = w->data;
    /*
     * Only keys ready when the batch starts: one a reconcile queues again (it re-added itself, or
     * was changed while processing) waits for the next iteration, so the cache can catch up first
     * and a key cannot spin inside one batch.
     */
    promote_due(q);
    size_t n = q->depth < q->cfg.batch ? q->depth : q->cfg.batch;
    for (size_t i = 0; i < n; i++) {
        const char *key = NULL;
        if (tl_workqueue_get(q, &key) != TL_OK)
            break;
        q->fn(q, key, q->fn_ctx);
    }
    update_idle(q);
}

static void idle_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
}

struct tl_workqueue *tl_workqueue_create(struct ev_loop *loop,
                                         const struct tl_workqueue_config *config)
{
    struct tl_workqueue *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    if (config)
        q->cfg = *config;
    if (q->cfg.backoff_base <= 0)
        q->cfg.backoff_base = 0.005;
    if (q->cfg.backoff_max <= 0)
        q->cfg.backoff_max = 1000;
    if (q->cfg.qps == 0)
        q->cfg.qps = 10;
    if (q->cfg.burst <= 0)
        q->cfg.burst = 100;
    if (q->cfg.batch == 0)
        q->cfg.batch = 32;
    q->loop = loop;
    q->nbuckets = INITIAL_BUCKETS;
    q->buckets = calloc(q->nbuckets, sizeof(struct entry *));
    if (!q->buckets) {
        free(q);
        return NULL;
    }
    tl_token_bucket_init(&q->bucket, q->cfg.qps, q->cfg.burst, now_of(q));
    ev_timer_init(&q->timer, timer_cb, 0., 0.);
    q->timer.data = q;
    ev_prepare_init(&q->prepare, prepare_cb);
    q->prepare.data = q;
    ev_idle_init(&q->idle, idle_cb);
    q->idle.data = q;
    return q;
}

static void stop_watchers(struct tl_workqueue *q)
{
    if (!q->loop)
        return;
    ev_timer_stop(q->loop, &q->timer);
    if (q->started) {
        ev_idle_stop(q->loop, &q->idle);
        /* Undo the ev_unref of tl_workqueue_start before stopping, as libev requires. */
        ev_ref(q->loop);
        ev_prepare_stop(q->loop, &q->prepare);
        q->started = false;
    }
}

void tl_workqueue_destroy(struct tl_workqueue *q)
{
    if (!q)
        return;
    stop_watchers(q);
    for (size_t i = 0; i < q->nbuckets; i++) {
        struct entry *e = q->buckets[i];
        while (e) {
            struct entry *next = e->chain;
            free(e);
            e = next;
        }
    }
    free(q->buckets);
    free(q->heap);
    free(q);
}

enum tl_err tl_workqueue_add(struct tl_workqueue *q, const char *key)
{
    enum tl_err result = check_key(key);
    if (result != TL_OK)
        return result;
    if (q->shut)
        return TL_ESTATE;
    struct entry *e = find_or_create(q, key);
    if (!e)
        return TL_ENOMEM;
    mark_dirty(q, e, now_of(q));
    update_idle(q);
    return TL_OK;
}

/* Delays an entry that exists; frees it again if it was new and the heap cannot grow. */
static enum tl_err delay_entry(struct tl_workqueue *q, struct entry *e, double seconds)
{
    double now = now_of(q);
    double deadline = now + seconds;
    if (e->heap_index != NOT_IN_HEAP) {
        /* client-go's delaying queue keeps the earlier deadline of a key already waiting. */
        if (deadline >= e->deadline)
            return TL_OK;
        e->deadline = deadline;
        sift_up(q, e->heap_index);
    }
    else {
        e->deadline = deadline;
        enum tl_err result = heap_push(q, e);
        if (result != TL_OK) {
            release_if_idle(q, e);
            return result;
        }
    }
    if (e->heap_index == 0)
        arm_timer(q, now);
    return TL_OK;
}

enum tl_err tl_workqueue_add_after(struct tl_workqueue *q, const char *key, double seconds)
{
    if (seconds <= 0)
        return tl_workqueue_add(q, key);
    enum tl_err result = check_key(key);
    if (result != TL_OK)
        return result;
    if (q->shut)
        return TL_ESTATE;
    struct entry *e = find_or_create(q, key);
    if (!e)
        return TL_ENOMEM;
    return delay_entry(q, e, seconds);
}

/*
 * Reserves a token: when none is free, the token that frees up after `wait` is claimed now (the
 * bucket goes into debt), so the next caller waits one token longer, as golang.org/x/time/rate's
 * Reserve does for client-go's BucketRateLimiter. Without the debt a burst of retries would all
 * wait the same short time and then fire together.
 */
static double bucket_reserve(struct tl_token_bucket *bucket, double now)
{
    double wait = tl_token_bucket_take(bucket, now);
    if (wait > 0)
        bucket->tokens -= 1;
    return wait;
}

enum tl_err tl_workqueue_add_rate_limited(struct tl_workqueue *q, const char *key, double *delay)
{
    enum tl_err result = check_key(key);
    if (result != TL_OK)
        return result;
    if (q->shut)
        return TL_ESTATE;
    struct entry *e = find_or_create(q, key);
    if (!e)
        return TL_ENOMEM;
    /* client-go's MaxOfRateLimiter over the per-key and the overall limiter. */
    double per_key = tl_backoff_next(&e->backoff);
    double global = bucket_reserve(&q->bucket, now_of(q));
    double wait = per_key > global ? per_key : global;
    if (e->requeues < UINT_MAX)
        e->requeues++;
    q->retries_total++;
    result = delay_entry(q, e, wait);
    if (result != TL_OK)
        return result;
    if (delay)
        *delay = wait;
    return TL_OK;
}

void tl_workqueue_forget(struct tl_workqueue *q, const char *key)
{
    if (check_key(key) != TL_OK)
        return;
    struct entry *e = find(q, key, hash_key(key));
    if (!e)
        return;
    e->requeues = 0;
    tl_backoff_reset(&e->backoff);
    release_if_idle(q, e);
}

unsigned tl_workqueue_num_requeues(const struct tl_workqueue *q, const char *key)
{
    if (check_key(key) != TL_OK)
        return 0;
    const struct entry *e = find(q, key, hash_key(key));
    return e ? e->requeues : 0;
}

enum tl_err tl_workqueue_get(struct tl_workqueue *q, const char **key)
{
    if (q->shut)
        return TL_ESTATE;
    promote_due(q);
    if (!can_hand_out(q))
        return TL_ENOTFOUND;
    struct entry *e = pop_ready(q);
    double now = now_of(q);
    e->dirty = false;
    e->processing = true;
    e->started_at = now;
    e->next_proc = NULL;
    e->prev_proc = q->proc_tail;
    if (q->proc_tail)
        q->proc_tail->next_proc = e;
    else
        q->proc_head = e;
    q->proc_tail = e;
    q->nprocessing++;
    q->latency_sum += now - e->added_at;
    q->latency_count++;
    *key = e->key;
    return TL_OK;
}

enum tl_err tl_workqueue_done(struct tl_workqueue *q, const char *key)
{
    if (check_key(key) != TL_OK)
        return TL_EINVAL;
    struct entry *e = find(q, key, hash_key(key));
    if (!e || !e->processing)
        return TL_ENOTFOUND;
    double now = now_of(q);
    e->processing = false;
    if (e->prev_proc)
        e->prev_proc->next_proc = e->next_proc;
    else
        q->proc_head = e->next_proc;
    if (e->next_proc)
        e->next_proc->prev_proc = e->prev_proc;
    else
        q->proc_tail = e->prev_proc;
    e->prev_proc = e->next_proc = NULL;
    q->nprocessing--;
    q->work_sum += now - e->started_at;
    q->work_count++;
    if (e->dirty) {
        if (q->shut)
            e->dirty = false;
        else
            push_ready(q, e);
    }
    /* `key` may be e->key: it is not used past this point. */
    release_if_idle(q, e);
    update_idle(q);
    return TL_OK;
}

enum tl_err tl_workqueue_start(struct tl_workqueue *q, tl_workqueue_fn fn, void *ctx)
{
    if (!q->loop || !fn || q->shut || q->started)
        return TL_ESTATE;
    q->fn = fn;
    q->fn_ctx = ctx;
    ev_prepare_start(q->loop, &q->prepare);
    /* The prepare watcher alone must not keep ev_run going; ready keys keep it via the idle. */
    ev_unref(q->loop);
    q->started = true;
    update_idle(q);
    return TL_OK;
}

void tl_workqueue_shutdown(struct tl_workqueue *q)
{
    if (q->shut)
        return;
    q->shut = true;
    stop_watchers(q);
    while (q->heap_len > 0)
        release_if_idle(q, heap_pop(q));
    struct entry *e;
    while ((e = pop_ready(q))) {
        e->dirty = false;
        release_if_idle(q, e);
    }
}

bool tl_workqueue_shutting_down(const struct tl_workqueue *q)
{
    return q->shut;
}

size_t tl_workqueue_len(struct tl_workqueue *q)
{
    promote_due(q);
    return q->depth;
}

enum tl_err tl_workqueue_next_delay(struct tl_workqueue *q, double *seconds)
{
    promote_due(q);
    if (q->heap_len == 0)
        return TL_ENOTFOUND;
    double wait = q->heap[0]->deadline - now_of(q);
    *seconds = wait > 0 ? wait : 0;
    return TL_OK;
}

void tl_workqueue_metrics_get(struct tl_workqueue *q, struct tl_workqueue_metrics *out)
{
    promote_due(q);
    double now = now_of(q);
    memset(out, 0, sizeof(*out));
    out->depth = q->depth;
    out->processing = q->nprocessing;
    out->delayed = q->heap_len;
    out->adds_total = q->adds_total;
    out->retries_total = q->retries_total;
    out->queue_latency_sum = q->latency_sum;
    out->queue_latency_count = q->latency_count;
    out->work_duration_sum = q->work_sum;
    out->work_duration_count = q->work_count;
    /* The processing list is in `get` order, so its head has run longest. */
    if (q->proc_head)
        out->longest_running = now - q->proc_head->started_at;
    for (const struct entry *e = q->proc_head; e; e = e->next_proc)
        out->unfinished_work += now - e->started_at;
}
