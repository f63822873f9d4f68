#include "informer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "ratelimit.h"
#include "watch_decoder.h"

/*
 * The reflector loop (client-go tools/cache/reflector.go, trimmed to what we need):
 *
 *   LIST (pages of page_size, into a fresh store) --all pages--> replace the cache, emitting the
 *   difference --> WATCH from the list's resourceVersion, bookmarks on, timeoutSeconds random in
 *   [watch_min, watch_max] so a fleet of informers does not reconnect in step.
 *
 *   A watch that ends cleanly is resumed at once from the last resourceVersion seen (events and
 *   bookmarks both move it). 410 Gone (an HTTP 410, or an ERROR event carrying a 410 Status)
 *   means that version has left the server's watch window: LIST again; the replace diff then
 *   reports every change missed meanwhile, deletes included. Any other failure, and a stream
 *   silent for stall_timeout, reconnects after an exponential backoff with jitter, or after the
 *   server's Retry-After when it sent one. The backoff resets whenever the server delivers.
 */

struct tl_informer {
    struct tl_kube_client *client;
    struct ev_loop *loop;
    struct tl_kube_resource res;
    char *ns, *label_selector, *field_selector;
    struct tl_informer_options opts;
    struct tl_informer_handlers h;
    struct tl_kube_store *store;
    struct tl_kube_store *fresh; /* the list being read */
    char *continue_token;
    struct tl_watch_decoder *dec;
    struct tl_kube_call *call;
    ev_timer timer;
    bool next_is_list;
    char *rv;
    bool started, synced;
    enum tl_err watch_err; /* set by an ERROR event that ended the stream */
    double retry_hint;
    unsigned long watch_events;
    ev_tstamp watch_started;
    struct tl_backoff backoff;
    uint64_t rng;
    struct tl_informer_stats stats;
};

static void start_list(struct tl_informer *inf);
static void start_watch(struct tl_informer *inf);

static double uniform(struct tl_informer *inf, double lo, double hi)
{
    uint64_t x = inf->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    inf->rng = x;
    double unit = (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
    return lo + (hi - lo) * unit;
}

static enum tl_err set_rv(struct tl_informer *inf, const char *rv)
{
    if (!rv || !*rv)
        return TL_OK;
    char *copy = strdup(rv);
    if (!copy)
        return TL_ENOMEM;
    free(inf->rv);
    inf->rv = copy;
    return TL_OK;
}

static void timer_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tl_informer *inf = w->data;
    if (inf->next_is_list)
        start_list(inf);
    else
        start_watch(inf);
}

static void schedule(struct tl_informer *inf, double delay, bool list)
{
    inf->next_is_list = list;
    ev_timer_stop(inf->loop, &inf->timer);
    ev_timer_set(&inf->timer, delay > 0 ? delay : 0., 0.);
    ev_timer_start(inf->loop, &inf->timer);
}

/* After a failure: the server's hint when it gave one, else the next backoff step. */
static double failure_delay(struct tl_informer *inf, double retry_after)
{
    double delay = tl_backoff_next(&inf->backoff);
    if (retry_after >= 0)
        delay = retry_after < 300 ? retry_after : 300;
    return delay;
}

/* Projects obj and puts it into store. A refused object is skipped (and counted), not fatal. */
static enum tl_err put_object(struct tl_informer *inf, struct tl_kube_store *store,
                              const cJSON *obj, struct tl_kube_store_item **old,
                              const struct tl_kube_store_item **item)
{
    struct tl_kube_store_meta meta;
    if (tl_kube_store_meta_from_json(obj, &meta) != TL_OK) {
        inf->stats.skipped++;
        return TL_EINVAL;
    }
    void *proj = NULL;
    if (inf->h.project) {
        enum tl_err result = inf->h.project(inf->h.arg, obj, &proj);
        if (result != TL_OK) {
            inf->stats.skipped++;
            TL_WARN("informer: projection refused an object", TL_STR("resource", inf->res.resource),
                    TL_STR("ns", meta.namespace ? meta.namespace : ""), TL_STR("name", meta.name),
                    TL_ERRF(result));
            return result;
        }
    }
    return tl_kube_store_upsert(store, &meta, proj, old, item);
}

/* ---- list ---- */

static void list_done(void *arg, struct tl_kube_result *res);

