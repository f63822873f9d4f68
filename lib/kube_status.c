#include "kube_status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXT_MESSAGE 512
#define MAX_CAUSES       64

static char *dup_string(const cJSON *item)
{
    return cJSON_IsString(item) && item->valuestring ? strdup(item->valuestring) : NULL;
}

void tl_kube_status_destroy(struct tl_kube_status *status)
{
    if (!status)
        return;
    for (size_t i = 0; i < status->ncauses; i++) {
        free(status->causes[i].field);
        free(status->causes[i].message);
        free(status->causes[i].reason);
    }
    free(status->causes);
    free(status->status);
    free(status->reason);
    free(status->message);
    free(status);
}

static bool parse_causes(struct tl_kube_status *st, const cJSON *causes)
{
    int n = cJSON_GetArraySize(causes);
    if (n <= 0)
        return true;
    if (n > MAX_CAUSES)
        n = MAX_CAUSES;
    st->causes = calloc((size_t)n, sizeof(*st->causes));
    if (!st->causes)
        return false;
    const cJSON *cause;
    cJSON_ArrayForEach(cause, causes)
    {
        if (st->ncauses == (size_t)n)
            break;
        struct tl_kube_status_cause *c = &st->causes[st->ncauses++];
        c->field = dup_string(cJSON_GetObjectItemCaseSensitive(cause, "field"));
        c->message = dup_string(cJSON_GetObjectItemCaseSensitive(cause, "message"));
        c->reason = dup_string(cJSON_GetObjectItemCaseSensitive(cause, "reason"));
    }
    return true;
}

struct tl_kube_status *tl_kube_status_from_json(const cJSON *object, long http_code)
{
    struct tl_kube_status *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->code = (int)http_code;
    st->retry_after = -1;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(object, "kind");
    if (!cJSON_IsObject(object) || !cJSON_IsString(kind) ||
        strcmp(kind->valuestring, "Status") != 0)
        return st;
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(object, "code");
    if (cJSON_IsNumber(code) && code->valuedouble >= 100 && code->valuedouble < 600)
        st->code = code->valueint;
    st->status = dup_string(cJSON_GetObjectItemCaseSensitive(object, "status"));
    st->reason = dup_string(cJSON_GetObjectItemCaseSensitive(object, "reason"));
    st->message = dup_string(cJSON_GetObjectItemCaseSensitive(object, "message"));
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(object, "details");
    const cJSON *retry = cJSON_GetObjectItemCaseSensitive(details, "retryAfterSeconds");
    if (cJSON_IsNumber(retry) && retry->valuedouble >= 0)
        st->retry_after = retry->valuedouble;
    if (!parse_causes(st, cJSON_GetObjectItemCaseSensitive(details, "causes"))) {
        tl_kube_status_destroy(st);
        return NULL;
    }
    return st;
}

struct tl_kube_status *tl_kube_status_parse(const char *body, size_t len, long http_code)
{
    cJSON *root = len > 0 ? cJSON_ParseWithLength(body, len) : NULL;
    struct tl_kube_status *st = tl_kube_status_from_json(root, http_code);
    cJSON_Delete(root);
    if (!st || st->message || st->reason || len == 0)
        return st;
    /* Not a Status: keep the start of the text so the user sees what the proxy said. */
    size_t n = 0;
    while (n < len && n < MAX_TEXT_MESSAGE && body[n] != '\n' && body[n] != '\r' && body[n])
        n++;
    st->message = strndup(body, n);
    if (!st->message) {
        tl_kube_status_destroy(st);
        return NULL;
    }
    return st;
}

enum tl_err tl_kube_status_err(long http_code)
{
    if (http_code >= 200 && http_code < 300)
        return TL_OK;
    switch (http_code) {
    case 400:
    case 422:
        return TL_EINVAL;
    case 401:
    case 403:
        return TL_EAUTH;
    case 404:
        return TL_ENOTFOUND;
    case 409:
        return TL_ECONFLICT;
    case 410:
        return TL_EGONE;
    case 413:
        return TL_ETOOBIG;
    case 408:
    case 504:
        return TL_ETIMEDOUT;
    default:
        return TL_EHTTP;
    }
}

bool tl_kube_status_retryable(long http_code)
{
    return http_code == 429 || http_code == 408 ||
           (http_code >= 500 && http_code < 600 && http_code != 501);
}

bool tl_kube_status_is_gone(const struct tl_kube_status *status)
{
    return status &&
           (status->code == 410 || (status->reason && (!strcmp(status->reason, "Gone") ||
                                                       !strcmp(status->reason, "Expired"))));
}

void tl_kube_status_format(const struct tl_kube_status *status, char *buf, size_t len)
{
    if (len == 0)
        return;
    int n = snprintf(buf, len, "%d %s: %s", status->code, status->reason ? status->reason : "Error",
                     status->message ? status->message : "(no message)");
    for (size_t i = 0; i < status->ncauses && n >= 0 && (size_t)n < len; i++) {
        const struct tl_kube_status_cause *c = &status->causes[i];
        if (!c->field || (status->message && strstr(status->message, c->field)))
            continue; /* the API server usually repeats the causes in its message already */
        int w = snprintf(buf + n, len - (size_t)n, "; field %s: %s", c->field,
                         c->message ? c->message : "invalid");
        if (w < 0)
            break;
        n += w;
    }
}
