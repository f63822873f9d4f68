#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leader.h"

#define T0_US  1795255200000000LL /* 2026-11-21T10:00:00Z */
#define SEC_US ((int64_t)1000000)

struct calls {
    int started;
    int stopped;
    int new_leader;
    char last_leader[TL_LEASE_HOLDER_MAX];
};

static void on_started(void *ctx)
{
    ((struct calls *)ctx)->started++;
}

static void on_stopped(void *ctx)
{
    ((struct calls *)ctx)->stopped++;
}

static void on_new_leader(const char *identity, void *ctx)
{
    struct calls *c = ctx;
    c->new_leader++;
    snprintf(c->last_leader, sizeof(c->last_leader), "%s", identity);
}

struct fixture {
    struct calls calls;
    struct tl_leader *le;
};

static struct tl_leader *make_elector(const char *identity, struct calls *calls)
{
    struct tl_leader_config cfg = {
        .identity = identity,
        .callbacks = {.started_leading = on_started,
                      .stopped_leading = on_stopped,
                      .new_leader = on_new_leader,
                      .ctx = calls},
    };
    struct tl_leader *le = NULL;
    assert_int_equal(tl_leader_create(&cfg, &le), TL_OK);
    assert_non_null(le);
    return le;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->le = make_elector("tailor-7d9f-abc", &f->calls);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tl_leader_destroy(f->le);
    free(f);
    return 0;
}

static struct tl_lease_record held_by(const char *holder, int64_t renew_us, int32_t transitions,
                                      const char *rv)
{
    struct tl_lease_record rec;
    memset(&rec, 0, sizeof(rec));
    snprintf(rec.holder, sizeof(rec.holder), "%s", holder);
    rec.lease_duration_seconds = 15;
    rec.acquire_time_us = renew_us - 60 * SEC_US;
    rec.renew_time_us = renew_us;
    rec.lease_transitions = transitions;
    snprintf(rec.resource_version, sizeof(rec.resource_version), "%s", rv);
    return rec;
}

/* What the API server answers to a successful write: the record with a new resourceVersion. */
static struct tl_lease_record stored(const struct tl_leader_decision *d, const char *rv)
{
    struct tl_lease_record rec = d->lease;
    snprintf(rec.resource_version, sizeof(rec.resource_version), "%s", rv);
    return rec;
}

/* Acquires a free (absent) lease at monotonic time `now`. */
static struct tl_lease_record become_leader(struct tl_leader *le, double now)
{
    tl_leader_observe(le, NULL, now);
    struct tl_leader_decision d;
    tl_leader_decide(le, now, T0_US, &d);
    assert_int_equal(d.action, TL_LEADER_ACQUIRE);
    struct tl_lease_record rec = stored(&d, "100");
    tl_leader_written(le, &rec, now);
    assert_true(tl_leader_is_leader(le));
    return rec;
}

static void test_acquires_a_lease_that_does_not_exist(void **state)
{
    struct fixture *f = *state;
    tl_leader_observe(f->le, NULL, 0);
    struct tl_leader_decision d;
    tl_leader_decide(f->le, 0, T0_US, &d);
    assert_int_equal(d.action, TL_LEADER_ACQUIRE);
    assert_true(d.create);
    assert_string_equal(d.lease.holder, "tailor-7d9f-abc");
    assert_int_equal(d.lease.lease_duration_seconds, 15);
    assert_true(d.lease.acquire_time_us == T0_US && d.lease.renew_time_us == T0_US);
    assert_int_equal(d.lease.lease_transitions, 0);
    assert_string_equal(d.lease.resource_version, "");
    /* Not leader until the write is confirmed. */
    assert_false(tl_leader_is_leader(f->le));
    assert_int_equal(f->calls.started, 0);

    struct tl_lease_record rec = stored(&d, "1");
    tl_leader_written(f->le, &rec, 0.1);
    assert_true(tl_leader_is_leader(f->le));
    assert_int_equal(f->calls.started, 1);
    assert_int_equal(f->calls.new_leader, 1);
    assert_string_equal(f->calls.last_leader, "tailor-7d9f-abc");
    assert_string_equal(tl_leader_holder(f->le), "tailor-7d9f-abc");
}

