#include "rec_status.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "quantity.h"

#define GIB 1073741824.0

void tl_format_cpu(double cores, char *buf, size_t len)
{
    struct tl_quantity q = tl_quantity_from_milli_cpu((int64_t)llround(cores * 1000));
    if (tl_quantity_format(&q, buf, len) != TL_OK)
        snprintf(buf, len, "%.3f", cores);
}

void tl_format_memory(double bytes, char *buf, size_t len)
{
    struct tl_quantity q = tl_quantity_from_bytes((int64_t)llround(bytes));
    if (tl_quantity_format(&q, buf, len) != TL_OK)
        snprintf(buf, len, "%.0f", bytes);
}

void tl_format_time(double epoch, char *buf, size_t len)
{
    time_t t = (time_t)epoch;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- Small builders: each returns false when out of memory. ---- */

static bool add_string(cJSON *obj, const char *key, const char *value)
{
    return cJSON_AddStringToObject(obj, key, value) != NULL;
}

static bool add_number(cJSON *obj, const char *key, double value)
{
    return cJSON_AddNumberToObject(obj, key, value) != NULL;
}

static bool add_cpu(cJSON *obj, const char *key, double cores)
{
    char buf[TL_QUANTITY_STR_MAX];
    if (cores <= 0)
        return true;
    tl_format_cpu(cores, buf, sizeof(buf));
    return add_string(obj, key, buf);
}

static bool add_memory(cJSON *obj, const char *key, double bytes)
{
    char buf[TL_QUANTITY_STR_MAX];
    if (bytes <= 0)
        return true;
    tl_format_memory(bytes, buf, sizeof(buf));
    return add_string(obj, key, buf);
}

cJSON *tl_resources_to_json(const struct tl_resources *r)
{
    cJSON *out = cJSON_CreateObject();
    cJSON *requests = cJSON_AddObjectToObject(out, "requests");
    cJSON *limits = cJSON_AddObjectToObject(out, "limits");
    if (!requests || !limits || !add_cpu(requests, "cpu", r->cpu_request) ||
        !add_memory(requests, "memory", r->memory_request) ||
        !add_cpu(limits, "cpu", r->cpu_limit) || !add_memory(limits, "memory", r->memory_limit)) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

void tl_resources_from_json(const cJSON *obj, struct tl_resources *r)
{
    memset(r, 0, sizeof(*r));
    const cJSON *requests = cJSON_GetObjectItemCaseSensitive(obj, "requests");
    const cJSON *limits = cJSON_GetObjectItemCaseSensitive(obj, "limits");
    r->cpu_request = tl_resource_value(cJSON_GetObjectItemCaseSensitive(requests, "cpu"), false);
    r->memory_request =
        tl_resource_value(cJSON_GetObjectItemCaseSensitive(requests, "memory"), true);
    r->cpu_limit = tl_resource_value(cJSON_GetObjectItemCaseSensitive(limits, "cpu"), false);
    r->memory_limit = tl_resource_value(cJSON_GetObjectItemCaseSensitive(limits, "memory"), true);
}

static const char *type_name(enum tl_container_type type)
{
    return type == TL_CONTAINER_INIT      ? "Init"
           : type == TL_CONTAINER_SIDECAR ? "Sidecar"
                                          : "Container";
}

/* Relative change of one value, in percent; a value appearing or vanishing is a full change. */
static double change_percent(double from, double to)
{
    if (from <= 0 && to <= 0)
        return 0;
    if (from <= 0 || to <= 0)
        return 100;
    return fabs(to - from) / from * 100;
}

double tl_resources_change_percent(const struct tl_resources *a, const struct tl_resources *b)
{
    double m = change_percent(a->cpu_request, b->cpu_request);
    m = fmax(m, change_percent(a->memory_request, b->memory_request));
    m = fmax(m, change_percent(a->cpu_limit, b->cpu_limit));
    return fmax(m, change_percent(a->memory_limit, b->memory_limit));
}

/* The previous revision's recommended values for a container, if it had one. */
static bool previous_recommended(const cJSON *previous, const char *container,
                                 struct tl_resources *out)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(previous, "containers"))
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
        if (cJSON_IsString(name) && strcmp(name->valuestring, container) == 0) {
            memset(out, 0, sizeof(*out));
            tl_resources_from_json(cJSON_GetObjectItemCaseSensitive(c, "recommended"), out);
            return true;
        }
    }
    return false;
}

struct plan {
    struct tl_resources recommended[64];
    bool sized[64]; /* advice with some confidence for this container */
    size_t count;
    int64_t revision;
    bool advice_differs_from_current;
    enum tl_confidence confidence;
};

