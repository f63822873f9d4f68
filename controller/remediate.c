#include "remediate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "rec_status.h"

#define HISTORY_MAX 20
#define RECHECK     5.0 /* seconds between verification checks */

static const char *str_at(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

static int64_t int_at(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(item) ? (int64_t)item->valuedouble : 0;
}

static void set_string(cJSON *obj, const char *key, const char *value)
{
    tl_json_member_set(obj, key, cJSON_CreateString(value));
}

static void set_number(cJSON *obj, const char *key, double value)
{
    tl_json_member_set(obj, key, cJSON_CreateNumber(value));
}

static void remove_member(cJSON *obj, const char *key)
{
    cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
}

/* The recommended values of a revision, as frozen in the status, per workload container. */
static void recommended_values(const struct tl_workload *w, const cJSON *status,
                               struct tl_resources *out)
{
    for (size_t i = 0; i < w->ncontainers && i < TL_REMEDY_MAX_CONTAINERS; i++) {
        out[i] = w->containers[i].resources;
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status, "containers"))
        {
            const char *name = str_at(c, "name");
            if (name && strcmp(name, w->containers[i].name) == 0)
                tl_resources_from_json(cJSON_GetObjectItemCaseSensitive(c, "recommended"), &out[i]);
        }
    }
}

/* The values stored to restore on rollback, per workload container (current ones if absent). */
static void restore_values(const struct tl_workload *w, const cJSON *verification,
                           struct tl_resources *out)
{
    for (size_t i = 0; i < w->ncontainers && i < TL_REMEDY_MAX_CONTAINERS; i++) {
        out[i] = w->containers[i].resources;
        const cJSON *c;
        cJSON_ArrayForEach(c, tl_json_get(verification, "restore", "containers", NULL))
        {
            const char *name = str_at(c, "name");
            if (name && strcmp(name, w->containers[i].name) == 0)
                tl_resources_from_json(c, &out[i]);
        }
    }
}

static bool same_values(const struct tl_resources *a, const struct tl_resources *b)
{
    return fabs(a->cpu_request - b->cpu_request) < 0.0005 &&
           fabs(a->cpu_limit - b->cpu_limit) < 0.0005 &&
           fabs(a->memory_request - b->memory_request) < 1 &&
           fabs(a->memory_limit - b->memory_limit) < 1;
}

/* The largest relative change between current and target values, over containers. */
static double largest_change(const struct tl_workload *w, const struct tl_resources *target)
{
    double m = 0;
    for (size_t i = 0; i < w->ncontainers && i < TL_REMEDY_MAX_CONTAINERS; i++)
        m = fmax(m, tl_resources_change_percent(&w->containers[i].resources, &target[i]));
    return m;
}

/* "web: cpu 1→750m, memory 2Gi→1536Mi" for history and events. */
static void describe(const struct tl_workload *w, const struct tl_resources *from,
                     const struct tl_resources *to, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < w->ncontainers && i < TL_REMEDY_MAX_CONTAINERS && used < len; i++) {
        if (same_values(&from[i], &to[i]))
            continue;
        char a[48], b[48], c[48], d[48];
        tl_format_cpu(from[i].cpu_request, a, sizeof(a));
        tl_format_cpu(to[i].cpu_request, b, sizeof(b));
        tl_format_memory(from[i].memory_request, c, sizeof(c));
        tl_format_memory(to[i].memory_request, d, sizeof(d));
        int n =
            snprintf(buf + used, len - used, "%s%s: cpu %s\xE2\x86\x92%s, memory %s\xE2\x86\x92%s",
                     used ? "; " : "", w->containers[i].name, a, b, c, d);
        used = n > 0 ? used + (size_t)n : len;
    }
}

static cJSON *history_of(cJSON *status)
{
    cJSON *history = cJSON_GetObjectItemCaseSensitive(status, "history");
    if (!history) {
        tl_json_member_set(status, "history", cJSON_CreateArray());
        history = cJSON_GetObjectItemCaseSensitive(status, "history");
    }
    return history;
}

