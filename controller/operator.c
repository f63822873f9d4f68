#include "operator.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "assign.h"
#include "election.h"
#include "json.h"
#include "log.h"
#include "nodepool_reconcile.h"
#include "policy.h"
#include "rest_api.h"
#include "usage_source.h"
#include "web.h"

static const enum tl_workload_kind workload_kinds[3] = {TL_KIND_DEPLOYMENT, TL_KIND_STATEFULSET,
                                                        TL_KIND_DAEMONSET};

int tl_operator_kind_index(enum tl_workload_kind kind)
{
    for (int i = 0; i < 3; i++) {
        if (workload_kinds[i] == kind)
            return i;
    }
    return 0;
}

/* ---- Projections: each informer caches only the struct its parser builds ---- */

static enum tl_err project_workload(void *arg, const cJSON *obj, void **out)
{
    const struct tl_workload_ctx *p = arg;
    return tl_workload_from_json(obj, p->kind, (struct tl_workload **)out);
}

static void free_workload(void *arg, void *proj)
{
    (void)arg;
    tl_workload_free(proj);
}

static enum tl_err project_hpa(void *arg, const cJSON *obj, void **out)
{
    (void)arg;
    return tl_hpa_from_json(obj, (struct tl_hpa **)out);
}

static void free_hpa(void *arg, void *proj)
{
    (void)arg;
    tl_hpa_free(proj);
}

static enum tl_err project_namespace(void *arg, const cJSON *obj, void **out)
{
    (void)arg;
    return tl_namespace_from_json(obj, (struct tl_namespace **)out);
}

static void free_namespace(void *arg, void *proj)
{
    (void)arg;
    tl_namespace_free(proj);
}

static enum tl_err project_policy(void *arg, const cJSON *obj, void **out)
{
    (void)arg;
    return tl_policy_obj_from_json(obj, (struct tl_policy_obj **)out);
}

static void free_policy(void *arg, void *proj)
{
    (void)arg;
    tl_policy_obj_free(proj);
}

static enum tl_err project_rec(void *arg, const cJSON *obj, void **out)
{
    (void)arg;
    return tl_rec_obj_from_json(obj, (struct tl_rec_obj **)out);
}

static void free_rec(void *arg, void *proj)
{
    (void)arg;
    tl_rec_obj_free(proj);
}

static enum tl_err project_pod(void *arg, const cJSON *obj, void **out)
{
    (void)arg;
    return tl_pod_from_json(obj, (struct tl_pod **)out);
}

static void free_pod(void *arg, void *proj)
{
    (void)arg;
    tl_pod_free(proj);
}

static enum tl_err project_pdb(void *arg, const cJSON *obj, void **out)
{
    (void)arg;
    return tl_pdb_from_json(obj, (struct tl_pdb **)out);
}

static void free_pdb(void *arg, void *proj)
{
    (void)arg;
    tl_pdb_free(proj);
}

/* The kill-switch ConfigMap is cached as one flag: true when automatic changes are off. */
static enum tl_err project_config_map(void *arg, const cJSON *obj, void **out)
{
    (void)arg;
    bool *off = malloc(sizeof(*off));
    if (!off)
        return TL_ENOMEM;
    const cJSON *v = tl_json_get(obj, "data", "autoApply", NULL);
    *off = cJSON_IsString(v) && strcmp(v->valuestring, "false") == 0;
    *out = off;
    return TL_OK;
}

static void free_config_map(void *arg, void *proj)
{
    (void)arg;
    free(proj);
}

bool tl_operator_kill_switch(struct tl_operator *op)
{
    if (op->opts->disable_auto_apply)
        return true;
    const struct tl_kube_store_item *item =
        tl_informer_get(op->config_maps, op->opts->namespace, op->opts->config_map);
    return item && item->proj && *(const bool *)item->proj;
}

/* ---- Queueing ---- */

static void enqueue(struct tl_operator *op, const char *key)
{
    if (!op->synced || op->stopping || !op->leading)
        return; /* the first full pass after sync covers everything */
    enum tl_err result = tl_workqueue_add(op->queue, key);
    if (result != TL_OK)
        TL_ERROR("cannot queue", TL_STR("key", key), TL_ERRF(result));
}

void tl_operator_enqueue_workload(struct tl_operator *op, const char *ns, const char *kind,
                                  const char *name)
{
    char key[512];
    int n = snprintf(key, sizeof(key), "w/%s/%s/%s", ns, kind, name);
    if (n > 0 && (size_t)n < sizeof(key))
        enqueue(op, key);
}

