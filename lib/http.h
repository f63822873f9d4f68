/* http: asynchronous HTTP/1.1 requests on the libev loop, driven by libcurl's multi interface. */
#ifndef TL_HTTP_H
#define TL_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <ev.h>

#include "error.h"

struct tl_http;
struct tl_http_request;

/* TLS settings of one request. Every field may be NULL/0; all bytes are copied at start. */
struct tl_http_tls {
    const char *ca_file;
    const char *ca_data; /* PEM */
    size_t ca_data_len;
    const char *cert_file;
    const char *key_file;
    const char *cert_data; /* PEM */
    size_t cert_data_len;
    const char *key_data; /* PEM */
    size_t key_data_len;
    bool insecure; /* skip peer and host verification */
    /*
     * Name to verify the server certificate against (and send as SNI) instead of the URL's host.
     * libcurl has no SNI override, so the URL's host is replaced by this name and
     * CURLOPT_CONNECT_TO sends the connection to the original host and port.
     */
    const char *server_name;
};

/* What the server answered. Everything is borrowed for the duration of the callback only. */
struct tl_http_response {
    long status;              /* HTTP status; 0 when no response arrived */
    double retry_after;       /* Retry-After in seconds; -1 when absent or not delta-seconds */
    const char *body;         /* buffered body, NUL-terminated; "" in streaming mode after a 2xx */
    size_t body_len;          /* bytes in body, without the NUL */
    const char *content_type; /* NULL when absent */
};

/*
 * Called once when a request ends, unless it was cancelled. err is TL_OK whenever a complete
 * response arrived, whatever its status: TL_ETIMEDOUT (total or stall timeout), TL_ETOOBIG (body
 * cap), TL_EIO (connection, TLS or protocol failure) or TL_EINVAL (a streaming callback refused the
 * data) otherwise. The request handle is freed when the callback returns.
 */
typedef void (*tl_http_done_fn)(void *arg, enum tl_err err, const struct tl_http_response *resp);

/*
 * Streaming mode: called with body bytes of a 2xx response as they arrive, in order, split
 * anywhere. data is borrowed for the call. Returning non-TL_OK aborts the request; on_done then
 * follows with that error. The callback may cancel this or any request, and start new ones.
 */
typedef enum tl_err (*tl_http_data_fn)(void *arg, long status, const char *data, size_t len);

/* One request. Borrowed by tl_http_start: every string and byte is copied before it returns. */
struct tl_http_request_opts {
    const char *method; /* "GET" when NULL */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" lines, or NULL */
    const char *body;           /* request body, or NULL */
    size_t body_len;
    double timeout;         /* whole request, seconds; 0 = none */
    double connect_timeout; /* seconds; 0 = libcurl's default (300 s) */
    double stall_timeout;   /* seconds without a received byte before aborting; 0 = none */
    size_t max_body;        /* cap on the buffered body (in streaming mode: on a non-2xx body
                               and on bytes not yet handed over); 0 = 64 MiB */
    const struct tl_http_tls *tls;
    const char *proxy;       /* proxy URL, or NULL */
    tl_http_data_fn on_data; /* NULL: buffer the whole body */
    tl_http_done_fn on_done; /* required */
    void *arg;
};

/*
 * Creates the transport on loop (borrowed; must outlive it). Initializes libcurl once per process.
 * Returns NULL on allocation failure. Caller frees with tl_http_destroy.
 */
struct tl_http *tl_http_create(struct ev_loop *loop);

/*
 * Cancels every request still running without calling its callbacks, then frees http.
 * Must not be called from inside one of its callbacks. NULL is a no-op.
 */
void tl_http_destroy(struct tl_http *http);

/*
 * Starts a request. On success *out (may be NULL if the caller does not need a handle) is a handle
 * valid until on_done returns or tl_http_cancel is called, whichever is first. A function that
 * returns an error never calls its callback.
 */
enum tl_err tl_http_start(struct tl_http *http, const struct tl_http_request_opts *opts,
                          struct tl_http_request **out);

/*
 * Stops a running request and frees its handle. Neither callback is called afterwards, including
 * on_done. Safe from inside any callback of this transport, for this or another request. Must not
 * be called after on_done has returned. NULL is a no-op.
 */
void tl_http_cancel(struct tl_http_request *req);

/* Requests currently running (for tests and metrics). */
size_t tl_http_active(const struct tl_http *http);

#endif
