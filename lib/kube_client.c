#include "kube_client.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http.h"
#include "kube_creds.h"
#include "kubeconfig.h"
#include "log.h"
#include "ratelimit.h"

#ifndef TL_VERSION
#define TL_VERSION "dev"
#endif

#define UPDATE_RETRY_ATTEMPTS 5

enum call_kind { CALL_HTTP, CALL_UPDATE, CALL_DISCOVER };

/*
 * One call. An HTTP call moves through: (writes only) waiting in the write queue for a token ->
 * in flight -> maybe waiting on retry_timer -> back to the queue or in flight -> done. A composite
 * call (update-with-retry, discovery) owns at most one child HTTP call at a time.
 */
struct tl_kube_call {
    struct tl_kube_client *client;
    struct tl_kube_call *prev, *next; /* every live call */
    enum call_kind kind;
    tl_kube_done_fn done;
    void *arg;
    bool in_callback, cancelled;

    /* CALL_HTTP */
    char *method, *url, *body, *content_type, *what;
    size_t body_len;
    bool write, no_retry;
    double timeout, stall_timeout;
    tl_kube_data_fn on_data;
    unsigned attempts;
    bool auth_retried;
    struct tl_http_request *http_req;
    ev_timer retry_timer;
    bool queued;
    struct tl_kube_call *q_prev, *q_next;
    struct tl_backoff backoff;

    /* composites */
    struct tl_kube_call *child;
    void *state;
};

struct tl_kube_client {
    struct ev_loop *loop;
    struct tl_http *http;
    struct tl_kube_creds *creds;
    struct tl_kube_client_options opts;
    char *server;
    char *namespace;
    char *user_agent; /* "User-Agent: ..." */
    char *proxy;
    char *ca_file, *ca_data, *cert_file, *key_file, *cert_data, *key_data, *server_name;
    size_t ca_data_len, cert_data_len, key_data_len;
    bool insecure;
    struct tl_http_tls tls;
    /* TLS material copied from creds (exec plugins rotate it), by creds generation. */
    char *creds_cert, *creds_key, *creds_ca;
    size_t creds_cert_len, creds_key_len, creds_ca_len;
    unsigned long creds_gen;
    bool creds_copied;
    struct tl_token_bucket bucket;
    ev_timer bucket_timer;
    struct tl_kube_call *calls;
    struct tl_kube_call *q_head, *q_tail; /* writes waiting for a token, FIFO */
    size_t pending;
    unsigned long seed;
};

static void issue(struct tl_kube_call *call);

cJSON *tl_kube_result_take(struct tl_kube_result *res)
{
    cJSON *body = res->body;
    res->body = NULL;
    return body;
}

struct ev_loop *tl_kube_client_loop(const struct tl_kube_client *client)
{
    return client->loop;
}

const char *tl_kube_client_namespace(const struct tl_kube_client *client)
{
    return client->namespace;
}

size_t tl_kube_client_pending(const struct tl_kube_client *client)
{
    return client->pending;
}

/* ---- call bookkeeping ---- */

static struct tl_kube_call *new_call(struct tl_kube_client *client, enum call_kind kind,
                                     tl_kube_done_fn done, void *arg)
{
    struct tl_kube_call *call = calloc(1, sizeof(*call));
    if (!call)
        return NULL;
    call->client = client;
    call->kind = kind;
    call->done = done;
    call->arg = arg;
    call->next = client->calls;
    if (client->calls)
        client->calls->prev = call;
    client->calls = call;
    client->pending++;
    return call;
}

static void unqueue(struct tl_kube_call *call)
{
    struct tl_kube_client *client = call->client;
    if (!call->queued)
        return;
    if (call->q_prev)
        call->q_prev->q_next = call->q_next;
    else
        client->q_head = call->q_next;
    if (call->q_next)
        call->q_next->q_prev = call->q_prev;
    else
        client->q_tail = call->q_prev;
    call->q_prev = call->q_next = NULL;
    call->queued = false;
}

static void free_state(struct tl_kube_call *call);

