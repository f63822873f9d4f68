#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_patch.h"

static cJSON *parse(const char *text)
{
    char err[256] = "";
    cJSON *doc = NULL;
    if (tl_json_parse(text, strlen(text), 1 << 20, &doc, err, sizeof(err)) != TL_OK)
        fail_msg("cannot parse %s: %s", text, err);
    return doc;
}

static char *print(const cJSON *item)
{
    char *text = tl_json_print(item);
    assert_non_null(text);
    return text;
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

/* Applies patch to doc; on success checks the result equals want (when given). */
static void assert_patches(const char *name, const char *doc_text, const char *patch_text,
                           const char *want_text)
{
    cJSON *doc = parse(doc_text);
    cJSON *patch = parse(patch_text);
    char err[256] = "";
    enum tl_err result = tl_json_patch_apply(&doc, patch, err, sizeof(err));
    if (result != TL_OK)
        fail_msg("%s: %s: %s", name, tl_strerror(result), err);
    cJSON *want = parse(want_text);
    if (!tl_json_equal(doc, want)) {
        char *got = print(doc);
        fail_msg("%s: got %s, want %s", name, got, want_text);
    }
    cJSON_Delete(want);
    cJSON_Delete(patch);
    cJSON_Delete(doc);
}

/*
 * Applies a patch that must fail: checks the code, that the message starts with want_err, and
 * that the document is untouched, down to the pointer and every byte of its printed form.
 */
static void assert_patch_fails(const char *name, const char *doc_text, cJSON *patch,
                               enum tl_err want, const char *want_err)
{
    cJSON *doc = parse(doc_text);
    cJSON *before_ptr = doc;
    char *before = print(doc);
    char err[256] = "";
    enum tl_err result = tl_json_patch_apply(&doc, patch, err, sizeof(err));
    if (result != want || strncmp(err, want_err, strlen(want_err)) != 0)
        fail_msg("%s: got %s \"%s\", want %s \"%s...\"", name, tl_strerror(result), err,
                 tl_strerror(want), want_err);
    assert_ptr_equal(doc, before_ptr);
    char *after = print(doc);
    assert_string_equal(before, after);
    free(after);
    free(before);
    cJSON_Delete(doc);
}

static void assert_fails(const char *name, const char *doc_text, const char *patch_text,
                         enum tl_err want, const char *want_err)
{
    cJSON *patch = parse(patch_text);
    assert_patch_fails(name, doc_text, patch, want, want_err);
    cJSON_Delete(patch);
}

/* ---- RFC 6902 Appendix A ---- */

static void test_rfc6902_appendix_a_successes(void **state)
{
    (void)state;
    assert_patches("A.1 adding an object member", "{\"foo\":\"bar\"}",
                   "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
                   "{\"baz\":\"qux\",\"foo\":\"bar\"}");
    assert_patches("A.2 adding an array element", "{\"foo\":[\"bar\",\"baz\"]}",
                   "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
                   "{\"foo\":[\"bar\",\"qux\",\"baz\"]}");
    assert_patches("A.3 removing an object member", "{\"baz\":\"qux\",\"foo\":\"bar\"}",
                   "[{\"op\":\"remove\",\"path\":\"/baz\"}]", "{\"foo\":\"bar\"}");
    assert_patches("A.4 removing an array element", "{\"foo\":[\"bar\",\"qux\",\"baz\"]}",
                   "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]", "{\"foo\":[\"bar\",\"baz\"]}");
    assert_patches("A.5 replacing a value", "{\"baz\":\"qux\",\"foo\":\"bar\"}",
                   "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
                   "{\"baz\":\"boo\",\"foo\":\"bar\"}");
    assert_patches("A.6 moving a value",
                   "{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
                   "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
                   "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}");
    assert_patches("A.7 moving an array element", "{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}",
                   "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
                   "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}");
    assert_patches("A.8 testing a value: success", "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
                   "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},"
                   "{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
                   "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}");
    assert_patches("A.10 adding a nested member object", "{\"foo\":\"bar\"}",
                   "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
                   "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}");
    assert_patches("A.11 ignoring unrecognized elements", "{\"foo\":\"bar\"}",
                   "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"xyz\":123}]",
                   "{\"foo\":\"bar\",\"baz\":\"qux\"}");
    assert_patches("A.14 ~ escape ordering", "{\"/\":9,\"~1\":10}",
                   "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]", "{\"/\":9,\"~1\":10}");
    assert_patches("A.16 adding an array value", "{\"foo\":[\"bar\"]}",
                   "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
                   "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}");
}

static void test_rfc6902_appendix_a_errors(void **state)
{
    (void)state;
    assert_fails("A.9 testing a value: error", "{\"baz\":\"qux\"}",
                 "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]", TL_ECONFLICT,
                 "operation 0 (test): value at /baz differs");
    assert_fails("A.12 adding to a nonexistent target", "{\"foo\":\"bar\"}",
                 "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]", TL_ENOTFOUND,
                 "operation 0 (add): parent of /baz/bat does not exist");
    assert_fails("A.15 comparing strings and numbers", "{\"/\":9,\"~1\":10}",
                 "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":\"10\"}]", TL_ECONFLICT,
                 "operation 0 (test): value at /~01 differs");

    /* A.13: a duplicate "op". tl_json_parse refuses the document itself... */
    const char *a13 = "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"op\":\"remove\"}]";
    cJSON *patch = NULL;
    char err[256];
    assert_int_equal(tl_json_parse(a13, strlen(a13), 4096, &patch, err, sizeof(err)), TL_EINVAL);
    assert_string_equal(err, "invalid JSON: duplicate key \"op\" in an object");
    /* ...and apply refuses it from a parser that keeps duplicates. */
    patch = cJSON_Parse(a13);
    assert_non_null(patch);
    assert_patch_fails("A.13 invalid JSON Patch document", "{\"foo\":\"bar\"}", patch, TL_EINVAL,
                       "operation 0: duplicate member \"op\"");
    cJSON_Delete(patch);
}

static void test_error_names_the_operation_and_reason(void **state)
{
    (void)state;
    /* The format promised in the header and relied on in Events and conditions. */
    assert_fails("third op fails", "{\"a\":{\"b\":1}}",
                 "[{\"op\":\"add\",\"path\":\"/x\",\"value\":1},"
                 "{\"op\":\"test\",\"path\":\"/x\",\"value\":1},"
                 "{\"op\":\"test\",\"path\":\"/a/b\",\"value\":2}]",
                 TL_ECONFLICT, "operation 2 (test): value at /a/b differs");
}

/* The usual failing cases of JSON Patch test suites, plus the rules of RFC 6902 section 4. */
static void test_malformed_and_failing_operations(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *doc;
        const char *patch;
        enum tl_err code;
        const char *err;
    } cases[] = {
        {"add with missing object", "{\"q\":{\"bar\":2}}",
         "[{\"op\":\"add\",\"path\":\"/a/b\",\"value\":1}]", TL_ENOTFOUND,
         "operation 0 (add): parent of /a/b does not exist"},
        {"add past the end", "{\"bar\":[1,2]}",
         "[{\"op\":\"add\",\"path\":\"/bar/8\",\"value\":5}]", TL_ENOTFOUND,
         "operation 0 (add): index 8 in /bar/8 is past the end of the array (size 2)"},
        {"add with a negative index", "{\"bar\":[1,2]}",
         "[{\"op\":\"add\",\"path\":\"/bar/-1\",\"value\":5}]", TL_EINVAL,
         "operation 0 (add): \"-1\" in /bar/-1 is not an array index"},
        {"add with a leading zero", "{\"bar\":[1,2]}",
         "[{\"op\":\"add\",\"path\":\"/bar/01\",\"value\":5}]", TL_EINVAL,
         "operation 0 (add): \"01\" in /bar/01 is not an array index"},
        {"add with an exponent index", "{\"bar\":[1,2]}",
         "[{\"op\":\"add\",\"path\":\"/bar/1e0\",\"value\":5}]", TL_EINVAL,
         "operation 0 (add): \"1e0\" in /bar/1e0 is not an array index"},
        {"add with a huge index", "{\"bar\":[1,2]}",
         "[{\"op\":\"add\",\"path\":\"/bar/99999999999999999999999\",\"value\":5}]", TL_ENOTFOUND,
         "operation 0 (add): index 99999999999999999999999"},
        {"add under a string", "{\"foo\":\"bar\"}",
         "[{\"op\":\"add\",\"path\":\"/foo/x\",\"value\":1}]", TL_ENOTFOUND,
         "operation 0 (add): parent of /foo/x is neither an object nor an array"},
        {"add through a non-index", "{\"foo\":[{}]}",
         "[{\"op\":\"add\",\"path\":\"/foo/x/y\",\"value\":1}]", TL_EINVAL,
         "operation 0 (add): path /foo/x/y uses a token that is not an array index"},
        {"add without value", "{}", "[{\"op\":\"add\",\"path\":\"/a\"}]", TL_EINVAL,
         "operation 0 (add): missing \"value\""},
        {"replace without value", "{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/a\"}]", TL_EINVAL,
         "operation 0 (replace): missing \"value\""},
        {"test without value", "{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\"}]", TL_EINVAL,
         "operation 0 (test): missing \"value\""},
        {"remove a missing member", "{\"foo\":1}", "[{\"op\":\"remove\",\"path\":\"/bar\"}]",
         TL_ENOTFOUND, "operation 0 (remove): path /bar does not exist"},
        {"remove past the end", "{\"foo\":[1]}", "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]",
         TL_ENOTFOUND, "operation 0 (remove): path /foo/1 does not exist"},
        {"remove \"-\"", "{\"foo\":[1]}", "[{\"op\":\"remove\",\"path\":\"/foo/-\"}]", TL_ENOTFOUND,
         "operation 0 (remove): path /foo/- does not exist"},
        {"remove the document", "{\"foo\":1}", "[{\"op\":\"remove\",\"path\":\"\"}]", TL_EINVAL,
         "operation 0 (remove): cannot remove the whole document"},
        {"replace a missing member", "{\"foo\":1}",
         "[{\"op\":\"replace\",\"path\":\"/bar\",\"value\":2}]", TL_ENOTFOUND,
         "operation 0 (replace): path /bar does not exist"},
        {"test a missing member", "{\"foo\":1}",
         "[{\"op\":\"test\",\"path\":\"/bar\",\"value\":1}]", TL_ENOTFOUND,
         "operation 0 (test): path /bar does not exist"},
        {"test null against absent", "{}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":null}]",
         TL_ENOTFOUND, "operation 0 (test): path /a does not exist"},
        {"move from a missing member", "{\"foo\":1}",
         "[{\"op\":\"move\",\"from\":\"/bar\",\"path\":\"/baz\"}]", TL_ENOTFOUND,
         "operation 0 (move): from /bar does not exist"},
        {"move into its own child", "{\"a\":{\"b\":1}}",
         "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/b/c\"}]", TL_EINVAL,
         "operation 0 (move): cannot move /a into its own child /a/b/c"},
        {"move the document into itself", "{\"a\":1}",
         "[{\"op\":\"move\",\"from\":\"\",\"path\":\"/b\"}]", TL_EINVAL,
         "operation 0 (move): cannot move \"\" into its own child /b"},
        {"move without from", "{\"a\":1}", "[{\"op\":\"move\",\"path\":\"/b\"}]", TL_EINVAL,
         "operation 0 (move): missing \"from\""},
        {"copy without from", "{\"a\":1}", "[{\"op\":\"copy\",\"path\":\"/b\"}]", TL_EINVAL,
         "operation 0 (copy): missing \"from\""},
        {"copy from a missing member", "{\"a\":1}",
         "[{\"op\":\"copy\",\"from\":\"/x\",\"path\":\"/b\"}]", TL_ENOTFOUND,
         "operation 0 (copy): from /x does not exist"},
        {"missing op", "{}", "[{\"path\":\"/a\",\"value\":1}]", TL_EINVAL,
         "operation 0: missing \"op\""},
        {"op not a string", "{}", "[{\"op\":1,\"path\":\"/a\"}]", TL_EINVAL,
         "operation 0: \"op\" is not a string"},
        {"unknown op", "{}", "[{\"op\":\"spam\",\"path\":\"/a\",\"value\":1}]", TL_EINVAL,
         "operation 0: unknown op \"spam\""},
        {"op in the wrong case", "{}", "[{\"op\":\"ADD\",\"path\":\"/a\",\"value\":1}]", TL_EINVAL,
         "operation 0: unknown op \"ADD\""},
        {"missing path", "{}", "[{\"op\":\"add\",\"value\":1}]", TL_EINVAL,
         "operation 0 (add): missing \"path\""},
        {"path null", "{}", "[{\"op\":\"add\",\"path\":null,\"value\":1}]", TL_EINVAL,
         "operation 0 (add): \"path\" is not a string"},
        {"path without a leading slash", "{\"foo\":1}",
         "[{\"op\":\"replace\",\"path\":\"foo\",\"value\":2}]", TL_EINVAL,
         "operation 0 (replace): path \"foo\" is not a JSON pointer"},
        {"bad escape", "{\"foo\":1}", "[{\"op\":\"remove\",\"path\":\"/~2\"}]", TL_EINVAL,
         "operation 0 (remove): path \"/~2\" is not a JSON pointer"},
        {"bad escape in from", "{\"foo\":1}",
         "[{\"op\":\"copy\",\"from\":\"/f~\",\"path\":\"/b\"}]", TL_EINVAL,
         "operation 0 (copy): from \"/f~\" is not a JSON pointer"},
        {"operation not an object", "{}", "[{\"op\":\"test\",\"path\":\"\",\"value\":{}},1]",
         TL_EINVAL, "operation 1: not an object"},
        {"patch not an array", "{}", "{\"op\":\"add\",\"path\":\"/a\",\"value\":1}", TL_EINVAL,
         "a JSON Patch must be an array of operations"},
        {"fails after successes", "{\"a\":[1,2]}",
         "[{\"op\":\"add\",\"path\":\"/a/-\",\"value\":3},{\"op\":\"remove\",\"path\":\"/a/0\"},"
         "{\"op\":\"replace\",\"path\":\"\",\"value\":[]},{\"op\":\"remove\",\"path\":\"/0\"}]",
         TL_ENOTFOUND, "operation 3 (remove): path /0 does not exist"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_fails(cases[i].name, cases[i].doc, cases[i].patch, cases[i].code, cases[i].err);
}

