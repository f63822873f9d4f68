/*
 * End-to-end: the usage collector against a real Prometheus serving e2e/scenarios/small.yaml's
 * history. Skipped unless TAILOR_PROMETHEUS_URL is set; e2e/test_usage_prometheus.py starts the
 * Prometheus (e2e/promlib.py) and writes TAILOR_USAGE_EXPECTED: what the scenario's usage model
 * implies for every workload-container, in lines of this shape:
 *
 *   end <epoch>            history <seconds>          step <seconds>
 *   workload <ns> <kind> <name>
 *   container <ns> <kind> <workload> <container> <pods> <samples> <cpu p95> <memory max>
 *             <oom kills> <oom limit> <throttled ratio or -1>
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <ev.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "pod_owner.h"
#include "prom.h"
#include "usage.h"
#include "usage_collect.h"

#define MAX_WORKLOADS  64
#define MAX_CONTAINERS 64
#define MAX_NAMESPACES 16
#define NAME           128

struct workload {
    char ns[NAME];
    enum tl_workload_kind kind;
    char name[NAME];
};

struct expected {
    char ns[NAME];
    enum tl_workload_kind kind;
    char workload[NAME];
    char container[NAME];
    unsigned pods;
    unsigned long samples;
    double cpu_p95;
    double memory_max;
    unsigned oom_kills;
    double oom_limit;
    double throttled;
};

struct env {
    const char *url;
    double end, history, step;
    struct workload workloads[MAX_WORKLOADS];
    size_t nworkloads;
    struct expected containers[MAX_CONTAINERS];
    size_t ncontainers;
    char namespaces[MAX_NAMESPACES][NAME];
    size_t nnamespaces;
    struct ev_loop *loop;
    struct tl_http *http;
};

static struct env *E;

static bool parse_kind(const char *text, enum tl_workload_kind *out)
{
    static const struct {
        const char *name;
        enum tl_workload_kind kind;
    } kinds[] = {{"Deployment", TL_KIND_DEPLOYMENT},
                 {"StatefulSet", TL_KIND_STATEFULSET},
                 {"DaemonSet", TL_KIND_DAEMONSET}};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(text, kinds[i].name) == 0) {
            *out = kinds[i].kind;
            return true;
        }
    }
    return false;
}

static void add_namespace(struct env *e, const char *ns)
{
    for (size_t i = 0; i < e->nnamespaces; i++) {
        if (strcmp(e->namespaces[i], ns) == 0)
            return;
    }
    assert_true(e->nnamespaces < MAX_NAMESPACES);
    /* memmove: ns may point into e itself. */
    size_t n = strnlen(ns, NAME - 1);
    memmove(e->namespaces[e->nnamespaces], ns, n);
    e->namespaces[e->nnamespaces++][n] = '\0';
}

/* Splits line into at most max space-separated words, in place; returns how many. */
static size_t split(char *line, char **words, size_t max)
{
    size_t n = 0;
    char *p = line;
    while (n < max) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
            *p++ = '\0';
        if (*p == '\0')
            break;
        words[n++] = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            p++;
    }
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        *p++ = '\0';
    return n;
}

static double number(const char *text)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0)
        fail_msg("expected file: %s is not a number", text);
    return v;
}

static void copy_word(char *dst, const char *src)
{
    if ((size_t)snprintf(dst, NAME, "%s", src) >= NAME)
        fail_msg("expected file: %s is too long", src);
}

static void read_expected(struct env *e, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    char line[1024];
    while (f && fgets(line, sizeof(line), f)) {
        char *w[12];
        size_t n = split(line, w, 12);
        if (n == 2 && strcmp(w[0], "end") == 0)
            e->end = number(w[1]);
        else if (n == 2 && strcmp(w[0], "history") == 0)
            e->history = number(w[1]);
        else if (n == 2 && strcmp(w[0], "step") == 0)
            e->step = number(w[1]);
        else if (n == 4 && strcmp(w[0], "workload") == 0) {
            assert_true(e->nworkloads < MAX_WORKLOADS);
            struct workload *wl = &e->workloads[e->nworkloads++];
            copy_word(wl->ns, w[1]);
            assert_true(parse_kind(w[2], &wl->kind));
            copy_word(wl->name, w[3]);
            add_namespace(e, wl->ns);
        }
        else if (n == 12 && strcmp(w[0], "container") == 0) {
            assert_true(e->ncontainers < MAX_CONTAINERS);
            struct expected *c = &e->containers[e->ncontainers++];
            copy_word(c->ns, w[1]);
            assert_true(parse_kind(w[2], &c->kind));
            copy_word(c->workload, w[3]);
            copy_word(c->container, w[4]);
            c->pods = (unsigned)number(w[5]);
            c->samples = (unsigned long)number(w[6]);
            c->cpu_p95 = number(w[7]);
            c->memory_max = number(w[8]);
            c->oom_kills = (unsigned)number(w[9]);
            c->oom_limit = number(w[10]);
            c->throttled = number(w[11]);
        }
        else if (n > 0) {
            fail_msg("expected file: cannot read line starting with %s", w[0]);
        }
    }
    if (f)
        fclose(f);
    assert_true(e->end > 0 && e->history > 0 && e->step > 0);
    assert_true(e->nworkloads > 0 && e->ncontainers > 0);
}

