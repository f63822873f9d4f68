#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define CAP ((size_t)1 << 20)

static cJSON *parse(const char *text)
{
    char err[256] = "";
    cJSON *doc = NULL;
    if (tl_json_parse(text, strlen(text), CAP, &doc, err, sizeof(err)) != TL_OK)
        fail_msg("cannot parse %s: %s", text, err);
    return doc;
}

/* Parses text and returns the error; err gets the message. Asserts *out was left alone. */
static enum tl_err parse_error(const char *text, size_t len, char *err, size_t errlen)
{
    cJSON *sentinel = (cJSON *)&sentinel;
    cJSON *doc = sentinel;
    enum tl_err result = tl_json_parse(text, len, CAP, &doc, err, errlen);
    if (result == TL_OK)
        cJSON_Delete(doc);
    else
        assert_ptr_equal(doc, sentinel);
    return result;
}

static void assert_prints_as(const cJSON *item, const char *expected)
{
    char *text = tl_json_print(item);
    assert_non_null(text);
    assert_string_equal(text, expected);
    free(text);
}

/* Fault injection: cJSON's allocator fails after a given number of allocations. */
static long allocs_left = -1;

static void *limited_malloc(size_t n)
{
    if (allocs_left == 0)
        return NULL;
    if (allocs_left > 0)
        allocs_left--;
    return malloc(n);
}

static void fail_after(long n)
{
    cJSON_Hooks hooks = {limited_malloc, free};
    allocs_left = n;
    cJSON_InitHooks(&hooks);
}

static void allocs_unlimited(void)
{
    allocs_left = -1;
    cJSON_InitHooks(NULL);
}

static const char *const pod_json =
    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\","
    "\"metadata\":{\"name\":\"web-0\",\"namespace\":\"shop\",\"generation\":3,"
    "\"annotations\":{\"tailor.dev/ignore\":\"true\",\"a.b\":\"dotted\"}},"
    "\"spec\":{\"containers\":[{\"name\":\"web\",\"image\":\"nginx\"},{\"name\":\"sidecar\"}],"
    "\"priority\":0.5,\"hostNetwork\":false,\"nodeName\":null}}";

static int pod_setup(void **state)
{
    *state = parse(pod_json);
    return *state == NULL ? -1 : 0;
}

static int pod_teardown(void **state)
{
    cJSON_Delete(*state);
    return 0;
}

/* ---- parse ---- */

static void test_parse_builds_the_tree(void **state)
{
    (void)state;
    cJSON *doc = parse(" {\"a\": [1, -2.5e1, true, null, \"x\\u00e9\\ud83d\\ude00\"]} \n");
    assert_prints_as(doc, "{\"a\":[1,-25,true,null,\"x\xc3\xa9\xf0\x9f\x98\x80\"]}");
    cJSON_Delete(doc);
}

static void test_parse_error_names_byte_line_and_column(void **state)
{
    (void)state;
    char err[128];
    const char *text = "{\"a\":1,\n \"b\" 2}";
    assert_int_equal(parse_error(text, strlen(text), err, sizeof(err)), TL_EINVAL);
    assert_string_equal(
        err, "invalid JSON at byte 13 (line 2, column 6): expected ':' after an object key");

    text = "[1, 2";
    assert_int_equal(parse_error(text, strlen(text), err, sizeof(err)), TL_EINVAL);
    assert_string_equal(err, "invalid JSON at byte 5 (line 1, column 6): expected ',' or ']'");
}

static void test_parse_rejects_what_cjson_alone_accepts(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *why;
    } cases[] = {
        {"01", "leading zero in a number"},
        {"[-01]", "leading zero in a number"},
        {"1.", "expected a digit after the decimal point"},
        {"1e", "expected a digit in the exponent"},
        {"[1,]", "expected a JSON value"},
        {"{\"a\":1,}", "expected a string key"},
        {"{\"a\":1} x", "unexpected data after the document"},
        {"[1 2]", "expected ',' or ']'"},
        {"\"a\tb\"", "control character in a string (must be escaped)"},
        {"\"a\\u0000b\"", "\\u0000 is not supported"},
        {"\"\\udc00\"", "lone UTF-16 low surrogate"},
        {"\"\\ud800x\"", "UTF-16 high surrogate without a low surrogate"},
        {"\"\\ud800\\u0041\"", "UTF-16 high surrogate without a low surrogate"},
        {"\"\\x\"", "invalid escape in a string"},
        {"\"\\u12g4\"", "\\u must be followed by four hex digits"},
        {"\"abc", "unterminated string"},
        {"nul", "expected a JSON value"},
        {"+1", "expected a JSON value"},
        {"[1e999]", "number out of range for a double"},
        {"1234567890123456789012345678901234567890123456789012345678901234",
         "number longer than 63 characters"},
        {"\f1", "expected a JSON value"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[160];
        enum tl_err result = parse_error(cases[i].text, strlen(cases[i].text), err, sizeof(err));
        if (result != TL_EINVAL || strstr(err, cases[i].why) == NULL)
            fail_msg("%s: got %s, \"%s\"; want \"%s\"", cases[i].text, tl_strerror(result), err,
                     cases[i].why);
    }
}

