#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"
#include "json.h"
#include "yaml_json.h"

/* A Recommendation as the operator writes it: an app container with a CPU limit the advice
 * removes, a sidecar, and an init container without history. */
static const char rec_text[] =
    "{\"apiVersion\":\"tailor.dev/v1alpha1\",\"kind\":\"Recommendation\","
    "\"metadata\":{\"name\":\"deployment-web\",\"namespace\":\"shop\"},"
    "\"spec\":{\"targetRef\":{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"web\"},"
    "\"approval\":{\"approvedRevision\":3}},"
    "\"status\":{\"revision\":4,\"phase\":\"Pending\",\"confidence\":\"High\","
    "\"explanation\":\"p95 CPU 212m over 14d;\\nplus headroom\","
    "\"savings\":{\"monthlyUSD\":\"61.20\"},"
    "\"containers\":["
    "{\"name\":\"web\",\"type\":\"Container\","
    "\"current\":{\"requests\":{\"cpu\":\"1\",\"memory\":\"2Gi\"},"
    "\"limits\":{\"cpu\":\"2\",\"memory\":\"2Gi\"}},"
    "\"recommended\":{\"requests\":{\"cpu\":\"250m\",\"memory\":\"640Mi\"},"
    "\"limits\":{\"memory\":\"768Mi\"}},\"usage\":{\"samples\":20160}},"
    "{\"name\":\"proxy\",\"type\":\"Sidecar\","
    "\"current\":{\"requests\":{\"cpu\":\"100m\"},\"limits\":{}},"
    "\"recommended\":{\"requests\":{\"cpu\":\"20m\",\"memory\":\"64Mi\"},\"limits\":{}},"
    "\"usage\":{\"samples\":20160}},"
    "{\"name\":\"setup\",\"type\":\"Init\","
    "\"current\":{\"requests\":{\"cpu\":\"10m\"},\"limits\":{}},"
    "\"recommended\":{\"requests\":{\"cpu\":\"10m\"},\"limits\":{}}}]}}";

static cJSON *parse(const char *text)
{
    cJSON *doc = cJSON_Parse(text);
    assert_non_null(doc);
    return doc;
}

static int setup(void **state)
{
    *state = parse(rec_text);
    return 0;
}

static int teardown(void **state)
{
    cJSON_Delete(*state);
    return 0;
}

static void test_select(void **state)
{
    cJSON *rec = *state;
    assert_int_equal(tl_export_select(rec, false), TL_EXPORT_TAKE);
    /* Revision 3 is approved, 4 is current: not approved. */
    assert_int_equal(tl_export_select(rec, true), TL_EXPORT_NOT_APPROVED);
    assert_int_equal(tl_json_member_set(tl_json_get(rec, "spec", "approval", NULL),
                                        "approvedRevision", cJSON_CreateNumber(4)),
                     TL_OK);
    assert_int_equal(tl_export_select(rec, true), TL_EXPORT_TAKE);

    cJSON *status = cJSON_GetObjectItemCaseSensitive(rec, "status");
    tl_json_member_set(status, "phase", cJSON_CreateString("UpToDate"));
    assert_int_equal(tl_export_select(rec, false), TL_EXPORT_UP_TO_DATE);
    /* An approved revision is exported even when it already is what runs. */
    assert_int_equal(tl_export_select(rec, true), TL_EXPORT_TAKE);

    tl_json_member_set(status, "confidence", cJSON_CreateString("None"));
    assert_int_equal(tl_export_select(rec, false), TL_EXPORT_NO_ADVICE);

    cJSON *target = tl_json_get(rec, "spec", "targetRef", NULL);
    tl_json_member_set(target, "kind", cJSON_CreateString("NodePool"));
    assert_int_equal(tl_export_select(rec, false), TL_EXPORT_NOT_WORKLOAD);

    cJSON *fresh = parse("{\"metadata\":{\"namespace\":\"a\"},\"spec\":{\"targetRef\":{"
                         "\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"name\":\"db\"}}}");
    assert_int_equal(tl_export_select(fresh, false), TL_EXPORT_NO_ADVICE);
    cJSON_Delete(fresh);
}

