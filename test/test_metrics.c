#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

static int setup(void **state)
{
    tl_log_configure(TL_LOG_OFF, TL_LOG_TEXT, NULL);
    struct tl_metrics *m = tl_metrics_create(0);
    assert_non_null(m);
    *state = m;
    return 0;
}

static int teardown(void **state)
{
    tl_metrics_destroy(*state);
    return 0;
}

/* Renders m; the caller frees. */
static char *render(struct tl_metrics *m)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(tl_metrics_render(m, &text, &len), TL_OK);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

static void assert_render(struct tl_metrics *m, const char *expected)
{
    char *text = render(m);
    if (strcmp(text, expected) != 0)
        fail_msg("exposition differs\n--- expected\n%s--- got\n%s", expected, text);
    free(text);
}

static void test_counter_with_labels(void **state)
{
    struct tl_metrics *m = *state;
    struct tl_counter *c = NULL;
    const char *labels[] = {"kind", "result", NULL};
    assert_int_equal(tl_metrics_counter(m, "tailor_changes_applied_total",
                                        "Changes applied to workloads.", labels, &c),
                     TL_OK);
    tl_metrics_counter_add(c, 2, "StatefulSet", "failed");
    tl_metrics_counter_add(c, 1, "Deployment", "success");
    tl_metrics_counter_add(c, 0.5, "Deployment", "success");
    tl_metrics_counter_add(c, -3, "Deployment", "success"); /* counters never go down */
    assert_render(m, "# HELP tailor_changes_applied_total Changes applied to workloads.\n"
                     "# TYPE tailor_changes_applied_total counter\n"
                     "tailor_changes_applied_total{kind=\"Deployment\",result=\"success\"} 1.5\n"
                     "tailor_changes_applied_total{kind=\"StatefulSet\",result=\"failed\"} 2\n");
    double v = 0;
    assert_int_equal(tl_metrics_counter_get(c, &v, "Deployment", "success"), TL_OK);
    assert_true(v == 1.5);
    assert_int_equal(tl_metrics_counter_get(c, &v, "DaemonSet", "success"), TL_ENOTFOUND);
}

static void test_gauge_without_labels_starts_at_zero(void **state)
{
    struct tl_metrics *m = *state;
    struct tl_gauge *g = NULL;
    assert_int_equal(tl_metrics_gauge(m, "tailor_leader", "1 while this replica leads.", NULL, &g),
                     TL_OK);
    assert_render(m, "# HELP tailor_leader 1 while this replica leads.\n"
                     "# TYPE tailor_leader gauge\n"
                     "tailor_leader 0\n");
    tl_metrics_gauge_set(g, 1);
    tl_metrics_gauge_add(g, -3.25);
    assert_render(m, "# HELP tailor_leader 1 while this replica leads.\n"
                     "# TYPE tailor_leader gauge\n"
                     "tailor_leader -2.25\n");
}

static void test_histogram_buckets_are_cumulative(void **state)
{
    struct tl_metrics *m = *state;
    struct tl_metrics_hist *h = NULL;
    const char *labels[] = {"controller", NULL};
    const double bounds[] = {0.125, 0.5, 1};
    assert_int_equal(tl_metrics_histogram(m, "tailor_reconcile_duration_seconds",
                                          "Time per reconcile.", labels, bounds, 3, &h),
                     TL_OK);
    tl_metrics_histogram_observe(h, 0.0625, "policy");
    tl_metrics_histogram_observe(h, 0.5, "policy"); /* on a bound: counted in that bucket */
    tl_metrics_histogram_observe(h, 0.75, "policy");
    tl_metrics_histogram_observe(h, 3, "policy");
    tl_metrics_histogram_observe(h, NAN, "policy"); /* ignored */
    tl_metrics_histogram_observe(h, 2, "nodepool");
    assert_render(
        m, "# HELP tailor_reconcile_duration_seconds Time per reconcile.\n"
           "# TYPE tailor_reconcile_duration_seconds histogram\n"
           "tailor_reconcile_duration_seconds_bucket{controller=\"nodepool\",le=\"0.125\"} 0\n"
           "tailor_reconcile_duration_seconds_bucket{controller=\"nodepool\",le=\"0.5\"} 0\n"
           "tailor_reconcile_duration_seconds_bucket{controller=\"nodepool\",le=\"1\"} 0\n"
           "tailor_reconcile_duration_seconds_bucket{controller=\"nodepool\",le=\"+Inf\"} 1\n"
           "tailor_reconcile_duration_seconds_sum{controller=\"nodepool\"} 2\n"
           "tailor_reconcile_duration_seconds_count{controller=\"nodepool\"} 1\n"
           "tailor_reconcile_duration_seconds_bucket{controller=\"policy\",le=\"0.125\"} 1\n"
           "tailor_reconcile_duration_seconds_bucket{controller=\"policy\",le=\"0.5\"} 2\n"
           "tailor_reconcile_duration_seconds_bucket{controller=\"policy\",le=\"1\"} 3\n"
           "tailor_reconcile_duration_seconds_bucket{controller=\"policy\",le=\"+Inf\"} 4\n"
           "tailor_reconcile_duration_seconds_sum{controller=\"policy\"} 4.3125\n"
           "tailor_reconcile_duration_seconds_count{controller=\"policy\"} 4\n");
}

