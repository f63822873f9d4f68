#include "nodepool_req.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "labels.h"
#include "quantity.h"

#define LABEL_MAX 64

static const char *const op_names[] = {"In", "NotIn", "Exists", "DoesNotExist",
                                       "Gt", "Lt",    "Gte",    "Lte"};

const char *tl_req_op_name(enum tl_req_op op)
{
    return op_names[op];
}

const char *tl_capacity_type_name(enum tl_capacity_type type)
{
    return type == TL_CAPACITY_SPOT ? "spot" : "on-demand";
}

static const char *const policy_names[] = {"WhenEmptyOrUnderutilized", "WhenEmpty", "Balanced"};

const char *tl_consolidation_policy_name(enum tl_consolidation_policy policy)
{
    return policy_names[policy];
}

static void fail(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
    if (errbuf == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
    if (n < 0)
        errbuf[0] = '\0';
}

/* ---- Requirements: ownership ---- */

static void req_free(struct tl_nodepool_req *req)
{
    free(req->key);
    for (size_t i = 0; i < req->nvalues; i++)
        free(req->values[i]);
    free(req->values);
    memset(req, 0, sizeof(*req));
}

void tl_nodepool_reqs_free(struct tl_nodepool_reqs *reqs)
{
    if (reqs == NULL)
        return;
    for (size_t i = 0; i < reqs->count; i++)
        req_free(&reqs->items[i]);
    free(reqs->items);
    reqs->items = NULL;
    reqs->count = 0;
}

static enum tl_err req_copy(const struct tl_nodepool_req *src, struct tl_nodepool_req *dst)
{
    memset(dst, 0, sizeof(*dst));
    dst->op = src->op;
    dst->number = src->number;
    dst->min_values = src->min_values;
    dst->key = strdup(src->key);
    if (dst->key == NULL)
        return TL_ENOMEM;
    if (src->nvalues > 0) {
        dst->values = calloc(src->nvalues, sizeof(*dst->values));
        if (dst->values == NULL)
            return TL_ENOMEM;
        for (size_t i = 0; i < src->nvalues; i++) {
            dst->values[i] = strdup(src->values[i]);
            if (dst->values[i] == NULL)
                return TL_ENOMEM;
            dst->nvalues = i + 1;
        }
    }
    return TL_OK;
}

/* Copies src's requirements into out, leaving room for `spare` more at the end. */
static enum tl_err reqs_copy_with_room(const struct tl_nodepool_reqs *src, size_t spare,
                                       struct tl_nodepool_reqs *out)
{
    enum tl_err result = TL_OK;
    struct tl_nodepool_reqs copy = {NULL, 0};
    copy.items = calloc(src->count + spare + 1, sizeof(*copy.items));
    if (copy.items == NULL)
        return TL_ENOMEM;
    for (size_t i = 0; i < src->count; i++) {
        result = req_copy(&src->items[i], &copy.items[i]);
        copy.count = i + 1;
        if (result != TL_OK)
            goto out;
    }
    *out = copy;
    return TL_OK;
out:
    tl_nodepool_reqs_free(&copy);
    return result;
}

enum tl_err tl_nodepool_reqs_copy(const struct tl_nodepool_reqs *src, struct tl_nodepool_reqs *out)
{
    return reqs_copy_with_room(src, 0, out);
}

/* ---- Requirements: parsing ---- */

static bool parse_op(const char *text, enum tl_req_op *op)
{
    for (size_t i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++) {
        if (strcmp(text, op_names[i]) == 0) {
            *op = (enum tl_req_op)i;
            return true;
        }
    }
    return false;
}

static bool parse_int64(const char *text, int64_t *out)
{
    if (text == NULL || text[0] == '\0' || isspace((unsigned char)text[0]))
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = (int64_t)v;
    return true;
}

static bool is_numeric_op(enum tl_req_op op)
{
    return op == TL_REQ_GT || op == TL_REQ_LT || op == TL_REQ_GTE || op == TL_REQ_LTE;
}

static enum tl_err parse_one(const cJSON *item, const char *field, size_t index,
                             struct tl_nodepool_req *req, char *errbuf, size_t errlen)
{
    memset(req, 0, sizeof(*req));
    if (!cJSON_IsObject(item)) {
        fail(errbuf, errlen, "%s[%zu]: expected an object", field, index);
        return TL_EINVAL;
    }
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(item, "key");
    if (!cJSON_IsString(key) || key->valuestring == NULL || !tl_label_key_valid(key->valuestring)) {
        fail(errbuf, errlen, "%s[%zu].key: expected a label key", field, index);
        return TL_EINVAL;
    }
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(item, "operator");
    if (!cJSON_IsString(op) || op->valuestring == NULL || !parse_op(op->valuestring, &req->op)) {
        fail(errbuf, errlen,
             "%s[%zu].operator: expected In, NotIn, Exists, DoesNotExist, Gt, Lt, Gte or Lte",
             field, index);
        return TL_EINVAL;
    }
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(item, "values");
    if (values != NULL && !cJSON_IsNull(values) && !cJSON_IsArray(values)) {
        fail(errbuf, errlen, "%s[%zu].values: expected an array of strings", field, index);
        return TL_EINVAL;
    }
    size_t n = (size_t)cJSON_GetArraySize(values);
    req->key = strdup(key->valuestring);
    req->values = calloc(n + 1, sizeof(*req->values));
    if (req->key == NULL || req->values == NULL)
        return TL_ENOMEM;
    const cJSON *v = NULL;
    cJSON_ArrayForEach(v, values)
    {
        if (req->nvalues == n)
            break;
        if (!cJSON_IsString(v) || v->valuestring == NULL) {
            fail(errbuf, errlen, "%s[%zu].values[%zu]: expected a string", field, index,
                 req->nvalues);
            return TL_EINVAL;
        }
        req->values[req->nvalues] = strdup(v->valuestring);
        if (req->values[req->nvalues] == NULL)
            return TL_ENOMEM;
        req->nvalues++;
    }
    const char *opname = op_names[req->op];
    if (req->op == TL_REQ_IN && req->nvalues == 0) {
        fail(errbuf, errlen, "%s[%zu].values: operator In needs at least one value", field, index);
        return TL_EINVAL;
    }
    if ((req->op == TL_REQ_EXISTS || req->op == TL_REQ_DOES_NOT_EXIST) && req->nvalues > 0) {
        fail(errbuf, errlen, "%s[%zu].values: must be empty for operator %s", field, index, opname);
        return TL_EINVAL;
    }
    if (is_numeric_op(req->op) &&
        (req->nvalues != 1 || !parse_int64(req->values[0], &req->number) || req->number < 0)) {
        fail(errbuf, errlen, "%s[%zu].values: operator %s needs one non-negative integer", field,
             index, opname);
        return TL_EINVAL;
    }
    const cJSON *min = cJSON_GetObjectItemCaseSensitive(item, "minValues");
    if (min != NULL && !cJSON_IsNull(min)) {
        if (!cJSON_IsNumber(min) || min->valuedouble != floor(min->valuedouble) ||
            min->valuedouble < 1 || min->valuedouble > TL_MIN_VALUES_MAX) {
            fail(errbuf, errlen, "%s[%zu].minValues: must be an integer between 1 and %d", field,
                 index, TL_MIN_VALUES_MAX);
            return TL_EINVAL;
        }
        req->min_values = (int32_t)min->valuedouble;
        if (req->op == TL_REQ_IN && (size_t)req->min_values > req->nvalues) {
            fail(errbuf, errlen, "%s[%zu].minValues: %d is more than the %zu values given", field,
                 index, (int)req->min_values, req->nvalues);
            return TL_EINVAL;
        }
    }
    return TL_OK;
}

enum tl_err tl_nodepool_reqs_parse(const cJSON *requirements, const char *field,
                                   struct tl_nodepool_reqs *out, char *errbuf, size_t errlen)
{
    enum tl_err result = TL_OK;
    struct tl_nodepool_reqs reqs = {NULL, 0};
    if (requirements == NULL || cJSON_IsNull(requirements)) {
        *out = reqs;
        return TL_OK;
    }
    if (!cJSON_IsArray(requirements)) {
        fail(errbuf, errlen, "%s: expected an array", field);
        return TL_EINVAL;
    }
    size_t n = (size_t)cJSON_GetArraySize(requirements);
    reqs.items = calloc(n + 1, sizeof(*reqs.items));
    if (reqs.items == NULL)
        return TL_ENOMEM;
    const cJSON *item = NULL;
    cJSON_ArrayForEach(item, requirements)
    {
        if (reqs.count == n)
            break;
        /* Counted first so that a half-parsed requirement is freed with the rest. */
        reqs.count++;
        result =
            parse_one(item, field, reqs.count - 1, &reqs.items[reqs.count - 1], errbuf, errlen);
        if (result != TL_OK)
            goto out;
    }
    *out = reqs;
    return TL_OK;
out:
    tl_nodepool_reqs_free(&reqs);
    return result;
}

/* ---- The NodePool spec ---- */

void tl_nodepool_spec_free(struct tl_nodepool_spec *spec)
{
    if (spec == NULL)
        return;
    free(spec->name);
    tl_nodepool_reqs_free(&spec->reqs);
    memset(spec, 0, sizeof(*spec));
}

enum tl_err tl_nodepool_spec_copy(const struct tl_nodepool_spec *src, struct tl_nodepool_spec *out)
{
    struct tl_nodepool_spec copy = *src;
    copy.name = strdup(src->name ? src->name : "");
    if (copy.name == NULL)
        return TL_ENOMEM;
    enum tl_err result = tl_nodepool_reqs_copy(&src->reqs, &copy.reqs);
    if (result != TL_OK) {
        free(copy.name);
        return result;
    }
    *out = copy;
    return TL_OK;
}

/* A limit is a Quantity, written as a string ("1000", "1000Gi") or, loosely, a number. */
static enum tl_err parse_limit(const cJSON *limits, const char *name, bool milli, int64_t *out,
                               char *errbuf, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(limits, name);
    if (v == NULL || cJSON_IsNull(v))
        return TL_OK;
    struct tl_quantity q;
    char qerr[128];
    if (cJSON_IsString(v)) {
        if (tl_quantity_parse(v->valuestring, &q, qerr, sizeof(qerr)) != TL_OK) {
            fail(errbuf, errlen, "spec.limits.%s: %s", name, qerr);
            return TL_EINVAL;
        }
    }
    else if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= 0 &&
             v->valuedouble < 9e15) {
        q.units = (int64_t)v->valuedouble;
        q.nanos = (int32_t)llround((v->valuedouble - (double)q.units) * 1e9);
        q.format = TL_QUANTITY_DECIMAL_SI;
        if (q.nanos >= 1000000000) {
            q.units++;
            q.nanos -= 1000000000;
        }
    }
    else {
        fail(errbuf, errlen, "spec.limits.%s: expected a quantity such as \"1000\"", name);
        return TL_EINVAL;
    }
    int64_t value = 0;
    enum tl_err result = milli ? tl_quantity_milli(&q, &value) : tl_quantity_value(&q, &value);
    if (result != TL_OK || value < 0) {
        fail(errbuf, errlen, "spec.limits.%s: must be a non-negative quantity that fits", name);
        return TL_EINVAL;
    }
    *out = value;
    return TL_OK;
}

