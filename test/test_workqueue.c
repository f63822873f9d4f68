#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workqueue.h"

/* A clock the tests move by hand, so nothing sleeps. */
struct fake_clock {
    double now;
};

static double fake_now(void *ctx)
{
    return ((struct fake_clock *)ctx)->now;
}

struct fixture {
    struct fake_clock clock;
    struct tl_workqueue *q;
};

static int setup_with(void **state, const struct tl_workqueue_config *base)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->clock.now = 1000;
    struct tl_workqueue_config cfg = {0};
    if (base)
        cfg = *base;
    cfg.clock = fake_now;
    cfg.clock_ctx = &f->clock;
    f->q = tl_workqueue_create(NULL, &cfg);
    assert_non_null(f->q);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, NULL);
}

/* No global limit, so only the per-key backoff decides the delay. */
static int setup_unlimited(void **state)
{
    struct tl_workqueue_config cfg = {.qps = -1, .backoff_base = 0.005, .backoff_max = 1.0};
    return setup_with(state, &cfg);
}

/* A per-key backoff far below a token's worth of time, so only the global bucket shows. */
static int setup_global(void **state)
{
    struct tl_workqueue_config cfg = {.qps = 10, .burst = 100, .backoff_base = 1e-6};
    return setup_with(state, &cfg);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tl_workqueue_destroy(f->q);
    free(f);
    return 0;
}

/* Gets the next key and checks it; returns the borrowed pointer for done. */
static const char *expect_get(struct tl_workqueue *q, const char *want)
{
    const char *key = NULL;
    assert_int_equal(tl_workqueue_get(q, &key), TL_OK);
    assert_string_equal(key, want);
    return key;
}

static void expect_empty(struct tl_workqueue *q)
{
    const char *key = "untouched";
    assert_int_equal(tl_workqueue_get(q, &key), TL_ENOTFOUND);
    assert_string_equal(key, "untouched");
}

static void test_burst_of_adds_is_processed_once(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(tl_workqueue_add(f->q, "Deployment/shop/web"), TL_OK);
    assert_int_equal(tl_workqueue_len(f->q), 1);
    const char *key = expect_get(f->q, "Deployment/shop/web");
    expect_empty(f->q);
    assert_int_equal(tl_workqueue_done(f->q, key), TL_OK);
    expect_empty(f->q);

    struct tl_workqueue_metrics m;
    tl_workqueue_metrics_get(f->q, &m);
    assert_int_equal(m.adds_total, 1);
    assert_int_equal(m.depth, 0);
    assert_int_equal(m.processing, 0);
}

static void test_keys_come_out_in_fifo_order(void **state)
{
    struct fixture *f = *state;
    const char *order[] = {"a", "b", "c", "a", "d", "b"};
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
        assert_int_equal(tl_workqueue_add(f->q, order[i]), TL_OK);
    const char *want[] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < 4; i++)
        tl_workqueue_done(f->q, expect_get(f->q, want[i]));
    expect_empty(f->q);
}

static void test_add_while_processing_requeues_on_done(void **state)
{
    struct fixture *f = *state;
    tl_workqueue_add(f->q, "Pod/shop/web-1");
    const char *key = expect_get(f->q, "Pod/shop/web-1");

    /* The object changed while we reconciled it: it must be looked at again, but not yet. */
    tl_workqueue_add(f->q, "Pod/shop/web-1");
    tl_workqueue_add(f->q, "Pod/shop/web-1");
    assert_int_equal(tl_workqueue_len(f->q), 0);
    expect_empty(f->q);

    assert_int_equal(tl_workqueue_done(f->q, key), TL_OK);
    assert_int_equal(tl_workqueue_len(f->q), 1);
    key = expect_get(f->q, "Pod/shop/web-1");
    assert_int_equal(tl_workqueue_done(f->q, key), TL_OK);
    expect_empty(f->q);
}

