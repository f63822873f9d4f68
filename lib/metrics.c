#include "metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd.h"
#include "log.h"

#define DROPPED_NAME  "tailor_metrics_dropped_series_total"
#define RENDER_CAP    ((size_t)256 << 20)
#define INITIAL_TABLE 16
#define FNV_OFFSET    14695981039346656037ULL
#define FNV_PRIME     1099511628211ULL
#define NUMBER_BUF    40

enum kind { KIND_COUNTER, KIND_GAUGE, KIND_HISTOGRAM };

/*
 * One combination of label values. A single allocation holds the struct, then the histogram's
 * bucket counts, then the key (the raw values, each NUL-terminated, in label order), then the
 * label set already rendered and escaped for the exposition (`a="x",b="y"`).
 */
struct series {
    uint64_t hash;
    double value;      /* counter or gauge value; a histogram's sum */
    uint64_t count;    /* histogram observations */
    uint64_t *buckets; /* histogram: per-bucket counts (not cumulative), nbounds + 1 */
    size_t index;      /* position in family.list */
    char *key;
    size_t key_len; /* bytes in key, NULs included */
    char *labels;
    size_t labels_len;
};

struct family {
    enum kind kind;
    struct tl_metrics *reg;
    char *name;
    char *help; /* escaped for the # HELP line */
    size_t nlabels;
    char *label_names[TL_METRICS_MAX_LABELS];
    size_t nbounds;
    double *bounds;
    char **le; /* bounds rendered for the le label */

    /* Open addressing with linear probing; capacity a power of two, at most half full. */
    struct series **table;
    size_t table_cap;
    struct series **list; /* every series; sorted by key when `sorted` */
    size_t nseries;
    size_t list_cap;
    bool sorted;
    bool warned;
};

/* The public handles are the family itself; distinct types keep a counter from being observed. */
struct tl_counter {
    struct family f;
};
struct tl_gauge {
    struct family f;
};
struct tl_metrics_hist {
    struct family f;
};

struct tl_metrics {
    size_t max_series;
    struct family **families; /* sorted by name */
    size_t nfamilies;
    size_t cap;
    struct tl_counter *dropped;
};

/* ---- names and escaping ---- */

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The rules of https://prometheus.io/docs/concepts/data_model/#metric-names-and-labels */
static bool valid_metric_name(const char *s)
{
    if (s == NULL || !(is_alpha(*s) || *s == ':'))
        return false;
    for (s++; *s != '\0'; s++)
        if (!(is_alpha(*s) || is_digit(*s) || *s == ':'))
            return false;
    return true;
}

static bool valid_label_name(const char *s)
{
    if (s == NULL || !is_alpha(*s) || strncmp(s, "__", 2) == 0)
        return false;
    for (s++; *s != '\0'; s++)
        if (!(is_alpha(*s) || is_digit(*s)))
            return false;
    return true;
}

/* Copies text with `\` and newline escaped (and `"` when quote); NULL when out of memory. */
static char *escape(const char *text, size_t len, bool quote, size_t *out_len)
{
    size_t extra = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\\' || text[i] == '\n' || (quote && text[i] == '"'))
            extra++;
    char *out = malloc(len + extra + 1);
    if (out == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '\\' || (quote && c == '"')) {
            out[n++] = '\\';
            out[n++] = c;
        }
        else if (c == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        }
        else {
            out[n++] = c;
        }
    }
    out[n] = '\0';
    if (out_len != NULL)
        *out_len = n;
    return out;
}

/* ---- number formatting ---- */

