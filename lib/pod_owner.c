#include "pod_owner.h"

#include <stdlib.h>
#include <string.h>

/* k8s.io/apimachinery/pkg/util/rand: the characters of generated names. */
static const char generated_alphabet[] = "bcdfghjklmnpqrstvwxz2456789";

#define GENERATED_LEN   5  /* names.SimpleNameGenerator's random suffix */
#define MAX_BASE_LEN    58 /* 63 - GENERATED_LEN: longer bases are cut to this */
#define MAX_POD_NAME    63
#define MAX_HASH_LEN    10 /* digits of a uint32 */
#define MAX_ORDINAL_LEN 10

const char *tl_workload_kind_name(enum tl_workload_kind kind)
{
    switch (kind) {
    case TL_KIND_DEPLOYMENT:
        return "Deployment";
    case TL_KIND_STATEFULSET:
        return "StatefulSet";
    case TL_KIND_DAEMONSET:
        return "DaemonSet";
    }
    return "?";
}

static bool is_generated_char(char c)
{
    return c != '\0' && strchr(generated_alphabet, c) != NULL;
}

/*
 * A template hash is a uint32 printed in decimal with each digit mapped into that alphabet
 * (rand.SafeEncodeString), so only these ten characters appear. That keeps a CronJob's Job pods
 * ("<cronjob>-<minutes>-<suffix>") from passing for a Deployment's.
 */
static bool is_hash_char(char c)
{
    return c != '\0' && strchr("456789bcdf", c) != NULL;
}

static bool all_chars(const char *s, size_t len, bool (*pred)(char))
{
    for (size_t i = 0; i < len; i++) {
        if (!pred(s[i]))
            return false;
    }
    return true;
}

static bool is_generated_suffix(const char *s)
{
    return strlen(s) == GENERATED_LEN && all_chars(s, GENERATED_LEN, is_generated_char);
}

/* "<hash>-<suffix>" after "<deployment>-". */
static bool is_replicaset_rest(const char *s)
{
    const char *dash = strchr(s, '-');
    if (!dash)
        return false;
    size_t hash_len = (size_t)(dash - s);
    return hash_len >= 1 && hash_len <= MAX_HASH_LEN && all_chars(s, hash_len, is_hash_char) &&
           is_generated_suffix(dash + 1);
}

static bool is_ordinal(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > MAX_ORDINAL_LEN || (s[0] == '0' && len > 1))
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

/*
 * The cut form of a generated name: the base ("<name>-" for a DaemonSet, "<name>-<hash>-" for a
 * ReplicaSet) was longer than 58 characters, so the pod is its first 58 characters and the
 * suffix. For a Deployment the cut may fall inside the hash or right after the dash before it.
 */
static bool matches_truncated(enum tl_workload_kind kind, const char *workload, size_t wlen,
                              const char *pod)
{
    if (strlen(pod) != MAX_POD_NAME || !is_generated_suffix(pod + MAX_BASE_LEN))
        return false;
    if (kind != TL_KIND_DEPLOYMENT && kind != TL_KIND_DAEMONSET)
        return false;
    if (wlen >= MAX_BASE_LEN)
        return strncmp(pod, workload, MAX_BASE_LEN) == 0;
    if (kind == TL_KIND_DAEMONSET)
        return false; /* "<name>-" fits in 58: not cut */
    if (strncmp(pod, workload, wlen) != 0 || pod[wlen] != '-')
        return false;
    size_t partial = MAX_BASE_LEN - wlen - 1; /* hash characters kept before the cut */
    return partial <= MAX_HASH_LEN && all_chars(pod + wlen + 1, partial, is_hash_char);
}

bool tl_pod_owner_matches(enum tl_workload_kind kind, const char *workload, const char *pod)
{
    size_t wlen = strlen(workload);
    if (wlen == 0)
        return false;
    if (matches_truncated(kind, workload, wlen, pod))
        return true;
    if (strncmp(pod, workload, wlen) != 0 || pod[wlen] != '-')
        return false;
    const char *rest = pod + wlen + 1;
    switch (kind) {
    case TL_KIND_DEPLOYMENT:
        return is_replicaset_rest(rest);
    case TL_KIND_DAEMONSET:
        return is_generated_suffix(rest);
    case TL_KIND_STATEFULSET:
        return is_ordinal(rest);
    }
    return false;
}

