#include "yaml_json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* Anchors are looked up by a linear scan, so their number is capped. */
#define MAX_ANCHORS 4096
/* A plain scalar longer than this is never a number (the longest float is ~770 digits). */
#define MAX_NUMBER_TEXT 1024
#define YAML_TAG_PREFIX "tag:yaml.org,2002:"

struct anchor {
    char *name;
    cJSON *node;   /* the anchored node; never freed before the conversion ends */
    size_t height; /* levels of containers in the subtree (0 for a scalar) */
    size_t cost;   /* approximate bytes a copy takes */
};

/* One mapping member in the key index, so a repeated key is found without a linear scan. */
struct slot {
    const cJSON *parent;
    cJSON *item; /* NULL: empty slot; item->string is the key */
};

/* A mapping or sequence still open. Its node is attached to its parent only once complete. */
struct frame {
    cJSON *node;
    char *anchor;
    char *key;    /* mappings: the key whose value comes next */
    bool has_key; /* mappings: false while a key is expected */
    bool merge;   /* mappings: the pending key is the "<<" merge key */
    size_t height;
    size_t cost;
    yaml_mark_t mark; /* where it starts, for messages */
};

/*
 * Nodes are never freed while the conversion runs: anything discarded (a replaced duplicate
 * key, a merge source, an anchored key) goes to the graveyard, because anchors and the key index
 * may still point into it, and a freed address reused by a new mapping would confuse the index.
 */
struct builder {
    struct frame stack[TL_YAML_MAX_DEPTH];
    size_t depth;
    cJSON *docs;
    cJSON *root; /* the current document's root once complete */
    cJSON *graveyard;
    struct anchor *anchors;
    size_t nanchors;
    size_t anchors_cap;
    struct slot *slots;
    size_t nslots; /* a power of two, or 0 */
    size_t nused;
    size_t alias_cost;
    char *errbuf;
    size_t errlen;
};

static void report(struct builder *b, const yaml_mark_t *mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report(struct builder *b, const yaml_mark_t *mark, const char *fmt, ...)
{
    if (!b->errbuf || b->errlen == 0)
        return;
    size_t n = 0;
    if (mark) {
        int w = snprintf(b->errbuf, b->errlen, "line %zu column %zu: ", mark->line + 1,
                         mark->column + 1);
        if (w > 0)
            n = (size_t)w < b->errlen ? (size_t)w : b->errlen - 1;
    }
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(b->errbuf + n, b->errlen - n, fmt, ap);
    va_end(ap);
}

/* Reports where and what, and evaluates to err (visibly, for the static analyzer). */
#define FAIL(b, err, mark, ...) (report((b), (mark), __VA_ARGS__), (err))

static size_t node_cost(const cJSON *node)
{
    size_t cost = sizeof(cJSON);
    if (node->valuestring)
        cost += strlen(node->valuestring) + 1;
    if (node->string)
        cost += strlen(node->string) + 1;
    for (const cJSON *child = node->child; child; child = child->next)
        cost += node_cost(child);
    return cost;
}

/* ---- scalars ---------------------------------------------------------------------------- */

enum scalar_kind { S_STRING, S_NULL, S_BOOL, S_NUMBER, S_SPECIAL };

struct resolved {
    enum scalar_kind kind;
    bool is_int;
    bool b;
    double d;
};

static bool in_list(const char *s, const char *const *list)
{
    for (; *list; list++) {
        if (strcmp(s, *list) == 0)
            return true;
    }
    return false;
}

static const char *const null_words[] = {"", "~", "null", "Null", "NULL", NULL};
static const char *const true_words[] = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                         "True", "TRUE", "on",  "On",  "ON",  NULL};
static const char *const false_words[] = {"n",     "N",     "no",  "No",  "NO",  "false",
                                          "False", "FALSE", "off", "Off", "OFF", NULL};
static const char *const special_floats[] = {".nan",  ".NaN",  ".NAN",  ".inf",  ".Inf",
                                             ".INF",  "+.inf", "+.Inf", "+.INF", "-.inf",
                                             "-.Inf", "-.INF", NULL};