static void test_a_key_is_never_processed_twice_at_once(void **state)
{
    struct fixture *f = *state;
    tl_workqueue_add(f->q, "a");
    tl_workqueue_add(f->q, "b");
    const char *a = expect_get(f->q, "a");
    tl_workqueue_add(f->q, "a");
    const char *b = expect_get(f->q, "b");
    /* "a" is dirty but still processing: nothing may hand it out. */
    expect_empty(f->q);
    tl_workqueue_done(f->q, b);
    expect_empty(f->q);
    tl_workqueue_done(f->q, a);
    tl_workqueue_done(f->q, expect_get(f->q, "a"));
    expect_empty(f->q);
}

static void test_done_of_unknown_key_fails(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(tl_workqueue_done(f->q, "never-added"), TL_ENOTFOUND);
    tl_workqueue_add(f->q, "queued");
    /* Queued but not handed out is not processing either. */
    assert_int_equal(tl_workqueue_done(f->q, "queued"), TL_ENOTFOUND);
    const char *key = expect_get(f->q, "queued");
    assert_int_equal(tl_workqueue_done(f->q, key), TL_OK);
    assert_int_equal(tl_workqueue_done(f->q, "queued"), TL_ENOTFOUND);
}

static void test_invalid_keys_are_refused(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(tl_workqueue_add(f->q, NULL), TL_EINVAL);
    assert_int_equal(tl_workqueue_add(f->q, ""), TL_EINVAL);
    assert_int_equal(tl_workqueue_add_after(f->q, "", 1), TL_EINVAL);
    assert_int_equal(tl_workqueue_add_rate_limited(f->q, NULL, NULL), TL_EINVAL);
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, 'k', 4999);
    big[4999] = '\0';
    assert_int_equal(tl_workqueue_add(f->q, big), TL_ETOOBIG);
    free(big);
    assert_int_equal(tl_workqueue_len(f->q), 0);
    tl_workqueue_destroy(NULL);
}

static void test_queue_owns_its_key_copies(void **state)
{
    struct fixture *f = *state;
    char buf[32];
    snprintf(buf, sizeof(buf), "%s", "ConfigMap/ns/x");
    tl_workqueue_add(f->q, buf);
    memset(buf, 'z', sizeof(buf) - 1);
    tl_workqueue_done(f->q, expect_get(f->q, "ConfigMap/ns/x"));
}

static void test_backoff_grows_per_key_and_forget_resets_it(void **state)
{
    struct fixture *f = *state;
    double step = 0.005;
    for (unsigned i = 0; i < 12; i++) {
        double delay = -1;
        assert_int_equal(tl_workqueue_add_rate_limited(f->q, "Deployment/shop/web", &delay), TL_OK);
        double want = step < 1.0 ? step : 1.0;
        /* Equal jitter: between half the exponential step and the whole of it. */
        assert_true(delay >= want / 2 && delay <= want);
        assert_int_equal(tl_workqueue_num_requeues(f->q, "Deployment/shop/web"), i + 1);
        step *= 2;
    }
    /* Another key starts from the bottom of its own backoff. */
    double other = -1;
    tl_workqueue_add_rate_limited(f->q, "Deployment/shop/api", &other);
    assert_true(other >= 0.0025 && other <= 0.005);

    tl_workqueue_forget(f->q, "Deployment/shop/web");
    assert_int_equal(tl_workqueue_num_requeues(f->q, "Deployment/shop/web"), 0);
    double delay = -1;
    tl_workqueue_add_rate_limited(f->q, "Deployment/shop/web", &delay);
    assert_true(delay >= 0.0025 && delay <= 0.005);
    assert_int_equal(tl_workqueue_num_requeues(f->q, "Deployment/shop/api"), 1);
    assert_int_equal(tl_workqueue_num_requeues(f->q, "never-seen"), 0);

    struct tl_workqueue_metrics m;
    tl_workqueue_metrics_get(f->q, &m);
    assert_int_equal(m.retries_total, 14);
}

