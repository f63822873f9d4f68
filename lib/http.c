#include "http.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "log.h"

#define DEFAULT_MAX_BODY ((size_t)64 << 20)

/*
 * The evhiperfifo pattern (curl docs/examples/evhiperfifo.c): libcurl tells us which sockets to
 * watch (CURLMOPT_SOCKETFUNCTION) and when to wake it up (CURLMOPT_TIMERFUNCTION); each ev_io and
 * the one ev_timer call curl_multi_socket_action.
 *
 * No user callback ever runs inside libcurl: libcurl forbids adding or removing handles from its
 * callbacks (CURLM_RECURSIVE_API_CALL), and a user callback will want to do both. So the write
 * callback only buffers; after curl_multi_socket_action returns, after_action() hands buffered
 * stream bytes to on_data and finished transfers to on_done.
 */

struct sock_watch {
    ev_io io;
    struct tl_http *http;
    struct sock_watch *prev, *next;
};

struct tl_http {
    struct ev_loop *loop;
    CURLM *multi;
    ev_timer timer;
    struct tl_http_request *requests; /* every live request, doubly linked */
    struct tl_http_request *dirty;    /* requests with stream bytes to hand over */
    struct sock_watch *socks;
    size_t active;
};

struct tl_http_request {
    struct tl_http *http;
    CURL *easy;
    struct curl_slist *headers;
    struct curl_slist *connect_to;
    char *buf; /* NUL-terminated */
    size_t len, cap, max_body;
    long status;
    double retry_after;
    char *content_type;
    tl_http_data_fn on_data;
    tl_http_done_fn on_done;
    void *arg;
    enum tl_err abort_err; /* why the write callback stopped the transfer */
    ev_timer stall;
    double stall_timeout;
    ev_tstamp last_byte;
    bool in_callback, cancelled, is_dirty;
    struct tl_http_request *prev, *next, *dirty_next;
};

static bool curl_ready;

static void unlink_dirty(struct tl_http_request *req)
{
    if (!req->is_dirty)
        return;
    for (struct tl_http_request **p = &req->http->dirty; *p; p = &(*p)->dirty_next) {
        if (*p == req) {
            *p = req->dirty_next;
            break;
        }
    }
    req->is_dirty = false;
    req->dirty_next = NULL;
}

static void free_request(struct tl_http_request *req)
{
    struct tl_http *http = req->http;
    ev_timer_stop(http->loop, &req->stall);
    unlink_dirty(req);
    if (req->easy) {
        curl_multi_remove_handle(http->multi, req->easy);
        curl_easy_cleanup(req->easy);
    }
    curl_slist_free_all(req->headers);
    curl_slist_free_all(req->connect_to);
    if (req->prev)
        req->prev->next = req->next;
    else
        http->requests = req->next;
    if (req->next)
        req->next->prev = req->prev;
    http->active--;
    free(req->buf);
    free(req->content_type);
    free(req);
}

static bool streaming_2xx(const struct tl_http_request *req)
{
    return req->on_data && req->status >= 200 && req->status < 300;
}

/* Appends to the body buffer, growing it by doubling up to the cap (plus the NUL). */
static enum tl_err buf_append(struct tl_http_request *req, const char *data, size_t n)
{
    if (n > req->max_body - req->len)
        return TL_ETOOBIG;
    if (req->len + n + 1 > req->cap) {
        size_t cap = req->cap ? req->cap : 4096;
        while (cap < req->len + n + 1)
            cap *= 2;
        if (cap > req->max_body + 1)
            cap = req->max_body + 1;
        char *grown = realloc(req->buf, cap);
        if (!grown)
            return TL_ENOMEM;
        req->buf = grown;
        req->cap = cap;
    }
    memcpy(req->buf + req->len, data, n);
    req->len += n;
    req->buf[req->len] = '\0';
    return TL_OK;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    struct tl_http_request *req = userp;
    size_t n = size * nmemb;
    req->last_byte = ev_now(req->http->loop);
    if (req->status == 0)
        curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
    enum tl_err result = buf_append(req, data, n);
    if (result != TL_OK) {
        req->abort_err = result;
        return 0; /* anything but n makes libcurl fail the transfer with CURLE_WRITE_ERROR */
    }
    if (streaming_2xx(req) && !req->is_dirty) {
        req->is_dirty = true;
        req->dirty_next = req->http->dirty;
        req->http->dirty = req;
    }
    return n;
}

