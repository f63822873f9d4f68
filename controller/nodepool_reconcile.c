#include "nodepool_reconcile.h"

#include <ev.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "guardrails.h"
#include "json.h"
#include "log.h"
#include "operator.h"
#include "quantity.h"
#include "rec_status.h"
#include "strmap.h"
#include "web.h"

#define HISTORY_MAX      20
#define FAILED_RETRY     300.0 /* seconds before a failed NodePool write is tried again */
#define REPLAN_DELAY     5.0   /* a burst of workload advice becomes one plan per pool */
#define NODE_DELAY       2.0   /* nodes come and go in batches too */
#define SYNC_RETRY       1.0   /* caches not synced yet */
#define SHOWN_TYPES_MAX  50    /* status.nodePool.*.instanceTypes maxItems */
#define SHOWN_REQS_MAX   100   /* status.nodePool.*.requirements maxItems */
#define SHOWN_VALUES_MAX 256   /* requirements[].values maxItems */
#define TEXT_MAX         1024  /* history from/to, disruption: the schema's maxLength */
#define EXPLANATION_MAX  4096
#define REC_NAME_MAX     253
#define REC_PREFIX       "nodepool-"

/* ---- Small helpers ---- */

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

static bool add_string(cJSON *obj, const char *key, const char *value)
{
    return cJSON_AddStringToObject(obj, key, value) != NULL;
}

static bool add_number(cJSON *obj, const char *key, double value)
{
    return cJSON_AddNumberToObject(obj, key, value) != NULL;
}

static void set_string(cJSON *obj, const char *key, const char *value)
{
    tl_json_member_set(obj, key, cJSON_CreateString(value));
}

static void set_number(cJSON *obj, const char *key, double value)
{
    tl_json_member_set(obj, key, cJSON_CreateNumber(value));
}

/* Cuts buf back to its last whole UTF-8 character when a write was truncated at `used`. */
static size_t utf8_boundary(const char *buf, size_t used)
{
    size_t start = used;
    while (start > 0 && ((unsigned char)buf[start - 1] & 0xC0) == 0x80)
        start--;
    if (start == 0)
        return used;
    unsigned char lead = (unsigned char)buf[start - 1];
    size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return used - (start - 1) >= need ? used : start - 1;
}

/* A sentence built in a caller's buffer; what does not fit is cut at a character boundary. */
struct text {
    char *buf;
    size_t len;
    size_t used;
};

static void text_init(struct text *t, char *buf, size_t len)
{
    t->buf = buf;
    t->len = len;
    t->used = 0;
    buf[0] = '\0';
}

static void text_add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_add(struct text *t, const char *fmt, ...)
{
    if (t->used + 1 >= t->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->used, t->len - t->used, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= t->len - t->used) {
        t->used = utf8_boundary(t->buf, t->len - 1);
        t->buf[t->used] = '\0';
        return;
    }
    t->used += (size_t)n;
}

static const char *plural(uint64_t n)
{
    return n == 1 ? "" : "s";
}

/* ---- Projections ---- */

enum tl_err tl_np_node_from_json(const cJSON *obj, struct tl_np_node **out)
{
    const cJSON *labels = tl_json_get(obj, "metadata", "labels", NULL);
    struct tl_np_node *n = calloc(1, sizeof(*n));
    if (!n)
        return TL_ENOMEM;
    const char *pool = str_at(labels, TL_LABEL_NODEPOOL);
    const char *type = str_at(labels, TL_LABEL_INSTANCE_TYPE);
    const char *capacity = str_at(labels, TL_LABEL_CAPACITY_TYPE);
    /* Reserved capacity is paid for anyway; pricing it on-demand overstates it, never hides it. */
    n->capacity =
        capacity && strcmp(capacity, "spot") == 0 ? TL_CAPACITY_SPOT : TL_CAPACITY_ON_DEMAND;
    if ((pool && !(n->pool = strdup(pool))) || (type && !(n->instance_type = strdup(type)))) {
        tl_np_node_free(n);
        return TL_ENOMEM;
    }
    *out = n;
    return TL_OK;
}

void tl_np_node_free(struct tl_np_node *node)
{
    if (node == NULL)
        return;
    free(node->pool);
    free(node->instance_type);
    free(node);
}

enum tl_err tl_np_pool_from_json(const cJSON *obj, struct tl_np_pool **out)
{
    struct tl_np_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return TL_ENOMEM;
    enum tl_err result =
        tl_labels_from_json(tl_json_get(obj, "metadata", "labels", NULL), &p->labels);
    if (result != TL_OK)
        goto fail;
    char err[512] = "";
    result = tl_nodepool_spec_parse(obj, &p->spec, err, sizeof(err));
    if (result == TL_ENOMEM)
        goto fail;
    p->valid = result == TL_OK;
    if (!p->valid && !(p->invalid_reason = strdup(err[0] ? err : tl_strerror(result)))) {
        result = TL_ENOMEM;
        goto fail;
    }
    *out = p;
    return TL_OK;
fail:
    tl_np_pool_free(p);
    return result;
}

void tl_np_pool_free(struct tl_np_pool *pool)
{
    if (pool == NULL)
        return;
    tl_labels_free(&pool->labels);
    if (pool->valid)
        tl_nodepool_spec_free(&pool->spec);
    free(pool->invalid_reason);
    free(pool);
}

/* ---- Requests ---- */

/* containers[].recommended.requests of a Recommendation's status, for one container. */
static void recommended_of(const cJSON *rec_status, const char *container, double *cpu,
                           double *memory)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(rec_status, "containers"))
    {
        const char *name = str_at(c, "name");
        if (!name || strcmp(name, container) != 0)
            continue;
        const cJSON *requests = tl_json_get(c, "recommended", "requests", NULL);
        double v = tl_resource_value(cJSON_GetObjectItemCaseSensitive(requests, "cpu"), false);
        if (v > 0)
            *cpu = v;
        v = tl_resource_value(cJSON_GetObjectItemCaseSensitive(requests, "memory"), true);
        if (v > 0)
            *memory = v;
        return;
    }
}

/*
 * The scheduler's effective pod request (Kubernetes "Resources" of a pod, KEP-753 for sidecars):
 * max(containers + sidecars, the largest init container + the sidecars started before it). The
 * sidecars are all counted with every init container, which can only overstate the pod.
 */
void tl_np_workload_requests(const struct tl_workload *w, const cJSON *rec_status,
                             struct tl_np_requests *out)
{
    memset(out, 0, sizeof(*out));
    enum tl_confidence confidence = TL_CONFIDENCE_NONE;
    const char *text = str_at(rec_status, "confidence");
    out->advised =
        text && tl_confidence_parse(text, &confidence) && confidence != TL_CONFIDENCE_NONE;
    out->confidence = confidence;
    double run[2] = {0, 0};
    double rec_run[2] = {0, 0};
    double side[2] = {0, 0};
    double rec_side[2] = {0, 0};
    double init[2] = {0, 0};
    for (size_t i = 0; i < w->ncontainers; i++) {
        const struct tl_container *c = &w->containers[i];
        double cpu = c->resources.cpu_request;
        double memory = c->resources.memory_request;
        double rec_cpu = cpu;
        double rec_memory = memory;
        if (out->advised && c->type != TL_CONTAINER_INIT)
            recommended_of(rec_status, c->name, &rec_cpu, &rec_memory);
        if (c->type == TL_CONTAINER_INIT) {
            init[0] = fmax(init[0], cpu);
            init[1] = fmax(init[1], memory);
        }
        else {
            double *now = c->type == TL_CONTAINER_SIDECAR ? side : run;
            double *rec = c->type == TL_CONTAINER_SIDECAR ? rec_side : rec_run;
            now[0] += cpu;
            now[1] += memory;
            rec[0] += rec_cpu;
            rec[1] += rec_memory;
        }
    }
    out->cpu_milli = llround(fmax(run[0] + side[0], init[0] + side[0]) * 1000);
    out->memory_bytes = llround(fmax(run[1] + side[1], init[1] + side[1]));
    out->rec_cpu_milli = llround(fmax(rec_run[0] + rec_side[0], init[0] + rec_side[0]) * 1000);
    out->rec_memory_bytes = llround(fmax(rec_run[1] + rec_side[1], init[1] + rec_side[1]));
}

/* ---- The planner's input ---- */

/* A workload's requests, computed once per build; missing when the workload is not cached. */
struct cached_requests {
    bool found;
    struct tl_np_requests requests;
};

struct build {
    const struct tl_np_caches *caches;
    const char *pool;
    struct tl_strmap *nodes;      /* node name -> marker */
    struct tl_strmap *workloads;  /* "NS/KIND/NAME" -> struct cached_requests */
    struct tl_strmap *daemonsets; /* "NS/NAME" -> marker, for DaemonSets already counted */
    struct tl_np_input *in;
    size_t pods_cap;
    size_t nodes_cap;
    enum tl_err result;
};

static char marker;

static int kind_slot(enum tl_workload_kind kind)
{
    return kind == TL_KIND_STATEFULSET ? 1 : kind == TL_KIND_DAEMONSET ? 2 : 0;
}

static enum tl_err grow(void **items, size_t *cap, size_t count, size_t size)
{
    if (count < *cap)
        return TL_OK;
    size_t want = *cap ? *cap * 2 : 16;
    void *bigger = realloc(*items, want * size);
    if (!bigger)
        return TL_ENOMEM;
    *items = bigger;
    *cap = want;
    return TL_OK;
}

static bool visit_node(void *arg, const struct tl_kube_store_item *item)
{
    struct build *b = arg;
    const struct tl_np_node *node = item->proj;
    if (!node || !node->pool || strcmp(node->pool, b->pool) != 0)
        return true;
    struct tl_np_input *in = b->in;
    b->result = grow((void **)&in->nodes, &b->nodes_cap, in->nnodes, sizeof(*in->nodes));
    char *type = b->result == TL_OK ? strdup(node->instance_type ? node->instance_type : "") : NULL;
    if (!type || tl_strmap_set(b->nodes, item->name, &marker) != TL_OK) {
        free(type);
        b->result = TL_ENOMEM;
        return false;
    }
    in->nodes[in->nnodes].instance_type = type;
    in->nodes[in->nnodes].capacity = node->capacity;
    in->nnodes++;
    return true;
}

