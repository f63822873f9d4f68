/* cron: five-field cron schedules (UTC) and the maintenance windows they open. */
#ifndef TL_CRON_H
#define TL_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "error.h"

/* Bit sets of the allowed values of each field. */
struct tl_cron {
    uint64_t minutes; /* bits 0..59 */
    uint32_t hours;   /* 0..23 */
    uint32_t days;    /* 1..31 */
    uint16_t months;  /* 1..12 */
    uint8_t weekdays; /* 0..6, Sunday = 0 (7 is accepted as Sunday) */
    bool days_any;    /* day-of-month was "*": only the weekday field restricts days */
    bool weekdays_any;
};

/*
 * Parses "minute hour day-of-month month day-of-week" with *, lists, ranges and steps
 * ("*\/15", "1-5", "0,30", "MON-FRI", "JAN"), or @hourly, @daily, @midnight, @weekly, @monthly,
 * @yearly. As in Vixie cron, when both day fields are restricted a day matching either runs.
 * TL_EINVAL with errbuf naming the field ("field 2 (hour): 24 is out of range 0-23").
 */
enum tl_err tl_cron_parse(const char *text, struct tl_cron *out, char *errbuf, size_t errlen);

/* The first fire time strictly after t (UTC, whole minutes); -1 if none within 5 years. */
time_t tl_cron_next(const struct tl_cron *cron, time_t t);

/*
 * Whether t lies in a window that opens at a fire time and lasts `duration` seconds. When it
 * does and `closes` is not NULL, writes when that window closes; when it does not and `opens` is
 * not NULL, writes when the next one opens.
 */
bool tl_cron_in_window(const struct tl_cron *cron, time_t duration, time_t t, time_t *opens,
                       time_t *closes);

#endif
