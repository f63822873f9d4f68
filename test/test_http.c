#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>

#include "fake_server.h"
#include "http.h"

/* The number after prefix in target, or -1. */
static long number_after(const char *target, const char *prefix)
{
    size_t len = strlen(prefix);
    if (strncmp(target, prefix, len) != 0)
        return -1;
    char *end = NULL;
    errno = 0;
    long n = strtol(target + len, &end, 10);
    return errno == 0 && end != target + len && *end == '\0' ? n : -1;
}

static bool handler(int fd, const struct fake_request *req, struct fake_shared *shared)
{
    long code = number_after(req->target, "/status/");
    long n = number_after(req->target, "/big/");
    if (code > 0) {
        char body[64];
        int len = snprintf(body, sizeof(body), "status %ld", code);
        const char *extra = (code == 429 || code == 503) ? "Retry-After: 3\r\n" : "";
        return fake_respond(fd, (int)code, extra, body, (size_t)len);
    }
    if (strcmp(req->target, "/echo") == 0) {
        char body[256];
        int len = snprintf(body, sizeof(body), "%s %s", req->method, req->body);
        return fake_respond(fd, 200, "Content-Type: text/plain\r\n", body, (size_t)len);
    }
    if (n >= 0) {
        char *body = malloc((size_t)n);
        memset(body, 'x', (size_t)n);
        bool keep = fake_respond(fd, 200, "", body, (size_t)n);
        free(body);
        return keep;
    }
    if (strcmp(req->target, "/stream") == 0) {
        fake_chunked_head(fd, 200, "application/json");
        fake_chunk(fd, "{\"a\":1}\n", 8);
        fake_sleep_ms(60);
        fake_chunk(fd, "{\"b\":", 5);
        fake_sleep_ms(60);
        fake_chunk(fd, "2}\n", 3);
        fake_chunked_end(fd);
        return true;
    }
    if (strcmp(req->target, "/silent") == 0) {
        fake_chunked_head(fd, 200, "application/json");
        fake_chunk(fd, "{}\n", 3);
        fake_sleep_ms(10000);
        return false;
    }
    if (strcmp(req->target, "/slow") == 0) {
        fake_sleep_ms(3000);
        return fake_respond(fd, 200, "", "late", 4);
    }
    if (strcmp(req->target, "/stream-error") == 0) {
        fake_respond(fd, 410, "Content-Type: application/json\r\n", "{\"code\":410}", 12);
        return true;
    }
    return fake_respond(fd, 404, "", "no", 2);
}

struct fixture {
    struct ev_loop *loop;
    struct tl_http *http;
    struct fake_server srv;
    char base[64];
};

struct result {
    long status;
    double retry_after;
    size_t body_len;
    size_t streamed_len;
    struct tl_http_request *cancel_in_data; /* cancel this request from on_data */
    int calls;
    int chunks;
    enum tl_err err;
    enum tl_err data_result;
    char body[4096];
    char content_type[64];
    char streamed[4096];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->loop = ev_loop_new(EVFLAG_AUTO);
    f->http = tl_http_create(f->loop);
    if (!f->http || !fake_server_start(&f->srv, handler)) {
        tl_http_destroy(f->http);
        ev_loop_destroy(f->loop);
        free(f);
        return -1;
    }
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", f->srv.port);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tl_http_destroy(f->http);
    ev_loop_destroy(f->loop);
    fake_server_stop(&f->srv);
    free(f);
    return 0;
}

static void on_done(void *arg, enum tl_err err, const struct tl_http_response *resp)
{
    struct result *r = arg;
    r->calls++;
    r->err = err;
    r->status = resp->status;
    r->retry_after = resp->retry_after;
    r->body_len = resp->body_len < sizeof(r->body) ? resp->body_len : sizeof(r->body) - 1;
    memcpy(r->body, resp->body, r->body_len);
    r->body[r->body_len] = '\0';
    snprintf(r->content_type, sizeof(r->content_type), "%s",
             resp->content_type ? resp->content_type : "");
}

