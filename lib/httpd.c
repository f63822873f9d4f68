#include "httpd.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cjson/cJSON.h>
#include <libwebsockets.h>

#include "log.h"

/*
 * How libwebsockets (4.1, as Debian ships it) runs on the caller's loop:
 *
 * - Each tl_httpd is one lws_context with one vhost, created with LWS_SERVER_OPTION_LIBEV and
 *   foreign_loops = {caller's loop}. libwebsockets then adds its own ev_io watchers (listener and
 *   connections), an ev_timer and an ev_idle to that loop, and is driven only by them:
 *   lws_service() is never called, so it never blocks nor runs a loop of its own.
 * - With libev, lws_context_destroy closes every connection and stops every watcher before it
 *   returns, and clears h->ctx through info.pcontext to say so; no further turn of the loop is
 *   needed (ASan and valgrind report nothing left behind).
 * - Its deadlines cannot be trusted (see conn_arm) and it spins on a readable socket it will not
 *   read (see eof_cb); both are handled here with watchers of our own on the same loop.
 * - A failing lws_create_context leaks a little; the usual causes (bad address, port in use) are
 *   therefore checked before calling it.
 * - Its errors are logged as warnings and its warnings at debug, through the log module.
 */

#define DEFAULT_MAX_BODY       ((size_t)1 << 20)
#define DEFAULT_MAX_HEADER     8192
#define DEFAULT_HEADER_TIMEOUT 10
#define DEFAULT_BODY_TIMEOUT   30
#define DEFAULT_IDLE_TIMEOUT   5
#define DEFAULT_ASYNC_TIMEOUT  60
#define DEFAULT_WS_QUEUE       256
#define DEFAULT_WS_QUEUE_BYTES ((size_t)8 << 20)
#define DEFAULT_WS_MESSAGE     ((size_t)64 << 10)
#define MAX_CONNECTIONS        1024 /* fds per server; keeps libwebsockets' tables small */
#define MAX_HEADER_POOL        256  /* requests whose headers are being parsed at once */
#define MAX_PARAMS             256
#define BODY_CHUNK             16384
#define MAX_RESP_HEADERS       4096 /* bytes of handler-added response headers */
#define SCRATCH_LEN            32768
#define HEAD_RESERVE           8192 /* room kept for the response head in the scratch buffer */
#define WS_CLOSE_GRACE         5    /* seconds for a close frame to leave before the socket goes */

#define DEFAULT_CSP                                                                                \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; "             \
    "form-action 'self'"

struct route {
    char *method; /* NULL: any */
    char *path;   /* without the trailing '*' of a prefix route */
    size_t path_len;
    bool prefix;
    tl_httpd_handler_fn fn;
    void *arg;
};

struct kv {
    const char *name;
    const char *value;
};

struct tl_httpd_req {
    struct tl_httpd *h;        /* NULL once the server is destroyed */
    struct lws *wsi;           /* NULL once the client is gone */
    struct tl_httpd_req *prev; /* in h->reqs */
    struct tl_httpd_req *next;
    bool upgrade; /* a WebSocket upgrade request: read-only, never answered */

    const char *method;
    char *path;
    char *query;
    struct kv *params;
    size_t nparams;
    char *params_buf;
    struct kv *headers;
    size_t nheaders;
    char *headers_buf;
    char peer[64];
    char *body;
    size_t body_len;
    size_t body_cap;
    unsigned long long content_length;

    tl_httpd_handler_fn fn; /* the matched route; NULL when early_status says why not */
    void *fn_arg;
    int early_status;
    char allow[96];
    bool head_only;

    tl_httpd_cancel_fn cancel_fn;
    void *cancel_arg;
    bool dispatched; /* the handler has it: only the handler frees it, by answering */
    bool cancelled;
    ev_io eof_watch; /* from dispatch to the end of the answer: see eof_cb */
    bool watching;

    /* The answer. */
    bool answered;
    bool head_sent;
    bool close_after;
    int status;
    char *content_type;
    char *resp;
    size_t resp_len;
    size_t resp_off;
    bool resp_borrowed;
    char resp_headers[MAX_RESP_HEADERS]; /* "Name:\0value\0" pairs */
    size_t resp_headers_len;
    bool has_cache_control;
};

/* A message shared by every client it was broadcast to; LWS_PRE bytes of headroom first. */
struct ws_msg {
    size_t refs;
    size_t len;
    unsigned char data[];
};

struct ws_endpoint {
    char *path;
    struct tl_httpd_ws_opts opts;
    struct tl_httpd_ws_conn *clients;
    size_t nclients;
};

struct tl_httpd_ws_conn {
    struct lws *wsi;
    struct conn *c;
    struct ws_endpoint *ep;
    struct tl_httpd_ws_conn *prev;
    struct tl_httpd_ws_conn *next;
    struct ws_msg **ring;
    size_t head;
    size_t count;
    size_t bytes;
    char *rx;
    size_t rx_len;
    bool closing;
    int close_code;
    char close_reason[64];
    void *data;
};

struct static_file {
    const struct tl_httpd_file *file;
    char etag[24];
};

struct static_set {
    struct static_file *files;
    struct static_set *next;
};

/*
 * One accepted connection, kept as the libwebsockets opaque user data of its wsi from accept to
 * LWS_CALLBACK_WSI_DESTROY. Its timer enforces every deadline (see conn_arm).
 */
struct conn {
    struct tl_httpd *h;
    struct lws *wsi;
    struct conn *prev; /* in h->conns */
    struct conn *next;
    ev_timer timer;
    bool killed;
    struct tl_httpd_req *req;       /* the request in progress */
    struct tl_httpd_ws_conn *ws;    /* once upgraded */
    struct ws_endpoint *upgrade_ep; /* between the upgrade request and the WebSocket */
    struct tl_httpd_req *upgrade_req;
};

struct tl_httpd {
    struct ev_loop *loop;
    struct lws_context *ctx; /* set to NULL by libwebsockets when destruction completes */
    int port;
    char *iface;
    char *csp;
    char **extra_headers; /* lowercased, with the trailing ':' libwebsockets wants */
    size_t nextra_headers;
    size_t max_body;
    unsigned header_timeout;
    unsigned body_timeout;
    unsigned idle_timeout;
    unsigned async_timeout;

    struct route *routes;
    size_t nroutes;
    size_t routes_cap;
    struct ws_endpoint **eps;
    size_t neps;
    size_t eps_cap;
    struct static_set *statics;
    tl_httpd_ready_fn ready;
    void *ready_arg;

    struct tl_httpd_req *reqs; /* every live request not yet freed */
    struct conn *conns;
    unsigned char scratch[LWS_PRE + SCRATCH_LEN];
};

/* ---- small helpers ---- */

static const char *reason_phrase(int status)
{
    static const struct {
        int status;
        const char *text;
    } table[] = {
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {304, "Not Modified"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {411, "Length Required"},
        {413, "Payload Too Large"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Entity"},
        {429, "Too Many Requests"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (table[i].status == status)
            return table[i].text;
    return status >= 500 ? "Server Error" : status >= 400 ? "Client Error" : "";
}

static char *dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* RFC 7230 token characters, for header names. */
static bool is_token(const char *s)
{
    if (s == NULL || *s == '\0')
        return false;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 32 || c >= 127 || strchr("()<>@,;:\\\"/[]?={}", c) != NULL)
            return false;
    }
    return true;
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* FNV-1a 64 of the content: a strong enough validator for files that only change on upgrade. */
static void make_etag(const unsigned char *data, size_t len, char *out, size_t out_len)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= data[i];
        h *= 1099511628211ULL;
    }
    int n = snprintf(out, out_len, "\"%016llx\"", (unsigned long long)h);
    if (n < 0 || (size_t)n >= out_len)
        out[0] = '\0';
}

/* Appends s percent-encoded (RFC 3986 unreserved characters kept) to out at *pos. */
static void pct_encode(const char *s, char *out, size_t *pos)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            out[(*pos)++] = (char)c;
        }
        else {
            out[(*pos)++] = '%';
            out[(*pos)++] = hex[c >> 4];
            out[(*pos)++] = hex[c & 15];
        }
    }
}

/* ---- libwebsockets logging ---- */

/*
 * libwebsockets' errors are mostly about clients (a bad handshake, a reset), so they are
 * warnings here; its warnings are debug. Its notices are chatty in this build and stay off.
 */
static void lws_log(int level, const char *line)
{
    char msg[512];
    size_t n = strlen(line);
    if (n >= sizeof(msg))
        n = sizeof(msg) - 1;
    memcpy(msg, line, n);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        n--;
    msg[n] = '\0';
    if (level & LLL_ERR)
        TL_WARN("httpd: libwebsockets", TL_STR("msg", msg));
    else
        TL_DEBUG("httpd: libwebsockets", TL_STR("msg", msg));
}

