/*
 * Tests for lib/quantity: the parse/print table follows k8s.io/apimachinery's
 * pkg/api/resource/quantity_test.go (test names given per row) and the Kubernetes docs page
 * "Resource Management for Pods and Containers", section "Resource units in Kubernetes"
 * (kubernetes.io/docs/concepts/configuration/manage-resources-containers/), cited as "docs".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "quantity.h"

#define DSI TL_QUANTITY_DECIMAL_SI
#define BSI TL_QUANTITY_BINARY_SI
#define DEX TL_QUANTITY_DECIMAL_EXPONENT

struct parse_case {
    const char *input;
    enum tl_err err;
    int64_t units;
    int32_t nanos;
    enum tl_quantity_format format;
    const char *canonical;
};

#define OK(in, u, n, f, canon)                                                                     \
    {                                                                                              \
        (in), TL_OK, (u), (n), (f), (canon)                                                        \
    }
#define BAD(in, e)                                                                                 \
    {                                                                                              \
        (in), (e), 0, 0, DSI, NULL                                                                 \
    }

static const struct parse_case cases[] = {
    /* TestQuantityParseZero, TestQuantityParse "0", "0Mi", "0n" */
    OK("0", 0, 0, DSI, "0"),
    OK("0Mi", 0, 0, BSI, "0"),
    OK("0n", 0, 0, DSI, "0"),
    /* TestQuantityParse: binary suffixes */
    OK("1Ki", 1024, 0, BSI, "1Ki"),
    OK("7Mi", 7340032, 0, BSI, "7Mi"),
    OK("6Gi", 6442450944, 0, BSI, "6Gi"),
    OK("3Ei", 3458764513820540928, 0, BSI, "3Ei"),
    /* TestQuantityParse: decimal suffixes */
    OK("5n", 0, 5, DSI, "5n"),
    OK("4u", 0, 4000, DSI, "4u"),
    OK("3m", 0, 3000000, DSI, "3m"),
    OK("50k", 50000, 0, DSI, "50k"),
    OK("40T", 40000000000000, 0, DSI, "40T"),
    OK("1E", 1000000000000000000, 0, DSI, "1E"),
    /* TestQuantityParse: decimal exponents; "E" alone is exa, "E-3" an exponent */
    OK("1E-3", 0, 1000000, DEX, "1e-3"),
    OK("1e3", 1000, 0, DEX, "1e3"),
    OK("1e14", 100000000000000, 0, DEX, "100e12"),
    OK("1.3E+6", 1300000, 0, DEX, "1300e3"),
    OK("1.7E18", 1700000000000000000, 0, DEX, "1700e15"),
    OK("0.5e-2", 0, 5000000, DEX, "5e-3"),
    /* TestQuantityParse: nonstandard but parsable, things that look like floating point */
    OK("100.035k", 100035, 0, DSI, "100035"),
    OK("0.0005k", 0, 500000000, DSI, "500m"),
    OK("10.035M", 10035000, 0, DSI, "10035k"),
    OK("6.987654321G", 6987654321, 0, DSI, "6987654321"),
    /* TestQuantityParse: things that saturate or round (up, to the next nano) */
    OK("3.001n", 0, 4, DSI, "4n"),
    OK("1.1E-9", 0, 2, DEX, "2e-9"),
    OK("0.0000000001", 0, 1, DSI, "1n"),
    OK("0.00000012345", 0, 124, DSI, "124n"),
    OK("9Ei", INT64_MAX, 0, BSI, "9223372036854775807"),
    OK("9223372036854775807Ki", INT64_MAX, 0, BSI, "9223372036854775807"),
    /* TestZeroSubMostNegativeInheritsFormat's note: ParseQuantity caps 8Ei to MaxInt64 */
    OK("8Ei", INT64_MAX, 0, BSI, "9223372036854775807"),
    OK("-9Ei", -INT64_MAX, 0, BSI, "-9223372036854775807"),
    /* ParseQuantity's cap compares after nano rounding: 2^63 - 0.5 is above 2^63-1 too */
    OK("9007199254740991.99951171875Ki", INT64_MAX, 0, BSI, "9223372036854775807"),
    /* TestQuantityParse: fractional binary */
    OK("100.035Ki", 102435, 840000000, BSI, "102435840m"),
    OK("0.5Mi", 524288, 0, BSI, "512Ki"),
    OK("0.05Gi", 53687091, 200000000, BSI, "53687091200m"),
    /* TestQuantityParse: "things written by trolls" */
    OK("0.000000000001Ki", 0, 2, DSI, "2n"),
    OK(".001", 0, 1000000, DSI, "1m"),
    OK(".0001k", 0, 100000000, DSI, "100m"),
    OK("1.", 1, 0, DSI, "1"),
    OK("1.G", 1000000000, 0, DSI, "1G"),
    /* TestQuantityParse: "Try the negative version of everything", "with an explicit +" */
    OK("-1.5", -1, -500000000, DSI, "-1500m"),
    OK("+1.5", 1, 500000000, DSI, "1500m"),
    /* TestQuantityParseEmit */
    OK("1024Mi", 1073741824, 0, BSI, "1Gi"),
    OK("1000M", 1000000000, 0, DSI, "1G"),
    OK(".001Ki", 1, 24000000, BSI, "1024m"),
    OK(".000001Ki", 0, 1024000, DSI, "1024u"),
    OK(".000000001Ki", 0, 1024, DSI, "1024n"),
    OK("-.000000000001Ki", 0, -2, DSI, "-2n"),
    /* TestQuantityString: alternates that canonicalise */
    OK("307200Ki", 314572800, 0, BSI, "300Mi"),
    OK("1025024Mi", 1074815565824, 0, BSI, "1001Gi"),
    OK("1080000000n", 1, 80000000, DSI, "1080m"),
    OK("0.001T", 1000000000, 0, DSI, "1G"),
    OK("1000u", 0, 1000000, DSI, "1m"),
    OK(".001e12", 1000000000, 0, DEX, "1e9"),
    OK("1000e-12", 0, 1, DEX, "1e-9"),
    OK("00", 0, 0, DSI, "0"),
    /* TestParseQuantity: large values just inside an int64 of units */
    OK("999999999999999999.1", 999999999999999999, 100000000, DSI, "999999999999999999100m"),
    OK("9223372036854775807.1", INT64_MAX, 100000000, DSI, "9223372036854775807100m"),
    OK("-9223372036854775807.1", -INT64_MAX, -100000000, DSI, "-9223372036854775807100m"),
    OK("1.0000000000000000001E", 1000000000000000000, 100000000, DSI, "1000000000000000000100m"),
    OK("1.000000000000000001E", 1000000000000000001, 0, DSI, "1000000000000000001"),
    /* docs: "0.1 is equivalent to the expression 100m" */
    OK("0.1", 0, 100000000, DSI, "100m"),
    /* docs: 128974848, 129e6, 129M, 128974848000m, 123Mi are roughly the same value */
    OK("128974848", 128974848, 0, DSI, "128974848"),
    OK("129e6", 129000000, 0, DEX, "129e6"),
    OK("129M", 129000000, 0, DSI, "129M"),
    OK("128974848000m", 128974848, 0, DSI, "128974848"),
    OK("123Mi", 128974848, 0, BSI, "123Mi"),
    /* docs: "400m" of memory is 0.4 bytes */
    OK("400m", 0, 400000000, DSI, "400m"),
    /* quantity.go's Quantity comment: "1.5 will be serialized as 1500m",
       "1.5Gi will be serialized as 1536Mi"; CanonicalizeBytes: binary falls back to decimal */
    OK("1.5", 1, 500000000, DSI, "1500m"),
    OK("1.5Gi", 1610612736, 0, BSI, "1536Mi"),
    OK("1536Mi", 1610612736, 0, BSI, "1536Mi"),
    OK("0.5Ki", 512, 0, BSI, "512"),
    OK("0.1Ki", 102, 400000000, BSI, "102400m"),
    /* TestMilliNewSet {1000, DecimalSI, "1"}; TestQuantityString "1080m", "1234567M" */
    OK("2000m", 2, 0, DSI, "2"),
    OK("1500m", 1, 500000000, DSI, "1500m"),
    OK("1234567M", 1234567000000, 0, DSI, "1234567M"),
    /* AsCanonicalBytes: exponents stay multiples of three, so 1.2e3 has none */
    OK("1.2e3", 1200, 0, DEX, "1200"),
    OK("1.5e-3", 0, 1500000, DEX, "1500e-6"),
    OK("12E6", 12000000, 0, DEX, "12e6"),
    /* Go truncates the exponent to 32 bits; here it is exact (see quantity.h) */
    OK("1e-4294967296", 0, 1, DEX, "1e-9"),

    /* TestQuantityParse: the invalid list */
    BAD("", TL_EINVAL),
    BAD("1.1.M", TL_EINVAL),
    BAD("1+1.0M", TL_EINVAL),
    BAD("0.1mi", TL_EINVAL),
    BAD("0.1am", TL_EINVAL),
    BAD("aoeu", TL_EINVAL),
    BAD(".5i", TL_EINVAL),
    BAD("1i", TL_EINVAL),
    BAD("-3.01i", TL_EINVAL),
    BAD("-3.01e-", TL_EINVAL),
    BAD(" 1", TL_EINVAL),
    BAD("1 ", TL_EINVAL),
    /* quantity.go's grammar: one decimal point, one sign, suffixes case-sensitive */
    BAD("1.2.3", TL_EINVAL),
    BAD("1Kb", TL_EINVAL),
    BAD("1K", TL_EINVAL),
    BAD("--1", TL_EINVAL),
    BAD("1 Mi", TL_EINVAL),
    BAD("1Q", TL_EINVAL),
    BAD("1mi", TL_EINVAL),
    BAD("1e", TL_EINVAL),
    BAD("1Ei3", TL_EINVAL),
    BAD("1e3e3", TL_EINVAL),
    BAD("12x", TL_EINVAL),
    /* The grammar needs a digit; Go reads these as zero (see quantity.h) */
    BAD("Mi", TL_EINVAL),
    BAD("+", TL_EINVAL),
    BAD(".", TL_EINVAL),
    BAD("-.", TL_EINVAL),
    /* TestParseQuantity's 19- and 20-digit values: Go keeps them in an inf.Dec, an int64 can't */
    BAD("9223372036854775808", TL_ERANGE),
    BAD("9999999999999999999000m", TL_ERANGE),
    BAD("10E", TL_ERANGE),
    BAD("12E", TL_ERANGE),
    BAD("9999999999999999999999E", TL_ERANGE),
    BAD("1e4294967296", TL_ERANGE),
    /* suffix.go reads the exponent with ParseInt(s, 10, 64), which fails past int64 */
    BAD("1e99999999999999999999", TL_ERANGE),
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct parse_case *c = &cases[i];
        struct tl_quantity q = {.units = 77, .nanos = 7, .format = DEX};
        char err[256] = "";
        enum tl_err result = tl_quantity_parse(c->input, &q, err, sizeof(err));
        if (result != c->err)
            fail_msg("\"%s\": got %s, want %s (%s)", c->input, tl_strerror(result),
                     tl_strerror(c->err), err);
        if (c->err != TL_OK) {
            /* out is left alone, and the message quotes the input */
            assert_int_equal(q.units, 77);
            assert_int_equal(q.nanos, 7);
            assert_non_null(strstr(err, "\": "));
            continue;
        }
        if (q.units != c->units || q.nanos != c->nanos || q.format != c->format)
            fail_msg("\"%s\": got %lld+%dn format %d, want %lld+%dn format %d", c->input,
                     (long long)q.units, q.nanos, q.format, (long long)c->units, c->nanos,
                     c->format);
        char buf[TL_QUANTITY_STR_MAX];
        assert_int_equal(tl_quantity_format(&q, buf, sizeof(buf)), TL_OK);
        if (strcmp(buf, c->canonical) != 0)
            fail_msg("\"%s\": printed \"%s\", want \"%s\"", c->input, buf, c->canonical);
    }
}