static void test_acquires_a_released_lease_at_once(void **state)
{
    struct fixture *f = *state;
    struct tl_lease_record rec = held_by("", T0_US, 4, "55");
    tl_leader_observe(f->le, &rec, 0);
    struct tl_leader_decision d;
    tl_leader_decide(f->le, 0, T0_US + SEC_US, &d);
    assert_int_equal(d.action, TL_LEADER_ACQUIRE);
    assert_false(d.create);
    assert_string_equal(d.lease.resource_version, "55");
    assert_int_equal(d.lease.lease_transitions, 5);
    assert_true(d.lease.acquire_time_us == T0_US + SEC_US);
}

static void test_does_not_take_a_live_lease(void **state)
{
    struct fixture *f = *state;
    struct tl_leader_decision d;
    /* The holder renews every 2 s, so its record keeps changing. */
    for (int i = 0; i <= 30; i++) {
        struct tl_lease_record rec = held_by("other-1", T0_US + SEC_US * 2 * i, 2, "7");
        tl_leader_observe(f->le, &rec, 2.0 * i);
        tl_leader_decide(f->le, 2.0 * i + 1.9, T0_US, &d);
        assert_int_equal(d.action, TL_LEADER_STANDBY);
    }
    assert_false(tl_leader_is_leader(f->le));
    assert_int_equal(f->calls.started, 0);
    assert_int_equal(f->calls.new_leader, 1);
    assert_string_equal(f->calls.last_leader, "other-1");
    assert_float_equal(d.next_check, 2, 1e-9);
}

static void test_holder_with_clock_behind_is_still_live(void **state)
{
    struct fixture *f = *state;
    /* The holder's clock runs an hour behind ours, but it keeps renewing. */
    struct tl_leader_decision d;
    for (int i = 0; i < 10; i++) {
        struct tl_lease_record rec =
            held_by("other-1", T0_US - 3600 * SEC_US + SEC_US * 2 * i, 0, "7");
        tl_leader_observe(f->le, &rec, 2.0 * i);
        tl_leader_decide(f->le, 2.0 * i, T0_US + SEC_US * 2 * i, &d);
        assert_int_equal(d.action, TL_LEADER_STANDBY);
    }
}

static void test_takes_over_after_expiry_by_local_observation(void **state)
{
    struct fixture *f = *state;
    /*
     * The old holder's clock runs an hour ahead: its renewTime is in our future. It has stopped
     * renewing, which we can only tell by the record not changing for a lease duration.
     */
    struct tl_lease_record rec = held_by("other-1", T0_US + 3600 * SEC_US, 3, "42");
    struct tl_leader_decision d;
    for (int t = 100; t < 115; t++) {
        tl_leader_observe(f->le, &rec, t);
        tl_leader_decide(f->le, t, T0_US, &d);
        assert_int_equal(d.action, TL_LEADER_STANDBY);
    }
    tl_leader_observe(f->le, &rec, 115);
    tl_leader_decide(f->le, 115, T0_US + 15 * SEC_US, &d);
    assert_int_equal(d.action, TL_LEADER_ACQUIRE);
    assert_false(d.create);
    assert_string_equal(d.lease.holder, "tailor-7d9f-abc");
    assert_int_equal(d.lease.lease_transitions, 4);
    assert_string_equal(d.lease.resource_version, "42");
    assert_true(d.lease.acquire_time_us == T0_US + 15 * SEC_US);
    assert_true(d.lease.renew_time_us == T0_US + 15 * SEC_US);

    struct tl_lease_record mine = stored(&d, "43");
    tl_leader_written(f->le, &mine, 115.2);
    assert_true(tl_leader_is_leader(f->le));
    assert_int_equal(f->calls.started, 1);
    assert_int_equal(f->calls.new_leader, 2);
    assert_string_equal(f->calls.last_leader, "tailor-7d9f-abc");
}

