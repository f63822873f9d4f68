#include "json_patch.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_pointer.h"

enum op_kind { OP_ADD, OP_REMOVE, OP_REPLACE, OP_MOVE, OP_COPY, OP_TEST };

static const char *const op_names[] = {"add", "remove", "replace", "move", "copy", "test"};

/* One operation, its members borrowed from the patch document. */
struct op {
    enum op_kind kind;
    const char *path;
    const char *from;   /* move, copy */
    const cJSON *value; /* add, replace, test */
};

/* One apply: the current operation (for messages) and the copy budget spent so far. */
struct run {
    size_t index;
    const char *name; /* NULL until the op member is understood */
    size_t copied;
    char *err;
    size_t errlen;
};

/* Writes "operation <index> (<op>): <message>" into the caller's buffer. */
__attribute__((format(printf, 2, 3))) static void fail(struct run *r, const char *fmt, ...)
{
    if (r->err == NULL || r->errlen == 0)
        return;
    int n = r->name != NULL ? snprintf(r->err, r->errlen, "operation %zu (%s): ", r->index, r->name)
                            : snprintf(r->err, r->errlen, "operation %zu: ", r->index);
    if (n < 0) {
        r->err[0] = '\0';
        return;
    }
    if ((size_t)n >= r->errlen)
        return; /* already cut: a diagnostic, the code carries the meaning */
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0)
        r->err[n] = '\0';
}

static void put_err(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0 && snprintf(err, errlen, "%s", msg) < 0)
        err[0] = '\0';
}

/* The empty pointer names the whole document; show it as "" rather than as nothing. */
static const char *show(const char *pointer)
{
    return pointer[0] != '\0' ? pointer : "\"\"";
}

static enum tl_err pointer_member(const cJSON *m, const char *name, struct run *r, const char **out)
{
    if (m == NULL) {
        fail(r, "missing \"%s\"", name);
        return TL_EINVAL;
    }
    if (!cJSON_IsString(m) || m->valuestring == NULL) {
        fail(r, "\"%s\" is not a string", name);
        return TL_EINVAL;
    }
    if (tl_json_pointer_validate(m->valuestring, strlen(m->valuestring)) != TL_OK) {
        fail(r, "%s \"%s\" is not a JSON pointer", name, m->valuestring);
        return TL_EINVAL;
    }
    *out = m->valuestring;
    return TL_OK;
}

/* Reads and checks one operation object (RFC 6902 section 4), before anything is changed. */
static enum tl_err parse_op(const cJSON *item, struct op *op, struct run *r)
{
    static const char *const members[] = {"op", "path", "from", "value"};
    const cJSON *found[4] = {NULL, NULL, NULL, NULL};
    if (!cJSON_IsObject(item)) {
        fail(r, "not an object");
        return TL_EINVAL;
    }
    for (const cJSON *m = item->child; m != NULL; m = m->next) {
        for (size_t i = 0; m->string != NULL && i < 4; i++) {
            if (strcmp(m->string, members[i]) != 0)
                continue;
            if (found[i] != NULL) { /* RFC 6902 A.13: ambiguous, so invalid */
                fail(r, "duplicate member \"%s\"", members[i]);
                return TL_EINVAL;
            }
            found[i] = m;
        }
    }
    if (found[0] == NULL) {
        fail(r, "missing \"op\"");
        return TL_EINVAL;
    }
    if (!cJSON_IsString(found[0]) || found[0]->valuestring == NULL) {
        fail(r, "\"op\" is not a string");
        return TL_EINVAL;
    }
    size_t kind = 0;
    while (kind < sizeof(op_names) / sizeof(op_names[0]) &&
           strcmp(found[0]->valuestring, op_names[kind]) != 0)
        kind++;
    if (kind == sizeof(op_names) / sizeof(op_names[0])) {
        fail(r, "unknown op \"%.40s\"", found[0]->valuestring);
        return TL_EINVAL;
    }
    op->kind = (enum op_kind)kind;
    r->name = op_names[kind];
    enum tl_err result = pointer_member(found[1], "path", r, &op->path);
    if (result != TL_OK)
        return result;
    op->from = NULL;
    if (op->kind == OP_MOVE || op->kind == OP_COPY) {
        result = pointer_member(found[2], "from", r, &op->from);
        if (result != TL_OK)
            return result;
    }
    op->value = found[3];
    if ((op->kind == OP_ADD || op->kind == OP_REPLACE || op->kind == OP_TEST) &&
        op->value == NULL) {
        fail(r, "missing \"value\"");
        return TL_EINVAL;
    }
    return TL_OK;
}

/* Nodes in a subtree, and how many containers deep it nests (0 for a scalar). */
static void measure(const cJSON *node, size_t *count, size_t *nesting)
{
    size_t deepest = 0;
    *count += 1;
    for (const cJSON *c = node->child; c != NULL; c = c->next) {
        size_t n = 0;
        measure(c, count, &n);
        if (n > deepest)
            deepest = n;
    }
    *nesting = (cJSON_IsArray(node) || cJSON_IsObject(node)) ? deepest + 1 : 0;
}