static void test_rate_limited_key_is_ready_after_its_delay(void **state)
{
    struct fixture *f = *state;
    double delay = 0;
    /* A reconcile that keeps failing: each retry comes back after its delay and fails again. */
    for (int i = 0; i < 5; i++) {
        tl_workqueue_add_rate_limited(f->q, "k", &delay);
        f->clock.now += delay;
        tl_workqueue_done(f->q, expect_get(f->q, "k"));
    }
    tl_workqueue_add_rate_limited(f->q, "k", &delay);
    /* The 6th retry waits 5 ms * 2^5 with jitter: between 80 and 160 ms. */
    assert_true(delay >= 0.08 && delay <= 0.16);
    expect_empty(f->q);
    double wait = -1;
    assert_int_equal(tl_workqueue_next_delay(f->q, &wait), TL_OK);
    assert_float_equal(wait, delay, 1e-9);
    f->clock.now += delay / 2;
    expect_empty(f->q);
    f->clock.now += delay / 2 + 1e-9; /* past any rounding of the two halves */
    const char *key = expect_get(f->q, "k");
    assert_int_equal(tl_workqueue_next_delay(f->q, &wait), TL_ENOTFOUND);
    tl_workqueue_done(f->q, key);
    /* Done is not success: the retry history stays until forget. */
    assert_int_equal(tl_workqueue_num_requeues(f->q, "k"), 6);
}

static void test_global_bucket_limits_retries_across_keys(void **state)
{
    struct fixture *f = *state;
    char key[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        double delay = -1;
        tl_workqueue_add_rate_limited(f->q, key, &delay);
        assert_true(delay <= 1e-6);
    }
    /* The burst is spent: each further retry waits one more token (0.1 s at 10 qps). */
    for (int i = 1; i <= 5; i++) {
        snprintf(key, sizeof(key), "late%d", i);
        double delay = -1;
        tl_workqueue_add_rate_limited(f->q, key, &delay);
        assert_float_equal(delay, 0.1 * i, 1e-9);
    }
    /* One second refills ten tokens, five of which pay back the reservations. */
    f->clock.now += 1.0;
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof(key), "next%d", i);
        double delay = -1;
        tl_workqueue_add_rate_limited(f->q, key, &delay);
        assert_true(delay <= 1e-6);
    }
    double delay = -1;
    tl_workqueue_add_rate_limited(f->q, "over", &delay);
    assert_float_equal(delay, 0.1, 1e-9);
}

static void test_add_after_orders_by_deadline(void **state)
{
    struct fixture *f = *state;
    tl_workqueue_add_after(f->q, "c", 3);
    tl_workqueue_add_after(f->q, "a", 1);
    tl_workqueue_add_after(f->q, "b", 2);
    tl_workqueue_add_after(f->q, "d", 2);
    tl_workqueue_add_after(f->q, "now", 0);
    tl_workqueue_done(f->q, expect_get(f->q, "now"));
    f->clock.now += 0.5;
    expect_empty(f->q);
    f->clock.now += 0.5;
    tl_workqueue_done(f->q, expect_get(f->q, "a"));
    expect_empty(f->q);
    f->clock.now += 1.5;
    /* Equal deadlines keep the order they were added in. */
    tl_workqueue_done(f->q, expect_get(f->q, "b"));
    tl_workqueue_done(f->q, expect_get(f->q, "d"));
    expect_empty(f->q);
    f->clock.now += 10;
    tl_workqueue_done(f->q, expect_get(f->q, "c"));
    expect_empty(f->q);
}

static void test_add_after_keeps_the_earlier_deadline(void **state)
{
    struct fixture *f = *state;
    tl_workqueue_add_after(f->q, "late-then-soon", 5);
    tl_workqueue_add_after(f->q, "late-then-soon", 1);
    tl_workqueue_add_after(f->q, "soon-then-late", 1);
    tl_workqueue_add_after(f->q, "soon-then-late", 5);
    f->clock.now += 1;
    assert_int_equal(tl_workqueue_len(f->q), 2);
    tl_workqueue_done(f->q, expect_get(f->q, "late-then-soon"));
    tl_workqueue_done(f->q, expect_get(f->q, "soon-then-late"));
    f->clock.now += 10;
    /* Each key waited once; the later deadlines were dropped. */
    expect_empty(f->q);
}

