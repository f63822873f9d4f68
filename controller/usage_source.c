#include "usage_source.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "operator.h"
#include "usage_collect.h"

#define POLL_SECONDS 30.0

/* Per namespace: when it was last collected, and why the last cycle failed. */
struct ns_state {
    double last_started;
    char problem[300];
};

struct tl_usage_source {
    struct tl_operator *op;
    struct tl_http *http;
    struct tl_usage_store *store;
    struct tl_strmap *collectors; /* Prometheus URL -> struct tl_usage_collector */
    struct tl_strmap *namespaces; /* namespace -> struct ns_state */
    ev_timer tick;
};

static void collector_free(void *value)
{
    tl_usage_collector_destroy(value);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    tl_usage_source_poll(w->data);
}

struct tl_usage_source *tl_usage_source_create(struct tl_operator *op)
{
    struct tl_usage_source *src = calloc(1, sizeof(*src));
    if (!src)
        return NULL;
    src->op = op;
    src->http = tl_http_create(op->loop);
    src->store = tl_usage_store_create();
    src->collectors = tl_strmap_create(collector_free);
    src->namespaces = tl_strmap_create(free);
    if (!src->http || !src->store || !src->collectors || !src->namespaces) {
        tl_usage_source_destroy(src);
        return NULL;
    }
    ev_timer_init(&src->tick, on_tick, POLL_SECONDS, POLL_SECONDS);
    src->tick.data = src;
    ev_timer_start(op->loop, &src->tick);
    return src;
}

void tl_usage_source_destroy(struct tl_usage_source *src)
{
    if (src == NULL)
        return;
    ev_timer_stop(src->op->loop, &src->tick);
    tl_strmap_destroy(src->collectors); /* cancels cycles before the store goes */
    tl_strmap_destroy(src->namespaces);
    tl_usage_store_destroy(src->store);
    tl_http_destroy(src->http);
    free(src);
}

static struct tl_usage_collector *collector_for(struct tl_usage_source *src, const char *url)
{
    struct tl_usage_collector *c = tl_strmap_get(src->collectors, url);
    if (c)
        return c;
    struct tl_prom_options opts = {.url = url};
    struct tl_prom *prom = tl_prom_create(src->op->loop, src->http, &opts);
    if (!prom)
        return NULL;
    c = tl_usage_collector_create(prom, src->store);
    if (!c) {
        tl_prom_destroy(prom);
        return NULL;
    }
    return tl_strmap_set(src->collectors, url, c) == TL_OK ? c : NULL;
}

static struct ns_state *state_of(struct tl_usage_source *src, const char *ns)
{
    struct ns_state *st = tl_strmap_get(src->namespaces, ns);
    if (st)
        return st;
    st = calloc(1, sizeof(*st));
    if (!st || tl_strmap_set(src->namespaces, ns, st) != TL_OK)
        return NULL;
    return st;
}

/* One namespace's cycle in the making: its workloads and the policy that sizes most of them. */
struct group {
    char ns[254];
    const struct tl_policy *policy;
    struct tl_workload_ref refs[1024];
    char *names[1024];
    size_t count;
};

struct grouping {
    struct tl_usage_source *src;
    struct tl_strmap *groups; /* namespace -> struct group */
};

static void group_free(void *value)
{
    struct group *g = value;
    for (size_t i = 0; i < g->count; i++)
        free(g->names[i]);
    free(g);
}

static bool collect_assignment(void *arg, const char *key, void *value)
{
    struct grouping *gr = arg;
    char copy[600];
    snprintf(copy, sizeof(copy), "%s", key);
    char *kind = strchr(copy, '/');
    char *name = kind ? strchr(kind + 1, '/') : NULL;
    if (!kind || !name)
        return true;
    *kind++ = '\0';
    *name++ = '\0';
    enum tl_workload_kind k;
    if (!tl_workload_kind_parse(kind, &k))
        return true;
    char pns[254];
    snprintf(pns, sizeof(pns), "%s", (const char *)value);
    char *slash = strchr(pns, '/');
    if (!slash)
        return true;
    *slash = '\0';
    const struct tl_kube_store_item *pitem = tl_informer_get(gr->src->op->policies, pns, slash + 1);
    const struct tl_policy_obj *pobj = pitem ? pitem->proj : NULL;
    if (!pobj || !pobj->valid)
        return true;
    struct group *g = tl_strmap_get(gr->groups, copy);
    if (!g) {
        g = calloc(1, sizeof(*g));
        if (!g || tl_strmap_set(gr->groups, copy, g) != TL_OK)
            return false;
        snprintf(g->ns, sizeof(g->ns), "%.253s", copy);
        g->policy = &pobj->policy;
    }
    if (g->count < sizeof(g->refs) / sizeof(g->refs[0])) {
        g->names[g->count] = strdup(name);
        if (!g->names[g->count])
            return false;
        g->refs[g->count].kind = k;
        g->refs[g->count].name = g->names[g->count];
        g->count++;
    }
    return true;
}

struct cycle_arg {
    struct tl_usage_source *src;
    char ns[254];
};

