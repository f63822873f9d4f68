#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event_dedup.h"

#define T0_US  1795255200000000LL /* 2026-11-21T10:00:00Z */
#define SEC_US ((int64_t)1000000)

static struct tl_event resized(const char *note)
{
    struct tl_event ev = {
        .regarding = {.api_version = "apps/v1",
                      .kind = "Deployment",
                      .ns = "shop",
                      .name = "web",
                      .uid = "3f1c2a7e-0000-4000-8000-000000000001"},
        .type = TL_EVENT_NORMAL,
        .reason = "Resized",
        .action = "Patch",
        .note = note,
    };
    return ev;
}

static int setup_with(void **state, struct tl_event_dedup_config cfg)
{
    struct tl_event_dedup *d = NULL;
    cfg.reporting_instance = "tailor-5c7d8-x2x9q";
    assert_int_equal(tl_event_dedup_create(&cfg, &d), TL_OK);
    *state = d;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, (struct tl_event_dedup_config){0});
}

static int setup_small(void **state)
{
    return setup_with(state, (struct tl_event_dedup_config){.cache_size = 8});
}

static int teardown(void **state)
{
    tl_event_dedup_destroy(*state);
    return 0;
}

static struct tl_event_decision observe(struct tl_event_dedup *d, const struct tl_event *ev,
                                        int64_t now_us)
{
    struct tl_event_decision dec;
    memset(&dec, 0, sizeof(dec));
    assert_int_equal(tl_event_dedup_observe(d, ev, now_us, &dec), TL_OK);
    return dec;
}

static void test_duplicates_fold_into_a_growing_series(void **state)
{
    struct tl_event_dedup *d = *state;
    struct tl_event ev = resized("cpu request 500m -> 250m");
    struct tl_event_decision first = observe(d, &ev, T0_US);
    assert_int_equal(first.verdict, TL_EVENT_CREATE);
    assert_int_equal(first.count, 1);
    assert_string_equal(first.ns, "shop");
    assert_true(first.event_time_us == T0_US);
    assert_int_equal(strncmp(first.name, "web.", 4), 0);
    assert_int_equal(strlen(first.name), 4 + 16);

    for (int i = 2; i <= 6; i++) {
        struct tl_event_decision dec = observe(d, &ev, T0_US + SEC_US * 30 * i);
        assert_int_equal(dec.verdict, TL_EVENT_UPDATE);
        assert_int_equal(dec.count, i);
        assert_string_equal(dec.name, first.name);
        assert_true(dec.event_time_us == T0_US);
        assert_true(dec.last_observed_us == T0_US + SEC_US * 30 * i);
    }
    assert_int_equal(tl_event_dedup_size(d), 1);
    struct tl_event_dedup_stats stats;
    tl_event_dedup_stats_get(d, &stats);
    assert_int_equal(stats.created, 1);
    assert_int_equal(stats.updated, 5);
    assert_int_equal(stats.dropped, 0);
}

static void test_a_repeat_after_the_window_starts_a_new_event(void **state)
{
    struct tl_event_dedup *d = *state;
    struct tl_event ev = resized("same");
    struct tl_event_decision first = observe(d, &ev, T0_US);
    struct tl_event_decision in_window = observe(d, &ev, T0_US + 360 * SEC_US);
    assert_int_equal(in_window.verdict, TL_EVENT_UPDATE);
    /* The window counts from the last occurrence, not the first. */
    struct tl_event_decision still = observe(d, &ev, T0_US + 700 * SEC_US);
    assert_int_equal(still.verdict, TL_EVENT_UPDATE);
    assert_int_equal(still.count, 3);
    struct tl_event_decision later = observe(d, &ev, T0_US + 1061 * SEC_US);
    assert_int_equal(later.verdict, TL_EVENT_CREATE);
    assert_int_equal(later.count, 1);
    assert_true(later.event_time_us == T0_US + 1061 * SEC_US);
    assert_string_not_equal(later.name, first.name);
}

