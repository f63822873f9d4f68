/* kube_client: asynchronous Kubernetes REST calls (auth, retries, write rate limit) over tl_http.
 */
#ifndef TL_KUBE_CLIENT_H
#define TL_KUBE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>
#include <ev.h>

#include "error.h"
#include "kube_resource.h"
#include "kube_status.h"

struct tl_kube_config;
struct tl_kube_creds;
struct tl_kube_client;
struct tl_kube_call;

/* Tuning; every zero field takes the default in brackets. */
struct tl_kube_client_options {
    double write_qps;       /* token bucket refill for writes [20]; < 0 = unlimited */
    double write_burst;     /* bucket size [30] */
    double timeout;         /* whole request, seconds [60] */
    double connect_timeout; /* seconds [10] */
    unsigned max_attempts;  /* tries for 429, 5xx and (GET only) transport errors [5] */
    double backoff_base;    /* first retry delay, seconds [0.5] */
    double backoff_max;     /* cap on a retry delay, seconds [30] */
    double retry_after_max; /* cap on an honoured Retry-After, seconds [120] */
    size_t max_body;        /* response cap, bytes [64 MiB] */
    unsigned long seed;     /* backoff jitter seed [from the clock] */
    const char *user_agent; /* copied ["tailor/<version>"] */
    /* Called for every HTTP response or transport failure (code 0), retries included, for
     * metrics. NULL for none. */
    void (*observe)(void *arg, const char *method, long code);
    void *observe_arg;
};

/*
 * The outcome of one call, borrowed for the duration of the callback.
 * err: TL_OK for 2xx; else the mapping of the HTTP code (tl_kube_status_err), or the transport
 * error (TL_EIO, TL_ETIMEDOUT, TL_ETOOBIG) with code 0, or TL_EINVAL for a 2xx body that is not
 * JSON.
 */
struct tl_kube_result {
    enum tl_err err;
    long code;                           /* HTTP status of the last attempt; 0 when none */
    cJSON *body;                         /* the parsed 2xx body; NULL for an empty one or errors */
    const struct tl_kube_status *status; /* the parsed error (non-2xx); NULL otherwise */
    const char *what;                    /* "PUT /apis/...": for messages */
    double retry_after; /* non-2xx: Retry-After header or retryAfterSeconds; -1 when absent */
};

/* Called once per call unless it was cancelled; the call handle is freed when it returns. */
typedef void (*tl_kube_done_fn)(void *arg, struct tl_kube_result *res);

/* Streaming: the bytes of a 2xx response as they arrive. Non-TL_OK aborts with that error. */
typedef enum tl_err (*tl_kube_data_fn)(void *arg, const char *data, size_t len);

/* Takes the body out of a result: the caller then owns it (cJSON_Delete). NULL when none. */
cJSON *tl_kube_result_take(struct tl_kube_result *res);

/*
 * Creates a client for cfg (borrowed; copied as needed) with creds (borrowed, may be NULL for no
 * authentication; must outlive the client) on loop. opts may be NULL. On success *out is owned
 * by the caller (tl_kube_client_destroy). errbuf says what was wrong.
 */
enum tl_err tl_kube_client_create(struct ev_loop *loop, const struct tl_kube_config *cfg,
                                  struct tl_kube_creds *creds,
                                  const struct tl_kube_client_options *opts,
                                  struct tl_kube_client **out, char *errbuf, size_t errlen);

/* Cancels every call without callbacks and frees. Not from inside a callback. NULL is a no-op. */
void tl_kube_client_destroy(struct tl_kube_client *client);

/* The loop the client runs on (borrowed). */
struct ev_loop *tl_kube_client_loop(const struct tl_kube_client *client);

/* The default namespace of the configuration (borrowed, valid for the client's life). */
const char *tl_kube_client_namespace(const struct tl_kube_client *client);

/*
 * Stops a call: no callback is called afterwards. Valid from any callback, and until the call's
 * done callback returns. NULL is a no-op.
 */
void tl_kube_call_cancel(struct tl_kube_call *call);

/* ---- Generic request ---- */

struct tl_kube_request {
    const char *method; /* "GET" when NULL */
    const char *path;   /* "/api/v1/namespaces/x/pods": tl_kube_resource_path */
    const char *query;  /* "a=b&c=d", already escaped, without '?'; or NULL */
    const char *body;   /* copied */
    size_t body_len;
    const char *content_type; /* of body; "application/json" when NULL */
    bool no_retry;            /* hand 429/5xx straight back (watches retry on their own) */
    double timeout;           /* 0: the client's; < 0: none */
    double stall_timeout;     /* streaming: seconds without bytes before TL_ETIMEDOUT; 0: none */
    tl_kube_data_fn on_data;  /* non-NULL: streaming mode, result body is NULL */
};