/*
 * Keeps every result as shallow as tl_json_parse allows, so results print and parse again and
 * recursion over them stays bounded: without this, a patch could deepen the document by a level
 * per pointer token, without limit.
 */
static enum tl_err check_depth(const char *path, const cJSON *value, struct run *r)
{
    size_t tokens = 0;
    for (const char *p = path; *p != '\0'; p++)
        tokens += *p == '/';
    size_t count = 0;
    size_t nesting = 0;
    measure(value, &count, &nesting);
    if (tokens + nesting > TL_JSON_MAX_DEPTH) {
        fail(r, "the result would nest deeper than %d levels", TL_JSON_MAX_DEPTH);
        return TL_ETOOBIG;
    }
    return TL_OK;
}

/* Resolves a location that must exist; `what` ("path" or "from") is for the message. */
static enum tl_err locate(const cJSON *root, const char *pointer, const char *what, struct run *r,
                          cJSON **out)
{
    enum tl_err result = tl_json_pointer_get(root, pointer, out);
    if (result == TL_ENOTFOUND)
        fail(r, "%s %s does not exist", what, show(pointer));
    else if (result != TL_OK)
        fail(r, "%s %s uses a token that is not an array index", what, pointer);
    return result;
}

/* The container holding the existing, non-root location pointer. */
static cJSON *parent_of(const cJSON *root, const char *pointer)
{
    cJSON *parent = NULL;
    const char *slash = strrchr(pointer, '/');
    tl_json_pointer_getn(root, pointer, (size_t)(slash - pointer), &parent);
    return parent;
}

/* Unlinks the value at pointer; the caller owns *out. */
static enum tl_err detach(cJSON *root, const char *pointer, const char *what, struct run *r,
                          cJSON **out)
{
    if (pointer[0] == '\0') {
        fail(r, "cannot remove the whole document");
        return TL_EINVAL;
    }
    cJSON *node;
    enum tl_err result = locate(root, pointer, what, r, &node);
    if (result != TL_OK)
        return result;
    *out = tl_json_take(parent_of(root, pointer), node);
    return TL_OK;
}

/*
 * RFC 6902 section 4.1: path "" replaces the document; in an object the member is set (added or
 * replaced); in an array the value is inserted before the index, or appended for "-" or an
 * index equal to the size. The parent must exist. Takes ownership of value.
 */
static enum tl_err op_add(cJSON **root, const char *path, cJSON *value, struct run *r)
{
    enum tl_err result = check_depth(path, value, r);
    char *key = NULL;
    if (result != TL_OK)
        goto out;
    if (path[0] == '\0') {
        cJSON_Delete(*root);
        *root = value;
        return TL_OK;
    }
    const char *slash = strrchr(path, '/');
    const char *token = slash + 1;
    cJSON *parent = NULL;
    result = tl_json_pointer_getn(*root, path, (size_t)(slash - path), &parent);
    if (result != TL_OK) {
        if (result == TL_ENOTFOUND)
            fail(r, "parent of %s does not exist", path);
        else
            fail(r, "path %s uses a token that is not an array index", path);
        goto out;
    }
    if (cJSON_IsObject(parent)) {
        result = tl_json_pointer_token_dup(token, strlen(token), &key);
        if (result != TL_OK) { /* the path was validated, so only ENOMEM is left */
            fail(r, "out of memory");
            goto out;
        }
        result = tl_json_member_set(parent, key, value);
        value = NULL; /* taken in every case */
        if (result != TL_OK)
            fail(r, "out of memory");
        goto out;
    }
    if (!cJSON_IsArray(parent)) {
        fail(r, "parent of %s is neither an object nor an array", path);
        result = TL_ENOTFOUND;
        goto out;
    }
    size_t size = tl_json_size(parent);
    size_t index = size;
    if (strcmp(token, "-") != 0) {
        result = tl_json_index_parse(token, strlen(token), &index);
        if (result == TL_EINVAL) {
            fail(r, "\"%s\" in %s is not an array index", token, path);
            goto out;
        }
        if (result != TL_OK || index > size) {
            fail(r, "index %s in %s is past the end of the array (size %zu)", token, path, size);
            result = TL_ENOTFOUND;
            goto out;
        }
    }
    result = tl_json_array_insert(parent, index, value);
    value = NULL; /* taken in every case */
    if (result != TL_OK)
        fail(r, "out of memory");
out:
    free(key);
    cJSON_Delete(value);
    return result;
}