/* Decides the revision and freezes each revision's values (see the header). */
static void plan_revision(const struct tl_rec_input *in, struct plan *plan)
{
    const struct tl_workload *w = in->workload;
    plan->count = w->ncontainers < 64 ? w->ncontainers : 64;
    plan->confidence = TL_CONFIDENCE_HIGH;
    int64_t previous_revision = 0;
    const cJSON *rev = cJSON_GetObjectItemCaseSensitive(in->previous, "revision");
    if (cJSON_IsNumber(rev))
        previous_revision = (int64_t)rev->valuedouble;
    bool material = previous_revision == 0;
    size_t previous_count =
        tl_json_size(cJSON_GetObjectItemCaseSensitive(in->previous, "containers"));
    if (previous_count != plan->count)
        material = true;
    bool any_sized = false;
    for (size_t i = 0; i < plan->count; i++) {
        const struct tl_advice *a = in->advice[i];
        const struct tl_resources *current = &w->containers[i].resources;
        plan->sized[i] = a != NULL && a->confidence != TL_CONFIDENCE_NONE;
        plan->recommended[i] = plan->sized[i] ? a->recommended : *current;
        if (a != NULL && w->containers[i].type != TL_CONTAINER_INIT &&
            a->confidence < plan->confidence)
            plan->confidence = a->confidence;
        any_sized = any_sized || plan->sized[i];
        struct tl_resources before;
        if (!previous_recommended(in->previous, w->containers[i].name, &before) ||
            tl_resources_change_percent(&before, &plan->recommended[i]) >=
                in->policy->approval.min_change_percent)
            material = true;
    }
    if (!any_sized)
        plan->confidence = TL_CONFIDENCE_NONE;
    if (material) {
        plan->revision = previous_revision + 1;
    }
    else {
        /* Small wobble: keep the values of the current revision so its approval stays valid. */
        plan->revision = previous_revision;
        for (size_t i = 0; i < plan->count; i++)
            previous_recommended(in->previous, w->containers[i].name, &plan->recommended[i]);
    }
    for (size_t i = 0; i < plan->count; i++) {
        if (tl_resources_change_percent(&w->containers[i].resources, &plan->recommended[i]) >=
            fmax(1.0, (double)in->policy->approval.min_change_percent))
            plan->advice_differs_from_current = true;
    }
}

/* Usage is shown to the MiB: a byte count like 1787101096 reads as noise. */
static double whole_mib(double bytes)
{
    return ceil(bytes / 1048576.0) * 1048576.0;
}

static cJSON *container_json(const struct tl_rec_input *in, const struct plan *plan, size_t i)
{
    const struct tl_container *c = &in->workload->containers[i];
    const struct tl_advice *a = in->advice[i];
    cJSON *out = cJSON_CreateObject();
    if (!out || !add_string(out, "name", c->name) || !add_string(out, "type", type_name(c->type)) ||
        tl_json_member_set(out, "current", tl_resources_to_json(&c->resources)) != TL_OK ||
        tl_json_member_set(out, "recommended", tl_resources_to_json(&plan->recommended[i])) !=
            TL_OK)
        goto fail;
    if (a != NULL && a->confidence != TL_CONFIDENCE_NONE) {
        cJSON *lower = cJSON_AddObjectToObject(out, "lowerBound");
        cJSON *upper = cJSON_AddObjectToObject(out, "upperBound");
        cJSON *usage = cJSON_AddObjectToObject(out, "usage");
        if (!lower || !upper || !usage || !add_cpu(lower, "cpu", a->lower.cpu_request) ||
            !add_memory(lower, "memory", a->lower.memory_request) ||
            !add_cpu(upper, "cpu", a->upper.cpu_request) ||
            !add_memory(upper, "memory", a->upper.memory_request) ||
            !add_cpu(usage, "cpuP50", a->usage.cpu_p50) ||
            !add_cpu(usage, "cpuP95", a->usage.cpu_p95) ||
            !add_cpu(usage, "cpuMax", a->usage.cpu_max) ||
            !add_memory(usage, "memoryP50", whole_mib(a->usage.memory_p50)) ||
            !add_memory(usage, "memoryP99", whole_mib(a->usage.memory_p99)) ||
            !add_memory(usage, "memoryMax", whole_mib(a->usage.memory_max)) ||
            !add_number(usage, "samples", (double)a->usage.samples) ||
            !add_number(usage, "coveragePercent", floor(a->usage.coverage * 100)))
            goto fail;
    }
    return out;
fail:
    cJSON_Delete(out);
    return NULL;
}

