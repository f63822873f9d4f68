#include "usage_query.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_HISTORY (14 * 86400.0)
#define DEFAULT_STEP    300.0
#define MAX_QUERY       ((size_t)64 * 1024)

void tl_usage_settings_resolve(const struct tl_usage_settings *in, struct tl_usage_settings *out)
{
    struct tl_usage_settings s = *in;
#define OR_DEFAULT(field, value)                                                                   \
    if (s.field == NULL || s.field[0] == '\0')                                                     \
    s.field = (value)
    OR_DEFAULT(cpu_series, "container_cpu_usage_seconds_total");
    OR_DEFAULT(memory_series, "container_memory_working_set_bytes");
    OR_DEFAULT(throttled_series, "container_cpu_cfs_throttled_periods_total");
    OR_DEFAULT(periods_series, "container_cpu_cfs_periods_total");
    OR_DEFAULT(restarts_series, "kube_pod_container_status_restarts_total");
    OR_DEFAULT(terminated_series, "kube_pod_container_status_last_terminated_reason");
    OR_DEFAULT(limits_series, "kube_pod_container_resource_limits");
    OR_DEFAULT(namespace_label, "namespace");
    OR_DEFAULT(pod_label, "pod");
    OR_DEFAULT(container_label, "container");
#undef OR_DEFAULT
    if (s.extra_selector && s.extra_selector[0] == '\0')
        s.extra_selector = NULL;
    if (!(s.history > 0))
        s.history = DEFAULT_HISTORY;
    if (!(s.step > 0))
        s.step = DEFAULT_STEP;
    if (!(s.rate_window > 0))
        s.rate_window = s.step;
    *out = s;
}

void tl_usage_settings_from_policy(const struct tl_policy *policy, struct tl_usage_settings *out)
{
    struct tl_usage_settings s = {
        .cpu_series = policy->metrics.cpu_series,
        .memory_series = policy->metrics.memory_series,
        .namespace_label = policy->metrics.namespace_label,
        .pod_label = policy->metrics.pod_label,
        .container_label = policy->metrics.container_label,
        .extra_selector = policy->metrics.extra_selector,
        .history = (double)policy->metrics.history_ms / 1000.0,
    };
    tl_usage_settings_resolve(&s, out);
}

/* ---- A bounded string builder ---- */

struct text {
    char *buf;
    size_t len;
    size_t cap;
    enum tl_err err; /* sticky: the first failure */
};

static void add(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct text *t, const char *fmt, ...)
{
    if (t->err != TL_OK)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= t->cap - t->len) {
        t->err = n < 0 ? TL_EINVAL : TL_ETOOBIG;
        return;
    }
    t->len += (size_t)n;
}

/* A PromQL double-quoted string: backslash and quote escaped, control characters as \xHH. */
static void add_quoted(struct text *t, const char *value)
{
    add(t, "\"");
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if (*p == '"' || *p == '\\')
            add(t, "\\%c", *p);
        else if (*p < 0x20)
            add(t, "\\x%02x", *p);
        else
            add(t, "%c", *p);
    }
    add(t, "\"");
}

/* Prometheus durations: the largest unit that divides the value ("14d", "5m", "90s"). */
static void add_duration(struct text *t, double seconds)
{
    double ms = round(seconds * 1000);
    static const struct {
        double ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
    if (ms < 1)
        ms = 1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (fmod(ms, units[i].ms) == 0) {
            add(t, "%.0f%s", ms / units[i].ms, units[i].unit);
            return;
        }
    }
}

/* {<ns>="NS"[, <c>!="", <c>!="POD"][, <extra>]} */
static void add_selector(struct text *t, const struct tl_usage_settings *s, const char *ns,
                         bool containers, const char *more)
{
    add(t, "{%s=", s->namespace_label);
    add_quoted(t, ns);
    if (containers)
        add(t, ", %s!=\"\", %s!=\"POD\"", s->container_label, s->container_label);
    if (more)
        add(t, ", %s", more);
    if (s->extra_selector)
        add(t, ", %s", s->extra_selector);
    add(t, "}");
}

static void add_by(struct text *t, const struct tl_usage_settings *s)
{
    add(t, "by (%s, %s)", s->pod_label, s->container_label);
}

static void add_oom(struct text *t, const struct tl_usage_settings *s, const char *ns)
{
    add(t, "(max ");
    add_by(t, s);
    add(t, " (max_over_time(%s", s->terminated_series);
    add_selector(t, s, ns, false, "reason=\"OOMKilled\"");
    add(t, "[");
    add_duration(t, s->history);
    add(t, "])) > 0)");
}

