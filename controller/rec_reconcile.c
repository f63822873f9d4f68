/* rec_reconcile: keeps one Recommendation per selected workload, with its status up to date. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "operator.h"
#include "rec_status.h"
#include "remediate.h"
#include "usage_source.h"
#include "web.h"

#define MAX_CONTAINERS 64

/* One reconcile in flight: what the callbacks need after the loop comes back. */
struct job {
    struct tl_operator *op;
    char *key;
    char ns[254];
    char name[254];
    char kind[32];
    char *rec_name;
    cJSON *status; /* desired status, written after a create */
    enum tl_workload_kind workload_kind;
    struct tl_remedy remedy;
    char hpa_name[254];    /* the HPA to write with the change; the workload's name for a new one */
    char resized[16][254]; /* pods resized in this pass (the cache lags behind the writes) */
    size_t nresized;
    /* What writing the workload needs, copied: the cache may change before the write. */
    struct {
        char *name;
        enum tl_container_type type;
        double cpu_limit; /* current, to know what a removal has to delete */
        double memory_limit;
    } containers[MAX_CONTAINERS];
    size_t ncontainers;
};

static void job_free(struct job *job)
{
    for (size_t i = 0; i < job->ncontainers; i++)
        free(job->containers[i].name);
    free(job->key);
    free(job->rec_name);
    cJSON_Delete(job->status);
    free(job);
}

static void job_finish(struct job *job, enum tl_err result)
{
    struct tl_operator *op = job->op;
    double again = job->remedy.requeue_after;
    tl_operator_finish(op, job->key, result);
    /* Verification and guardrails that will pass later are rechecked on a timer. */
    if (result == TL_OK && again > 0 && !op->stopping)
        tl_workqueue_add_after(op->queue, job->key, again);
    job_free(job);
}

/* Splits "w/NS/KIND/NAME". */
static bool parse_key(const char *key, struct job *job)
{
    const char *ns = key + 2;
    const char *kind = strchr(ns, '/');
    const char *name = kind ? strchr(kind + 1, '/') : NULL;
    if (!kind || !name || (size_t)(kind - ns) >= sizeof(job->ns) ||
        (size_t)(name - kind - 1) >= sizeof(job->kind) || strlen(name + 1) >= sizeof(job->name))
        return false;
    memcpy(job->ns, ns, (size_t)(kind - ns));
    memcpy(job->kind, kind + 1, (size_t)(name - kind - 1));
    snprintf(job->name, sizeof(job->name), "%s", name + 1);
    return true;
}

static enum tl_err result_error(struct job *job, const struct tl_kube_result *res, const char *what)
{
    if (res->err == TL_OK)
        return TL_OK;
    if (res->err == TL_ECONFLICT) {
        /* A stale cache: the update event is on its way, and the retry reads it. */
        TL_DEBUG(what, TL_STR("ns", job->ns), TL_STR("name", job->rec_name), TL_INT("code", 409));
        return res->err;
    }
    TL_WARN(what, TL_STR("ns", job->ns), TL_STR("name", job->rec_name), TL_INT("code", res->code),
            TL_STR("reason", res->status && res->status->message ? res->status->message
                                                                 : tl_strerror(res->err)));
    return res->err;
}

static void on_deleted(void *arg, struct tl_kube_result *res)
{
    struct job *job = arg;
    /* NotFound is success: someone (or the garbage collector) was first. */
    enum tl_err result = res->err == TL_ENOTFOUND ? TL_OK : result_error(job, res, "delete failed");
    if (result == TL_OK)
        TL_INFO("recommendation removed", TL_STR("ns", job->ns), TL_STR("name", job->rec_name));
    job_finish(job, result);
}

static void write_workload(struct job *job);

static void on_status_written(void *arg, struct tl_kube_result *res)
{
    struct job *job = arg;
    enum tl_err result = result_error(job, res, "status update failed");
    if (result != TL_OK) {
        job_finish(job, result);
        return;
    }
    job->op->stats.writes++;
    /* The status (with what to restore) is stored: only now may the workload change. */
    write_workload(job);
}

