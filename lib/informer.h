/* informer: list+watch of one resource into a projected cache, with add/update/delete handlers. */
#ifndef TL_INFORMER_H
#define TL_INFORMER_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "error.h"
#include "kube_client.h"
#include "kube_resource.h"
#include "kube_store.h"

/*
 * Turns one object (borrowed, valid only during the call) into the caller's compact struct in
 * *out (NULL is allowed: then only identity is cached). A non-TL_OK result skips the object with
 * a warning; the informer does not stop.
 */
typedef enum tl_err (*tl_informer_project_fn)(void *arg, const cJSON *obj, void **out);

/*
 * The handlers see cache items (borrowed, valid for the call; an old item is freed after it).
 * They run on the loop, may start kube calls and read the cache, and must not destroy the
 * informer. Every field may be NULL.
 */
struct tl_informer_handlers {
    tl_informer_project_fn project;
    tl_kube_store_free_fn free_proj; /* frees what project made */
    void (*on_add)(void *arg, const struct tl_kube_store_item *item);
    void (*on_update)(void *arg, const struct tl_kube_store_item *old,
                      const struct tl_kube_store_item *item);
    void (*on_delete)(void *arg, const struct tl_kube_store_item *old);
    void (*on_synced)(void *arg); /* once, after the first list is in the cache */
    void *arg;
};

/* Every zero field takes the default in brackets. Strings are copied. */
struct tl_informer_options {
    const char *namespace;      /* [all namespaces] */
    const char *label_selector; /* [everything] */
    const char *field_selector;
    long page_size;       /* list page limit [500] */
    double watch_min;     /* watch timeoutSeconds is drawn from [watch_min, watch_max] */
    double watch_max;     /* [300, 600] */
    double stall_timeout; /* no byte, bookmarks included, for this long: reconnect [120] */
    double backoff_base;  /* [1] */
    double backoff_max;   /* [30] */
    size_t max_line;      /* watch line cap [16 MiB] */
    unsigned long seed;   /* jitter seed [from the clock] */
};

/* Counters for metrics and tests. */
struct tl_informer_stats {
    unsigned long lists;   /* complete lists (first and re-lists) */
    unsigned long pages;   /* list pages fetched */
    unsigned long watches; /* watch requests started */
    unsigned long gone;    /* 410 Gone answers that forced a re-list */
    unsigned long errors;  /* failed lists and watches */
    unsigned long events;  /* watch events applied, bookmarks excluded */
    unsigned long bookmarks;
    unsigned long skipped; /* objects the projection refused */
};

struct tl_informer;

/*
 * Creates an informer on client (borrowed; must outlive it) for res (copied). handlers is copied.
 * Nothing happens until tl_informer_start. Caller frees with tl_informer_destroy.
 */
enum tl_err tl_informer_create(struct tl_kube_client *client, const struct tl_kube_resource *res,
                               const struct tl_informer_options *opts,
                               const struct tl_informer_handlers *handlers,
                               struct tl_informer **out);

/* Starts listing (on the next loop iteration). TL_ESTATE when already started. */
enum tl_err tl_informer_start(struct tl_informer *inf);

/* Cancels the list or watch in flight and frees the cache. Not from a handler. NULL: no-op. */
void tl_informer_destroy(struct tl_informer *inf);

/* True once the first complete list is in the cache (and forever after). */
bool tl_informer_has_synced(const struct tl_informer *inf);

/* The cache, for tl_kube_store_get and the walks; borrowed for the informer's life. */
const struct tl_kube_store *tl_informer_store(const struct tl_informer *inf);

/* Shortcut for tl_kube_store_get on the cache. */
const struct tl_kube_store_item *tl_informer_get(const struct tl_informer *inf, const char *ns,
                                                 const char *name);

/* The last resourceVersion seen (list, event or bookmark); "" before the first list. Borrowed. */
const char *tl_informer_resource_version(const struct tl_informer *inf);

struct tl_informer_stats tl_informer_stats(const struct tl_informer *inf);

#endif