static enum tl_err parse_disruption(const cJSON *disruption, struct tl_nodepool_spec *spec,
                                    char *errbuf, size_t errlen)
{
    if (disruption == NULL || cJSON_IsNull(disruption))
        return TL_OK;
    if (!cJSON_IsObject(disruption)) {
        fail(errbuf, errlen, "spec.disruption: expected an object");
        return TL_EINVAL;
    }
    const cJSON *policy = cJSON_GetObjectItemCaseSensitive(disruption, "consolidationPolicy");
    if (policy != NULL && !cJSON_IsNull(policy)) {
        const char *text = cJSON_IsString(policy) ? policy->valuestring : "";
        if (strcmp(text, "WhenEmptyOrUnderutilized") == 0 ||
            strcmp(text, "WhenUnderutilized") == 0) /* the v1beta1 spelling */
            spec->consolidation = TL_CONSOLIDATE_WHEN_EMPTY_OR_UNDERUTILIZED;
        else if (strcmp(text, "WhenEmpty") == 0)
            spec->consolidation = TL_CONSOLIDATE_WHEN_EMPTY;
        else if (strcmp(text, "Balanced") == 0)
            spec->consolidation = TL_CONSOLIDATE_BALANCED;
        else {
            fail(errbuf, errlen,
                 "spec.disruption.consolidationPolicy: expected WhenEmptyOrUnderutilized, "
                 "Balanced or WhenEmpty");
            return TL_EINVAL;
        }
    }
    const cJSON *after = cJSON_GetObjectItemCaseSensitive(disruption, "consolidateAfter");
    if (after != NULL && !cJSON_IsNull(after)) {
        if (!cJSON_IsString(after)) {
            fail(errbuf, errlen, "spec.disruption.consolidateAfter: expected a duration or Never");
            return TL_EINVAL;
        }
        spec->consolidate_never = strcmp(after->valuestring, "Never") == 0;
    }
    return TL_OK;
}

