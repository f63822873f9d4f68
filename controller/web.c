#include "web.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "log.h"
#include "metrics.h"
#include "operator.h"
#include "prom.h"
#include "rest_api.h"
#include "usage_source.h"
#include "webhook.h"

/* The operator's metrics (docs/metrics.md). Counters move as things happen; gauges are set from
 * the caches at each scrape, so they are never stale and cost nothing in between. */
struct tl_op_metrics {
    struct tl_counter *reconciles;
    struct tl_metrics_hist *reconcile_seconds;
    struct tl_counter *actions;
    struct tl_counter *requests;
    struct tl_gauge *queue_depth;
    struct tl_counter *queue_adds;
    struct tl_counter *queue_retries;
    struct tl_gauge *watches;
    struct tl_gauge *relists;
    struct tl_gauge *prom_queries;
    struct tl_gauge *prom_errors;
    struct tl_gauge *prom_seconds;
    struct tl_gauge *recommendations;
    struct tl_gauge *savings;
    struct tl_gauge *leader;
    double queue_adds_seen;
    double queue_retries_seen;
};

static bool ready(void *arg, const char **reason)
{
    struct tl_operator *op = arg;
    if (!op->synced) {
        *reason = "caches not synced yet";
        return false;
    }
    return true;
}

static enum tl_err register_metrics(struct tl_operator *op)
{
    struct tl_metrics *m = op->metrics;
    struct tl_op_metrics *om = op->om;
    double buckets[12];
    tl_metrics_exponential_bounds(0.001, 2.5, 12, buckets);
    static const char *const kind_result[] = {"kind", "result", NULL};
    static const char *const kind[] = {"kind", NULL};
    static const char *const action[] = {"action", NULL};
    static const char *const method_code[] = {"method", "code", NULL};
    static const char *const resource[] = {"resource", NULL};
    static const char *const phase[] = {"phase", NULL};
    static const char *const ns_policy[] = {"namespace", "policy", NULL};
    static const char *const none[] = {NULL};
    enum tl_err r = tl_metrics_counter(m, "tailor_reconcile_total",
                                       "Reconciles by kind (workload, policy, assign) and result.",
                                       kind_result, &om->reconciles);
    if (r == TL_OK)
        r = tl_metrics_histogram(m, "tailor_reconcile_duration_seconds",
                                 "Time from taking a key off the queue to finishing it.", kind,
                                 buckets, 12, &om->reconcile_seconds);
    if (r == TL_OK)
        r = tl_metrics_counter(m, "tailor_remediation_actions_total",
                               "Changes to workloads: apply, rollback, verified.", action,
                               &om->actions);
    if (r == TL_OK)
        r = tl_metrics_counter(m, "tailor_kube_requests_total",
                               "Kubernetes API responses by HTTP method and code (0: no answer).",
                               method_code, &om->requests);
    if (r == TL_OK)
        r = tl_metrics_gauge(m, "tailor_workqueue_depth", "Keys waiting in the work queue.", none,
                             &om->queue_depth);
    if (r == TL_OK)
        r = tl_metrics_counter(m, "tailor_workqueue_adds_total", "Keys added to the work queue.",
                               none, &om->queue_adds);
    if (r == TL_OK)
        r = tl_metrics_counter(m, "tailor_workqueue_retries_total",
                               "Keys queued again after a failure, with backoff.", none,
                               &om->queue_retries);
    if (r == TL_OK)
        r = tl_metrics_gauge(m, "tailor_watch_requests", "Watches started per resource.", resource,
                             &om->watches);
    if (r == TL_OK)
        r = tl_metrics_gauge(m, "tailor_watch_relists", "Re-lists after 410 Gone per resource.",
                             resource, &om->relists);
    if (r == TL_OK)
        r = tl_metrics_gauge(m, "tailor_prometheus_queries", "Prometheus HTTP queries sent.", none,
                             &om->prom_queries);
    if (r == TL_OK)
        r = tl_metrics_gauge(m, "tailor_prometheus_query_errors",
                             "Prometheus queries that ended in an error.", none, &om->prom_errors);
    if (r == TL_OK)
        r = tl_metrics_gauge(m, "tailor_prometheus_query_seconds",
                             "Total seconds spent waiting for Prometheus.", none,
                             &om->prom_seconds);
    if (r == TL_OK)
        r = tl_metrics_gauge(m, "tailor_recommendations", "Recommendations by phase.", phase,
                             &om->recommendations);
    if (r == TL_OK)
        r = tl_metrics_gauge(m, "tailor_estimated_monthly_savings_dollars",
                             "Estimated savings per month in USD, by namespace and policy.",
                             ns_policy, &om->savings);
    if (r == TL_OK)
        r = tl_metrics_gauge(m, "tailor_leader", "1 when this instance leads.", none, &om->leader);
    return r;
}

void tl_operator_observe_reconcile(struct tl_operator *op, const char *kind, bool ok,
                                   double seconds)
{
    if (!op->om)
        return;
    tl_metrics_counter_add(op->om->reconciles, 1, kind, ok ? "success" : "error");
    tl_metrics_histogram_observe(op->om->reconcile_seconds, seconds, kind);
}

void tl_operator_observe_action(struct tl_operator *op, const char *action)
{
    if (op->om)
        tl_metrics_counter_add(op->om->actions, 1, action);
}

void tl_operator_observe_request(void *arg, const char *method, long code)
{
    struct tl_operator *op = arg;
    if (!op->om)
        return;
    char text[16];
    snprintf(text, sizeof(text), "%ld", code);
    tl_metrics_counter_add(op->om->requests, 1, method, text);
}

