/* httpd: the HTTP/1.1 and WebSocket server (libwebsockets on the caller's libev loop). */
#ifndef TL_HTTPD_H
#define TL_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include "error.h"

/*
 * One tl_httpd is one listening socket (plain HTTP or HTTPS) with its own routes; create one per
 * port (e.g. the API and dashboard on one, the admission webhook's HTTPS on another). Everything
 * runs on the caller's loop: handlers are called from it and must not block.
 *
 * A request is routed by method and path. A handler answers with one of the tl_httpd_respond*
 * calls, either before it returns or later from any other callback on the loop (an "async"
 * response, e.g. after asking the API server for a TokenReview). Each request is answered
 * exactly once; the handle stays valid until then even if the client has gone, in which case the
 * answer is dropped. Unknown paths get 404, known paths with another method 405 (with Allow),
 * bodies over the cap 413, chunked request bodies 411, all as JSON errors. HEAD is served by the
 * GET route without the body.
 *
 * Connections are HTTP/1.1 with keep-alive (no HTTP/2, also not over TLS). Every phase has a
 * deadline: the request head (header_timeout, from accept or from the end of the previous answer
 * plus idle_timeout), the body and the writing of the answer (body_timeout), the handler
 * (async_timeout); past it the connection is closed, except that a handler running late gets
 * its client a 504 first (the handler is then told as if the client had gone). While a request
 * is being handled the client must wait for the answer: a client that hangs up (or half-closes),
 * or sends more bytes before the answer, is disconnected and the handler's cancel callback runs.
 *
 * Deployment: libwebsockets loads its libev support at run time from a plugin
 * (libwebsockets-evlib_ev.so, Debian package libwebsockets-evlib-ev); without it
 * tl_httpd_create fails with TL_EIO.
 */

struct tl_httpd;
struct tl_httpd_req;
struct tl_httpd_ws_conn;

struct tl_httpd_opts {
    /*
     * "ip:port", ":port" (all interfaces) or "[ipv6]:port" (an IP literal, not a host name);
     * port 0 picks a free port
     * (see tl_httpd_port). Required.
     */
    const char *bind;
    const char *tls_cert_file; /* PEM; with tls_key_file, the listener speaks HTTPS only */
    const char *tls_key_file;
    size_t max_body;         /* request body cap in bytes; 0 = 1 MiB; past it, 413 */
    size_t max_header_bytes; /* request line + headers; 0 = 8 KiB; past it, the connection is
                                closed */
    unsigned header_timeout; /* seconds to receive a whole request head; 0 = 10 */
    unsigned body_timeout;   /* seconds to receive a body, or to send a response; 0 = 30 */
    unsigned idle_timeout;   /* keep-alive idle seconds; 0 = 5 */
    unsigned async_timeout;  /* seconds a handler may take to answer; past it the client gets a
                                504 and the handler's cancel callback runs; 0 = 60 */
    const char *content_security_policy; /* NULL: a same-origin policy fit for the dashboard */
    /*
     * Request headers that libwebsockets does not know by name are only kept when listed here
     * (NULL-terminated, case-insensitive, e.g. "X-Request-Id"). Common ones (Authorization,
     * Content-Type, Accept, Cookie, Origin, If-None-Match, User-Agent, X-Forwarded-For, ...) are
     * always available.
     */
    const char *const *extra_headers;
};

/*
 * Starts listening on loop (borrowed; must outlive the server). opts is copied. TL_EINVAL for a
 * malformed bind address or half a TLS pair, TL_EIO when the socket cannot be bound (port in
 * use, bad address) or the certificate cannot be loaded. On success *out is freed with
 * tl_httpd_destroy.
 */
enum tl_err tl_httpd_create(struct ev_loop *loop, const struct tl_httpd_opts *opts,
                            struct tl_httpd **out);

/*
 * Closes the listener and every connection, then frees h. Requests still waiting for an answer
 * get their cancel callback; their handles stay valid until answered (the answer goes nowhere).
 * Must not be called from inside one of h's callbacks. NULL is a no-op.
 */
void tl_httpd_destroy(struct tl_httpd *h);

/* The port the server listens on (useful after binding port 0). */
int tl_httpd_port(const struct tl_httpd *h);

/* ---- routes ---- */

