#include "prom.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "ratelimit.h"

/* Prometheus refuses a range query of more than 11,000 points per series. */
#define MAX_POINTS_PER_WINDOW 10000
#define DEFAULT_TIMEOUT       30.0
#define DEFAULT_MAX_RESPONSE  ((size_t)256 << 20)
#define DEFAULT_ATTEMPTS      3

/* ---- Parsing ---- */

const char *tl_prom_label(const struct tl_prom_series *series, const char *name)
{
    for (size_t i = 0; i < series->nlabels; i++) {
        if (strcmp(series->labels[i].name, name) == 0)
            return series->labels[i].value;
    }
    return NULL;
}

static void series_free(struct tl_prom_series *s)
{
    for (size_t i = 0; i < s->nlabels; i++) {
        free(s->labels[i].name);
        free(s->labels[i].value);
    }
    free(s->labels);
    free(s->points);
    memset(s, 0, sizeof(*s));
}

void tl_prom_result_free(struct tl_prom_result *result)
{
    if (result == NULL)
        return;
    for (size_t i = 0; i < result->count; i++)
        series_free(&result->series[i]);
    free(result->series);
    memset(result, 0, sizeof(*result));
}

static int compare_label(const void *a, const void *b)
{
    return strcmp(((const struct tl_prom_label *)a)->name, ((const struct tl_prom_label *)b)->name);
}

/* [ <unix time>, "<value>" ] as the API writes every sample. */
static bool parse_point(const cJSON *pair, struct tl_prom_point *out)
{
    const cJSON *t = cJSON_GetArrayItem(pair, 0);
    const cJSON *v = cJSON_GetArrayItem(pair, 1);
    if (!cJSON_IsArray(pair) || tl_json_size(pair) != 2 || !cJSON_IsNumber(t) || !cJSON_IsString(v))
        return false;
    char *end = NULL;
    errno = 0;
    double value = strtod(v->valuestring, &end);
    if (end == v->valuestring || *end != '\0' || (errno == ERANGE && isfinite(value)))
        return false;
    out->t = t->valuedouble;
    out->v = value;
    return true;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(errbuf, errlen, __VA_ARGS__);                                                     \
        result = TL_EINVAL;                                                                        \
        goto out;                                                                                  \
    } while (0)

static enum tl_err parse_series(const cJSON *item, bool matrix, size_t index,
                                struct tl_prom_series *out, char *errbuf, size_t errlen)
{
    enum tl_err result = TL_OK;
    const cJSON *metric = cJSON_GetObjectItemCaseSensitive(item, "metric");
    const cJSON *values = cJSON_GetObjectItemCaseSensitive(item, matrix ? "values" : "value");
    if (!cJSON_IsObject(item))
        FAIL("data.result[%zu]: expected an object", index);
    if (metric && !cJSON_IsObject(metric))
        FAIL("data.result[%zu].metric: expected an object", index);
    size_t nlabels = tl_json_size(metric);
    if (nlabels > 0) {
        out->labels = calloc(nlabels, sizeof(*out->labels));
        if (!out->labels)
            return TL_ENOMEM;
    }
    const cJSON *label;
    cJSON_ArrayForEach(label, metric)
    {
        if (out->nlabels >= nlabels)
            break;
        if (!cJSON_IsString(label))
            FAIL("data.result[%zu].metric.%s: expected a string", index, label->string);
        struct tl_prom_label *l = &out->labels[out->nlabels++];
        l->name = strdup(label->string);
        l->value = strdup(label->valuestring);
        if (!l->name || !l->value)
            return TL_ENOMEM;
    }
    if (out->nlabels > 1)
        qsort(out->labels, out->nlabels, sizeof(*out->labels), compare_label);
    size_t npoints = matrix ? tl_json_size(values) : 1;
    if (matrix && !cJSON_IsArray(values))
        FAIL("data.result[%zu].values: expected a list of samples", index);
    if (npoints > 0) {
        out->points = calloc(npoints, sizeof(*out->points));
        if (!out->points)
            return TL_ENOMEM;
    }
    if (!matrix) {
        if (!parse_point(values, &out->points[0]))
            FAIL("data.result[%zu].value: expected [time, \"value\"]", index);
        out->npoints = 1;
        goto out;
    }
    const cJSON *pair;
    cJSON_ArrayForEach(pair, values)
    {
        if (out->npoints >= npoints)
            break;
        if (!parse_point(pair, &out->points[out->npoints]))
            FAIL("data.result[%zu].values[%zu]: expected [time, \"value\"]", index, out->npoints);
        out->npoints++;
    }
out:
    return result;
}