/* The workload's per-pod requests with its Recommendation's advice; NULL when not cached. */
static const struct tl_np_requests *workload_requests(struct build *b, const char *ns,
                                                      enum tl_workload_kind kind, const char *name)
{
    char key[600];
    int n = snprintf(key, sizeof(key), "%s/%s/%s", ns, tl_workload_kind_name(kind), name);
    if (n < 0 || (size_t)n >= sizeof(key))
        return NULL;
    struct cached_requests *cached = tl_strmap_get(b->workloads, key);
    if (cached)
        return cached->found ? &cached->requests : NULL;
    cached = calloc(1, sizeof(*cached));
    if (!cached || tl_strmap_set(b->workloads, key, cached) != TL_OK) {
        b->result = TL_ENOMEM;
        return NULL;
    }
    const struct tl_kube_store_item *witem =
        tl_kube_store_get(b->caches->workloads[kind_slot(kind)], ns, name);
    if (!witem || !witem->proj)
        return NULL;
    cached->found = true;
    char *rec_name = tl_rec_name(kind, name);
    const struct tl_kube_store_item *ritem =
        rec_name && b->caches->recs ? tl_kube_store_get(b->caches->recs, ns, rec_name) : NULL;
    free(rec_name);
    const struct tl_rec_obj *rec = ritem ? ritem->proj : NULL;
    cJSON *status = rec && rec->status_json ? cJSON_Parse(rec->status_json) : NULL;
    tl_np_workload_requests(witem->proj, status, &cached->requests);
    struct tl_np_input *in = b->in;
    if (cached->requests.advised) {
        if (in->advised_workloads == 0 || cached->requests.confidence < in->confidence)
            in->confidence = cached->requests.confidence;
        in->advised_workloads++;
        /* RFC 3339 UTC times of one format order as strings do. */
        const char *analyzed = str_at(status, "lastAnalysisTime");
        if (analyzed && strlen(analyzed) < sizeof(in->last_analysis) &&
            strcmp(analyzed, in->last_analysis) > 0)
            snprintf(in->last_analysis, sizeof(in->last_analysis), "%s", analyzed);
    }
    cJSON_Delete(status);
    return &cached->requests;
}

static bool visit_pod(void *arg, const struct tl_kube_store_item *item)
{
    struct build *b = arg;
    const struct tl_pod *pod = item->proj;
    if (!pod || !pod->node_name || !tl_strmap_get(b->nodes, pod->node_name))
        return true;
    struct tl_np_input *in = b->in;
    in->running_pods++;
    enum tl_workload_kind kind = TL_KIND_DEPLOYMENT;
    const struct tl_np_requests *known = NULL;
    if (pod->owner_kind && pod->owner_name && tl_workload_kind_parse(pod->owner_kind, &kind))
        known = workload_requests(b, item->namespace, kind, pod->owner_name);
    if (b->result != TL_OK)
        return false;
    struct tl_np_requests r;
    memset(&r, 0, sizeof(r));
    if (known) {
        r = *known;
    }
    else {
        /* No workload Tailor reads: the pod's own containers, as they run. */
        double cpu = 0;
        double memory = 0;
        for (size_t i = 0; i < pod->ncontainers; i++) {
            cpu += pod->containers[i].resources.cpu_request;
            memory += pod->containers[i].resources.memory_request;
        }
        r.cpu_milli = r.rec_cpu_milli = llround(cpu * 1000);
        r.memory_bytes = r.rec_memory_bytes = llround(memory);
    }
    in->cpu_cores += (double)r.cpu_milli / 1000;
    in->rec_cpu_cores += (double)r.rec_cpu_milli / 1000;
    in->memory_bytes += (double)r.memory_bytes;
    in->rec_memory_bytes += (double)r.rec_memory_bytes;
    bool daemonset = known && kind == TL_KIND_DAEMONSET;
    char label[600];
    snprintf(label, sizeof(label), "%s/%s", item->namespace,
             daemonset ? pod->owner_name : item->name);
    if (daemonset) {
        /* One entry per DaemonSet: it is overhead on every node, not a pod to pack. */
        if (tl_strmap_get(b->daemonsets, label))
            return true;
        if (tl_strmap_set(b->daemonsets, label, &marker) != TL_OK) {
            b->result = TL_ENOMEM;
            return false;
        }
    }
    b->result = grow((void **)&in->pods, &b->pods_cap, in->npods, sizeof(*in->pods));
    char *name = b->result == TL_OK ? strdup(label) : NULL;
    if (!name) {
        b->result = TL_ENOMEM;
        return false;
    }
    struct tl_plan_pod *p = &in->pods[in->npods++];
    memset(p, 0, sizeof(*p));
    p->name = name;
    p->cpu_milli = r.cpu_milli;
    p->memory_bytes = r.memory_bytes;
    p->rec_cpu_milli = r.rec_cpu_milli;
    p->rec_memory_bytes = r.rec_memory_bytes;
    p->daemonset = daemonset;
    return true;
}

enum tl_err tl_np_input_build(const struct tl_np_caches *caches, const char *pool,
                              struct tl_np_input *out)
{
    struct tl_np_input in;
    memset(&in, 0, sizeof(in));
    struct build b = {.caches = caches,
                      .pool = pool,
                      .nodes = tl_strmap_create(NULL),
                      .workloads = tl_strmap_create(free),
                      .daemonsets = tl_strmap_create(NULL),
                      .in = &in,
                      .result = TL_OK};
    enum tl_err result = TL_ENOMEM;
    if (!b.nodes || !b.workloads || !b.daemonsets)
        goto out;
    if (caches->nodes)
        tl_kube_store_foreach(caches->nodes, visit_node, &b);
    if (b.result == TL_OK && caches->pods)
        tl_kube_store_foreach(caches->pods, visit_pod, &b);
    result = b.result;
    if (result != TL_OK)
        goto out;
    if (in.advised_workloads == 0)
        in.confidence = TL_CONFIDENCE_MEDIUM;
    *out = in;
    memset(&in, 0, sizeof(in));
out:
    tl_np_input_free(&in);
    tl_strmap_destroy(b.nodes);
    tl_strmap_destroy(b.workloads);
    tl_strmap_destroy(b.daemonsets);
    return result;
}

void tl_np_input_free(struct tl_np_input *in)
{
    if (in == NULL)
        return;
    for (size_t i = 0; i < in->npods; i++)
        free((char *)in->pods[i].name);
    for (size_t i = 0; i < in->nnodes; i++)
        free((char *)in->nodes[i].instance_type);
    free(in->pods);
    free(in->nodes);
    memset(in, 0, sizeof(*in));
}

/* ---- The NodePool in status ---- */

/*
 * A requirement as JSON. For status (the Recommendation's schema knows no Gte or Lte), Gte n
 * is shown as the equal Gt n-1 and Lte n as Lt n+1; for the NodePool it is written as it was.
 */