static int digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Go's strconv.ParseInt/ParseUint with base 0 (0x, 0o, 0b, leading-0 octal), as go-yaml uses. */
static bool parse_int(const char *s, double *out)
{
    const char *p = s;
    char sign = 0;
    if (*p == '+' || *p == '-')
        sign = *p++;
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    }
    else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) {
        base = 8;
        p += 2;
    }
    else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) {
        base = 2;
        p += 2;
    }
    else if (p[0] == '0' && p[1] != '\0') {
        base = 8;
        p++;
    }
    if (*p == '\0')
        return false;
    uint64_t v = 0;
    for (; *p; p++) {
        int d = digit_value(*p);
        if (d < 0 || d >= base)
            return false;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    if (sign == '-') {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        *out = -(double)v;
    }
    else {
        /* ParseUint takes no sign, so "+" numbers must fit ParseInt's int64. */
        if (sign == '+' && v > (uint64_t)INT64_MAX)
            return false;
        *out = (double)v;
    }
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* go-yaml's yamlStyleFloat: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$ */
static bool yaml_style_float(const char *s)
{
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (*p == '.') {
        p++;
        if (!is_digit(*p))
            return false;
        while (is_digit(*p))
            p++;
    }
    else {
        if (!is_digit(*p))
            return false;
        while (is_digit(*p))
            p++;
        if (*p == '.') {
            p++;
            while (is_digit(*p))
                p++;
        }
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!is_digit(*p))
            return false;
        while (is_digit(*p))
            p++;
    }
    return *p == '\0';
}

static bool parse_float(const char *s, double *out)
{
    if (!yaml_style_float(s))
        return false;
    errno = 0;
    char *end = NULL;
    double d = strtod(s, &end);
    if (end == s || *end != '\0' || (errno == ERANGE && isinf(d)))
        return false;
    *out = d;
    return true;
}

/* The YAML 1.1 resolution go-yaml v2 applies to a plain scalar (its resolve.go). */
static struct resolved resolve_plain(const char *s, size_t len)
{
    struct resolved r = {.kind = S_STRING};
    if (in_list(s, null_words)) {
        r.kind = S_NULL;
        return r;
    }
    if (in_list(s, true_words) || in_list(s, false_words)) {
        r.kind = S_BOOL;
        r.b = in_list(s, true_words);
        return r;
    }
    if (in_list(s, special_floats)) {
        r.kind = S_SPECIAL;
        return r;
    }
    if (len > MAX_NUMBER_TEXT)
        return r;
    if (s[0] == '.') {
        if (parse_float(s, &r.d))
            r.kind = S_NUMBER;
        return r;
    }
    if (!is_digit(s[0]) && s[0] != '+' && s[0] != '-')
        return r;
    /* go-yaml drops every '_' before trying the number forms. */
    char plain[MAX_NUMBER_TEXT + 1];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '_')
            plain[n++] = s[i];
    }
    plain[n] = '\0';
    if (parse_int(plain, &r.d)) {
        r.kind = S_NUMBER;
        r.is_int = true;
    }
    else if (parse_float(plain, &r.d)) {
        r.kind = S_NUMBER;
    }
    return r;
}

enum tag_kind { T_NONE, T_STR, T_BOOL, T_INT, T_FLOAT, T_NULL, T_OTHER };

static enum tag_kind tag_kind(const char *tag)
{
    if (!tag)
        return T_NONE;
    size_t plen = strlen(YAML_TAG_PREFIX);
    if (strncmp(tag, YAML_TAG_PREFIX, plen) != 0)
        return T_OTHER;
    const char *t = tag + plen;
    if (strcmp(t, "str") == 0)
        return T_STR;
    if (strcmp(t, "bool") == 0)
        return T_BOOL;
    if (strcmp(t, "int") == 0)
        return T_INT;
    if (strcmp(t, "float") == 0)
        return T_FLOAT;
    if (strcmp(t, "null") == 0)
        return T_NULL;
    return T_OTHER;
}