enum tl_err tl_prom_parse(const char *body, size_t len, struct tl_prom_result *out, char *errbuf,
                          size_t errlen)
{
    enum tl_err result = TL_OK;
    struct tl_prom_result parsed = {NULL, 0, 0};
    char jerr[160];
    cJSON *doc = NULL;
    result = tl_json_parse(body, len, len + 1, &doc, jerr, sizeof(jerr));
    if (result != TL_OK) {
        snprintf(errbuf, errlen, "not a Prometheus API answer: %s", jerr);
        return result == TL_ENOMEM ? TL_ENOMEM : TL_EINVAL;
    }
    const char *status = NULL;
    if (tl_json_string(doc, "status", NULL, &status) != TL_OK || status == NULL)
        FAIL("status: expected \"success\" or \"error\"");
    if (strcmp(status, "success") != 0) {
        const char *type = "error";
        const char *message = "(no message)";
        (void)tl_json_string(doc, "errorType", type, &type);
        (void)tl_json_string(doc, "error", message, &message);
        FAIL("%s: %s", type, message);
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    const char *type = NULL;
    if (tl_json_string(data, "resultType", NULL, &type) != TL_OK || type == NULL)
        FAIL("data.resultType: missing");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(data, "result");
    if (strcmp(type, "scalar") == 0) {
        parsed.series = calloc(1, sizeof(*parsed.series));
        if (!parsed.series) {
            result = TL_ENOMEM;
            goto out;
        }
        parsed.count = 1;
        parsed.series[0].points = calloc(1, sizeof(struct tl_prom_point));
        if (!parsed.series[0].points) {
            result = TL_ENOMEM;
            goto out;
        }
        if (!parse_point(res, &parsed.series[0].points[0]))
            FAIL("data.result: expected [time, \"value\"]");
        parsed.series[0].npoints = 1;
        parsed.samples = 1;
        goto out;
    }
    bool matrix = strcmp(type, "matrix") == 0;
    if (!matrix && strcmp(type, "vector") != 0)
        FAIL("data.resultType: unsupported \"%s\"", type);
    if (!cJSON_IsArray(res))
        FAIL("data.result: expected a list");
    size_t n = tl_json_size(res);
    if (n > 0) {
        parsed.series = calloc(n, sizeof(*parsed.series));
        if (!parsed.series) {
            result = TL_ENOMEM;
            goto out;
        }
    }
    const cJSON *item;
    cJSON_ArrayForEach(item, res)
    {
        if (parsed.count >= n)
            break;
        result =
            parse_series(item, matrix, parsed.count, &parsed.series[parsed.count], errbuf, errlen);
        parsed.count++;
        if (result != TL_OK)
            goto out;
        parsed.samples += parsed.series[parsed.count - 1].npoints;
    }
out:
    cJSON_Delete(doc);
    if (result != TL_OK) {
        if (result == TL_ENOMEM)
            snprintf(errbuf, errlen, "out of memory parsing a Prometheus answer");
        tl_prom_result_free(&parsed);
        return result;
    }
    *out = parsed;
    return TL_OK;
}

/* ---- Joining the windows of a split range query ---- */

static bool same_labels(const struct tl_prom_series *a, const struct tl_prom_series *b)
{
    if (a->nlabels != b->nlabels)
        return false;
    if (a->labels == NULL || b->labels == NULL)
        return a->nlabels == 0;
    for (size_t i = 0; i < a->nlabels; i++) {
        if (strcmp(a->labels[i].name, b->labels[i].name) != 0 ||
            strcmp(a->labels[i].value, b->labels[i].value) != 0)
            return false;
    }
    return true;
}

/* Moves every series of `next` into `acc`, appending points to a series already there. */
static enum tl_err join(struct tl_prom_result *acc, struct tl_prom_result *next)
{
    size_t original = acc->count;
    struct tl_prom_series *grown =
        realloc(acc->series, (acc->count + next->count) * sizeof(*grown));
    if (!grown && acc->count + next->count > 0)
        return TL_ENOMEM;
    acc->series = grown;
    for (size_t i = 0; i < next->count; i++) {
        struct tl_prom_series *s = &next->series[i];
        struct tl_prom_series *match = NULL;
        for (size_t j = 0; j < original && !match; j++) {
            if (same_labels(&acc->series[j], s))
                match = &acc->series[j];
        }
        if (!match) {
            acc->series[acc->count++] = *s;
            memset(s, 0, sizeof(*s));
            continue;
        }
        struct tl_prom_point *points =
            realloc(match->points, (match->npoints + s->npoints) * sizeof(*points));
        if (!points)
            return TL_ENOMEM;
        /* Windows overlap at their shared edge: skip points not after the last one kept. */
        size_t from = 0;
        while (from < s->npoints && match->npoints > 0 &&
               s->points[from].t <= points[match->npoints - 1].t)
            from++;
        memcpy(points + match->npoints, s->points + from, (s->npoints - from) * sizeof(*points));
        match->points = points;
        match->npoints += s->npoints - from;
    }
    acc->samples = 0;
    for (size_t i = 0; i < acc->count; i++)
        acc->samples += acc->series[i].npoints;
    tl_prom_result_free(next);
    return TL_OK;
}

/* ---- The client ---- */

struct query;

struct tl_prom {
    struct tl_http *http;
    struct ev_loop *loop;
    char *base_url;
    char *auth_header;
    char **headers; /* NULL-terminated, including the auth header and the form content type */
    double timeout;
    size_t max_response;
    unsigned max_attempts;
    struct query *queries; /* running, for cancel on destroy */
    struct tl_prom_stats stats;
};

struct query {
    struct tl_prom *prom;
    struct query *next;
    struct query *prev;
    char *expr; /* URL-encoded query */
    bool range;
    double t; /* instant time, or the current window's start */
    double end;
    double step;
    double window_end;
    double started;
    unsigned attempt;
    struct tl_backoff backoff;
    struct tl_prom_result acc;
    struct tl_http_request *req;
    ev_timer retry;
    tl_prom_done_fn done;
    void *arg;
};

static char *percent_encode(const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t len = strlen(text);
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    char *p = out;
    for (const unsigned char *s = (const unsigned char *)text; *s; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
            *s == '-' || *s == '_' || *s == '.' || *s == '~') {
            *p++ = (char)*s;
        }
        else {
            *p++ = '%';
            *p++ = hex[*s >> 4];
            *p++ = hex[*s & 15];
        }
    }
    *p = '\0';
    return out;
}

