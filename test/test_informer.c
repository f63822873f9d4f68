/*
 * The informer's list/watch state machine against a scripted server: pagination, resuming from
 * bookmarks, 410 Gone as an ERROR event and as an HTTP answer, a silent stream, Retry-After.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake_server.h"
#include "informer.h"
#include "kubeconfig.h"

#define POD(name, rv)                                                                              \
    "{\"metadata\":{\"name\":\"" name "\",\"namespace\":\"ns\",\"uid\":\"uid-" name                \
    "\",\"resourceVersion\":\"" rv "\"}}"
#define EVENT(type, obj) "{\"type\":\"" type "\",\"object\":" obj "}\n"

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool json(int fd, int code, const char *body)
{
    return fake_respond(fd, code, "Content-Type: application/json\r\n", body, strlen(body));
}

static bool stream(int fd, const char *events)
{
    /* Cut the events in two pieces, mid-line, so the decoder has to join them. */
    size_t len = strlen(events), half = len / 2;
    fake_chunked_head(fd, 200, "application/json");
    fake_chunk(fd, events, half);
    fake_sleep_ms(20);
    fake_chunk(fd, events + half, len - half);
    return fake_chunked_end(fd);
}

static bool silent(int fd, int ms)
{
    fake_chunked_head(fd, 200, "application/json");
    fake_sleep_ms(ms);
    return false;
}

static bool watch_script(int fd, const char *t, struct fake_shared *shared)
{
    int n = __atomic_add_fetch(&shared->watches, 1, __ATOMIC_SEQ_CST);
    if (!strstr(t, "allowWatchBookmarks=true") || !strstr(t, "timeoutSeconds="))
        return json(fd, 400, "{\"kind\":\"Status\",\"code\":400}");
    switch (n) {
    case 1:
        if (!strstr(t, "resourceVersion=10&"))
            return json(fd, 400, "{\"kind\":\"Status\",\"code\":400}");
        return stream(fd, EVENT("ADDED", POD("d", "11")) EVENT("MODIFIED", POD("a", "12"))
                              EVENT("DELETED", POD("b", "13"))
                                  EVENT("BOOKMARK", "{\"metadata\":{\"resourceVersion\":\"20\"}}"));
    case 2:
        /* Resumed from the bookmark, which is now too old. */
        if (!strstr(t, "resourceVersion=20&"))
            return json(fd, 400, "{\"kind\":\"Status\",\"code\":400}");
        return stream(fd, EVENT("ERROR", "{\"kind\":\"Status\",\"status\":\"Failure\","
                                         "\"reason\":\"Expired\",\"code\":410}"));
    case 3:
        return silent(fd, 3000);
    case 4:
        return json(fd, 410, "{\"kind\":\"Status\",\"reason\":\"Gone\",\"code\":410}");
    default:
        return silent(fd, 10000);
    }
}

static bool handler(int fd, const struct fake_request *req, struct fake_shared *shared)
{
    const char *t = req->target;
    if (starts(t, "/api/v1/namespaces/ns/pods?")) {
        if (strstr(t, "watch=true"))
            return watch_script(fd, t, shared);
        if (strstr(t, "continue=c1"))
            return json(fd, 200,
                        "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"10\"},"
                        "\"items\":[" POD("c", "3") "]}");
        if (__atomic_add_fetch(&shared->lists, 1, __ATOMIC_SEQ_CST) == 1)
            return json(fd, 200,
                        "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"10\","
                        "\"continue\":\"c1\"},\"items\":[" POD("a", "1") "," POD("b", "2") "]}");
        /* The re-lists: d was deleted and e created while the watch was gone. */
        return json(
            fd, 200,
            "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"30\"},\"items\":[" POD(
                "a", "12") "," POD("c", "3") "," POD("e", "21") "]}");
    }
    if (starts(t, "/api/v1/namespaces/busy/pods?")) {
        if (!strstr(t, "watch=true"))
            return json(fd, 200,
                        "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"5\"},"
                        "\"items\":[{\"metadata\":{\"name\":\"x\",\"namespace\":\"busy\"}},"
                        "{\"metadata\":{\"name\":\"refused\",\"namespace\":\"busy\"}},"
                        "{\"metadata\":{\"namespace\":\"busy\"}}]}");
        if (__atomic_add_fetch(&shared->counter, 1, __ATOMIC_SEQ_CST) == 1)
            return fake_respond(fd, 429, "Retry-After: 1\r\n", "{}", 2);
        return silent(fd, 10000);
    }
    return json(fd, 404, "{\"kind\":\"Status\",\"code\":404}");
}

struct fixture {
    struct ev_loop *loop;
    struct fake_server srv;
    struct tl_kube_client *client;
    char server[64];
    char log[1024];
    int synced;
    int freed, made;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    *state = f;
    f->loop = ev_loop_new(EVFLAG_AUTO);
    if (!fake_server_start(&f->srv, handler))
        return -1;
    snprintf(f->server, sizeof(f->server), "http://127.0.0.1:%d", f->srv.port);
    struct tl_kube_config cfg = {.server = f->server};
    char err[128];
    struct tl_kube_client_options opts = {.backoff_base = 0.01, .backoff_max = 0.05};
    return tl_kube_client_create(f->loop, &cfg, NULL, &opts, &f->client, err, sizeof(err)) == TL_OK
               ? 0
               : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tl_kube_client_destroy(f->client);
    ev_loop_destroy(f->loop);
    fake_server_stop(&f->srv);
    free(f);
    return 0;
}

/* The projection: the resourceVersion, to show the cache holds the latest. */
static enum tl_err project(void *arg, const cJSON *obj, void **out)
{
    struct fixture *f = arg;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
    if (cJSON_IsString(name) && strcmp(name->valuestring, "refused") == 0)
        return TL_EINVAL;
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
    *out = strdup(cJSON_IsString(rv) ? rv->valuestring : "-");
    f->made++;
    return TL_OK;
}

