#include "json.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cJSON copies a number into a 64-byte buffer before strtod; a longer one would be cut. */
#define MAX_NUMBER_CHARS 63

/* Objects up to this size are checked for duplicate keys pairwise; larger ones are sorted. */
#define DUP_PAIRWISE_MAX 16

__attribute__((format(printf, 3, 4))) static void set_err(char *err, size_t errlen, const char *fmt,
                                                          ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (n < 0)
        err[0] = '\0';
    /* A longer message is cut at errlen: it is a diagnostic, the code carries the meaning. */
}

/* ---- Strict syntax check ----
 *
 * cJSON accepts more than RFC 8259 (leading zeros, raw control characters, any byte below 0x21
 * as whitespace), cannot tell a syntax error from a failed allocation, and silently cuts strings
 * at "\u0000". So the text is first checked by this recognizer, which allocates nothing and
 * knows the exact byte and reason of the first error; cJSON then builds the tree from text that
 * is known to be valid, so a cJSON failure can only be ENOMEM. Everything accepted here must be
 * accepted by cJSON 1.7: numbers at most 63 characters, no lone surrogates, depth within
 * CJSON_NESTING_LIMIT counted the same way.
 */

struct scanner {
    const unsigned char *text;
    size_t len;
    size_t pos;
    const char *why; /* set on the first error; pos is then its offset */
};

static bool scan_fail(struct scanner *s, const char *why)
{
    s->why = why;
    return false;
}

