#include "event_dedup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* For tl_microtime_format: Events and Leases share the MicroTime wire format. */
#include "leader.h"
#include "ratelimit.h"

#define FIELD_MAX  128 /* reason, action, reportingInstance */
#define AGG_MAX    16
#define SEP        '\x1f' /* between key fields; no Kubernetes name contains it */
#define AGG_PREFIX "(combined from similar events): "

/* --- a bounded LRU map from string keys to a small record ------------------------------------ */

struct series {
    uint64_t name_hash; /* with the object name, gives the Event's metadata.name */
    int32_t count;
    int64_t first_us;
    int64_t last_us;
};

/* The distinct notes seen for one object+reason, most recent AGG_MAX of them, as hashes. */
struct notes {
    uint64_t hashes[AGG_MAX];
    unsigned n;
    unsigned oldest;
    int64_t last_us;
};

struct node {
    struct node *chain;
    struct node *prev; /* towards the most recently used */
    struct node *next;
    uint64_t hash;
    union {
        struct series series;
        struct notes notes;
        struct tl_token_bucket bucket;
    } v;
    char key[];
};

struct lru {
    struct node **buckets;
    size_t nbuckets;
    size_t count;
    size_t cap;
    struct node *head; /* most recently used */
    struct node *tail;
};

static enum tl_err lru_init(struct lru *lru, size_t cap)
{
    memset(lru, 0, sizeof(*lru));
    lru->cap = cap;
    lru->nbuckets = 16;
    while (lru->nbuckets < cap && lru->nbuckets < ((size_t)1 << 20))
        lru->nbuckets *= 2;
    lru->buckets = calloc(lru->nbuckets, sizeof(struct node *));
    return lru->buckets ? TL_OK : TL_ENOMEM;
}

static void lru_free(struct lru *lru)
{
    struct node *n = lru->head;
    while (n) {
        struct node *next = n->next;
        free(n);
        n = next;
    }
    free(lru->buckets);
    lru->buckets = NULL;
}

static void list_unlink(struct lru *lru, struct node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        lru->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        lru->tail = n->prev;
    n->prev = n->next = NULL;
}

static void list_push_front(struct lru *lru, struct node *n)
{
    n->prev = NULL;
    n->next = lru->head;
    if (lru->head)
        lru->head->prev = n;
    else
        lru->tail = n;
    lru->head = n;
}

/* FNV-1a, 64-bit (Fowler, Noll, Vo). */
static uint64_t fnv1a(const void *data, size_t len, uint64_t h)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL

/* Finds `key` and makes it the most recently used. */
static struct node *lru_get(struct lru *lru, const char *key, uint64_t hash)
{
    for (struct node *n = lru->buckets[hash & (lru->nbuckets - 1)]; n; n = n->chain) {
        if (n->hash == hash && strcmp(n->key, key) == 0) {
            list_unlink(lru, n);
            list_push_front(lru, n);
            return n;
        }
    }
    return NULL;
}

static void lru_remove(struct lru *lru, struct node *n)
{
    struct node **link = &lru->buckets[n->hash & (lru->nbuckets - 1)];
    while (*link != n)
        link = &(*link)->chain;
    *link = n->chain;
    list_unlink(lru, n);
    lru->count--;
    free(n);
}

/* Adds `key` (not present) as the most recently used, evicting the least recently used at cap. */
static struct node *lru_add(struct lru *lru, const char *key, uint64_t hash)
{
    size_t len = strlen(key);
    struct node *n = calloc(1, sizeof(*n) + len + 1);
    if (!n)
        return NULL;
    if (lru->count >= lru->cap && lru->tail)
        lru_remove(lru, lru->tail);
    memcpy(n->key, key, len + 1);
    n->hash = hash;
    size_t slot = hash & (lru->nbuckets - 1);
    n->chain = lru->buckets[slot];
    lru->buckets[slot] = n;
    list_push_front(lru, n);
    lru->count++;
    return n;
}

/* --- keys ------------------------------------------------------------------------------------ */

struct part {
    const char *s;
    size_t len;
};

