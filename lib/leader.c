#include "leader.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define US_PER_SEC 1000000LL
#define US_PER_DAY (86400LL * US_PER_SEC)

struct tl_leader {
    struct tl_leader_config cfg;
    char identity[TL_LEASE_HOLDER_MAX];

    bool observed_any;
    bool exists;
    struct tl_lease_record observed;
    double observed_time; /* local monotonic time the record last changed */

    bool leader;
    bool pending;         /* an ACQUIRE or RENEW write is in flight */
    double pending_since; /* when it was decided, i.e. sent */
    double last_renew;    /* send time of the last successful write of ours */

    char reported[TL_LEASE_HOLDER_MAX];
};

/* --- time ------------------------------------------------------------------------------------ */

/* Days since 1970-01-01 of a proleptic Gregorian date (Hinnant, "chrono-Compatible Low-Level
 * Date Algorithms", days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse, civil_from_days, from the same paper. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool in_year_range(int64_t us)
{
    int64_t lo = days_from_civil(1, 1, 1) * US_PER_DAY;
    int64_t hi = days_from_civil(10000, 1, 1) * US_PER_DAY;
    return us >= lo && us < hi;
}

enum tl_err tl_microtime_format(int64_t us, char *buf, size_t size)
{
    if (!in_year_range(us))
        return TL_ERANGE;
    int64_t days = us / US_PER_DAY;
    int64_t rem = us % US_PER_DAY;
    if (rem < 0) {
        rem += US_PER_DAY;
        days--;
    }
    int64_t year;
    unsigned month, day;
    civil_from_days(days, &year, &month, &day);
    int64_t secs = rem / US_PER_SEC;
    int n = snprintf(buf, size, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%06lldZ", (long long)year,
                     month, day, (long long)(secs / 3600), (long long)(secs / 60 % 60),
                     (long long)(secs % 60), (long long)(rem % US_PER_SEC));
    if (n < 0 || (size_t)n >= size)
        return TL_ETOOBIG;
    return TL_OK;
}

static bool digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

static unsigned days_in_month(int year, int month)
{
    static const unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

/* RFC 3339 section 5.6 date-time, which is what metav1.Time and metav1.MicroTime marshal to. */
enum tl_err tl_microtime_parse(const char *text, int64_t *us)
{
    if (!text)
        return TL_EINVAL;
    int year, month, day, hour, min, sec;
    const char *p = text;
    if (strnlen(p, 19) < 19 || !digits(p, 4, &year) || p[4] != '-' || !digits(p + 5, 2, &month) ||
        p[7] != '-' || !digits(p + 8, 2, &day) || (p[10] != 'T' && p[10] != 't') ||
        !digits(p + 11, 2, &hour) || p[13] != ':' || !digits(p + 14, 2, &min) || p[16] != ':' ||
        !digits(p + 17, 2, &sec))
        return TL_EINVAL;
    if (year < 1 || month < 1 || month > 12 || day < 1 ||
        (unsigned)day > days_in_month(year, month) || hour > 23 || min > 59 || sec > 59)
        return TL_EINVAL;
    p += 19;
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        size_t n = 0;
        for (; *p >= '0' && *p <= '9'; p++, n++) {
            if (n < 6)
                frac = frac * 10 + (*p - '0');
        }
        if (n == 0)
            return TL_EINVAL;
        for (; n < 6; n++)
            frac *= 10;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    }
    else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return TL_EINVAL;
        offset = (*p == '-' ? -1 : 1) * ((int64_t)oh * 3600 + (int64_t)om * 60);
        p += 6;
    }
    else {
        return TL_EINVAL;
    }
    if (*p != '\0')
        return TL_EINVAL;
    int64_t secs = days_from_civil(year, (unsigned)month, (unsigned)day) * 86400 +
                   (int64_t)hour * 3600 + (int64_t)min * 60 + sec - offset;
    *us = secs * US_PER_SEC + frac;
    return TL_OK;
}

/* --- JSON ------------------------------------------------------------------------------------ */

