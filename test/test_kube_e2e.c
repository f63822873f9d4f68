/*
 * End-to-end: informers on Deployments and Pods against the local API server, through dropped
 * watches, 429/5xx answers and 410 Gone. Skipped unless TAILOR_APISERVER_KUBECONFIG names the
 * server's admin kubeconfig (e2e/test_kube_client.py sets it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "informer.h"
#include "kube_client.h"
#include "kube_creds.h"
#include "kubeconfig.h"
#include "log.h"

#define NS "e2e-kube-client"

/* The projections a controller might keep: a label and a phase; replicas. */
struct pod_proj {
    char gen[16];
    char phase[16];
};

struct dep_proj {
    int replicas;
};

struct tracker {
    char log[1 << 16];
    size_t len;
    int adds, updates, deletes;
    bool synced;
};

struct env {
    struct ev_loop *loop;
    struct tl_kube_config *cfg;
    struct tl_kube_creds *creds;
    struct tl_kube_client *client; /* the informers' */
    struct tl_kube_client *writer; /* the test's own writes and checks */
    struct tl_kube_resource pods_res, deps_res;
    struct tl_informer *pods, *deps;
    struct tracker pod_events, dep_events;
};

static struct env *E;

/* ---- projections and handlers ---- */

static const char *str_at(const cJSON *obj, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, a), b);
    return cJSON_IsString(x) ? x->valuestring : "";
}

static enum tl_err project_pod(void *arg, const cJSON *obj, void **out)
{
    struct pod_proj *p = calloc(1, sizeof(*p));
    if (!p)
        return TL_ENOMEM;
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "labels");
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(labels, "gen");
    snprintf(p->gen, sizeof(p->gen), "%s", cJSON_IsString(gen) ? gen->valuestring : "");
    snprintf(p->phase, sizeof(p->phase), "%s", str_at(obj, "status", "phase"));
    *out = p;
    return TL_OK;
}

static enum tl_err project_dep(void *arg, const cJSON *obj, void **out)
{
    struct dep_proj *d = calloc(1, sizeof(*d));
    if (!d)
        return TL_ENOMEM;
    const cJSON *r =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(obj, "spec"), "replicas");
    d->replicas = cJSON_IsNumber(r) ? r->valueint : -1;
    *out = d;
    return TL_OK;
}

static void free_proj(void *arg, void *proj)
{
    free(proj);
}

static void note(struct tracker *t, const char *what, const struct tl_kube_store_item *item,
                 const struct tl_kube_store_item *pod_item)
{
    if (strcmp(item->namespace, NS) != 0)
        return;
    const char *gen = pod_item && pod_item->proj ? ((struct pod_proj *)pod_item->proj)->gen : "";
    int n = snprintf(t->log + t->len, sizeof(t->log) - t->len, "%s %s %s;", what, item->name, gen);
    if (n > 0 && (size_t)n < sizeof(t->log) - t->len)
        t->len += (size_t)n;
}

static void on_add(void *arg, const struct tl_kube_store_item *item)
{
    struct tracker *t = arg;
    t->adds++;
    note(t, "ADD", item, t == &E->pod_events ? item : NULL);
}

static void on_update(void *arg, const struct tl_kube_store_item *old,
                      const struct tl_kube_store_item *item)
{
    struct tracker *t = arg;
    t->updates++;
    note(t, "UPDATE", item, t == &E->pod_events ? item : NULL);
}

static void on_delete(void *arg, const struct tl_kube_store_item *old)
{
    struct tracker *t = arg;
    t->deletes++;
    note(t, "DELETE", old, NULL);
}

static void on_synced(void *arg)
{
    ((struct tracker *)arg)->synced = true;
}

/* ---- running the loop ---- */

static void expire(struct ev_loop *loop, ev_timer *w, int revents)
{
    *(bool *)w->data = true;
}

static void spin(double seconds)
{
    bool expired = false;
    ev_timer t;
    ev_timer_init(&t, expire, seconds, 0.);
    t.data = &expired;
    ev_timer_start(E->loop, &t);
    while (!expired)
        ev_run(E->loop, EVRUN_ONCE);
    ev_timer_stop(E->loop, &t);
}

