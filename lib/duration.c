#include "duration.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct unit {
    const char *name;
    int64_t ms;
};

/* Longest names first so "ms" is not read as "m" followed by garbage. */
static const struct unit units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}, {"w", 604800000},
};

static const struct unit *match_unit(const char *p, size_t *name_len)
{
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t n = strlen(units[i].name);
        if (strncmp(p, units[i].name, n) == 0) {
            *name_len = n;
            return &units[i];
        }
    }
    return NULL;
}

enum tl_err tl_duration_parse(const char *text, int64_t *out_ms)
{
    if (text == NULL || *text == '\0')
        return TL_EINVAL;
    const char *p = text;
    double total = 0;
    while (*p) {
        /* A plain decimal: digits with at most one point, never a sign or an exponent. */
        const char *start = p;
        double value = 0;
        double scale = 0;
        bool digits = false;
        for (; *p; p++) {
            if (*p >= '0' && *p <= '9') {
                digits = true;
                if (scale == 0) {
                    value = value * 10 + (*p - '0');
                }
                else {
                    value += (*p - '0') * scale;
                    scale /= 10;
                }
            }
            else if (*p == '.' && scale == 0) {
                scale = 0.1;
            }
            else {
                break;
            }
        }
        if (!digits || p == start)
            return TL_EINVAL;
        size_t name_len = 0;
        const struct unit *unit = match_unit(p, &name_len);
        if (unit == NULL)
            return TL_EINVAL;
        p += name_len;
        total += value * (double)unit->ms;
        if (total > 9.0e18)
            return TL_ERANGE;
    }
    *out_ms = (int64_t)llround(total);
    return TL_OK;
}

enum tl_err tl_duration_format(int64_t ms, char *buf, size_t len)
{
    if (ms < 0)
        return TL_EINVAL;
    if (ms == 0) {
        if (len < 3)
            return TL_ETOOBIG;
        memcpy(buf, "0s", 3);
        return TL_OK;
    }
    size_t used = 0;
    /* Weeks are left out on purpose: "14d" reads better than "2w" in a history window. */
    for (size_t i = sizeof(units) / sizeof(units[0]) - 1; i-- > 0;) {
        int64_t count = ms / units[i].ms;
        if (count == 0)
            continue;
        ms -= count * units[i].ms;
        int n = snprintf(buf + used, len - used, "%lld%s", (long long)count, units[i].name);
        if (n < 0 || (size_t)n >= len - used)
            return TL_ETOOBIG;
        used += (size_t)n;
    }
    return TL_OK;
}