static void test_parse_rejects_nul_bytes(void **state)
{
    (void)state;
    char err[128];
    assert_int_equal(parse_error("[1]\0", 4, err, sizeof(err)), TL_EINVAL);
    assert_string_equal(err, "invalid JSON at byte 3 (line 1, column 4): unexpected data after "
                             "the document");
    assert_int_equal(parse_error("[\0]", 3, err, sizeof(err)), TL_EINVAL);
    assert_non_null(strstr(err, "NUL byte"));
    assert_int_equal(parse_error("\"a\0b\"", 5, err, sizeof(err)), TL_EINVAL);
}

static void test_parse_rejects_duplicate_keys(void **state)
{
    (void)state;
    char err[128];
    const char *text = "{\"a\":{\"x\":1,\"y\":2,\"x\":3}}";
    assert_int_equal(parse_error(text, strlen(text), err, sizeof(err)), TL_EINVAL);
    assert_string_equal(err, "invalid JSON: duplicate key \"x\" in an object");

    /* Wide objects take the sorting path. */
    char wide[1024] = "{";
    for (int i = 0; i < 40; i++) {
        char member[32];
        snprintf(member, sizeof(member), "%s\"k%02d\":%d", i ? "," : "", i, i);
        strncat(wide, member, sizeof(wide) - strlen(wide) - 1);
    }
    size_t unique_len = strlen(wide);
    strncat(wide, "}", sizeof(wide) - strlen(wide) - 1);
    cJSON *doc = parse(wide);
    assert_int_equal(tl_json_size(doc), 40);
    cJSON_Delete(doc);
    wide[unique_len] = '\0';
    strncat(wide, ",\"k17\":0}", sizeof(wide) - strlen(wide) - 1);
    assert_int_equal(parse_error(wide, strlen(wide), err, sizeof(err)), TL_EINVAL);
    assert_string_equal(err, "invalid JSON: duplicate key \"k17\" in an object");
}

static void test_parse_enforces_the_cap(void **state)
{
    (void)state;
    char err[128];
    cJSON *doc = NULL;
    assert_int_equal(tl_json_parse("[1,2,3]", 7, 6, &doc, err, sizeof(err)), TL_ETOOBIG);
    assert_null(doc);
    assert_string_equal(err, "JSON document is 7 bytes, over the 6-byte limit");
    assert_int_equal(tl_json_parse("[1,2,3]", 7, 7, &doc, err, sizeof(err)), TL_OK);
    assert_int_equal(tl_json_size(doc), 3);
    cJSON_Delete(doc);
}

static void test_parse_reads_exactly_len_bytes(void **state)
{
    (void)state;
    /* An exact-size heap copy with no terminator: ASan catches a read past the end. */
    static const char text[4] = {'[', '1', '0', ']'};
    char *buf = malloc(sizeof(text));
    assert_non_null(buf);
    memcpy(buf, text, sizeof(text));
    cJSON *doc = NULL;
    char err[128];
    assert_int_equal(tl_json_parse(buf, 4, CAP, &doc, err, sizeof(err)), TL_OK);
    assert_prints_as(doc, "[10]");
    cJSON_Delete(doc);
    assert_int_equal(parse_error(buf, 3, err, sizeof(err)), TL_EINVAL);
    assert_non_null(strstr(err, "expected ',' or ']'"));
    free(buf);
}

