/*
 * The usage collector's pure parts: the PromQL it sends, the pod-name to workload mapping, and
 * folding parsed Prometheus answers into the usage store (incremental, never twice). The
 * collector against a real Prometheus is test_usage_e2e.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <ev.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "pod_owner.h"
#include "prom.h"
#include "recommend.h"
#include "usage.h"
#include "usage_collect.h"
#include "usage_query.h"

/* ---- PromQL text ---- */

static char *query(enum tl_err (*fn)(const struct tl_usage_settings *, const char *, char **),
                   const struct tl_usage_settings *s, const char *ns)
{
    char *out = NULL;
    assert_int_equal(fn(s, ns, &out), TL_OK);
    assert_non_null(out);
    return out;
}

static void test_cpu_and_memory_queries_with_defaults(void **state)
{
    (void)state;
    struct tl_usage_settings s = {0};
    char *cpu = query(tl_usage_query_cpu, &s, "shop");
    assert_string_equal(cpu, "sum by (pod, container) (rate(container_cpu_usage_seconds_total{"
                             "namespace=\"shop\", container!=\"\", container!=\"POD\"}[5m]))");
    char *mem = query(tl_usage_query_memory, &s, "shop");
    assert_string_equal(mem,
                        "max by (pod, container) (max_over_time(container_memory_working_set_bytes{"
                        "namespace=\"shop\", container!=\"\", container!=\"POD\"}[5m]))");
    free(cpu);
    free(mem);
}

#define OOM_SHOP                                                                                   \
    "(max by (pod, container) (max_over_time(kube_pod_container_status_last_terminated_reason{"    \
    "namespace=\"shop\", reason=\"OOMKilled\"}[14d])) > 0)"

static void test_facts_query_is_one_instant_query_with_tagged_parts(void **state)
{
    (void)state;
    struct tl_usage_settings s = {0};
    char *facts = query(tl_usage_query_facts, &s, "shop");
    assert_string_equal(
        facts,
        "label_replace(sum by (pod, container) (increase(container_cpu_cfs_throttled_periods_total{"
        "namespace=\"shop\", container!=\"\", container!=\"POD\"}[14d])), \"tailor_fact\", "
        "\"throttled\", \"\", \"\")"
        " or label_replace(sum by (pod, container) (increase(container_cpu_cfs_periods_total{"
        "namespace=\"shop\", container!=\"\", container!=\"POD\"}[14d])), \"tailor_fact\", "
        "\"periods\", \"\", \"\")"
        " or label_replace(round(sum by (pod, container) (increase("
        "kube_pod_container_status_restarts_total{namespace=\"shop\"}[14d]))) and on (pod, "
        "container) " OOM_SHOP " or " OOM_SHOP ", \"tailor_fact\", \"oom_kills\", \"\", \"\")"
        " or label_replace(max by (pod, container) (max_over_time("
        "kube_pod_container_resource_limits{namespace=\"shop\", resource=\"memory\"}[14d])) and "
        "on (pod, container) " OOM_SHOP ", \"tailor_fact\", \"oom_limit\", \"\", \"\")");
    free(facts);
}

/* A Thanos or Mimir setup with relabelled names, one cluster of many, a shorter history. */
static void test_queries_use_configured_names_selector_and_windows(void **state)
{
    (void)state;
    struct tl_usage_settings s = {
        .cpu_series = "node_namespace_pod_container:container_cpu_usage_seconds_total",
        .memory_series = "container_memory_rss",
        .namespace_label = "kubernetes_namespace",
        .pod_label = "kubernetes_pod_name",
        .container_label = "container_name",
        .extra_selector = "cluster=\"prod-eu\"",
        .history = 36 * 3600,
        .step = 60,
        .rate_window = 150,
    };
    char *cpu = query(tl_usage_query_cpu, &s, "shop");
    assert_string_equal(cpu, "sum by (kubernetes_pod_name, container_name) (rate("
                             "node_namespace_pod_container:container_cpu_usage_seconds_total{"
                             "kubernetes_namespace=\"shop\", container_name!=\"\", "
                             "container_name!=\"POD\", cluster=\"prod-eu\"}[150s]))");
    char *mem = query(tl_usage_query_memory, &s, "shop");
    assert_string_equal(mem, "max by (kubernetes_pod_name, container_name) (max_over_time("
                             "container_memory_rss{kubernetes_namespace=\"shop\", "
                             "container_name!=\"\", container_name!=\"POD\", "
                             "cluster=\"prod-eu\"}[1m]))");
    char *facts = query(tl_usage_query_facts, &s, "shop");
    assert_non_null(strstr(facts, "kube_pod_container_status_last_terminated_reason{"
                                  "kubernetes_namespace=\"shop\", reason=\"OOMKilled\", "
                                  "cluster=\"prod-eu\"}[36h]"));
    assert_non_null(strstr(facts, "and on (kubernetes_pod_name, container_name)"));
    assert_null(strstr(facts, "[14d]"));
    free(cpu);
    free(mem);
    free(facts);
}

