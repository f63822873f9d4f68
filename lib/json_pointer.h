/* json_pointer: RFC 6901 JSON Pointers: checking them, resolving them in cJSON trees, and
 * escaping and unescaping their reference tokens. */
#ifndef TL_JSON_POINTER_H
#define TL_JSON_POINTER_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "error.h"

/*
 * A pointer is "" (the whole document) or a sequence of "/token". In a token "~1" stands for
 * '/' and "~0" for '~'; any other '~' makes the pointer invalid. On an array a token must be
 * an index ("0", or no leading zero) or "-", which names the element after the last one and so
 * never resolves to a value. The URI-fragment form ("#/a%20b") is not supported.
 */

/* TL_OK if the len bytes at pointer form a valid pointer, else TL_EINVAL. */
enum tl_err tl_json_pointer_validate(const char *pointer, size_t len);

/*
 * Resolves pointer in root. *out is BORROWED from root: valid until root is deleted or that part
 * of it is edited. TL_EINVAL: pointer invalid, or a token used on an array is not an index;
 * TL_ENOTFOUND: a member is missing, an index is out of range or "-", or a token is applied to
 * a string, number, boolean or null. *out is written only on success.
 */
enum tl_err tl_json_pointer_get(const cJSON *root, const char *pointer, cJSON **out);

/* As tl_json_pointer_get, for the first len bytes of pointer (e.g. the parent of a path). */
enum tl_err tl_json_pointer_getn(const cJSON *root, const char *pointer, size_t len, cJSON **out);

/*
 * Unescapes the reference token of len bytes at token into a new NUL-terminated string; the
 * caller frees it with free(). TL_EINVAL on a bad "~" escape, TL_ENOMEM.
 */
enum tl_err tl_json_pointer_token_dup(const char *token, size_t len, char **out);

/*
 * Appends "/" and key, escaped, to the NUL-terminated pointer in buf (cap bytes in all), so
 * annotations["tailor.dev/ignore"] becomes "/metadata/annotations/tailor.dev~1ignore".
 * TL_ETOOBIG, with buf unchanged, when the result would not fit.
 */
enum tl_err tl_json_pointer_append(char *buf, size_t cap, const char *key);

#endif
