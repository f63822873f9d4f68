/* kube_store: the informers' cache of projected objects, indexed by ns/name, namespace and owner.
 */
#ifndef TL_KUBE_STORE_H
#define TL_KUBE_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "error.h"

/*
 * The store never keeps an object's JSON: a caller-supplied projection (a small struct of the
 * fields a controller reads) plus the identity fields below. All pure: no I/O, no loop.
 */

#define TL_KUBE_STORE_MAX_OWNERS 8

/* One cached object. Read-only for users; strings and the item live until it is removed. */
struct tl_kube_store_item {
    const char *namespace; /* "" for cluster-scoped objects */
    const char *name;
    const char *uid;              /* "" when the object has none */
    const char *resource_version; /* "" when the object has none */
    void *proj;                   /* the projection; owned by the store */
};

/* The identity of an object, all borrowed (usually from the cJSON being projected). */
struct tl_kube_store_meta {
    const char *namespace;
    const char *name;
    const char *uid;
    const char *resource_version;
    const char *owner_uids[TL_KUBE_STORE_MAX_OWNERS];
    size_t nowners;
};

/* Frees one projection; arg is the one given to tl_kube_store_create. */
typedef void (*tl_kube_store_free_fn)(void *arg, void *proj);

/* Visits one item; return false to stop. The store must not be changed during the walk. */
typedef bool (*tl_kube_store_visit_fn)(void *arg, const struct tl_kube_store_item *item);

/* What tl_kube_store_replace reports; any may be NULL. Items are borrowed for the call. */
struct tl_kube_store_events {
    void (*on_add)(void *arg, const struct tl_kube_store_item *item);
    void (*on_update)(void *arg, const struct tl_kube_store_item *old,
                      const struct tl_kube_store_item *item);
    void (*on_delete)(void *arg, const struct tl_kube_store_item *old);
    void *arg;
};

struct tl_kube_store;

/*
 * Reads metadata.namespace/name/uid/resourceVersion and the ownerReferences' uids (the first
 * TL_KUBE_STORE_MAX_OWNERS) of obj into *out, borrowing obj's strings. TL_EINVAL without a name.
 */
enum tl_err tl_kube_store_meta_from_json(const cJSON *obj, struct tl_kube_store_meta *out);

/* Creates an empty store; free_proj (may be NULL) frees projections. Caller destroys. */
struct tl_kube_store *tl_kube_store_create(tl_kube_store_free_fn free_proj, void *arg);

/* Frees every item and projection. NULL is a no-op. */
void tl_kube_store_destroy(struct tl_kube_store *store);

size_t tl_kube_store_size(const struct tl_kube_store *store);

/* The item for ns/name (ns NULL or "" for cluster-scoped); borrowed; NULL when absent. */
const struct tl_kube_store_item *tl_kube_store_get(const struct tl_kube_store *store,
                                                   const char *ns, const char *name);

/*
 * Inserts or replaces the item for meta's ns/name, taking ownership of proj in every case (it is
 * freed on failure). When an item was there, it is unlinked and handed back in *old (if old is
 * not NULL, else freed): the caller frees it with tl_kube_store_item_free after using it, so an
 * update handler can compare old and new. *item (may be NULL) receives the new item.
 */
enum tl_err tl_kube_store_upsert(struct tl_kube_store *store, const struct tl_kube_store_meta *meta,
                                 void *proj, struct tl_kube_store_item **old,
                                 const struct tl_kube_store_item **item);

/* Unlinks the item for ns/name and returns it (caller frees), or NULL when absent. */
struct tl_kube_store_item *tl_kube_store_remove(struct tl_kube_store *store, const char *ns,
                                                const char *name);

/* Frees an item handed out by upsert or remove, with its projection. NULL is a no-op. */
void tl_kube_store_item_free(struct tl_kube_store *store, struct tl_kube_store_item *item);

/* Walks every item, in insertion order. Returns false when visit stopped it. */
bool tl_kube_store_foreach(const struct tl_kube_store *store, tl_kube_store_visit_fn visit,
                           void *arg);

/* Walks the items of one namespace. */
bool tl_kube_store_foreach_namespace(const struct tl_kube_store *store, const char *ns,
                                     tl_kube_store_visit_fn visit, void *arg);

/* Walks the items with an ownerReference to uid. */
bool tl_kube_store_foreach_owner(const struct tl_kube_store *store, const char *uid,
                                 tl_kube_store_visit_fn visit, void *arg);

/*
 * Makes store hold exactly the items of fresh (which is left empty), reporting the difference:
 * on_add for new keys, on_update for keys whose resourceVersion changed, on_delete for keys that
 * are gone, and on_delete then on_add for a key whose uid changed (deleted and re-created). Items
 * with an unchanged resourceVersion keep their old projection and report nothing. Updates and
 * adds come first, in fresh's order, then deletes. fresh must free projections the same way as
 * store; handlers must not change either store. This is how a re-list after 410 Gone tells
 * handlers about everything they missed, deletes included.
 */
void tl_kube_store_replace(struct tl_kube_store *store, struct tl_kube_store *fresh,
                           const struct tl_kube_store_events *events);

/* Approximate bytes the store uses for its own bookkeeping (not counting projections). */
size_t tl_kube_store_overhead(const struct tl_kube_store *store);

#endif
