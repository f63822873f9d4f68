/* Tests for yaml_json: YAML 1.1 typing as Kubernetes reads it, anchors, merges and limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yaml_json.h"

static char err[512];

/* Converts text and returns the compact JSON of all documents; the caller frees. */
static char *convert(const char *text)
{
    cJSON *docs = NULL;
    enum tl_err result = tl_yaml_to_json(text, strlen(text), &docs, err, sizeof(err));
    if (result != TL_OK)
        fail_msg("conversion failed: %s", err);
    char *json = cJSON_PrintUnformatted(docs);
    cJSON_Delete(docs);
    assert_non_null(json);
    return json;
}

static void assert_json(const char *yaml, const char *want)
{
    char *got = convert(yaml);
    if (strcmp(got, want) != 0)
        fail_msg("YAML %s\n  gave %s\n  want %s", yaml, got, want);
    free(got);
}

static void assert_fails(const char *yaml, enum tl_err want, const char *msg)
{
    cJSON *docs = (cJSON *)&err; /* any non-NULL marker: must stay untouched */
    err[0] = '\0';
    assert_int_equal(tl_yaml_to_json(yaml, strlen(yaml), &docs, err, sizeof(err)), want);
    assert_ptr_equal(docs, (cJSON *)&err);
    if (!strstr(err, msg))
        fail_msg("message \"%s\" lacks \"%s\"", err, msg);
}

static void plain_scalars_are_typed_like_kubernetes(void **state)
{
    assert_json("a: yes\nb: Off\nc: TRUE\nd: n\ne: ~\nf:\ng: Null\n",
                "[{\"a\":true,\"b\":false,\"c\":true,\"d\":false,\"e\":null,\"f\":null,"
                "\"g\":null}]");
    assert_json("- 42\n- -7\n- +12\n- 0x1F\n- 010\n- 0o17\n- -0b11\n- 1_000\n- 09\n",
                "[[42,-7,12,31,8,15,-3,1000,9]]");
    assert_json("- 1.5e3\n- .5\n- -2.25\n- 1.\n", "[[1500,0.5,-2.25,1]]");
    /* Things that only look like numbers, and timestamps, stay strings. */
    assert_json("- 12abc\n- 1.2.3\n- 2024-01-02\n- 0x\n- 1e\n- yes please\n- 190:20:30\n",
                "[[\"12abc\",\"1.2.3\",\"2024-01-02\",\"0x\",\"1e\",\"yes please\","
                "\"190:20:30\"]]");
}

static void quoted_block_and_tagged_scalars_stay_strings(void **state)
{
    assert_json("a: \"yes\"\nb: '42'\nc: !!str 7\nd: |\n  line\ne: ! true\nf: !custom 3\n",
                "[{\"a\":\"yes\",\"b\":\"42\",\"c\":\"7\",\"d\":\"line\\n\",\"e\":\"true\","
                "\"f\":\"3\"}]");
    assert_json("a: !!int \"12\"\nb: !!float 3\nc: !!bool \"on\"\nd: !!null ''\n",
                "[{\"a\":12,\"b\":3,\"c\":true,\"d\":null}]");
    assert_fails("a: !!int twelve\n", TL_EINVAL, "line 1 column 4: cannot read \"twelve\" as");
}

static void keys_become_strings(void **state)
{
    assert_json("true: a\n0x10: b\n~: c\n1.5: d\n", "[{\"true\":\"a\",\"16\":\"b\",\"null\":\"c\","
                                                    "\"1.5\":\"d\"}]");
    assert_fails("? [a, b]\n: c\n", TL_EINVAL, "line 1 column 3: a mapping key must be a scalar");
}

static void repeated_key_keeps_the_last_value(void **state)
{
    assert_json("a: 1\nb: 2\na: 3\n", "[{\"b\":2,\"a\":3}]");
}