static void test_different_notes_are_different_events(void **state)
{
    struct tl_event_dedup *d = *state;
    struct tl_event a = resized("cpu request 500m -> 250m");
    struct tl_event b = resized("memory request 1Gi -> 512Mi");
    struct tl_event_decision da = observe(d, &a, T0_US);
    struct tl_event_decision db = observe(d, &b, T0_US);
    assert_int_equal(da.verdict, TL_EVENT_CREATE);
    assert_int_equal(db.verdict, TL_EVENT_CREATE);
    /* Same object, same instant: the names still differ. */
    assert_string_not_equal(da.name, db.name);
    assert_int_equal(observe(d, &a, T0_US + SEC_US).count, 2);
    assert_int_equal(observe(d, &b, T0_US + SEC_US).count, 2);
}

static void test_other_objects_reasons_and_types_are_separate(void **state)
{
    struct tl_event_dedup *d = *state;
    struct tl_event base = resized("n");
    struct tl_event other_name = base;
    other_name.regarding.name = "api";
    struct tl_event other_reason = base;
    other_reason.reason = "RolledBack";
    struct tl_event warning = base;
    warning.type = TL_EVENT_WARNING;
    struct tl_event other_uid = base; /* a deleted and recreated object of the same name */
    other_uid.regarding.uid = "3f1c2a7e-0000-4000-8000-000000000002";
    const struct tl_event *all[] = {&base, &other_name, &other_reason, &warning, &other_uid};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(observe(d, all[i], T0_US).verdict, TL_EVENT_CREATE);
    assert_int_equal(tl_event_dedup_size(d), 5);
}

static void test_names_are_deterministic(void **state)
{
    struct tl_event_dedup *d = *state;
    struct tl_event_dedup *twin = NULL;
    struct tl_event_dedup_config cfg = {.reporting_instance = "tailor-5c7d8-x2x9q"};
    assert_int_equal(tl_event_dedup_create(&cfg, &twin), TL_OK);
    struct tl_event ev = resized("x");
    struct tl_event_decision a = observe(d, &ev, T0_US);
    struct tl_event_decision b = observe(twin, &ev, T0_US);
    assert_string_equal(a.name, b.name);
    tl_event_dedup_destroy(twin);
}

static void test_spam_filter_drops_past_the_burst(void **state)
{
    struct tl_event_dedup *d = *state;
    struct tl_event ev = resized("OOMKilled, rolling back");
    int64_t t = T0_US;
    for (int i = 1; i <= 25; i++) {
        struct tl_event_decision dec = observe(d, &ev, t);
        assert_int_not_equal(dec.verdict, TL_EVENT_DROP);
        t += SEC_US;
    }
    for (int i = 26; i <= 40; i++) {
        struct tl_event_decision dec = observe(d, &ev, t);
        assert_int_equal(dec.verdict, TL_EVENT_DROP);
        t += SEC_US;
    }
    /* Another object has its own budget. */
    struct tl_event other = ev;
    other.regarding.name = "api";
    assert_int_equal(observe(d, &other, t).verdict, TL_EVENT_CREATE);

    /* One token back every five minutes; the dropped occurrences were still counted. */
    t = T0_US + 301 * SEC_US;
    struct tl_event_decision dec = observe(d, &ev, t);
    assert_int_equal(dec.verdict, TL_EVENT_UPDATE);
    assert_int_equal(dec.count, 41);
    assert_int_equal(observe(d, &ev, t + SEC_US).verdict, TL_EVENT_DROP);

    struct tl_event_dedup_stats stats;
    tl_event_dedup_stats_get(d, &stats);
    assert_int_equal(stats.dropped, 16);
}

