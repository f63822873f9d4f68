#include "kube_store.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * One chained hash table by "namespace/name" holds the items; a doubly linked list keeps them in
 * insertion order for walks. Two secondary indexes (namespace, owner uid) map a key to a group of
 * doubly linked index links, so every removal is O(1) however big a namespace gets.
 */

struct item;
struct group;

struct index_link {
    struct item *item;
    struct index_link *prev, *next;
    struct group *group; /* NULL when not linked (memory ran out) */
};

struct group {
    struct group *hnext;
    uint64_t hash;
    struct index_link *head;
    size_t count;
    char key[];
};

/* A bucket is a struct so that sizeof() names what it measures. */
struct group_slot {
    struct group *head;
};

struct item_slot {
    struct item *head;
};

struct index {
    struct group_slot *buckets;
    size_t nbuckets, ngroups;
};

/*
 * One allocation per object: the struct, one index link per owner reference, then the strings
 * (namespace, name, uid, resourceVersion, owner uids), each NUL-terminated.
 */
struct item {
    struct tl_kube_store_item pub;
    uint64_t hash;
    struct item *hnext, *prev, *next;
    const char *owners; /* the first owner uid; the others follow it */
    size_t bytes;
    unsigned seen;
    unsigned nowners;
    struct index_link ns_link;
    struct index_link owner_links[]; /* nowners */
};

struct tl_kube_store {
    struct item_slot *buckets;
    size_t nbuckets, count;
    struct item *head, *tail;
    struct index by_ns, by_owner;
    tl_kube_store_free_fn free_proj;
    void *arg;
    unsigned gen;
    size_t bytes;
};