static void history_add(cJSON *status, int64_t revision, const char *action, const char *by,
                        const char *result, const char *reason, const char *from, const char *to,
                        const char *now)
{
    cJSON *history = history_of(status);
    cJSON *entry = cJSON_CreateObject();
    if (!history || !entry) {
        cJSON_Delete(entry);
        return;
    }
    set_number(entry, "revision", (double)revision);
    set_string(entry, "action", action);
    set_string(entry, "appliedAt", now);
    set_string(entry, "by", by);
    set_string(entry, "result", result);
    if (reason)
        set_string(entry, "reason", reason);
    if (from && *from)
        set_string(entry, "from", from);
    if (to && *to)
        set_string(entry, "to", to);
    if (strcmp(result, "InProgress") != 0)
        set_string(entry, "finishedAt", now);
    cJSON_AddItemToArray(history, entry);
    while (tl_json_size(history) > HISTORY_MAX)
        cJSON_DeleteItemFromArray(history, 0);
}

/* Closes the newest in-progress entry of a revision. */
static void history_finish(cJSON *status, int64_t revision, const char *result, const char *reason,
                           const char *now)
{
    cJSON *history = history_of(status);
    for (int i = (int)tl_json_size(history) - 1; i >= 0; i--) {
        cJSON *entry = cJSON_GetArrayItem(history, i);
        const char *r = str_at(entry, "result");
        if (int_at(entry, "revision") == revision && r && strcmp(r, "InProgress") == 0) {
            set_string(entry, "result", result);
            set_string(entry, "finishedAt", now);
            if (reason)
                set_string(entry, "reason", reason);
            return;
        }
    }
}

/* When the newest successful or in-progress Apply happened (for the cooldown). */
static double last_applied(const cJSON *previous)
{
    double last = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, cJSON_GetObjectItemCaseSensitive(previous, "history"))
    {
        const char *action = str_at(entry, "action");
        if (action && strcmp(action, "Apply") == 0)
            last = fmax(last, tl_parse_time(str_at(entry, "appliedAt")));
    }
    return last;
}

static void condition(const struct tl_remediate_input *in, cJSON *status, const char *state,
                      const char *reason, const char *message, const char *now)
{
    cJSON *conditions = cJSON_GetObjectItemCaseSensitive(status, "conditions");
    if (!conditions)
        return;
    /* Keep lastTransitionTime when an earlier Remediation condition had the same status. It is
     * copied: the old condition is deleted below. */
    char since[40];
    snprintf(since, sizeof(since), "%s", now);
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(in->previous, "conditions"))
    {
        const char *type = str_at(c, "type");
        const char *s = str_at(c, "status");
        const char *when = str_at(c, "lastTransitionTime");
        if (type && strcmp(type, "Remediation") == 0 && s && strcmp(s, state) == 0 && when)
            snprintf(since, sizeof(since), "%s", when);
    }
    for (int i = (int)tl_json_size(conditions) - 1; i >= 0; i--) {
        const char *type = str_at(cJSON_GetArrayItem(conditions, i), "type");
        if (type && strcmp(type, "Remediation") == 0)
            cJSON_DeleteItemFromArray(conditions, i);
    }
    cJSON *cond = cJSON_CreateObject();
    if (!cond)
        return;
    set_string(cond, "type", "Remediation");
    set_string(cond, "status", state);
    set_string(cond, "lastTransitionTime", since);
    set_string(cond, "reason", reason);
    set_string(cond, "message", message);
    cJSON_AddItemToArray(conditions, cond);
}

static bool rollout_complete(const struct tl_workload *w)
{
    return w->observed_generation >= w->generation && w->updated_replicas >= w->replicas &&
           w->ready_replicas >= w->replicas;
}