static void scan_ws(struct scanner *s)
{
    while (s->pos < s->len) {
        unsigned char c = s->text[s->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            return;
        s->pos++;
    }
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Reads the four hex digits after "\u" at s->pos (which points at the backslash). */
static bool scan_hex4(struct scanner *s, unsigned *out)
{
    if (s->len - s->pos < 6)
        return scan_fail(s, "truncated \\u escape");
    unsigned v = 0;
    for (size_t i = 2; i < 6; i++) {
        int h = hex_value(s->text[s->pos + i]);
        if (h < 0)
            return scan_fail(s, "\\u must be followed by four hex digits");
        v = v * 16 + (unsigned)h;
    }
    *out = v;
    return true;
}

static bool scan_string(struct scanner *s)
{
    s->pos++; /* the opening quote */
    while (s->pos < s->len) {
        unsigned char c = s->text[s->pos];
        if (c == '"') {
            s->pos++;
            return true;
        }
        if (c < 0x20)
            return scan_fail(s, "control character in a string (must be escaped)");
        if (c != '\\') {
            s->pos++;
            continue;
        }
        if (s->pos + 1 >= s->len)
            return scan_fail(s, "unterminated string");
        unsigned char e = s->text[s->pos + 1];
        if (strchr("\"\\/bfnrt", e) != NULL && e != '\0') {
            s->pos += 2;
            continue;
        }
        if (e != 'u')
            return scan_fail(s, "invalid escape in a string");
        unsigned code;
        if (!scan_hex4(s, &code))
            return false;
        if (code == 0)
            return scan_fail(s, "\\u0000 is not supported");
        if (code >= 0xDC00 && code <= 0xDFFF)
            return scan_fail(s, "lone UTF-16 low surrogate");
        if (code >= 0xD800 && code <= 0xDBFF) {
            size_t high = s->pos;
            s->pos += 6;
            unsigned low;
            if (s->len - s->pos < 2 || s->text[s->pos] != '\\' || s->text[s->pos + 1] != 'u' ||
                !scan_hex4(s, &low) || low < 0xDC00 || low > 0xDFFF) {
                s->pos = high;
                return scan_fail(s, "UTF-16 high surrogate without a low surrogate");
            }
        }
        s->pos += 6;
    }
    return scan_fail(s, "unterminated string");
}

static bool scan_number(struct scanner *s)
{
    size_t start = s->pos;
    if (s->text[s->pos] == '-')
        s->pos++;
    if (s->pos >= s->len || !is_digit(s->text[s->pos]))
        return scan_fail(s, "expected a digit");
    if (s->text[s->pos] == '0') {
        s->pos++;
        if (s->pos < s->len && is_digit(s->text[s->pos]))
            return scan_fail(s, "leading zero in a number");
    }
    else {
        while (s->pos < s->len && is_digit(s->text[s->pos]))
            s->pos++;
    }
    if (s->pos < s->len && s->text[s->pos] == '.') {
        s->pos++;
        if (s->pos >= s->len || !is_digit(s->text[s->pos]))
            return scan_fail(s, "expected a digit after the decimal point");
        while (s->pos < s->len && is_digit(s->text[s->pos]))
            s->pos++;
    }
    if (s->pos < s->len && (s->text[s->pos] == 'e' || s->text[s->pos] == 'E')) {
        s->pos++;
        if (s->pos < s->len && (s->text[s->pos] == '+' || s->text[s->pos] == '-'))
            s->pos++;
        if (s->pos >= s->len || !is_digit(s->text[s->pos]))
            return scan_fail(s, "expected a digit in the exponent");
        while (s->pos < s->len && is_digit(s->text[s->pos]))
            s->pos++;
    }
    size_t n = s->pos - start;
    if (n > MAX_NUMBER_CHARS) {
        s->pos = start;
        return scan_fail(s, "number longer than 63 characters");
    }
    char copy[MAX_NUMBER_CHARS + 1];
    memcpy(copy, s->text + start, n);
    copy[n] = '\0';
    char *end = NULL;
    double v = strtod(copy, &end);
    if (end != copy + n || isinf(v)) {
        s->pos = start;
        return scan_fail(s, "number out of range for a double");
    }
    return true;
}

static bool scan_literal(struct scanner *s, const char *word)
{
    size_t n = strlen(word);
    if (s->len - s->pos < n || memcmp(s->text + s->pos, word, n) != 0)
        return scan_fail(s, "expected a JSON value");
    s->pos += n;
    return true;
}

static bool scan_value(struct scanner *s, size_t depth);

/* Arrays and objects: open is at s->pos. */
static bool scan_container(struct scanner *s, size_t depth)
{
    bool object = s->text[s->pos] == '{';
    unsigned char close = object ? '}' : ']';
    if (depth >= TL_JSON_MAX_DEPTH)
        return scan_fail(s, "nested too deeply");
    s->pos++;
    scan_ws(s);
    if (s->pos < s->len && s->text[s->pos] == close) {
        s->pos++;
        return true;
    }
    for (;;) {
        if (object) {
            if (s->pos >= s->len || s->text[s->pos] != '"')
                return scan_fail(s, "expected a string key");
            if (!scan_string(s))
                return false;
            scan_ws(s);
            if (s->pos >= s->len || s->text[s->pos] != ':')
                return scan_fail(s, "expected ':' after an object key");
            s->pos++;
            scan_ws(s);
        }
        if (!scan_value(s, depth + 1))
            return false;
        scan_ws(s);
        if (s->pos < s->len && s->text[s->pos] == ',') {
            s->pos++;
            scan_ws(s);
            continue;
        }
        if (s->pos < s->len && s->text[s->pos] == close) {
            s->pos++;
            return true;
        }
        return scan_fail(s, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bool scan_value(struct scanner *s, size_t depth)
{
    if (s->pos >= s->len)
        return scan_fail(s, "unexpected end of input");
    unsigned char c = s->text[s->pos];
    switch (c) {
    case '{':
    case '[':
        return scan_container(s, depth);
    case '"':
        return scan_string(s);
    case 't':
        return scan_literal(s, "true");
    case 'f':
        return scan_literal(s, "false");
    case 'n':
        return scan_literal(s, "null");
    default:
        if (c == '-' || is_digit(c))
            return scan_number(s);
        return scan_fail(s, c == '\0' ? "NUL byte" : "expected a JSON value");
    }
}

static bool scan_document(struct scanner *s)
{
    scan_ws(s);
    if (s->pos >= s->len)
        return scan_fail(s, "empty document");
    if (!scan_value(s, 0))
        return false;
    scan_ws(s);
    if (s->pos < s->len)
        return scan_fail(s, "unexpected data after the document");
    return true;
}

/* ---- Duplicate keys ---- */

static int compare_keys(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sets *dup to a key that occurs twice in obj, or NULL. Sorting keeps wide objects O(n log n). */
static enum tl_err find_duplicate_key(const cJSON *obj, size_t n, const char **dup)
{
    *dup = NULL;
    if (n <= DUP_PAIRWISE_MAX) {
        for (const cJSON *a = obj->child; a != NULL; a = a->next)
            for (const cJSON *b = a->next; b != NULL; b = b->next)
                if (strcmp(a->string, b->string) == 0) {
                    *dup = a->string;
                    return TL_OK;
                }
        return TL_OK;
    }
    const char **keys = malloc(n * sizeof(*keys));
    if (keys == NULL)
        return TL_ENOMEM;
    size_t i = 0;
    for (const cJSON *m = obj->child; m != NULL; m = m->next)
        keys[i++] = m->string;
    qsort(keys, n, sizeof(*keys), compare_keys);
    for (i = 1; i < n; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            *dup = keys[i];
            break;
        }
    free(keys);
    return TL_OK;
}

/* Walks a freshly parsed tree (depth bounded by the scanner) for objects with repeated keys. */
static enum tl_err check_unique_keys(const cJSON *node, char *err, size_t errlen)
{
    if (cJSON_IsObject(node)) {
        const char *dup = NULL;
        enum tl_err result = find_duplicate_key(node, tl_json_size(node), &dup);
        if (result != TL_OK) {
            set_err(err, errlen, "out of memory");
            return result;
        }
        if (dup != NULL) {
            set_err(err, errlen, "invalid JSON: duplicate key \"%s\" in an object", dup);
            return TL_EINVAL;
        }
    }
    for (const cJSON *c = node->child; c != NULL; c = c->next) {
        enum tl_err result = check_unique_keys(c, err, errlen);
        if (result != TL_OK)
            return result;
    }
    return TL_OK;
}

enum tl_err tl_json_parse(const char *buf, size_t len, size_t cap, cJSON **out, char *err,
                          size_t errlen)
{
    enum tl_err result = TL_OK;
    cJSON *root = NULL;
    if (out == NULL || (buf == NULL && len > 0)) {
        set_err(err, errlen, "no buffer to parse");
        return TL_EINVAL;
    }
    if (len > cap) {
        set_err(err, errlen, "JSON document is %zu bytes, over the %zu-byte limit", len, cap);
        return TL_ETOOBIG;
    }
    size_t start = 0;
    if (len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        start = 3;
    struct scanner s = {(const unsigned char *)buf, len, start, NULL};
    if (len == 0 || !scan_document(&s)) {
        size_t line = 1;
        size_t line_start = 0;
        for (size_t i = 0; i < s.pos; i++)
            if (buf[i] == '\n') {
                line++;
                line_start = i + 1;
            }
        set_err(err, errlen, "invalid JSON at byte %zu (line %zu, column %zu): %s", s.pos, line,
                s.pos - line_start + 1, s.why ? s.why : "empty document");
        return TL_EINVAL;
    }
    root = cJSON_ParseWithLengthOpts(buf + start, len - start, NULL, 0);
    if (root == NULL) {
        /* The text is valid (checked above), so only an allocation can have failed. */
        set_err(err, errlen, "out of memory parsing JSON");
        result = TL_ENOMEM;
        goto out;
    }
    result = check_unique_keys(root, err, errlen);
    if (result != TL_OK)
        goto out;
    *out = root;
    root = NULL;
out:
    cJSON_Delete(root);
    return result;
}

/* ---- Printing ----
 *
 * Not cJSON_PrintUnformatted: cJSON prints a number with 15 significant digits whenever those
 * read back within a relative 2^-52, so 9007199254740991 comes out as 9.00719925474099e+15
 * (...990) and 0.1 + 0.2 as 0.3. Here a number gets the fewest digits, 15 to 17, that strtod
 * maps back to the very same double. Strings are escaped as cJSON escapes them.
 */

struct printer {
    char *buf;
    size_t len;
    size_t cap;
    bool failed;
};

static void put(struct printer *p, const char *s, size_t n)
{
    if (p->failed)
        return;
    if (n > SIZE_MAX - p->len - 1) {
        p->failed = true;
        return;
    }
    size_t need = p->len + n + 1;
    if (need > p->cap) {
        size_t cap = p->cap > 0 ? p->cap : 256;
        while (cap < need) {
            if (cap > SIZE_MAX / 2) {
                p->failed = true;
                return;
            }
            cap *= 2;
        }
        char *grown = realloc(p->buf, cap);
        if (grown == NULL) {
            p->failed = true;
            return;
        }
        p->buf = grown;
        p->cap = cap;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    p->buf[p->len] = '\0';
}

/* The two-character escape for c, or 0 when c needs the \\u form. */
static char short_escape(unsigned char c)
{
    switch (c) {
    case '"':
        return '"';
    case '\\':
        return '\\';
    case '\b':
        return 'b';
    case '\f':
        return 'f';
    case '\n':
        return 'n';
    case '\r':
        return 'r';
    case '\t':
        return 't';
    default:
        return 0;
    }
}

static void put_string(struct printer *p, const char *s)
{
    put(p, "\"", 1);
    const unsigned char *run = (const unsigned char *)(s != NULL ? s : "");
    const unsigned char *c = run;
    for (; *c != '\0'; c++) {
        if (*c >= 0x20 && *c != '"' && *c != '\\')
            continue;
        put(p, (const char *)run, (size_t)(c - run));
        char esc[8] = {'\\', short_escape(*c)};
        if (esc[1] != 0)
            put(p, esc, 2);
        else if (snprintf(esc, sizeof(esc), "\\u%04x", *c) == 6)
            put(p, esc, 6);
        else
            p->failed = true;
        run = c + 1;
    }
    put(p, (const char *)run, (size_t)(c - run));
    put(p, "\"", 1);
}

static void put_number(struct printer *p, double d)
{
    if (!isfinite(d)) { /* JSON has no spelling for it; cJSON would print null */
        p->failed = true;
        return;
    }
    char num[40];
    int n = 0;
    for (int digits = 15; digits <= 17; digits++) {
        n = snprintf(num, sizeof(num), "%.*g", digits, d);
        if (n <= 0 || (size_t)n >= sizeof(num)) {
            p->failed = true;
            return;
        }
        if (strtod(num, NULL) == d)
            break;
    }
    /* Both calls above follow LC_NUMERIC; JSON always wants '.'. */
    char point = localeconv()->decimal_point[0];
    for (int i = 0; point != '.' && i < n; i++)
        if (num[i] == point)
            num[i] = '.';
    put(p, num, (size_t)n);
}

static void put_value(struct printer *p, const cJSON *item)
{
    switch (item->type & 0xFF) {
    case cJSON_NULL:
        put(p, "null", 4);
        return;
    case cJSON_False:
        put(p, "false", 5);
        return;
    case cJSON_True:
        put(p, "true", 4);
        return;
    case cJSON_Number:
        put_number(p, item->valuedouble);
        return;
    case cJSON_String:
        put_string(p, item->valuestring);
        return;
    case cJSON_Raw:
        if (item->valuestring == NULL)
            p->failed = true;
        else
            put(p, item->valuestring, strlen(item->valuestring));
        return;
    case cJSON_Array:
    case cJSON_Object: {
        bool object = (item->type & 0xFF) == cJSON_Object;
        put(p, object ? "{" : "[", 1);
        for (const cJSON *c = item->child; c != NULL && !p->failed; c = c->next) {
            if (c != item->child)
                put(p, ",", 1);
            if (object) {
                put_string(p, c->string);
                put(p, ":", 1);
            }
            put_value(p, c);
        }
        put(p, object ? "}" : "]", 1);
        return;
    }
    default:
        p->failed = true;
        return;
    }
}

char *tl_json_print(const cJSON *item)
{
    if (item == NULL)
        return NULL;
    struct printer p = {NULL, 0, 0, false};
    put_value(&p, item);
    if (p.failed) {
        free(p.buf);
        return NULL;
    }
    return p.buf;
}

/* ---- Lookups ---- */

enum tl_err tl_json_index_parse(const char *text, size_t len, size_t *out)
{
    if (text == NULL || len == 0 || (len > 1 && text[0] == '0'))
        return TL_EINVAL;
    size_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit((unsigned char)text[i]))
            return TL_EINVAL;
        size_t d = (size_t)(text[i] - '0');
        if (v > (SIZE_MAX - d) / 10)
            return TL_ERANGE;
        v = v * 10 + d;
    }
    *out = v;
    return TL_OK;
}

cJSON *tl_json_array_at(const cJSON *array, size_t index)
{
    if (!cJSON_IsArray(array))
        return NULL;
    cJSON *c = array->child;
    while (c != NULL && index > 0) {
        c = c->next;
        index--;
    }
    return c;
}

size_t tl_json_size(const cJSON *container)
{
    if (!cJSON_IsArray(container) && !cJSON_IsObject(container))
        return 0;
    size_t n = 0;
    for (const cJSON *c = container->child; c != NULL; c = c->next)
        n++;
    return n;
}

/* One lookup step: an object member by exact key, or an array element by decimal index. */
static cJSON *step(const cJSON *node, const char *key)
{
    if (cJSON_IsObject(node))
        return cJSON_GetObjectItemCaseSensitive(node, key);
    size_t index;
    if (cJSON_IsArray(node) && tl_json_index_parse(key, strlen(key), &index) == TL_OK)
        return tl_json_array_at(node, index);
    return NULL;
}

cJSON *tl_json_get(const cJSON *root, ...)
{
    /* cJSON's getters also hand out non-const children of a const tree; the caller decides. */
    cJSON *node = (cJSON *)root;
    va_list ap;
    va_start(ap, root);
    const char *key;
    while (node != NULL && (key = va_arg(ap, const char *)) != NULL)
        node = step(node, key);
    va_end(ap);
    return node;
}

/* Finds the value a typed getter reads; *item is NULL when absent. */
static enum tl_err lookup(const cJSON *obj, const char *key, const cJSON **item)
{
    if (obj == NULL || key == NULL) {
        *item = obj;
        return TL_OK;
    }
    if (!cJSON_IsObject(obj))
        return TL_EINVAL;
    *item = cJSON_GetObjectItemCaseSensitive(obj, key);
    return TL_OK;
}

enum tl_err tl_json_string(const cJSON *obj, const char *key, const char *fallback,
                           const char **out)
{
    const cJSON *item;
    enum tl_err result = lookup(obj, key, &item);
    if (result != TL_OK)
        return result;
    if (item == NULL || cJSON_IsNull(item)) {
        *out = fallback;
        return TL_OK;
    }
    if (!cJSON_IsString(item) || item->valuestring == NULL)
        return TL_EINVAL;
    *out = item->valuestring;
    return TL_OK;
}

enum tl_err tl_json_int64(const cJSON *obj, const char *key, int64_t fallback, int64_t *out)
{
    const cJSON *item;
    enum tl_err result = lookup(obj, key, &item);
    if (result != TL_OK)
        return result;
    if (item == NULL || cJSON_IsNull(item)) {
        *out = fallback;
        return TL_OK;
    }
    if (!cJSON_IsNumber(item))
        return TL_EINVAL;
    double d = item->valuedouble;
    /* Written so NaN fails too. Inside the range the cast is exact and defined. */
    if (!(d >= -(double)TL_JSON_INT_MAX && d <= (double)TL_JSON_INT_MAX))
        return TL_ERANGE;
    int64_t v = (int64_t)d;
    if ((double)v != d)
        return TL_ERANGE; /* not an integer */
    *out = v;
    return TL_OK;
}

enum tl_err tl_json_double(const cJSON *obj, const char *key, double fallback, double *out)
{
    const cJSON *item;
    enum tl_err result = lookup(obj, key, &item);
    if (result != TL_OK)
        return result;
    if (item == NULL || cJSON_IsNull(item)) {
        *out = fallback;
        return TL_OK;
    }
    if (!cJSON_IsNumber(item))
        return TL_EINVAL;
    if (!isfinite(item->valuedouble))
        return TL_ERANGE;
    *out = item->valuedouble;
    return TL_OK;
}

enum tl_err tl_json_bool(const cJSON *obj, const char *key, bool fallback, bool *out)
{
    const cJSON *item;
    enum tl_err result = lookup(obj, key, &item);
    if (result != TL_OK)
        return result;
    if (item == NULL || cJSON_IsNull(item)) {
        *out = fallback;
        return TL_OK;
    }
    if (!cJSON_IsBool(item))
        return TL_EINVAL;
    *out = cJSON_IsTrue(item);
    return TL_OK;
}

/* ---- Equality ---- */

bool tl_json_equal(const cJSON *a, const cJSON *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    int type = a->type & 0xFF;
    if (type != (b->type & 0xFF))
        return false;
    switch (type) {
    case cJSON_False:
    case cJSON_True:
    case cJSON_NULL:
        return true;
    case cJSON_Number:
        return a->valuedouble == b->valuedouble;
    case cJSON_String:
    case cJSON_Raw:
        return a->valuestring != NULL && b->valuestring != NULL &&
               strcmp(a->valuestring, b->valuestring) == 0;
    case cJSON_Array: {
        const cJSON *x = a->child;
        const cJSON *y = b->child;
        for (; x != NULL && y != NULL; x = x->next, y = y->next)
            if (!tl_json_equal(x, y))
                return false;
        return x == NULL && y == NULL;
    }
    case cJSON_Object: {
        /* Same member count and every member of a found in b: with unique keys that is set
         * equality, and each pair is compared once. */
        if (tl_json_size(a) != tl_json_size(b))
            return false;
        for (const cJSON *x = a->child; x != NULL; x = x->next) {
            if (x->string == NULL)
                return false;
            const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, x->string);
            if (y == NULL || !tl_json_equal(x, y))
                return false;
        }
        return true;
    }
    default:
        return false;
    }
}

/* ---- Tree edits ---- */

/* Replaces item's member key with key (cJSON_malloc'd or NULL), freeing the old one if owned. */
static void replace_key(cJSON *item, char *key)
{
    if (!(item->type & cJSON_StringIsConst) && item->string != NULL)
        cJSON_free(item->string);
    item->string = key;
    item->type &= ~cJSON_StringIsConst;
}

cJSON *tl_json_dup(const cJSON *item)
{
    if (item == NULL)
        return NULL;
    cJSON *copy = cJSON_Duplicate(item, 1);
    if (copy != NULL)
        replace_key(copy, NULL);
    return copy;
}

cJSON *tl_json_take(cJSON *parent, cJSON *item)
{
    if (parent == NULL || item == NULL)
        return NULL;
    const cJSON *c = parent->child;
    while (c != NULL && c != item)
        c = c->next;
    if (c == NULL)
        return NULL;
    cJSON_DetachItemViaPointer(parent, item);
    replace_key(item, NULL);
    return item;
}

enum tl_err tl_json_member_set(cJSON *obj, const char *key, cJSON *value)
{
    if (value == NULL)
        return TL_ENOMEM;
    if (!cJSON_IsObject(obj) || key == NULL || value == obj) {
        cJSON_Delete(value);
        return TL_EINVAL;
    }
    /* Copy first: key may be the very string of the member about to be replaced. */
    size_t n = strlen(key) + 1;
    char *copy = cJSON_malloc(n);
    if (copy == NULL) {
        cJSON_Delete(value);
        return TL_ENOMEM;
    }
    memcpy(copy, key, n);
    replace_key(value, copy);
    cJSON *old = cJSON_GetObjectItemCaseSensitive(obj, copy);
    /* ReplaceItemViaPointer deletes old. AddItemToArray: an object is a list of keyed items. */
    bool linked = old != NULL ? cJSON_ReplaceItemViaPointer(obj, old, value)
                              : cJSON_AddItemToArray(obj, value);
    if (!linked) {
        cJSON_Delete(value);
        return TL_EINVAL;
    }
    return TL_OK;
}

enum tl_err tl_json_array_insert(cJSON *array, size_t index, cJSON *value)
{
    if (value == NULL)
        return TL_ENOMEM;
    if (!cJSON_IsArray(array) || value == array) {
        cJSON_Delete(value);
        return TL_EINVAL;
    }
    size_t size = tl_json_size(array);
    if (index > size) {
        cJSON_Delete(value);
        return TL_ENOTFOUND;
    }
    replace_key(value, NULL);
    if (index == size) {
        if (!cJSON_AddItemToArray(array, value)) {
            cJSON_Delete(value);
            return TL_EINVAL;
        }
        return TL_OK;
    }
    /*
     * Linked here rather than with cJSON_InsertItemInArray: Debian 12's cJSON 1.7.15-1+deb12u4
     * (the CVE-2023-50471 backport) refuses any insert before an element other than the first
     * when the new item is unlinked, returning false without taking it. cJSON's list shape:
     * next runs head to tail, and the head's prev points at the tail.
     */
    cJSON *at = tl_json_array_at(array, index);
    value->next = at;
    value->prev = at->prev;
    if (at == array->child)
        array->child = value;
    else
        at->prev->next = value;
    at->prev = value;
    return TL_OK;
}