static void test_operations_beyond_the_appendix(void **state)
{
    (void)state;
    assert_patches("empty patch", "{\"foo\":1}", "[]", "{\"foo\":1}");
    assert_patches("add replaces an existing member", "{\"foo\":null}",
                   "[{\"op\":\"add\",\"path\":\"/foo\",\"value\":1}]", "{\"foo\":1}");
    assert_patches("add the empty key", "{}", "[{\"op\":\"add\",\"path\":\"/\",\"value\":1}]",
                   "{\"\":1}");
    assert_patches("add a numeric key to an object", "{}",
                   "[{\"op\":\"add\",\"path\":\"/1\",\"value\":\"one\"}]", "{\"1\":\"one\"}");
    assert_patches("add to a top-level array", "[]",
                   "[{\"op\":\"add\",\"path\":\"/0\",\"value\":\"a\"},"
                   "{\"op\":\"add\",\"path\":\"/-\",\"value\":\"c\"},"
                   "{\"op\":\"add\",\"path\":\"/1\",\"value\":\"b\"},"
                   "{\"op\":\"add\",\"path\":\"/3\",\"value\":\"d\"}]",
                   "[\"a\",\"b\",\"c\",\"d\"]");
    assert_patches("add at the root replaces the document", "{\"a\":1}",
                   "[{\"op\":\"add\",\"path\":\"\",\"value\":[1]}]", "[1]");
    assert_patches("replace at the root", "\"foo\"",
                   "[{\"op\":\"replace\",\"path\":\"\",\"value\":{\"x\":null}}]", "{\"x\":null}");
    assert_patches("replace in an array", "[1,2,3]",
                   "[{\"op\":\"replace\",\"path\":\"/2\",\"value\":[]},"
                   "{\"op\":\"replace\",\"path\":\"/0\",\"value\":0}]",
                   "[0,2,[]]");
    assert_patches("add a value null", "{}", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":null}]",
                   "{\"a\":null}");
    assert_patches("test null and the whole document", "{\"a\":null}",
                   "[{\"op\":\"test\",\"path\":\"/a\",\"value\":null},"
                   "{\"op\":\"test\",\"path\":\"\",\"value\":{\"a\":null}}]",
                   "{\"a\":null}");
    assert_patches("test ignores key order and number spelling", "{\"a\":{\"x\":1,\"y\":[2]}}",
                   "[{\"op\":\"test\",\"path\":\"/a\",\"value\":{\"y\":[2.0],\"x\":1e0}}]",
                   "{\"a\":{\"x\":1,\"y\":[2]}}");
    assert_patches("move to the same place", "{\"a\":1,\"b\":2}",
                   "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a\"}]", "{\"a\":1,\"b\":2}");
    assert_patches("move between arrays and objects", "{\"a\":[{\"k\":1}],\"o\":{}}",
                   "[{\"op\":\"move\",\"from\":\"/a/0\",\"path\":\"/o/m\"},"
                   "{\"op\":\"move\",\"from\":\"/o\",\"path\":\"/a/0\"}]",
                   "{\"a\":[{\"m\":{\"k\":1}}]}");
    assert_patches("move to a sibling with a common prefix", "{\"a\":1}",
                   "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/ab\"}]", "{\"ab\":1}");
    assert_patches("copy the document into itself", "{\"a\":1}",
                   "[{\"op\":\"copy\",\"from\":\"\",\"path\":\"/self\"}]",
                   "{\"a\":1,\"self\":{\"a\":1}}");
    assert_patches("copy into its own child", "{\"a\":{\"b\":1}}",
                   "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/a/c\"}]",
                   "{\"a\":{\"b\":1,\"c\":{\"b\":1}}}");
    assert_patches(
        "escaped keys", "{\"metadata\":{\"annotations\":{}}}",
        "[{\"op\":\"add\",\"path\":\"/metadata/annotations/tailor.dev~1ignore\","
        "\"value\":\"true\"},"
        "{\"op\":\"add\",\"path\":\"/metadata/annotations/a~0b\",\"value\":\"x\"}]",
        "{\"metadata\":{\"annotations\":{\"tailor.dev/ignore\":\"true\",\"a~b\":\"x\"}}}");
}