enum tl_err tl_nodepool_spec_parse(const cJSON *nodepool, struct tl_nodepool_spec *out,
                                   char *errbuf, size_t errlen)
{
    enum tl_err result = TL_OK;
    struct tl_nodepool_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.limit_cpu_milli = -1;
    spec.limit_memory_bytes = -1;
    spec.limit_nodes = -1;

    if (!cJSON_IsObject(nodepool)) {
        fail(errbuf, errlen, "NodePool: expected an object");
        return TL_EINVAL;
    }
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(nodepool, "metadata"), "name");
    spec.name = strdup(cJSON_IsString(name) ? name->valuestring : "");
    if (spec.name == NULL)
        return TL_ENOMEM;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(nodepool, "spec");
    if (!cJSON_IsObject(s)) {
        fail(errbuf, errlen, "spec: expected an object");
        result = TL_EINVAL;
        goto out;
    }
    const cJSON *template_spec =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "template"), "spec");
    result = tl_nodepool_reqs_parse(cJSON_GetObjectItemCaseSensitive(template_spec, "requirements"),
                                    "spec.template.spec.requirements", &spec.reqs, errbuf, errlen);
    if (result != TL_OK)
        goto out;

    const cJSON *limits = cJSON_GetObjectItemCaseSensitive(s, "limits");
    if (limits != NULL && !cJSON_IsNull(limits)) {
        if (!cJSON_IsObject(limits)) {
            fail(errbuf, errlen, "spec.limits: expected an object");
            result = TL_EINVAL;
            goto out;
        }
        if ((result = parse_limit(limits, "cpu", true, &spec.limit_cpu_milli, errbuf, errlen)) !=
                TL_OK ||
            (result = parse_limit(limits, "memory", false, &spec.limit_memory_bytes, errbuf,
                                  errlen)) != TL_OK ||
            (result = parse_limit(limits, "nodes", false, &spec.limit_nodes, errbuf, errlen)) !=
                TL_OK)
            goto out;
    }
    result =
        parse_disruption(cJSON_GetObjectItemCaseSensitive(s, "disruption"), &spec, errbuf, errlen);
    if (result != TL_OK)
        goto out;
    const cJSON *weight = cJSON_GetObjectItemCaseSensitive(s, "weight");
    if (weight != NULL && !cJSON_IsNull(weight)) {
        if (!cJSON_IsNumber(weight) || weight->valuedouble != floor(weight->valuedouble) ||
            weight->valuedouble < 0 || weight->valuedouble > 100) {
            fail(errbuf, errlen, "spec.weight: expected an integer between 0 and 100");
            result = TL_EINVAL;
            goto out;
        }
        spec.weight = (int64_t)weight->valuedouble;
    }
    *out = spec;
    return TL_OK;