static void enqueue_policy(struct tl_operator *op, const char *policy_key)
{
    char key[512];
    int n = snprintf(key, sizeof(key), "p/%s", policy_key);
    if (n > 0 && (size_t)n < sizeof(key))
        enqueue(op, key);
}

/* ---- Assignment ---- */

struct candidates {
    struct tl_operator *op;
    const char *ns;
    const struct tl_workload *workload;
    const struct tl_labels *ns_labels;
    struct tl_policy_ref refs[64];
    size_t count;
};

static bool collect_candidate(void *arg, const struct tl_kube_store_item *item)
{
    struct candidates *c = arg;
    struct tl_policy_ref ref = {item->namespace, item->name, item->proj};
    if (ref.obj &&
        tl_policy_selects(&ref, c->op->opts->namespace, c->ns, c->workload, c->ns_labels) &&
        c->count < sizeof(c->refs) / sizeof(c->refs[0]))
        c->refs[c->count++] = ref;
    return true;
}

bool tl_operator_reassign(struct tl_operator *op, const char *ns, enum tl_workload_kind kind,
                          const char *name)
{
    char wkey[512];
    snprintf(wkey, sizeof(wkey), "%s/%s/%s", ns, tl_workload_kind_name(kind), name);
    const struct tl_kube_store_item *item =
        tl_informer_get(op->workloads[tl_operator_kind_index(kind)], ns, name);
    const char *before = tl_strmap_get(op->assignment, wkey);
    char winner[512] = "";
    if (item && item->proj) {
        const struct tl_kube_store_item *nsitem = tl_informer_get(op->namespaces, "", ns);
        const struct tl_namespace *nsobj = nsitem ? nsitem->proj : NULL;
        struct candidates c = {.op = op,
                               .ns = ns,
                               .workload = item->proj,
                               .ns_labels = nsobj ? &nsobj->labels : NULL,
                               .count = 0};
        tl_kube_store_foreach(tl_informer_store(op->policies), collect_candidate, &c);
        long pick = tl_policy_pick(c.refs, c.count, ns);
        if (pick >= 0)
            snprintf(winner, sizeof(winner), "%s/%s", c.refs[pick].ns, c.refs[pick].name);
    }
    bool changed =
        (before == NULL) != (winner[0] == '\0') || (before && strcmp(before, winner) != 0);
    if (!changed)
        return false;
    if (before)
        enqueue_policy(op, before);
    if (winner[0]) {
        enqueue_policy(op, winner);
        char *copy = strdup(winner);
        if (!copy || tl_strmap_set(op->assignment, wkey, copy) != TL_OK)
            TL_ERROR("out of memory assigning a policy", TL_STR("workload", wkey));
    }
    else {
        tl_strmap_remove(op->assignment, wkey);
    }
    return true;
}

struct reassign_walk {
    struct tl_operator *op;
    enum tl_workload_kind kind;
};

static bool reassign_item(void *arg, const struct tl_kube_store_item *item)
{
    struct reassign_walk *walk = arg;
    tl_operator_reassign(walk->op, item->namespace, walk->kind, item->name);
    tl_operator_enqueue_workload(walk->op, item->namespace, tl_workload_kind_name(walk->kind),
                                 item->name);
    return true;
}

static bool enqueue_policy_item(void *arg, const struct tl_kube_store_item *item)
{
    struct tl_operator *op = arg;
    char key[512];
    snprintf(key, sizeof(key), "%s/%s", item->namespace, item->name);
    enqueue_policy(op, key);
    return true;
}

/* Drops assignments of workloads that are gone, so the map holds only live workloads. */
static bool prune_assignment(void *arg, const char *key, void *value)
{
    (void)value;
    struct tl_strmap *gone = arg;
    return tl_strmap_set(gone, key, NULL) == TL_OK;
}

static bool drop_if_gone(void *arg, const char *key, void *value)
{
    (void)value;
    struct tl_operator *op = arg;
    char copy[512];
    snprintf(copy, sizeof(copy), "%s", key);
    char *ns = copy;
    char *kind = strchr(ns, '/');
    char *name = kind ? strchr(kind + 1, '/') : NULL;
    if (!kind || !name)
        return true;
    *kind++ = '\0';
    *name++ = '\0';
    enum tl_workload_kind k;
    if (tl_workload_kind_parse(kind, &k) &&
        tl_informer_get(op->workloads[tl_operator_kind_index(k)], ns, name) == NULL)
        tl_strmap_remove(op->assignment, key);
    return true;
}