static size_t fmt_u64(char *out, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

/*
 * The shortest of %.15g and %.17g that reads back as the same double, so 0.1 prints as "0.1" and
 * nothing is lost; integers below 1e15 skip snprintf entirely, which keeps large scrapes fast.
 * Prometheus spells the specials NaN, +Inf and -Inf.
 */
static size_t fmt_double(char *out, double v)
{
    if (isnan(v)) {
        memcpy(out, "NaN", 4);
        return 3;
    }
    if (isinf(v)) {
        memcpy(out, v > 0 ? "+Inf" : "-Inf", 5);
        return 4;
    }
    if (v == floor(v) && fabs(v) < 1e15) {
        if (v < 0) {
            out[0] = '-';
            return 1 + fmt_u64(out + 1, (uint64_t)(-v));
        }
        return fmt_u64(out, (uint64_t)v);
    }
    int n = snprintf(out, NUMBER_BUF, "%.15g", v);
    if (n > 0 && strtod(out, NULL) != v)
        n = snprintf(out, NUMBER_BUF, "%.17g", v);
    if (n < 0 || n >= NUMBER_BUF) {
        memcpy(out, "NaN", 4);
        return 3;
    }
    return (size_t)n;
}

/* ---- output buffer ---- */

struct buf {
    char *p;
    size_t len;
    size_t cap;
    enum tl_err err;
};

static bool buf_reserve(struct buf *b, size_t more)
{
    if (b->err != TL_OK)
        return false;
    if (more > RENDER_CAP - b->len) {
        b->err = TL_ETOOBIG;
        return false;
    }
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap != 0 ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    if (cap > RENDER_CAP + 1)
        cap = RENDER_CAP + 1;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->err = TL_ENOMEM;
        return false;
    }
    b->p = p;
    b->cap = cap;
    b->p[b->len] = '\0';
    return true;
}

static void buf_add(struct buf *b, const char *s, size_t len)
{
    if (!buf_reserve(b, len))
        return;
    memcpy(b->p + b->len, s, len);
    b->len += len;
    b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* ---- series lookup ---- */

static uint64_t hash_values(const char *const *values, const size_t *lens, size_t n)
{
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)values[i];
        for (size_t j = 0; j < lens[i]; j++) {
            h ^= p[j];
            h *= FNV_PRIME;
        }
        h ^= 0xff; /* a byte no UTF-8 text contains, so ("ab","") and ("a","b") differ */
        h *= FNV_PRIME;
    }
    return h;
}

static bool key_equal(const struct series *s, const char *const *values, const size_t *lens,
                      size_t n)
{
    const char *p = s->key;
    for (size_t i = 0; i < n; i++) {
        if (memcmp(p, values[i], lens[i] + 1) != 0)
            return false;
        p += lens[i] + 1;
    }
    return true;
}

/* The label values of one observation, with their lengths and hash. */
struct key {
    const char *values[TL_METRICS_MAX_LABELS];
    size_t lens[TL_METRICS_MAX_LABELS];
    uint64_t hash;
};

static void key_make(const struct family *f, const char *const *in, struct key *k)
{
    for (size_t i = 0; i < f->nlabels; i++) {
        k->values[i] = in != NULL && in[i] != NULL ? in[i] : "";
        k->lens[i] = strlen(k->values[i]);
    }
    k->hash = hash_values(k->values, k->lens, f->nlabels);
}