/* Stops everything the call has running, without callbacks, and frees it. */
static void destroy_call(struct tl_kube_call *call)
{
    struct tl_kube_client *client = call->client;
    if (call->child) {
        struct tl_kube_call *child = call->child;
        call->child = NULL;
        tl_kube_call_cancel(child);
    }
    tl_http_cancel(call->http_req);
    call->http_req = NULL;
    ev_timer_stop(client->loop, &call->retry_timer);
    unqueue(call);
    if (call->prev)
        call->prev->next = call->next;
    else
        client->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    client->pending--;
    free_state(call);
    free(call->method);
    free(call->url);
    free(call->body);
    free(call->content_type);
    free(call->what);
    free(call);
}

void tl_kube_call_cancel(struct tl_kube_call *call)
{
    if (!call)
        return;
    if (call->in_callback) {
        /* Stop the work now; whoever runs the callback frees the struct when it returns. */
        call->cancelled = true;
        if (call->child) {
            struct tl_kube_call *child = call->child;
            call->child = NULL;
            tl_kube_call_cancel(child);
        }
        tl_http_cancel(call->http_req);
        call->http_req = NULL;
        ev_timer_stop(call->client->loop, &call->retry_timer);
        unqueue(call);
        return;
    }
    destroy_call(call);
}

/* Runs the user's callback, then frees the call. */
static void finish(struct tl_kube_call *call, struct tl_kube_result *res)
{
    call->in_callback = true;
    if (call->done && !call->cancelled)
        call->done(call->arg, res);
    call->in_callback = false;
    destroy_call(call);
}

/* ---- the write bucket ---- */

static void pump_writes(struct tl_kube_client *client)
{
    ev_timer_stop(client->loop, &client->bucket_timer);
    while (client->q_head) {
        double wait = tl_token_bucket_take(&client->bucket, ev_now(client->loop));
        if (wait > 0) {
            ev_timer_set(&client->bucket_timer, wait, 0.);
            ev_timer_start(client->loop, &client->bucket_timer);
            return;
        }
        struct tl_kube_call *call = client->q_head;
        unqueue(call);
        issue(call);
    }
}

static void bucket_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
    pump_writes(w->data);
}

static void enqueue_write(struct tl_kube_call *call)
{
    struct tl_kube_client *client = call->client;
    call->queued = true;
    call->q_prev = client->q_tail;
    call->q_next = NULL;
    if (client->q_tail)
        client->q_tail->q_next = call;
    else
        client->q_head = call;
    client->q_tail = call;
    /* Pumped from the loop, never from here: a caller must see its call started first. */
    if (!ev_is_active(&client->bucket_timer)) {
        ev_timer_set(&client->bucket_timer, 0., 0.);
        ev_timer_start(client->loop, &client->bucket_timer);
    }
}

/* ---- one HTTP attempt ---- */

static void fail_now(struct tl_kube_call *call, enum tl_err err)
{
    struct tl_kube_result res = {.err = err, .what = call->what, .retry_after = -1};
    finish(call, &res);
}

static enum tl_err on_http_data(void *arg, long status, const char *data, size_t len)
{
    struct tl_kube_call *call = arg;
    call->in_callback = true;
    enum tl_err result = call->on_data(call->arg, data, len);
    call->in_callback = false;
    if (call->cancelled) {
        /* tl_kube_call_cancel already cancelled the HTTP request; it frees itself. */
        destroy_call(call);
        return TL_ESTATE;
    }
    return result;
}

static void retry_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tl_kube_call *call = w->data;
    if (call->write)
        enqueue_write(call);
    else
        issue(call);
}

static void retry_later(struct tl_kube_call *call, double delay)
{
    ev_timer_stop(call->client->loop, &call->retry_timer);
    ev_timer_set(&call->retry_timer, delay, 0.);
    ev_timer_start(call->client->loop, &call->retry_timer);
}

