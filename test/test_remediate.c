#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "json.h"
#include "rec_status.h"
#include "remediate.h"

#define GIB 1073741824.0
#define MIB 1048576.0
#define T0  1795000000.0 /* a fixed "now" */

/* One Deployment "web" with one container, 1 core / 2Gi, 3 replicas, fully rolled out. */
struct fixture {
    struct tl_policy policy;
    struct tl_workload workload;
    struct tl_container container;
    cJSON *status; /* desired status, as tl_rec_status_build would give it */
};

static struct fixture fx;

static cJSON *desired(const char *phase, const char *confidence, int revision, const char *cpu,
                      const char *memory)
{
    char text[800];
    snprintf(text, sizeof(text),
             "{\"revision\":%d,\"phase\":\"%s\",\"confidence\":\"%s\",\"containers\":[{\"name\":"
             "\"web\",\"type\":\"Container\",\"current\":{\"requests\":{\"cpu\":\"1\",\"memory\":"
             "\"2Gi\"},\"limits\":{}},\"recommended\":{\"requests\":{\"cpu\":\"%s\",\"memory\":"
             "\"%s\"},\"limits\":{}}}],\"conditions\":[]}",
             revision, phase, confidence, cpu, memory);
    cJSON *doc = cJSON_Parse(text);
    assert_non_null(doc);
    return doc;
}

/* The desired status after one more pass: rec_status carries these members over unchanged. */
static cJSON *next_desired(const cJSON *previous, const char *phase, int revision, const char *cpu,
                           const char *memory)
{
    cJSON *status = desired(phase, "High", revision, cpu, memory);
    static const char *const kept[] = {"history", "lastAppliedRevision", "blockedRevision",
                                       "verification"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(previous, kept[i]);
        if (item)
            assert_int_equal(tl_json_member_set(status, kept[i], tl_json_dup(item)), TL_OK);
    }
    return status;
}

static int setup(void **state)
{
    (void)state;
    memset(&fx, 0, sizeof(fx));
    char err[128];
    cJSON *spec = cJSON_Parse("{\"approval\":{\"mode\":\"Manual\",\"verification\":{\"period\":"
                              "\"5m\"}}}");
    assert_int_equal(tl_policy_parse(spec, &fx.policy, err, sizeof(err)), TL_OK);
    cJSON_Delete(spec);
    fx.container.name = "web";
    fx.container.type = TL_CONTAINER_APP;
    fx.container.resources = (struct tl_resources){.cpu_request = 1, .memory_request = 2 * GIB};
    fx.workload.kind = TL_KIND_DEPLOYMENT;
    fx.workload.containers = &fx.container;
    fx.workload.ncontainers = 1;
    fx.workload.replicas = 3;
    fx.workload.ready_replicas = 3;
    fx.workload.updated_replicas = 3;
    fx.workload.generation = 4;
    fx.workload.observed_generation = 4;
    fx.status = desired("Pending", "High", 2, "250m", "640Mi");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tl_policy_free(&fx.policy);
    cJSON_Delete(fx.status);
    return 0;
}

static struct tl_remediate_input input(const cJSON *previous, int64_t approved, double now)
{
    struct tl_remediate_input in = {.policy = &fx.policy,
                                    .workload = &fx.workload,
                                    .previous = previous,
                                    .approved_revision = approved,
                                    .now = now};
    in.guard.pdb_allowed = -1;
    in.guard.now = now;
    return in;
}

static const char *phase_of(const cJSON *status)
{
    return cJSON_GetObjectItemCaseSensitive(status, "phase")->valuestring;
}

static const cJSON *condition(const cJSON *status, const char *type)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status, "conditions"))
    {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(c, "type")->valuestring, type) == 0)
            return c;
    }
    return NULL;
}

static void test_off_never_touches_the_workload(void **state)
{
    (void)state;
    fx.policy.approval.mode = TL_APPROVAL_OFF;
    struct tl_remediate_input in = input(NULL, 2, T0);
    struct tl_remedy r;
    tl_remediate(&in, fx.status, &r);
    assert_int_equal(r.kind, TL_REMEDY_NONE);
    assert_string_equal(phase_of(fx.status), "Pending");
}