static void test_delayed_add_of_queued_key_collapses(void **state)
{
    struct fixture *f = *state;
    tl_workqueue_add(f->q, "k");
    tl_workqueue_add_after(f->q, "k", 1);
    f->clock.now += 2;
    assert_int_equal(tl_workqueue_len(f->q), 1);
    tl_workqueue_done(f->q, expect_get(f->q, "k"));
    expect_empty(f->q);
}

static void test_max_processing_caps_keys_in_flight(void **state)
{
    struct fixture *f = *state;
    tl_workqueue_destroy(f->q);
    struct tl_workqueue_config cfg = {
        .max_processing = 2, .clock = fake_now, .clock_ctx = &f->clock};
    f->q = tl_workqueue_create(NULL, &cfg);
    assert_non_null(f->q);
    tl_workqueue_add(f->q, "a");
    tl_workqueue_add(f->q, "b");
    tl_workqueue_add(f->q, "c");
    const char *a = expect_get(f->q, "a");
    const char *b = expect_get(f->q, "b");
    expect_empty(f->q);
    tl_workqueue_done(f->q, a);
    const char *c = expect_get(f->q, "c");
    tl_workqueue_done(f->q, b);
    tl_workqueue_done(f->q, c);
}

static void test_metrics_measure_latency_and_work(void **state)
{
    struct fixture *f = *state;
    tl_workqueue_add(f->q, "a");
    tl_workqueue_add(f->q, "b");
    f->clock.now += 2;
    const char *a = expect_get(f->q, "a");
    f->clock.now += 1;
    const char *b = expect_get(f->q, "b");
    f->clock.now += 4;

    struct tl_workqueue_metrics m;
    tl_workqueue_metrics_get(f->q, &m);
    assert_int_equal(m.processing, 2);
    assert_int_equal(m.queue_latency_count, 2);
    assert_float_equal(m.queue_latency_sum, 2 + 3, 1e-9);
    assert_float_equal(m.longest_running, 5, 1e-9);
    assert_float_equal(m.unfinished_work, 5 + 4, 1e-9);

    tl_workqueue_done(f->q, a);
    tl_workqueue_metrics_get(f->q, &m);
    /* "b" is now the oldest still running. */
    assert_float_equal(m.longest_running, 4, 1e-9);
    assert_int_equal(m.work_duration_count, 1);
    assert_float_equal(m.work_duration_sum, 5, 1e-9);
    tl_workqueue_done(f->q, b);
    tl_workqueue_metrics_get(f->q, &m);
    assert_float_equal(m.longest_running, 0, 1e-9);
    assert_int_equal(m.processing, 0);

    tl_workqueue_add_after(f->q, "later", 3);
    tl_workqueue_metrics_get(f->q, &m);
    assert_int_equal(m.delayed, 1);
    assert_int_equal(m.depth, 0);
}

static void test_shutdown_refuses_work_and_frees_pending(void **state)
{
    struct fixture *f = *state;
    char key[32];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        tl_workqueue_add(f->q, key);
        snprintf(key, sizeof(key), "d%d", i);
        tl_workqueue_add_after(f->q, key, 1 + i);
        snprintf(key, sizeof(key), "r%d", i);
        tl_workqueue_add_rate_limited(f->q, key, NULL);
    }
    const char *busy = expect_get(f->q, "k0");
    tl_workqueue_add(f->q, "k0");

    tl_workqueue_shutdown(f->q);
    tl_workqueue_shutdown(f->q);
    assert_true(tl_workqueue_shutting_down(f->q));
    assert_int_equal(tl_workqueue_add(f->q, "new"), TL_ESTATE);
    assert_int_equal(tl_workqueue_add_after(f->q, "new", 1), TL_ESTATE);
    assert_int_equal(tl_workqueue_add_rate_limited(f->q, "new", NULL), TL_ESTATE);
    const char *got = NULL;
    assert_int_equal(tl_workqueue_get(f->q, &got), TL_ESTATE);
    f->clock.now += 1000;
    assert_int_equal(tl_workqueue_len(f->q), 0);

    struct tl_workqueue_metrics m;
    tl_workqueue_metrics_get(f->q, &m);
    assert_int_equal(m.delayed, 0);
    assert_int_equal(m.processing, 1);
    /* The reconcile in flight may still finish; it is not queued again. */
    assert_int_equal(tl_workqueue_done(f->q, busy), TL_OK);
    assert_int_equal(tl_workqueue_len(f->q), 0);
    /* teardown destroys the rest; ASan reports anything left behind. */
}