struct sync_call {
    const char *gen; /* for set_gen: the mutate function gets the call's arg */
    bool done;
    enum tl_err err;
    long code;
    cJSON *body;
};

static void sync_done(void *arg, struct tl_kube_result *res)
{
    struct sync_call *s = arg;
    s->done = true;
    s->err = res->err;
    s->code = res->code;
    s->body = tl_kube_result_take(res);
}

static void wait_call(struct sync_call *s)
{
    bool expired = false;
    ev_timer t;
    ev_timer_init(&t, expire, 60, 0.);
    t.data = &expired;
    ev_timer_start(E->loop, &t);
    while (!s->done && !expired)
        ev_run(E->loop, EVRUN_ONCE);
    ev_timer_stop(E->loop, &t);
    assert_true(s->done);
}

static enum tl_err admin(const char *method, const char *path, const char *body)
{
    struct sync_call s = {0};
    struct tl_kube_request req = {
        .method = method, .path = path, .body = body, .body_len = body ? strlen(body) : 0};
    assert_int_equal(tl_kube_request(E->writer, &req, sync_done, &s, NULL), TL_OK);
    wait_call(&s);
    cJSON_Delete(s.body);
    return s.err;
}

static void faults(const char *json)
{
    assert_int_equal(admin("POST", "/debug/faults?replace=true", json), TL_OK);
}

static void create_pod(const char *name, const char *gen)
{
    char text[512];
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"%s\",\"namespace\":"
             "\"" NS "\",\"labels\":{\"gen\":\"%s\"}},\"spec\":{\"containers\":[{\"name\":\"c\","
             "\"image\":\"busybox\"}]}}",
             name, gen);
    cJSON *obj = cJSON_Parse(text);
    struct sync_call s = {0};
    assert_int_equal(tl_kube_create(E->writer, &E->pods_res, NS, obj, sync_done, &s, NULL), TL_OK);
    cJSON_Delete(obj);
    wait_call(&s);
    if (s.err != TL_OK)
        fprintf(stderr, "create %s: %s (%ld)\n", name, tl_strerror(s.err), s.code);
    assert_int_equal(s.err, TL_OK);
    cJSON_Delete(s.body);
}

static enum tl_err set_gen(void *arg, cJSON *obj, bool *changed)
{
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    cJSON *labels = cJSON_GetObjectItemCaseSensitive(meta, "labels");
    cJSON_DeleteItemFromObjectCaseSensitive(labels, "gen");
    const struct sync_call *s = arg;
    cJSON_AddStringToObject(labels, "gen", s->gen);
    *changed = true;
    return TL_OK;
}

static void update_pod(const char *name, const char *gen)
{
    struct sync_call s = {.gen = gen};
    assert_int_equal(tl_kube_update_retry(E->writer, &E->pods_res, NS, name, false, set_gen,
                                          sync_done, &s, NULL),
                     TL_OK);
    wait_call(&s);
    assert_int_equal(s.err, TL_OK);
    cJSON_Delete(s.body);
}

static void delete_pod(const char *name)
{
    struct sync_call s = {0};
    assert_int_equal(tl_kube_delete(E->writer, &E->pods_res, NS, name, NULL, sync_done, &s, NULL),
                     TL_OK);
    wait_call(&s);
    assert_int_equal(s.err, TL_OK);
    cJSON_Delete(s.body);
}

static bool count_visit(void *arg, const struct tl_kube_store_item *item)
{
    (*(size_t *)arg)++;
    return true;
}

/* The informer's cache equals a fresh list from the server: same names, same resourceVersions. */
static bool cache_matches_server(struct tl_informer *inf, const struct tl_kube_resource *res)
{
    struct sync_call s = {0};
    assert_int_equal(tl_kube_list(E->writer, res, NS, NULL, sync_done, &s, NULL), TL_OK);
    wait_call(&s);
    if (s.err != TL_OK) {
        cJSON_Delete(s.body);
        return false;
    }
    bool same = true;
    size_t listed = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(s.body, "items"))
    {
        listed++;
        const struct tl_kube_store_item *cached =
            tl_informer_get(inf, NS, str_at(item, "metadata", "name"));
        if (!cached ||
            strcmp(cached->resource_version, str_at(item, "metadata", "resourceVersion")) != 0)
            same = false;
    }
    cJSON_Delete(s.body);
    size_t cached_in_ns = 0;
    tl_kube_store_foreach_namespace(tl_informer_store(inf), NS, count_visit, &cached_in_ns);
    return same && listed == cached_in_ns;
}