static void test_histogram_without_labels(void **state)
{
    struct tl_metrics *m = *state;
    struct tl_metrics_hist *h = NULL;
    const double bounds[] = {1, 2, INFINITY}; /* a trailing +Inf is the implicit bucket */
    assert_int_equal(
        tl_metrics_histogram(m, "tailor_plan_seconds", "Planner run time.", NULL, bounds, 3, &h),
        TL_OK);
    tl_metrics_histogram_observe(h, 1.5);
    assert_render(m, "# HELP tailor_plan_seconds Planner run time.\n"
                     "# TYPE tailor_plan_seconds histogram\n"
                     "tailor_plan_seconds_bucket{le=\"1\"} 0\n"
                     "tailor_plan_seconds_bucket{le=\"2\"} 1\n"
                     "tailor_plan_seconds_bucket{le=\"+Inf\"} 1\n"
                     "tailor_plan_seconds_sum 1.5\n"
                     "tailor_plan_seconds_count 1\n");
}

static void test_escaping(void **state)
{
    struct tl_metrics *m = *state;
    struct tl_gauge *g = NULL;
    const char *labels[] = {"name", NULL};
    assert_int_equal(
        tl_metrics_gauge(m, "tailor_example", "Back\\slash and\nnewline \"kept\".", labels, &g),
        TL_OK);
    tl_metrics_gauge_set(g, 7, "a\\b\"c\nd");
    assert_render(m, "# HELP tailor_example Back\\\\slash and\\nnewline \"kept\".\n"
                     "# TYPE tailor_example gauge\n"
                     "tailor_example{name=\"a\\\\b\\\"c\\nd\"} 7\n");
}

static void test_order_is_deterministic(void **state)
{
    struct tl_metrics *m = *state;
    struct tl_gauge *b = NULL;
    struct tl_gauge *a = NULL;
    const char *labels[] = {"ns", "name", NULL};
    assert_int_equal(tl_metrics_gauge(m, "zz_b", "B.", labels, &b), TL_OK);
    assert_int_equal(tl_metrics_gauge(m, "aa_a", "A.", NULL, &a), TL_OK);
    tl_metrics_gauge_set(b, 1, "shop", "web");
    tl_metrics_gauge_set(b, 2, "shop", "api");
    tl_metrics_gauge_set(b, 3, "default", "zeta");
    tl_metrics_gauge_set(b, 4, "shop", "");
    /* Sorted by the first label value, then the second; "" before anything. */
    assert_render(m, "# HELP aa_a A.\n# TYPE aa_a gauge\naa_a 0\n"
                     "# HELP zz_b B.\n# TYPE zz_b gauge\n"
                     "zz_b{ns=\"default\",name=\"zeta\"} 3\n"
                     "zz_b{ns=\"shop\",name=\"\"} 4\n"
                     "zz_b{ns=\"shop\",name=\"api\"} 2\n"
                     "zz_b{ns=\"shop\",name=\"web\"} 1\n");
}

static void test_number_formatting(void **state)
{
    struct tl_metrics *m = *state;
    struct tl_gauge *g = NULL;
    const char *labels[] = {"case", NULL};
    assert_int_equal(tl_metrics_gauge(m, "tailor_numbers", "Numbers.", labels, &g), TL_OK);
    tl_metrics_gauge_set(g, 0.1, "a");
    tl_metrics_gauge_set(g, 1e20, "b");
    tl_metrics_gauge_set(g, NAN, "c");
    tl_metrics_gauge_set(g, INFINITY, "d");
    tl_metrics_gauge_set(g, -INFINITY, "e");
    tl_metrics_gauge_set(g, -42, "f");
    tl_metrics_gauge_set(g, 1.0 / 3.0, "g");
    tl_metrics_gauge_set(g, 123456789012345.0, "h");
    char *text = render(m);
    assert_non_null(strstr(text, "{case=\"a\"} 0.1\n"));
    assert_non_null(strstr(text, "{case=\"b\"} 1e+20\n"));
    assert_non_null(strstr(text, "{case=\"c\"} NaN\n"));
    assert_non_null(strstr(text, "{case=\"d\"} +Inf\n"));
    assert_non_null(strstr(text, "{case=\"e\"} -Inf\n"));
    assert_non_null(strstr(text, "{case=\"f\"} -42\n"));
    assert_non_null(strstr(text, "{case=\"h\"} 123456789012345\n"));
    /* A third reads back exactly, so nothing is lost in the exposition. */
    const char *third = strstr(text, "{case=\"g\"} ");
    assert_non_null(third);
    assert_true(strtod(third + strlen("{case=\"g\"} "), NULL) == 1.0 / 3.0);
    free(text);
}