static struct part str_part(const char *s)
{
    return (struct part){s ? s : "", s ? strlen(s) : 0};
}

/* Joins parts with SEP into a new string; caller frees. */
static char *join(const struct part *parts, size_t nparts)
{
    size_t total = 1;
    for (size_t i = 0; i < nparts; i++)
        total += parts[i].len + 1;
    char *key = malloc(total);
    if (!key)
        return NULL;
    char *p = key;
    for (size_t i = 0; i < nparts; i++) {
        if (i > 0)
            *p++ = SEP;
        memcpy(p, parts[i].s, parts[i].len);
        p += parts[i].len;
    }
    *p = '\0';
    return key;
}

/* --- the correlator -------------------------------------------------------------------------- */

struct tl_event_dedup {
    struct tl_event_dedup_config cfg;
    char controller[FIELD_MAX + 1];
    char instance[FIELD_MAX + 1];
    struct lru series;
    struct lru notes;
    struct lru spam;
    struct tl_event_dedup_stats stats;
};

enum tl_err tl_event_dedup_create(const struct tl_event_dedup_config *config,
                                  struct tl_event_dedup **out)
{
    enum tl_err result = TL_EINVAL;
    struct tl_event_dedup *d = NULL;
    if (!config || !config->reporting_instance || !*config->reporting_instance ||
        strlen(config->reporting_instance) > FIELD_MAX || config->aggregate_max > AGG_MAX)
        goto out;
    const char *controller = config->reporting_controller && *config->reporting_controller
                                 ? config->reporting_controller
                                 : "tailor";
    if (strlen(controller) > FIELD_MAX)
        goto out;
    result = TL_ENOMEM;
    d = calloc(1, sizeof(*d));
    if (!d)
        goto out;
    d->cfg = *config;
    memcpy(d->controller, controller, strlen(controller) + 1);
    memcpy(d->instance, config->reporting_instance, strlen(config->reporting_instance) + 1);
    d->cfg.reporting_controller = d->controller;
    d->cfg.reporting_instance = d->instance;
    if (d->cfg.cache_size == 0)
        d->cfg.cache_size = 4096;
    if (d->cfg.spam_burst <= 0)
        d->cfg.spam_burst = 25;
    if (d->cfg.spam_qps <= 0)
        d->cfg.spam_qps = 1.0 / 300;
    if (d->cfg.series_window <= 0)
        d->cfg.series_window = 360;
    if (d->cfg.aggregate_max == 0)
        d->cfg.aggregate_max = 10;
    if (d->cfg.aggregate_window <= 0)
        d->cfg.aggregate_window = 600;
    if ((result = lru_init(&d->series, d->cfg.cache_size)) ||
        (result = lru_init(&d->notes, d->cfg.cache_size)) ||
        (result = lru_init(&d->spam, d->cfg.cache_size)))
        goto out;
    *out = d;
    d = NULL;
    result = TL_OK;
out:
    tl_event_dedup_destroy(d);
    return result;
}

void tl_event_dedup_destroy(struct tl_event_dedup *d)
{
    if (!d)
        return;
    lru_free(&d->series);
    lru_free(&d->notes);
    lru_free(&d->spam);
    free(d);
}

/* The length of `note` cut to the API's limit without splitting a UTF-8 sequence. */
static size_t note_len(const char *note)
{
    size_t len = note ? strnlen(note, TL_EVENT_NOTE_MAX + 1) : 0;
    if (len <= TL_EVENT_NOTE_MAX)
        return len;
    len = TL_EVENT_NOTE_MAX;
    while (len > 0 && ((unsigned char)note[len] & 0xC0) == 0x80)
        len--;
    return len;
}

static bool valid_field(const char *s)
{
    return s && *s && strnlen(s, FIELD_MAX + 1) <= FIELD_MAX;
}