static cJSON *requirement_json(const struct tl_nodepool_req *r, bool for_status)
{
    cJSON *o = cJSON_CreateObject();
    enum tl_req_op op = r->op;
    int64_t number = r->number;
    if (for_status && op == TL_REQ_GTE) {
        op = TL_REQ_GT;
        number--;
    }
    else if (for_status && op == TL_REQ_LTE) {
        op = TL_REQ_LT;
        number++;
    }
    if (!o || !add_string(o, "key", r->key) || !add_string(o, "operator", tl_req_op_name(op)))
        goto fail;
    if (op == TL_REQ_IN || op == TL_REQ_NOT_IN || !for_status) {
        if (r->nvalues > 0) {
            cJSON *values = cJSON_AddArrayToObject(o, "values");
            for (size_t i = 0; values && i < r->nvalues && (!for_status || i < SHOWN_VALUES_MAX);
                 i++) {
                if (!cJSON_AddItemToArray(values, cJSON_CreateString(r->values[i])))
                    goto fail;
            }
            if (!values)
                goto fail;
        }
    }
    else if (op != TL_REQ_EXISTS && op != TL_REQ_DOES_NOT_EXIST) {
        char text[32];
        snprintf(text, sizeof(text), "%lld", (long long)number);
        cJSON *values = cJSON_AddArrayToObject(o, "values");
        if (!values || !cJSON_AddItemToArray(values, cJSON_CreateString(text)))
            goto fail;
    }
    if (r->min_values > 0 && !add_number(o, "minValues", r->min_values))
        goto fail;
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

static cJSON *requirements_json(const struct tl_nodepool_reqs *reqs, bool for_status)
{
    cJSON *array = cJSON_CreateArray();
    for (size_t i = 0; array && reqs && i < reqs->count; i++) {
        if (for_status && i >= SHOWN_REQS_MAX)
            break;
        cJSON *r = requirement_json(&reqs->items[i], for_status);
        if (!r || !cJSON_AddItemToArray(array, r)) {
            cJSON_Delete(r);
            cJSON_Delete(array);
            return NULL;
        }
    }
    return array;
}

struct limits {
    int64_t cpu_milli; /* < 0: unset */
    int64_t memory_bytes;
    int64_t nodes;
};

/* {cpu, memory}: the limits the Recommendation's schema shows (nodes is not among them). */
static cJSON *limits_json(const struct limits *l, bool with_nodes)
{
    cJSON *o = cJSON_CreateObject();
    char text[TL_QUANTITY_STR_MAX];
    if (!o)
        return NULL;
    if (l->cpu_milli >= 0) {
        tl_format_cpu((double)l->cpu_milli / 1000, text, sizeof(text));
        if (!add_string(o, "cpu", text))
            goto fail;
    }
    if (l->memory_bytes >= 0) {
        tl_format_memory((double)l->memory_bytes, text, sizeof(text));
        if (!add_string(o, "memory", text))
            goto fail;
    }
    if (with_nodes && l->nodes >= 0) {
        snprintf(text, sizeof(text), "%lld", (long long)l->nodes);
        if (!add_string(o, "nodes", text))
            goto fail;
    }
    return o;
fail:
    cJSON_Delete(o);
    return NULL;
}

static bool priced(const char *region, const char *type)
{
    double usd = 0;
    return tl_catalog_ondemand_price(region, type, &usd) == TL_OK;
}

/*
 * The instance types the requirements allow and the region sells: the fleet's own types
 * first (so the nodes a plan uses are always among those shown), then the rest by name.
 */
static cJSON *types_json(const struct tl_nodepool_reqs *reqs, const char *region,
                         const struct tl_plan_fleet *first)
{
    cJSON *array = cJSON_CreateArray();
    bool *allowed = calloc(tl_catalog_type_count ? tl_catalog_type_count : 1, sizeof(*allowed));
    if (!array || !allowed)
        goto fail;
    tl_nodepool_reqs_select(reqs, allowed);
    size_t shown = 0;
    for (size_t i = 0; first && i < first->nlines && shown < SHOWN_TYPES_MAX; i++) {
        const struct tl_instance_type *t = tl_catalog_find(first->lines[i].type);
        size_t at = t ? (size_t)(t - tl_catalog_types) : 0;
        if (!t || !allowed[at] || !priced(region, t->name))
            continue;
        allowed[at] = false;
        if (!cJSON_AddItemToArray(array, cJSON_CreateString(t->name)))
            goto fail;
        shown++;
    }
    for (size_t i = 0; i < tl_catalog_type_count && shown < SHOWN_TYPES_MAX; i++) {
        if (!allowed[i] || !priced(region, tl_catalog_types[i].name))
            continue;
        if (!cJSON_AddItemToArray(array, cJSON_CreateString(tl_catalog_types[i].name)))
            goto fail;
        shown++;
    }
    free(allowed);
    return array;
fail:
    free(allowed);
    cJSON_Delete(array);
    return NULL;
}

static cJSON *capacity_json(const struct tl_nodepool_reqs *reqs)
{
    unsigned mask = tl_nodepool_reqs_capacity(reqs);
    cJSON *array = cJSON_CreateArray();
    if (array && (mask & TL_CAPACITY_ON_DEMAND) &&
        !cJSON_AddItemToArray(array, cJSON_CreateString("on-demand")))
        goto fail;
    if (array && (mask & TL_CAPACITY_SPOT) &&
        !cJSON_AddItemToArray(array, cJSON_CreateString("spot")))
        goto fail;
    return array;
fail:
    cJSON_Delete(array);
    return NULL;
}

/* One side of status.nodePool: current or proposed. reqs_json and limits are taken over. */
static cJSON *side_json(cJSON *reqs_json, const struct tl_nodepool_reqs *reqs, cJSON *limits,
                        const char *region, const struct tl_plan_fleet *first)
{
    /* Every member_set takes its value over, also when o is NULL. */
    cJSON *o = cJSON_CreateObject();
    enum tl_err a = tl_json_member_set(o, "requirements", reqs_json);
    enum tl_err b = tl_json_member_set(o, "instanceTypes", types_json(reqs, region, first));
    enum tl_err c = tl_json_member_set(o, "capacityTypes", capacity_json(reqs));
    enum tl_err d = tl_json_member_set(o, "limits", limits);
    if (a != TL_OK || b != TL_OK || c != TL_OK || d != TL_OK) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- The advice in words ---- */

static const struct tl_plan_change *advised_change(const struct tl_plan_result *plan,
                                                   enum tl_plan_change_kind kind)
{
    if (!plan || plan->verdict != TL_PLAN_CHANGE)
        return NULL;
    for (size_t i = 0; i < plan->nchanges; i++) {
        if (plan->changes[i].kind == kind && !plan->changes[i].optional)
            return &plan->changes[i];
    }
    return NULL;
}

static unsigned change_bits(const struct tl_plan_result *plan)
{
    unsigned bits = 0;
    if (advised_change(plan, TL_PLAN_CHANGE_REQUIREMENTS))
        bits |= TL_NP_CHANGE_REQUIREMENTS;
    if (advised_change(plan, TL_PLAN_CHANGE_LIMITS))
        bits |= TL_NP_CHANGE_LIMITS;
    if (advised_change(plan, TL_PLAN_CHANGE_CONSOLIDATION))
        bits |= TL_NP_CHANGE_CONSOLIDATION;
    return bits;
}

static const struct {
    unsigned bit;
    const char *reason;
} change_names[] = {{TL_NP_CHANGE_REQUIREMENTS, "Requirements"},
                    {TL_NP_CHANGE_LIMITS, "Limits"},
                    {TL_NP_CHANGE_CONSOLIDATION, "Consolidation"}};

/* "Requirements,Consolidation": a condition reason (CamelCase words and commas). */
static void bits_reason(unsigned bits, char *buf, size_t len)
{
    struct text t;
    text_init(&t, buf, len);
    for (size_t i = 0; i < sizeof(change_names) / sizeof(change_names[0]); i++) {
        if (bits & change_names[i].bit)
            text_add(&t, "%s%s", t.used ? "," : "", change_names[i].reason);
    }
    if (!bits)
        text_add(&t, "NoChange");
}

static unsigned bits_parse(const char *reason)
{
    unsigned bits = 0;
    for (size_t i = 0; reason && i < sizeof(change_names) / sizeof(change_names[0]); i++) {
        size_t n = strlen(change_names[i].reason);
        for (const char *p = strstr(reason, change_names[i].reason); p;
             p = strstr(p + 1, change_names[i].reason)) {
            if ((p == reason || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
                bits |= change_names[i].bit;
        }
    }
    return bits;
}

/* "3 m6i.xlarge, 1 c6i.large" */
static void fleet_words(struct text *t, const struct tl_plan_fleet *f)
{
    for (size_t i = 0; i < f->nlines; i++)
        text_add(t, "%s%u %s", i ? ", " : "", f->lines[i].count,
                 f->lines[i].type[0] ? f->lines[i].type : "unknown");
}

static void explain(const struct tl_np_status_input *in, const struct tl_plan_fleet *proposed,
                    char *buf, size_t len)
{
    struct text t;
    text_init(&t, buf, len);
    const struct tl_plan_result *plan = in->plan;
    if (in->problem || !plan) {
        text_add(&t, "%s", in->problem ? in->problem : "No plan was made.");
        return;
    }
    if (plan->verdict == TL_PLAN_NO_ADVICE) {
        text_add(&t, "No NodePool change is advised: %s.", plan->reason);
        return;
    }
    double before = plan->before.monthly_usd;
    double after = proposed->monthly_usd;
    text_add(&t, "Packing the recommended requests needs %u node%s (", proposed->nodes,
             plural(proposed->nodes));
    fleet_words(&t, proposed);
    text_add(&t, "; %s)", tl_capacity_type_name(plan->planned_capacity));
    if (plan->before.nodes > 0) {
        text_add(&t, " instead of the %u running (", plan->before.nodes);
        fleet_words(&t, &plan->before);
        text_add(&t, ")");
    }
    else {
        text_add(&t, " where no node runs now");
    }
    text_add(&t, ": $%.2f/month %s", fabs(before - after), after <= before ? "less" : "more");
    if (plan->verdict == TL_PLAN_NO_CHANGE_NEEDED)
        text_add(&t, "; Karpenter's consolidation gets there without a NodePool change");
    for (size_t i = 0; plan->verdict == TL_PLAN_CHANGE && i < plan->nchanges; i++) {
        const struct tl_plan_change *c = &plan->changes[i];
        if (c->optional)
            continue;
        if (c->kind == TL_PLAN_CHANGE_REQUIREMENTS)
            text_add(&t, "; narrowing the requirements to %s drifts %u node%s", c->summary,
                     c->drifted_nodes, plural(c->drifted_nodes));
        else if (c->kind == TL_PLAN_CHANGE_CONSOLIDATION)
            text_add(&t, "; %s lets Karpenter give back the capacity the pods free", c->summary);
        else if (c->kind == TL_PLAN_CHANGE_LIMITS)
            text_add(&t, "; spec.limits become %s", c->summary);
    }
    text_add(&t, ".");
    for (size_t i = 0; i < plan->nchanges; i++) {
        const struct tl_plan_change *c = &plan->changes[i];
        if (c->optional && c->kind == TL_PLAN_CHANGE_SPOT)
            text_add(&t, " Optional, not part of the advice: %s would cost $%.2f/month (%s).",
                     c->summary, c->monthly_usd, c->note);
    }
}

static void disruption_words(const struct tl_plan_result *plan, unsigned changes, char *buf,
                             size_t len)
{
    struct text t;
    text_init(&t, buf, len);
    if (!changes) {
        text_add(&t, "Nothing: no NodePool change is pending.");
        return;
    }
    const struct tl_plan_change *req = advised_change(plan, TL_PLAN_CHANGE_REQUIREMENTS);
    if (req && req->drifted_nodes > 0)
        text_add(&t,
                 "Karpenter drifts the %u running node%s the new requirements exclude and "
                 "replaces them within the NodePool's disruption budgets",
                 req->drifted_nodes, plural(req->drifted_nodes));
    else if (req)
        text_add(&t, "The new requirements exclude no running node: nothing drifts");
    if (changes & TL_NP_CHANGE_CONSOLIDATION)
        text_add(&t,
                 "%sconsolidation replaces or removes underutilized nodes, paced by the "
                 "disruption budgets",
                 t.used ? "; " : "");
    if (changes == TL_NP_CHANGE_LIMITS)
        text_add(&t, "No running node is replaced: limits only cap what Karpenter may launch");
    text_add(&t, ".");
}

/* The summaries of the changes a revision makes, for the Proposal condition. */
static void proposal_words(const struct tl_plan_result *plan, int64_t revision, char *buf,
                           size_t len)
{
    struct text t;
    text_init(&t, buf, len);
    text_add(&t, "Revision %lld", (long long)revision);
    bool any = false;
    for (size_t i = 0; plan && plan->verdict == TL_PLAN_CHANGE && i < plan->nchanges; i++) {
        const struct tl_plan_change *c = &plan->changes[i];
        if (c->optional)
            continue;
        text_add(&t, "%s %s (%s)", any ? ";" : " changes", c->field, c->summary);
        any = true;
    }
    text_add(&t, "%s", any ? "." : " changes nothing in the NodePool.");
}

/* ---- Conditions and history ---- */

/* Replaces the condition of `type`, keeping lastTransitionTime while its status is unchanged. */
static void put_condition(cJSON *status, const cJSON *previous, const char *type, const char *state,
                          const char *reason, const char *message, const char *now)
{
    cJSON *conditions = cJSON_GetObjectItemCaseSensitive(status, "conditions");
    if (!conditions)
        return;
    char since[40];
    snprintf(since, sizeof(since), "%s", now);
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(previous, "conditions"))
    {
        const char *t = str_at(c, "type");
        const char *s = str_at(c, "status");
        const char *when = str_at(c, "lastTransitionTime");
        if (t && strcmp(t, type) == 0 && s && strcmp(s, state) == 0 && when)
            snprintf(since, sizeof(since), "%s", when);
    }
    for (int i = (int)tl_json_size(conditions) - 1; i >= 0; i--) {
        const char *t = str_at(cJSON_GetArrayItem(conditions, i), "type");
        if (t && strcmp(t, type) == 0)
            cJSON_DeleteItemFromArray(conditions, i);
    }
    cJSON *cond = cJSON_CreateObject();
    if (!cond || !add_string(cond, "type", type) || !add_string(cond, "status", state) ||
        !add_number(cond, "observedGeneration", (double)int_at(status, "observedGeneration")) ||
        !add_string(cond, "lastTransitionTime", since) || !add_string(cond, "reason", reason) ||
        !add_string(cond, "message", message) || !cJSON_AddItemToArray(conditions, cond))
        cJSON_Delete(cond);
}

static const cJSON *condition_of(const cJSON *status, const char *type)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status, "conditions"))
    {
        const char *t = str_at(c, "type");
        if (t && strcmp(t, type) == 0)
            return c;
    }
    return NULL;
}