static bool enqueue_namespace(void *arg, const char *key, void *value)
{
    (void)value;
    struct cycle_arg *c = arg;
    size_t len = strlen(c->ns);
    if (strncmp(key, c->ns, len) != 0 || key[len] != '/')
        return true;
    const char *kind = key + len + 1;
    const char *name = strchr(kind, '/');
    if (!name)
        return true;
    char kind_text[32];
    snprintf(kind_text, sizeof(kind_text), "%.*s", (int)(name - kind), kind);
    tl_operator_enqueue_workload(c->src->op, c->ns, kind_text, name + 1);
    return true;
}

static void on_cycle(void *arg, const struct tl_usage_cycle *cycle)
{
    struct cycle_arg *c = arg;
    struct ns_state *st = state_of(c->src, c->ns);
    if (st) {
        if (cycle->err == TL_OK)
            st->problem[0] = '\0';
        else
            snprintf(st->problem, sizeof(st->problem), "usage collection failed: %s",
                     cycle->message ? cycle->message : tl_strerror(cycle->err));
    }
    if (cycle->err == TL_OK)
        TL_INFO("usage collected", TL_STR("ns", c->ns), TL_INT("queries", cycle->queries),
                TL_DBL("from", cycle->from), TL_DBL("to", cycle->to));
    tl_strmap_foreach(c->src->op->assignment, enqueue_namespace, c);
    free(c);
}

struct start_walk {
    struct tl_usage_source *src;
    double now;
};

static bool start_group(void *arg, const char *key, void *value)
{
    (void)key;
    struct start_walk *walk = arg;
    struct tl_usage_source *src = walk->src;
    struct group *g = value;
    struct ns_state *st = state_of(src, g->ns);
    if (!st)
        return false;
    const struct tl_policy *p = g->policy;
    double interval = (double)p->metrics.interval_ms / 1000;
    if (st->last_started > 0 && walk->now < st->last_started + interval)
        return true;
    const char *url =
        p->metrics.prometheus_url ? p->metrics.prometheus_url : src->op->opts->prometheus_url;
    if (p->metrics.source == TL_METRICS_SERVER) {
        snprintf(st->problem, sizeof(st->problem),
                 "spec.metrics.source MetricsServer is not supported yet; use Prometheus");
        return true;
    }
    if (!url) {
        snprintf(st->problem, sizeof(st->problem),
                 "no Prometheus: set spec.metrics.prometheus.url or --prometheus-url");
        return true;
    }
    struct tl_usage_collector *collector = collector_for(src, url);
    if (!collector || tl_usage_collecting(collector, g->ns))
        return true;
    struct tl_usage_settings settings;
    tl_usage_settings_from_policy(p, &settings);
    struct cycle_arg *c = calloc(1, sizeof(*c));
    if (!c)
        return false;
    c->src = src;
    snprintf(c->ns, sizeof(c->ns), "%s", g->ns);
    enum tl_err result =
        tl_usage_collect(collector, g->ns, g->refs, g->count, &settings, walk->now, on_cycle, c);
    if (result != TL_OK) {
        snprintf(st->problem, sizeof(st->problem), "usage collection could not start: %s",
                 tl_strerror(result));
        free(c);
        return true;
    }
    st->last_started = walk->now;
    return true;
}

void tl_usage_source_poll(struct tl_usage_source *src)
{
    if (!src->op->synced || !src->op->leading)
        return;
    struct grouping gr = {src, tl_strmap_create(group_free)};
    if (!gr.groups)
        return;
    tl_strmap_foreach(src->op->assignment, collect_assignment, &gr);
    struct start_walk walk = {src, ev_now(src->op->loop)};
    tl_strmap_foreach(gr.groups, start_group, &walk);
    tl_strmap_destroy(gr.groups);
}

bool tl_usage_source_get(struct tl_usage_source *src, const char *ns, const char *kind,
                         const char *name, const char *container, struct tl_usage *out,
                         double *analyzed_at)
{
    enum tl_workload_kind k;
    if (!src || !tl_workload_kind_parse(kind, &k))
        return false;
    double now = ev_now(src->op->loop);
    if (!tl_usage_store_usage(src->store, ns, k, name, container, now, 14 * 86400.0, out))
        return false;
    *analyzed_at = tl_usage_store_covered_until(src->store, ns);
    return true;
}

const char *tl_usage_source_problem(struct tl_usage_source *src, const char *ns)
{
    const struct ns_state *st = src ? tl_strmap_get(src->namespaces, ns) : NULL;
    return st && st->problem[0] ? st->problem : NULL;
}

static bool add_stats(void *arg, const char *key, void *value)
{
    (void)key;
    struct tl_prom_stats *sum = arg;
    struct tl_prom_stats s;
    tl_prom_stats_get(tl_usage_collector_prom(value), &s);
    sum->queries += s.queries;
    sum->errors += s.errors;
    sum->seconds += s.seconds;
    sum->bytes += s.bytes;
    return true;
}

void tl_usage_source_prom_stats(struct tl_usage_source *src, struct tl_prom_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (src)
        tl_strmap_foreach(src->collectors, add_stats, out);
}