static void start_list(struct tl_informer *inf)
{
    if (!inf->fresh) {
        inf->fresh = tl_kube_store_create(inf->h.free_proj, inf->h.arg);
        if (!inf->fresh) {
            schedule(inf, failure_delay(inf, -1), true);
            return;
        }
    }
    struct tl_kube_list_opts lo = {
        .label_selector = inf->label_selector,
        .field_selector = inf->field_selector,
        .continue_token = inf->continue_token,
        .limit = inf->opts.page_size,
    };
    enum tl_err result =
        tl_kube_list(inf->client, &inf->res, inf->ns, &lo, list_done, inf, &inf->call);
    if (result != TL_OK) {
        TL_ERROR("informer: cannot start a list", TL_STR("resource", inf->res.resource),
                 TL_ERRF(result));
        inf->stats.errors++;
        schedule(inf, failure_delay(inf, -1), true);
    }
}

static void restart_list(struct tl_informer *inf)
{
    tl_kube_store_destroy(inf->fresh);
    inf->fresh = NULL;
    free(inf->continue_token);
    inf->continue_token = NULL;
}

static void emit_add(void *arg, const struct tl_kube_store_item *item)
{
    struct tl_informer *inf = arg;
    if (inf->h.on_add)
        inf->h.on_add(inf->h.arg, item);
}

static void emit_update(void *arg, const struct tl_kube_store_item *old,
                        const struct tl_kube_store_item *item)
{
    struct tl_informer *inf = arg;
    if (inf->h.on_update)
        inf->h.on_update(inf->h.arg, old, item);
}

static void emit_delete(void *arg, const struct tl_kube_store_item *old)
{
    struct tl_informer *inf = arg;
    if (inf->h.on_delete)
        inf->h.on_delete(inf->h.arg, old);
}

static void list_done(void *arg, struct tl_kube_result *res)
{
    struct tl_informer *inf = arg;
    inf->call = NULL;
    if (res->err != TL_OK) {
        inf->stats.errors++;
        char detail[256] = "";
        if (res->status)
            tl_kube_status_format(res->status, detail, sizeof(detail));
        TL_WARN("informer: list failed", TL_STR("resource", inf->res.resource), TL_ERRF(res->err),
                TL_INT("code", res->code), TL_STR("detail", detail));
        /* An expired continue token means starting over; anything else too, after a pause. */
        bool gone = res->err == TL_EGONE;
        restart_list(inf);
        schedule(inf, gone ? 0 : failure_delay(inf, res->retry_after), true);
        return;
    }
    inf->stats.pages++;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(res->body, "items"))
    {
        if (put_object(inf, inf->fresh, item, NULL, NULL) == TL_ENOMEM) {
            inf->stats.errors++;
            restart_list(inf);
            schedule(inf, failure_delay(inf, -1), true);
            return;
        }
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(res->body, "metadata");
    const cJSON *cont = cJSON_GetObjectItemCaseSensitive(meta, "continue");
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
    if (cJSON_IsString(cont) && cont->valuestring[0]) {
        char *token = strdup(cont->valuestring);
        if (!token) {
            restart_list(inf);
            schedule(inf, failure_delay(inf, -1), true);
            return;
        }
        free(inf->continue_token);
        inf->continue_token = token;
        start_list(inf);
        return;
    }
    if (!cJSON_IsString(rv) || !rv->valuestring[0] || set_rv(inf, rv->valuestring) != TL_OK) {
        TL_WARN("informer: list without a resourceVersion", TL_STR("resource", inf->res.resource));
        inf->stats.errors++;
        restart_list(inf);
        schedule(inf, failure_delay(inf, -1), true);
        return;
    }
    struct tl_kube_store *fresh = inf->fresh;
    inf->fresh = NULL;
    free(inf->continue_token);
    inf->continue_token = NULL;
    inf->stats.lists++;
    tl_backoff_reset(&inf->backoff);
    TL_DEBUG("informer: listed", TL_STR("resource", inf->res.resource),
             TL_INT("objects", (long long)tl_kube_store_size(fresh)), TL_STR("rv", inf->rv));
    const struct tl_kube_store_events events = {emit_add, emit_update, emit_delete, inf};
    tl_kube_store_replace(inf->store, fresh, &events);
    tl_kube_store_destroy(fresh);
    if (!inf->synced) {
        inf->synced = true;
        if (inf->h.on_synced)
            inf->h.on_synced(inf->h.arg);
    }
    start_watch(inf);
}

/* ---- watch ---- */

static enum tl_err apply_event(struct tl_informer *inf, const char *type, const cJSON *obj)
{
    struct tl_kube_store_meta meta;
    if (tl_kube_store_meta_from_json(obj, &meta) != TL_OK) {
        inf->stats.skipped++;
        return TL_OK;
    }
    if (strcmp(type, "DELETED") == 0) {
        struct tl_kube_store_item *old =
            tl_kube_store_remove(inf->store, meta.namespace, meta.name);
        if (old) {
            emit_delete(inf, old);
            tl_kube_store_item_free(inf->store, old);
        }
    }
    else {
        struct tl_kube_store_item *old = NULL;
        const struct tl_kube_store_item *item = NULL;
        enum tl_err result = put_object(inf, inf->store, obj, &old, &item);
        if (result == TL_ENOMEM)
            return result;
        if (result == TL_OK && old)
            emit_update(inf, old, item);
        else if (result == TL_OK)
            emit_add(inf, item);
        tl_kube_store_item_free(inf->store, old);
    }
    inf->stats.events++;
    return set_rv(inf, meta.resource_version);
}

