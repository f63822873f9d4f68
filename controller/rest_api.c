#include "rest_api.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dashboard_assets.h"
#include "duration.h"
#include "http.h"
#include "httpd.h"
#include "json.h"
#include "log.h"
#include "operator.h"
#include "rec_status.h"
#include "strmap.h"
#include "usage_query.h"

#define JSON_TYPE        "application/json"
#define MAX_STATUS_BYTES ((size_t)4 << 20)
#define MAX_BODY_BYTES   ((size_t)64 << 10)
#define AUTH_CACHE_TTL   30.0 /* seconds a read's allowed review is reused */
#define AUTH_CACHE_MAX   1024
#define DEFAULT_RANGE    (7 * 86400.0)
#define MIN_RANGE        600.0
#define MAX_RANGE        (90 * 86400.0)
#define MAX_CONTAINERS   64
#define APPROVED_BY      "tailor.dev/approved-by"

/* A read or approval waiting for Kubernetes or Prometheus. */
struct pending;
typedef void (*then_fn)(struct pending *p);

/* What the caller must be allowed to do, asked of a SubjectAccessReview. */
struct access {
    const char *verb;     /* static */
    const char *resource; /* static, in group tailor.dev */
    char ns[254];         /* "" for every namespace */
    char name[254];       /* "" for any name */
};

struct usage_job;

struct pending {
    struct pending *prev;
    struct pending *next;
    struct tl_rest_api *api;
    struct tl_httpd_req *req;  /* NULL once answered */
    struct tl_kube_call *call; /* the Kubernetes call in flight, or NULL */
    unsigned prom_waiting;     /* Prometheus queries in flight */
    char *token;               /* the caller's bearer token, until it is reviewed */
    cJSON *user;               /* TokenReview status.user */
    struct access want;
    bool cache; /* remember an allowed read for AUTH_CACHE_TTL */
    then_fn then;
    tl_httpd_handler_fn read; /* the read to run once allowed */
    int64_t revision;         /* an approval's */
    struct usage_job *usage;
};

/* An allowed read: token + access -> who. Keyed by the token itself, never logged. */
struct allowed {
    double expires;
    char user[256];
};

struct tl_rest_api {
    struct tl_operator *op;
    bool auth_reads;
    struct tl_http *http;
    struct tl_strmap *proms;   /* Prometheus URL -> struct tl_prom */
    struct tl_strmap *allowed; /* token "\n" access -> struct allowed */
    struct pending *pending;
};

/* ---- Small helpers ---- */

static double now_seconds(const struct tl_rest_api *api)
{
    return ev_now(api->op->loop);
}

static void respond_json(struct tl_httpd_req *req, int status, cJSON *doc)
{
    char *text = doc ? tl_json_print(doc) : NULL;
    cJSON_Delete(doc);
    if (!text) {
        tl_httpd_respond_error(req, 500, "out of memory");
        return;
    }
    tl_httpd_respond_owned(req, status, JSON_TYPE, text, strlen(text));
}

static bool add_str(cJSON *obj, const char *key, const char *value)
{
    return value ? cJSON_AddStringToObject(obj, key, value) != NULL
                 : cJSON_AddNullToObject(obj, key) != NULL;
}

static bool add_num(cJSON *obj, const char *key, double value)
{
    return cJSON_AddNumberToObject(obj, key, value) != NULL;
}

/* Monthly dollars rounded to cents, so 0.1 + 0.2 sums do not show 0.30000000000000004. */
static double cents(double usd)
{
    return round(usd * 100) / 100;
}

static cJSON *parse_status(const struct tl_rec_obj *rec)
{
    cJSON *status = NULL;
    if (rec->status_json)
        (void)tl_json_parse(rec->status_json, strlen(rec->status_json), MAX_STATUS_BYTES, &status,
                            NULL, 0);
    return status;
}

static const char *status_str(const cJSON *status, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(status, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Splits "a/b/c" (after a prefix) into at most n parts in buf; the count, or 0 when a part is
 * empty or too long. */
static size_t split_path(const char *path, const char *prefix, char parts[][254], size_t n)
{
    size_t plen = strlen(prefix);
    if (strncmp(path, prefix, plen) != 0)
        return 0;
    const char *p = path + plen;
    size_t count = 0;
    while (*p && count < n) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || len >= 254)
            return 0;
        memcpy(parts[count], p, len);
        parts[count][len] = '\0';
        count++;
        p += len;
        if (*p == '/')
            p++;
        else
            break;
    }
    return *p ? 0 : count;
}

/* ---- Pure pieces ---- */

bool tl_rest_filter_match(const struct tl_rest_filter *f, const char *ns,
                          const struct tl_rec_obj *rec)
{
    if (f->namespace && *f->namespace && strcmp(f->namespace, ns) != 0)
        return false;
    if (f->phase && *f->phase && (!rec->phase || strcasecmp(f->phase, rec->phase) != 0))
        return false;
    if (f->policy && *f->policy) {
        if (!rec->policy_name)
            return false;
        const char *slash = strchr(f->policy, '/');
        if (slash) {
            size_t nslen = (size_t)(slash - f->policy);
            if (!rec->policy_ns || strlen(rec->policy_ns) != nslen ||
                strncmp(rec->policy_ns, f->policy, nslen) != 0 ||
                strcmp(rec->policy_name, slash + 1) != 0)
                return false;
        }
        else if (strcmp(rec->policy_name, f->policy) != 0) {
            return false;
        }
    }
    return !(f->min_savings >= 0 && rec->savings_usd < f->min_savings);
}

cJSON *tl_rest_rec_item(const char *ns, const char *name, const struct tl_rec_obj *rec, bool full)
{
    cJSON *item = cJSON_CreateObject();
    cJSON *status = parse_status(rec);
    bool ok = item != NULL && add_str(item, "namespace", ns) && add_str(item, "name", name);
    cJSON *target = ok ? cJSON_AddObjectToObject(item, "target") : NULL;
    ok = target && add_str(target, "kind", rec->target_kind) &&
         add_str(target, "name", rec->target_name) && add_str(item, "phase", rec->phase) &&
         add_num(item, "revision", (double)rec->revision) &&
         add_num(item, "approvedRevision", (double)rec->approved_revision) &&
         add_str(item, "confidence", status_str(status, "confidence")) &&
         add_num(item, "savings", cents(rec->savings_usd));
    cJSON *display = ok ? cJSON_AddObjectToObject(item, "display") : NULL;
    const cJSON *shown = cJSON_GetObjectItemCaseSensitive(status, "display");
    ok = display && add_str(display, "target", status_str(shown, "target")) &&
         add_str(display, "cpu", status_str(shown, "cpu")) &&
         add_str(display, "memory", status_str(shown, "memory"));
    char policy[512] = "";
    if (rec->policy_ns && rec->policy_name)
        snprintf(policy, sizeof(policy), "%s/%s", rec->policy_ns, rec->policy_name);
    ok = ok && add_str(item, "policy", policy[0] ? policy : NULL) &&
         add_str(item, "explanation", status_str(status, "explanation"));
    if (ok && full) {
        cJSON *spec = cJSON_AddObjectToObject(item, "approval");
        ok = spec && add_num(spec, "approvedRevision", (double)rec->approved_revision) &&
             add_num(spec, "unblockRevision", (double)rec->unblock_revision);
        if (ok && status) {
            ok = tl_json_member_set(item, "status", status) == TL_OK;
            status = NULL; /* taken, even on failure */
        }
        else if (ok) {
            ok = cJSON_AddNullToObject(item, "status") != NULL;
        }
    }
    cJSON_Delete(status);
    if (!ok) {
        cJSON_Delete(item);
        return NULL;
    }
    return item;
}

enum tl_err tl_rest_parse_approval(const char *body, size_t len, int64_t *revision, char *errbuf,
                                   size_t errlen)
{
    cJSON *doc = NULL;
    char why[200];
    enum tl_err result = tl_json_parse(body, len, MAX_BODY_BYTES, &doc, why, sizeof(why));
    if (result != TL_OK) {
        snprintf(errbuf, errlen, "the body must be JSON {\"revision\": N}: %s", why);
        return TL_EINVAL;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "revision");
    int64_t n = 0;
    if (!cJSON_IsObject(doc)) {
        snprintf(errbuf, errlen, "the body must be a JSON object {\"revision\": N}");
        result = TL_EINVAL;
    }
    else if (v == NULL) {
        snprintf(errbuf, errlen, "revision: required (the revision you reviewed)");
        result = TL_EINVAL;
    }
    else if (!cJSON_IsNumber(v) || tl_json_int64(v, NULL, 0, &n) != TL_OK || n < 1) {
        snprintf(errbuf, errlen, "revision: expected a positive integer");
        result = TL_EINVAL;
    }
    cJSON_Delete(doc);
    if (result == TL_OK)
        *revision = n;
    return result;
}

