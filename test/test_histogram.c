#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "histogram.h"

#define DAY 86400.0

static const struct tl_histogram_options no_decay = {
    .first_bucket = 0.001, .ratio = 1.05, .nbuckets = 238, .half_life = 0};

static void test_every_value_lands_in_the_bucket_that_holds_it(void **state)
{
    (void)state;
    const struct tl_histogram_options *opts = &tl_histogram_cpu_defaults;
    for (size_t i = 0; i + 1 < opts->nbuckets; i++) {
        double start = tl_histogram_bucket_start(opts, i);
        double end = tl_histogram_bucket_start(opts, i + 1);
        assert_int_equal(tl_histogram_bucket_of(opts, start), i);
        assert_int_equal(tl_histogram_bucket_of(opts, start + (end - start) * 0.999), i);
    }
    assert_int_equal(tl_histogram_bucket_of(opts, 0), 0);
    assert_int_equal(tl_histogram_bucket_of(opts, -5), 0);
    assert_int_equal(tl_histogram_bucket_of(opts, 1e9), opts->nbuckets - 1);
    /* The layouts reach what real containers use: 1000 cores and 1 TB. */
    assert_true(tl_histogram_bucket_start(opts, opts->nbuckets - 1) > 1000);
    assert_true(tl_histogram_bucket_start(&tl_histogram_memory_defaults,
                                          tl_histogram_memory_defaults.nbuckets - 1) > 1e12);
}

static void test_percentiles_are_tight_upper_bounds(void **state)
{
    (void)state;
    struct tl_histogram hist;
    tl_histogram_init(&hist, &no_decay);
    /* 1000 samples, 1m .. 1000m: the true p-th percentile is p * 1000m. */
    for (int i = 1; i <= 1000; i++)
        assert_int_equal(tl_histogram_add(&hist, i / 1000.0, 1, i), TL_OK);
    static const double ps[] = {0.5, 0.9, 0.95, 0.99, 1.0};
    for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
        double got = tl_histogram_percentile(&hist, ps[i]);
        assert_true(got >= ps[i]);               /* never below the truth */
        assert_true(got <= ps[i] * 1.05 + 1e-3); /* and at most one bucket above */
    }
    assert_true(hist.samples == 1000);
    assert_float_equal(hist.max_value, 1.0, 1e-12);
    assert_float_equal(hist.last_time - hist.first_time, 999, 1e-9);
    /* Only the occupied range is stored. */
    assert_true(hist.len < 150);
    tl_histogram_free(&hist);
    assert_true(tl_histogram_percentile(&hist, 0.95) == 0);
}

static void test_decay_lets_recent_usage_dominate(void **state)
{
    (void)state;
    struct tl_histogram hist;
    tl_histogram_init(&hist, &tl_histogram_cpu_defaults); /* half-life one day */
    /* A week at 2 cores, then a week at 0.2 cores, one sample a minute. */
    for (int m = 0; m < 7 * 1440; m++)
        assert_int_equal(tl_histogram_add(&hist, 2.0, 1, m * 60.0), TL_OK);
    for (int m = 7 * 1440; m < 14 * 1440; m++)
        assert_int_equal(tl_histogram_add(&hist, 0.2, 1, m * 60.0), TL_OK);
    /* The old week weighs about 2^-7 of the new one: under 1% of the total. */
    assert_true(tl_histogram_percentile(&hist, 0.95) < 0.22);
    assert_true(tl_histogram_percentile(&hist, 0.995) > 1.9);
    tl_histogram_free(&hist);
}

static void test_long_histories_rescale_without_overflow(void **state)
{
    (void)state;
    static const struct tl_histogram_options fast = {
        .first_bucket = 1e7, .ratio = 1.05, .nbuckets = 176, .half_life = 60};
    struct tl_histogram hist;
    tl_histogram_init(&hist, &fast);
    /* A year of hourly samples with a one-minute half-life: 2^8760 would overflow. */
    for (int h = 0; h < 365 * 24; h++)
        assert_int_equal(tl_histogram_add(&hist, h % 2 ? 1e9 : 2e9, 1, h * 3600.0), TL_OK);
    assert_true(isfinite(hist.total) && hist.total > 0);
    double p = tl_histogram_percentile(&hist, 0.5);
    assert_true(p >= 1e9 && p <= 1.05e9 + 1e7); /* the very last sample was 1e9 */
    tl_histogram_free(&hist);
}