static void start_verification(cJSON *status, int64_t revision, const struct tl_workload *w,
                               const struct tl_resources *restore, double period,
                               const char *now_text, double now)
{
    char deadline[32];
    tl_format_time(now + period, deadline, sizeof(deadline));
    cJSON *v = cJSON_CreateObject();
    cJSON *r = cJSON_AddObjectToObject(v, "restore");
    cJSON *containers = cJSON_AddArrayToObject(r, "containers");
    if (!v || !r || !containers) {
        cJSON_Delete(v);
        return;
    }
    set_number(v, "revision", (double)revision);
    set_string(v, "startedAt", now_text);
    set_string(v, "deadline", deadline);
    for (size_t i = 0; i < w->ncontainers && i < TL_REMEDY_MAX_CONTAINERS; i++) {
        cJSON *c = tl_resources_to_json(&restore[i]);
        if (!c)
            continue;
        set_string(c, "name", w->containers[i].name);
        cJSON_AddItemToArray(containers, c);
    }
    tl_json_member_set(status, "verification", v);
}

static void decide_new_change(const struct tl_remediate_input *in, cJSON *status,
                              struct tl_remedy *out, const char *now);

/* Reads {minReplicas, maxReplicas, targetUtilization} (metric cpu) into the remedy's HPA part. */
static bool read_hpa(const cJSON *obj, struct tl_remedy *out)
{
    const cJSON *metric = cJSON_GetObjectItemCaseSensitive(obj, "metric");
    if (!obj || (cJSON_IsString(metric) && strcmp(metric->valuestring, "cpu") != 0))
        return false;
    out->hpa.min_replicas = (int)int_at(obj, "minReplicas");
    out->hpa.max_replicas = (int)int_at(obj, "maxReplicas");
    out->hpa.target_percent = (int)int_at(obj, "targetUtilization");
    return out->hpa.max_replicas > 0 && out->hpa.target_percent > 0;
}

/*
 * Whether the change carries HPA settings: the advice's recommended HPA, when it differs from
 * the HPA there is, or when there is none and the policy may create one.
 */
static void plan_hpa(const struct tl_remediate_input *in, const cJSON *status,
                     struct tl_remedy *out)
{
    const struct tl_policy *p = in->policy;
    const cJSON *rec = tl_json_get(status, "hpa", "recommended", NULL);
    if (!p->hpa.enabled || !rec || !read_hpa(rec, out))
        return;
    const struct tl_hpa *h = in->hpa;
    if (h) {
        out->hpa.apply = h->min_replicas != out->hpa.min_replicas ||
                         h->max_replicas != out->hpa.max_replicas ||
                         h->cpu_target_percent != out->hpa.target_percent;
        return;
    }
    out->hpa.apply = p->hpa.create;
    out->hpa.create = p->hpa.create;
}

/* Records the HPA as it is, so a rollback can write it back. */
static void record_hpa_restore(const struct tl_remediate_input *in, cJSON *verification)
{
    const struct tl_hpa *h = in->hpa;
    cJSON *restore = cJSON_GetObjectItemCaseSensitive(verification, "restore");
    if (!h || !restore || h->cpu_target_percent <= 0)
        return;
    cJSON *hpa = cJSON_CreateObject();
    if (!hpa)
        return;
    set_number(hpa, "minReplicas", h->min_replicas);
    set_number(hpa, "maxReplicas", h->max_replicas);
    set_string(hpa, "metric", "cpu");
    set_number(hpa, "targetUtilization", h->cpu_target_percent);
    tl_json_member_set(restore, "hpa", hpa);
}