static int setup(void **state)
{
    (void)state;
    const char *url = getenv("TAILOR_PROMETHEUS_URL");
    const char *expected = getenv("TAILOR_USAGE_EXPECTED");
    if (!url || !*url || !expected || !*expected)
        return 0;
    E = calloc(1, sizeof(*E));
    if (!E)
        return -1;
    E->url = url;
    read_expected(E, expected);
    tl_log_configure(TL_LOG_WARN, TL_LOG_TEXT, stderr);
    E->loop = ev_loop_new(EVFLAG_AUTO);
    E->http = tl_http_create(E->loop);
    return E->loop && E->http ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    if (E) {
        tl_http_destroy(E->http);
        ev_loop_destroy(E->loop);
        free(E);
        E = NULL;
    }
    return 0;
}

/* ---- Running cycles ---- */

struct run {
    struct tl_usage_collector *collector;
    struct tl_usage_store *store;
};

static struct run run_open(const char *url)
{
    struct tl_prom_options opts = {.url = url, .timeout = 60, .max_attempts = 1};
    struct tl_prom *prom = tl_prom_create(E->loop, E->http, &opts);
    assert_non_null(prom);
    struct run r = {.store = tl_usage_store_create()};
    assert_non_null(r.store);
    r.collector = tl_usage_collector_create(prom, r.store);
    assert_non_null(r.collector);
    return r;
}

static void run_close(struct run *r)
{
    tl_usage_collector_destroy(r->collector);
    tl_usage_store_destroy(r->store);
}

static uint64_t queries_sent(const struct run *r)
{
    struct tl_prom_stats stats;
    tl_prom_stats_get(tl_usage_collector_prom(r->collector), &stats);
    return stats.queries;
}

struct cycles {
    int done;
    int failed;
    bool replaced;
    unsigned queries;
    size_t samples;
    double from, to;
    char message[700];
};

static void on_cycle(void *arg, const struct tl_usage_cycle *cycle)
{
    struct cycles *c = arg;
    c->done++;
    c->queries += cycle->queries;
    c->samples += cycle->stats.samples;
    c->from = cycle->from;
    c->to = cycle->to;
    c->replaced = cycle->replaced;
    if (cycle->err != TL_OK) {
        c->failed++;
        snprintf(c->message, sizeof(c->message), "ns=%s: %s", cycle->ns, cycle->message);
    }
}

static void expire(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    *(int *)w->data = 1;
    ev_break(loop, EVBREAK_ALL);
}

/* One cycle for every namespace of the scenario at `now`, run to completion. */
static struct cycles collect_all(struct run *r, const struct tl_usage_settings *settings,
                                 double now)
{
    struct cycles c = {0};
    for (size_t n = 0; n < E->nnamespaces; n++) {
        struct tl_workload_ref refs[MAX_WORKLOADS];
        size_t count = 0;
        for (size_t i = 0; i < E->nworkloads; i++) {
            if (strcmp(E->workloads[i].ns, E->namespaces[n]) == 0)
                refs[count++] =
                    (struct tl_workload_ref){E->workloads[i].kind, E->workloads[i].name};
        }
        assert_int_equal(tl_usage_collect(r->collector, E->namespaces[n], refs, count, settings,
                                          now, on_cycle, &c),
                         TL_OK);
    }
    int expired = 0;
    ev_timer timer;
    ev_timer_init(&timer, expire, 120, 0);
    timer.data = &expired;
    ev_timer_start(E->loop, &timer);
    while (c.done < (int)E->nnamespaces && !expired)
        ev_run(E->loop, EVRUN_ONCE);
    ev_timer_stop(E->loop, &timer);
    assert_int_equal(c.done, (int)E->nnamespaces);
    return c;
}

static const struct tl_container_usage *usage_of(const struct run *r, const struct expected *x)
{
    return tl_usage_store_get(r->store, x->ns, x->kind, x->workload, x->container);
}

#define SKIP_WITHOUT_PROMETHEUS()                                                                  \
    do {                                                                                           \
        if (!E)                                                                                    \
            skip();                                                                                \
    } while (0)

/* ---- Tests ---- */