static void test_many_notes_of_one_reason_are_combined(void **state)
{
    struct tl_event_dedup *d = *state;
    char note[64] = "";
    struct tl_event ev = resized(note);
    /* Nine different notes are nine Events. */
    for (int i = 0; i < 9; i++) {
        snprintf(note, sizeof(note), "replica %d resized", i);
        struct tl_event_decision dec = observe(d, &ev, T0_US + i * SEC_US);
        assert_int_equal(dec.verdict, TL_EVENT_CREATE);
        assert_false(dec.aggregated);
    }
    /* The tenth within ten minutes starts one combined Event, which the rest then count into. */
    snprintf(note, sizeof(note), "replica 9 resized");
    struct tl_event_decision combined = observe(d, &ev, T0_US + 10 * SEC_US);
    assert_int_equal(combined.verdict, TL_EVENT_CREATE);
    assert_true(combined.aggregated);
    snprintf(note, sizeof(note), "replica 10 resized");
    struct tl_event_decision next = observe(d, &ev, T0_US + 11 * SEC_US);
    assert_int_equal(next.verdict, TL_EVENT_UPDATE);
    assert_true(next.aggregated);
    assert_string_equal(next.name, combined.name);
    assert_int_equal(next.count, 2);

    snprintf(note, sizeof(note), "replica 9 resized");
    cJSON *json = NULL;
    assert_int_equal(tl_event_dedup_render(d, &ev, &combined, &json), TL_OK);
    const char *rendered = cJSON_GetObjectItem(json, "note")->valuestring;
    assert_string_equal(rendered, "(combined from similar events): replica 9 resized");
    cJSON_Delete(json);

    struct tl_event_dedup_stats stats;
    tl_event_dedup_stats_get(d, &stats);
    assert_int_equal(stats.aggregated, 2);
}

static void test_notes_spread_over_time_are_not_combined(void **state)
{
    struct tl_event_dedup *d = *state;
    char note[64] = "";
    struct tl_event ev = resized(note);
    for (int i = 0; i < 30; i++) {
        snprintf(note, sizeof(note), "daily resize %d", i);
        /* Eleven minutes apart: never ten in one ten-minute window. */
        struct tl_event_decision dec = observe(d, &ev, T0_US + SEC_US * 660 * i);
        assert_false(dec.aggregated);
        assert_int_equal(dec.verdict, TL_EVENT_CREATE);
    }
}

static void test_cache_is_bounded_and_evicts_least_recently_used(void **state)
{
    struct tl_event_dedup *d = *state;
    char name[32];
    struct tl_event ev = resized("n");
    ev.regarding.name = name;
    snprintf(name, sizeof(name), "keep");
    observe(d, &ev, T0_US);
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "obj-%d", i);
        observe(d, &ev, T0_US + SEC_US);
        assert_true(tl_event_dedup_size(d) <= 8);
        if (i % 5 == 0) {
            /* Touching "keep" keeps it among the most recently used. */
            snprintf(name, sizeof(name), "keep");
            assert_int_equal(observe(d, &ev, T0_US + SEC_US).verdict, TL_EVENT_UPDATE);
        }
    }
    assert_int_equal(tl_event_dedup_size(d), 8);
    /* An early object was evicted: its next occurrence is a new Event. */
    snprintf(name, sizeof(name), "obj-0");
    assert_int_equal(observe(d, &ev, T0_US + 2 * SEC_US).verdict, TL_EVENT_CREATE);
    snprintf(name, sizeof(name), "obj-99");
    assert_int_equal(observe(d, &ev, T0_US + 2 * SEC_US).verdict, TL_EVENT_UPDATE);
}

