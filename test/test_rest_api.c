/* Tests for the REST API's pure pieces: filters, list items, approval bodies, usage grids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json.h"
#include "rest_api.h"

static struct tl_rec_obj rec(const char *phase, const char *pns, const char *pname, double usd)
{
    struct tl_rec_obj r;
    memset(&r, 0, sizeof(r));
    r.phase = (char *)phase;
    r.policy_ns = (char *)pns;
    r.policy_name = (char *)pname;
    r.savings_usd = usd;
    return r;
}

static void filters_narrow_the_list(void **state)
{
    (void)state;
    struct tl_rec_obj r = rec("Pending", "shop", "web-rightsizing", 12.5);
    struct tl_rest_filter any = {.min_savings = -1};
    assert_true(tl_rest_filter_match(&any, "shop", &r));

    struct tl_rest_filter f = {.namespace = "shop", .min_savings = -1};
    assert_true(tl_rest_filter_match(&f, "shop", &r));
    assert_false(tl_rest_filter_match(&f, "data", &r));

    f = (struct tl_rest_filter){.phase = "pending", .min_savings = -1};
    assert_true(tl_rest_filter_match(&f, "shop", &r));
    f.phase = "Applied";
    assert_false(tl_rest_filter_match(&f, "shop", &r));

    f = (struct tl_rest_filter){.policy = "shop/web-rightsizing", .min_savings = -1};
    assert_true(tl_rest_filter_match(&f, "shop", &r));
    f.policy = "web-rightsizing";
    assert_true(tl_rest_filter_match(&f, "shop", &r));
    f.policy = "other/web-rightsizing";
    assert_false(tl_rest_filter_match(&f, "shop", &r));
    f.policy = "sho/web-rightsizing";
    assert_false(tl_rest_filter_match(&f, "shop", &r));

    f = (struct tl_rest_filter){.min_savings = 12.5};
    assert_true(tl_rest_filter_match(&f, "shop", &r));
    f.min_savings = 13;
    assert_false(tl_rest_filter_match(&f, "shop", &r));

    struct tl_rec_obj bare = rec(NULL, NULL, NULL, 0);
    f = (struct tl_rest_filter){.phase = "Pending", .min_savings = -1};
    assert_false(tl_rest_filter_match(&f, "shop", &bare));
    f = (struct tl_rest_filter){.policy = "web-rightsizing", .min_savings = -1};
    assert_false(tl_rest_filter_match(&f, "shop", &bare));
}

static void list_item_reads_the_status(void **state)
{
    (void)state;
    struct tl_rec_obj r = rec("Pending", "shop", "web", 61.204);
    r.target_kind = "Deployment";
    r.target_name = "web";
    r.revision = 4;
    r.approved_revision = 3;
    r.status_json = "{\"confidence\":\"High\",\"explanation\":\"p95 CPU 212m\","
                    "\"display\":{\"target\":\"Deployment/web\",\"cpu\":\"1\\u2192250m\","
                    "\"memory\":\"2Gi\\u2192640Mi\"},\"revision\":4}";
    cJSON *item = tl_rest_rec_item("shop", "deployment-web", &r, false);
    assert_non_null(item);
    assert_string_equal(tl_json_get(item, "namespace", NULL)->valuestring, "shop");
    assert_string_equal(tl_json_get(item, "target", "kind", NULL)->valuestring, "Deployment");
    assert_string_equal(tl_json_get(item, "policy", NULL)->valuestring, "shop/web");
    assert_string_equal(tl_json_get(item, "confidence", NULL)->valuestring, "High");
    assert_string_equal(tl_json_get(item, "display", "cpu", NULL)->valuestring, "1\xE2\x86\x92"
                                                                                "250m");
    assert_int_equal(tl_json_get(item, "revision", NULL)->valuedouble, 4);
    assert_int_equal(tl_json_get(item, "approvedRevision", NULL)->valuedouble, 3);
    /* Dollars are rounded to cents. */
    assert_true(tl_json_get(item, "savings", NULL)->valuedouble == 61.2);
    assert_null(tl_json_get(item, "status", NULL));
    cJSON_Delete(item);

    item = tl_rest_rec_item("shop", "deployment-web", &r, true);
    assert_non_null(item);
    assert_int_equal(tl_json_get(item, "status", "revision", NULL)->valuedouble, 4);
    assert_int_equal(tl_json_get(item, "approval", "approvedRevision", NULL)->valuedouble, 3);
    cJSON_Delete(item);

    /* Before the first analysis there is no status: every field is there, as null. */
    struct tl_rec_obj fresh = rec(NULL, NULL, NULL, 0);
    item = tl_rest_rec_item("shop", "deployment-api", &fresh, true);
    assert_non_null(item);
    assert_true(cJSON_IsNull(tl_json_get(item, "phase", NULL)));
    assert_true(cJSON_IsNull(tl_json_get(item, "display", "cpu", NULL)));
    assert_true(cJSON_IsNull(tl_json_get(item, "status", NULL)));
    cJSON_Delete(item);
}