/* req is answered with tl_httpd_respond* now or later; arg is the pointer given to route. */
typedef void (*tl_httpd_handler_fn)(void *arg, struct tl_httpd_req *req);

/*
 * Routes method ("GET", "POST", ...; NULL or "*" for any) and path to fn. A path ending in '*'
 * matches every path starting with what precedes it (a route for "/api/v1/recommendations/"
 * plus a star serves every recommendation); otherwise the match is exact. An exact route beats a
 * prefix, and a longer prefix a shorter one. Strings are copied; arg is borrowed. TL_ECONFLICT when
 * the same method and path are already routed, TL_EINVAL for a path not starting with '/'.
 */
enum tl_err tl_httpd_route(struct tl_httpd *h, const char *method, const char *path,
                           tl_httpd_handler_fn fn, void *arg);

/* ---- the request (all strings borrowed, valid until the request is answered) ---- */

const char *tl_httpd_req_method(const struct tl_httpd_req *req);
/* The path, percent-decoded and normalized by libwebsockets ("/a/../b" is "/b"). */
const char *tl_httpd_req_path(const struct tl_httpd_req *req);
/* The query string without '?', re-encoded from the decoded parameters; "" when none. */
const char *tl_httpd_req_query(const struct tl_httpd_req *req);
/*
 * The decoded value of the first query parameter called name; "" for a parameter given without
 * '=' ("?watch"); NULL when absent.
 */
const char *tl_httpd_req_param(const struct tl_httpd_req *req, const char *name);
/* Number of query parameters, and the i-th one (decoded) for iteration. */
size_t tl_httpd_req_param_count(const struct tl_httpd_req *req);
bool tl_httpd_req_param_at(const struct tl_httpd_req *req, size_t i, const char **name,
                           const char **value);
/* A request header by name, case-insensitive; NULL when absent (see opts.extra_headers). */
const char *tl_httpd_req_header(const struct tl_httpd_req *req, const char *name);
/* The request body, NUL-terminated (so JSON parsers can take it directly); "" when none. */
const char *tl_httpd_req_body(const struct tl_httpd_req *req, size_t *len);
/* The client's address, for logs ("127.0.0.1"). */
const char *tl_httpd_req_peer(const struct tl_httpd_req *req);

/* Whether the client has gone (closed the connection, timed out, or the server was destroyed). */
bool tl_httpd_req_gone(const struct tl_httpd_req *req);

/*
 * Called once if the client goes away before the request is answered, e.g. to cancel the work the
 * handler started. The handle stays valid: the handler must still answer it (the answer is
 * dropped), which it may do from inside this callback. Replaces any earlier callback.
 */
typedef void (*tl_httpd_cancel_fn)(void *arg, struct tl_httpd_req *req);
void tl_httpd_req_on_cancel(struct tl_httpd_req *req, tl_httpd_cancel_fn fn, void *arg);

/*
 * Adds a response header (e.g. "Location", "Retry-After", "Cache-Control"); call before
 * answering. Copied. TL_EINVAL for a name that is not a token or a value with CR, LF or NUL;
 * TL_ETOOBIG past 4 KiB of extra headers. A handler-set Cache-Control replaces the default
 * "no-store".
 */
enum tl_err tl_httpd_req_add_header(struct tl_httpd_req *req, const char *name, const char *value);

/*
 * Answer req. body (len bytes, may be NULL when len is 0) is copied; content_type may be NULL
 * when there is no body. req must not be used afterwards. Every response carries
 * X-Content-Type-Options: nosniff, X-Frame-Options: DENY, Referrer-Policy: no-referrer and the
 * Content-Security-Policy; no CORS headers are ever added.
 */
void tl_httpd_respond(struct tl_httpd_req *req, int status, const char *content_type,
                      const char *body, size_t len);
/* The same, taking ownership of a malloc'd body (freed with free()), to avoid the copy. */
void tl_httpd_respond_owned(struct tl_httpd_req *req, int status, const char *content_type,
                            char *body, size_t len);
/* The same with a body that is not copied: it must stay valid until the server is destroyed. */
void tl_httpd_respond_static(struct tl_httpd_req *req, int status, const char *content_type,
                             const char *body, size_t len);
/*
 * A JSON error {"status":404,"error":"Not Found","message":"..."}; message (may be NULL) is
 * escaped, so it can quote the request.
 */