static void free_headers(char **headers)
{
    for (size_t i = 0; headers && headers[i]; i++)
        free(headers[i]);
    free(headers);
}

struct tl_prom *tl_prom_create(struct ev_loop *loop, struct tl_http *http,
                               const struct tl_prom_options *opts)
{
    if (!opts->url ||
        (strncmp(opts->url, "http://", 7) != 0 && strncmp(opts->url, "https://", 8) != 0))
        return NULL;
    struct tl_prom *prom = calloc(1, sizeof(*prom));
    if (!prom)
        return NULL;
    prom->http = http;
    prom->loop = loop;
    prom->timeout = opts->timeout > 0 ? opts->timeout : DEFAULT_TIMEOUT;
    prom->max_response = opts->max_response ? opts->max_response : DEFAULT_MAX_RESPONSE;
    prom->max_attempts = opts->max_attempts ? opts->max_attempts : DEFAULT_ATTEMPTS;
    prom->base_url = strdup(opts->url);
    size_t extra = 0;
    while (opts->headers && opts->headers[extra])
        extra++;
    prom->headers = calloc(extra + 3, sizeof(*prom->headers));
    if (!prom->base_url || !prom->headers)
        goto fail;
    size_t n = strlen(prom->base_url);
    while (n > 0 && prom->base_url[n - 1] == '/')
        prom->base_url[--n] = '\0';
    size_t h = 0;
    prom->headers[h++] = strdup("Content-Type: application/x-www-form-urlencoded");
    if (opts->bearer_token) {
        size_t len = strlen(opts->bearer_token) + 32;
        prom->headers[h] = malloc(len);
        if (prom->headers[h])
            snprintf(prom->headers[h], len, "Authorization: Bearer %s", opts->bearer_token);
        h++;
    }
    for (size_t i = 0; i < extra; i++)
        prom->headers[h++] = strdup(opts->headers[i]);
    for (size_t i = 0; i < h; i++) {
        if (!prom->headers[i])
            goto fail;
    }
    return prom;
fail:
    free_headers(prom->headers);
    free(prom->base_url);
    free(prom);
    return NULL;
}