/* Slot holding the series with this key, or the empty slot where it would go. */
static size_t table_slot(const struct family *f, const struct key *k)
{
    size_t mask = f->table_cap - 1;
    size_t i = (size_t)k->hash & mask;
    while (f->table[i] != NULL) {
        const struct series *s = f->table[i];
        if (s->hash == k->hash && key_equal(s, k->values, k->lens, f->nlabels))
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static void table_put(struct series **table, size_t cap, struct series *s)
{
    size_t i = (size_t)s->hash & (cap - 1);
    while (table[i] != NULL)
        i = (i + 1) & (cap - 1);
    table[i] = s;
}

static bool table_grow(struct family *f)
{
    size_t cap = f->table_cap * 2;
    struct series **table = calloc(cap, sizeof(struct series *));
    if (table == NULL)
        return false;
    for (size_t i = 0; i < f->nseries; i++)
        table_put(table, cap, f->list[i]);
    free(f->table);
    f->table = table;
    f->table_cap = cap;
    return true;
}

/*
 * Removes slot i with backward-shift deletion (Knuth 6.4, algorithm R): later members of the
 * probe run move up so lookups never stop early at the hole, and no tombstones pile up.
 */
static void table_delete(struct family *f, size_t i)
{
    size_t mask = f->table_cap - 1;
    size_t hole = i;
    f->table[hole] = NULL;
    for (size_t j = (hole + 1) & mask; f->table[j] != NULL; j = (j + 1) & mask) {
        size_t home = (size_t)f->table[j]->hash & mask;
        /* Move j into the hole unless its home lies cyclically in (hole, j]. */
        bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (!stays) {
            f->table[hole] = f->table[j];
            f->table[j] = NULL;
            hole = j;
        }
    }
}

static void count_dropped(struct family *f);

static struct series *series_new(const struct family *f, const struct key *k)
{
    const char *const *values = k->values;
    const size_t *lens = k->lens;
    size_t key_len = 0;
    for (size_t i = 0; i < f->nlabels; i++)
        key_len += lens[i] + 1;

    char *escaped[TL_METRICS_MAX_LABELS] = {0};
    size_t esc_len[TL_METRICS_MAX_LABELS] = {0};
    size_t labels_len = 0;
    struct series *s = NULL;
    for (size_t i = 0; i < f->nlabels; i++) {
        escaped[i] = escape(values[i], lens[i], true, &esc_len[i]);
        if (escaped[i] == NULL)
            goto out;
        labels_len += (i > 0 ? 1 : 0) + strlen(f->label_names[i]) + 2 + esc_len[i] + 1;
    }

    size_t nbuckets = f->kind == KIND_HISTOGRAM ? f->nbounds + 1 : 0;
    s = calloc(1, sizeof(*s) + nbuckets * sizeof(uint64_t) + key_len + labels_len + 1);
    if (s == NULL)
        goto out;
    s->hash = k->hash;
    s->buckets = nbuckets > 0 ? (uint64_t *)(s + 1) : NULL;
    s->key = (char *)(s + 1) + nbuckets * sizeof(uint64_t);
    s->key_len = key_len;
    s->labels = s->key + key_len;
    s->labels_len = labels_len;

    char *kp = s->key;
    char *l = s->labels;
    for (size_t i = 0; i < f->nlabels; i++) {
        memcpy(kp, values[i] != NULL ? values[i] : "", lens[i] + 1);
        kp += lens[i] + 1;
        if (i > 0)
            *l++ = ',';
        size_t nl = strlen(f->label_names[i]);
        memcpy(l, f->label_names[i], nl);
        l += nl;
        *l++ = '=';
        *l++ = '"';
        memcpy(l, escaped[i], esc_len[i]);
        l += esc_len[i];
        *l++ = '"';
    }
    *l = '\0';
out:
    for (size_t i = 0; i < f->nlabels; i++)
        free(escaped[i]);
    return s;
}

/* Finds or creates the series; NULL when it cannot exist (cap, bad value, no memory). */
static struct series *series_get(struct family *f, const char *const *in)
{
    struct key k = {0};
    key_make(f, in, &k);
    size_t slot = table_slot(f, &k);
    if (f->table[slot] != NULL)
        return f->table[slot];

    bool too_long = false;
    for (size_t i = 0; i < f->nlabels; i++)
        too_long = too_long || k.lens[i] > TL_METRICS_MAX_VALUE;
    if (too_long || f->nseries >= f->reg->max_series) {
        count_dropped(f);
        return NULL;
    }
    if ((f->nseries + 1) * 2 > f->table_cap) {
        if (!table_grow(f))
            return NULL;
        slot = table_slot(f, &k);
    }
    if (f->nseries == f->list_cap) {
        size_t cap = f->list_cap != 0 ? f->list_cap * 2 : 8;
        struct series **list = realloc(f->list, cap * sizeof(struct series *));
        if (list == NULL)
            return NULL;
        f->list = list;
        f->list_cap = cap;
    }
    struct series *s = series_new(f, &k);
    if (s == NULL)
        return NULL;
    f->table[slot] = s;
    s->index = f->nseries;
    f->list[f->nseries++] = s;
    f->sorted = false;
    return s;
}

/* The existing series for these values, or NULL. */
static struct series *series_find(const struct family *f, const char *const *in, size_t *slot)
{
    struct key k = {0};
    key_make(f, in, &k);
    size_t i = table_slot(f, &k);
    if (slot != NULL)
        *slot = i;
    return f->table[i];
}

static void count_dropped(struct family *f)
{
    struct tl_counter *dropped = f->reg->dropped;
    if (!f->warned) {
        f->warned = true;
        TL_WARN("metrics: dropping new series", TL_STR("metric", f->name),
                TL_INT("max_series", (long long)f->reg->max_series));
    }
    /* The drop counter has one series per metric; it never needs to count itself. */
    if (dropped != NULL && f != &dropped->f) {
        const char *values[] = {f->name};
        struct series *s = series_get(&dropped->f, values);
        if (s != NULL)
            s->value += 1;
    }
}

static enum tl_err series_remove(struct family *f, const char *const *values)
{
    size_t slot = 0;
    struct series *s = series_find(f, values, &slot);
    if (s == NULL)
        return TL_ENOTFOUND;
    table_delete(f, slot);
    struct series *last = f->list[f->nseries - 1];
    f->list[s->index] = last;
    last->index = s->index;
    f->nseries--;
    f->sorted = false;
    free(s);
    return TL_OK;
}

/* ---- registration ---- */

static void family_free(struct family *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->nseries; i++)
        free(f->list[i]);
    free(f->list);
    free(f->table);
    for (size_t i = 0; i < f->nbounds && f->le != NULL; i++)
        free(f->le[i]);
    free(f->le);
    free(f->bounds);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->label_names[i]);
    free(f->help);
    free(f->name);
    free(f);
}