/* Printing a parsed value and parsing it again gives the same value and the same text. */
static void test_round_trip_is_exact(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (cases[i].err != TL_OK)
            continue;
        struct tl_quantity q;
        struct tl_quantity again;
        char first[TL_QUANTITY_STR_MAX];
        char second[TL_QUANTITY_STR_MAX];
        assert_int_equal(tl_quantity_parse(cases[i].input, &q, NULL, 0), TL_OK);
        assert_int_equal(tl_quantity_format(&q, first, sizeof(first)), TL_OK);
        assert_int_equal(tl_quantity_parse(first, &again, NULL, 0), TL_OK);
        assert_int_equal(tl_quantity_cmp(&q, &again), 0);
        assert_int_equal(tl_quantity_format(&again, second, sizeof(second)), TL_OK);
        assert_string_equal(first, second);
    }
}

/* MilliValue() and Value() round away from zero; a CPU of 100u is scheduled as 1m. */
static void test_milli_and_value_round_up(void **state)
{
    (void)state;
    static const struct {
        const char *input;
        int64_t milli;
        int64_t value;
    } rows[] = {
        {"100u", 1, 1},    {"1n", 1, 1},
        {"250m", 250, 1},  {"1500m", 1500, 2},
        {"2", 2000, 2},    {"0", 0, 0},
        {"-1n", -1, -1},   {"-1.5", -1500, -2},
        {"400m", 400, 1},  {"1Gi", 1073741824000, 1073741824},
        {"1.0001m", 2, 1},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct tl_quantity q;
        int64_t milli = 0;
        int64_t value = 0;
        assert_int_equal(tl_quantity_parse(rows[i].input, &q, NULL, 0), TL_OK);
        assert_int_equal(tl_quantity_milli(&q, &milli), TL_OK);
        assert_int_equal(tl_quantity_value(&q, &value), TL_OK);
        if (milli != rows[i].milli || value != rows[i].value)
            fail_msg("\"%s\": milli %lld value %lld, want %lld and %lld", rows[i].input,
                     (long long)milli, (long long)value, (long long)rows[i].milli,
                     (long long)rows[i].value);
    }
}