/* Rolls back, records why, and blocks further automatic changes until a person unblocks. */
static void roll_back(const struct tl_remediate_input *in, cJSON *status, const cJSON *v,
                      int64_t revision, const char *why, struct tl_remedy *out, const char *now)
{
    const struct tl_workload *w = in->workload;
    struct tl_resources current[TL_REMEDY_MAX_CONTAINERS];
    memset(current, 0, sizeof(current));
    for (size_t i = 0; i < out->count; i++)
        current[i] = w->containers[i].resources;
    restore_values(w, v, out->values);
    out->hpa.apply = read_hpa(tl_json_get(v, "restore", "hpa", NULL), out);
    /* Undo where the change went: running pods for an in-place change, else the template. */
    out->how = in->policy->approval.method == TL_APPLY_IN_PLACE && in->pods_at &&
                       !in->health.resize_infeasible
                   ? TL_REMEDY_RESIZE
                   : TL_REMEDY_TEMPLATE;
    char change[400];
    describe(w, current, out->values, change, sizeof(change));
    history_finish(status, revision, "Failed", why, now);
    history_add(status, revision, "Rollback", "auto", "Succeeded", why, NULL, change, now);
    remove_member(status, "verification");
    set_string(status, "phase", "Blocked");
    set_number(status, "blockedRevision", (double)revision);
    char message[300];
    snprintf(message, sizeof(message),
             "Revision %lld was rolled back: %s. Automatic changes stay off until "
             "spec.approval.unblockRevision is set to %lld.",
             (long long)revision, why, (long long)revision);
    condition(in, status, "False", "RolledBack", message, now);
    out->kind = TL_REMEDY_ROLLBACK;
    out->revision = revision;
    out->event_type = TL_EVENT_WARNING;
    out->event_reason = "RolledBack";
    out->event_action = "Rollback";
    snprintf(out->note, sizeof(out->note), "Revision %lld rolled back: %s", (long long)revision,
             why);
}

static void verify(const struct tl_remediate_input *in, cJSON *status, const cJSON *v,
                   struct tl_remedy *out, const char *now)
{
    const struct tl_workload *w = in->workload;
    int64_t revision = int_at(v, "revision");
    double deadline = tl_parse_time(str_at(v, "deadline"));
    double started = tl_parse_time(str_at(v, "startedAt"));
    double period = deadline - started;
    char why[240];
    if (in->health.oom_kills > 0 || in->health.crash_loops > 0) {
        snprintf(why, sizeof(why), "%s after the change",
                 in->health.problem[0] ? in->health.problem : "containers failed");
        roll_back(in, status, v, revision, why, out, now);
        return;
    }
    /* The values this change writes (a step of them in Auto mode), to check they are there. */
    struct tl_resources target[TL_REMEDY_MAX_CONTAINERS];
    struct tl_resources restore[TL_REMEDY_MAX_CONTAINERS];
    memset(target, 0, sizeof(target));
    memset(restore, 0, sizeof(restore));
    recommended_values(w, status, target);
    restore_values(w, v, restore);
    if (in->policy->approval.mode == TL_APPROVAL_AUTO) {
        for (size_t i = 0; i < out->count; i++)
            tl_guard_step(&restore[i], &target[i], in->policy->approval.max_change_percent,
                          &target[i]);
    }
    /* InPlace: the running pods carry the values; after a fallback (or for Patch), the
     * template does. */
    bool in_place = in->policy->approval.method == TL_APPLY_IN_PLACE && in->pods_at;
    if (in_place && in->health.resize_infeasible) {
        if (!in->policy->approval.fallback_to_patch) {
            snprintf(why, sizeof(why),
                     "a pod's node cannot fit the in-place resize (Infeasible)"
                     " and fallbackToPatch is off");
            roll_back(in, status, v, revision, why, out, now);
            return;
        }
        in_place = false; /* fall back: change the template, which rolls the pods */
    }
    out->how = in_place ? TL_REMEDY_RESIZE : TL_REMEDY_TEMPLATE;
    bool written = true;
    for (size_t i = 0; i < out->count; i++) {
        if (w->containers[i].type != TL_CONTAINER_INIT &&
            !same_values(&w->containers[i].resources, &target[i]))
            written = false;
    }
    if (in_place)
        written = in->pods_at(in->pods_arg, target, out->count);
    bool complete = written && rollout_complete(w);
    if (in->now >= deadline && complete) {
        history_finish(status, revision, "Succeeded", NULL, now);
        remove_member(status, "verification");
        set_string(status, "phase", "Applied");
        set_number(status, "lastAppliedRevision", (double)revision);
        condition(in, status, "True", "Verified", "The change rolled out and stayed healthy.", now);
        out->event_type = TL_EVENT_NORMAL;
        out->event_reason = "Verified";
        out->event_action = "Verify";
        snprintf(out->note, sizeof(out->note),
                 "Revision %lld is applied: every pod is ready and none was OOM-killed or "
                 "crash-looping during the %.0f s verification",
                 (long long)revision, period);
        return;
    }
    if (in->now >= deadline + fmax(period, 60)) {
        if (!written) {
            /* Nothing changed in the workload: there is nothing to roll back. */
            history_finish(status, revision, "Failed", "the workload could not be changed", now);
            remove_member(status, "verification");
            set_string(status, "phase", "Failed");
            condition(in, status, "False", "ApplyFailed",
                      "The workload could not be changed; see the operator's log and Events.", now);
            out->event_type = TL_EVENT_WARNING;
            out->event_reason = "ApplyFailed";
            out->event_action = "Apply";
            snprintf(out->note, sizeof(out->note),
                     "Revision %lld could not be written to the workload", (long long)revision);
            return;
        }
        snprintf(why, sizeof(why), "the rollout did not complete (%d of %d pods ready)",
                 w->ready_replicas, w->replicas);
        roll_back(in, status, v, revision, why, out, now);
        return;
    }
    /* Still verifying: keep the state and make sure the workload has the values (a restart
     * between the status write and the workload write lands here). */
    set_string(status, "phase", "Applying");
    tl_json_member_set(status, "verification", tl_json_dup(v));
    out->revision = revision;
    out->requeue_after = fmin(RECHECK, fmax(1, deadline - in->now));
    for (size_t i = 0; i < out->count; i++) {
        if (!same_values(&w->containers[i].resources, &target[i]) &&
            w->containers[i].type != TL_CONTAINER_INIT) {
            out->kind = TL_REMEDY_APPLY;
            memcpy(out->values, target, sizeof(target[0]) * out->count);
            break;
        }
    }
}