static void test_manual_applies_exactly_the_approved_revision(void **state)
{
    (void)state;
    struct tl_remedy r;
    struct tl_remediate_input in = input(NULL, 0, T0);
    tl_remediate(&in, fx.status, &r);
    assert_int_equal(r.kind, TL_REMEDY_NONE); /* no approval yet */

    /* A stale approval (revision 1) applies nothing. */
    in = input(NULL, 1, T0);
    tl_remediate(&in, fx.status, &r);
    assert_int_equal(r.kind, TL_REMEDY_NONE);

    cJSON_Delete(fx.status);
    fx.status = desired("Approved", "High", 2, "250m", "640Mi");
    in = input(NULL, 2, T0);
    tl_remediate(&in, fx.status, &r);
    assert_int_equal(r.kind, TL_REMEDY_APPLY);
    assert_int_equal(r.revision, 2);
    /* Manual applies the full revision, not a step. */
    assert_float_equal(r.values[0].cpu_request, 0.25, 1e-9);
    assert_float_equal(r.values[0].memory_request, 640 * MIB, 1);
    assert_string_equal(phase_of(fx.status), "Applying");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(fx.status, "verification");
    assert_non_null(v);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(v, "revision")->valuedouble, 2);
    /* What to restore is stored before anything is written. */
    assert_string_equal(
        tl_json_get(v, "restore", "containers", "0", "requests", "cpu", NULL)->valuestring, "1");
    const cJSON *entry = tl_json_get(fx.status, "history", "0", NULL);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(entry, "result")->valuestring,
                        "InProgress");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(entry, "by")->valuestring, "manual");
    assert_string_equal(r.event_reason, "Applying");
}

static void test_verification_succeeds_after_the_period(void **state)
{
    (void)state;
    cJSON_Delete(fx.status);
    fx.status = desired("Approved", "High", 2, "250m", "640Mi");
    struct tl_remediate_input in = input(NULL, 2, T0);
    struct tl_remedy r;
    tl_remediate(&in, fx.status, &r);
    cJSON *previous = tl_json_dup(fx.status); /* what the server now holds */
    fx.container.resources = r.values[0];     /* the rollout happened */

    /* Halfway: still verifying, nothing to re-apply. */
    cJSON_Delete(fx.status);
    fx.status = next_desired(previous, "UpToDate", 2, "250m", "640Mi");
    in = input(previous, 2, T0 + 150);
    tl_remediate(&in, fx.status, &r);
    assert_int_equal(r.kind, TL_REMEDY_NONE);
    assert_string_equal(phase_of(fx.status), "Applying");
    assert_true(r.requeue_after > 0);

    cJSON_Delete(fx.status);
    fx.status = next_desired(previous, "UpToDate", 2, "250m", "640Mi");
    in = input(previous, 2, T0 + 301);
    tl_remediate(&in, fx.status, &r);
    assert_string_equal(phase_of(fx.status), "Applied");
    assert_int_equal(
        cJSON_GetObjectItemCaseSensitive(fx.status, "lastAppliedRevision")->valuedouble, 2);
    assert_null(cJSON_GetObjectItemCaseSensitive(fx.status, "verification"));
    assert_string_equal(tl_json_get(fx.status, "history", "0", "result", NULL)->valuestring,
                        "Succeeded");
    assert_string_equal(r.event_reason, "Verified");
    cJSON_Delete(previous);
}

static void test_restart_mid_verification_reapplies_missing_values_once(void **state)
{
    (void)state;
    cJSON_Delete(fx.status);
    fx.status = desired("Approved", "High", 2, "250m", "640Mi");
    struct tl_remediate_input in = input(NULL, 2, T0);
    struct tl_remedy r;
    tl_remediate(&in, fx.status, &r);
    cJSON *previous = tl_json_dup(fx.status);
    /* The process died after the status write and before the workload write. */
    cJSON_Delete(fx.status);
    fx.status = next_desired(previous, "Pending", 2, "250m", "640Mi");
    in = input(previous, 2, T0 + 20);
    tl_remediate(&in, fx.status, &r);
    assert_int_equal(r.kind, TL_REMEDY_APPLY); /* the same values, idempotently */
    assert_float_equal(r.values[0].cpu_request, 0.25, 1e-9);
    /* The history still has one Apply: nothing is recorded twice. */
    assert_int_equal(tl_json_size(cJSON_GetObjectItemCaseSensitive(fx.status, "history")), 1);
    cJSON_Delete(previous);
}