/* Frees a query that is no longer on the list. */
static void query_release(struct query *q)
{
    free(q->expr);
    tl_prom_result_free(&q->acc);
    free(q);
}

static void query_free(struct query *q)
{
    struct tl_prom *prom = q->prom;
    if (q->prev)
        q->prev->next = q->next;
    else
        prom->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    query_release(q);
}

void tl_prom_destroy(struct tl_prom *prom)
{
    if (prom == NULL)
        return;
    struct query *q = prom->queries;
    while (q) {
        struct query *next = q->next;
        tl_http_cancel(q->req);
        ev_timer_stop(prom->loop, &q->retry);
        query_release(q);
        q = next;
    }
    prom->queries = NULL;
    free_headers(prom->headers);
    free(prom->base_url);
    free(prom);
}

static enum tl_err send_attempt(struct query *q);

static void finish(struct query *q, enum tl_err err, const char *message)
{
    struct tl_prom *prom = q->prom;
    prom->stats.seconds += ev_now(prom->loop) - q->started;
    tl_prom_done_fn done = q->done;
    void *arg = q->arg;
    struct tl_prom_result *result = NULL;
    if (err == TL_OK) {
        result = malloc(sizeof(*result));
        if (result) {
            *result = q->acc;
            memset(&q->acc, 0, sizeof(q->acc));
        }
        else {
            err = TL_ENOMEM;
            message = "out of memory";
        }
    }
    else {
        prom->stats.errors++;
    }
    query_free(q);
    done(arg, err, result, message);
}

static void on_retry_timer(struct ev_loop *loop, ev_timer *timer, int revents)
{
    (void)loop;
    (void)revents;
    struct query *q = timer->data;
    enum tl_err err = send_attempt(q);
    if (err != TL_OK)
        finish(q, err, "could not start the Prometheus request");
}

/* Retries what a later attempt may fix: the server's 5xx and 429, and network failures. */
static bool retryable(enum tl_err err, long status)
{
    if (err == TL_ETIMEDOUT || err == TL_EIO)
        return true;
    return err == TL_OK && (status == 429 || status >= 500);
}

static void on_done(void *arg, enum tl_err err, const struct tl_http_response *resp)
{
    struct query *q = arg;
    struct tl_prom *prom = q->prom;
    q->req = NULL;
    prom->stats.bytes += resp ? resp->body_len : 0;
    long status = resp ? resp->status : 0;
    char message[512];
    if (retryable(err, status) && q->attempt < prom->max_attempts) {
        double delay = tl_backoff_next(&q->backoff);
        if (resp && resp->retry_after > delay)
            delay = resp->retry_after;
        TL_WARN("prometheus query failed; retrying", TL_INT("status", status), TL_ERRF(err),
                TL_DBL("delay_s", delay), TL_INT("attempt", q->attempt));
        ev_timer_init(&q->retry, on_retry_timer, delay, 0);
        q->retry.data = q;
        ev_timer_start(prom->loop, &q->retry);
        return;
    }
    if (err != TL_OK || resp == NULL) {
        err = err != TL_OK ? err : TL_EIO;
        snprintf(message, sizeof(message), "prometheus %s: %s", prom->base_url, tl_strerror(err));
        finish(q, err, message);
        return;
    }
    struct tl_prom_result part;
    char perr[400] = "";
    enum tl_err result = tl_prom_parse(resp->body, resp->body_len, &part, perr, sizeof(perr));
    if (result != TL_OK || status != 200) {
        /* Prometheus explains a bad query (400/422) in the same JSON shape as its answers. */
        snprintf(message, sizeof(message), "prometheus %s answered %ld: %s", prom->base_url, status,
                 result != TL_OK ? perr : "unexpected status");
        if (result == TL_OK)
            tl_prom_result_free(&part);
        finish(q, result != TL_OK ? result : TL_EHTTP, message);
        return;
    }
    result = join(&q->acc, &part);
    if (result != TL_OK) {
        tl_prom_result_free(&part);
        finish(q, result, "out of memory joining a Prometheus answer");
        return;
    }
    if (q->range && q->window_end < q->end) {
        q->t = q->window_end;
        q->attempt = 0;
        tl_backoff_reset(&q->backoff);
        result = send_attempt(q);
        if (result != TL_OK)
            finish(q, result, "could not start the Prometheus request");
        return;
    }
    finish(q, TL_OK, NULL);
}

