/* The HTTP + WebSocket server on a real libev loop, driven by raw sockets and lib/http.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>

#include "http.h"
#include "httpd.h"
#include "log.h"
#include "metrics.h"

#define MAX_BODY 4096

/* ---- fixture ---- */

struct fx {
    struct ev_loop *loop;
    struct tl_httpd *h;
    struct tl_http *http;
    struct tl_metrics *metrics;
    int port;

    bool ready;
    const char *not_ready_reason;

    struct tl_httpd_req *held; /* an async request the test answers itself */
    int held_calls;
    int cancel_calls;
    bool held_gone_in_cancel;
    bool answer_in_cancel;
    ev_timer later; /* answers /async after a delay */

    int ws_opens;
    int ws_closes;
    char ws_last_message[256];
    const char *ws_open_auth;
};

static const char index_html[] =
    "<!doctype html><title>Tailor</title><script src=/app.js></script>";
static const char app_js[] = "console.log('tailor');";
static const struct tl_httpd_file files[] = {
    {"/index.html", "text/html; charset=utf-8", (const unsigned char *)index_html,
     sizeof(index_html) - 1, NULL},
    {"/app.js", "text/javascript", (const unsigned char *)app_js, sizeof(app_js) - 1,
     "public, max-age=60"},
};

static void hello(void *arg, struct tl_httpd_req *req)
{
    tl_httpd_respond(req, 200, "text/plain", "hello", 5);
}

/* Echoes the method, the body, the Content-Type and two headers, one line each. */
static void echo(void *arg, struct tl_httpd_req *req)
{
    size_t len = 0;
    const char *body = tl_httpd_req_body(req, &len);
    const char *auth = tl_httpd_req_header(req, "authorization");
    const char *rid = tl_httpd_req_header(req, "X-Request-Id");
    const char *other = tl_httpd_req_header(req, "X-Not-Captured");
    char out[MAX_BODY + 512];
    int n = snprintf(out, sizeof(out), "%s\n%zu:%s\n%s\n%s\n%s\n%s", tl_httpd_req_method(req), len,
                     body, tl_httpd_req_header(req, "Content-Type") ? "ct" : "no-ct",
                     auth ? auth : "-", rid ? rid : "-", other ? other : "-");
    assert_true(n > 0 && (size_t)n < sizeof(out));
    assert_int_equal(tl_httpd_req_add_header(req, "X-Echo", "yes"), TL_OK);
    assert_int_equal(tl_httpd_req_add_header(req, "Bad\nName", "x"), TL_EINVAL);
    assert_int_equal(tl_httpd_req_add_header(req, "X-Bad", "a\r\nInjected: 1"), TL_EINVAL);
    tl_httpd_respond(req, 200, "text/plain", out, (size_t)n);
}

static void query(void *arg, struct tl_httpd_req *req)
{
    const char *a = tl_httpd_req_param(req, "a");
    const char *b = tl_httpd_req_param(req, "b");
    const char *flag = tl_httpd_req_param(req, "flag");
    const char *none = tl_httpd_req_param(req, "none");
    /* The last parameter, through the iteration interface. */
    const char *last_name = NULL;
    const char *last_value = NULL;
    size_t count = tl_httpd_req_param_count(req);
    assert_true(count == 0 || tl_httpd_req_param_at(req, count - 1, &last_name, &last_value));
    assert_false(tl_httpd_req_param_at(req, count, &last_name, &last_value));
    char out[512];
    int n = snprintf(out, sizeof(out),
                     "a=[%s] b=[%s] flag=[%s] none=%s count=%zu last=%s=%s q=%s path=%s",
                     a ? a : "NULL", b ? b : "NULL", flag ? flag : "NULL", none ? "set" : "NULL",
                     count, last_name ? last_name : "-", last_value ? last_value : "-",
                     tl_httpd_req_query(req), tl_httpd_req_path(req));
    tl_httpd_respond(req, 200, "text/plain", out, (size_t)n);
}

static void items(void *arg, struct tl_httpd_req *req)
{
    const char *path = tl_httpd_req_path(req);
    tl_httpd_respond(req, 200, "text/plain", path, strlen(path));
}

static void items_exact(void *arg, struct tl_httpd_req *req)
{
    tl_httpd_respond(req, 200, "text/plain", "exact", 5);
}

static void answer_later(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct fx *fx = w->data;
    struct tl_httpd_req *req = fx->held;
    fx->held = NULL;
    tl_httpd_respond(req, 202, "application/json", "{\"later\":true}", 14);
}

/* Answers from a timer 300 ms later, as a handler waiting on the API server would. */
static void async_handler(void *arg, struct tl_httpd_req *req)
{
    struct fx *fx = arg;
    fx->held = req;
    fx->held_calls++;
    ev_timer_init(&fx->later, answer_later, 0.3, 0);
    fx->later.data = fx;
    ev_timer_start(fx->loop, &fx->later);
}

static void on_cancel(void *arg, struct tl_httpd_req *req)
{
    struct fx *fx = arg;
    fx->cancel_calls++;
    fx->held_gone_in_cancel = tl_httpd_req_gone(req);
    if (fx->answer_in_cancel) {
        fx->held = NULL;
        tl_httpd_respond_error(req, 503, "nobody is listening");
    }
}

/* Keeps the request; the test answers it (or not). */
static void hold_handler(void *arg, struct tl_httpd_req *req)
{
    struct fx *fx = arg;
    fx->held = req;
    fx->held_calls++;
    tl_httpd_req_on_cancel(req, on_cancel, fx);
}

static bool ready(void *arg, const char **reason)
{
    const struct fx *fx = arg;
    if (!fx->ready)
        *reason = fx->not_ready_reason;
    return fx->ready;
}

static void ws_open(void *arg, struct tl_httpd_ws_conn *conn, const struct tl_httpd_req *req)
{
    struct fx *fx = arg;
    fx->ws_opens++;
    fx->ws_open_auth = tl_httpd_req_param(req, "watch") != NULL ? "param" : "none";
    tl_httpd_ws_set_data(conn, fx);
    assert_ptr_equal(tl_httpd_ws_data(conn), fx);
    assert_int_equal(tl_httpd_ws_send(conn, "{\"hello\":1}", 11), TL_OK);
}

static void ws_message(void *arg, struct tl_httpd_ws_conn *conn, const char *data, size_t len)
{
    struct fx *fx = arg;
    if (len == 3 && memcmp(data, "bye", 3) == 0) {
        tl_httpd_ws_close(conn, 1000, "bye");
        return;
    }
    snprintf(fx->ws_last_message, sizeof(fx->ws_last_message), "%.*s", (int)len, data);
    char reply[300];
    int n = snprintf(reply, sizeof(reply), "echo:%.*s", (int)len, data);
    assert_int_equal(tl_httpd_ws_send(conn, reply, (size_t)n), TL_OK);
}