/* Conversions that do not fit an int64 fail instead of wrapping, which Go's accessors do. */
static void test_conversions_report_overflow(void **state)
{
    (void)state;
    struct tl_quantity q;
    int64_t out = 42;
    assert_int_equal(tl_quantity_parse("9Ei", &q, NULL, 0), TL_OK);
    assert_int_equal(tl_quantity_milli(&q, &out), TL_ERANGE);
    assert_int_equal(out, 42);
    assert_int_equal(tl_quantity_value(&q, &out), TL_OK);
    assert_int_equal(out, INT64_MAX);

    assert_int_equal(tl_quantity_parse("9223372036854775807.1", &q, NULL, 0), TL_OK);
    assert_int_equal(tl_quantity_value(&q, &out), TL_ERANGE);
    assert_int_equal(tl_quantity_parse("-9223372036854775807.1", &q, NULL, 0), TL_OK);
    assert_int_equal(tl_quantity_value(&q, &out), TL_OK);
    assert_int_equal(out, INT64_MIN);

    /* The largest milli value an int64 holds. */
    assert_int_equal(tl_quantity_parse("9223372036854775807m", &q, NULL, 0), TL_OK);
    assert_int_equal(tl_quantity_milli(&q, &out), TL_OK);
    assert_int_equal(out, INT64_MAX);
}