static void test_namespace_is_quoted_and_durations_are_exact(void **state)
{
    (void)state;
    struct tl_usage_settings s = {.step = 1.5, .history = 90 * 60};
    char *cpu = query(tl_usage_query_cpu, &s, "we\"ird\\ns");
    assert_non_null(strstr(cpu, "{namespace=\"we\\\"ird\\\\ns\", "));
    assert_non_null(strstr(cpu, "[1500ms]"));
    char *facts = query(tl_usage_query_facts, &s, "x");
    assert_non_null(strstr(facts, "[90m]"));
    free(cpu);
    free(facts);
}

static void test_huge_extra_selector_is_refused(void **state)
{
    (void)state;
    size_t len = (size_t)70 * 1024;
    char *big = malloc(len + 1);
    assert_non_null(big);
    memset(big, 'a', len);
    big[len] = '\0';
    struct tl_usage_settings s = {.extra_selector = big};
    char *out = NULL;
    assert_int_equal(tl_usage_query_cpu(&s, "shop", &out), TL_ETOOBIG);
    assert_null(out);
    free(big);
}

static void test_settings_from_policy_take_its_metrics(void **state)
{
    (void)state;
    struct tl_policy p;
    memset(&p, 0, sizeof(p));
    p.metrics.cpu_series = "cpu_total";
    p.metrics.pod_label = "pod_name";
    p.metrics.extra_selector = "";
    p.metrics.history_ms = 7LL * 86400 * 1000;
    struct tl_usage_settings s;
    tl_usage_settings_from_policy(&p, &s);
    assert_string_equal(s.cpu_series, "cpu_total");
    assert_string_equal(s.pod_label, "pod_name");
    assert_string_equal(s.memory_series, "container_memory_working_set_bytes");
    assert_string_equal(s.container_label, "container");
    assert_null(s.extra_selector);
    assert_true(s.history == 7 * 86400.0);
    assert_true(s.step == 300.0);
    assert_true(s.rate_window == 300.0);
}

/* ---- Pod names ---- */

static void test_pod_name_shapes_of_each_kind(void **state)
{
    (void)state;
    assert_true(tl_pod_owner_matches(TL_KIND_DEPLOYMENT, "web", "web-5d8f6c7b9b-x2x4z"));
    assert_true(tl_pod_owner_matches(TL_KIND_DEPLOYMENT, "web", "web-7c5ddbdf54-8xqzm"));
    assert_true(tl_pod_owner_matches(TL_KIND_DAEMONSET, "log-agent", "log-agent-q7w9z"));
    assert_true(tl_pod_owner_matches(TL_KIND_STATEFULSET, "db", "db-0"));
    assert_true(tl_pod_owner_matches(TL_KIND_STATEFULSET, "db", "db-12"));

    /* Not the shape of the kind. */
    assert_false(tl_pod_owner_matches(TL_KIND_DEPLOYMENT, "web", "web-x2x4z"));
    assert_false(tl_pod_owner_matches(TL_KIND_DAEMONSET, "web", "web-5d8f6c7b9b-x2x4z"));
    assert_false(tl_pod_owner_matches(TL_KIND_STATEFULSET, "db", "db-01"));
    assert_false(tl_pod_owner_matches(TL_KIND_STATEFULSET, "db", "db-"));
    assert_false(tl_pod_owner_matches(TL_KIND_STATEFULSET, "db", "db-0a"));
    /* Generated characters have no vowels and no 0, 1, 3; suffixes are exactly 5 long. */
    assert_false(tl_pod_owner_matches(TL_KIND_DAEMONSET, "agent", "agent-abcde"));
    assert_false(tl_pod_owner_matches(TL_KIND_DAEMONSET, "agent", "agent-x2x4"));
    assert_false(tl_pod_owner_matches(TL_KIND_DAEMONSET, "agent", "agent-x2x4zz"));
    assert_false(tl_pod_owner_matches(TL_KIND_DEPLOYMENT, "web", "web-5d8f6c7b9b4-x2x4z"));
    assert_false(tl_pod_owner_matches(TL_KIND_DEPLOYMENT, "web", "web-5d8f6c7b9b-x2x0z"));
    /* A CronJob's Job pod: the minute count has digits a template hash never holds. */
    assert_false(tl_pod_owner_matches(TL_KIND_DEPLOYMENT, "backup", "backup-28373940-x2x4z"));
    /* The name must be followed by a dash, not just be a prefix. */
    assert_false(tl_pod_owner_matches(TL_KIND_DEPLOYMENT, "we", "web-5d8f6c7b9b-x2x4z"));
    assert_false(tl_pod_owner_matches(TL_KIND_DEPLOYMENT, "", "-5d8f6c7b9b-x2x4z"));
}