double tl_rest_usage_step(double range, double min_step)
{
    double step = ceil(range / (TL_REST_MAX_POINTS - 1) / 60.0) * 60.0;
    if (min_step < 60)
        min_step = 60;
    return step < min_step ? min_step : step;
}

/* One container's columns while folding: max, sum and count, `points` each, in one block. */
struct column {
    char name[254];
    double *data;
};

static void free_columns(struct column *cols, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(cols[i].data);
}

/* The column of container name, added when new; NULL past MAX_CONTAINERS (*full set) or when
 * out of memory (*full clear). */
static struct column *column_for(struct column *cols, size_t *n, const char *name, size_t points,
                                 bool *full)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(cols[i].name, name) == 0)
            return &cols[i];
    }
    *full = *n >= MAX_CONTAINERS;
    double *data = *full ? NULL : calloc(points * 3, sizeof(double));
    if (!data)
        return NULL;
    struct column *c = &cols[(*n)++];
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->data = data;
    return c;
}

static cJSON *column_array(const struct column *c, bool avg, size_t points)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < points; i++) {
        const double *max = c->data;
        const double *sum = c->data + points;
        const double *count = c->data + 2 * points;
        cJSON *v = count[i] == 0 ? cJSON_CreateNull()
                                 : cJSON_CreateNumber(avg ? sum[i] / count[i] : max[i]);
        if (!v || !cJSON_AddItemToArray(arr, v)) {
            cJSON_Delete(v);
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

static bool count_pod(struct tl_strmap *pods, const char *pod)
{
    return tl_strmap_get(pods, pod) != NULL || tl_strmap_set(pods, pod, (void *)1) == TL_OK;
}

cJSON *tl_rest_usage_fold(const struct tl_prom_result *res, const struct tl_rest_usage_window *w)
{
    struct column cols[MAX_CONTAINERS];
    size_t ncols = 0;
    struct tl_strmap *pods = tl_strmap_create(NULL);
    cJSON *out = NULL;
    bool ok = pods != NULL && w->points > 0 && w->step > 0;
    for (size_t s = 0; ok && s < res->count; s++) {
        const struct tl_prom_series *series = &res->series[s];
        const char *pod = tl_prom_label(series, w->pod_label);
        const char *container = tl_prom_label(series, w->container_label);
        if (!pod || !container || !tl_pod_owner_matches(w->kind, w->workload, pod))
            continue;
        bool full = false;
        struct column *c = column_for(cols, &ncols, container, w->points, &full);
        if (!c && full)
            continue;
        if (!c || !count_pod(pods, pod)) {
            ok = false;
            break;
        }
        double *max = c->data;
        double *sum = c->data + w->points;
        double *count = c->data + 2 * w->points;
        for (size_t i = 0; i < series->npoints; i++) {
            double v = series->points[i].v;
            double at = round((series->points[i].t - w->start) / w->step);
            if (!isfinite(v) || at < 0 || at >= (double)w->points)
                continue;
            size_t k = (size_t)at;
            if (count[k] == 0 || v > max[k])
                max[k] = v;
            sum[k] += v;
            count[k]++;
        }
    }
    if (ok) {
        out = cJSON_CreateObject();
        cJSON *containers = out ? cJSON_CreateObject() : NULL;
        ok = containers && add_num(out, "pods", (double)tl_strmap_size(pods)) &&
             cJSON_AddItemToObject(out, "containers", containers);
        if (!ok)
            cJSON_Delete(containers);
        for (size_t i = 0; ok && i < ncols; i++) {
            cJSON *pair = cJSON_AddObjectToObject(containers, cols[i].name);
            cJSON *max = column_array(&cols[i], false, w->points);
            cJSON *avg = column_array(&cols[i], true, w->points);
            ok = pair && max && avg && cJSON_AddItemToObject(pair, "max", max);
            if (!ok) {
                cJSON_Delete(max);
                cJSON_Delete(avg);
                break;
            }
            ok = cJSON_AddItemToObject(pair, "avg", avg);
            if (!ok)
                cJSON_Delete(avg);
        }
    }
    free_columns(cols, ncols);
    tl_strmap_destroy(pods);
    if (!ok) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

/* ---- Pending requests ---- */

static void on_gone(void *arg, struct tl_httpd_req *req);

static struct pending *pending_new(struct tl_rest_api *api, struct tl_httpd_req *req)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->api = api;
    p->req = req;
    p->next = api->pending;
    if (api->pending)
        api->pending->prev = p;
    api->pending = p;
    tl_httpd_req_on_cancel(req, on_gone, p);
    return p;
}

static void usage_job_free(struct usage_job *job);

/* Frees p's own memory; it must be out of the list already. */
static void pending_release(struct pending *p)
{
    if (p->token) {
        explicit_bzero(p->token, strlen(p->token));
        free(p->token);
    }
    cJSON_Delete(p->user);
    usage_job_free(p->usage);
    free(p);
}

static void pending_free(struct pending *p)
{
    struct tl_rest_api *api = p->api;
    if (p->prev)
        p->prev->next = p->next;
    else
        api->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    pending_release(p);
}

/* Frees p once it is answered and nothing it started is still running. */
static void pending_settle(struct pending *p)
{
    if (p->req == NULL && p->call == NULL && p->prom_waiting == 0)
        pending_free(p);
}

/* Hands p's request back (to answer it or pass it on); p is settled. */
static struct tl_httpd_req *pending_take(struct pending *p)
{
    struct tl_httpd_req *req = p->req;
    p->req = NULL;
    if (req)
        tl_httpd_req_on_cancel(req, NULL, NULL);
    return req;
}

static void pending_error(struct pending *p, int status, const char *message)
{
    struct tl_httpd_req *req = pending_take(p);
    if (req)
        tl_httpd_respond_error(req, status, message);
    pending_settle(p);
}

static void pending_json(struct pending *p, int status, cJSON *doc)
{
    struct tl_httpd_req *req = pending_take(p);
    if (req)
        respond_json(req, status, doc);
    else
        cJSON_Delete(doc);
    pending_settle(p);
}

/* The client went away (or the server stops): answer into the void and stop what can be. */
static void on_gone(void *arg, struct tl_httpd_req *req)
{
    struct pending *p = arg;
    p->req = NULL;
    tl_httpd_respond_error(req, 503, "the client went away");
    if (p->call) {
        tl_kube_call_cancel(p->call);
        p->call = NULL;
    }
    pending_settle(p);
}

/* ---- Who is asking: TokenReview, then SubjectAccessReview ---- */

/* The bearer token of req, or NULL. Borrowed from req. */
static const char *bearer_token(const struct tl_httpd_req *req)
{
    const char *h = tl_httpd_req_header(req, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

static void unauthorized(struct tl_httpd_req *req, const char *message)
{
    (void)tl_httpd_req_add_header(req, "WWW-Authenticate", "Bearer realm=\"tailor\"");
    tl_httpd_respond_error(req, 401, message);
}

static void access_key(const char *token, const struct access *a, char *buf, size_t len)
{
    snprintf(buf, len, "%s\n%s %s %s/%s", token, a->verb, a->resource, a->ns, a->name);
}

static const struct allowed *allowed_get(struct tl_rest_api *api, const char *key)
{
    struct allowed *a = tl_strmap_get(api->allowed, key);
    if (a && a->expires < now_seconds(api)) {
        tl_strmap_remove(api->allowed, key);
        return NULL;
    }
    return a;
}

static void allowed_put(struct tl_rest_api *api, const char *key, const char *user)
{
    if (tl_strmap_size(api->allowed) >= AUTH_CACHE_MAX) {
        tl_strmap_destroy(api->allowed); /* rare: start over rather than track ages */
        api->allowed = tl_strmap_create(free);
        if (!api->allowed)
            return;
    }
    struct allowed *a = calloc(1, sizeof(*a));
    if (!a)
        return;
    a->expires = now_seconds(api) + AUTH_CACHE_TTL;
    snprintf(a->user, sizeof(a->user), "%s", user);
    (void)tl_strmap_set(api->allowed, key, a);
}

static const char *user_name(const struct pending *p)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(p->user, "username");
    return cJSON_IsString(name) ? name->valuestring : "";
}

static enum tl_err post_review(struct pending *p, const char *path, cJSON *body,
                               tl_kube_done_fn done)
{
    char *text = body ? tl_json_print(body) : NULL;
    cJSON_Delete(body);
    if (!text)
        return TL_ENOMEM;
    struct tl_kube_request r = {
        .method = "POST", .path = path, .body = text, .body_len = strlen(text)};
    enum tl_err result = tl_kube_request(p->api->op->client, &r, done, p, &p->call);
    explicit_bzero(text, strlen(text)); /* a TokenReview carries the caller's token */
    free(text);
    return result;
}

static void review_failed(struct pending *p, const char *what, const struct tl_kube_result *res)
{
    char msg[600];
    snprintf(msg, sizeof(msg), "cannot %s: %s", what,
             res->status && res->status->message ? res->status->message : tl_strerror(res->err));
    TL_WARN("API request not authorized: review failed", TL_STR("what", what),
            TL_INT("code", res->code), TL_ERRF(res->err));
    pending_error(p, 502, msg);
}

static void on_access_review(void *arg, struct tl_kube_result *res)
{
    struct pending *p = arg;
    p->call = NULL;
    if (p->req == NULL) {
        pending_settle(p);
        return;
    }
    if (res->err != TL_OK) {
        review_failed(p, "check the caller's permission (SubjectAccessReview)", res);
        return;
    }
    const cJSON *allowed = tl_json_get(res->body, "status", "allowed", NULL);
    if (!cJSON_IsTrue(allowed)) {
        char msg[900];
        if (p->want.ns[0] && p->want.name[0])
            snprintf(msg, sizeof(msg),
                     "user \"%s\" may not %s %s.tailor.dev \"%s\" in namespace "
                     "\"%s\"",
                     user_name(p), p->want.verb, p->want.resource, p->want.name, p->want.ns);
        else if (p->want.ns[0])
            snprintf(msg, sizeof(msg), "user \"%s\" may not %s %s.tailor.dev in namespace \"%s\"",
                     user_name(p), p->want.verb, p->want.resource, p->want.ns);
        else
            snprintf(msg, sizeof(msg), "user \"%s\" may not %s %s.tailor.dev in every namespace",
                     user_name(p), p->want.verb, p->want.resource);
        TL_INFO("API request forbidden", TL_STR("user", user_name(p)), TL_STR("verb", p->want.verb),
                TL_STR("ns", p->want.ns), TL_STR("name", p->want.name));
        pending_error(p, 403, msg);
        return;
    }
    if (p->cache && p->token) {
        char key[1200];
        access_key(p->token, &p->want, key, sizeof(key));
        allowed_put(p->api, key, user_name(p));
    }
    if (p->token) {
        explicit_bzero(p->token, strlen(p->token));
        free(p->token);
        p->token = NULL;
    }
    p->then(p);
}

static cJSON *access_review(const struct pending *p)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *spec = body ? cJSON_CreateObject() : NULL;
    cJSON *attrs = spec ? cJSON_AddObjectToObject(spec, "resourceAttributes") : NULL;
    bool ok = attrs && add_str(body, "apiVersion", "authorization.k8s.io/v1") &&
              add_str(body, "kind", "SubjectAccessReview") &&
              cJSON_AddItemToObject(body, "spec", spec);
    if (!ok)
        cJSON_Delete(spec);
    ok = ok && add_str(spec, "user", user_name(p));
    static const char *const copied[] = {"uid", "groups", "extra"};
    for (size_t i = 0; ok && i < sizeof(copied) / sizeof(copied[0]); i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(p->user, copied[i]);
        if (v)
            ok = tl_json_member_set(spec, copied[i], tl_json_dup(v)) == TL_OK;
    }
    ok = ok && add_str(attrs, "group", "tailor.dev") &&
         add_str(attrs, "resource", p->want.resource) && add_str(attrs, "verb", p->want.verb);
    if (ok && p->want.ns[0])
        ok = add_str(attrs, "namespace", p->want.ns);
    if (ok && p->want.name[0])
        ok = add_str(attrs, "name", p->want.name);
    if (!ok) {
        cJSON_Delete(body);
        return NULL;
    }
    return body;
}

static void on_token_review(void *arg, struct tl_kube_result *res)
{
    struct pending *p = arg;
    p->call = NULL;
    if (p->req == NULL) {
        pending_settle(p);
        return;
    }
    if (res->err != TL_OK) {
        review_failed(p, "review the bearer token (TokenReview)", res);
        return;
    }
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(res->body, "status");
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(status, "user");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(user, "username");
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(status, "authenticated")) ||
        !cJSON_IsString(name) || name->valuestring[0] == '\0') {
        struct tl_httpd_req *req = pending_take(p);
        if (req)
            unauthorized(req, "the bearer token is not valid for this cluster");
        pending_settle(p);
        return;
    }
    p->user = tl_json_dup(user);
    enum tl_err result = p->user
                             ? post_review(p, "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                                           access_review(p), on_access_review)
                             : TL_ENOMEM;
    if (result != TL_OK)
        pending_error(p, 500, tl_strerror(result));
}

/*
 * Starts checking who asks for req and whether they may do want; then(p) runs with p->user set
 * once both reviews agree, or req is answered 401/403/502. Answers 401 at once without a token.
 */
static void authorize(struct tl_rest_api *api, struct tl_httpd_req *req, const struct access *want,
                      bool cache, then_fn then, tl_httpd_handler_fn read)
{
    const char *token = bearer_token(req);
    if (!token) {
        unauthorized(req, "this needs a bearer token: Authorization: Bearer <token>");
        return;
    }
    struct pending *p = pending_new(api, req);
    if (!p) {
        tl_httpd_respond_error(req, 500, "out of memory");
        return;
    }
    p->want = *want;
    p->cache = cache;
    p->then = then;
    p->read = read;
    p->token = strdup(token);
    cJSON *body = cJSON_CreateObject();
    cJSON *spec = body ? cJSON_AddObjectToObject(body, "spec") : NULL;
    bool ok = p->token && spec && add_str(body, "apiVersion", "authentication.k8s.io/v1") &&
              add_str(body, "kind", "TokenReview") && add_str(spec, "token", token);
    if (!ok) {
        cJSON_Delete(body);
        pending_error(p, 500, "out of memory");
        return;
    }
    enum tl_err result =
        post_review(p, "/apis/authentication.k8s.io/v1/tokenreviews", body, on_token_review);
    if (result != TL_OK)
        pending_error(p, 502, tl_strerror(result));
}

/* Runs a read once its caller is allowed: the request goes back to the read's handler. */
static void run_read(struct pending *p)
{
    tl_httpd_handler_fn read = p->read;
    struct tl_rest_api *api = p->api;
    struct tl_httpd_req *req = pending_take(p);
    pending_settle(p);
    if (req)
        read(api, req);
}

/* Reads are open unless --api-auth=reads; then the caller must be allowed want. */
static void guarded_read(struct tl_rest_api *api, struct tl_httpd_req *req,
                         const struct access *want, tl_httpd_handler_fn read)
{
    if (!api->auth_reads) {
        read(api, req);
        return;
    }
    const char *token = bearer_token(req);
    if (token) {
        char key[1200];
        access_key(token, want, key, sizeof(key));
        if (allowed_get(api, key)) {
            read(api, req);
            return;
        }
    }
    authorize(api, req, want, true, run_read, read);
}

static void set_access(struct access *a, const char *verb, const char *resource, const char *ns,
                       const char *name)
{
    a->verb = verb;
    a->resource = resource;
    snprintf(a->ns, sizeof(a->ns), "%s", ns ? ns : "");
    snprintf(a->name, sizeof(a->name), "%s", name ? name : "");
}

/* ---- GET /api/v1/recommendations ---- */

struct listed {
    const char *ns;
    const char *name;
    const struct tl_rec_obj *rec;
};

struct list_walk {
    const struct tl_rest_filter *filter;
    struct listed *items;
    size_t count;
    size_t cap;
    bool failed;
};

static bool collect_rec(void *arg, const struct tl_kube_store_item *item)
{
    struct list_walk *w = arg;
    const struct tl_rec_obj *rec = item->proj;
    if (!rec || (w->filter && !tl_rest_filter_match(w->filter, item->namespace, rec)))
        return true;
    if (w->count == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        struct listed *grown = realloc(w->items, cap * sizeof(*grown));
        if (!grown) {
            w->failed = true;
            return false;
        }
        w->items = grown;
        w->cap = cap;
    }
    w->items[w->count++] = (struct listed){item->namespace, item->name, rec};
    return true;
}

/* Savings, largest first; then namespace and name, so the order is stable. */
static int by_savings(const void *a, const void *b)
{
    const struct listed *x = a;
    const struct listed *y = b;
    if (x->rec->savings_usd != y->rec->savings_usd)
        return x->rec->savings_usd > y->rec->savings_usd ? -1 : 1;
    int c = strcmp(x->ns, y->ns);
    return c ? c : strcmp(x->name, y->name);
}

/* Every cached Recommendation passing filter (NULL: all), sorted. Caller frees *out. */
static enum tl_err list_recs(struct tl_rest_api *api, const struct tl_rest_filter *filter,
                             struct listed **out, size_t *count)
{
    struct list_walk w = {.filter = filter};
    if (api->op->recs)
        tl_kube_store_foreach(tl_informer_store(api->op->recs), collect_rec, &w);
    if (w.failed) {
        free(w.items);
        return TL_ENOMEM;
    }
    if (w.count > 1)
        qsort(w.items, w.count, sizeof(*w.items), by_savings);
    *out = w.items;
    *count = w.count;
    return TL_OK;
}

static bool read_filter(struct tl_httpd_req *req, struct tl_rest_filter *f)
{
    memset(f, 0, sizeof(*f));
    f->namespace = tl_httpd_req_param(req, "namespace");
    f->phase = tl_httpd_req_param(req, "phase");
    f->policy = tl_httpd_req_param(req, "policy");
    f->min_savings = -1;
    const char *min = tl_httpd_req_param(req, "minSavings");
    if (min && *min) {
        char *end = NULL;
        errno = 0;
        double v = strtod(min, &end);
        if (end == min || *end != '\0' || errno != 0 || !isfinite(v)) {
            char msg[300];
            snprintf(msg, sizeof(msg), "minSavings: expected a number of dollars, got \"%.200s\"",
                     min);
            tl_httpd_respond_error(req, 400, msg);
            return false;
        }
        f->min_savings = v;
    }
    return true;
}

static void serve_list(void *arg, struct tl_httpd_req *req)
{
    struct tl_rest_api *api = arg;
    struct tl_rest_filter f;
    if (!read_filter(req, &f))
        return;
    struct listed *items = NULL;
    size_t count = 0;
    cJSON *doc = NULL;
    if (list_recs(api, &f, &items, &count) == TL_OK) {
        doc = cJSON_CreateObject();
        cJSON *arr = doc ? cJSON_AddArrayToObject(doc, "items") : NULL;
        bool ok = arr && add_num(doc, "count", (double)count);
        for (size_t i = 0; ok && i < count; i++) {
            cJSON *item = tl_rest_rec_item(items[i].ns, items[i].name, items[i].rec, false);
            ok = item && cJSON_AddItemToArray(arr, item);
            if (!ok)
                cJSON_Delete(item);
        }
        if (!ok) {
            cJSON_Delete(doc);
            doc = NULL;
        }
    }
    free(items);
    respond_json(req, 200, doc);
}

static void route_list(void *arg, struct tl_httpd_req *req)
{
    struct access a;
    set_access(&a, "list", "recommendations", tl_httpd_req_param(req, "namespace"), NULL);
    guarded_read(arg, req, &a, serve_list);
}

/* ---- GET /api/v1/recommendations/{ns}/{name} ---- */

static void serve_one(void *arg, struct tl_httpd_req *req)
{
    struct tl_rest_api *api = arg;
    char parts[2][254];
    if (split_path(tl_httpd_req_path(req), "/api/v1/recommendations/", parts, 2) != 2) {
        tl_httpd_respond_error(req, 404, "expected /api/v1/recommendations/{namespace}/{name}");
        return;
    }
    const struct tl_kube_store_item *item =
        api->op->recs ? tl_informer_get(api->op->recs, parts[0], parts[1]) : NULL;
    if (!item || !item->proj) {
        char msg[600];
        snprintf(msg, sizeof(msg), "recommendation \"%s\" not found in namespace \"%s\"", parts[1],
                 parts[0]);
        tl_httpd_respond_error(req, 404, msg);
        return;
    }
    respond_json(req, 200, tl_rest_rec_item(item->namespace, item->name, item->proj, true));
}

static void route_one(void *arg, struct tl_httpd_req *req)
{
    char parts[2][254];
    struct access a;
    if (split_path(tl_httpd_req_path(req), "/api/v1/recommendations/", parts, 2) == 2)
        set_access(&a, "get", "recommendations", parts[0], parts[1]);
    else
        set_access(&a, "get", "recommendations", NULL, NULL);
    guarded_read(arg, req, &a, serve_one);
}

/* ---- POST /api/v1/recommendations/{ns}/{name}/approve ---- */

static void on_patched(void *arg, struct tl_kube_result *res)
{
    struct pending *p = arg;
    p->call = NULL;
    if (p->req == NULL) {
        pending_settle(p);
        return;
    }
    if (res->err != TL_OK) {
        char msg[600];
        const char *why =
            res->status && res->status->message ? res->status->message : tl_strerror(res->err);
        snprintf(msg, sizeof(msg), "cannot write the approval: %s", why);
        int code = res->code == 404 || res->code == 409 || res->code == 422 ? (int)res->code : 502;
        pending_error(p, code == 422 ? 400 : code, msg);
        return;
    }
    struct tl_rec_obj *rec = NULL;
    cJSON *doc = NULL;
    if (tl_rec_obj_from_json(res->body, &rec) == TL_OK) {
        doc = tl_rest_rec_item(p->want.ns, p->want.name, rec, true);
        if (doc && !add_str(doc, "approvedBy", user_name(p))) {
            cJSON_Delete(doc);
            doc = NULL;
        }
    }
    tl_rec_obj_free(rec);
    TL_INFO("recommendation approved over HTTP", TL_STR("ns", p->want.ns),
            TL_STR("name", p->want.name), TL_INT("revision", p->revision),
            TL_STR("user", user_name(p)));
    pending_json(p, 200, doc);
}

static void approve_allowed(struct pending *p)
{
    struct tl_operator *op = p->api->op;
    size_t len = 0;
    const char *body = tl_httpd_req_body(p->req, &len);
    char msg[600];
    int64_t revision = 0;
    if (tl_rest_parse_approval(body, len, &revision, msg, sizeof(msg)) != TL_OK) {
        pending_error(p, 400, msg);
        return;
    }
    p->revision = revision;
    const struct tl_kube_store_item *item =
        op->recs ? tl_informer_get(op->recs, p->want.ns, p->want.name) : NULL;
    const struct tl_rec_obj *rec = item ? item->proj : NULL;
    if (!rec) {
        snprintf(msg, sizeof(msg), "recommendation \"%s\" not found in namespace \"%s\"",
                 p->want.name, p->want.ns);
        pending_error(p, 404, msg);
        return;
    }
    if (rec->revision == 0) {
        snprintf(msg, sizeof(msg), "recommendation \"%s\" has no advice to approve yet",
                 p->want.name);
        pending_error(p, 409, msg);
        return;
    }
    if (revision != rec->revision) {
        snprintf(msg, sizeof(msg),
                 "revision %lld is not the current advice of \"%s\": the current revision is "
                 "%lld; review it and approve that one",
                 (long long)revision, p->want.name, (long long)rec->revision);
        pending_error(p, 409, msg);
        return;
    }
    /* One merge patch: the approval and who gave it land together or not at all. */
    cJSON *patch = cJSON_CreateObject();
    cJSON *meta = patch ? cJSON_AddObjectToObject(patch, "metadata") : NULL;
    cJSON *annotations = meta ? cJSON_AddObjectToObject(meta, "annotations") : NULL;
    cJSON *spec = patch ? cJSON_AddObjectToObject(patch, "spec") : NULL;
    cJSON *approval = spec ? cJSON_AddObjectToObject(spec, "approval") : NULL;
    char *text = NULL;
    if (annotations && approval && add_str(annotations, APPROVED_BY, user_name(p)) &&
        add_num(approval, "approvedRevision", (double)revision))
        text = tl_json_print(patch);
    cJSON_Delete(patch);
    if (!text) {
        pending_error(p, 500, "out of memory");
        return;
    }
    enum tl_err result =
        tl_kube_patch(op->client, &op->rec_resource, p->want.ns, p->want.name, NULL,
                      TL_KUBE_PATCH_MERGE, text, strlen(text), false, on_patched, p, &p->call);
    free(text);
    if (result != TL_OK)
        pending_error(p, 502, tl_strerror(result));
}

static void route_approve(void *arg, struct tl_httpd_req *req)
{
    char parts[3][254];
    if (split_path(tl_httpd_req_path(req), "/api/v1/recommendations/", parts, 3) != 3 ||
        strcmp(parts[2], "approve") != 0) {
        tl_httpd_respond_error(req, 404,
                               "expected POST /api/v1/recommendations/{namespace}/{name}/approve");
        return;
    }
    /*
     * An empty body is answered at once, before the asynchronous reviews: httpd dispatches a
     * POST with Content-Length: 0 again when libwebsockets then reports its (empty) body, and a
     * request still waiting for its answer would be handled twice.
     */
    size_t len = 0;
    (void)tl_httpd_req_body(req, &len);
    if (len == 0) {
        tl_httpd_respond_error(req, 400, "the body must be JSON {\"revision\": N}");
        return;
    }
    struct access a;
    set_access(&a, "patch", "recommendations", parts[0], parts[1]);
    authorize(arg, req, &a, false, approve_allowed, NULL);
}

/* ---- GET /api/v1/policies and /api/v1/summary ---- */

struct tally {
    double savings;
    double count;
};

static struct tally *tally_of(struct tl_strmap *map, const char *key)
{
    struct tally *t = tl_strmap_get(map, key);
    if (t)
        return t;
    t = calloc(1, sizeof(*t));
    if (!t || tl_strmap_set(map, key, t) != TL_OK)
        return NULL;
    return t;
}

struct totals {
    struct tl_strmap *by_ns;
    struct tl_strmap *by_policy;
    struct tl_strmap *by_phase;
    double savings;
    double count;
    bool failed;
};

static bool add_to_totals(void *arg, const struct tl_kube_store_item *item)
{
    struct totals *t = arg;
    const struct tl_rec_obj *rec = item->proj;
    if (!rec)
        return true;
    char policy[512] = "";
    if (rec->policy_ns && rec->policy_name)
        snprintf(policy, sizeof(policy), "%s/%s", rec->policy_ns, rec->policy_name);
    struct tally *ns = tally_of(t->by_ns, item->namespace);
    struct tally *pol = policy[0] ? tally_of(t->by_policy, policy) : NULL;
    struct tally *phase = tally_of(t->by_phase, rec->phase ? rec->phase : "Unknown");
    if (!ns || (policy[0] && !pol) || !phase) {
        t->failed = true;
        return false;
    }
    ns->savings += rec->savings_usd;
    ns->count++;
    if (pol) {
        pol->savings += rec->savings_usd;
        pol->count++;
    }
    phase->count++;
    t->savings += rec->savings_usd;
    t->count++;
    return true;
}

static void totals_free(struct totals *t)
{
    tl_strmap_destroy(t->by_ns);
    tl_strmap_destroy(t->by_policy);
    tl_strmap_destroy(t->by_phase);
}

static enum tl_err totals_build(struct tl_rest_api *api, struct totals *t)
{
    memset(t, 0, sizeof(*t));
    t->by_ns = tl_strmap_create(free);
    t->by_policy = tl_strmap_create(free);
    t->by_phase = tl_strmap_create(free);
    if (!t->by_ns || !t->by_policy || !t->by_phase) {
        totals_free(t);
        return TL_ENOMEM;
    }
    if (api->op->recs)
        tl_kube_store_foreach(tl_informer_store(api->op->recs), add_to_totals, t);
    if (t->failed) {
        totals_free(t);
        return TL_ENOMEM;
    }
    return TL_OK;
}

struct tally_entry {
    const char *key;
    const struct tally *tally;
};

struct tally_walk {
    struct tally_entry *entries;
    size_t count;
};

static bool collect_tally(void *arg, const char *key, void *value)
{
    struct tally_walk *w = arg;
    w->entries[w->count++] = (struct tally_entry){key, value};
    return true;
}

static int by_tally_savings(const void *a, const void *b)
{
    const struct tally_entry *x = a;
    const struct tally_entry *y = b;
    if (x->tally->savings != y->tally->savings)
        return x->tally->savings > y->tally->savings ? -1 : 1;
    return strcmp(x->key, y->key);
}

/* [{"<label>": key, "recommendations": n, "monthlySavingsUSD": x}], largest savings first. */
static cJSON *tally_array(const struct tl_strmap *map, const char *label)
{
    size_t n = tl_strmap_size(map);
    struct tally_walk w = {.entries = calloc(n ? n : 1, sizeof(struct tally_entry))};
    cJSON *arr = w.entries ? cJSON_CreateArray() : NULL;
    if (!arr) {
        free(w.entries);
        return NULL;
    }
    tl_strmap_foreach(map, collect_tally, &w);
    qsort(w.entries, w.count, sizeof(*w.entries), by_tally_savings);
    bool ok = true;
    for (size_t i = 0; ok && i < w.count; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            ok = false;
            break;
        }
        ok = add_str(o, label, w.entries[i].key) &&
             add_num(o, "recommendations", w.entries[i].tally->count) &&
             add_num(o, "monthlySavingsUSD", cents(w.entries[i].tally->savings));
    }
    free(w.entries);
    if (!ok) {
        cJSON_Delete(arr);
        return NULL;
    }
    return arr;
}