/* FNV-1a, 64 bit (Fowler, Noll, Vo). */
static uint64_t hash_bytes(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t hash_key(const char *ns, const char *name)
{
    uint64_t h = hash_bytes(0xcbf29ce484222325ULL, ns);
    h ^= '/';
    h *= 0x100000001b3ULL;
    return hash_bytes(h, name);
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* ---- metadata ---- */

static const char *string_at(const cJSON *obj, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(item) ? item->valuestring : NULL;
}

enum tl_err tl_kube_store_meta_from_json(const cJSON *obj, struct tl_kube_store_meta *out)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    struct tl_kube_store_meta m = {
        .namespace = string_at(meta, "namespace"),
        .name = string_at(meta, "name"),
        .uid = string_at(meta, "uid"),
        .resource_version = string_at(meta, "resourceVersion"),
    };
    if (!m.name || !*m.name)
        return TL_EINVAL;
    const cJSON *ref;
    cJSON_ArrayForEach(ref, cJSON_GetObjectItemCaseSensitive(meta, "ownerReferences"))
    {
        const char *uid = string_at(ref, "uid");
        if (uid && *uid && m.nowners < TL_KUBE_STORE_MAX_OWNERS)
            m.owner_uids[m.nowners++] = uid;
    }
    *out = m;
    return TL_OK;
}

/* ---- secondary indexes ---- */

static struct group *group_find(const struct index *idx, const char *key, uint64_t h)
{
    if (!idx->nbuckets)
        return NULL;
    for (struct group *g = idx->buckets[h & (idx->nbuckets - 1)].head; g; g = g->hnext) {
        if (g->hash == h && strcmp(g->key, key) == 0)
            return g;
    }
    return NULL;
}

static void index_grow(struct index *idx)
{
    size_t n = idx->nbuckets ? idx->nbuckets * 2 : 16;
    struct group_slot *buckets = calloc(n, sizeof(struct group_slot));
    if (!buckets)
        return; /* a fuller table is slower, not wrong */
    for (size_t i = 0; i < idx->nbuckets; i++) {
        struct group *g = idx->buckets[i].head;
        while (g) {
            struct group *next = g->hnext;
            g->hnext = buckets[g->hash & (n - 1)].head;
            buckets[g->hash & (n - 1)].head = g;
            g = next;
        }
    }
    free(idx->buckets);
    idx->buckets = buckets;
    idx->nbuckets = n;
}

static void index_link_add(struct tl_kube_store *store, struct index *idx, const char *key,
                           struct index_link *link, struct item *item)
{
    link->item = item;
    link->group = NULL;
    uint64_t h = hash_bytes(0xcbf29ce484222325ULL, key);
    struct group *g = group_find(idx, key, h);
    if (!g) {
        if (idx->ngroups >= idx->nbuckets)
            index_grow(idx);
        if (!idx->nbuckets)
            return;
        size_t klen = strlen(key) + 1;
        g = calloc(1, sizeof(*g) + klen);
        if (!g)
            return;
        memcpy(g->key, key, klen);
        g->hash = h;
        g->hnext = idx->buckets[h & (idx->nbuckets - 1)].head;
        idx->buckets[h & (idx->nbuckets - 1)].head = g;
        idx->ngroups++;
        store->bytes += sizeof(*g) + klen;
    }
    link->group = g;
    link->prev = NULL;
    link->next = g->head;
    if (g->head)
        g->head->prev = link;
    g->head = link;
    g->count++;
}

static void index_link_remove(struct tl_kube_store *store, struct index *idx,
                              struct index_link *link)
{
    struct group *g = link->group;
    if (!g)
        return;
    if (link->prev)
        link->prev->next = link->next;
    else
        g->head = link->next;
    if (link->next)
        link->next->prev = link->prev;
    link->group = NULL;
    if (--g->count > 0)
        return;
    struct group **p = &idx->buckets[g->hash & (idx->nbuckets - 1)].head;
    while (*p != g)
        p = &(*p)->hnext;
    *p = g->hnext;
    idx->ngroups--;
    store->bytes -= sizeof(*g) + strlen(g->key) + 1;
    free(g);
}

static void index_free(struct index *idx)
{
    for (size_t i = 0; i < idx->nbuckets; i++) {
        struct group *g = idx->buckets[i].head;
        while (g) {
            struct group *next = g->hnext;
            free(g);
            g = next;
        }
    }
    free(idx->buckets);
}

/* ---- the primary table ---- */

static struct item *find(const struct tl_kube_store *store, const char *ns, const char *name,
                         uint64_t h)
{
    if (!store->nbuckets)
        return NULL;
    for (struct item *it = store->buckets[h & (store->nbuckets - 1)].head; it; it = it->hnext) {
        if (it->hash == h && strcmp(it->pub.name, name) == 0 && strcmp(it->pub.namespace, ns) == 0)
            return it;
    }
    return NULL;
}

static void grow(struct tl_kube_store *store)
{
    size_t n = store->nbuckets ? store->nbuckets * 2 : 64;
    struct item_slot *buckets = calloc(n, sizeof(struct item_slot));
    if (!buckets)
        return;
    for (size_t i = 0; i < store->nbuckets; i++) {
        struct item *it = store->buckets[i].head;
        while (it) {
            struct item *next = it->hnext;
            it->hnext = buckets[it->hash & (n - 1)].head;
            buckets[it->hash & (n - 1)].head = it;
            it = next;
        }
    }
    free(store->buckets);
    store->bytes += (n - store->nbuckets) * sizeof(struct item_slot);
    store->buckets = buckets;
    store->nbuckets = n;
}

/* Links an unlinked item everywhere. Fails only when the primary table cannot exist at all. */
static enum tl_err link_item(struct tl_kube_store *store, struct item *it)
{
    if (store->count >= store->nbuckets)
        grow(store);
    if (!store->nbuckets)
        return TL_ENOMEM;
    size_t b = it->hash & (store->nbuckets - 1);
    it->hnext = store->buckets[b].head;
    store->buckets[b].head = it;
    it->next = NULL;
    it->prev = store->tail;
    if (store->tail)
        store->tail->next = it;
    else
        store->head = it;
    store->tail = it;
    store->count++;
    store->bytes += it->bytes;
    it->seen = store->gen;
    index_link_add(store, &store->by_ns, it->pub.namespace, &it->ns_link, it);
    const char *uid = it->owners;
    for (unsigned i = 0; i < it->nowners; i++) {
        index_link_add(store, &store->by_owner, uid, &it->owner_links[i], it);
        uid += strlen(uid) + 1;
    }
    return TL_OK;
}

static void unlink_item(struct tl_kube_store *store, struct item *it)
{
    struct item **p = &store->buckets[it->hash & (store->nbuckets - 1)].head;
    while (*p != it)
        p = &(*p)->hnext;
    *p = it->hnext;
    if (it->prev)
        it->prev->next = it->next;
    else
        store->head = it->next;
    if (it->next)
        it->next->prev = it->prev;
    else
        store->tail = it->prev;
    it->prev = it->next = it->hnext = NULL;
    store->count--;
    store->bytes -= it->bytes;
    index_link_remove(store, &store->by_ns, &it->ns_link);
    for (unsigned i = 0; i < it->nowners; i++)
        index_link_remove(store, &store->by_owner, &it->owner_links[i]);
}

static char *put_string(char **cursor, const char *s)
{
    char *start = *cursor;
    size_t n = strlen(s) + 1;
    memcpy(start, s, n);
    *cursor += n;
    return start;
}

static struct item *new_item(const struct tl_kube_store_meta *meta, void *proj)
{
    const char *ns = or_empty(meta->namespace);
    const char *uid = or_empty(meta->uid);
    const char *rv = or_empty(meta->resource_version);
    unsigned nowners = meta->nowners < TL_KUBE_STORE_MAX_OWNERS ? (unsigned)meta->nowners
                                                                : TL_KUBE_STORE_MAX_OWNERS;
    size_t len = strlen(ns) + strlen(meta->name) + strlen(uid) + strlen(rv) + 4;
    for (unsigned i = 0; i < nowners; i++)
        len += strlen(meta->owner_uids[i]) + 1;
    size_t head = sizeof(struct item) + nowners * sizeof(struct index_link);
    struct item *it = calloc(1, head + len);
    if (!it)
        return NULL;
    char *cursor = (char *)it + head;
    it->pub.namespace = put_string(&cursor, ns);
    it->pub.name = put_string(&cursor, meta->name);
    it->pub.uid = put_string(&cursor, uid);
    it->pub.resource_version = put_string(&cursor, rv);
    it->owners = cursor;
    for (unsigned i = 0; i < nowners; i++)
        put_string(&cursor, meta->owner_uids[i]);
    it->nowners = nowners;
    it->pub.proj = proj;
    it->hash = hash_key(it->pub.namespace, it->pub.name);
    it->bytes = head + len;
    return it;
}

static void free_item(struct tl_kube_store *store, struct item *it)
{
    if (store->free_proj && it->pub.proj)
        store->free_proj(store->arg, it->pub.proj);
    free(it);
}

/* ---- public ---- */

struct tl_kube_store *tl_kube_store_create(tl_kube_store_free_fn free_proj, void *arg)
{
    struct tl_kube_store *store = calloc(1, sizeof(*store));
    if (!store)
        return NULL;
    store->free_proj = free_proj;
    store->arg = arg;
    return store;
}

void tl_kube_store_destroy(struct tl_kube_store *store)
{
    if (!store)
        return;
    struct item *it = store->head;
    while (it) {
        struct item *next = it->next;
        free_item(store, it);
        it = next;
    }
    free(store->buckets);
    index_free(&store->by_ns);
    index_free(&store->by_owner);
    free(store);
}

size_t tl_kube_store_size(const struct tl_kube_store *store)
{
    return store->count;
}

size_t tl_kube_store_overhead(const struct tl_kube_store *store)
{
    return sizeof(*store) + store->bytes + store->by_ns.nbuckets * sizeof(struct group_slot) +
           store->by_owner.nbuckets * sizeof(struct group_slot);
}

const struct tl_kube_store_item *tl_kube_store_get(const struct tl_kube_store *store,
                                                   const char *ns, const char *name)
{
    if (!name)
        return NULL;
    ns = or_empty(ns);
    struct item *it = find(store, ns, name, hash_key(ns, name));
    return it ? &it->pub : NULL;
}

enum tl_err tl_kube_store_upsert(struct tl_kube_store *store, const struct tl_kube_store_meta *meta,
                                 void *proj, struct tl_kube_store_item **old,
                                 const struct tl_kube_store_item **item)
{
    if (!meta->name || !*meta->name) {
        if (store->free_proj && proj)
            store->free_proj(store->arg, proj);
        return TL_EINVAL;
    }
    struct item *it = new_item(meta, proj);
    if (!it) {
        if (store->free_proj && proj)
            store->free_proj(store->arg, proj);
        return TL_ENOMEM;
    }
    struct item *prev = find(store, it->pub.namespace, it->pub.name, it->hash);
    if (prev)
        unlink_item(store, prev);
    if (link_item(store, it) != TL_OK) {
        free_item(store, it);
        if (prev && link_item(store, prev) != TL_OK)
            free_item(store, prev);
        return TL_ENOMEM;
    }
    if (old)
        *old = prev ? &prev->pub : NULL;
    else if (prev)
        free_item(store, prev);
    if (item)
        *item = &it->pub;
    return TL_OK;
}

struct tl_kube_store_item *tl_kube_store_remove(struct tl_kube_store *store, const char *ns,
                                                const char *name)
{
    if (!name)
        return NULL;
    ns = or_empty(ns);
    struct item *it = find(store, ns, name, hash_key(ns, name));
    if (!it)
        return NULL;
    unlink_item(store, it);
    return &it->pub;
}

void tl_kube_store_item_free(struct tl_kube_store *store, struct tl_kube_store_item *item)
{
    if (item)
        free_item(store, (struct item *)(void *)item);
}

bool tl_kube_store_foreach(const struct tl_kube_store *store, tl_kube_store_visit_fn visit,
                           void *arg)
{
    for (const struct item *it = store->head; it; it = it->next) {
        if (!visit(arg, &it->pub))
            return false;
    }
    return true;
}

static bool walk_group(const struct index *idx, const char *key, tl_kube_store_visit_fn visit,
                       void *arg)
{
    const struct group *g = group_find(idx, key, hash_bytes(0xcbf29ce484222325ULL, key));
    for (const struct index_link *l = g ? g->head : NULL; l; l = l->next) {
        if (!visit(arg, &l->item->pub))
            return false;
    }
    return true;
}

bool tl_kube_store_foreach_namespace(const struct tl_kube_store *store, const char *ns,
                                     tl_kube_store_visit_fn visit, void *arg)
{
    return walk_group(&store->by_ns, or_empty(ns), visit, arg);
}

bool tl_kube_store_foreach_owner(const struct tl_kube_store *store, const char *uid,
                                 tl_kube_store_visit_fn visit, void *arg)
{
    return uid ? walk_group(&store->by_owner, uid, visit, arg) : true;
}

/*
 * The re-list diff (client-go's Reflector.syncWith + DeltaFIFO.Replace, done directly on the
 * projections): every fresh item either matches a cached one with the same resourceVersion (keep
 * the cached, report nothing), replaces one (update, or delete+add when the uid changed), or is
 * new (add). Cached items no fresh item touched were deleted while we were not watching.
 */
void tl_kube_store_replace(struct tl_kube_store *store, struct tl_kube_store *fresh,
                           const struct tl_kube_store_events *events)
{
    const struct tl_kube_store_events none = {0};
    if (!events)
        events = &none;
    unsigned gen = ++store->gen;
    struct item *it;
    while ((it = fresh->head)) {
        unlink_item(fresh, it);
        struct item *old = find(store, it->pub.namespace, it->pub.name, it->hash);
        if (old && strcmp(old->pub.resource_version, it->pub.resource_version) == 0 &&
            strcmp(old->pub.uid, it->pub.uid) == 0) {
            old->seen = gen;
            free_item(fresh, it);
            continue;
        }
        if (old)
            unlink_item(store, old);
        if (link_item(store, it) != TL_OK) {
            /* No table at all: keep what we had rather than lose both. */
            free_item(fresh, it);
            if (old && link_item(store, old) == TL_OK)
                old->seen = gen;
            continue;
        }
        if (!old) {
            if (events->on_add)
                events->on_add(events->arg, &it->pub);
            continue;
        }
        if (strcmp(old->pub.uid, it->pub.uid) != 0) {
            if (events->on_delete)
                events->on_delete(events->arg, &old->pub);
            if (events->on_add)
                events->on_add(events->arg, &it->pub);
        }
        else if (events->on_update) {
            events->on_update(events->arg, &old->pub, &it->pub);
        }
        free_item(store, old);
    }
    it = store->head;
    while (it) {
        struct item *next = it->next;
        if (it->seen != gen) {
            unlink_item(store, it);
            if (events->on_delete)
                events->on_delete(events->arg, &it->pub);
            free_item(store, it);
        }
        it = next;
    }
}