/* Whether f exposes a sample (or # TYPE line) named name. */
static bool produces(const struct family *f, const char *name)
{
    size_t n = strlen(f->name);
    if (strncmp(name, f->name, n) != 0)
        return false;
    if (name[n] == '\0')
        return true;
    return f->kind == KIND_HISTOGRAM &&
           (strcmp(name + n, "_bucket") == 0 || strcmp(name + n, "_sum") == 0 ||
            strcmp(name + n, "_count") == 0);
}

static bool name_taken(const struct tl_metrics *m, const char *name, enum kind kind)
{
    static const char *const suffixes[] = {"", "_bucket", "_sum", "_count"};
    size_t nsuffixes = kind == KIND_HISTOGRAM ? 4 : 1;
    char probe[512];
    for (size_t s = 0; s < nsuffixes; s++) {
        int n = snprintf(probe, sizeof(probe), "%s%s", name, suffixes[s]);
        if (n < 0 || (size_t)n >= sizeof(probe))
            return true;
        for (size_t i = 0; i < m->nfamilies; i++)
            if (produces(m->families[i], probe))
                return true;
    }
    return false;
}

static enum tl_err check_labels(const char *name, const char *const *labels, enum kind kind,
                                size_t *count)
{
    size_t n = 0;
    for (; labels != NULL && labels[n] != NULL; n++) {
        if (n >= TL_METRICS_MAX_LABELS) {
            TL_ERROR("metrics: too many labels", TL_STR("metric", name),
                     TL_INT("max", TL_METRICS_MAX_LABELS));
            return TL_EINVAL;
        }
        if (!valid_label_name(labels[n]) ||
            (kind == KIND_HISTOGRAM && strcmp(labels[n], "le") == 0)) {
            TL_ERROR("metrics: invalid label name", TL_STR("metric", name),
                     TL_STR("label", labels[n]),
                     TL_STR("expected", "[a-zA-Z_][a-zA-Z0-9_]*, no leading __, le reserved"));
            return TL_EINVAL;
        }
        for (size_t j = 0; j < n; j++) {
            if (strcmp(labels[j], labels[n]) == 0) {
                TL_ERROR("metrics: duplicate label name", TL_STR("metric", name),
                         TL_STR("label", labels[n]));
                return TL_EINVAL;
            }
        }
    }
    *count = n;
    return TL_OK;
}

static enum tl_err check_bounds(const char *name, const double *bounds, size_t *nbounds)
{
    size_t n = *nbounds;
    if (n > 0 && bounds != NULL && isinf(bounds[n - 1]) && bounds[n - 1] > 0)
        n--;
    bool ok = bounds != NULL && n >= 1 && n <= TL_METRICS_MAX_BUCKETS;
    for (size_t i = 0; ok && i < n; i++)
        ok = isfinite(bounds[i]) && (i == 0 || bounds[i] > bounds[i - 1]);
    if (!ok) {
        TL_ERROR("metrics: invalid histogram bounds", TL_STR("metric", name),
                 TL_STR("expected", "1..64 finite, strictly increasing upper bounds"));
        return TL_EINVAL;
    }
    *nbounds = n;
    return TL_OK;
}