static enum tl_err add_time(cJSON *obj, const char *name, int64_t us)
{
    char buf[TL_MICROTIME_LEN];
    enum tl_err result = tl_microtime_format(us, buf, sizeof(buf));
    if (result != TL_OK)
        return result;
    return cJSON_AddStringToObject(obj, name, buf) ? TL_OK : TL_ENOMEM;
}

enum tl_err tl_lease_to_json(const char *ns, const char *name, const struct tl_lease_record *record,
                             cJSON **out)
{
    enum tl_err result = TL_ENOMEM;
    cJSON *meta = NULL;
    cJSON *spec = NULL;
    if (!ns || !*ns || !name || !*name)
        return TL_EINVAL;
    cJSON *lease = cJSON_CreateObject();
    if (!lease)
        goto out;
    if (!cJSON_AddStringToObject(lease, "apiVersion", "coordination.k8s.io/v1") ||
        !cJSON_AddStringToObject(lease, "kind", "Lease") ||
        !(meta = cJSON_AddObjectToObject(lease, "metadata")) ||
        !cJSON_AddStringToObject(meta, "name", name) ||
        !cJSON_AddStringToObject(meta, "namespace", ns))
        goto out;
    if (record->resource_version[0] &&
        !cJSON_AddStringToObject(meta, "resourceVersion", record->resource_version))
        goto out;
    if (!(spec = cJSON_AddObjectToObject(lease, "spec")) ||
        !cJSON_AddStringToObject(spec, "holderIdentity", record->holder))
        goto out;
    if (record->lease_duration_seconds > 0 &&
        !cJSON_AddNumberToObject(spec, "leaseDurationSeconds", record->lease_duration_seconds))
        goto out;
    if (record->acquire_time_us &&
        (result = add_time(spec, "acquireTime", record->acquire_time_us)))
        goto out;
    if (record->renew_time_us && (result = add_time(spec, "renewTime", record->renew_time_us)))
        goto out;
    result = TL_ENOMEM;
    if (!cJSON_AddNumberToObject(spec, "leaseTransitions", record->lease_transitions))
        goto out;
    *out = lease;
    lease = NULL;
    result = TL_OK;
out:
    cJSON_Delete(lease);
    return result;
}

static enum tl_err read_string(const cJSON *obj, const char *name, char *dst, size_t size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!item || cJSON_IsNull(item)) {
        dst[0] = '\0';
        return TL_OK;
    }
    if (!cJSON_IsString(item))
        return TL_EINVAL;
    size_t len = strlen(item->valuestring);
    if (len >= size)
        return TL_ETOOBIG;
    memcpy(dst, item->valuestring, len + 1);
    return TL_OK;
}

static enum tl_err read_int32(const cJSON *obj, const char *name, int32_t *dst)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!item || cJSON_IsNull(item)) {
        *dst = 0;
        return TL_OK;
    }
    if (!cJSON_IsNumber(item))
        return TL_EINVAL;
    double v = item->valuedouble;
    if (!isfinite(v) || v != floor(v))
        return TL_EINVAL;
    if (v < 0 || v > INT32_MAX)
        return TL_ERANGE;
    *dst = (int32_t)v;
    return TL_OK;
}

static enum tl_err read_time(const cJSON *obj, const char *name, int64_t *dst)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!item || cJSON_IsNull(item)) {
        *dst = 0;
        return TL_OK;
    }
    if (!cJSON_IsString(item))
        return TL_EINVAL;
    return tl_microtime_parse(item->valuestring, dst);
}