static void test_parse_empty_and_bom(void **state)
{
    (void)state;
    char err[128];
    assert_int_equal(parse_error("", 0, err, sizeof(err)), TL_EINVAL);
    assert_non_null(strstr(err, "empty document"));
    assert_int_equal(parse_error(" \n\t", 3, err, sizeof(err)), TL_EINVAL);
    assert_non_null(strstr(err, "empty document"));
    assert_int_equal(parse_error(NULL, 0, err, sizeof(err)), TL_EINVAL);

    cJSON *doc = parse("\xEF\xBB\xBF{\"a\":1}");
    assert_prints_as(doc, "{\"a\":1}");
    cJSON_Delete(doc);
    doc = parse("\xEF\xBB\xBF"
                "1");
    assert_prints_as(doc, "1");
    cJSON_Delete(doc);
    assert_int_equal(parse_error("\xEF\xBB\xBF\xEF\xBB\xBF"
                                 "1",
                                 7, err, sizeof(err)),
                     TL_EINVAL);
}

static char *nested_arrays(size_t depth)
{
    char *text = malloc(2 * depth + 1);
    assert_non_null(text);
    memset(text, '[', depth);
    memset(text + depth, ']', depth);
    text[2 * depth] = '\0';
    return text;
}

static void test_parse_limits_nesting(void **state)
{
    (void)state;
    char err[128];
    char *ok = nested_arrays(TL_JSON_MAX_DEPTH);
    cJSON *doc = parse(ok);
    assert_true(cJSON_IsArray(doc));
    cJSON_Delete(doc);
    free(ok);
    char *deep = nested_arrays(TL_JSON_MAX_DEPTH + 1);
    assert_int_equal(parse_error(deep, strlen(deep), err, sizeof(err)), TL_EINVAL);
    assert_non_null(strstr(err, "byte 1000 "));
    assert_non_null(strstr(err, "nested too deeply"));
    free(deep);
}

static void test_parse_reports_out_of_memory_apart_from_syntax(void **state)
{
    (void)state;
    const char *text = "{\"a\":[1,2,{\"b\":\"c\"}],\"d\":\"e\"}";
    long k;
    for (k = 0;; k++) {
        char err[128] = "";
        cJSON *doc = NULL;
        fail_after(k);
        enum tl_err result = tl_json_parse(text, strlen(text), CAP, &doc, err, sizeof(err));
        allocs_unlimited();
        if (result == TL_OK) {
            assert_prints_as(doc, text);
            cJSON_Delete(doc);
            break;
        }
        assert_int_equal(result, TL_ENOMEM);
        assert_null(doc);
        assert_string_equal(err, "out of memory parsing JSON");
    }
    assert_true(k > 5);
}

/* ---- print ---- */

static void test_print_is_compact_and_keeps_order(void **state)
{
    (void)state;
    cJSON *doc = parse("{ \"z\" : [ 1 , 2 ],\n \"a\" : { } , \"s\" : \"q\\\"\\n\" }");
    assert_prints_as(doc, "{\"z\":[1,2],\"a\":{},\"s\":\"q\\\"\\n\"}");
    cJSON_Delete(doc);
    assert_null(tl_json_print(NULL));
}