static bool converged(double seconds)
{
    for (int tries = 0; tries < (int)(seconds * 2); tries++) {
        if (cache_matches_server(E->pods, &E->pods_res) &&
            cache_matches_server(E->deps, &E->deps_res))
            return true;
        spin(0.5);
    }
    return false;
}

/* ---- fixtures ---- */

static int setup(void **state)
{
    const char *path = getenv("TAILOR_APISERVER_KUBECONFIG");
    if (!path || !*path)
        return 0;
    signal(SIGPIPE, SIG_IGN);
    tl_log_configure(getenv("TAILOR_E2E_DEBUG") ? TL_LOG_DEBUG : TL_LOG_WARN, TL_LOG_TEXT, NULL);
    struct env *e = calloc(1, sizeof(*e));
    E = e;
    e->loop = ev_loop_new(EVFLAG_AUTO);
    char err[512];
    struct tl_kube_config_options o = {.kubeconfig = path};
    if (tl_kube_config_load(&o, &e->cfg, err, sizeof(err)) != TL_OK) {
        fprintf(stderr, "kubeconfig: %s\n", err);
        return -1;
    }
    e->creds = tl_kube_creds_create(e->cfg, e->loop, err, sizeof(err));
    if (!e->creds) {
        fprintf(stderr, "creds: %s\n", err);
        return -1;
    }
    struct tl_kube_client_options co = {.backoff_base = 0.1, .backoff_max = 1};
    struct tl_kube_client_options wo = {.write_qps = -1,
                                        .max_attempts = 20,
                                        .backoff_base = 0.05,
                                        .backoff_max = 0.5,
                                        .user_agent = "tailor-e2e-writer"};
    if (tl_kube_client_create(e->loop, e->cfg, e->creds, &co, &e->client, err, sizeof(err)) ||
        tl_kube_client_create(e->loop, e->cfg, e->creds, &wo, &e->writer, err, sizeof(err))) {
        fprintf(stderr, "client: %s\n", err);
        return -1;
    }
    tl_kube_resource_builtin("v1", "Pod", &e->pods_res);
    tl_kube_resource_builtin("apps/v1", "Deployment", &e->deps_res);
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = E;
    if (!e)
        return 0;
    tl_informer_destroy(e->pods);
    tl_informer_destroy(e->deps);
    tl_kube_client_destroy(e->client);
    tl_kube_client_destroy(e->writer);
    tl_kube_creds_destroy(e->creds);
    tl_kube_config_destroy(e->cfg);
    ev_loop_destroy(e->loop);
    free(e);
    E = NULL;
    return 0;
}

static void skip_without_server(void)
{
    if (!E)
        skip();
}

/* ---- tests, in order: each builds on the state the previous one left ---- */