static void test_patch(void **state)
{
    cJSON *patch = tl_export_patch(*state);
    assert_non_null(patch);
    cJSON *expected = parse("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\","
                            "\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\"},"
                            "\"spec\":{\"template\":{\"spec\":{"
                            "\"containers\":[{\"name\":\"web\",\"resources\":{"
                            "\"requests\":{\"cpu\":\"250m\",\"memory\":\"640Mi\"},"
                            "\"limits\":{\"cpu\":null,\"memory\":\"768Mi\"}}}],"
                            "\"initContainers\":[{\"name\":\"proxy\",\"resources\":{"
                            "\"requests\":{\"cpu\":\"20m\",\"memory\":\"64Mi\"},"
                            "\"limits\":{\"cpu\":null,\"memory\":null}}}]}}}}");
    assert_true(tl_json_equal(patch, expected));
    /* Members in the order people write them. */
    assert_string_equal(patch->child->string, "apiVersion");
    assert_string_equal(patch->child->next->string, "kind");
    cJSON_Delete(expected);
    cJSON_Delete(patch);
}

static char *written(enum tl_err (*fn)(FILE *, const void *), const void *arg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(fn(out, arg), TL_OK);
    assert_int_equal(fclose(out), 0);
    return text;
}

static enum tl_err write_patch(FILE *out, const void *rec)
{
    cJSON *patch = tl_export_patch(rec);
    assert_non_null(patch);
    enum tl_err result = tl_export_write_patch(out, rec, patch);
    cJSON_Delete(patch);
    return result;
}

static void test_patch_file(void **state)
{
    char *text = written(write_patch, *state);
    const char *head = "# Tailor recommendation shop/deployment-web, revision 4, confidence High.\n"
                       "# p95 CPU 212m over 14d; plus headroom\n"
                       "# Estimated savings: $61.20/month.\n";
    assert_true(strncmp(text, head, strlen(head)) == 0);
    assert_non_null(strstr(text, "\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
                                 "  namespace: shop\n"));
    /* The YAML is the patch, nulls included. */
    cJSON *docs = NULL;
    char err[200] = "";
    assert_int_equal(tl_yaml_to_json(text, strlen(text), &docs, err, sizeof(err)), TL_OK);
    cJSON *patch = tl_export_patch(*state);
    assert_true(tl_json_equal(cJSON_GetArrayItem(docs, 0), patch));
    cJSON_Delete(patch);
    cJSON_Delete(docs);
    free(text);
}

struct kustomization_args {
    const cJSON *previous;
};

static enum tl_err write_kustomization(FILE *out, const void *arg)
{
    const struct kustomization_args *a = arg;
    static const char *const names[] = {"deployment-a.yaml", "statefulset-b.yaml"};
    return tl_export_write_kustomization(out, "shop", names, 2, a->previous);
}

