/* kube_client against a scripted HTTP server: paths, headers, retries, rate limit, conflicts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fake_server.h"
#include "kube_client.h"
#include "kube_creds.h"
#include "kubeconfig.h"

static const char NOT_FOUND[] = "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
                                "\"message\":\"pods \\\"nope\\\" not found\",\"reason\":"
                                "\"NotFound\",\"code\":404}";
static const char CONFLICT[] =
    "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Conflict\","
    "\"message\":\"the object has been modified\",\"code\":409}";

static bool respond_json(int fd, int code, const char *body)
{
    return fake_respond(fd, code, "Content-Type: application/json\r\n", body, strlen(body));
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool handler(int fd, const struct fake_request *req, struct fake_shared *shared)
{
    const char *t = req->target;
    if (strcmp(t, "/api/v1/namespaces/shop/pods/web") == 0)
        return respond_json(fd, 200, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"web\"}}");
    if (strcmp(t, "/api/v1/namespaces/shop/pods/nope") == 0)
        return respond_json(fd, 404, NOT_FOUND);
    if (strcmp(t, "/api/v1/namespaces/shop/pods/flaky") == 0) {
        /* 500 twice, then the object. */
        if (__atomic_add_fetch(&shared->counter, 1, __ATOMIC_SEQ_CST) <= 2)
            return respond_json(fd, 500, "{\"kind\":\"Status\",\"code\":500}");
        return respond_json(fd, 200, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"flaky\"}}");
    }
    if (strcmp(t, "/api/v1/namespaces/shop/pods/busy") == 0) {
        if (__atomic_add_fetch(&shared->counter, 1, __ATOMIC_SEQ_CST) <= 1)
            return fake_respond(fd, 429, "Retry-After: 1\r\n", "{}", 2);
        return respond_json(fd, 200, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"busy\"}}");
    }
    if (strcmp(t, "/api/v1/namespaces/shop/pods/down") == 0)
        return respond_json(fd, 503, "{\"kind\":\"Status\",\"code\":503}");
    if (strcmp(t, "/api/v1/namespaces/shop/pods/slow") == 0) {
        fake_sleep_ms(3000);
        return respond_json(fd, 200, "{}");
    }
    if (strcmp(t, "/api/v1/namespaces/shop/pods/auth") == 0) {
        if (__atomic_add_fetch(&shared->counter, 1, __ATOMIC_SEQ_CST) <= 1)
            return respond_json(fd, 401, "{\"kind\":\"Status\",\"code\":401}");
        return respond_json(fd, 200, "{\"kind\":\"Pod\",\"metadata\":{\"name\":\"auth\"}}");
    }
    if (starts(t, "/api/v1/namespaces/shop/configmaps") && !strcmp(req->method, "POST"))
        return respond_json(fd, 201, req->body);
    if (strcmp(t, "/apis/apps/v1/namespaces/shop/deployments/web") == 0) {
        if (!strcmp(req->method, "GET")) {
            char body[256];
            snprintf(body, sizeof(body),
                     "{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\","
                     "\"resourceVersion\":\"%d\"},\"spec\":{\"replicas\":1}}",
                     10 + shared->counter);
            return respond_json(fd, 200, body);
        }
        /* PUT: the first two lose the race. */
        if (__atomic_add_fetch(&shared->counter, 1, __ATOMIC_SEQ_CST) <= 2)
            return respond_json(fd, 409, CONFLICT);
        return respond_json(fd, 200, req->body);
    }
    if (starts(t, "/apis/apps/v1/namespaces/shop/deployments/web/status"))
        return respond_json(fd, 200, req->body);
    if (starts(t, "/apis/apps/v1/namespaces/shop/deployments/patched") ||
        starts(t, "/api/v1/pods") || starts(t, "/api/v1/namespaces/shop/pods?"))
        return respond_json(fd, 200, "{\"kind\":\"List\",\"items\":[]}");
    if (strcmp(t, "/apis/karpenter.sh/v1") == 0)
        return respond_json(
            fd, 200,
            "{\"kind\":\"APIResourceList\",\"groupVersion\":\"karpenter.sh/v1\",\"resources\":["
            "{\"name\":\"nodepools\",\"singularName\":\"nodepool\",\"namespaced\":false,"
            "\"kind\":\"NodePool\",\"verbs\":[\"get\",\"list\",\"watch\"]},"
            "{\"name\":\"nodepools/status\",\"namespaced\":false,\"kind\":\"NodePool\"}]}");
    if (strcmp(t, "/apis/nothing.example/v1") == 0)
        return respond_json(fd, 404, NOT_FOUND);
    if (strcmp(t, "/api/v1/namespaces/shop/pods/garbage") == 0)
        return fake_respond(fd, 200, "", "not json", 8);
    return respond_json(fd, 404, NOT_FOUND);
}