static void test_a_name_does_not_capture_pods_of_a_longer_name(void **state)
{
    (void)state;
    const struct tl_workload_ref workloads[] = {
        {TL_KIND_DEPLOYMENT, "web"},           {TL_KIND_DEPLOYMENT, "web-api"},
        {TL_KIND_STATEFULSET, "db"},           {TL_KIND_DEPLOYMENT, "db-proxy"},
        {TL_KIND_DAEMONSET, "web-5d8f6c7b9b"}, {TL_KIND_STATEFULSET, "agent"},
        {TL_KIND_DAEMONSET, "agent"},
    };
    struct tl_pod_owner_index *index =
        tl_pod_owner_index_create(workloads, sizeof(workloads) / sizeof(workloads[0]));
    assert_non_null(index);
    size_t pos = 99;
    assert_true(tl_pod_owner_find(index, "web-7c5ddbdf54-8xqzm", &pos));
    assert_int_equal(pos, 0);
    assert_true(tl_pod_owner_find(index, "web-api-7c5ddbdf54-8xqzm", &pos));
    assert_int_equal(pos, 1);
    assert_true(tl_pod_owner_find(index, "db-1", &pos));
    assert_int_equal(pos, 2);
    assert_true(tl_pod_owner_find(index, "db-proxy-6b4f5c9d8d-kq2zt", &pos));
    assert_int_equal(pos, 3);
    /* Both the Deployment "web" and the DaemonSet "web-5d8f6c7b9b" fit: the longer name wins. */
    assert_true(tl_pod_owner_find(index, "web-5d8f6c7b9b-x2x4z", &pos));
    assert_int_equal(pos, 4);
    /* An all-digit suffix also reads as an ordinal: the DaemonSet wins, an ordinal stays. */
    assert_true(tl_pod_owner_find(index, "agent-24567", &pos));
    assert_int_equal(pos, 6);
    assert_true(tl_pod_owner_find(index, "agent-3", &pos));
    assert_int_equal(pos, 5);
    /* Pods of no listed workload. */
    pos = 99;
    assert_false(tl_pod_owner_find(index, "web-api-canary-7c5ddbdf54-8xqzm", &pos));
    assert_false(tl_pod_owner_find(index, "cache-0", &pos));
    assert_false(tl_pod_owner_find(index, "web", &pos));
    assert_false(tl_pod_owner_find(index, "", &pos));
    assert_int_equal(pos, 99);
    tl_pod_owner_index_destroy(index);
}

/* Generated names are cut to 58 characters before the 5-character suffix. */
static void test_truncated_generated_names(void **state)
{
    (void)state;
    const char *long_ds = "a-very-long-daemonset-name-that-goes-on-and-on-for-ever-and-ever";
    const char *dep50 = "a-deployment-with-a-name-fifty-characters-long-xyz";
    assert_int_equal(strlen(dep50), 50);
    char pod[80];
    /* DaemonSet: the first 58 characters of "<name>-", then the suffix. */
    snprintf(pod, sizeof(pod), "%.58sx2x4z", long_ds);
    assert_true(tl_pod_owner_matches(TL_KIND_DAEMONSET, long_ds, pod));
    /* Deployment: "<name>-<hash>-" cut inside the hash. */
    snprintf(pod, sizeof(pod), "%s-%.7sx2x4z", dep50, "5d8f6c7b9b");
    assert_int_equal(strlen(pod), 63);
    assert_true(tl_pod_owner_matches(TL_KIND_DEPLOYMENT, dep50, pod));
    assert_false(tl_pod_owner_matches(TL_KIND_DAEMONSET, dep50, pod));

    const struct tl_workload_ref workloads[] = {{TL_KIND_DEPLOYMENT, "a-deployment"},
                                                {TL_KIND_DEPLOYMENT, dep50},
                                                {TL_KIND_DAEMONSET, long_ds}};
    struct tl_pod_owner_index *index = tl_pod_owner_index_create(workloads, 3);
    assert_non_null(index);
    size_t pos = 99;
    assert_true(tl_pod_owner_find(index, pod, &pos));
    assert_int_equal(pos, 1);
    snprintf(pod, sizeof(pod), "%.58sx2x4z", long_ds);
    assert_true(tl_pod_owner_find(index, pod, &pos));
    assert_int_equal(pos, 2);
    tl_pod_owner_index_destroy(index);
}

/* ---- Folding answers into the store ---- */

static const struct tl_workload_ref shop[] = {
    {TL_KIND_DEPLOYMENT, "web"},
    {TL_KIND_DEPLOYMENT, "web-api"},
    {TL_KIND_STATEFULSET, "db"},
};

