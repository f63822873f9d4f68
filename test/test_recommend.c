#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "recommend.h"

#define MIB 1048576.0
#define GIB 1073741824.0
#define DAY 86400.0

struct fixture {
    struct tl_histogram cpu;
    struct tl_histogram memory;
    struct tl_recommend_policy policy;
    struct tl_usage usage;
};

static struct fixture fx;

static int setup(void **state)
{
    (void)state;
    tl_histogram_init(&fx.cpu, &tl_histogram_cpu_defaults);
    tl_histogram_init(&fx.memory, &tl_histogram_memory_defaults);
    tl_recommend_policy_defaults(&fx.policy);
    fx.policy.sample_interval = 300;
    memset(&fx.usage, 0, sizeof(fx.usage));
    fx.usage.cpu = &fx.cpu;
    fx.usage.memory = &fx.memory;
    fx.usage.throttled_ratio = -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tl_histogram_free(&fx.cpu);
    tl_histogram_free(&fx.memory);
    return 0;
}

/* A deterministic wobble in [-1, 1] so usage is not a single bucket. */
static double wobble(int i)
{
    return sin(i * 0.7) * cos(i * 0.13);
}

/* `days` of samples every 5 minutes: CPU around cpu cores, memory around mem bytes. */
static void feed(double days, double cpu, double cpu_swing, double mem, double mem_swing)
{
    int n = (int)(days * DAY / 300);
    for (int i = 0; i < n; i++) {
        double t = i * 300.0;
        assert_int_equal(tl_histogram_add(&fx.cpu, cpu + cpu_swing * wobble(i), 1, t), TL_OK);
        assert_int_equal(tl_histogram_add(&fx.memory, mem + mem_swing * wobble(i + 5), 1, t),
                         TL_OK);
    }
    fx.usage.now = n * 300.0;
}

static void test_overprovisioned_service_gets_smaller_requests(void **state)
{
    (void)state;
    feed(14, 0.2, 0.05, 500 * MIB, 20 * MIB);
    struct tl_resources current = {
        .cpu_request = 1, .memory_request = 2 * GIB, .memory_limit = 2 * GIB};
    struct tl_advice advice;
    tl_recommend_container(&fx.policy, &fx.usage, &current, &advice);
    assert_int_equal(advice.confidence, TL_CONFIDENCE_HIGH);
    /* p95 of 0.15..0.25 cores is about 0.25; plus 15% is about 0.29. */
    assert_true(advice.recommended.cpu_request >= 0.25 && advice.recommended.cpu_request <= 0.31);
    /* p99 of ~480..520 MiB plus 20% is about 625 MiB. */
    assert_true(advice.recommended.memory_request >= 600 * MIB &&
                advice.recommended.memory_request <= 660 * MIB);
    assert_true(advice.recommended.cpu_limit == 0); /* CPU limit removed by default */
    /* The 1:1 memory ratio is kept. */
    assert_true(advice.recommended.memory_limit == advice.recommended.memory_request);
    assert_true(advice.lower.cpu_request <= advice.recommended.cpu_request);
    assert_true(advice.upper.cpu_request >= advice.recommended.cpu_request);
    assert_true(advice.lower.memory_request <= advice.recommended.memory_request);
    assert_true(advice.upper.memory_request >= advice.recommended.memory_request);
    assert_non_null(strstr(advice.explanation, "p95 CPU"));
    assert_non_null(strstr(advice.explanation, "over 14d"));
    assert_non_null(strstr(advice.explanation, "15%/20% headroom"));
    assert_true(advice.usage.coverage > 0.99);
}

