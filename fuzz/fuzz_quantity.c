/*
 * libFuzzer target for lib/quantity. For any input that parses it checks that the canonical
 * text parses back to the same value, and prints the same again when the format is kept. For inputs
 * with at most 18 digits and a short exponent it also recomputes the value in nanos with 128-bit
 * arithmetic, independently of the digit-by-digit algorithm in quantity.c, and checks the two agree
 * (including the binary cap at 2^63-1 and TL_ERANGE for decimals past it). Aborts on a mismatch.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "quantity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef unsigned __int128 u128;

#define NANO 1000000000u

struct reference {
    u128 nanos;   /* |value| in nanos, rounded up, capped for binary */
    bool too_big; /* a decimal value past the int64 range: expect TL_ERANGE */
};

static int exponent_of(const char *s, int *out)
{
    static const struct {
        const char *name;
        int dec;
        int bin;
    } table[] = {
        {"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},  {"", 0, 0},    {"k", 3, 0},   {"M", 6, 0},
        {"G", 9, 0},   {"T", 12, 0},  {"P", 15, 0},  {"E", 18, 0},  {"Ki", 0, 10}, {"Mi", 0, 20},
        {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50}, {"Ei", 0, 60},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (strcmp(s, table[i].name) == 0) {
            out[0] = table[i].dec;
            out[1] = table[i].bin;
            return 1;
        }
    }
    if (*s != 'e' && *s != 'E')
        return 0;
    s++;
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    int e = 0;
    int digits = 0;
    for (; *s >= '0' && *s <= '9'; s++, digits++) {
        if (digits == 4)
            return 0; /* too long for the reference; the parser still has to survive it */
        e = e * 10 + (*s - '0');
    }
    if (digits == 0 || *s != '\0')
        return 0;
    out[0] = sign * e;
    out[1] = 0;
    return 1;
}

/* Returns false when the input is outside what the reference handles. */
static bool reference_value(const char *text, struct reference *ref)
{
    const char *p = text;
    if (*p == '+' || *p == '-')
        p++;
    u128 digits = 0;
    int n_digits = 0;
    int n_frac = 0;
    bool point = false;
    for (;; p++) {
        if (*p >= '0' && *p <= '9') {
            if (++n_digits > 18)
                return false;
            digits = digits * 10 + (u128)(*p - '0');
            n_frac += point;
        }
        else if (*p == '.' && !point) {
            point = true;
        }
        else {
            break;
        }
    }
    int exps[2];
    if (n_digits == 0 || !exponent_of(p, exps))
        return false;

    const u128 max_units = (u128)INT64_MAX;
    const u128 limit = max_units * NANO + (NANO - 1);
    u128 v = digits << exps[1]; /* < 10^18 * 2^60 < 2^120 */
    int e = exps[0] - n_frac + 9;
    ref->too_big = false;
    if (e >= 0) {
        for (; e > 0 && v != 0 && v <= limit; e--)
            v *= 10; /* v <= limit < 2^94 before the step, so no wrap */
    }
    else if (-e > 38) {
        v = v != 0; /* v < 10^37, so v / 10^39 is a non-zero fraction at most: rounds to 1n */
    }
    else {
        u128 p10 = 1;
        for (int i = 0; i < -e; i++)
            p10 *= 10;
        v = v / p10 + (v % p10 != 0);
    }
    if (exps[1] != 0 && v > max_units * NANO)
        v = max_units * NANO; /* ParseQuantity's silent cap for BinarySI */
    else if (v > limit)
        ref->too_big = true;
    ref->nanos = v;
    return true;
}

static u128 nanos_of(const struct tl_quantity *q)
{
    u128 units = q->units < 0 ? (u128)(-(q->units + 1)) + 1 : (u128)q->units;
    u128 nanos = q->nanos < 0 ? (u128)(-q->nanos) : (u128)q->nanos;
    return units * NANO + nanos;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096 || memchr(data, '\0', size) != NULL)
        return 0;
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    struct tl_quantity q;
    char err[160];
    enum tl_err result = tl_quantity_parse(text, &q, err, sizeof(err));
    if (result != TL_OK && result != TL_EINVAL && result != TL_ERANGE)
        abort();
    if (result != TL_OK && (err[0] != '"' || strlen(err) >= sizeof(err)))
        abort();

    struct reference ref;
    if (result != TL_EINVAL && reference_value(text, &ref)) {
        if (ref.too_big != (result == TL_ERANGE))
            abort();
        if (result == TL_OK && nanos_of(&q) != ref.nanos)
            abort();
        if (result == TL_OK && ref.nanos != 0 && (text[0] == '-') != (q.units < 0 || q.nanos < 0))
            abort();
    }

    if (result == TL_OK) {
        char first[TL_QUANTITY_STR_MAX];
        char second[TL_QUANTITY_STR_MAX];
        struct tl_quantity again;
        if (tl_quantity_format(&q, first, sizeof(first)) != TL_OK)
            abort();
        if (tl_quantity_parse(first, &again, NULL, 0) != TL_OK)
            abort();
        if (tl_quantity_cmp(&q, &again) != 0)
            abort();
        /* The text is a fixed point unless re-reading changed the format: a BinarySI 32000
         * prints "32000", which reads back as DecimalSI and prints "32k", in Go as well. */
        if (tl_quantity_format(&again, second, sizeof(second)) != TL_OK)
            abort();
        if (again.format == q.format && strcmp(first, second) != 0)
            abort();
        int64_t out;
        (void)tl_quantity_milli(&q, &out);
        (void)tl_quantity_value(&q, &out);
    }
    free(text);
    return 0;
}