static void test_informers_sync(void **state)
{
    skip_without_server();
    enum tl_err result = admin("POST", "/api/v1/namespaces",
                               "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{"
                               "\"name\":\"" NS "\"}}");
    assert_true(result == TL_OK || result == TL_ECONFLICT);
    const char *dep = "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":"
                      "\"web\",\"namespace\":\"" NS "\"},\"spec\":{\"replicas\":2,\"selector\":{"
                      "\"matchLabels\":{\"app\":\"web\"}},\"template\":{\"metadata\":{\"labels\":"
                      "{\"app\":\"web\"}},\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":"
                      "\"nginx\"}]}}}}";
    result = admin("POST", "/apis/apps/v1/namespaces/" NS "/deployments", dep);
    assert_true(result == TL_OK || result == TL_ECONFLICT);
    create_pod("before-sync", "0");

    struct tl_informer_options io = {
        .namespace = NS, .page_size = 2, .stall_timeout = 5, .backoff_base = 0.2, .backoff_max = 2};
    struct tl_informer_handlers ph = {project_pod, free_proj, on_add,        on_update,
                                      on_delete,   on_synced, &E->pod_events};
    struct tl_informer_handlers dh = {project_dep, free_proj, on_add,        on_update,
                                      on_delete,   on_synced, &E->dep_events};
    assert_int_equal(tl_informer_create(E->client, &E->pods_res, &io, &ph, &E->pods), TL_OK);
    struct tl_informer_options all = io;
    all.namespace = NULL; /* deployments in every namespace */
    assert_int_equal(tl_informer_create(E->client, &E->deps_res, &all, &dh, &E->deps), TL_OK);
    assert_int_equal(tl_informer_start(E->pods), TL_OK);
    assert_int_equal(tl_informer_start(E->deps), TL_OK);
    for (int i = 0; i < 200 && !(E->pod_events.synced && E->dep_events.synced); i++)
        spin(0.05);
    assert_true(tl_informer_has_synced(E->pods));
    assert_true(tl_informer_has_synced(E->deps));
    const struct tl_kube_store_item *web = tl_informer_get(E->deps, NS, "web");
    assert_non_null(web);
    assert_int_equal(((struct dep_proj *)web->proj)->replicas, 2);
    assert_non_null(tl_informer_get(E->pods, NS, "before-sync"));
    assert_non_null(strstr(E->pod_events.log, "ADD before-sync 0;"));
}

static void test_events_arrive_in_order(void **state)
{
    skip_without_server();
    E->pod_events.len = 0;
    E->pod_events.log[0] = '\0';
    create_pod("p1", "1");
    spin(0.2);
    update_pod("p1", "2");
    spin(0.2);
    delete_pod("p1");
    for (int i = 0; i < 100 && !strstr(E->pod_events.log, "DELETE p1"); i++)
        spin(0.05);
    assert_string_equal(E->pod_events.log, "ADD p1 1;UPDATE p1 2;DELETE p1 ;");
    assert_null(tl_informer_get(E->pods, NS, "p1"));
}

static void test_survives_dropped_watches(void **state)
{
    skip_without_server();
    struct tl_informer_stats before = tl_informer_stats(E->pods);
    faults("{\"close-watch\": 0.7}");
    char name[32];
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof(name), "drop-%d", i);
        create_pod(name, "1");
        spin(0.1);
    }
    for (int i = 0; i < 12; i += 3) {
        snprintf(name, sizeof(name), "drop-%d", i);
        update_pod(name, "2");
        spin(0.1);
    }
    for (int i = 1; i < 12; i += 4) {
        snprintf(name, sizeof(name), "drop-%d", i);
        delete_pod(name);
        spin(0.1);
    }
    spin(1.5);
    faults("{}");
    assert_true(converged(30));
    struct tl_informer_stats after = tl_informer_stats(E->pods);
    assert_true(after.watches > before.watches + 1); /* the streams really were cut */
    const struct tl_kube_store_item *p = tl_informer_get(E->pods, NS, "drop-3");
    assert_string_equal(((struct pod_proj *)p->proj)->gen, "2");
    assert_null(tl_informer_get(E->pods, NS, "drop-5"));
}

static void test_survives_429_and_5xx(void **state)
{
    skip_without_server();
    faults("{\"error-rate\": 0.4, \"error-codes\": [429, 500, 503], \"close-watch\": 1}");
    char name[32];
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof(name), "err-%d", i);
        create_pod(name, "1");
        spin(0.15);
    }
    for (int i = 0; i < 8; i += 2) {
        snprintf(name, sizeof(name), "err-%d", i);
        delete_pod(name);
        spin(0.15);
    }
    spin(1);
    /* Then make sure reconnects do meet errors: streams cut twice a second, reads mostly fail. */
    unsigned long errors_before =
        tl_informer_stats(E->pods).errors + tl_informer_stats(E->deps).errors;
    faults("{\"error-rate\": 0.9, \"error-codes\": [429, 500], \"error-scope\": \"reads\", "
           "\"close-watch\": 0.5}");
    create_pod("err-late", "1");
    spin(2.5);
    faults("{}");
    assert_true(converged(40));
    assert_null(tl_informer_get(E->pods, NS, "err-4"));
    assert_non_null(tl_informer_get(E->pods, NS, "err-5"));
    assert_non_null(tl_informer_get(E->pods, NS, "err-late"));
    assert_true(tl_informer_stats(E->pods).errors + tl_informer_stats(E->deps).errors >
                errors_before);
}

