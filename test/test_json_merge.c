#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "json_merge.h"

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

struct merge_case {
    const char *name;
    const char *target;
    const char *patch;
    const char *result;
};

/* RFC 7386 Appendix A, all fifteen rows, then the section 3 example. */
static const struct merge_case rfc_cases[] = {
    {"A.1", "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
    {"A.2", "{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
    {"A.3", "{\"a\":\"b\"}", "{\"a\":null}", "{}"},
    {"A.4", "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
    {"A.5", "{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
    {"A.6", "{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
    {"A.7", "{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
    {"A.8", "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
    {"A.9", "[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"},
    {"A.10", "{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"},
    {"A.11", "{\"a\":\"foo\"}", "null", "null"},
    {"A.12", "{\"a\":\"foo\"}", "\"bar\"", "\"bar\""},
    {"A.13", "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
    {"A.14", "[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"},
    {"A.15", "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
    {"section 3",
     "{\"title\":\"Goodbye!\",\"author\":{\"givenName\":\"John\",\"familyName\":\"Doe\"},"
     "\"tags\":[\"example\",\"sample\"],\"content\":\"This will be unchanged\"}",
     "{\"title\":\"Hello!\",\"phoneNumber\":\"+01-123-456-7890\",\"author\":{\"familyName\":null},"
     "\"tags\":[\"example\"]}",
     "{\"title\":\"Hello!\",\"author\":{\"givenName\":\"John\"},\"tags\":[\"example\"],"
     "\"content\":\"This will be unchanged\",\"phoneNumber\":\"+01-123-456-7890\"}"},
};

static void test_apply_matches_every_rfc7386_example(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(rfc_cases) / sizeof(rfc_cases[0]); i++) {
        const struct merge_case *c = &rfc_cases[i];
        cJSON *target = parse(c->target);
        cJSON *patch = parse(c->patch);
        cJSON *want = parse(c->result);
        char *target_before = print(target);
        char *patch_before = print(patch);
        cJSON *got = NULL;
        assert_int_equal(tl_json_merge_patch_apply(target, patch, &got), TL_OK);
        if (!tl_json_equal(got, want)) {
            char *text = print(got);
            fail_msg("%s: got %s, want %s", c->name, text, c->result);
        }
        /* Inputs are never modified: the result is a new tree. */
        char *target_after = print(target);
        char *patch_after = print(patch);
        assert_string_equal(target_before, target_after);
        assert_string_equal(patch_before, patch_after);
        assert_ptr_not_equal(got, target);
        free(target_before);
        free(target_after);
        free(patch_before);
        free(patch_after);
        cJSON_Delete(got);
        cJSON_Delete(want);
        cJSON_Delete(patch);
        cJSON_Delete(target);
    }
}

static void test_apply_keeps_member_order_and_is_idempotent(void **state)
{
    (void)state;
    cJSON *target = parse("{\"a\":1,\"b\":{\"x\":1,\"y\":2},\"c\":3}");
    cJSON *patch = parse("{\"b\":{\"x\":null,\"z\":[null]},\"a\":5,\"d\":{\"e\":null,\"f\":1}}");
    cJSON *once = NULL;
    cJSON *twice = NULL;
    assert_int_equal(tl_json_merge_patch_apply(target, patch, &once), TL_OK);
    char *text = print(once);
    /* Replaced members stay where they were; nulls inside a new object are dropped, nulls
     * inside an array are data. */
    assert_string_equal(text, "{\"a\":5,\"b\":{\"y\":2,\"z\":[null]},\"c\":3,\"d\":{\"f\":1}}");
    free(text);
    assert_int_equal(tl_json_merge_patch_apply(once, patch, &twice), TL_OK);
    assert_true(tl_json_equal(once, twice));
    cJSON_Delete(twice);
    cJSON_Delete(once);
    cJSON_Delete(patch);
    cJSON_Delete(target);
}

static void test_apply_approves_a_recommendation(void **state)
{
    (void)state;
    /* The command the design gives for approving: kubectl patch --type merge. */
    cJSON *rec = parse("{\"spec\":{\"targetRef\":{\"kind\":\"Deployment\",\"name\":\"web\"},"
                       "\"approval\":{\"approvedRevision\":3}},\"status\":{\"revision\":4}}");
    cJSON *patch = parse("{\"spec\":{\"approval\":{\"approvedRevision\":4}}}");
    cJSON *got = NULL;
    assert_int_equal(tl_json_merge_patch_apply(rec, patch, &got), TL_OK);
    int64_t approved = 0;
    assert_int_equal(
        tl_json_int64(tl_json_get(got, "spec", "approval", NULL), "approvedRevision", 0, &approved),
        TL_OK);
    assert_int_equal(approved, 4);
    assert_string_equal(cJSON_GetStringValue(tl_json_get(got, "spec", "targetRef", "name", NULL)),
                        "web");
    cJSON_Delete(got);
    cJSON_Delete(patch);
    cJSON_Delete(rec);
}

static void test_apply_without_target_or_patch(void **state)
{
    (void)state;
    cJSON *patch = parse("{\"a\":{\"b\":null,\"c\":1}}");
    cJSON *got = NULL;
    assert_int_equal(tl_json_merge_patch_apply(NULL, patch, &got), TL_OK);
    char *text = print(got);
    assert_string_equal(text, "{\"a\":{\"c\":1}}");
    free(text);
    cJSON_Delete(got);
    got = NULL;
    assert_int_equal(tl_json_merge_patch_apply(patch, NULL, &got), TL_EINVAL);
    assert_null(got);
    cJSON_Delete(patch);
}

static void test_apply_fails_cleanly_without_memory(void **state)
{
    (void)state;
    cJSON *target = parse("{\"a\":{\"b\":[1,2],\"c\":\"d\"},\"e\":1,\"f\":{\"g\":2}}");
    cJSON *patch = parse("{\"a\":{\"b\":{\"x\":1},\"c\":null},\"e\":[3],\"h\":{\"i\":{\"j\":1}}}");
    char *before = print(target);
    long k;
    for (k = 0;; k++) {
        cJSON *got = NULL;
        fail_after(k);
        enum tl_err result = tl_json_merge_patch_apply(target, patch, &got);
        allocs_unlimited();
        char *now = print(target);
        assert_string_equal(now, before);
        free(now);
        if (result == TL_OK) {
            char *text = print(got);
            assert_string_equal(text, "{\"a\":{\"b\":{\"x\":1}},\"e\":[3],\"f\":{\"g\":2},"
                                      "\"h\":{\"i\":{\"j\":1}}}");
            free(text);
            cJSON_Delete(got);
            break;
        }
        assert_int_equal(result, TL_ENOMEM);
        assert_null(got);
    }
    assert_true(k > 10);
    free(before);
    cJSON_Delete(patch);
    cJSON_Delete(target);
}

/* ---- create ---- */

/* Asserts create(from, to) is exactly `patch` and that applying it to from gives to. */
static void assert_creates(const char *from_text, const char *to_text, const char *patch_text)
{
    cJSON *from = from_text ? parse(from_text) : NULL;
    cJSON *to = parse(to_text);
    cJSON *patch = NULL;
    cJSON *applied = NULL;
    char err[256] = "";
    enum tl_err result = tl_json_merge_patch_create(from, to, &patch, err, sizeof(err));
    if (result != TL_OK)
        fail_msg("create(%s, %s): %s: %s", from_text, to_text, tl_strerror(result), err);
    if (patch_text != NULL) {
        cJSON *want = parse(patch_text);
        if (!tl_json_equal(patch, want)) {
            char *got = print(patch);
            fail_msg("create(%s, %s) = %s, want %s", from_text, to_text, got, patch_text);
        }
        cJSON_Delete(want);
    }
    assert_int_equal(tl_json_merge_patch_apply(from, patch, &applied), TL_OK);
    if (!tl_json_equal(applied, to)) {
        char *got = print(applied);
        fail_msg("apply(%s, create(...)) = %s, want %s", from_text, got, to_text);
    }
    cJSON_Delete(applied);
    cJSON_Delete(patch);
    cJSON_Delete(to);
    cJSON_Delete(from);
}

static void test_create_sends_only_what_changed(void **state)
{
    (void)state;
    assert_creates("{\"a\":1,\"b\":{\"c\":2,\"d\":3},\"e\":[1,2]}",
                   "{\"a\":1,\"b\":{\"c\":2,\"d\":4},\"e\":[1,2,3],\"f\":\"new\"}",
                   "{\"b\":{\"d\":4},\"e\":[1,2,3],\"f\":\"new\"}");
    assert_creates("{\"a\":1,\"b\":2}", "{\"a\":1}", "{\"b\":null}");
    assert_creates("{\"a\":{\"b\":{\"c\":1}}}", "{\"a\":{\"b\":{}}}",
                   "{\"a\":{\"b\":{\"c\":null}}}");
    assert_creates("{\"a\":1,\"b\":[1,{\"x\":1}]}", "{\"b\":[1,{\"x\":1}],\"a\":1}", "{}");
    /* Arrays go whole, even when one element changed. */
    assert_creates("{\"l\":[1,2,3]}", "{\"l\":[1,5,3]}", "{\"l\":[1,5,3]}");
    /* 1 and 1.0 are the same JSON number. */
    assert_creates("{\"n\":1}", "{\"n\":1.0}", "{}");
}

static void test_create_replaces_whole_when_not_both_objects(void **state)
{
    (void)state;
    assert_creates("{\"a\":[1]}", "{\"a\":{\"x\":1}}", "{\"a\":{\"x\":1}}");
    assert_creates("{\"a\":{\"x\":1}}", "{\"a\":\"s\"}", "{\"a\":\"s\"}");
    assert_creates("{\"a\":\"s\"}", "{\"a\":{}}", "{\"a\":{}}");
    assert_creates("[1,2]", "{\"a\":1}", "{\"a\":1}");
    assert_creates("{\"a\":1}", "[1]", "[1]");
    assert_creates("{\"a\":1}", "null", "null");
    assert_creates("\"x\"", "\"x\"", "\"x\"");
    assert_creates(NULL, "{\"a\":{\"b\":1}}", "{\"a\":{\"b\":1}}");
    assert_creates(NULL, "[null]", "[null]");
}

static void test_create_round_trips(void **state)
{
    (void)state;
    static const char deployment_before[] =
        "{\"metadata\":{\"annotations\":{\"tailor.dev/ignore\":\"true\",\"a.b\":\"c\"},"
        "\"labels\":{\"app\":\"web\"}},\"spec\":{\"replicas\":3,\"template\":{\"spec\":"
        "{\"containers\":[{\"name\":\"web\",\"resources\":{\"requests\":{\"cpu\":\"1\"}}}]}}}}";
    static const char deployment_after[] =
        "{\"metadata\":{\"annotations\":{\"tailor.dev/ignore\":\"false\"}},\"spec\":"
        "{\"replicas\":3,\"template\":{\"spec\":{\"containers\":[{\"name\":\"web\",\"resources\":"
        "{\"requests\":{\"cpu\":\"250m\",\"memory\":\"640Mi\"}}}]}}}}";
    const char *const docs[] = {
        "{}",
        "{\"a\":null}",
        "{\"a\":null,\"b\":1}",
        deployment_before,
        deployment_after,
        "{\"a\":[{\"x\":null}],\"b\":{\"c\":{\"d\":[]}},\"e\":\"\"}",
        "{\"a\":{\"b\":{\"c\":{\"d\":1}}},\"z\":false}",
        "[1,2,3]",
        "\"text\"",
        "0",
        "true",
        "{\"a\":1,\"b\":{\"c\":2}}",
    };
    size_t n = sizeof(docs) / sizeof(docs[0]);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            /* docs[1] and docs[2] hold nulls: only reachable from a document with the same null */
            if ((j == 1 || j == 2) && i != 1 && i != 2)
                continue;
            assert_creates(docs[i], docs[j], NULL);
        }
    }
}

static void test_create_refuses_nulls_a_merge_patch_cannot_set(void **state)
{
    (void)state;
    static const struct {
        const char *from;
        const char *to;
        const char *err;
    } cases[] = {
        {"{}", "{\"a\":null}", "/a is null in the target"},
        {"{\"a\":{\"b\":1}}", "{\"a\":{\"b\":null}}", "/a/b is null in the target"},
        {"{\"x\":1}", "{\"x\":{\"y\":{\"z\":null}}}", "/x/y/z is null in the target"},
        {"{}", "{\"tailor.dev/x\":{\"k~\":null}}", "/tailor.dev~1x/k~0 is null in the target"},
        {"[1]", "{\"a\":null}", "/a is null in the target"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cJSON *from = parse(cases[i].from);
        cJSON *to = parse(cases[i].to);
        cJSON *sentinel = (cJSON *)&sentinel;
        cJSON *patch = sentinel;
        char err[256] = "";
        assert_int_equal(tl_json_merge_patch_create(from, to, &patch, err, sizeof(err)), TL_EINVAL);
        assert_ptr_equal(patch, sentinel);
        if (strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
            fail_msg("create(%s, %s): \"%s\", want \"%s...\"", cases[i].from, cases[i].to, err,
                     cases[i].err);
        cJSON_Delete(to);
        cJSON_Delete(from);
    }
    /* The same null on both sides needs no patch entry. */
    assert_creates("{\"a\":null}", "{\"a\":null,\"b\":1}", "{\"b\":1}");
}

static void test_create_fails_cleanly_without_memory(void **state)
{
    (void)state;
    cJSON *from = parse("{\"a\":{\"b\":1,\"c\":[1]},\"d\":1,\"gone\":true}");
    cJSON *to = parse("{\"a\":{\"b\":2,\"c\":[1]},\"d\":{\"e\":[1,2]},\"new\":\"x\"}");
    long k;
    for (k = 0;; k++) {
        cJSON *patch = NULL;
        fail_after(k);
        enum tl_err result = tl_json_merge_patch_create(from, to, &patch, NULL, 0);
        allocs_unlimited();
        if (result == TL_OK) {
            char *text = print(patch);
            assert_string_equal(
                text, "{\"gone\":null,\"a\":{\"b\":2},\"d\":{\"e\":[1,2]},\"new\":\"x\"}");
            free(text);
            cJSON_Delete(patch);
            break;
        }
        assert_int_equal(result, TL_ENOMEM);
        assert_null(patch);
    }
    assert_true(k > 5);
    cJSON_Delete(to);
    cJSON_Delete(from);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_apply_matches_every_rfc7386_example),
        cmocka_unit_test(test_apply_keeps_member_order_and_is_idempotent),
        cmocka_unit_test(test_apply_approves_a_recommendation),
        cmocka_unit_test(test_apply_without_target_or_patch),
        cmocka_unit_test(test_apply_fails_cleanly_without_memory),
        cmocka_unit_test(test_create_sends_only_what_changed),
        cmocka_unit_test(test_create_replaces_whole_when_not_both_objects),
        cmocka_unit_test(test_create_round_trips),
        cmocka_unit_test(test_create_refuses_nulls_a_merge_patch_cannot_set),
        cmocka_unit_test(test_create_fails_cleanly_without_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