static enum tl_err on_data(void *arg, long status, const char *data, size_t len)
{
    struct result *r = arg;
    assert_int_equal(status, 200);
    assert_true(r->streamed_len + len < sizeof(r->streamed));
    memcpy(r->streamed + r->streamed_len, data, len);
    r->streamed_len += len;
    r->streamed[r->streamed_len] = '\0';
    r->chunks++;
    if (r->cancel_in_data) {
        tl_http_cancel(r->cancel_in_data);
        r->cancel_in_data = NULL;
    }
    return r->data_result;
}

static void expire(struct ev_loop *loop, ev_timer *w, int revents)
{
    *(bool *)w->data = true;
}

/* Runs the loop until *done is set or seconds pass; returns false on the time limit. */
static bool run_until(struct ev_loop *loop, const int *done, int want, double seconds)
{
    bool expired = false;
    ev_timer limit;
    ev_timer_init(&limit, expire, seconds, 0.);
    limit.data = &expired;
    ev_timer_start(loop, &limit);
    while (*done < want && !expired)
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &limit);
    return *done >= want;
}

static void start(struct fixture *f, struct tl_http_request_opts *opts, const char *path,
                  struct result *r, struct tl_http_request **out)
{
    char url[256];
    snprintf(url, sizeof(url), "%s%s", f->base, path);
    opts->url = url;
    opts->on_done = on_done;
    opts->arg = r;
    assert_int_equal(tl_http_start(f->http, opts, out), TL_OK);
}

static void test_status_codes_and_body(void **state)
{
    struct fixture *f = *state;
    struct result ok = {0}, missing = {0}, busy = {0};
    struct tl_http_request_opts o1 = {0}, o2 = {0}, o3 = {0};
    start(f, &o1, "/status/200", &ok, NULL);
    start(f, &o2, "/status/404", &missing, NULL);
    start(f, &o3, "/status/429", &busy, NULL);
    run_until(f->loop, &ok.calls, 1, 5);
    run_until(f->loop, &missing.calls, 1, 5);
    run_until(f->loop, &busy.calls, 1, 5);
    assert_int_equal(ok.err, TL_OK);
    assert_int_equal(ok.status, 200);
    assert_string_equal(ok.body, "status 200");
    assert_true(ok.retry_after < 0);
    assert_int_equal(missing.err, TL_OK);
    assert_int_equal(missing.status, 404);
    assert_string_equal(missing.body, "status 404");
    assert_int_equal(busy.status, 429);
    assert_true(busy.retry_after == 3.0);
    assert_int_equal(tl_http_active(f->http), 0);
}

static void test_method_body_and_headers_are_sent(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    const char *headers[] = {"X-Test: one", "Content-Type: text/plain", NULL};
    char body[] = "hello";
    struct tl_http_request_opts o = {
        .method = "PUT", .headers = headers, .body = body, .body_len = 5};
    start(f, &o, "/echo", &r, NULL);
    body[0] = 'J'; /* the body was copied at start */
    assert_true(run_until(f->loop, &r.calls, 1, 5));
    assert_int_equal(r.err, TL_OK);
    assert_string_equal(r.body, "PUT hello");
    assert_string_equal(r.content_type, "text/plain");
    assert_non_null(strstr(f->srv.shared->last_headers, "X-Test: one"));
}

static void test_stream_is_delivered_in_pieces(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    struct tl_http_request_opts o = {.on_data = on_data};
    start(f, &o, "/stream", &r, NULL);
    assert_true(run_until(f->loop, &r.calls, 1, 5));
    assert_int_equal(r.err, TL_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.streamed, "{\"a\":1}\n{\"b\":2}\n");
    assert_true(r.chunks >= 2); /* the pieces came 60 ms apart */
    assert_int_equal(r.body_len, 0);
}

