/* rec_reconcile: keeps one Recommendation per selected workload, with its status up to date. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "operator.h"
#include "rec_status.h"
#include "usage_source.h"

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
};

static void job_free(struct job *job)
{
    free(job->key);
    free(job->rec_name);
    cJSON_Delete(job->status);
    free(job);
}

static void job_finish(struct job *job, enum tl_err result)
{
    tl_operator_finish(job->op, job->key, result);
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

static void on_status_written(void *arg, struct tl_kube_result *res)
{
    struct job *job = arg;
    enum tl_err result = result_error(job, res, "status update failed");
    if (result == TL_OK)
        job->op->stats.writes++;
    job_finish(job, result);
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
};

static bool find_hpa(void *arg, const struct tl_kube_store_item *item)
{
    struct hpa_search *s = arg;
    const struct tl_hpa *h = item->proj;
    if (h && strcmp(h->target_kind, s->kind) == 0 && strcmp(h->target_name, s->name) == 0) {
        s->found = h;
        return false;
    }
    return true;
}

/* Sizes every container the policy does not exclude. */
static void advise(struct tl_operator *op, const struct job *job, const struct tl_workload *w,
                   const struct tl_policy *policy, const struct tl_hpa *hpa,
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
        tl_recommend_container(&policy->recommend, &usage, &c->resources, &advice[i]);
        refs[i] = &advice[i];
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
    enum tl_workload_kind kind;
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

    struct hpa_search hs = {job->kind, job->name, NULL};
    tl_kube_store_foreach_namespace(tl_informer_store(op->hpas), job->ns, find_hpa, &hs);
    struct tl_advice advice[MAX_CONTAINERS];
    const struct tl_advice *refs[MAX_CONTAINERS];
    double analyzed_at = 0;
    advise(op, job, w, policy, hs.found, advice, refs, &analyzed_at);

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
        job_finish(job, TL_OK);
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