/* Per-pod totals of the containers that run all along (init containers only run first). */
static void pod_totals(const struct tl_workload *w, const struct tl_resources *values, double *cpu,
                       double *memory)
{
    *cpu = 0;
    *memory = 0;
    for (size_t i = 0; i < w->ncontainers && i < 64; i++) {
        if (w->containers[i].type == TL_CONTAINER_INIT)
            continue;
        *cpu += values ? values[i].cpu_request : w->containers[i].resources.cpu_request;
        *memory += values ? values[i].memory_request : w->containers[i].resources.memory_request;
    }
}

static bool add_display_and_savings(cJSON *status, const struct tl_rec_input *in,
                                    const struct plan *plan)
{
    const struct tl_workload *w = in->workload;
    double cur_cpu, cur_mem, rec_cpu, rec_mem;
    pod_totals(w, NULL, &cur_cpu, &cur_mem);
    pod_totals(w, plan->recommended, &rec_cpu, &rec_mem);
    char a[TL_QUANTITY_STR_MAX], b[TL_QUANTITY_STR_MAX], text[128];
    cJSON *display = cJSON_AddObjectToObject(status, "display");
    if (!display)
        return false;
    snprintf(text, sizeof(text), "%s/%s", tl_workload_kind_name(w->kind), in->name);
    if (!add_string(display, "target", text))
        return false;
    tl_format_cpu(cur_cpu, a, sizeof(a));
    tl_format_cpu(rec_cpu, b, sizeof(b));
    snprintf(text, sizeof(text), "%s\xE2\x86\x92%s", cur_cpu > 0 ? a : "-", rec_cpu > 0 ? b : "-");
    if (!add_string(display, "cpu", text))
        return false;
    tl_format_memory(cur_mem, a, sizeof(a));
    tl_format_memory(rec_mem, b, sizeof(b));
    snprintf(text, sizeof(text), "%s\xE2\x86\x92%s", cur_mem > 0 ? a : "-", rec_mem > 0 ? b : "-");
    if (!add_string(display, "memory", text))
        return false;

    /* Savings use the running replica count; an HPA's current count when it scales this. */
    double replicas = w->replicas > 0 ? w->replicas : 0;
    if (in->hpa && in->hpa->current_replicas > 0)
        replicas = in->hpa->current_replicas;
    double cpu_saved = (cur_cpu - rec_cpu) * replicas;
    double mem_saved = (cur_mem - rec_mem) * replicas;
    double usd = tl_cost_monthly(&in->rates, cpu_saved, mem_saved / GIB);
    cJSON *savings = cJSON_AddObjectToObject(status, "savings");
    if (!savings)
        return false;
    snprintf(text, sizeof(text), "%.2f", fabs(usd) < 0.005 ? 0.0 : usd);
    if (!add_string(savings, "monthlyUSD", text))
        return false;
    snprintf(text, sizeof(text), "%.3f", fabs(cpu_saved) < 0.0005 ? 0.0 : cpu_saved);
    if (!add_string(savings, "cpuCores", text))
        return false;
    snprintf(text, sizeof(text), "%.0f", mem_saved);
    return add_string(savings, "memoryBytes", text);
}

static bool add_qos(cJSON *status, const struct tl_rec_input *in, const struct plan *plan)
{
    const struct tl_workload *w = in->workload;
    struct tl_resources current[64];
    for (size_t i = 0; i < plan->count; i++)
        current[i] = w->containers[i].resources;
    enum tl_qos before = tl_qos_of(current, plan->count);
    enum tl_qos after = tl_qos_of(plan->recommended, plan->count);
    cJSON *qos = cJSON_AddObjectToObject(status, "qos");
    const char *reason = "limits follow the policy's limit modes";
    if (in->policy->recommend.guaranteed)
        reason = "the policy asks for Guaranteed: limits equal requests, sized above the largest "
                 "working set";
    else if (after == TL_QOS_BURSTABLE && before == TL_QOS_GUARANTEED)
        reason = "CPU limits are removed to avoid throttling; memory stays bounded by its limit";
    else if (after == TL_QOS_BEST_EFFORT)
        reason = "no requests: the workload sets none and the policy keeps it so";
    return qos && add_string(qos, "current", tl_qos_name(before)) &&
           add_string(qos, "recommended", tl_qos_name(after)) && add_string(qos, "reason", reason);
}