static void on_http_done(void *arg, enum tl_err err, const struct tl_http_response *resp)
{
    struct tl_kube_call *call = arg;
    struct tl_kube_client *client = call->client;
    call->http_req = NULL; /* freed by tl_http when this returns */
    if (client->opts.observe)
        client->opts.observe(client->opts.observe_arg, call->method ? call->method : "GET",
                             resp ? resp->status : 0);
    bool can_retry = !call->no_retry && call->attempts < client->opts.max_attempts;

    if (err != TL_OK) {
        /* A read may be repeated safely; a write might have happened, so it is not. */
        if (can_retry && !call->write && !call->on_data && err != TL_ETOOBIG) {
            double delay = tl_backoff_next(&call->backoff);
            TL_DEBUG("kube request failed, retrying", TL_STR("what", call->what), TL_ERRF(err),
                     TL_DBL("delay", delay));
            retry_later(call, delay);
            return;
        }
        fail_now(call, err);
        return;
    }
    if (resp == NULL) { /* tl_http answers every success with a response; be sure anyway */
        fail_now(call, TL_EIO);
        return;
    }

    if (resp->status == 401 && client->creds && !call->auth_retried) {
        /* The token may have rotated under us: fetch a fresh one and try once more. */
        call->auth_retried = true;
        tl_kube_creds_invalidate(client->creds);
        issue(call);
        return;
    }

    struct tl_kube_result res = {.code = resp->status, .what = call->what, .retry_after = -1};
    struct tl_kube_status *status = NULL;
    if (resp->status >= 200 && resp->status < 300) {
        res.err = TL_OK;
        if (!call->on_data && resp->body_len > 0) {
            res.body = cJSON_ParseWithLength(resp->body, resp->body_len);
            if (!res.body)
                res.err = TL_EINVAL;
        }
        finish(call, &res);
        cJSON_Delete(res.body);
        return;
    }

    status = tl_kube_status_parse(resp->body, resp->body_len, resp->status);
    if (!status) {
        fail_now(call, TL_ENOMEM);
        return;
    }
    if (can_retry && tl_kube_status_retryable(resp->status)) {
        double delay = tl_backoff_next(&call->backoff);
        double hint = resp->retry_after >= 0 ? resp->retry_after : status->retry_after;
        if (hint >= 0)
            delay = hint < client->opts.retry_after_max ? hint : client->opts.retry_after_max;
        TL_DEBUG("kube request refused, retrying", TL_STR("what", call->what),
                 TL_INT("code", resp->status), TL_DBL("delay", delay));
        tl_kube_status_destroy(status);
        retry_later(call, delay);
        return;
    }
    res.err = tl_kube_status_err(resp->status);
    res.status = status;
    res.retry_after = resp->retry_after >= 0 ? resp->retry_after : status->retry_after;
    finish(call, &res);
    tl_kube_status_destroy(status);
}

static bool copy_pem(char **dst, size_t *dst_len, bool present, const char *pem, size_t len)
{
    char *copy = NULL;
    if (present) {
        copy = malloc(len + 1);
        if (!copy)
            return false;
        memcpy(copy, pem, len);
        copy[len] = '\0';
    }
    free(*dst);
    *dst = copy;
    *dst_len = present ? len : 0;
    return true;
}

/*
 * The credentials' certificates win over the configuration's (they include an exec plugin's).
 * They are copied once per credentials generation: each accessor's result is only good until
 * the next call into creds.
 */
static enum tl_err refresh_tls(struct tl_kube_client *client)
{
    struct tl_kube_creds *creds = client->creds;
    unsigned long gen = tl_kube_creds_generation(creds);
    if (client->creds_copied && gen == client->creds_gen)
        return TL_OK;
    const char *pem = NULL;
    size_t len = 0;
    bool present = tl_kube_creds_client_cert(creds, &pem, &len);
    if (!copy_pem(&client->creds_cert, &client->creds_cert_len, present, pem, len))
        return TL_ENOMEM;
    present = tl_kube_creds_client_key(creds, &pem, &len);
    if (!copy_pem(&client->creds_key, &client->creds_key_len, present, pem, len))
        return TL_ENOMEM;
    present = tl_kube_creds_ca(creds, &pem, &len);
    if (!copy_pem(&client->creds_ca, &client->creds_ca_len, present, pem, len))
        return TL_ENOMEM;
    client->creds_gen = gen;
    client->creds_copied = true;
    return TL_OK;
}

