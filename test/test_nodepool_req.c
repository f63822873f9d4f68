#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "nodepool_req.h"

#define GIB INT64_C(1073741824)

static struct tl_nodepool_reqs parse_reqs(const char *json)
{
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    struct tl_nodepool_reqs reqs;
    char err[256] = "";
    enum tl_err rc =
        tl_nodepool_reqs_parse(root, "spec.template.spec.requirements", &reqs, err, sizeof(err));
    if (rc != TL_OK)
        fail_msg("parse failed: %s", err);
    cJSON_Delete(root);
    return reqs;
}

/* Parses a bad NodePool, expects TL_EINVAL, an untouched output and this message. */
static void expect_spec_error(const char *json, const char *message)
{
    cJSON *root = cJSON_Parse(json);
    assert_non_null(root);
    struct tl_nodepool_spec spec;
    memset(&spec, 0x5a, sizeof(spec));
    char err[256] = "";
    assert_int_equal(tl_nodepool_spec_parse(root, &spec, err, sizeof(err)), TL_EINVAL);
    assert_string_equal(err, message);
    assert_int_equal(spec.limit_nodes, (int64_t)0x5a5a5a5a5a5a5a5aLL);
    cJSON_Delete(root);
}

static bool allows(const struct tl_nodepool_reqs *reqs, const char *type)
{
    const struct tl_instance_type *t = tl_catalog_find(type);
    assert_non_null(t);
    return tl_nodepool_reqs_allow(reqs, t);
}

static void test_parses_a_nodepool(void **state)
{
    (void)state;
    cJSON *root = cJSON_Parse(
        "{\"metadata\":{\"name\":\"general\"},\"spec\":{\"template\":{\"spec\":{\"requirements\":["
        "{\"key\":\"karpenter.k8s.aws/instance-category\",\"operator\":\"In\","
        "\"values\":[\"c\",\"m\",\"r\"],\"minValues\":2},"
        "{\"key\":\"karpenter.k8s.aws/"
        "instance-generation\",\"operator\":\"Gt\",\"values\":[\"4\"]},"
        "{\"key\":\"karpenter.k8s.aws/"
        "instance-family\",\"operator\":\"Exists\",\"minValues\":5}]}},"
        "\"limits\":{\"cpu\":\"1000\",\"memory\":\"1000Gi\",\"nodes\":50},"
        "\"disruption\":{\"consolidationPolicy\":\"WhenEmpty\",\"consolidateAfter\":\"Never\"},"
        "\"weight\":10}}");
    assert_non_null(root);
    struct tl_nodepool_spec spec;
    char err[256] = "";
    assert_int_equal(tl_nodepool_spec_parse(root, &spec, err, sizeof(err)), TL_OK);
    cJSON_Delete(root); /* nothing in spec points into the JSON */
    assert_string_equal(spec.name, "general");
    assert_int_equal(spec.reqs.count, 3);
    assert_int_equal(spec.reqs.items[0].op, TL_REQ_IN);
    assert_int_equal(spec.reqs.items[0].nvalues, 3);
    assert_int_equal(spec.reqs.items[0].min_values, 2);
    assert_int_equal(spec.reqs.items[1].op, TL_REQ_GT);
    assert_int_equal(spec.reqs.items[1].number, 4);
    assert_int_equal(spec.reqs.items[2].op, TL_REQ_EXISTS);
    assert_int_equal(spec.reqs.items[2].min_values, 5);
    assert_int_equal(spec.limit_cpu_milli, 1000000);
    assert_int_equal(spec.limit_memory_bytes, 1000 * GIB);
    assert_int_equal(spec.limit_nodes, 50);
    assert_int_equal(spec.consolidation, TL_CONSOLIDATE_WHEN_EMPTY);
    assert_true(spec.consolidate_never);
    assert_int_equal(spec.weight, 10);

    struct tl_nodepool_spec copy;
    assert_int_equal(tl_nodepool_spec_copy(&spec, &copy), TL_OK);
    tl_nodepool_spec_free(&spec);
    assert_string_equal(copy.reqs.items[0].values[2], "r");
    tl_nodepool_spec_free(&copy);
    tl_nodepool_spec_free(NULL);
}