/* The whole history in 3 queries per namespace, matching what the scenario's model implies. */
static void test_full_history_matches_the_scenario(void **state)
{
    (void)state;
    SKIP_WITHOUT_PROMETHEUS();
    struct run r = run_open(E->url);
    struct tl_usage_settings settings = {.history = E->history, .step = E->step};
    uint64_t before = queries_sent(&r);
    struct cycles c = collect_all(&r, &settings, E->end);
    if (c.failed)
        fail_msg("%s", c.message);
    assert_int_equal(queries_sent(&r) - before, 3 * E->nnamespaces);
    assert_int_equal(c.queries, 3 * E->nnamespaces);

    for (size_t i = 0; i < E->ncontainers; i++) {
        const struct expected *x = &E->containers[i];
        const struct tl_container_usage *u = usage_of(&r, x);
        if (!u) {
            fail_msg("no usage for %s/%s/%s", x->ns, x->workload, x->container);
            return;
        }
        double cpu_p95 = tl_histogram_percentile(&u->cpu, 0.95);
        print_message("%-9s %-14s %-17s samples %6llu/%-6lu cpu p95 %.4f (model %.4f) memory max "
                      "%.0f (model %.0f) oom %u (model %u) throttled %.3f (model %.3f)\n",
                      x->ns, x->workload, x->container, (unsigned long long)u->cpu.samples,
                      x->samples, cpu_p95, x->cpu_p95, u->memory.max_value, x->memory_max,
                      u->oom_kills, x->oom_kills, u->throttled_ratio, x->throttled);
        /* One sample per pod per step, CPU and memory alike. */
        assert_int_equal(u->cpu.samples, x->samples);
        assert_int_equal(u->memory.samples, x->samples);
        /* The histogram answers with its bucket's end: up to 5% above the model's p95. */
        assert_true(cpu_p95 >= x->cpu_p95 * 0.98 - 0.001);
        assert_true(cpu_p95 <= x->cpu_p95 * 1.06 + 0.001);
        /* max_over_time sees every sample: the working set's peak exactly. */
        assert_float_equal(u->memory.max_value, x->memory_max, 1.0);
        if (x->oom_kills > 0) {
            assert_true(u->oom_kills > 0);
            assert_true(fabs((double)u->oom_kills - x->oom_kills) <= fmax(2, 0.1 * x->oom_kills));
            assert_float_equal(u->oom_memory, x->oom_limit, 1.0);
        }
        else {
            assert_int_equal(u->oom_kills, 0);
        }
        if (x->throttled < 0)
            assert_true(u->throttled_ratio < 0);
        else
            assert_float_equal(u->throttled_ratio, x->throttled, 0.01 + 0.05 * x->throttled);
    }
    run_close(&r);
}

static void assert_same_histograms(const struct tl_histogram *a, const struct tl_histogram *b)
{
    assert_int_equal(a->samples, b->samples);
    assert_float_equal(a->max_value, b->max_value, 0);
    for (int i = 50; i < 100; i++)
        assert_float_equal(tl_histogram_percentile(a, i / 100.0),
                           tl_histogram_percentile(b, i / 100.0), 0);
    assert_float_equal(a->total / b->total, 1, 1e-9);
}

/* A later cycle fetches only (covered_until, now]; the sum equals one collect of everything. */
static void test_incremental_cycles_fetch_only_new_samples(void **state)
{
    (void)state;
    SKIP_WITHOUT_PROMETHEUS();
    struct tl_usage_settings settings = {.history = E->history, .step = E->step};
    struct run inc = run_open(E->url);
    double earlier = E->end - 2 * 3600;
    struct cycles first = collect_all(&inc, &settings, earlier);
    assert_int_equal(first.failed, 0);
    for (size_t n = 0; n < E->nnamespaces; n++)
        assert_float_equal(tl_usage_store_covered_until(inc.store, E->namespaces[n]), earlier, 0);

    uint64_t before = queries_sent(&inc);
    struct cycles second = collect_all(&inc, &settings, E->end);
    assert_int_equal(second.failed, 0);
    assert_int_equal(queries_sent(&inc) - before, 3 * E->nnamespaces);
    assert_float_equal(second.from, earlier, 0);
    assert_float_equal(second.to, E->end, 0);
    /* 24 new steps per pod, for CPU and for memory. */
    size_t pods = 0;
    for (size_t i = 0; i < E->ncontainers; i++)
        pods += E->containers[i].pods;
    assert_int_equal(second.samples, 2 * pods * (size_t)(2 * 3600 / E->step));

    struct run once = run_open(E->url);
    struct cycles all = collect_all(&once, &settings, E->end);
    assert_int_equal(all.failed, 0);
    for (size_t i = 0; i < E->ncontainers; i++) {
        const struct tl_container_usage *a = usage_of(&inc, &E->containers[i]);
        const struct tl_container_usage *b = usage_of(&once, &E->containers[i]);
        assert_non_null(a);
        assert_non_null(b);
        assert_same_histograms(&a->cpu, &b->cpu);
        assert_same_histograms(&a->memory, &b->memory);
        assert_int_equal(a->oom_kills, b->oom_kills);
    }

    /* Nothing new since: only the facts query goes out, and no sample is added. */
    before = queries_sent(&inc);
    struct cycles third = collect_all(&inc, &settings, E->end + 60);
    assert_int_equal(third.failed, 0);
    assert_int_equal(third.samples, 0);
    assert_int_equal(queries_sent(&inc) - before, E->nnamespaces);
    run_close(&inc);
    run_close(&once);
}