static void test_expiry_honours_a_longer_advertised_duration(void **state)
{
    struct fixture *f = *state;
    struct tl_lease_record rec = held_by("other-1", T0_US, 0, "9");
    rec.lease_duration_seconds = 60;
    tl_leader_observe(f->le, &rec, 0);
    struct tl_leader_decision d;
    tl_leader_decide(f->le, 30, T0_US, &d);
    assert_int_equal(d.action, TL_LEADER_STANDBY);
    tl_leader_decide(f->le, 59.9, T0_US, &d);
    assert_int_equal(d.action, TL_LEADER_STANDBY);
    tl_leader_decide(f->le, 60, T0_US, &d);
    assert_int_equal(d.action, TL_LEADER_ACQUIRE);
}

static void test_renews_keeping_acquire_time_and_transitions(void **state)
{
    struct fixture *f = *state;
    struct tl_lease_record rec = become_leader(f->le, 0);
    struct tl_leader_decision d;
    for (int i = 1; i <= 5; i++) {
        tl_leader_decide(f->le, 2.0 * i, T0_US + SEC_US * 2 * i, &d);
        assert_int_equal(d.action, TL_LEADER_RENEW);
        assert_false(d.create);
        assert_string_equal(d.lease.holder, "tailor-7d9f-abc");
        assert_true(d.lease.acquire_time_us == T0_US);
        assert_true(d.lease.renew_time_us == T0_US + SEC_US * 2 * i);
        assert_int_equal(d.lease.lease_transitions, rec.lease_transitions);
        /* The update is conditional on the version we last wrote. */
        assert_string_equal(d.lease.resource_version, rec.resource_version);
        char rv[16];
        snprintf(rv, sizeof(rv), "%d", 100 + i);
        rec = stored(&d, rv);
        tl_leader_written(f->le, &rec, 2.0 * i + 0.1);
    }
    assert_true(tl_leader_is_leader(f->le));
    assert_int_equal(f->calls.started, 1);
    assert_int_equal(f->calls.stopped, 0);
    assert_int_equal(f->calls.new_leader, 1);
}

static void test_lost_after_renew_deadline(void **state)
{
    struct fixture *f = *state;
    struct tl_lease_record rec = become_leader(f->le, 0);
    struct tl_leader_decision d;
    tl_leader_decide(f->le, 2, T0_US, &d);
    assert_int_equal(d.action, TL_LEADER_RENEW);
    struct tl_lease_record renewed = stored(&d, "101");
    tl_leader_written(f->le, &renewed, 2.3);
    /* Every renewal from here on fails (the API server is unreachable). */
    for (int t = 4; t < 12; t += 2) {
        tl_leader_decide(f->le, t, T0_US, &d);
        assert_int_equal(d.action, TL_LEADER_RENEW);
        assert_true(tl_leader_is_leader(f->le));
    }
    /* 10 s after the last renewal that went through (sent at t=2), we must stop. */
    tl_leader_decide(f->le, 12, T0_US, &d);
    assert_int_equal(d.action, TL_LEADER_LOST);
    assert_false(tl_leader_is_leader(f->le));
    assert_int_equal(f->calls.stopped, 1);

    /* The renewal sent at t=10 is answered late: it does not make us leader behind our back. */
    struct tl_lease_record late = stored(&d, "102");
    snprintf(late.holder, sizeof(late.holder), "%s", rec.holder);
    tl_leader_written(f->le, &late, 12.5);
    assert_false(tl_leader_is_leader(f->le));
    assert_int_equal(f->calls.started, 1);
}

static void test_lost_at_once_when_another_holder_is_seen(void **state)
{
    struct fixture *f = *state;
    become_leader(f->le, 0);
    struct tl_lease_record rec = held_by("intruder", T0_US, 1, "300");
    tl_leader_observe(f->le, &rec, 3);
    struct tl_leader_decision d;
    tl_leader_decide(f->le, 3, T0_US, &d);
    assert_int_equal(d.action, TL_LEADER_LOST);
    assert_int_equal(f->calls.stopped, 1);
    assert_string_equal(f->calls.last_leader, "intruder");
    /* Now a standby like any other. */
    tl_leader_decide(f->le, 4, T0_US, &d);
    assert_int_equal(d.action, TL_LEADER_STANDBY);
}