/* ---- connections and their deadlines ---- */

/*
 * Every deadline is enforced here rather than by libwebsockets: its 4.1 libev glue re-arms its
 * one timer with ev_timer_set while that timer may be active, so a deadline nearer than the one
 * already armed fires only when that one does (seen up to 30 s late). One timer per connection
 * covers each phase in turn: request head (from accept, or from the end of the previous answer
 * plus the keep-alive idle time), body, handler, and writing the answer; a WebSocket has none
 * but the close grace. On expiry the connection is closed from here, outside libwebsockets'
 * service, where a synchronous close is allowed.
 */
static void conn_arm(struct conn *c, double seconds)
{
    ev_timer_stop(c->h->loop, &c->timer);
    if (seconds > 0) {
        ev_timer_set(&c->timer, seconds, 0);
        ev_timer_start(c->h->loop, &c->timer);
    }
}

/* Closes c's connection now; c and its request may be freed on return. */
static void conn_kill(struct conn *c)
{
    /*
     * libwebsockets may not close at once: a WebSocket first waits to send its close frame, a
     * plain connection for the peer to acknowledge a shutdown, both on its own (unreliable)
     * timers. So the deadline is re-armed, and if it expires again the socket is shut down under
     * libwebsockets, which then sees it fail and finishes the close.
     */
    if (c->killed) {
        int fd = lws_get_socket_fd(c->wsi);
        if (fd >= 0)
            shutdown(fd, SHUT_RDWR);
    }
    c->killed = true;
    conn_arm(c, 2);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_SYNC);
}

static bool expire_request(struct conn *c);
static void cancel_request(struct tl_httpd_req *req);
static void stop_eof_watch(struct tl_httpd_req *req);

static void conn_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = w->data;
    TL_DEBUG("httpd: connection timed out", TL_STR("path", c->req != NULL ? c->req->path : ""),
             TL_BOOL("again", c->killed));
    if (!c->killed && expire_request(c))
        return;
    conn_kill(c);
}

static struct conn *conn_new(struct tl_httpd *h, struct lws *wsi)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->h = h;
    c->wsi = wsi;
    ev_timer_init(&c->timer, conn_timeout_cb, 0, 0);
    c->timer.data = c;
    c->next = h->conns;
    if (h->conns != NULL)
        h->conns->prev = c;
    h->conns = c;
    lws_set_opaque_user_data(wsi, c);
    conn_arm(c, h->header_timeout);
    return c;
}

static void req_free(struct tl_httpd_req *req);

/* Frees c, which is no longer in h->conns. */
static void conn_release(struct conn *c)
{
    ev_timer_stop(c->h->loop, &c->timer);
    req_free(c->upgrade_req);
    if (c->wsi != NULL)
        lws_set_opaque_user_data(c->wsi, NULL);
    free(c);
}

static void conn_free(struct conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        c->h->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    conn_release(c);
}

/* ---- requests ---- */

static void req_link(struct tl_httpd_req *req)
{
    req->next = req->h->reqs;
    if (req->h->reqs != NULL)
        req->h->reqs->prev = req;
    req->h->reqs = req;
}

static void req_unlink(struct tl_httpd_req *req)
{
    if (req->h == NULL || req->upgrade)
        return;
    if (req->prev != NULL)
        req->prev->next = req->next;
    else
        req->h->reqs = req->next;
    if (req->next != NULL)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
}

static void stop_eof_watch(struct tl_httpd_req *req)
{
    if (req->watching && req->h != NULL)
        ev_io_stop(req->h->loop, &req->eof_watch);
    req->watching = false;
}

static void req_free(struct tl_httpd_req *req)
{
    if (req == NULL)
        return;
    stop_eof_watch(req);
    req_unlink(req);
    free(req->path);
    free(req->query);
    free(req->params);
    free(req->params_buf);
    free(req->headers);
    free(req->headers_buf);
    free(req->body);
    free(req->content_type);
    if (!req->resp_borrowed)
        free(req->resp);
    free(req);
}

/* Copies the query parameters (decoded by libwebsockets, one "name=value" per fragment). */
static enum tl_err snapshot_params(struct tl_httpd_req *req, struct lws *wsi)
{
    size_t total = 0;
    size_t n = 0;
    for (; n < MAX_PARAMS; n++) {
        int len = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, (int)n);
        if (len <= 0)
            break;
        total += (size_t)len + 2;
    }
    req->query = calloc(1, total * 3 + 1);
    if (req->query == NULL)
        return TL_ENOMEM;
    if (n == 0)
        return TL_OK;
    req->params = calloc(n, sizeof(*req->params));
    req->params_buf = malloc(total);
    if (req->params == NULL || req->params_buf == NULL)
        return TL_ENOMEM;

    size_t off = 0;
    size_t qpos = 0;
    for (size_t i = 0; i < n; i++) {
        char *frag = req->params_buf + off;
        int len =
            lws_hdr_copy_fragment(wsi, frag, (int)(total - off), WSI_TOKEN_HTTP_URI_ARGS, (int)i);
        if (len < 0)
            break;
        off += (size_t)len + 1;
        char *eq = strchr(frag, '=');
        if (i > 0)
            req->query[qpos++] = '&';
        if (eq != NULL) {
            *eq = '\0';
            req->params[req->nparams].value = eq + 1;
        }
        else {
            req->params[req->nparams].value = "";
        }
        req->params[req->nparams].name = frag;
        pct_encode(frag, req->query, &qpos);
        if (eq != NULL) {
            req->query[qpos++] = '=';
            pct_encode(eq + 1, req->query, &qpos);
        }
        req->nparams++;
    }
    req->query[qpos] = '\0';
    return TL_OK;
}

/* The names libwebsockets parses into tokens that are real request headers ("accept:"). */
static const char *header_token_name(int token)
{
    const char *name = (const char *)lws_token_to_string((enum lws_token_indexes)token);
    if (name == NULL || name[0] == '\0' || name[0] == ':')
        return NULL;
    size_t n = strlen(name);
    return name[n - 1] == ':' ? name : NULL;
}

/*
 * Copies every header now: libwebsockets frees its header table when the transaction moves on,
 * and an async handler reads them later.
 */
static enum tl_err snapshot_headers(struct tl_httpd_req *req, struct lws *wsi)
{
    const struct tl_httpd *h = req->h;
    size_t total = 0;
    size_t count = 0;
    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        const char *name = header_token_name(t);
        int len = name != NULL ? lws_hdr_total_length(wsi, (enum lws_token_indexes)t) : 0;
        if (len > 0) {
            total += strlen(name) + (size_t)len + 2;
            count++;
        }
    }
    for (size_t i = 0; i < h->nextra_headers; i++) {
        const char *name = h->extra_headers[i];
        int len = lws_hdr_custom_length(wsi, name, (int)strlen(name));
        if (len > 0) {
            total += strlen(name) + (size_t)len + 2;
            count++;
        }
    }
    if (count == 0)
        return TL_OK;
    req->headers = calloc(count, sizeof(*req->headers));
    req->headers_buf = malloc(total);
    if (req->headers == NULL || req->headers_buf == NULL)
        return TL_ENOMEM;

    size_t off = 0;
    for (int t = 0; t < WSI_TOKEN_COUNT + (int)h->nextra_headers && req->nheaders < count; t++) {
        bool custom = t >= WSI_TOKEN_COUNT;
        const char *name = custom ? h->extra_headers[t - WSI_TOKEN_COUNT] : header_token_name(t);
        if (name == NULL)
            continue;
        size_t name_len = strlen(name) - 1; /* without the ':' */
        int len = custom ? lws_hdr_custom_length(wsi, name, (int)name_len + 1)
                         : lws_hdr_total_length(wsi, (enum lws_token_indexes)t);
        if (len <= 0 || name_len + (size_t)len + 2 > total - off)
            continue;
        char *dst = req->headers_buf + off;
        memcpy(dst, name, name_len);
        dst[name_len] = '\0';
        char *value = dst + name_len + 1;
        int room = len + 1;
        len = custom ? lws_hdr_custom_copy(wsi, value, room, name, (int)name_len + 1)
                     : lws_hdr_copy(wsi, value, room, (enum lws_token_indexes)t);
        if (len < 0)
            continue;
        req->headers[req->nheaders].name = dst;
        req->headers[req->nheaders].value = value;
        req->nheaders++;
        off += name_len + 1 + (size_t)len + 1;
    }
    return TL_OK;
}

