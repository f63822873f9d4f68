#include "cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct field {
    const char *name;
    int min;
    int max;
    const char *const *names; /* symbolic values, index = value - min, or NULL */
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const day_names[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"};

static const struct field fields[5] = {{"minute", 0, 59, NULL},
                                       {"hour", 0, 23, NULL},
                                       {"day-of-month", 1, 31, NULL},
                                       {"month", 1, 12, month_names},
                                       {"day-of-week", 0, 7, day_names}};

/* Reads a number or a three-letter name; advances *p. */
static bool read_value(const struct field *f, const char **p, int *out)
{
    if (isdigit((unsigned char)**p)) {
        char *end = NULL;
        long v = strtol(*p, &end, 10);
        if (end - *p > 4)
            return false;
        *p = end;
        *out = (int)v;
        return true;
    }
    if (f->names == NULL)
        return false;
    for (int i = 0; i <= f->max - f->min; i++) {
        if (strncasecmp(*p, f->names[i], 3) == 0) {
            *p += 3;
            *out = f->min + i;
            return true;
        }
    }
    return false;
}

/* Parses one comma-separated field into a bit set. */
static enum tl_err parse_field(const struct field *f, int index, const char *text, uint64_t *bits,
                               bool *any, char *errbuf, size_t errlen)
{
    *bits = 0;
    *any = strcmp(text, "*") == 0 || strcmp(text, "?") == 0;
    const char *p = text;
    while (*p) {
        int lo = f->min;
        int hi = f->max;
        int step = 1;
        if (*p == '*' || *p == '?') {
            p++;
        }
        else {
            if (!read_value(f, &p, &lo))
                goto bad;
            hi = lo;
            if (*p == '-') {
                p++;
                if (!read_value(f, &p, &hi))
                    goto bad;
            }
        }
        if (*p == '/') {
            p++;
            char *end = NULL;
            long s = strtol(p, &end, 10);
            if (end == p || s < 1 || s > f->max)
                goto bad;
            step = (int)s;
            p = end;
            if (lo == hi)
                hi = f->max; /* "5/15" means from 5 to the end */
        }
        if (lo < f->min || hi > f->max || lo > hi) {
            snprintf(errbuf, errlen, "field %d (%s): %d-%d is out of range %d-%d", index + 1,
                     f->name, lo, hi, f->min, f->max == 7 ? 6 : f->max);
            return TL_EINVAL;
        }
        for (int v = lo; v <= hi; v += step)
            *bits |= (uint64_t)1 << v;
        if (*p == ',')
            p++;
        else if (*p != '\0')
            goto bad;
    }
    if (*bits == 0)
        goto bad;
    return TL_OK;
bad:
    snprintf(errbuf, errlen, "field %d (%s): cannot read \"%s\"", index + 1, f->name, text);
    return TL_EINVAL;
}

enum tl_err tl_cron_parse(const char *text, struct tl_cron *out, char *errbuf, size_t errlen)
{
    static const struct {
        const char *macro;
        const char *expansion;
    } macros[] = {{"@hourly", "0 * * * *"},  {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
                  {"@weekly", "0 0 * * 0"},  {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
                  {"@annually", "0 0 1 1 *"}};
    for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
        if (strcmp(text, macros[i].macro) == 0)
            text = macros[i].expansion;
    }
    char copy[256];
    if (strlen(text) >= sizeof(copy)) {
        snprintf(errbuf, errlen, "schedule is too long");
        return TL_EINVAL;
    }
    memcpy(copy, text, strlen(text) + 1);
    char *parts[5];
    int n = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
        if (n == 5) {
            n++;
            break;
        }
        parts[n++] = tok;
    }
    if (n != 5) {
        snprintf(errbuf, errlen,
                 "expected 5 fields (minute hour day-of-month month day-of-week), "
                 "got %s",
                 n > 5 ? "more" : "fewer");
        return TL_EINVAL;
    }
    struct tl_cron cron;
    memset(&cron, 0, sizeof(cron));
    uint64_t bits[5];
    bool any[5];
    for (int i = 0; i < 5; i++) {
        enum tl_err result =
            parse_field(&fields[i], i, parts[i], &bits[i], &any[i], errbuf, errlen);
        if (result != TL_OK)
            return result;
    }
    cron.minutes = bits[0];
    cron.hours = (uint32_t)bits[1];
    cron.days = (uint32_t)bits[2];
    cron.months = (uint16_t)bits[3];
    /* 7 is another name for Sunday. */
    cron.weekdays = (uint8_t)((bits[4] & 0x7f) | ((bits[4] >> 7) & 1));
    cron.days_any = any[2];
    cron.weekdays_any = any[4];
    *out = cron;
    return TL_OK;
}

static bool day_matches(const struct tl_cron *cron, const struct tm *tm)
{
    bool dom = (cron->days >> tm->tm_mday) & 1;
    bool dow = (cron->weekdays >> tm->tm_wday) & 1;
    if (cron->days_any && cron->weekdays_any)
        return true;
    if (cron->days_any)
        return dow;
    if (cron->weekdays_any)
        return dom;
    return dom || dow;
}

time_t tl_cron_next(const struct tl_cron *cron, time_t t)
{
    /* Walk forward a day, an hour or a minute at a time, skipping whatever cannot match. */
    time_t cur = t - t % 60 + 60;
    time_t limit = t + (time_t)5 * 366 * 86400;
    while (cur <= limit) {
        struct tm tm;
        gmtime_r(&cur, &tm);
        if (!((cron->months >> (tm.tm_mon + 1)) & 1) || !day_matches(cron, &tm)) {
            cur += 86400 - (tm.tm_hour * 3600 + tm.tm_min * 60);
            continue;
        }
        if (!((cron->hours >> tm.tm_hour) & 1)) {
            cur += 3600 - tm.tm_min * 60;
            continue;
        }
        if (!((cron->minutes >> tm.tm_min) & 1)) {
            cur += 60;
            continue;
        }
        return cur;
    }
    return -1;
}

bool tl_cron_in_window(const struct tl_cron *cron, time_t duration, time_t t, time_t *opens,
                       time_t *closes)
{
    /* The latest fire time not after t is the first one after t - duration, if it is <= t. */
    time_t fire = tl_cron_next(cron, t - duration);
    if (fire >= 0 && fire <= t && t < fire + duration) {
        /* A later fire inside this window extends it; report the end of the last one, looking
         * no further than a week (a schedule whose windows overlap never closes). */
        time_t end = fire + duration;
        time_t horizon = t + (time_t)7 * 86400;
        for (time_t next = tl_cron_next(cron, fire); next >= 0 && next < end && end < horizon;
             next = tl_cron_next(cron, next))
            end = next + duration;
        if (closes)
            *closes = end;
        return true;
    }
    if (opens)
        *opens = tl_cron_next(cron, t);
    return false;
}