static void test_lost_when_the_lease_is_deleted(void **state)
{
    struct fixture *f = *state;
    become_leader(f->le, 0);
    tl_leader_observe(f->le, NULL, 3);
    struct tl_leader_decision d;
    tl_leader_decide(f->le, 3, T0_US, &d);
    assert_int_equal(d.action, TL_LEADER_LOST);
    tl_leader_decide(f->le, 5, T0_US, &d);
    assert_int_equal(d.action, TL_LEADER_ACQUIRE);
    assert_true(d.create);
}

static void test_release_frees_the_lease_for_a_successor(void **state)
{
    struct fixture *f = *state;
    struct tl_leader_decision d;
    assert_int_equal(tl_leader_release(f->le, T0_US, &d), TL_ESTATE);
    become_leader(f->le, 0);
    assert_int_equal(tl_leader_release(f->le, T0_US + 5 * SEC_US, &d), TL_OK);
    assert_int_equal(d.action, TL_LEADER_RELEASE);
    assert_string_equal(d.lease.holder, "");
    assert_int_equal(d.lease.lease_duration_seconds, 1);
    assert_int_equal(d.lease.lease_transitions, 0);
    assert_string_equal(d.lease.resource_version, "100");
    assert_false(tl_leader_is_leader(f->le));
    assert_int_equal(f->calls.stopped, 1);
    assert_int_equal(tl_leader_release(f->le, T0_US, &d), TL_ESTATE);

    /* A successor that has watched us lead does not wait out the 15 s. */
    struct calls other_calls = {0};
    struct tl_leader *other = make_elector("tailor-other", &other_calls);
    struct tl_lease_record ours = held_by("tailor-7d9f-abc", T0_US, 0, "100");
    tl_leader_observe(other, &ours, 1);
    struct tl_lease_record released = stored(&d, "101");
    tl_leader_observe(other, &released, 5.1);
    struct tl_leader_decision od;
    tl_leader_decide(other, 5.1, T0_US + 6 * SEC_US, &od);
    assert_int_equal(od.action, TL_LEADER_ACQUIRE);
    assert_int_equal(od.lease.lease_transitions, 1);
    tl_leader_destroy(other);
}

static void test_config_is_validated(void **state)
{
    struct tl_leader *le = NULL;
    struct tl_leader_config cfg = {0};
    assert_int_equal(tl_leader_create(&cfg, &le), TL_EINVAL);
    cfg.identity = "";
    assert_int_equal(tl_leader_create(&cfg, &le), TL_EINVAL);
    char big[TL_LEASE_HOLDER_MAX + 1];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cfg.identity = big;
    assert_int_equal(tl_leader_create(&cfg, &le), TL_EINVAL);
    cfg.identity = "me";
    cfg.lease_duration = 10;
    cfg.renew_deadline = 10;
    assert_int_equal(tl_leader_create(&cfg, &le), TL_EINVAL);
    cfg.lease_duration = 15;
    cfg.retry_period = 9;
    assert_int_equal(tl_leader_create(&cfg, &le), TL_EINVAL);
    assert_null(le);
    cfg.retry_period = 2;
    assert_int_equal(tl_leader_create(&cfg, &le), TL_OK);
    tl_leader_destroy(le);
    tl_leader_destroy(NULL);
}

/* A fake API server for one Lease: a write must carry the stored resourceVersion (or create). */
struct server {
    bool exists;
    struct tl_lease_record lease;
    int rv;
};

static bool server_write(struct server *s, const struct tl_leader_decision *d,
                         struct tl_lease_record *answer)
{
    if (d->create
            ? s->exists
            : (!s->exists || strcmp(d->lease.resource_version, s->lease.resource_version) != 0))
        return false; /* 409 Conflict */
    s->lease = d->lease;
    snprintf(s->lease.resource_version, sizeof(s->lease.resource_version), "%d", ++s->rv);
    s->exists = true;
    *answer = s->lease;
    return true;
}