static void approval_bodies(void **state)
{
    (void)state;
    int64_t rev = -1;
    char err[256];
    const char *ok = "{\"revision\": 7}";
    assert_int_equal(tl_rest_parse_approval(ok, strlen(ok), &rev, err, sizeof(err)), TL_OK);
    assert_int_equal(rev, 7);

    static const struct {
        const char *body;
        const char *says;
    } bad[] = {
        {"{", "JSON"},
        {"[1]", "object"},
        {"{}", "revision: required"},
        {"{\"revision\":\"7\"}", "positive integer"},
        {"{\"revision\":7.5}", "positive integer"},
        {"{\"revision\":0}", "positive integer"},
        {"{\"revision\":-3}", "positive integer"},
        {"{\"revision\":1e300}", "positive integer"},
        {"{\"revision\":7,\"revision\":8}", "JSON"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        rev = -1;
        assert_int_equal(
            tl_rest_parse_approval(bad[i].body, strlen(bad[i].body), &rev, err, sizeof(err)),
            TL_EINVAL);
        assert_non_null(strstr(err, bad[i].says));
        assert_int_equal(rev, -1); /* untouched on error */
    }
}

static void usage_steps_fit_500_points(void **state)
{
    (void)state;
    assert_true(tl_rest_usage_step(7 * 86400, 60) == 1260);
    assert_true(tl_rest_usage_step(86400, 60) == 180);
    assert_true(tl_rest_usage_step(3600, 60) == 60);
    assert_true(tl_rest_usage_step(3600, 300) == 300);
    for (int minutes = 10; minutes <= 90 * 1440; minutes = minutes * 17 / 10) {
        double range = minutes * 60.0;
        double step = tl_rest_usage_step(range, 60);
        assert_true(range / step + 1 <= TL_REST_MAX_POINTS);
        assert_true((long)step % 60 == 0);
    }
}

static struct tl_prom_label labels[3][2] = {
    {{"container", "nginx"}, {"pod", "web-5d8f6c7b9-x2x4z"}},
    {{"container", "nginx"}, {"pod", "web-5d8f6c7b9-q7bz2"}},
    {{"container", "nginx"}, {"pod", "webhooks-6c7b9f8d4-zzbb2"}},
};

static void fold_takes_peak_and_mean_over_the_pods(void **state)
{
    (void)state;
    struct tl_prom_point a[] = {{1000, 1.0}, {1060, 3.0}, {1180, 0.5}};
    struct tl_prom_point b[] = {{1000, 2.0}, {1061, 1.0}, {5000, 9.0}};
    struct tl_prom_point other[] = {{1000, 50.0}};
    struct tl_prom_series series[] = {
        {labels[0], 2, a, 3},
        {labels[1], 2, b, 3},
        {labels[2], 2, other, 1}, /* another Deployment's pod */
    };
    struct tl_prom_result res = {series, 3, 7};
    struct tl_rest_usage_window w = {.kind = TL_KIND_DEPLOYMENT,
                                     .workload = "web",
                                     .pod_label = "pod",
                                     .container_label = "container",
                                     .start = 1000,
                                     .step = 60,
                                     .points = 4};
    cJSON *out = tl_rest_usage_fold(&res, &w);
    assert_non_null(out);
    assert_int_equal(tl_json_get(out, "pods", NULL)->valuedouble, 2);
    const cJSON *max = tl_json_get(out, "containers", "nginx", "max", NULL);
    const cJSON *avg = tl_json_get(out, "containers", "nginx", "avg", NULL);
    assert_int_equal(tl_json_size(max), 4);
    assert_true(tl_json_array_at(max, 0)->valuedouble == 2.0);
    assert_true(tl_json_array_at(avg, 0)->valuedouble == 1.5);
    assert_true(tl_json_array_at(max, 1)->valuedouble == 3.0); /* 1061 rounds to point 1 */
    assert_true(tl_json_array_at(avg, 1)->valuedouble == 2.0);
    assert_true(cJSON_IsNull(tl_json_array_at(max, 2)));
    assert_true(tl_json_array_at(max, 3)->valuedouble == 0.5);
    cJSON_Delete(out);

    /* Nothing of the workload's: no containers, no pods. */
    w.workload = "catalog";
    out = tl_rest_usage_fold(&res, &w);
    assert_non_null(out);
    assert_int_equal(tl_json_get(out, "pods", NULL)->valuedouble, 0);
    assert_int_equal(tl_json_size(tl_json_get(out, "containers", NULL)), 0);
    cJSON_Delete(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(filters_narrow_the_list),
        cmocka_unit_test(list_item_reads_the_status),
        cmocka_unit_test(approval_bodies),
        cmocka_unit_test(usage_steps_fit_500_points),
        cmocka_unit_test(fold_takes_peak_and_mean_over_the_pods),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