/*
 * Starts req (borrowed; copied). Writes (anything but GET) wait for a token of the write bucket
 * on a timer. 401 invalidates the credentials and retries once; 429 and retryable 5xx are retried
 * with backoff, honouring Retry-After, up to max_attempts. *out (may be NULL) is valid until done
 * returns or the call is cancelled. A function that returns an error never calls its callback.
 */
enum tl_err tl_kube_request(struct tl_kube_client *client, const struct tl_kube_request *req,
                            tl_kube_done_fn done, void *arg, struct tl_kube_call **out);

/* ---- Typed calls. ns is ignored for cluster-scoped resources; strings are borrowed. ---- */

struct tl_kube_list_opts {
    const char *label_selector;
    const char *field_selector;
    const char *resource_version;
    const char *resource_version_match; /* "NotOlderThan", "Exact" */
    const char *continue_token;
    long limit; /* 0: no limit */
};

enum tl_err tl_kube_get(struct tl_kube_client *client, const struct tl_kube_resource *res,
                        const char *ns, const char *name, tl_kube_done_fn done, void *arg,
                        struct tl_kube_call **out);

/* One page of a list; ns NULL lists all namespaces. */
enum tl_err tl_kube_list(struct tl_kube_client *client, const struct tl_kube_resource *res,
                         const char *ns, const struct tl_kube_list_opts *opts, tl_kube_done_fn done,
                         void *arg, struct tl_kube_call **out);

/* POST obj (borrowed, serialized before return) to the collection. */
enum tl_err tl_kube_create(struct tl_kube_client *client, const struct tl_kube_resource *res,
                           const char *ns, const cJSON *obj, tl_kube_done_fn done, void *arg,
                           struct tl_kube_call **out);

/* PUT obj to the object (subresource "status" for tl_kube_update_status). */
enum tl_err tl_kube_update(struct tl_kube_client *client, const struct tl_kube_resource *res,
                           const char *ns, const char *name, const cJSON *obj, tl_kube_done_fn done,
                           void *arg, struct tl_kube_call **out);
enum tl_err tl_kube_update_status(struct tl_kube_client *client, const struct tl_kube_resource *res,
                                  const char *ns, const char *name, const cJSON *obj,
                                  tl_kube_done_fn done, void *arg, struct tl_kube_call **out);

/* DELETE; propagation ("Background", "Foreground", "Orphan") may be NULL. */
enum tl_err tl_kube_delete(struct tl_kube_client *client, const struct tl_kube_resource *res,
                           const char *ns, const char *name, const char *propagation,
                           tl_kube_done_fn done, void *arg, struct tl_kube_call **out);

enum tl_kube_patch_type {
    TL_KUBE_PATCH_MERGE,     /* application/merge-patch+json (RFC 7386) */
    TL_KUBE_PATCH_JSON,      /* application/json-patch+json (RFC 6902) */
    TL_KUBE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json (built-in types only) */
    TL_KUBE_PATCH_APPLY,     /* server-side apply, fieldManager=tailor */
};

/*
 * PATCH the object (or its subresource, may be NULL) with patch (copied). force only applies to
 * TL_KUBE_PATCH_APPLY: take fields over from other managers (force=true).
 */
enum tl_err tl_kube_patch(struct tl_kube_client *client, const struct tl_kube_resource *res,
                          const char *ns, const char *name, const char *subresource,
                          enum tl_kube_patch_type type, const char *patch, size_t len, bool force,
                          tl_kube_done_fn done, void *arg, struct tl_kube_call **out);

/*
 * Changes obj (the current object, owned by the caller of the function) in place. Set *changed
 * to false to write nothing (done then gets the object as read). Non-TL_OK stops with that error.
 */
typedef enum tl_err (*tl_kube_mutate_fn)(void *arg, cJSON *obj, bool *changed);

/*
 * Optimistic concurrency: GET, mutate, PUT (to /status when status is true), and on 409 Conflict
 * start again from a fresh GET, at most 5 times. done gets the PUT's result (or the GET's error).
 */
enum tl_err tl_kube_update_retry(struct tl_kube_client *client, const struct tl_kube_resource *res,
                                 const char *ns, const char *name, bool status,
                                 tl_kube_mutate_fn mutate, tl_kube_done_fn done, void *arg,
                                 struct tl_kube_call **out);

/* The resource found by discovery, borrowed during the call; NULL on error. */
typedef void (*tl_kube_discover_fn)(void *arg, enum tl_err err, const struct tl_kube_resource *res);

/*
 * Resolves name (plural, kind, singular or short name) in api_version ("karpenter.sh/v1") from
 * the server's discovery document. TL_ENOTFOUND when the group/version or the name is unknown.
 */
enum tl_err tl_kube_discover(struct tl_kube_client *client, const char *api_version,
                             const char *name, tl_kube_discover_fn done, void *arg,
                             struct tl_kube_call **out);

/* Calls in flight or waiting (for tests and metrics). */
size_t tl_kube_client_pending(const struct tl_kube_client *client);

#endif
