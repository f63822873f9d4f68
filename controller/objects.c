#include "objects.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "leader.h"
#include "pod_owner.h"
#include "quantity.h"

static const char *const kind_names[] = {"Deployment", "StatefulSet", "DaemonSet"};

bool tl_workload_kind_parse(const char *name, enum tl_workload_kind *out)
{
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(name, kind_names[i]) == 0) {
            *out = (enum tl_workload_kind)(1u << i);
            return true;
        }
    }
    return false;
}

char *tl_rec_name(enum tl_workload_kind kind, const char *name)
{
    const char *k = tl_workload_kind_name(kind);
    size_t len = strlen(k) + strlen(name) + 2;
    char *out = malloc(len);
    if (!out)
        return NULL;
    snprintf(out, len, "%s-%s", k, name);
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

double tl_resource_value(const cJSON *quantity, bool memory)
{
    char text[64];
    if (cJSON_IsString(quantity))
        snprintf(text, sizeof(text), "%s", quantity->valuestring);
    else if (cJSON_IsNumber(quantity))
        snprintf(text, sizeof(text), "%.17g", quantity->valuedouble);
    else
        return 0;
    struct tl_quantity q;
    int64_t milli = 0;
    if (tl_quantity_parse(text, &q, NULL, 0) != TL_OK || tl_quantity_milli(&q, &milli) != TL_OK ||
        milli < 0)
        return 0;
    return memory ? ceil((double)milli / 1000) : (double)milli / 1000;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void read_resources(const cJSON *container, struct tl_resources *r)
{
    const cJSON *requests = tl_json_get(container, "resources", "requests", NULL);
    const cJSON *limits = tl_json_get(container, "resources", "limits", NULL);
    r->cpu_request = tl_resource_value(cJSON_GetObjectItemCaseSensitive(requests, "cpu"), false);
    r->memory_request =
        tl_resource_value(cJSON_GetObjectItemCaseSensitive(requests, "memory"), true);
    r->cpu_limit = tl_resource_value(cJSON_GetObjectItemCaseSensitive(limits, "cpu"), false);
    r->memory_limit = tl_resource_value(cJSON_GetObjectItemCaseSensitive(limits, "memory"), true);
}

void tl_workload_free(struct tl_workload *w)
{
    if (w == NULL)
        return;
    tl_labels_free(&w->labels);
    tl_labels_free(&w->template_labels);
    for (size_t i = 0; i < w->ncontainers; i++)
        free(w->containers[i].name);
    free(w->containers);
    free(w);
}

static int64_t int_or(const cJSON *obj, int64_t fallback)
{
    return cJSON_IsNumber(obj) ? (int64_t)obj->valuedouble : fallback;
}

enum tl_err tl_workload_from_json(const cJSON *obj, enum tl_workload_kind kind,
                                  struct tl_workload **out)
{
    struct tl_workload *w = calloc(1, sizeof(*w));
    if (!w)
        return TL_ENOMEM;
    w->kind = kind;
    enum tl_err result =
        tl_labels_from_json(tl_json_get(obj, "metadata", "labels", NULL), &w->labels);
    if (result != TL_OK)
        goto fail;
    const cJSON *ignore = tl_json_get(obj, "metadata", "annotations", "tailor.dev/ignore", NULL);
    w->ignored = cJSON_IsString(ignore) && strcmp(ignore->valuestring, "true") == 0;
    w->generation = int_or(tl_json_get(obj, "metadata", "generation", NULL), 0);
    w->observed_generation = int_or(tl_json_get(obj, "status", "observedGeneration", NULL), 0);
    if (kind == TL_KIND_DAEMONSET) {
        w->replicas = (int)int_or(tl_json_get(obj, "status", "desiredNumberScheduled", NULL), 0);
        w->ready_replicas = (int)int_or(tl_json_get(obj, "status", "numberReady", NULL), 0);
        w->updated_replicas =
            (int)int_or(tl_json_get(obj, "status", "updatedNumberScheduled", NULL), 0);
    }
    else {
        /* An absent spec.replicas means one, as the API server defaults it. */
        w->replicas = (int)int_or(tl_json_get(obj, "spec", "replicas", NULL), 1);
        w->ready_replicas = (int)int_or(tl_json_get(obj, "status", "readyReplicas", NULL), 0);
        w->updated_replicas = (int)int_or(tl_json_get(obj, "status", "updatedReplicas", NULL), 0);
    }
    result = tl_labels_from_json(tl_json_get(obj, "spec", "template", "metadata", "labels", NULL),
                                 &w->template_labels);
    if (result != TL_OK)
        goto fail;
    const cJSON *pod_spec = tl_json_get(obj, "spec", "template", "spec", NULL);
    const cJSON *init = cJSON_GetObjectItemCaseSensitive(pod_spec, "initContainers");
    const cJSON *apps = cJSON_GetObjectItemCaseSensitive(pod_spec, "containers");
    size_t n = tl_json_size(init) + tl_json_size(apps);
    if (n > 0) {
        w->containers = calloc(n, sizeof(*w->containers));
        if (!w->containers) {
            result = TL_ENOMEM;
            goto fail;
        }
    }
    const cJSON *lists[2] = {apps, init};
    for (size_t l = 0; l < 2; l++) {
        const cJSON *c;
        cJSON_ArrayForEach(c, lists[l])
        {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
            if (w->ncontainers >= n)
                break;
            if (!cJSON_IsString(name))
                continue;
            struct tl_container *out_c = &w->containers[w->ncontainers];
            out_c->name = strdup(name->valuestring);
            if (!out_c->name) {
                result = TL_ENOMEM;
                goto fail;
            }
            w->ncontainers++;
            /* A restartable init container is a sidecar (KEP-753): it runs all along. */
            const cJSON *policy = cJSON_GetObjectItemCaseSensitive(c, "restartPolicy");
            if (l == 0)
                out_c->type = TL_CONTAINER_APP;
            else if (cJSON_IsString(policy) && strcmp(policy->valuestring, "Always") == 0)
                out_c->type = TL_CONTAINER_SIDECAR;
            else
                out_c->type = TL_CONTAINER_INIT;
            read_resources(c, &out_c->resources);
        }
    }
    *out = w;
    return TL_OK;
fail:
    tl_workload_free(w);
    return result;
}

void tl_hpa_free(struct tl_hpa *h)
{
    if (h == NULL)
        return;
    free(h->target_kind);
    free(h->target_name);
    free(h);
}

enum tl_err tl_hpa_from_json(const cJSON *obj, struct tl_hpa **out)
{
    const cJSON *ref = tl_json_get(obj, "spec", "scaleTargetRef", NULL);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(ref, "kind");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(ref, "name");
    if (!cJSON_IsString(kind) || !cJSON_IsString(name))
        return TL_EINVAL;
    struct tl_hpa *h = calloc(1, sizeof(*h));
    if (!h)
        return TL_ENOMEM;
    h->target_kind = strdup(kind->valuestring);
    h->target_name = strdup(name->valuestring);
    if (!h->target_kind || !h->target_name) {
        tl_hpa_free(h);
        return TL_ENOMEM;
    }
    h->min_replicas = (int)int_or(tl_json_get(obj, "spec", "minReplicas", NULL), 1);
    h->max_replicas = (int)int_or(tl_json_get(obj, "spec", "maxReplicas", NULL), 1);
    h->current_replicas = (int)int_or(tl_json_get(obj, "status", "currentReplicas", NULL), 0);
    const cJSON *metric;
    cJSON_ArrayForEach(metric, tl_json_get(obj, "spec", "metrics", NULL))
    {
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(metric, "resource");
        const cJSON *rname = cJSON_GetObjectItemCaseSensitive(res, "name");
        const cJSON *target = tl_json_get(res, "target", "averageUtilization", NULL);
        if (!cJSON_IsString(rname) || !cJSON_IsNumber(target))
            continue;
        if (strcmp(rname->valuestring, "cpu") == 0)
            h->cpu_target_percent = (int)target->valuedouble;
        else if (strcmp(rname->valuestring, "memory") == 0)
            h->memory_target_percent = (int)target->valuedouble;
    }
    *out = h;
    return TL_OK;
}

void tl_namespace_free(struct tl_namespace *n)
{
    if (n == NULL)
        return;
    tl_labels_free(&n->labels);
    free(n);
}

enum tl_err tl_namespace_from_json(const cJSON *obj, struct tl_namespace **out)
{
    struct tl_namespace *n = calloc(1, sizeof(*n));
    if (!n)
        return TL_ENOMEM;
    enum tl_err result =
        tl_labels_from_json(tl_json_get(obj, "metadata", "labels", NULL), &n->labels);
    if (result != TL_OK) {
        free(n);
        return result;
    }
    *out = n;
    return TL_OK;
}

static void conditions_free(struct tl_condition *c, size_t n)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(c[i].type);
        free(c[i].status);
        free(c[i].reason);
        free(c[i].message);
        free(c[i].last_transition_time);
    }
    free(c);
}

