#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Open addressing with linear probing and backward-shift deletion (no tombstones), kept at most
 * half full so probes stay short. */
struct slot {
    char *key;
    void *value;
    uint64_t hash;
};

struct tl_strmap {
    struct slot *slots;
    size_t capacity; /* a power of two */
    size_t size;
    tl_strmap_free_fn free_value;
};

static uint64_t hash_of(const char *key)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    return h;
}

struct tl_strmap *tl_strmap_create(tl_strmap_free_fn free_value)
{
    struct tl_strmap *map = calloc(1, sizeof(*map));
    if (!map)
        return NULL;
    map->capacity = 16;
    map->slots = calloc(map->capacity, sizeof(*map->slots));
    if (!map->slots) {
        free(map);
        return NULL;
    }
    map->free_value = free_value;
    return map;
}

void tl_strmap_destroy(struct tl_strmap *map)
{
    if (map == NULL)
        return;
    for (size_t i = 0; i < map->capacity; i++) {
        if (map->slots[i].key) {
            free(map->slots[i].key);
            if (map->free_value)
                map->free_value(map->slots[i].value);
        }
    }
    free(map->slots);
    free(map);
}

static size_t find(const struct tl_strmap *map, const char *key, uint64_t hash)
{
    size_t mask = map->capacity - 1;
    size_t i = hash & mask;
    while (map->slots[i].key && (map->slots[i].hash != hash || strcmp(map->slots[i].key, key) != 0))
        i = (i + 1) & mask;
    return i;
}

void *tl_strmap_get(const struct tl_strmap *map, const char *key)
{
    size_t i = find(map, key, hash_of(key));
    return map->slots[i].key ? map->slots[i].value : NULL;
}

static enum tl_err grow(struct tl_strmap *map)
{
    size_t capacity = map->capacity * 2;
    struct slot *slots = calloc(capacity, sizeof(*slots));
    if (!slots)
        return TL_ENOMEM;
    for (size_t i = 0; i < map->capacity; i++) {
        if (!map->slots[i].key)
            continue;
        size_t j = map->slots[i].hash & (capacity - 1);
        while (slots[j].key)
            j = (j + 1) & (capacity - 1);
        slots[j] = map->slots[i];
    }
    free(map->slots);
    map->slots = slots;
    map->capacity = capacity;
    return TL_OK;
}

enum tl_err tl_strmap_set(struct tl_strmap *map, const char *key, void *value)
{
    uint64_t hash = hash_of(key);
    size_t i = find(map, key, hash);
    if (map->slots[i].key) {
        if (map->free_value && map->slots[i].value != value)
            map->free_value(map->slots[i].value);
        map->slots[i].value = value;
        return TL_OK;
    }
    if ((map->size + 1) * 2 > map->capacity) {
        if (grow(map) != TL_OK)
            goto nomem;
        i = find(map, key, hash);
    }
    map->slots[i].key = strdup(key);
    if (!map->slots[i].key)
        goto nomem;
    map->slots[i].value = value;
    map->slots[i].hash = hash;
    map->size++;
    return TL_OK;
nomem:
    if (map->free_value)
        map->free_value(value);
    return TL_ENOMEM;
}

bool tl_strmap_remove(struct tl_strmap *map, const char *key)
{
    size_t mask = map->capacity - 1;
    size_t i = find(map, key, hash_of(key));
    if (!map->slots[i].key)
        return false;
    free(map->slots[i].key);
    if (map->free_value)
        map->free_value(map->slots[i].value);
    map->slots[i].key = NULL;
    map->size--;
    /* Shift later members of the probe run back so lookups never stop at the hole early. */
    for (size_t j = (i + 1) & mask; map->slots[j].key; j = (j + 1) & mask) {
        size_t home = map->slots[j].hash & mask;
        bool movable = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            map->slots[i] = map->slots[j];
            map->slots[j].key = NULL;
            i = j;
        }
    }
    return true;
}

size_t tl_strmap_size(const struct tl_strmap *map)
{
    return map->size;
}

void tl_strmap_foreach(const struct tl_strmap *map, tl_strmap_visit_fn visit, void *arg)
{
    for (size_t i = 0; i < map->capacity; i++) {
        if (map->slots[i].key && !visit(arg, map->slots[i].key, map->slots[i].value))
            return;
    }
}