void tl_remediate(const struct tl_remediate_input *in, cJSON *status, struct tl_remedy *out)
{
    memset(out, 0, sizeof(*out));
    const struct tl_workload *w = in->workload;
    out->count =
        w->ncontainers < TL_REMEDY_MAX_CONTAINERS ? w->ncontainers : TL_REMEDY_MAX_CONTAINERS;
    char now[32];
    tl_format_time(in->now, now, sizeof(now));
    const char *prev_phase = str_at(in->previous, "phase");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(in->previous, "verification");

    /* A change in flight is seen through, whatever the mode says now: never half a change. */
    if (prev_phase && strcmp(prev_phase, "Applying") == 0 && v) {
        verify(in, status, v, out, now);
        return;
    }
    int64_t blocked = int_at(in->previous, "blockedRevision");
    if (blocked > 0) {
        if (in->unblock_revision == blocked) {
            remove_member(status, "blockedRevision");
            history_add(status, blocked, "Unblock", "manual", "Succeeded",
                        "spec.approval.unblockRevision", NULL, NULL, now);
            out->event_type = TL_EVENT_NORMAL;
            out->event_reason = "Unblocked";
            out->event_action = "Unblock";
            snprintf(out->note, sizeof(out->note), "Revision %lld unblocked by a person",
                     (long long)blocked);
        }
        else {
            int64_t revision = int_at(status, "revision");
            /* A person approving a new revision explicitly is allowed through the block. */
            if (in->policy->approval.mode == TL_APPROVAL_MANUAL &&
                in->approved_revision == revision && revision != blocked) {
                decide_new_change(in, status, out, now);
                return;
            }
            set_string(status, "phase", "Blocked");
            char message[256];
            snprintf(message, sizeof(message),
                     "Automatic changes are blocked after revision %lld was rolled back; set "
                     "spec.approval.unblockRevision to %lld to allow them again.",
                     (long long)blocked, (long long)blocked);
            condition(in, status, "False", "Blocked", message, now);
            return;
        }
    }
    decide_new_change(in, status, out, now);
}

