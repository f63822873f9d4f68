/* kube_resource: REST paths, escaping, the built-in table and discovery lookups. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "kube_resource.h"

static struct tl_kube_resource builtin(const char *api_version, const char *name)
{
    struct tl_kube_resource r;
    assert_int_equal(tl_kube_resource_builtin(api_version, name, &r), TL_OK);
    return r;
}

static void test_paths(void **state)
{
    char buf[256];
    struct tl_kube_resource pods = builtin("v1", "Pod");
    struct tl_kube_resource deps = builtin("apps/v1", "deployments");
    struct tl_kube_resource pools = builtin("karpenter.sh/v1", "NodePool");
    struct tl_kube_resource recs = builtin("tailor.dev/v1alpha1", "Recommendation");

    assert_int_equal(tl_kube_resource_path(&pods, "shop", "web-1", NULL, buf, sizeof(buf)), TL_OK);
    assert_string_equal(buf, "/api/v1/namespaces/shop/pods/web-1");
    assert_int_equal(tl_kube_resource_path(&pods, NULL, NULL, NULL, buf, sizeof(buf)), TL_OK);
    assert_string_equal(buf, "/api/v1/pods");
    assert_int_equal(tl_kube_resource_path(&pods, "shop", NULL, NULL, buf, sizeof(buf)), TL_OK);
    assert_string_equal(buf, "/api/v1/namespaces/shop/pods");
    assert_int_equal(tl_kube_resource_path(&deps, "shop", "web", "status", buf, sizeof(buf)),
                     TL_OK);
    assert_string_equal(buf, "/apis/apps/v1/namespaces/shop/deployments/web/status");
    /* Cluster-scoped: a namespace is ignored. */
    assert_int_equal(tl_kube_resource_path(&pools, "shop", "default", NULL, buf, sizeof(buf)),
                     TL_OK);
    assert_string_equal(buf, "/apis/karpenter.sh/v1/nodepools/default");
    assert_int_equal(
        tl_kube_resource_path(&recs, "shop", "deployment-web", "status", buf, sizeof(buf)), TL_OK);
    assert_string_equal(buf, "/apis/tailor.dev/v1alpha1/namespaces/shop/recommendations/"
                             "deployment-web/status");
}

static void test_path_escaping_and_errors(void **state)
{
    char buf[256];
    struct tl_kube_resource pods = builtin("v1", "pods");
    assert_int_equal(tl_kube_resource_path(&pods, "shop", "a/b?c d", NULL, buf, sizeof(buf)),
                     TL_OK);
    assert_string_equal(buf, "/api/v1/namespaces/shop/pods/a%2Fb%3Fc%20d");
    assert_int_equal(tl_kube_resource_path(&pods, NULL, "web", NULL, buf, sizeof(buf)), TL_EINVAL);
    assert_int_equal(tl_kube_resource_path(&pods, "shop", "..", NULL, buf, sizeof(buf)), TL_EINVAL);
    assert_int_equal(tl_kube_resource_path(&pods, "shop", "", NULL, buf, sizeof(buf)), TL_EINVAL);
    assert_int_equal(tl_kube_resource_path(&pods, "shop", NULL, "status", buf, sizeof(buf)),
                     TL_EINVAL);
    char small[20];
    assert_int_equal(tl_kube_resource_path(&pods, "shop", "web", NULL, small, sizeof(small)),
                     TL_ETOOBIG);
}

static void test_query_add(void **state)
{
    char buf[64];
    size_t pos = 0;
    assert_int_equal(tl_kube_query_add(buf, sizeof(buf), &pos, "watch", "true"), TL_OK);
    assert_int_equal(tl_kube_query_add(buf, sizeof(buf), &pos, "skip", NULL), TL_OK);
    assert_int_equal(tl_kube_query_add(buf, sizeof(buf), &pos, "skip", ""), TL_OK);
    assert_int_equal(tl_kube_query_add(buf, sizeof(buf), &pos, "labelSelector", "a=b,c"), TL_OK);
    assert_string_equal(buf, "watch=true&labelSelector=a%3Db%2Cc");
    /* Too long: the query stays as it was. */
    assert_int_equal(
        tl_kube_query_add(buf, sizeof(buf), &pos, "x", "0123456789012345678901234567890123456789"),
        TL_ETOOBIG);
    assert_string_equal(buf, "watch=true&labelSelector=a%3Db%2Cc");
    size_t p2 = 0;
    char tiny[4];
    assert_int_equal(tl_kube_url_escape("a b", tiny, sizeof(tiny), &p2), TL_ETOOBIG);
    assert_int_equal(tl_kube_url_escape("ab~", tiny, sizeof(tiny), &p2), TL_OK);
    assert_string_equal(tiny, "ab~");
}