static enum tl_err make_scalar(struct builder *b, const yaml_event_t *ev, cJSON **out,
                               bool *is_merge)
{
    const char *text = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    const yaml_mark_t *mark = &ev->start_mark;
    if (memchr(text, '\0', len))
        return FAIL(b, TL_EINVAL, mark, "a string containing a NUL character is not supported");
    enum tag_kind tag = tag_kind((const char *)ev->data.scalar.tag);
    *is_merge = false;
    cJSON *node = NULL;
    if (tag == T_STR || tag == T_OTHER || (tag == T_NONE && !ev->data.scalar.plain_implicit)) {
        node = cJSON_CreateString(text);
    }
    else {
        struct resolved r = resolve_plain(text, len);
        bool ok = tag == T_NONE || (tag == T_BOOL && r.kind == S_BOOL) ||
                  (tag == T_INT && r.kind == S_NUMBER && r.is_int) ||
                  (tag == T_FLOAT && r.kind == S_NUMBER) || (tag == T_NULL && r.kind == S_NULL);
        if (!ok)
            return FAIL(b, TL_EINVAL, mark, "cannot read \"%.64s\" as %s", text,
                        (const char *)ev->data.scalar.tag);
        if (tag == T_NONE && strcmp(text, "<<") == 0)
            *is_merge = true;
        switch (r.kind) {
        case S_STRING:
            node = cJSON_CreateString(text);
            break;
        case S_NULL:
            node = cJSON_CreateNull();
            break;
        case S_BOOL:
            node = cJSON_CreateBool(r.b);
            break;
        case S_NUMBER:
            node = cJSON_CreateNumber(r.d);
            break;
        case S_SPECIAL:
            return FAIL(b, TL_EINVAL, mark, "%s has no JSON representation", text);
        }
    }
    if (!node)
        return FAIL(b, TL_ENOMEM, NULL, "out of memory");
    *out = node;
    return TL_OK;
}

/* Go's strconv.FormatFloat(f, 'g', -1, 64) for keys: the shortest text that reads back exactly. */
static char *format_number(double d)
{
    char buf[64];
    if (d == floor(d) && fabs(d) < 9.2e18)
        (void)snprintf(buf, sizeof(buf), "%.0f", d);
    else {
        (void)snprintf(buf, sizeof(buf), "%.15g", d);
        if (strtod(buf, NULL) != d)
            (void)snprintf(buf, sizeof(buf), "%.17g", d);
    }
    return strdup(buf);
}

/* The JSON key for a scalar node, as sigs.k8s.io/yaml writes it; NULL when out of memory. */
static char *key_of(const cJSON *node)
{
    if (cJSON_IsString(node))
        return strdup(node->valuestring);
    if (cJSON_IsTrue(node))
        return strdup("true");
    if (cJSON_IsFalse(node))
        return strdup("false");
    if (cJSON_IsNull(node))
        return strdup("null");
    return format_number(node->valuedouble);
}

/* ---- anchors and the key index ---------------------------------------------------------- */

static struct anchor *find_anchor(struct builder *b, const char *name)
{
    for (size_t i = 0; i < b->nanchors; i++) {
        if (strcmp(b->anchors[i].name, name) == 0)
            return &b->anchors[i];
    }
    return NULL;
}

/* Takes ownership of name. */
static enum tl_err add_anchor(struct builder *b, char *name, cJSON *node, size_t height,
                              size_t cost)
{
    struct anchor *a = find_anchor(b, name);
    if (!a) {
        if (b->nanchors == MAX_ANCHORS) {
            free(name);
            return FAIL(b, TL_ETOOBIG, NULL, "more than %d anchors", MAX_ANCHORS);
        }
        if (b->nanchors == b->anchors_cap) {
            size_t cap = b->anchors_cap ? b->anchors_cap * 2 : 16;
            struct anchor *grown = realloc(b->anchors, cap * sizeof(*grown));
            if (!grown) {
                free(name);
                return FAIL(b, TL_ENOMEM, NULL, "out of memory");
            }
            b->anchors = grown;
            b->anchors_cap = cap;
        }
        a = &b->anchors[b->nanchors++];
    }
    else {
        /* A redefined anchor: later aliases refer to the newest node (YAML 1.1 section 3.2.2.2). */
        free(a->name);
    }
    *a = (struct anchor){.name = name, .node = node, .height = height, .cost = cost};
    return TL_OK;
}

static void reset_anchors(struct builder *b)
{
    for (size_t i = 0; i < b->nanchors; i++)
        free(b->anchors[i].name);
    b->nanchors = 0;
}

static size_t slot_hash(const cJSON *parent, const char *key)
{
    /* FNV-1a over the key, seeded with the parent's address. */
    uint64_t h = 14695981039346656037ULL ^ (uint64_t)(uintptr_t)parent;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return (size_t)(h ^ (h >> 31));
}