static void issue(struct tl_kube_call *call)
{
    struct tl_kube_client *client = call->client;
    call->attempts++;
    struct tl_http_tls tls = client->tls;
    if (client->creds) {
        enum tl_err result = refresh_tls(client);
        if (result != TL_OK) {
            fail_now(call, result);
            return;
        }
        if (client->creds_cert && client->creds_key) {
            tls.cert_file = tls.key_file = NULL;
            tls.cert_data = client->creds_cert;
            tls.cert_data_len = client->creds_cert_len;
            tls.key_data = client->creds_key;
            tls.key_data_len = client->creds_key_len;
        }
        if (client->creds_ca) {
            tls.ca_file = NULL;
            tls.ca_data = client->creds_ca;
            tls.ca_data_len = client->creds_ca_len;
        }
    }
    char auth[8192];
    const char *headers[6];
    size_t h = 0;
    headers[h++] = "Accept: application/json";
    headers[h++] = client->user_agent;
    if (call->content_type)
        headers[h++] = call->content_type;
    const char *token = client->creds ? tl_kube_creds_token(client->creds) : NULL;
    if (token) {
        int n = snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        if (n < 0 || (size_t)n >= sizeof(auth)) {
            fail_now(call, TL_ETOOBIG);
            return;
        }
        headers[h++] = auth;
    }
    headers[h] = NULL;
    double timeout = call->timeout == 0 ? client->opts.timeout : call->timeout;
    struct tl_http_request_opts o = {
        .method = call->method,
        .url = call->url,
        .headers = headers,
        .body = call->body,
        .body_len = call->body_len,
        .timeout = timeout > 0 ? timeout : 0,
        .connect_timeout = client->opts.connect_timeout,
        .stall_timeout = call->stall_timeout,
        .max_body = client->opts.max_body,
        .tls = &tls,
        .proxy = client->proxy,
        .on_data = call->on_data ? on_http_data : NULL,
        .on_done = on_http_done,
        .arg = call,
    };
    enum tl_err result = tl_http_start(client->http, &o, &call->http_req);
    /* The token's bytes live on in libcurl's copy only; wipe ours. */
    memset(auth, 0, sizeof(auth));
    if (result != TL_OK)
        fail_now(call, result);
}

enum tl_err tl_kube_request(struct tl_kube_client *client, const struct tl_kube_request *req,
                            tl_kube_done_fn done, void *arg, struct tl_kube_call **out)
{
    if (!req->path || req->path[0] != '/' || !done)
        return TL_EINVAL;
    struct tl_kube_call *call = new_call(client, CALL_HTTP, done, arg);
    if (!call)
        return TL_ENOMEM;
    enum tl_err result = TL_ENOMEM;
    const char *method = req->method ? req->method : "GET";
    size_t url_len =
        strlen(client->server) + strlen(req->path) + (req->query ? strlen(req->query) + 1 : 0) + 1;
    size_t what_len = strlen(method) + strlen(req->path) + 2;
    call->method = strdup(method);
    call->url = malloc(url_len);
    call->what = malloc(what_len);
    if (!call->method || !call->url || !call->what)
        goto out;
    int n = snprintf(call->url, url_len, "%s%s%s%s", client->server, req->path,
                     req->query ? "?" : "", req->query ? req->query : "");
    int w = snprintf(call->what, what_len, "%s %s", method, req->path);
    if (n < 0 || (size_t)n >= url_len || w < 0 || (size_t)w >= what_len) {
        result = TL_EINVAL;
        goto out;
    }
    if (req->body) {
        call->body = malloc(req->body_len + 1);
        if (!call->body)
            goto out;
        memcpy(call->body, req->body, req->body_len);
        call->body[req->body_len] = '\0';
        call->body_len = req->body_len;
        const char *type = req->content_type ? req->content_type : "application/json";
        size_t len = strlen(type) + sizeof("Content-Type: ");
        call->content_type = malloc(len);
        if (!call->content_type)
            goto out;
        snprintf(call->content_type, len, "Content-Type: %s", type);
    }
    call->write = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
    call->no_retry = req->no_retry;
    call->timeout = req->timeout;
    call->stall_timeout = req->stall_timeout;
    call->on_data = req->on_data;
    ev_init(&call->retry_timer, retry_fired);
    call->retry_timer.data = call;
    client->seed = client->seed * 6364136223846793005ULL + 1442695040888963407ULL;
    tl_backoff_init(&call->backoff, client->opts.backoff_base, client->opts.backoff_max,
                    client->seed);
    result = TL_OK;
out:
    if (result != TL_OK) {
        destroy_call(call);
        return result;
    }
    /*
     * The first attempt starts on the next loop iteration (through a zero timer) so that done is
     * never called before this function has returned, even when the attempt fails at once.
     */
    if (call->write)
        enqueue_write(call);
    else
        retry_later(call, 0);
    if (out)
        *out = call;
    return TL_OK;
}