void tl_policy_obj_free(struct tl_policy_obj *p)
{
    if (p == NULL)
        return;
    if (p->valid)
        tl_policy_free(&p->policy);
    free(p->invalid_reason);
    free(p->created);
    free(p->status_json);
    conditions_free(p->conditions, p->nconditions);
    free(p);
}

static const char *str_at(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

enum tl_err tl_policy_obj_from_json(const cJSON *obj, struct tl_policy_obj **out)
{
    struct tl_policy_obj *p = calloc(1, sizeof(*p));
    if (!p)
        return TL_ENOMEM;
    char err[512] = "";
    enum tl_err result =
        tl_policy_parse(tl_json_get(obj, "spec", NULL), &p->policy, err, sizeof(err));
    if (result == TL_ENOMEM)
        goto fail;
    p->valid = result == TL_OK;
    if (!p->valid && (p->invalid_reason = strdup(err)) == NULL) {
        result = TL_ENOMEM;
        goto fail;
    }
    p->generation = int_or(tl_json_get(obj, "metadata", "generation", NULL), 0);
    p->created =
        dup_or_null(str_at(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "creationTimestamp"));
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(obj, "status");
    p->observed_generation =
        int_or(cJSON_GetObjectItemCaseSensitive(status, "observedGeneration"), 0);
    if (status != NULL && (p->status_json = tl_json_print(status)) == NULL) {
        result = TL_ENOMEM;
        goto fail;
    }
    const cJSON *conds = cJSON_GetObjectItemCaseSensitive(status, "conditions");
    size_t n = tl_json_size(conds);
    if (n > 0) {
        p->conditions = calloc(n, sizeof(*p->conditions));
        if (!p->conditions) {
            result = TL_ENOMEM;
            goto fail;
        }
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, conds)
    {
        if (p->nconditions >= n)
            break;
        struct tl_condition *dst = &p->conditions[p->nconditions++];
        dst->type = dup_or_null(str_at(c, "type"));
        dst->status = dup_or_null(str_at(c, "status"));
        dst->reason = dup_or_null(str_at(c, "reason"));
        dst->message = dup_or_null(str_at(c, "message"));
        dst->last_transition_time = dup_or_null(str_at(c, "lastTransitionTime"));
    }
    *out = p;
    return TL_OK;
fail:
    tl_policy_obj_free(p);
    return result;
}

void tl_rec_obj_free(struct tl_rec_obj *r)
{
    if (r == NULL)
        return;
    free(r->target_kind);
    free(r->target_name);
    free(r->policy_ns);
    free(r->policy_name);
    free(r->phase);
    free(r->status_json);
    free(r);
}

enum tl_err tl_rec_obj_from_json(const cJSON *obj, struct tl_rec_obj **out)
{
    struct tl_rec_obj *r = calloc(1, sizeof(*r));
    if (!r)
        return TL_ENOMEM;
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    const cJSON *target = cJSON_GetObjectItemCaseSensitive(spec, "targetRef");
    const cJSON *policy = cJSON_GetObjectItemCaseSensitive(spec, "policyRef");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(obj, "status");
    r->target_kind = dup_or_null(str_at(target, "kind"));
    r->target_name = dup_or_null(str_at(target, "name"));
    r->policy_ns = dup_or_null(str_at(policy, "namespace"));
    r->policy_name = dup_or_null(str_at(policy, "name"));
    r->approved_revision = int_or(tl_json_get(spec, "approval", "approvedRevision", NULL), 0);
    r->unblock_revision = int_or(tl_json_get(spec, "approval", "unblockRevision", NULL), 0);
    r->revision = int_or(cJSON_GetObjectItemCaseSensitive(status, "revision"), 0);
    r->generation = int_or(tl_json_get(obj, "metadata", "generation", NULL), 0);
    const cJSON *usd = tl_json_get(status, "savings", "monthlyUSD", NULL);
    r->savings_usd = cJSON_IsString(usd) ? strtod(usd->valuestring, NULL) : 0;
    r->phase = dup_or_null(str_at(status, "phase"));
    if (status != NULL && (r->status_json = tl_json_print(status)) == NULL) {
        tl_rec_obj_free(r);
        return TL_ENOMEM;
    }
    *out = r;
    return TL_OK;
}

double tl_parse_time(const char *text)
{
    int64_t us = 0;
    if (text == NULL || tl_microtime_parse(text, &us) != TL_OK)
        return 0;
    return (double)us / 1e6;
}

void tl_pod_free(struct tl_pod *p)
{
    if (p == NULL)
        return;
    free(p->owner_kind);
    free(p->owner_name);
    free(p->node_name);
    for (size_t i = 0; p->containers && i < p->ncontainers; i++)
        free(p->containers[i].name);
    free(p->containers);
    free(p);
}

/* The workload behind a pod's controller owner: a ReplicaSet "web-7d9c8f" is Deployment "web". */
static enum tl_err pod_owner(const cJSON *obj, struct tl_pod *p)
{
    const cJSON *ref;
    cJSON_ArrayForEach(ref, tl_json_get(obj, "metadata", "ownerReferences", NULL))
    {
        const cJSON *controller = cJSON_GetObjectItemCaseSensitive(ref, "controller");
        const char *kind = str_at(ref, "kind");
        const char *name = str_at(ref, "name");
        if (!cJSON_IsTrue(controller) || !kind || !name)
            continue;
        if (strcmp(kind, "ReplicaSet") == 0) {
            const char *dash = strrchr(name, '-');
            p->owner_kind = strdup("Deployment");
            p->owner_name = dash ? strndup(name, (size_t)(dash - name)) : strdup(name);
        }
        else {
            p->owner_kind = strdup(kind);
            p->owner_name = strdup(name);
        }
        return p->owner_kind && p->owner_name ? TL_OK : TL_ENOMEM;
    }
    return TL_OK;
}

enum tl_err tl_pod_from_json(const cJSON *obj, struct tl_pod **out)
{
    struct tl_pod *p = calloc(1, sizeof(*p));
    if (!p)
        return TL_ENOMEM;
    enum tl_err result = pod_owner(obj, p);
    if (result != TL_OK)
        goto fail;
    p->created = tl_parse_time(
        str_at(cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "creationTimestamp"));
    const char *node = str_at(cJSON_GetObjectItemCaseSensitive(obj, "spec"), "nodeName");
    const char *phase = str_at(cJSON_GetObjectItemCaseSensitive(obj, "status"), "phase");
    bool done = phase && (strcmp(phase, "Succeeded") == 0 || strcmp(phase, "Failed") == 0);
    if (node && *node && !done && !(p->node_name = strdup(node))) {
        result = TL_ENOMEM;
        goto fail;
    }
    const cJSON *cond;
    cJSON_ArrayForEach(cond, tl_json_get(obj, "status", "conditions", NULL))
    {
        const char *type = str_at(cond, "type");
        const char *status = str_at(cond, "status");
        const char *reason = str_at(cond, "reason");
        if (type && status && strcmp(type, "Ready") == 0)
            p->ready = strcmp(status, "True") == 0;
        if (type && status && reason && strcmp(type, "PodResizePending") == 0 &&
            strcmp(status, "True") == 0 && strcmp(reason, "Infeasible") == 0)
            p->resize_infeasible = true;
    }
    const cJSON *statuses = tl_json_get(obj, "status", "containerStatuses", NULL);
    size_t n = tl_json_size(statuses);
    if (n > 0 && !(p->containers = calloc(n, sizeof(*p->containers)))) {
        result = TL_ENOMEM;
        goto fail;
    }
    const cJSON *cs;
    cJSON_ArrayForEach(cs, statuses)
    {
        const char *name = str_at(cs, "name");
        if (p->ncontainers >= n)
            break;
        if (!name)
            continue;
        struct tl_container_health *h = &p->containers[p->ncontainers];
        if (!(h->name = strdup(name))) {
            result = TL_ENOMEM;
            goto fail;
        }
        p->ncontainers++;
        h->ready = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cs, "ready"));
        h->restarts = (int)int_or(cJSON_GetObjectItemCaseSensitive(cs, "restartCount"), 0);
        const cJSON *term = tl_json_get(cs, "lastState", "terminated", NULL);
        const char *reason = str_at(term, "reason");
        h->oom_killed = reason && strcmp(reason, "OOMKilled") == 0;
        h->oom_finished = tl_parse_time(str_at(term, "finishedAt"));
        const char *waiting = str_at(tl_json_get(cs, "state", "waiting", NULL), "reason");
        h->crash_loop = waiting && strcmp(waiting, "CrashLoopBackOff") == 0;
        const cJSON *spec_c;
        cJSON_ArrayForEach(spec_c, tl_json_get(obj, "spec", "containers", NULL))
        {
            const char *spec_name = str_at(spec_c, "name");
            if (spec_name && strcmp(spec_name, name) == 0) {
                read_resources(spec_c, &h->resources);
                h->memory_limit = h->resources.memory_limit;
            }
        }
    }
    *out = p;
    return TL_OK;
fail:
    tl_pod_free(p);
    return result;
}

void tl_pdb_free(struct tl_pdb *p)
{
    if (p == NULL)
        return;
    tl_selector_free(&p->selector);
    free(p);
}

enum tl_err tl_pdb_from_json(const cJSON *obj, struct tl_pdb **out)
{
    struct tl_pdb *p = calloc(1, sizeof(*p));
    if (!p)
        return TL_ENOMEM;
    char err[256];
    enum tl_err result = tl_selector_parse(tl_json_get(obj, "spec", "selector", NULL),
                                           "spec.selector", &p->selector, err, sizeof(err));
    if (result != TL_OK) {
        free(p);
        return result;
    }
    /* Before the controller computes status, assume no disruption is allowed: safe. */
    p->disruptions_allowed = (int)int_or(tl_json_get(obj, "status", "disruptionsAllowed", NULL), 0);
    *out = p;
    return TL_OK;
}
