#include "quantity.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NANOS_PER_UNIT 1000000000
/* A decimal exponent past this is clamped: no text shorter than a terabyte can tell. */
#define EXP_CLAMP ((int64_t)1 << 40)
/* How much of the input an error message quotes. */
#define QUOTE_MAX 48

static const uint32_t pow10_u32[10] = {
    1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
};

/* The text split the way the grammar reads it: [sign] digits [. digits] suffix. */
struct lexed {
    bool negative;
    const char *int_digits;
    size_t n_int;
    const char *frac_digits;
    size_t n_frac;
    const char *suffix;
};

/* What a suffix multiplies by: 10^dec_exp * 2^bin_exp. */
struct multiplier {
    int64_t dec_exp;
    unsigned bin_exp;
    enum tl_quantity_format format;
};

/* A magnitude in units and nanos, before the sign is applied. */
struct magnitude {
    uint64_t units;
    uint32_t nanos;
};

struct suffix_entry {
    const char *name;
    int dec_exp;
    unsigned bin_exp;
};

static const struct suffix_entry suffixes[] = {
    {"n", -9, 0},  {"u", -6, 0},  {"m", -3, 0},  {"", 0, 0},    {"k", 3, 0},   {"M", 6, 0},
    {"G", 9, 0},   {"T", 12, 0},  {"P", 15, 0},  {"E", 18, 0},  {"Ki", 0, 10}, {"Mi", 0, 20},
    {"Gi", 0, 30}, {"Ti", 0, 40}, {"Pi", 0, 50}, {"Ei", 0, 60},
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Copies at most QUOTE_MAX bytes of s into out, escaping what a log line should not carry. */
static void quote(const char *s, char *out, size_t outlen)
{
    size_t o = 0;
    size_t i = 0;
    for (; i < QUOTE_MAX && s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        char piece[8];
        int n;
        if (c == '"' || c == '\\')
            n = snprintf(piece, sizeof(piece), "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            n = snprintf(piece, sizeof(piece), "\\x%02x", c);
        else
            n = snprintf(piece, sizeof(piece), "%c", c);
        if (n < 0 || o + (size_t)n >= outlen)
            break;
        memcpy(out + o, piece, (size_t)n);
        o += (size_t)n;
    }
    if (s[i] != '\0' && o + 3 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* Writes `"<text>": <why>` into errbuf when the caller gave one, and returns err. */
__attribute__((format(printf, 5, 6))) static enum tl_err
fail(enum tl_err err, char *errbuf, size_t errlen, const char *text, const char *why, ...)
{
    if (errbuf == NULL || errlen == 0)
        return err;
    char quoted[QUOTE_MAX * 4 + 4];
    quote(text, quoted, sizeof(quoted));
    int n = snprintf(errbuf, errlen, "\"%s\": ", quoted);
    if (n < 0) {
        errbuf[0] = '\0';
        return err;
    }
    if ((size_t)n >= errlen)
        return err; /* truncated, still NUL-terminated */
    va_list ap;
    va_start(ap, why);
    if (vsnprintf(errbuf + n, errlen - (size_t)n, why, ap) < 0)
        errbuf[n] = '\0';
    va_end(ap);
    return err;
}

static void lex(const char *text, struct lexed *lx)
{
    const char *p = text;
    lx->negative = false;
    if (*p == '+' || *p == '-') {
        lx->negative = *p == '-';
        p++;
    }
    lx->int_digits = p;
    while (is_digit(*p))
        p++;
    lx->n_int = (size_t)(p - lx->int_digits);
    lx->frac_digits = p;
    lx->n_frac = 0;
    if (*p == '.') {
        p++;
        lx->frac_digits = p;
        while (is_digit(*p))
            p++;
        lx->n_frac = (size_t)(p - lx->frac_digits);
    }
    lx->suffix = p;
}

/*
 * Reads an exponent suffix: [eE] [+-] digits, nothing after. Go reads the number with
 * strconv.ParseInt(s, 10, 64), so a sign and leading zeros are fine. Returns TL_EINVAL if s is
 * not of that shape, TL_ERANGE if the number does not fit an int64.
 */
static enum tl_err read_exponent(const char *s, int64_t *out)
{
    if (*s != 'e' && *s != 'E')
        return TL_EINVAL;
    s++;
    bool negative = false;
    if (*s == '+' || *s == '-') {
        negative = *s == '-';
        s++;
    }
    if (!is_digit(*s))
        return TL_EINVAL;
    int64_t value = 0;
    bool overflow = false;
    for (; is_digit(*s); s++) {
        int d = *s - '0';
        if (!overflow && (__builtin_mul_overflow(value, 10, &value) ||
                          __builtin_add_overflow(value, negative ? -d : d, &value)))
            overflow = true;
    }
    if (*s != '\0')
        return TL_EINVAL;
    if (overflow)
        return TL_ERANGE;
    *out = value;
    return TL_OK;
}

/* Looks suffix up; TL_EINVAL if it is none of the known ones, TL_ERANGE for a huge exponent. */
static enum tl_err read_suffix(const char *suffix, struct multiplier *out)
{
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        if (strcmp(suffix, suffixes[i].name) == 0) {
            out->dec_exp = suffixes[i].dec_exp;
            out->bin_exp = suffixes[i].bin_exp;
            out->format = suffixes[i].bin_exp ? TL_QUANTITY_BINARY_SI : TL_QUANTITY_DECIMAL_SI;
            return TL_OK;
        }
    }
    int64_t exp;
    enum tl_err result = read_exponent(suffix, &exp);
    if (result != TL_OK)
        return result;
    out->dec_exp = exp > EXP_CLAMP ? EXP_CLAMP : exp < -EXP_CLAMP ? -EXP_CLAMP : exp;
    out->bin_exp = 0;
    out->format = TL_QUANTITY_DECIMAL_EXPONENT;
    return TL_OK;
}

/* A hint for the suffixes people mistype: "1gi", "1MI", "1K". Empty when there is none. */
static const char *suffix_hint(const char *suffix)
{
    static const char *const binary[] = {"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    static const char *const binary_hints[] = {
        "; did you mean \"Ki\"?", "; did you mean \"Mi\"?", "; did you mean \"Gi\"?",
        "; did you mean \"Ti\"?", "; did you mean \"Pi\"?", "; did you mean \"Ei\"?",
    };
    for (size_t i = 0; i < sizeof(binary) / sizeof(binary[0]); i++) {
        if (strcasecmp(suffix, binary[i]) == 0)
            return binary_hints[i];
    }
    if (strcmp(suffix, "K") == 0)
        return "; did you mean \"k\" (1000) or \"Ki\" (1024)?";
    return "";
}

static char digit_at(const struct lexed *lx, size_t i)
{
    return i < lx->n_int ? lx->int_digits[i] : lx->frac_digits[i - lx->n_int];
}

/* Adds digit d at fractional position pos (1 = tenths) to the nanos, or to the sticky bit. */
static void place_fraction_digit(uint64_t d, int64_t pos, uint32_t *nanos, bool *sticky)
{
    if (pos <= 9)
        *nanos += (uint32_t)d * pow10_u32[9 - pos];
    else if (d != 0)
        *sticky = true;
}

/*
 * Computes |value| = digits * 10^(shift - n) * m exactly down to nanos, rounding a finer
 * remainder up, as ParseQuantity's inf.Dec Round(..., Nano, RoundUp) does. Returns false if the
 * units do not fit a uint64.
 *
 * The n significant digits are the integer digits then the fraction digits; digit i weighs
 * 10^(shift-1-i) units. Those with weight >= 1 form a whole number W. The rest form a fraction F
 * in [0, 1), whose product with m = 2^bin_exp is found by schoolbook multiplication from the
 * last digit to the first: each step keeps one digit of F*m's fraction and carries the rest, so
 * the carry out of the first fraction digit is floor(F*m) and the kept digits are its fraction.
 * Since the carry stays below m <= 2^60, digit*m + carry < 2^64 and nothing wider than uint64 is
 * needed. The first nine kept digits are the nanos; any non-zero digit past them rounds up.
 * For a decimal suffix m is 1 and this reduces to reading the digits in place.
 */
static bool scale_digits(const struct lexed *lx, int64_t shift, unsigned bin_exp,
                         struct magnitude *out)
{
    const uint64_t m = UINT64_C(1) << bin_exp;
    const size_t n = lx->n_int + lx->n_frac;
    size_t first_frac = 0;
    if (shift > 0)
        first_frac = (uint64_t)shift < n ? (size_t)shift : n;

    uint64_t whole = 0;
    for (size_t i = 0; i < first_frac; i++) {
        if (__builtin_mul_overflow(whole, 10, &whole) ||
            __builtin_add_overflow(whole, (uint64_t)(digit_at(lx, i) - '0'), &whole))
            return false;
    }
    /* Implied zeros after the last digit ("1e30"); a non-zero value overflows within 20. */
    for (int64_t z = (int64_t)n; whole != 0 && z < shift; z++) {
        if (__builtin_mul_overflow(whole, 10, &whole))
            return false;
    }

    uint64_t carry = 0;
    uint32_t nanos = 0;
    bool sticky = false;
    for (size_t i = n; i > first_frac; i--) {
        uint64_t t = (uint64_t)(digit_at(lx, i - 1) - '0') * m + carry;
        place_fraction_digit(t % 10, (int64_t)(i - 1) - shift + 1, &nanos, &sticky);
        carry = t / 10;
    }
    /* Implied zeros between the point and the first digit ("1e-12"), until the carry is spent. */
    for (int64_t pos = -shift; pos >= 1 && carry != 0; pos--) {
        place_fraction_digit(carry % 10, pos, &nanos, &sticky);
        carry /= 10;
    }

    uint64_t units;
    if (__builtin_mul_overflow(whole, m, &units) || __builtin_add_overflow(units, carry, &units))
        return false;
    if (sticky && ++nanos == NANOS_PER_UNIT) {
        nanos = 0;
        if (__builtin_add_overflow(units, 1, &units))
            return false;
    }
    out->units = units;
    out->nanos = nanos;
    return true;
}

enum tl_err tl_quantity_parse(const char *text, struct tl_quantity *out, char *errbuf,
                              size_t errlen)
{
    if (text == NULL || out == NULL)
        return fail(TL_EINVAL, errbuf, errlen, "", "no quantity given");
    if (*text == '\0')
        return fail(TL_EINVAL, errbuf, errlen, text, "empty quantity");
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == ' ' || (*p >= '\t' && *p <= '\r'))
            return fail(TL_EINVAL, errbuf, errlen, text, "whitespace is not allowed");
    }

    struct lexed lx;
    lex(text, &lx);
    char quoted_suffix[QUOTE_MAX * 4 + 4];
    quote(lx.suffix, quoted_suffix, sizeof(quoted_suffix));
    if (lx.n_int + lx.n_frac == 0) {
        if (*lx.suffix == '\0')
            return fail(TL_EINVAL, errbuf, errlen, text, "no digits");
        return fail(TL_EINVAL, errbuf, errlen, text, "no digits before \"%s\"", quoted_suffix);
    }
    if (*lx.suffix == '.')
        return fail(TL_EINVAL, errbuf, errlen, text, "more than one decimal point");

    struct multiplier mul;
    enum tl_err result = read_suffix(lx.suffix, &mul);
    if (result == TL_ERANGE)
        return fail(result, errbuf, errlen, text, "exponent out of range");
    if (result != TL_OK)
        return fail(result, errbuf, errlen, text,
                    "unknown suffix \"%s\" (want one of n u m k M G T P E Ki Mi Gi Ti Pi Ei, "
                    "or an exponent such as e3)%s",
                    quoted_suffix, suffix_hint(lx.suffix));

    /* n_int is bounded by the text's length, far below EXP_CLAMP's headroom in an int64. */
    int64_t shift = (int64_t)lx.n_int + mul.dec_exp;
    struct magnitude mag;
    bool fits = scale_digits(&lx, shift, mul.bin_exp, &mag);
    if (fits &&
        (mag.units > INT64_MAX || (mag.units == INT64_MAX && mag.nanos > 0 && mul.bin_exp != 0)))
        fits = false;
    if (!fits) {
        /* ParseQuantity caps binary quantities at 2^63-1 without an error; decimal ones it keeps
         * exactly in an inf.Dec, which an int64 cannot. */
        if (mul.bin_exp == 0)
            return fail(TL_ERANGE, errbuf, errlen, text,
                        "out of range (the limit is 9223372036854775807 units)");
        mag.units = INT64_MAX;
        mag.nanos = 0;
    }

    enum tl_quantity_format format = mul.format;
    if (format == TL_QUANTITY_BINARY_SI && mag.units == 0 && mag.nanos > 0)
        format = TL_QUANTITY_DECIMAL_SI; /* as ParseQuantity does for 0 < x < 1 */

    out->units = lx.negative ? -(int64_t)mag.units : (int64_t)mag.units;
    out->nanos = lx.negative ? -(int32_t)mag.nanos : (int32_t)mag.nanos;
    out->format = format;
    return TL_OK;
}

static bool well_formed(const struct tl_quantity *q)
{
    if (q->nanos <= -NANOS_PER_UNIT || q->nanos >= NANOS_PER_UNIT)
        return false;
    return !((q->units > 0 && q->nanos < 0) || (q->units < 0 && q->nanos > 0));
}

static struct magnitude magnitude_of(const struct tl_quantity *q)
{
    struct magnitude mag;
    /* -(units + 1) + 1 keeps INT64_MIN out of signed overflow. */
    mag.units = q->units < 0 ? (uint64_t)(-(q->units + 1)) + 1 : (uint64_t)q->units;
    mag.nanos = q->nanos < 0 ? (uint32_t)-q->nanos : (uint32_t)q->nanos;
    return mag;
}

static bool is_negative(const struct tl_quantity *q)
{
    return q->units < 0 || q->nanos < 0;
}

/* DecimalSI's suffix for a power of ten that is a multiple of 3, or NULL past "E". */
static const char *decimal_si_suffix(int exp)
{
    static const char *const names[] = {"n", "u", "m", "", "k", "M", "G", "T", "P", "E"};
    if (exp < -9 || exp > 18 || exp % 3 != 0)
        return NULL;
    return names[(exp + 9) / 3];
}

/*
 * Prints mag as mantissa * 10^exp with exp a multiple of 3 and as large as keeps the mantissa
 * whole, then the suffix for exp: amount.go's AsCanonicalBytes and suffix.go's constructBytes.
 * Past "E" DecimalSI has no suffix and, like current apimachinery, falls back to "e<exp>".
 */
static int print_decimal(char *buf, size_t len, const char *sign, struct magnitude mag,
                         enum tl_quantity_format format)
{
    char mantissa[48];
    int exp;
    int n;
    if (mag.nanos == 0) {
        uint64_t v = mag.units;
        exp = 0;
        while (v % 10 == 0) {
            v /= 10;
            exp++;
        }
        for (; exp % 3 != 0; exp--)
            v *= 10; /* undoes a division above, so it cannot overflow */
        n = snprintf(mantissa, sizeof(mantissa), "%" PRIu64, v);
    }
    else {
        int frac_digits = 9;
        for (uint32_t v = mag.nanos; v % 10 == 0; v /= 10)
            frac_digits--;
        exp = -((frac_digits + 2) / 3 * 3);
        uint32_t tail = mag.nanos / pow10_u32[9 + exp];
        if (mag.units == 0)
            n = snprintf(mantissa, sizeof(mantissa), "%" PRIu32, tail);
        else
            n = snprintf(mantissa, sizeof(mantissa), "%" PRIu64 "%0*" PRIu32, mag.units, -exp,
                         tail);
    }
    if (n < 0 || (size_t)n >= sizeof(mantissa))
        return -1;

    const char *si = format == TL_QUANTITY_DECIMAL_SI ? decimal_si_suffix(exp) : NULL;
    if (si != NULL)
        return snprintf(buf, len, "%s%s%s", sign, mantissa, si);
    if (exp == 0)
        return snprintf(buf, len, "%s%s", sign, mantissa);
    return snprintf(buf, len, "%s%se%d", sign, mantissa, exp);
}

/* Prints a whole number of units as mantissa * 1024^k with the largest k that is exact. */
static int print_binary(char *buf, size_t len, const char *sign, uint64_t units)
{
    static const char *const names[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    size_t k = 0;
    /* units < 2^64 = 16 * 1024^6, so k stops at 6 on its own. */
    while (units % 1024 == 0 && k + 1 < sizeof(names) / sizeof(names[0])) {
        units /= 1024;
        k++;
    }
    return snprintf(buf, len, "%s%" PRIu64 "%s", sign, units, names[k]);
}

enum tl_err tl_quantity_format(const struct tl_quantity *q, char *buf, size_t len)
{
    if (q == NULL || buf == NULL || !well_formed(q))
        return TL_EINVAL;
    char tmp[TL_QUANTITY_STR_MAX];
    struct magnitude mag = magnitude_of(q);
    const char *sign = is_negative(q) ? "-" : "";
    int n;
    if (mag.units == 0 && mag.nanos == 0) {
        n = snprintf(tmp, sizeof(tmp), "0");
    }
    else {
        switch (q->format) {
        case TL_QUANTITY_BINARY_SI:
            /* Below 1024, or not whole, a binary quantity prints as DecimalSI (CanonicalizeBytes).
             */
            if (mag.units < 1024 || mag.nanos != 0)
                n = print_decimal(tmp, sizeof(tmp), sign, mag, TL_QUANTITY_DECIMAL_SI);
            else
                n = print_binary(tmp, sizeof(tmp), sign, mag.units);
            break;
        case TL_QUANTITY_DECIMAL_SI:
            n = print_decimal(tmp, sizeof(tmp), sign, mag, TL_QUANTITY_DECIMAL_SI);
            break;
        case TL_QUANTITY_DECIMAL_EXPONENT:
        default: /* Go prints an unknown format as DecimalExponent too */
            n = print_decimal(tmp, sizeof(tmp), sign, mag, TL_QUANTITY_DECIMAL_EXPONENT);
            break;
        }
    }
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return TL_EINVAL; /* cannot happen for a well-formed quantity */
    if ((size_t)n >= len)
        return TL_ETOOBIG;
    memcpy(buf, tmp, (size_t)n + 1);
    return TL_OK;
}

/* Stores negative ? -mag : mag in *out if it fits an int64. */
static enum tl_err to_signed(uint64_t mag, bool negative, int64_t *out)
{
    if (!negative) {
        if (mag > INT64_MAX)
            return TL_ERANGE;
        *out = (int64_t)mag;
        return TL_OK;
    }
    if (mag > (uint64_t)INT64_MAX + 1)
        return TL_ERANGE;
    *out = mag == 0 ? 0 : -(int64_t)(mag - 1) - 1;
    return TL_OK;
}

enum tl_err tl_quantity_milli(const struct tl_quantity *q, int64_t *out)
{
    if (q == NULL || out == NULL || !well_formed(q))
        return TL_EINVAL;
    struct magnitude mag = magnitude_of(q);
    uint64_t milli;
    uint64_t part = (mag.nanos + 999999u) / 1000000u;
    if (__builtin_mul_overflow(mag.units, 1000, &milli) ||
        __builtin_add_overflow(milli, part, &milli))
        return TL_ERANGE;
    return to_signed(milli, is_negative(q), out);
}

enum tl_err tl_quantity_value(const struct tl_quantity *q, int64_t *out)
{
    if (q == NULL || out == NULL || !well_formed(q))
        return TL_EINVAL;
    struct magnitude mag = magnitude_of(q);
    uint64_t value = mag.units;
    if (mag.nanos != 0 && __builtin_add_overflow(value, 1, &value))
        return TL_ERANGE;
    return to_signed(value, is_negative(q), out);
}

int tl_quantity_cmp(const struct tl_quantity *a, const struct tl_quantity *b)
{
    /* nanos share the sign of units, so the pair orders like the number it stands for. */
    if (a->units != b->units)
        return a->units < b->units ? -1 : 1;
    if (a->nanos != b->nanos)
        return a->nanos < b->nanos ? -1 : 1;
    return 0;
}

struct tl_quantity tl_quantity_from_milli_cpu(int64_t milli)
{
    struct tl_quantity q = {
        .units = milli / 1000,
        .nanos = (int32_t)(milli % 1000) * 1000000,
        .format = TL_QUANTITY_DECIMAL_SI,
    };
    return q;
}

struct tl_quantity tl_quantity_from_bytes(int64_t bytes)
{
    struct tl_quantity q = {.units = bytes, .nanos = 0, .format = TL_QUANTITY_BINARY_SI};
    return q;
}

enum tl_err tl_quantity_round_bytes_up(int64_t bytes, int64_t granularity, int64_t *out)
{
    if (granularity <= 0 || out == NULL)
        return TL_EINVAL;
    int64_t rem = bytes % granularity;
    int64_t rounded = bytes;
    if (rem > 0 && __builtin_add_overflow(bytes, granularity - rem, &rounded))
        return TL_ERANGE;
    if (rem < 0)
        rounded = bytes - rem; /* C's remainder takes the dividend's sign: this moves up */
    *out = rounded;
    return TL_OK;
}
