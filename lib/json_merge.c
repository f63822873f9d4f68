#include "json_merge.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "json_pointer.h"

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

/*
 * RFC 7386 section 2 in place, on a tree this module owns: obj is an object, patch an object.
 * A member whose patch value is an object merges into an existing object member, or into a
 * fresh {} otherwise, so nulls nested in it are dropped as the RFC's recursion drops them
 * ({} + {"a":{"b":null}} gives {"a":{}}). Every other value replaces the member whole.
 */
static enum tl_err merge_into(cJSON *obj, const cJSON *patch)
{
    for (const cJSON *m = patch->child; m != NULL; m = m->next) {
        if (m->string == NULL)
            return TL_EINVAL;
        cJSON *existing = cJSON_GetObjectItemCaseSensitive(obj, m->string);
        if (cJSON_IsNull(m)) {
            cJSON_Delete(tl_json_take(obj, existing));
            continue;
        }
        if (cJSON_IsObject(m) && cJSON_IsObject(existing)) {
            enum tl_err result = merge_into(existing, m);
            if (result != TL_OK)
                return result;
            continue;
        }
        cJSON *value;
        if (cJSON_IsObject(m)) {
            value = cJSON_CreateObject();
            if (value == NULL)
                return TL_ENOMEM;
            enum tl_err result = merge_into(value, m);
            if (result != TL_OK) {
                cJSON_Delete(value);
                return result;
            }
        }
        else {
            value = tl_json_dup(m);
        }
        enum tl_err result = tl_json_member_set(obj, m->string, value);
        if (result != TL_OK)
            return result;
    }
    return TL_OK;
}

enum tl_err tl_json_merge_patch_apply(const cJSON *target, const cJSON *patch, cJSON **out)
{
    if (patch == NULL || out == NULL)
        return TL_EINVAL;
    if (!cJSON_IsObject(patch)) {
        cJSON *copy = tl_json_dup(patch);
        if (copy == NULL)
            return TL_ENOMEM;
        *out = copy;
        return TL_OK;
    }
    cJSON *work = cJSON_IsObject(target) ? tl_json_dup(target) : cJSON_CreateObject();
    if (work == NULL)
        return TL_ENOMEM;
    enum tl_err result = merge_into(work, patch);
    if (result != TL_OK) {
        cJSON_Delete(work);
        return result;
    }
    *out = work;
    return TL_OK;
}

/* Where create() is in the document, for the one message that needs it. Only a prefix is kept
 * when a path outgrows the buffer; `hidden` counts the levels left out. */
struct where {
    char path[512];
    size_t hidden;
    char *err;
    size_t errlen;
};

static size_t where_push(struct where *w, const char *key)
{
    size_t saved = strlen(w->path);
    if (w->hidden > 0 || tl_json_pointer_append(w->path, sizeof(w->path), key) != TL_OK)
        w->hidden++;
    return saved;
}

static void where_pop(struct where *w, size_t saved)
{
    if (w->hidden > 0)
        w->hidden--;
    else
        w->path[saved] = '\0';
}

static enum tl_err cannot_express_null(struct where *w, const char *key)
{
    size_t saved = where_push(w, key);
    set_err(w->err, w->errlen,
            "%s%s is null in the target, which a merge patch cannot express (null means remove)",
            w->path, w->hidden > 0 ? "/..." : "");
    where_pop(w, saved);
    return TL_EINVAL;
}

/* A value sent whole lands on {} when it is an object, which drops its null members: refuse. */
static enum tl_err check_whole(const cJSON *to, struct where *w)
{
    if (!cJSON_IsObject(to))
        return TL_OK;
    for (const cJSON *m = to->child; m != NULL; m = m->next) {
        if (cJSON_IsNull(m))
            return cannot_express_null(w, m->string);
        size_t saved = where_push(w, m->string);
        enum tl_err result = check_whole(m, w);
        where_pop(w, saved);
        if (result != TL_OK)
            return result;
    }
    return TL_OK;
}

static enum tl_err diff(const cJSON *from, const cJSON *to, cJSON **out, struct where *w);

/* Adds to patch the entry for member t of `to` (f: the same member in `from`, or NULL). */
static enum tl_err diff_member(cJSON *patch, const cJSON *f, const cJSON *t, struct where *w)
{
    if (cJSON_IsNull(t)) {
        if (cJSON_IsNull(f))
            return TL_OK;
        return cannot_express_null(w, t->string);
    }
    if (f != NULL && !(cJSON_IsObject(f) && cJSON_IsObject(t)) && tl_json_equal(f, t))
        return TL_OK;
    size_t saved = where_push(w, t->string);
    cJSON *sub = NULL;
    enum tl_err result = diff(f, t, &sub, w);
    where_pop(w, saved);
    if (result != TL_OK)
        return result;
    if (cJSON_IsObject(f) && cJSON_IsObject(sub) && sub->child == NULL) {
        cJSON_Delete(sub); /* equal objects: nothing to send */
        return TL_OK;
    }
    return tl_json_member_set(patch, t->string, sub);
}

static enum tl_err diff(const cJSON *from, const cJSON *to, cJSON **out, struct where *w)
{
    enum tl_err result = TL_OK;
    cJSON *patch = NULL;
    if (from == NULL || !cJSON_IsObject(from) || !cJSON_IsObject(to)) {
        result = check_whole(to, w);
        if (result != TL_OK)
            return result;
        patch = tl_json_dup(to);
        if (patch == NULL)
            return TL_ENOMEM;
        *out = patch;
        return TL_OK;
    }
    patch = cJSON_CreateObject();
    if (patch == NULL)
        return TL_ENOMEM;
    for (const cJSON *f = from->child; f != NULL; f = f->next) {
        if (f->string == NULL) {
            set_err(w->err, w->errlen, "%s: an object member has no key", w->path);
            result = TL_EINVAL;
            goto out;
        }
        if (cJSON_GetObjectItemCaseSensitive(to, f->string) == NULL) {
            result = tl_json_member_set(patch, f->string, cJSON_CreateNull());
            if (result != TL_OK)
                goto out;
        }
    }
    for (const cJSON *t = to->child; t != NULL; t = t->next) {
        if (t->string == NULL) {
            set_err(w->err, w->errlen, "%s: an object member has no key", w->path);
            result = TL_EINVAL;
            goto out;
        }
        result = diff_member(patch, cJSON_GetObjectItemCaseSensitive(from, t->string), t, w);
        if (result != TL_OK)
            goto out;
    }
    *out = patch;
    patch = NULL;
out:
    cJSON_Delete(patch);
    return result;
}

enum tl_err tl_json_merge_patch_create(const cJSON *from, const cJSON *to, cJSON **out, char *err,
                                       size_t errlen)
{
    if (to == NULL || out == NULL) {
        set_err(err, errlen, "no target document");
        return TL_EINVAL;
    }
    struct where w = {.path = "", .hidden = 0, .err = err, .errlen = errlen};
    enum tl_err result = diff(from, to, out, &w);
    if (result == TL_ENOMEM)
        set_err(err, errlen, "out of memory");
    return result;
}