static const char *method_name(int m)
{
    switch (m) {
    case LWSHUMETH_GET:
        return "GET";
    case LWSHUMETH_POST:
        return "POST";
    case LWSHUMETH_OPTIONS:
        return "OPTIONS";
    case LWSHUMETH_PUT:
        return "PUT";
    case LWSHUMETH_PATCH:
        return "PATCH";
    case LWSHUMETH_DELETE:
        return "DELETE";
    case LWSHUMETH_CONNECT:
        return "CONNECT";
    case LWSHUMETH_HEAD:
        return "HEAD";
    default:
        return NULL;
    }
}

/* A request with everything an async handler may read later copied out of libwebsockets. */
static struct tl_httpd_req *req_new(struct tl_httpd *h, struct lws *wsi, const char *path,
                                    size_t path_len, bool upgrade)
{
    struct tl_httpd_req *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return NULL;
    req->h = h;
    req->wsi = wsi;
    req->upgrade = upgrade;
    if (!upgrade)
        req_link(req);
    char *uri = NULL;
    int uri_len = 0;
    req->method = method_name(lws_http_get_uri_and_method(wsi, &uri, &uri_len));
    req->path = dup_n(path, path_len);
    if (req->path == NULL || snapshot_params(req, wsi) != TL_OK ||
        snapshot_headers(req, wsi) != TL_OK) {
        req_free(req);
        return NULL;
    }
    if (lws_get_peer_simple(wsi, req->peer, sizeof(req->peer)) == NULL)
        req->peer[0] = '\0';
    return req;
}

/* ---- routing ---- */

static bool method_matches(const struct route *r, const char *method)
{
    return r->method == NULL || strcmp(r->method, method) == 0;
}

static bool path_matches(const struct route *r, const char *path)
{
    if (r->prefix)
        return strncmp(path, r->path, r->path_len) == 0;
    return strcmp(path, r->path) == 0;
}

/* The exact route for method and path, else the longest matching prefix; NULL when none. */
static const struct route *route_match(const struct tl_httpd *h, const char *method,
                                       const char *path)
{
    const struct route *best = NULL;
    for (size_t i = 0; i < h->nroutes; i++) {
        const struct route *r = &h->routes[i];
        if (!method_matches(r, method) || !path_matches(r, path))
            continue;
        if (!r->prefix)
            return r;
        if (best == NULL || r->path_len > best->path_len)
            best = r;
    }
    return best;
}

/* Fills req's handler, or early_status (404, 405 with Allow) when there is none. */
static void route_request(struct tl_httpd_req *req)
{
    const struct tl_httpd *h = req->h;
    const struct route *r = NULL;
    if (req->method != NULL) {
        r = route_match(h, req->method, req->path);
        if (r == NULL && strcmp(req->method, "HEAD") == 0) {
            r = route_match(h, "GET", req->path);
            req->head_only = r != NULL;
        }
    }
    if (r != NULL) {
        req->fn = r->fn;
        req->fn_arg = r->arg;
        return;
    }
    size_t pos = 0;
    bool get = false;
    req->allow[0] = '\0';
    for (size_t i = 0; i < h->nroutes; i++) {
        const struct route *other = &h->routes[i];
        if (!path_matches(other, req->path) || other->method == NULL)
            continue;
        get = get || strcmp(other->method, "GET") == 0;
        int n = snprintf(req->allow + pos, sizeof(req->allow) - pos, "%s%s", pos > 0 ? ", " : "",
                         other->method);
        if (n > 0 && (size_t)n < sizeof(req->allow) - pos)
            pos += (size_t)n;
    }
    if (get) {
        int n = snprintf(req->allow + pos, sizeof(req->allow) - pos, ", HEAD");
        if (n > 0 && (size_t)n < sizeof(req->allow) - pos)
            pos += (size_t)n;
    }
    req->early_status = pos > 0 ? 405 : 404;
}

/* Whether method (NULL: any) and the exact or prefix path are routed already. */
static bool route_exists(const struct tl_httpd *h, const char *method, const char *path)
{
    size_t len = strlen(path);
    bool prefix = len > 0 && path[len - 1] == '*';
    if (prefix)
        len--;
    for (size_t i = 0; i < h->nroutes; i++) {
        const struct route *r = &h->routes[i];
        bool same_method = (r->method == NULL && method == NULL) ||
                           (r->method != NULL && method != NULL && strcmp(r->method, method) == 0);
        if (same_method && r->prefix == prefix && r->path_len == len &&
            strncmp(r->path, path, len) == 0)
            return true;
    }
    return false;
}

enum tl_err tl_httpd_route(struct tl_httpd *h, const char *method, const char *path,
                           tl_httpd_handler_fn fn, void *arg)
{
    if (h == NULL || path == NULL || path[0] != '/' || fn == NULL)
        return TL_EINVAL;
    if (method != NULL && strcmp(method, "*") == 0)
        method = NULL;
    if (method != NULL && !is_token(method))
        return TL_EINVAL;
    if (route_exists(h, method, path))
        return TL_ECONFLICT;
    size_t len = strlen(path);
    bool prefix = path[len - 1] == '*';
    if (prefix)
        len--;
    if (h->nroutes == h->routes_cap) {
        size_t cap = h->routes_cap != 0 ? h->routes_cap * 2 : 16;
        struct route *routes = realloc(h->routes, cap * sizeof(*routes));
        if (routes == NULL)
            return TL_ENOMEM;
        h->routes = routes;
        h->routes_cap = cap;
    }
    struct route r = {
        .path = dup_n(path, len), .path_len = len, .prefix = prefix, .fn = fn, .arg = arg};
    r.method = method != NULL ? strdup(method) : NULL;
    if (r.path == NULL || (method != NULL && r.method == NULL)) {
        free(r.path);
        free(r.method);
        return TL_ENOMEM;
    }
    h->routes[h->nroutes++] = r;
    return TL_OK;
}

/* ---- request accessors ---- */

const char *tl_httpd_req_method(const struct tl_httpd_req *req)
{
    return req->method != NULL ? req->method : "";
}

const char *tl_httpd_req_path(const struct tl_httpd_req *req)
{
    return req->path;
}

const char *tl_httpd_req_query(const struct tl_httpd_req *req)
{
    return req->query != NULL ? req->query : "";
}

const char *tl_httpd_req_param(const struct tl_httpd_req *req, const char *name)
{
    for (size_t i = 0; name != NULL && i < req->nparams; i++)
        if (strcmp(req->params[i].name, name) == 0)
            return req->params[i].value;
    return NULL;
}

size_t tl_httpd_req_param_count(const struct tl_httpd_req *req)
{
    return req->nparams;
}

bool tl_httpd_req_param_at(const struct tl_httpd_req *req, size_t i, const char **name,
                           const char **value)
{
    if (i >= req->nparams)
        return false;
    if (name != NULL)
        *name = req->params[i].name;
    if (value != NULL)
        *value = req->params[i].value;
    return true;
}