struct fixture {
    struct ev_loop *loop;
    struct fake_server srv;
    struct tl_kube_config cfg;
    char server[64];
    struct tl_kube_client *client;
};

struct outcome {
    int calls;
    enum tl_err err;
    long code;
    char name[64];
    char reason[64];
    ev_tstamp at;
    int mutations;
};

static void record(void *arg, struct tl_kube_result *res)
{
    struct outcome *o = arg;
    o->calls++;
    o->err = res->err;
    o->code = res->code;
    o->at = ev_time();
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(res->body, "metadata");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
    snprintf(o->name, sizeof(o->name), "%s", cJSON_IsString(name) ? name->valuestring : "");
    snprintf(o->reason, sizeof(o->reason), "%s",
             res->status && res->status->reason ? res->status->reason : "");
}

static int setup_with(void **state, const struct tl_kube_client_options *opts)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->loop = ev_loop_new(EVFLAG_AUTO);
    if (!fake_server_start(&f->srv, handler)) {
        ev_loop_destroy(f->loop);
        free(f);
        return -1;
    }
    snprintf(f->server, sizeof(f->server), "http://127.0.0.1:%d/", f->srv.port);
    f->cfg.server = f->server;
    f->cfg.namespace = "shop";
    char err[256];
    *state = f;
    if (tl_kube_client_create(f->loop, &f->cfg, NULL, opts, &f->client, err, sizeof(err)) != TL_OK)
        return -1;
    return 0;
}

static int setup(void **state)
{
    struct tl_kube_client_options opts = {.backoff_base = 0.01, .backoff_max = 0.05, .seed = 7};
    return setup_with(state, &opts);
}