/* ---- typed calls ---- */

struct query {
    char buf[4096];
    size_t pos;
    enum tl_err err;
};

static void query_add(struct query *q, const char *key, const char *value)
{
    if (q->err == TL_OK)
        q->err = tl_kube_query_add(q->buf, sizeof(q->buf), &q->pos, key, value);
}

static enum tl_err simple(struct tl_kube_client *client, const char *method,
                          const struct tl_kube_resource *res, const char *ns, const char *name,
                          const char *subresource, const struct query *q, const char *body,
                          size_t body_len, const char *content_type, tl_kube_done_fn done,
                          void *arg, struct tl_kube_call **out)
{
    char path[1024];
    if (q && q->err != TL_OK)
        return q->err;
    enum tl_err result = tl_kube_resource_path(res, ns, name, subresource, path, sizeof(path));
    if (result != TL_OK)
        return result;
    struct tl_kube_request req = {
        .method = method,
        .path = path,
        .query = q && q->pos ? q->buf : NULL,
        .body = body,
        .body_len = body_len,
        .content_type = content_type,
    };
    return tl_kube_request(client, &req, done, arg, out);
}

enum tl_err tl_kube_get(struct tl_kube_client *client, const struct tl_kube_resource *res,
                        const char *ns, const char *name, tl_kube_done_fn done, void *arg,
                        struct tl_kube_call **out)
{
    if (!name)
        return TL_EINVAL;
    return simple(client, "GET", res, ns, name, NULL, NULL, NULL, 0, NULL, done, arg, out);
}

enum tl_err tl_kube_list(struct tl_kube_client *client, const struct tl_kube_resource *res,
                         const char *ns, const struct tl_kube_list_opts *opts, tl_kube_done_fn done,
                         void *arg, struct tl_kube_call **out)
{
    struct query q = {.err = TL_OK};
    if (opts) {
        char limit[32] = "";
        if (opts->limit > 0)
            snprintf(limit, sizeof(limit), "%ld", opts->limit);
        query_add(&q, "labelSelector", opts->label_selector);
        query_add(&q, "fieldSelector", opts->field_selector);
        query_add(&q, "limit", limit);
        query_add(&q, "continue", opts->continue_token);
        query_add(&q, "resourceVersion", opts->resource_version);
        query_add(&q, "resourceVersionMatch", opts->resource_version_match);
    }
    return simple(client, "GET", res, ns, NULL, NULL, &q, NULL, 0, NULL, done, arg, out);
}

static enum tl_err with_body(struct tl_kube_client *client, const char *method,
                             const struct tl_kube_resource *res, const char *ns, const char *name,
                             const char *subresource, const cJSON *obj, tl_kube_done_fn done,
                             void *arg, struct tl_kube_call **out)
{
    char *body = cJSON_PrintUnformatted(obj);
    if (!body)
        return TL_ENOMEM;
    enum tl_err result = simple(client, method, res, ns, name, subresource, NULL, body,
                                strlen(body), NULL, done, arg, out);
    cJSON_free(body);
    return result;
}

enum tl_err tl_kube_create(struct tl_kube_client *client, const struct tl_kube_resource *res,
                           const char *ns, const cJSON *obj, tl_kube_done_fn done, void *arg,
                           struct tl_kube_call **out)
{
    return with_body(client, "POST", res, ns, NULL, NULL, obj, done, arg, out);
}

enum tl_err tl_kube_update(struct tl_kube_client *client, const struct tl_kube_resource *res,
                           const char *ns, const char *name, const cJSON *obj, tl_kube_done_fn done,
                           void *arg, struct tl_kube_call **out)
{
    if (!name)
        return TL_EINVAL;
    return with_body(client, "PUT", res, ns, name, NULL, obj, done, arg, out);
}