const char *tl_httpd_req_header(const struct tl_httpd_req *req, const char *name)
{
    for (size_t i = 0; name != NULL && i < req->nheaders; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

const char *tl_httpd_req_body(const struct tl_httpd_req *req, size_t *len)
{
    if (len != NULL)
        *len = req->body_len;
    return req->body != NULL ? req->body : "";
}

const char *tl_httpd_req_peer(const struct tl_httpd_req *req)
{
    return req->peer;
}

bool tl_httpd_req_gone(const struct tl_httpd_req *req)
{
    return req->wsi == NULL;
}

void tl_httpd_req_on_cancel(struct tl_httpd_req *req, tl_httpd_cancel_fn fn, void *arg)
{
    req->cancel_fn = fn;
    req->cancel_arg = arg;
}

enum tl_err tl_httpd_req_add_header(struct tl_httpd_req *req, const char *name, const char *value)
{
    if (req == NULL || !is_token(name) || value == NULL || strpbrk(value, "\r\n") != NULL)
        return TL_EINVAL;
    size_t nlen = strlen(name);
    size_t vlen = strlen(value);
    if (req->resp_headers_len + nlen + vlen + 3 > sizeof(req->resp_headers))
        return TL_ETOOBIG;
    char *p = req->resp_headers + req->resp_headers_len;
    memcpy(p, name, nlen);
    p[nlen] = ':';
    p[nlen + 1] = '\0';
    memcpy(p + nlen + 2, value, vlen + 1);
    req->resp_headers_len += nlen + vlen + 3;
    if (strcasecmp(name, "Cache-Control") == 0)
        req->has_cache_control = true;
    return TL_OK;
}

/* ---- answering ---- */

enum body_mode { BODY_COPY, BODY_OWNED, BODY_STATIC };

static void respond(struct tl_httpd_req *req, int status, const char *content_type,
                    const char *body, size_t len, enum body_mode mode)
{
    if (req == NULL) {
        if (mode == BODY_OWNED)
            free((char *)body);
        return;
    }
    if (req->answered || req->upgrade) {
        TL_ERROR("httpd: request answered twice", TL_STR("path", req->path));
        if (mode == BODY_OWNED)
            free((char *)body);
        return;
    }
    req->answered = true;
    req->status = status;
    if (mode != BODY_COPY)
        req->resp = (char *)body; /* owned, or borrowed for good */
    else if (len > 0)
        req->resp = dup_n(body, len);
    req->resp_borrowed = mode == BODY_STATIC;
    req->resp_len = len;
    if (content_type != NULL)
        req->content_type = strdup(content_type);
    if ((len > 0 && req->resp == NULL) || (content_type != NULL && req->content_type == NULL)) {
        /* Out of memory: a bodiless 500 still tells the client something went wrong. */
        if (!req->resp_borrowed)
            free(req->resp);
        req->resp = NULL;
        req->resp_len = 0;
        req->status = 500;
    }
    if (req->wsi == NULL) {
        req_free(req);
        return;
    }
    /* The client now has body_timeout seconds to read the answer. */
    struct conn *c = lws_get_opaque_user_data(req->wsi);
    if (c != NULL)
        conn_arm(c, req->h->body_timeout);
    lws_callback_on_writable(req->wsi);
}

void tl_httpd_respond(struct tl_httpd_req *req, int status, const char *content_type,
                      const char *body, size_t len)
{
    respond(req, status, content_type, body, len, BODY_COPY);
}

void tl_httpd_respond_owned(struct tl_httpd_req *req, int status, const char *content_type,
                            char *body, size_t len)
{
    respond(req, status, content_type, body, len, BODY_OWNED);
}

void tl_httpd_respond_static(struct tl_httpd_req *req, int status, const char *content_type,
                             const char *body, size_t len)
{
    respond(req, status, content_type, body, len, BODY_STATIC);
}

static char *error_json(int status, const char *message)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o != NULL && cJSON_AddNumberToObject(o, "status", status) != NULL &&
        cJSON_AddStringToObject(o, "error", reason_phrase(status)) != NULL &&
        cJSON_AddStringToObject(o, "message", message != NULL ? message : "") != NULL)
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

void tl_httpd_respond_error(struct tl_httpd_req *req, int status, const char *message)
{
    char *text = error_json(status, message);
    if (text == NULL) {
        tl_httpd_respond(req, status, NULL, NULL, 0);
        return;
    }
    tl_httpd_respond_owned(req, status, "application/json", text, strlen(text));
}

/* Answers with a JSON error and closes the connection afterwards (the body was not read). */
static void respond_and_close(struct tl_httpd_req *req, int status, const char *message)
{
    req->close_after = true;
    tl_httpd_respond_error(req, status, message);
}

/*
 * The handler ran out of time. The client gets a 504 from a stand-in request, and the handler's
 * own request is detached as if the client had gone: it stays valid, its cancel callback runs,
 * and its answer, whenever it comes, is dropped. Returns false when there is nothing to expire
 * (the connection is then closed instead).
 */
static bool expire_request(struct conn *c)
{
    struct tl_httpd_req *orig = c->req;
    if (orig == NULL || !orig->dispatched || orig->answered)
        return false;
    struct tl_httpd_req *stub = calloc(1, sizeof(*stub));
    if (stub == NULL)
        return false;
    stub->h = orig->h;
    stub->wsi = c->wsi;
    stub->method = orig->method;
    stub->path = strdup(orig->path);
    if (stub->path == NULL) {
        free(stub);
        return false;
    }
    stub->dispatched = true;
    req_link(stub);
    TL_WARN("httpd: handler did not answer in time", TL_STR("method", tl_httpd_req_method(orig)),
            TL_STR("path", orig->path), TL_INT("timeout_s", orig->h->async_timeout));
    c->req = stub;
    orig->wsi = NULL;
    stop_eof_watch(orig);
    cancel_request(orig); /* may answer, and so free, orig */
    respond_and_close(stub, 504, "the request handler did not answer in time");
    return true;
}

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

/* Writes the status line and headers of req's answer at *p; nonzero when they do not fit. */
static int build_head(const struct tl_httpd *h, struct tl_httpd_req *req, unsigned char **p,
                      unsigned char *end)
{
    struct lws *wsi = req->wsi;
    if (lws_add_http_header_status(wsi, (unsigned int)req->status, p, end))
        return 1;
    if (req->content_type != NULL &&
        lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                     (const unsigned char *)req->content_type,
                                     (int)strlen(req->content_type), p, end))
        return 1;
    /* No length on 1xx, 204 and 304 (RFC 9110 8.6); HEAD gets the GET length without a body. */
    if (req->status >= 200 && req->status != 204 && req->status != 304) {
        char num[24];
        int n = snprintf(num, sizeof(num), "%zu", req->resp_len);
        if (n < 0 || (size_t)n >= sizeof(num) ||
            lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                         (const unsigned char *)num, n, p, end))
            return 1;
    }
    if (add_header(wsi, "x-content-type-options:", "nosniff", p, end) ||
        add_header(wsi, "x-frame-options:", "DENY", p, end) ||
        add_header(wsi, "referrer-policy:", "no-referrer", p, end) ||
        add_header(wsi, "content-security-policy:", h->csp, p, end))
        return 1;
    if (!req->has_cache_control && add_header(wsi, "cache-control:", "no-store", p, end))
        return 1;
    for (size_t off = 0; off < req->resp_headers_len;) {
        const char *name = req->resp_headers + off;
        const char *value = name + strlen(name) + 1;
        if (add_header(wsi, name, value, p, end))
            return 1;
        off += strlen(name) + strlen(value) + 2;
    }
    if (req->close_after && add_header(wsi, "connection:", "close", p, end))
        return 1;
    return lws_finalize_http_header(wsi, p, end);
}

/*
 * Sends req's answer over as many writeable callbacks as it takes: the head (with the whole body
 * when it fits, in one write), then the body in chunks of the scratch buffer. Returns -1 to close
 * the connection.
 */