/* Recomputes every assignment and queues every workload and policy: the full, level-triggered
 * pass that runs after sync, after policy or namespace changes, and on resync. */
static void reassign_all(struct tl_operator *op)
{
    struct tl_strmap *keys = tl_strmap_create(NULL);
    if (keys) {
        tl_strmap_foreach(op->assignment, prune_assignment, keys);
        tl_strmap_foreach(keys, drop_if_gone, op);
        tl_strmap_destroy(keys);
    }
    for (int i = 0; i < 3; i++) {
        struct reassign_walk walk = {op, workload_kinds[i]};
        tl_kube_store_foreach(tl_informer_store(op->workloads[i]), reassign_item, &walk);
    }
    tl_kube_store_foreach(tl_informer_store(op->policies), enqueue_policy_item, op);
}

/* Recommendations whose workload is gone are deleted by the garbage collector (they are owned
 * by it); those whose workload lost its policy are queued here through their target. */
static bool enqueue_rec_target(void *arg, const struct tl_kube_store_item *item)
{
    struct tl_operator *op = arg;
    const struct tl_rec_obj *rec = item->proj;
    if (rec && rec->target_kind && rec->target_name)
        tl_operator_enqueue_workload(op, item->namespace, rec->target_kind, rec->target_name);
    return true;
}

/* ---- Informer handlers ---- */

static void on_synced(struct tl_operator *op)
{
    op->synced = true;
    TL_INFO("caches synced; starting the first full pass");
    enqueue(op, TL_KEY_ASSIGN);
}

/* Usage collection follows the assignment, which the first full pass computes. */
static void on_first_pass(struct ev_loop *loop, ev_prepare *w, int revents)
{
    (void)revents;
    struct tl_operator *op = w->data;
    if (op->synced && op->leading && tl_strmap_size(op->assignment) > 0) {
        ev_prepare_stop(loop, w);
        tl_usage_source_poll(op->usage);
    }
}

static void workload_changed(struct tl_workload_ctx *p, const struct tl_kube_store_item *item)
{
    struct tl_operator *op = p->op;
    if (!op->synced)
        return;
    tl_operator_reassign(op, item->namespace, p->kind, item->name);
    tl_operator_enqueue_workload(op, item->namespace, tl_workload_kind_name(p->kind), item->name);
}

static void on_workload_add(void *arg, const struct tl_kube_store_item *item)
{
    workload_changed(arg, item);
}

static void on_workload_update(void *arg, const struct tl_kube_store_item *old,
                               const struct tl_kube_store_item *item)
{
    (void)old;
    workload_changed(arg, item);
}

static void on_workload_delete(void *arg, const struct tl_kube_store_item *old)
{
    workload_changed(arg, old);
}

static void on_policy_event(void *arg, const struct tl_kube_store_item *item)
{
    struct tl_operator *op = arg;
    enqueue(op, TL_KEY_ASSIGN);
    char key[512];
    snprintf(key, sizeof(key), "%s/%s", item->namespace, item->name);
    enqueue_policy(op, key);
}

static void on_policy_update(void *arg, const struct tl_kube_store_item *old,
                             const struct tl_kube_store_item *item)
{
    (void)old;
    on_policy_event(arg, item);
}

static void on_namespace_update(void *arg, const struct tl_kube_store_item *old,
                                const struct tl_kube_store_item *item)
{
    const struct tl_namespace *a = old->proj;
    const struct tl_namespace *b = item->proj;
    if (!a || !b || !tl_labels_equal(&a->labels, &b->labels))
        enqueue(arg, TL_KEY_ASSIGN);
}

static void on_namespace_event(void *arg, const struct tl_kube_store_item *item)
{
    (void)item;
    enqueue(arg, TL_KEY_ASSIGN);
}

static void rec_changed(void *arg, const struct tl_kube_store_item *item)
{
    struct tl_operator *op = arg;
    tl_rest_api_notify(op, item); /* add, update and delete: the dashboard's live updates */
    tl_nodepool_rec_changed(op, item);
    const struct tl_rec_obj *rec = item->proj;
    if (rec && rec->target_kind && rec->target_name)
        tl_operator_enqueue_workload(op, item->namespace, rec->target_kind, rec->target_name);
    if (rec && rec->policy_ns && rec->policy_name) {
        char key[512];
        snprintf(key, sizeof(key), "%s/%s", rec->policy_ns, rec->policy_name);
        enqueue_policy(op, key);
    }
}