static void test_cardinality_cap(void **state)
{
    (void)state;
    struct tl_metrics *m = tl_metrics_create(3);
    assert_non_null(m);
    struct tl_counter *c = NULL;
    const char *labels[] = {"pod", NULL};
    assert_int_equal(tl_metrics_counter(m, "tailor_events_total", "Events.", labels, &c), TL_OK);
    const char *pods[] = {"a", "b", "c", "d", "e"};
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < 5; i++)
            tl_metrics_counter_add(c, 1, pods[i]);
    assert_int_equal(tl_metrics_series_count(m, "tailor_events_total"), 3);
    /* Existing series keep counting; the dropped observations are themselves counted. */
    assert_render(m, "# HELP tailor_events_total Events.\n"
                     "# TYPE tailor_events_total counter\n"
                     "tailor_events_total{pod=\"a\"} 2\n"
                     "tailor_events_total{pod=\"b\"} 2\n"
                     "tailor_events_total{pod=\"c\"} 2\n"
                     "# HELP tailor_metrics_dropped_series_total Observations dropped because "
                     "their metric already held the maximum number of series or a label value was "
                     "too long, by metric.\n"
                     "# TYPE tailor_metrics_dropped_series_total counter\n"
                     "tailor_metrics_dropped_series_total{metric=\"tailor_events_total\"} 4\n");

    /* Removing a series makes room again. */
    assert_int_equal(tl_metrics_counter_remove(c, "a"), TL_OK);
    assert_int_equal(tl_metrics_counter_remove(c, "a"), TL_ENOTFOUND);
    tl_metrics_counter_add(c, 5, "e");
    double v = 0;
    assert_int_equal(tl_metrics_counter_get(c, &v, "e"), TL_OK);
    assert_true(v == 5);
    tl_metrics_destroy(m);
}

static void test_long_label_value_is_dropped(void **state)
{
    struct tl_metrics *m = *state;
    struct tl_gauge *g = NULL;
    const char *labels[] = {"name", NULL};
    assert_int_equal(tl_metrics_gauge(m, "tailor_long", "Long values.", labels, &g), TL_OK);
    char *big = malloc(TL_METRICS_MAX_VALUE + 2);
    assert_non_null(big);
    memset(big, 'x', TL_METRICS_MAX_VALUE + 1);
    big[TL_METRICS_MAX_VALUE + 1] = '\0';
    tl_metrics_gauge_set(g, 1, big);
    big[TL_METRICS_MAX_VALUE] = '\0'; /* exactly at the limit: kept */
    tl_metrics_gauge_set(g, 2, big);
    free(big);
    assert_int_equal(tl_metrics_series_count(m, "tailor_long"), 1);
    char *text = render(m);
    assert_non_null(
        strstr(text, "tailor_metrics_dropped_series_total{metric=\"tailor_long\"} 1\n"));
    free(text);
}