static void free_proj(void *arg, void *proj)
{
    ((struct fixture *)arg)->freed++;
    free(proj);
}

static void add_log(struct fixture *f, const char *what, const char *name)
{
    size_t len = strlen(f->log);
    snprintf(f->log + len, sizeof(f->log) - len, "%s %s;", what, name);
}

static void on_add(void *arg, const struct tl_kube_store_item *item)
{
    add_log(arg, "ADD", item->name);
}

static void on_update(void *arg, const struct tl_kube_store_item *old,
                      const struct tl_kube_store_item *item)
{
    add_log(arg, "UPDATE", item->name);
}

static void on_delete(void *arg, const struct tl_kube_store_item *old)
{
    add_log(arg, "DELETE", old->name);
}

static void on_synced(void *arg)
{
    struct fixture *f = arg;
    f->synced++;
    add_log(f, "SYNCED", "");
}

static void expire(struct ev_loop *loop, ev_timer *w, int revents)
{
    *(bool *)w->data = true;
}

static bool run_until(struct ev_loop *loop, const int *count, int want, double seconds)
{
    bool expired = false;
    ev_timer limit;
    ev_timer_init(&limit, expire, seconds, 0.);
    limit.data = &expired;
    ev_timer_start(loop, &limit);
    while (*count < want && !expired)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &limit);
    return *count >= want;
}

static void test_list_watch_gone_relist_and_stall(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_resource pods;
    tl_kube_resource_builtin("v1", "Pod", &pods);
    struct tl_informer_options o = {.namespace = "ns",
                                    .page_size = 2,
                                    .stall_timeout = 0.5,
                                    .backoff_base = 0.05,
                                    .backoff_max = 0.1};
    struct tl_informer_handlers h = {project,   free_proj, on_add, on_update,
                                     on_delete, on_synced, f};
    struct tl_informer *inf = NULL;
    assert_int_equal(tl_informer_create(f->client, &pods, &o, &h, &inf), TL_OK);
    assert_false(tl_informer_has_synced(inf));
    assert_string_equal(tl_informer_resource_version(inf), "");
    assert_int_equal(tl_informer_start(inf), TL_OK);
    assert_int_equal(tl_informer_start(inf), TL_ESTATE);

    assert_true(run_until(f->loop, &f->srv.shared->watches, 5, 10));
    assert_true(tl_informer_has_synced(inf));
    assert_int_equal(f->synced, 1);
    /* The first list (two pages), the watch, then the re-list's difference; the second re-list
     * (after the HTTP 410) found nothing new and said nothing. */
    assert_string_equal(f->log, "ADD a;ADD b;ADD c;SYNCED ;ADD d;UPDATE a;DELETE b;"
                                "ADD e;DELETE d;");
    struct tl_informer_stats st = tl_informer_stats(inf);
    assert_int_equal(st.lists, 3);
    assert_int_equal(st.pages, 4);
    assert_int_equal(st.gone, 2);
    assert_int_equal(st.events, 3);
    assert_int_equal(st.bookmarks, 1);
    assert_true(st.errors >= 1); /* the silent stream */
    assert_int_equal(st.watches, 5);
    assert_string_equal(tl_informer_resource_version(inf), "30");

    const struct tl_kube_store *store = tl_informer_store(inf);
    assert_int_equal(tl_kube_store_size(store), 3);
    assert_string_equal(tl_informer_get(inf, "ns", "a")->proj, "12");
    assert_string_equal(tl_informer_get(inf, "ns", "e")->proj, "21");
    assert_null(tl_informer_get(inf, "ns", "d"));
    assert_null(tl_informer_get(inf, "ns", "b"));
    tl_informer_destroy(inf);
    assert_int_equal(f->made, f->freed); /* every projection freed exactly once */
}

static void test_retry_after_and_refused_objects(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_resource pods;
    tl_kube_resource_builtin("v1", "Pod", &pods);
    struct tl_informer_options o = {
        .namespace = "busy", .stall_timeout = 30, .backoff_base = 0.01, .backoff_max = 0.02};
    struct tl_informer_handlers h = {project, free_proj, on_add, NULL, NULL, on_synced, f};
    struct tl_informer *inf = NULL;
    assert_int_equal(tl_informer_create(f->client, &pods, &o, &h, &inf), TL_OK);
    assert_int_equal(tl_informer_start(inf), TL_OK);
    assert_true(run_until(f->loop, &f->srv.shared->counter, 1, 5));
    ev_tstamp refused_at = ev_time();
    assert_true(run_until(f->loop, &f->srv.shared->counter, 2, 5));
    /* The backoff alone would have come back within 20 ms. */
    assert_true(ev_time() - refused_at >= 0.8);
    assert_string_equal(f->log, "ADD x;SYNCED ;");
    struct tl_informer_stats st = tl_informer_stats(inf);
    assert_int_equal(st.skipped, 2); /* the refused projection and the object without a name */
    assert_int_equal(tl_kube_store_size(tl_informer_store(inf)), 1);
    tl_informer_destroy(inf);
    assert_int_equal(f->made, f->freed);
}

static void test_destroy_before_start_and_null(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_resource pods;
    tl_kube_resource_builtin("v1", "Pod", &pods);
    struct tl_informer *inf = NULL;
    assert_int_equal(tl_informer_create(f->client, &pods, NULL, NULL, &inf), TL_OK);
    tl_informer_destroy(inf);
    tl_informer_destroy(NULL);
    assert_int_equal(tl_kube_client_pending(f->client), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_watch_gone_relist_and_stall, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_and_refused_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_before_start_and_null, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