static void test_defaults_when_fields_are_absent(void **state)
{
    (void)state;
    cJSON *root = cJSON_Parse("{\"spec\":{\"template\":{\"spec\":{}}}}");
    struct tl_nodepool_spec spec;
    assert_int_equal(tl_nodepool_spec_parse(root, &spec, NULL, 0), TL_OK);
    assert_int_equal(spec.reqs.count, 0);
    assert_true(spec.limit_cpu_milli < 0 && spec.limit_memory_bytes < 0 && spec.limit_nodes < 0);
    assert_int_equal(spec.consolidation, TL_CONSOLIDATE_WHEN_EMPTY_OR_UNDERUTILIZED);
    /* No requirement at all: every type, both capacity types. */
    assert_true(allows(&spec.reqs, "m5.xlarge") && allows(&spec.reqs, "p5.48xlarge"));
    assert_int_equal(tl_nodepool_reqs_capacity(&spec.reqs),
                     TL_CAPACITY_ON_DEMAND | TL_CAPACITY_SPOT);
    tl_nodepool_spec_free(&spec);
    cJSON_Delete(root);
}

static void test_errors_name_the_field(void **state)
{
    (void)state;
#define REQ(body) "{\"spec\":{\"template\":{\"spec\":{\"requirements\":[" body "]}}}}"
    expect_spec_error(
        REQ("{\"key\":\"kubernetes.io/arch\",\"operator\":\"Like\",\"values\":[\"a\"]}"),
        "spec.template.spec.requirements[0].operator: expected In, NotIn, Exists, "
        "DoesNotExist, Gt, Lt, Gte or Lte");
    expect_spec_error(REQ("{\"key\":\"a\",\"operator\":\"Exists\"},"
                          "{\"key\":\"kubernetes.io/arch\",\"operator\":\"In\",\"values\":[]}"),
                      "spec.template.spec.requirements[1].values: operator In needs at least one "
                      "value");
    expect_spec_error(REQ("{\"key\":\"a\",\"operator\":\"Exists\",\"values\":[\"x\"]}"),
                      "spec.template.spec.requirements[0].values: must be empty for operator "
                      "Exists");
    expect_spec_error(REQ("{\"key\":\"karpenter.k8s.aws/instance-cpu\",\"operator\":\"Gt\","
                          "\"values\":[\"four\"]}"),
                      "spec.template.spec.requirements[0].values: operator Gt needs one "
                      "non-negative integer");
    expect_spec_error(REQ("{\"key\":\"karpenter.k8s.aws/instance-family\",\"operator\":\"In\","
                          "\"values\":[\"m5\",\"c5\"],\"minValues\":3}"),
                      "spec.template.spec.requirements[0].minValues: 3 is more than the 2 values "
                      "given");
    expect_spec_error(REQ("{\"key\":\"a\",\"operator\":\"Exists\",\"minValues\":51}"),
                      "spec.template.spec.requirements[0].minValues: must be an integer between 1 "
                      "and 50");
    expect_spec_error(REQ("{\"key\":\"no spaces\",\"operator\":\"Exists\"}"),
                      "spec.template.spec.requirements[0].key: expected a label key");
    expect_spec_error(REQ("{\"key\":\"a\",\"operator\":\"In\",\"values\":[1]}"),
                      "spec.template.spec.requirements[0].values[0]: expected a string");
#undef REQ
    expect_spec_error("{\"spec\":{\"limits\":{\"cpu\":\"lots\"}}}",
                      "spec.limits.cpu: \"lots\": no digits before \"lots\"");
    expect_spec_error("{\"spec\":{\"disruption\":{\"consolidationPolicy\":\"Sometimes\"}}}",
                      "spec.disruption.consolidationPolicy: expected WhenEmptyOrUnderutilized, "
                      "Balanced or WhenEmpty");
    expect_spec_error("{\"metadata\":{}}", "spec: expected an object");
}

