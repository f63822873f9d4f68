#include "base64.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *tl_base64_encode(const void *data, size_t len)
{
    if (len > (SIZE_MAX - 1) / 4 * 3 - 2)
        return NULL;
    const unsigned char *in = data;
    size_t n = (len + 2) / 3 * 4;
    char *out = malloc(n + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18 & 63];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = i + 1 < len ? alphabet[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

/* Returns the 6-bit value of c, or -1 when c is not in the alphabet. */
static int sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static bool skipped(unsigned char c)
{
    return c == '\r' || c == '\n' || c == ' ' || c == '\t';
}

enum tl_err tl_base64_decode(const char *text, size_t len, char **out, size_t *out_len)
{
    /* Every 4 input characters give at most 3 bytes, so len / 4 * 3 + 3 always suffices. */
    char *buf = malloc(len / 4 * 3 + 4);
    if (!buf)
        return TL_ENOMEM;
    enum tl_err result = TL_EINVAL;
    uint32_t acc = 0;
    size_t quad = 0; /* characters (including '=') in the current group of four */
    size_t pad = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (skipped(c))
            continue;
        if (c == '=') {
            /* Padding may only fill the last one or two places of a group. */
            if (quad < 2)
                goto out;
            pad++;
            acc <<= 6;
        }
        else {
            int v = sextet(c);
            if (v < 0 || pad > 0)
                goto out;
            acc = acc << 6 | (uint32_t)v;
        }
        if (++quad == 4) {
            buf[o++] = (char)(acc >> 16 & 0xff);
            if (pad < 2)
                buf[o++] = (char)(acc >> 8 & 0xff);
            if (pad < 1)
                buf[o++] = (char)(acc & 0xff);
            quad = 0;
            acc = 0;
            if (pad > 0) {
                /* Nothing but skipped whitespace may follow a padded group. */
                for (size_t j = i + 1; j < len; j++) {
                    if (!skipped((unsigned char)text[j]))
                        goto out;
                }
                break;
            }
        }
    }
    if (quad != 0)
        goto out;
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    buf = NULL;
    result = TL_OK;
out:
    free(buf);
    return result;
}