out:
    tl_nodepool_spec_free(&spec);
    return result;
}

/* ---- Labels of a catalog type ---- */

static const char *const known_keys[] = {
    TL_LABEL_INSTANCE_TYPE,
    TL_LABEL_INSTANCE_CATEGORY,
    TL_LABEL_INSTANCE_FAMILY,
    TL_LABEL_INSTANCE_GENERATION,
    TL_LABEL_INSTANCE_SIZE,
    TL_LABEL_INSTANCE_CPU,
    TL_LABEL_INSTANCE_MEMORY,
    TL_LABEL_INSTANCE_GPU_COUNT,
    TL_LABEL_ARCH,
    TL_LABEL_OS,
    TL_LABEL_CAPACITY_TYPE,
};

bool tl_nodepool_req_key_known(const char *key)
{
    for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++) {
        if (strcmp(key, known_keys[i]) == 0)
            return true;
    }
    return false;
}

/* Karpenter's instance-category: the leading letters of a name shaped like
 * letters[-<n>tb]digits...".", so "u-6tb1.metal" is "u" and "m7i-flex.large" is "m". */
static bool category_of(const char *name, char *buf, size_t len)
{
    size_t i = 0;
    while (name[i] >= 'a' && name[i] <= 'z')
        i++;
    size_t letters = i;
    if (letters == 0 || letters >= len)
        return false;
    if (name[i] == '-') {
        size_t j = i + 1;
        while (name[j] >= '0' && name[j] <= '9')
            j++;
        if (j > i + 1 && strncmp(name + j, "tb", 2) == 0)
            i = j + 2;
    }
    if (!(name[i] >= '0' && name[i] <= '9') || strchr(name + i, '.') == NULL)
        return false;
    memcpy(buf, name, letters);
    buf[letters] = '\0';
    return true;
}