static void test_labels_follow_karpenter(void **state)
{
    (void)state;
    char buf[64];
    const struct tl_instance_type *t = tl_catalog_find("m7i-flex.large");
    assert_non_null(t);
    assert_true(tl_nodepool_req_label(t, TL_LABEL_INSTANCE_CATEGORY, buf, sizeof(buf)));
    assert_string_equal(buf, "m");
    assert_true(tl_nodepool_req_label(t, TL_LABEL_INSTANCE_FAMILY, buf, sizeof(buf)));
    assert_string_equal(buf, "m7i-flex");
    assert_true(tl_nodepool_req_label(t, TL_LABEL_INSTANCE_SIZE, buf, sizeof(buf)));
    assert_string_equal(buf, "large");
    assert_true(tl_nodepool_req_label(t, TL_LABEL_INSTANCE_GENERATION, buf, sizeof(buf)));
    assert_string_equal(buf, "7");

    t = tl_catalog_find("u-6tb1.56xlarge"); /* letters, "-6tb", generation 1 */
    assert_non_null(t);
    assert_true(tl_nodepool_req_label(t, TL_LABEL_INSTANCE_CATEGORY, buf, sizeof(buf)));
    assert_string_equal(buf, "u");
    assert_true(tl_nodepool_req_label(t, TL_LABEL_INSTANCE_FAMILY, buf, sizeof(buf)));
    assert_string_equal(buf, "u-6tb1");
    t = tl_catalog_find("r5.4xlarge");
    assert_true(tl_nodepool_req_label(t, TL_LABEL_INSTANCE_MEMORY, buf, sizeof(buf)));
    assert_string_equal(buf, "131072"); /* MiB */
    assert_true(tl_nodepool_req_label(t, TL_LABEL_INSTANCE_CPU, buf, sizeof(buf)));
    assert_string_equal(buf, "16");
    assert_false(tl_nodepool_req_label(t, TL_LABEL_INSTANCE_GPU_COUNT, buf, sizeof(buf)));
    assert_true(
        tl_nodepool_req_label(tl_catalog_find("c6g.large"), TL_LABEL_ARCH, buf, sizeof(buf)));
    assert_string_equal(buf, "arm64");
    assert_false(tl_nodepool_req_label(t, "topology.kubernetes.io/zone", buf, sizeof(buf)));
}

static void test_matcher_allows_what_karpenter_would(void **state)
{
    (void)state;
    struct tl_nodepool_reqs reqs =
        parse_reqs("[{\"key\":\"karpenter.k8s.aws/instance-category\",\"operator\":\"In\","
                   "\"values\":[\"c\",\"m\",\"r\"]},"
                   "{\"key\":\"karpenter.k8s.aws/"
                   "instance-generation\",\"operator\":\"Gt\",\"values\":[\"5\"]},"
                   "{\"key\":\"kubernetes.io/arch\",\"operator\":\"In\",\"values\":[\"arm64\"]},"
                   "{\"key\":\"karpenter.k8s.aws/instance-size\",\"operator\":\"NotIn\","
                   "\"values\":[\"metal\"]},"
                   "{\"key\":\"topology.kubernetes.io/"
                   "zone\",\"operator\":\"In\",\"values\":[\"us-east-1a\"]}]");
    assert_true(allows(&reqs, "m6g.xlarge"));
    assert_true(allows(&reqs, "r7g.16xlarge"));
    assert_false(allows(&reqs, "m5.xlarge"));  /* generation 5 is not > 5 */
    assert_false(allows(&reqs, "c7i.xlarge")); /* amd64 */
    assert_false(allows(&reqs, "t4g.large"));  /* category t */
    assert_false(allows(&reqs, "m6g.metal"));
    tl_nodepool_reqs_free(&reqs);

    /* An absent label: DoesNotExist holds, Gt does not. */
    reqs = parse_reqs("[{\"key\":\"karpenter.k8s.aws/instance-gpu-count\","
                      "\"operator\":\"DoesNotExist\"}]");
    assert_true(allows(&reqs, "m5.xlarge"));
    assert_false(allows(&reqs, "g5.xlarge"));
    tl_nodepool_reqs_free(&reqs);
    reqs = parse_reqs("[{\"key\":\"karpenter.k8s.aws/instance-gpu-count\",\"operator\":\"Gte\","
                      "\"values\":[\"1\"]},{\"key\":\"karpenter.k8s.aws/instance-memory\","
                      "\"operator\":\"Lt\",\"values\":[\"20000\"]}]");
    assert_true(allows(&reqs, "g5.xlarge"));   /* 16384 MiB, one GPU */
    assert_false(allows(&reqs, "g5.2xlarge")); /* 32768 MiB */
    assert_false(allows(&reqs, "m5.xlarge"));
    tl_nodepool_reqs_free(&reqs);

    reqs = parse_reqs("[{\"key\":\"node.kubernetes.io/instance-type\",\"operator\":\"In\","
                      "\"values\":[\"m5.xlarge\",\"c6g.large\",\"no.such\"]}]");
    bool *allowed = calloc(tl_catalog_type_count, sizeof(*allowed));
    assert_non_null(allowed);
    assert_int_equal(tl_nodepool_reqs_select(&reqs, allowed), 2);
    assert_true(allowed[tl_catalog_find("c6g.large") - tl_catalog_types]);
    assert_true(allowed[tl_catalog_find("m5.xlarge") - tl_catalog_types]);
    assert_false(allowed[tl_catalog_find("m5.large") - tl_catalog_types]);
    free(allowed);
    tl_nodepool_reqs_free(&reqs);
}

