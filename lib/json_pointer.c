#include "json_pointer.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

enum tl_err tl_json_pointer_validate(const char *pointer, size_t len)
{
    if (pointer == NULL)
        return TL_EINVAL;
    if (len == 0)
        return TL_OK;
    if (pointer[0] != '/')
        return TL_EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (pointer[i] == '\0')
            return TL_EINVAL;
        if (pointer[i] == '~') {
            if (i + 1 >= len || (pointer[i + 1] != '0' && pointer[i + 1] != '1'))
                return TL_EINVAL;
            i++;
        }
    }
    return TL_OK;
}

/* Whether the escaped token equals key; unescapes as it goes, so lookups allocate nothing. */
static bool token_matches(const char *token, size_t len, const char *key)
{
    for (size_t i = 0; i < len; i++, key++) {
        char c = token[i];
        if (c == '~') {
            i++;
            c = token[i] == '0' ? '~' : '/';
        }
        if (*key != c)
            return false;
    }
    return *key == '\0';
}

static cJSON *find_member(const cJSON *obj, const char *token, size_t len)
{
    for (cJSON *m = obj->child; m != NULL; m = m->next)
        if (m->string != NULL && token_matches(token, len, m->string))
            return m;
    return NULL;
}

enum tl_err tl_json_pointer_getn(const cJSON *root, const char *pointer, size_t len, cJSON **out)
{
    if (root == NULL || tl_json_pointer_validate(pointer, len) != TL_OK)
        return TL_EINVAL;
    /* As cJSON's own getters do, hand out a non-const node of a const tree. */
    cJSON *node = (cJSON *)root;
    size_t pos = 0;
    while (pos < len) {
        size_t start = pos + 1; /* past the '/' */
        size_t end = start;
        while (end < len && pointer[end] != '/')
            end++;
        const char *token = pointer + start;
        size_t toklen = end - start;
        if (cJSON_IsObject(node)) {
            node = find_member(node, token, toklen);
        }
        else if (cJSON_IsArray(node)) {
            if (toklen == 1 && token[0] == '-')
                return TL_ENOTFOUND;
            size_t index;
            enum tl_err result = tl_json_index_parse(token, toklen, &index);
            if (result == TL_ERANGE)
                return TL_ENOTFOUND; /* an index too big for size_t is past any array */
            if (result != TL_OK)
                return TL_EINVAL;
            node = tl_json_array_at(node, index);
        }
        else {
            return TL_ENOTFOUND;
        }
        if (node == NULL)
            return TL_ENOTFOUND;
        pos = end;
    }
    *out = node;
    return TL_OK;
}

enum tl_err tl_json_pointer_get(const cJSON *root, const char *pointer, cJSON **out)
{
    if (pointer == NULL)
        return TL_EINVAL;
    return tl_json_pointer_getn(root, pointer, strlen(pointer), out);
}

enum tl_err tl_json_pointer_token_dup(const char *token, size_t len, char **out)
{
    if (token == NULL)
        return TL_EINVAL;
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return TL_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = token[i];
        if (c == '~') {
            if (i + 1 >= len || (token[i + 1] != '0' && token[i + 1] != '1')) {
                free(copy);
                return TL_EINVAL;
            }
            i++;
            c = token[i] == '0' ? '~' : '/';
        }
        copy[n++] = c;
    }
    copy[n] = '\0';
    *out = copy;
    return TL_OK;
}

enum tl_err tl_json_pointer_append(char *buf, size_t cap, const char *key)
{
    if (buf == NULL || key == NULL)
        return TL_EINVAL;
    size_t used = strnlen(buf, cap);
    if (used == cap)
        return TL_EINVAL; /* buf is not a string within cap */
    size_t need = 1;      /* the '/' */
    for (const char *k = key; *k != '\0'; k++)
        need += (*k == '~' || *k == '/') ? 2 : 1;
    if (need >= cap - used)
        return TL_ETOOBIG;
    char *p = buf + used;
    *p++ = '/';
    for (const char *k = key; *k != '\0'; k++) {
        if (*k == '~' || *k == '/') {
            *p++ = '~';
            *p++ = *k == '~' ? '0' : '1';
        }
        else {
            *p++ = *k;
        }
    }
    *p = '\0';
    return TL_OK;
}
