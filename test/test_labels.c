#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "labels.h"

static struct tl_labels labels_of(const char *json)
{
    cJSON *doc = cJSON_Parse(json);
    assert_non_null(doc);
    struct tl_labels labels;
    assert_int_equal(tl_labels_from_json(doc, &labels), TL_OK);
    cJSON_Delete(doc);
    return labels;
}

/* Compiles a selector from JSON text; returns the error and leaves the message in errbuf. */
static enum tl_err compile(const char *json, struct tl_selector *out, char *errbuf, size_t len)
{
    cJSON *doc = json ? cJSON_Parse(json) : NULL;
    if (json)
        assert_non_null(doc);
    enum tl_err result = tl_selector_parse(doc, "spec.selector", out, errbuf, len);
    cJSON_Delete(doc);
    return result;
}

static bool selects(const char *selector_json, const char *labels_json)
{
    char err[256] = "";
    struct tl_selector selector;
    assert_int_equal(compile(selector_json, &selector, err, sizeof(err)), TL_OK);
    struct tl_labels labels = labels_of(labels_json);
    bool hit = tl_selector_matches(&selector, &labels);
    tl_labels_free(&labels);
    tl_selector_free(&selector);
    return hit;
}

static void test_labels_lookup_is_by_exact_key(void **state)
{
    (void)state;
    struct tl_labels labels = labels_of("{\"tier\":\"web\",\"app\":\"shop\",\"app.kubernetes.io/"
                                        "name\":\"x\",\"n\":5}");
    assert_int_equal(labels.count, 3); /* the non-string value is not a label */
    assert_string_equal(tl_labels_get(&labels, "tier"), "web");
    assert_string_equal(tl_labels_get(&labels, "app.kubernetes.io/name"), "x");
    assert_null(tl_labels_get(&labels, "ap"));
    struct tl_labels same = labels_of("{\"app\":\"shop\",\"app.kubernetes.io/name\":\"x\","
                                      "\"tier\":\"web\"}");
    assert_true(tl_labels_equal(&labels, &same));
    tl_labels_free(&same);
    same = labels_of("{\"app\":\"shop\",\"app.kubernetes.io/name\":\"y\",\"tier\":\"web\"}");
    assert_false(tl_labels_equal(&labels, &same));
    tl_labels_free(&same);
    tl_labels_free(&labels);
}

/* Semantics from the Kubernetes docs, "Labels and Selectors" (set-based requirements). */
static void test_selector_semantics_follow_kubernetes(void **state)
{
    (void)state;
    const char *web = "{\"tier\":\"web\",\"env\":\"prod\"}";
    assert_true(selects(NULL, web));  /* absent selector: everything */
    assert_true(selects("{}", web));  /* empty selector: everything */
    assert_true(selects("{}", "{}")); /* ... even unlabelled objects */
    assert_true(selects("{\"matchLabels\":{\"tier\":\"web\"}}", web));
    assert_false(selects("{\"matchLabels\":{\"tier\":\"api\"}}", web));
    assert_false(selects("{\"matchLabels\":{\"tier\":\"web\",\"team\":\"a\"}}", web));
    assert_true(selects("{\"matchExpressions\":[{\"key\":\"env\",\"operator\":\"In\","
                        "\"values\":[\"qa\",\"prod\"]}]}",
                        web));
    assert_false(selects("{\"matchExpressions\":[{\"key\":\"env\",\"operator\":\"NotIn\","
                         "\"values\":[\"qa\",\"prod\"]}]}",
                         web));
    /* NotIn matches objects without the key at all. */
    assert_true(selects("{\"matchExpressions\":[{\"key\":\"team\",\"operator\":\"NotIn\","
                        "\"values\":[\"a\"]}]}",
                        web));
    assert_true(
        selects("{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"Exists\"}]}", web));
    assert_false(selects("{\"matchExpressions\":[{\"key\":\"tier\",\"operator\":"
                         "\"DoesNotExist\"}]}",
                         web));
    /* matchLabels and matchExpressions are ANDed. */
    assert_false(selects("{\"matchLabels\":{\"tier\":\"web\"},\"matchExpressions\":[{\"key\":"
                         "\"env\",\"operator\":\"In\",\"values\":[\"qa\"]}]}",
                         web));
}