static void test_capacity_types(void **state)
{
    (void)state;
    struct tl_nodepool_reqs reqs =
        parse_reqs("[{\"key\":\"karpenter.sh/capacity-type\",\"operator\":\"In\","
                   "\"values\":[\"on-demand\"]}]");
    assert_int_equal(tl_nodepool_reqs_capacity(&reqs), TL_CAPACITY_ON_DEMAND);
    assert_true(allows(&reqs, "m5.xlarge")); /* capacity type is not a type label */
    tl_nodepool_reqs_free(&reqs);
    reqs = parse_reqs("[{\"key\":\"karpenter.sh/capacity-type\",\"operator\":\"NotIn\","
                      "\"values\":[\"on-demand\"]}]");
    assert_int_equal(tl_nodepool_reqs_capacity(&reqs), TL_CAPACITY_SPOT);
    tl_nodepool_reqs_free(&reqs);
    reqs = parse_reqs("[{\"key\":\"karpenter.sh/capacity-type\",\"operator\":\"In\","
                      "\"values\":[\"reserved\"]}]");
    assert_int_equal(tl_nodepool_reqs_capacity(&reqs), 0);
    tl_nodepool_reqs_free(&reqs);
}

static void test_min_values(void **state)
{
    (void)state;
    char why[160] = "";
    struct tl_nodepool_reqs reqs =
        parse_reqs("[{\"key\":\"karpenter.k8s.aws/instance-category\",\"operator\":\"In\","
                   "\"values\":[\"c\"]},{\"key\":\"karpenter.k8s.aws/instance-family\","
                   "\"operator\":\"Exists\",\"minValues\":5}]");
    assert_true(tl_nodepool_reqs_min_values_met(&reqs, why, sizeof(why)));
    tl_nodepool_reqs_free(&reqs);

    /* Two m5 types are one family; the largest minValues for a key counts. */
    reqs = parse_reqs("[{\"key\":\"node.kubernetes.io/instance-type\",\"operator\":\"In\","
                      "\"values\":[\"m5.large\",\"m5.xlarge\",\"c5.large\"]},"
                      "{\"key\":\"karpenter.k8s.aws/instance-family\",\"operator\":\"Exists\","
                      "\"minValues\":1},"
                      "{\"key\":\"karpenter.k8s.aws/instance-family\",\"operator\":\"NotIn\","
                      "\"values\":[\"c5\"],\"minValues\":2}]");
    assert_false(tl_nodepool_reqs_min_values_met(&reqs, why, sizeof(why)));
    assert_string_equal(why, "karpenter.k8s.aws/instance-family has 1 value, minValues is 2");
    tl_nodepool_reqs_free(&reqs);
}