static void test_name_validation(void **state)
{
    struct tl_metrics *m = *state;
    struct tl_counter *c = NULL;
    struct tl_metrics_hist *h = NULL;
    const double bounds[] = {1, 2};
    assert_int_equal(tl_metrics_counter(m, "1starts_with_digit", "x", NULL, &c), TL_EINVAL);
    assert_int_equal(tl_metrics_counter(m, "has-dash", "x", NULL, &c), TL_EINVAL);
    assert_int_equal(tl_metrics_counter(m, "", "x", NULL, &c), TL_EINVAL);
    assert_int_equal(tl_metrics_counter(m, NULL, "x", NULL, &c), TL_EINVAL);
    assert_int_equal(tl_metrics_counter(m, "no_help_total", "", NULL, &c), TL_EINVAL);
    assert_int_equal(tl_metrics_counter(m, "ok:with_colon_total", "Colons are legal.", NULL, &c),
                     TL_OK);

    const char *reserved[] = {"__name", NULL};
    const char *dashed[] = {"a-b", NULL};
    const char *dup[] = {"a", "a", NULL};
    const char *le[] = {"le", NULL};
    const char *nine[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", NULL};
    assert_int_equal(tl_metrics_counter(m, "x_total", "x", reserved, &c), TL_EINVAL);
    assert_int_equal(tl_metrics_counter(m, "x_total", "x", dashed, &c), TL_EINVAL);
    assert_int_equal(tl_metrics_counter(m, "x_total", "x", dup, &c), TL_EINVAL);
    assert_int_equal(tl_metrics_counter(m, "x_total", "x", nine, &c), TL_EINVAL);
    assert_int_equal(tl_metrics_histogram(m, "x_seconds", "x", le, bounds, 2, &h), TL_EINVAL);
    /* le is only reserved for histograms. */
    assert_int_equal(tl_metrics_counter(m, "le_total", "x", le, &c), TL_OK);

    const double backwards[] = {2, 1};
    const double with_nan[] = {1, NAN};
    assert_int_equal(tl_metrics_histogram(m, "y_seconds", "y", NULL, backwards, 2, &h), TL_EINVAL);
    assert_int_equal(tl_metrics_histogram(m, "y_seconds", "y", NULL, with_nan, 2, &h), TL_EINVAL);
    assert_int_equal(tl_metrics_histogram(m, "y_seconds", "y", NULL, bounds, 0, &h), TL_EINVAL);
    assert_int_equal(tl_metrics_histogram(m, "y_seconds", "y", NULL, bounds, 2, &h), TL_OK);

    /* Names, and the sample names a histogram produces, are unique. */
    assert_int_equal(tl_metrics_counter(m, "x_total", "x", NULL, &c), TL_OK);
    assert_int_equal(tl_metrics_counter(m, "x_total", "again", NULL, &c), TL_ECONFLICT);
    assert_int_equal(tl_metrics_counter(m, "y_seconds_count", "clash", NULL, &c), TL_ECONFLICT);
    struct tl_gauge *g = NULL;
    assert_int_equal(tl_metrics_gauge(m, "z_sum", "z", NULL, &g), TL_OK);
    assert_int_equal(tl_metrics_histogram(m, "z", "clash", NULL, bounds, 2, &h), TL_ECONFLICT);
}

static void test_gauge_remove_and_clear(void **state)
{
    struct tl_metrics *m = *state;
    struct tl_gauge *g = NULL;
    const char *labels[] = {"workload", NULL};
    assert_int_equal(tl_metrics_gauge(m, "tailor_savings", "Savings.", labels, &g), TL_OK);
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof(name), "w%03d", i);
        tl_metrics_gauge_set(g, i, name);
    }
    /* Removing every other series leaves the rest findable (the hash table shifts back). */
    for (int i = 0; i < 100; i += 2) {
        char name[16];
        snprintf(name, sizeof(name), "w%03d", i);
        assert_int_equal(tl_metrics_gauge_remove(g, name), TL_OK);
    }
    assert_int_equal(tl_metrics_series_count(m, "tailor_savings"), 50);
    for (int i = 0; i < 100; i++) {
        char name[16];
        snprintf(name, sizeof(name), "w%03d", i);
        double v = -1;
        enum tl_err err = tl_metrics_gauge_get(g, &v, name);
        if (i % 2 == 0) {
            assert_int_equal(err, TL_ENOTFOUND);
        }
        else {
            assert_int_equal(err, TL_OK);
            assert_true(v == i);
        }
    }
    char *text = render(m);
    assert_null(strstr(text, "w000"));
    assert_non_null(strstr(text, "tailor_savings{workload=\"w099\"} 99\n"));
    free(text);

    tl_metrics_gauge_clear(g);
    assert_int_equal(tl_metrics_series_count(m, "tailor_savings"), 0);
    text = render(m);
    assert_null(strstr(text, "tailor_savings")); /* no series: the metric is not exposed */
    free(text);
    tl_metrics_gauge_set(g, 1, "again");
    assert_int_equal(tl_metrics_series_count(m, "tailor_savings"), 1);
}