/* PUT /status with the object's resourceVersion: a stale cache gets 409 and a retry. */
static void write_status(struct job *job, const char *resource_version)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(body, "metadata");
    enum tl_err result = TL_ENOMEM;
    if (body && meta && cJSON_AddStringToObject(body, "apiVersion", "tailor.dev/v1alpha1") &&
        cJSON_AddStringToObject(body, "kind", "Recommendation") &&
        cJSON_AddStringToObject(meta, "name", job->rec_name) &&
        cJSON_AddStringToObject(meta, "namespace", job->ns) &&
        cJSON_AddStringToObject(meta, "resourceVersion", resource_version) &&
        tl_json_member_set(body, "status", tl_json_dup(job->status)) == TL_OK)
        result = tl_kube_update_status(job->op->client, &job->op->rec_resource, job->ns,
                                       job->rec_name, body, on_status_written, job, NULL);
    cJSON_Delete(body);
    if (result != TL_OK)
        job_finish(job, result);
}

static void on_created(void *arg, struct tl_kube_result *res)
{
    struct job *job = arg;
    enum tl_err result = result_error(job, res, "create failed");
    if (result != TL_OK) {
        job_finish(job, result);
        return;
    }
    job->op->stats.writes++;
    TL_INFO("recommendation created", TL_STR("ns", job->ns), TL_STR("name", job->rec_name));
    const cJSON *rv = tl_json_get(res->body, "metadata", "resourceVersion", NULL);
    if (!cJSON_IsString(rv)) {
        job_finish(job, TL_EINVAL);
        return;
    }
    write_status(job, rv->valuestring);
}

static void emit_event(struct job *job)
{
    const struct tl_remedy *r = &job->remedy;
    if (!r->event_reason)
        return;
    struct tl_event rec_event = {.regarding = {.api_version = "tailor.dev/v1alpha1",
                                               .kind = "Recommendation",
                                               .ns = job->ns,
                                               .name = job->rec_name},
                                 .type = r->event_type,
                                 .reason = r->event_reason,
                                 .action = r->event_action,
                                 .note = r->note};
    tl_recorder_emit(job->op->recorder, &rec_event);
    struct tl_event workload_event = rec_event;
    workload_event.regarding.api_version = "apps/v1";
    workload_event.regarding.kind = job->kind;
    workload_event.regarding.name = job->name;
    tl_recorder_emit(job->op->recorder, &workload_event);
    TL_INFO(r->note, TL_STR("ns", job->ns), TL_STR("workload", job->name),
            TL_STR("reason", r->event_reason));
}

/*
 * The server-side apply configuration: only the resources of the containers, as field manager
 * tailor, so GitOps tools can be told exactly which fields are Tailor's (docs/gitops.md).
 */
static cJSON *apply_body(const struct job *job)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(body, "metadata");
    cJSON *spec = tl_json_get(body, NULL) ? cJSON_AddObjectToObject(body, "spec") : NULL;
    cJSON *template = spec ? cJSON_AddObjectToObject(spec, "template") : NULL;
    cJSON *pod = template ? cJSON_AddObjectToObject(template, "spec") : NULL;
    if (!body || !meta || !pod || !cJSON_AddStringToObject(body, "apiVersion", "apps/v1") ||
        !cJSON_AddStringToObject(body, "kind", job->kind) ||
        !cJSON_AddStringToObject(meta, "name", job->name) ||
        !cJSON_AddStringToObject(meta, "namespace", job->ns)) {
        cJSON_Delete(body);
        return NULL;
    }
    for (size_t i = 0; i < job->ncontainers && i < job->remedy.count; i++) {
        const struct tl_resources *v = &job->remedy.values[i];
        const char *list =
            job->containers[i].type == TL_CONTAINER_APP ? "containers" : "initContainers";
        cJSON *array = cJSON_GetObjectItemCaseSensitive(pod, list);
        if (!array)
            array = cJSON_AddArrayToObject(pod, list);
        cJSON *c = cJSON_CreateObject();
        if (!array || !c || !cJSON_AddStringToObject(c, "name", job->containers[i].name) ||
            tl_json_member_set(c, "resources", tl_resources_to_json(v)) != TL_OK ||
            !cJSON_AddItemToArray(array, c)) {
            cJSON_Delete(c);
            cJSON_Delete(body);
            return NULL;
        }
    }
    return body;
}

/*
 * A limit the advice removes may be owned by another field manager (kubectl, a GitOps tool),
 * which server-side apply cannot take away: a strategic merge patch deletes it instead.
 */