static void ws_close(void *arg, struct tl_httpd_ws_conn *conn)
{
    struct fx *fx = arg;
    fx->ws_closes++;
}

static int ws_authorize(void *arg, const struct tl_httpd_req *req)
{
    const char *auth = tl_httpd_req_header(req, "Authorization");
    return auth != NULL && strcmp(auth, "Bearer good") == 0 ? 0 : 401;
}

static int setup(void **state)
{
    tl_log_configure(TL_LOG_OFF, TL_LOG_TEXT, NULL);
    struct fx *fx = calloc(1, sizeof(*fx));
    assert_non_null(fx);
    fx->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(fx->loop);
    fx->ready = true;
    static const char *const extra[] = {"X-Request-Id", NULL};
    struct tl_httpd_opts opts = {
        .bind = "127.0.0.1:0",
        .max_body = MAX_BODY,
        .header_timeout = 2,
        .body_timeout = 2,
        .idle_timeout = 2,
        .async_timeout = 3,
        .extra_headers = extra,
    };
    assert_int_equal(tl_httpd_create(fx->loop, &opts, &fx->h), TL_OK);
    fx->port = tl_httpd_port(fx->h);
    assert_true(fx->port > 0);

    struct tl_httpd *h = fx->h;
    assert_int_equal(tl_httpd_route(h, "GET", "/hello", hello, fx), TL_OK);
    assert_int_equal(tl_httpd_route(h, "POST", "/echo", echo, fx), TL_OK);
    assert_int_equal(tl_httpd_route(h, "PUT", "/echo", echo, fx), TL_OK);
    assert_int_equal(tl_httpd_route(h, "GET", "/query", query, fx), TL_OK);
    assert_int_equal(tl_httpd_route(h, NULL, "/items/*", items, fx), TL_OK);
    assert_int_equal(tl_httpd_route(h, "GET", "/items/special", items_exact, fx), TL_OK);
    assert_int_equal(tl_httpd_route(h, "GET", "/async", async_handler, fx), TL_OK);
    assert_int_equal(tl_httpd_route(h, "POST", "/async", async_handler, fx), TL_OK);
    assert_int_equal(tl_httpd_route(h, "GET", "/hold", hold_handler, fx), TL_OK);
    assert_int_equal(tl_httpd_route(h, "POST", "/hold", hold_handler, fx), TL_OK);
    assert_int_equal(tl_httpd_static(h, files, 2), TL_OK);
    assert_int_equal(tl_httpd_health(h, ready, fx), TL_OK);
    struct tl_httpd_ws_opts ws = {
        .on_open = ws_open, .on_message = ws_message, .on_close = ws_close, .arg = fx};
    assert_int_equal(tl_httpd_ws_endpoint(h, "/api/v1/watch", &ws), TL_OK);
    struct tl_httpd_ws_opts small = {
        .max_queue = 4, .max_queue_bytes = 1 << 20, .arg = fx, .on_close = ws_close};
    assert_int_equal(tl_httpd_ws_endpoint(h, "/ws/small", &small), TL_OK);
    struct tl_httpd_ws_opts priv = {.authorize = ws_authorize, .arg = fx};
    assert_int_equal(tl_httpd_ws_endpoint(h, "/ws/private", &priv), TL_OK);

    fx->metrics = tl_metrics_create(0);
    assert_non_null(fx->metrics);
    assert_int_equal(tl_metrics_serve(h, fx->metrics), TL_OK);
    fx->http = tl_http_create(fx->loop);
    assert_non_null(fx->http);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    ev_timer_stop(fx->loop, &fx->later);
    tl_http_destroy(fx->http);
    tl_httpd_destroy(fx->h);
    /* A request the handler still holds outlives the server and is answered into the void. */
    if (fx->held != NULL)
        tl_httpd_respond(fx->held, 200, NULL, NULL, 0);
    tl_metrics_destroy(fx->metrics);
    ev_loop_destroy(fx->loop);
    free(fx);
    return 0;
}

/* ---- running the loop ---- */

typedef bool (*done_fn)(void *arg);

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    *(bool *)w->data = true;
}

/* Turns the loop until done(arg) or timeout seconds pass; returns done(arg). */
static bool run_until(struct fx *fx, done_fn done, void *arg, double timeout)
{
    bool expired = false;
    ev_timer t;
    ev_timer_init(&t, deadline_cb, timeout, 0);
    t.data = &expired;
    ev_timer_start(fx->loop, &t);
    while (!done(arg) && !expired)
        ev_run(fx->loop, EVRUN_ONCE);
    ev_timer_stop(fx->loop, &t);
    return done(arg);
}

static bool never(void *arg)
{
    return false;
}

static void run_for(struct fx *fx, double seconds)
{
    run_until(fx, never, NULL, seconds);
}

/* ---- a raw client on the same loop ---- */

struct raw {
    struct fx *fx;
    int fd;
    ev_io rio;
    ev_io wio;
    const char *out;
    size_t out_len;
    size_t out_off;
    char *in;
    size_t in_len;
    size_t in_cap;
    bool eof;
    bool reading;
};

static void raw_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct raw *r = w->data;
    if (!r->reading) {
        ev_io_stop(loop, w);
        return;
    }
    if (r->in_len + 65536 + 1 > r->in_cap) {
        r->in_cap = r->in_cap * 2 + 65536 + 1;
        char *in = realloc(r->in, r->in_cap);
        assert_non_null(in);
        r->in = in;
    }
    ssize_t n = recv(r->fd, r->in + r->in_len, 65536, 0);
    if (n > 0) {
        r->in_len += (size_t)n;
        r->in[r->in_len] = '\0';
    }
    else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        r->eof = true;
        ev_io_stop(loop, w);
    }
}

static void raw_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct raw *r = w->data;
    while (r->out_off < r->out_len) {
        ssize_t n = send(r->fd, r->out + r->out_off, r->out_len - r->out_off, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            r->out_off = r->out_len;
            r->eof = true;
            break;
        }
        r->out_off += (size_t)n;
    }
    ev_io_stop(loop, w);
}

static void raw_open(struct fx *fx, struct raw *r, int port)
{
    memset(r, 0, sizeof(*r));
    r->fx = fx;
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(r->fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(r->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) | O_NONBLOCK), 0);
    ev_io_init(&r->rio, raw_read_cb, r->fd, EV_READ);
    ev_io_init(&r->wio, raw_write_cb, r->fd, EV_WRITE);
    r->rio.data = r;
    r->wio.data = r;
    r->reading = true;
    ev_io_start(fx->loop, &r->rio);
}