static int setup_limited(void **state)
{
    struct tl_kube_client_options opts = {.write_qps = 5, .write_burst = 1, .seed = 7};
    return setup_with(state, &opts);
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

static struct tl_kube_resource resource(const char *api_version, const char *kind)
{
    struct tl_kube_resource r;
    assert_int_equal(tl_kube_resource_builtin(api_version, kind, &r), TL_OK);
    return r;
}

static void test_get_sends_identity_and_parses_body(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_resource pods = resource("v1", "Pod");
    struct outcome o = {0};
    assert_int_equal(tl_kube_get(f->client, &pods, "shop", "web", record, &o, NULL), TL_OK);
    assert_int_equal(o.calls, 0); /* never before the function returned */
    assert_true(run_until(f->loop, &o.calls, 1, 5));
    assert_int_equal(o.err, TL_OK);
    assert_int_equal(o.code, 200);
    assert_string_equal(o.name, "web");
    assert_non_null(strstr(f->srv.shared->last_headers, "User-Agent: tailor/"));
    assert_non_null(strstr(f->srv.shared->last_headers, "Accept: application/json"));
    assert_null(strstr(f->srv.shared->last_headers, "Authorization"));
    assert_int_equal(tl_kube_client_pending(f->client), 0);
}

static void test_not_found_carries_status(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_resource pods = resource("v1", "Pod");
    struct outcome o = {0};
    assert_int_equal(tl_kube_get(f->client, &pods, "shop", "nope", record, &o, NULL), TL_OK);
    assert_true(run_until(f->loop, &o.calls, 1, 5));
    assert_int_equal(o.err, TL_ENOTFOUND);
    assert_int_equal(o.code, 404);
    assert_string_equal(o.reason, "NotFound");
    assert_int_equal(f->srv.shared->requests, 1); /* not retried */
}

static void test_5xx_is_retried(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_resource pods = resource("v1", "Pod");
    struct outcome o = {0};
    assert_int_equal(tl_kube_get(f->client, &pods, "shop", "flaky", record, &o, NULL), TL_OK);
    assert_true(run_until(f->loop, &o.calls, 1, 5));
    assert_int_equal(o.err, TL_OK);
    assert_string_equal(o.name, "flaky");
    assert_int_equal(f->srv.shared->requests, 3);
}

static void test_429_honours_retry_after(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_resource pods = resource("v1", "Pod");
    struct outcome o = {0};
    ev_tstamp began = ev_time();
    assert_int_equal(tl_kube_get(f->client, &pods, "shop", "busy", record, &o, NULL), TL_OK);
    assert_true(run_until(f->loop, &o.calls, 1, 5));
    assert_int_equal(o.err, TL_OK);
    assert_int_equal(f->srv.shared->requests, 2);
    /* The backoff alone would be ~10 ms; the server asked for a second. */
    assert_true(o.at - began >= 0.9);
}

static void test_retries_are_bounded(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_resource pods = resource("v1", "Pod");
    struct outcome o = {0};
    assert_int_equal(tl_kube_get(f->client, &pods, "shop", "down", record, &o, NULL), TL_OK);
    assert_true(run_until(f->loop, &o.calls, 1, 10));
    assert_int_equal(o.err, TL_EHTTP);
    assert_int_equal(o.code, 503);
    assert_int_equal(f->srv.shared->requests, 5); /* the default max_attempts */
}

static void test_garbage_body_is_einval(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_resource pods = resource("v1", "Pod");
    struct outcome o = {0};
    assert_int_equal(tl_kube_get(f->client, &pods, "shop", "garbage", record, &o, NULL), TL_OK);
    assert_true(run_until(f->loop, &o.calls, 1, 5));
    assert_int_equal(o.err, TL_EINVAL);
    assert_int_equal(o.code, 200);
}

static void test_writes_wait_for_tokens(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_resource cms = resource("v1", "ConfigMap");
    struct outcome o[4] = {{0}};
    int done = 0;
    cJSON *obj = cJSON_Parse("{\"metadata\":{\"name\":\"c\"}}");
    ev_tstamp began = ev_time();
    for (int i = 0; i < 4; i++)
        assert_int_equal(tl_kube_create(f->client, &cms, "shop", obj, record, &o[i], NULL), TL_OK);
    cJSON_Delete(obj);
    for (int spin = 0; spin < 400 && done < 4; spin++) {
        int dummy = 0;
        run_until(f->loop, &dummy, 1, 0.01);
        done = o[0].calls + o[1].calls + o[2].calls + o[3].calls;
    }
    assert_int_equal(done, 4);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(o[i].err, TL_OK);
        assert_int_equal(o[i].code, 201);
        assert_string_equal(o[i].name, "c");
    }
    /* Burst 1 at 5 per second: the fourth write could not start before 0.6 s, in FIFO order. */
    assert_true(o[3].at - began >= 0.55);
    assert_true(o[0].at <= o[1].at && o[1].at <= o[2].at && o[2].at <= o[3].at);
}

static enum tl_err bump_replicas(void *arg, cJSON *obj, bool *changed)
{
    struct outcome *o = arg;
    o->mutations++;
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(obj, "spec");
    cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(spec, "replicas"), 3);
    *changed = true;
    return TL_OK;
}

static void test_update_retries_on_conflict(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_resource deps = resource("apps/v1", "Deployment");
    struct outcome o = {0};
    assert_int_equal(tl_kube_update_retry(f->client, &deps, "shop", "web", false, bump_replicas,
                                          record, &o, NULL),
                     TL_OK);
    assert_true(run_until(f->loop, &o.calls, 1, 10));
    assert_int_equal(o.err, TL_OK);
    assert_int_equal(o.code, 200);
    assert_int_equal(o.mutations, 3); /* a fresh read before each of the three PUTs */
    assert_int_equal(f->srv.shared->requests, 6);
    assert_int_equal(tl_kube_client_pending(f->client), 0);
}

static enum tl_err no_change(void *arg, cJSON *obj, bool *changed)
{
    ((struct outcome *)arg)->mutations++;
    *changed = false;
    return TL_OK;
}

