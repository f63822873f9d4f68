/* json: safe helpers over cJSON: strict capped parsing, printing, lookups, typed getters, equality
 * and tree edits whose ownership is explicit. */
#ifndef TL_JSON_H
#define TL_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* Deepest nesting of arrays and objects tl_json_parse accepts: cJSON's own parser limit. */
#define TL_JSON_MAX_DEPTH CJSON_NESTING_LIMIT

/*
 * The largest integer magnitude a double holds exactly (2^53 - 1). cJSON stores every number
 * as a double, so a bigger integer may already have been rounded by the parser; tl_json_int64
 * refuses those rather than return a value that might be wrong.
 */
#define TL_JSON_INT_MAX INT64_C(9007199254740991)

#if defined(__GNUC__) || defined(__clang__)
#define TL_JSON_SENTINEL __attribute__((sentinel))
#else
#define TL_JSON_SENTINEL
#endif

/* ---- Parsing and printing ---- */

/*
 * Parses exactly len bytes (no NUL terminator needed) as one JSON document (RFC 8259) into a new
 * tree in *out; the caller frees it with cJSON_Delete. Stricter than cJSON alone: rejects
 * leading zeros, raw control characters in strings, trailing data, NUL bytes, "\u0000" (cJSON
 * would cut the string there), lone UTF-16 surrogates, numbers that overflow a double or are
 * longer than 63 characters, nesting deeper than TL_JSON_MAX_DEPTH, and duplicate keys in an
 * object. One leading UTF-8 byte order mark is skipped. Bytes are not checked for valid UTF-8.
 *
 * Errors: TL_ETOOBIG when len > cap; TL_EINVAL for malformed input; TL_ENOMEM. On error err (if
 * not NULL) receives a message such as "invalid JSON at byte 17 (line 2, column 5): expected ':'
 * after an object key"; *out is written only on success.
 */
enum tl_err tl_json_parse(const char *buf, size_t len, size_t cap, cJSON **out, char *err,
                          size_t errlen);

/*
 * Renders item as compact JSON, keys in their order; caller frees with free(). NULL when item
 * is NULL, on ENOMEM, or when the tree holds what JSON cannot spell (an infinite or NaN number,
 * an invalid node). Every number reads back as the same double: unlike cJSON_PrintUnformatted,
 * which prints 9007199254740991 as 9.00719925474099e+15.
 */
char *tl_json_print(const cJSON *item);

/* ---- Lookups. Every returned cJSON pointer is BORROWED: valid until its root is deleted or the
 * subtree holding it is edited. ---- */

/*
 * Follows a list of keys from root, ending with NULL: tl_json_get(pod, "metadata",
 * "annotations", "tailor.dev/ignore", NULL). Each key is taken literally, so keys holding dots
 * or slashes need no escaping. On an array a key is a decimal index ("0", "12"; no sign, no
 * leading zero). Returns NULL when root is NULL or any step is missing or of the wrong kind.
 * Lookups are case-sensitive; with duplicate keys the first wins. For a path held in one
 * string, use an RFC 6901 pointer (json_pointer.h).
 */
cJSON *tl_json_get(const cJSON *root, ...) TL_JSON_SENTINEL;

/* The element at index of array, or NULL if array is not an array or is too short. Borrowed. */
cJSON *tl_json_array_at(const cJSON *array, size_t index);

/* Number of elements of an array or members of an object; 0 for anything else. */
size_t tl_json_size(const cJSON *container);

/*
 * Parses the len bytes at text as an array index: "0" or a digit 1-9 followed by digits (the RFC
 * 6901 rule). TL_EINVAL for anything else, TL_ERANGE if it overflows size_t.
 */
enum tl_err tl_json_index_parse(const char *text, size_t len, size_t *out);

/*
 * Typed getters with a default. Each reads obj[key], or obj itself when key is NULL:
 *  - key absent, value null, or obj NULL: *out = fallback, TL_OK;
 *  - value of another JSON type, or obj not an object: TL_EINVAL, *out untouched;
 *  - tl_json_int64: TL_ERANGE unless the number is an integer within +-TL_JSON_INT_MAX
 *    (1.5, 1e300 and 2^53 are refused, never truncated or rounded);
 *  - tl_json_double: TL_ERANGE for a non-finite number (only possible in hand-built trees).
 * The caller names the field in any message it reports, e.g. "spec.approval.maxChangePercent:
 * expected an integer".
 */
/* *out is borrowed from obj (or is fallback): valid until the root is deleted. */
enum tl_err tl_json_string(const cJSON *obj, const char *key, const char *fallback,
                           const char **out);
enum tl_err tl_json_int64(const cJSON *obj, const char *key, int64_t fallback, int64_t *out);
enum tl_err tl_json_double(const cJSON *obj, const char *key, double fallback, double *out);
enum tl_err tl_json_bool(const cJSON *obj, const char *key, bool fallback, bool *out);

/*
 * Deep equality by JSON value: objects compare as sets of members (key order ignored; each key
 * of a matched by its first occurrence in b, and both have the same member count), arrays in
 * order, numbers as doubles with ==, so 1 and 1.0 are equal. Two NULLs are equal. Unlike
 * cJSON_Compare, which revisits every nested object twice per level and so takes time
 * exponential in the nesting depth, this visits each pair of members once; it also compares
 * numbers exactly where cJSON_Compare allows a relative epsilon.
 */
bool tl_json_equal(const cJSON *a, const cJSON *b);

/* ---- Tree edits. cJSON's own helpers leave ownership on failure to guesswork; these do not. */

/* A deep copy of item without its member key; caller frees with cJSON_Delete. NULL when item is
 * NULL or on ENOMEM. */
cJSON *tl_json_dup(const cJSON *item);

/*
 * Unlinks item from parent and drops its member key; the caller then owns it (cJSON_Delete).
 * NULL, with nothing changed, when item is not a child of parent.
 */
cJSON *tl_json_take(cJSON *parent, cJSON *item);

/*
 * Sets obj[key] = value. Takes ownership of value in every case: on failure it is deleted.
 * The first member named key is replaced where it stands (order kept, the old value deleted);
 * otherwise value is appended. value must not be linked into a tree; a NULL value (a failed
 * cJSON_CreateX) gives TL_ENOMEM, so calls can be chained without checking each create.
 * TL_EINVAL if obj is not an object or key is NULL.
 */
enum tl_err tl_json_member_set(cJSON *obj, const char *key, cJSON *value);

/*
 * Inserts value before the element at index, or appends when index equals the array size.
 * Takes ownership of value in every case (deleted on failure); drops its member key. NULL
 * value: TL_ENOMEM. TL_EINVAL if array is not an array; TL_ENOTFOUND if index > size.
 */
enum tl_err tl_json_array_insert(cJSON *array, size_t index, cJSON *value);

#endif