static void parse_header(struct tl_http_request *req, const char *line, size_t n)
{
    /* A new status line (after a 100 Continue, say) starts a fresh set of headers. */
    if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        req->retry_after = -1;
        free(req->content_type);
        req->content_type = NULL;
        return;
    }
    const char *colon = memchr(line, ':', n);
    if (!colon)
        return;
    size_t name_len = (size_t)(colon - line);
    const char *value = colon + 1;
    const char *end = line + n;
    while (value < end && (*value == ' ' || *value == '\t'))
        value++;
    while (end > value && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    char text[128];
    size_t vlen = (size_t)(end - value);
    if (vlen >= sizeof(text))
        return;
    memcpy(text, value, vlen);
    text[vlen] = '\0';
    if (name_len == 11 && strncasecmp(line, "Retry-After", 11) == 0) {
        /* Only delta-seconds: the API server never sends the HTTP-date form. */
        char *stop = NULL;
        errno = 0;
        long secs = strtol(text, &stop, 10);
        if (errno == 0 && stop != text && *stop == '\0' && secs >= 0)
            req->retry_after = (double)secs;
    }
    else if (name_len == 12 && strncasecmp(line, "Content-Type", 12) == 0) {
        free(req->content_type);
        req->content_type = strdup(text);
    }
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    struct tl_http_request *req = userp;
    size_t n = size * nmemb;
    req->last_byte = ev_now(req->http->loop);
    parse_header(req, data, n);
    return n;
}

/* Calls on_done and frees the request; nothing may touch req afterwards. */
static void complete(struct tl_http_request *req, enum tl_err err)
{
    if (req->easy) {
        curl_multi_remove_handle(req->http->multi, req->easy);
        curl_easy_cleanup(req->easy);
        req->easy = NULL;
    }
    bool handed_over = streaming_2xx(req);
    struct tl_http_response resp = {
        .status = req->status,
        .retry_after = req->retry_after,
        .body = handed_over || !req->buf ? "" : req->buf,
        .body_len = handed_over ? 0 : req->len,
        .content_type = req->content_type,
    };
    req->in_callback = true;
    req->on_done(req->arg, err, &resp);
    free_request(req);
}

/* Hands buffered stream bytes to on_data. Returns false when req is gone (cancelled or done). */
static bool deliver(struct tl_http_request *req)
{
    unlink_dirty(req);
    if (req->len == 0 || !streaming_2xx(req))
        return true;
    req->in_callback = true;
    enum tl_err result = req->on_data(req->arg, req->status, req->buf, req->len);
    req->in_callback = false;
    req->len = 0;
    if (req->cancelled) {
        free_request(req);
        return false;
    }
    if (result != TL_OK) {
        complete(req, result);
        return false;
    }
    return true;
}

static enum tl_err map_curl_error(CURLcode code)
{
    switch (code) {
    case CURLE_OK:
        return TL_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return TL_ETIMEDOUT;
    case CURLE_FILESIZE_EXCEEDED:
        return TL_ETOOBIG;
    case CURLE_OUT_OF_MEMORY:
        return TL_ENOMEM;
    default:
        return TL_EIO;
    }
}

static void after_action(struct tl_http *http)
{
    while (http->dirty) {
        struct tl_http_request *req = http->dirty;
        http->dirty = req->dirty_next;
        req->is_dirty = false;
        req->dirty_next = NULL;
        deliver(req);
    }

    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(http->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        struct tl_http_request *req = (struct tl_http_request *)(void *)priv;
        CURLcode code = msg->data.result;
        if (!deliver(req))
            continue;
        enum tl_err err = req->abort_err != TL_OK ? req->abort_err : map_curl_error(code);
        if (err != TL_OK && err != TL_ETOOBIG)
            TL_DEBUG("http request failed", TL_STR("curl", curl_easy_strerror(code)));
        if (req->status == 0)
            curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
        complete(req, err);
    }
}