/* One retry period of one elector: read, decide, write. */
static enum tl_leader_action step(struct tl_leader *le, struct server *s, double now,
                                  bool reachable)
{
    struct tl_leader_decision d;
    if (reachable)
        tl_leader_observe(le, s->exists ? &s->lease : NULL, now);
    tl_leader_decide(le, now, T0_US + (int64_t)(now * 1e6), &d);
    if (reachable && (d.action == TL_LEADER_ACQUIRE || d.action == TL_LEADER_RENEW)) {
        struct tl_lease_record answer;
        if (server_write(s, &d, &answer))
            tl_leader_written(le, &answer, now);
    }
    return d.action;
}

static void test_two_electors_never_lead_at_once(void **state)
{
    struct server s = {0};
    struct calls ca = {0}, cb = {0};
    struct tl_leader *a = make_elector("a", &ca);
    struct tl_leader *b = make_elector("b", &cb);
    double a_lost_at = -1, b_won_at = -1;
    /* "a" is cut off from the API server at t=20; "b" keeps running. */
    for (int t = 0; t < 60; t++) {
        bool a_up = t < 20;
        if (step(a, &s, t, a_up) == TL_LEADER_LOST && a_lost_at < 0)
            a_lost_at = t;
        step(b, &s, t + 0.5, true);
        if (tl_leader_is_leader(b) && b_won_at < 0)
            b_won_at = t + 0.5;
        assert_false(tl_leader_is_leader(a) && tl_leader_is_leader(b));
    }
    assert_int_equal(ca.started, 1);
    assert_int_equal(ca.stopped, 1);
    assert_int_equal(cb.started, 1);
    /* "a" stepped down before "b" could step up, by at least lease - renew deadline. */
    assert_true(a_lost_at > 0 && b_won_at > 0);
    assert_true(b_won_at - a_lost_at >= 15 - 10 - 1);
    assert_int_equal(s.lease.lease_transitions, 1);
    assert_string_equal(s.lease.holder, "b");
    tl_leader_destroy(a);
    tl_leader_destroy(b);
}

static void test_microtime_format(void **state)
{
    char buf[TL_MICROTIME_LEN];
    assert_int_equal(tl_microtime_format(T0_US, buf, sizeof(buf)), TL_OK);
    assert_string_equal(buf, "2026-11-21T10:00:00.000000Z");
    assert_int_equal(tl_microtime_format(1709210096000000LL + 123456, buf, sizeof(buf)), TL_OK);
    assert_string_equal(buf, "2024-02-29T12:34:56.123456Z");
    assert_int_equal(tl_microtime_format(-1, buf, sizeof(buf)), TL_OK);
    assert_string_equal(buf, "1969-12-31T23:59:59.999999Z");
    assert_int_equal(tl_microtime_format(-62135596800LL * SEC_US, buf, sizeof(buf)), TL_OK);
    assert_string_equal(buf, "0001-01-01T00:00:00.000000Z");
    assert_int_equal(tl_microtime_format(253402300799LL * SEC_US + 999999, buf, sizeof(buf)),
                     TL_OK);
    assert_string_equal(buf, "9999-12-31T23:59:59.999999Z");
    assert_int_equal(tl_microtime_format(253402300800LL * SEC_US, buf, sizeof(buf)), TL_ERANGE);
    assert_int_equal(tl_microtime_format(INT64_MIN, buf, sizeof(buf)), TL_ERANGE);
    char small[20];
    assert_int_equal(tl_microtime_format(T0_US, small, sizeof(small)), TL_ETOOBIG);
}