static void test_update_without_change_writes_nothing(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_resource deps = resource("apps/v1", "Deployment");
    struct outcome o = {0};
    assert_int_equal(
        tl_kube_update_retry(f->client, &deps, "shop", "web", true, no_change, record, &o, NULL),
        TL_OK);
    assert_true(run_until(f->loop, &o.calls, 1, 5));
    assert_int_equal(o.err, TL_OK);
    assert_string_equal(o.name, "web");
    assert_int_equal(f->srv.shared->requests, 1);
}

static void test_apply_patch_query_and_type(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_resource deps = resource("apps/v1", "Deployment");
    struct outcome o = {0};
    const char *patch = "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\"}";
    assert_int_equal(tl_kube_patch(f->client, &deps, "shop", "patched", NULL, TL_KUBE_PATCH_APPLY,
                                   patch, strlen(patch), true, record, &o, NULL),
                     TL_OK);
    assert_true(run_until(f->loop, &o.calls, 1, 5));
    assert_int_equal(o.err, TL_OK);
    assert_string_equal(f->srv.shared->last_target,
                        "/apis/apps/v1/namespaces/shop/deployments/patched?fieldManager=tailor&"
                        "force=true");
    assert_non_null(
        strstr(f->srv.shared->last_headers, "Content-Type: application/apply-patch+yaml"));

    o.calls = 0;
    assert_int_equal(tl_kube_patch(f->client, &deps, "shop", "patched", NULL, TL_KUBE_PATCH_MERGE,
                                   "{}", 2, true, record, &o, NULL),
                     TL_OK);
    assert_true(run_until(f->loop, &o.calls, 1, 5));
    assert_string_equal(f->srv.shared->last_target,
                        "/apis/apps/v1/namespaces/shop/deployments/patched");
    assert_non_null(
        strstr(f->srv.shared->last_headers, "Content-Type: application/merge-patch+json"));
}

static void test_list_query_is_escaped(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_resource pods = resource("v1", "Pod");
    struct outcome o = {0};
    struct tl_kube_list_opts lo = {.label_selector = "app in (a,b),tier!=db",
                                   .field_selector = "spec.nodeName=n1",
                                   .limit = 500,
                                   .continue_token = "abc=="};
    assert_int_equal(tl_kube_list(f->client, &pods, "shop", &lo, record, &o, NULL), TL_OK);
    assert_true(run_until(f->loop, &o.calls, 1, 5));
    assert_int_equal(o.err, TL_OK);
    assert_string_equal(f->srv.shared->last_target,
                        "/api/v1/namespaces/shop/pods?labelSelector=app%20in%20%28a%2Cb%29%2Ctier%"
                        "21%3Ddb&fieldSelector=spec.nodeName%3Dn1&limit=500&continue=abc%3D%3D");
    o.calls = 0;
    assert_int_equal(tl_kube_list(f->client, &pods, NULL, NULL, record, &o, NULL), TL_OK);
    assert_true(run_until(f->loop, &o.calls, 1, 5));
    assert_string_equal(f->srv.shared->last_target, "/api/v1/pods");
}

struct found {
    int calls;
    enum tl_err err;
    struct tl_kube_resource res;
};

static void on_found(void *arg, enum tl_err err, const struct tl_kube_resource *res)
{
    struct found *f = arg;
    f->calls++;
    f->err = err;
    if (res)
        f->res = *res;
}

static void test_discovery(void **state)
{
    struct fixture *f = *state;
    struct found a = {0}, b = {0}, c = {0};
    assert_int_equal(tl_kube_discover(f->client, "karpenter.sh/v1", "NodePool", on_found, &a, NULL),
                     TL_OK);
    assert_int_equal(tl_kube_discover(f->client, "karpenter.sh/v1", "widgets", on_found, &b, NULL),
                     TL_OK);
    assert_int_equal(tl_kube_discover(f->client, "nothing.example/v1", "x", on_found, &c, NULL),
                     TL_OK);
    assert_true(run_until(f->loop, &a.calls, 1, 5));
    assert_true(run_until(f->loop, &b.calls, 1, 5));
    assert_true(run_until(f->loop, &c.calls, 1, 5));
    assert_int_equal(a.err, TL_OK);
    assert_string_equal(a.res.resource, "nodepools");
    assert_string_equal(a.res.group, "karpenter.sh");
    assert_string_equal(a.res.version, "v1");
    assert_false(a.res.namespaced);
    assert_int_equal(b.err, TL_ENOTFOUND);
    assert_int_equal(c.err, TL_ENOTFOUND);
}