static struct slot *lookup(struct builder *b, const cJSON *parent, const char *key)
{
    size_t mask = b->nslots - 1;
    for (size_t i = slot_hash(parent, key) & mask;; i = (i + 1) & mask) {
        struct slot *s = &b->slots[i];
        if (!s->item || (s->parent == parent && strcmp(s->item->string, key) == 0))
            return s;
    }
}

/* Keeps the index at most half full so a lookup always finds an empty slot. */
static enum tl_err reserve_slot(struct builder *b)
{
    if ((b->nused + 1) * 2 <= b->nslots)
        return TL_OK;
    size_t n = b->nslots ? b->nslots * 2 : 64;
    struct slot *old = b->slots;
    size_t oldn = b->nslots;
    b->slots = calloc(n, sizeof(*b->slots));
    if (!b->slots) {
        b->slots = old;
        return FAIL(b, TL_ENOMEM, NULL, "out of memory");
    }
    b->nslots = n;
    for (size_t i = 0; i < oldn; i++) {
        if (old[i].item)
            *lookup(b, old[i].parent, old[i].item->string) = old[i];
    }
    free(old);
    return TL_OK;
}

/*
 * Sets obj[key] = item, taking ownership of item. An existing member is replaced when replace is
 * set (a repeated key: the last one wins) and kept otherwise (a merged key never overrides).
 */
static enum tl_err set_member(struct builder *b, cJSON *obj, const char *key, cJSON *item,
                              bool replace)
{
    enum tl_err result = reserve_slot(b);
    if (result != TL_OK) {
        cJSON_Delete(item);
        return result;
    }
    struct slot *s = lookup(b, obj, key);
    if (s->item && !replace) {
        cJSON_AddItemToArray(b->graveyard, item);
        return TL_OK;
    }
    if (s->item)
        cJSON_AddItemToArray(b->graveyard, cJSON_DetachItemViaPointer(obj, s->item));
    else
        b->nused++;
    s->parent = obj;
    s->item = NULL;
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return FAIL(b, TL_ENOMEM, NULL, "out of memory");
    }
    s->item = item;
    return TL_OK;
}

static enum tl_err charge_alias(struct builder *b, size_t cost, const yaml_mark_t *mark)
{
    if (cost > TL_YAML_ALIAS_BUDGET - b->alias_cost)
        return FAIL(b, TL_ETOOBIG, mark, "aliases and merge keys expand past %zu bytes",
                    TL_YAML_ALIAS_BUDGET);
    b->alias_cost += cost;
    return TL_OK;
}

static enum tl_err merge_object(struct builder *b, cJSON *obj, const cJSON *src,
                                const yaml_mark_t *mark)
{
    const cJSON *child = NULL;
    cJSON_ArrayForEach(child, src)
    {
        if (lookup(b, obj, child->string)->item)
            continue;
        enum tl_err result = charge_alias(b, node_cost(child), mark);
        if (result != TL_OK)
            return result;
        cJSON *copy = cJSON_Duplicate(child, true);
        if (!copy)
            return FAIL(b, TL_ENOMEM, NULL, "out of memory");
        result = set_member(b, obj, child->string, copy, false);
        if (result != TL_OK)
            return result;
    }
    return TL_OK;
}

/* "<<: *base" or "<<: [*a, *b]": keys already present (or from an earlier source) win. */
static enum tl_err merge_value(struct builder *b, cJSON *obj, const cJSON *value,
                               const yaml_mark_t *mark)
{
    if (cJSON_IsObject(value))
        return merge_object(b, obj, value, mark);
    if (cJSON_IsArray(value)) {
        const cJSON *elem = NULL;
        cJSON_ArrayForEach(elem, value)
        {
            if (!cJSON_IsObject(elem))
                break;
            enum tl_err result = merge_object(b, obj, elem, mark);
            if (result != TL_OK)
                return result;
        }
        if (!elem)
            return TL_OK;
    }
    return FAIL(b, TL_EINVAL, mark, "a merge key (<<) needs a mapping or a list of mappings");
}

/* ---- tree building ---------------------------------------------------------------------- */

/*
 * Hands a complete node to its parent (or makes it the document root). Takes ownership of node
 * and of anchor (the name to register it under, or NULL) on every path.
 */