#define WEB1 "web-7c5ddbdf54-8xqzm"
#define WEB2 "web-7c5ddbdf54-q7w9z"
#define API1 "web-api-6b4f5c9d8d-kq2zt"

struct spec {
    const char *labels; /* the metric object's members */
    double base;
};

/* A range answer: every series has points at t0 + step * i, value base + i / 100. */
static struct tl_prom_result matrix(const struct spec *specs, size_t n, double t0, double step,
                                    size_t npoints)
{
    size_t cap = 1 << 20;
    char *json = malloc(cap);
    assert_non_null(json);
    size_t len = (size_t)snprintf(json, cap,
                                  "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\","
                                  "\"result\":[");
    for (size_t s = 0; s < n; s++) {
        len += (size_t)snprintf(json + len, cap - len, "%s{\"metric\":{%s},\"values\":[",
                                s ? "," : "", specs[s].labels);
        for (size_t i = 0; i < npoints; i++)
            len += (size_t)snprintf(json + len, cap - len, "%s[%.3f,\"%.6f\"]", i ? "," : "",
                                    t0 + step * (double)i, specs[s].base + (double)i / 100);
        len += (size_t)snprintf(json + len, cap - len, "]}");
    }
    len += (size_t)snprintf(json + len, cap - len, "]}}");
    assert_true(len < cap);
    struct tl_prom_result out;
    char err[256];
    assert_int_equal(tl_prom_parse(json, len, &out, err, sizeof(err)), TL_OK);
    free(json);
    return out;
}

static struct tl_prom_result parse(const char *json)
{
    struct tl_prom_result out;
    char err[256];
    enum tl_err result = tl_prom_parse(json, strlen(json), &out, err, sizeof(err));
    if (result != TL_OK)
        fail_msg("%s", err);
    return out;
}

static const struct spec cpu_specs[] = {
    {"\"pod\":\"" WEB1 "\",\"container\":\"nginx\"", 0.10},
    {"\"pod\":\"" WEB2 "\",\"container\":\"nginx\"", 0.50},
    {"\"pod\":\"" API1 "\",\"container\":\"api\"", 1.00},
    {"\"pod\":\"" API1 "\",\"container\":\"envoy\"", 0.02},
    {"\"pod\":\"db-0\",\"container\":\"postgres\"", 0.30},
    {"\"pod\":\"backup-28373940-x2x4z\",\"container\":\"main\"", 2.00}, /* no workload */
    {"\"container\":\"orphan\"", 2.00},                                 /* no pod label */
};
#define NCPU (sizeof(cpu_specs) / sizeof(cpu_specs[0]))

static const struct spec mem_specs[] = {
    {"\"pod\":\"" WEB1 "\",\"container\":\"nginx\"", 100e6},
    {"\"pod\":\"" WEB2 "\",\"container\":\"nginx\"", 200e6},
    {"\"pod\":\"db-0\",\"container\":\"postgres\"", 900e6},
};
#define NMEM (sizeof(mem_specs) / sizeof(mem_specs[0]))

static void fold_window(struct tl_usage_store *store, double from, double to, size_t npoints,
                        struct tl_usage_fold_stats *stats)
{
    struct tl_prom_result cpu = matrix(cpu_specs, NCPU, 300, 300, npoints);
    struct tl_prom_result mem = matrix(mem_specs, NMEM, 300, 300, npoints);
    struct tl_usage_settings settings = {0};
    struct tl_usage_batch batch = {.ns = "shop",
                                   .workloads = shop,
                                   .nworkloads = 3,
                                   .from = from,
                                   .to = to,
                                   .cpu = &cpu,
                                   .memory = &mem};
    assert_int_equal(tl_usage_store_fold(store, &settings, &batch, stats), TL_OK);
    tl_prom_result_free(&cpu);
    tl_prom_result_free(&mem);
}

static const struct tl_container_usage *get(const struct tl_usage_store *store,
                                            enum tl_workload_kind kind, const char *workload,
                                            const char *container)
{
    return tl_usage_store_get(store, "shop", kind, workload, container);
}