static void test_destroy_frees_keys_in_every_state(void **state)
{
    struct fixture *f = *state;
    tl_workqueue_add(f->q, "processing");
    expect_get(f->q, "processing");
    tl_workqueue_add(f->q, "processing");
    tl_workqueue_add(f->q, "queued");
    tl_workqueue_add_after(f->q, "delayed", 5);
    tl_workqueue_add_rate_limited(f->q, "retrying", NULL);
    char key[32];
    /* Enough keys to make the table grow a few times. */
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "many/%d", i);
        tl_workqueue_add(f->q, key);
    }
    assert_int_equal(tl_workqueue_len(f->q), 1001);
}

/* --- on a real libev loop --- */

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct drain {
    struct tl_workqueue *q;
    char seen[64][32];
    double seen_at[64]; /* CLOCK_MONOTONIC seconds */
    int nseen;
    int requeue_first; /* the callback adds its key again this many times */
    bool hold;         /* do not call done; keep the key processing */
    const char *held[64];
    int nheld;
};

static void drain_cb(struct tl_workqueue *q, const char *key, void *ctx)
{
    struct drain *d = ctx;
    if (d->nseen < 64) {
        snprintf(d->seen[d->nseen], sizeof(d->seen[0]), "%s", key);
        d->seen_at[d->nseen] = mono_now();
    }
    d->nseen++;
    if (d->requeue_first > 0) {
        d->requeue_first--;
        tl_workqueue_add(q, key);
    }
    if (d->hold && d->nheld < 64) {
        d->held[d->nheld++] = key;
        return;
    }
    tl_workqueue_done(q, key);
}

static void test_drain_runs_bounded_batches_per_iteration(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(loop);
    struct tl_workqueue_config cfg = {.batch = 10};
    struct tl_workqueue *q = tl_workqueue_create(loop, &cfg);
    assert_non_null(q);
    char key[32];
    for (int i = 0; i < 95; i++) {
        snprintf(key, sizeof(key), "Pod/ns/p%d", i);
        tl_workqueue_add(q, key);
    }
    struct drain d = {.q = q};
    assert_int_equal(tl_workqueue_start(q, drain_cb, &d), TL_OK);
    assert_int_equal(tl_workqueue_start(q, drain_cb, &d), TL_ESTATE);
    for (int iteration = 1; iteration <= 9; iteration++) {
        ev_run(loop, EVRUN_NOWAIT);
        assert_int_equal(d.nseen, 10 * iteration);
    }
    /* The rest drains, and with nothing left to do ev_run returns by itself. */
    ev_run(loop, 0);
    assert_int_equal(d.nseen, 95);
    assert_string_equal(d.seen[0], "Pod/ns/p0");
    assert_string_equal(d.seen[63], "Pod/ns/p63");
    tl_workqueue_destroy(q);
    ev_loop_destroy(loop);
}

static void test_drain_requeue_from_callback_waits_for_next_iteration(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(loop);
    struct tl_workqueue *q = tl_workqueue_create(loop, NULL);
    assert_non_null(q);
    tl_workqueue_add(q, "k");
    struct drain d = {.q = q, .requeue_first = 3};
    tl_workqueue_start(q, drain_cb, &d);
    ev_run(loop, EVRUN_NOWAIT);
    /* Re-added while processing: queued again by done, but not handed out in the same batch. */
    assert_int_equal(d.nseen, 1);
    ev_run(loop, 0);
    assert_int_equal(d.nseen, 4);
    tl_workqueue_destroy(q);
    ev_loop_destroy(loop);
}