static void test_percentiles_never_exceed_the_largest_sample(void **state)
{
    (void)state;
    /* Perfectly steady usage sits inside one bucket, whose end is up to 5% above it: the advice
     * is the usage plus headroom, not the bucket end plus headroom. */
    feed(14, 0.2, 0, 500 * MIB, 0);
    struct tl_resources current = {.cpu_request = 0.5, .memory_request = GIB};
    struct tl_advice advice;
    tl_recommend_container(&fx.policy, &fx.usage, &current, &advice);
    assert_float_equal(advice.usage.cpu_p95, 0.2, 1e-12);
    assert_true(advice.usage.memory_p99 <= advice.usage.memory_max);
    assert_float_equal(advice.recommended.cpu_request, tl_round_cpu(0.2 * 1.15), 1e-12);
    assert_float_equal(advice.recommended.memory_request, tl_round_memory(500 * MIB * 1.2), 1);
    assert_non_null(strstr(advice.explanation, "p95 CPU 200m and p99 memory 500Mi"));

    /* Percentile 100 is the observed maximum, as the API documents. */
    fx.policy.memory.percentile = 100;
    fx.policy.memory.headroom_percent = 0;
    tl_recommend_container(&fx.policy, &fx.usage, &current, &advice);
    assert_float_equal(advice.recommended.memory_request, 500 * MIB, 1);
}

static void test_oom_kills_raise_memory_above_the_killed_usage(void **state)
{
    (void)state;
    feed(14, 0.1, 0.02, 800 * MIB, 50 * MIB);
    fx.usage.oom_kills = 3;
    fx.usage.oom_memory = GIB;
    struct tl_resources current = {.cpu_request = 0.1, .memory_request = GIB, .memory_limit = GIB};
    struct tl_advice advice;
    tl_recommend_container(&fx.policy, &fx.usage, &current, &advice);
    assert_true(advice.oom_bumped);
    assert_true(advice.recommended.memory_request >= 1.2 * GIB);
    assert_true(advice.recommended.memory_limit >= advice.recommended.memory_request);
    assert_non_null(strstr(advice.explanation, "3 OOM kills raised memory to"));
}

static void test_short_history_limits_the_cut_and_says_so(void **state)
{
    (void)state;
    feed(0.25, 0.1, 0.01, 200 * MIB, 5 * MIB); /* six hours */
    struct tl_resources current = {.cpu_request = 1, .memory_request = GIB};
    struct tl_advice advice;
    tl_recommend_container(&fx.policy, &fx.usage, &current, &advice);
    assert_int_equal(advice.confidence, TL_CONFIDENCE_LOW);
    assert_true(advice.capped_by_confidence);
    assert_float_equal(advice.recommended.cpu_request, 0.7, 1e-9);
    assert_float_equal(advice.recommended.memory_request, tl_round_memory(0.7 * GIB), 1);
    assert_non_null(strstr(advice.explanation, "limited while confidence is Low"));
}

static void test_no_history_keeps_current_values(void **state)
{
    (void)state;
    feed(300.0 / DAY * 3, 0.1, 0, 100 * MIB, 0); /* fifteen minutes */
    struct tl_resources current = {.cpu_request = 0.5, .cpu_limit = 1, .memory_request = GIB};
    struct tl_advice advice;
    tl_recommend_container(&fx.policy, &fx.usage, &current, &advice);
    assert_int_equal(advice.confidence, TL_CONFIDENCE_NONE);
    assert_memory_equal(&advice.recommended, &current, sizeof(current));
    assert_non_null(strstr(advice.explanation, "Not enough usage history"));
}

static void test_limit_modes(void **state)
{
    (void)state;
    feed(14, 0.4, 0.02, 300 * MIB, 5 * MIB);
    struct tl_resources current = {
        .cpu_request = 1, .cpu_limit = 2, .memory_request = GIB, .memory_limit = 2 * GIB};
    struct tl_advice advice;

    fx.policy.cpu_limit = TL_LIMIT_KEEP_RATIO;
    fx.policy.memory_limit = TL_LIMIT_KEEP_RATIO;
    tl_recommend_container(&fx.policy, &fx.usage, &current, &advice);
    assert_float_equal(advice.recommended.cpu_limit, 2 * advice.recommended.cpu_request, 0.011);
    assert_float_equal(advice.recommended.memory_limit, 2 * advice.recommended.memory_request,
                       16 * MIB);

    fx.policy.cpu_limit = TL_LIMIT_SET_TO_REQUEST;
    fx.policy.memory_limit = TL_LIMIT_REMOVE;
    tl_recommend_container(&fx.policy, &fx.usage, &current, &advice);
    assert_true(advice.recommended.cpu_limit == advice.recommended.cpu_request);
    assert_true(advice.recommended.memory_limit == 0);

    fx.policy.cpu_limit = TL_LIMIT_KEEP;
    fx.policy.memory_limit = TL_LIMIT_KEEP;
    tl_recommend_container(&fx.policy, &fx.usage, &current, &advice);
    assert_true(advice.recommended.cpu_limit == 2);
    assert_true(advice.recommended.memory_limit == 2 * GIB);
}