static void test_print_numbers_read_back_exactly(void **state)
{
    (void)state;
    static const struct {
        double value;
        const char *text;
    } cases[] = {
        {9007199254740991.0, "9007199254740991"}, /* cJSON: 9.00719925474099e+15 */
        {0.1 + 0.2, "0.30000000000000004"},       /* cJSON: 0.3 */
        {100, "100"},
        {-25, "-25"},
        {0.5, "0.5"},
        {0.1, "0.1"},
        {1e21, "1e+21"},
        {-0.0, "-0"},
        {5e-324, "4.94065645841247e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *n = cJSON_CreateNumber(cases[i].value);
        char *text = tl_json_print(n);
        assert_non_null(text);
        if (strcmp(text, cases[i].text) != 0)
            fail_msg("%.17g printed as %s, want %s", cases[i].value, text, cases[i].text);
        cJSON *back = parse(text);
        assert_true(back->valuedouble == cases[i].value);
        cJSON_Delete(back);
        free(text);
        cJSON_Delete(n);
    }
}

static void test_print_escapes_strings_and_keys(void **state)
{
    (void)state;
    cJSON *obj = cJSON_CreateObject();
    assert_int_equal(
        tl_json_member_set(obj, "k\"\n", cJSON_CreateString("a\"b\\c\n\t\b\f\r\x01\x1f/\xc3\xa9")),
        TL_OK);
    assert_prints_as(obj, "{\"k\\\"\\n\":\"a\\\"b\\\\c\\n\\t\\b\\f\\r\\u0001\\u001f/\xc3\xa9\"}");
    char *text = tl_json_print(obj);
    cJSON *back = parse(text);
    assert_true(tl_json_equal(back, obj));
    cJSON_Delete(back);
    free(text);
    cJSON_Delete(obj);
}

static void test_print_refuses_what_json_cannot_spell(void **state)
{
    (void)state;
    cJSON *arr = parse("[1,{\"a\":2}]");
    assert_int_equal(tl_json_member_set(tl_json_array_at(arr, 1), "b", cJSON_CreateNumber(NAN)),
                     TL_OK);
    assert_null(tl_json_print(arr)); /* cJSON would print null and lose it silently */
    cJSON_Delete(arr);
    cJSON *inf = cJSON_CreateNumber(-INFINITY);
    assert_null(tl_json_print(inf));
    cJSON_Delete(inf);
}

static void test_print_matches_cjson_layout(void **state)
{
    cJSON *pod = *state;
    char *ours = tl_json_print(pod);
    char *theirs = cJSON_PrintUnformatted(pod);
    assert_string_equal(ours, theirs);
    free(ours);
    cJSON_free(theirs);
}

/* ---- lookups ---- */

static void test_get_takes_keys_literally(void **state)
{
    cJSON *pod = *state;
    const char *value = NULL;
    assert_int_equal(tl_json_string(tl_json_get(pod, "metadata", "annotations", NULL),
                                    "tailor.dev/ignore", NULL, &value),
                     TL_OK);
    assert_string_equal(value, "true");
    cJSON *dotted = tl_json_get(pod, "metadata", "annotations", "a.b", NULL);
    assert_string_equal(cJSON_GetStringValue(dotted), "dotted");
    /* A dotted path is not split: "a.b" is one key, "a" alone does not exist. */
    assert_null(tl_json_get(pod, "metadata", "annotations", "a", NULL));
    assert_null(tl_json_get(pod, "metadata.annotations", NULL));
}

static void test_get_indexes_arrays(void **state)
{
    cJSON *pod = *state;
    assert_string_equal(
        cJSON_GetStringValue(tl_json_get(pod, "spec", "containers", "0", "name", NULL)), "web");
    assert_string_equal(
        cJSON_GetStringValue(tl_json_get(pod, "spec", "containers", "1", "name", NULL)), "sidecar");
    assert_null(tl_json_get(pod, "spec", "containers", "2", NULL));
    assert_null(tl_json_get(pod, "spec", "containers", "01", NULL));
    assert_null(tl_json_get(pod, "spec", "containers", "-1", NULL));
    assert_null(tl_json_get(pod, "spec", "containers", "name", NULL));
    assert_null(tl_json_get(pod, "kind", "x", NULL)); /* a step into a string */
    assert_null(tl_json_get(NULL, "kind", NULL));
    assert_ptr_equal(tl_json_get(pod, NULL), pod);
    assert_null(tl_json_get(pod, "Kind", NULL)); /* case-sensitive */
}

static void test_index_parse_follows_rfc6901(void **state)
{
    (void)state;
    size_t v = 99;
    assert_int_equal(tl_json_index_parse("0", 1, &v), TL_OK);
    assert_int_equal(v, 0);
    assert_int_equal(tl_json_index_parse("120", 3, &v), TL_OK);
    assert_int_equal(v, 120);
    assert_int_equal(tl_json_index_parse("12x", 2, &v), TL_OK); /* only len bytes count */
    assert_int_equal(v, 12);
    v = 99;
    assert_int_equal(tl_json_index_parse("01", 2, &v), TL_EINVAL);
    assert_int_equal(tl_json_index_parse("", 0, &v), TL_EINVAL);
    assert_int_equal(tl_json_index_parse("-1", 2, &v), TL_EINVAL);
    assert_int_equal(tl_json_index_parse("+1", 2, &v), TL_EINVAL);
    assert_int_equal(tl_json_index_parse("1e0", 3, &v), TL_EINVAL);
    assert_int_equal(tl_json_index_parse("99999999999999999999999", 23, &v), TL_ERANGE);
    assert_int_equal(v, 99);
}

static void test_getters_give_the_fallback_when_absent_or_null(void **state)
{
    cJSON *pod = *state;
    cJSON *spec = tl_json_get(pod, "spec", NULL);
    const char *s = NULL;
    int64_t i = 0;
    double d = 0;
    bool b = true;
    assert_int_equal(tl_json_string(spec, "nodeName", "none", &s), TL_OK);
    assert_string_equal(s, "none");
    assert_int_equal(tl_json_string(spec, "missing", NULL, &s), TL_OK);
    assert_null(s);
    assert_int_equal(tl_json_int64(spec, "replicas", 1, &i), TL_OK);
    assert_int_equal(i, 1);
    assert_int_equal(tl_json_double(spec, "nodeName", 2.5, &d), TL_OK);
    assert_true(d == 2.5);
    assert_int_equal(tl_json_bool(tl_json_get(pod, "status", NULL), "ready", false, &b), TL_OK);
    assert_false(b); /* a NULL object (missing parent) reads as absent */

    assert_int_equal(tl_json_string(tl_json_get(pod, "metadata", NULL), "name", "", &s), TL_OK);
    assert_string_equal(s, "web-0");
    assert_int_equal(tl_json_int64(tl_json_get(pod, "metadata", NULL), "generation", 0, &i), TL_OK);
    assert_int_equal(i, 3);
    assert_int_equal(tl_json_double(spec, "priority", 0, &d), TL_OK);
    assert_true(d == 0.5);
    assert_int_equal(tl_json_bool(spec, "hostNetwork", true, &b), TL_OK);
    assert_false(b);
}

static void test_getters_refuse_the_wrong_type(void **state)
{
    cJSON *pod = *state;
    cJSON *meta = tl_json_get(pod, "metadata", NULL);
    const char *s = "untouched";
    int64_t i = 42;
    double d = 4.2;
    bool b = true;
    assert_int_equal(tl_json_string(meta, "generation", "x", &s), TL_EINVAL);
    assert_int_equal(tl_json_int64(meta, "name", 0, &i), TL_EINVAL);
    assert_int_equal(tl_json_double(meta, "annotations", 0, &d), TL_EINVAL);
    assert_int_equal(tl_json_bool(meta, "name", false, &b), TL_EINVAL);
    /* obj that is not an object */
    assert_int_equal(tl_json_string(tl_json_get(pod, "kind", NULL), "x", "y", &s), TL_EINVAL);
    assert_string_equal(s, "untouched");
    assert_int_equal(i, 42);
    assert_true(d == 4.2);
    assert_true(b);
}

static void test_getters_with_null_key_read_the_value_itself(void **state)
{
    (void)state;
    cJSON *doc = parse("[7, \"s\", true, null]");
    int64_t i = 0;
    const char *s = NULL;
    bool b = false;
    assert_int_equal(tl_json_int64(tl_json_array_at(doc, 0), NULL, 0, &i), TL_OK);
    assert_int_equal(i, 7);
    assert_int_equal(tl_json_string(tl_json_array_at(doc, 1), NULL, NULL, &s), TL_OK);
    assert_string_equal(s, "s");
    assert_int_equal(tl_json_bool(tl_json_array_at(doc, 2), NULL, false, &b), TL_OK);
    assert_true(b);
    assert_int_equal(tl_json_int64(tl_json_array_at(doc, 3), NULL, -1, &i), TL_OK);
    assert_int_equal(i, -1);
    assert_null(tl_json_array_at(doc, 4));
    cJSON_Delete(doc);
}

static void test_int64_is_never_silently_wrong(void **state)
{
    (void)state;
    cJSON *doc = parse("{\"max\":9007199254740991,\"min\":-9007199254740991,"
                       "\"over\":9007199254740992,\"rounded\":9007199254740993,"
                       "\"half\":1.5,\"tiny\":1e-300,\"huge\":1e300,\"exp\":1e2,\"negzero\":-0,"
                       "\"under\":-9007199254740992}");
    int64_t v = 0;
    assert_int_equal(tl_json_int64(doc, "max", 0, &v), TL_OK);
    assert_true(v == INT64_C(9007199254740991));
    assert_int_equal(tl_json_int64(doc, "min", 0, &v), TL_OK);
    assert_true(v == -INT64_C(9007199254740991));
    assert_int_equal(tl_json_int64(doc, "exp", 0, &v), TL_OK);
    assert_int_equal(v, 100);
    assert_int_equal(tl_json_int64(doc, "negzero", 7, &v), TL_OK);
    assert_int_equal(v, 0);
    v = 5;
    /* 2^53 + 1 arrives as 2^53 after the parser's rounding: both are refused. */
    assert_int_equal(tl_json_int64(doc, "over", 0, &v), TL_ERANGE);
    assert_int_equal(tl_json_int64(doc, "rounded", 0, &v), TL_ERANGE);
    assert_int_equal(tl_json_int64(doc, "under", 0, &v), TL_ERANGE);
    assert_int_equal(tl_json_int64(doc, "half", 0, &v), TL_ERANGE);
    assert_int_equal(tl_json_int64(doc, "tiny", 0, &v), TL_ERANGE);
    assert_int_equal(tl_json_int64(doc, "huge", 0, &v), TL_ERANGE);
    assert_int_equal(v, 5);
    cJSON_Delete(doc);
}

static void test_double_refuses_non_finite(void **state)
{
    (void)state;
    /* Only a hand-built tree can hold one: the parser refuses 1e999. */
    cJSON *obj = cJSON_CreateObject();
    assert_int_equal(tl_json_member_set(obj, "inf", cJSON_CreateNumber(INFINITY)), TL_OK);
    double d = 1;
    assert_int_equal(tl_json_double(obj, "inf", 0, &d), TL_ERANGE);
    assert_true(d == 1);
    cJSON_Delete(obj);
}

/* ---- equality ---- */

static bool equal_text(const char *a, const char *b)
{
    cJSON *x = parse(a);
    cJSON *y = parse(b);
    bool eq = tl_json_equal(x, y);
    assert_true(eq == tl_json_equal(y, x));
    cJSON_Delete(x);
    cJSON_Delete(y);
    return eq;
}

static void test_equal_ignores_key_order_only(void **state)
{
    (void)state;
    assert_true(equal_text("{\"a\":1,\"b\":{\"c\":[1,2],\"d\":null}}",
                           "{\"b\":{\"d\":null,\"c\":[1,2]},\"a\":1}"));
    assert_false(equal_text("[1,2]", "[2,1]"));
    assert_true(equal_text("1", "1.0"));
    assert_true(equal_text("100", "1e2"));
    assert_false(equal_text("1", "\"1\""));
    assert_false(equal_text("{\"a\":1}", "{\"a\":1,\"b\":2}"));
    assert_false(equal_text("{\"a\":1,\"b\":2}", "{\"a\":1,\"c\":2}"));
    assert_false(equal_text("{\"a\":null}", "{}"));
    assert_false(equal_text("true", "false"));
    assert_false(equal_text("[]", "{}"));
    assert_false(equal_text("\"A\"", "\"a\""));
    assert_true(equal_text("[]", "[]"));
    assert_false(equal_text("[1]", "[1,1]"));
    /* Exact: cJSON_Compare's relative epsilon would call these equal. */
    assert_false(equal_text("0.30000000000000004", "0.3"));
    assert_true(tl_json_equal(NULL, NULL));
    cJSON *one = parse("1");
    assert_false(tl_json_equal(one, NULL));
    /* The check the brief asked for: cJSON_Compare too ignores member order. */
    cJSON *x = parse("{\"a\":1,\"b\":2}");
    cJSON *y = parse("{\"b\":2,\"a\":1}");
    assert_true(cJSON_Compare(x, y, 1));
    cJSON_Delete(x);
    cJSON_Delete(y);
    cJSON_Delete(one);
}

/* {"a":{"a":...{"b":leaf}...}}, depth objects deep. */
static char *nested_objects(size_t depth, const char *leaf)
{
    size_t len = depth * 6 + strlen(leaf) + depth + 1;
    char *text = malloc(len);
    assert_non_null(text);
    size_t n = 0;
    for (size_t i = 0; i + 1 < depth; i++) {
        memcpy(text + n, "{\"a\":", 5);
        n += 5;
    }
    memcpy(text + n, "{\"b\":", 5);
    n += 5;
    memcpy(text + n, leaf, strlen(leaf));
    n += strlen(leaf);
    memset(text + n, '}', depth);
    n += depth;
    text[n] = '\0';
    return text;
}

static void test_equal_is_linear_on_deep_documents(void **state)
{
    (void)state;
    /* cJSON_Compare would visit 2^1000 pairs here; this must finish at once. */
    char *a = nested_objects(TL_JSON_MAX_DEPTH, "1");
    char *b = nested_objects(TL_JSON_MAX_DEPTH, "2");
    assert_true(equal_text(a, a));
    assert_false(equal_text(a, b));
    free(a);
    free(b);
}

/* ---- tree edits ---- */

static void test_member_set_replaces_in_place_or_appends(void **state)
{
    (void)state;
    cJSON *obj = parse("{\"a\":1,\"b\":2,\"c\":3}");
    assert_int_equal(tl_json_member_set(obj, "b", cJSON_CreateString("x")), TL_OK);
    assert_prints_as(obj, "{\"a\":1,\"b\":\"x\",\"c\":3}");
    assert_int_equal(tl_json_member_set(obj, "a", cJSON_CreateNull()), TL_OK);
    assert_int_equal(tl_json_member_set(obj, "c", cJSON_CreateTrue()), TL_OK);
    assert_prints_as(obj, "{\"a\":null,\"b\":\"x\",\"c\":true}");
    assert_int_equal(tl_json_member_set(obj, "tailor.dev/x", cJSON_CreateArray()), TL_OK);
    assert_prints_as(obj, "{\"a\":null,\"b\":\"x\",\"c\":true,\"tailor.dev/x\":[]}");
    /* The key may be the replaced member's own string. */
    assert_int_equal(tl_json_member_set(obj, obj->child->string, cJSON_CreateNumber(9)), TL_OK);
    assert_prints_as(obj, "{\"a\":9,\"b\":\"x\",\"c\":true,\"tailor.dev/x\":[]}");
    /* A failed create reads as ENOMEM; a rejected value is freed (ASan checks). */
    assert_int_equal(tl_json_member_set(obj, "d", NULL), TL_ENOMEM);
    assert_int_equal(tl_json_member_set(obj, NULL, cJSON_CreateNull()), TL_EINVAL);
    cJSON *arr = cJSON_CreateArray();
    assert_int_equal(tl_json_member_set(arr, "k", cJSON_CreateNull()), TL_EINVAL);
    assert_int_equal(tl_json_size(arr), 0);
    cJSON_Delete(arr);
    assert_int_equal(tl_json_size(obj), 4);
    cJSON_Delete(obj);
}

static void test_member_set_owns_value_when_allocation_fails(void **state)
{
    (void)state;
    cJSON *obj = parse("{\"a\":1}");
    cJSON *value = cJSON_CreateString("v");
    fail_after(0); /* the key copy fails */
    assert_int_equal(tl_json_member_set(obj, "b", value), TL_ENOMEM);
    allocs_unlimited();
    assert_prints_as(obj, "{\"a\":1}");
    cJSON_Delete(obj); /* value was freed by member_set: ASan reports a leak otherwise */
}

static void test_array_insert_positions(void **state)
{
    (void)state;
    cJSON *arr = parse("[1,3]");
    assert_int_equal(tl_json_array_insert(arr, 0, cJSON_CreateNumber(0)), TL_OK);
    assert_int_equal(tl_json_array_insert(arr, 2, cJSON_CreateNumber(2)), TL_OK);
    assert_prints_as(arr, "[0,1,2,3]");
    /* cJSON finds the tail through the head's prev link: inserts must keep it. */
    assert_ptr_equal(arr->child->prev, tl_json_array_at(arr, 3));
    assert_int_equal(tl_json_array_insert(arr, 4, cJSON_CreateNumber(4)), TL_OK);
    assert_prints_as(arr, "[0,1,2,3,4]");
    assert_int_equal(tl_json_array_insert(arr, 6, cJSON_CreateNumber(6)), TL_ENOTFOUND);
    assert_int_equal(tl_json_array_insert(arr, 0, NULL), TL_ENOMEM);
    cJSON *obj = cJSON_CreateObject();
    assert_int_equal(tl_json_array_insert(obj, 0, cJSON_CreateNull()), TL_EINVAL);
    cJSON_Delete(obj);
    assert_int_equal(tl_json_array_insert(arr, 5, cJSON_CreateNumber(5)), TL_OK);
    assert_int_equal(tl_json_array_insert(arr, 6, cJSON_CreateNumber(6)), TL_OK);
    assert_prints_as(arr, "[0,1,2,3,4,5,6]");
    assert_ptr_equal(arr->child->prev, tl_json_array_at(arr, 6));
    cJSON_Delete(arr);
}

static void test_take_and_dup_drop_member_keys(void **state)
{
    (void)state;
    cJSON *obj = parse("{\"a\":{\"x\":1},\"b\":2}");
    cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, "a");
    cJSON *copy = tl_json_dup(a);
    assert_null(copy->string);
    assert_true(tl_json_equal(copy, a));
    assert_ptr_not_equal(copy, a);

    cJSON *other = parse("{\"z\":0}");
    assert_null(tl_json_take(other, a)); /* not its child: nothing happens */
    assert_prints_as(other, "{\"z\":0}");
    cJSON *taken = tl_json_take(obj, a);
    assert_ptr_equal(taken, a);
    assert_null(taken->string);
    assert_prints_as(obj, "{\"b\":2}");
    assert_ptr_equal(obj->child->prev, obj->child);

    /* A taken member goes into an array without its old key. */
    cJSON *arr = cJSON_CreateArray();
    assert_int_equal(tl_json_array_insert(arr, 0, taken), TL_OK);
    assert_prints_as(arr, "[{\"x\":1}]");
    cJSON_Delete(arr);
    cJSON_Delete(other);
    cJSON_Delete(copy);
    cJSON_Delete(obj);
    assert_null(tl_json_dup(NULL));
    assert_null(tl_json_take(NULL, NULL));
}