static void raw_close(struct raw *r)
{
    if (r->fd >= 0) {
        ev_io_stop(r->fx->loop, &r->rio);
        ev_io_stop(r->fx->loop, &r->wio);
        close(r->fd);
        r->fd = -1;
    }
    free(r->in);
    r->in = NULL;
}

static bool raw_sent(void *arg)
{
    const struct raw *r = arg;
    return r->out_off == r->out_len;
}

/* Sends data (borrowed until sent) while the loop turns, so big writes cannot deadlock. */
static void raw_send(struct raw *r, const char *data, size_t len)
{
    r->out = data;
    r->out_len = len;
    r->out_off = 0;
    ev_io_start(r->fx->loop, &r->wio);
    assert_true(run_until(r->fx, raw_sent, r, 10));
}

static void raw_send_str(struct raw *r, const char *s)
{
    raw_send(r, s, strlen(s));
}

/* A parsed response at the front of the raw buffer. */
struct resp {
    int status;
    char head[8192];
    const char *body;
    size_t body_len;
    size_t total; /* bytes of the buffer it occupies */
};

/* Header value from a response head (case-insensitive name), copied into out; false if absent. */
static bool resp_header(const struct resp *resp, const char *name, char *out, size_t len)
{
    size_t nlen = strlen(name);
    for (const char *line = strstr(resp->head, "\r\n"); line != NULL;
         line = strstr(line + 2, "\r\n")) {
        const char *p = line + 2;
        if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            p += nlen + 1;
            while (*p == ' ')
                p++;
            const char *e = strstr(p, "\r\n");
            size_t n = e != NULL ? (size_t)(e - p) : strlen(p);
            if (n >= len)
                n = len - 1;
            memcpy(out, p, n);
            out[n] = '\0';
            return true;
        }
    }
    return false;
}

/* Parses a complete response at the front of r->in; false while incomplete. */
static bool parse_resp(const struct raw *r, struct resp *resp)
{
    if (r->in == NULL)
        return false;
    const char *end = strstr(r->in, "\r\n\r\n");
    if (end == NULL)
        return false;
    size_t head_len = (size_t)(end - r->in) + 4;
    if (head_len >= sizeof(resp->head))
        return false;
    memcpy(resp->head, r->in, head_len);
    resp->head[head_len] = '\0';
    if (strncmp(resp->head, "HTTP/1.", 7) != 0 || strlen(resp->head) < 12)
        return false;
    char *endp = NULL;
    long status = strtol(resp->head + 9, &endp, 10);
    if (endp != resp->head + 12)
        return false;
    resp->status = (int)status;
    char cl[32];
    size_t body_len = 0;
    if (resp_header(resp, "Content-Length", cl, sizeof(cl)))
        body_len = strtoul(cl, NULL, 10);
    else if (resp->status != 101 && resp->status != 204 && resp->status != 304 && !r->eof)
        return false; /* a body delimited by the close */
    else if (r->eof && resp->status != 101)
        body_len = r->in_len - head_len;
    if (r->in_len < head_len + body_len)
        return false;
    resp->body = r->in + head_len;
    resp->body_len = body_len;
    resp->total = head_len + body_len;
    return true;
}

struct wait_resp {
    struct raw *r;
    struct resp *resp;
};

static bool resp_ready(void *arg)
{
    struct wait_resp *w = arg;
    return parse_resp(w->r, w->resp) || w->r->eof;
}

/* Waits for one response; false when the connection closed first (or the wait timed out). */
static bool raw_response(struct raw *r, struct resp *resp, double timeout)
{
    memset(resp, 0, sizeof(*resp));
    struct wait_resp w = {r, resp};
    run_until(r->fx, resp_ready, &w, timeout);
    return parse_resp(r, resp);
}

/* Drops the first response from the buffer (for keep-alive). */
static void raw_consume(struct raw *r, const struct resp *resp)
{
    memmove(r->in, r->in + resp->total, r->in_len - resp->total + 1);
    r->in_len -= resp->total;
}

static bool raw_eof(void *arg)
{
    return ((const struct raw *)arg)->eof;
}

/* One request on a new connection; returns the status (0 if none) and fills resp. */
static int request(struct fx *fx, struct raw *r, const char *text, struct resp *resp)
{
    raw_open(fx, r, fx->port);
    raw_send_str(r, text);
    if (!raw_response(r, resp, 5))
        return 0;
    return resp->status;
}

static bool body_is(const struct resp *resp, const char *expected)
{
    return resp->body_len == strlen(expected) && memcmp(resp->body, expected, resp->body_len) == 0;
}

/* ---- tests: routing ---- */