static bool add_counts(void *arg, const char *key, void *value)
{
    const struct tally *t = value;
    return add_num(arg, key, t->count);
}

static const char *mode_name(enum tl_approval_mode mode)
{
    switch (mode) {
    case TL_APPROVAL_OFF:
        return "Off";
    case TL_APPROVAL_MANUAL:
        return "Manual";
    case TL_APPROVAL_AUTO:
        return "Auto";
    }
    return "Off";
}

struct policy_walk {
    cJSON *items;
    const struct totals *totals;
    bool failed;
};

static bool add_policy(void *arg, const struct tl_kube_store_item *item)
{
    struct policy_walk *w = arg;
    const struct tl_policy_obj *pol = item->proj;
    if (!pol)
        return true;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(w->items, o)) {
        cJSON_Delete(o);
        w->failed = true;
        return false;
    }
    char key[512];
    snprintf(key, sizeof(key), "%s/%s", item->namespace, item->name);
    const struct tally *t = tl_strmap_get(w->totals->by_policy, key);
    bool ok = add_str(o, "namespace", item->namespace) && add_str(o, "name", item->name) &&
              cJSON_AddBoolToObject(o, "valid", pol->valid) &&
              add_str(o, "invalidReason", pol->valid ? NULL : pol->invalid_reason) &&
              add_num(o, "recommendations", t ? t->count : 0) &&
              add_num(o, "monthlySavingsUSD", t ? cents(t->savings) : 0);
    if (ok && pol->valid) {
        const struct tl_policy *p = &pol->policy;
        char history[32] = "";
        (void)tl_duration_format(p->metrics.history_ms, history, sizeof(history));
        ok = add_str(o, "approvalMode", mode_name(p->approval.mode)) &&
             add_str(o, "metricsSource",
                     p->metrics.source == TL_METRICS_SERVER ? "MetricsServer" : "Prometheus") &&
             add_str(o, "history", history);
    }
    cJSON *status = NULL;
    if (ok && pol->status_json)
        (void)tl_json_parse(pol->status_json, strlen(pol->status_json), MAX_STATUS_BYTES, &status,
                            NULL, 0);
    if (ok && status)
        ok = tl_json_member_set(o, "status", status) == TL_OK;
    else if (ok)
        ok = cJSON_AddNullToObject(o, "status") != NULL;
    else
        cJSON_Delete(status);
    if (!ok) {
        w->failed = true;
        return false;
    }
    return true;
}