static int write_answer(struct tl_httpd *h, struct conn *c)
{
    struct lws *wsi = c->wsi;
    struct tl_httpd_req *req = c->req;
    unsigned char *start = h->scratch + LWS_PRE;
    unsigned char *end = h->scratch + sizeof(h->scratch) - 1;
    size_t body_len = req->head_only ? 0 : req->resp_len;

    if (!req->head_sent) {
        unsigned char *p = start;
        if (build_head(h, req, &p, start + HEAD_RESERVE)) {
            TL_ERROR("httpd: response head too large", TL_STR("path", req->path));
            return -1;
        }
        req->head_sent = true;
        size_t room = (size_t)(end - p);
        size_t n = body_len < room ? body_len : room;
        if (n > 0)
            memcpy(p, req->resp, n);
        req->resp_off = n;
        size_t total = (size_t)(p - start) + n;
        bool last = req->resp_off == body_len;
        if (lws_write(wsi, start, total, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)total)
            return -1;
    }
    else {
        size_t n = body_len - req->resp_off;
        if (n > SCRATCH_LEN)
            n = SCRATCH_LEN;
        memcpy(start, req->resp + req->resp_off, n);
        req->resp_off += n;
        bool last = req->resp_off == body_len;
        if (lws_write(wsi, start, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n)
            return -1;
    }
    if (req->resp_off < body_len) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    bool close = req->close_after;
    c->req = NULL;
    req_free(req);
    if (close)
        return -1;
    conn_arm(c, h->idle_timeout + h->header_timeout);
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/*
 * Between handing a request to its handler and finishing the answer, libwebsockets 4.1 reads
 * nothing from the connection, yet keeps it in the poll set: a client that hangs up (or sends
 * more bytes) then leaves the socket readable, libev reports it on every turn, and the
 * libwebsockets idle watcher, which re-arms its timers, starves, so even its timeouts stop. This
 * watcher, on the same socket, peeks instead: end of stream or an error closes the connection at
 * once (running the handler's cancel callback); bytes before the answer do too, since requests
 * pipelined behind a slow one are not supported; bytes after it are the next request, which
 * libwebsockets reads once the answer is out.
 */
static void eof_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct tl_httpd_req *req = w->data;
    char byte;
    ssize_t n = recv(w->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    struct conn *c = req->wsi != NULL ? lws_get_opaque_user_data(req->wsi) : NULL;
    bool kill = n <= 0 || !req->answered;
    stop_eof_watch(req);
    if (kill && c != NULL) {
        TL_DEBUG("httpd: client hung up or sent data before the answer", TL_STR("path", req->path),
                 TL_STR("peer", req->peer));
        conn_kill(c);
    }
}

static void dispatch(struct conn *c, struct tl_httpd_req *req)
{
    /* Our deadline from now on; the one libwebsockets set must not cut the handler off. */
    lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
    if (req->early_status == 405) {
        if (tl_httpd_req_add_header(req, "Allow", req->allow) != TL_OK)
            TL_DEBUG("httpd: Allow header dropped", TL_STR("path", req->path));
        char msg[160];
        int n =
            snprintf(msg, sizeof(msg), "method %s is not allowed here", tl_httpd_req_method(req));
        tl_httpd_respond_error(req, 405, n > 0 && (size_t)n < sizeof(msg) ? msg : NULL);
        return;
    }
    if (req->early_status != 0 || req->fn == NULL) {
        tl_httpd_respond_error(req, 404, "no such path");
        return;
    }
    int fd = lws_get_socket_fd(c->wsi);
    if (fd >= 0) {
        ev_io_init(&req->eof_watch, eof_cb, fd, EV_READ);
        req->eof_watch.data = req;
        ev_io_start(req->h->loop, &req->eof_watch);
        req->watching = true;
    }
    conn_arm(c, req->h->async_timeout);
    req->dispatched = true;
    /* The handler may answer at once, which re-arms the deadline for writing. */
    req->fn(req->fn_arg, req);
}

/* Tells the handler, once, that nobody is waiting for its answer any more. */
static void cancel_request(struct tl_httpd_req *req)
{
    if (req->cancelled)
        return;
    req->cancelled = true;
    if (req->cancel_fn != NULL)
        req->cancel_fn(req->cancel_arg, req);
}

/* The client went away: drop an answer in progress, or tell the handler still working on it. */
static void detach_request(struct conn *c)
{
    if (c == NULL || c->req == NULL)
        return;
    struct tl_httpd_req *req = c->req;
    c->req = NULL;
    req->wsi = NULL;
    stop_eof_watch(req);
    if (req->answered || !req->dispatched) {
        /* An answer on its way, or a body still arriving that no handler has seen. */
        req_free(req);
        return;
    }
    cancel_request(req);
}

static int on_http(struct tl_httpd *h, struct conn *c, const char *uri, size_t uri_len)
{
    if (c == NULL || uri == NULL || c->req != NULL)
        return -1;
    struct lws *wsi = c->wsi;
    struct tl_httpd_req *req = req_new(h, wsi, uri, uri_len, false);
    if (req == NULL)
        return -1;
    c->req = req;
    route_request(req);

    char num[32];
    bool chunked = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
    int cl_len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (cl_len > 0) {
        char *endp = NULL;
        if (cl_len >= (int)sizeof(num) ||
            lws_hdr_copy(wsi, num, sizeof(num), WSI_TOKEN_HTTP_CONTENT_LENGTH) < 0) {
            respond_and_close(req, 400, "malformed Content-Length");
            return 0;
        }
        errno = 0;
        req->content_length = strtoull(num, &endp, 10);
        if (errno != 0 || endp == num || *endp != '\0' || num[0] == '-') {
            respond_and_close(req, 400, "malformed Content-Length");
            return 0;
        }
    }
    if (chunked) {
        respond_and_close(req, 411, "chunked request bodies are not accepted; send Content-Length");
        return 0;
    }
    if (req->content_length > h->max_body) {
        char msg[96];
        int n = snprintf(msg, sizeof(msg), "request body exceeds %zu bytes", h->max_body);
        respond_and_close(req, 413, n > 0 && (size_t)n < sizeof(msg) ? msg : NULL);
        return 0;
    }
    if (req->content_length > 0) {
        conn_arm(c, h->body_timeout);
        return 0;
    }
    dispatch(c, req);
    return 0;
}

static int on_body(struct conn *c, const char *data, size_t len)
{
    struct tl_httpd_req *req = c != NULL ? c->req : NULL;
    if (req == NULL || req->answered || req->dispatched || len == 0)
        return 0;
    if (len > req->content_length - req->body_len) {
        /* More than Content-Length announced: the stream is out of step. */
        respond_and_close(req, 400, "body longer than Content-Length");
        return 0;
    }
    /*
     * The buffer grows with what arrives rather than with what was announced, so idle clients
     * announcing big bodies cost nothing.
     */
    if (req->body_len + len + 1 > req->body_cap) {
        size_t cap = req->body_cap != 0 ? req->body_cap : BODY_CHUNK;
        while (cap < req->body_len + len + 1)
            cap *= 2;
        if (cap > req->content_length + 1)
            cap = (size_t)req->content_length + 1;
        char *body = realloc(req->body, cap);
        if (body == NULL)
            return -1;
        req->body = body;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, data, len);
    req->body_len += len;
    return 0;
}

static int on_body_done(struct conn *c)
{
    struct tl_httpd_req *req = c != NULL ? c->req : NULL;
    /* A request without a body was handed out when its head arrived; libwebsockets still
     * reports its (empty) body done: handing it out twice would answer it twice. */
    if (req == NULL || req->answered || req->dispatched)
        return 0;
    if (req->body == NULL) {
        respond_and_close(req, 400, "body shorter than Content-Length");
        return 0;
    }
    req->body[req->body_len] = '\0';
    dispatch(c, req);
    return 0;
}

/* ---- WebSocket ---- */

static struct ws_endpoint *find_endpoint(const struct tl_httpd *h, const char *path)
{
    for (size_t i = 0; h != NULL && path != NULL && i < h->neps; i++)
        if (strcmp(h->eps[i]->path, path) == 0)
            return h->eps[i];
    return NULL;
}

static void msg_unref(struct ws_msg *msg)
{
    if (msg != NULL && --msg->refs == 0)
        free(msg);
}

static void conn_clear_queue(struct tl_httpd_ws_conn *conn)
{
    size_t cap = conn->ep->opts.max_queue;
    while (conn->count > 0) {
        msg_unref(conn->ring[conn->head]);
        conn->ring[conn->head] = NULL;
        conn->head = (conn->head + 1) % cap;
        conn->count--;
    }
    conn->bytes = 0;
}

/*
 * Starts closing conn: its queue is freed at once, a close frame goes out when the socket takes
 * it, and the connection is cut after WS_CLOSE_GRACE seconds in any case (a slow client's socket
 * may never drain).
 */
static void conn_close(struct tl_httpd_ws_conn *conn, int code, const char *reason)
{
    if (conn->closing || conn->wsi == NULL)
        return;
    conn->closing = true;
    conn->close_code = code;
    int n = snprintf(conn->close_reason, sizeof(conn->close_reason), "%s", reason ? reason : "");
    if (n < 0)
        conn->close_reason[0] = '\0';
    conn_clear_queue(conn);
    conn_arm(conn->c, WS_CLOSE_GRACE);
    lws_callback_on_writable(conn->wsi);
}

static enum tl_err conn_enqueue(struct tl_httpd_ws_conn *conn, struct ws_msg *msg)
{
    const struct tl_httpd_ws_opts *o = &conn->ep->opts;
    if (conn->closing)
        return TL_ESTATE;
    if (conn->count == o->max_queue || msg->len > o->max_queue_bytes - conn->bytes) {
        TL_WARN("httpd: dropping slow WebSocket client", TL_STR("path", conn->ep->path),
                TL_INT("queued", (long long)conn->count),
                TL_INT("queued_bytes", (long long)conn->bytes));
        conn_close(conn, LWS_CLOSE_STATUS_POLICY_VIOLATION, "client too slow");
        return TL_ETOOBIG;
    }
    conn->ring[(conn->head + conn->count) % o->max_queue] = msg;
    conn->count++;
    conn->bytes += msg->len;
    msg->refs++;
    lws_callback_on_writable(conn->wsi);
    return TL_OK;
}

static struct ws_msg *msg_new(const char *text, size_t len)
{
    struct ws_msg *msg = malloc(sizeof(*msg) + LWS_PRE + len);
    if (msg == NULL)
        return NULL;
    msg->refs = 0;
    msg->len = len;
    if (len > 0)
        memcpy(msg->data + LWS_PRE, text, len);
    return msg;
}

enum tl_err tl_httpd_broadcast(struct tl_httpd *h, const char *path, const char *text, size_t len)
{
    struct ws_endpoint *ep = find_endpoint(h, path);
    if (ep == NULL)
        return TL_ENOTFOUND;
    if (ep->clients == NULL)
        return TL_OK;
    struct ws_msg *msg = msg_new(text, len);
    if (msg == NULL)
        return TL_ENOMEM;
    for (struct tl_httpd_ws_conn *c = ep->clients; c != NULL; c = c->next)
        (void)conn_enqueue(c, msg); /* a full queue drops that client, not the broadcast */
    if (msg->refs == 0)
        free(msg);
    return TL_OK;
}

size_t tl_httpd_ws_clients(const struct tl_httpd *h, const char *path)
{
    const struct ws_endpoint *ep = find_endpoint(h, path);
    return ep != NULL ? ep->nclients : 0;
}

enum tl_err tl_httpd_ws_send(struct tl_httpd_ws_conn *conn, const char *text, size_t len)
{
    if (conn == NULL || (text == NULL && len > 0))
        return TL_EINVAL;
    struct ws_msg *msg = msg_new(text, len);
    if (msg == NULL)
        return TL_ENOMEM;
    enum tl_err result = conn_enqueue(conn, msg);
    if (msg->refs == 0)
        free(msg);
    return result;
}

void tl_httpd_ws_close(struct tl_httpd_ws_conn *conn, int code, const char *reason)
{
    if (conn != NULL)
        conn_close(conn, code, reason);
}

void tl_httpd_ws_set_data(struct tl_httpd_ws_conn *conn, void *data)
{
    if (conn != NULL)
        conn->data = data;
}

void *tl_httpd_ws_data(const struct tl_httpd_ws_conn *conn)
{
    return conn != NULL ? conn->data : NULL;
}

/*
 * Refuses an upgrade with a JSON error. The head and body go out in one write, as
 * libwebsockets' own lws_return_http_status does on HTTP/1.
 */
static int refuse_upgrade(struct tl_httpd *h, struct lws *wsi, int status, const char *message)
{
    unsigned char *start = h->scratch + LWS_PRE;
    unsigned char *p = start;
    unsigned char *end = h->scratch + sizeof(h->scratch) - 1;
    char *body = error_json(status, message);
    size_t len = body != NULL ? strlen(body) : 0;
    char num[24];
    int n = snprintf(num, sizeof(num), "%zu", len);
    int failed = n < 0 || (size_t)n >= sizeof(num) ||
                 lws_add_http_header_status(wsi, (unsigned int)status, &p, end) ||
                 add_header(wsi, "content-type:", "application/json", &p, end) ||
                 lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                              (const unsigned char *)num, n, &p, end) ||
                 add_header(wsi, "x-content-type-options:", "nosniff", &p, end) ||
                 add_header(wsi, "cache-control:", "no-store", &p, end) ||
                 add_header(wsi, "connection:", "close", &p, end) ||
                 lws_finalize_http_header(wsi, &p, end) || (size_t)(end - p) <= len;
    if (!failed) {
        if (body != NULL)
            memcpy(p, body, len + 1);
        p += len;
        failed =
            lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_FINAL) < (int)(p - start);
    }
    free(body);
    return failed ? -1 : 1;
}