static bool put(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool put(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n >= 0 && (size_t)n < len;
}

bool tl_nodepool_req_label(const struct tl_instance_type *type, const char *key, char *buf,
                           size_t len)
{
    if (strcmp(key, TL_LABEL_INSTANCE_TYPE) == 0)
        return put(buf, len, "%s", type->name);
    if (strcmp(key, TL_LABEL_INSTANCE_FAMILY) == 0)
        return put(buf, len, "%s", type->family);
    if (strcmp(key, TL_LABEL_INSTANCE_CATEGORY) == 0)
        return category_of(type->name, buf, len);
    if (strcmp(key, TL_LABEL_INSTANCE_GENERATION) == 0)
        return type->generation > 0 && put(buf, len, "%u", (unsigned)type->generation);
    if (strcmp(key, TL_LABEL_INSTANCE_SIZE) == 0) {
        const char *dot = strchr(type->name, '.');
        return dot != NULL && put(buf, len, "%s", dot + 1);
    }
    if (strcmp(key, TL_LABEL_INSTANCE_CPU) == 0)
        return put(buf, len, "%u", (unsigned)type->vcpu);
    if (strcmp(key, TL_LABEL_INSTANCE_MEMORY) == 0)
        return put(buf, len, "%lld", (long long)llround(type->memory_gib * 1024.0));
    if (strcmp(key, TL_LABEL_INSTANCE_GPU_COUNT) == 0)
        return type->gpu > 0 && put(buf, len, "%u", (unsigned)type->gpu);
    if (strcmp(key, TL_LABEL_ARCH) == 0) {
        if (type->arch == TL_ARCH_AMD64)
            return put(buf, len, "amd64");
        return type->arch == TL_ARCH_ARM64 && put(buf, len, "arm64");
    }
    if (strcmp(key, TL_LABEL_OS) == 0)
        return put(buf, len, "linux"); /* the planner sizes Linux nodes */
    return false;
}

/* ---- Matching ---- */

/* Kubernetes' node selector operators on one label value (present or not). */
static bool req_matches_value(const struct tl_nodepool_req *req, const char *value)
{
    bool has = false;
    switch (req->op) {
    case TL_REQ_IN:
    case TL_REQ_NOT_IN:
        for (size_t i = 0; value != NULL && i < req->nvalues && !has; i++)
            has = strcmp(req->values[i], value) == 0;
        return req->op == TL_REQ_IN ? has : !has;
    case TL_REQ_EXISTS:
        return value != NULL;
    case TL_REQ_DOES_NOT_EXIST:
        return value == NULL;
    case TL_REQ_GT:
    case TL_REQ_LT:
    case TL_REQ_GTE:
    case TL_REQ_LTE: {
        int64_t n = 0;
        if (value == NULL || !parse_int64(value, &n))
            return false;
        if (req->op == TL_REQ_GT)
            return n > req->number;
        if (req->op == TL_REQ_LT)
            return n < req->number;
        if (req->op == TL_REQ_GTE)
            return n >= req->number;
        return n <= req->number;
    }
    }
    return false;
}

bool tl_nodepool_reqs_allow(const struct tl_nodepool_reqs *reqs,
                            const struct tl_instance_type *type)
{
    char buf[LABEL_MAX];
    for (size_t i = 0; i < reqs->count; i++) {
        const struct tl_nodepool_req *req = &reqs->items[i];
        if (strcmp(req->key, TL_LABEL_CAPACITY_TYPE) == 0 || !tl_nodepool_req_key_known(req->key))
            continue;
        bool present = tl_nodepool_req_label(type, req->key, buf, sizeof(buf));
        if (!req_matches_value(req, present ? buf : NULL))
            return false;
    }
    return true;
}

static bool capacity_value_allowed(const struct tl_nodepool_reqs *reqs, const char *value)
{
    for (size_t i = 0; i < reqs->count; i++) {
        if (strcmp(reqs->items[i].key, TL_LABEL_CAPACITY_TYPE) == 0 &&
            !req_matches_value(&reqs->items[i], value))
            return false;
    }
    return true;
}

unsigned tl_nodepool_reqs_capacity(const struct tl_nodepool_reqs *reqs)
{
    unsigned mask = 0;
    if (capacity_value_allowed(reqs, "on-demand"))
        mask |= TL_CAPACITY_ON_DEMAND;
    if (capacity_value_allowed(reqs, "spot"))
        mask |= TL_CAPACITY_SPOT;
    return mask;
}

size_t tl_nodepool_reqs_select(const struct tl_nodepool_reqs *reqs, bool *allowed)
{
    size_t n = 0;
    for (size_t i = 0; i < tl_catalog_type_count; i++) {
        allowed[i] = tl_nodepool_reqs_allow(reqs, &tl_catalog_types[i]);
        n += allowed[i];
    }
    return n;
}

static int compare_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct label {
    char value[LABEL_MAX];
};

/* Distinct values of key over the allowed catalog types, counted up to `enough`. */
static size_t distinct_values(const bool *allowed, const char *key, size_t enough,
                              struct label *seen)
{
    size_t n = 0;
    char buf[LABEL_MAX];
    for (size_t i = 0; i < tl_catalog_type_count && n < enough; i++) {
        if (!allowed[i] || !tl_nodepool_req_label(&tl_catalog_types[i], key, buf, sizeof(buf)))
            continue;
        bool dup = false;
        for (size_t j = 0; j < n && !dup; j++)
            dup = strcmp(seen[j].value, buf) == 0;
        if (!dup)
            memcpy(seen[n++].value, buf, sizeof(buf));
    }
    return n;
}

bool tl_nodepool_reqs_min_values_met(const struct tl_nodepool_reqs *reqs, char *why, size_t whylen)
{
    bool *allowed = NULL;
    bool ok = true;
    struct label *seen = NULL;
    bool selected = false;
    for (size_t i = 0; i < reqs->count && ok; i++) {
        const struct tl_nodepool_req *req = &reqs->items[i];
        if (req->min_values <= 0)
            continue;
        /* Karpenter takes the largest minValues given for a key. */
        int32_t need = 0;
        bool first = true;
        for (size_t j = 0; j < reqs->count; j++) {
            if (strcmp(reqs->items[j].key, req->key) != 0)
                continue;
            if (j < i && reqs->items[j].min_values > 0)
                first = false;
            if (reqs->items[j].min_values > need)
                need = reqs->items[j].min_values;
        }
        if (!first)
            continue;
        size_t have = 0;
        if (strcmp(req->key, TL_LABEL_CAPACITY_TYPE) == 0) {
            unsigned mask = tl_nodepool_reqs_capacity(reqs);
            have = (size_t)((mask & TL_CAPACITY_ON_DEMAND) != 0) +
                   (size_t)((mask & TL_CAPACITY_SPOT) != 0);
        }
        else if (!tl_nodepool_req_key_known(req->key)) {
            continue; /* a zone or custom label: nothing here to count */
        }
        else {
            if (!selected) {
                allowed = calloc(tl_catalog_type_count, sizeof(*allowed));
                seen = calloc(TL_MIN_VALUES_MAX, sizeof(*seen));
                if (allowed == NULL || seen == NULL) {
                    fail(why, whylen, "out of memory");
                    ok = false;
                    break;
                }
                tl_nodepool_reqs_select(reqs, allowed);
                selected = true;
            }
            size_t enough = need < TL_MIN_VALUES_MAX ? (size_t)need : TL_MIN_VALUES_MAX;
            have = distinct_values(allowed, req->key, enough, seen);
        }
        if (have < (size_t)need) {
            fail(why, whylen, "%s has %zu value%s, minValues is %d", req->key, have,
                 have == 1 ? "" : "s", (int)need);
            ok = false;
        }
    }
    free(allowed);
    free(seen);
    return ok;
}

/* ---- Narrowing ---- */

static bool contains(char *const *values, size_t n, const char *value)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(values[i], value) == 0)
            return true;
    }
    return false;
}