static enum tl_err check_event(const struct tl_event *ev)
{
    if (!ev->regarding.kind || !*ev->regarding.kind || !ev->regarding.name ||
        !*ev->regarding.name || strnlen(ev->regarding.name, 254) > 253)
        return TL_EINVAL;
    if (ev->regarding.ns && strnlen(ev->regarding.ns, TL_EVENT_NS_MAX) >= TL_EVENT_NS_MAX)
        return TL_EINVAL;
    if (!valid_field(ev->reason) || !valid_field(ev->action))
        return TL_EINVAL;
    if (ev->type != TL_EVENT_NORMAL && ev->type != TL_EVENT_WARNING)
        return TL_EINVAL;
    return TL_OK;
}

/*
 * metadata.name is "<object name>.<hex>", the shape client-go's recorders use, but the hex is a
 * hash of the series key and its first time rather than the clock alone, so two different events
 * about one object in the same instant do not collide. The object name is cut so the whole stays
 * a DNS subdomain of at most 253 bytes, and a cut never leaves '-' or '.' before the dot.
 */
static void event_name(const char *object, uint64_t name_hash, char *buf)
{
    size_t len = strlen(object);
    if (len > TL_EVENT_NAME_MAX - 1 - 17) {
        len = TL_EVENT_NAME_MAX - 1 - 17;
        while (len > 1 && (object[len - 1] == '-' || object[len - 1] == '.'))
            len--;
    }
    /* Cannot truncate: len <= 236, plus 17 and the NUL fit TL_EVENT_NAME_MAX. */
    snprintf(buf, TL_EVENT_NAME_MAX, "%.*s.%016llx", (int)len, object,
             (unsigned long long)name_hash);
}

/*
 * client-go's EventAggregate: when one object sees aggregate_max different notes for the same
 * reason and action within aggregate_window, they stop being separate Events and fold into one
 * combined Event keyed without the note. Returns whether this occurrence is folded.
 */
static enum tl_err aggregate(struct tl_event_dedup *d, const char *agg_key, uint64_t note_hash,
                             int64_t now_us, bool *folded)
{
    uint64_t hash = fnv1a(agg_key, strlen(agg_key), FNV_OFFSET);
    struct node *n = lru_get(&d->notes, agg_key, hash);
    if (!n && !(n = lru_add(&d->notes, agg_key, hash)))
        return TL_ENOMEM;
    struct notes *notes = &n->v.notes;
    if (notes->n > 0 && (double)(now_us - notes->last_us) / 1e6 > d->cfg.aggregate_window)
        memset(notes, 0, sizeof(*notes));
    notes->last_us = now_us;
    bool known = false;
    for (unsigned i = 0; i < notes->n; i++)
        known = known || notes->hashes[i] == note_hash;
    if (!known) {
        notes->hashes[(notes->oldest + notes->n) % AGG_MAX] = note_hash;
        notes->n++;
    }
    *folded = notes->n >= d->cfg.aggregate_max;
    if (*folded) {
        /* Keep the set below the threshold, so each further new note folds in as well. */
        notes->oldest = (notes->oldest + 1) % AGG_MAX;
        notes->n--;
    }
    return TL_OK;
}

/* client-go's EventSourceObjectSpamFilter: a token bucket per reporter and object. */
static enum tl_err spam_allows(struct tl_event_dedup *d, const char *spam_key, int64_t now_us,
                               bool *allowed)
{
    double now = (double)now_us / 1e6;
    uint64_t hash = fnv1a(spam_key, strlen(spam_key), FNV_OFFSET);
    struct node *n = lru_get(&d->spam, spam_key, hash);
    if (!n) {
        if (!(n = lru_add(&d->spam, spam_key, hash)))
            return TL_ENOMEM;
        tl_token_bucket_init(&n->v.bucket, d->cfg.spam_qps, d->cfg.spam_burst, now);
    }
    *allowed = tl_token_bucket_take(&n->v.bucket, now) <= 0;
    return TL_OK;
}

/*
 * The order is client-go's EventCorrelate: aggregate, then count the occurrence in its series,
 * then ask the spam filter. A dropped occurrence is still counted, so the next one that gets
 * through carries the true count.
 */