static void test_microtime_parse(void **state)
{
    int64_t us = 0;
    assert_int_equal(tl_microtime_parse("2026-11-21T10:00:00.000000Z", &us), TL_OK);
    assert_true(us == T0_US);
    assert_int_equal(tl_microtime_parse("2026-11-21T10:00:00Z", &us), TL_OK);
    assert_true(us == T0_US);
    assert_int_equal(tl_microtime_parse("2026-11-21t11:30:00.5+01:30", &us), TL_OK);
    assert_true(us == T0_US + 500000);
    assert_int_equal(tl_microtime_parse("2026-11-21T09:00:00.123456789-01:00", &us), TL_OK);
    assert_true(us == T0_US + 123456);
    assert_int_equal(tl_microtime_parse("1969-12-31T23:59:59.999999Z", &us), TL_OK);
    assert_true(us == -1);
    assert_int_equal(tl_microtime_parse("2024-02-29T00:00:00Z", &us), TL_OK);

    const char *bad[] = {
        "",
        "2026-11-21",
        "2026-11-21 10:00:00Z",
        "2026-11-21T10:00:00",
        "2026-11-21T10:00:00.Z",
        "2026-11-21T10:00:00Zjunk",
        "2026-11-21T24:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "2026-11-21T10:00:00+1:00",
        "2026-11-2lT10:00:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        us = 7;
        assert_int_equal(tl_microtime_parse(bad[i], &us), TL_EINVAL);
        assert_true(us == 7);
    }
    assert_int_equal(tl_microtime_parse(NULL, &us), TL_EINVAL);
}

static void test_lease_json_round_trip(void **state)
{
    struct tl_lease_record rec = held_by("tailor-7d9f-abc", T0_US, 6, "12345");
    rec.acquire_time_us = T0_US - 3 * SEC_US + 250;
    cJSON *json = NULL;
    assert_int_equal(tl_lease_to_json("tailor-system", "tailor-leader", &rec, &json), TL_OK);
    char *text = cJSON_PrintUnformatted(json);
    assert_non_null(text);
    cJSON_Delete(json);

    cJSON *parsed = cJSON_Parse(text);
    assert_non_null(parsed);
    assert_string_equal(cJSON_GetObjectItem(parsed, "apiVersion")->valuestring,
                        "coordination.k8s.io/v1");
    assert_string_equal(cJSON_GetObjectItem(parsed, "kind")->valuestring, "Lease");
    const cJSON *meta = cJSON_GetObjectItem(parsed, "metadata");
    assert_string_equal(cJSON_GetObjectItem(meta, "name")->valuestring, "tailor-leader");
    assert_string_equal(cJSON_GetObjectItem(meta, "namespace")->valuestring, "tailor-system");
    assert_string_equal(cJSON_GetObjectItem(meta, "resourceVersion")->valuestring, "12345");
    const cJSON *spec = cJSON_GetObjectItem(parsed, "spec");
    assert_string_equal(cJSON_GetObjectItem(spec, "renewTime")->valuestring,
                        "2026-11-21T10:00:00.000000Z");
    assert_string_equal(cJSON_GetObjectItem(spec, "acquireTime")->valuestring,
                        "2026-11-21T09:59:57.000250Z");
    assert_int_equal(cJSON_GetObjectItem(spec, "leaseDurationSeconds")->valueint, 15);
    assert_int_equal(cJSON_GetObjectItem(spec, "leaseTransitions")->valueint, 6);

    struct tl_lease_record back;
    memset(&back, 0xab, sizeof(back));
    assert_int_equal(tl_lease_from_json(parsed, &back, NULL), TL_OK);
    assert_string_equal(back.holder, rec.holder);
    assert_int_equal(back.lease_duration_seconds, rec.lease_duration_seconds);
    assert_true(back.acquire_time_us == rec.acquire_time_us);
    assert_true(back.renew_time_us == rec.renew_time_us);
    assert_int_equal(back.lease_transitions, rec.lease_transitions);
    assert_string_equal(back.resource_version, rec.resource_version);
    cJSON_Delete(parsed);
    free(text);
}

static void test_lease_json_of_a_new_and_a_released_lease(void **state)
{
    struct tl_lease_record rec;
    memset(&rec, 0, sizeof(rec));
    cJSON *json = NULL;
    assert_int_equal(tl_lease_to_json("ns", "l", &rec, &json), TL_OK);
    const cJSON *meta = cJSON_GetObjectItem(json, "metadata");
    const cJSON *spec = cJSON_GetObjectItem(json, "spec");
    /* A create carries no resourceVersion; a released lease an empty holder and no times. */
    assert_null(cJSON_GetObjectItem(meta, "resourceVersion"));
    assert_string_equal(cJSON_GetObjectItem(spec, "holderIdentity")->valuestring, "");
    assert_null(cJSON_GetObjectItem(spec, "renewTime"));
    assert_null(cJSON_GetObjectItem(spec, "acquireTime"));
    assert_null(cJSON_GetObjectItem(spec, "leaseDurationSeconds"));
    cJSON_Delete(json);

    json = (cJSON *)0x1;
    assert_int_equal(tl_lease_to_json("", "l", &rec, &json), TL_EINVAL);
    assert_int_equal(tl_lease_to_json("ns", NULL, &rec, &json), TL_EINVAL);
    rec.renew_time_us = INT64_MAX;
    assert_int_equal(tl_lease_to_json("ns", "l", &rec, &json), TL_ERANGE);
    assert_true(json == (cJSON *)0x1);
}