static void test_invalid_selectors_name_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *message;
    } cases[] = {
        {"[]", "spec.selector: must be an object"},
        {"{\"matchLabels\":[]}", "spec.selector.matchLabels: must be a map of strings"},
        {"{\"matchLabels\":{\"tier\":5}}", "spec.selector.matchLabels.tier: must be a valid label "
                                           "value"},
        {"{\"matchLabels\":{\"bad key!\":\"x\"}}", "spec.selector.matchLabels: invalid label key "
                                                   "\"bad key!\""},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\"},{\"key\":\"b\","
         "\"operator\":\"Near\",\"values\":[\"x\"]}]}",
         "spec.selector.matchExpressions[1].operator: unsupported value \"Near\": supported "
         "values: \"In\", \"NotIn\", \"Exists\", \"DoesNotExist\""},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[]}]}",
         "spec.selector.matchExpressions[0].values: must be non-empty for operator \"In\""},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"Exists\",\"values\":[\"x\"]}]}",
         "spec.selector.matchExpressions[0].values: must be empty for operator \"Exists\""},
        {"{\"matchExpressions\":[{\"operator\":\"Exists\"}]}",
         "spec.selector.matchExpressions[0].key: must be a valid label key"},
        {"{\"matchExpressions\":[{\"key\":\"a\",\"operator\":\"In\",\"values\":[\"ok\",\"-no\"]}]"
         "}",
         "spec.selector.matchExpressions[0].values[1]: must be a valid label value"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[256] = "";
        struct tl_selector selector;
        assert_int_equal(compile(cases[i].json, &selector, err, sizeof(err)), TL_EINVAL);
        assert_string_equal(err, cases[i].message);
    }
}

static void test_selector_renders_query_syntax(void **state)
{
    (void)state;
    char err[256];
    struct tl_selector selector;
    assert_int_equal(compile("{\"matchLabels\":{\"tier\":\"web\"},\"matchExpressions\":[{\"key\":"
                             "\"env\",\"operator\":\"NotIn\",\"values\":[\"qa\",\"dev\"]},{\"key\""
                             ":\"canary\",\"operator\":\"DoesNotExist\"},{\"key\":\"team\","
                             "\"operator\":\"Exists\"}]}",
                             &selector, err, sizeof(err)),
                     TL_OK);
    char *text = tl_selector_to_string(&selector);
    assert_string_equal(text, "tier=web,env notin (dev,qa),!canary,team");
    free(text);
    tl_selector_free(&selector);
}

static void test_label_key_and_value_rules(void **state)
{
    (void)state;
    assert_true(tl_label_key_valid("app"));
    assert_true(tl_label_key_valid("app.kubernetes.io/name"));
    assert_true(tl_label_key_valid("tailor.dev/ignore"));
    assert_false(tl_label_key_valid(""));
    assert_false(tl_label_key_valid("/name"));
    assert_false(tl_label_key_valid("Example.COM/name")); /* prefix must be lower case */
    assert_false(tl_label_key_valid("a/b/c"));
    char long_name[70];
    memset(long_name, 'a', 64);
    long_name[64] = '\0';
    assert_false(tl_label_key_valid(long_name));
    assert_true(tl_label_value_valid(""));
    assert_true(tl_label_value_valid("v1.2_3-x"));
    assert_false(tl_label_value_valid("-x"));
    assert_false(tl_label_value_valid(long_name));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels_lookup_is_by_exact_key),
        cmocka_unit_test(test_selector_semantics_follow_kubernetes),
        cmocka_unit_test(test_invalid_selectors_name_the_field),
        cmocka_unit_test(test_selector_renders_query_syntax),
        cmocka_unit_test(test_label_key_and_value_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
