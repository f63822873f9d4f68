#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_pointer.h"

/* The document of RFC 6901 section 5. */
static const char *const rfc_doc =
    "{\"foo\":[\"bar\",\"baz\"],\"\":0,\"a/b\":1,\"c%d\":2,\"e^f\":3,"
    "\"g|h\":4,\"i\\\\j\":5,\"k\\\"l\":6,\" \":7,\"m~n\":8}";

static int doc_setup(void **state)
{
    cJSON *doc = NULL;
    char err[128];
    if (tl_json_parse(rfc_doc, strlen(rfc_doc), 4096, &doc, err, sizeof(err)) != TL_OK)
        return -1;
    *state = doc;
    return 0;
}

static int doc_teardown(void **state)
{
    cJSON_Delete(*state);
    return 0;
}

static char *print(const cJSON *item)
{
    char *text = tl_json_print(item);
    assert_non_null(text);
    return text;
}

static void test_get_resolves_every_rfc6901_example(void **state)
{
    cJSON *doc = *state;
    static const struct {
        const char *pointer;
        const char *value;
    } cases[] = {
        {"/foo", "[\"bar\",\"baz\"]"},
        {"/foo/0", "\"bar\""},
        {"/", "0"},
        {"/a~1b", "1"},
        {"/c%d", "2"},
        {"/e^f", "3"},
        {"/g|h", "4"},
        {"/i\\j", "5"},
        {"/k\"l", "6"},
        {"/ ", "7"},
        {"/m~0n", "8"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *got = NULL;
        enum tl_err result = tl_json_pointer_get(doc, cases[i].pointer, &got);
        if (result != TL_OK)
            fail_msg("%s: %s", cases[i].pointer, tl_strerror(result));
        char *text = print(got);
        if (strcmp(text, cases[i].value) != 0)
            fail_msg("%s: got %s, want %s", cases[i].pointer, text, cases[i].value);
        free(text);
    }
    /* "" is the whole document. */
    cJSON *whole = NULL;
    assert_int_equal(tl_json_pointer_get(doc, "", &whole), TL_OK);
    assert_ptr_equal(whole, doc);
}

static void test_get_reports_invalid_and_missing(void **state)
{
    cJSON *doc = *state;
    static const struct {
        const char *pointer;
        enum tl_err result;
    } cases[] = {
        {"foo", TL_EINVAL},      /* no leading slash */
        {"/~2", TL_EINVAL},      /* unknown escape */
        {"/m~", TL_EINVAL},      /* '~' at the end */
        {"/foo/01", TL_EINVAL},  /* leading zero */
        {"/foo/-1", TL_EINVAL},  /* sign */
        {"/foo/bar", TL_EINVAL}, /* not an index, on an array */
        {"/foo/2", TL_ENOTFOUND},
        {"/foo/-", TL_ENOTFOUND}, /* the element after the last never exists */
        {"/foo/99999999999999999999999", TL_ENOTFOUND},
        {"/foo/0/x", TL_ENOTFOUND}, /* into a string */
        {"/nope", TL_ENOTFOUND},
        {"/a~1b/c", TL_ENOTFOUND}, /* into a number */
        {"/m~n", TL_EINVAL},
        {"/FOO", TL_ENOTFOUND}, /* case-sensitive */
        {"/a/b", TL_ENOTFOUND}, /* unescaped '/' splits */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *sentinel = (cJSON *)&sentinel;
        cJSON *got = sentinel;
        enum tl_err result = tl_json_pointer_get(doc, cases[i].pointer, &got);
        if (result != cases[i].result)
            fail_msg("%s: got %s, want %s", cases[i].pointer, tl_strerror(result),
                     tl_strerror(cases[i].result));
        assert_ptr_equal(got, sentinel);
    }
    cJSON *got = NULL;
    assert_int_equal(tl_json_pointer_get(NULL, "", &got), TL_EINVAL);
    assert_int_equal(tl_json_pointer_get(doc, NULL, &got), TL_EINVAL);
}

static void test_getn_resolves_a_prefix(void **state)
{
    cJSON *doc = *state;
    cJSON *got = NULL;
    const char *path = "/foo/1";
    assert_int_equal(tl_json_pointer_getn(doc, path, 4, &got), TL_OK);
    assert_ptr_equal(got, cJSON_GetObjectItemCaseSensitive(doc, "foo"));
    assert_int_equal(tl_json_pointer_getn(doc, path, 0, &got), TL_OK);
    assert_ptr_equal(got, doc);
    /* A cut inside an escape is invalid, not a different key. */
    assert_int_equal(tl_json_pointer_getn(doc, "/m~0n", 3, &got), TL_EINVAL);
}

static void test_validate(void **state)
{
    (void)state;
    assert_int_equal(tl_json_pointer_validate("", 0), TL_OK);
    assert_int_equal(tl_json_pointer_validate("/", 1), TL_OK);
    assert_int_equal(tl_json_pointer_validate("//", 2), TL_OK);
    assert_int_equal(tl_json_pointer_validate("/a~0~1", 6), TL_OK);
    assert_int_equal(tl_json_pointer_validate("a", 1), TL_EINVAL);
    assert_int_equal(tl_json_pointer_validate("/~", 2), TL_EINVAL);
    assert_int_equal(tl_json_pointer_validate("/~a", 3), TL_EINVAL);
    assert_int_equal(tl_json_pointer_validate("#/a", 3), TL_EINVAL);
    assert_int_equal(tl_json_pointer_validate("/a\0b", 4), TL_EINVAL);
    assert_int_equal(tl_json_pointer_validate(NULL, 0), TL_EINVAL);
}

static void test_token_dup_unescapes_in_rfc_order(void **state)
{
    (void)state;
    char *token = NULL;
    assert_int_equal(tl_json_pointer_token_dup("a~1b~0c", 7, &token), TL_OK);
    assert_string_equal(token, "a/b~c");
    free(token);
    /* "~01" is "~1" (the '~' first, then nothing more), not "~/" */
    assert_int_equal(tl_json_pointer_token_dup("~01", 3, &token), TL_OK);
    assert_string_equal(token, "~1");
    free(token);
    assert_int_equal(tl_json_pointer_token_dup("", 0, &token), TL_OK);
    assert_string_equal(token, "");
    free(token);
    token = NULL;
    assert_int_equal(tl_json_pointer_token_dup("a~2", 3, &token), TL_EINVAL);
    assert_int_equal(tl_json_pointer_token_dup("a~", 2, &token), TL_EINVAL);
    assert_null(token);
}

static void test_append_escapes_kubernetes_keys(void **state)
{
    (void)state;
    char ptr[64] = "";
    assert_int_equal(tl_json_pointer_append(ptr, sizeof(ptr), "metadata"), TL_OK);
    assert_int_equal(tl_json_pointer_append(ptr, sizeof(ptr), "annotations"), TL_OK);
    assert_int_equal(tl_json_pointer_append(ptr, sizeof(ptr), "tailor.dev/ignore"), TL_OK);
    assert_string_equal(ptr, "/metadata/annotations/tailor.dev~1ignore");
    assert_int_equal(tl_json_pointer_append(ptr, sizeof(ptr), "~x"), TL_OK);
    assert_string_equal(ptr, "/metadata/annotations/tailor.dev~1ignore/~0x");

    const char *text = "{\"metadata\":{\"annotations\":{\"tailor.dev/ignore\":\"true\"}}}";
    cJSON *doc = NULL;
    char err[128];
    assert_int_equal(tl_json_parse(text, strlen(text), 4096, &doc, err, sizeof(err)), TL_OK);
    char built[64] = "";
    tl_json_pointer_append(built, sizeof(built), "metadata");
    tl_json_pointer_append(built, sizeof(built), "annotations");
    tl_json_pointer_append(built, sizeof(built), "tailor.dev/ignore");
    cJSON *got = NULL;
    assert_int_equal(tl_json_pointer_get(doc, built, &got), TL_OK);
    assert_string_equal(cJSON_GetStringValue(got), "true");
    cJSON_Delete(doc);

    /* "/a~1b" needs 6 bytes with the NUL: 5 is too small and leaves the buffer alone. */
    char small[5] = "";
    assert_int_equal(tl_json_pointer_append(small, sizeof(small), "a/b"), TL_ETOOBIG);
    assert_string_equal(small, "");
    char exact[6] = "";
    assert_int_equal(tl_json_pointer_append(exact, sizeof(exact), "a/b"), TL_OK);
    assert_string_equal(exact, "/a~1b");
    assert_int_equal(tl_json_pointer_append(exact, sizeof(exact), ""), TL_ETOOBIG);
    assert_string_equal(exact, "/a~1b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_resolves_every_rfc6901_example, doc_setup,
                                        doc_teardown),
        cmocka_unit_test_setup_teardown(test_get_reports_invalid_and_missing, doc_setup,
                                        doc_teardown),
        cmocka_unit_test_setup_teardown(test_getn_resolves_a_prefix, doc_setup, doc_teardown),
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_token_dup_unescapes_in_rfc_order),
        cmocka_unit_test(test_append_escapes_kubernetes_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