static void test_cancel_silences_call(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_resource pods = resource("v1", "Pod");
    struct outcome o = {0};
    struct tl_kube_call *call = NULL;
    assert_int_equal(tl_kube_get(f->client, &pods, "shop", "slow", record, &o, &call), TL_OK);
    int dummy = 0;
    run_until(f->loop, &dummy, 1, 0.2);
    tl_kube_call_cancel(call);
    assert_int_equal(tl_kube_client_pending(f->client), 0);
    run_until(f->loop, &dummy, 1, 0.3);
    assert_int_equal(o.calls, 0);

    /* Also a composite, and calls left running when the client goes. */
    struct tl_kube_resource deps = resource("apps/v1", "Deployment");
    assert_int_equal(tl_kube_update_retry(f->client, &deps, "shop", "web", false, bump_replicas,
                                          record, &o, &call),
                     TL_OK);
    assert_int_equal(tl_kube_get(f->client, &pods, "shop", "slow", record, &o, NULL), TL_OK);
    tl_kube_call_cancel(call);
    assert_int_equal(tl_kube_client_pending(f->client), 1);
}

static void test_bad_arguments_fail_without_callback(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_resource pods = resource("v1", "Pod");
    struct outcome o = {0};
    assert_int_equal(tl_kube_get(f->client, &pods, NULL, "web", record, &o, NULL), TL_EINVAL);
    assert_int_equal(tl_kube_get(f->client, &pods, "shop", "..", record, &o, NULL), TL_EINVAL);
    assert_int_equal(tl_kube_get(f->client, &pods, "shop", NULL, record, &o, NULL), TL_EINVAL);
    int dummy = 0;
    run_until(f->loop, &dummy, 1, 0.1);
    assert_int_equal(o.calls, 0);
    assert_int_equal(tl_kube_client_pending(f->client), 0);
}

static void test_401_refreshes_token_and_retries_once(void **state)
{
    struct fixture *f = *state;
    struct tl_kube_config cfg = f->cfg;
    cfg.token = "s3cret";
    char err[256];
    struct tl_kube_creds *creds = tl_kube_creds_create(&cfg, f->loop, err, sizeof(err));
    assert_non_null(creds);
    struct tl_kube_client *client = NULL;
    assert_int_equal(tl_kube_client_create(f->loop, &cfg, creds, NULL, &client, err, sizeof(err)),
                     TL_OK);
    struct tl_kube_resource pods = resource("v1", "Pod");
    struct outcome o = {0};
    assert_int_equal(tl_kube_get(client, &pods, "shop", "auth", record, &o, NULL), TL_OK);
    assert_true(run_until(f->loop, &o.calls, 1, 5));
    assert_int_equal(o.err, TL_OK);
    assert_string_equal(o.name, "auth");
    assert_int_equal(f->srv.shared->requests, 2);
    assert_non_null(strstr(f->srv.shared->last_headers, "Authorization: Bearer s3cret"));
    tl_kube_client_destroy(client);
    tl_kube_creds_destroy(creds);
}

static void test_missing_server_is_refused(void **state)
{
    struct tl_kube_config cfg = {0};
    struct tl_kube_client *client = NULL;
    char err[128] = "";
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    assert_int_equal(tl_kube_client_create(loop, &cfg, NULL, NULL, &client, err, sizeof(err)),
                     TL_EINVAL);
    assert_null(client);
    assert_non_null(strstr(err, "server"));
    ev_loop_destroy(loop);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_sends_identity_and_parses_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_carries_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_5xx_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_honours_retry_after, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retries_are_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage_body_is_einval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writes_wait_for_tokens, setup_limited, teardown),
        cmocka_unit_test_setup_teardown(test_update_retries_on_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_without_change_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_patch_query_and_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_query_is_escaped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_silences_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments_fail_without_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_401_refreshes_token_and_retries_once, setup, teardown),
        cmocka_unit_test(test_missing_server_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
