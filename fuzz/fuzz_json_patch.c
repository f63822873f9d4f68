/*
 * Splits the input at its first NUL byte into a document and a patch, then applies the patch as
 * an RFC 6902 JSON Patch and as an RFC 7386 merge patch, and computes merge patches between the
 * two documents. Aborts when a promise of the json modules breaks: a failed JSON Patch must
 * leave the document byte-for-byte unchanged; inputs are never modified; merge patches are
 * idempotent; applying create(from, to) to from gives to; results print and parse back equal.
 * Leaks are
 * LeakSanitizer's to find.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_merge.h"
#include "json_patch.h"
#include "json_pointer.h"

#define CAP ((size_t)1 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
    if (!ok)
        abort();
}

static char *print(const cJSON *item)
{
    char *text = tl_json_print(item);
    check(text != NULL);
    return text;
}

static void check_unchanged(const cJSON *item, const char *before)
{
    char *now = print(item);
    check(strcmp(now, before) == 0);
    free(now);
}

/* Every tree the modules hand back prints, and parses back to an equal tree. */
static void check_reparses(const cJSON *item)
{
    char *text = print(item);
    cJSON *again = NULL;
    check(tl_json_parse(text, strlen(text), SIZE_MAX, &again, NULL, 0) == TL_OK);
    check(tl_json_equal(again, item));
    cJSON_Delete(again);
    free(text);
}

/* Whether `to` holds a null member inside an object (outside arrays): what no merge patch can
 * set. */
static bool has_object_null(const cJSON *to)
{
    if (!cJSON_IsObject(to))
        return false;
    for (const cJSON *m = to->child; m != NULL; m = m->next)
        if (cJSON_IsNull(m) || has_object_null(m))
            return true;
    return false;
}

static void fuzz_json_patch(const cJSON *doc, const cJSON *patch)
{
    cJSON *work = tl_json_dup(doc);
    check(work != NULL);
    cJSON *const original = work;
    char *before = print(work);
    char err[256] = "";
    enum tl_err result = tl_json_patch_apply(&work, patch, err, sizeof(err));
    check(result != TL_ENOMEM);
    if (result == TL_OK) {
        check_reparses(work);
    }
    else {
        check(work == original);
        check_unchanged(work, before);
        check(strlen(err) > 0);
    }
    free(before);
    cJSON_Delete(work);
}

static void fuzz_merge_apply(const cJSON *doc, const cJSON *patch)
{
    char *doc_before = print(doc);
    char *patch_before = print(patch);
    cJSON *once = NULL;
    cJSON *twice = NULL;
    check(tl_json_merge_patch_apply(doc, patch, &once) == TL_OK);
    check_unchanged(doc, doc_before);
    check_unchanged(patch, patch_before);
    check_reparses(once);
    check(tl_json_merge_patch_apply(once, patch, &twice) == TL_OK);
    check(tl_json_equal(once, twice));
    cJSON_Delete(twice);
    cJSON_Delete(once);
    free(patch_before);
    free(doc_before);
}

static void fuzz_merge_create(const cJSON *from, const cJSON *to)
{
    cJSON *patch = NULL;
    char err[256] = "";
    enum tl_err result = tl_json_merge_patch_create(from, to, &patch, err, sizeof(err));
    if (result == TL_EINVAL) {
        check(has_object_null(to));
        check(strlen(err) > 0);
        return;
    }
    check(result == TL_OK);
    cJSON *applied = NULL;
    check(tl_json_merge_patch_apply(from, patch, &applied) == TL_OK);
    check(tl_json_equal(applied, to));
    cJSON_Delete(applied);
    cJSON_Delete(patch);

    /* No change needs no patch: {} between objects, the value itself otherwise. */
    check(tl_json_merge_patch_create(to, to, &patch, NULL, 0) == TL_OK);
    if (cJSON_IsObject(to))
        check(cJSON_IsObject(patch) && patch->child == NULL);
    else
        check(tl_json_equal(patch, to));
    cJSON_Delete(patch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t doc_len = nul != NULL ? (size_t)(nul - text) : size;
    cJSON *doc = NULL;
    cJSON *patch = NULL;
    char err[256] = "";
    enum tl_err result = tl_json_parse(text, doc_len, CAP, &doc, err, sizeof(err));
    /* Nothing runs out of memory here: ENOMEM would mean a syntax error went undetected. */
    check(result == TL_OK || result == TL_EINVAL);
    check(result == TL_OK || strlen(err) > 0);
    if (nul == NULL || result != TL_OK)
        goto out;
    result = tl_json_parse(nul + 1, size - doc_len - 1, CAP, &patch, err, sizeof(err));
    check(result == TL_OK || result == TL_EINVAL);
    if (result != TL_OK)
        goto out;

    fuzz_json_patch(doc, patch);
    fuzz_merge_apply(doc, patch);
    fuzz_merge_create(doc, patch);
    fuzz_merge_create(patch, doc);
    if (cJSON_IsString(patch)) {
        cJSON *found = NULL;
        if (tl_json_pointer_get(doc, patch->valuestring, &found) == TL_OK)
            check(found != NULL);
    }
out:
    cJSON_Delete(patch);
    cJSON_Delete(doc);
    return 0;
}