struct node_ref {
    cJSON *node;
};

static int by_namespace_name(const void *a, const void *b)
{
    const cJSON *x = ((const struct node_ref *)a)->node;
    const cJSON *y = ((const struct node_ref *)b)->node;
    int c = strcmp(status_str(x, "namespace"), status_str(y, "namespace"));
    return c ? c : strcmp(status_str(x, "name"), status_str(y, "name"));
}

/* Sorts an array of objects with string namespace and name, in place. */
static bool sort_by_name(cJSON *arr)
{
    size_t n = tl_json_size(arr);
    if (n < 2)
        return true;
    struct node_ref *items = calloc(n, sizeof(struct node_ref));
    if (!items)
        return false;
    for (size_t i = 0; i < n; i++)
        items[i].node = cJSON_DetachItemFromArray(arr, 0);
    qsort(items, n, sizeof(struct node_ref), by_namespace_name);
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, items[i].node);
    free(items);
    return true;
}

static void serve_policies(void *arg, struct tl_httpd_req *req)
{
    struct tl_rest_api *api = arg;
    struct totals t;
    if (totals_build(api, &t) != TL_OK) {
        tl_httpd_respond_error(req, 500, "out of memory");
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    struct policy_walk w = {.items = doc ? cJSON_AddArrayToObject(doc, "items") : NULL,
                            .totals = &t};
    if (w.items && api->op->policies)
        tl_kube_store_foreach(tl_informer_store(api->op->policies), add_policy, &w);
    if (!w.items || w.failed || !sort_by_name(w.items) ||
        !add_num(doc, "count", (double)tl_json_size(w.items))) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    totals_free(&t);
    respond_json(req, 200, doc);
}

static void route_policies(void *arg, struct tl_httpd_req *req)
{
    struct access a;
    set_access(&a, "list", "optimizationpolicies", NULL, NULL);
    guarded_read(arg, req, &a, serve_policies);
}

struct pool_walk {
    cJSON *items;
    bool failed;
};

/* NodePool Recommendations: their item and the plan (status.nodePool). */
static bool add_pool(void *arg, const struct tl_kube_store_item *item)
{
    struct pool_walk *w = arg;
    const struct tl_rec_obj *rec = item->proj;
    if (!rec || !rec->target_kind || strcmp(rec->target_kind, "NodePool") != 0)
        return true;
    cJSON *o = tl_rest_rec_item(item->namespace, item->name, rec, false);
    cJSON *status = parse_status(rec);
    const cJSON *plan = cJSON_GetObjectItemCaseSensitive(status, "nodePool");
    bool ok = o && cJSON_AddItemToArray(w->items, o);
    if (!ok)
        cJSON_Delete(o);
    if (ok && plan)
        ok = tl_json_member_set(o, "plan", tl_json_dup(plan)) == TL_OK;
    else if (ok)
        ok = cJSON_AddNullToObject(o, "plan") != NULL;
    cJSON_Delete(status);
    w->failed = !ok;
    return ok;
}

static void serve_summary(void *arg, struct tl_httpd_req *req)
{
    struct tl_rest_api *api = arg;
    struct totals t;
    if (totals_build(api, &t) != TL_OK) {
        tl_httpd_respond_error(req, 500, "out of memory");
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON *phases = doc ? cJSON_AddObjectToObject(doc, "byPhase") : NULL;
    bool ok = phases && add_num(doc, "recommendations", t.count) &&
              add_num(doc, "monthlySavingsUSD", cents(t.savings)) &&
              cJSON_AddBoolToObject(doc, "synced", api->op->synced);
    if (ok)
        tl_strmap_foreach(t.by_phase, add_counts, phases);
    cJSON *ns = ok ? tally_array(t.by_ns, "namespace") : NULL;
    ok = ns && cJSON_AddItemToObject(doc, "byNamespace", ns);
    if (!ok)
        cJSON_Delete(ns);
    cJSON *pol = ok ? tally_array(t.by_policy, "policy") : NULL;
    ok = pol && cJSON_AddItemToObject(doc, "byPolicy", pol);
    if (!ok)
        cJSON_Delete(pol);
    struct pool_walk w = {.items = ok ? cJSON_AddArrayToObject(doc, "nodePools") : NULL};
    if (w.items && api->op->recs)
        tl_kube_store_foreach(tl_informer_store(api->op->recs), add_pool, &w);
    if (!ok || !w.items || w.failed || !sort_by_name(w.items)) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    totals_free(&t);
    respond_json(req, 200, doc);
}

static void route_summary(void *arg, struct tl_httpd_req *req)
{
    struct access a;
    set_access(&a, "list", "recommendations", NULL, NULL);
    guarded_read(arg, req, &a, serve_summary);
}

/* ---- GET /api/v1/workloads/{ns}/{kind}/{name}/usage ---- */

enum { Q_CPU, Q_MEMORY, Q_COUNT };

struct usage_arg {
    struct pending *p;
    int which;
};

struct usage_job {
    struct tl_rest_usage_window w;
    char ns[254];
    char name[254];
    char pod_label[128];
    char container_label[128];
    cJSON *doc; /* the answer: everything but the usage columns */
    struct tl_prom_result *results[Q_COUNT];
    struct usage_arg args[Q_COUNT];
    char error[400];
};

static void usage_job_free(struct usage_job *job)
{
    if (job == NULL)
        return;
    for (int i = 0; i < Q_COUNT; i++) {
        tl_prom_result_free(job->results[i]);
        free(job->results[i]);
    }
    cJSON_Delete(job->doc);
    free(job);
}

static bool kind_parse(const char *text, enum tl_workload_kind *out)
{
    static const enum tl_workload_kind kinds[] = {TL_KIND_DEPLOYMENT, TL_KIND_STATEFULSET,
                                                  TL_KIND_DAEMONSET};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        const char *name = tl_workload_kind_name(kinds[i]);
        size_t len = strlen(name);
        /* "Deployment", "deployment" or "deployments" */
        if (strncasecmp(text, name, len) == 0 &&
            (text[len] == '\0' || (text[len] == 's' && text[len + 1] == '\0'))) {
            *out = kinds[i];
            return true;
        }
    }
    return false;
}

/* Prometheus' clients, one per URL, made on first use. Borrowed. */
static struct tl_prom *prom_for(struct tl_rest_api *api, const char *url)
{
    struct tl_prom *prom = tl_strmap_get(api->proms, url);
    if (prom)
        return prom;
    struct tl_prom_options opts = {.url = url};
    prom = tl_prom_create(api->op->loop, api->http, &opts);
    if (!prom || tl_strmap_set(api->proms, url, prom) != TL_OK)
        return NULL; /* tl_strmap_set frees the value on failure */
    return prom;
}

static void prom_free(void *value)
{
    tl_prom_destroy(value);
}

/* {"cpu": cores, "memory": bytes} with null for an unset value. */
static cJSON *resource_pair(double cpu, double memory)
{
    cJSON *o = cJSON_CreateObject();
    bool ok =
        o && (cpu > 0 ? add_num(o, "cpu", cpu) : cJSON_AddNullToObject(o, "cpu") != NULL) &&
        (memory > 0 ? add_num(o, "memory", memory) : cJSON_AddNullToObject(o, "memory") != NULL);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *quantities(const cJSON *obj)
{
    return resource_pair(tl_resource_value(cJSON_GetObjectItemCaseSensitive(obj, "cpu"), false),
                         tl_resource_value(cJSON_GetObjectItemCaseSensitive(obj, "memory"), true));
}

/* The recommended requests and limits of container name in a Recommendation status, or NULL. */
static cJSON *recommended_of(const cJSON *status, const char *name)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status, "containers"))
    {
        const char *cname = status_str(c, "name");
        const cJSON *rec = cJSON_GetObjectItemCaseSensitive(c, "recommended");
        if (!cname || strcmp(cname, name) != 0 || !rec)
            continue;
        cJSON *o = cJSON_CreateObject();
        cJSON *req = quantities(cJSON_GetObjectItemCaseSensitive(rec, "requests"));
        cJSON *lim = quantities(cJSON_GetObjectItemCaseSensitive(rec, "limits"));
        if (o && req && lim && cJSON_AddItemToObject(o, "requests", req)) {
            req = NULL;
            if (cJSON_AddItemToObject(o, "limits", lim))
                return o;
        }
        cJSON_Delete(req);
        cJSON_Delete(lim);
        cJSON_Delete(o);
        return NULL;
    }
    return NULL;
}