static void test_fold_merges_pods_of_a_workload_container(void **state)
{
    (void)state;
    struct tl_usage_store *store = tl_usage_store_create();
    assert_non_null(store);
    struct tl_usage_fold_stats stats;
    fold_window(store, 0, 7200, 24, &stats);
    assert_int_equal(stats.samples, 5 * 24 + 3 * 24);
    assert_int_equal(stats.unmatched, 2);
    assert_int_equal(stats.skipped, 0);
    assert_true(tl_usage_store_covered_until(store, "shop") == 7200);
    assert_true(tl_usage_store_covered_until(store, "other") == 0);

    const struct tl_container_usage *web = get(store, TL_KIND_DEPLOYMENT, "web", "nginx");
    assert_non_null(web);
    assert_int_equal(web->cpu.samples, 48); /* two pods, 24 steps */
    assert_int_equal(web->memory.samples, 48);
    assert_float_equal(web->cpu.max_value, 0.73, 1e-9);
    assert_float_equal(web->memory.max_value, 200e6 + 0.23, 1e-3);
    assert_float_equal(web->cpu.first_time, 300, 0);
    assert_float_equal(web->cpu.last_time, 7200, 0);
    assert_true(web->covered_until == 7200);
    assert_true(web->throttled_ratio < 0); /* no facts yet */

    /* Sidecars are containers of their workload like any other; web-api has no memory yet. */
    const struct tl_container_usage *envoy = get(store, TL_KIND_DEPLOYMENT, "web-api", "envoy");
    assert_non_null(envoy);
    assert_int_equal(envoy->cpu.samples, 24);
    assert_int_equal(envoy->memory.samples, 0);
    assert_null(get(store, TL_KIND_DEPLOYMENT, "web", "api"));
    assert_null(get(store, TL_KIND_STATEFULSET, "web", "nginx"));
    assert_null(get(store, TL_KIND_DEPLOYMENT, "backup", "main"));

    tl_usage_store_destroy(store);
}

struct visit {
    char names[4][32];
    size_t n;
};

static void visit_container(void *arg, const char *container, const struct tl_container_usage *u)
{
    struct visit *v = arg;
    assert_non_null(u);
    snprintf(v->names[v->n++], sizeof(v->names[0]), "%s", container);
}

static void test_each_container_of_a_workload(void **state)
{
    (void)state;
    struct tl_usage_store *store = tl_usage_store_create();
    fold_window(store, 0, 7200, 24, NULL);
    struct visit v = {.n = 0};
    assert_int_equal(tl_usage_store_each_container(store, "shop", TL_KIND_DEPLOYMENT, "web-api",
                                                   visit_container, &v),
                     2);
    assert_true((strcmp(v.names[0], "api") == 0 && strcmp(v.names[1], "envoy") == 0) ||
                (strcmp(v.names[0], "envoy") == 0 && strcmp(v.names[1], "api") == 0));
    assert_int_equal(tl_usage_store_each_container(store, "nowhere", TL_KIND_DEPLOYMENT, "web",
                                                   visit_container, &v),
                     0);
    struct tl_usage_store_stats st;
    tl_usage_store_stats_get(store, &st);
    assert_int_equal(st.namespaces, 1);
    assert_int_equal(st.containers, 4);
    assert_true(st.bytes > 0 && st.bytes < 8192);
    tl_usage_store_forget_namespace(store, "shop");
    assert_null(get(store, TL_KIND_DEPLOYMENT, "web", "nginx"));
    assert_true(tl_usage_store_covered_until(store, "shop") == 0);
    tl_usage_store_destroy(store);
}

static void assert_same_usage(const struct tl_container_usage *a,
                              const struct tl_container_usage *b)
{
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->cpu.samples, b->cpu.samples);
    assert_int_equal(a->memory.samples, b->memory.samples);
    for (int i = 50; i <= 100; i += 5) {
        double p = i / 100.0;
        assert_float_equal(tl_histogram_percentile(&a->cpu, p), tl_histogram_percentile(&b->cpu, p),
                           0);
        assert_float_equal(tl_histogram_percentile(&a->memory, p),
                           tl_histogram_percentile(&b->memory, p), 0);
    }
    assert_float_equal(a->cpu.total / b->cpu.total, 1, 1e-12);
    assert_float_equal(a->memory.max_value, b->memory.max_value, 0);
}

/* Later cycles add only (covered_until, to]: re-folding or overlapping windows count nothing
 * twice, and the result equals one fold of the whole window. */
static void test_incremental_folds_never_double_count(void **state)
{
    (void)state;
    struct tl_usage_store *inc = tl_usage_store_create();
    struct tl_usage_store *once = tl_usage_store_create();
    struct tl_usage_fold_stats stats;

    /* The answer holds 24 steps but the cycle's window ends at 3600: the rest is for later. */
    fold_window(inc, 0, 3600, 24, &stats);
    assert_int_equal(stats.samples, 8 * 12);
    assert_int_equal(stats.skipped, 8 * 12);
    assert_int_equal(get(inc, TL_KIND_DEPLOYMENT, "web", "nginx")->cpu.samples, 24);

    /* The same cycle again (a retry after a lost answer): nothing new. */
    fold_window(inc, 0, 3600, 24, &stats);
    assert_int_equal(stats.samples, 0);
    assert_int_equal(get(inc, TL_KIND_DEPLOYMENT, "web", "nginx")->cpu.samples, 24);

    /* A window that starts before the coverage (a cycle started before the last one ended). */
    fold_window(inc, 1800, 7200, 24, &stats);
    assert_int_equal(stats.samples, 8 * 12);
    assert_true(tl_usage_store_covered_until(inc, "shop") == 7200);

    fold_window(once, 0, 7200, 24, NULL);
    const char *const keys[][2] = {{"web", "nginx"}, {"web-api", "api"}, {"web-api", "envoy"}};
    for (size_t i = 0; i < 3; i++)
        assert_same_usage(get(inc, TL_KIND_DEPLOYMENT, keys[i][0], keys[i][1]),
                          get(once, TL_KIND_DEPLOYMENT, keys[i][0], keys[i][1]));
    assert_same_usage(get(inc, TL_KIND_STATEFULSET, "db", "postgres"),
                      get(once, TL_KIND_STATEFULSET, "db", "postgres"));

    /* An old batch arriving late adds nothing either. */
    fold_window(inc, 0, 3600, 24, &stats);
    assert_int_equal(stats.samples, 0);
    assert_true(tl_usage_store_covered_until(inc, "shop") == 7200);
    tl_usage_store_destroy(inc);
    tl_usage_store_destroy(once);
}