static enum tl_err on_event(void *arg, const char *type, cJSON *object)
{
    struct tl_informer *inf = arg;
    inf->watch_events++;
    tl_backoff_reset(&inf->backoff);
    if (strcmp(type, "BOOKMARK") == 0) {
        inf->stats.bookmarks++;
        const cJSON *meta = cJSON_GetObjectItemCaseSensitive(object, "metadata");
        const cJSON *rv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
        return cJSON_IsString(rv) ? set_rv(inf, rv->valuestring) : TL_OK;
    }
    if (strcmp(type, "ERROR") == 0) {
        struct tl_kube_status *st = tl_kube_status_from_json(object, 500);
        if (!st)
            return TL_ENOMEM;
        char detail[256];
        tl_kube_status_format(st, detail, sizeof(detail));
        TL_INFO("informer: watch error event", TL_STR("resource", inf->res.resource),
                TL_STR("detail", detail));
        inf->watch_err = tl_kube_status_is_gone(st) ? TL_EGONE : TL_EHTTP;
        inf->retry_hint = st->retry_after;
        tl_kube_status_destroy(st);
        return inf->watch_err; /* ends the stream */
    }
    if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0 || strcmp(type, "DELETED") == 0)
        return apply_event(inf, type, object);
    TL_DEBUG("informer: unknown watch event", TL_STR("type", type));
    return TL_OK;
}

static enum tl_err on_watch_data(void *arg, const char *data, size_t len)
{
    struct tl_informer *inf = arg;
    return tl_watch_decoder_feed(inf->dec, data, len);
}

static void watch_done(void *arg, struct tl_kube_result *res)
{
    struct tl_informer *inf = arg;
    inf->call = NULL;
    enum tl_err err = inf->watch_err != TL_OK ? inf->watch_err : res->err;
    double hint = inf->watch_err != TL_OK ? inf->retry_hint : res->retry_after;
    if (err == TL_EGONE || res->code == 410) {
        inf->stats.gone++;
        TL_INFO("informer: resourceVersion expired, listing again",
                TL_STR("resource", inf->res.resource), TL_STR("rv", inf->rv));
        schedule(inf, 0, true);
        return;
    }
    if (err == TL_OK) {
        /* A clean end (timeoutSeconds ran out): resume at once, unless it ended empty-handed
         * straight away, which would otherwise make a hot loop. */
        bool instant = inf->watch_events == 0 && ev_now(inf->loop) - inf->watch_started < 1.0;
        schedule(inf, instant ? tl_backoff_next(&inf->backoff) : 0, false);
        return;
    }
    inf->stats.errors++;
    double delay = failure_delay(inf, hint);
    char detail[256] = "";
    if (res->status)
        tl_kube_status_format(res->status, detail, sizeof(detail));
    TL_INFO("informer: watch ended, reconnecting", TL_STR("resource", inf->res.resource),
            TL_ERRF(err), TL_INT("code", res->code), TL_DBL("delay", delay),
            TL_STR("detail", detail));
    schedule(inf, delay, false);
}

static void start_watch(struct tl_informer *inf)
{
    char path[1024], query[4096], timeout[32];
    size_t pos = 0;
    long seconds = (long)uniform(inf, inf->opts.watch_min, inf->opts.watch_max);
    snprintf(timeout, sizeof(timeout), "%ld", seconds);
    enum tl_err result = tl_kube_resource_path(&inf->res, inf->ns, NULL, NULL, path, sizeof(path));
    if (result == TL_OK)
        result = tl_kube_query_add(query, sizeof(query), &pos, "watch", "true");
    if (result == TL_OK)
        result = tl_kube_query_add(query, sizeof(query), &pos, "resourceVersion", inf->rv);
    if (result == TL_OK)
        result = tl_kube_query_add(query, sizeof(query), &pos, "allowWatchBookmarks", "true");
    if (result == TL_OK)
        result = tl_kube_query_add(query, sizeof(query), &pos, "timeoutSeconds", timeout);
    if (result == TL_OK)
        result =
            tl_kube_query_add(query, sizeof(query), &pos, "labelSelector", inf->label_selector);
    if (result == TL_OK)
        result =
            tl_kube_query_add(query, sizeof(query), &pos, "fieldSelector", inf->field_selector);
    if (result == TL_OK) {
        struct tl_kube_request req = {
            .path = path,
            .query = query,
            .no_retry = true,
            .timeout = (double)seconds + 60, /* the server should have closed it long before */
            .stall_timeout = inf->opts.stall_timeout,
            .on_data = on_watch_data,
        };
        tl_watch_decoder_reset(inf->dec);
        inf->watch_err = TL_OK;
        inf->retry_hint = -1;
        inf->watch_events = 0;
        inf->watch_started = ev_now(inf->loop);
        result = tl_kube_request(inf->client, &req, watch_done, inf, &inf->call);
    }
    if (result != TL_OK) {
        TL_ERROR("informer: cannot start a watch", TL_STR("resource", inf->res.resource),
                 TL_ERRF(result));
        inf->stats.errors++;
        schedule(inf, failure_delay(inf, -1), false);
        return;
    }
    inf->stats.watches++;
}