static void test_replace_keeps_member_order(void **state)
{
    (void)state;
    cJSON *doc = parse("{\"a\":1,\"b\":2,\"c\":3}");
    cJSON *patch = parse("[{\"op\":\"replace\",\"path\":\"/b\",\"value\":{\"x\":1}},"
                         "{\"op\":\"add\",\"path\":\"/a\",\"value\":0}]");
    char err[128];
    assert_int_equal(tl_json_patch_apply(&doc, patch, err, sizeof(err)), TL_OK);
    char *text = print(doc);
    assert_string_equal(text, "{\"a\":0,\"b\":{\"x\":1},\"c\":3}");
    free(text);
    cJSON_Delete(patch);
    cJSON_Delete(doc);
}

static void test_refuses_a_document_that_is_not_a_root(void **state)
{
    (void)state;
    cJSON *doc = parse("{\"a\":[1,2]}");
    cJSON *patch = parse("[]");
    cJSON *inner = tl_json_array_at(cJSON_GetObjectItemCaseSensitive(doc, "a"), 1);
    char err[128];
    assert_int_equal(tl_json_patch_apply(&inner, patch, err, sizeof(err)), TL_EINVAL);
    assert_string_equal(err, "no document, or the document is not a root");
    cJSON *none = NULL;
    assert_int_equal(tl_json_patch_apply(&none, patch, NULL, 0), TL_EINVAL);
    cJSON_Delete(patch);
    cJSON_Delete(doc);
}