/* ---- The index ---- */

struct entry {
    char *name;
    size_t len;
    enum tl_workload_kind kind;
    size_t pos; /* in the caller's list */
};

struct tl_pod_owner_index {
    struct entry *entries; /* sorted by name, then preference, then pos */
    size_t count;
};

/* Which kind wins when names tie: a Deployment's shape cannot be confused with the others; an
 * all-digit DaemonSet suffix ("24567") also reads as an ordinal, but so many replicas are not. */
static int preference(enum tl_workload_kind kind)
{
    switch (kind) {
    case TL_KIND_DEPLOYMENT:
        return 0;
    case TL_KIND_DAEMONSET:
        return 1;
    case TL_KIND_STATEFULSET:
        return 2;
    }
    return 3;
}

static int compare_entries(const void *a, const void *b)
{
    const struct entry *x = a;
    const struct entry *y = b;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    if (preference(x->kind) != preference(y->kind))
        return preference(x->kind) - preference(y->kind);
    return x->pos < y->pos ? -1 : (x->pos > y->pos ? 1 : 0);
}

struct tl_pod_owner_index *tl_pod_owner_index_create(const struct tl_workload_ref *workloads,
                                                     size_t count)
{
    struct tl_pod_owner_index *index = calloc(1, sizeof(*index));
    if (!index)
        return NULL;
    if (count > 0) {
        index->entries = calloc(count, sizeof(*index->entries));
        if (!index->entries)
            goto fail;
    }
    for (size_t i = 0; i < count; i++) {
        struct entry *e = &index->entries[index->count];
        e->name = strdup(workloads[i].name ? workloads[i].name : "");
        if (!e->name)
            goto fail;
        e->len = strlen(e->name);
        e->kind = workloads[i].kind;
        e->pos = i;
        index->count++;
    }
    if (index->count > 1)
        qsort(index->entries, index->count, sizeof(*index->entries), compare_entries);
    return index;
fail:
    tl_pod_owner_index_destroy(index);
    return NULL;
}

void tl_pod_owner_index_destroy(struct tl_pod_owner_index *index)
{
    if (index == NULL)
        return;
    for (size_t i = 0; i < index->count; i++)
        free(index->entries[i].name);
    free(index->entries);
    free(index);
}

/* First entry whose name does not sort before key[0, klen); entries starting with it follow. */
static size_t lower_bound(const struct tl_pod_owner_index *index, const char *key, size_t klen)
{
    size_t lo = 0;
    size_t hi = index->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strncmp(index->entries[mid].name, key, klen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool better(const struct entry *candidate, const struct entry *best)
{
    if (best == NULL || candidate->len != best->len)
        return best == NULL || candidate->len > best->len;
    return compare_entries(candidate, best) < 0;
}

/* Tries every workload whose name is key[0, klen) (exact) or starts with it (prefix). */
static const struct entry *try_names(const struct tl_pod_owner_index *index, const char *pod,
                                     size_t klen, bool exact, const struct entry *best)
{
    for (size_t i = lower_bound(index, pod, klen); i < index->count; i++) {
        const struct entry *e = &index->entries[i];
        if (strncmp(e->name, pod, klen) != 0 || (exact && e->len != klen))
            break; /* exact names sort first among those sharing the prefix */
        if (better(e, best) && tl_pod_owner_matches(e->kind, e->name, pod))
            best = e;
    }
    return best;
}

/*
 * A workload's name is the pod's name up to one of its dashes, or (for a cut generated name)
 * starts with the pod's first 58 characters; each such name is looked up by binary search, so
 * finding a pod's owner costs a few lookups however many workloads the namespace has.
 */
bool tl_pod_owner_find(const struct tl_pod_owner_index *index, const char *pod, size_t *out)
{
    const struct entry *best = NULL;
    size_t plen = strlen(pod);
    if (plen == MAX_POD_NAME)
        best = try_names(index, pod, MAX_BASE_LEN, false, best);
    for (size_t i = plen; i-- > 1;) {
        if (pod[i] == '-')
            best = try_names(index, pod, i, true, best);
    }
    if (best == NULL)
        return false;
    *out = best->pos;
    return true;
}