/* ---- lifecycle ---- */

static bool dup_opt(char **dst, const char *src)
{
    if (!src || !*src)
        return true;
    *dst = strdup(src);
    return *dst != NULL;
}

enum tl_err tl_informer_create(struct tl_kube_client *client, const struct tl_kube_resource *res,
                               const struct tl_informer_options *opts,
                               const struct tl_informer_handlers *handlers,
                               struct tl_informer **out)
{
    struct tl_informer *inf = calloc(1, sizeof(*inf));
    if (!inf)
        return TL_ENOMEM;
    inf->client = client;
    inf->loop = tl_kube_client_loop(client);
    inf->res = *res;
    if (opts)
        inf->opts = *opts;
    if (handlers)
        inf->h = *handlers;
    struct tl_informer_options *o = &inf->opts;
    o->namespace = o->label_selector = o->field_selector = NULL; /* borrowed; copied below */
    if (o->page_size <= 0)
        o->page_size = 500;
    if (o->watch_min <= 0)
        o->watch_min = 300;
    if (o->watch_max < o->watch_min)
        o->watch_max = o->watch_min == 300 ? 600 : o->watch_min;
    if (o->stall_timeout <= 0)
        o->stall_timeout = 120;
    if (o->backoff_base <= 0)
        o->backoff_base = 1;
    if (o->backoff_max <= 0)
        o->backoff_max = 30;
    unsigned long seed =
        opts && opts->seed ? opts->seed : (unsigned long)time(NULL) ^ (uintptr_t)inf;
    inf->rng = seed ? seed : 1;
    tl_backoff_init(&inf->backoff, o->backoff_base, o->backoff_max, seed);
    ev_init(&inf->timer, timer_fired);
    inf->timer.data = inf;
    bool ok = !opts || (dup_opt(&inf->ns, res->namespaced ? opts->namespace : NULL) &&
                        dup_opt(&inf->label_selector, opts->label_selector) &&
                        dup_opt(&inf->field_selector, opts->field_selector));
    if (ok)
        inf->store = tl_kube_store_create(inf->h.free_proj, inf->h.arg);
    if (inf->store)
        inf->dec = tl_watch_decoder_create(o->max_line, on_event, inf);
    if (inf->dec) {
        *out = inf;
        return TL_OK;
    }
    tl_informer_destroy(inf);
    return TL_ENOMEM;
}

enum tl_err tl_informer_start(struct tl_informer *inf)
{
    if (inf->started)
        return TL_ESTATE;
    inf->started = true;
    schedule(inf, 0, true);
    return TL_OK;
}

void tl_informer_destroy(struct tl_informer *inf)
{
    if (!inf)
        return;
    tl_kube_call_cancel(inf->call);
    ev_timer_stop(inf->loop, &inf->timer);
    tl_kube_store_destroy(inf->fresh);
    tl_kube_store_destroy(inf->store);
    tl_watch_decoder_destroy(inf->dec);
    free(inf->continue_token);
    free(inf->rv);
    free(inf->ns);
    free(inf->label_selector);
    free(inf->field_selector);
    free(inf);
}

bool tl_informer_has_synced(const struct tl_informer *inf)
{
    return inf->synced;
}

const struct tl_kube_store *tl_informer_store(const struct tl_informer *inf)
{
    return inf->store;
}

const struct tl_kube_store_item *tl_informer_get(const struct tl_informer *inf, const char *ns,
                                                 const char *name)
{
    return tl_kube_store_get(inf->store, ns, name);
}

const char *tl_informer_resource_version(const struct tl_informer *inf)
{
    return inf->rv ? inf->rv : "";
}

struct tl_informer_stats tl_informer_stats(const struct tl_informer *inf)
{
    return inf->stats;
}