/* Keeps a condition of the previous status as it was, for the generation this status describes. */
static void copy_condition(cJSON *status, const cJSON *previous, const char *type)
{
    const cJSON *c = condition_of(previous, type);
    cJSON *conditions = cJSON_GetObjectItemCaseSensitive(status, "conditions");
    if (!c || !conditions || condition_of(status, type))
        return;
    cJSON *copy = tl_json_dup(c);
    if (copy && cJSON_AddItemToArray(conditions, copy))
        set_number(copy, "observedGeneration", (double)int_at(status, "observedGeneration"));
    else
        cJSON_Delete(copy);
}

static void history_add(cJSON *status, int64_t revision, const char *by, const char *result,
                        const char *reason, const char *from, const char *to, const char *now)
{
    cJSON *history = cJSON_GetObjectItemCaseSensitive(status, "history");
    if (!history && tl_json_member_set(status, "history", cJSON_CreateArray()) == TL_OK)
        history = cJSON_GetObjectItemCaseSensitive(status, "history");
    cJSON *entry = cJSON_CreateObject();
    if (!history || !entry) {
        cJSON_Delete(entry);
        return;
    }
    set_number(entry, "revision", (double)revision);
    set_string(entry, "action", "Apply");
    set_string(entry, "appliedAt", now);
    set_string(entry, "finishedAt", now);
    set_string(entry, "by", by);
    set_string(entry, "result", result);
    set_string(entry, "reason", reason);
    if (from && *from)
        set_string(entry, "from", from);
    if (to && *to)
        set_string(entry, "to", to);
    cJSON_AddItemToArray(history, entry);
    while (tl_json_size(history) > HISTORY_MAX)
        cJSON_DeleteItemFromArray(history, 0);
}

static const cJSON *last_history(const cJSON *status)
{
    const cJSON *history = cJSON_GetObjectItemCaseSensitive(status, "history");
    size_t n = tl_json_size(history);
    return n ? cJSON_GetArrayItem(history, (int)n - 1) : NULL;
}

/* ---- The status ---- */

static bool same_json(const cJSON *a, const cJSON *b)
{
    if (!a || !b)
        return tl_json_size(a) == 0 && tl_json_size(b) == 0;
    return tl_json_equal(a, b);
}

static bool add_fleet_numbers(cJSON *np, unsigned current_nodes, unsigned proposed_nodes,
                              double current_usd, double proposed_usd)
{
    char a[32];
    char b[32];
    cJSON *nodes = cJSON_AddObjectToObject(np, "nodes");
    cJSON *cost = cJSON_AddObjectToObject(np, "monthlyCost");
    snprintf(a, sizeof(a), "%.2f", current_usd);
    snprintf(b, sizeof(b), "%.2f", proposed_usd);
    return nodes && cost && add_number(nodes, "current", current_nodes) &&
           add_number(nodes, "proposed", proposed_nodes) && add_string(cost, "current", a) &&
           add_string(cost, "proposed", b);
}

static bool add_display(cJSON *status, const struct tl_np_status_input *in)
{
    cJSON *display = cJSON_AddObjectToObject(status, "display");
    char text[128];
    char a[TL_QUANTITY_STR_MAX];
    char b[TL_QUANTITY_STR_MAX];
    snprintf(text, sizeof(text), "NodePool/%s", in->name);
    if (!display || !add_string(display, "target", text))
        return false;
    if (!in->input)
        return true;
    tl_format_cpu(in->input->cpu_cores, a, sizeof(a));
    tl_format_cpu(in->input->rec_cpu_cores, b, sizeof(b));
    snprintf(text, sizeof(text), "%s\xE2\x86\x92%s", a, b);
    if (!add_string(display, "cpu", text))
        return false;
    tl_format_memory(in->input->memory_bytes, a, sizeof(a));
    tl_format_memory(in->input->rec_memory_bytes, b, sizeof(b));
    snprintf(text, sizeof(text), "%s\xE2\x86\x92%s", a, b);
    return add_string(display, "memory", text);
}

cJSON *tl_np_status_build(const struct tl_np_status_input *in, struct tl_np_status_info *info)
{
    memset(info, 0, sizeof(*info));
    static const struct tl_nodepool_reqs no_reqs = {NULL, 0};
    const struct tl_np_pool *pool = in->pool;
    const struct tl_nodepool_spec *spec = pool && pool->valid ? &pool->spec : NULL;
    const struct tl_plan_result *plan = in->problem ? NULL : in->plan;
    const struct tl_plan_fleet *proposed =
        plan ? (in->proposed ? in->proposed : &plan->after_recommended) : NULL;
    char now[32];
    tl_format_time(in->now, now, sizeof(now));
    char *text = malloc(EXPLANATION_MAX);
    cJSON *status = cJSON_CreateObject();
    cJSON *cur_reqs = NULL;
    cJSON *new_reqs = NULL;
    cJSON *cur_limits = NULL;
    cJSON *new_limits = NULL;
    if (!text || !status)
        goto fail;

    /* The fresh proposal: the plan's advised changes on top of the NodePool. */
    unsigned changes = change_bits(plan);
    const struct tl_plan_change *req = advised_change(plan, TL_PLAN_CHANGE_REQUIREMENTS);
    const struct tl_plan_change *lim = advised_change(plan, TL_PLAN_CHANGE_LIMITS);
    const struct tl_nodepool_reqs *reqs_now = spec ? &spec->reqs : &no_reqs;
    const struct tl_nodepool_reqs *reqs_new = req ? &req->requirements : reqs_now;
    struct limits l_now = {-1, -1, -1};
    if (spec)
        l_now = (struct limits){spec->limit_cpu_milli, spec->limit_memory_bytes, spec->limit_nodes};
    struct limits l_new = l_now;
    if (lim)
        l_new = (struct limits){lim->limit_cpu_milli, lim->limit_memory_bytes, lim->limit_nodes};
    cur_reqs = requirements_json(reqs_now, true);
    new_reqs = requirements_json(reqs_new, true);
    cur_limits = limits_json(&l_now, false);
    new_limits = limits_json(&l_new, false);
    if (!cur_reqs || !new_reqs || !cur_limits || !new_limits)
        goto fail;

    /* The revision: it moves with the proposal, and stays when its proposal is now in place. */
    const cJSON *prev = in->previous;
    int64_t prev_revision = int_at(prev, "revision");
    unsigned prev_changes = bits_parse(str_at(condition_of(prev, "Proposal"), "reason"));
    bool consolidating =
        spec && spec->consolidation != TL_CONSOLIDATE_WHEN_EMPTY && !spec->consolidate_never;
    bool prev_in_place = !(prev_changes & TL_NP_CHANGE_CONSOLIDATION) || consolidating;
    bool material =
        prev_revision <= 0 ||
        !same_json(tl_json_get(prev, "nodePool", "proposed", "requirements", NULL), new_reqs) ||
        !same_json(tl_json_get(prev, "nodePool", "proposed", "limits", NULL), new_limits) ||
        (changes != prev_changes && !(changes == 0 && prev_in_place));
    int64_t revision = material ? prev_revision + 1 : prev_revision;
    info->revision = revision;
    info->changes = changes;
    info->revision_changes = material ? changes : prev_changes;
    info->material = material;
    info->drifts = req && req->drifts;

    const char *phase = "UpToDate";
    if (changes)
        phase = in->approved_revision == revision ? "Approved" : "Pending";
    else if (int_at(prev, "lastAppliedRevision") == revision && info->revision_changes)
        phase = "Applied";
    bool advice = plan && plan->verdict != TL_PLAN_NO_ADVICE;
    enum tl_confidence confidence =
        in->input && !in->problem ? in->input->confidence : TL_CONFIDENCE_NONE;
    explain(in, proposed, text, EXPLANATION_MAX);
    if (!add_number(status, "observedGeneration", (double)in->generation) ||
        !add_number(status, "revision", (double)revision) || !add_string(status, "phase", phase) ||
        !add_string(status, "confidence", tl_confidence_name(confidence)) ||
        !add_string(status, "explanation", text) || !add_display(status, in))
        goto fail;
    double before_usd = plan ? plan->before.monthly_usd : 0;
    unsigned before_nodes = plan ? plan->before.nodes : in->input ? (unsigned)in->input->nnodes : 0;
    double after_usd = advice ? proposed->monthly_usd : before_usd;
    unsigned after_nodes = advice ? proposed->nodes : before_nodes;
    char money[32];
    double saved = changes ? before_usd - after_usd : 0;
    snprintf(money, sizeof(money), "%.2f", fabs(saved) < 0.005 ? 0.0 : saved);
    cJSON *savings = cJSON_AddObjectToObject(status, "savings");
    if (!savings || !add_string(savings, "monthlyUSD", money))
        goto fail;
    if (in->input && in->input->last_analysis[0] &&
        !add_string(status, "lastAnalysisTime", in->input->last_analysis))
        goto fail;

    cJSON *np = cJSON_AddObjectToObject(status, "nodePool");
    cJSON *current =
        side_json(cur_reqs, reqs_now, cur_limits, in->region, plan ? &plan->before : NULL);
    cur_reqs = cur_limits = NULL;
    if (tl_json_member_set(np, "current", current) != TL_OK)
        goto fail;
    cJSON *wanted = side_json(new_reqs, reqs_new, new_limits, in->region, advice ? proposed : NULL);
    new_reqs = new_limits = NULL;
    if (tl_json_member_set(np, "proposed", wanted) != TL_OK ||
        !add_fleet_numbers(np, before_nodes, after_nodes, before_usd, after_usd) ||
        !cJSON_AddBoolToObject(np, "drift", changes && info->drifts))
        goto fail;
    disruption_words(plan, changes, text, TEXT_MAX);
    if (!add_string(np, "disruption", text))
        goto fail;

    static const char *const kept[] = {"history", "lastAppliedRevision"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(prev, kept[i]);
        if (item && tl_json_member_set(status, kept[i], tl_json_dup(item)) != TL_OK)
            goto fail;
    }
    if (!cJSON_AddArrayToObject(status, "conditions"))
        goto fail;
    if (in->problem)
        put_condition(status, prev, "Ready", "False", "NotPlanned", in->problem, now);
    else
        put_condition(status, prev, "Ready", "True", "Planned", plan ? plan->reason : "", now);
    if (material || !condition_of(prev, "Proposal")) {
        char reason[64];
        bits_reason(info->revision_changes, reason, sizeof(reason));
        proposal_words(plan, revision, text, TEXT_MAX);
        put_condition(status, prev, "Proposal", changes ? "True" : "False", reason, text, now);
    }
    else {
        copy_condition(status, prev, "Proposal");
    }
    if (in->approved_revision > 0 && in->approved_revision != revision) {
        snprintf(text, EXPLANATION_MAX,
                 "Approved revision %lld is not the current revision %lld; nothing will be "
                 "applied until revision %lld is approved.",
                 (long long)in->approved_revision, (long long)revision, (long long)revision);
        put_condition(status, prev, "ApprovalCurrent", "False", "StaleApproval", text, now);
    }
    free(text);
    return status;
fail:
    free(text);
    cJSON_Delete(cur_reqs);
    cJSON_Delete(new_reqs);
    cJSON_Delete(cur_limits);
    cJSON_Delete(new_limits);
    cJSON_Delete(status);
    return NULL;
}