static void add_tag(struct text *t, const char *tag)
{
    add(t, ", \"%s\", \"%s\", \"\", \"\")", TL_USAGE_FACT_LABEL, tag);
}

/* label_replace(<agg> by (...) (<fn>(<series>{<sel>}[<window>])), tag) */
static void add_fact(struct text *t, const struct tl_usage_settings *s, const char *ns,
                     const char *agg, const char *fn, const char *series, bool containers,
                     const char *more)
{
    add(t, "%s ", agg);
    add_by(t, s);
    add(t, " (%s(%s", fn, series);
    add_selector(t, s, ns, containers, more);
    add(t, "[");
    add_duration(t, s->history);
    add(t, "]))");
}

typedef void (*build_fn)(struct text *t, const struct tl_usage_settings *s, const char *ns);

static enum tl_err build(const struct tl_usage_settings *settings, const char *ns, build_fn fn,
                         char **out)
{
    struct tl_usage_settings s;
    tl_usage_settings_resolve(settings, &s);
    struct text t = {.buf = malloc(MAX_QUERY), .cap = MAX_QUERY};
    if (!t.buf)
        return TL_ENOMEM;
    t.buf[0] = '\0';
    fn(&t, &s, ns);
    if (t.err != TL_OK) {
        free(t.buf);
        return t.err;
    }
    char *text = malloc(t.len + 1);
    if (text)
        memcpy(text, t.buf, t.len + 1);
    free(t.buf);
    if (!text)
        return TL_ENOMEM;
    *out = text;
    return TL_OK;
}

static void build_cpu(struct text *t, const struct tl_usage_settings *s, const char *ns)
{
    add(t, "sum ");
    add_by(t, s);
    add(t, " (rate(%s", s->cpu_series);
    add_selector(t, s, ns, true, NULL);
    add(t, "[");
    add_duration(t, s->rate_window);
    add(t, "]))");
}

/* The peak inside each step, not the value at its end: a short spike is what OOM-kills. */
static void build_memory(struct text *t, const struct tl_usage_settings *s, const char *ns)
{
    add(t, "max ");
    add_by(t, s);
    add(t, " (max_over_time(%s", s->memory_series);
    add_selector(t, s, ns, true, NULL);
    add(t, "[");
    add_duration(t, s->step);
    add(t, "]))");
}

/*
 * One instant query for every per-container fact, so a namespace costs three queries whatever
 * its size: each part is aggregated by pod and container and tagged with label_replace (an empty
 * source label matches the empty regex, so the tag is always set), and `or` joins the parts since
 * the tags keep their label sets apart.
 *
 * OOM kills: kube-state-metrics only says which reason ended a container last, so a container
 * counts as OOM-killed when that reason was OOMKilled at some point in the window, and its kills
 * are its restarts in the window (or 1 where restarts are not exported).
 */
static void build_facts(struct text *t, const struct tl_usage_settings *s, const char *ns)
{
    add(t, "label_replace(");
    add_fact(t, s, ns, "sum", "increase", s->throttled_series, true, NULL);
    add_tag(t, TL_USAGE_FACT_THROTTLED);
    add(t, " or label_replace(");
    add_fact(t, s, ns, "sum", "increase", s->periods_series, true, NULL);
    add_tag(t, TL_USAGE_FACT_PERIODS);
    add(t, " or label_replace(round(");
    add_fact(t, s, ns, "sum", "increase", s->restarts_series, false, NULL);
    add(t, ") and on (%s, %s) ", s->pod_label, s->container_label);
    add_oom(t, s, ns);
    add(t, " or ");
    add_oom(t, s, ns);
    add_tag(t, TL_USAGE_FACT_OOM_KILLS);
    add(t, " or label_replace(");
    add_fact(t, s, ns, "max", "max_over_time", s->limits_series, false, "resource=\"memory\"");
    add(t, " and on (%s, %s) ", s->pod_label, s->container_label);
    add_oom(t, s, ns);
    add_tag(t, TL_USAGE_FACT_OOM_LIMIT);
}

enum tl_err tl_usage_query_cpu(const struct tl_usage_settings *settings, const char *ns, char **out)
{
    return build(settings, ns, build_cpu, out);
}

enum tl_err tl_usage_query_memory(const struct tl_usage_settings *settings, const char *ns,
                                  char **out)
{
    return build(settings, ns, build_memory, out);
}

enum tl_err tl_usage_query_facts(const struct tl_usage_settings *settings, const char *ns,
                                 char **out)
{
    return build(settings, ns, build_facts, out);
}
