#include "policy.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "duration.h"
#include "json.h"
#include "quantity.h"

/* Parsing context: the error buffer, and the result of the first failure. */
struct ctx {
    char *errbuf;
    size_t errlen;
    enum tl_err result;
};

#define PATH_MAX_LEN 160

static bool fail(struct ctx *c, enum tl_err err, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool fail(struct ctx *c, enum tl_err err, const char *path, const char *fmt, ...)
{
    if (c->result != TL_OK)
        return false;
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    snprintf(c->errbuf, c->errlen, "%s: %s", path, detail);
    c->result = err;
    return false;
}

/* Paths are short literals joined; a cut one would still name the field well enough. */
static void join_path(char *buf, const char *base, const char *key)
{
    int n = snprintf(buf, PATH_MAX_LEN, "%s.%s", base, key);
    if (n < 0 || n >= PATH_MAX_LEN)
        buf[PATH_MAX_LEN - 1] = '\0';
}

/* An object member that must be an object when present; NULL when absent or null. */
static const cJSON *object_at(struct ctx *c, const cJSON *obj, const char *key, const char *base)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (item == NULL || cJSON_IsNull(item))
        return NULL;
    if (!cJSON_IsObject(item)) {
        char path[PATH_MAX_LEN];
        join_path(path, base, key);
        fail(c, TL_EINVAL, path, "must be an object");
        return NULL;
    }
    return item;
}

static bool int_at(struct ctx *c, const cJSON *obj, const char *key, const char *base, int fallback,
                   int min, int max, int *out)
{
    char path[PATH_MAX_LEN];
    join_path(path, base, key);
    int64_t v = 0;
    enum tl_err err = tl_json_int64(obj, key, fallback, &v);
    if (err != TL_OK)
        return fail(c, TL_EINVAL, path, "must be an integer");
    if (v < min || v > max)
        return fail(c, TL_EINVAL, path, "must be between %d and %d, got %lld", min, max,
                    (long long)v);
    *out = (int)v;
    return true;
}

static bool bool_at(struct ctx *c, const cJSON *obj, const char *key, const char *base,
                    bool fallback, bool *out)
{
    char path[PATH_MAX_LEN];
    join_path(path, base, key);
    if (tl_json_bool(obj, key, fallback, out) != TL_OK)
        return fail(c, TL_EINVAL, path, "must be true or false");
    return true;
}

/* A string member copied into *out (caller's struct owns it); fallback may be NULL. */
static bool string_at(struct ctx *c, const cJSON *obj, const char *key, const char *base,
                      const char *fallback, char **out)
{
    char path[PATH_MAX_LEN];
    join_path(path, base, key);
    const char *v = NULL;
    if (tl_json_string(obj, key, fallback, &v) != TL_OK)
        return fail(c, TL_EINVAL, path, "must be a string");
    if (v == NULL)
        return true;
    *out = strdup(v);
    if (*out == NULL)
        return fail(c, TL_ENOMEM, path, "out of memory");
    return true;
}

