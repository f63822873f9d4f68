#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "policy.h"

#define MIB 1048576.0
#define GIB 1073741824.0

static enum tl_err parse(const char *json, struct tl_policy *out, char *err, size_t len)
{
    cJSON *spec = cJSON_Parse(json);
    if (spec == NULL)
        fail_msg("test JSON does not parse: %s", json);
    enum tl_err result = tl_policy_parse(spec, out, err, len);
    cJSON_Delete(spec);
    return result;
}

static void test_empty_spec_takes_the_documented_defaults(void **state)
{
    (void)state;
    struct tl_policy p;
    char err[256] = "";
    assert_int_equal(parse("{}", &p, err, sizeof(err)), TL_OK);
    assert_true(tl_selector_is_empty(&p.selector));
    assert_false(p.has_namespace_selector);
    assert_int_equal(p.workload_kinds,
                     TL_KIND_DEPLOYMENT | TL_KIND_STATEFULSET | TL_KIND_DAEMONSET);
    assert_int_equal(p.metrics.source, TL_METRICS_PROMETHEUS);
    assert_null(p.metrics.prometheus_url);
    assert_string_equal(p.metrics.cpu_series, "container_cpu_usage_seconds_total");
    assert_true(p.metrics.history_ms == 14LL * 86400000);
    assert_true(p.metrics.interval_ms == 3600000);
    assert_float_equal(p.recommend.cpu.percentile, 95, 0);
    assert_float_equal(p.recommend.cpu.headroom_percent, 15, 0);
    assert_float_equal(p.recommend.memory.percentile, 99, 0);
    assert_float_equal(p.recommend.memory.headroom_percent, 20, 0);
    assert_int_equal(p.recommend.cpu_limit, TL_LIMIT_REMOVE);
    assert_int_equal(p.recommend.memory_limit, TL_LIMIT_KEEP_RATIO);
    assert_int_equal(p.approval.mode, TL_APPROVAL_OFF); /* advise only unless asked */
    assert_int_equal(p.approval.max_change_percent, 50);
    assert_int_equal(p.approval.min_change_percent, 10);
    assert_true(p.approval.cooldown_ms == 6LL * 3600000);
    assert_false(p.approval.has_window);
    assert_false(p.node_pools.enabled);
    assert_string_equal(p.pricing.region, "us-east-1");
    tl_policy_free(&p);
}

static void test_full_spec_is_read(void **state)
{
    (void)state;
    const char *json =
        "{\"selector\":{\"matchLabels\":{\"tier\":\"web\"}},"
        "\"namespaceSelector\":{\"matchLabels\":{\"team\":\"shop\"}},"
        "\"workloadKinds\":[\"Deployment\"],"
        "\"metrics\":{\"prometheus\":{\"url\":\"http://prom:9090\"},\"history\":\"7d\"},"
        "\"resources\":{\"cpu\":{\"percentile\":90,\"min\":\"50m\",\"max\":2},"
        "\"memory\":{\"headroomPercent\":30,\"min\":\"64Mi\",\"max\":\"8Gi\",\"oomBumpPercent\":50}"
        ","
        "\"limits\":{\"cpu\":\"SetToRequest\",\"memory\":\"Keep\"},\"qos\":\"Guaranteed\","
        "\"excludeContainers\":[\"istio-proxy\"]},"
        "\"hpa\":{\"enabled\":true,\"minReplicas\":3},"
        "\"nodePools\":{\"selector\":{}},"
        "\"pricing\":{\"region\":\"eu-west-1\",\"spot\":{\"enabled\":true,\"discountPercent\":60}},"
        "\"approval\":{\"mode\":\"Auto\",\"maxChangePercent\":25,\"cooldown\":\"12h\","
        "\"window\":{\"schedule\":\"0 2 * * *\",\"duration\":\"2h\"},\"method\":\"InPlace\"}}";
    struct tl_policy p;
    char err[256] = "";
    assert_int_equal(parse(json, &p, err, sizeof(err)), TL_OK);
    assert_true(p.has_namespace_selector);
    assert_int_equal(p.workload_kinds, TL_KIND_DEPLOYMENT);
    assert_string_equal(p.metrics.prometheus_url, "http://prom:9090");
    assert_true(p.metrics.history_ms == 7LL * 86400000);
    assert_float_equal(p.recommend.cpu.percentile, 90, 0);
    assert_float_equal(p.recommend.cpu.min, 0.05, 1e-12);
    assert_float_equal(p.recommend.cpu.max, 2, 0);
    assert_float_equal(p.recommend.memory.min, 64 * MIB, 0);
    assert_float_equal(p.recommend.memory.max, 8 * GIB, 0);
    assert_float_equal(p.recommend.oom_bump_percent, 50, 0);
    assert_int_equal(p.recommend.cpu_limit, TL_LIMIT_SET_TO_REQUEST);
    assert_int_equal(p.recommend.memory_limit, TL_LIMIT_KEEP);
    assert_true(p.recommend.guaranteed);
    assert_true(tl_policy_excludes_container(&p, "istio-proxy"));
    assert_false(tl_policy_excludes_container(&p, "web"));
    assert_true(p.hpa.enabled);
    assert_int_equal(p.hpa.min_replicas, 3);
    assert_true(p.node_pools.enabled);
    assert_int_equal(p.node_pools.max_cost_increase_percent, 10);
    assert_string_equal(p.pricing.region, "eu-west-1");
    assert_true(p.pricing.spot);
    assert_int_equal(p.pricing.spot_discount_percent, 60);
    assert_int_equal(p.approval.mode, TL_APPROVAL_AUTO);
    assert_int_equal(p.approval.max_change_percent, 25);
    assert_true(p.approval.has_window);
    assert_true(p.approval.window_ms == 7200000);
    assert_int_equal(p.approval.method, TL_APPLY_IN_PLACE);
    assert_int_equal(tl_policy_specificity(&p), 1);
    tl_policy_free(&p);
}