void tl_httpd_respond_error(struct tl_httpd_req *req, int status, const char *message);

/* ---- static files ---- */

/* One embedded file; every pointer must stay valid for the server's lifetime. */
struct tl_httpd_file {
    const char *path;         /* "/index.html", "/app.js" */
    const char *content_type; /* "text/html; charset=utf-8" */
    const unsigned char *data;
    size_t len;
    const char *cache_control; /* NULL: "no-cache" (always revalidate with the ETag) */
};

/*
 * Serves files (borrowed) at their paths with GET and HEAD, with an ETag from their content and
 * 304 Not Modified for a matching If-None-Match. "/" serves "/index.html" when the table has
 * one. TL_ECONFLICT when one of the paths is already routed.
 */
enum tl_err tl_httpd_static(struct tl_httpd *h, const struct tl_httpd_file *files, size_t n);

/* ---- health ---- */

/*
 * Whether the process is ready to serve; when not, *reason (a static or long-lived string) says
 * why, e.g. "caches not synced".
 */
typedef bool (*tl_httpd_ready_fn)(void *arg, const char **reason);

/*
 * GET /healthz answers 200 "ok" from the loop itself (so it proves the loop turns); GET /readyz
 * answers 200 "ok" when ready(arg) is true, 503 with the reason otherwise. ready may be NULL
 * (always ready). arg is borrowed.
 */
enum tl_err tl_httpd_health(struct tl_httpd *h, tl_httpd_ready_fn ready, void *arg);

/* ---- WebSocket ---- */

struct tl_httpd_ws_opts {
    size_t max_queue;       /* messages waiting per client; 0 = 256 */
    size_t max_queue_bytes; /* bytes waiting per client; 0 = 8 MiB */
    size_t max_message;     /* largest message accepted from a client; 0 = 64 KiB */
    /*
     * Decides, before the upgrade, whether to accept a client: return 0 to accept or an HTTP
     * status (401, 403, ...) to refuse with a JSON error. req is borrowed for the call and must
     * not be answered. NULL accepts everyone.
     */
    int (*authorize)(void *arg, const struct tl_httpd_req *req);
    /* A client is connected; req (borrowed for the call) is its upgrade request. May be NULL. */
    void (*on_open)(void *arg, struct tl_httpd_ws_conn *conn, const struct tl_httpd_req *req);
    /* A whole text or binary message (borrowed for the call). May be NULL: messages are ignored. */
    void (*on_message)(void *arg, struct tl_httpd_ws_conn *conn, const char *data, size_t len);
    /* The client is gone; conn is freed when this returns. May be NULL. */
    void (*on_close)(void *arg, struct tl_httpd_ws_conn *conn);
    void *arg; /* borrowed */
};

/*
 * Accepts WebSocket clients at path (exact). opts may be NULL for defaults; it is copied.
 * TL_ECONFLICT when path already has an endpoint.
 */
enum tl_err tl_httpd_ws_endpoint(struct tl_httpd *h, const char *path,
                                 const struct tl_httpd_ws_opts *opts);

/*
 * Queues text (copied once, shared) as a text message to every client of the endpoint at path.
 * A client whose queue is full is disconnected (close code 1008) rather than buffered without
 * bound. TL_ENOTFOUND when there is no such endpoint; TL_OK with no clients.
 */
enum tl_err tl_httpd_broadcast(struct tl_httpd *h, const char *path, const char *text, size_t len);

/* Number of clients connected to the endpoint at path (including ones being disconnected). */
size_t tl_httpd_ws_clients(const struct tl_httpd *h, const char *path);

/*
 * Queues a text message (copied) to one client; conn is borrowed, valid from on_open until
 * on_close returns. TL_ETOOBIG when the queue is full: the client is then disconnected.
 */
enum tl_err tl_httpd_ws_send(struct tl_httpd_ws_conn *conn, const char *text, size_t len);

/* Closes the connection with a WebSocket close code (e.g. 1008) and a short reason. */
void tl_httpd_ws_close(struct tl_httpd_ws_conn *conn, int code, const char *reason);

/* A pointer the application keeps with the client (borrowed, never freed here; NULL until set). */
void tl_httpd_ws_set_data(struct tl_httpd_ws_conn *conn, void *data);
void *tl_httpd_ws_data(const struct tl_httpd_ws_conn *conn);

#endif