static void test_size_counts_members_and_elements(void **state)
{
    cJSON *pod = *state;
    assert_int_equal(tl_json_size(pod), 4);
    assert_int_equal(tl_json_size(tl_json_get(pod, "spec", "containers", NULL)), 2);
    assert_int_equal(tl_json_size(tl_json_get(pod, "kind", NULL)), 0);
    assert_int_equal(tl_json_size(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_builds_the_tree),
        cmocka_unit_test(test_parse_error_names_byte_line_and_column),
        cmocka_unit_test(test_parse_rejects_what_cjson_alone_accepts),
        cmocka_unit_test(test_parse_rejects_nul_bytes),
        cmocka_unit_test(test_parse_rejects_duplicate_keys),
        cmocka_unit_test(test_parse_enforces_the_cap),
        cmocka_unit_test(test_parse_reads_exactly_len_bytes),
        cmocka_unit_test(test_parse_empty_and_bom),
        cmocka_unit_test(test_parse_limits_nesting),
        cmocka_unit_test(test_parse_reports_out_of_memory_apart_from_syntax),
        cmocka_unit_test(test_print_is_compact_and_keeps_order),
        cmocka_unit_test(test_print_numbers_read_back_exactly),
        cmocka_unit_test(test_print_escapes_strings_and_keys),
        cmocka_unit_test(test_print_refuses_what_json_cannot_spell),
        cmocka_unit_test_setup_teardown(test_print_matches_cjson_layout, pod_setup, pod_teardown),
        cmocka_unit_test_setup_teardown(test_get_takes_keys_literally, pod_setup, pod_teardown),
        cmocka_unit_test_setup_teardown(test_get_indexes_arrays, pod_setup, pod_teardown),
        cmocka_unit_test(test_index_parse_follows_rfc6901),
        cmocka_unit_test_setup_teardown(test_getters_give_the_fallback_when_absent_or_null,
                                        pod_setup, pod_teardown),
        cmocka_unit_test_setup_teardown(test_getters_refuse_the_wrong_type, pod_setup,
                                        pod_teardown),
        cmocka_unit_test(test_getters_with_null_key_read_the_value_itself),
        cmocka_unit_test(test_int64_is_never_silently_wrong),
        cmocka_unit_test(test_double_refuses_non_finite),
        cmocka_unit_test(test_equal_ignores_key_order_only),
        cmocka_unit_test(test_equal_is_linear_on_deep_documents),
        cmocka_unit_test(test_member_set_replaces_in_place_or_appends),
        cmocka_unit_test(test_member_set_owns_value_when_allocation_fails),
        cmocka_unit_test(test_array_insert_positions),
        cmocka_unit_test(test_take_and_dup_drop_member_keys),
        cmocka_unit_test_setup_teardown(test_size_counts_members_and_elements, pod_setup,
                                        pod_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