static char *removal_patch(const struct job *job)
{
    cJSON *patch = cJSON_CreateObject();
    cJSON *pod = cJSON_AddObjectToObject(
        cJSON_AddObjectToObject(cJSON_AddObjectToObject(patch, "spec"), "template"), "spec");
    bool any = false;
    for (size_t i = 0; pod && i < job->ncontainers && i < job->remedy.count; i++) {
        const struct tl_resources *v = &job->remedy.values[i];
        bool cpu = v->cpu_limit <= 0 && job->containers[i].cpu_limit > 0;
        bool memory = v->memory_limit <= 0 && job->containers[i].memory_limit > 0;
        if (!cpu && !memory)
            continue;
        const char *list =
            job->containers[i].type == TL_CONTAINER_APP ? "containers" : "initContainers";
        cJSON *array = cJSON_GetObjectItemCaseSensitive(pod, list);
        if (!array)
            array = cJSON_AddArrayToObject(pod, list);
        cJSON *c = cJSON_CreateObject();
        cJSON *limits = cJSON_AddObjectToObject(cJSON_AddObjectToObject(c, "resources"), "limits");
        if (!array || !c || !limits) {
            cJSON_Delete(c);
            break;
        }
        cJSON_AddStringToObject(c, "name", job->containers[i].name);
        if (cpu)
            cJSON_AddNullToObject(limits, "cpu");
        if (memory)
            cJSON_AddNullToObject(limits, "memory");
        cJSON_AddItemToArray(array, c);
        any = true;
    }
    char *text = any ? cJSON_PrintUnformatted(patch) : NULL;
    cJSON_Delete(patch);
    return text;
}

/* Whether a pod's app containers run with the given per-workload-container values. */
static bool pod_at(const struct tl_pod *pod, const struct job *job, const struct tl_resources *v,
                   size_t n)
{
    for (size_t i = 0; i < n && i < job->ncontainers; i++) {
        if (job->containers[i].type != TL_CONTAINER_APP)
            continue;
        for (size_t c = 0; c < pod->ncontainers; c++) {
            const struct tl_resources *r = &pod->containers[c].resources;
            if (strcmp(pod->containers[c].name, job->containers[i].name) == 0 &&
                (fabs(r->cpu_request - v[i].cpu_request) > 0.0005 ||
                 fabs(r->memory_request - v[i].memory_request) > 1 ||
                 fabs(r->cpu_limit - v[i].cpu_limit) > 0.0005 ||
                 fabs(r->memory_limit - v[i].memory_limit) > 1))
                return false;
        }
    }
    return true;
}

struct pods_at_walk {
    const struct job *job;
    const struct tl_resources *values;
    size_t n;
    bool all;
    const char *first_off; /* the first pod not at the values */
};

static bool visit_pods_at(void *arg, const struct tl_kube_store_item *item)
{
    struct pods_at_walk *walk = arg;
    const struct tl_pod *pod = item->proj;
    const struct job *job = walk->job;
    if (!pod || !pod->owner_kind || strcmp(pod->owner_kind, job->kind) != 0 ||
        strcmp(pod->owner_name, job->name) != 0 || pod_at(pod, job, walk->values, walk->n))
        return true;
    for (size_t i = 0; i < job->nresized; i++) {
        if (strcmp(job->resized[i], item->name) == 0)
            return true; /* written in this pass; the cache has not seen it yet */
    }
    walk->all = false;
    walk->first_off = item->name;
    return false;
}

static bool pods_at(void *arg, const struct tl_resources *values, size_t n)
{
    struct job *job = arg;
    struct pods_at_walk walk = {job, values, n, true, NULL};
    tl_kube_store_foreach_namespace(tl_informer_store(job->op->pods), job->ns, visit_pods_at,
                                    &walk);
    return walk.all;
}

static void write_hpa(struct job *job);
static void resize_next(struct job *job);

static void on_resized(void *arg, struct tl_kube_result *res)
{
    struct job *job = arg;
    enum tl_err result = result_error(job, res, "resizing a pod failed");
    if (result != TL_OK) {
        job_finish(job, result);
        return;
    }
    job->op->stats.writes++;
    /* A rollback puts every pod back now; a change moves one pod per pass. */
    if (job->remedy.kind == TL_REMEDY_ROLLBACK)
        resize_next(job);
    else
        write_hpa(job);
}