static enum tl_err family_init(struct family *f, struct tl_metrics *m, enum kind kind,
                               const char *name, const char *help, const char *const *labels,
                               size_t nlabels, const double *bounds, size_t nbounds)
{
    f->kind = kind;
    f->reg = m;
    f->name = strdup(name);
    f->help = escape(help, strlen(help), false, NULL);
    f->table_cap = INITIAL_TABLE;
    f->table = calloc(f->table_cap, sizeof(struct series *));
    if (f->name == NULL || f->help == NULL || f->table == NULL)
        return TL_ENOMEM;
    for (size_t i = 0; i < nlabels; i++) {
        f->label_names[i] = strdup(labels[i]);
        if (f->label_names[i] == NULL)
            return TL_ENOMEM;
        f->nlabels = i + 1;
    }
    if (kind == KIND_HISTOGRAM) {
        f->bounds = malloc(nbounds * sizeof(*f->bounds));
        f->le = calloc(nbounds, sizeof(char *));
        if (f->bounds == NULL || f->le == NULL)
            return TL_ENOMEM;
        f->nbounds = nbounds;
        for (size_t i = 0; i < nbounds; i++) {
            char num[NUMBER_BUF];
            fmt_double(num, bounds[i]);
            f->bounds[i] = bounds[i];
            f->le[i] = strdup(num);
            if (f->le[i] == NULL)
                return TL_ENOMEM;
        }
    }
    /* A metric without labels has exactly one series; expose it from the start. */
    if (nlabels == 0 && series_get(f, NULL) == NULL)
        return TL_ENOMEM;
    return TL_OK;
}

/* Allocates the typed handle; each is a struct holding only the family, at the same address. */
static struct family *family_alloc(enum kind kind)
{
    switch (kind) {
    case KIND_COUNTER: {
        struct tl_counter *c = calloc(1, sizeof(*c));
        return c != NULL ? &c->f : NULL;
    }
    case KIND_GAUGE: {
        struct tl_gauge *g = calloc(1, sizeof(*g));
        return g != NULL ? &g->f : NULL;
    }
    case KIND_HISTOGRAM: {
        struct tl_metrics_hist *h = calloc(1, sizeof(*h));
        return h != NULL ? &h->f : NULL;
    }
    }
    return NULL;
}

static enum tl_err family_register(struct tl_metrics *m, enum kind kind, const char *name,
                                   const char *help, const char *const *labels,
                                   const double *bounds, size_t nbounds, struct family **out)
{
    enum tl_err result = TL_OK;
    struct family *f = NULL;
    size_t nlabels = 0;
    if (m == NULL || out == NULL)
        return TL_EINVAL;
    if (!valid_metric_name(name)) {
        TL_ERROR("metrics: invalid metric name", TL_STR("metric", name != NULL ? name : "(null)"),
                 TL_STR("expected", "[a-zA-Z_:][a-zA-Z0-9_:]*"));
        return TL_EINVAL;
    }
    if (help == NULL || help[0] == '\0') {
        TL_ERROR("metrics: help text is required", TL_STR("metric", name));
        return TL_EINVAL;
    }
    result = check_labels(name, labels, kind, &nlabels);
    if (result != TL_OK)
        return result;
    if (kind == KIND_HISTOGRAM) {
        result = check_bounds(name, bounds, &nbounds);
        if (result != TL_OK)
            return result;
    }
    if (name_taken(m, name, kind)) {
        TL_ERROR("metrics: metric name already registered", TL_STR("metric", name));
        return TL_ECONFLICT;
    }
    if (m->nfamilies == m->cap) {
        size_t cap = m->cap != 0 ? m->cap * 2 : 16;
        struct family **families = realloc(m->families, cap * sizeof(struct family *));
        if (families == NULL)
            return TL_ENOMEM;
        m->families = families;
        m->cap = cap;
    }

    f = family_alloc(kind);
    if (f == NULL)
        return TL_ENOMEM;
    result = family_init(f, m, kind, name, help, labels, nlabels, bounds, nbounds);
    if (result != TL_OK)
        goto out;

    size_t pos = 0;
    while (pos < m->nfamilies && strcmp(m->families[pos]->name, name) < 0)
        pos++;
    memmove(m->families + pos + 1, m->families + pos,
            (m->nfamilies - pos) * sizeof(struct family *));
    m->families[pos] = f;
    m->nfamilies++;
    *out = f;
    f = NULL;
out:
    family_free(f);
    return result;
}