static void test_rendered_event_has_the_required_fields(void **state)
{
    struct tl_event_dedup *d = *state;
    struct tl_event ev = resized("cpu request 500m -> 250m");
    ev.type = TL_EVENT_WARNING;
    struct tl_event_decision dec = observe(d, &ev, T0_US + 123456);
    cJSON *json = NULL;
    assert_int_equal(tl_event_dedup_render(d, &ev, &dec, &json), TL_OK);
    char *text = cJSON_PrintUnformatted(json);
    cJSON_Delete(json);
    /* Check what a server would read: the printed text. */
    cJSON *e = cJSON_Parse(text);
    assert_non_null(e);
    assert_string_equal(cJSON_GetObjectItem(e, "apiVersion")->valuestring, "events.k8s.io/v1");
    assert_string_equal(cJSON_GetObjectItem(e, "kind")->valuestring, "Event");
    const cJSON *meta = cJSON_GetObjectItem(e, "metadata");
    assert_string_equal(cJSON_GetObjectItem(meta, "name")->valuestring, dec.name);
    assert_string_equal(cJSON_GetObjectItem(meta, "namespace")->valuestring, "shop");
    assert_string_equal(cJSON_GetObjectItem(e, "eventTime")->valuestring,
                        "2026-11-21T10:00:00.123456Z");
    assert_string_equal(cJSON_GetObjectItem(e, "reportingController")->valuestring, "tailor");
    assert_string_equal(cJSON_GetObjectItem(e, "reportingInstance")->valuestring,
                        "tailor-5c7d8-x2x9q");
    assert_string_equal(cJSON_GetObjectItem(e, "action")->valuestring, "Patch");
    assert_string_equal(cJSON_GetObjectItem(e, "reason")->valuestring, "Resized");
    assert_string_equal(cJSON_GetObjectItem(e, "note")->valuestring, "cpu request 500m -> 250m");
    assert_string_equal(cJSON_GetObjectItem(e, "type")->valuestring, "Warning");
    /* The first occurrence is not a series yet. */
    assert_null(cJSON_GetObjectItem(e, "series"));
    const cJSON *reg = cJSON_GetObjectItem(e, "regarding");
    assert_string_equal(cJSON_GetObjectItem(reg, "apiVersion")->valuestring, "apps/v1");
    assert_string_equal(cJSON_GetObjectItem(reg, "kind")->valuestring, "Deployment");
    assert_string_equal(cJSON_GetObjectItem(reg, "namespace")->valuestring, "shop");
    assert_string_equal(cJSON_GetObjectItem(reg, "name")->valuestring, "web");
    assert_string_equal(cJSON_GetObjectItem(reg, "uid")->valuestring,
                        "3f1c2a7e-0000-4000-8000-000000000001");
    cJSON_Delete(e);
    free(text);
}

static void test_series_update_and_its_patch(void **state)
{
    struct tl_event_dedup *d = *state;
    struct tl_event ev = resized("n");
    observe(d, &ev, T0_US);
    observe(d, &ev, T0_US + SEC_US);
    struct tl_event_decision dec = observe(d, &ev, T0_US + 90 * SEC_US);
    assert_int_equal(dec.verdict, TL_EVENT_UPDATE);

    cJSON *patch = NULL;
    assert_int_equal(tl_event_dedup_render_patch(&dec, &patch), TL_OK);
    /* Only the series: every other field of a v1 Event is immutable. */
    assert_int_equal(cJSON_GetArraySize(patch), 1);
    const cJSON *series = cJSON_GetObjectItem(patch, "series");
    assert_int_equal(cJSON_GetArraySize(series), 2);
    assert_int_equal(cJSON_GetObjectItem(series, "count")->valueint, 3);
    assert_string_equal(cJSON_GetObjectItem(series, "lastObservedTime")->valuestring,
                        "2026-11-21T10:01:30.000000Z");
    cJSON_Delete(patch);

    /* The create to fall back on after a 404 carries the series and the first time. */
    cJSON *json = NULL;
    assert_int_equal(tl_event_dedup_render(d, &ev, &dec, &json), TL_OK);
    assert_string_equal(cJSON_GetObjectItem(json, "eventTime")->valuestring,
                        "2026-11-21T10:00:00.000000Z");
    series = cJSON_GetObjectItem(json, "series");
    assert_non_null(series);
    assert_int_equal(cJSON_GetObjectItem(series, "count")->valueint, 3);
    cJSON_Delete(json);
}

static void test_cluster_scoped_object_events_go_to_default(void **state)
{
    struct tl_event_dedup *d = *state;
    struct tl_event ev = {
        .regarding = {.api_version = "v1", .kind = "Node", .name = "ip-10-0-1-23"},
        .type = TL_EVENT_NORMAL,
        .reason = "Drained",
        .action = "Evict",
    };
    struct tl_event_decision dec = observe(d, &ev, T0_US);
    assert_string_equal(dec.ns, "default");
    cJSON *json = NULL;
    assert_int_equal(tl_event_dedup_render(d, &ev, &dec, &json), TL_OK);
    const cJSON *reg = cJSON_GetObjectItem(json, "regarding");
    assert_null(cJSON_GetObjectItem(reg, "namespace"));
    assert_null(cJSON_GetObjectItem(reg, "uid"));
    assert_string_equal(cJSON_GetObjectItem(json, "note")->valuestring, "");
    cJSON_Delete(json);
}