/* Resizes the next pod of the workload not yet at the remedy's values (pods/resize). */
static void resize_next(struct job *job)
{
    struct pods_at_walk walk = {job, job->remedy.values, job->remedy.count, true, NULL};
    tl_kube_store_foreach_namespace(tl_informer_store(job->op->pods), job->ns, visit_pods_at,
                                    &walk);
    if (walk.all || job->nresized >= sizeof(job->resized) / sizeof(job->resized[0])) {
        write_hpa(job);
        return;
    }
    snprintf(job->resized[job->nresized++], sizeof(job->resized[0]), "%s", walk.first_off);
    cJSON *patch = cJSON_CreateObject();
    cJSON *containers =
        cJSON_AddArrayToObject(cJSON_AddObjectToObject(patch, "spec"), "containers");
    enum tl_err result = containers ? TL_OK : TL_ENOMEM;
    for (size_t i = 0; result == TL_OK && i < job->ncontainers && i < job->remedy.count; i++) {
        if (job->containers[i].type != TL_CONTAINER_APP)
            continue;
        cJSON *c = cJSON_CreateObject();
        if (!c || !cJSON_AddStringToObject(c, "name", job->containers[i].name) ||
            tl_json_member_set(c, "resources", tl_resources_to_json(&job->remedy.values[i])) !=
                TL_OK ||
            !cJSON_AddItemToArray(containers, c)) {
            cJSON_Delete(c);
            result = TL_ENOMEM;
        }
    }
    char *text = result == TL_OK ? cJSON_PrintUnformatted(patch) : NULL;
    cJSON_Delete(patch);
    result = text
                 ? tl_kube_patch(job->op->client, &job->op->pod_resource, job->ns,
                                 job->resized[job->nresized - 1], "resize", TL_KUBE_PATCH_STRATEGIC,
                                 text, strlen(text), false, on_resized, job, NULL)
                 : TL_ENOMEM;
    cJSON_free(text);
    if (result != TL_OK)
        job_finish(job, result);
}

static void on_hpa_written(void *arg, struct tl_kube_result *res)
{
    struct job *job = arg;
    enum tl_err result = result_error(job, res, "writing the HPA failed");
    if (result == TL_OK)
        job->op->stats.writes++;
    job_finish(job, result);
}

/* The HPA part of a change, by server-side apply of exactly the fields the advice names. */
static void write_hpa(struct job *job)
{
    const struct tl_remedy *r = &job->remedy;
    if (!r->hpa.apply) {
        job_finish(job, TL_OK);
        return;
    }
    char body[1200];
    char target[400] = "";
    if (r->hpa.create)
        snprintf(target, sizeof(target),
                 "\"scaleTargetRef\":{\"apiVersion\":\"apps/v1\",\"kind\":\"%s\","
                 "\"name\":\"%s\"},",
                 job->kind, job->name);
    int n = snprintf(body, sizeof(body),
                     "{\"apiVersion\":\"autoscaling/v2\",\"kind\":\"HorizontalPodAutoscaler\","
                     "\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\"},\"spec\":{%s"
                     "\"minReplicas\":%d,\"maxReplicas\":%d,\"metrics\":[{\"type\":"
                     "\"Resource\",\"resource\":{\"name\":\"cpu\",\"target\":{\"type\":"
                     "\"Utilization\",\"averageUtilization\":%d}}}]}}",
                     job->hpa_name, job->ns, target, r->hpa.min_replicas, r->hpa.max_replicas,
                     r->hpa.target_percent);
    enum tl_err result = TL_ETOOBIG;
    if (n > 0 && (size_t)n < sizeof(body))
        result =
            tl_kube_patch(job->op->client, &job->op->hpa_resource, job->ns, job->hpa_name, NULL,
                          TL_KUBE_PATCH_APPLY, body, (size_t)n, true, on_hpa_written, job, NULL);
    if (result != TL_OK)
        job_finish(job, result);
}

static void on_limits_removed(void *arg, struct tl_kube_result *res)
{
    struct job *job = arg;
    enum tl_err result = result_error(job, res, "removing limits failed");
    if (result != TL_OK) {
        job_finish(job, result);
        return;
    }
    job->op->stats.writes++;
    write_hpa(job);
}

static void on_workload_written(void *arg, struct tl_kube_result *res)
{
    struct job *job = arg;
    enum tl_err result = result_error(job, res, "writing the workload failed");
    if (result != TL_OK) {
        /* The status says Applying: the next pass sees the values missing and tries again,
         * until the verification deadline rolls it back. */
        job_finish(job, result);
        return;
    }
    job->op->stats.writes++;
    char *removal = removal_patch(job);
    if (removal) {
        const struct tl_kube_resource *res_type =
            &job->op->workload_resources[tl_operator_kind_index(job->workload_kind)];
        result = tl_kube_patch(job->op->client, res_type, job->ns, job->name, NULL,
                               TL_KUBE_PATCH_STRATEGIC, removal, strlen(removal), false,
                               on_limits_removed, job, NULL);
        cJSON_free(removal);
        if (result == TL_OK)
            return;
        job_finish(job, result);
        return;
    }
    write_hpa(job);
}