/* A replacing batch (the collector's periodic refetch) becomes the namespace's whole history. */
static void test_replacing_batch_drops_older_history(void **state)
{
    (void)state;
    struct tl_usage_store *store = tl_usage_store_create();
    fold_window(store, 0, 7200, 24, NULL);
    assert_true(tl_usage_store_since(store, "shop") == 0);
    const struct tl_container_usage *before = get(store, TL_KIND_DEPLOYMENT, "web", "nginx");
    assert_float_equal(before->cpu.first_time, 300, 0);

    struct tl_prom_result cpu = matrix(cpu_specs, NCPU, 300, 300, 24);
    struct tl_usage_settings settings = {0};
    struct tl_usage_batch batch = {.ns = "shop",
                                   .workloads = shop,
                                   .nworkloads = 3,
                                   .from = 3600,
                                   .to = 7200,
                                   .cpu = &cpu,
                                   .replace = true};
    struct tl_usage_fold_stats stats;
    assert_int_equal(tl_usage_store_fold(store, &settings, &batch, &stats), TL_OK);
    assert_int_equal(stats.samples, 5 * 12);
    const struct tl_container_usage *web = get(store, TL_KIND_DEPLOYMENT, "web", "nginx");
    assert_int_equal(web->cpu.samples, 2 * 12);
    assert_float_equal(web->cpu.first_time, 3900, 0);
    assert_int_equal(web->memory.samples, 0); /* the old memory history went with the rest */
    assert_true(tl_usage_store_since(store, "shop") == 3600);
    assert_true(tl_usage_store_covered_until(store, "shop") == 7200);
    tl_prom_result_free(&cpu);
    tl_usage_store_destroy(store);
}

static void test_bad_samples_and_labels_are_skipped(void **state)
{
    (void)state;
    struct tl_usage_store *store = tl_usage_store_create();
    struct tl_prom_result cpu = parse(
        "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
        "{\"metric\":{\"pod\":\"" WEB1 "\",\"container\":\"nginx\"},\"values\":"
        "[[300,\"0.5\"],[600,\"NaN\"],[900,\"+Inf\"],[1200,\"-1\"],[1500,\"0.25\"],[9000,\"9\"]]},"
        "{\"metric\":{\"pod\":\"" WEB1 "\",\"container\":\"\"},\"values\":[[300,\"7\"]]},"
        "{\"metric\":{\"pod\":\"db-0\"},\"values\":[[300,\"7\"]]}]}}");
    struct tl_usage_settings settings = {0};
    struct tl_usage_batch batch = {
        .ns = "shop", .workloads = shop, .nworkloads = 3, .from = 0, .to = 3600, .cpu = &cpu};
    struct tl_usage_fold_stats stats;
    assert_int_equal(tl_usage_store_fold(store, &settings, &batch, &stats), TL_OK);
    assert_int_equal(stats.series, 3);
    assert_int_equal(stats.samples, 2);
    assert_int_equal(stats.skipped, 4);
    assert_int_equal(stats.unmatched, 2);
    const struct tl_container_usage *web = get(store, TL_KIND_DEPLOYMENT, "web", "nginx");
    assert_float_equal(web->cpu.max_value, 0.5, 0);
    tl_prom_result_free(&cpu);
    tl_usage_store_destroy(store);
}

