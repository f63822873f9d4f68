#include "watch_decoder.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct tl_watch_decoder {
    char *buf; /* the unfinished line */
    size_t len, cap, max_line;
    enum tl_err failed;
    tl_watch_event_fn on_event;
    void *arg;
};

struct tl_watch_decoder *tl_watch_decoder_create(size_t max_line, tl_watch_event_fn on_event,
                                                 void *arg)
{
    struct tl_watch_decoder *dec = calloc(1, sizeof(*dec));
    if (!dec)
        return NULL;
    dec->max_line = max_line ? max_line : TL_WATCH_DEFAULT_MAX_LINE;
    dec->on_event = on_event;
    dec->arg = arg;
    return dec;
}

void tl_watch_decoder_destroy(struct tl_watch_decoder *dec)
{
    if (!dec)
        return;
    free(dec->buf);
    free(dec);
}

void tl_watch_decoder_reset(struct tl_watch_decoder *dec)
{
    dec->len = 0;
    dec->failed = TL_OK;
}

size_t tl_watch_decoder_pending(const struct tl_watch_decoder *dec)
{
    return dec->len;
}

static enum tl_err emit_line(struct tl_watch_decoder *dec, const char *line, size_t len)
{
    /* The API server writes "\n"; a proxy in between may have made it "\r\n". */
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    if (len == 0)
        return TL_OK;
    cJSON *root = cJSON_ParseWithLength(line, len);
    if (!root)
        return TL_EINVAL;
    enum tl_err result = TL_EINVAL;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
    cJSON *object = cJSON_GetObjectItemCaseSensitive(root, "object");
    if (cJSON_IsString(type) && cJSON_IsObject(object))
        result = dec->on_event(dec->arg, type->valuestring, object);
    cJSON_Delete(root);
    return result;
}

static enum tl_err append(struct tl_watch_decoder *dec, const char *data, size_t n)
{
    if (n > dec->max_line - dec->len)
        return TL_ETOOBIG;
    if (dec->len + n > dec->cap) {
        size_t cap = dec->cap ? dec->cap : 4096;
        while (cap < dec->len + n)
            cap *= 2;
        if (cap > dec->max_line)
            cap = dec->max_line;
        char *grown = realloc(dec->buf, cap);
        if (!grown)
            return TL_ENOMEM;
        dec->buf = grown;
        dec->cap = cap;
    }
    memcpy(dec->buf + dec->len, data, n);
    dec->len += n;
    return TL_OK;
}

/*
 * Complete lines inside the chunk are parsed in place; only the unfinished tail (and a line that
 * started in an earlier chunk) is copied into the buffer.
 */
enum tl_err tl_watch_decoder_feed(struct tl_watch_decoder *dec, const char *data, size_t len)
{
    if (dec->failed != TL_OK)
        return dec->failed;
    enum tl_err result = TL_OK;
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        if (!nl) {
            result = append(dec, data, len);
            goto out;
        }
        size_t n = (size_t)(nl - data);
        if (dec->len > 0) {
            result = append(dec, data, n);
            if (result != TL_OK)
                goto out;
            size_t line_len = dec->len;
            dec->len = 0;
            result = emit_line(dec, dec->buf, line_len);
        }
        else if (n > dec->max_line) {
            result = TL_ETOOBIG;
        }
        else {
            result = emit_line(dec, data, n);
        }
        if (result != TL_OK)
            goto out;
        data = nl + 1;
        len -= n + 1;
    }
out:
    if (result != TL_OK)
        dec->failed = result;
    return result;
}
