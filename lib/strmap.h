/* strmap: a string-keyed hash map with owned keys and caller-owned values. */
#ifndef TL_STRMAP_H
#define TL_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct tl_strmap;

/* Frees a value when it is replaced, removed or the map is destroyed; may be NULL. */
typedef void (*tl_strmap_free_fn)(void *value);

struct tl_strmap *tl_strmap_create(tl_strmap_free_fn free_value);
void tl_strmap_destroy(struct tl_strmap *map);

/* Borrowed value, or NULL. */
void *tl_strmap_get(const struct tl_strmap *map, const char *key);

/* Sets key (copied) to value (owned by the map from now on, freed on failure too). */
enum tl_err tl_strmap_set(struct tl_strmap *map, const char *key, void *value);

/* Removes key; true if it was there. */
bool tl_strmap_remove(struct tl_strmap *map, const char *key);

size_t tl_strmap_size(const struct tl_strmap *map);

/* Visits every entry (no changes to the map meanwhile); return false to stop. */
typedef bool (*tl_strmap_visit_fn)(void *arg, const char *key, void *value);
void tl_strmap_foreach(const struct tl_strmap *map, tl_strmap_visit_fn visit, void *arg);

#endif