static void on_rec_update(void *arg, const struct tl_kube_store_item *old,
                          const struct tl_kube_store_item *item)
{
    (void)old;
    rec_changed(arg, item);
}

/* Pods matter while a change is verified, and when one is OOM-killed (memory advice rises). */
static void pod_changed(void *arg, const struct tl_kube_store_item *item)
{
    struct tl_operator *op = arg;
    const struct tl_pod *pod = item->proj;
    if (!pod || !pod->owner_kind || !pod->owner_name)
        return;
    char wkey[600];
    snprintf(wkey, sizeof(wkey), "%s/%s/%s", item->namespace, pod->owner_kind, pod->owner_name);
    bool oom = false;
    for (size_t i = 0; i < pod->ncontainers; i++)
        oom = oom || pod->containers[i].oom_killed || pod->containers[i].crash_loop;
    if (oom || tl_strmap_get(op->applying, wkey))
        tl_operator_enqueue_workload(op, item->namespace, pod->owner_kind, pod->owner_name);
}

static void on_pod_update(void *arg, const struct tl_kube_store_item *old,
                          const struct tl_kube_store_item *item)
{
    (void)old;
    pod_changed(arg, item);
}

static void on_config_map(void *arg, const struct tl_kube_store_item *item)
{
    (void)item;
    enqueue(arg, TL_KEY_ASSIGN); /* the kill switch may have turned: look at everything again */
}

static void on_config_map_update(void *arg, const struct tl_kube_store_item *old,
                                 const struct tl_kube_store_item *item)
{
    (void)old;
    on_config_map(arg, item);
}

static void hpa_changed(void *arg, const struct tl_kube_store_item *item)
{
    const struct tl_hpa *hpa = item->proj;
    if (hpa)
        tl_operator_enqueue_workload(arg, item->namespace, hpa->target_kind, hpa->target_name);
}

static void on_hpa_update(void *arg, const struct tl_kube_store_item *old,
                          const struct tl_kube_store_item *item)
{
    hpa_changed(arg, old);
    hpa_changed(arg, item);
}

/* ---- The queue ---- */

void tl_operator_finish(struct tl_operator *op, const char *key, enum tl_err result)
{
    op->stats.reconciles++;
    double *began = tl_strmap_get(op->started, key);
    if (began) {
        const char *kind = key[0] == 'w'   ? "workload"
                           : key[0] == 'p' ? "policy"
                           : key[0] == 'n' ? "nodepool"
                                           : "assign";
        tl_operator_observe_reconcile(op, kind, result == TL_OK, ev_time() - *began);
        tl_strmap_remove(op->started, key);
    }
    if (result == TL_OK) {
        tl_workqueue_forget(op->queue, key);
    }
    else {
        op->stats.reconcile_errors++;
        double delay = 0;
        tl_workqueue_add_rate_limited(op->queue, key, &delay);
        TL_DEBUG("reconcile will be retried", TL_STR("key", key), TL_ERRF(result),
                 TL_DBL("delay_s", delay));
    }
    tl_workqueue_done(op->queue, key);
}

static void process(struct tl_workqueue *q, const char *key, void *ctx)
{
    (void)q;
    struct tl_operator *op = ctx;
    double *began = malloc(sizeof(*began));
    if (began) {
        *began = ev_time();
        tl_strmap_set(op->started, key, began);
    }
    if (!op->leading) {
        /* A follower keeps its caches warm and writes nothing; it starts over when it leads. */
        tl_operator_finish(op, key, TL_OK);
    }
    else if (strcmp(key, TL_KEY_ASSIGN) == 0) {
        reassign_all(op);
        tl_kube_store_foreach(tl_informer_store(op->recs), enqueue_rec_target, op);
        tl_nodepool_enqueue_all(op);
        tl_operator_finish(op, key, TL_OK);
    }
    else if (strncmp(key, "w/", 2) == 0) {
        tl_reconcile_workload(op, key);
    }
    else if (strncmp(key, "p/", 2) == 0) {
        tl_reconcile_policy(op, key);
    }
    else if (strncmp(key, TL_KEY_NODEPOOL_PREFIX, strlen(TL_KEY_NODEPOOL_PREFIX)) == 0) {
        tl_reconcile_nodepool(op, key);
    }
    else {
        TL_WARN("unknown work queue key", TL_STR("key", key));
        tl_operator_finish(op, key, TL_OK);
    }
}