static void test_stream_error_status_is_buffered(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    struct tl_http_request_opts o = {.on_data = on_data};
    start(f, &o, "/stream-error", &r, NULL);
    assert_true(run_until(f->loop, &r.calls, 1, 5));
    assert_int_equal(r.err, TL_OK);
    assert_int_equal(r.status, 410);
    assert_int_equal(r.chunks, 0);
    assert_string_equal(r.body, "{\"code\":410}");
}

static void test_body_cap(void **state)
{
    struct fixture *f = *state;
    struct result small = {0}, big = {0};
    struct tl_http_request_opts o1 = {.max_body = 1000}, o2 = {.max_body = 1000};
    start(f, &o1, "/big/1000", &small, NULL);
    start(f, &o2, "/big/200000", &big, NULL);
    assert_true(run_until(f->loop, &small.calls, 1, 5));
    assert_true(run_until(f->loop, &big.calls, 1, 5));
    assert_int_equal(small.err, TL_OK);
    assert_int_equal(small.body_len, 1000);
    assert_int_equal(big.err, TL_ETOOBIG);
}

static void test_stream_cap_on_undelivered_bytes(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    /* Each piece is handed over before the next arrives, so a small cap is enough. */
    struct tl_http_request_opts o = {.on_data = on_data, .max_body = 16};
    start(f, &o, "/stream", &r, NULL);
    assert_true(run_until(f->loop, &r.calls, 1, 5));
    assert_int_equal(r.err, TL_OK);
    assert_string_equal(r.streamed, "{\"a\":1}\n{\"b\":2}\n");
}

static void test_timeout(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    struct tl_http_request_opts o = {.timeout = 0.2};
    start(f, &o, "/slow", &r, NULL);
    assert_true(run_until(f->loop, &r.calls, 1, 5));
    assert_int_equal(r.err, TL_ETIMEDOUT);
}

static void test_stall_timeout_on_silent_stream(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    struct tl_http_request_opts o = {.on_data = on_data, .stall_timeout = 0.3};
    start(f, &o, "/silent", &r, NULL);
    ev_tstamp began = ev_time();
    assert_true(run_until(f->loop, &r.calls, 1, 5));
    assert_int_equal(r.err, TL_ETIMEDOUT);
    assert_string_equal(r.streamed, "{}\n");
    assert_true(ev_time() - began < 4); /* the stall was noticed, not the server's close */
    assert_int_equal(tl_http_active(f->http), 0);
}

static void cancel_now(struct ev_loop *loop, ev_timer *w, int revents)
{
    tl_http_cancel(w->data);
}

static void test_cancel_never_calls_back(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    struct tl_http_request *req = NULL;
    struct tl_http_request_opts o = {0};
    start(f, &o, "/slow", &r, &req);
    ev_timer t;
    ev_timer_init(&t, cancel_now, 0.1, 0.);
    t.data = req;
    ev_timer_start(f->loop, &t);
    assert_false(run_until(f->loop, &r.calls, 1, 0.5));
    assert_int_equal(r.calls, 0);
    assert_int_equal(tl_http_active(f->http), 0);
}

static void test_cancel_from_data_callback(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    struct tl_http_request *req = NULL;
    struct tl_http_request_opts o = {.on_data = on_data};
    start(f, &o, "/stream", &r, &req);
    r.cancel_in_data = req;
    assert_false(run_until(f->loop, &r.calls, 1, 0.5));
    assert_int_equal(r.calls, 0);
    assert_int_equal(r.chunks, 1);
    assert_int_equal(tl_http_active(f->http), 0);
}

static void test_data_callback_error_aborts(void **state)
{
    struct fixture *f = *state;
    struct result r = {.data_result = TL_EINVAL};
    struct tl_http_request_opts o = {.on_data = on_data};
    start(f, &o, "/stream", &r, NULL);
    assert_true(run_until(f->loop, &r.calls, 1, 5));
    assert_int_equal(r.err, TL_EINVAL);
    assert_int_equal(r.chunks, 1);
}