static void timer_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tl_http *http = w->data;
    int running;
    curl_multi_socket_action(http->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    after_action(http);
}

static void io_ready(struct ev_loop *loop, ev_io *w, int revents)
{
    struct sock_watch *sw = (struct sock_watch *)w;
    struct tl_http *http = sw->http;
    int action =
        ((revents & EV_READ) ? CURL_CSELECT_IN : 0) | ((revents & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(http->multi, w->fd, action, &running);
    after_action(http);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct tl_http *http = userp;
    ev_timer_stop(http->loop, &http->timer);
    if (timeout_ms >= 0) {
        /* Zero means "as soon as possible": the next loop iteration, never from inside libcurl. */
        ev_timer_set(&http->timer, (double)timeout_ms / 1000.0, 0.);
        ev_timer_start(http->loop, &http->timer);
    }
    return 0;
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct tl_http *http = userp;
    struct sock_watch *sw = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sw) {
            ev_io_stop(http->loop, &sw->io);
            if (sw->prev)
                sw->prev->next = sw->next;
            else
                http->socks = sw->next;
            if (sw->next)
                sw->next->prev = sw->prev;
            free(sw);
            curl_multi_assign(http->multi, fd, NULL);
        }
        return 0;
    }
    if (!sw) {
        sw = calloc(1, sizeof(*sw));
        if (!sw)
            return -1; /* libcurl fails the transfers on this socket */
        sw->http = http;
        sw->next = http->socks;
        if (http->socks)
            http->socks->prev = sw;
        http->socks = sw;
        ev_init(&sw->io, io_ready);
        curl_multi_assign(http->multi, fd, sw);
    }
    int events = ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
    ev_io_stop(http->loop, &sw->io);
    ev_io_set(&sw->io, fd, events);
    ev_io_start(http->loop, &sw->io);
    return 0;
}

/* The libev idiom for an activity timeout: one timer, re-armed for the time still left. */
static void stall_fired(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct tl_http_request *req = w->data;
    ev_tstamp left = req->last_byte + req->stall_timeout - ev_now(loop);
    if (left > 0.001) {
        ev_timer_set(w, left, 0.);
        ev_timer_start(loop, w);
        return;
    }
    TL_DEBUG("http stream stalled", TL_DBL("seconds", req->stall_timeout));
    if (!deliver(req))
        return;
    complete(req, TL_ETIMEDOUT);
}

struct tl_http *tl_http_create(struct ev_loop *loop)
{
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        curl_ready = true;
    }
    struct tl_http *http = calloc(1, sizeof(*http));
    if (!http)
        return NULL;
    http->loop = loop;
    http->multi = curl_multi_init();
    if (!http->multi) {
        free(http);
        return NULL;
    }
    ev_init(&http->timer, timer_fired);
    http->timer.data = http;
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(http->multi, CURLMOPT_SOCKETDATA, http);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(http->multi, CURLMOPT_TIMERDATA, http);
    return http;
}

void tl_http_destroy(struct tl_http *http)
{
    if (!http)
        return;
    struct tl_http_request *req = http->requests;
    while (req) {
        struct tl_http_request *next = req->next;
        free_request(req);
        req = next;
    }
    curl_multi_cleanup(http->multi);
    ev_timer_stop(http->loop, &http->timer);
    while (http->socks) {
        struct sock_watch *sw = http->socks;
        http->socks = sw->next;
        ev_io_stop(http->loop, &sw->io);
        free(sw);
    }
    free(http);
}

size_t tl_http_active(const struct tl_http *http)
{
    return http->active;
}

/*
 * For tls-server-name: rewrites the URL's host to name and returns the CURLOPT_CONNECT_TO entry
 * "name:port:host:port" that sends the connection to the original address.
 */