static void test_error_messages_say_what_is_wrong(void **state)
{
    (void)state;
    struct tl_quantity q;
    char err[256];

    assert_int_equal(tl_quantity_parse("12x", &q, err, sizeof(err)), TL_EINVAL);
    assert_true(strncmp(err, "\"12x\": unknown suffix \"x\"", 25) == 0);

    assert_int_equal(tl_quantity_parse("1gi", &q, err, sizeof(err)), TL_EINVAL);
    assert_non_null(strstr(err, "did you mean \"Gi\"?"));

    assert_int_equal(tl_quantity_parse("1.2.3", &q, err, sizeof(err)), TL_EINVAL);
    assert_string_equal(err, "\"1.2.3\": more than one decimal point");

    assert_int_equal(tl_quantity_parse("Mi", &q, err, sizeof(err)), TL_EINVAL);
    assert_string_equal(err, "\"Mi\": no digits before \"Mi\"");

    assert_int_equal(tl_quantity_parse("1 Mi", &q, err, sizeof(err)), TL_EINVAL);
    assert_string_equal(err, "\"1 Mi\": whitespace is not allowed");

    assert_int_equal(tl_quantity_parse("10E", &q, err, sizeof(err)), TL_ERANGE);
    assert_non_null(strstr(err, "out of range"));

    /* Control bytes and quotes are escaped, so the message is safe in a log or a Condition. */
    assert_int_equal(tl_quantity_parse("1\x01\"", &q, err, sizeof(err)), TL_EINVAL);
    assert_true(strncmp(err, "\"1\\x01\\\"\": ", 11) == 0);
}