static int on_confirm_upgrade(struct tl_httpd *h, struct conn *c, const char *protocol)
{
    char path[1024];
    if (c == NULL || c->upgrade_req != NULL || protocol == NULL ||
        strcasecmp(protocol, "websocket") != 0)
        return -1; /* h2c and anything else: hang up */
    struct lws *wsi = c->wsi;
    int n = lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI);
    if (n <= 0)
        return refuse_upgrade(h, wsi, 400, "WebSocket upgrades must be GET requests");
    struct ws_endpoint *ep = find_endpoint(h, path);
    if (ep == NULL)
        return refuse_upgrade(h, wsi, 404, "no WebSocket endpoint at this path");
    struct tl_httpd_req *req = req_new(h, wsi, path, (size_t)n, true);
    if (req == NULL)
        return -1;
    if (ep->opts.authorize != NULL) {
        int status = ep->opts.authorize(ep->opts.arg, req);
        if (status != 0) {
            req_free(req);
            return refuse_upgrade(h, wsi, status < 400 || status > 599 ? 403 : status,
                                  "WebSocket connection refused");
        }
    }
    c->upgrade_ep = ep;
    c->upgrade_req = req;
    return 0;
}

static int on_ws_open(struct conn *c)
{
    if (c == NULL || c->upgrade_ep == NULL || c->ws != NULL)
        return -1;
    struct ws_endpoint *ep = c->upgrade_ep;
    struct tl_httpd_req *req = c->upgrade_req;
    c->upgrade_ep = NULL;
    c->upgrade_req = NULL;
    conn_arm(c, 0); /* a WebSocket lives as long as both ends want */
    struct tl_httpd_ws_conn *conn = calloc(1, sizeof(*conn));
    if (conn != NULL)
        conn->ring = calloc(ep->opts.max_queue, sizeof(struct ws_msg *));
    if (conn == NULL || conn->ring == NULL) {
        free(conn);
        req_free(req);
        return -1;
    }
    conn->wsi = c->wsi;
    conn->c = c;
    conn->ep = ep;
    conn->next = ep->clients;
    if (ep->clients != NULL)
        ep->clients->prev = conn;
    ep->clients = conn;
    ep->nclients++;
    c->ws = conn;
    if (ep->opts.on_open != NULL)
        ep->opts.on_open(ep->opts.arg, conn, req);
    req_free(req);
    return 0;
}

static int on_ws_writeable(struct lws *wsi, struct conn *c)
{
    struct tl_httpd_ws_conn *conn = c != NULL ? c->ws : NULL;
    if (conn == NULL)
        return 0;
    if (conn->closing) {
        lws_close_reason(wsi, (enum lws_close_status)conn->close_code,
                         (unsigned char *)conn->close_reason, strlen(conn->close_reason));
        return -1;
    }
    if (conn->count == 0)
        return 0;
    struct ws_msg *msg = conn->ring[conn->head];
    conn->ring[conn->head] = NULL;
    conn->head = (conn->head + 1) % conn->ep->opts.max_queue;
    conn->count--;
    conn->bytes -= msg->len;
    int n = lws_write(wsi, msg->data + LWS_PRE, msg->len, LWS_WRITE_TEXT);
    bool ok = n >= (int)msg->len;
    msg_unref(msg);
    if (!ok)
        return -1;
    if (conn->count > 0)
        lws_callback_on_writable(wsi);
    return 0;
}

static int on_ws_receive(struct lws *wsi, struct conn *c, const char *data, size_t len)
{
    struct tl_httpd_ws_conn *conn = c != NULL ? c->ws : NULL;
    if (conn == NULL || conn->closing || conn->ep->opts.on_message == NULL)
        return 0;
    size_t cap = conn->ep->opts.max_message;
    if (len > cap - conn->rx_len) {
        static const char reason[] = "message too big";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)reason,
                         sizeof(reason) - 1);
        return -1;
    }
    if (conn->rx == NULL) {
        conn->rx = malloc(cap + 1);
        if (conn->rx == NULL)
            return -1;
    }
    memcpy(conn->rx + conn->rx_len, data, len);
    conn->rx_len += len;
    if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
        conn->rx[conn->rx_len] = '\0';
        size_t n = conn->rx_len;
        conn->rx_len = 0;
        conn->ep->opts.on_message(conn->ep->opts.arg, conn, conn->rx, n);
    }
    return 0;
}

static void ws_closed(struct conn *c)
{
    struct tl_httpd_ws_conn *conn = c != NULL ? c->ws : NULL;
    if (conn == NULL)
        return;
    c->ws = NULL;
    struct ws_endpoint *ep = conn->ep;
    if (conn->prev != NULL)
        conn->prev->next = conn->next;
    else
        ep->clients = conn->next;
    if (conn->next != NULL)
        conn->next->prev = conn->prev;
    ep->nclients--;
    if (ep->opts.on_close != NULL)
        ep->opts.on_close(ep->opts.arg, conn);
    conn_clear_queue(conn);
    free(conn->ring);
    free(conn->rx);
    free(conn);
}

enum tl_err tl_httpd_ws_endpoint(struct tl_httpd *h, const char *path,
                                 const struct tl_httpd_ws_opts *opts)
{
    if (h == NULL || path == NULL || path[0] != '/')
        return TL_EINVAL;
    if (find_endpoint(h, path) != NULL)
        return TL_ECONFLICT;
    if (h->neps == h->eps_cap) {
        size_t cap = h->eps_cap != 0 ? h->eps_cap * 2 : 4;
        struct ws_endpoint **eps = realloc(h->eps, cap * sizeof(struct ws_endpoint *));
        if (eps == NULL)
            return TL_ENOMEM;
        h->eps = eps;
        h->eps_cap = cap;
    }
    struct ws_endpoint *ep = calloc(1, sizeof(*ep));
    if (ep == NULL)
        return TL_ENOMEM;
    ep->path = strdup(path);
    if (ep->path == NULL) {
        free(ep);
        return TL_ENOMEM;
    }
    if (opts != NULL)
        ep->opts = *opts;
    if (ep->opts.max_queue == 0)
        ep->opts.max_queue = DEFAULT_WS_QUEUE;
    if (ep->opts.max_queue_bytes == 0)
        ep->opts.max_queue_bytes = DEFAULT_WS_QUEUE_BYTES;
    if (ep->opts.max_message == 0)
        ep->opts.max_message = DEFAULT_WS_MESSAGE;
    h->eps[h->neps++] = ep;
    return TL_OK;
}