static void test_invalid_specs_name_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *message;
    } cases[] = {
        {"{\"resources\":{\"cpu\":{\"percentile\":150}}}",
         "spec.resources.cpu.percentile: must be between 50 and 100, got 150"},
        {"{\"resources\":{\"memory\":{\"min\":\"1Gb\"}}}", "spec.resources.memory.min: "},
        {"{\"resources\":{\"cpu\":{\"min\":\"2\",\"max\":\"1\"}}}",
         "spec.resources.cpu.min: must not be greater than max"},
        {"{\"resources\":{\"limits\":{\"cpu\":\"Drop\"}}}",
         "spec.resources.limits.cpu: unsupported value \"Drop\": supported values: \"Remove\", "
         "\"KeepRatio\", \"SetToRequest\", \"Keep\""},
        {"{\"approval\":{\"mode\":false}}",
         "spec.approval.mode: got a boolean; YAML reads a bare Off/On as one, so quote it"},
        {"{\"approval\":{\"cooldown\":\"6 hours\"}}", "spec.approval.cooldown: invalid duration"},
        {"{\"approval\":{\"window\":{\"schedule\":\"0 25 * * *\"}}}",
         "spec.approval.window.schedule: field 2 (hour)"},
        {"{\"approval\":{\"window\":{\"duration\":\"1h\"}}}",
         "spec.approval.window.schedule: required"},
        {"{\"approval\":{\"window\":{\"schedule\":\"0 2 * * *\",\"timeZone\":\"Europe/Paris\"}}}",
         "spec.approval.window.timeZone: only \"UTC\" is supported"},
        {"{\"approval\":{\"minChangePercent\":60,\"maxChangePercent\":50}}",
         "spec.approval.minChangePercent: must not be greater than maxChangePercent"},
        {"{\"workloadKinds\":[\"Deployment\",\"CronJob\"]}", "spec.workloadKinds[1]: "},
        {"{\"metrics\":{\"prometheus\":{\"url\":\"prom:9090\"}}}",
         "spec.metrics.prometheus.url: must start with http:// or https://"},
        {"{\"metrics\":{\"history\":\"10m\"}}", "spec.metrics.history: must be at least 1h"},
        {"{\"resources\":[]}", "spec.resources: must be an object"},
        {"{\"selector\":{\"matchLabels\":{\"tier\":5}}}", "spec.selector.matchLabels.tier: "},
        {"{\"hpa\":{\"minReplicas\":5,\"maxReplicas\":2}}",
         "spec.hpa.minReplicas: must not be greater than maxReplicas"},
        {"{\"pricing\":{\"custom\":{\"cpuCoreHour\":\"0.03\"}}}",
         "spec.pricing.custom: set both cpuCoreHour and memoryGiBHour, or neither"},
        {"[]", "spec: must be an object"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tl_policy p;
        char err[256] = "";
        assert_int_equal(parse(cases[i].json, &p, err, sizeof(err)), TL_EINVAL);
        if (strncmp(err, cases[i].message, strlen(cases[i].message)) != 0)
            fail_msg("case %zu: got \"%s\", want a message starting \"%s\"", i, err,
                     cases[i].message);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_spec_takes_the_documented_defaults),
        cmocka_unit_test(test_full_spec_is_read),
        cmocka_unit_test(test_invalid_specs_name_the_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