enum tl_err tl_kube_update_status(struct tl_kube_client *client, const struct tl_kube_resource *res,
                                  const char *ns, const char *name, const cJSON *obj,
                                  tl_kube_done_fn done, void *arg, struct tl_kube_call **out)
{
    if (!name)
        return TL_EINVAL;
    return with_body(client, "PUT", res, ns, name, "status", obj, done, arg, out);
}

enum tl_err tl_kube_delete(struct tl_kube_client *client, const struct tl_kube_resource *res,
                           const char *ns, const char *name, const char *propagation,
                           tl_kube_done_fn done, void *arg, struct tl_kube_call **out)
{
    if (!name)
        return TL_EINVAL;
    struct query q = {.err = TL_OK};
    query_add(&q, "propagationPolicy", propagation);
    return simple(client, "DELETE", res, ns, name, NULL, &q, NULL, 0, NULL, done, arg, out);
}

enum tl_err tl_kube_patch(struct tl_kube_client *client, const struct tl_kube_resource *res,
                          const char *ns, const char *name, const char *subresource,
                          enum tl_kube_patch_type type, const char *patch, size_t len, bool force,
                          tl_kube_done_fn done, void *arg, struct tl_kube_call **out)
{
    if (!name || !patch)
        return TL_EINVAL;
    const char *content_type;
    struct query q = {.err = TL_OK};
    switch (type) {
    case TL_KUBE_PATCH_MERGE:
        content_type = "application/merge-patch+json";
        break;
    case TL_KUBE_PATCH_JSON:
        content_type = "application/json-patch+json";
        break;
    case TL_KUBE_PATCH_STRATEGIC:
        content_type = "application/strategic-merge-patch+json";
        break;
    case TL_KUBE_PATCH_APPLY:
        content_type = "application/apply-patch+yaml";
        query_add(&q, "fieldManager", "tailor");
        query_add(&q, "force", force ? "true" : NULL);
        break;
    default:
        return TL_EINVAL;
    }
    return simple(client, "PATCH", res, ns, name, subresource, &q, patch, len, content_type, done,
                  arg, out);
}

/* ---- update with retry on conflict ---- */

struct update_state {
    struct tl_kube_resource res;
    char *ns, *name;
    bool status;
    tl_kube_mutate_fn mutate;
    unsigned attempts;
};

struct discover_state {
    char api_version[320];
    char name[64];
    tl_kube_discover_fn done;
};

static void free_state(struct tl_kube_call *call)
{
    if (call->kind == CALL_UPDATE && call->state) {
        struct update_state *st = call->state;
        free(st->ns);
        free(st->name);
    }
    free(call->state);
    call->state = NULL;
}

static void update_got(void *arg, struct tl_kube_result *res);

static void update_put(void *arg, struct tl_kube_result *res)
{
    struct tl_kube_call *call = arg;
    struct update_state *st = call->state;
    call->child = NULL;
    if (res->err == TL_ECONFLICT && st->attempts < UPDATE_RETRY_ATTEMPTS) {
        TL_DEBUG("conflict, reading again", TL_STR("name", st->name),
                 TL_INT("attempt", st->attempts));
        enum tl_err result =
            tl_kube_get(call->client, &st->res, st->ns, st->name, update_got, call, &call->child);
        if (result != TL_OK)
            fail_now(call, result);
        return;
    }
    finish(call, res);
}

static void update_got(void *arg, struct tl_kube_result *res)
{
    struct tl_kube_call *call = arg;
    struct update_state *st = call->state;
    call->child = NULL;
    if (res->err != TL_OK || !cJSON_IsObject(res->body)) {
        if (res->err == TL_OK)
            res->err = TL_EINVAL;
        finish(call, res);
        return;
    }
    st->attempts++;
    bool changed = true;
    call->in_callback = true;
    enum tl_err result = st->mutate(call->arg, res->body, &changed);
    call->in_callback = false;
    if (call->cancelled) {
        destroy_call(call);
        return;
    }
    if (result != TL_OK) {
        struct tl_kube_result failed = {
            .err = result, .code = res->code, .what = res->what, .retry_after = -1};
        finish(call, &failed);
        return;
    }
    if (!changed) {
        finish(call, res);
        return;
    }
    result = (st->status ? tl_kube_update_status : tl_kube_update)(
        call->client, &st->res, st->ns, st->name, res->body, update_put, call, &call->child);
    if (result != TL_OK)
        fail_now(call, result);
}