/* ---- the libwebsockets callback ---- */

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    struct tl_httpd *h = ctx != NULL ? lws_context_user(ctx) : NULL;
    if (h == NULL)
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    /* Only accepted connections carry one; the listener and internal wsis have NULL. */
    struct conn *c = lws_get_opaque_user_data(wsi);

    switch (reason) {
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        return conn_new(h, wsi) != NULL ? 0 : -1;
    case LWS_CALLBACK_HTTP:
        return on_http(h, c, in, in != NULL ? strlen(in) : 0);
    case LWS_CALLBACK_HTTP_BODY:
        return on_body(c, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return on_body_done(c);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if (c == NULL || c->req == NULL || !c->req->answered)
            return 0;
        return write_answer(h, c);
    case LWS_CALLBACK_CLOSED_HTTP:
        detach_request(c);
        break;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return on_confirm_upgrade(h, c, in);
    case LWS_CALLBACK_ESTABLISHED:
        return on_ws_open(c);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_ws_writeable(wsi, c);
    case LWS_CALLBACK_RECEIVE:
        return on_ws_receive(wsi, c, in, len);
    case LWS_CALLBACK_CLOSED:
        ws_closed(c);
        break;
    case LWS_CALLBACK_WSI_DESTROY:
        if (c != NULL) {
            detach_request(c);
            ws_closed(c);
            conn_free(c);
        }
        break;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {.name = "http", .callback = callback},
    {.name = NULL, .callback = NULL},
};

/* ---- static files and health ---- */

/* Whether an If-None-Match list ("a", W/"b", *) names etag. */
static bool etag_matches(const char *list, const char *etag)
{
    size_t elen = strlen(etag);
    const char *p = list;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        const char *item = p;
        while (*p != '\0' && *p != ',')
            p++;
        const char *item_end = p;
        while (item_end > item && (item_end[-1] == ' ' || item_end[-1] == '\t'))
            item_end--;
        if (item_end - item == 1 && item[0] == '*')
            return true;
        if (item_end - item > 2 && item[0] == 'W' && item[1] == '/')
            item += 2;
        if ((size_t)(item_end - item) == elen && memcmp(item, etag, elen) == 0)
            return true;
    }
    return false;
}

static void serve_static(void *arg, struct tl_httpd_req *req)
{
    const struct static_file *sf = arg;
    const struct tl_httpd_file *f = sf->file;
    const char *cache = f->cache_control != NULL ? f->cache_control : "no-cache";
    if (tl_httpd_req_add_header(req, "ETag", sf->etag) != TL_OK ||
        tl_httpd_req_add_header(req, "Cache-Control", cache) != TL_OK) {
        tl_httpd_respond_error(req, 500, "cannot build headers");
        return;
    }
    const char *inm = tl_httpd_req_header(req, "If-None-Match");
    if (inm != NULL && etag_matches(inm, sf->etag)) {
        tl_httpd_respond(req, 304, NULL, NULL, 0);
        return;
    }
    tl_httpd_respond_static(req, 200, f->content_type, (const char *)f->data, f->len);
}

enum tl_err tl_httpd_static(struct tl_httpd *h, const struct tl_httpd_file *files, size_t n)
{
    if (h == NULL || (files == NULL && n > 0))
        return TL_EINVAL;
    const struct tl_httpd_file *index = NULL;
    for (size_t i = 0; i < n; i++) {
        if (files[i].path == NULL || files[i].path[0] != '/' || files[i].content_type == NULL ||
            (files[i].data == NULL && files[i].len > 0))
            return TL_EINVAL;
        if (route_exists(h, "GET", files[i].path))
            return TL_ECONFLICT;
        if (strcmp(files[i].path, "/index.html") == 0)
            index = &files[i];
    }
    if (index != NULL && route_exists(h, "GET", "/"))
        return TL_ECONFLICT;
    struct static_set *set = calloc(1, sizeof(*set));
    if (set == NULL)
        return TL_ENOMEM;
    set->files = calloc(n + 1, sizeof(*set->files));
    if (set->files == NULL) {
        free(set);
        return TL_ENOMEM;
    }
    set->next = h->statics;
    h->statics = set;
    enum tl_err result = TL_OK;
    for (size_t i = 0; i < n && result == TL_OK; i++) {
        set->files[i].file = &files[i];
        make_etag(files[i].data, files[i].len, set->files[i].etag, sizeof(set->files[i].etag));
        result = tl_httpd_route(h, "GET", files[i].path, serve_static, &set->files[i]);
    }
    if (result == TL_OK && index != NULL) {
        set->files[n].file = index;
        make_etag(index->data, index->len, set->files[n].etag, sizeof(set->files[n].etag));
        result = tl_httpd_route(h, "GET", "/", serve_static, &set->files[n]);
    }
    return result;
}