static void test_copies_are_bounded(void **state)
{
    (void)state;
    /* Each copy doubles the document: 2^21 nodes after 21 copies, past the limit. */
    char patch_text[4096] = "[";
    size_t n = 1;
    for (int i = 0; i < 30; i++) {
        int w = snprintf(patch_text + n, sizeof(patch_text) - n,
                         "%s{\"op\":\"copy\",\"from\":\"\",\"path\":\"/%d\"}", i ? "," : "", i);
        assert_true(w > 0 && (size_t)w < sizeof(patch_text) - n);
        n += (size_t)w;
    }
    assert_true(n + 2 <= sizeof(patch_text));
    patch_text[n] = ']';
    patch_text[n + 1] = '\0';
    cJSON *patch = parse(patch_text);
    assert_patch_fails("doubling copies", "{}", patch, TL_ETOOBIG,
                       "operation 20 (copy): copies would exceed 1048576 nodes");
    cJSON_Delete(patch);
}

/* {"a":{"a":...}} with depth objects. */
static char *nested(size_t depth)
{
    char *text = malloc(depth * 6 + 3);
    assert_non_null(text);
    size_t n = 0;
    for (size_t i = 0; i < depth; i++) {
        memcpy(text + n, "{\"a\":", 5);
        n += 5;
    }
    text[n++] = '1';
    memset(text + n, '}', depth);
    n += depth;
    text[n] = '\0';
    return text;
}