/* Sets req's values to keep + extra[0..k), de-duplicated and sorted. */
static enum tl_err set_values(struct tl_nodepool_req *req, const char *const *keep, size_t nkeep,
                              const char *const *extra, size_t k)
{
    char **values = calloc(nkeep + k + 1, sizeof(*values));
    if (values == NULL)
        return TL_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < nkeep + k; i++) {
        const char *v = i < nkeep ? keep[i] : extra[i - nkeep];
        if (contains(values, n, v))
            continue;
        values[n] = strdup(v);
        if (values[n] == NULL) {
            for (size_t j = 0; j < n; j++)
                free(values[j]);
            free(values);
            return TL_ENOMEM;
        }
        n++;
    }
    qsort(values, n, sizeof(*values), compare_cstr);
    for (size_t i = 0; i < req->nvalues; i++)
        free(req->values[i]);
    free(req->values);
    req->values = values;
    req->nvalues = n;
    return TL_OK;
}

/* A copy of reqs in which key takes exactly keep + extra[0..k). */
static enum tl_err narrowed(const struct tl_nodepool_reqs *reqs, const char *key,
                            const char *const *keep, size_t nkeep, const char *const *extra,
                            size_t k, struct tl_nodepool_reqs *out)
{
    struct tl_nodepool_reqs copy;
    enum tl_err result = reqs_copy_with_room(reqs, 1, &copy);
    if (result != TL_OK)
        return result;
    struct tl_nodepool_req *target = NULL;
    for (size_t i = 0; i < copy.count && target == NULL; i++) {
        if (copy.items[i].op == TL_REQ_IN && strcmp(copy.items[i].key, key) == 0)
            target = &copy.items[i];
    }
    if (target == NULL) {
        target = &copy.items[copy.count];
        memset(target, 0, sizeof(*target));
        target->op = TL_REQ_IN;
        target->key = strdup(key);
        if (target->key == NULL) {
            result = TL_ENOMEM;
            goto out;
        }
        copy.count++;
    }
    result = set_values(target, keep, nkeep, extra, k);
    if (result != TL_OK)
        goto out;
    *out = copy;
    return TL_OK;
out:
    tl_nodepool_reqs_free(&copy);
    return result;
}