/* Once the history held spans twice the window, a cycle fetches the whole window again and
 * replaces it: old samples leave instead of lingering with a tiny weight. */
static void test_history_is_refetched_after_two_windows(void **state)
{
    (void)state;
    SKIP_WITHOUT_PROMETHEUS();
    double window = 6 * 3600;
    struct tl_usage_settings settings = {.history = window, .step = E->step};
    struct run r = run_open(E->url);
    struct cycles first = collect_all(&r, &settings, E->end - 7 * 3600);
    assert_int_equal(first.failed, 0);
    const struct expected *x = &E->containers[0];
    unsigned long per_pod = (unsigned long)(window / E->step);
    assert_int_equal(usage_of(&r, x)->cpu.samples, x->pods * per_pod);

    /* Still within two windows: incremental. */
    struct cycles second = collect_all(&r, &settings, E->end - 3600);
    assert_int_equal(second.failed, 0);
    assert_false(second.replaced);
    assert_int_equal(usage_of(&r, x)->cpu.samples, x->pods * (per_pod + 6 * 3600 / E->step));

    uint64_t before = queries_sent(&r);
    struct cycles third = collect_all(&r, &settings, E->end);
    assert_int_equal(third.failed, 0);
    assert_true(third.replaced);
    assert_int_equal(queries_sent(&r) - before, 3 * E->nnamespaces);
    assert_float_equal(third.from, E->end - window, 0);
    for (size_t i = 0; i < E->ncontainers; i++) {
        const struct tl_container_usage *u = usage_of(&r, &E->containers[i]);
        assert_non_null(u);
        assert_int_equal(u->cpu.samples, E->containers[i].pods * per_pod);
        assert_int_equal(u->memory.samples, E->containers[i].pods * per_pod);
        assert_float_equal(u->cpu.first_time, E->end - window + E->step, 0);
    }
    run_close(&r);
}

/* Prometheus refusing a query, or something that is not Prometheus answering: the namespace's
 * cycle fails with a message naming it, the history stays, and the next cycle catches up. */
static void test_failed_cycles_keep_history_and_retry(void **state)
{
    (void)state;
    SKIP_WITHOUT_PROMETHEUS();
    struct tl_usage_settings good = {.history = E->history, .step = E->step};
    struct tl_usage_settings bad = good;
    bad.extra_selector = "cluster=~\"(\"";
    struct run r = run_open(E->url);
    double earlier = E->end - 3600;
    assert_int_equal(collect_all(&r, &good, earlier).failed, 0);
    const struct expected *x = &E->containers[0];
    uint64_t samples = usage_of(&r, x)->cpu.samples;

    struct cycles refused = collect_all(&r, &bad, E->end);
    assert_int_equal(refused.failed, (int)E->nnamespaces);
    print_message("refused: %s\n", refused.message);
    assert_non_null(strstr(refused.message, "ns="));
    assert_non_null(strstr(refused.message, "bad_data"));
    assert_int_equal(usage_of(&r, x)->cpu.samples, samples);
    assert_float_equal(tl_usage_store_covered_until(r.store, x->ns), earlier, 0);

    /* The API's path answered by Prometheus' web UI instead: 404 and not JSON. */
    char url[512];
    snprintf(url, sizeof(url), "%s/not-the-api", E->url);
    struct run garbage = run_open(url);
    struct cycles junk = collect_all(&garbage, &good, E->end);
    assert_int_equal(junk.failed, (int)E->nnamespaces);
    print_message("garbage: %s\n", junk.message);
    assert_non_null(strstr(junk.message, "not a Prometheus API answer"));
    run_close(&garbage);

    struct cycles retry = collect_all(&r, &good, E->end);
    assert_int_equal(retry.failed, 0);
    assert_float_equal(retry.from, earlier, 0);
    assert_int_equal(usage_of(&r, x)->cpu.samples, samples + x->pods * (uint64_t)(3600 / E->step));
    run_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_history_matches_the_scenario),
        cmocka_unit_test(test_incremental_cycles_fetch_only_new_samples),
        cmocka_unit_test(test_history_is_refetched_after_two_windows),
        cmocka_unit_test(test_failed_cycles_keep_history_and_retry),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
