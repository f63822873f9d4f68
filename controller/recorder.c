#include "recorder.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "log.h"
#include "operator.h"

struct tl_recorder {
    struct tl_operator *op;
    struct tl_event_dedup *dedup;
    struct tl_kube_resource events;
};

struct tl_recorder *tl_recorder_create(struct tl_operator *op, const char *instance)
{
    struct tl_recorder *rec = calloc(1, sizeof(*rec));
    if (!rec)
        return NULL;
    rec->op = op;
    struct tl_event_dedup_config cfg = {.reporting_controller = "tailor.dev/operator",
                                        .reporting_instance = instance};
    if (tl_kube_resource_builtin("events.k8s.io/v1", "events", &rec->events) != TL_OK ||
        tl_event_dedup_create(&cfg, &rec->dedup) != TL_OK) {
        free(rec);
        return NULL;
    }
    return rec;
}

void tl_recorder_destroy(struct tl_recorder *rec)
{
    if (rec == NULL)
        return;
    tl_event_dedup_destroy(rec->dedup);
    free(rec);
}

/* What an update needs if its Event expired meanwhile: the whole Event to create instead. */
struct pending {
    struct tl_recorder *rec;
    char ns[TL_EVENT_NS_MAX];
    cJSON *full;
};

static void on_written(void *arg, struct tl_kube_result *res)
{
    struct pending *p = arg;
    if (res->err == TL_ENOTFOUND && p->full) {
        cJSON *full = p->full;
        p->full = NULL;
        if (tl_kube_create(p->rec->op->client, &p->rec->events, p->ns, full, on_written, p, NULL) ==
            TL_OK) {
            cJSON_Delete(full);
            return;
        }
        cJSON_Delete(full);
    }
    else if (res->err != TL_OK) {
        TL_WARN("event not recorded", TL_STR("request", res->what), TL_INT("code", res->code),
                TL_ERRF(res->err));
    }
    cJSON_Delete(p->full);
    free(p);
}

void tl_recorder_emit(struct tl_recorder *rec, const struct tl_event *event)
{
    if (rec == NULL)
        return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    int64_t now_us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
    struct tl_event_decision d;
    if (tl_event_dedup_observe(rec->dedup, event, now_us, &d) != TL_OK ||
        d.verdict == TL_EVENT_DROP)
        return;
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return;
    p->rec = rec;
    memcpy(p->ns, d.ns, sizeof(p->ns));
    cJSON *body = NULL;
    /* The whole Event is rendered either way: an update whose Event expired creates it. */
    enum tl_err result = tl_event_dedup_render(rec->dedup, event, &d, &p->full);
    if (result == TL_OK && d.verdict == TL_EVENT_CREATE) {
        result = tl_kube_create(rec->op->client, &rec->events, d.ns, p->full, on_written, p, NULL);
        cJSON_Delete(p->full);
        p->full = NULL;
    }
    else if (result == TL_OK) {
        result = tl_event_dedup_render_patch(&d, &body);
        char *text = result == TL_OK ? cJSON_PrintUnformatted(body) : NULL;
        result = text ? tl_kube_patch(rec->op->client, &rec->events, d.ns, d.name, NULL,
                                      TL_KUBE_PATCH_MERGE, text, strlen(text), false, on_written, p,
                                      NULL)
                      : TL_ENOMEM;
        cJSON_free(text);
    }
    cJSON_Delete(body);
    if (result != TL_OK) {
        TL_WARN("event not recorded", TL_STR("reason", event->reason), TL_ERRF(result));
        cJSON_Delete(p->full);
        free(p);
    }
}