/* Relabelled series: the fold reads the pod and container from the configured labels. */
static void test_fold_uses_configured_label_names(void **state)
{
    (void)state;
    struct tl_usage_store *store = tl_usage_store_create();
    struct tl_prom_result cpu =
        parse("{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
              "{\"metric\":{\"kubernetes_pod_name\":\"db-3\",\"container_name\":\"postgres\","
              "\"pod\":\"" WEB1
              "\",\"container\":\"nginx\"},\"values\":[[300,\"0.5\"],[600,\"0.7\"]]}]}}");
    struct tl_usage_settings settings = {.pod_label = "kubernetes_pod_name",
                                         .container_label = "container_name"};
    struct tl_usage_batch batch = {
        .ns = "shop", .workloads = shop, .nworkloads = 3, .from = 0, .to = 600, .cpu = &cpu};
    assert_int_equal(tl_usage_store_fold(store, &settings, &batch, NULL), TL_OK);
    assert_int_equal(get(store, TL_KIND_STATEFULSET, "db", "postgres")->cpu.samples, 2);
    assert_null(get(store, TL_KIND_DEPLOYMENT, "web", "nginx"));
    tl_prom_result_free(&cpu);
    tl_usage_store_destroy(store);
}

#define FACT(pod, container, tag, value)                                                           \
    "{\"metric\":{\"pod\":\"" pod "\",\"container\":\"" container "\",\"tailor_fact\":\"" tag      \
    "\"},\"value\":[7200,\"" value "\"]}"

static void fold_facts(struct tl_usage_store *store, const char *json)
{
    struct tl_prom_result facts = parse(json);
    struct tl_usage_settings settings = {0};
    struct tl_usage_batch batch = {.ns = "shop",
                                   .workloads = shop,
                                   .nworkloads = 3,
                                   .from = 7200,
                                   .to = 7200,
                                   .facts = &facts};
    assert_int_equal(tl_usage_store_fold(store, &settings, &batch, NULL), TL_OK);
    tl_prom_result_free(&facts);
}

static void test_facts_give_oom_kills_and_throttling(void **state)
{
    (void)state;
    struct tl_usage_store *store = tl_usage_store_create();
    fold_window(store, 0, 7200, 24, NULL);
    fold_facts(
        store,
        "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
        "[" FACT(WEB1, "nginx", "throttled", "30") "," FACT(WEB1, "nginx", "periods", "100") "," FACT(
            WEB2, "nginx", "throttled",
            "10") "," FACT(WEB2, "nginx", "periods",
                           "300") "," FACT("db-0", "postgres", "oom_kills",
                                           "3") "," FACT("db-1", "postgres", "oom_kills",
                                                         "2") "," FACT("db-0", "postgres",
                                                                       "oom_limit",
                                                                       "1073741824") "," FACT("db-"
                                                                                              "1",
                                                                                              "post"
                                                                                              "g"
                                                                                              "res",
                                                                                              "oom_"
                                                                                              "limi"
                                                                                              "t",
                                                                                              "5368"
                                                                                              "7"
                                                                                              "091"
                                                                                              "2") ","
                                                                                                   "{\"metric\":{\"pod\":\"db-0\",\"container\":\"postgres\"},"
                                                                                                   "\"value\":[7200,\"40\"]}," FACT(
                                                                                                       "db-0",
                                                                                                       "postgres",
                                                                                                       "mystery",
                                                                                                       "40") "]}}");
    const struct tl_container_usage *web = get(store, TL_KIND_DEPLOYMENT, "web", "nginx");
    /* 40 of 400 periods, not the mean of 30% and 3.3%. */
    assert_float_equal(web->throttled_ratio, 0.1, 1e-12);
    assert_int_equal(web->oom_kills, 0);
    const struct tl_container_usage *db = get(store, TL_KIND_STATEFULSET, "db", "postgres");
    assert_int_equal(db->oom_kills, 5);
    assert_float_equal(db->oom_memory, 1073741824, 0);
    assert_true(db->throttled_ratio < 0); /* no CPU limit, no CFS periods: unknown */

    /* The recommender sees the kills and raises memory above the limit that was hit. */
    struct tl_usage usage;
    assert_false(tl_usage_store_usage(store, "shop", TL_KIND_STATEFULSET, "db", "nope", 7200,
                                      14 * 86400.0, &usage));
    assert_true(tl_usage_store_usage(store, "shop", TL_KIND_STATEFULSET, "db", "postgres", 7200,
                                     14 * 86400.0, &usage));
    assert_ptr_equal(usage.cpu, &db->cpu);
    assert_int_equal(usage.oom_kills, 5);
    struct tl_recommend_policy policy;
    tl_recommend_policy_defaults(&policy);
    struct tl_resources current = {
        .cpu_request = 0.5, .memory_request = 1073741824.0, .memory_limit = 1073741824.0};
    struct tl_advice advice;
    tl_recommend_container(&policy, &usage, &current, &advice);
    assert_true(advice.oom_bumped);
    assert_true(advice.recommended.memory_request >= 1.2 * 1073741824.0);

    /* The next facts answer replaces these: nothing OOM-killed or throttled any more. */
    fold_facts(store,
               "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}");
    assert_int_equal(db->oom_kills, 0);
    assert_float_equal(db->oom_memory, 0, 0);
    assert_true(web->throttled_ratio < 0);
    /* ...and they never touched the histograms or the coverage. */
    assert_int_equal(web->cpu.samples, 48);
    assert_true(tl_usage_store_covered_until(store, "shop") == 7200);
    tl_usage_store_destroy(store);
}

