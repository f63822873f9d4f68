/* kube_status: the API server's Status error bodies, and which tl_err each HTTP code means. */
#ifndef TL_KUBE_STATUS_H
#define TL_KUBE_STATUS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "error.h"

struct tl_kube_status_cause {
    char *field;   /* "spec.containers[0].image"; NULL when absent */
    char *message; /* NULL when absent */
    char *reason;  /* "FieldValueRequired"; NULL when absent */
};

/* A parsed metav1.Status. Strings are owned by the struct and NULL when absent. */
struct tl_kube_status {
    int code;     /* HTTP code from the body, else the response's */
    char *status; /* "Failure" */
    char *reason; /* "NotFound", "Conflict", "Expired", "TooManyRequests", ... */
    char *message;
    struct tl_kube_status_cause *causes;
    size_t ncauses;
    double retry_after; /* details.retryAfterSeconds; -1 when absent */
};

/*
 * Parses a response body into a Status. A body that is not a JSON Status (an HTML page from a
 * proxy, plain text, nothing) still gives a Status: code = http_code, message = the first line of
 * the body (at most 512 bytes). Returns NULL only on allocation failure; caller frees with
 * tl_kube_status_destroy.
 */
struct tl_kube_status *tl_kube_status_parse(const char *body, size_t len, long http_code);

/* Same from an already parsed JSON value (borrowed); object may be NULL or not a Status. */
struct tl_kube_status *tl_kube_status_from_json(const cJSON *object, long http_code);

void tl_kube_status_destroy(struct tl_kube_status *status);

/*
 * What an HTTP status code means: 2xx TL_OK, 404 TL_ENOTFOUND, 409 TL_ECONFLICT (also
 * AlreadyExists), 410 TL_EGONE, 401/403 TL_EAUTH, 400/422 TL_EINVAL, 413 TL_ETOOBIG, 504 and 408
 * TL_ETIMEDOUT, anything else TL_EHTTP.
 */
enum tl_err tl_kube_status_err(long http_code);

/* True for codes worth retrying later with backoff: 429, 5xx (except 501), 408. */
bool tl_kube_status_retryable(long http_code);

/* True when the body is a "410 Gone / Expired" answer to a watch or list (ERROR event too). */
bool tl_kube_status_is_gone(const struct tl_kube_status *status);

/*
 * Writes a one-line summary for logs and user-facing messages ("409 Conflict: the object has been
 * modified; field spec.x: must be ..."). Always NUL-terminates buf (truncating).
 */
void tl_kube_status_format(const struct tl_kube_status *status, char *buf, size_t len);

#endif