/* ---- Remediation ---- */

static void event(struct tl_np_action *out, enum tl_event_type type, const char *reason,
                  const char *action)
{
    out->event_type = type;
    out->event_reason = reason;
    out->event_action = action;
}

/* When the newest Apply of the history happened (the cooldown counts from it). */
static double last_applied_at(const cJSON *status)
{
    double last = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, cJSON_GetObjectItemCaseSensitive(status, "history"))
    {
        double t = tl_parse_time(str_at(entry, "appliedAt"));
        last = t > last ? t : last;
    }
    return last;
}

void tl_np_remediate(const struct tl_np_remediate_input *in, cJSON *status,
                     struct tl_np_action *out)
{
    memset(out, 0, sizeof(*out));
    const struct tl_policy *p = in->policy;
    const struct tl_np_status_info *info = in->info;
    const cJSON *prev = in->previous;
    int64_t revision = info->revision;
    char now[32];
    tl_format_time(in->now, now, sizeof(now));
    char message[768];
    const char *change = in->change ? in->change : "";

    if (!info->changes) {
        /* A person approved this revision and it is in place, yet nothing recorded it: a
         * restart between the write and its record, or someone made the change by hand. */
        if (!info->material && info->revision_changes && in->approved_revision == revision &&
            p->approval.mode != TL_APPROVAL_OFF &&
            int_at(status, "lastAppliedRevision") != revision) {
            history_add(status, revision, "manual", "Succeeded", "AlreadyInPlace", NULL, NULL, now);
            set_number(status, "lastAppliedRevision", (double)revision);
            set_string(status, "phase", "Applied");
            snprintf(message, sizeof(message), "Revision %lld is in place in the NodePool.",
                     (long long)revision);
            put_condition(status, prev, "Remediation", "True", "AlreadyInPlace", message, now);
            return;
        }
        const char *phase = str_at(status, "phase");
        if (phase && strcmp(phase, "Applied") == 0)
            copy_condition(status, prev, "Remediation");
        return;
    }
    if (p->approval.mode == TL_APPROVAL_OFF) {
        if (in->approved_revision == revision) {
            snprintf(message, sizeof(message),
                     "The policy's approval mode is Off: revision %lld is advice only and its "
                     "approval is not applied.",
                     (long long)revision);
            put_condition(status, prev, "Remediation", "False", "ModeOff", message, now);
        }
        return;
    }
    /* A failed write is tried again after a pause, not on every event. */
    const cJSON *last = last_history(prev);
    const char *prev_phase = str_at(prev, "phase");
    double failed_at = tl_parse_time(str_at(last, "finishedAt"));
    if (prev_phase && strcmp(prev_phase, "Failed") == 0 && int_at(last, "revision") == revision &&
        str_at(last, "result") && strcmp(str_at(last, "result"), "Failed") == 0 &&
        in->now < failed_at + FAILED_RETRY) {
        set_string(status, "phase", "Failed");
        copy_condition(status, prev, "Remediation");
        out->requeue_after = failed_at + FAILED_RETRY - in->now;
        return;
    }
    const char *by = "manual";
    double opens_in = 0;
    bool approved = in->approved_revision == revision;
    if (p->approval.mode == TL_APPROVAL_MANUAL || approved) {
        if (!approved)
            return;
        if (!tl_guard_window_open(p, in->now, &opens_in)) {
            snprintf(message, sizeof(message),
                     "Revision %lld is approved and waits for the policy's window (opens in %.0f "
                     "minutes).",
                     (long long)revision, ceil(opens_in / 60));
            put_condition(status, prev, "Remediation", "False", "OutsideWindow", message, now);
            out->requeue_after = fmin(opens_in, 300);
            return;
        }
    }
    else {
        by = "auto";
        if (info->drifts && !p->node_pools.allow_drift) {
            snprintf(message, sizeof(message),
                     "Revision %lld makes Karpenter replace running nodes and the policy's "
                     "nodePools.allowDrift is false: it is applied only when a person sets "
                     "spec.approval.approvedRevision to %lld.",
                     (long long)revision, (long long)revision);
            put_condition(status, prev, "Remediation", "False", "DriftNotAllowed", message, now);
            return;
        }
        struct tl_guard_input guard = {.policy = p,
                                       .confidence = TL_CONFIDENCE_NONE,
                                       /* A NodePool change is not a step on a scale. */
                                       .change_percent = 100,
                                       .pdb_allowed = -1,
                                       .kill_switch = in->kill_switch,
                                       .now = in->now,
                                       .last_applied = last_applied_at(prev)};
        const char *confidence = str_at(status, "confidence");
        if (confidence)
            tl_confidence_parse(confidence, &guard.confidence);
        struct tl_guard_result g;
        tl_guard_check_auto(&guard, &g);
        if (!g.allowed) {
            put_condition(status, prev, "Remediation", "False", g.reason, g.message, now);
            out->requeue_after = g.retry_after;
            return;
        }
    }
    if (in->dry_run) {
        snprintf(message, sizeof(message), "Dry run: would apply revision %lld (%s).",
                 (long long)revision, change);
        put_condition(status, prev, "Remediation", "False", "DryRun", message, now);
        event(out, TL_EVENT_NORMAL, "DryRun", "Apply");
        snprintf(out->note, sizeof(out->note), "Would apply revision %lld: %s", (long long)revision,
                 change);
        return;
    }
    out->apply = true;
    out->revision = revision;
    out->by = by;
}

void tl_np_record_apply(cJSON *status, const cJSON *previous, struct tl_np_action *action, bool ok,
                        const char *why, const char *from, const char *to, double now)
{
    char when[32];
    tl_format_time(now, when, sizeof(when));
    char message[1200];
    long long revision = (long long)action->revision;
    history_add(status, action->revision, action->by ? action->by : "manual",
                ok ? "Succeeded" : "Failed", ok ? "Applied" : "ApplyFailed", from, to, when);
    if (ok) {
        set_number(status, "lastAppliedRevision", (double)action->revision);
        set_string(status, "phase", "Applied");
        snprintf(message, sizeof(message),
                 "Revision %lld was written to the NodePool (%s). Karpenter acts on it; Tailor "
                 "does not verify or roll back NodePool changes.",
                 revision, to);
        put_condition(status, previous, "Remediation", "True", "Applied", message, when);
        event(action, TL_EVENT_NORMAL, "Applied", "Apply");
        snprintf(action->note, sizeof(action->note),
                 "Revision %lld applied to the NodePool (%s): %s", revision,
                 action->by ? action->by : "manual", to);
        return;
    }
    set_string(status, "phase", "Failed");
    snprintf(message, sizeof(message),
             "Writing revision %lld to the NodePool failed: %s. It is tried again in %.0f "
             "minutes.",
             revision, why ? why : "unknown error", FAILED_RETRY / 60);
    put_condition(status, previous, "Remediation", "False", "ApplyFailed", message, when);
    event(action, TL_EVENT_WARNING, "ApplyFailed", "Apply");
    snprintf(action->note, sizeof(action->note), "Revision %lld could not be applied: %s", revision,
             why ? why : "unknown error");
}

/* ---- Writing the NodePool ---- */

static bool req_in(const struct tl_nodepool_req *r, const struct tl_nodepool_reqs *set)
{
    char *a = tl_nodepool_req_to_string(r);
    bool found = false;
    for (size_t i = 0; a && !found && i < set->count; i++) {
        char *b = tl_nodepool_req_to_string(&set->items[i]);
        found = b && strcmp(a, b) == 0 && r->min_values == set->items[i].min_values;
        free(b);
    }
    free(a);
    return found;
}

static bool has_key(const char *const *keys, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(keys[i], key) == 0)
            return true;
    }
    return false;
}

/* The requirements on key in words, "KEY unset" when there is none. */
static void key_words(struct text *t, const struct tl_nodepool_reqs *reqs, const char *key,
                      bool first)
{
    bool any = false;
    for (size_t i = 0; i < reqs->count; i++) {
        if (strcmp(reqs->items[i].key, key) != 0)
            continue;
        char *s = tl_nodepool_req_to_string(&reqs->items[i]);
        text_add(t, "%s%s", first && !any ? "" : ", ", s ? s : key);
        free(s);
        any = true;
    }
    if (!any)
        text_add(t, "%s%s unset", first ? "" : ", ", key);
}

/* The requirements on the keys a change touches, before and after. */
static void reqs_words(struct text *from, struct text *to, const struct tl_nodepool_reqs *a,
                       const struct tl_nodepool_reqs *b)
{
    const char *keys[64];
    size_t n = 0;
    for (size_t i = 0; i < a->count + b->count && n < sizeof(keys) / sizeof(keys[0]); i++) {
        const struct tl_nodepool_req *r = i < a->count ? &a->items[i] : &b->items[i - a->count];
        if (!req_in(r, i < a->count ? b : a) && !has_key(keys, n, r->key))
            keys[n++] = r->key;
    }
    for (size_t i = 0; i < n; i++) {
        key_words(from, a, keys[i], i == 0);
        key_words(to, b, keys[i], i == 0);
    }
}