static void test_memory_limit_never_below_the_largest_working_set(void **state)
{
    (void)state;
    /* Steady 200 MiB with one 900 MiB peak: p99 ignores the peak, the limit must not. */
    feed(14, 0.1, 0.01, 200 * MIB, 2 * MIB);
    assert_int_equal(tl_histogram_add(&fx.memory, 900 * MIB, 1, fx.usage.now), TL_OK);
    struct tl_resources current = {.cpu_request = 0.1, .memory_request = GIB, .memory_limit = GIB};
    struct tl_advice advice;
    tl_recommend_container(&fx.policy, &fx.usage, &current, &advice);
    assert_true(advice.recommended.memory_request < 300 * MIB);
    assert_true(advice.recommended.memory_limit >= 990 * MIB);
}

static void test_hpa_target_sets_the_cpu_fixed_point(void **state)
{
    (void)state;
    feed(14, 0.35, 0.1, 300 * MIB, 5 * MIB);
    fx.usage.hpa_cpu_target_percent = 70;
    struct tl_resources current = {.cpu_request = 1, .memory_request = GIB};
    struct tl_advice advice;
    tl_recommend_container(&fx.policy, &fx.usage, &current, &advice);
    assert_true(advice.hpa_consistent);
    /* Mean 0.35 cores at a 70% target: 0.5 cores per pod. */
    assert_true(fabs(advice.recommended.cpu_request - 0.5) < 0.03);
    assert_non_null(strstr(advice.explanation, "HPA's 70% target"));
}

static void test_throttling_sizes_cpu_from_the_peak(void **state)
{
    (void)state;
    feed(14, 0.45, 0.05, 300 * MIB, 5 * MIB);
    fx.usage.throttled_ratio = 0.3;
    struct tl_resources current = {.cpu_request = 0.5, .cpu_limit = 0.5, .memory_request = GIB};
    struct tl_advice advice;
    tl_recommend_container(&fx.policy, &fx.usage, &current, &advice);
    assert_true(advice.recommended.cpu_request >= 0.5 * 1.15 - 0.01);
}

static void test_guaranteed_policy_sets_limits_to_safe_requests(void **state)
{
    (void)state;
    feed(14, 0.3, 0.05, 400 * MIB, 50 * MIB);
    fx.policy.guaranteed = true;
    struct tl_resources current = {.cpu_request = 1, .memory_request = GIB};
    struct tl_advice advice;
    tl_recommend_container(&fx.policy, &fx.usage, &current, &advice);
    assert_true(advice.recommended.cpu_limit == advice.recommended.cpu_request);
    assert_true(advice.recommended.memory_limit == advice.recommended.memory_request);
    assert_true(advice.recommended.memory_request >= fx.memory.max_value * 1.1);
    assert_int_equal(tl_qos_of(&advice.recommended, 1), TL_QOS_GUARANTEED);
}