static bool count_rec(void *arg, const struct tl_kube_store_item *item)
{
    struct tl_operator *op = arg;
    const struct tl_rec_obj *rec = item->proj;
    if (!rec)
        return true;
    tl_metrics_gauge_add(op->om->recommendations, 1, rec->phase ? rec->phase : "Unknown");
    if (rec->policy_ns && rec->policy_name) {
        char policy[512];
        snprintf(policy, sizeof(policy), "%s/%s", rec->policy_ns, rec->policy_name);
        tl_metrics_gauge_add(op->om->savings, rec->savings_usd, item->namespace, policy);
    }
    return true;
}

/* Sets every gauge from the caches and the clients, just before a scrape renders them. */
static void refresh(struct tl_operator *op)
{
    struct tl_op_metrics *om = op->om;
    struct tl_workqueue_metrics q;
    tl_workqueue_metrics_get(op->queue, &q);
    tl_metrics_gauge_set(om->queue_depth, (double)q.depth);
    tl_metrics_counter_add(om->queue_adds, (double)q.adds_total - om->queue_adds_seen);
    tl_metrics_counter_add(om->queue_retries, (double)q.retries_total - om->queue_retries_seen);
    om->queue_adds_seen = (double)q.adds_total;
    om->queue_retries_seen = (double)q.retries_total;
    struct {
        const char *name;
        struct tl_informer *inf;
    } informers[] = {{"deployments", op->workloads[0]},      {"statefulsets", op->workloads[1]},
                     {"daemonsets", op->workloads[2]},       {"namespaces", op->namespaces},
                     {"horizontalpodautoscalers", op->hpas}, {"optimizationpolicies", op->policies},
                     {"recommendations", op->recs},          {"pods", op->pods},
                     {"poddisruptionbudgets", op->pdbs},     {"configmaps", op->config_maps}};
    for (size_t i = 0; i < sizeof(informers) / sizeof(informers[0]); i++) {
        if (!informers[i].inf)
            continue;
        struct tl_informer_stats s = tl_informer_stats(informers[i].inf);
        tl_metrics_gauge_set(om->watches, (double)s.watches, informers[i].name);
        tl_metrics_gauge_set(om->relists, (double)s.gone, informers[i].name);
    }
    struct tl_prom_stats ps;
    tl_usage_source_prom_stats(op->usage, &ps);
    tl_metrics_gauge_set(om->prom_queries, (double)ps.queries);
    tl_metrics_gauge_set(om->prom_errors, (double)ps.errors);
    tl_metrics_gauge_set(om->prom_seconds, ps.seconds);
    tl_metrics_gauge_clear(om->recommendations);
    tl_metrics_gauge_clear(om->savings);
    if (op->recs)
        tl_kube_store_foreach(tl_informer_store(op->recs), count_rec, op);
    tl_metrics_gauge_set(om->leader, op->leading ? 1 : 0);
}

static void serve_metrics(void *arg, struct tl_httpd_req *req)
{
    struct tl_operator *op = arg;
    refresh(op);
    char *text = NULL;
    size_t len = 0;
    if (tl_metrics_render(op->metrics, &text, &len) != TL_OK) {
        tl_httpd_respond_error(req, 500, "cannot render metrics");
        return;
    }
    tl_httpd_respond_owned(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

static enum tl_err start_server(struct tl_operator *op, const char *addr, struct tl_httpd **out)
{
    if (addr == NULL || strcmp(addr, "0") == 0)
        return TL_OK;
    struct tl_httpd_opts opts = {.bind = addr};
    enum tl_err r = tl_httpd_create(op->loop, &opts, out);
    if (r != TL_OK)
        TL_ERROR("cannot serve HTTP", TL_STR("address", addr), TL_ERRF(r));
    else
        TL_INFO("serving HTTP", TL_STR("address", addr), TL_INT("port", tl_httpd_port(*out)));
    return r;
}

enum tl_err tl_operator_http_start(struct tl_operator *op)
{
    op->metrics = tl_metrics_create(0);
    op->om = calloc(1, sizeof(*op->om));
    if (!op->metrics || !op->om)
        return TL_ENOMEM;
    enum tl_err r = register_metrics(op);
    if (r == TL_OK)
        r = start_server(op, op->opts->health_addr, &op->health_httpd);
    if (r == TL_OK && op->health_httpd)
        r = tl_httpd_health(op->health_httpd, ready, op);
    if (r == TL_OK)
        r = start_server(op, op->opts->metrics_addr, &op->api_httpd);
    if (r == TL_OK && op->api_httpd)
        r = tl_httpd_route(op->api_httpd, "GET", "/metrics", serve_metrics, op);
    if (r == TL_OK)
        r = tl_rest_api_start(op);
    if (r == TL_OK && op->api_httpd && !op->health_httpd)
        r = tl_httpd_health(op->api_httpd, ready, op);
    if (r == TL_OK)
        r = tl_webhook_start(op);
    return r;
}

void tl_operator_http_stop(struct tl_operator *op)
{
    tl_webhook_stop(op);
    tl_httpd_destroy(op->api_httpd);
    tl_rest_api_stop(op); /* after the server: it answered the requests still waiting */
    tl_httpd_destroy(op->health_httpd);
    op->api_httpd = NULL;
    op->health_httpd = NULL;
    tl_metrics_destroy(op->metrics);
    op->metrics = NULL;
    free(op->om);
    op->om = NULL;
}