enum tl_err tl_lease_from_json(const cJSON *lease, struct tl_lease_record *out, const char **field)
{
    enum tl_err result = TL_EINVAL;
    const char *bad = "";
    struct tl_lease_record rec;
    memset(&rec, 0, sizeof(rec));
    if (!cJSON_IsObject(lease))
        goto out;

    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(lease, "metadata");
    bad = "metadata";
    if (meta && !cJSON_IsObject(meta))
        goto out;
    bad = "metadata.resourceVersion";
    if (meta && (result = read_string(meta, "resourceVersion", rec.resource_version,
                                      sizeof(rec.resource_version))))
        goto out;

    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(lease, "spec");
    bad = "spec";
    result = TL_EINVAL;
    if (spec && !cJSON_IsNull(spec) && !cJSON_IsObject(spec))
        goto out;
    if (cJSON_IsObject(spec)) {
        bad = "spec.holderIdentity";
        if ((result = read_string(spec, "holderIdentity", rec.holder, sizeof(rec.holder))))
            goto out;
        bad = "spec.leaseDurationSeconds";
        if ((result = read_int32(spec, "leaseDurationSeconds", &rec.lease_duration_seconds)))
            goto out;
        bad = "spec.acquireTime";
        if ((result = read_time(spec, "acquireTime", &rec.acquire_time_us)))
            goto out;
        bad = "spec.renewTime";
        if ((result = read_time(spec, "renewTime", &rec.renew_time_us)))
            goto out;
        bad = "spec.leaseTransitions";
        if ((result = read_int32(spec, "leaseTransitions", &rec.lease_transitions)))
            goto out;
    }
    *out = rec;
    result = TL_OK;
out:
    if (result != TL_OK && field)
        *field = bad;
    return result;
}

/* --- election -------------------------------------------------------------------------------- */

enum tl_err tl_leader_create(const struct tl_leader_config *config, struct tl_leader **out)
{
    if (!config || !config->identity || !*config->identity)
        return TL_EINVAL;
    if (strlen(config->identity) >= TL_LEASE_HOLDER_MAX)
        return TL_EINVAL;
    struct tl_leader_config cfg = *config;
    if (cfg.lease_duration == 0)
        cfg.lease_duration = 15;
    if (cfg.renew_deadline == 0)
        cfg.renew_deadline = 10;
    if (cfg.retry_period == 0)
        cfg.retry_period = 2;
    /*
     * The leader must give up (renew_deadline) before a standby may take over (lease_duration),
     * and must get more than one try, jittered, at renewing before it gives up.
     */
    if (!(cfg.retry_period > 0 && cfg.renew_deadline > 1.2 * cfg.retry_period &&
          cfg.lease_duration > cfg.renew_deadline))
        return TL_EINVAL;
    struct tl_leader *le = calloc(1, sizeof(*le));
    if (!le)
        return TL_ENOMEM;
    le->cfg = cfg;
    memcpy(le->identity, config->identity, strlen(config->identity) + 1);
    le->cfg.identity = le->identity;
    *out = le;
    return TL_OK;
}

void tl_leader_destroy(struct tl_leader *le)
{
    free(le);
}

/* Everything but the resourceVersion, which changes with any edit of the object. */
static bool same_record(const struct tl_lease_record *a, const struct tl_lease_record *b)
{
    return strcmp(a->holder, b->holder) == 0 &&
           a->lease_duration_seconds == b->lease_duration_seconds &&
           a->acquire_time_us == b->acquire_time_us && a->renew_time_us == b->renew_time_us &&
           a->lease_transitions == b->lease_transitions;
}

static void report_leader(struct tl_leader *le)
{
    if (!le->exists || !le->observed.holder[0] || strcmp(le->observed.holder, le->reported) == 0)
        return;
    memcpy(le->reported, le->observed.holder, sizeof(le->reported));
    if (le->cfg.callbacks.new_leader)
        le->cfg.callbacks.new_leader(le->reported, le->cfg.callbacks.ctx);
}

void tl_leader_observe(struct tl_leader *le, const struct tl_lease_record *observed, double now)
{
    if (!observed) {
        if (!le->observed_any || le->exists)
            le->observed_time = now;
        le->observed_any = true;
        le->exists = false;
        memset(&le->observed, 0, sizeof(le->observed));
        return;
    }
    struct tl_lease_record rec = *observed;
    rec.holder[sizeof(rec.holder) - 1] = '\0';
    rec.resource_version[sizeof(rec.resource_version) - 1] = '\0';
    /*
     * The clock-skew rule of client-go's leaderelection: a holder's renewTime was stamped by its
     * clock, not ours, so it is only used to notice a change. Expiry is measured from the moment
     * WE saw the record last change, on our monotonic clock.
     */
    if (!le->observed_any || !le->exists || !same_record(&le->observed, &rec))
        le->observed_time = now;
    le->observed = rec;
    le->observed_any = true;
    le->exists = true;
    report_leader(le);
}

