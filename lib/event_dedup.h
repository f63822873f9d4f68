/* event_dedup: folds repeated Events into series, drops spam, renders events.k8s.io/v1 JSON. */
#ifndef TL_EVENT_DEDUP_H
#define TL_EVENT_DEDUP_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define TL_EVENT_NOTE_MAX 1024 /* bytes; the API server refuses a longer note */
#define TL_EVENT_NAME_MAX 254  /* a DNS subdomain (253) and its NUL */
#define TL_EVENT_NS_MAX   64   /* a DNS label (63) and its NUL */

enum tl_event_type { TL_EVENT_NORMAL, TL_EVENT_WARNING };

/* An Event as the controller records it. Every string is borrowed for the call. */
struct tl_event {
    struct {
        const char *api_version; /* e.g. "apps/v1"; may be NULL */
        const char *kind;        /* required */
        const char *ns;          /* NULL or "" for a cluster-scoped object */
        const char *name;        /* required */
        const char *uid;         /* may be NULL */
    } regarding;
    enum tl_event_type type;
    const char *reason; /* required, at most 128 bytes, e.g. "Resized" */
    const char *action; /* required, at most 128 bytes, e.g. "Patch" */
    const char *note;   /* may be NULL; cut to TL_EVENT_NOTE_MAX at a UTF-8 boundary */
};

/*
 * Zero fields take client-go's EventCorrelator defaults. The reporting pair is fixed per process,
 * so it lives here rather than in each event.
 */
struct tl_event_dedup_config {
    const char *reporting_controller; /* copied; default "tailor" */
    const char *reporting_instance;   /* required (e.g. the pod name); copied; <= 128 bytes */
    size_t cache_size;                /* entries per cache; default 4096 */
    double spam_burst;                /* events per object before throttling; default 25 */
    double spam_qps;                  /* refill per object; default 1/300 (one per 5 min) */
    double series_window;    /* seconds: a repeat later than this starts a new Event; default 360 */
    unsigned aggregate_max;  /* distinct notes of one reason before they are combined; default 10,
                                at most 16 */
    double aggregate_window; /* seconds those distinct notes must fall in; default 600 */
};

enum tl_event_verdict {
    TL_EVENT_CREATE, /* POST the body of tl_event_dedup_render */
    TL_EVENT_UPDATE, /* PATCH (merge patch) the body of tl_event_dedup_render_patch */
    TL_EVENT_DROP,   /* spam: write nothing; the occurrence still counts in the series */
};

struct tl_event_decision {
    enum tl_event_verdict verdict;
    char name[TL_EVENT_NAME_MAX]; /* metadata.name: "<object name>.<16 hex digits>" */
    char ns[TL_EVENT_NS_MAX];     /* metadata.namespace; "default" for cluster-scoped objects */
    int32_t count;                /* occurrences in this series, this one included */
    int64_t event_time_us;        /* first occurrence, Unix microseconds (eventTime) */
    int64_t last_observed_us;     /* this occurrence (series.lastObservedTime) */
    bool aggregated;              /* stands for several similar events with different notes */
};

struct tl_event_dedup_stats {
    uint64_t created;
    uint64_t updated;
    uint64_t dropped;
    uint64_t aggregated; /* observations folded into a combined event */
};

struct tl_event_dedup;

/*
 * TL_EINVAL without a reporting instance (or one past 128 bytes) or with aggregate_max past 16;
 * TL_ENOMEM. *out written only on success; caller frees with tl_event_dedup_destroy.
 */
enum tl_err tl_event_dedup_create(const struct tl_event_dedup_config *config,
                                  struct tl_event_dedup **out);

/* NULL is a no-op. */
void tl_event_dedup_destroy(struct tl_event_dedup *d);

/*
 * Decides what to write for `event` occurring at `now_us` (wall clock, Unix microseconds).
 * If a PATCH of an UPDATE answers 404 (the Event expired, or its CREATE was dropped or failed),
 * POST tl_event_dedup_render of the same decision instead: it carries the series.
 * TL_EINVAL for a missing kind, name, reason or action, or a field past its API limit;
 * TL_ENOMEM. *out written only on success (DROP is a success).
 */
enum tl_err tl_event_dedup_observe(struct tl_event_dedup *d, const struct tl_event *event,
                                   int64_t now_us, struct tl_event_decision *out);

/*
 * Renders the events.k8s.io/v1 Event for `decision` (borrowed, from observe of the same `event`),
 * with `series` when count > 1. TL_EINVAL as observe, TL_ERANGE for a time outside years 1..9999,
 * TL_ENOMEM. *out written only on success; caller frees with cJSON_Delete.
 */
enum tl_err tl_event_dedup_render(const struct tl_event_dedup *d, const struct tl_event *event,
                                  const struct tl_event_decision *decision, cJSON **out);

/*
 * Renders the merge patch of an UPDATE: {"series":{"count":N,"lastObservedTime":"..."}}. Only the
 * series may change: events.k8s.io/v1 makes every other field of an Event immutable. Send it as
 * application/merge-patch+json. TL_ERANGE, TL_ENOMEM; *out written only on success; caller frees
 * with cJSON_Delete.
 */
enum tl_err tl_event_dedup_render_patch(const struct tl_event_decision *decision, cJSON **out);

/* Entries in the series cache (bounded by cache_size). */
size_t tl_event_dedup_size(const struct tl_event_dedup *d);

void tl_event_dedup_stats_get(const struct tl_event_dedup *d, struct tl_event_dedup_stats *out);

#endif