static void test_drain_with_async_done(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(loop);
    struct tl_workqueue *q = tl_workqueue_create(loop, NULL);
    assert_non_null(q);
    struct drain d = {.q = q, .hold = true};
    tl_workqueue_start(q, drain_cb, &d);
    tl_workqueue_add(q, "a");
    tl_workqueue_add(q, "b");
    ev_run(loop, EVRUN_NOWAIT);
    assert_int_equal(d.nheld, 2);
    tl_workqueue_add(q, "a");
    ev_run(loop, EVRUN_NOWAIT);
    /* "a" is still processing (its request is in flight), so it is not handed out again. */
    assert_int_equal(d.nseen, 2);
    d.hold = false;
    tl_workqueue_done(q, d.held[0]);
    ev_run(loop, EVRUN_NOWAIT);
    assert_int_equal(d.nseen, 3);
    assert_string_equal(d.seen[2], "a");
    tl_workqueue_done(q, d.held[1]);
    tl_workqueue_destroy(q);
    ev_loop_destroy(loop);
}

static void test_add_after_on_a_real_loop(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(loop);
    struct tl_workqueue *q = tl_workqueue_create(loop, NULL);
    assert_non_null(q);
    struct drain d = {.q = q};
    tl_workqueue_start(q, drain_cb, &d);
    double start = mono_now();
    tl_workqueue_add_after(q, "c", 0.06);
    tl_workqueue_add_after(q, "a", 0.02);
    tl_workqueue_add_after(q, "b", 0.04);
    /* The timer keeps the loop alive until the last delayed key has been processed. */
    ev_run(loop, 0);
    assert_int_equal(d.nseen, 3);
    assert_string_equal(d.seen[0], "a");
    assert_string_equal(d.seen[1], "b");
    assert_string_equal(d.seen[2], "c");
    /* None before its deadline. */
    assert_true(d.seen_at[0] - start >= 0.02);
    assert_true(d.seen_at[1] - start >= 0.04);
    assert_true(d.seen_at[2] - start >= 0.06);
    tl_workqueue_destroy(q);
    ev_loop_destroy(loop);
}

static void shutdown_cb(struct tl_workqueue *q, const char *key, void *ctx)
{
    int *calls = ctx;
    (*calls)++;
    tl_workqueue_done(q, key);
    tl_workqueue_shutdown(q);
}

static void test_shutdown_from_callback_stops_the_drain(void **state)
{
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(loop);
    struct tl_workqueue *q = tl_workqueue_create(loop, NULL);
    assert_non_null(q);
    tl_workqueue_add(q, "a");
    tl_workqueue_add(q, "b");
    tl_workqueue_add_after(q, "later", 30);
    int calls = 0;
    tl_workqueue_start(q, shutdown_cb, &calls);
    /* Returns at once: no watcher of the queue is left to keep the loop alive. */
    ev_run(loop, 0);
    assert_int_equal(calls, 1);
    assert_int_equal(tl_workqueue_start(q, shutdown_cb, &calls), TL_ESTATE);
    tl_workqueue_destroy(q);
    ev_loop_destroy(loop);
}

static void test_start_needs_a_loop(void **state)
{
    struct fixture *f = *state;
    int calls = 0;
    assert_int_equal(tl_workqueue_start(f->q, shutdown_cb, &calls), TL_ESTATE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_burst_of_adds_is_processed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_come_out_in_fifo_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_while_processing_requeues_on_done, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_key_is_never_processed_twice_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_done_of_unknown_key_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_keys_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_owns_its_key_copies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_grows_per_key_and_forget_resets_it,
                                        setup_unlimited, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limited_key_is_ready_after_its_delay,
                                        setup_unlimited, teardown),
        cmocka_unit_test_setup_teardown(test_global_bucket_limits_retries_across_keys, setup_global,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_add_after_orders_by_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_add_after_keeps_the_earlier_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delayed_add_of_queued_key_collapses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_processing_caps_keys_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_measure_latency_and_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_refuses_work_and_frees_pending, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_destroy_frees_keys_in_every_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_needs_a_loop, setup, teardown),
        cmocka_unit_test(test_drain_runs_bounded_batches_per_iteration),
        cmocka_unit_test(test_drain_requeue_from_callback_waits_for_next_iteration),
        cmocka_unit_test(test_drain_with_async_done),
        cmocka_unit_test(test_add_after_on_a_real_loop),
        cmocka_unit_test(test_shutdown_from_callback_stops_the_drain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