/* A one-operation patch built by hand: a parsed one could not carry a value this deep. */
static cJSON *add_op(const char *path, cJSON *value)
{
    cJSON *op = cJSON_CreateObject();
    cJSON *patch = cJSON_CreateArray();
    assert_non_null(op);
    assert_non_null(patch);
    assert_int_equal(tl_json_member_set(op, "op", cJSON_CreateString("add")), TL_OK);
    assert_int_equal(tl_json_member_set(op, "path", cJSON_CreateString(path)), TL_OK);
    assert_int_equal(tl_json_member_set(op, "value", value), TL_OK);
    assert_int_equal(tl_json_array_insert(patch, 0, op), TL_OK);
    return patch;
}

static void test_results_stay_within_the_parse_depth(void **state)
{
    (void)state;
    char *deep = nested(TL_JSON_MAX_DEPTH - 1);
    /* 999 levels of value under one token: 1000, the most tl_json_parse reads back. */
    cJSON *doc = parse("{\"y\":{}}");
    cJSON *patch = add_op("/x", parse(deep));
    char err[128];
    assert_int_equal(tl_json_patch_apply(&doc, patch, err, sizeof(err)), TL_OK);
    char *text = print(doc);
    cJSON *again = parse(text);
    assert_true(tl_json_equal(again, doc));
    cJSON_Delete(again);
    free(text);
    cJSON_Delete(patch);
    /* Under two tokens it would be 1001. */
    patch = add_op("/y/x", parse(deep));
    char *before = print(doc);
    assert_int_equal(tl_json_patch_apply(&doc, patch, err, sizeof(err)), TL_ETOOBIG);
    assert_string_equal(err, "operation 0 (add): the result would nest deeper than 1000 levels");
    text = print(doc);
    assert_string_equal(text, before);
    free(text);
    free(before);
    cJSON_Delete(patch);
    cJSON_Delete(doc);

    /* Moving and copying are checked too: /a holds 999 levels, 1000 with the root. */
    size_t cap = strlen(deep) + 32;
    char *doc_text = malloc(cap);
    char *moved_text = malloc(cap);
    assert_non_null(doc_text);
    assert_non_null(moved_text);
    snprintf(doc_text, cap, "{\"b\":{},\"a\":%s}", deep);
    snprintf(moved_text, cap, "{\"b\":{},\"c\":%s}", deep);
    assert_fails("move deeper", doc_text, "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/b/a\"}]",
                 TL_ETOOBIG, "operation 0 (move): the result would nest deeper than 1000 levels");
    assert_fails("copy deeper", doc_text, "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b/a\"}]",
                 TL_ETOOBIG, "operation 0 (copy): the result would nest deeper than 1000 levels");
    assert_patches("move at the same depth", doc_text,
                   "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/c\"}]", moved_text);
    free(moved_text);
    free(doc_text);
    free(deep);
}