static cJSON *hpa_json(int min, int max, const char *metric, int target)
{
    cJSON *out = cJSON_CreateObject();
    if (!out || !add_number(out, "minReplicas", min) || !add_number(out, "maxReplicas", max) ||
        !add_string(out, "metric", metric) || !add_number(out, "targetUtilization", target)) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

static int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* HPA advice: tune an existing one, or suggest one for spiky usage (docs/recommender.md). */
static bool add_hpa(cJSON *status, const struct tl_rec_input *in, const struct plan *plan)
{
    const struct tl_policy *p = in->policy;
    if (!p->hpa.enabled || in->workload->kind == TL_KIND_DAEMONSET)
        return true;
    const struct tl_advice *main = NULL;
    size_t main_index = 0;
    for (size_t i = 0; i < plan->count && !main; i++) {
        if (in->workload->containers[i].type == TL_CONTAINER_APP && in->advice[i] &&
            in->advice[i]->confidence != TL_CONFIDENCE_NONE) {
            main = in->advice[i];
            main_index = i;
        }
    }
    int target = clamp_int(70, p->hpa.target_min, p->hpa.target_max);
    char reason[256];
    cJSON *hpa = NULL;
    if (in->hpa) {
        const struct tl_hpa *h = in->hpa;
        hpa = cJSON_CreateObject();
        const char *metric = h->cpu_target_percent ? "cpu" : "memory";
        int current_target =
            h->cpu_target_percent ? h->cpu_target_percent : h->memory_target_percent;
        int tuned = clamp_int(current_target > 0 ? current_target : target, p->hpa.target_min,
                              p->hpa.target_max);
        snprintf(
            reason, sizeof(reason),
            tuned == current_target
                ? "The HPA's target is within the policy's range; CPU requests are sized for it "
                  "so the two do not fight."
                : "The HPA's target moves into the policy's %d-%d%% range; CPU requests are "
                  "sized for it.",
            p->hpa.target_min, p->hpa.target_max);
        if (!hpa ||
            tl_json_member_set(hpa, "current",
                               hpa_json(h->min_replicas, h->max_replicas, metric,
                                        current_target > 0 ? current_target : 1)) != TL_OK ||
            tl_json_member_set(hpa, "recommended",
                               hpa_json(h->min_replicas, h->max_replicas, metric, tuned)) !=
                TL_OK ||
            !add_string(hpa, "reason", reason)) {
            cJSON_Delete(hpa);
            return false;
        }
        return tl_json_member_set(status, "hpa", hpa) == TL_OK;
    }
    if (!main)
        return true;
    /* Spiky: a wide spread around the mean and peaks well above the typical pod. */
    double cv = main->usage.cpu_mean > 0 ? main->usage.cpu_stddev / main->usage.cpu_mean : 0;
    if (cv < 0.5 || main->usage.cpu_p95 < 2 * main->usage.cpu_p50)
        return true;
    double request = plan->recommended[main_index].cpu_request;
    if (request <= 0)
        return true;
    int replicas = in->workload->replicas > 0 ? in->workload->replicas : 1;
    double per_pod = request * target / 100;
    int min = clamp_int((int)ceil(replicas * main->usage.cpu_p50 / per_pod), p->hpa.min_replicas,
                        p->hpa.max_replicas);
    int max =
        clamp_int((int)ceil(replicas * main->usage.cpu_max / per_pod), min, p->hpa.max_replicas);
    snprintf(reason, sizeof(reason),
             "CPU is spiky (coefficient of variation %.1f, p95 %.1fx the median): an HPA at %d%% "
             "follows the peaks instead of sizing every pod for them.",
             cv, main->usage.cpu_p50 > 0 ? main->usage.cpu_p95 / main->usage.cpu_p50 : 0, target);
    hpa = cJSON_CreateObject();
    if (!hpa ||
        tl_json_member_set(hpa, "recommended", hpa_json(min, max, "cpu", target)) != TL_OK ||
        !add_string(hpa, "reason", reason)) {
        cJSON_Delete(hpa);
        return false;
    }
    return tl_json_member_set(status, "hpa", hpa) == TL_OK;
}

/* Carries lastTransitionTime over when a condition's status did not change. */
static bool add_condition(cJSON *conditions, const cJSON *previous, const char *type,
                          const char *state, const char *reason, const char *message,
                          int64_t generation, const char *now)
{
    const char *since = now;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(previous, "conditions"))
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "type");
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(c, "status");
        const cJSON *when = cJSON_GetObjectItemCaseSensitive(c, "lastTransitionTime");
        if (cJSON_IsString(t) && strcmp(t->valuestring, type) == 0 && cJSON_IsString(s) &&
            strcmp(s->valuestring, state) == 0 && cJSON_IsString(when))
            since = when->valuestring;
    }
    cJSON *cond = cJSON_CreateObject();
    if (!cond || !add_string(cond, "type", type) || !add_string(cond, "status", state) ||
        !add_number(cond, "observedGeneration", (double)generation) ||
        !add_string(cond, "lastTransitionTime", since) || !add_string(cond, "reason", reason) ||
        !add_string(cond, "message", message)) {
        cJSON_Delete(cond);
        return false;
    }
    return cJSON_AddItemToArray(conditions, cond);
}