/* ---- The collector's contract, without a Prometheus to talk to ---- */

struct outcome {
    int calls;
    enum tl_err err;
    char message[640];
    unsigned queries;
};

static void on_cycle(void *arg, const struct tl_usage_cycle *cycle)
{
    struct outcome *o = arg;
    o->calls++;
    o->err = cycle->err;
    o->queries = cycle->queries;
    snprintf(o->message, sizeof(o->message), "%s", cycle->message ? cycle->message : "");
}

static void expire(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    *(int *)w->data = 1;
    ev_break(loop, EVBREAK_ALL);
}

/* An unreachable Prometheus fails the namespace's cycle with a message; the store keeps what it
 * had, a second cycle for the namespace waits its turn, destroy cancels silently. */
static void test_unreachable_prometheus_fails_only_that_cycle(void **state)
{
    (void)state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    struct tl_http *http = tl_http_create(loop);
    struct tl_prom_options opts = {.url = "http://127.0.0.1:1", .max_attempts = 1, .timeout = 5};
    struct tl_prom *prom = tl_prom_create(loop, http, &opts);
    struct tl_usage_store *store = tl_usage_store_create();
    assert_null(tl_usage_collector_create(NULL, store));
    struct tl_usage_collector *c = tl_usage_collector_create(prom, store);
    assert_non_null(c);
    assert_ptr_equal(tl_usage_collector_prom(c), prom);
    fold_window(store, 0, 7200, 24, NULL);

    struct tl_usage_settings settings = {0};
    struct outcome o = {0};
    assert_int_equal(tl_usage_collect(c, NULL, shop, 3, &settings, 10000, on_cycle, &o), TL_EINVAL);
    assert_int_equal(tl_usage_collect(c, "shop", shop, 3, &settings, 10000, on_cycle, &o), TL_OK);
    assert_true(tl_usage_collecting(c, "shop"));
    assert_false(tl_usage_collecting(c, "other"));
    assert_int_equal(tl_usage_collect(c, "shop", shop, 3, &settings, 10000, on_cycle, &o),
                     TL_ESTATE);
    int expired = 0;
    ev_timer timer;
    ev_timer_init(&timer, expire, 30, 0);
    timer.data = &expired;
    ev_timer_start(loop, &timer);
    while (o.calls == 0 && !expired)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &timer);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.err, TL_EIO);
    assert_int_equal(o.queries, 3);
    assert_non_null(strstr(o.message, " query: prometheus http://127.0.0.1:1"));
    assert_false(tl_usage_collecting(c, "shop"));
    assert_true(tl_usage_store_covered_until(store, "shop") == 7200);
    assert_int_equal(get(store, TL_KIND_DEPLOYMENT, "web", "nginx")->cpu.samples, 48);

    /* Started and then dropped with the collector: no callback, nothing leaks. */
    struct outcome dropped = {0};
    assert_int_equal(tl_usage_collect(c, "other", shop, 3, &settings, 10000, on_cycle, &dropped),
                     TL_OK);
    tl_usage_collector_destroy(c);
    assert_int_equal(dropped.calls, 0);
    tl_usage_store_destroy(store);
    tl_http_destroy(http);
    ev_loop_destroy(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_and_memory_queries_with_defaults),
        cmocka_unit_test(test_facts_query_is_one_instant_query_with_tagged_parts),
        cmocka_unit_test(test_queries_use_configured_names_selector_and_windows),
        cmocka_unit_test(test_namespace_is_quoted_and_durations_are_exact),
        cmocka_unit_test(test_huge_extra_selector_is_refused),
        cmocka_unit_test(test_settings_from_policy_take_its_metrics),
        cmocka_unit_test(test_pod_name_shapes_of_each_kind),
        cmocka_unit_test(test_a_name_does_not_capture_pods_of_a_longer_name),
        cmocka_unit_test(test_truncated_generated_names),
        cmocka_unit_test(test_fold_merges_pods_of_a_workload_container),
        cmocka_unit_test(test_each_container_of_a_workload),
        cmocka_unit_test(test_incremental_folds_never_double_count),
        cmocka_unit_test(test_replacing_batch_drops_older_history),
        cmocka_unit_test(test_bad_samples_and_labels_are_skipped),
        cmocka_unit_test(test_fold_uses_configured_label_names),
        cmocka_unit_test(test_facts_give_oom_kills_and_throttling),
        cmocka_unit_test(test_unreachable_prometheus_fails_only_that_cycle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