/* One of `names` (in enum order); YAML 1.1's `Off` read as false gets a hint. */
static bool enum_at(struct ctx *c, const cJSON *obj, const char *key, const char *base,
                    const char *const *names, size_t count, int fallback, int *out)
{
    char path[PATH_MAX_LEN];
    join_path(path, base, key);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (item == NULL || cJSON_IsNull(item)) {
        *out = fallback;
        return true;
    }
    if (cJSON_IsBool(item))
        return fail(c, TL_EINVAL, path,
                    "got a boolean; YAML reads a bare Off/On as one, so quote it (\"Off\")");
    if (!cJSON_IsString(item))
        return fail(c, TL_EINVAL, path, "must be a string");
    for (size_t i = 0; i < count; i++) {
        if (strcmp(item->valuestring, names[i]) == 0) {
            *out = (int)i;
            return true;
        }
    }
    char allowed[160] = "";
    size_t used = 0;
    for (size_t i = 0; i < count && used < sizeof(allowed); i++) {
        int n =
            snprintf(allowed + used, sizeof(allowed) - used, "%s\"%s\"", i ? ", " : "", names[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    return fail(c, TL_EINVAL, path, "unsupported value \"%s\": supported values: %s",
                item->valuestring, allowed);
}

static bool duration_at(struct ctx *c, const cJSON *obj, const char *key, const char *base,
                        const char *fallback, int64_t *out)
{
    char path[PATH_MAX_LEN];
    join_path(path, base, key);
    const char *v = NULL;
    if (tl_json_string(obj, key, fallback, &v) != TL_OK)
        return fail(c, TL_EINVAL, path, "must be a duration string such as \"6h\"");
    if (v == NULL)
        return true;
    enum tl_err err = tl_duration_parse(v, out);
    if (err != TL_OK)
        return fail(
            c, TL_EINVAL, path,
            "invalid duration \"%s\": use numbers with units ms, s, m, h, d or w (\"1h30m\")", v);
    return true;
}

/* A quantity written as a string or a number; `memory` picks bytes over cores. */
static bool quantity_at(struct ctx *c, const cJSON *obj, const char *key, const char *base,
                        bool memory, double *out)
{
    char path[PATH_MAX_LEN];
    join_path(path, base, key);
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (item == NULL || cJSON_IsNull(item))
        return true;
    char text[64];
    if (cJSON_IsNumber(item))
        snprintf(text, sizeof(text), "%.17g", item->valuedouble);
    else if (cJSON_IsString(item))
        snprintf(text, sizeof(text), "%s", item->valuestring);
    else
        return fail(c, TL_EINVAL, path, "must be a quantity such as \"250m\" or \"1Gi\"");
    struct tl_quantity q;
    char qerr[160];
    if (tl_quantity_parse(text, &q, qerr, sizeof(qerr)) != TL_OK)
        return fail(c, TL_EINVAL, path, "%s", qerr);
    int64_t milli = 0;
    if (tl_quantity_milli(&q, &milli) != TL_OK || milli < 0)
        return fail(c, TL_EINVAL, path, "must be a non-negative quantity, got \"%s\"", text);
    *out = memory ? ceil((double)milli / 1000) : (double)milli / 1000;
    return true;
}

static bool rule_at(struct ctx *c, const cJSON *resources, const char *key, bool memory,
                    struct tl_resource_rule *rule, int *oom_bump)
{
    char base[PATH_MAX_LEN];
    join_path(base, "spec.resources", key);
    const cJSON *obj = object_at(c, resources, key, "spec.resources");
    int percentile = (int)rule->percentile;
    int headroom = (int)rule->headroom_percent;
    if (!int_at(c, obj, "percentile", base, percentile, 50, 100, &percentile) ||
        !int_at(c, obj, "headroomPercent", base, headroom, 0, 200, &headroom) ||
        !quantity_at(c, obj, "min", base, memory, &rule->min) ||
        !quantity_at(c, obj, "max", base, memory, &rule->max))
        return false;
    if (oom_bump && !int_at(c, obj, "oomBumpPercent", base, 20, 0, 100, oom_bump))
        return false;
    if (rule->max > 0 && rule->min > rule->max) {
        char path[PATH_MAX_LEN];
        join_path(path, base, "min");
        return fail(c, TL_EINVAL, path, "must not be greater than max");
    }
    rule->percentile = percentile;
    rule->headroom_percent = headroom;
    return true;
}

static const char *const kind_names[] = {"Deployment", "StatefulSet", "DaemonSet"};
static const char *const source_names[] = {"Prometheus", "MetricsServer"};
static const char *const limit_names[] = {"Remove", "KeepRatio", "SetToRequest", "Keep"};
static const char *const qos_names[] = {"Preserve", "Guaranteed", "Burstable"};
static const char *const mode_names[] = {"Off", "Manual", "Auto"};
static const char *const method_names[] = {"Patch", "InPlace"};
static const char *const confidence_names[] = {"None", "Low", "Medium", "High"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *tl_approval_mode_name(enum tl_approval_mode mode)
{
    return mode_names[mode];
}

static bool parse_kinds(struct ctx *c, const cJSON *spec, struct tl_policy *p)
{
    const cJSON *kinds = cJSON_GetObjectItemCaseSensitive(spec, "workloadKinds");
    if (kinds == NULL || cJSON_IsNull(kinds)) {
        p->workload_kinds = TL_KIND_DEPLOYMENT | TL_KIND_STATEFULSET | TL_KIND_DAEMONSET;
        return true;
    }
    if (!cJSON_IsArray(kinds))
        return fail(c, TL_EINVAL, "spec.workloadKinds", "must be a list");
    size_t index = 0;
    const cJSON *kind;
    cJSON_ArrayForEach(kind, kinds)
    {
        char path[PATH_MAX_LEN];
        snprintf(path, sizeof(path), "spec.workloadKinds[%zu]", index++);
        size_t i = 0;
        while (i < COUNT(kind_names) &&
               !(cJSON_IsString(kind) && strcmp(kind->valuestring, kind_names[i]) == 0))
            i++;
        if (i == COUNT(kind_names))
            return fail(c, TL_EINVAL, path,
                        "supported values: \"Deployment\", \"StatefulSet\", \"DaemonSet\"");
        p->workload_kinds |= 1u << i;
    }
    return true;
}

static bool parse_metrics(struct ctx *c, const cJSON *spec, struct tl_policy *p)
{
    const char *base = "spec.metrics";
    const cJSON *m = object_at(c, spec, "metrics", "spec");
    const cJSON *prom = object_at(c, m, "prometheus", base);
    const cJSON *series = object_at(c, prom, "series", "spec.metrics.prometheus");
    const cJSON *labels = object_at(c, prom, "labels", "spec.metrics.prometheus");
    const cJSON *secret = object_at(c, prom, "headersSecretRef", "spec.metrics.prometheus");
    int source = TL_METRICS_PROMETHEUS;
    if (!enum_at(c, m, "source", base, source_names, COUNT(source_names), source, &source) ||
        !duration_at(c, m, "history", base, "14d", &p->metrics.history_ms) ||
        !duration_at(c, m, "interval", base, "1h", &p->metrics.interval_ms) ||
        !string_at(c, prom, "url", "spec.metrics.prometheus", NULL, &p->metrics.prometheus_url) ||
        !string_at(c, prom, "extraSelector", "spec.metrics.prometheus", NULL,
                   &p->metrics.extra_selector) ||
        !string_at(c, secret, "name", "spec.metrics.prometheus.headersSecretRef", NULL,
                   &p->metrics.headers_secret) ||
        !string_at(c, series, "cpu", "spec.metrics.prometheus.series",
                   "container_cpu_usage_seconds_total", &p->metrics.cpu_series) ||
        !string_at(c, series, "memory", "spec.metrics.prometheus.series",
                   "container_memory_working_set_bytes", &p->metrics.memory_series) ||
        !string_at(c, labels, "namespace", "spec.metrics.prometheus.labels", "namespace",
                   &p->metrics.namespace_label) ||
        !string_at(c, labels, "pod", "spec.metrics.prometheus.labels", "pod",
                   &p->metrics.pod_label) ||
        !string_at(c, labels, "container", "spec.metrics.prometheus.labels", "container",
                   &p->metrics.container_label))
        return false;
    p->metrics.source = (enum tl_metrics_source)source;
    const char *url = p->metrics.prometheus_url;
    if (url && strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return fail(c, TL_EINVAL, "spec.metrics.prometheus.url",
                    "must start with http:// or "
                    "https://");
    if (p->metrics.history_ms < 3600000)
        return fail(c, TL_EINVAL, "spec.metrics.history", "must be at least 1h");
    if (p->metrics.interval_ms < 60000)
        return fail(c, TL_EINVAL, "spec.metrics.interval", "must be at least 1m");
    return true;
}

static bool parse_resources(struct ctx *c, const cJSON *spec, struct tl_policy *p)
{
    const char *base = "spec.resources";
    const cJSON *r = object_at(c, spec, "resources", "spec");
    const cJSON *limits = object_at(c, r, "limits", base);
    int oom = 20;
    int cpu_limit = TL_LIMIT_REMOVE;
    int mem_limit = TL_LIMIT_KEEP_RATIO;
    int qos = TL_QOS_PRESERVE;
    if (!rule_at(c, r, "cpu", false, &p->recommend.cpu, NULL) ||
        !rule_at(c, r, "memory", true, &p->recommend.memory, &oom) ||
        !enum_at(c, limits, "cpu", "spec.resources.limits", limit_names, COUNT(limit_names),
                 cpu_limit, &cpu_limit) ||
        !enum_at(c, limits, "memory", "spec.resources.limits", limit_names, COUNT(limit_names),
                 mem_limit, &mem_limit) ||
        !enum_at(c, r, "qos", base, qos_names, COUNT(qos_names), qos, &qos))
        return false;
    p->recommend.oom_bump_percent = oom;
    p->recommend.cpu_limit = (enum tl_limit_mode)cpu_limit;
    p->recommend.memory_limit = (enum tl_limit_mode)mem_limit;
    p->qos = (enum tl_qos_policy)qos;
    p->recommend.guaranteed = p->qos == TL_QOS_WANT_GUARANTEED;
    const cJSON *excluded = cJSON_GetObjectItemCaseSensitive(r, "excludeContainers");
    if (excluded && !cJSON_IsNull(excluded)) {
        if (!cJSON_IsArray(excluded))
            return fail(c, TL_EINVAL, "spec.resources.excludeContainers", "must be a list");
        p->exclude_containers = calloc(tl_json_size(excluded) + 1, sizeof(char *));
        if (!p->exclude_containers)
            return fail(c, TL_ENOMEM, "spec.resources.excludeContainers", "out of memory");
        const cJSON *name;
        cJSON_ArrayForEach(name, excluded)
        {
            if (!cJSON_IsString(name)) {
                char path[PATH_MAX_LEN];
                snprintf(path, sizeof(path), "spec.resources.excludeContainers[%zu]", p->nexclude);
                return fail(c, TL_EINVAL, path, "must be a container name");
            }
            p->exclude_containers[p->nexclude] = strdup(name->valuestring);
            if (!p->exclude_containers[p->nexclude++])
                return fail(c, TL_ENOMEM, "spec.resources.excludeContainers", "out of memory");
        }
    }
    return true;
}

static bool parse_hpa(struct ctx *c, const cJSON *spec, struct tl_policy *p)
{
    const char *base = "spec.hpa";
    const cJSON *h = object_at(c, spec, "hpa", "spec");
    const cJSON *target = object_at(c, h, "targetUtilization", base);
    if (!bool_at(c, h, "enabled", base, false, &p->hpa.enabled) ||
        !bool_at(c, h, "create", base, false, &p->hpa.create) ||
        !int_at(c, h, "minReplicas", base, 2, 1, 1000, &p->hpa.min_replicas) ||
        !int_at(c, h, "maxReplicas", base, 20, 1, 10000, &p->hpa.max_replicas) ||
        !int_at(c, target, "min", "spec.hpa.targetUtilization", 50, 10, 100, &p->hpa.target_min) ||
        !int_at(c, target, "max", "spec.hpa.targetUtilization", 80, 10, 100, &p->hpa.target_max))
        return false;
    if (p->hpa.min_replicas > p->hpa.max_replicas)
        return fail(c, TL_EINVAL, "spec.hpa.minReplicas", "must not be greater than maxReplicas");
    if (p->hpa.target_min > p->hpa.target_max)
        return fail(c, TL_EINVAL, "spec.hpa.targetUtilization.min", "must not be greater than max");
    return true;
}

static bool parse_node_pools(struct ctx *c, const cJSON *spec, struct tl_policy *p)
{
    const char *base = "spec.nodePools";
    const cJSON *n = object_at(c, spec, "nodePools", "spec");
    if (n == NULL)
        return c->result == TL_OK;
    p->node_pools.enabled = true;
    enum tl_err err =
        tl_selector_parse(cJSON_GetObjectItemCaseSensitive(n, "selector"),
                          "spec.nodePools.selector", &p->node_pools.selector, c->errbuf, c->errlen);
    if (err != TL_OK) {
        c->result = err;
        return false;
    }
    return int_at(c, n, "maxCostIncreasePercent", base, 10, 0, 100,
                  &p->node_pools.max_cost_increase_percent) &&
           bool_at(c, n, "allowDrift", base, false, &p->node_pools.allow_drift);
}

static bool decimal_at(struct ctx *c, const cJSON *obj, const char *key, const char *base,
                       double *out)
{
    char path[PATH_MAX_LEN];
    join_path(path, base, key);
    const char *v = NULL;
    if (tl_json_string(obj, key, NULL, &v) != TL_OK)
        return fail(c, TL_EINVAL, path, "must be a decimal string such as \"0.0316\"");
    if (v == NULL)
        return true;
    char *end = NULL;
    double d = strtod(v, &end);
    if (end == v || *end != '\0' || !(d >= 0) || !isfinite(d))
        return fail(c, TL_EINVAL, path, "must be a non-negative decimal, got \"%s\"", v);
    *out = d;
    return true;
}

static bool parse_pricing(struct ctx *c, const cJSON *spec, struct tl_policy *p)
{
    const char *base = "spec.pricing";
    const cJSON *pr = object_at(c, spec, "pricing", "spec");
    const cJSON *spot = object_at(c, pr, "spot", base);
    const cJSON *custom = object_at(c, pr, "custom", base);
    p->pricing.custom_cpu_core_hour = -1;
    p->pricing.custom_memory_gib_hour = -1;
    if (!string_at(c, pr, "region", base, "us-east-1", &p->pricing.region) ||
        !bool_at(c, spot, "enabled", "spec.pricing.spot", false, &p->pricing.spot) ||
        !int_at(c, spot, "discountPercent", "spec.pricing.spot", -1, -1, 95,
                &p->pricing.spot_discount_percent) ||
        !decimal_at(c, custom, "cpuCoreHour", "spec.pricing.custom",
                    &p->pricing.custom_cpu_core_hour) ||
        !decimal_at(c, custom, "memoryGiBHour", "spec.pricing.custom",
                    &p->pricing.custom_memory_gib_hour))
        return false;
    if ((p->pricing.custom_cpu_core_hour < 0) != (p->pricing.custom_memory_gib_hour < 0))
        return fail(c, TL_EINVAL, "spec.pricing.custom",
                    "set both cpuCoreHour and memoryGiBHour, or neither");
    return true;
}

static bool parse_approval(struct ctx *c, const cJSON *spec, struct tl_policy *p)
{
    const char *base = "spec.approval";
    const cJSON *a = object_at(c, spec, "approval", "spec");
    const cJSON *window = object_at(c, a, "window", base);
    const cJSON *concurrent = object_at(c, a, "maxConcurrent", base);
    const cJSON *verify = object_at(c, a, "verification", base);
    int mode = TL_APPROVAL_OFF;
    int confidence = TL_CONFIDENCE_MEDIUM;
    int method = TL_APPLY_PATCH;
    if (!enum_at(c, a, "mode", base, mode_names, COUNT(mode_names), mode, &mode) ||
        !int_at(c, a, "maxChangePercent", base, 50, 1, 100, &p->approval.max_change_percent) ||
        !int_at(c, a, "minChangePercent", base, 10, 0, 100, &p->approval.min_change_percent) ||
        !enum_at(c, a, "minConfidence", base, confidence_names, COUNT(confidence_names), confidence,
                 &confidence) ||
        !duration_at(c, a, "cooldown", base, "6h", &p->approval.cooldown_ms) ||
        !enum_at(c, a, "method", base, method_names, COUNT(method_names), method, &method) ||
        !bool_at(c, a, "fallbackToPatch", base, false, &p->approval.fallback_to_patch) ||
        !int_at(c, concurrent, "perNamespace", "spec.approval.maxConcurrent", 1, 1, 1000,
                &p->approval.max_per_namespace) ||
        !int_at(c, concurrent, "cluster", "spec.approval.maxConcurrent", 5, 1, 10000,
                &p->approval.max_cluster) ||
        !duration_at(c, verify, "period", "spec.approval.verification", "10m",
                     &p->approval.verification_ms) ||
        !int_at(c, verify, "maxConsecutiveRollbacks", "spec.approval.verification", 2, 1, 10,
                &p->approval.max_consecutive_rollbacks))
        return false;
    if (confidence == TL_CONFIDENCE_NONE)
        return fail(c, TL_EINVAL, "spec.approval.minConfidence",
                    "supported values: \"Low\", \"Medium\", \"High\"");
    p->approval.mode = (enum tl_approval_mode)mode;
    p->approval.min_confidence = (enum tl_confidence)confidence;
    p->approval.method = (enum tl_apply_method)method;
    if (p->approval.min_change_percent > p->approval.max_change_percent)
        return fail(c, TL_EINVAL, "spec.approval.minChangePercent",
                    "must not be greater than maxChangePercent");
    if (window == NULL)
        return c->result == TL_OK;
    const char *schedule = NULL;
    if (tl_json_string(window, "schedule", NULL, &schedule) != TL_OK || schedule == NULL)
        return fail(c, TL_EINVAL, "spec.approval.window.schedule",
                    "required: a cron schedule such as \"0 2 * * *\"");
    char cron_err[160];
    if (tl_cron_parse(schedule, &p->approval.window, cron_err, sizeof(cron_err)) != TL_OK)
        return fail(c, TL_EINVAL, "spec.approval.window.schedule", "%s", cron_err);
    p->approval.has_window = true;
    if (!duration_at(c, window, "duration", "spec.approval.window", "1h", &p->approval.window_ms))
        return false;
    if (p->approval.window_ms < 60000)
        return fail(c, TL_EINVAL, "spec.approval.window.duration", "must be at least 1m");
    const char *tz = NULL;
    if (tl_json_string(window, "timeZone", "UTC", &tz) != TL_OK)
        return fail(c, TL_EINVAL, "spec.approval.window.timeZone", "must be a string");
    if (strcmp(tz, "UTC") != 0 && strcmp(tz, "Etc/UTC") != 0)
        return fail(c, TL_EINVAL, "spec.approval.window.timeZone",
                    "only \"UTC\" is supported; write the schedule in UTC");
    return true;
}

enum tl_err tl_policy_parse(const cJSON *spec, struct tl_policy *out, char *errbuf, size_t errlen)
{
    struct ctx c = {errbuf, errlen, TL_OK};
    struct tl_policy p;
    memset(&p, 0, sizeof(p));
    tl_recommend_policy_defaults(&p.recommend);
    if (spec != NULL && !cJSON_IsObject(spec)) {
        snprintf(errbuf, errlen, "spec: must be an object");
        return TL_EINVAL;
    }
    enum tl_err err = tl_selector_parse(cJSON_GetObjectItemCaseSensitive(spec, "selector"),
                                        "spec.selector", &p.selector, errbuf, errlen);
    if (err != TL_OK)
        return err;
    const cJSON *ns_selector = cJSON_GetObjectItemCaseSensitive(spec, "namespaceSelector");
    p.has_namespace_selector = ns_selector != NULL && !cJSON_IsNull(ns_selector);
    err = tl_selector_parse(ns_selector, "spec.namespaceSelector", &p.namespace_selector, errbuf,
                            errlen);
    if (err != TL_OK) {
        tl_policy_free(&p);
        return err;
    }
    if (!parse_kinds(&c, spec, &p) || !parse_metrics(&c, spec, &p) ||
        !parse_resources(&c, spec, &p) || !parse_hpa(&c, spec, &p) ||
        !parse_node_pools(&c, spec, &p) || !parse_pricing(&c, spec, &p) ||
        !parse_approval(&c, spec, &p) || c.result != TL_OK) {
        tl_policy_free(&p);
        return c.result != TL_OK ? c.result : TL_EINVAL;
    }
    p.recommend.sample_interval = 300;
    *out = p;
    return TL_OK;
}

void tl_policy_free(struct tl_policy *p)
{
    if (p == NULL)
        return;
    tl_selector_free(&p->selector);
    tl_selector_free(&p->namespace_selector);
    tl_selector_free(&p->node_pools.selector);
    free(p->metrics.prometheus_url);
    free(p->metrics.headers_secret);
    free(p->metrics.extra_selector);
    free(p->metrics.cpu_series);
    free(p->metrics.memory_series);
    free(p->metrics.namespace_label);
    free(p->metrics.pod_label);
    free(p->metrics.container_label);
    for (size_t i = 0; i < p->nexclude; i++)
        free(p->exclude_containers[i]);
    free(p->exclude_containers);
    free(p->pricing.region);
    memset(p, 0, sizeof(*p));
}

size_t tl_policy_specificity(const struct tl_policy *p)
{
    return p->selector.count;
}

bool tl_policy_excludes_container(const struct tl_policy *p, const char *container)
{
    for (size_t i = 0; i < p->nexclude; i++) {
        if (strcmp(p->exclude_containers[i], container) == 0)
            return true;
    }
    return false;
}