static void test_failure_leaves_the_document_untouched(void **state)
{
    (void)state;
    /* Every kind of operation succeeds first, then the last one fails. */
    const char *doc_text = "{\"list\":[1,2,3],\"obj\":{\"k\":\"v\"},\"n\":1}";
    cJSON *patch = parse("[{\"op\":\"add\",\"path\":\"/list/0\",\"value\":0},"
                         "{\"op\":\"remove\",\"path\":\"/n\"},"
                         "{\"op\":\"replace\",\"path\":\"/obj/k\",\"value\":\"w\"},"
                         "{\"op\":\"move\",\"from\":\"/list/1\",\"path\":\"/moved\"},"
                         "{\"op\":\"copy\",\"from\":\"/obj\",\"path\":\"/copy\"},"
                         "{\"op\":\"replace\",\"path\":\"\",\"value\":\"gone\"},"
                         "{\"op\":\"test\",\"path\":\"\",\"value\":\"other\"}]");
    assert_patch_fails("all kinds then a failed test", doc_text, patch, TL_ECONFLICT,
                       "operation 6 (test): value at \"\" differs");
    cJSON_Delete(patch);
}

static void test_apply_fails_cleanly_without_memory(void **state)
{
    (void)state;
    cJSON *patch = parse("[{\"op\":\"add\",\"path\":\"/list/0\",\"value\":{\"deep\":[1,2]}},"
                         "{\"op\":\"remove\",\"path\":\"/n\"},"
                         "{\"op\":\"replace\",\"path\":\"/obj/k\",\"value\":\"w\"},"
                         "{\"op\":\"move\",\"from\":\"/list/1\",\"path\":\"/moved\"},"
                         "{\"op\":\"copy\",\"from\":\"/obj\",\"path\":\"/copy\"},"
                         "{\"op\":\"add\",\"path\":\"/obj/new~1key\",\"value\":[true]},"
                         "{\"op\":\"test\",\"path\":\"/copy/k\",\"value\":\"w\"}]");
    cJSON *doc = parse("{\"list\":[1,2,3],\"obj\":{\"k\":\"v\"},\"n\":1}");
    char *before = print(doc);
    long k;
    for (k = 0;; k++) {
        cJSON *doc_ptr = doc;
        char err[128] = "";
        fail_after(k);
        enum tl_err result = tl_json_patch_apply(&doc, patch, err, sizeof(err));
        allocs_unlimited();
        if (result == TL_OK)
            break;
        assert_int_equal(result, TL_ENOMEM);
        assert_non_null(strstr(err, "out of memory"));
        assert_ptr_equal(doc, doc_ptr);
        char *now = print(doc);
        assert_string_equal(now, before);
        free(now);
    }
    assert_true(k > 10);
    char *text = print(doc);
    assert_string_equal(text, "{\"list\":[{\"deep\":[1,2]},2,3],\"obj\":{\"k\":\"w\",\"new/key\":"
                              "[true]},\"moved\":1,\"copy\":{\"k\":\"w\"}}");
    free(text);
    free(before);
    cJSON_Delete(doc);
    cJSON_Delete(patch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc6902_appendix_a_successes),
        cmocka_unit_test(test_rfc6902_appendix_a_errors),
        cmocka_unit_test(test_error_names_the_operation_and_reason),
        cmocka_unit_test(test_malformed_and_failing_operations),
        cmocka_unit_test(test_operations_beyond_the_appendix),
        cmocka_unit_test(test_replace_keeps_member_order),
        cmocka_unit_test(test_refuses_a_document_that_is_not_a_root),
        cmocka_unit_test(test_copies_are_bounded),
        cmocka_unit_test(test_results_stay_within_the_parse_depth),
        cmocka_unit_test(test_failure_leaves_the_document_untouched),
        cmocka_unit_test(test_apply_fails_cleanly_without_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