static const char *container_type(enum tl_container_type t)
{
    return t == TL_CONTAINER_INIT ? "Init" : t == TL_CONTAINER_SIDECAR ? "Sidecar" : "App";
}

/* One container's entry before its usage columns: name, type, current and recommended. */
static cJSON *container_entry(const struct tl_container *c, const cJSON *status)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *cur = o ? cJSON_AddObjectToObject(o, "current") : NULL;
    bool ok = cur && add_str(o, "name", c->name) && add_str(o, "type", container_type(c->type));
    cJSON *req = ok ? resource_pair(c->resources.cpu_request, c->resources.memory_request) : NULL;
    ok = req && cJSON_AddItemToObject(cur, "requests", req);
    if (!ok)
        cJSON_Delete(req);
    cJSON *lim = ok ? resource_pair(c->resources.cpu_limit, c->resources.memory_limit) : NULL;
    ok = lim && cJSON_AddItemToObject(cur, "limits", lim);
    if (!ok)
        cJSON_Delete(lim);
    cJSON *rec = ok ? recommended_of(status, c->name) : NULL;
    if (ok && rec)
        ok = cJSON_AddItemToObject(o, "recommended", rec);
    else if (ok)
        ok = cJSON_AddNullToObject(o, "recommended") != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* The answer without usage: the grid, and each container's current and recommended values. */
