/* json_patch: RFC 6902 JSON Patch: applying a patch document (add, remove, replace, move, copy,
 * test) to a cJSON tree, all or nothing. */
#ifndef TL_JSON_PATCH_H
#define TL_JSON_PATCH_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "error.h"

/*
 * Most nodes the "copy" operations of one patch may create together. Without a bound, a patch
 * of n copies of the document into itself grows it 2^n-fold (the reason json-patch libraries,
 * and the API server through them, limit accumulated copies).
 */
#define TL_JSON_PATCH_COPY_LIMIT ((size_t)1 << 20)

/*
 * Applies patch (an array of operation objects) to the document *doc, atomically: the
 * operations run on a copy, and only when all succeed is the old tree deleted and *doc set to
 * the new one. On any error *doc and its tree are untouched. So on success every pointer
 * borrowed from the old tree is invalid, and *doc may be a different kind of value (a "replace"
 * at "" replaces the whole document). *doc must be a root, not linked into another tree; the
 * caller owns it before and after. Operation members other than op, path, from and value are
 * ignored (RFC 6902 section 4).
 *
 * Errors, with err (may be NULL) naming the operation and the reason, e.g.
 * "operation 2 (test): value at /a/b differs":
 *   TL_EINVAL    patch or an operation is malformed (not an array, missing or duplicate
 *                member, unknown op, invalid pointer, non-index token on an array, removing
 *                the whole document, moving a value into its own child);
 *   TL_ENOTFOUND a path, its parent, or a from location does not exist (an index past the
 *                end included);
 *   TL_ECONFLICT a "test" found a different value;
 *   TL_ETOOBIG   copies would exceed TL_JSON_PATCH_COPY_LIMIT nodes, or a value would end up
 *                nested deeper than TL_JSON_MAX_DEPTH (the tl_json_parse limit);
 *   TL_ENOMEM.
 */
enum tl_err tl_json_patch_apply(cJSON **doc, const cJSON *patch, char *err, size_t errlen);

#endif