/* Copies members remediation owns from the previous status unchanged. */
static bool carry_over(cJSON *status, const cJSON *previous)
{
    static const char *const keys[] = {"history", "lastAppliedRevision", "blockedRevision",
                                       "verification"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(previous, keys[i]);
        if (item && tl_json_member_set(status, keys[i], tl_json_dup(item)) != TL_OK)
            return false;
    }
    return true;
}

static const char *explanation_of(const struct tl_rec_input *in, const struct plan *plan)
{
    for (size_t i = 0; i < plan->count; i++) {
        if (in->workload->containers[i].type == TL_CONTAINER_APP && in->advice[i])
            return in->advice[i]->explanation;
    }
    return "No container of this workload is sized by its policy.";
}

/* Pending, Approved or UpToDate, unless remediation holds the phase. */
static const char *phase_of(const struct tl_rec_input *in, const struct plan *plan)
{
    const cJSON *prev = cJSON_GetObjectItemCaseSensitive(in->previous, "phase");
    const char *held = cJSON_IsString(prev) ? prev->valuestring : NULL;
    static const char *const remediation_phases[] = {"Applying", "RolledBack", "Blocked", "Failed"};
    for (size_t i = 0; held && i < sizeof(remediation_phases) / sizeof(remediation_phases[0]);
         i++) {
        if (strcmp(held, remediation_phases[i]) == 0)
            return held;
    }
    if (!plan->advice_differs_from_current)
        return held && strcmp(held, "Applied") == 0 ? "Applied" : "UpToDate";
    if (in->approved_revision == plan->revision)
        return "Approved";
    return "Pending";
}

cJSON *tl_rec_status_build(const struct tl_rec_input *in)
{
    struct plan plan;
    memset(&plan, 0, sizeof(plan));
    plan_revision(in, &plan);
    char now[32];
    tl_format_time(in->now, now, sizeof(now));

    cJSON *status = cJSON_CreateObject();
    cJSON *containers = cJSON_AddArrayToObject(status, "containers");
    if (!status || !containers)
        goto fail;
    if (!add_number(status, "observedGeneration", (double)in->generation) ||
        !add_number(status, "revision", (double)plan.revision) ||
        !add_string(status, "phase", phase_of(in, &plan)) ||
        !add_string(status, "confidence", tl_confidence_name(plan.confidence)) ||
        !add_string(status, "explanation", explanation_of(in, &plan)) ||
        !add_display_and_savings(status, in, &plan) || !add_qos(status, in, &plan) ||
        !add_hpa(status, in, &plan))
        goto fail;
    if (in->analyzed_at > 0) {
        char analyzed[32];
        tl_format_time(in->analyzed_at, analyzed, sizeof(analyzed));
        if (!add_string(status, "lastAnalysisTime", analyzed))
            goto fail;
    }
    for (size_t i = 0; i < plan.count; i++) {
        cJSON *c = container_json(in, &plan, i);
        if (!c || !cJSON_AddItemToArray(containers, c)) {
            cJSON_Delete(c);
            goto fail;
        }
    }
    if (!carry_over(status, in->previous))
        goto fail;

    cJSON *conditions = cJSON_AddArrayToObject(status, "conditions");
    if (!conditions)
        goto fail;
    bool analyzed = plan.confidence != TL_CONFIDENCE_NONE;
    if (!add_condition(conditions, in->previous, "Ready", analyzed ? "True" : "False",
                       analyzed ? "Analyzed" : "NoMetrics",
                       analyzed ? "Usage history analyzed." : explanation_of(in, &plan),
                       in->generation, now))
        goto fail;
    if (in->approved_revision > 0 && in->approved_revision != plan.revision) {
        char message[200];
        snprintf(message, sizeof(message),
                 "Approved revision %lld is not the current revision %lld; nothing will be "
                 "applied until revision %lld is approved.",
                 (long long)in->approved_revision, (long long)plan.revision,
                 (long long)plan.revision);
        if (!add_condition(conditions, in->previous, "ApprovalCurrent", "False", "StaleApproval",
                           message, in->generation, now))
            goto fail;
    }
    return status;
fail:
    cJSON_Delete(status);
    return NULL;
}
