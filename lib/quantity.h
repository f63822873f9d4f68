/* quantity: Kubernetes resource.Quantity ("250m", "1.5Gi"): parse, print canonically, convert. */
#ifndef TL_QUANTITY_H
#define TL_QUANTITY_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/*
 * What this module follows (k8s.io/apimachinery pkg/api/resource, quantity.go, suffix.go,
 * amount.go, and the tables in quantity_test.go):
 *
 * - Grammar: [+-] digits with an optional point ("1.5", ".5", "5."), then one suffix:
 *   n u m "" k M G T P E (powers of ten), Ki Mi Gi Ti Pi Ei (powers of 1024), or an exponent
 *   e<int> / E<int> ("1e3", "12E6", "1.5e-3", "1E+2"). "E" alone is exa.
 * - Precision: like ParseQuantity, the value is kept exactly down to nano-units (1e-9) and a
 *   finer non-zero remainder is rounded away from zero: "0.9n" and "0.0000000001" are 1n,
 *   "100u" stays 100u. Milli and whole-unit views round away from zero, as MilliValue() and
 *   Value() do: "100u" has milli 1, "1.5" has value 2.
 * - Binary quantities are capped silently at 2^63-1 ("9Ei", "8Ei" parse as 9223372036854775807),
 *   exactly as ParseQuantity does; a binary value strictly between 0 and 1 becomes DecimalSI.
 * - Printing is CanonicalizeBytes: the largest suffix that loses nothing, with exponents that
 *   are multiples of three ("1.5" -> "1500m", "2000m" -> "2", "1024Mi" -> "1Gi",
 *   "1.5Gi" -> "1536Mi", "0.5Ki" -> "512", "1.2e3" -> "1200"). A binary value below 1024 or
 *   with a fraction prints as DecimalSI; zero always prints "0".
 *
 * Where this module differs from Go, on purpose:
 * - Go keeps decimal values of any size; here a value must fit |units| <= 2^63-1 (plus up to
 *   999999999n), else TL_ERANGE ("10E", "9999999999999999999999E").
 * - Go reads "Mi", "+", "." and "-." as zero; the documented grammar needs at least one digit,
 *   and so does this parser (TL_EINVAL).
 * - Go truncates an exponent to 32 bits ("1e4294967296" is 1); here it is an exact power of ten,
 *   so that is TL_ERANGE. An exponent past int64 fails in both (here with TL_ERANGE).
 * - Leading or trailing whitespace is an error, as in ParseQuantity. The API server's JSON
 *   decoder trims it before parsing; a caller decoding JSON may do the same.
 */

enum tl_quantity_format {
    TL_QUANTITY_DECIMAL_SI,       /* "250m", "2", "1G" */
    TL_QUANTITY_BINARY_SI,        /* "640Mi", "1Gi" */
    TL_QUANTITY_DECIMAL_EXPONENT, /* "1e3", "80e-3" */
};

/*
 * A quantity is units + nanos * 1e-9. nanos has the sign of units (or units is zero) and
 * |nanos| < 1e9, so two quantities compare as the pair (units, nanos). A zero-initialised
 * struct is the DecimalSI quantity "0".
 */
struct tl_quantity {
    int64_t units;
    int32_t nanos;
    enum tl_quantity_format format;
};

/* A buffer this long always holds tl_quantity_format's output (at most 32 characters and a NUL). */
#define TL_QUANTITY_STR_MAX 40

/*
 * Parses text (borrowed, NUL-terminated). On success writes *out and returns TL_OK. On failure
 * returns TL_EINVAL (malformed: empty, spaces, "1.2.3", "1Kb", "--1", "Mi", "1mi") or TL_ERANGE
 * (well-formed but does not fit), leaves *out alone and, if errbuf is not NULL, writes a
 * NUL-terminated message that quotes the input and says what was wrong, such as
 * `"12x": unknown suffix "x"`. errbuf belongs to the caller; errlen of 128 is plenty.
 */
enum tl_err tl_quantity_parse(const char *text, struct tl_quantity *out, char *errbuf,
                              size_t errlen);

/*
 * Prints the canonical form the API server would store (String() / CanonicalizeBytes) into
 * buf, which the caller owns. TL_ETOOBIG if len is too small; TL_QUANTITY_STR_MAX always fits.
 */
enum tl_err tl_quantity_format(const struct tl_quantity *q, char *buf, size_t len);

/* Writes the value times 1000, rounded away from zero (MilliValue()). TL_ERANGE on overflow. */
enum tl_err tl_quantity_milli(const struct tl_quantity *q, int64_t *out);

/* Writes the value rounded away from zero to whole units (Value()). TL_ERANGE on overflow. */
enum tl_err tl_quantity_value(const struct tl_quantity *q, int64_t *out);

/* Returns -1, 0 or 1 as a is less than, equal to or greater than b (both borrowed, not NULL);
 * formats are ignored, so "1Ki" equals "1024". */
int tl_quantity_cmp(const struct tl_quantity *a, const struct tl_quantity *b);

/* A CPU amount of milli millicores in DecimalSI, so it prints "250m", "2" or "1500m". */
struct tl_quantity tl_quantity_from_milli_cpu(int64_t milli);

/*
 * A memory amount in BinarySI: prints "640Mi" or "1Gi" when exact, else plain bytes ("1536");
 * below 1024 it prints as DecimalSI, as the API server does ("512", and "1k" for 1000).
 */
struct tl_quantity tl_quantity_from_bytes(int64_t bytes);

/*
 * Rounds bytes up (towards +infinity) to a multiple of granularity, e.g. 1Mi so a recommendation
 * prints as "641Mi" and not "671093123". TL_EINVAL if granularity <= 0, TL_ERANGE on overflow.
 */
enum tl_err tl_quantity_round_bytes_up(int64_t bytes, int64_t granularity, int64_t *out);

#endif