static void test_relist_after_gone_reports_missed_deletes(void **state)
{
    skip_without_server();
    struct tl_informer_stats before = tl_informer_stats(E->pods);
    E->pod_events.len = 0;
    E->pod_events.log[0] = '\0';
    /* Blind the informers (every read fails), drop their watches and the server's history. */
    faults("{\"error-rate\": 1, \"error-codes\": [503], \"error-scope\": \"reads\", "
           "\"watch-history\": 2}");
    assert_int_equal(admin("POST", "/debug/restart", NULL), TL_OK);
    spin(0.3);
    delete_pod("drop-0");
    delete_pod("drop-2");
    delete_pod("err-1");
    create_pod("while-blind-a", "7");
    create_pod("while-blind-b", "7");
    for (int i = 0; i < 6; i++) {
        char name[32];
        snprintf(name, sizeof(name), "churn-%d", i); /* moves the history past their version */
        create_pod(name, "1");
    }
    faults("{\"watch-history\": 2}");
    assert_true(converged(40));
    struct tl_informer_stats after = tl_informer_stats(E->pods);
    assert_true(after.gone > before.gone);
    assert_true(after.lists > before.lists);
    assert_non_null(strstr(E->pod_events.log, "DELETE drop-0 ;"));
    assert_non_null(strstr(E->pod_events.log, "DELETE drop-2 ;"));
    assert_non_null(strstr(E->pod_events.log, "DELETE err-1 ;"));
    assert_non_null(strstr(E->pod_events.log, "ADD while-blind-a 7;"));
    faults("{\"watch-history\": 1000}");
}

static void test_no_polling(void **state)
{
    skip_without_server();
    struct sync_call s = {0};
    struct tl_kube_request req = {.path = "/debug/requests"};
    assert_int_equal(tl_kube_request(E->writer, &req, sync_done, &s, NULL), TL_OK);
    wait_call(&s);
    assert_int_equal(s.err, TL_OK);
    unsigned long lists_ok = 0, other = 0, watches = 0;
    const cJSON *rec;
    cJSON_ArrayForEach(rec, s.body)
    {
        const char *agent = cJSON_GetObjectItemCaseSensitive(rec, "userAgent")->valuestring;
        if (strncmp(agent, "tailor/", 7) != 0)
            continue;
        const char *verb = cJSON_GetObjectItemCaseSensitive(rec, "verb")->valuestring;
        int code = cJSON_GetObjectItemCaseSensitive(rec, "code")->valueint;
        if (strcmp(verb, "list") == 0 && code == 200)
            lists_ok++;
        else if (strcmp(verb, "watch") == 0)
            watches++;
        else if (strcmp(verb, "list") != 0)
            other++;
    }
    cJSON_Delete(s.body);
    struct tl_informer_stats ps = tl_informer_stats(E->pods), ds = tl_informer_stats(E->deps);
    fprintf(stderr,
            "informer pods: lists=%lu pages=%lu watches=%lu gone=%lu errors=%lu events=%lu "
            "bookmarks=%lu; deployments: lists=%lu watches=%lu gone=%lu; log: %lu ok lists, "
            "%lu watches\n",
            ps.lists, ps.pages, ps.watches, ps.gone, ps.errors, ps.events, ps.bookmarks, ds.lists,
            ds.watches, ds.gone, lists_ok, watches);
    /* Only lists and watches; every successful list is a page of a first list or a re-list. */
    assert_int_equal(other, 0);
    assert_int_equal(lists_ok, ps.pages + ds.pages);
    assert_true(ps.lists <= 1 + ps.gone);
    assert_true(ds.lists <= 1 + ds.gone);
    assert_true(watches >= ps.watches + ds.watches - 2); /* two may still be on the way */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_informers_sync),
        cmocka_unit_test(test_events_arrive_in_order),
        cmocka_unit_test(test_survives_dropped_watches),
        cmocka_unit_test(test_survives_429_and_5xx),
        cmocka_unit_test(test_relist_after_gone_reports_missed_deletes),
        cmocka_unit_test(test_no_polling),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
