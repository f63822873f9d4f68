/* json_merge: RFC 7386 JSON Merge Patch: applying a merge patch, and computing the patch that
 * turns one document into another (what `kubectl patch --type merge` sends). */
#ifndef TL_JSON_MERGE_H
#define TL_JSON_MERGE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "error.h"

/*
 * Applies patch to target and returns the result as a NEW tree in *out (caller frees with
 * cJSON_Delete); target and patch are not modified, so a failure leaves nothing half-patched.
 * Per RFC 7386 section 2: a patch that is not an object replaces the target whole (so the
 * result may be a JSON null); an object patch merges member by member, a null member removing
 * that key, recursing into objects, and replacing arrays and scalars whole. target NULL means
 * "no document" (an object patch then applies to {}).
 * TL_EINVAL if patch is NULL or has a member without a key; TL_ENOMEM.
 */
enum tl_err tl_json_merge_patch_apply(const cJSON *target, const cJSON *patch, cJSON **out);

/*
 * Computes the smallest merge patch p with apply(from, p) equal to `to`, as a new tree in *out
 * (caller frees with cJSON_Delete): members of `to` that equal those of `from` are left out,
 * removed members become null, objects present on both sides are diffed recursively, and
 * arrays and scalars are sent whole. from NULL means "no document". Equal objects give {}.
 * TL_EINVAL when no merge patch can produce `to`: it would have to set a member to null inside
 * an object (RFC 7386 section 1: null only ever means "remove"); err then names the member as
 * a JSON pointer. TL_EINVAL if `to` is NULL; TL_ENOMEM. err may be NULL.
 */
enum tl_err tl_json_merge_patch_create(const cJSON *from, const cJSON *to, cJSON **out, char *err,
                                       size_t errlen);

#endif