static void test_long_note_and_name_are_cut_to_api_limits(void **state)
{
    struct tl_event_dedup *d = *state;
    /* 1023 ASCII bytes, then a 2-byte character straddling the 1024-byte limit. */
    char note[1100];
    memset(note, 'a', 1023);
    note[1023] = (char)0xc3;
    note[1024] = (char)0xa9;
    memset(note + 1025, 'b', 50);
    note[1075] = '\0';
    char name[254];
    memset(name, 'n', 253);
    name[234] = '-';
    name[235] = '-';
    name[253] = '\0';
    struct tl_event ev = resized(note);
    ev.regarding.name = name;
    struct tl_event_decision dec = observe(d, &ev, T0_US);
    assert_true(strlen(dec.name) <= 253);
    /* No "-." where the object name was cut. */
    assert_null(strstr(dec.name, "-."));
    assert_int_equal(strncmp(dec.name, name, 234), 0);

    cJSON *json = NULL;
    assert_int_equal(tl_event_dedup_render(d, &ev, &dec, &json), TL_OK);
    const char *rendered = cJSON_GetObjectItem(json, "note")->valuestring;
    assert_int_equal(strlen(rendered), 1023);
    cJSON_Delete(json);
}

static void test_invalid_events_are_refused(void **state)
{
    struct tl_event_dedup *d = *state;
    struct tl_event_decision dec;
    memset(&dec, 0x5a, sizeof(dec));
    struct tl_event ev = resized("n");
    ev.reason = NULL;
    assert_int_equal(tl_event_dedup_observe(d, &ev, T0_US, &dec), TL_EINVAL);
    ev = resized("n");
    ev.action = "";
    assert_int_equal(tl_event_dedup_observe(d, &ev, T0_US, &dec), TL_EINVAL);
    char reason[200];
    memset(reason, 'R', 129);
    reason[129] = '\0';
    ev = resized("n");
    ev.reason = reason;
    assert_int_equal(tl_event_dedup_observe(d, &ev, T0_US, &dec), TL_EINVAL);
    ev = resized("n");
    ev.regarding.kind = NULL;
    assert_int_equal(tl_event_dedup_observe(d, &ev, T0_US, &dec), TL_EINVAL);
    ev = resized("n");
    ev.type = (enum tl_event_type)7;
    assert_int_equal(tl_event_dedup_observe(d, &ev, T0_US, &dec), TL_EINVAL);
    assert_int_equal((unsigned char)dec.name[0], 0x5a);
    assert_int_equal(tl_event_dedup_size(d), 0);
}

static void test_config_is_validated(void **state)
{
    struct tl_event_dedup *d = NULL;
    struct tl_event_dedup_config cfg = {0};
    assert_int_equal(tl_event_dedup_create(&cfg, &d), TL_EINVAL);
    cfg.reporting_instance = "pod";
    cfg.aggregate_max = 17;
    assert_int_equal(tl_event_dedup_create(&cfg, &d), TL_EINVAL);
    assert_null(d);
    cfg.aggregate_max = 0;
    cfg.reporting_controller = "tailor.example.com/tailor";
    assert_int_equal(tl_event_dedup_create(&cfg, &d), TL_OK);
    struct tl_event ev = resized("n");
    struct tl_event_decision dec = observe(d, &ev, T0_US);
    cJSON *json = NULL;
    assert_int_equal(tl_event_dedup_render(d, &ev, &dec, &json), TL_OK);
    assert_string_equal(cJSON_GetObjectItem(json, "reportingController")->valuestring,
                        "tailor.example.com/tailor");
    cJSON_Delete(json);
    tl_event_dedup_destroy(d);
    tl_event_dedup_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_duplicates_fold_into_a_growing_series, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_repeat_after_the_window_starts_a_new_event, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_different_notes_are_different_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_objects_reasons_and_types_are_separate, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_names_are_deterministic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spam_filter_drops_past_the_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_notes_of_one_reason_are_combined, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_notes_spread_over_time_are_not_combined, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cache_is_bounded_and_evicts_least_recently_used,
                                        setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_rendered_event_has_the_required_fields, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_series_update_and_its_patch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_scoped_object_events_go_to_default, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_long_note_and_name_are_cut_to_api_limits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_invalid_events_are_refused, setup, teardown),
        cmocka_unit_test(test_config_is_validated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