struct tl_cost_rates tl_operator_rates(struct tl_operator *op, const struct tl_policy *policy)
{
    struct tl_cost_rates rates = {0, 0};
    if (policy->pricing.custom_cpu_core_hour >= 0) {
        rates.cpu_core_hour = policy->pricing.custom_cpu_core_hour;
        rates.memory_gib_hour = policy->pricing.custom_memory_gib_hour;
        return rates;
    }
    const char *region = policy->pricing.region ? policy->pricing.region : "us-east-1";
    struct tl_cost_rates *cached = tl_strmap_get(op->region_rates, region);
    if (cached)
        return *cached;
    if (tl_cost_rates_for_region(region, &rates) != TL_OK) {
        TL_WARN("no prices for region; savings use us-east-1's", TL_STR("region", region));
        tl_cost_rates_for_region("us-east-1", &rates);
    }
    cached = malloc(sizeof(*cached));
    if (cached) {
        *cached = rates;
        tl_strmap_set(op->region_rates, region, cached);
    }
    return rates;
}

/* ---- Life cycle ---- */

static void on_leadership(struct tl_operator *op, bool leading)
{
    op->leading = leading;
    if (leading)
        enqueue(op, TL_KEY_ASSIGN);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    struct tl_operator *op = w->data;
    TL_INFO("stopping", TL_INT("signal", w->signum));
    op->stopping = true;
    tl_workqueue_shutdown(op->queue);
    ev_break(loop, EVBREAK_ALL);
}

static void on_resync(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    enqueue(w->data, TL_KEY_ASSIGN);
}

static enum tl_err start_informer(struct tl_operator *op, const char *api_version,
                                  const char *resource, const struct tl_informer_handlers *handlers,
                                  const struct tl_informer_options *opts, struct tl_informer **out,
                                  struct tl_kube_resource *res_out)
{
    struct tl_kube_resource res;
    enum tl_err result = tl_kube_resource_builtin(api_version, resource, &res);
    if (result != TL_OK) {
        TL_ERROR("unknown resource", TL_STR("apiVersion", api_version),
                 TL_STR("resource", resource));
        return result;
    }
    if (res_out)
        *res_out = res;
    result = tl_informer_create(op->client, &res, opts, handlers, out);
    if (result == TL_OK)
        result = tl_informer_start(*out);
    return result;
}