struct tl_metrics *tl_metrics_create(size_t max_series)
{
    struct tl_metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->max_series = max_series != 0 ? max_series : TL_METRICS_MAX_SERIES;
    static const char *const labels[] = {"metric", NULL};
    if (tl_metrics_counter(m, DROPPED_NAME,
                           "Observations dropped because their metric already held the maximum "
                           "number of series or a label value was too long, by metric.",
                           labels, &m->dropped) != TL_OK) {
        tl_metrics_destroy(m);
        return NULL;
    }
    return m;
}

void tl_metrics_destroy(struct tl_metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nfamilies; i++)
        family_free(m->families[i]);
    free(m->families);
    free(m);
}

enum tl_err tl_metrics_counter(struct tl_metrics *m, const char *name, const char *help,
                               const char *const *labels, struct tl_counter **out)
{
    struct family *f = NULL;
    enum tl_err result = family_register(m, KIND_COUNTER, name, help, labels, NULL, 0, &f);
    if (result == TL_OK)
        *out = (struct tl_counter *)(void *)f; /* f is the handle's first and only member */
    return result;
}

enum tl_err tl_metrics_gauge(struct tl_metrics *m, const char *name, const char *help,
                             const char *const *labels, struct tl_gauge **out)
{
    struct family *f = NULL;
    enum tl_err result = family_register(m, KIND_GAUGE, name, help, labels, NULL, 0, &f);
    if (result == TL_OK)
        *out = (struct tl_gauge *)(void *)f;
    return result;
}

enum tl_err tl_metrics_histogram(struct tl_metrics *m, const char *name, const char *help,
                                 const char *const *labels, const double *bounds, size_t nbounds,
                                 struct tl_metrics_hist **out)
{
    struct family *f = NULL;
    enum tl_err result =
        family_register(m, KIND_HISTOGRAM, name, help, labels, bounds, nbounds, &f);
    if (result == TL_OK)
        *out = (struct tl_metrics_hist *)(void *)f;
    return result;
}

enum tl_err tl_metrics_exponential_bounds(double start, double factor, size_t count, double *out)
{
    if (!(start > 0) || !(factor > 1) || count == 0 || count > TL_METRICS_MAX_BUCKETS ||
        out == NULL)
        return TL_EINVAL;
    double v = start;
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(v))
            return TL_EINVAL;
        v *= factor;
    }
    v = start;
    for (size_t i = 0; i < count; i++) {
        out[i] = v;
        v *= factor;
    }
    return TL_OK;
}

/* ---- observations ---- */

/* Reads the label values of family f, the variadic arguments after last, into values. */
#define COLLECT(f, last, values)                                                                   \
    do {                                                                                           \
        va_list ap_;                                                                               \
        va_start(ap_, last);                                                                       \
        for (size_t i_ = 0; i_ < (f)->nlabels; i_++)                                               \
            (values)[i_] = va_arg(ap_, const char *);                                              \
        va_end(ap_);                                                                               \
    } while (0)

void tl_metrics_counter_add_v(struct tl_counter *c, double v, const char *const *values)
{
    if (c == NULL || !(v >= 0))
        return;
    struct series *s = series_get(&c->f, values);
    if (s != NULL)
        s->value += v;
}

void tl_metrics_counter_add(struct tl_counter *c, double v, ...)
{
    if (c == NULL)
        return;
    const char *values[TL_METRICS_MAX_LABELS] = {0};
    COLLECT(&c->f, v, values);
    tl_metrics_counter_add_v(c, v, values);
}

void tl_metrics_gauge_set_v(struct tl_gauge *g, double v, const char *const *values)
{
    if (g == NULL)
        return;
    struct series *s = series_get(&g->f, values);
    if (s != NULL)
        s->value = v;
}

void tl_metrics_gauge_set(struct tl_gauge *g, double v, ...)
{
    if (g == NULL)
        return;
    const char *values[TL_METRICS_MAX_LABELS] = {0};
    COLLECT(&g->f, v, values);
    tl_metrics_gauge_set_v(g, v, values);
}

void tl_metrics_gauge_add_v(struct tl_gauge *g, double v, const char *const *values)
{
    if (g == NULL)
        return;
    struct series *s = series_get(&g->f, values);
    if (s != NULL)
        s->value += v;
}