static enum tl_err server_name_url(const char *url, const char *name, char **url_out,
                                   char **connect_out)
{
    enum tl_err result = TL_EINVAL;
    char *host = NULL, *port = NULL, *rewritten = NULL, *connect = NULL;
    CURLU *u = curl_url();
    if (!u)
        return TL_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_HOST, name, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &rewritten, 0) != CURLUE_OK)
        goto out;
    size_t n = strlen(name) + strlen(host) + 2 * strlen(port) + 4;
    connect = malloc(n);
    if (!connect) {
        result = TL_ENOMEM;
        goto out;
    }
    int w = snprintf(connect, n, "%s:%s:%s:%s", name, port, host, port);
    if (w < 0 || (size_t)w >= n)
        goto out;
    *url_out = strdup(rewritten);
    if (!*url_out) {
        result = TL_ENOMEM;
        goto out;
    }
    *connect_out = connect;
    connect = NULL;
    result = TL_OK;
out:
    free(connect);
    curl_free(host);
    curl_free(port);
    curl_free(rewritten);
    curl_url_cleanup(u);
    return result;
}

static enum tl_err set_tls(struct tl_http_request *req, const struct tl_http_tls *tls)
{
    CURL *e = req->easy;
    bool ok = true;
    if (tls->ca_file)
        ok = ok && curl_easy_setopt(e, CURLOPT_CAINFO, tls->ca_file) == CURLE_OK;
    if (tls->ca_data) {
        struct curl_blob blob = {(void *)tls->ca_data, tls->ca_data_len, CURL_BLOB_COPY};
        ok = ok && curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob) == CURLE_OK;
    }
    if (tls->cert_file)
        ok = ok && curl_easy_setopt(e, CURLOPT_SSLCERT, tls->cert_file) == CURLE_OK;
    if (tls->key_file)
        ok = ok && curl_easy_setopt(e, CURLOPT_SSLKEY, tls->key_file) == CURLE_OK;
    if (tls->cert_data) {
        struct curl_blob blob = {(void *)tls->cert_data, tls->cert_data_len, CURL_BLOB_COPY};
        ok = ok && curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &blob) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM") == CURLE_OK;
    }
    if (tls->key_data) {
        struct curl_blob blob = {(void *)tls->key_data, tls->key_data_len, CURL_BLOB_COPY};
        ok = ok && curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &blob) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM") == CURLE_OK;
    }
    if (tls->insecure) {
        ok = ok && curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L) == CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L) == CURLE_OK;
    }
    return ok ? TL_OK : TL_EINVAL;
}

static enum tl_err set_method_and_body(CURL *e, const struct tl_http_request_opts *opts)
{
    const char *method = opts->method ? opts->method : "GET";
    bool ok = true;
    if (strcmp(method, "HEAD") == 0)
        ok = curl_easy_setopt(e, CURLOPT_NOBODY, 1L) == CURLE_OK;
    else if (strcmp(method, "GET") != 0)
        ok = curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method) == CURLE_OK;
    if (opts->body) {
        /* POSTFIELDS switches the method to POST; CUSTOMREQUEST above puts it back. */
        ok = ok &&
             curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)opts->body_len) ==
                 CURLE_OK &&
             curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, opts->body) == CURLE_OK;
    }
    return ok ? TL_OK : TL_EINVAL;
}

static enum tl_err set_headers(struct tl_http_request *req, const struct tl_http_request_opts *opts)
{
    struct curl_slist *list = NULL;
    if (opts->headers) {
        for (const char *const *h = opts->headers; *h; h++) {
            struct curl_slist *grown = curl_slist_append(list, *h);
            if (!grown)
                goto fail;
            list = grown;
        }
    }
    /* A body over 1 MiB would otherwise wait a second for a "100 Continue" first. */
    if (opts->body) {
        struct curl_slist *grown = curl_slist_append(list, "Expect:");
        if (!grown)
            goto fail;
        list = grown;
    }
    req->headers = list;
    if (list && curl_easy_setopt(req->easy, CURLOPT_HTTPHEADER, list) != CURLE_OK)
        return TL_EINVAL;
    return TL_OK;
fail:
    curl_slist_free_all(list);
    return TL_ENOMEM;
}

