#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ratelimit.h"

static void test_bucket_allows_burst_then_paces_at_rate(void **state)
{
    (void)state;
    struct tl_token_bucket bucket;
    tl_token_bucket_init(&bucket, 5, 3, 100.0);
    for (int i = 0; i < 3; i++)
        assert_true(tl_token_bucket_take(&bucket, 100.0) == 0);
    /* Empty: the fourth write must wait one token's worth, 1/5 s. */
    assert_float_equal(tl_token_bucket_take(&bucket, 100.0), 0.2, 1e-9);
    assert_float_equal(tl_token_bucket_take(&bucket, 100.1), 0.1, 1e-9);
    assert_true(tl_token_bucket_take(&bucket, 100.2) == 0);
    /* A long idle spell refills only up to the burst. */
    for (int i = 0; i < 3; i++)
        assert_true(tl_token_bucket_take(&bucket, 1000.0) == 0);
    assert_true(tl_token_bucket_take(&bucket, 1000.0) > 0);
}

static void test_bucket_ignores_clock_going_backwards(void **state)
{
    (void)state;
    struct tl_token_bucket bucket;
    tl_token_bucket_init(&bucket, 1, 1, 50.0);
    assert_true(tl_token_bucket_take(&bucket, 50.0) == 0);
    assert_float_equal(tl_token_bucket_take(&bucket, 10.0), 1.0, 1e-9);
    assert_true(tl_token_bucket_take(&bucket, 51.0) == 0);
}

static void test_zero_rate_is_unlimited(void **state)
{
    (void)state;
    struct tl_token_bucket bucket;
    tl_token_bucket_init(&bucket, 0, 1, 0);
    for (int i = 0; i < 1000; i++)
        assert_true(tl_token_bucket_take(&bucket, 0) == 0);
}

static void test_backoff_doubles_within_jitter_and_caps(void **state)
{
    (void)state;
    struct tl_backoff backoff;
    tl_backoff_init(&backoff, 1.0, 30.0, 42);
    double step = 1.0;
    for (int i = 0; i < 100; i++) {
        double delay = tl_backoff_next(&backoff);
        /* Equal jitter: between half the step and the whole step. */
        assert_true(delay >= step / 2 && delay <= step);
        step = step * 2 > 30.0 ? 30.0 : step * 2;
    }
    tl_backoff_reset(&backoff);
    assert_true(tl_backoff_next(&backoff) <= 1.0);
}

static void test_backoff_jitter_spreads_clients(void **state)
{
    (void)state;
    /* Two clients failing together must not retry in lockstep. */
    struct tl_backoff a;
    struct tl_backoff b;
    tl_backoff_init(&a, 1.0, 60.0, 1);
    tl_backoff_init(&b, 1.0, 60.0, 2);
    int same = 0;
    for (int i = 0; i < 10; i++)
        same += tl_backoff_next(&a) == tl_backoff_next(&b);
    assert_true(same < 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_allows_burst_then_paces_at_rate),
        cmocka_unit_test(test_bucket_ignores_clock_going_backwards),
        cmocka_unit_test(test_zero_rate_is_unlimited),
        cmocka_unit_test(test_backoff_doubles_within_jitter_and_caps),
        cmocka_unit_test(test_backoff_jitter_spreads_clients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