enum tl_err tl_nodepool_reqs_narrow(const struct tl_nodepool_reqs *reqs, const char *key,
                                    const char *const *keep, size_t nkeep, const char *const *extra,
                                    size_t nextra, struct tl_nodepool_reqs *out,
                                    size_t *nextra_used, char *errbuf, size_t errlen)
{
    if (reqs == NULL || key == NULL || !tl_nodepool_req_key_known(key) ||
        strcmp(key, TL_LABEL_CAPACITY_TYPE) == 0 || (nkeep > 0 && keep == NULL) ||
        (nextra > 0 && extra == NULL)) {
        fail(errbuf, errlen, "cannot narrow %s", key ? key : "(null)");
        return TL_EINVAL;
    }
    char why[160] = "";
    /* Adding values only adds distinct values, so the first k that works is the fewest. */
    for (size_t k = 0; k <= nextra; k++) {
        struct tl_nodepool_reqs candidate;
        enum tl_err result = narrowed(reqs, key, keep, nkeep, extra, k, &candidate);
        if (result != TL_OK)
            return result;
        if (tl_nodepool_reqs_min_values_met(&candidate, why, sizeof(why))) {
            *out = candidate;
            if (nextra_used != NULL)
                *nextra_used = k;
            return TL_OK;
        }
        tl_nodepool_reqs_free(&candidate);
    }
    fail(errbuf, errlen, "narrowing %s cannot meet minValues: %s", key, why);
    return TL_ENOTFOUND;
}