enum tl_err tl_event_dedup_observe(struct tl_event_dedup *d, const struct tl_event *event,
                                   int64_t now_us, struct tl_event_decision *out)
{
    enum tl_err result = check_event(event);
    char *object_key = NULL;
    char *agg_key = NULL;
    char *series_key = NULL;
    if (result != TL_OK)
        return result;

    result = TL_ENOMEM;
    struct part object[] = {
        str_part(d->controller),
        str_part(d->instance),
        str_part(event->regarding.api_version),
        str_part(event->regarding.kind),
        str_part(event->regarding.ns),
        str_part(event->regarding.name),
        str_part(event->regarding.uid),
    };
    size_t nobject = sizeof(object) / sizeof(object[0]);
    if (!(object_key = join(object, nobject)))
        goto out;
    struct part what[] = {
        {object_key, strlen(object_key)},
        str_part(event->type == TL_EVENT_WARNING ? "Warning" : "Normal"),
        str_part(event->reason),
        str_part(event->action),
    };
    if (!(agg_key = join(what, sizeof(what) / sizeof(what[0]))))
        goto out;
    size_t nlen = note_len(event->note);
    const char *note = event->note ? event->note : "";
    bool folded = false;
    if ((result = aggregate(d, agg_key, fnv1a(note, nlen, FNV_OFFSET), now_us, &folded)))
        goto out;
    /* A combined event is keyed without its note: one more field than that marks a plain one. */
    result = TL_ENOMEM;
    struct part full[] = {{agg_key, strlen(agg_key)}, {note, nlen}};
    if (!(series_key = folded ? join(full, 1) : join(full, 2)))
        goto out;

    uint64_t hash = fnv1a(series_key, strlen(series_key), FNV_OFFSET);
    struct node *n = lru_get(&d->series, series_key, hash);
    bool repeat = n && (now_us < n->v.series.last_us ||
                        (double)(now_us - n->v.series.last_us) / 1e6 <= d->cfg.series_window);
    if (!n && !(n = lru_add(&d->series, series_key, hash)))
        goto out;
    struct series *s = &n->v.series;
    if (repeat) {
        if (s->count < INT32_MAX)
            s->count++;
        if (now_us > s->last_us)
            s->last_us = now_us;
    }
    else {
        s->first_us = s->last_us = now_us;
        s->count = 1;
        s->name_hash = fnv1a(&now_us, sizeof(now_us), hash);
    }

    bool allowed = false;
    if ((result = spam_allows(d, object_key, now_us, &allowed)))
        goto out;

    memset(out, 0, sizeof(*out));
    out->verdict = !allowed ? TL_EVENT_DROP : repeat ? TL_EVENT_UPDATE : TL_EVENT_CREATE;
    event_name(event->regarding.name, s->name_hash, out->name);
    snprintf(out->ns, sizeof(out->ns), "%s",
             event->regarding.ns && *event->regarding.ns ? event->regarding.ns : "default");
    out->count = s->count;
    out->event_time_us = s->first_us;
    out->last_observed_us = s->last_us;
    out->aggregated = folded;
    if (folded)
        d->stats.aggregated++;
    if (out->verdict == TL_EVENT_DROP)
        d->stats.dropped++;
    else if (out->verdict == TL_EVENT_UPDATE)
        d->stats.updated++;
    else
        d->stats.created++;
    result = TL_OK;
out:
    free(object_key);
    free(agg_key);
    free(series_key);
    return result;
}

/* --- rendering ------------------------------------------------------------------------------- */

struct times {
    char event_time[TL_MICROTIME_LEN];
    char last_observed[TL_MICROTIME_LEN];
};

static enum tl_err format_times(const struct tl_event_decision *dec, struct times *t)
{
    enum tl_err result =
        tl_microtime_format(dec->event_time_us, t->event_time, sizeof(t->event_time));
    if (result == TL_OK)
        result =
            tl_microtime_format(dec->last_observed_us, t->last_observed, sizeof(t->last_observed));
    return result;
}

