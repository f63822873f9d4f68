#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "webhook.h"

/* Reviews as the API server sends them (admission.k8s.io/v1 AdmissionReview). */
static cJSON *review_of(const char *ns, const char *spec, const char *operation)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":"
             "{\"uid\":\"705ab4f5-6393-11e8-b7cc-42010a800002\",\"operation\":\"%s\","
             "\"namespace\":\"%s\",\"object\":{\"apiVersion\":\"tailor.dev/v1alpha1\",\"kind\":"
             "\"OptimizationPolicy\",\"metadata\":{\"name\":\"p\",\"namespace\":\"%s\"},"
             "\"spec\":%s}}}",
             operation, ns, ns, spec);
    cJSON *doc = cJSON_Parse(text);
    assert_non_null(doc);
    return doc;
}

static bool allowed(const cJSON *answer, const char **message)
{
    const cJSON *response = cJSON_GetObjectItemCaseSensitive(answer, "response");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(response, "status");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(status, "message");
    *message = cJSON_IsString(msg) ? msg->valuestring : "";
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(response, "allowed"));
}

static void check(const char *ns, const char *spec, const char *operation, bool want,
                  const char *want_message)
{
    cJSON *review = review_of(ns, spec, operation);
    cJSON *answer = tl_webhook_review(review, "tailor-system");
    assert_non_null(answer);
    /* The answer echoes the request's uid, as the API server requires. */
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(
                            cJSON_GetObjectItemCaseSensitive(answer, "response"), "uid")
                            ->valuestring,
                        "705ab4f5-6393-11e8-b7cc-42010a800002");
    const char *message = NULL;
    assert_int_equal(allowed(answer, &message), want);
    if (want_message && strstr(message, want_message) == NULL)
        fail_msg("message \"%s\" lacks \"%s\"", message, want_message);
    cJSON_Delete(answer);
    cJSON_Delete(review);
}

static void test_valid_policies_are_allowed(void **state)
{
    (void)state;
    check("shop", "{\"selector\":{\"matchLabels\":{\"tier\":\"web\"}}}", "CREATE", true, NULL);
    check("tailor-system", "{\"namespaceSelector\":{},\"nodePools\":{}}", "UPDATE", true, NULL);
    check("shop", "{\"resources\":{\"cpu\":{\"percentile\":150}}}", "DELETE", true, NULL);
}

static void test_invalid_specs_are_refused_naming_the_field(void **state)
{
    (void)state;
    check("shop", "{\"resources\":{\"cpu\":{\"percentile\":150}}}", "CREATE", false,
          "spec.resources.cpu.percentile: must be between 50 and 100, got 150");
    check("shop", "{\"approval\":{\"window\":{\"schedule\":\"0 25 * * *\"}}}", "UPDATE", false,
          "spec.approval.window.schedule: field 2 (hour)");
}

static void test_scope_is_enforced_at_admission(void **state)
{
    (void)state;
    check("shop", "{\"namespaceSelector\":{\"matchLabels\":{\"team\":\"x\"}}}", "CREATE", false,
          "spec.namespaceSelector is honoured only for policies in the operator's namespace");
    check("shop", "{\"nodePools\":{}}", "CREATE", false, "spec.nodePools");
}

static void test_malformed_reviews_are_refused(void **state)
{
    (void)state;
    cJSON *review = cJSON_Parse("{\"request\":{\"object\":{}}}");
    cJSON *answer = tl_webhook_review(review, "tailor-system");
    const char *message = NULL;
    assert_false(allowed(answer, &message));
    assert_non_null(strstr(message, "request.uid"));
    cJSON_Delete(answer);
    cJSON_Delete(review);
    review = cJSON_Parse("{\"request\":{\"uid\":\"u\",\"operation\":\"CREATE\"}}");
    answer = tl_webhook_review(review, "tailor-system");
    assert_false(allowed(answer, &message));
    assert_non_null(strstr(message, "request.object"));
    cJSON_Delete(answer);
    cJSON_Delete(review);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_policies_are_allowed),
        cmocka_unit_test(test_invalid_specs_are_refused_naming_the_field),
        cmocka_unit_test(test_scope_is_enforced_at_admission),
        cmocka_unit_test(test_malformed_reviews_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