static enum tl_err send_attempt(struct query *q)
{
    struct tl_prom *prom = q->prom;
    char url[1024];
    char params[160];
    if (q->range) {
        q->window_end = fmin(q->end, q->t + q->step * MAX_POINTS_PER_WINDOW);
        snprintf(params, sizeof(params), "&start=%.3f&end=%.3f&step=%.3f", q->t, q->window_end,
                 q->step);
    }
    else if (q->t > 0) {
        snprintf(params, sizeof(params), "&time=%.3f", q->t);
    }
    else {
        params[0] = '\0';
    }
    int n = snprintf(url, sizeof(url), "%s/api/v1/%s", prom->base_url,
                     q->range ? "query_range" : "query");
    if (n < 0 || (size_t)n >= sizeof(url))
        return TL_ETOOBIG;
    size_t body_len = strlen(q->expr) + strlen(params) + 8;
    char *body = malloc(body_len);
    if (!body)
        return TL_ENOMEM;
    snprintf(body, body_len, "query=%s%s", q->expr, params);
    struct tl_http_request_opts opts = {
        .method = "POST",
        .url = url,
        .headers = (const char *const *)prom->headers,
        .body = body,
        .body_len = strlen(body),
        .timeout = prom->timeout,
        .connect_timeout = 10,
        .max_body = prom->max_response,
        .on_done = on_done,
        .arg = q,
    };
    q->attempt++;
    prom->stats.queries++;
    enum tl_err result = tl_http_start(prom->http, &opts, &q->req);
    free(body);
    return result;
}

static enum tl_err start_query(struct tl_prom *prom, const char *query, bool range, double t,
                               double end, double step, tl_prom_done_fn done, void *arg)
{
    struct query *q = calloc(1, sizeof(*q));
    if (!q)
        return TL_ENOMEM;
    q->started = ev_now(prom->loop);
    q->expr = percent_encode(query);
    if (!q->expr) {
        free(q);
        return TL_ENOMEM;
    }
    q->prom = prom;
    q->range = range;
    q->t = t;
    q->end = end;
    q->step = step;
    q->done = done;
    q->arg = arg;
    tl_backoff_init(&q->backoff, 1.0, 30.0, (uint64_t)(uintptr_t)q);
    q->next = prom->queries;
    if (prom->queries)
        prom->queries->prev = q;
    prom->queries = q;
    enum tl_err result = send_attempt(q);
    if (result != TL_OK) {
        query_free(q);
        return result;
    }
    return TL_OK;
}

enum tl_err tl_prom_query(struct tl_prom *prom, const char *query, double t, tl_prom_done_fn done,
                          void *arg)
{
    return start_query(prom, query, false, t, 0, 0, done, arg);
}

enum tl_err tl_prom_query_range(struct tl_prom *prom, const char *query, double start, double end,
                                double step, tl_prom_done_fn done, void *arg)
{
    if (!(step > 0) || !(end >= start))
        return TL_EINVAL;
    return start_query(prom, query, true, start, end, step, done, arg);
}

void tl_prom_stats_get(const struct tl_prom *prom, struct tl_prom_stats *out)
{
    *out = prom->stats;
}