static enum tl_err start_informers(struct tl_operator *op)
{
    static const char *const workload_resources[3] = {"deployments", "statefulsets", "daemonsets"};
    enum tl_err result = TL_OK;
    for (int i = 0; i < 3 && result == TL_OK; i++) {
        op->workload_ctx[i].op = op;
        op->workload_ctx[i].kind = workload_kinds[i];
        struct tl_informer_handlers h = {.project = project_workload,
                                         .free_proj = free_workload,
                                         .on_add = on_workload_add,
                                         .on_update = on_workload_update,
                                         .on_delete = on_workload_delete,
                                         .on_synced = NULL,
                                         .arg = &op->workload_ctx[i]};
        result = start_informer(op, "apps/v1", workload_resources[i], &h, NULL, &op->workloads[i],
                                &op->workload_resources[i]);
    }
    struct tl_informer_handlers ns = {.project = project_namespace,
                                      .free_proj = free_namespace,
                                      .on_add = on_namespace_event,
                                      .on_update = on_namespace_update,
                                      .on_delete = on_namespace_event,
                                      .arg = op};
    struct tl_informer_handlers hpa = {.project = project_hpa,
                                       .free_proj = free_hpa,
                                       .on_add = hpa_changed,
                                       .on_update = on_hpa_update,
                                       .on_delete = hpa_changed,
                                       .arg = op};
    struct tl_informer_handlers pol = {.project = project_policy,
                                       .free_proj = free_policy,
                                       .on_add = on_policy_event,
                                       .on_update = on_policy_update,
                                       .on_delete = on_policy_event,
                                       .arg = op};
    struct tl_informer_handlers rec = {.project = project_rec,
                                       .free_proj = free_rec,
                                       .on_add = rec_changed,
                                       .on_update = on_rec_update,
                                       .on_delete = rec_changed,
                                       .arg = op};
    if (result == TL_OK)
        result = start_informer(op, "v1", "namespaces", &ns, NULL, &op->namespaces, NULL);
    if (result == TL_OK)
        result = start_informer(op, "autoscaling/v2", "horizontalpodautoscalers", &hpa, NULL,
                                &op->hpas, &op->hpa_resource);
    if (result == TL_OK)
        result = start_informer(op, "tailor.dev/v1alpha1", "optimizationpolicies", &pol, NULL,
                                &op->policies, &op->policy_resource);
    if (result == TL_OK)
        result = start_informer(op, "tailor.dev/v1alpha1", "recommendations", &rec, NULL, &op->recs,
                                &op->rec_resource);
    struct tl_informer_handlers pod = {.project = project_pod,
                                       .free_proj = free_pod,
                                       .on_add = pod_changed,
                                       .on_update = on_pod_update,
                                       .arg = op};
    struct tl_informer_handlers pdb = {.project = project_pdb, .free_proj = free_pdb, .arg = op};
    struct tl_informer_handlers cm = {.project = project_config_map,
                                      .free_proj = free_config_map,
                                      .on_add = on_config_map,
                                      .on_update = on_config_map_update,
                                      .on_delete = on_config_map,
                                      .arg = op};
    char field[300];
    snprintf(field, sizeof(field), "metadata.name=%s", op->opts->config_map);
    struct tl_informer_options cm_opts = {.namespace = op->opts->namespace,
                                          .field_selector = field};
    if (result == TL_OK)
        result = start_informer(op, "v1", "pods", &pod, NULL, &op->pods, &op->pod_resource);
    if (result == TL_OK)
        result =
            start_informer(op, "policy/v1", "poddisruptionbudgets", &pdb, NULL, &op->pdbs, NULL);
    if (result == TL_OK)
        result = start_informer(op, "v1", "configmaps", &cm, &cm_opts, &op->config_maps, NULL);
    if (result == TL_OK)
        result = tl_nodepool_informers_start(op);
    return result;
}

/* Waits for every cache: a cheap poll on the loop until all have listed once. */
static void on_sync_check(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)revents;
    struct tl_operator *op = w->data;
    struct tl_informer *all[7] = {op->workloads[0], op->workloads[1], op->workloads[2],
                                  op->namespaces,   op->hpas,         op->policies,
                                  op->recs};
    unsigned synced = 0;
    for (int i = 0; i < 7; i++)
        synced += all[i] && tl_informer_has_synced(all[i]);
    if (synced == 7) {
        ev_timer_stop(loop, w);
        on_synced(op);
    }
}

/*
 * Lets the writes already sent finish (a reconcile's status write and the workload write that
 * follows it) so a stop does not leave half an action or leak its bookkeeping; bounded.
 */
static void drain(struct tl_operator *op, double seconds)
{
    for (int i = 0; i < 3; i++) {
        tl_informer_destroy(op->workloads[i]);
        op->workloads[i] = NULL;
    }
    struct tl_informer **others[] = {&op->namespaces, &op->hpas, &op->policies,   &op->recs,
                                     &op->pods,       &op->pdbs, &op->config_maps};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        tl_informer_destroy(*others[i]);
        *others[i] = NULL;
    }
    tl_nodepool_informers_stop(op);
    tl_usage_source_destroy(op->usage);
    op->usage = NULL;
    double deadline = ev_time() + seconds;
    while (op->client && tl_kube_client_pending(op->client) > 0 && ev_time() < deadline)
        ev_run(op->loop, EVRUN_ONCE);
}

static void destroy(struct tl_operator *op)
{
    tl_election_destroy(op->election, 0);
    tl_operator_http_stop(op);
    tl_usage_source_destroy(op->usage);
    op->usage = NULL;
    for (int i = 0; i < 3; i++)
        tl_informer_destroy(op->workloads[i]);
    tl_informer_destroy(op->namespaces);
    tl_informer_destroy(op->hpas);
    tl_informer_destroy(op->policies);
    tl_informer_destroy(op->recs);
    tl_informer_destroy(op->pods);
    tl_informer_destroy(op->pdbs);
    tl_informer_destroy(op->config_maps);
    tl_nodepool_informers_stop(op);
    tl_recorder_destroy(op->recorder);
    tl_workqueue_destroy(op->queue);
    tl_strmap_destroy(op->applying);
    tl_strmap_destroy(op->started);
    tl_strmap_destroy(op->assignment);
    tl_strmap_destroy(op->region_rates);
    tl_kube_client_destroy(op->client);
    tl_kube_creds_destroy(op->creds);
    tl_kube_config_destroy(op->config);
}