static enum tl_err emit(struct builder *b, cJSON *node, size_t height, size_t cost, char *anchor,
                        bool is_merge_key, const yaml_mark_t *mark)
{
    bool anchored = anchor != NULL;
    if (anchored) {
        enum tl_err result = add_anchor(b, anchor, node, height, cost);
        if (result != TL_OK) {
            cJSON_Delete(node);
            return result;
        }
    }
    if (b->depth == 0) {
        b->root = node;
        return TL_OK;
    }
    struct frame *f = &b->stack[b->depth - 1];
    if (height + 1 > f->height)
        f->height = height + 1;
    if (cJSON_IsArray(f->node)) {
        cJSON_AddItemToArray(f->node, node);
        f->cost += cost;
        return TL_OK;
    }
    if (!f->has_key) {
        bool container = cJSON_IsArray(node) || cJSON_IsObject(node);
        char *key = container ? NULL : key_of(node);
        if (anchored)
            cJSON_AddItemToArray(b->graveyard, node);
        else
            cJSON_Delete(node);
        if (container)
            return FAIL(b, TL_EINVAL, mark, "a mapping key must be a scalar");
        if (!key)
            return FAIL(b, TL_ENOMEM, NULL, "out of memory");
        f->key = key;
        f->has_key = true;
        f->merge = is_merge_key;
        return TL_OK;
    }
    char *key = f->key;
    f->key = NULL;
    f->has_key = false;
    f->cost += cost + strlen(key) + 1;
    enum tl_err result = TL_OK;
    if (f->merge) {
        result = merge_value(b, f->node, node, mark);
        cJSON_AddItemToArray(b->graveyard, node);
    }
    else {
        result = set_member(b, f->node, key, node, true);
    }
    free(key);
    return result;
}

/* Opens a mapping or sequence; takes ownership of node and anchor. */
static enum tl_err push(struct builder *b, cJSON *node, const yaml_char_t *anchor,
                        const yaml_mark_t *mark)
{
    if (!node)
        return FAIL(b, TL_ENOMEM, NULL, "out of memory");
    if (b->depth == TL_YAML_MAX_DEPTH) {
        cJSON_Delete(node);
        return FAIL(b, TL_ETOOBIG, mark, "nested deeper than %d levels", TL_YAML_MAX_DEPTH);
    }
    char *name = NULL;
    if (anchor && !(name = strdup((const char *)anchor))) {
        cJSON_Delete(node);
        return FAIL(b, TL_ENOMEM, NULL, "out of memory");
    }
    b->stack[b->depth++] = (struct frame){
        .node = node, .anchor = name, .height = 1, .cost = sizeof(cJSON), .mark = *mark};
    return TL_OK;
}

static enum tl_err pop(struct builder *b)
{
    /* libyaml never ends a node it did not start; checked all the same. */
    if (b->depth == 0 || !b->stack[b->depth - 1].node)
        return FAIL(b, TL_EINVAL, NULL, "unbalanced document");
    struct frame f = b->stack[--b->depth];
    free(f.key);
    return emit(b, f.node, f.height, f.cost, f.anchor, false, &f.mark);
}

static enum tl_err on_scalar(struct builder *b, const yaml_event_t *ev)
{
    cJSON *node = NULL;
    bool is_merge = false;
    enum tl_err result = make_scalar(b, ev, &node, &is_merge);
    if (result != TL_OK)
        return result;
    char *name = NULL;
    if (ev->data.scalar.anchor && !(name = strdup((const char *)ev->data.scalar.anchor))) {
        cJSON_Delete(node);
        return FAIL(b, TL_ENOMEM, NULL, "out of memory");
    }
    return emit(b, node, 0, node_cost(node), name, is_merge, &ev->start_mark);
}

static enum tl_err on_alias(struct builder *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    const yaml_mark_t *mark = &ev->start_mark;
    const struct anchor *a = find_anchor(b, name);
    if (!a)
        return FAIL(b, TL_EINVAL, mark, "unknown anchor \"%.64s\"", name);
    if (b->depth + a->height > TL_YAML_MAX_DEPTH)
        return FAIL(b, TL_ETOOBIG, mark, "nested deeper than %d levels", TL_YAML_MAX_DEPTH);
    enum tl_err result = charge_alias(b, a->cost, mark);
    if (result != TL_OK)
        return result;
    cJSON *copy = cJSON_Duplicate(a->node, true);
    if (!copy)
        return FAIL(b, TL_ENOMEM, NULL, "out of memory");
    return emit(b, copy, a->height, a->cost, NULL, false, mark);
}