/* Carries out the remedy after its status is stored: the workload write and the Event. */
static void write_workload(struct job *job)
{
    emit_event(job);
    const struct tl_remedy *r = &job->remedy;
    if (r->event_reason && strcmp(r->event_reason, "Verified") == 0)
        tl_operator_observe_action(job->op, "verified");
    if (r->kind != TL_REMEDY_NONE && !job->op->opts->dry_run)
        tl_operator_observe_action(job->op, r->kind == TL_REMEDY_APPLY ? "apply" : "rollback");
    if (r->kind == TL_REMEDY_NONE || job->op->opts->dry_run) {
        job_finish(job, TL_OK);
        return;
    }
    if (r->how == TL_REMEDY_RESIZE) {
        resize_next(job);
        return;
    }
    cJSON *body = apply_body(job);
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    enum tl_err result = TL_ENOMEM;
    if (text) {
        const struct tl_kube_resource *res_type =
            &job->op->workload_resources[tl_operator_kind_index(job->workload_kind)];
        result =
            tl_kube_patch(job->op->client, res_type, job->ns, job->name, NULL, TL_KUBE_PATCH_APPLY,
                          text, strlen(text), true, on_workload_written, job, NULL);
        cJSON_free(text);
    }
    if (result != TL_OK)
        job_finish(job, result);
}