enum tl_err tl_kube_update_retry(struct tl_kube_client *client, const struct tl_kube_resource *res,
                                 const char *ns, const char *name, bool status,
                                 tl_kube_mutate_fn mutate, tl_kube_done_fn done, void *arg,
                                 struct tl_kube_call **out)
{
    if (!name || !mutate || !done)
        return TL_EINVAL;
    struct tl_kube_call *call = new_call(client, CALL_UPDATE, done, arg);
    if (!call)
        return TL_ENOMEM;
    struct update_state *st = calloc(1, sizeof(*st));
    call->state = st;
    if (!st || !(st->name = strdup(name)) || (ns && !(st->ns = strdup(ns)))) {
        destroy_call(call);
        return TL_ENOMEM;
    }
    st->res = *res;
    st->status = status;
    st->mutate = mutate;
    enum tl_err result = tl_kube_get(client, res, ns, name, update_got, call, &call->child);
    if (result != TL_OK) {
        destroy_call(call);
        return result;
    }
    if (out)
        *out = call;
    return TL_OK;
}

/* ---- discovery ---- */

static void discover_got(void *arg, struct tl_kube_result *res)
{
    struct tl_kube_call *call = arg;
    struct discover_state *st = call->state;
    call->child = NULL;
    struct tl_kube_resource found;
    enum tl_err err = res->err;
    if (err == TL_OK)
        err = tl_kube_resource_from_discovery(res->body, st->api_version, st->name, &found);
    call->in_callback = true;
    if (!call->cancelled)
        st->done(call->arg, err, err == TL_OK ? &found : NULL);
    call->in_callback = false;
    destroy_call(call);
}

enum tl_err tl_kube_discover(struct tl_kube_client *client, const char *api_version,
                             const char *name, tl_kube_discover_fn done, void *arg,
                             struct tl_kube_call **out)
{
    char path[400];
    if (!name || !done)
        return TL_EINVAL;
    enum tl_err result = tl_kube_discovery_path(api_version, path, sizeof(path));
    if (result != TL_OK)
        return result;
    struct tl_kube_call *call = new_call(client, CALL_DISCOVER, NULL, arg);
    if (!call)
        return TL_ENOMEM;
    struct discover_state *st = calloc(1, sizeof(*st));
    call->state = st;
    if (!st) {
        destroy_call(call);
        return TL_ENOMEM;
    }
    int a = snprintf(st->api_version, sizeof(st->api_version), "%s", api_version);
    int b = snprintf(st->name, sizeof(st->name), "%s", name);
    if (a < 0 || (size_t)a >= sizeof(st->api_version) || b < 0 || (size_t)b >= sizeof(st->name)) {
        destroy_call(call);
        return TL_EINVAL;
    }
    st->done = done;
    struct tl_kube_request req = {.path = path};
    result = tl_kube_request(client, &req, discover_got, call, &call->child);
    if (result != TL_OK) {
        destroy_call(call);
        return result;
    }
    if (out)
        *out = call;
    return TL_OK;
}

/* ---- client ---- */

static bool dup_field(char **dst, const char *src)
{
    if (!src)
        return true;
    *dst = strdup(src);
    return *dst != NULL;
}

static bool dup_bytes(char **dst, size_t *dst_len, const char *src, size_t len)
{
    if (!src)
        return true;
    *dst = malloc(len + 1);
    if (!*dst)
        return false;
    memcpy(*dst, src, len);
    (*dst)[len] = '\0';
    *dst_len = len;
    return true;
}

static void apply_defaults(struct tl_kube_client_options *o)
{
    if (o->write_qps == 0)
        o->write_qps = 20;
    if (o->write_burst <= 0)
        o->write_burst = 30;
    if (o->timeout <= 0)
        o->timeout = 60;
    if (o->connect_timeout <= 0)
        o->connect_timeout = 10;
    if (o->max_attempts == 0)
        o->max_attempts = 5;
    if (o->backoff_base <= 0)
        o->backoff_base = 0.5;
    if (o->backoff_max <= 0)
        o->backoff_max = 30;
    if (o->retry_after_max <= 0)
        o->retry_after_max = 120;
}