static void anchors_and_merge_keys_expand(void **state)
{
    assert_json("base: &b {cpu: 1, mem: 2}\n"
                "copy: *b\n"
                "tuned:\n  <<: *b\n  mem: 4\n"
                "first:\n  cpu: 9\n  <<: [*b, {gpu: 1}]\n",
                "[{\"base\":{\"cpu\":1,\"mem\":2},\"copy\":{\"cpu\":1,\"mem\":2},"
                "\"tuned\":{\"cpu\":1,\"mem\":4},\"first\":{\"cpu\":9,\"mem\":2,\"gpu\":1}}]");
    /* A quoted "<<" is an ordinary key. */
    assert_json("\"<<\": {a: 1}\n", "[{\"<<\":{\"a\":1}}]");
    /* Redefining an anchor: later aliases see the newer node. */
    assert_json("- &x 1\n- *x\n- &x 2\n- *x\n", "[[1,1,2,2]]");
    /* A merge source that is itself reused keeps its keys. */
    assert_json("a: &m {k: 1}\nb: {<<: *m}\nc: *m\n",
                "[{\"a\":{\"k\":1},\"b\":{\"k\":1},\"c\":{\"k\":1}}]");
    assert_fails("a: {<<: 5}\n", TL_EINVAL, "a merge key (<<) needs a mapping");
    assert_fails("a: *nope\n", TL_EINVAL, "line 1 column 4: unknown anchor \"nope\"");
}

static void billion_laughs_is_stopped(void **state)
{
    assert_fails("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                 "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                 "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                 "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                 "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                 "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
                 "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
                 "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
                 "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n",
                 TL_ETOOBIG, "aliases and merge keys expand past");
}

static void streams_give_one_element_per_document(void **state)
{
    assert_json("a: 1\n---\n---\n- x\n...\n", "[{\"a\":1},null,[\"x\"]]");
    assert_json("", "[]");
    assert_json("# only a comment\n", "[]");
    /* Anchors do not cross documents. */
    assert_fails("a: &x 1\n---\nb: *x\n", TL_EINVAL, "unknown anchor \"x\"");
}

static void json_input_with_tabs_parses(void **state)
{
    assert_json("{\n\t\"a\": [1, \"two\", true, null],\n\t\"b\": {\"c\": \"d\"}\n}\n",
                "[{\"a\":[1,\"two\",true,null],\"b\":{\"c\":\"d\"}}]");
}

static void syntax_errors_say_where(void **state)
{
    assert_fails("a: b: c\n", TL_EINVAL, "line 1 column 5: mapping values are not allowed");
    assert_fails("a:\n  - b\n c: d\n", TL_EINVAL, "line 3 column 2: ");
    assert_fails("a: \"unterminated\n", TL_EINVAL, "line 2 column 1: found unexpected end of");
    assert_fails("a: \xff\xfe\n", TL_EINVAL, "invalid");
}

static void unrepresentable_values_are_refused(void **state)
{
    assert_fails("a: .inf\n", TL_EINVAL, "line 1 column 4: .inf has no JSON representation");
    assert_fails("a: .NaN\n", TL_EINVAL, "has no JSON representation");
    assert_fails("a: \"x\\0y\"\n", TL_EINVAL, "NUL character");
}

static void depth_and_size_are_capped(void **state)
{
    char deep[2 * TL_YAML_MAX_DEPTH + 8];
    size_t n = 0;
    for (int i = 0; i < TL_YAML_MAX_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < TL_YAML_MAX_DEPTH; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    char *json = convert(deep);
    free(json);

    char deeper[2 * TL_YAML_MAX_DEPTH + 16];
    (void)snprintf(deeper, sizeof(deeper), "[%s]", deep);
    assert_fails(deeper, TL_ETOOBIG, "nested deeper than 128 levels");

    /* An alias may not smuggle in depth either. */
    char aliased[4 * TL_YAML_MAX_DEPTH + 32];
    (void)snprintf(aliased, sizeof(aliased), "- &d %.*s\n- [*d]\n", 2 * (TL_YAML_MAX_DEPTH - 1),
                   deep + 1);
    assert_fails(aliased, TL_ETOOBIG, "nested deeper");

    cJSON *docs = NULL;
    assert_int_equal(tl_yaml_to_json("a: 1", TL_YAML_MAX_INPUT + 1, &docs, err, sizeof(err)),
                     TL_ETOOBIG);
    assert_null(docs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plain_scalars_are_typed_like_kubernetes),
        cmocka_unit_test(quoted_block_and_tagged_scalars_stay_strings),
        cmocka_unit_test(keys_become_strings),
        cmocka_unit_test(repeated_key_keeps_the_last_value),
        cmocka_unit_test(anchors_and_merge_keys_expand),
        cmocka_unit_test(billion_laughs_is_stopped),
        cmocka_unit_test(streams_give_one_element_per_document),
        cmocka_unit_test(json_input_with_tabs_parses),
        cmocka_unit_test(syntax_errors_say_where),
        cmocka_unit_test(unrepresentable_values_are_refused),
        cmocka_unit_test(depth_and_size_are_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