static void decide_new_change(const struct tl_remediate_input *in, cJSON *status,
                              struct tl_remedy *out, const char *now)
{
    const struct tl_workload *w = in->workload;
    const struct tl_policy *p = in->policy;
    const char *phase = str_at(status, "phase");
    int64_t revision = int_at(status, "revision");
    if (p->approval.mode == TL_APPROVAL_OFF || !phase ||
        (strcmp(phase, "Pending") != 0 && strcmp(phase, "Approved") != 0))
        return;
    struct tl_resources target[TL_REMEDY_MAX_CONTAINERS];
    struct tl_resources current[TL_REMEDY_MAX_CONTAINERS];
    memset(target, 0, sizeof(target));
    memset(current, 0, sizeof(current));
    recommended_values(w, status, target);
    for (size_t i = 0; i < out->count; i++)
        current[i] = w->containers[i].resources;
    const char *by = "manual";
    double opens_in = 0;
    if (p->approval.mode == TL_APPROVAL_MANUAL) {
        if (in->approved_revision != revision)
            return;
        if (!tl_guard_window_open(p, in->now, &opens_in)) {
            char message[160];
            snprintf(message, sizeof(message),
                     "Revision %lld is approved and waits for the policy's window (opens in %.0f "
                     "minutes).",
                     (long long)revision, ceil(opens_in / 60));
            condition(in, status, "False", "OutsideWindow", message, now);
            out->requeue_after = fmin(opens_in, 300);
            return;
        }
    }
    else {
        by = "auto";
        struct tl_guard_input guard = in->guard;
        guard.policy = p;
        const char *confidence = str_at(status, "confidence");
        guard.confidence = TL_CONFIDENCE_NONE;
        if (confidence)
            tl_confidence_parse(confidence, &guard.confidence);
        guard.change_percent = largest_change(w, target);
        guard.last_applied = last_applied(in->previous);
        struct tl_guard_result g;
        tl_guard_check_auto(&guard, &g);
        if (!g.allowed) {
            condition(in, status, "False", g.reason, g.message, now);
            out->requeue_after = g.retry_after;
            return;
        }
        for (size_t i = 0; i < out->count; i++)
            tl_guard_step(&current[i], &target[i], p->approval.max_change_percent, &target[i]);
    }
    for (size_t i = 0; i < out->count; i++) {
        if (w->containers[i].type == TL_CONTAINER_INIT)
            target[i] = current[i]; /* init containers are sized only on request */
    }
    char change[400];
    describe(w, current, target, change, sizeof(change));
    if (in->dry_run) {
        char message[600];
        snprintf(message, sizeof(message), "Dry run: would apply revision %lld (%s).",
                 (long long)revision, change);
        condition(in, status, "False", "DryRun", message, now);
        out->event_type = TL_EVENT_NORMAL;
        out->event_reason = "DryRun";
        out->event_action = "Apply";
        snprintf(out->note, sizeof(out->note), "Would apply revision %lld: %s", (long long)revision,
                 change);
        return;
    }
    start_verification(status, revision, w, current, (double)p->approval.verification_ms / 1000,
                       now, in->now);
    record_hpa_restore(in, cJSON_GetObjectItemCaseSensitive(status, "verification"));
    plan_hpa(in, status, out);
    out->how = p->approval.method == TL_APPLY_IN_PLACE && in->pods_at ? TL_REMEDY_RESIZE
                                                                      : TL_REMEDY_TEMPLATE;
    history_add(status, revision, "Apply", by, "InProgress", NULL, NULL, change, now);
    set_string(status, "phase", "Applying");
    char message[600];
    snprintf(message, sizeof(message), "Applying revision %lld (%s); verifying for %.0f s.",
             (long long)revision, change, (double)p->approval.verification_ms / 1000);
    condition(in, status, "True", "Applying", message, now);
    out->kind = TL_REMEDY_APPLY;
    out->revision = revision;
    memcpy(out->values, target, sizeof(target[0]) * out->count);
    out->requeue_after = RECHECK;
    out->event_type = TL_EVENT_NORMAL;
    out->event_reason = "Applying";
    out->event_action = "Apply";
    snprintf(out->note, sizeof(out->note), "Applying revision %lld (%s): %s", (long long)revision,
             by, change);
}