static enum tl_err configure(struct tl_http_request *req, const struct tl_http_request_opts *opts)
{
    CURL *e = req->easy;
    enum tl_err result = TL_OK;
    char *url = NULL, *connect = NULL;
    if (opts->tls && opts->tls->server_name) {
        result = server_name_url(opts->url, opts->tls->server_name, &url, &connect);
        if (result != TL_OK)
            goto out;
        struct curl_slist *list = curl_slist_append(NULL, connect);
        if (!list) {
            result = TL_ENOMEM;
            goto out;
        }
        req->connect_to = list;
        if (curl_easy_setopt(e, CURLOPT_CONNECT_TO, list) != CURLE_OK) {
            result = TL_EINVAL;
            goto out;
        }
    }
    bool ok = curl_easy_setopt(e, CURLOPT_URL, url ? url : opts->url) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_PRIVATE, req) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "") == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_WRITEDATA, req) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb) == CURLE_OK &&
              curl_easy_setopt(e, CURLOPT_HEADERDATA, req) == CURLE_OK;
    if (ok && opts->timeout > 0)
        ok = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(opts->timeout * 1000)) == CURLE_OK;
    if (ok && opts->connect_timeout > 0)
        ok = curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)(opts->connect_timeout * 1000)) ==
             CURLE_OK;
    if (ok && !opts->on_data)
        ok = curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)req->max_body) == CURLE_OK;
    if (ok && opts->proxy)
        ok = curl_easy_setopt(e, CURLOPT_PROXY, opts->proxy) == CURLE_OK;
    if (!ok) {
        result = TL_EINVAL;
        goto out;
    }
    result = set_method_and_body(e, opts);
    if (result == TL_OK)
        result = set_headers(req, opts);
    if (result == TL_OK && opts->tls)
        result = set_tls(req, opts->tls);
out:
    free(url);
    free(connect);
    return result;
}

enum tl_err tl_http_start(struct tl_http *http, const struct tl_http_request_opts *opts,
                          struct tl_http_request **out)
{
    if (!opts->url || !opts->on_done)
        return TL_EINVAL;
    enum tl_err result = TL_OK;
    struct tl_http_request *req = calloc(1, sizeof(*req));
    if (!req)
        return TL_ENOMEM;
    req->http = http;
    req->max_body = opts->max_body ? opts->max_body : DEFAULT_MAX_BODY;
    req->retry_after = -1;
    req->on_data = opts->on_data;
    req->on_done = opts->on_done;
    req->arg = opts->arg;
    req->stall_timeout = opts->stall_timeout;
    req->last_byte = ev_now(http->loop);
    ev_init(&req->stall, stall_fired);
    req->stall.data = req;
    /* Linked first so every failure below can go through free_request. */
    req->next = http->requests;
    if (http->requests)
        http->requests->prev = req;
    http->requests = req;
    http->active++;

    req->easy = curl_easy_init();
    if (!req->easy) {
        result = TL_ENOMEM;
        goto out;
    }
    result = configure(req, opts);
    if (result != TL_OK)
        goto out;
    if (curl_multi_add_handle(http->multi, req->easy) != CURLM_OK) {
        result = TL_EIO;
        goto out;
    }
    if (req->stall_timeout > 0) {
        ev_timer_set(&req->stall, req->stall_timeout, 0.);
        ev_timer_start(http->loop, &req->stall);
    }
    if (out)
        *out = req;
out:
    if (result != TL_OK)
        free_request(req);
    return result;
}

void tl_http_cancel(struct tl_http_request *req)
{
    if (!req)
        return;
    if (req->in_callback) {
        req->cancelled = true; /* whoever called the callback frees it */
        return;
    }
    free_request(req);
}
