#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "duration.h"

static void test_parses_go_durations_and_days_weeks(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t ms;
    } cases[] = {
        {"14d", 14LL * 86400000},
        {"6h", 6LL * 3600000},
        {"1h30m", 5400000},
        {"500ms", 500},
        {"90s", 90000},
        {"1.5h", 5400000},
        {"2w", 14LL * 86400000},
        {"0s", 0},
        {"1d12h", 36LL * 3600000},
        {"10m0s", 600000},
        {".5s", 500},
        {"1.s", 1000},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t ms = -1;
        assert_int_equal(tl_duration_parse(cases[i].text, &ms), TL_OK);
        assert_true(ms == cases[i].ms);
    }
}

static void test_rejects_malformed_text_and_leaves_output(void **state)
{
    (void)state;
    static const char *const bad[] = {"",    "14",     "d",  "-5m", "5 m",  "1y",
                                      "1hh", "1.2.3s", "5M", "+5s", "1e3s", "5m garbage"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 77;
        assert_int_equal(tl_duration_parse(bad[i], &ms), TL_EINVAL);
        assert_true(ms == 77);
    }
    int64_t ms = 0;
    assert_int_equal(tl_duration_parse(NULL, &ms), TL_EINVAL);
    assert_int_equal(tl_duration_parse("99999999999999w", &ms), TL_ERANGE);
}

static void test_formats_the_shortest_exact_form(void **state)
{
    (void)state;
    char buf[32];
    assert_int_equal(tl_duration_format(14LL * 86400000, buf, sizeof(buf)), TL_OK);
    assert_string_equal(buf, "14d");
    assert_int_equal(tl_duration_format(5400000, buf, sizeof(buf)), TL_OK);
    assert_string_equal(buf, "1h30m");
    assert_int_equal(tl_duration_format(0, buf, sizeof(buf)), TL_OK);
    assert_string_equal(buf, "0s");
    assert_int_equal(tl_duration_format(61250, buf, sizeof(buf)), TL_OK);
    assert_string_equal(buf, "1m1s250ms");
    assert_int_equal(tl_duration_format(86400000 + 1, buf, 4), TL_ETOOBIG);
    assert_int_equal(tl_duration_format(-1, buf, sizeof(buf)), TL_EINVAL);
}

static void test_format_then_parse_round_trips(void **state)
{
    (void)state;
    char buf[64];
    for (int64_t ms = 0; ms < 40LL * 86400000; ms = ms * 3 + 7) {
        int64_t back = -1;
        assert_int_equal(tl_duration_format(ms, buf, sizeof(buf)), TL_OK);
        assert_int_equal(tl_duration_parse(buf, &back), TL_OK);
        assert_true(back == ms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses_go_durations_and_days_weeks),
        cmocka_unit_test(test_rejects_malformed_text_and_leaves_output),
        cmocka_unit_test(test_formats_the_shortest_exact_form),
        cmocka_unit_test(test_format_then_parse_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