static void test_error_message_is_bounded(void **state)
{
    (void)state;
    struct tl_quantity q;
    char input[300];
    memset(input, '9', sizeof(input) - 2);
    input[sizeof(input) - 2] = 'x';
    input[sizeof(input) - 1] = '\0';
    char err[256];
    assert_int_equal(tl_quantity_parse(input, &q, err, sizeof(err)), TL_EINVAL);
    assert_non_null(strstr(err, "...\": unknown suffix \"x\""));

    /* A short buffer is filled as far as it goes and stays a string. */
    char tiny[6];
    memset(tiny, 'z', sizeof(tiny));
    assert_int_equal(tl_quantity_parse("12x", &q, tiny, sizeof(tiny)), TL_EINVAL);
    assert_string_equal(tiny, "\"12x\"");
    assert_int_equal(tl_quantity_parse("12x", &q, NULL, 0), TL_EINVAL);
    assert_int_equal(tl_quantity_parse(NULL, &q, NULL, 0), TL_EINVAL);
}

static void test_format_checks_its_arguments(void **state)
{
    (void)state;
    struct tl_quantity q;
    assert_int_equal(tl_quantity_parse("-9223372036854775807.1", &q, NULL, 0), TL_OK);
    char small[8] = "keep";
    assert_int_equal(tl_quantity_format(&q, small, sizeof(small)), TL_ETOOBIG);
    assert_string_equal(small, "keep");

    char buf[TL_QUANTITY_STR_MAX];
    struct tl_quantity mixed_signs = {.units = 1, .nanos = -1, .format = DSI};
    assert_int_equal(tl_quantity_format(&mixed_signs, buf, sizeof(buf)), TL_EINVAL);
    struct tl_quantity too_many_nanos = {.units = 0, .nanos = 1000000000, .format = DSI};
    assert_int_equal(tl_quantity_format(&too_many_nanos, buf, sizeof(buf)), TL_EINVAL);

    /* The longest output fits TL_QUANTITY_STR_MAX. */
    struct tl_quantity longest = {.units = INT64_MIN, .nanos = -999999999, .format = DEX};
    assert_int_equal(tl_quantity_format(&longest, buf, sizeof(buf)), TL_OK);
    assert_string_equal(buf, "-9223372036854775808999999999e-9");
}