void tl_metrics_gauge_add(struct tl_gauge *g, double v, ...)
{
    if (g == NULL)
        return;
    const char *values[TL_METRICS_MAX_LABELS] = {0};
    COLLECT(&g->f, v, values);
    tl_metrics_gauge_add_v(g, v, values);
}

void tl_metrics_histogram_observe_v(struct tl_metrics_hist *h, double v, const char *const *values)
{
    if (h == NULL || isnan(v))
        return;
    struct series *s = series_get(&h->f, values);
    if (s == NULL || s->buckets == NULL)
        return;
    /* Binary search for the first bound >= v; past the last bound is the +Inf bucket. */
    size_t lo = 0;
    size_t hi = h->f.nbounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->f.bounds[mid] >= v)
            hi = mid;
        else
            lo = mid + 1;
    }
    s->buckets[lo]++;
    s->count++;
    s->value += v;
}

void tl_metrics_histogram_observe(struct tl_metrics_hist *h, double v, ...)
{
    if (h == NULL)
        return;
    const char *values[TL_METRICS_MAX_LABELS] = {0};
    COLLECT(&h->f, v, values);
    tl_metrics_histogram_observe_v(h, v, values);
}

enum tl_err tl_metrics_counter_remove(struct tl_counter *c, ...)
{
    if (c == NULL)
        return TL_EINVAL;
    const char *values[TL_METRICS_MAX_LABELS] = {0};
    COLLECT(&c->f, c, values);
    return series_remove(&c->f, values);
}

enum tl_err tl_metrics_gauge_remove(struct tl_gauge *g, ...)
{
    if (g == NULL)
        return TL_EINVAL;
    const char *values[TL_METRICS_MAX_LABELS] = {0};
    COLLECT(&g->f, g, values);
    return series_remove(&g->f, values);
}

enum tl_err tl_metrics_histogram_remove(struct tl_metrics_hist *h, ...)
{
    if (h == NULL)
        return TL_EINVAL;
    const char *values[TL_METRICS_MAX_LABELS] = {0};
    COLLECT(&h->f, h, values);
    return series_remove(&h->f, values);
}

void tl_metrics_gauge_clear(struct tl_gauge *g)
{
    if (g == NULL)
        return;
    struct family *f = &g->f;
    for (size_t i = 0; i < f->nseries; i++)
        free(f->list[i]);
    f->nseries = 0;
    memset(f->table, 0, f->table_cap * sizeof(struct series *));
    f->sorted = true;
}

static enum tl_err value_get(const struct family *f, double *out, const char *const *values)
{
    const struct series *s = series_find(f, values, NULL);
    if (s == NULL)
        return TL_ENOTFOUND;
    *out = s->value;
    return TL_OK;
}

enum tl_err tl_metrics_counter_get(const struct tl_counter *c, double *out, ...)
{
    if (c == NULL || out == NULL)
        return TL_EINVAL;
    const char *values[TL_METRICS_MAX_LABELS] = {0};
    COLLECT(&c->f, out, values);
    return value_get(&c->f, out, values);
}

enum tl_err tl_metrics_gauge_get(const struct tl_gauge *g, double *out, ...)
{
    if (g == NULL || out == NULL)
        return TL_EINVAL;
    const char *values[TL_METRICS_MAX_LABELS] = {0};
    COLLECT(&g->f, out, values);
    return value_get(&g->f, out, values);
}

size_t tl_metrics_series_count(const struct tl_metrics *m, const char *name)
{
    for (size_t i = 0; m != NULL && name != NULL && i < m->nfamilies; i++)
        if (strcmp(m->families[i]->name, name) == 0)
            return m->families[i]->nseries;
    return 0;
}

/* ---- exposition ---- */

/*
 * Keys are the values NUL-separated in label order, so comparing the bytes (unsigned, the shorter
 * first on a tie) orders series by their first label value, then the second, and so on.
 */
