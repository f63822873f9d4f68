#include "kube_resource.h"

#include <stdio.h>
#include <string.h>

struct builtin {
    const char *api_version, *resource, *kind;
    bool namespaced;
};

static const struct builtin BUILTINS[] = {
    {"v1", "pods", "Pod", true},
    {"v1", "namespaces", "Namespace", false},
    {"v1", "nodes", "Node", false},
    {"v1", "events", "Event", true},
    {"v1", "configmaps", "ConfigMap", true},
    {"v1", "secrets", "Secret", true},
    {"v1", "services", "Service", true},
    {"v1", "serviceaccounts", "ServiceAccount", true},
    {"v1", "limitranges", "LimitRange", true},
    {"v1", "resourcequotas", "ResourceQuota", true},
    {"apps/v1", "deployments", "Deployment", true},
    {"apps/v1", "statefulsets", "StatefulSet", true},
    {"apps/v1", "daemonsets", "DaemonSet", true},
    {"apps/v1", "replicasets", "ReplicaSet", true},
    {"batch/v1", "jobs", "Job", true},
    {"batch/v1", "cronjobs", "CronJob", true},
    {"autoscaling/v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", true},
    {"policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", true},
    {"coordination.k8s.io/v1", "leases", "Lease", true},
    {"events.k8s.io/v1", "events", "Event", true},
    {"apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition", false},
    {"karpenter.sh/v1", "nodepools", "NodePool", false},
    {"karpenter.sh/v1", "nodeclaims", "NodeClaim", false},
    {"tailor.dev/v1alpha1", "optimizationpolicies", "OptimizationPolicy", true},
    {"tailor.dev/v1alpha1", "recommendations", "Recommendation", true},
};

static bool copy(char *dst, size_t len, const char *src)
{
    int n = snprintf(dst, len, "%s", src);
    return n >= 0 && (size_t)n < len;
}

enum tl_err tl_kube_resource_split_gv(const char *api_version, char *group, size_t group_len,
                                      char *version, size_t version_len)
{
    if (!api_version || !*api_version)
        return TL_EINVAL;
    const char *slash = strchr(api_version, '/');
    if (!slash) {
        if (group_len == 0 || !copy(version, version_len, api_version))
            return TL_EINVAL;
        group[0] = '\0';
        return TL_OK;
    }
    size_t glen = (size_t)(slash - api_version);
    if (glen == 0 || glen >= group_len || !slash[1] || strchr(slash + 1, '/') ||
        !copy(version, version_len, slash + 1))
        return TL_EINVAL;
    memcpy(group, api_version, glen);
    group[glen] = '\0';
    return TL_OK;
}

static enum tl_err fill(struct tl_kube_resource *out, const char *api_version, const char *resource,
                        const char *kind, bool namespaced)
{
    struct tl_kube_resource r = {.namespaced = namespaced};
    if (tl_kube_resource_split_gv(api_version, r.group, sizeof(r.group), r.version,
                                  sizeof(r.version)) != TL_OK ||
        !copy(r.resource, sizeof(r.resource), resource) || !copy(r.kind, sizeof(r.kind), kind))
        return TL_EINVAL;
    *out = r;
    return TL_OK;
}

enum tl_err tl_kube_resource_builtin(const char *api_version, const char *name,
                                     struct tl_kube_resource *out)
{
    if (!api_version || !name)
        return TL_EINVAL;
    for (size_t i = 0; i < sizeof(BUILTINS) / sizeof(BUILTINS[0]); i++) {
        const struct builtin *b = &BUILTINS[i];
        if (strcmp(b->api_version, api_version) == 0 &&
            (strcmp(b->resource, name) == 0 || strcmp(b->kind, name) == 0))
            return fill(out, b->api_version, b->resource, b->kind, b->namespaced);
    }
    return TL_ENOTFOUND;
}

enum tl_err tl_kube_url_escape(const char *text, char *buf, size_t len, size_t *pos)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t p = *pos;
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        bool plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                     (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_' || *c == '~';
        size_t need = plain ? 1 : 3;
        if (p + need >= len) {
            if (*pos < len)
                buf[*pos] = '\0';
            return TL_ETOOBIG;
        }
        if (plain) {
            buf[p++] = (char)*c;
        }
        else {
            buf[p++] = '%';
            buf[p++] = hex[*c >> 4];
            buf[p++] = hex[*c & 15];
        }
    }
    if (p >= len)
        return TL_ETOOBIG;
    buf[p] = '\0';
    *pos = p;
    return TL_OK;
}

static enum tl_err put(const char *text, char *buf, size_t len, size_t *pos)
{
    if (*pos >= len)
        return TL_ETOOBIG;
    int n = snprintf(buf + *pos, len - *pos, "%s", text);
    if (n < 0 || (size_t)n >= len - *pos)
        return TL_ETOOBIG;
    *pos += (size_t)n;
    return TL_OK;
}