enum tl_err tl_kube_client_create(struct ev_loop *loop, const struct tl_kube_config *cfg,
                                  struct tl_kube_creds *creds,
                                  const struct tl_kube_client_options *opts,
                                  struct tl_kube_client **out, char *errbuf, size_t errlen)
{
    if (!cfg || !cfg->server || !*cfg->server) {
        snprintf(errbuf, errlen, "kube client: the configuration has no server URL");
        return TL_EINVAL;
    }
    struct tl_kube_client *client = calloc(1, sizeof(*client));
    if (!client)
        goto nomem;
    client->loop = loop;
    client->creds = creds;
    if (opts)
        client->opts = *opts;
    apply_defaults(&client->opts);
    client->seed = opts && opts->seed ? opts->seed : (unsigned long)time(NULL) ^ (uintptr_t)client;
    client->http = tl_http_create(loop);
    const char *agent = opts && opts->user_agent ? opts->user_agent : "tailor/" TL_VERSION;
    size_t agent_len = strlen(agent) + sizeof("User-Agent: ");
    client->user_agent = malloc(agent_len);
    if (client->user_agent)
        snprintf(client->user_agent, agent_len, "User-Agent: %s", agent);
    client->opts.user_agent = NULL; /* borrowed; the copy above is what stays */
    if (!client->http || !client->user_agent || !dup_field(&client->server, cfg->server) ||
        !dup_field(&client->namespace, cfg->namespace ? cfg->namespace : "default") ||
        !dup_field(&client->proxy, cfg->proxy_url) || !dup_field(&client->ca_file, cfg->ca_file) ||
        !dup_field(&client->cert_file, cfg->client_cert_file) ||
        !dup_field(&client->key_file, cfg->client_key_file) ||
        !dup_field(&client->server_name, cfg->tls_server_name) ||
        !dup_bytes(&client->ca_data, &client->ca_data_len, cfg->ca_data, cfg->ca_data_len) ||
        !dup_bytes(&client->cert_data, &client->cert_data_len, cfg->client_cert_data,
                   cfg->client_cert_data_len) ||
        !dup_bytes(&client->key_data, &client->key_data_len, cfg->client_key_data,
                   cfg->client_key_data_len))
        goto nomem;
    /* "https://host:6443/" and "https://host:6443" name the same server. */
    size_t len = strlen(client->server);
    while (len > 0 && client->server[len - 1] == '/')
        client->server[--len] = '\0';
    client->tls = (struct tl_http_tls){
        .ca_file = client->ca_file,
        .ca_data = client->ca_data,
        .ca_data_len = client->ca_data_len,
        .cert_file = client->cert_file,
        .key_file = client->key_file,
        .cert_data = client->cert_data,
        .cert_data_len = client->cert_data_len,
        .key_data = client->key_data,
        .key_data_len = client->key_data_len,
        .insecure = cfg->insecure_skip_tls_verify,
        .server_name = client->server_name,
    };
    tl_token_bucket_init(&client->bucket, client->opts.write_qps, client->opts.write_burst,
                         ev_now(loop));
    ev_init(&client->bucket_timer, bucket_fired);
    client->bucket_timer.data = client;
    *out = client;
    return TL_OK;
nomem:
    tl_kube_client_destroy(client);
    snprintf(errbuf, errlen, "kube client: out of memory");
    return TL_ENOMEM;
}

void tl_kube_client_destroy(struct tl_kube_client *client)
{
    if (!client)
        return;
    /* Composites first: each takes its child along, so no child is freed under its parent. */
    struct tl_kube_call *call = client->calls;
    while (call) {
        if (call->kind != CALL_HTTP) {
            destroy_call(call);
            call = client->calls;
        }
        else {
            call = call->next;
        }
    }
    while (client->calls)
        destroy_call(client->calls);
    ev_timer_stop(client->loop, &client->bucket_timer);
    tl_http_destroy(client->http);
    free(client->server);
    free(client->namespace);
    free(client->user_agent);
    free(client->proxy);
    free(client->ca_file);
    free(client->cert_file);
    free(client->key_file);
    free(client->server_name);
    free(client->ca_data);
    free(client->cert_data);
    free(client->key_data);
    free(client->creds_cert);
    free(client->creds_key);
    free(client->creds_ca);
    free(client);
}