static void test_policy_bounds_clamp_the_advice(void **state)
{
    (void)state;
    feed(14, 0.002, 0.0005, 5 * MIB, 1 * MIB);
    fx.policy.cpu.min = 0.05;
    fx.policy.memory.min = 64 * MIB;
    struct tl_resources current = {.cpu_request = 0.1, .memory_request = 128 * MIB};
    struct tl_advice advice;
    tl_recommend_container(&fx.policy, &fx.usage, &current, &advice);
    assert_float_equal(advice.recommended.cpu_request, 0.05, 1e-9);
    assert_float_equal(advice.recommended.memory_request, 64 * MIB, 1);

    /* And the maximum caps a busy container. */
    teardown(state);
    setup(state);
    feed(14, 4, 0.5, 8 * GIB, GIB);
    fx.policy.cpu.max = 2;
    fx.policy.memory.max = 4 * GIB;
    tl_recommend_container(&fx.policy, &fx.usage, &current, &advice);
    assert_float_equal(advice.recommended.cpu_request, 2, 1e-9);
    assert_float_equal(advice.recommended.memory_request, 4 * GIB, 1);
}

static void test_rounding_and_confidence_rules(void **state)
{
    (void)state;
    assert_float_equal(tl_round_cpu(0.0123), 0.013, 1e-12);
    assert_float_equal(tl_round_cpu(0.25), 0.25, 1e-12);
    assert_float_equal(tl_round_cpu(0.2501), 0.255, 1e-12);
    assert_float_equal(tl_round_cpu(1.234), 1.24, 1e-12);
    assert_float_equal(tl_round_memory(500 * MIB + 1), 501 * MIB, 1e-6);
    assert_float_equal(tl_round_memory(1.1 * GIB), 1136 * MIB, 1e-6);
    assert_int_equal(tl_recommend_confidence(1800, 1), TL_CONFIDENCE_NONE);
    assert_int_equal(tl_recommend_confidence(12 * 3600, 1), TL_CONFIDENCE_LOW);
    assert_int_equal(tl_recommend_confidence(14 * DAY, 0.3), TL_CONFIDENCE_LOW);
    assert_int_equal(tl_recommend_confidence(3 * DAY, 1), TL_CONFIDENCE_MEDIUM);
    assert_int_equal(tl_recommend_confidence(14 * DAY, 0.7), TL_CONFIDENCE_MEDIUM);
    assert_int_equal(tl_recommend_confidence(14 * DAY, 0.95), TL_CONFIDENCE_HIGH);
}

static void test_qos_classes_follow_kubernetes(void **state)
{
    (void)state;
    struct tl_resources none[2];
    memset(none, 0, sizeof(none));
    assert_int_equal(tl_qos_of(none, 2), TL_QOS_BEST_EFFORT);
    struct tl_resources burst[2] = {{.cpu_request = 0.1}, {.memory_limit = 0}};
    assert_int_equal(tl_qos_of(burst, 2), TL_QOS_BURSTABLE);
    struct tl_resources guar[2] = {
        {.cpu_request = 1, .cpu_limit = 1, .memory_request = GIB, .memory_limit = GIB},
        {.cpu_limit = 0.5, .memory_limit = MIB}}; /* unset requests default to the limits */
    assert_int_equal(tl_qos_of(guar, 2), TL_QOS_GUARANTEED);
    guar[1].memory_request = MIB / 2;
    assert_int_equal(tl_qos_of(guar, 2), TL_QOS_BURSTABLE);
    enum tl_limit_mode mode;
    assert_true(tl_limit_mode_parse("SetToRequest", &mode));
    assert_int_equal(mode, TL_LIMIT_SET_TO_REQUEST);
    assert_false(tl_limit_mode_parse("remove", &mode));
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_overprovisioned_service_gets_smaller_requests),
        T(test_percentiles_never_exceed_the_largest_sample),
        T(test_oom_kills_raise_memory_above_the_killed_usage),
        T(test_short_history_limits_the_cut_and_says_so),
        T(test_no_history_keeps_current_values),
        T(test_limit_modes),
        T(test_memory_limit_never_below_the_largest_working_set),
        T(test_hpa_target_sets_the_cpu_fixed_point),
        T(test_throttling_sizes_cpu_from_the_peak),
        T(test_guaranteed_policy_sets_limits_to_safe_requests),
        T(test_policy_bounds_clamp_the_advice),
        T(test_rounding_and_confidence_rules),
        T(test_qos_classes_follow_kubernetes),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