static cJSON *usage_doc(struct tl_rest_api *api, const struct usage_job *job,
                        const struct tl_workload *wl, const char *policy, double range)
{
    const struct tl_rest_usage_window *w = &job->w;
    char *rec_name = tl_rec_name(w->kind, job->name);
    const struct tl_kube_store_item *item =
        rec_name && api->op->recs ? tl_informer_get(api->op->recs, job->ns, rec_name) : NULL;
    free(rec_name);
    cJSON *status = item && item->proj ? parse_status(item->proj) : NULL;
    char range_text[32] = "";
    (void)tl_duration_format((int64_t)(range * 1000), range_text, sizeof(range_text));
    cJSON *doc = cJSON_CreateObject();
    cJSON *times = doc ? cJSON_AddArrayToObject(doc, "timestamps") : NULL;
    cJSON *containers = doc ? cJSON_AddArrayToObject(doc, "containers") : NULL;
    bool ok = times && containers && add_str(doc, "namespace", job->ns) &&
              add_str(doc, "kind", tl_workload_kind_name(w->kind)) &&
              add_str(doc, "name", job->name) && add_str(doc, "policy", policy) &&
              add_str(doc, "range", range_text) && add_num(doc, "start", w->start) &&
              add_num(doc, "end", w->start + w->step * (double)(w->points - 1)) &&
              add_num(doc, "step", w->step) && add_num(doc, "points", (double)w->points);
    for (size_t i = 0; ok && i < w->points; i++) {
        cJSON *t = cJSON_CreateNumber(w->start + w->step * (double)i);
        ok = t && cJSON_AddItemToArray(times, t);
        if (!ok)
            cJSON_Delete(t);
    }
    for (size_t i = 0; ok && i < wl->ncontainers; i++) {
        if (wl->containers[i].type == TL_CONTAINER_INIT)
            continue;
        cJSON *c = container_entry(&wl->containers[i], status);
        ok = c && cJSON_AddItemToArray(containers, c);
        if (!ok)
            cJSON_Delete(c);
    }
    cJSON_Delete(status);
    if (!ok) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

/* Puts the folded columns of one resource into the containers of doc; containers only
 * Prometheus knows (gone from the spec) are added without current or recommended values. */
static bool merge_columns(cJSON *doc, const char *resource, const cJSON *folded)
{
    cJSON *containers = cJSON_GetObjectItemCaseSensitive(doc, "containers");
    const cJSON *cols;
    cJSON_ArrayForEach(cols, cJSON_GetObjectItemCaseSensitive(folded, "containers"))
    {
        cJSON *entry = NULL;
        cJSON *c;
        cJSON_ArrayForEach(c, containers)
        {
            const char *name = status_str(c, "name");
            if (name && strcmp(name, cols->string) == 0)
                entry = c;
        }
        if (!entry) {
            entry = cJSON_CreateObject();
            if (!entry || !cJSON_AddItemToArray(containers, entry)) {
                cJSON_Delete(entry);
                return false;
            }
            if (!add_str(entry, "name", cols->string) || !add_str(entry, "type", "App") ||
                !cJSON_AddNullToObject(entry, "current") ||
                !cJSON_AddNullToObject(entry, "recommended"))
                return false;
        }
        if (tl_json_member_set(entry, resource, tl_json_dup(cols)) != TL_OK)
            return false;
    }
    const cJSON *pods = cJSON_GetObjectItemCaseSensitive(folded, "pods");
    if (!cJSON_GetObjectItemCaseSensitive(doc, "pods") || strcmp(resource, "memory") == 0)
        return tl_json_member_set(doc, "pods", tl_json_dup(pods)) == TL_OK;
    return true;
}

static void usage_finish(struct pending *p)
{
    struct usage_job *job = p->usage;
    if (job->error[0]) {
        pending_error(p, 502, job->error);
        return;
    }
    static const char *const names[Q_COUNT] = {"cpu", "memory"};
    bool ok = true;
    for (int i = 0; ok && i < Q_COUNT; i++) {
        cJSON *folded = tl_rest_usage_fold(job->results[i], &job->w);
        ok = folded && merge_columns(job->doc, names[i], folded);
        cJSON_Delete(folded);
    }
    if (!ok) {
        pending_error(p, 500, "out of memory");
        return;
    }
    cJSON *doc = job->doc;
    job->doc = NULL;
    pending_json(p, 200, doc);
}

static void on_usage_answer(void *arg, enum tl_err err, struct tl_prom_result *result,
                            const char *message)
{
    struct usage_arg *ua = arg;
    struct pending *p = ua->p;
    struct usage_job *job = p->usage;
    p->prom_waiting--;
    if (err == TL_OK)
        job->results[ua->which] = result;
    else if (!job->error[0])
        snprintf(job->error, sizeof(job->error), "Prometheus: %s",
                 message ? message : tl_strerror(err));
    if (p->prom_waiting > 0)
        return;
    if (p->req)
        usage_finish(p);
    else
        pending_settle(p);
}

/* pod=~"<name>.*": the workload's pods by name (pod_owner.h checks each exactly), then the
 * policy's own matchers. A name is a DNS subdomain, so only '.' needs escaping. */
static bool usage_selector(const struct usage_job *job, const char *extra, char *buf, size_t len)
{
    char prefix[160];
    size_t n = 0;
    for (const char *c = job->name; *c && n + 3 < sizeof(prefix) && c - job->name < 50; c++) {
        if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) && *c != '-' && *c != '.')
            return false;
        if (*c == '.') {
            prefix[n++] = '\\';
            prefix[n++] = '\\';
        }
        prefix[n++] = *c;
    }
    prefix[n] = '\0';
    int w = extra && *extra ? snprintf(buf, len, "%s=~\"%s.*\", %s", job->pod_label, prefix, extra)
                            : snprintf(buf, len, "%s=~\"%s.*\"", job->pod_label, prefix);
    return w > 0 && (size_t)w < len;
}