static int series_cmp(const void *a, const void *b)
{
    const struct series *x = *(const struct series *const *)a;
    const struct series *y = *(const struct series *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static void family_sort(struct family *f)
{
    if (f->sorted)
        return;
    qsort(f->list, f->nseries, sizeof(struct series *), series_cmp);
    for (size_t i = 0; i < f->nseries; i++)
        f->list[i]->index = i;
    f->sorted = true;
}

/* name{labels[,extra]} value\n */
static void render_sample(struct buf *b, const char *name, size_t name_len, const char *suffix,
                          const struct series *s, const char *le, const char *value,
                          size_t value_len)
{
    size_t suffix_len = strlen(suffix);
    size_t le_len = le != NULL ? strlen(le) : 0;
    if (!buf_reserve(b, name_len + suffix_len + s->labels_len + le_len + value_len + 16))
        return;
    buf_add(b, name, name_len);
    buf_add(b, suffix, suffix_len);
    if (s->labels_len > 0 || le != NULL) {
        buf_add(b, "{", 1);
        buf_add(b, s->labels, s->labels_len);
        if (le != NULL) {
            if (s->labels_len > 0)
                buf_add(b, ",", 1);
            buf_add(b, "le=\"", 4);
            buf_add(b, le, le_len);
            buf_add(b, "\"", 1);
        }
        buf_add(b, "}", 1);
    }
    buf_add(b, " ", 1);
    buf_add(b, value, value_len);
    buf_add(b, "\n", 1);
}

static void render_family(struct buf *b, struct family *f)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    if (f->nseries == 0)
        return;
    family_sort(f);
    size_t name_len = strlen(f->name);
    buf_add(b, "# HELP ", 7);
    buf_add(b, f->name, name_len);
    buf_add(b, " ", 1);
    buf_str(b, f->help);
    buf_add(b, "\n# TYPE ", 8);
    buf_add(b, f->name, name_len);
    buf_add(b, " ", 1);
    buf_str(b, types[f->kind]);
    buf_add(b, "\n", 1);

    char num[NUMBER_BUF];
    for (size_t i = 0; i < f->nseries && b->err == TL_OK; i++) {
        const struct series *s = f->list[i];
        if (f->kind != KIND_HISTOGRAM) {
            size_t n = fmt_double(num, s->value);
            render_sample(b, f->name, name_len, "", s, NULL, num, n);
            continue;
        }
        uint64_t cumulative = 0;
        for (size_t j = 0; j < f->nbounds; j++) {
            cumulative += s->buckets[j];
            size_t n = fmt_u64(num, cumulative);
            render_sample(b, f->name, name_len, "_bucket", s, f->le[j], num, n);
        }
        size_t n = fmt_u64(num, s->count);
        render_sample(b, f->name, name_len, "_bucket", s, "+Inf", num, n);
        size_t sn = fmt_double(num, s->value);
        render_sample(b, f->name, name_len, "_sum", s, NULL, num, sn);
        n = fmt_u64(num, s->count);
        render_sample(b, f->name, name_len, "_count", s, NULL, num, n);
    }
}

enum tl_err tl_metrics_render(struct tl_metrics *m, char **out, size_t *len)
{
    if (m == NULL || out == NULL || len == NULL)
        return TL_EINVAL;
    struct buf b = {0};
    /* A rough guess of the size avoids most regrowth on big registries. */
    size_t guess = 256;
    for (size_t i = 0; i < m->nfamilies; i++)
        guess += 128 + m->families[i]->nseries * (64 + 48 * m->families[i]->nbounds);
    if (!buf_reserve(&b, guess < RENDER_CAP ? guess : RENDER_CAP))
        goto out;
    for (size_t i = 0; i < m->nfamilies && b.err == TL_OK; i++)
        render_family(&b, m->families[i]);
out:
    if (b.err != TL_OK) {
        free(b.p);
        return b.err;
    }
    *out = b.p;
    *len = b.len;
    return TL_OK;
}

/* ---- /metrics ---- */

static void serve_metrics(void *arg, struct tl_httpd_req *req)
{
    struct tl_metrics *m = arg;
    char *text = NULL;
    size_t len = 0;
    enum tl_err result = tl_metrics_render(m, &text, &len);
    if (result != TL_OK) {
        TL_ERROR("metrics: render failed", TL_ERRF(result));
        tl_httpd_respond_error(req, 500, "cannot render metrics");
        return;
    }
    tl_httpd_respond_owned(req, 200, TL_METRICS_CONTENT_TYPE, text, len);
}

enum tl_err tl_metrics_serve(struct tl_httpd *h, struct tl_metrics *m)
{
    if (h == NULL || m == NULL)
        return TL_EINVAL;
    return tl_httpd_route(h, "GET", "/metrics", serve_metrics, m);
}