static void expect_bad(const char *text, enum tl_err want, const char *want_field)
{
    cJSON *json = cJSON_Parse(text);
    assert_non_null(json);
    struct tl_lease_record rec;
    memset(&rec, 0x5a, sizeof(rec));
    const char *field = NULL;
    assert_int_equal(tl_lease_from_json(json, &rec, &field), want);
    assert_non_null(field);
    assert_string_equal(field, want_field);
    /* Nothing written on failure. */
    assert_int_equal((unsigned char)rec.holder[0], 0x5a);
    cJSON_Delete(json);
}

static void test_lease_from_json_rejects_bad_fields(void **state)
{
    expect_bad("{\"spec\":{\"holderIdentity\":5}}", TL_EINVAL, "spec.holderIdentity");
    expect_bad("{\"spec\":{\"leaseDurationSeconds\":-1}}", TL_ERANGE, "spec.leaseDurationSeconds");
    expect_bad("{\"spec\":{\"leaseDurationSeconds\":1.5}}", TL_EINVAL, "spec.leaseDurationSeconds");
    expect_bad("{\"spec\":{\"renewTime\":\"yesterday\"}}", TL_EINVAL, "spec.renewTime");
    expect_bad("{\"spec\":{\"acquireTime\":12}}", TL_EINVAL, "spec.acquireTime");
    expect_bad("{\"spec\":{\"leaseTransitions\":1e12}}", TL_ERANGE, "spec.leaseTransitions");
    expect_bad("{\"spec\":[]}", TL_EINVAL, "spec");
    expect_bad("{\"metadata\":{\"resourceVersion\":"
               "\"0123456789012345678901234567890123456789012345678901234567890123\"}}",
               TL_ETOOBIG, "metadata.resourceVersion");

    char big[400];
    int n = snprintf(big, sizeof(big), "{\"spec\":{\"holderIdentity\":\"%0300d\"}}", 0);
    assert_true(n > 0 && (size_t)n < sizeof(big));
    expect_bad(big, TL_ETOOBIG, "spec.holderIdentity");

    /* A Lease with no spec yet reads as free. */
    cJSON *json = cJSON_Parse("{\"metadata\":{\"resourceVersion\":\"3\"},\"spec\":null}");
    struct tl_lease_record rec;
    assert_int_equal(tl_lease_from_json(json, &rec, NULL), TL_OK);
    assert_string_equal(rec.holder, "");
    assert_string_equal(rec.resource_version, "3");
    cJSON_Delete(json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_acquires_a_lease_that_does_not_exist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acquires_a_released_lease_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_does_not_take_a_live_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_holder_with_clock_behind_is_still_live, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_takes_over_after_expiry_by_local_observation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expiry_honours_a_longer_advertised_duration, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_renews_keeping_acquire_time_and_transitions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lost_after_renew_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lost_at_once_when_another_holder_is_seen, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lost_when_the_lease_is_deleted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_frees_the_lease_for_a_successor, setup,
                                        teardown),
        cmocka_unit_test(test_config_is_validated),
        cmocka_unit_test(test_two_electors_never_lead_at_once),
        cmocka_unit_test(test_microtime_format),
        cmocka_unit_test(test_microtime_parse),
        cmocka_unit_test(test_lease_json_round_trip),
        cmocka_unit_test(test_lease_json_of_a_new_and_a_released_lease),
        cmocka_unit_test(test_lease_from_json_rejects_bad_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