/* The policy sizing a workload, when one does and it is valid. Borrowed from the cache. */
static const struct tl_policy *policy_of(struct tl_operator *op, const char *ns,
                                         enum tl_workload_kind kind, const char *name,
                                         char *policy_key, size_t len)
{
    char key[600];
    snprintf(key, sizeof(key), "%s/%s/%s", ns, tl_workload_kind_name(kind), name);
    const char *value = op->assignment ? tl_strmap_get(op->assignment, key) : NULL;
    if (!value)
        return NULL;
    snprintf(policy_key, len, "%s", value);
    char pns[254];
    snprintf(pns, sizeof(pns), "%s", value);
    char *slash = strchr(pns, '/');
    if (!slash || !op->policies)
        return NULL;
    *slash = '\0';
    const struct tl_kube_store_item *item = tl_informer_get(op->policies, pns, slash + 1);
    const struct tl_policy_obj *pobj = item ? item->proj : NULL;
    return pobj && pobj->valid ? &pobj->policy : NULL;
}

static enum tl_err start_queries(struct pending *p, struct tl_prom *prom,
                                 const struct tl_usage_settings *s)
{
    struct usage_job *job = p->usage;
    char *queries[Q_COUNT] = {NULL, NULL};
    enum tl_err result = tl_usage_query_cpu(s, job->ns, &queries[Q_CPU]);
    if (result == TL_OK)
        result = tl_usage_query_memory(s, job->ns, &queries[Q_MEMORY]);
    double end = job->w.start + job->w.step * (double)(job->w.points - 1);
    for (int i = 0; result == TL_OK && i < Q_COUNT; i++) {
        job->args[i] = (struct usage_arg){p, i};
        result = tl_prom_query_range(prom, queries[i], job->w.start, end, job->w.step,
                                     on_usage_answer, &job->args[i]);
        if (result == TL_OK)
            p->prom_waiting++;
    }
    for (int i = 0; i < Q_COUNT; i++)
        free(queries[i]);
    return result;
}