static void lose(struct tl_leader *le)
{
    le->leader = false;
    le->pending = false;
    if (le->cfg.callbacks.stopped_leading)
        le->cfg.callbacks.stopped_leading(le->cfg.callbacks.ctx);
}

/* Rounded up, so what the Lease promises is never shorter than what we keep to. */
static int32_t whole_seconds(double seconds)
{
    if (seconds >= INT32_MAX)
        return INT32_MAX;
    return seconds < 1 ? 1 : (int32_t)ceil(seconds);
}

/* A standby waits out the longer of our lease duration and the one the holder promised. */
static double expiry_of(const struct tl_leader *le)
{
    double duration = le->cfg.lease_duration;
    if (le->observed.lease_duration_seconds > duration)
        duration = le->observed.lease_duration_seconds;
    return le->observed_time + duration;
}

void tl_leader_decide(struct tl_leader *le, double now, int64_t wall_us,
                      struct tl_leader_decision *out)
{
    memset(out, 0, sizeof(*out));
    out->action = TL_LEADER_STANDBY;
    out->next_check = le->cfg.retry_period;
    bool ours = le->exists && strcmp(le->observed.holder, le->identity) == 0;

    if (le->leader) {
        /*
         * Someone else's record (or none) means another candidate already wrote; a renewal that
         * has not succeeded for renew_deadline means one may soon. Either way stop at once.
         */
        if (!ours || now - le->last_renew >= le->cfg.renew_deadline) {
            lose(le);
            out->action = TL_LEADER_LOST;
            out->next_check = 0;
            return;
        }
        out->action = TL_LEADER_RENEW;
        out->lease = le->observed;
        out->lease.lease_duration_seconds = whole_seconds(le->cfg.lease_duration);
        out->lease.renew_time_us = wall_us;
        le->pending = true;
        le->pending_since = now;
        return;
    }

    if (!le->observed_any) {
        out->next_check = 0; /* observe first */
        return;
    }
    if (le->exists && le->observed.holder[0] && !ours && now < expiry_of(le))
        return;

    out->action = TL_LEADER_ACQUIRE;
    out->create = !le->exists;
    if (le->exists)
        out->lease = le->observed;
    memcpy(out->lease.holder, le->identity, sizeof(out->lease.holder));
    out->lease.lease_duration_seconds = whole_seconds(le->cfg.lease_duration);
    out->lease.renew_time_us = wall_us;
    if (!ours || !out->lease.acquire_time_us)
        out->lease.acquire_time_us = wall_us;
    /* A new holder (after expiry or release) is a transition; taking back our own is not. */
    if (le->exists && !ours && out->lease.lease_transitions < INT32_MAX)
        out->lease.lease_transitions++;
    le->pending = true;
    le->pending_since = now;
}

void tl_leader_written(struct tl_leader *le, const struct tl_lease_record *written, double now)
{
    bool was_pending = le->pending;
    le->pending = false;
    tl_leader_observe(le, written, now);
    if (!was_pending || strcmp(le->observed.holder, le->identity) != 0)
        return;
    le->last_renew = le->pending_since;
    if (!le->leader) {
        le->leader = true;
        if (le->cfg.callbacks.started_leading)
            le->cfg.callbacks.started_leading(le->cfg.callbacks.ctx);
    }
}

enum tl_err tl_leader_release(struct tl_leader *le, int64_t wall_us, struct tl_leader_decision *out)
{
    if (!le->leader)
        return TL_ESTATE;
    memset(out, 0, sizeof(*out));
    out->action = TL_LEADER_RELEASE;
    out->lease = le->observed;
    out->lease.holder[0] = '\0';
    out->lease.lease_duration_seconds = 1;
    out->lease.acquire_time_us = wall_us;
    out->lease.renew_time_us = wall_us;
    out->next_check = le->cfg.retry_period;
    lose(le);
    return TL_OK;
}

bool tl_leader_is_leader(const struct tl_leader *le)
{
    return le->leader;
}

const char *tl_leader_holder(const struct tl_leader *le)
{
    return le->exists ? le->observed.holder : "";
}
