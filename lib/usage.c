#include "usage.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIN_SLOTS     16
#define MAX_OOM_KILLS 1000000.0

struct centry {
    char *workload; /* one allocation: "<workload>\0<container>\0" */
    const char *container;
    enum tl_workload_kind kind;
    uint64_t hash;
    double throttled; /* this facts answer's CFS periods, summed over pods */
    double periods;
    struct tl_container_usage usage;
};

/* One namespace: its coverage and an open-addressing table of its containers. */
struct nsrec {
    char *name;
    double covered_until;
    double since;            /* start of the window of the fold that began this record */
    struct centry **entries; /* stable pointers, handed out by tl_usage_store_get */
    size_t count;
    size_t cap;
    uint32_t *slots; /* 0: empty, else index into entries + 1 */
    size_t nslots;   /* a power of two, at least twice count */
};

struct tl_usage_store {
    struct nsrec **namespaces; /* sorted by name */
    size_t count;
    size_t cap;
};

/* ---- Keys ---- */

/* FNV-1a over the kind, the workload and the container. */
static uint64_t key_hash(enum tl_workload_kind kind, const char *workload, const char *container)
{
    uint64_t h = 1469598103934665603ULL;
    h = (h ^ (uint64_t)kind) * 1099511628211ULL;
    for (const unsigned char *p = (const unsigned char *)workload; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    h = (h ^ 0xffU) * 1099511628211ULL;
    for (const unsigned char *p = (const unsigned char *)container; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static bool key_equal(const struct centry *e, enum tl_workload_kind kind, const char *workload,
                      const char *container)
{
    return e->kind == kind && strcmp(e->workload, workload) == 0 &&
           strcmp(e->container, container) == 0;
}

/* ---- Namespaces ---- */

static size_t ns_lower_bound(const struct tl_usage_store *store, const char *ns)
{
    size_t lo = 0;
    size_t hi = store->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(store->namespaces[mid]->name, ns) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct nsrec *ns_find(const struct tl_usage_store *store, const char *ns)
{
    size_t i = ns_lower_bound(store, ns);
    if (i < store->count && strcmp(store->namespaces[i]->name, ns) == 0)
        return store->namespaces[i];
    return NULL;
}

static void entry_free(struct centry *e)
{
    if (e == NULL)
        return;
    tl_histogram_free(&e->usage.cpu);
    tl_histogram_free(&e->usage.memory);
    free(e->workload);
    free(e);
}

static void ns_free(struct nsrec *rec)
{
    if (rec == NULL)
        return;
    for (size_t i = 0; i < rec->count; i++)
        entry_free(rec->entries[i]);
    free(rec->entries);
    free(rec->slots);
    free(rec->name);
    free(rec);
}

static struct nsrec *ns_new(const char *ns)
{
    struct nsrec *rec = calloc(1, sizeof(*rec));
    if (!rec)
        return NULL;
    rec->name = strdup(ns);
    if (!rec->name) {
        free(rec);
        return NULL;
    }
    return rec;
}

/* Puts rec in the store, replacing (and freeing) the namespace's record if it has one. */
static enum tl_err ns_put(struct tl_usage_store *store, struct nsrec *rec)
{
    size_t i = ns_lower_bound(store, rec->name);
    if (i < store->count && strcmp(store->namespaces[i]->name, rec->name) == 0) {
        ns_free(store->namespaces[i]);
        store->namespaces[i] = rec;
        return TL_OK;
    }
    if (store->count == store->cap) {
        size_t cap = store->cap ? store->cap * 2 : 8;
        struct nsrec **grown = realloc(store->namespaces, cap * sizeof(struct nsrec *));
        if (!grown)
            return TL_ENOMEM;
        store->namespaces = grown;
        store->cap = cap;
    }
    memmove(store->namespaces + i + 1, store->namespaces + i,
            (store->count - i) * sizeof(struct nsrec *));
    store->namespaces[i] = rec;
    store->count++;
    return TL_OK;
}

/* ---- Containers of a namespace ---- */

static struct centry *entry_find(const struct nsrec *rec, enum tl_workload_kind kind,
                                 const char *workload, const char *container)
{
    if (rec == NULL || rec->nslots == 0)
        return NULL;
    uint64_t h = key_hash(kind, workload, container);
    for (size_t i = h & (rec->nslots - 1);; i = (i + 1) & (rec->nslots - 1)) {
        uint32_t slot = rec->slots[i];
        if (slot == 0)
            return NULL;
        struct centry *e = rec->entries[slot - 1];
        if (e->hash == h && key_equal(e, kind, workload, container))
            return e;
    }
}

static void slot_insert(uint32_t *slots, size_t nslots, uint64_t hash, uint32_t value)
{
    size_t i = hash & (nslots - 1);
    while (slots[i] != 0)
        i = (i + 1) & (nslots - 1);
    slots[i] = value;
}

static enum tl_err grow(struct nsrec *rec)
{
    if (rec->count == rec->cap) {
        size_t cap = rec->cap ? rec->cap * 2 : 8;
        struct centry **grown = realloc(rec->entries, cap * sizeof(struct centry *));
        if (!grown)
            return TL_ENOMEM;
        rec->entries = grown;
        rec->cap = cap;
    }
    if ((rec->count + 1) * 2 <= rec->nslots)
        return TL_OK;
    size_t nslots = rec->nslots ? rec->nslots * 2 : MIN_SLOTS;
    uint32_t *slots = calloc(nslots, sizeof(*slots));
    if (!slots)
        return TL_ENOMEM;
    for (size_t i = 0; i < rec->count; i++)
        slot_insert(slots, nslots, rec->entries[i]->hash, (uint32_t)(i + 1));
    free(rec->slots);
    rec->slots = slots;
    rec->nslots = nslots;
    return TL_OK;
}

static struct centry *entry_get_or_add(struct nsrec *rec, enum tl_workload_kind kind,
                                       const char *workload, const char *container)
{
    struct centry *e = entry_find(rec, kind, workload, container);
    if (e)
        return e;
    if (rec->count >= UINT32_MAX - 1 || grow(rec) != TL_OK)
        return NULL;
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    size_t wlen = strlen(workload);
    size_t clen = strlen(container);
    e->workload = malloc(wlen + clen + 2);
    if (!e->workload) {
        free(e);
        return NULL;
    }
    memcpy(e->workload, workload, wlen + 1);
    memcpy(e->workload + wlen + 1, container, clen + 1);
    e->container = e->workload + wlen + 1;
    e->kind = kind;
    e->hash = key_hash(kind, workload, container);
    tl_histogram_init(&e->usage.cpu, &tl_histogram_cpu_defaults);
    tl_histogram_init(&e->usage.memory, &tl_histogram_memory_defaults);
    e->usage.throttled_ratio = -1;
    rec->entries[rec->count++] = e;
    slot_insert(rec->slots, rec->nslots, e->hash, (uint32_t)rec->count);
    return e;
}

/* ---- The store ---- */

struct tl_usage_store *tl_usage_store_create(void)
{
    return calloc(1, sizeof(struct tl_usage_store));
}

void tl_usage_store_destroy(struct tl_usage_store *store)
{
    if (store == NULL)
        return;
    for (size_t i = 0; i < store->count; i++)
        ns_free(store->namespaces[i]);
    free(store->namespaces);
    free(store);
}

const struct tl_container_usage *tl_usage_store_get(const struct tl_usage_store *store,
                                                    const char *ns, enum tl_workload_kind kind,
                                                    const char *workload, const char *container)
{
    struct centry *e = entry_find(ns_find(store, ns), kind, workload, container);
    return e ? &e->usage : NULL;
}

bool tl_usage_store_usage(const struct tl_usage_store *store, const char *ns,
                          enum tl_workload_kind kind, const char *workload, const char *container,
                          double now, double window, struct tl_usage *out)
{
    const struct tl_container_usage *u = tl_usage_store_get(store, ns, kind, workload, container);
    if (u == NULL)
        return false;
    *out = (struct tl_usage){
        .cpu = &u->cpu,
        .memory = &u->memory,
        .oom_kills = u->oom_kills,
        .oom_memory = u->oom_memory,
        .throttled_ratio = u->throttled_ratio,
        .now = now,
        .window = window,
    };
    return true;
}

size_t tl_usage_store_each_container(const struct tl_usage_store *store, const char *ns,
                                     enum tl_workload_kind kind, const char *workload,
                                     tl_usage_container_fn fn, void *arg)
{
    const struct nsrec *rec = ns_find(store, ns);
    size_t n = 0;
    for (size_t i = 0; rec && i < rec->count; i++) {
        const struct centry *e = rec->entries[i];
        if (e->kind == kind && strcmp(e->workload, workload) == 0) {
            fn(arg, e->container, &e->usage);
            n++;
        }
    }
    return n;
}

double tl_usage_store_covered_until(const struct tl_usage_store *store, const char *ns)
{
    const struct nsrec *rec = ns_find(store, ns);
    return rec ? rec->covered_until : 0;
}

double tl_usage_store_since(const struct tl_usage_store *store, const char *ns)
{
    const struct nsrec *rec = ns_find(store, ns);
    return rec ? rec->since : 0;
}

void tl_usage_store_forget_namespace(struct tl_usage_store *store, const char *ns)
{
    size_t i = ns_lower_bound(store, ns);
    if (i >= store->count || strcmp(store->namespaces[i]->name, ns) != 0)
        return;
    ns_free(store->namespaces[i]);
    memmove(store->namespaces + i, store->namespaces + i + 1,
            (store->count - i - 1) * sizeof(struct nsrec *));
    store->count--;
}

void tl_usage_store_stats_get(const struct tl_usage_store *store, struct tl_usage_store_stats *out)
{
    struct tl_usage_store_stats s = {.namespaces = store->count,
                                     .bytes = sizeof(*store) + store->cap * sizeof(void *)};
    for (size_t i = 0; i < store->count; i++) {
        const struct nsrec *rec = store->namespaces[i];
        s.containers += rec->count;
        s.bytes += sizeof(*rec) + strlen(rec->name) + 1 + rec->cap * sizeof(struct centry *) +
                   rec->nslots * sizeof(*rec->slots);
        for (size_t j = 0; j < rec->count; j++) {
            const struct centry *e = rec->entries[j];
            s.bytes += sizeof(*e) + strlen(e->workload) + strlen(e->container) + 2 +
                       (e->usage.cpu.len + e->usage.memory.len) * sizeof(double);
        }
    }
    *out = s;
}

/* ---- Folding ---- */

struct fold {
    struct nsrec *rec;
    const struct tl_usage_settings *settings;
    const struct tl_usage_batch *batch;
    struct tl_pod_owner_index *owners;
    double from;
    struct tl_usage_fold_stats stats;
};

/* The entry of the workload-container a series belongs to; NULL (counted) if none fits. */
static enum tl_err series_entry(struct fold *f, const struct tl_prom_series *s, struct centry **out)
{
    const char *pod = tl_prom_label(s, f->settings->pod_label);
    const char *container = tl_prom_label(s, f->settings->container_label);
    size_t pos = 0;
    *out = NULL;
    if (!pod || !container || !container[0] || !tl_pod_owner_find(f->owners, pod, &pos)) {
        f->stats.unmatched++;
        return TL_OK;
    }
    const struct tl_workload_ref *w = &f->batch->workloads[pos];
    *out = entry_get_or_add(f->rec, w->kind, w->name, container);
    return *out ? TL_OK : TL_ENOMEM;
}

static enum tl_err fold_range(struct fold *f, const struct tl_prom_result *result, bool cpu)
{
    for (size_t i = 0; result && i < result->count; i++) {
        const struct tl_prom_series *s = &result->series[i];
        struct centry *e = NULL;
        f->stats.series++;
        enum tl_err err = series_entry(f, s, &e);
        if (err != TL_OK)
            return err;
        if (e == NULL)
            continue;
        struct tl_histogram *hist = cpu ? &e->usage.cpu : &e->usage.memory;
        bool added = false;
        for (size_t j = 0; j < s->npoints; j++) {
            const struct tl_prom_point *p = &s->points[j];
            if (!(p->t > f->from) || p->t > f->batch->to || !isfinite(p->v) || p->v < 0) {
                f->stats.skipped++;
                continue;
            }
            err = tl_histogram_add(hist, p->v, 1.0, p->t);
            if (err != TL_OK)
                return err;
            f->stats.samples++;
            added = true;
        }
        if (added)
            e->usage.covered_until = fmax(e->usage.covered_until, f->batch->to);
    }
    return TL_OK;
}

static void reset_facts(struct nsrec *rec)
{
    for (size_t i = 0; i < rec->count; i++) {
        struct centry *e = rec->entries[i];
        e->throttled = 0;
        e->periods = 0;
        e->usage.oom_kills = 0;
        e->usage.oom_memory = 0;
        e->usage.throttled_ratio = -1;
    }
}

enum fact { FACT_THROTTLED, FACT_PERIODS, FACT_OOM_KILLS, FACT_OOM_LIMIT, FACT_UNKNOWN };

static enum fact fact_of(const char *tag)
{
    static const char *const tags[] = {TL_USAGE_FACT_THROTTLED, TL_USAGE_FACT_PERIODS,
                                       TL_USAGE_FACT_OOM_KILLS, TL_USAGE_FACT_OOM_LIMIT};
    for (int i = 0; tag && i < FACT_UNKNOWN; i++) {
        if (strcmp(tag, tags[i]) == 0)
            return (enum fact)i;
    }
    return FACT_UNKNOWN;
}

static enum tl_err fold_facts(struct fold *f, const struct tl_prom_result *result)
{
    reset_facts(f->rec);
    for (size_t i = 0; i < result->count; i++) {
        const struct tl_prom_series *s = &result->series[i];
        enum fact fact = fact_of(tl_prom_label(s, TL_USAGE_FACT_LABEL));
        f->stats.series++;
        if (fact == FACT_UNKNOWN || s->npoints < 1 || !isfinite(s->points[0].v) ||
            s->points[0].v < 0) {
            f->stats.skipped++;
            continue;
        }
        struct centry *e = NULL;
        enum tl_err err = series_entry(f, s, &e);
        if (err != TL_OK)
            return err;
        if (e == NULL)
            continue;
        double v = s->points[0].v;
        switch (fact) {
        case FACT_THROTTLED:
            e->throttled += v;
            break;
        case FACT_PERIODS:
            e->periods += v;
            break;
        case FACT_OOM_KILLS:
            e->usage.oom_kills += (unsigned)lround(fmin(v, MAX_OOM_KILLS));
            break;
        case FACT_OOM_LIMIT:
            e->usage.oom_memory = fmax(e->usage.oom_memory, v);
            break;
        case FACT_UNKNOWN:
            break;
        }
    }
    /* A ratio of sums, not a mean of per-pod ratios: a pod that ran a day weighs a day. */
    for (size_t i = 0; i < f->rec->count; i++) {
        struct centry *e = f->rec->entries[i];
        if (e->periods > 0)
            e->usage.throttled_ratio = fmin(1.0, e->throttled / e->periods);
    }
    return TL_OK;
}

/*
 * A replacing batch is folded into a fresh record that takes the namespace's place only once it
 * is complete, so a failed refetch leaves the old history in place.
 */
enum tl_err tl_usage_store_fold(struct tl_usage_store *store,
                                const struct tl_usage_settings *settings,
                                const struct tl_usage_batch *batch,
                                struct tl_usage_fold_stats *stats)
{
    enum tl_err result = TL_OK;
    struct tl_usage_settings resolved;
    tl_usage_settings_resolve(settings, &resolved);
    struct fold f = {.settings = &resolved, .batch = batch};
    struct nsrec *fresh = NULL;
    f.rec = batch->replace ? NULL : ns_find(store, batch->ns);
    if (!f.rec) {
        fresh = ns_new(batch->ns);
        if (fresh)
            fresh->since = batch->from;
        f.rec = fresh;
    }
    f.owners = tl_pod_owner_index_create(batch->workloads, batch->nworkloads);
    if (!f.rec || !f.owners) {
        result = TL_ENOMEM;
        goto out;
    }
    f.from = fmax(batch->from, f.rec->covered_until);
    bool ranged = batch->cpu || batch->memory;
    result = fold_range(&f, batch->cpu, true);
    if (result == TL_OK)
        result = fold_range(&f, batch->memory, false);
    /* Even a partial fold moves the coverage: losing a window beats counting it twice. */
    if (ranged)
        f.rec->covered_until = fmax(f.rec->covered_until, batch->to);
    if (result == TL_OK && batch->facts)
        result = fold_facts(&f, batch->facts);
    if (fresh && (result == TL_OK || !batch->replace)) {
        enum tl_err put = ns_put(store, fresh);
        if (put == TL_OK)
            fresh = NULL;
        else if (result == TL_OK)
            result = put;
    }
out:
    ns_free(fresh);
    tl_pod_owner_index_destroy(f.owners);
    if (stats)
        *stats = f.stats;
    return result;
}