enum tl_err tl_nodepool_reqs_allow_spot(const struct tl_nodepool_reqs *reqs,
                                        struct tl_nodepool_reqs *out)
{
    if ((tl_nodepool_reqs_capacity(reqs) & TL_CAPACITY_SPOT) != 0)
        return tl_nodepool_reqs_copy(reqs, out);
    static const char *const all[] = {"on-demand", "reserved", "spot"};
    const char *keep[3];
    size_t nkeep = 0;
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(all[i], "spot") == 0 || capacity_value_allowed(reqs, all[i]))
            keep[nkeep++] = all[i];
    }
    struct tl_nodepool_reqs copy = {NULL, 0};
    enum tl_err result = reqs_copy_with_room(reqs, 1, &copy);
    if (result != TL_OK)
        return result;
    /* Every capacity-type requirement gives way to one In listing what was allowed, and spot. */
    size_t w = 0;
    for (size_t i = 0; i < copy.count; i++) {
        if (strcmp(copy.items[i].key, TL_LABEL_CAPACITY_TYPE) == 0)
            req_free(&copy.items[i]);
        else
            copy.items[w++] = copy.items[i];
    }
    copy.count = w;
    struct tl_nodepool_req *req = &copy.items[copy.count];
    memset(req, 0, sizeof(*req));
    req->op = TL_REQ_IN;
    req->key = strdup(TL_LABEL_CAPACITY_TYPE);
    copy.count++;
    if (req->key == NULL) {
        result = TL_ENOMEM;
        goto out;
    }
    result = set_values(req, keep, nkeep, NULL, 0);
    if (result != TL_OK)
        goto out;
    *out = copy;
    return TL_OK;
out:
    tl_nodepool_reqs_free(&copy);
    return result;
}

char *tl_nodepool_req_to_string(const struct tl_nodepool_req *req)
{
    size_t len = strlen(req->key) + 64;
    for (size_t i = 0; i < req->nvalues; i++)
        len += strlen(req->values[i]) + 2;
    char *s = malloc(len);
    if (s == NULL)
        return NULL;
    size_t at = 0;
    int n = snprintf(s, len, "%s %s", req->key, op_names[req->op]);
    if (n < 0 || (size_t)n >= len) {
        free(s);
        return NULL;
    }
    at = (size_t)n;
    if (req->nvalues > 0) {
        bool list = req->op == TL_REQ_IN || req->op == TL_REQ_NOT_IN;
        n = snprintf(s + at, len - at, " %s", list ? "[" : "");
        at += n > 0 ? (size_t)n : 0;
        for (size_t i = 0; i < req->nvalues; i++) {
            n = snprintf(s + at, len - at, "%s%s", i ? ", " : "", req->values[i]);
            at += n > 0 ? (size_t)n : 0;
        }
        if (list) {
            n = snprintf(s + at, len - at, "]");
            at += n > 0 ? (size_t)n : 0;
        }
    }
    if (req->min_values > 0 && at < len) {
        n = snprintf(s + at, len - at, " (minValues %d)", (int)req->min_values);
        if (n < 0 || (size_t)n >= len - at) {
            free(s);
            return NULL;
        }
    }
    return s;
}