static void test_split_gv(void **state)
{
    char g[64], v[16];
    assert_int_equal(tl_kube_resource_split_gv("apps/v1", g, sizeof(g), v, sizeof(v)), TL_OK);
    assert_string_equal(g, "apps");
    assert_string_equal(v, "v1");
    assert_int_equal(tl_kube_resource_split_gv("v1", g, sizeof(g), v, sizeof(v)), TL_OK);
    assert_string_equal(g, "");
    assert_string_equal(v, "v1");
    assert_int_equal(tl_kube_resource_split_gv("a/b/c", g, sizeof(g), v, sizeof(v)), TL_EINVAL);
    assert_int_equal(tl_kube_resource_split_gv("/v1", g, sizeof(g), v, sizeof(v)), TL_EINVAL);
    assert_int_equal(tl_kube_resource_split_gv("apps/", g, sizeof(g), v, sizeof(v)), TL_EINVAL);
    assert_int_equal(tl_kube_resource_split_gv("", g, sizeof(g), v, sizeof(v)), TL_EINVAL);
    char path[64];
    assert_int_equal(tl_kube_discovery_path("v1", path, sizeof(path)), TL_OK);
    assert_string_equal(path, "/api/v1");
    assert_int_equal(tl_kube_discovery_path("karpenter.sh/v1", path, sizeof(path)), TL_OK);
    assert_string_equal(path, "/apis/karpenter.sh/v1");
}

static void test_builtin_unknown(void **state)
{
    struct tl_kube_resource r;
    assert_int_equal(tl_kube_resource_builtin("apps/v1", "Pod", &r), TL_ENOTFOUND);
    assert_int_equal(tl_kube_resource_builtin("example.com/v1", "Widget", &r), TL_ENOTFOUND);
}

static void test_discovery_lookup(void **state)
{
    cJSON *list = cJSON_Parse(
        "{\"kind\":\"APIResourceList\",\"groupVersion\":\"tailor.dev/v1alpha1\",\"resources\":["
        "{\"name\":\"optimizationpolicies\",\"singularName\":\"optimizationpolicy\","
        "\"namespaced\":true,\"kind\":\"OptimizationPolicy\",\"shortNames\":[\"optpol\"]},"
        "{\"name\":\"optimizationpolicies/status\",\"namespaced\":true,"
        "\"kind\":\"OptimizationPolicy\"},"
        "{\"name\":\"recommendations\",\"singularName\":\"recommendation\",\"namespaced\":true,"
        "\"kind\":\"Recommendation\",\"shortNames\":[\"rec\"]}]}");
    struct tl_kube_resource r;
    const char *names[] = {"OptimizationPolicy", "optimizationpolicies", "optimizationpolicy",
                           "optpol"};
    for (size_t i = 0; i < 4; i++) {
        memset(&r, 0, sizeof(r));
        assert_int_equal(tl_kube_resource_from_discovery(list, "tailor.dev/v1alpha1", names[i], &r),
                         TL_OK);
        assert_string_equal(r.resource, "optimizationpolicies");
        assert_string_equal(r.kind, "OptimizationPolicy");
        assert_string_equal(r.group, "tailor.dev");
        assert_string_equal(r.version, "v1alpha1");
        assert_true(r.namespaced);
    }
    assert_int_equal(tl_kube_resource_from_discovery(list, "tailor.dev/v1alpha1", "rec", &r),
                     TL_OK);
    assert_string_equal(r.resource, "recommendations");
    assert_int_equal(tl_kube_resource_from_discovery(list, "tailor.dev/v1alpha1",
                                                     "optimizationpolicies/status", &r),
                     TL_ENOTFOUND);
    assert_int_equal(tl_kube_resource_from_discovery(list, "tailor.dev/v1alpha1", "pods", &r),
                     TL_ENOTFOUND);
    cJSON_Delete(list);
    cJSON *junk = cJSON_Parse("{\"kind\":\"Status\"}");
    assert_int_equal(tl_kube_resource_from_discovery(junk, "v1", "pods", &r), TL_EINVAL);
    cJSON_Delete(junk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),           cmocka_unit_test(test_path_escaping_and_errors),
        cmocka_unit_test(test_query_add),       cmocka_unit_test(test_split_gv),
        cmocka_unit_test(test_builtin_unknown), cmocka_unit_test(test_discovery_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