static void test_get_returns_body_and_security_headers(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    struct resp resp;
    assert_int_equal(request(fx, &r, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &resp), 200);
    assert_true(body_is(&resp, "hello"));
    char v[512];
    assert_true(resp_header(&resp, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "text/plain");
    assert_true(resp_header(&resp, "X-Content-Type-Options", v, sizeof(v)));
    assert_string_equal(v, "nosniff");
    assert_true(resp_header(&resp, "Content-Security-Policy", v, sizeof(v)));
    assert_non_null(strstr(v, "default-src 'self'"));
    assert_true(resp_header(&resp, "Cache-Control", v, sizeof(v)));
    assert_string_equal(v, "no-store");
    assert_false(resp_header(&resp, "Access-Control-Allow-Origin", v, sizeof(v)));
    raw_close(&r);
}

static void test_unknown_path_is_404_json(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    struct resp resp;
    assert_int_equal(request(fx, &r, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", &resp), 404);
    char v[256];
    assert_true(resp_header(&resp, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "application/json");
    assert_true(
        body_is(&resp, "{\"status\":404,\"error\":\"Not Found\",\"message\":\"no such path\"}"));
    raw_close(&r);
}

static void test_wrong_method_is_405_with_allow(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    struct resp resp;
    assert_int_equal(request(fx, &r, "DELETE /hello HTTP/1.1\r\nHost: x\r\n\r\n", &resp), 405);
    char v[256];
    assert_true(resp_header(&resp, "Allow", v, sizeof(v)));
    assert_string_equal(v, "GET, HEAD");
    assert_non_null(strstr(resp.body, "\"status\":405"));
    raw_close(&r);

    /* Also after reading a body, and the connection stays usable. */
    raw_open(fx, &r, fx->port);
    raw_send_str(&r, "PATCH /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                     "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(raw_response(&r, &resp, 5));
    assert_int_equal(resp.status, 405);
    assert_true(resp_header(&resp, "Allow", v, sizeof(v)));
    assert_string_equal(v, "POST, PUT");
    raw_consume(&r, &resp);
    assert_true(raw_response(&r, &resp, 5));
    assert_int_equal(resp.status, 200);
    raw_close(&r);
}

static void test_prefix_and_exact_routes(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    struct resp resp;
    assert_int_equal(
        request(fx, &r, "PUT /items/a/b HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &resp),
        200);
    assert_true(body_is(&resp, "/items/a/b"));
    raw_close(&r);
    assert_int_equal(request(fx, &r, "GET /items/special HTTP/1.1\r\nHost: x\r\n\r\n", &resp), 200);
    assert_true(body_is(&resp, "exact"));
    raw_close(&r);
    /* "/items" itself is not under the "/items/" prefix. */
    assert_int_equal(request(fx, &r, "GET /items HTTP/1.1\r\nHost: x\r\n\r\n", &resp), 404);
    raw_close(&r);

    assert_int_equal(tl_httpd_route(fx->h, "GET", "/hello", hello, fx), TL_ECONFLICT);
    assert_int_equal(tl_httpd_route(fx->h, "GET", "relative", hello, fx), TL_EINVAL);
    assert_int_equal(tl_httpd_route(fx->h, "POST", "/hello", hello, fx), TL_OK);
}

static void test_keep_alive_serves_several_requests(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    struct resp resp;
    raw_open(fx, &r, fx->port);
    for (int i = 0; i < 3; i++) {
        raw_send_str(&r, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_true(raw_response(&r, &resp, 5));
        assert_int_equal(resp.status, 200);
        raw_consume(&r, &resp);
    }
    assert_false(r.eof);
    raw_close(&r);
}

static void test_query_parsing(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    struct resp resp;
    assert_int_equal(request(fx, &r,
                             "GET /query?a=1&b=x%20y%26z&b=second&flag HTTP/1.1\r\nHost: x\r\n\r\n",
                             &resp),
                     200);
    char body[512];
    snprintf(body, sizeof(body), "%.*s", (int)resp.body_len, resp.body);
    assert_string_equal(body, "a=[1] b=[x y&z] flag=[] none=NULL count=4 last=flag= "
                              "q=a=1&b=x%20y%26z&b=second&flag path=/query");
    raw_close(&r);
}

static void test_post_body_and_headers(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    struct resp resp;
    assert_int_equal(request(fx, &r,
                             "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             "Authorization: Bearer abc.def\r\nX-Request-Id: r-42\r\n"
                             "X-Not-Captured: 1\r\nContent-Length: 11\r\n\r\n{\"a\":\"b c\"}",
                             &resp),
                     200);
    char body[512];
    snprintf(body, sizeof(body), "%.*s", (int)resp.body_len, resp.body);
    assert_string_equal(body, "POST\n11:{\"a\":\"b c\"}\nct\nBearer abc.def\nr-42\n-");
    char v[64];
    assert_true(resp_header(&resp, "X-Echo", v, sizeof(v)));
    assert_string_equal(v, "yes");
    assert_false(resp_header(&resp, "Injected", v, sizeof(v)));
    raw_close(&r);
}

static void test_head_has_length_but_no_body(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    raw_open(fx, &r, fx->port);
    raw_send_str(&r,
                 "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    /* The HEAD answer announces 5 bytes; the next bytes are already the GET's answer. */
    assert_true(run_until(fx, raw_eof, &r, 0.5) == false);
    const char *second = strstr(r.in, "\r\n\r\nHTTP/1.1 200");
    assert_non_null(second);
    assert_non_null(strstr(r.in, "content-length: 5\r\n"));
    assert_non_null(strstr(second, "\r\n\r\nhello"));
    raw_close(&r);
}

/* ---- tests: bodies ---- */

static void test_body_too_large_is_413(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    struct resp resp;
    /* Announced too big: refused before the body is read, then the connection closes. */
    assert_int_equal(
        request(fx, &r, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n", &resp),
        413);
    assert_non_null(strstr(resp.body, "exceeds 4096 bytes"));
    assert_true(run_until(fx, raw_eof, &r, 5));
    raw_close(&r);
}

struct done {
    bool done;
    enum tl_err err;
    long status;
    char body[8192];
    size_t body_len;
};

static void http_done(void *arg, enum tl_err err, const struct tl_http_response *resp)
{
    struct done *d = arg;
    d->done = true;
    d->err = err;
    d->status = resp != NULL ? resp->status : 0;
    if (resp != NULL && resp->body != NULL) {
        d->body_len = resp->body_len < sizeof(d->body) - 1 ? resp->body_len : sizeof(d->body) - 1;
        memcpy(d->body, resp->body, d->body_len);
        d->body[d->body_len] = '\0';
    }
}

static bool http_finished(void *arg)
{
    return ((const struct done *)arg)->done;
}

/* A request through lib/http.h (libcurl multi on the same loop). */
static void http_request(struct fx *fx, const char *method, const char *url_path, const char *body,
                         size_t body_len, const struct tl_http_tls *tls, int port, struct done *d)
{
    char url[256];
    snprintf(url, sizeof(url), "%s://127.0.0.1:%d%s", tls != NULL ? "https" : "http", port,
             url_path);
    memset(d, 0, sizeof(*d));
    struct tl_http_request_opts o = {.method = method,
                                     .url = url,
                                     .body = body,
                                     .body_len = body_len,
                                     .timeout = 60, /* generous: TLS under valgrind is slow */
                                     .tls = tls,
                                     .on_done = http_done,
                                     .arg = d};
    assert_int_equal(tl_http_start(fx->http, &o, NULL), TL_OK);
    assert_true(run_until(fx, http_finished, d, 90));
}

static void test_libcurl_client_post_and_413(void **state)
{
    struct fx *fx = *state;
    struct done d;
    http_request(fx, "POST", "/echo", "{\"x\":1}", 7, NULL, fx->port, &d);
    assert_int_equal(d.err, TL_OK);
    assert_int_equal(d.status, 200);
    assert_non_null(strstr(d.body, "7:{\"x\":1}"));

    /* A real body one byte over the cap. */
    char *big = malloc(MAX_BODY + 1);
    assert_non_null(big);
    memset(big, 'a', MAX_BODY + 1);
    http_request(fx, "POST", "/echo", big, MAX_BODY + 1, NULL, fx->port, &d);
    assert_int_equal(d.err, TL_OK);
    assert_int_equal(d.status, 413);
    /* Exactly at the cap is fine. */
    http_request(fx, "POST", "/echo", big, MAX_BODY, NULL, fx->port, &d);
    assert_int_equal(d.status, 200);
    free(big);
}

static void test_chunked_request_body_is_411(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    struct resp resp;
    assert_int_equal(request(fx, &r,
                             "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "3\r\nabc\r\n0\r\n\r\n",
                             &resp),
                     411);
    char v[64];
    assert_true(resp_header(&resp, "Connection", v, sizeof(v)));
    assert_string_equal(v, "close");
    assert_true(run_until(fx, raw_eof, &r, 5));
    raw_close(&r);
}

/* ---- tests: async ---- */

static void test_async_response_does_not_block_the_loop(void **state)
{
    struct fx *fx = *state;
    struct raw slow;
    struct raw fast;
    struct resp rs;
    struct resp rf;
    raw_open(fx, &slow, fx->port);
    raw_send_str(&slow, "GET /async HTTP/1.1\r\nHost: x\r\n\r\n");
    raw_open(fx, &fast, fx->port);
    raw_send_str(&fast, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    /* /healthz is answered while /async is still waiting for its timer. */
    assert_true(raw_response(&fast, &rf, 5));
    assert_int_equal(rf.status, 200);
    assert_int_equal(fx->held_calls, 1);
    assert_false(parse_resp(&slow, &rs));
    assert_true(raw_response(&slow, &rs, 5));
    assert_int_equal(rs.status, 202);
    assert_true(body_is(&rs, "{\"later\":true}"));
    raw_close(&slow);
    raw_close(&fast);
}

/* An empty POST is handed to its handler once, though libwebsockets also reports its (empty)
 * body as done: a second hand-out answered one request twice and crashed the loop. */
static void test_empty_post_is_handled_once(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    struct resp resp;
    raw_open(fx, &r, fx->port);
    raw_send_str(&r, "POST /async HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_true(raw_response(&r, &resp, 5));
    assert_int_equal(resp.status, 202);
    assert_int_equal(fx->held_calls, 1);
    raw_close(&r);
}

static bool handler_called(void *arg)
{
    return ((const struct fx *)arg)->held_calls > 0;
}

static bool cancelled(void *arg)
{
    return ((const struct fx *)arg)->cancel_calls > 0;
}

static void test_client_gone_before_async_answer(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    raw_open(fx, &r, fx->port);
    raw_send_str(&r, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(run_until(fx, handler_called, fx, 5));
    assert_false(tl_httpd_req_gone(fx->held));
    raw_close(&r);
    assert_true(run_until(fx, cancelled, fx, 5));
    assert_int_equal(fx->cancel_calls, 1);
    assert_true(fx->held_gone_in_cancel);
    /* The handle is still valid; answering it now goes nowhere and frees it. */
    assert_true(tl_httpd_req_gone(fx->held));
    tl_httpd_respond(fx->held, 200, "text/plain", "late", 4);
    fx->held = NULL;
    run_for(fx, 0.05);

    /* The server still answers. */
    struct resp resp;
    assert_int_equal(request(fx, &r, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &resp), 200);
    raw_close(&r);
}

static void test_cancel_callback_may_answer(void **state)
{
    struct fx *fx = *state;
    fx->answer_in_cancel = true;
    struct raw r;
    raw_open(fx, &r, fx->port);
    raw_send_str(&r, "POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi");
    assert_true(run_until(fx, handler_called, fx, 5));
    raw_close(&r);
    assert_true(run_until(fx, cancelled, fx, 5));
    assert_null(fx->held); /* answered (and freed) from inside the callback */
}

static void test_async_timeout_answers_504(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    struct resp resp;
    raw_open(fx, &r, fx->port);
    raw_send_str(&r, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    /* Nobody answers: after async_timeout (3 s) the client gets a 504, then the close. */
    assert_true(raw_response(&r, &resp, 8));
    assert_int_equal(resp.status, 504);
    assert_non_null(strstr(resp.body, "did not answer in time"));
    assert_true(run_until(fx, raw_eof, &r, 5));
    raw_close(&r);
    /* The handler was told, and its handle still takes the (now pointless) answer. */
    assert_int_equal(fx->cancel_calls, 1);
    assert_true(tl_httpd_req_gone(fx->held));
    tl_httpd_respond(fx->held, 200, "text/plain", "too late", 8);
    fx->held = NULL;
}

static void test_destroy_with_pending_request(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    raw_open(fx, &r, fx->port);
    raw_send_str(&r, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_true(run_until(fx, handler_called, fx, 5));
    tl_httpd_destroy(fx->h);
    fx->h = NULL;
    assert_int_equal(fx->cancel_calls, 1);
    assert_true(run_until(fx, raw_eof, &r, 5));
    raw_close(&r);
    /* teardown answers fx->held after the server is gone */
}

/* ---- tests: static files and health ---- */

static void test_static_index_etag_and_304(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    struct resp resp;
    assert_int_equal(request(fx, &r, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &resp), 200);
    assert_true(body_is(&resp, index_html));
    char etag[64];
    char v[256];
    assert_true(resp_header(&resp, "ETag", etag, sizeof(etag)));
    assert_true(etag[0] == '"' && strlen(etag) == 18);
    assert_true(resp_header(&resp, "Cache-Control", v, sizeof(v)));
    assert_string_equal(v, "no-cache");
    assert_true(resp_header(&resp, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "text/html; charset=utf-8");
    assert_true(resp_header(&resp, "Content-Security-Policy", v, sizeof(v)));
    raw_close(&r);

    char req[512];
    snprintf(req, sizeof(req),
             "GET /index.html HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"other\", W/%s\r\n\r\n", etag);
    assert_int_equal(request(fx, &r, req, &resp), 304);
    assert_int_equal(resp.body_len, 0);
    assert_true(resp_header(&resp, "ETag", v, sizeof(v)));
    assert_string_equal(v, etag);
    raw_close(&r);

    assert_int_equal(
        request(fx, &r, "GET /index.html HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"stale\"\r\n\r\n",
                &resp),
        200);
    raw_close(&r);

    assert_int_equal(request(fx, &r, "GET /app.js HTTP/1.1\r\nHost: x\r\n\r\n", &resp), 200);
    assert_true(body_is(&resp, app_js));
    assert_true(resp_header(&resp, "Cache-Control", v, sizeof(v)));
    assert_string_equal(v, "public, max-age=60");
    raw_close(&r);

    assert_int_equal(tl_httpd_static(fx->h, files, 1), TL_ECONFLICT);
}

static void test_healthz_and_readyz(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    struct resp resp;
    assert_int_equal(request(fx, &r, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &resp), 200);
    assert_true(body_is(&resp, "ok\n"));
    raw_close(&r);
    assert_int_equal(request(fx, &r, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", &resp), 200);
    assert_true(body_is(&resp, "ok\n"));
    raw_close(&r);

    fx->ready = false;
    fx->not_ready_reason = "caches not synced";
    assert_int_equal(request(fx, &r, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", &resp), 503);
    assert_true(body_is(&resp, "caches not synced\n"));
    raw_close(&r);
    /* Liveness does not depend on readiness. */
    assert_int_equal(request(fx, &r, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &resp), 200);
    raw_close(&r);
}

static void test_metrics_endpoint(void **state)
{
    struct fx *fx = *state;
    struct tl_counter *c = NULL;
    const char *labels[] = {"code", NULL};
    assert_int_equal(tl_metrics_counter(fx->metrics, "tailor_http_requests_total",
                                        "HTTP requests served.", labels, &c),
                     TL_OK);
    tl_metrics_counter_add(c, 3, "200");
    struct raw r;
    struct resp resp;
    assert_int_equal(request(fx, &r, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &resp), 200);
    char v[128];
    assert_true(resp_header(&resp, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, TL_METRICS_CONTENT_TYPE);
    assert_non_null(strstr(resp.body, "\ntailor_http_requests_total{code=\"200\"} 3\n"));
    raw_close(&r);
}

/* ---- tests: hostile clients ---- */

struct bad_input {
    const char *data;
    size_t len;
};
#define BAD(s)                                                                                     \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }

static void test_malformed_request_line(void **state)
{
    struct fx *fx = *state;
    /* Each gets a 4xx or a clean close, never a handler. */
    const struct bad_input bad[] = {
        BAD("GARBAGE\r\n\r\n"),
        BAD("GET\r\n\r\n"),
        BAD("GET hello HTTP/1.1\r\n\r\n"),
        BAD("GET /hello HTTP/1.1\r\nHost x\r\n\r\n"),
        BAD("GET /%zz HTTP/1.1\r\n\r\n"),
        BAD("\x01\x02\x03\x04\r\n\r\n"),
        BAD("GET /he\x00llo HTTP/1.1\r\n\r\n"),
        BAD("GET /../../etc/passwd HTTP/1.1\r\n\r\n"),
        BAD("POST /echo HTTP/1.1\r\nContent-Length: -5\r\n\r\n"),
        BAD("POST /echo HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
        BAD("POST /echo HTTP/1.1\r\nContent-Length: 12abc\r\n\r\n"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct raw r;
        struct resp resp;
        raw_open(fx, &r, fx->port);
        raw_send(&r, bad[i].data, bad[i].len);
        bool got = raw_response(&r, &resp, 5);
        if (got && (resp.status < 400 || resp.status >= 500))
            fail_msg("input %zu answered %d", i, resp.status);
        if (!got && !r.eof)
            fail_msg("input %zu: neither an answer nor a close", i);
        raw_close(&r);
    }
    /* libwebsockets reads an unknown version as HTTP/1.x: lenient, but harmless. */
    struct raw r;
    struct resp resp;
    assert_int_equal(request(fx, &r, "GET /hello HTTP/9.9\r\n\r\n", &resp), 200);
    raw_close(&r);
    assert_int_equal(request(fx, &r, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &resp), 200);
    raw_close(&r);
}

static void test_huge_headers_are_refused(void **state)
{
    struct fx *fx = *state;
    size_t n = (size_t)64 * 1024;
    char *req = malloc(n + 128);
    assert_non_null(req);
    int len = snprintf(req, n + 128, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + len, 'a', n);
    memcpy(req + len + n, "\r\n\r\n", 5);
    struct raw r;
    struct resp resp;
    raw_open(fx, &r, fx->port);
    raw_send(&r, req, (size_t)len + n + 4);
    bool got = raw_response(&r, &resp, 5);
    if (got)
        assert_true(resp.status >= 400);
    else
        assert_true(r.eof);
    raw_close(&r);
    free(req);
    assert_int_equal(request(fx, &r, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &resp), 200);
    raw_close(&r);
}

static void dribble(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct raw *r = w->data;
    if (!r->eof && send(r->fd, "X", 1, MSG_NOSIGNAL) != 1)
        r->eof = true;
}

static void test_slowloris_is_cut_off(void **state)
{
    struct fx *fx = *state;
    struct raw idle;
    struct raw slow;
    /* One sends half a head and stops; the other dribbles a byte every 200 ms. */
    raw_open(fx, &idle, fx->port);
    raw_send_str(&idle, "GET /hello HTTP/1.1\r\nHost: x\r\n");
    raw_open(fx, &slow, fx->port);
    raw_send_str(&slow, "GET /hello HTTP/1.1\r\nX-Slow: ");
    ev_timer t;
    ev_timer_init(&t, dribble, 0.2, 0.2);
    t.data = &slow;
    ev_timer_start(fx->loop, &t);
    /* header_timeout is 2 s: both are gone well within 8 s, with nothing answered. */
    assert_true(run_until(fx, raw_eof, &idle, 8));
    assert_true(run_until(fx, raw_eof, &slow, 8));
    ev_timer_stop(fx->loop, &t);
    assert_null(strstr(idle.in != NULL ? idle.in : "", "200"));
    raw_close(&idle);
    raw_close(&slow);
}

static void test_slow_body_is_cut_off(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    raw_open(fx, &r, fx->port);
    raw_send_str(&r, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
    /* body_timeout is 2 s. */
    assert_true(run_until(fx, raw_eof, &r, 8));
    raw_close(&r);
}

/* ---- tests: WebSocket ---- */

/* Reads one server frame (unmasked) from the front of r->in; false while incomplete. */
static bool ws_frame(struct raw *r, int *opcode, char *out, size_t cap, size_t *len)
{
    if (r->in_len < 2)
        return false;
    const unsigned char *p = (const unsigned char *)r->in;
    size_t n = p[1] & 0x7f;
    size_t hdr = 2;
    if (n == 126) {
        if (r->in_len < 4)
            return false;
        n = ((size_t)p[2] << 8) | p[3];
        hdr = 4;
    }
    else if (n == 127) {
        if (r->in_len < 10)
            return false;
        n = 0;
        for (int i = 0; i < 8; i++)
            n = (n << 8) | p[2 + i];
        hdr = 10;
    }
    if (r->in_len < hdr + n)
        return false;
    *opcode = p[0] & 0x0f;
    size_t copy = n < cap ? n : cap;
    if (out != NULL)
        memcpy(out, r->in + hdr, copy);
    *len = n;
    memmove(r->in, r->in + hdr + n, r->in_len - hdr - n + 1);
    r->in_len -= hdr + n;
    return true;
}

struct wait_frame {
    struct raw *r;
    int opcode;
    char *out;
    size_t cap;
    size_t len;
    bool got;
};

static bool frame_ready(void *arg)
{
    struct wait_frame *w = arg;
    if (!w->got)
        w->got = ws_frame(w->r, &w->opcode, w->out, w->cap, &w->len);
    return w->got || w->r->eof;
}

/* Waits for one frame; returns its payload length, or -1 on close/timeout. */
static long ws_read(struct raw *r, int *opcode, char *out, size_t cap, double timeout)
{
    struct wait_frame w = {.r = r, .out = out, .cap = cap};
    run_until(r->fx, frame_ready, &w, timeout);
    if (!w.got)
        return -1;
    *opcode = w.opcode;
    return (long)w.len;
}

/* Opens a WebSocket to path; returns the HTTP status of the handshake answer. */
static int ws_connect(struct fx *fx, struct raw *r, const char *path, const char *extra)
{
    char req[1024];
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n",
             path, extra);
    raw_open(fx, r, fx->port);
    raw_send_str(r, req);
    struct resp resp;
    if (!raw_response(r, &resp, 5))
        return 0;
    if (resp.status == 101) {
        char accept[64];
        /* The RFC 6455 section 1.3 example key and its answer. */
        assert_true(resp_header(&resp, "Sec-WebSocket-Accept", accept, sizeof(accept)));
        assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }
    raw_consume(r, &resp);
    return resp.status;
}

/* Sends one masked text frame (clients must mask). */
static void ws_write(struct raw *r, const char *text)
{
    size_t n = strlen(text);
    assert_true(n < 126);
    unsigned char frame[256];
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    frame[0] = 0x81;
    frame[1] = (unsigned char)(0x80 | n);
    memcpy(frame + 2, mask, 4);
    for (size_t i = 0; i < n; i++)
        frame[6 + i] = (unsigned char)text[i] ^ mask[i % 4];
    raw_send(r, (const char *)frame, n + 6);
}

static void test_websocket_broadcast(void **state)
{
    struct fx *fx = *state;
    struct raw a;
    struct raw b;
    assert_int_equal(ws_connect(fx, &a, "/api/v1/watch?watch=1", ""), 101);
    assert_int_equal(ws_connect(fx, &b, "/api/v1/watch", ""), 101);
    char buf[256];
    int op = 0;
    /* on_open greets each client. */
    assert_int_equal(ws_read(&a, &op, buf, sizeof(buf), 5), 11);
    assert_int_equal(op, 1);
    assert_memory_equal(buf, "{\"hello\":1}", 11);
    assert_int_equal(ws_read(&b, &op, buf, sizeof(buf), 5), 11);
    assert_int_equal(fx->ws_opens, 2);
    assert_string_equal(fx->ws_open_auth, "none");
    assert_int_equal(tl_httpd_ws_clients(fx->h, "/api/v1/watch"), 2);

    const char *event = "{\"type\":\"MODIFIED\",\"name\":\"web\"}";
    assert_int_equal(tl_httpd_broadcast(fx->h, "/api/v1/watch", event, strlen(event)), TL_OK);
    assert_int_equal(ws_read(&a, &op, buf, sizeof(buf), 5), (long)strlen(event));
    assert_memory_equal(buf, event, strlen(event));
    assert_int_equal(ws_read(&b, &op, buf, sizeof(buf), 5), (long)strlen(event));
    assert_memory_equal(buf, event, strlen(event));

    /* A message from a client reaches on_message, which answers that client only. */
    ws_write(&a, "subscribe shop");
    long n = ws_read(&a, &op, buf, sizeof(buf), 5);
    assert_int_equal(n, strlen("echo:subscribe shop"));
    assert_memory_equal(buf, "echo:subscribe shop", (size_t)n);
    assert_string_equal(fx->ws_last_message, "subscribe shop");

    assert_int_equal(tl_httpd_broadcast(fx->h, "/no/such", "x", 1), TL_ENOTFOUND);

    /* The application closes b: a close frame with code 1000, then the connection ends. */
    ws_write(&b, "bye");
    n = ws_read(&b, &op, buf, sizeof(buf), 5);
    assert_int_equal(op, 8);
    assert_true(n >= 2);
    assert_int_equal(((unsigned char)buf[0] << 8) | (unsigned char)buf[1], 1000);
    assert_true(run_until(fx, raw_eof, &b, 8));
    raw_close(&a);
    raw_close(&b);
    run_for(fx, 0.1);
    assert_int_equal(fx->ws_closes, 2);
    assert_int_equal(tl_httpd_ws_clients(fx->h, "/api/v1/watch"), 0);
}

static void test_websocket_refusals(void **state)
{
    struct fx *fx = *state;
    struct raw r;
    assert_int_equal(ws_connect(fx, &r, "/not/a/socket", ""), 404);
    raw_close(&r);
    assert_int_equal(ws_connect(fx, &r, "/ws/private", ""), 401);
    raw_close(&r);
    assert_int_equal(ws_connect(fx, &r, "/ws/private", "Authorization: Bearer good\r\n"), 101);
    raw_close(&r);
}

static bool one_small_client(void *arg)
{
    const struct fx *fx = arg;
    return tl_httpd_ws_clients(fx->h, "/ws/small") == 1;
}

static void test_slow_websocket_client_is_dropped(void **state)
{
    struct fx *fx = *state;
    struct raw fast;
    struct raw slow;
    assert_int_equal(ws_connect(fx, &fast, "/ws/small", ""), 101);
    assert_int_equal(ws_connect(fx, &slow, "/ws/small", ""), 101);
    /* The slow client stops reading: the kernel buffers fill, then its queue. */
    slow.reading = false;
    int small = 4096;
    assert_int_equal(setsockopt(slow.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    run_for(fx, 0.05);

    size_t len = (size_t)256 * 1024;
    char *msg = malloc(len);
    char *got = malloc(len);
    assert_non_null(msg);
    assert_non_null(got);
    int received = 0;
    for (int i = 0; i < 40; i++) {
        memset(msg, 'a' + i % 26, len);
        assert_int_equal(tl_httpd_broadcast(fx->h, "/ws/small", msg, len), TL_OK);
        int op = 0;
        long n = ws_read(&fast, &op, got, len, 5);
        assert_int_equal(n, (long)len);
        assert_memory_equal(got, msg, len);
        received++;
    }
    assert_int_equal(received, 40);
    /*
     * The slow one is cut off: at once if its close frame fits in the socket, else after the
     * close grace (5 s). The fast one is still there.
     */
    assert_true(run_until(fx, one_small_client, fx, 10));
    run_for(fx, 0.1);
    assert_int_equal(tl_httpd_ws_clients(fx->h, "/ws/small"), 1);
    assert_int_equal(fx->ws_closes, 1);
    free(msg);
    free(got);
    raw_close(&fast);
    raw_close(&slow);
}

/* ---- tests: servers ---- */

static void test_bind_errors(void **state)
{
    struct fx *fx = *state;
    struct tl_httpd *h = NULL;
    struct tl_httpd_opts bad = {.bind = "nonsense"};
    assert_int_equal(tl_httpd_create(fx->loop, &bad, &h), TL_EINVAL);
    bad.bind = "127.0.0.1:70000";
    assert_int_equal(tl_httpd_create(fx->loop, &bad, &h), TL_EINVAL);
    bad.bind = "localhost:8080"; /* an IP literal is required */
    assert_int_equal(tl_httpd_create(fx->loop, &bad, &h), TL_EINVAL);
    bad.bind = "127.0.0.1:0";
    bad.tls_cert_file = "cert.pem"; /* without a key */
    assert_int_equal(tl_httpd_create(fx->loop, &bad, &h), TL_EINVAL);
    char in_use[64];
    snprintf(in_use, sizeof(in_use), "127.0.0.1:%d", fx->port);
    struct tl_httpd_opts taken = {.bind = in_use};
    assert_int_equal(tl_httpd_create(fx->loop, &taken, &h), TL_EIO);
    assert_null(h);
}

static void test_second_server_with_tls(void **state)
{
    struct fx *fx = *state;
    if (system("command -v openssl >/dev/null 2>&1") != 0) {
        printf("openssl not found on PATH: skipping the TLS listener test\n");
        skip();
    }
    const char *tmp = getenv("TMPDIR");
    char dir[200];
    int n = snprintf(dir, sizeof(dir), "%s/tl-httpd-XXXXXX",
                     tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    assert_true(n > 0 && (size_t)n < sizeof(dir));
    assert_non_null(mkdtemp(dir));
    char cert[256];
    char key[256];
    char cmd[1024];
    assert_true(snprintf(cert, sizeof(cert), "%s/cert.pem", dir) < (int)sizeof(cert));
    assert_true(snprintf(key, sizeof(key), "%s/key.pem", dir) < (int)sizeof(key));
    assert_true(snprintf(cmd, sizeof(cmd),
                         "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                         "-keyout '%s' -out '%s' >/dev/null 2>&1",
                         key, cert) < (int)sizeof(cmd));
    assert_int_equal(system(cmd), 0);

    struct tl_httpd *tls = NULL;
    struct tl_httpd_opts opts = {
        .bind = "127.0.0.1:0", .tls_cert_file = cert, .tls_key_file = key, .header_timeout = 60};
    assert_int_equal(tl_httpd_create(fx->loop, &opts, &tls), TL_OK);
    assert_int_equal(tl_httpd_route(tls, "POST", "/validate", echo, fx), TL_OK);
    int port = tl_httpd_port(tls);
    assert_true(port > 0 && port != fx->port);

    struct tl_http_tls t = {.insecure = true};
    struct done d;
    http_request(fx, "POST", "/validate", "{\"kind\":\"AdmissionReview\"}", 26, &t, port, &d);
    assert_int_equal(d.err, TL_OK);
    assert_int_equal(d.status, 200);
    assert_non_null(strstr(d.body, "AdmissionReview"));
    /* The plain server on the same loop keeps working. */
    http_request(fx, "GET", "/hello", NULL, 0, NULL, fx->port, &d);
    assert_int_equal(d.status, 200);
    /* Plain HTTP on the TLS port gets nothing useful. */
    http_request(fx, "GET", "/validate", NULL, 0, NULL, port, &d);
    assert_true(d.err != TL_OK || d.status >= 400);

    tl_httpd_destroy(tls);
    unlink(cert);
    unlink(key);
    rmdir(dir);
    run_for(fx, 0.05);
    http_request(fx, "GET", "/hello", NULL, 0, NULL, fx->port, &d);
    assert_int_equal(d.status, 200);
}

static void test_create_destroy_many(void **state)
{
    struct fx *fx = *state;
    /* Creating and destroying servers on a live loop leaves nothing behind (ASan checks). */
    for (int i = 0; i < 5; i++) {
        struct tl_httpd *h = NULL;
        struct tl_httpd_opts opts = {.bind = ":0"};
        assert_int_equal(tl_httpd_create(fx->loop, &opts, &h), TL_OK);
        assert_int_equal(tl_httpd_health(h, NULL, NULL), TL_OK);
        struct raw r;
        struct resp resp;
        raw_open(fx, &r, tl_httpd_port(h));
        raw_send_str(&r, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_true(raw_response(&r, &resp, 5));
        assert_int_equal(resp.status, 200);
        tl_httpd_destroy(h);
        raw_close(&r);
        run_for(fx, 0.01);
    }
    tl_httpd_destroy(NULL);

    /* An IPv6 literal, where the machine has IPv6 loopback. */
    int fd6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 lo6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool have6 = fd6 >= 0 && bind(fd6, (struct sockaddr *)&lo6, sizeof(lo6)) == 0;
    if (fd6 >= 0)
        close(fd6);
    if (have6) {
        struct tl_httpd *h = NULL;
        struct tl_httpd_opts opts = {.bind = "[::1]:0"};
        assert_int_equal(tl_httpd_create(fx->loop, &opts, &h), TL_OK);
        assert_true(tl_httpd_port(h) > 0);
        tl_httpd_destroy(h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_returns_body_and_security_headers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_path_is_404_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_method_is_405_with_allow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_and_exact_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_serves_several_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_parsing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_body_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_has_length_but_no_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_too_large_is_413, setup, teardown),
        cmocka_unit_test_setup_teardown(test_libcurl_client_post_and_413, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_request_body_is_411, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_post_is_handled_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_response_does_not_block_the_loop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_client_gone_before_async_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_callback_may_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_timeout_answers_504, setup, teardown),
        cmocka_unit_test_setup_teardown(test_destroy_with_pending_request, setup, teardown),
        cmocka_unit_test_setup_teardown(test_static_index_etag_and_304, setup, teardown),
        cmocka_unit_test_setup_teardown(test_healthz_and_readyz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_request_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_headers_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slowloris_is_cut_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_body_is_cut_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_websocket_broadcast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_websocket_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_websocket_client_is_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_server_with_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_destroy_many, setup, teardown),
    };
    /* TL_TEST_FILTER=test_name (wildcards allowed) runs a subset, e.g. under valgrind. */
    const char *filter = getenv("TL_TEST_FILTER");
    if (filter != NULL)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