static void test_narrowing_keeps_min_values(void **state)
{
    (void)state;
    struct tl_nodepool_reqs reqs =
        parse_reqs("[{\"key\":\"karpenter.k8s.aws/instance-category\",\"operator\":\"In\","
                   "\"values\":[\"c\",\"m\",\"r\"]},{\"key\":\"karpenter.k8s.aws/instance-family\","
                   "\"operator\":\"Exists\",\"minValues\":3}]");
    const char *keep[] = {"m6a"};
    const char *extra[] = {"c6a", "r6a", "m7a", "c7a"};
    struct tl_nodepool_reqs narrowed;
    size_t used = 99;
    char err[200] = "";
    assert_int_equal(tl_nodepool_reqs_narrow(&reqs, TL_LABEL_INSTANCE_FAMILY, keep, 1, extra, 4,
                                             &narrowed, &used, err, sizeof(err)),
                     TL_OK);
    assert_int_equal(used, 2); /* m6a alone is one family; minValues 3 needs two more */
    assert_int_equal(narrowed.count, 3);
    char *text = tl_nodepool_req_to_string(&narrowed.items[2]);
    assert_string_equal(text, "karpenter.k8s.aws/instance-family In [c6a, m6a, r6a]");
    free(text);
    assert_true(tl_nodepool_reqs_min_values_met(&narrowed, NULL, 0));
    assert_true(allows(&narrowed, "r6a.large"));
    assert_false(allows(&narrowed, "m7a.large"));
    tl_nodepool_reqs_free(&narrowed);

    /* Not enough values to add back: refused, with the reason. */
    assert_int_equal(tl_nodepool_reqs_narrow(&reqs, TL_LABEL_INSTANCE_FAMILY, keep, 1, extra, 1,
                                             &narrowed, &used, err, sizeof(err)),
                     TL_ENOTFOUND);
    assert_string_equal(err, "narrowing karpenter.k8s.aws/instance-family cannot meet minValues: "
                             "karpenter.k8s.aws/instance-family has 2 values, minValues is 3");
    assert_int_equal(tl_nodepool_reqs_narrow(&reqs, TL_LABEL_CAPACITY_TYPE, keep, 1, NULL, 0,
                                             &narrowed, &used, err, sizeof(err)),
                     TL_EINVAL);
    tl_nodepool_reqs_free(&reqs);

    /* An existing In on the key has its values replaced and keeps its minValues. */
    reqs = parse_reqs("[{\"key\":\"karpenter.k8s.aws/instance-family\",\"operator\":\"In\","
                      "\"values\":[\"m5\",\"m6a\",\"c5\"],\"minValues\":2}]");
    const char *extra2[] = {"c5", "m5"};
    assert_int_equal(tl_nodepool_reqs_narrow(&reqs, TL_LABEL_INSTANCE_FAMILY, keep, 1, extra2, 2,
                                             &narrowed, &used, err, sizeof(err)),
                     TL_OK);
    assert_int_equal(narrowed.count, 1);
    text = tl_nodepool_req_to_string(&narrowed.items[0]);
    assert_string_equal(text, "karpenter.k8s.aws/instance-family In [c5, m6a] (minValues 2)");
    free(text);
    tl_nodepool_reqs_free(&narrowed);
    tl_nodepool_reqs_free(&reqs);
}

static void test_allow_spot(void **state)
{
    (void)state;
    struct tl_nodepool_reqs reqs =
        parse_reqs("[{\"key\":\"karpenter.sh/capacity-type\",\"operator\":\"NotIn\","
                   "\"values\":[\"spot\"]},{\"key\":\"kubernetes.io/arch\",\"operator\":\"In\","
                   "\"values\":[\"amd64\"]}]");
    struct tl_nodepool_reqs spot;
    assert_int_equal(tl_nodepool_reqs_allow_spot(&reqs, &spot), TL_OK);
    assert_int_equal(tl_nodepool_reqs_capacity(&spot), TL_CAPACITY_ON_DEMAND | TL_CAPACITY_SPOT);
    assert_int_equal(spot.count, 2);
    char *text = tl_nodepool_req_to_string(&spot.items[1]);
    assert_string_equal(text, "karpenter.sh/capacity-type In [on-demand, reserved, spot]");
    free(text);
    assert_false(allows(&spot, "m6g.large")); /* the arch requirement stays */
    tl_nodepool_reqs_free(&spot);
    tl_nodepool_reqs_free(&reqs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses_a_nodepool),
        cmocka_unit_test(test_defaults_when_fields_are_absent),
        cmocka_unit_test(test_errors_name_the_field),
        cmocka_unit_test(test_labels_follow_karpenter),
        cmocka_unit_test(test_matcher_allows_what_karpenter_would),
        cmocka_unit_test(test_capacity_types),
        cmocka_unit_test(test_min_values),
        cmocka_unit_test(test_narrowing_keeps_min_values),
        cmocka_unit_test(test_allow_spot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