static void test_oom_after_the_change_rolls_back_and_blocks(void **state)
{
    (void)state;
    cJSON_Delete(fx.status);
    fx.status = desired("Approved", "High", 2, "250m", "640Mi");
    struct tl_remediate_input in = input(NULL, 2, T0);
    struct tl_remedy r;
    tl_remediate(&in, fx.status, &r);
    cJSON *previous = tl_json_dup(fx.status);
    fx.container.resources = r.values[0];

    cJSON_Delete(fx.status);
    fx.status = next_desired(previous, "UpToDate", 2, "250m", "640Mi");
    in = input(previous, 2, T0 + 60);
    in.health.oom_kills = 1;
    snprintf(in.health.problem, sizeof(in.health.problem),
             "pod web-1 container web was "
             "OOM-killed");
    tl_remediate(&in, fx.status, &r);
    assert_int_equal(r.kind, TL_REMEDY_ROLLBACK);
    assert_float_equal(r.values[0].cpu_request, 1, 1e-9); /* the values from before */
    assert_float_equal(r.values[0].memory_request, 2 * GIB, 1);
    assert_string_equal(phase_of(fx.status), "Blocked");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(fx.status, "blockedRevision")->valuedouble,
                     2);
    const cJSON *history = cJSON_GetObjectItemCaseSensitive(fx.status, "history");
    assert_int_equal(tl_json_size(history), 2);
    assert_string_equal(tl_json_get(history, "0", "result", NULL)->valuestring, "Failed");
    assert_string_equal(tl_json_get(history, "1", "action", NULL)->valuestring, "Rollback");
    assert_non_null(strstr(tl_json_get(history, "1", "reason", NULL)->valuestring, "OOM"));
    assert_int_equal(r.event_type, TL_EVENT_WARNING);
    cJSON_Delete(previous);

    /* Blocked: automatic changes stay off until a person unblocks that revision. */
    previous = tl_json_dup(fx.status);
    fx.policy.approval.mode = TL_APPROVAL_AUTO;
    fx.container.resources = r.values[0];
    cJSON_Delete(fx.status);
    fx.status = next_desired(previous, "Pending", 3, "300m", "2Gi");
    in = input(previous, 0, T0 + 100000);
    tl_remediate(&in, fx.status, &r);
    assert_int_equal(r.kind, TL_REMEDY_NONE);
    assert_string_equal(phase_of(fx.status), "Blocked");
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(condition(fx.status, "Remediation"), "reason")
            ->valuestring,
        "Blocked");

    cJSON_Delete(fx.status);
    fx.status = next_desired(previous, "Pending", 3, "300m", "2Gi");
    in = input(previous, 0, T0 + 100000);
    in.unblock_revision = 2;
    tl_remediate(&in, fx.status, &r);
    assert_null(cJSON_GetObjectItemCaseSensitive(fx.status, "blockedRevision"));
    assert_int_equal(r.kind, TL_REMEDY_APPLY); /* Auto may act again */
    cJSON_Delete(previous);
}

static void test_auto_respects_each_guardrail(void **state)
{
    (void)state;
    fx.policy.approval.mode = TL_APPROVAL_AUTO;
    struct tl_remedy r;
    /* Case i is arranged in the switch below; each must stop the change with its reason. */
    static const char *const reasons[] = {"KillSwitch",        "LowConfidence",    "Cooldown",
                                          "RolloutInProgress", "DisruptionBudget", "Concurrency"};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        cJSON_Delete(fx.status);
        fx.status = desired("Pending", i == 1 ? "Low" : "High", 2, "250m", "640Mi");
        cJSON *previous = NULL;
        struct tl_remediate_input in = input(NULL, 0, T0);
        switch (i) {
        case 0:
            in.guard.kill_switch = true;
            break;
        case 2:
            previous = cJSON_Parse("{\"history\":[{\"revision\":1,\"action\":\"Apply\","
                                   "\"appliedAt\":\"2026-11-18T00:00:00Z\",\"by\":\"auto\","
                                   "\"result\":\"Succeeded\"}]}");
            in.previous = previous;
            in.now = in.guard.now = tl_parse_time("2026-11-18T01:00:00Z");
            break;
        case 3:
            in.guard.rolling = true;
            break;
        case 4:
            in.guard.pdb_allowed = 0;
            break;
        case 5:
            in.guard.applying_in_namespace = 1;
            break;
        default:
            break;
        }
        tl_remediate(&in, fx.status, &r);
        assert_int_equal(r.kind, TL_REMEDY_NONE);
        const cJSON *c = condition(fx.status, "Remediation");
        assert_non_null(c);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(c, "reason")->valuestring, reasons[i]);
        cJSON_Delete(previous);
    }
}