static void serve_usage(void *arg, struct tl_httpd_req *req)
{
    struct tl_rest_api *api = arg;
    struct tl_operator *op = api->op;
    char parts[4][254];
    enum tl_workload_kind kind;
    char msg[600];
    if (split_path(tl_httpd_req_path(req), "/api/v1/workloads/", parts, 4) != 4 ||
        strcmp(parts[3], "usage") != 0 || !kind_parse(parts[1], &kind)) {
        tl_httpd_respond_error(req, 404,
                               "expected /api/v1/workloads/{namespace}/{Deployment|StatefulSet|"
                               "DaemonSet}/{name}/usage");
        return;
    }
    struct tl_informer *inf = op->workloads[tl_operator_kind_index(kind)];
    const struct tl_kube_store_item *item = inf ? tl_informer_get(inf, parts[0], parts[2]) : NULL;
    if (!item || !item->proj) {
        snprintf(msg, sizeof(msg), "%s \"%s\" not found in namespace \"%s\"",
                 tl_workload_kind_name(kind), parts[2], parts[0]);
        tl_httpd_respond_error(req, 404, msg);
        return;
    }
    char policy_key[512] = "";
    const struct tl_policy *policy =
        policy_of(op, parts[0], kind, parts[2], policy_key, sizeof(policy_key));
    struct tl_usage_settings s;
    if (policy) {
        tl_usage_settings_from_policy(policy, &s);
    }
    else {
        struct tl_usage_settings none;
        memset(&none, 0, sizeof(none));
        tl_usage_settings_resolve(&none, &s);
        s.history = DEFAULT_RANGE;
    }
    const char *url = policy && policy->metrics.prometheus_url ? policy->metrics.prometheus_url
                                                               : op->opts->prometheus_url;
    if (!url || !*url) {
        tl_httpd_respond_error(req, 503,
                               "no Prometheus: set the policy's "
                               "spec.metrics.prometheus.url or --prometheus-url");
        return;
    }
    double range = s.history;
    const char *range_text = tl_httpd_req_param(req, "range");
    if (range_text && *range_text) {
        int64_t ms = 0;
        if (tl_duration_parse(range_text, &ms) != TL_OK || (double)ms / 1000 < MIN_RANGE ||
            (double)ms / 1000 > MAX_RANGE) {
            snprintf(msg, sizeof(msg),
                     "range: expected a duration from 10m to 90d such as \"7d\", got \"%.100s\"",
                     range_text);
            tl_httpd_respond_error(req, 400, msg);
            return;
        }
        range = (double)ms / 1000;
    }
    struct usage_job *job = calloc(1, sizeof(*job));
    struct pending *p = job ? pending_new(api, req) : NULL;
    if (!p) {
        free(job);
        tl_httpd_respond_error(req, 500, "out of memory");
        return;
    }
    p->usage = job;
    snprintf(job->ns, sizeof(job->ns), "%s", parts[0]);
    snprintf(job->name, sizeof(job->name), "%s", parts[2]);
    snprintf(job->pod_label, sizeof(job->pod_label), "%s", s.pod_label);
    snprintf(job->container_label, sizeof(job->container_label), "%s", s.container_label);
    double step = tl_rest_usage_step(range, 60);
    size_t points = (size_t)floor(range / step) + 1;
    if (points > TL_REST_MAX_POINTS)
        points = TL_REST_MAX_POINTS;
    double end = floor(now_seconds(api) / step) * step;
    job->w = (struct tl_rest_usage_window){.kind = kind,
                                           .workload = job->name,
                                           .pod_label = job->pod_label,
                                           .container_label = job->container_label,
                                           .start = end - step * (double)(points - 1),
                                           .step = step,
                                           .points = points};
    /* The CPU rate is taken over the step (an average per point), and over at least 5m so a
     * short step still has samples to rate; memory keeps each step's peak. */
    s.step = step;
    s.rate_window = step < 300 ? 300 : step;
    char selector[1024];
    if (!usage_selector(job, s.extra_selector, selector, sizeof(selector))) {
        pending_error(p, 400, "the workload's name cannot be put in a query");
        return;
    }
    s.extra_selector = selector;
    job->doc = usage_doc(api, job, item->proj, policy_key[0] ? policy_key : NULL, range);
    struct tl_prom *prom = job->doc ? prom_for(api, url) : NULL;
    enum tl_err result = prom ? start_queries(p, prom, &s) : TL_ENOMEM;
    if (result != TL_OK) {
        snprintf(job->error, sizeof(job->error), "cannot query Prometheus: %s",
                 tl_strerror(result));
        if (p->prom_waiting == 0)
            pending_error(p, 500, job->error);
    }
}

static void route_usage(void *arg, struct tl_httpd_req *req)
{
    char parts[4][254];
    struct access a;
    if (split_path(tl_httpd_req_path(req), "/api/v1/workloads/", parts, 4) == 4)
        set_access(&a, "list", "recommendations", parts[0], NULL);
    else
        set_access(&a, "list", "recommendations", NULL, NULL);
    guarded_read(arg, req, &a, serve_usage);
}

/* ---- The WebSocket, start and stop ---- */

/*
 * With --api-auth=reads a watcher must hold a token that was allowed to list every
 * Recommendation within the last AUTH_CACHE_TTL seconds (the dashboard reads the list first).
 * Browsers cannot set headers on a WebSocket, so the token may come as ?access_token=.
 */
static int authorize_watch(void *arg, const struct tl_httpd_req *req)
{
    struct tl_rest_api *api = arg;
    if (!api->auth_reads)
        return 0;
    const char *token = bearer_token(req);
    if (!token)
        token = tl_httpd_req_param(req, "access_token");
    if (!token || !*token)
        return 401;
    struct access a;
    set_access(&a, "list", "recommendations", NULL, NULL);
    char key[1200];
    access_key(token, &a, key, sizeof(key));
    return allowed_get(api, key) ? 0 : 401;
}

void tl_rest_api_notify(struct tl_operator *op, const struct tl_kube_store_item *item)
{
    if (!op->api_httpd || tl_httpd_ws_clients(op->api_httpd, TL_REST_WATCH_PATH) == 0)
        return;
    /* The informer removes a deleted object from the cache before it says so. */
    bool deleted = op->recs && tl_informer_get(op->recs, item->namespace, item->name) != item;
    cJSON *msg = NULL;
    if (!deleted && item->proj) {
        msg = tl_rest_rec_item(item->namespace, item->name, item->proj, false);
        if (msg && !add_str(msg, "type", "changed")) {
            cJSON_Delete(msg);
            msg = NULL;
        }
    }
    else {
        msg = cJSON_CreateObject();
        if (msg &&
            !(add_str(msg, "type", "deleted") && add_str(msg, "namespace", item->namespace) &&
              add_str(msg, "name", item->name))) {
            cJSON_Delete(msg);
            msg = NULL;
        }
    }
    char *text = msg ? tl_json_print(msg) : NULL;
    cJSON_Delete(msg);
    if (text)
        (void)tl_httpd_broadcast(op->api_httpd, TL_REST_WATCH_PATH, text, strlen(text));
    else
        TL_WARN("cannot tell watchers of a recommendation change", TL_STR("ns", item->namespace),
                TL_STR("name", item->name));
    free(text);
}

static void destroy(struct tl_rest_api *api)
{
    tl_strmap_destroy(api->proms); /* no Prometheus callback runs after this */
    struct pending *p = api->pending;
    api->pending = NULL;
    while (p) {
        struct pending *next = p->next;
        struct tl_httpd_req *req = pending_take(p);
        if (req)
            tl_httpd_respond_error(req, 503, "the operator is stopping");
        if (p->call)
            tl_kube_call_cancel(p->call);
        pending_release(p);
        p = next;
    }
    tl_strmap_destroy(api->allowed);
    tl_http_destroy(api->http);
    free(api);
}

enum tl_err tl_rest_api_start(struct tl_operator *op)
{
    if (!op->api_httpd)
        return TL_OK;
    struct tl_rest_api *api = calloc(1, sizeof(*api));
    if (!api)
        return TL_ENOMEM;
    api->op = op;
    api->auth_reads = op->opts->api_auth && strcmp(op->opts->api_auth, "reads") == 0;
    api->http = tl_http_create(op->loop);
    api->proms = tl_strmap_create(prom_free);
    api->allowed = tl_strmap_create(free);
    enum tl_err result = api->http && api->proms && api->allowed ? TL_OK : TL_ENOMEM;
    static const struct {
        const char *method;
        const char *path;
        tl_httpd_handler_fn fn;
    } routes[] = {
        {"GET", "/api/v1/recommendations", route_list},
        {"GET", "/api/v1/recommendations/*", route_one},
        {"POST", "/api/v1/recommendations/*", route_approve},
        {"GET", "/api/v1/policies", route_policies},
        {"GET", "/api/v1/summary", route_summary},
        {"GET", "/api/v1/workloads/*", route_usage},
    };
    for (size_t i = 0; result == TL_OK && i < sizeof(routes) / sizeof(routes[0]); i++)
        result = tl_httpd_route(op->api_httpd, routes[i].method, routes[i].path, routes[i].fn, api);
    struct tl_httpd_ws_opts ws = {.authorize = authorize_watch, .arg = api};
    if (result == TL_OK)
        result = tl_httpd_ws_endpoint(op->api_httpd, TL_REST_WATCH_PATH, &ws);
    if (result == TL_OK)
        result = tl_httpd_static(op->api_httpd, tl_dashboard_files, tl_dashboard_file_count);
    if (result != TL_OK) {
        TL_ERROR("cannot serve the REST API", TL_ERRF(result));
        destroy(api);
        return result;
    }
    op->rest_api = api;
    TL_INFO("serving the REST API and the dashboard", TL_BOOL("auth_reads", api->auth_reads));
    return TL_OK;
}

void tl_rest_api_stop(struct tl_operator *op)
{
    if (op == NULL || op->rest_api == NULL)
        return;
    destroy(op->rest_api);
    op->rest_api = NULL;
}
