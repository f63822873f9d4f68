/* rest_api: the operator's REST API under /api/v1, its WebSocket of Recommendation changes, the
 * approvals made over HTTP (TokenReview + SubjectAccessReview), and the embedded dashboard. */
#ifndef TL_REST_API_H
#define TL_REST_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "objects.h"
#include "prom.h"

struct tl_operator;
struct tl_kube_store_item;
struct tl_rest_api;

/* The WebSocket endpoint that pushes one message per Recommendation change. */
#define TL_REST_WATCH_PATH "/api/v1/watch"
/* Usage history is answered with at most this many points per series. */
#define TL_REST_MAX_POINTS 500

/*
 * Routes the API (docs/api-http.md), the WebSocket and the dashboard on op->api_httpd (nothing
 * when it is NULL) and keeps the state in op->rest_api. Reads are open unless
 * op->opts->api_auth is "reads"; approvals always need a bearer token the cluster trusts.
 * TL_ECONFLICT when a path is already routed, TL_ENOMEM.
 */
enum tl_err tl_rest_api_start(struct tl_operator *op);

/*
 * Frees op->rest_api: cancels the Kubernetes calls and Prometheus queries still running. Call
 * after op->api_httpd is destroyed (which answers the requests still waiting). NULL is a no-op.
 */
void tl_rest_api_stop(struct tl_operator *op);

/*
 * The Recommendation informer's hook for an add, update or delete of item (borrowed for the
 * call): sends {type, namespace, name, phase, revision, approvedRevision, savings, display,...}
 * to every client of TL_REST_WATCH_PATH. type is "changed", or "deleted" when item is no longer
 * in the cache. Costs nothing when nobody watches.
 */
void tl_rest_api_notify(struct tl_operator *op, const struct tl_kube_store_item *item);

/* ---- Pure pieces, exposed for the unit tests ---- */

/* The list filters; NULL or a negative min_savings means "any". Strings borrowed. */
struct tl_rest_filter {
    const char *namespace;
    const char *phase;  /* case-insensitive */
    const char *policy; /* "NS/NAME", or NAME in any namespace */
    double min_savings; /* monthly USD; < 0: any */
};

/* Whether the Recommendation ns/rec passes every filter. */
bool tl_rest_filter_match(const struct tl_rest_filter *f, const char *ns,
                          const struct tl_rec_obj *rec);

/*
 * The list item of one Recommendation: namespace, name, target {kind, name}, phase, revision,
 * approvedRevision, confidence, savings (monthly USD, a number), display {target, cpu, memory},
 * policy ("NS/NAME"), explanation. With full, also its whole status. Caller frees (cJSON_Delete);
 * NULL when out of memory.
 */
cJSON *tl_rest_rec_item(const char *ns, const char *name, const struct tl_rec_obj *rec, bool full);

/*
 * Reads an approval body {"revision": N}. TL_EINVAL with a message in errbuf for anything else:
 * not JSON, not an object, no revision, a revision that is not a positive integer.
 */
enum tl_err tl_rest_parse_approval(const char *body, size_t len, int64_t *revision, char *errbuf,
                                   size_t errlen);

/*
 * The step (seconds, a whole number of minutes, at least min_step) that shows range seconds in
 * at most TL_REST_MAX_POINTS points.
 */
double tl_rest_usage_step(double range, double min_step);

/* The time grid usage history is folded onto, and whose pods count. Strings borrowed. */
struct tl_rest_usage_window {
    enum tl_workload_kind kind;
    const char *workload;
    const char *pod_label;
    const char *container_label;
    double start; /* the first point's time */
    double step;
    size_t points;
};

/*
 * Folds a range answer with one series per pod and container into one column pair per
 * container: {"pods": N, "containers": {"<name>": {"max": [...], "avg": [...]}}}, each array
 * `points` long with null where no pod had a sample; max and avg are taken over the workload's
 * pods at each point. Series of pods that are not the workload's (by name, pod_owner.h) are left
 * out. Caller frees; NULL when out of memory.
 */
cJSON *tl_rest_usage_fold(const struct tl_prom_result *res, const struct tl_rest_usage_window *w);

#endif