int tl_operator_run(const struct tl_run_options *opts)
{
    struct tl_operator op;
    memset(&op, 0, sizeof(op));
    op.opts = opts;
    op.loop = ev_default_loop(0);
    char err[512] = "";
    int code = 1;
    struct tl_kube_config_options copts = {.kubeconfig = opts->kubeconfig,
                                           .context = opts->context};
    if (tl_kube_config_load(&copts, &op.config, err, sizeof(err)) != TL_OK) {
        TL_ERROR("cannot load the Kubernetes configuration", TL_STR("reason", err));
        return 1;
    }
    op.creds = tl_kube_creds_create(op.config, op.loop, err, sizeof(err));
    if (!op.creds) {
        TL_ERROR("cannot get Kubernetes credentials", TL_STR("reason", err));
        goto out;
    }
    struct tl_kube_client_options kopts = {.write_qps = opts->kube_qps,
                                           .write_burst = opts->kube_burst,
                                           .observe = tl_operator_observe_request,
                                           .observe_arg = &op};
    if (tl_kube_client_create(op.loop, op.config, op.creds, &kopts, &op.client, err, sizeof(err)) !=
        TL_OK) {
        TL_ERROR("cannot create the Kubernetes client", TL_STR("reason", err));
        goto out;
    }
    op.queue = tl_workqueue_create(op.loop, NULL);
    op.assignment = tl_strmap_create(free);
    op.region_rates = tl_strmap_create(free);
    op.applying = tl_strmap_create(free);
    op.started = tl_strmap_create(free);
    char host[128] = "tailor";
    gethostname(host, sizeof(host) - 1);
    op.recorder = tl_recorder_create(&op, opts->identity ? opts->identity : host);
    if (!op.queue || !op.assignment || !op.region_rates || !op.applying || !op.recorder ||
        !op.started) {
        TL_ERROR("out of memory");
        goto out;
    }
    if (tl_operator_http_start(&op) != TL_OK)
        goto out;
    if (start_informers(&op) != TL_OK || tl_workqueue_start(op.queue, process, &op) != TL_OK)
        goto out;
    op.usage = tl_usage_source_create(&op);
    if (!op.usage) {
        TL_ERROR("out of memory");
        goto out;
    }
    op.leading = !opts->leader_elect;
    if (opts->leader_elect && tl_election_start(&op, on_leadership, &op.election) != TL_OK) {
        TL_ERROR("cannot start leader election");
        goto out;
    }

    ev_prepare first_pass;
    ev_prepare_init(&first_pass, on_first_pass);
    first_pass.data = &op;
    ev_prepare_start(op.loop, &first_pass);
    ev_timer sync_check;
    ev_timer_init(&sync_check, on_sync_check, 0.05, 0.05);
    sync_check.data = &op;
    ev_timer_start(op.loop, &sync_check);
    ev_signal_init(&op.sigint, on_signal, SIGINT);
    ev_signal_init(&op.sigterm, on_signal, SIGTERM);
    op.sigint.data = &op;
    op.sigterm.data = &op;
    ev_signal_start(op.loop, &op.sigint);
    ev_signal_start(op.loop, &op.sigterm);
    ev_timer_init(&op.resync, on_resync, opts->resync_period, opts->resync_period);
    op.resync.data = &op;
    ev_timer_start(op.loop, &op.resync);

    TL_INFO("tailor started", TL_STR("version", TL_VERSION), TL_STR("server", op.config->server),
            TL_STR("namespace", opts->namespace), TL_BOOL("dry_run", opts->dry_run));
    ev_run(op.loop, 0);

    tl_election_destroy(op.election, 2.0);
    op.election = NULL;
    drain(&op, 5.0);
    ev_timer_stop(op.loop, &sync_check);
    ev_prepare_stop(op.loop, &first_pass);
    ev_timer_stop(op.loop, &op.resync);
    ev_signal_stop(op.loop, &op.sigint);
    ev_signal_stop(op.loop, &op.sigterm);
    code = 0;
out:
    destroy(&op);
    return code;
}