static void test_merge_equals_adding_everything_to_one(void **state)
{
    (void)state;
    struct tl_histogram a, b, all;
    tl_histogram_init(&a, &tl_histogram_cpu_defaults);
    tl_histogram_init(&b, &tl_histogram_cpu_defaults);
    tl_histogram_init(&all, &tl_histogram_cpu_defaults);
    for (int i = 0; i < 2000; i++) {
        double t = i * 600.0;
        double v = 0.05 + (i % 37) * 0.01;
        assert_int_equal(tl_histogram_add(i % 3 ? &a : &b, v * (i % 3 ? 1 : 4), 1, t), TL_OK);
        assert_int_equal(tl_histogram_add(&all, v * (i % 3 ? 1 : 4), 1, t), TL_OK);
    }
    assert_int_equal(tl_histogram_merge(&a, &b), TL_OK);
    for (double p = 0.1; p <= 1.0; p += 0.1)
        assert_float_equal(tl_histogram_percentile(&a, p), tl_histogram_percentile(&all, p), 1e-9);
    assert_true(a.samples == all.samples);
    assert_float_equal(a.max_value, all.max_value, 1e-12);
    struct tl_histogram mem;
    tl_histogram_init(&mem, &tl_histogram_memory_defaults);
    assert_int_equal(tl_histogram_add(&mem, 1e9, 1, 0), TL_OK);
    assert_int_equal(tl_histogram_merge(&a, &mem), TL_EINVAL); /* different layouts */
    tl_histogram_free(&mem);
    tl_histogram_free(&a);
    tl_histogram_free(&b);
    tl_histogram_free(&all);
}

static void test_checkpoint_round_trip_keeps_percentiles(void **state)
{
    (void)state;
    struct tl_histogram hist, back;
    tl_histogram_init(&hist, &tl_histogram_memory_defaults);
    tl_histogram_init(&back, &tl_histogram_memory_defaults);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(tl_histogram_add(&hist, 3e8 + (i % 100) * 2e6, 1, i * 60.0), TL_OK);
    assert_int_equal(tl_histogram_add(&hist, 9e8, 1, 5000 * 60.0), TL_OK); /* one rare peak */
    char *text = tl_histogram_save(&hist);
    assert_non_null(text);
    assert_true(strlen(text) < 400); /* small enough for a status field */
    assert_int_equal(tl_histogram_load(&back, text), TL_OK);
    for (double p = 0.5; p < 1.0; p += 0.05)
        assert_float_equal(tl_histogram_percentile(&back, p), tl_histogram_percentile(&hist, p),
                           1e-6);
    /* The rare peak survives the integer scaling. */
    assert_float_equal(tl_histogram_percentile(&back, 1.0), tl_histogram_percentile(&hist, 1.0),
                       1e-6);
    assert_true(back.samples == hist.samples);
    assert_float_equal(back.max_value, 9e8, 1e-3);
    free(text);

    static const char *const bad[] = {"",
                                      "h2 1 2 3 4 5 6",
                                      "h1 1 2 3",
                                      "h1 0 1 0 0 0 999 5",
                                      "h1 0 1 0 0 0 3 5 -1",
                                      "h1 0 1 0 0 0 3 5 x",
                                      "h1 0 1 0 0 0 3 20000"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(tl_histogram_load(&back, bad[i]), TL_EINVAL);
        assert_true(back.samples == hist.samples); /* untouched */
    }
    tl_histogram_free(&hist);
    tl_histogram_free(&back);
}

static void test_bad_samples_are_refused(void **state)
{
    (void)state;
    struct tl_histogram hist;
    tl_histogram_init(&hist, &no_decay);
    assert_int_equal(tl_histogram_add(&hist, NAN, 1, 0), TL_EINVAL);
    assert_int_equal(tl_histogram_add(&hist, 1, 0, 0), TL_EINVAL);
    assert_int_equal(tl_histogram_add(&hist, 1, 1, INFINITY), TL_EINVAL);
    assert_true(tl_histogram_is_empty(&hist));
    tl_histogram_free(&hist);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_value_lands_in_the_bucket_that_holds_it),
        cmocka_unit_test(test_percentiles_are_tight_upper_bounds),
        cmocka_unit_test(test_decay_lets_recent_usage_dominate),
        cmocka_unit_test(test_long_histories_rescale_without_overflow),
        cmocka_unit_test(test_merge_equals_adding_everything_to_one),
        cmocka_unit_test(test_checkpoint_round_trip_keeps_percentiles),
        cmocka_unit_test(test_bad_samples_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