/* RFC 6902 section 4.3: the location must exist; its value is replaced where it stands. */
static enum tl_err op_replace(cJSON **root, const char *path, cJSON *value, struct run *r)
{
    enum tl_err result = check_depth(path, value, r);
    if (result != TL_OK) {
        cJSON_Delete(value);
        return result;
    }
    if (path[0] == '\0') {
        cJSON_Delete(*root);
        *root = value;
        return TL_OK;
    }
    cJSON *node;
    result = locate(*root, path, "path", r, &node);
    if (result != TL_OK) {
        cJSON_Delete(value);
        return result;
    }
    cJSON *parent = parent_of(*root, path);
    if (cJSON_IsObject(parent)) {
        /* The pointer resolved to the first member with this key, the one member_set replaces. */
        result = tl_json_member_set(parent, node->string, value);
        if (result != TL_OK)
            fail(r, "out of memory");
        return result;
    }
    if (!cJSON_ReplaceItemViaPointer(parent, node, value)) { /* deletes node on success */
        cJSON_Delete(value);
        fail(r, "cannot replace %s", path);
        return TL_EINVAL;
    }
    return TL_OK;
}

/* RFC 6902 section 4.4: remove at from, then add at path; from may not contain path. */
static enum tl_err op_move(cJSON **root, const char *from, const char *path, struct run *r)
{
    cJSON *value;
    if (strcmp(from, path) == 0)
        return locate(*root, from, "from", r, &value); /* a no-op, if from exists */
    size_t n = strlen(from);
    if (strncmp(from, path, n) == 0 && path[n] == '/') {
        fail(r, "cannot move %s into its own child %s", show(from), path);
        return TL_EINVAL;
    }
    enum tl_err result = detach(*root, from, "from", r, &value);
    if (result != TL_OK)
        return result;
    return op_add(root, path, value, r);
}

/* RFC 6902 section 4.5, with the accumulated-copy limit. */
static enum tl_err op_copy(cJSON **root, const char *from, const char *path, struct run *r)
{
    cJSON *node;
    enum tl_err result = locate(*root, from, "from", r, &node);
    if (result != TL_OK)
        return result;
    size_t count = 0;
    size_t nesting = 0;
    measure(node, &count, &nesting);
    if (count > TL_JSON_PATCH_COPY_LIMIT - r->copied) {
        fail(r, "copies would exceed %zu nodes", TL_JSON_PATCH_COPY_LIMIT);
        return TL_ETOOBIG;
    }
    r->copied += count;
    cJSON *value = tl_json_dup(node);
    if (value == NULL) {
        fail(r, "out of memory");
        return TL_ENOMEM;
    }
    return op_add(root, path, value, r);
}

static enum tl_err run_op(cJSON **root, const struct op *op, struct run *r)
{
    cJSON *node = NULL;
    enum tl_err result = TL_OK;
    switch (op->kind) {
    case OP_ADD:
    case OP_REPLACE:
        node = tl_json_dup(op->value);
        if (node == NULL) {
            fail(r, "out of memory");
            return TL_ENOMEM;
        }
        return op->kind == OP_ADD ? op_add(root, op->path, node, r)
                                  : op_replace(root, op->path, node, r);
    case OP_REMOVE:
        result = detach(*root, op->path, "path", r, &node);
        cJSON_Delete(node);
        return result;
    case OP_MOVE:
        return op_move(root, op->from, op->path, r);
    case OP_COPY:
        return op_copy(root, op->from, op->path, r);
    case OP_TEST:
        result = locate(*root, op->path, "path", r, &node);
        if (result == TL_OK && !tl_json_equal(node, op->value)) {
            fail(r, "value at %s differs", show(op->path));
            result = TL_ECONFLICT;
        }
        return result;
    }
    return TL_EINVAL;
}

enum tl_err tl_json_patch_apply(cJSON **doc, const cJSON *patch, char *err, size_t errlen)
{
    enum tl_err result = TL_OK;
    cJSON *work = NULL;
    struct run r = {.index = 0, .name = NULL, .copied = 0, .err = err, .errlen = errlen};
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (doc == NULL || *doc == NULL || (*doc)->next != NULL || (*doc)->prev != NULL) {
        put_err(err, errlen, "no document, or the document is not a root");
        return TL_EINVAL;
    }
    if (!cJSON_IsArray(patch)) {
        put_err(err, errlen, "a JSON Patch must be an array of operations");
        return TL_EINVAL;
    }
    work = tl_json_dup(*doc);
    if (work == NULL) {
        put_err(err, errlen, "out of memory");
        return TL_ENOMEM;
    }
    for (const cJSON *item = patch->child; item != NULL; item = item->next, r.index++) {
        struct op op;
        r.name = NULL;
        result = parse_op(item, &op, &r);
        if (result != TL_OK)
            goto out;
        result = run_op(&work, &op, &r);
        if (result != TL_OK)
            goto out;
    }
    cJSON_Delete(*doc);
    *doc = work;
    work = NULL;
out:
    cJSON_Delete(work);
    return result;
}