static void serve_healthz(void *arg, struct tl_httpd_req *req)
{
    tl_httpd_respond(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

static void serve_readyz(void *arg, struct tl_httpd_req *req)
{
    const struct tl_httpd *h = arg;
    const char *reason = NULL;
    if (h->ready == NULL || h->ready(h->ready_arg, &reason)) {
        tl_httpd_respond(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
        return;
    }
    char text[512];
    int n = snprintf(text, sizeof(text), "%s\n", reason != NULL ? reason : "not ready");
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(text))
        n = (int)sizeof(text) - 1;
    tl_httpd_respond(req, 503, "text/plain; charset=utf-8", text, (size_t)n);
}

enum tl_err tl_httpd_health(struct tl_httpd *h, tl_httpd_ready_fn ready, void *arg)
{
    if (h == NULL)
        return TL_EINVAL;
    h->ready = ready;
    h->ready_arg = arg;
    enum tl_err result = tl_httpd_route(h, "GET", "/healthz", serve_healthz, h);
    if (result == TL_OK)
        result = tl_httpd_route(h, "GET", "/readyz", serve_readyz, h);
    return result;
}

/* ---- lifetime ---- */

/* Splits "host:port", ":port" or "[v6]:port"; host is "" for all interfaces. */
static enum tl_err parse_bind(const char *bind, char **host, int *port)
{
    if (bind == NULL)
        return TL_EINVAL;
    const char *colon = NULL;
    const char *h_start = bind;
    size_t h_len = 0;
    if (bind[0] == '[') {
        const char *close = strchr(bind, ']');
        if (close == NULL || close[1] != ':')
            return TL_EINVAL;
        h_start = bind + 1;
        h_len = (size_t)(close - h_start);
        colon = close + 1;
    }
    else {
        colon = strrchr(bind, ':');
        if (colon == NULL)
            return TL_EINVAL;
        h_len = (size_t)(colon - bind);
    }
    char *endp = NULL;
    errno = 0;
    long p = strtol(colon + 1, &endp, 10);
    if (errno != 0 || endp == colon + 1 || *endp != '\0' || p < 0 || p > 65535)
        return TL_EINVAL;
    if (h_len == 1 && h_start[0] == '*')
        h_len = 0;
    char *copy = dup_n(h_start, h_len);
    if (copy == NULL)
        return TL_ENOMEM;
    /* An IP literal only: libwebsockets would also take an interface name, but not a host name. */
    unsigned char addr[sizeof(struct in6_addr)];
    if (h_len > 0 && inet_pton(AF_INET, copy, addr) != 1 && inet_pton(AF_INET6, copy, addr) != 1) {
        free(copy);
        return TL_EINVAL;
    }
    *host = copy;
    *port = (int)p;
    return TL_OK;
}

/*
 * Whether libwebsockets should listen on an IPv6 socket: for an IPv6 literal, and for all
 * interfaces (dual stack) when the kernel has IPv6 at all. An IPv4 literal gets a plain IPv4
 * socket, so it also works where IPv6 is disabled.
 */
static bool want_ipv6(const char *host)
{
    unsigned char addr[sizeof(struct in6_addr)];
    if (host[0] != '\0')
        return inet_pton(AF_INET6, host, addr) == 1;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/*
 * Tries to bind host:port (not port 0) the way libwebsockets will, and releases it at once. A
 * failing lws_create_context leaks a little memory in libwebsockets 4.1, so the common failure,
 * a port already in use, is found here first. Returns 0 or the errno of bind.
 */
static int probe_bind(const char *host, int port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    socklen_t len = sizeof(struct sockaddr_in);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (host[0] != '\0' && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        len = sizeof(*sin6);
    }
    else {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        if (host[0] == '\0' || inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            sin->sin_addr.s_addr = htonl(INADDR_ANY);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0; /* cannot tell: let libwebsockets try */
    int one = 1;
    int err = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
        bind(fd, (struct sockaddr *)&ss, len) != 0)
        err = errno;
    close(fd);
    return err;
}

static enum tl_err copy_opts(struct tl_httpd *h, const struct tl_httpd_opts *opts)
{
    h->max_body = opts->max_body != 0 ? opts->max_body : DEFAULT_MAX_BODY;
    h->header_timeout = opts->header_timeout != 0 ? opts->header_timeout : DEFAULT_HEADER_TIMEOUT;
    h->body_timeout = opts->body_timeout != 0 ? opts->body_timeout : DEFAULT_BODY_TIMEOUT;
    h->idle_timeout = opts->idle_timeout != 0 ? opts->idle_timeout : DEFAULT_IDLE_TIMEOUT;
    h->async_timeout = opts->async_timeout != 0 ? opts->async_timeout : DEFAULT_ASYNC_TIMEOUT;
    h->csp =
        strdup(opts->content_security_policy != NULL ? opts->content_security_policy : DEFAULT_CSP);
    if (h->csp == NULL)
        return TL_ENOMEM;
    if (strpbrk(h->csp, "\r\n") != NULL)
        return TL_EINVAL;
    size_t n = 0;
    while (opts->extra_headers != NULL && opts->extra_headers[n] != NULL)
        n++;
    if (n == 0)
        return TL_OK;
    h->extra_headers = calloc(n, sizeof(*h->extra_headers));
    if (h->extra_headers == NULL)
        return TL_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *name = opts->extra_headers[i];
        if (!is_token(name))
            return TL_EINVAL;
        size_t len = strlen(name);
        char *lc = malloc(len + 2);
        if (lc == NULL)
            return TL_ENOMEM;
        for (size_t j = 0; j < len; j++)
            lc[j] = lower(name[j]);
        lc[len] = ':';
        lc[len + 1] = '\0';
        h->extra_headers[h->nextra_headers++] = lc;
    }
    return TL_OK;
}

/* Frees everything but h itself and what libwebsockets still holds. */
static void free_tables(struct tl_httpd *h)
{
    for (size_t i = 0; i < h->nroutes; i++) {
        free(h->routes[i].method);
        free(h->routes[i].path);
    }
    free(h->routes);
    for (size_t i = 0; i < h->neps; i++) {
        free(h->eps[i]->path);
        free(h->eps[i]);
    }
    free(h->eps);
    while (h->statics != NULL) {
        struct static_set *next = h->statics->next;
        free(h->statics->files);
        free(h->statics);
        h->statics = next;
    }
    for (size_t i = 0; i < h->nextra_headers; i++)
        free(h->extra_headers[i]);
    free(h->extra_headers);
    free(h->csp);
    free(h->iface);
}

enum tl_err tl_httpd_create(struct ev_loop *loop, const struct tl_httpd_opts *opts,
                            struct tl_httpd **out)
{
    enum tl_err result = TL_OK;
    struct tl_httpd *h = NULL;
    if (loop == NULL || opts == NULL || out == NULL)
        return TL_EINVAL;
    if ((opts->tls_cert_file == NULL) != (opts->tls_key_file == NULL)) {
        TL_ERROR("httpd: TLS needs both a certificate and a key file",
                 TL_STR("bind", opts->bind != NULL ? opts->bind : ""));
        return TL_EINVAL;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL)
        return TL_ENOMEM;
    h->loop = loop;
    int port = 0;
    result = parse_bind(opts->bind, &h->iface, &port);
    if (result != TL_OK) {
        TL_ERROR("httpd: invalid bind address",
                 TL_STR("bind", opts->bind != NULL ? opts->bind : "(null)"),
                 TL_STR("expected", "ip:port, :port or [ipv6]:port"));
        goto out;
    }
    int bind_err = port != 0 ? probe_bind(h->iface, port) : 0;
    if (bind_err != 0) {
        TL_ERROR("httpd: cannot listen", TL_STR("bind", opts->bind),
                 TL_STR("reason", strerror(bind_err)));
        result = TL_EIO;
        goto out;
    }
    result = copy_opts(h, opts);
    if (result != TL_OK) {
        if (result == TL_EINVAL)
            TL_ERROR("httpd: invalid extra header name or CSP", TL_STR("bind", opts->bind));
        goto out;
    }

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);

    size_t max_header = opts->max_header_bytes != 0 ? opts->max_header_bytes : DEFAULT_MAX_HEADER;
    void *foreign_loops[] = {loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_LIBEV;
    if (!want_ipv6(h->iface))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    info.foreign_loops = foreign_loops;
    info.pcontext = &h->ctx;
    info.user = h;
    info.protocols = protocols;
    info.port = port;
    info.iface = h->iface[0] != '\0' ? h->iface : NULL;
    info.server_string = "tailor";
    info.max_http_header_data = (unsigned short)(max_header < 65535 ? max_header : 65535);
    info.max_http_header_pool = MAX_HEADER_POOL;
    info.fd_limit_per_thread = MAX_CONNECTIONS;
    /* Backstops only (see conn_arm); never shorter than the deadlines enforced here. */
    info.timeout_secs = h->header_timeout > h->body_timeout ? h->header_timeout : h->body_timeout;
    info.timeout_secs_ah_idle = h->header_timeout;
    info.keepalive_timeout = (int)(h->idle_timeout + h->header_timeout);
    info.gid = -1;
    info.uid = -1;
    /* HTTP/1.1 only: async answers and the WebSocket upgrade are built for it. */
    info.alpn = "http/1.1";
    if (opts->tls_cert_file != NULL) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = opts->tls_cert_file;
        info.ssl_private_key_filepath = opts->tls_key_file;
    }
    h->ctx = lws_create_context(&info);
    if (h->ctx == NULL) {
        TL_ERROR("httpd: cannot listen", TL_STR("bind", opts->bind),
                 TL_BOOL("tls", opts->tls_cert_file != NULL));
        result = TL_EIO;
        goto out;
    }
    struct lws_vhost *vh = lws_get_vhost_by_name(h->ctx, "default");
    h->port = vh != NULL ? lws_get_vhost_listen_port(vh) : -1;
    if (h->port <= 0) {
        TL_ERROR("httpd: no listening port", TL_STR("bind", opts->bind));
        result = TL_EIO;
        goto out;
    }
    TL_INFO("httpd: listening", TL_STR("bind", opts->bind), TL_INT("port", h->port),
            TL_BOOL("tls", opts->tls_cert_file != NULL));
    *out = h;
    h = NULL;
out:
    tl_httpd_destroy(h);
    return result;
}

/*
 * With libev, libwebsockets closes every connection and stops every watcher it put on the
 * caller's loop inside lws_context_destroy, and reports completion by clearing h->ctx (through
 * info.pcontext). Should a future version finish later instead, h cannot be freed while its
 * callbacks may still come, so it is left behind (logged) rather than used after free.
 */
void tl_httpd_destroy(struct tl_httpd *h)
{
    if (h == NULL)
        return;
    if (h->ctx != NULL)
        lws_context_destroy(h->ctx);
    bool finished = h->ctx == NULL;

    /*
     * Closing the connections detached every request; any left are handlers' (which still answer
     * them, into the void) unless libwebsockets skipped a close notification.
     */
    while (h->reqs != NULL) {
        struct tl_httpd_req *req = h->reqs;
        h->reqs = req->next;
        req->prev = req->next = NULL;
        stop_eof_watch(req);
        req->h = NULL;
        req->wsi = NULL;
        if (req->answered || !req->dispatched)
            req_free(req);
        else
            cancel_request(req);
    }

    if (!finished) {
        TL_ERROR("httpd: libwebsockets did not finish destroying its context; leaking it");
        return;
    }
    /* Closing every connection freed them all; anything left means a missed notification. */
    struct conn *c = h->conns;
    h->conns = NULL;
    while (c != NULL) {
        struct conn *next = c->next;
        c->wsi = NULL; /* already freed with the context */
        detach_request(c);
        ws_closed(c);
        conn_release(c);
        c = next;
    }
    free_tables(h);
    free(h);
}

int tl_httpd_port(const struct tl_httpd *h)
{
    return h != NULL ? h->port : -1;
}