/* TestQuantityCmp, plus values that differ only in nanos or sign. */
static void test_cmp_orders_values(void **state)
{
    (void)state;
    static const struct {
        const char *a;
        const char *b;
        int want;
    } rows[] = {
        {"0", "0", 0},      {"100m", "50m", 1},      {"50m", "100m", -1}, {"10000T", "100Gi", 1},
        {"1Gi", "1G", 1},   {"100m", "0.1", 0},      {"-1", "-500m", -1}, {"-1n", "1n", -1},
        {"1024", "1Ki", 0}, {"1.000000001", "1", 1},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct tl_quantity a;
        struct tl_quantity b;
        assert_int_equal(tl_quantity_parse(rows[i].a, &a, NULL, 0), TL_OK);
        assert_int_equal(tl_quantity_parse(rows[i].b, &b, NULL, 0), TL_OK);
        if (tl_quantity_cmp(&a, &b) != rows[i].want || tl_quantity_cmp(&b, &a) != -rows[i].want)
            fail_msg("cmp(%s, %s) != %d", rows[i].a, rows[i].b, rows[i].want);
    }
}

/* TestMilliNewSet (NewMilliQuantity with DecimalSI) and the recommendation examples. */
static void test_from_milli_cpu_prints_like_the_api_server(void **state)
{
    (void)state;
    static const struct {
        int64_t milli;
        const char *want;
    } rows[] = {
        {1, "1m"},       {1000, "1"}, {1234000, "1234"}, {250, "250m"},   {2000, "2"},
        {1500, "1500m"}, {0, "0"},    {100000, "100"},   {1000000, "1k"}, {-250, "-250m"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct tl_quantity q = tl_quantity_from_milli_cpu(rows[i].milli);
        char buf[TL_QUANTITY_STR_MAX];
        int64_t back = 0;
        assert_int_equal(tl_quantity_format(&q, buf, sizeof(buf)), TL_OK);
        assert_string_equal(buf, rows[i].want);
        assert_int_equal(tl_quantity_milli(&q, &back), TL_OK);
        assert_int_equal(back, rows[i].milli);
    }
}

/*
 * TestNewSet (NewQuantity with BinarySI) and the recommendation examples. Below 1024 a binary
 * quantity prints as DecimalSI (CanonicalizeBytes), so 1000 bytes is "1k" but 2000 is "2000".
 */
static void test_from_bytes_prints_binary_when_exact(void **state)
{
    (void)state;
    static const struct {
        int64_t bytes;
        const char *want;
    } rows[] = {
        {1024, "1Ki"},          {1048576, "1Mi"},
        {671088640, "640Mi"},   {1073741824, "1Gi"},
        {1610612736, "1536Mi"}, {1000, "1k"},
        {512, "512"},           {1536, "1536"},
        {2000, "2000"},         {0, "0"},
        {INT64_MIN, "-8Ei"},    {INT64_MAX, "9223372036854775807"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct tl_quantity q = tl_quantity_from_bytes(rows[i].bytes);
        char buf[TL_QUANTITY_STR_MAX];
        assert_int_equal(tl_quantity_format(&q, buf, sizeof(buf)), TL_OK);
        assert_string_equal(buf, rows[i].want);
    }
}

/* Every whole number of MiB and every millicore value survives print and parse. */
static void test_constructors_round_trip(void **state)
{
    (void)state;
    for (int64_t mib = 0; mib <= 70000; mib += 7) {
        struct tl_quantity q = tl_quantity_from_bytes(mib * 1048576 + (mib % 3));
        struct tl_quantity back;
        char buf[TL_QUANTITY_STR_MAX];
        assert_int_equal(tl_quantity_format(&q, buf, sizeof(buf)), TL_OK);
        assert_int_equal(tl_quantity_parse(buf, &back, NULL, 0), TL_OK);
        assert_int_equal(tl_quantity_cmp(&q, &back), 0);
    }
    for (int64_t milli = -3000; milli <= 200000; milli += 13) {
        struct tl_quantity q = tl_quantity_from_milli_cpu(milli);
        struct tl_quantity back;
        char buf[TL_QUANTITY_STR_MAX];
        int64_t again = 0;
        assert_int_equal(tl_quantity_format(&q, buf, sizeof(buf)), TL_OK);
        assert_int_equal(tl_quantity_parse(buf, &back, NULL, 0), TL_OK);
        assert_int_equal(tl_quantity_milli(&back, &again), TL_OK);
        assert_int_equal(again, milli);
    }
}

static void test_round_bytes_up(void **state)
{
    (void)state;
    const int64_t mib = 1048576;
    int64_t out = 0;
    assert_int_equal(tl_quantity_round_bytes_up(671093123, mib, &out), TL_OK);
    assert_int_equal(out, 641 * mib);
    char buf[TL_QUANTITY_STR_MAX];
    struct tl_quantity q = tl_quantity_from_bytes(out);
    assert_int_equal(tl_quantity_format(&q, buf, sizeof(buf)), TL_OK);
    assert_string_equal(buf, "641Mi");

    assert_int_equal(tl_quantity_round_bytes_up(640 * mib, mib, &out), TL_OK);
    assert_int_equal(out, 640 * mib);
    assert_int_equal(tl_quantity_round_bytes_up(1, mib, &out), TL_OK);
    assert_int_equal(out, mib);
    assert_int_equal(tl_quantity_round_bytes_up(0, mib, &out), TL_OK);
    assert_int_equal(out, 0);
    assert_int_equal(tl_quantity_round_bytes_up(-1500, 1024, &out), TL_OK);
    assert_int_equal(out, -1024);

    out = 7;
    assert_int_equal(tl_quantity_round_bytes_up(INT64_MAX, mib, &out), TL_ERANGE);
    assert_int_equal(tl_quantity_round_bytes_up(5, 0, &out), TL_EINVAL);
    assert_int_equal(tl_quantity_round_bytes_up(5, -1, &out), TL_EINVAL);
    assert_int_equal(out, 7);
}

/* A very long but valid input is read exactly, digit by digit, without overflow. */
static void test_long_inputs(void **state)
{
    (void)state;
    static char text[5000];
    struct tl_quantity q;
    char buf[TL_QUANTITY_STR_MAX];

    /* "0.000...0001" with thousands of zeros is a tiny positive value: 1n. */
    memset(text, '0', sizeof(text) - 1);
    text[1] = '.';
    text[sizeof(text) - 2] = '1';
    text[sizeof(text) - 1] = '\0';
    assert_int_equal(tl_quantity_parse(text, &q, NULL, 0), TL_OK);
    assert_int_equal(tl_quantity_format(&q, buf, sizeof(buf)), TL_OK);
    assert_string_equal(buf, "1n");

    /* Leading zeros do not count towards the range: "000...0001Ki" is 1Ki. */
    memset(text, '0', sizeof(text) - 1);
    (void)snprintf(text + sizeof(text) - 4, 4, "1Ki");
    assert_int_equal(tl_quantity_parse(text, &q, NULL, 0), TL_OK);
    assert_int_equal(q.units, 1024);

    /* Thousands of fraction digits under a binary suffix still round to the next nano. */
    memset(text, '9', sizeof(text) - 1);
    text[0] = '0';
    text[1] = '.';
    (void)snprintf(text + sizeof(text) - 3, 3, "Ei");
    assert_int_equal(tl_quantity_parse(text, &q, NULL, 0), TL_OK);
    assert_int_equal(tl_quantity_format(&q, buf, sizeof(buf)), TL_OK);
    assert_string_equal(buf, "1Ei"); /* just under 2^60, rounded up to it */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_round_trip_is_exact),
        cmocka_unit_test(test_milli_and_value_round_up),
        cmocka_unit_test(test_conversions_report_overflow),
        cmocka_unit_test(test_error_messages_say_what_is_wrong),
        cmocka_unit_test(test_error_message_is_bounded),
        cmocka_unit_test(test_format_checks_its_arguments),
        cmocka_unit_test(test_cmp_orders_values),
        cmocka_unit_test(test_from_milli_cpu_prints_like_the_api_server),
        cmocka_unit_test(test_from_bytes_prints_binary_when_exact),
        cmocka_unit_test(test_constructors_round_trip),
        cmocka_unit_test(test_round_bytes_up),
        cmocka_unit_test(test_long_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