static void test_exponential_bounds(void **state)
{
    (void)state;
    double out[4] = {0};
    assert_int_equal(tl_metrics_exponential_bounds(0.5, 2, 4, out), TL_OK);
    assert_true(out[0] == 0.5 && out[1] == 1 && out[2] == 2 && out[3] == 4);
    double untouched[2] = {7, 7};
    assert_int_equal(tl_metrics_exponential_bounds(0, 2, 2, untouched), TL_EINVAL);
    assert_int_equal(tl_metrics_exponential_bounds(1, 1, 2, untouched), TL_EINVAL);
    assert_int_equal(tl_metrics_exponential_bounds(1, 2, 0, untouched), TL_EINVAL);
    assert_true(untouched[0] == 7 && untouched[1] == 7);
}

static void test_null_handles_are_ignored(void **state)
{
    (void)state;
    /* A metric whose registration failed must not crash the code observing it. */
    tl_metrics_counter_add(NULL, 1, "x");
    tl_metrics_gauge_set(NULL, 1);
    tl_metrics_histogram_observe(NULL, 1);
    tl_metrics_destroy(NULL);
}

static void test_ten_thousand_series(void **state)
{
    (void)state;
    struct tl_metrics *m = tl_metrics_create(20000);
    assert_non_null(m);
    struct tl_gauge *g = NULL;
    const char *labels[] = {"namespace", "workload", NULL};
    assert_int_equal(
        tl_metrics_gauge(m, "tailor_recommended_cpu_cores", "Recommended CPU.", labels, &g), TL_OK);
    for (int i = 0; i < 10000; i++) {
        char ns[16];
        char wl[16];
        snprintf(ns, sizeof(ns), "ns%d", i % 37);
        snprintf(wl, sizeof(wl), "wl%d", i);
        tl_metrics_gauge_set(g, i * 0.25, ns, wl);
    }
    char *text = render(m);
    size_t lines = 0;
    for (const char *p = text; *p != '\0'; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 10000 + 2);
    assert_non_null(
        strstr(text, "tailor_recommended_cpu_cores{namespace=\"ns0\",workload=\"wl0\"} 0\n"));
    free(text);
    tl_metrics_destroy(m);
}

/* The path of promtool on PATH, or NULL. */
static const char *find_promtool(char *buf, size_t len)
{
    const char *path = getenv("PATH");
    if (path == NULL)
        path = "/usr/bin:/bin";
    while (*path != '\0') {
        const char *colon = strchr(path, ':');
        size_t n = colon != NULL ? (size_t)(colon - path) : strlen(path);
        int w = snprintf(buf, len, "%.*s/promtool", (int)n, path);
        if (w > 0 && (size_t)w < len && access(buf, X_OK) == 0)
            return buf;
        path += n;
        if (*path == ':')
            path++;
    }
    return NULL;
}

static void test_promtool_accepts_exposition(void **state)
{
    struct tl_metrics *m = *state;
    char promtool[4096];
    if (find_promtool(promtool, sizeof(promtool)) == NULL) {
        printf("promtool not found on PATH: skipping the promtool check\n");
        skip();
    }
    struct tl_counter *c = NULL;
    struct tl_gauge *g = NULL;
    struct tl_metrics_hist *h = NULL;
    const char *labels[] = {"kind", "result", NULL};
    const char *ns[] = {"namespace", NULL};
    const double bounds[] = {0.01, 0.1, 1, 10};
    assert_int_equal(
        tl_metrics_counter(m, "tailor_changes_applied_total", "Changes applied.", labels, &c),
        TL_OK);
    assert_int_equal(tl_metrics_gauge(m, "tailor_estimated_monthly_savings_dollars",
                                      "Estimated savings per month.", ns, &g),
                     TL_OK);
    assert_int_equal(tl_metrics_histogram(m, "tailor_reconcile_duration_seconds", "Reconcile time.",
                                          NULL, bounds, 4, &h),
                     TL_OK);
    tl_metrics_counter_add(c, 3, "Deployment", "success");
    tl_metrics_counter_add(c, 1, "Deploy\"ment\\", "fail\ned");
    tl_metrics_gauge_set(g, 61.2, "shop");
    tl_metrics_gauge_set(g, NAN, "empty");
    tl_metrics_histogram_observe(h, 0.05);
    tl_metrics_histogram_observe(h, 20);

    char *text = render(m);
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "'%s' check metrics", promtool);
    FILE *p = popen(cmd, "w");
    assert_non_null(p);
    assert_int_equal(fwrite(text, 1, strlen(text), p), strlen(text));
    int status = pclose(p);
    free(text);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_counter_with_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gauge_without_labels_starts_at_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram_buckets_are_cumulative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_histogram_without_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_is_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_number_formatting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cardinality_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_label_value_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_name_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gauge_remove_and_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exponential_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_handles_are_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ten_thousand_series, setup, teardown),
        cmocka_unit_test_setup_teardown(test_promtool_accepts_exposition, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