static void limits_words(struct text *t, const struct limits *l)
{
    char cpu[TL_QUANTITY_STR_MAX] = "unset";
    char memory[TL_QUANTITY_STR_MAX] = "unset";
    if (l->cpu_milli >= 0)
        tl_format_cpu((double)l->cpu_milli / 1000, cpu, sizeof(cpu));
    if (l->memory_bytes >= 0)
        tl_format_memory((double)l->memory_bytes, memory, sizeof(memory));
    text_add(t, "cpu %s, memory %s", cpu, memory);
    if (l->nodes >= 0)
        text_add(t, ", nodes %lld", (long long)l->nodes);
}

static cJSON *object_at(cJSON *parent, const char *key)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(parent, key);
    return o ? o : cJSON_AddObjectToObject(parent, key);
}

cJSON *tl_np_apply_body(const char *name, const struct tl_nodepool_spec *current,
                        const struct tl_plan_result *plan, char *from, size_t from_len, char *to,
                        size_t to_len)
{
    struct text before;
    struct text after;
    text_init(&before, from, from_len);
    text_init(&after, to, to_len);
    cJSON *body = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(body, "metadata");
    cJSON *spec = cJSON_AddObjectToObject(body, "spec");
    if (!body || !meta || !spec || !add_string(body, "apiVersion", "karpenter.sh/v1") ||
        !add_string(body, "kind", "NodePool") || !add_string(meta, "name", name))
        goto fail;
    bool any = false;
    for (size_t i = 0; plan && plan->verdict == TL_PLAN_CHANGE && i < plan->nchanges; i++) {
        const struct tl_plan_change *c = &plan->changes[i];
        if (c->optional)
            continue;
        const char *sep = any ? "; " : "";
        if (c->kind == TL_PLAN_CHANGE_REQUIREMENTS) {
            /* The list is atomic in the CRD: applying it replaces the whole list. */
            cJSON *tspec = object_at(object_at(spec, "template"), "spec");
            if (!tspec || tl_json_member_set(tspec, "requirements",
                                             requirements_json(&c->requirements, false)) != TL_OK)
                goto fail;
            text_add(&before, "%srequirements: ", sep);
            text_add(&after, "%srequirements: ", sep);
            reqs_words(&before, &after, &current->reqs, &c->requirements);
        }
        else if (c->kind == TL_PLAN_CHANGE_LIMITS) {
            struct limits old = {current->limit_cpu_milli, current->limit_memory_bytes,
                                 current->limit_nodes};
            struct limits new = {c->limit_cpu_milli, c->limit_memory_bytes, c->limit_nodes};
            if (tl_json_member_set(spec, "limits", limits_json(&new, true)) != TL_OK)
                goto fail;
            text_add(&before, "%slimits: ", sep);
            limits_words(&before, &old);
            text_add(&after, "%slimits: ", sep);
            limits_words(&after, &new);
        }
        else if (c->kind == TL_PLAN_CHANGE_CONSOLIDATION) {
            cJSON *disruption = object_at(spec, "disruption");
            if (!disruption || !add_string(disruption, "consolidationPolicy",
                                           tl_consolidation_policy_name(c->consolidation)))
                goto fail;
            text_add(&before, "%sconsolidationPolicy: %s", sep,
                     tl_consolidation_policy_name(current->consolidation));
            text_add(&after, "%sconsolidationPolicy: %s", sep,
                     tl_consolidation_policy_name(c->consolidation));
            /* Never turns consolidation off whatever the policy: Karpenter's default instead. */
            if (current->consolidate_never) {
                if (!add_string(disruption, "consolidateAfter", "0s"))
                    goto fail;
                text_add(&before, ", consolidateAfter: Never");
                text_add(&after, ", consolidateAfter: 0s");
            }
        }
        else {
            continue;
        }
        any = true;
    }
    if (any)
        return body;
fail:
    cJSON_Delete(body);
    return NULL;
}

/* FNV-1a: a short, stable suffix for names that have to be cut. */
static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

char *tl_np_rec_name(const char *pool)
{
    size_t prefix = strlen(REC_PREFIX);
    size_t n = strlen(pool);
    char *out = malloc(REC_NAME_MAX + 1);
    if (!out)
        return NULL;
    if (prefix + n <= REC_NAME_MAX) {
        snprintf(out, REC_NAME_MAX + 1, "%s%s", REC_PREFIX, pool);
        return out;
    }
    /* "nodepool-" + as much of the name as fits + "-" + 8 hex digits; the cut must not end in
     * a dot or dash, which a DNS subdomain refuses before the "-". */
    size_t keep = REC_NAME_MAX - prefix - 9;
    while (keep > 0 && (pool[keep - 1] == '.' || pool[keep - 1] == '-'))
        keep--;
    snprintf(out, REC_NAME_MAX + 1, "%s%.*s-%08x", REC_PREFIX, (int)keep, pool, fnv1a(pool));
    return out;
}

/* ---- The reconciler ---- */

/* One reconcile in flight: what the callbacks need after the loop comes back. */
struct job {
    struct tl_operator *op;
    char *key;
    char *name;
    char *rec_name;
    char pool_uid[128];
    char resource_version[64];
    cJSON *status;   /* desired status */
    cJSON *previous; /* status as last seen, or NULL */
    struct tl_np_action action;
    char from[TEXT_MAX];
    char to[TEXT_MAX];
};

static void job_free(struct job *job)
{
    if (!job)
        return;
    free(job->key);
    free(job->name);
    free(job->rec_name);
    cJSON_Delete(job->status);
    cJSON_Delete(job->previous);
    free(job);
}

static void job_finish(struct job *job, enum tl_err result)
{
    struct tl_operator *op = job->op;
    double again = job->action.requeue_after;
    tl_operator_finish(op, job->key, result);
    if (result == TL_OK && again > 0 && !op->stopping)
        tl_workqueue_add_after(op->queue, job->key, again);
    job_free(job);
}

static enum tl_err result_error(const struct job *job, const struct tl_kube_result *res,
                                const char *what)
{
    if (res->err == TL_OK || res->err == TL_ECONFLICT) {
        if (res->err == TL_ECONFLICT)
            TL_DEBUG(what, TL_STR("nodepool", job->name), TL_INT("code", 409));
        return res->err;
    }
    TL_WARN(what, TL_STR("nodepool", job->name), TL_STR("recommendation", job->rec_name),
            TL_INT("code", res->code),
            TL_STR("reason", res->status && res->status->message ? res->status->message
                                                                 : tl_strerror(res->err)));
    return res->err;
}

static void emit_events(struct job *job)
{
    const struct tl_np_action *a = &job->action;
    if (!a->event_reason)
        return;
    struct tl_event ev = {.regarding = {.api_version = "tailor.dev/v1alpha1",
                                        .kind = "Recommendation",
                                        .ns = job->op->opts->namespace,
                                        .name = job->rec_name},
                          .type = a->event_type,
                          .reason = a->event_reason,
                          .action = a->event_action,
                          .note = a->note};
    tl_recorder_emit(job->op->recorder, &ev);
    struct tl_event pool_event = ev;
    pool_event.regarding.api_version = "karpenter.sh/v1";
    pool_event.regarding.kind = "NodePool";
    pool_event.regarding.ns = NULL;
    pool_event.regarding.name = job->name;
    pool_event.regarding.uid = job->pool_uid[0] ? job->pool_uid : NULL;
    tl_recorder_emit(job->op->recorder, &pool_event);
    TL_INFO(a->note, TL_STR("nodepool", job->name), TL_STR("reason", a->event_reason));
}

static void on_status_written(void *arg, struct tl_kube_result *res)
{
    struct job *job = arg;
    enum tl_err result = result_error(job, res, "nodepool recommendation status update failed");
    if (result == TL_OK)
        job->op->stats.writes++;
    job_finish(job, result);
}

/* PUT /status with the resourceVersion read: a stale cache gets 409 and a retry. */
static void write_status(struct job *job)
{
    struct tl_operator *op = job->op;
    cJSON *body = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(body, "metadata");
    enum tl_err result = TL_ENOMEM;
    if (body && meta && add_string(body, "apiVersion", "tailor.dev/v1alpha1") &&
        add_string(body, "kind", "Recommendation") && add_string(meta, "name", job->rec_name) &&
        add_string(meta, "namespace", op->opts->namespace) &&
        add_string(meta, "resourceVersion", job->resource_version) &&
        tl_json_member_set(body, "status", tl_json_dup(job->status)) == TL_OK)
        result = tl_kube_update_status(op->client, &op->rec_resource, op->opts->namespace,
                                       job->rec_name, body, on_status_written, job, NULL);
    cJSON_Delete(body);
    if (result != TL_OK)
        job_finish(job, result);
}

static void on_created(void *arg, struct tl_kube_result *res)
{
    struct job *job = arg;
    enum tl_err result = result_error(job, res, "nodepool recommendation create failed");
    const cJSON *rv = tl_json_get(res->body, "metadata", "resourceVersion", NULL);
    if (result == TL_OK && !cJSON_IsString(rv))
        result = TL_EINVAL;
    if (result != TL_OK) {
        job_finish(job, result);
        return;
    }
    job->op->stats.writes++;
    TL_INFO("recommendation created", TL_STR("ns", job->op->opts->namespace),
            TL_STR("name", job->rec_name));
    snprintf(job->resource_version, sizeof(job->resource_version), "%s", rv->valuestring);
    write_status(job);
}

static void on_deleted(void *arg, struct tl_kube_result *res)
{
    struct job *job = arg;
    /* NotFound is success: the garbage collector (the NodePool owns it) may have been first. */
    enum tl_err result = res->err == TL_ENOTFOUND
                             ? TL_OK
                             : result_error(job, res, "nodepool recommendation delete failed");
    if (result == TL_OK)
        TL_INFO("recommendation removed", TL_STR("ns", job->op->opts->namespace),
                TL_STR("name", job->rec_name));
    job_finish(job, result);
}

static void on_policy_patched(void *arg, struct tl_kube_result *res)
{
    struct job *job = arg;
    /* The update event of the patched object queues the status write that follows. */
    job_finish(job, result_error(job, res, "nodepool recommendation spec update failed"));
}

static void on_applied(void *arg, struct tl_kube_result *res)
{
    struct job *job = arg;
    bool ok = res->err == TL_OK;
    char why[400];
    snprintf(why, sizeof(why), "HTTP %ld: %s", res->code,
             res->status && res->status->message ? res->status->message : tl_strerror(res->err));
    if (ok) {
        job->op->stats.writes++;
        tl_operator_observe_action(job->op, "apply");
    }
    else {
        result_error(job, res, "writing the NodePool failed");
        job->action.requeue_after = FAILED_RETRY;
    }
    tl_np_record_apply(job->status, job->previous, &job->action, ok, ok ? NULL : why, job->from,
                       job->to, ev_now(job->op->loop));
    emit_events(job);
    write_status(job);
}