enum tl_err tl_kube_query_add(char *buf, size_t len, size_t *pos, const char *key,
                              const char *value)
{
    if (!value || !*value)
        return TL_OK;
    size_t start = *pos;
    enum tl_err result = start > 0 ? put("&", buf, len, pos) : TL_OK;
    if (result == TL_OK)
        result = put(key, buf, len, pos);
    if (result == TL_OK)
        result = put("=", buf, len, pos);
    if (result == TL_OK)
        result = tl_kube_url_escape(value, buf, len, pos);
    if (result != TL_OK) {
        *pos = start;
        if (start < len)
            buf[start] = '\0';
    }
    return result;
}

static bool valid_segment(const char *s)
{
    return *s && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

enum tl_err tl_kube_resource_path(const struct tl_kube_resource *res, const char *ns,
                                  const char *name, const char *subresource, char *buf, size_t len)
{
    if (len == 0)
        return TL_ETOOBIG;
    bool has_ns = ns && *ns;
    if ((name && !valid_segment(name)) || (has_ns && !valid_segment(ns)) ||
        (name && res->namespaced && !has_ns) || (subresource && !name) ||
        (subresource && !valid_segment(subresource)))
        return TL_EINVAL;
    size_t pos = 0;
    enum tl_err result =
        res->group[0] ? put("/apis/", buf, len, &pos) : put("/api", buf, len, &pos);
    if (result == TL_OK && res->group[0])
        result = put(res->group, buf, len, &pos);
    if (result == TL_OK)
        result = put("/", buf, len, &pos);
    if (result == TL_OK)
        result = put(res->version, buf, len, &pos);
    if (result == TL_OK && has_ns && res->namespaced) {
        result = put("/namespaces/", buf, len, &pos);
        if (result == TL_OK)
            result = tl_kube_url_escape(ns, buf, len, &pos);
    }
    if (result == TL_OK)
        result = put("/", buf, len, &pos);
    if (result == TL_OK)
        result = put(res->resource, buf, len, &pos);
    if (result == TL_OK && name) {
        result = put("/", buf, len, &pos);
        if (result == TL_OK)
            result = tl_kube_url_escape(name, buf, len, &pos);
    }
    if (result == TL_OK && subresource) {
        result = put("/", buf, len, &pos);
        if (result == TL_OK)
            result = tl_kube_url_escape(subresource, buf, len, &pos);
    }
    return result;
}

enum tl_err tl_kube_discovery_path(const char *api_version, char *buf, size_t len)
{
    char group[254], version[64];
    enum tl_err result =
        tl_kube_resource_split_gv(api_version, group, sizeof(group), version, sizeof(version));
    if (result != TL_OK)
        return result;
    int n = group[0] ? snprintf(buf, len, "/apis/%s/%s", group, version)
                     : snprintf(buf, len, "/api/%s", version);
    return n >= 0 && (size_t)n < len ? TL_OK : TL_ETOOBIG;
}

static bool string_is(const cJSON *item, const char *want)
{
    return cJSON_IsString(item) && strcmp(item->valuestring, want) == 0;
}

static bool matches(const cJSON *entry, const char *name)
{
    if (string_is(cJSON_GetObjectItemCaseSensitive(entry, "name"), name) ||
        string_is(cJSON_GetObjectItemCaseSensitive(entry, "kind"), name) ||
        string_is(cJSON_GetObjectItemCaseSensitive(entry, "singularName"), name))
        return true;
    const cJSON *shorts = cJSON_GetObjectItemCaseSensitive(entry, "shortNames");
    const cJSON *s;
    cJSON_ArrayForEach(s, shorts)
    {
        if (string_is(s, name))
            return true;
    }
    return false;
}

enum tl_err tl_kube_resource_from_discovery(const cJSON *list, const char *api_version,
                                            const char *name, struct tl_kube_resource *out)
{
    const cJSON *resources = cJSON_GetObjectItemCaseSensitive(list, "resources");
    if (!cJSON_IsArray(resources))
        return TL_EINVAL;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, resources)
    {
        const cJSON *plural = cJSON_GetObjectItemCaseSensitive(entry, "name");
        const cJSON *kind = cJSON_GetObjectItemCaseSensitive(entry, "kind");
        if (!cJSON_IsString(plural) || !cJSON_IsString(kind) || strchr(plural->valuestring, '/'))
            continue;
        if (!matches(entry, name))
            continue;
        const cJSON *namespaced = cJSON_GetObjectItemCaseSensitive(entry, "namespaced");
        return fill(out, api_version, plural->valuestring, kind->valuestring,
                    cJSON_IsTrue(namespaced));
    }
    return TL_ENOTFOUND;
}