static void test_auto_moves_in_steps_inside_its_window(void **state)
{
    (void)state;
    teardown(state);
    setup(state);
    char err[128];
    tl_policy_free(&fx.policy);
    cJSON *spec = cJSON_Parse("{\"approval\":{\"mode\":\"Auto\",\"maxChangePercent\":25,"
                              "\"window\":{\"schedule\":\"0 2 * * *\",\"duration\":\"2h\"}}}");
    assert_int_equal(tl_policy_parse(spec, &fx.policy, err, sizeof(err)), TL_OK);
    cJSON_Delete(spec);
    struct tl_remedy r;
    /* 10:00 UTC: outside 02:00-04:00. */
    double outside = tl_parse_time("2026-11-21T10:00:00Z");
    struct tl_remediate_input in = input(NULL, 0, outside);
    tl_remediate(&in, fx.status, &r);
    assert_int_equal(r.kind, TL_REMEDY_NONE);
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(condition(fx.status, "Remediation"), "reason")
            ->valuestring,
        "OutsideWindow");
    assert_true(r.requeue_after > 0 && r.requeue_after <= 16 * 3600);

    cJSON_Delete(fx.status);
    fx.status = desired("Pending", "High", 2, "250m", "640Mi");
    double inside = tl_parse_time("2026-11-22T02:30:00Z");
    in = input(NULL, 0, inside);
    tl_remediate(&in, fx.status, &r);
    assert_int_equal(r.kind, TL_REMEDY_APPLY);
    /* At most 25% per step: 1 core -> 750m, 2Gi -> 1.5Gi. */
    assert_float_equal(r.values[0].cpu_request, 0.75, 1e-9);
    assert_float_equal(r.values[0].memory_request, 1.5 * GIB, 1);
    assert_string_equal(tl_json_get(fx.status, "history", "0", "by", NULL)->valuestring, "auto");
}

static void test_dry_run_reports_and_changes_nothing(void **state)
{
    (void)state;
    cJSON_Delete(fx.status);
    fx.status = desired("Approved", "High", 2, "250m", "640Mi");
    struct tl_remediate_input in = input(NULL, 2, T0);
    in.dry_run = true;
    struct tl_remedy r;
    tl_remediate(&in, fx.status, &r);
    assert_int_equal(r.kind, TL_REMEDY_NONE);
    assert_null(cJSON_GetObjectItemCaseSensitive(fx.status, "verification"));
    assert_string_equal(
        cJSON_GetObjectItemCaseSensitive(condition(fx.status, "Remediation"), "reason")
            ->valuestring,
        "DryRun");
    assert_string_equal(r.event_reason, "DryRun");
}

static void test_hpa_is_tuned_with_the_change_and_restored_on_rollback(void **state)
{
    (void)state;
    fx.policy.hpa.enabled = true;
    struct tl_hpa hpa = {.target_kind = "Deployment",
                         .target_name = "web",
                         .min_replicas = 3,
                         .max_replicas = 12,
                         .cpu_target_percent = 70};
    cJSON_Delete(fx.status);
    fx.status = desired("Approved", "High", 2, "250m", "640Mi");
    assert_int_equal(tl_json_member_set(fx.status, "hpa",
                                        cJSON_Parse("{\"recommended\":{\"minReplicas\":3,"
                                                    "\"maxReplicas\":12,\"metric\":\"cpu\","
                                                    "\"targetUtilization\":60}}")),
                     TL_OK);
    struct tl_remediate_input in = input(NULL, 2, T0);
    in.hpa = &hpa;
    struct tl_remedy r;
    tl_remediate(&in, fx.status, &r);
    assert_int_equal(r.kind, TL_REMEDY_APPLY);
    assert_true(r.hpa.apply);
    assert_false(r.hpa.create);
    assert_int_equal(r.hpa.target_percent, 60);
    /* The HPA as it was is kept for a rollback. */
    assert_int_equal(
        tl_json_get(fx.status, "verification", "restore", "hpa", "targetUtilization", NULL)
            ->valuedouble,
        70);
    cJSON *previous = tl_json_dup(fx.status);
    cJSON_Delete(fx.status);
    fx.status = next_desired(previous, "Pending", 2, "250m", "640Mi");
    in = input(previous, 2, T0 + 30);
    in.hpa = &hpa;
    in.health.crash_loops = 1;
    tl_remediate(&in, fx.status, &r);
    assert_int_equal(r.kind, TL_REMEDY_ROLLBACK);
    assert_true(r.hpa.apply);
    assert_int_equal(r.hpa.target_percent, 70);
    cJSON_Delete(previous);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_off_never_touches_the_workload),
        T(test_manual_applies_exactly_the_approved_revision),
        T(test_verification_succeeds_after_the_period),
        T(test_restart_mid_verification_reapplies_missing_values_once),
        T(test_oom_after_the_change_rolls_back_and_blocks),
        T(test_auto_respects_each_guardrail),
        T(test_auto_moves_in_steps_inside_its_window),
        T(test_dry_run_reports_and_changes_nothing),
        T(test_hpa_is_tuned_with_the_change_and_restored_on_rollback),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