/* Server-side apply of the fields the advice names, as field manager tailor, taking them over. */
static void write_nodepool(struct job *job, const struct tl_nodepool_spec *spec,
                           const struct tl_plan_result *plan)
{
    struct tl_kube_resource res;
    cJSON *body = tl_np_apply_body(job->name, spec, plan, job->from, sizeof(job->from), job->to,
                                   sizeof(job->to));
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    enum tl_err result =
        text ? tl_kube_resource_builtin("karpenter.sh/v1", "nodepools", &res) : TL_ENOMEM;
    if (result == TL_OK)
        result = tl_kube_patch(job->op->client, &res, NULL, job->name, NULL, TL_KUBE_PATCH_APPLY,
                               text, strlen(text), true, on_applied, job, NULL);
    cJSON_free(text);
    if (result != TL_OK)
        job_finish(job, result);
}

static cJSON *rec_object(const struct job *job, const char *policy_ns, const char *policy_name)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(obj, "metadata");
    cJSON *labels = cJSON_AddObjectToObject(meta, "labels");
    cJSON *owners = cJSON_AddArrayToObject(meta, "ownerReferences");
    cJSON *owner = cJSON_CreateObject();
    cJSON *spec = cJSON_AddObjectToObject(obj, "spec");
    cJSON *target = cJSON_AddObjectToObject(spec, "targetRef");
    cJSON *policy = cJSON_AddObjectToObject(spec, "policyRef");
    bool linked = owners && owner && cJSON_AddItemToArray(owners, owner);
    bool ok = obj && meta && labels && linked && spec && target && policy &&
              add_string(obj, "apiVersion", "tailor.dev/v1alpha1") &&
              add_string(obj, "kind", "Recommendation") &&
              add_string(meta, "name", job->rec_name) &&
              add_string(meta, "namespace", job->op->opts->namespace) &&
              add_string(labels, "app.kubernetes.io/managed-by", "tailor") &&
              /* A cluster-scoped owner of a namespaced dependent is allowed: the garbage
               * collector removes the Recommendation with its NodePool. No blockOwnerDeletion:
               * that would need rights on the NodePool's finalizers. */
              add_string(owner, "apiVersion", "karpenter.sh/v1") &&
              add_string(owner, "kind", "NodePool") && add_string(owner, "name", job->name) &&
              add_string(owner, "uid", job->pool_uid) &&
              add_string(target, "apiVersion", "karpenter.sh/v1") &&
              add_string(target, "kind", "NodePool") && add_string(target, "name", job->name) &&
              add_string(policy, "name", policy_name) && add_string(policy, "namespace", policy_ns);
    if (!ok) {
        if (!linked)
            cJSON_Delete(owner);
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

/* The policy that plans a NodePool: NodePools are resolved like workloads (docs/api.md,
 * "Overlap") among the policies in the operator's namespace that set nodePools. */
struct pick {
    const char *ns;
    const struct tl_labels *labels;
    const struct tl_kube_store_item *best;
};

static int compare_policies(const struct tl_kube_store_item *a, const struct tl_kube_store_item *b)
{
    const struct tl_policy_obj *pa = a->proj;
    const struct tl_policy_obj *pb = b->proj;
    size_t ta = pa->policy.node_pools.selector.count;
    size_t tb = pb->policy.node_pools.selector.count;
    if (ta != tb)
        return ta > tb ? -1 : 1;
    int by_age = strcmp(pa->created ? pa->created : "", pb->created ? pb->created : "");
    return by_age != 0 ? by_age : strcmp(a->name, b->name);
}

static bool visit_policy(void *arg, const struct tl_kube_store_item *item)
{
    struct pick *pick = arg;
    const struct tl_policy_obj *obj = item->proj;
    if (!obj || !obj->valid || !obj->policy.node_pools.enabled ||
        strcmp(item->namespace, pick->ns) != 0 ||
        !tl_selector_matches(&obj->policy.node_pools.selector, pick->labels))
        return true;
    if (!pick->best || compare_policies(item, pick->best) < 0)
        pick->best = item;
    return true;
}

static bool synced(const struct tl_operator *op)
{
    return op->nodepools && op->nodes && op->pods && tl_informer_has_synced(op->nodepools) &&
           tl_informer_has_synced(op->nodes) && tl_informer_has_synced(op->pods);
}

/* Plans the pool and, for narrowed requirements, the fleet they lead to. */
static enum tl_err plan_pool(struct tl_operator *op, const char *name,
                             const struct tl_np_pool *pool, const struct tl_policy *policy,
                             struct tl_np_input *input, struct tl_plan_result *plan, bool *planned,
                             struct tl_plan_result *narrowed, bool *have_narrowed, char *problem,
                             size_t problem_len)
{
    const char *region = policy->pricing.region ? policy->pricing.region : "us-east-1";
    struct tl_np_caches caches = {.pods = tl_informer_store(op->pods),
                                  .nodes = tl_informer_store(op->nodes),
                                  .recs = tl_informer_store(op->recs)};
    for (int i = 0; i < 3; i++)
        caches.workloads[i] = tl_informer_store(op->workloads[i]);
    enum tl_err result = tl_np_input_build(&caches, name, input);
    if (result != TL_OK)
        return result;
    struct tl_plan_input in;
    tl_nodepool_plan_input_defaults(&in);
    in.region = region;
    in.nodepool = &pool->spec;
    in.pods = input->pods;
    in.npods = input->npods;
    in.nodes = input->nodes;
    in.nnodes = input->nnodes;
    in.max_cost_increase_percent = policy->node_pools.max_cost_increase_percent;
    result = tl_nodepool_plan_compute(&in, plan);
    if (result == TL_ENOMEM)
        return result;
    if (result == TL_ENOTFOUND) {
        snprintf(problem, problem_len,
                 "The NodePool cannot be planned: spec.pricing.region %s is not in the price "
                 "catalog.",
                 region);
        return TL_OK;
    }
    if (result != TL_OK) {
        snprintf(problem, problem_len, "The NodePool cannot be planned in %s: %s.", region,
                 tl_strerror(result));
        return TL_OK;
    }
    *planned = true;
    const struct tl_plan_change *req = advised_change(plan, TL_PLAN_CHANGE_REQUIREMENTS);
    if (!req)
        return TL_OK;
    /* The fleet Karpenter reaches once the narrowed requirements (and limits) are in. */
    struct tl_nodepool_spec spec;
    result = tl_nodepool_spec_copy(&pool->spec, &spec);
    if (result != TL_OK)
        return result;
    tl_nodepool_reqs_free(&spec.reqs);
    result = tl_nodepool_reqs_copy(&req->requirements, &spec.reqs);
    const struct tl_plan_change *lim = advised_change(plan, TL_PLAN_CHANGE_LIMITS);
    if (lim) {
        spec.limit_cpu_milli = lim->limit_cpu_milli;
        spec.limit_memory_bytes = lim->limit_memory_bytes;
        spec.limit_nodes = lim->limit_nodes;
    }
    in.nodepool = &spec;
    if (result == TL_OK)
        result = tl_nodepool_plan_compute(&in, narrowed);
    tl_nodepool_spec_free(&spec);
    if (result == TL_OK)
        *have_narrowed = true;
    return result == TL_ENOMEM ? result : TL_OK;
}

/* Whether the Recommendation's policyRef is the policy's. */
static bool same_policy(const struct tl_rec_obj *rec, const struct tl_kube_store_item *policy)
{
    return rec->policy_ns && rec->policy_name && strcmp(rec->policy_ns, policy->namespace) == 0 &&
           strcmp(rec->policy_name, policy->name) == 0;
}

/* Writes what the reconcile decided: create, fix policyRef, write the NodePool, or the status. */
static void act(struct job *job, const struct tl_kube_store_item *ritem,
                const struct tl_kube_store_item *policy, const struct tl_np_pool *pool,
                const struct tl_plan_result *plan)
{
    struct tl_operator *op = job->op;
    const struct tl_rec_obj *rec = ritem ? ritem->proj : NULL;
    enum tl_err result = TL_OK;
    if (!rec) {
        cJSON *obj = rec_object(job, policy->namespace, policy->name);
        result = obj ? tl_kube_create(op->client, &op->rec_resource, op->opts->namespace, obj,
                                      on_created, job, NULL)
                     : TL_ENOMEM;
        cJSON_Delete(obj);
        if (result != TL_OK)
            job_finish(job, result);
        return;
    }
    snprintf(job->resource_version, sizeof(job->resource_version), "%s", ritem->resource_version);
    if (!same_policy(rec, policy)) {
        char patch[600];
        int n = snprintf(patch, sizeof(patch),
                         "{\"spec\":{\"policyRef\":{\"namespace\":\"%s\",\"name\":\"%s\"}}}",
                         policy->namespace, policy->name);
        result = n > 0 && (size_t)n < sizeof(patch)
                     ? tl_kube_patch(op->client, &op->rec_resource, op->opts->namespace,
                                     job->rec_name, NULL, TL_KUBE_PATCH_MERGE, patch, (size_t)n,
                                     false, on_policy_patched, job, NULL)
                     : TL_EINVAL;
        if (result != TL_OK)
            job_finish(job, result);
        return;
    }
    if (job->action.apply) {
        write_nodepool(job, &pool->spec, plan);
        return;
    }
    if (job->previous && tl_json_equal(job->previous, job->status)) {
        op->stats.status_writes_skipped++;
        job_finish(job, TL_OK);
        return;
    }
    emit_events(job); /* a decision is new when the status it wrote is */
    write_status(job);
}

static struct job *job_new(struct tl_operator *op, const char *key)
{
    struct job *job = calloc(1, sizeof(*job));
    if (!job)
        return NULL;
    job->op = op;
    job->key = strdup(key);
    job->name = strdup(key + strlen(TL_KEY_NODEPOOL_PREFIX));
    job->rec_name = job->name ? tl_np_rec_name(job->name) : NULL;
    if (!job->key || !job->name || !job->rec_name) {
        job_free(job);
        return NULL;
    }
    return job;
}

void tl_reconcile_nodepool(struct tl_operator *op, const char *key)
{
    if (!synced(op)) {
        tl_operator_finish(op, key, TL_OK);
        if (!op->stopping)
            tl_workqueue_add_after(op->queue, key, SYNC_RETRY);
        return;
    }
    struct job *job = job_new(op, key);
    if (!job) {
        tl_operator_finish(op, key, TL_ENOMEM);
        return;
    }
    const char *ns = op->opts->namespace;
    const struct tl_kube_store_item *pitem = tl_informer_get(op->nodepools, "", job->name);
    const struct tl_np_pool *pool = pitem ? pitem->proj : NULL;
    const struct tl_kube_store_item *ritem = tl_informer_get(op->recs, ns, job->rec_name);
    const struct tl_rec_obj *rec = ritem ? ritem->proj : NULL;
    struct pick pick = {ns, pool ? &pool->labels : NULL, NULL};
    if (pool)
        tl_kube_store_foreach(tl_informer_store(op->policies), visit_policy, &pick);
    if (!pool || !pick.best) {
        /* Not selected (any more): remove the Recommendation this controller made for it. */
        if (rec && rec->target_kind && strcmp(rec->target_kind, "NodePool") == 0 &&
            rec->target_name && strcmp(rec->target_name, job->name) == 0) {
            enum tl_err result = tl_kube_delete(op->client, &op->rec_resource, ns, job->rec_name,
                                                NULL, on_deleted, job, NULL);
            if (result != TL_OK)
                job_finish(job, result);
            return;
        }
        job_finish(job, TL_OK);
        return;
    }
    if (rec && (!rec->target_kind || strcmp(rec->target_kind, "NodePool") != 0 ||
                !rec->target_name || strcmp(rec->target_name, job->name) != 0)) {
        /* Not ours: the name is taken by a Recommendation for something else. */
        TL_WARN("a Recommendation of that name targets something else; not planning the NodePool",
                TL_STR("nodepool", job->name), TL_STR("recommendation", job->rec_name));
        job_finish(job, TL_OK);
        return;
    }
    snprintf(job->pool_uid, sizeof(job->pool_uid), "%s", pitem->uid);
    const struct tl_policy_obj *pobj = pick.best->proj;
    const struct tl_policy *policy = &pobj->policy;
    struct tl_np_input input;
    struct tl_plan_result plan;
    struct tl_plan_result narrowed;
    memset(&input, 0, sizeof(input));
    memset(&plan, 0, sizeof(plan));
    memset(&narrowed, 0, sizeof(narrowed));
    bool planned = false;
    bool have_narrowed = false;
    char problem[700] = "";
    enum tl_err result = TL_OK;
    if (!pool->valid)
        snprintf(problem, sizeof(problem), "The NodePool cannot be planned: %s.",
                 pool->invalid_reason);
    else
        result = plan_pool(op, job->name, pool, policy, &input, &plan, &planned, &narrowed,
                           &have_narrowed, problem, sizeof(problem));
    if (result != TL_OK)
        goto out;
    job->previous = rec && rec->status_json ? cJSON_Parse(rec->status_json) : NULL;
    struct tl_np_status_input sin = {.name = job->name,
                                     .pool = pool,
                                     .plan = planned ? &plan : NULL,
                                     .proposed = have_narrowed ? &narrowed.after_recommended : NULL,
                                     .problem = problem[0] ? problem : NULL,
                                     .region = policy->pricing.region ? policy->pricing.region
                                                                      : "us-east-1",
                                     .input = problem[0] ? NULL : &input,
                                     .previous = job->previous,
                                     .approved_revision = rec ? rec->approved_revision : 0,
                                     .generation = rec ? rec->generation : 1,
                                     .now = ev_now(op->loop)};
    struct tl_np_status_info info;
    job->status = tl_np_status_build(&sin, &info);
    if (!job->status) {
        result = TL_ENOMEM;
        goto out;
    }
    if (rec) {
        char change[TEXT_MAX] = "";
        char unused[TEXT_MAX];
        cJSON *preview = planned ? tl_np_apply_body(job->name, &pool->spec, &plan, unused,
                                                    sizeof(unused), change, sizeof(change))
                                 : NULL;
        cJSON_Delete(preview);
        struct tl_np_remediate_input rin = {.policy = policy,
                                            .info = &info,
                                            .previous = job->previous,
                                            .approved_revision = rec->approved_revision,
                                            .kill_switch = tl_operator_kill_switch(op),
                                            .dry_run = op->opts->dry_run,
                                            .now = ev_now(op->loop),
                                            .change = change};
        tl_np_remediate(&rin, job->status, &job->action);
    }
    act(job, ritem, pick.best, pool, &plan);
    job = NULL;
out:
    tl_np_input_free(&input);
    tl_nodepool_plan_result_free(&plan);
    tl_nodepool_plan_result_free(&narrowed);
    if (job) {
        TL_ERROR("nodepool reconcile failed", TL_STR("nodepool", job->name), TL_ERRF(result));
        job_finish(job, result);
    }
}

/* ---- Informers and queueing ---- */

static void enqueue(struct tl_operator *op, const char *pool, double delay)
{
    if (!pool || !op->synced || op->stopping || !op->leading)
        return; /* the first full pass after sync covers everything */
    char key[300];
    int n = snprintf(key, sizeof(key), "%s%s", TL_KEY_NODEPOOL_PREFIX, pool);
    if (n <= 0 || (size_t)n >= sizeof(key))
        return;
    enum tl_err result = delay > 0 ? tl_workqueue_add_after(op->queue, key, delay)
                                   : tl_workqueue_add(op->queue, key);
    if (result != TL_OK)
        TL_ERROR("cannot queue", TL_STR("key", key), TL_ERRF(result));
}

struct enqueue_walk {
    struct tl_operator *op;
    double delay;
};

static bool enqueue_pool(void *arg, const struct tl_kube_store_item *item)
{
    struct enqueue_walk *w = arg;
    enqueue(w->op, item->name, w->delay);
    return true;
}

static bool enqueue_rec_target(void *arg, const struct tl_kube_store_item *item)
{
    struct enqueue_walk *w = arg;
    const struct tl_rec_obj *rec = item->proj;
    if (rec && rec->target_kind && strcmp(rec->target_kind, "NodePool") == 0)
        enqueue(w->op, rec->target_name, w->delay);
    return true;
}

void tl_nodepool_enqueue_all(struct tl_operator *op)
{
    struct enqueue_walk w = {op, 0};
    if (op->nodepools)
        tl_kube_store_foreach(tl_informer_store(op->nodepools), enqueue_pool, &w);
    if (op->recs)
        tl_kube_store_foreach_namespace(tl_informer_store(op->recs), op->opts->namespace,
                                        enqueue_rec_target, &w);
}

void tl_nodepool_rec_changed(struct tl_operator *op, const struct tl_kube_store_item *item)
{
    const struct tl_rec_obj *rec = item->proj;
    if (!rec || !rec->target_kind)
        return;
    if (strcmp(rec->target_kind, "NodePool") == 0) {
        if (strcmp(item->namespace, op->opts->namespace) == 0)
            enqueue(op, rec->target_name, 0);
        return;
    }
    /* A workload's advice moved: the pools its pods run in plan again, after the burst. */
    struct enqueue_walk w = {op, REPLAN_DELAY};
    if (op->nodepools)
        tl_kube_store_foreach(tl_informer_store(op->nodepools), enqueue_pool, &w);
}

static enum tl_err project_pool(void *arg, const cJSON *obj, void **out)
{
    (void)arg;
    return tl_np_pool_from_json(obj, (struct tl_np_pool **)out);
}

static void free_pool(void *arg, void *proj)
{
    (void)arg;
    tl_np_pool_free(proj);
}

static void pool_changed(void *arg, const struct tl_kube_store_item *item)
{
    enqueue(arg, item->name, 0);
}

static void on_pool_update(void *arg, const struct tl_kube_store_item *old,
                           const struct tl_kube_store_item *item)
{
    (void)old;
    pool_changed(arg, item);
}

static enum tl_err project_node(void *arg, const cJSON *obj, void **out)
{
    (void)arg;
    return tl_np_node_from_json(obj, (struct tl_np_node **)out);
}

static void free_node(void *arg, void *proj)
{
    (void)arg;
    tl_np_node_free(proj);
}

static void node_changed(void *arg, const struct tl_kube_store_item *item)
{
    const struct tl_np_node *node = item->proj;
    if (node)
        enqueue(arg, node->pool, NODE_DELAY);
}

static void on_node_update(void *arg, const struct tl_kube_store_item *old,
                           const struct tl_kube_store_item *item)
{
    const struct tl_np_node *a = old->proj;
    const struct tl_np_node *b = item->proj;
    /* Status heartbeats change nothing the plan reads. */
    if (a && b && (a->pool == NULL) == (b->pool == NULL) &&
        (!a->pool || !strcmp(a->pool, b->pool)) &&
        (a->instance_type == NULL) == (b->instance_type == NULL) &&
        (!a->instance_type || !strcmp(a->instance_type, b->instance_type)) &&
        a->capacity == b->capacity)
        return;
    node_changed(arg, old);
    node_changed(arg, item);
}

static enum tl_err start(struct tl_operator *op, const char *api_version, const char *resource,
                         const struct tl_informer_handlers *handlers,
                         const struct tl_informer_options *opts, struct tl_informer **out)
{
    struct tl_kube_resource res;
    enum tl_err result = tl_kube_resource_builtin(api_version, resource, &res);
    if (result == TL_OK)
        result = tl_informer_create(op->client, &res, opts, handlers, out);
    if (result == TL_OK)
        result = tl_informer_start(*out);
    if (result != TL_OK)
        TL_ERROR("cannot start an informer", TL_STR("resource", resource), TL_ERRF(result));
    return result;
}

enum tl_err tl_nodepool_informers_start(struct tl_operator *op)
{
    struct tl_informer_handlers pools = {.project = project_pool,
                                         .free_proj = free_pool,
                                         .on_add = pool_changed,
                                         .on_update = on_pool_update,
                                         .on_delete = pool_changed,
                                         .arg = op};
    struct tl_informer_handlers nodes = {.project = project_node,
                                         .free_proj = free_node,
                                         .on_add = node_changed,
                                         .on_update = on_node_update,
                                         .on_delete = node_changed,
                                         .arg = op};
    /* Only Karpenter's nodes: the others belong to no NodePool. */
    struct tl_informer_options node_opts = {.label_selector = TL_LABEL_NODEPOOL};
    enum tl_err result = start(op, "karpenter.sh/v1", "nodepools", &pools, NULL, &op->nodepools);
    if (result == TL_OK)
        result = start(op, "v1", "nodes", &nodes, &node_opts, &op->nodes);
    return result;
}

void tl_nodepool_informers_stop(struct tl_operator *op)
{
    tl_informer_destroy(op->nodepools);
    tl_informer_destroy(op->nodes);
    op->nodepools = NULL;
    op->nodes = NULL;
}