static enum tl_err on_event(struct builder *b, const yaml_event_t *ev, bool *done)
{
    switch (ev->type) {
    case YAML_STREAM_END_EVENT:
        *done = true;
        return TL_OK;
    case YAML_DOCUMENT_START_EVENT:
        /* Anchors are scoped to their document. */
        reset_anchors(b);
        return TL_OK;
    case YAML_DOCUMENT_END_EVENT: {
        cJSON *root = b->root ? b->root : cJSON_CreateNull();
        b->root = NULL;
        if (!root)
            return FAIL(b, TL_ENOMEM, NULL, "out of memory");
        cJSON_AddItemToArray(b->docs, root);
        return TL_OK;
    }
    case YAML_SEQUENCE_START_EVENT:
        return push(b, cJSON_CreateArray(), ev->data.sequence_start.anchor, &ev->start_mark);
    case YAML_MAPPING_START_EVENT:
        return push(b, cJSON_CreateObject(), ev->data.mapping_start.anchor, &ev->start_mark);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return pop(b);
    case YAML_SCALAR_EVENT:
        return on_scalar(b, ev);
    case YAML_ALIAS_EVENT:
        return on_alias(b, ev);
    case YAML_NO_EVENT:
    case YAML_STREAM_START_EVENT:
        return TL_OK;
    }
    return TL_OK;
}

static enum tl_err parser_fail(struct builder *b, const yaml_parser_t *parser)
{
    const char *problem = parser->problem ? parser->problem : "unknown error";
    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        return FAIL(b, TL_ENOMEM, NULL, "out of memory");
    case YAML_READER_ERROR:
        if (parser->problem_value != -1)
            return FAIL(b, TL_EINVAL, NULL, "byte %zu: %s (0x%x)", parser->problem_offset, problem,
                        (unsigned)parser->problem_value);
        return FAIL(b, TL_EINVAL, NULL, "byte %zu: %s", parser->problem_offset, problem);
    default:
        if (parser->context)
            return FAIL(b, TL_EINVAL, &parser->problem_mark, "%s (%s at line %zu column %zu)",
                        problem, parser->context, parser->context_mark.line + 1,
                        parser->context_mark.column + 1);
        return FAIL(b, TL_EINVAL, &parser->problem_mark, "%s", problem);
    }
}

enum tl_err tl_yaml_to_json(const char *text, size_t len, cJSON **out, char *errbuf, size_t errlen)
{
    struct builder b = {.errbuf = errbuf, .errlen = errlen};
    if (errbuf && errlen > 0)
        errbuf[0] = '\0';
    if (len > TL_YAML_MAX_INPUT)
        return FAIL(&b, TL_ETOOBIG, NULL, "%zu bytes is more than the %zu-byte limit", len,
                    TL_YAML_MAX_INPUT);
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return FAIL(&b, TL_ENOMEM, NULL, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)(text ? text : ""),
                                 text ? len : 0);
    enum tl_err result = TL_OK;
    b.docs = cJSON_CreateArray();
    b.graveyard = cJSON_CreateArray();
    if (!b.docs || !b.graveyard) {
        result = FAIL(&b, TL_ENOMEM, NULL, "out of memory");
        goto out;
    }
    for (bool done = false; !done;) {
        yaml_event_t event;
        if (!yaml_parser_parse(&parser, &event)) {
            result = parser_fail(&b, &parser);
            goto out;
        }
        result = on_event(&b, &event, &done);
        yaml_event_delete(&event);
        if (result != TL_OK)
            goto out;
    }
    *out = b.docs;
    b.docs = NULL;
out:
    while (b.depth > 0) {
        struct frame *f = &b.stack[--b.depth];
        cJSON_Delete(f->node);
        free(f->anchor);
        free(f->key);
    }
    cJSON_Delete(b.root);
    cJSON_Delete(b.docs);
    cJSON_Delete(b.graveyard);
    reset_anchors(&b);
    free(b.anchors);
    free(b.slots);
    yaml_parser_delete(&parser);
    return result;
}
