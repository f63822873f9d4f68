#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>
#include <time.h>

#include "cron.h"

/* Seconds since the epoch of a UTC calendar time. */
static time_t utc(int year, int month, int day, int hour, int minute)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    return timegm(&tm);
}

static struct tl_cron parse_ok(const char *text)
{
    struct tl_cron cron;
    char err[128] = "";
    if (tl_cron_parse(text, &cron, err, sizeof(err)) != TL_OK)
        fail_msg("\"%s\": %s", text, err);
    return cron;
}

static void test_next_fire_times(void **state)
{
    (void)state;
    /* 2026-11-21 is a Saturday. */
    time_t now = utc(2026, 11, 21, 10, 17);
    struct tl_cron c = parse_ok("0 2 * * *");
    assert_true(tl_cron_next(&c, now) == utc(2026, 11, 22, 2, 0));
    c = parse_ok("*/15 * * * *");
    assert_true(tl_cron_next(&c, now) == utc(2026, 11, 21, 10, 30));
    c = parse_ok("30 9 * * MON-FRI");
    assert_true(tl_cron_next(&c, now) == utc(2026, 11, 23, 9, 30));
    c = parse_ok("0 0 1 JAN,jul *");
    assert_true(tl_cron_next(&c, now) == utc(2027, 1, 1, 0, 0));
    c = parse_ok("@weekly");
    assert_true(tl_cron_next(&c, now) == utc(2026, 11, 22, 0, 0));
    c = parse_ok("0 12 * * 7"); /* 7 is Sunday too */
    assert_true(tl_cron_next(&c, now) == utc(2026, 11, 22, 12, 0));
    /* Both day fields restricted: either matches (Vixie cron). The 1st of December comes first
     * only if no Friday comes before it: Friday the 27th does. */
    c = parse_ok("0 0 1 * FRI");
    assert_true(tl_cron_next(&c, now) == utc(2026, 11, 27, 0, 0));
    c = parse_ok("0 0 30 2 *"); /* never */
    assert_true(tl_cron_next(&c, now) == -1);
    /* Strictly after: a fire time at exactly t is not returned. */
    c = parse_ok("17 10 * * *");
    assert_true(tl_cron_next(&c, now) == utc(2026, 11, 22, 10, 17));
}

static void test_malformed_schedules_name_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        {"0 24 * * *", "field 2 (hour): 24-24 is out of range 0-23"},
        {"0 2 * *", "expected 5 fields (minute hour day-of-month month day-of-week), got fewer"},
        {"0 2 * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got more"},
        {"x 2 * * *", "field 1 (minute): cannot read \"x\""},
        {"0 2 * FOO *", "field 4 (month): cannot read \"FOO\""},
        {"*/0 * * * *", "field 1 (minute): cannot read \"*/0\""},
        {"0 5-2 * * *", "field 2 (hour): 5-2 is out of range 0-23"},
        {"0 2 0 * *", "field 3 (day-of-month): 0-0 is out of range 1-31"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tl_cron cron;
        char err[128] = "";
        assert_int_equal(tl_cron_parse(cases[i].text, &cron, err, sizeof(err)), TL_EINVAL);
        assert_string_equal(err, cases[i].message);
    }
}

static void test_windows_open_at_fire_times_for_their_duration(void **state)
{
    (void)state;
    struct tl_cron c = parse_ok("0 2 * * *");
    time_t opens = 0;
    time_t closes = 0;
    /* Inside 02:00-04:00. */
    assert_true(tl_cron_in_window(&c, 7200, utc(2026, 11, 21, 3, 59), &opens, &closes));
    assert_true(closes == utc(2026, 11, 21, 4, 0));
    assert_true(tl_cron_in_window(&c, 7200, utc(2026, 11, 21, 2, 0), NULL, NULL));
    /* At the closing minute it is over, and the next one opens tomorrow. */
    assert_false(tl_cron_in_window(&c, 7200, utc(2026, 11, 21, 4, 0), &opens, &closes));
    assert_true(opens == utc(2026, 11, 22, 2, 0));
    assert_false(tl_cron_in_window(&c, 7200, utc(2026, 11, 21, 1, 59), &opens, NULL));
    assert_true(opens == utc(2026, 11, 21, 2, 0));
    /* Overlapping windows join: hourly fires with two-hour windows never close. */
    c = parse_ok("0 * * * *");
    assert_true(tl_cron_in_window(&c, 7200, utc(2026, 11, 21, 10, 30), NULL, &closes));
    assert_true(closes > utc(2026, 11, 21, 12, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_fire_times),
        cmocka_unit_test(test_malformed_schedules_name_the_field),
        cmocka_unit_test(test_windows_open_at_fire_times_for_their_duration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