static cJSON *rec_object(const struct job *job, const char *policy_key, const char *uid)
{
    char policy_ns[254];
    snprintf(policy_ns, sizeof(policy_ns), "%s", policy_key);
    char *slash = strchr(policy_ns, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    cJSON *obj = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(obj, "metadata");
    cJSON *labels = cJSON_AddObjectToObject(meta, "labels");
    cJSON *owners = cJSON_AddArrayToObject(meta, "ownerReferences");
    cJSON *owner = cJSON_CreateObject();
    cJSON *spec = cJSON_AddObjectToObject(obj, "spec");
    cJSON *target = cJSON_AddObjectToObject(spec, "targetRef");
    cJSON *policy = cJSON_AddObjectToObject(spec, "policyRef");
    bool ok = obj && meta && labels && owners && owner && spec && target && policy &&
              cJSON_AddItemToArray(owners, owner) &&
              cJSON_AddStringToObject(obj, "apiVersion", "tailor.dev/v1alpha1") &&
              cJSON_AddStringToObject(obj, "kind", "Recommendation") &&
              cJSON_AddStringToObject(meta, "name", job->rec_name) &&
              cJSON_AddStringToObject(meta, "namespace", job->ns) &&
              cJSON_AddStringToObject(labels, "app.kubernetes.io/managed-by", "tailor") &&
              /* The garbage collector removes it with its workload. No blockOwnerDeletion: that
               * would need rights on the workload's finalizers. */
              cJSON_AddStringToObject(owner, "apiVersion", "apps/v1") &&
              cJSON_AddStringToObject(owner, "kind", job->kind) &&
              cJSON_AddStringToObject(owner, "name", job->name) &&
              cJSON_AddStringToObject(owner, "uid", uid) &&
              cJSON_AddStringToObject(target, "apiVersion", "apps/v1") &&
              cJSON_AddStringToObject(target, "kind", job->kind) &&
              cJSON_AddStringToObject(target, "name", job->name) &&
              cJSON_AddStringToObject(policy, "name", slash + 1) &&
              cJSON_AddStringToObject(policy, "namespace", policy_ns);
    if (!ok) {
        if (owner && !owners)
            cJSON_Delete(owner);
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

static void on_spec_patched(void *arg, struct tl_kube_result *res)
{
    struct job *job = arg;
    /* The update event of the patched object queues the status write that follows. */
    job_finish(job, result_error(job, res, "spec update failed"));
}

struct hpa_search {
    const char *kind;
    const char *name;
    const struct tl_hpa *found;
    const char *found_name;
};

static bool find_hpa(void *arg, const struct tl_kube_store_item *item)
{
    struct hpa_search *s = arg;
    const struct tl_hpa *h = item->proj;
    if (h && strcmp(h->target_kind, s->kind) == 0 && strcmp(h->target_name, s->name) == 0) {
        s->found = h;
        s->found_name = item->name;
        return false;
    }
    return true;
}

/* OOM kills the pods show raise memory advice above the limit they were killed at. */
struct oom_seen {
    int kills;
    double limit;
};

/* Sizes every container the policy does not exclude. */
static void advise(struct tl_operator *op, const struct job *job, const struct tl_workload *w,
                   const struct tl_policy *policy, const struct tl_hpa *hpa, struct oom_seen ooms,
                   struct tl_advice *advice, const struct tl_advice **refs, double *analyzed_at)
{
    struct tl_histogram empty_cpu;
    struct tl_histogram empty_memory;
    tl_histogram_init(&empty_cpu, &tl_histogram_cpu_defaults);
    tl_histogram_init(&empty_memory, &tl_histogram_memory_defaults);
    for (size_t i = 0; i < w->ncontainers && i < MAX_CONTAINERS; i++) {
        const struct tl_container *c = &w->containers[i];
        refs[i] = NULL;
        if (tl_policy_excludes_container(policy, c->name))
            continue;
        struct tl_usage usage = {.cpu = &empty_cpu, .memory = &empty_memory, .throttled_ratio = -1};
        double when = 0;
        if (op->usage &&
            tl_usage_source_get(op->usage, job->ns, job->kind, job->name, c->name, &usage, &when) &&
            when > *analyzed_at)
            *analyzed_at = when;
        if (hpa && hpa->cpu_target_percent > 0 && c->type == TL_CONTAINER_APP)
            usage.hpa_cpu_target_percent = hpa->cpu_target_percent;
        if (ooms.kills > 0 && c->type == TL_CONTAINER_APP) {
            usage.oom_kills += (unsigned)ooms.kills;
            usage.oom_memory = fmax(usage.oom_memory, ooms.limit);
        }
        tl_recommend_container(&policy->recommend, &usage, &c->resources, &advice[i]);
        refs[i] = &advice[i];
    }
}

struct pod_walk {
    const char *kind;
    const char *name;
    double since;
    struct tl_workload_health *health;
    int oom_kills;    /* any time: memory advice rises after an OOM */
    double oom_limit; /* the largest memory limit a container was killed at */
    const char *oom_container;
};

static bool visit_pod(void *arg, const struct tl_kube_store_item *item)
{
    struct pod_walk *walk = arg;
    const struct tl_pod *pod = item->proj;
    if (!pod || !pod->owner_kind || strcmp(pod->owner_kind, walk->kind) != 0 ||
        strcmp(pod->owner_name, walk->name) != 0)
        return true;
    struct tl_workload_health *h = walk->health;
    h->pods++;
    h->ready_pods += pod->ready;
    h->resize_infeasible = h->resize_infeasible || pod->resize_infeasible;
    for (size_t i = 0; i < pod->ncontainers; i++) {
        const struct tl_container_health *c = &pod->containers[i];
        if (c->oom_killed) {
            walk->oom_kills++;
            if (c->memory_limit > walk->oom_limit)
                walk->oom_limit = c->memory_limit;
        }
        bool oom_now = c->oom_killed && walk->since > 0 && c->oom_finished >= walk->since;
        bool crash_now = c->crash_loop && walk->since > 0 && pod->created >= walk->since - 1;
        if (!oom_now && !crash_now)
            continue;
        h->oom_kills += oom_now;
        h->crash_loops += crash_now;
        if (!h->problem[0])
            snprintf(h->problem, sizeof(h->problem), "pod %s container %s %s", item->name, c->name,
                     oom_now ? "was OOM-killed" : "is in CrashLoopBackOff");
    }
    return true;
}

struct pdb_walk {
    const struct tl_labels *labels;
    int allowed;
};

static bool visit_pdb(void *arg, const struct tl_kube_store_item *item)
{
    struct pdb_walk *walk = arg;
    const struct tl_pdb *pdb = item->proj;
    if (pdb && !tl_selector_is_empty(&pdb->selector) &&
        tl_selector_matches(&pdb->selector, walk->labels) &&
        (walk->allowed < 0 || pdb->disruptions_allowed < walk->allowed))
        walk->allowed = pdb->disruptions_allowed;
    return true;
}

struct applying_count {
    const char *ns;
    const char *self;
    int in_namespace;
    int in_cluster;
};

static bool count_applying(void *arg, const char *key, void *value)
{
    struct applying_count *c = arg;
    if (strcmp(key, c->self) == 0)
        return true;
    c->in_cluster++;
    c->in_namespace += strcmp(value, c->ns) == 0;
    return true;
}

/* Runs the approval and verification state machine on the desired status (remediate.h). */
static void remediate(struct tl_operator *op, struct job *job, const struct tl_workload *w,
                      const struct tl_policy *policy, const struct tl_rec_obj *rec,
                      const cJSON *previous, const struct hpa_search *hs)
{
    char wkey[600];
    snprintf(wkey, sizeof(wkey), "%s/%s/%s", job->ns, job->kind, job->name);
    struct tl_remediate_input in = {.policy = policy,
                                    .workload = w,
                                    .previous = previous,
                                    .approved_revision = rec->approved_revision,
                                    .unblock_revision = rec->unblock_revision,
                                    .dry_run = op->opts->dry_run,
                                    .hpa = hs->found,
                                    .pods_at = pods_at,
                                    .pods_arg = job,
                                    .now = ev_now(op->loop)};
    snprintf(job->hpa_name, sizeof(job->hpa_name), "%s",
             hs->found_name ? hs->found_name : job->name);
    const cJSON *started = tl_json_get(previous, "verification", "startedAt", NULL);
    struct pod_walk pods = {
        job->kind,  job->name, cJSON_IsString(started) ? tl_parse_time(started->valuestring) : 0,
        &in.health, 0,         0,
        NULL};
    tl_kube_store_foreach_namespace(tl_informer_store(op->pods), job->ns, visit_pod, &pods);
    struct pdb_walk pdbs = {&w->template_labels, -1};
    tl_kube_store_foreach_namespace(tl_informer_store(op->pdbs), job->ns, visit_pdb, &pdbs);
    struct applying_count count = {job->ns, wkey, 0, 0};
    tl_strmap_foreach(op->applying, count_applying, &count);
    in.guard.rolling = w->observed_generation < w->generation ||
                       w->updated_replicas < w->replicas || w->ready_replicas < w->replicas;
    in.guard.pdb_allowed = pdbs.allowed;
    in.guard.kill_switch = tl_operator_kill_switch(op);
    in.guard.now = in.now;
    in.guard.applying_in_namespace = count.in_namespace;
    in.guard.applying_in_cluster = count.in_cluster;
    tl_remediate(&in, job->status, &job->remedy);
    const cJSON *phase = cJSON_GetObjectItemCaseSensitive(job->status, "phase");
    if (cJSON_IsString(phase) && strcmp(phase->valuestring, "Applying") == 0) {
        char *ns = strdup(job->ns);
        if (ns)
            tl_strmap_set(op->applying, wkey, ns);
    }
    else {
        tl_strmap_remove(op->applying, wkey);
    }
}

static struct oom_seen observed_ooms(struct tl_operator *op, const struct job *job)
{
    struct tl_workload_health health;
    memset(&health, 0, sizeof(health));
    struct pod_walk walk = {job->kind, job->name, 0, &health, 0, 0, NULL};
    tl_kube_store_foreach_namespace(tl_informer_store(op->pods), job->ns, visit_pod, &walk);
    struct oom_seen seen = {walk.oom_kills, walk.oom_limit};
    return seen;
}

/* Without usage, say why: no Prometheus, a failing one, or simply no cycle yet. */
static void explain_missing_usage(struct tl_operator *op, struct job *job)
{
    const cJSON *confidence = cJSON_GetObjectItemCaseSensitive(job->status, "confidence");
    const char *problem = tl_usage_source_problem(op->usage, job->ns);
    if (!problem || !cJSON_IsString(confidence) || strcmp(confidence->valuestring, "None") != 0)
        return;
    tl_json_member_set(job->status, "explanation", cJSON_CreateString(problem));
    cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(job->status, "conditions"))
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(c, "type");
        if (cJSON_IsString(type) && strcmp(type->valuestring, "Ready") == 0)
            tl_json_member_set(c, "message", cJSON_CreateString(problem));
    }
}

void tl_reconcile_workload(struct tl_operator *op, const char *key)
{
    struct job *job = calloc(1, sizeof(*job));
    if (!job || !(job->key = strdup(key)) || !parse_key(key, job)) {
        TL_ERROR("bad work queue key", TL_STR("key", key));
        if (job)
            job_free(job);
        tl_operator_finish(op, key, TL_OK);
        return;
    }
    job->op = op;
    enum tl_workload_kind kind = TL_KIND_DEPLOYMENT;
    if (!tl_workload_kind_parse(job->kind, &kind) ||
        !(job->rec_name = tl_rec_name(kind, job->name))) {
        job_finish(job, TL_OK);
        return;
    }
    const struct tl_kube_store_item *witem =
        tl_informer_get(op->workloads[tl_operator_kind_index(kind)], job->ns, job->name);
    const struct tl_kube_store_item *ritem = tl_informer_get(op->recs, job->ns, job->rec_name);
    const struct tl_rec_obj *rec = ritem ? ritem->proj : NULL;
    char wkey[600];
    snprintf(wkey, sizeof(wkey), "%s/%s/%s", job->ns, job->kind, job->name);
    const char *policy_key = tl_strmap_get(op->assignment, wkey);
    const struct tl_kube_store_item *pitem = NULL;
    if (policy_key) {
        char pns[254];
        snprintf(pns, sizeof(pns), "%s", policy_key);
        char *slash = strchr(pns, '/');
        if (slash) {
            *slash = '\0';
            pitem = tl_informer_get(op->policies, pns, slash + 1);
        }
    }
    const struct tl_policy_obj *pobj = pitem ? pitem->proj : NULL;
    if (!witem || !witem->proj || !pobj || !pobj->valid) {
        /* Not selected (any more): remove a Recommendation this controller made. */
        if (rec && rec->policy_name && rec->target_name &&
            strcmp(rec->target_name, job->name) == 0) {
            enum tl_err result = tl_kube_delete(op->client, &op->rec_resource, job->ns,
                                                job->rec_name, NULL, on_deleted, job, NULL);
            if (result != TL_OK)
                job_finish(job, result);
            return;
        }
        job_finish(job, TL_OK);
        return;
    }
    const struct tl_workload *w = witem->proj;
    const struct tl_policy *policy = &pobj->policy;
    job->workload_kind = kind;
    for (size_t i = 0; i < w->ncontainers && i < MAX_CONTAINERS; i++) {
        job->containers[i].name = strdup(w->containers[i].name);
        job->containers[i].type = w->containers[i].type;
        job->containers[i].cpu_limit = w->containers[i].resources.cpu_limit;
        job->containers[i].memory_limit = w->containers[i].resources.memory_limit;
        job->ncontainers = i + 1;
        if (!job->containers[i].name) {
            job_finish(job, TL_ENOMEM);
            return;
        }
    }

    struct hpa_search hs = {job->kind, job->name, NULL, NULL};
    tl_kube_store_foreach_namespace(tl_informer_store(op->hpas), job->ns, find_hpa, &hs);
    struct tl_advice advice[MAX_CONTAINERS];
    const struct tl_advice *refs[MAX_CONTAINERS];
    double analyzed_at = 0;
    advise(op, job, w, policy, hs.found, observed_ooms(op, job), advice, refs, &analyzed_at);

    cJSON *previous = NULL;
    if (rec && rec->status_json)
        previous = cJSON_Parse(rec->status_json);
    struct tl_rec_input in = {.workload = w,
                              .name = job->name,
                              .policy = policy,
                              .hpa = hs.found,
                              .advice = refs,
                              .rates = tl_operator_rates(op, policy),
                              .previous = previous,
                              .approved_revision = rec ? rec->approved_revision : 0,
                              .generation = rec ? rec->generation : 1,
                              .now = ev_now(op->loop),
                              .analyzed_at = analyzed_at};
    job->status = tl_rec_status_build(&in);
    if (!job->status) {
        cJSON_Delete(previous);
        job_finish(job, TL_ENOMEM);
        return;
    }
    explain_missing_usage(op, job);
    if (rec)
        remediate(op, job, w, policy, rec, previous, &hs);
    enum tl_err result = TL_OK;
    if (!rec) {
        cJSON *obj = rec_object(job, policy_key, witem->uid);
        result =
            obj ? tl_kube_create(op->client, &op->rec_resource, job->ns, obj, on_created, job, NULL)
                : TL_ENOMEM;
        cJSON_Delete(obj);
    }
    else if (!rec->policy_ns || !rec->policy_name ||
             strncmp(policy_key, rec->policy_ns, strlen(rec->policy_ns)) != 0 ||
             strcmp(policy_key + strlen(rec->policy_ns) + 1, rec->policy_name) != 0) {
        char patch[600];
        const char *slash = strchr(policy_key, '/');
        snprintf(patch, sizeof(patch),
                 "{\"spec\":{\"policyRef\":{\"namespace\":\"%.*s\",\"name\":\"%s\"}}}",
                 (int)(slash - policy_key), policy_key, slash + 1);
        result = tl_kube_patch(op->client, &op->rec_resource, job->ns, job->rec_name, NULL,
                               TL_KUBE_PATCH_MERGE, patch, strlen(patch), false, on_spec_patched,
                               job, NULL);
    }
    else if (previous && tl_json_equal(previous, job->status)) {
        op->stats.status_writes_skipped++;
        cJSON_Delete(previous);
        /* Nothing new to record; a change in flight may still need its values re-applied. */
        write_workload(job);
        return;
    }
    else {
        write_status(job, ritem->resource_version);
        cJSON_Delete(previous);
        return;
    }
    cJSON_Delete(previous);
    if (result != TL_OK)
        job_finish(job, result);
}