static void test_kustomization(void **state)
{
    (void)state;
    struct kustomization_args args = {NULL};
    char *text = written(write_kustomization, &args);
    assert_non_null(strstr(text, "# resources:\n# - ../../base\n"));
    assert_non_null(strstr(text, "apiVersion: kustomize.config.k8s.io/v1beta1\n"
                                 "kind: Kustomization\n"
                                 "patches:\n"
                                 "- path: deployment-a.yaml\n"
                                 "- path: statefulset-b.yaml\n"));
    free(text);

    /* A later run keeps what the user added and replaces the patches. */
    cJSON *previous = parse("{\"apiVersion\":\"kustomize.config.k8s.io/v1beta1\",\"kind\":"
                            "\"Kustomization\",\"resources\":[\"../../base/shop\"],\"patches\":"
                            "[{\"path\":\"deployment-old.yaml\"}],\"namespace\":\"shop\"}");
    args.previous = previous;
    text = written(write_kustomization, &args);
    assert_null(strstr(text, "# resources:"));
    assert_null(strstr(text, "deployment-old.yaml"));
    cJSON *docs = NULL;
    char err[200] = "";
    assert_int_equal(tl_yaml_to_json(text, strlen(text), &docs, err, sizeof(err)), TL_OK);
    cJSON *expected = parse("{\"apiVersion\":\"kustomize.config.k8s.io/v1beta1\",\"kind\":"
                            "\"Kustomization\",\"resources\":[\"../../base/shop\"],\"namespace\":"
                            "\"shop\",\"patches\":[{\"path\":\"deployment-a.yaml\"},{\"path\":"
                            "\"statefulset-b.yaml\"}]}");
    assert_true(tl_json_equal(cJSON_GetArrayItem(docs, 0), expected));
    cJSON_Delete(expected);
    cJSON_Delete(docs);
    cJSON_Delete(previous);
    free(text);
}

static void test_apply_to_manifest(void **state)
{
    cJSON *manifest =
        parse("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\"},"
              "\"spec\":{\"template\":{\"spec\":{"
              "\"containers\":[{\"name\":\"web\",\"image\":\"nginx\",\"resources\":{"
              "\"requests\":{\"cpu\":\"1\",\"memory\":\"2Gi\",\"ephemeral-storage\":\"1Gi\"},"
              "\"limits\":{\"cpu\":2,\"memory\":\"2048Mi\"}}},"
              "{\"name\":\"other\",\"image\":\"busybox\"}],"
              "\"initContainers\":[{\"name\":\"proxy\",\"restartPolicy\":\"Always\"},"
              "{\"name\":\"setup\",\"resources\":{\"requests\":{\"cpu\":\"10m\"}}}]}}}}");
    assert_int_equal(tl_export_apply(manifest, *state), 2);
    cJSON *expected =
        parse("{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\"},"
              "\"spec\":{\"template\":{\"spec\":{"
              "\"containers\":[{\"name\":\"web\",\"image\":\"nginx\",\"resources\":{"
              "\"requests\":{\"cpu\":\"250m\",\"memory\":\"640Mi\",\"ephemeral-storage\":\"1Gi\"},"
              "\"limits\":{\"memory\":\"768Mi\"}}},"
              "{\"name\":\"other\",\"image\":\"busybox\"}],"
              "\"initContainers\":[{\"name\":\"proxy\",\"restartPolicy\":\"Always\",\"resources\":{"
              "\"requests\":{\"cpu\":\"20m\",\"memory\":\"64Mi\"}}},"
              "{\"name\":\"setup\",\"resources\":{\"requests\":{\"cpu\":\"10m\"}}}]}}}}");
    assert_true(tl_json_equal(manifest, expected));
    /* Applying again changes nothing. */
    assert_int_equal(tl_export_apply(manifest, *state), 0);
    cJSON_Delete(expected);
    cJSON_Delete(manifest);
}

static void test_apply_keeps_the_authors_spelling(void **state)
{
    cJSON *manifest =
        parse("{\"spec\":{\"template\":{\"spec\":{\"containers\":[{\"name\":\"web\","
              "\"resources\":{\"requests\":{\"cpu\":\"0.25\",\"memory\":\"655360Ki\"},"
              "\"limits\":{\"memory\":\"768Mi\"}}}]}}}}");
    /* Same amounts, written another way: nothing to change. */
    assert_int_equal(tl_export_apply(manifest, *state), 0);
    assert_string_equal(tl_json_get(manifest, "spec", "template", "spec", "containers", "0",
                                    "resources", "requests", "cpu", NULL)
                            ->valuestring,
                        "0.25");
    cJSON_Delete(manifest);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_select, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch_file, setup, teardown),
        cmocka_unit_test(test_kustomization),
        cmocka_unit_test_setup_teardown(test_apply_to_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_keeps_the_authors_spelling, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