static bool add_series(cJSON *obj, const struct tl_event_decision *dec, const struct times *t)
{
    cJSON *series = cJSON_AddObjectToObject(obj, "series");
    return series && cJSON_AddNumberToObject(series, "count", dec->count) &&
           cJSON_AddStringToObject(series, "lastObservedTime", t->last_observed);
}

static bool add_optional(cJSON *obj, const char *name, const char *value)
{
    return !value || !*value || cJSON_AddStringToObject(obj, name, value);
}

/* The note as written: a combined event says so, and the whole still fits the limit. */
static char *render_note(const struct tl_event *ev, bool aggregated)
{
    const char *note = ev->note ? ev->note : "";
    const char *prefix = aggregated ? AGG_PREFIX : "";
    size_t plen = strlen(prefix);
    size_t total = plen + strlen(note);
    char *buf = malloc(total + 1);
    if (!buf)
        return NULL;
    memcpy(buf, prefix, plen);
    memcpy(buf + plen, note, total - plen + 1);
    buf[note_len(buf)] = '\0';
    return buf;
}

enum tl_err tl_event_dedup_render(const struct tl_event_dedup *d, const struct tl_event *event,
                                  const struct tl_event_decision *decision, cJSON **out)
{
    struct times times;
    enum tl_err result = check_event(event);
    cJSON *ev = NULL;
    char *note = NULL;
    if (result == TL_OK)
        result = format_times(decision, &times);
    if (result != TL_OK)
        return result;
    result = TL_ENOMEM;
    cJSON *meta = NULL;
    cJSON *regarding = NULL;
    if (!(ev = cJSON_CreateObject()) || !(note = render_note(event, decision->aggregated)))
        goto out;
    if (!cJSON_AddStringToObject(ev, "apiVersion", "events.k8s.io/v1") ||
        !cJSON_AddStringToObject(ev, "kind", "Event") ||
        !(meta = cJSON_AddObjectToObject(ev, "metadata")) ||
        !cJSON_AddStringToObject(meta, "name", decision->name) ||
        !cJSON_AddStringToObject(meta, "namespace", decision->ns) ||
        !cJSON_AddStringToObject(ev, "eventTime", times.event_time) ||
        (decision->count > 1 && !add_series(ev, decision, &times)) ||
        !cJSON_AddStringToObject(ev, "reportingController", d->controller) ||
        !cJSON_AddStringToObject(ev, "reportingInstance", d->instance) ||
        !cJSON_AddStringToObject(ev, "action", event->action) ||
        !cJSON_AddStringToObject(ev, "reason", event->reason) ||
        !cJSON_AddStringToObject(ev, "note", note) ||
        !cJSON_AddStringToObject(ev, "type",
                                 event->type == TL_EVENT_WARNING ? "Warning" : "Normal") ||
        !(regarding = cJSON_AddObjectToObject(ev, "regarding")) ||
        !add_optional(regarding, "apiVersion", event->regarding.api_version) ||
        !cJSON_AddStringToObject(regarding, "kind", event->regarding.kind) ||
        !add_optional(regarding, "namespace", event->regarding.ns) ||
        !cJSON_AddStringToObject(regarding, "name", event->regarding.name) ||
        !add_optional(regarding, "uid", event->regarding.uid))
        goto out;
    *out = ev;
    ev = NULL;
    result = TL_OK;
out:
    cJSON_Delete(ev);
    free(note);
    return result;
}

enum tl_err tl_event_dedup_render_patch(const struct tl_event_decision *decision, cJSON **out)
{
    struct times times;
    enum tl_err result = format_times(decision, &times);
    if (result != TL_OK)
        return result;
    cJSON *patch = cJSON_CreateObject();
    if (!patch || !add_series(patch, decision, &times)) {
        cJSON_Delete(patch);
        return TL_ENOMEM;
    }
    *out = patch;
    return TL_OK;
}

size_t tl_event_dedup_size(const struct tl_event_dedup *d)
{
    return d->series.count;
}

void tl_event_dedup_stats_get(const struct tl_event_dedup *d, struct tl_event_dedup_stats *out)
{
    *out = d->stats;
}