static void test_keep_alive_reuses_connection(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 10; i++) {
        struct result r = {0};
        struct tl_http_request_opts o = {0};
        start(f, &o, "/status/200", &r, NULL);
        assert_true(run_until(f->loop, &r.calls, 1, 5));
        assert_int_equal(r.status, 200);
    }
    assert_int_equal(f->srv.shared->requests, 10);
    assert_int_equal(f->srv.shared->connections, 1);
}

static void test_refused_connection_is_io_error(void **state)
{
    struct fixture *f = *state;
    /* Bind a port, then close it: nothing listens there. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(addr);
    assert_int_equal(bind(s, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&addr, &alen), 0);
    close(s);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", ntohs(addr.sin_port));
    struct result r = {0};
    struct tl_http_request_opts o = {.url = url, .on_done = on_done, .arg = &r};
    assert_int_equal(tl_http_start(f->http, &o, NULL), TL_OK);
    assert_true(run_until(f->loop, &r.calls, 1, 5));
    assert_int_equal(r.err, TL_EIO);
    assert_int_equal(r.status, 0);
}

static void test_failed_start_never_calls_back(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    struct tl_http_request_opts o = {.url = NULL, .on_done = on_done, .arg = &r};
    assert_int_equal(tl_http_start(f->http, &o, NULL), TL_EINVAL);
    struct tl_http_tls tls = {.server_name = "bad name with spaces"};
    struct tl_http_request_opts o2 = {
        .url = "not a url", .on_done = on_done, .arg = &r, .tls = &tls};
    assert_int_not_equal(tl_http_start(f->http, &o2, NULL), TL_OK);
    assert_false(run_until(f->loop, &r.calls, 1, 0.2));
    assert_int_equal(tl_http_active(f->http), 0);
}

static void test_server_name_sets_host_and_keeps_address(void **state)
{
    struct fixture *f = *state;
    struct result r = {0};
    struct tl_http_tls tls = {.server_name = "kube.example"};
    struct tl_http_request_opts o = {.tls = &tls};
    start(f, &o, "/status/200", &r, NULL);
    assert_true(run_until(f->loop, &r.calls, 1, 5));
    assert_int_equal(r.status, 200);
    char want[64];
    snprintf(want, sizeof(want), "Host: kube.example:%d", f->srv.port);
    assert_non_null(strstr(f->srv.shared->last_headers, want));
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static void test_no_fd_leak_after_many_requests(void **state)
{
    struct fixture *f = *state;
    int before = count_fds();
    struct tl_http *http = tl_http_create(f->loop);
    static struct result results[200];
    memset(results, 0, sizeof(results));
    int done = 0;
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 20; i++) {
            char url[128];
            snprintf(url, sizeof(url), "%s/status/%d", f->base, i % 2 ? 200 : 500);
            struct tl_http_request_opts o = {
                .url = url, .on_done = on_done, .arg = &results[round * 20 + i]};
            assert_int_equal(tl_http_start(http, &o, NULL), TL_OK);
        }
        while (tl_http_active(http) > 0 && run_until(f->loop, &done, 1, 0.01))
            ;
        for (int spin = 0; spin < 500 && tl_http_active(http) > 0; spin++)
            run_until(f->loop, &done, 1, 0.01);
    }
    for (int i = 0; i < 200; i++)
        assert_int_equal(results[i].calls, 1);
    tl_http_destroy(http);
    assert_int_equal(count_fds(), before);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_status_codes_and_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_method_body_and_headers_are_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_is_delivered_in_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_error_status_is_buffered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_cap_on_undelivered_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stall_timeout_on_silent_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_never_calls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_from_data_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_callback_error_aborts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_reuses_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_connection_is_io_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_start_never_calls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_name_sets_host_and_keeps_address, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_fd_leak_after_many_requests, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
