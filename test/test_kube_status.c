#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "kube_status.h"

static void test_invalid_with_causes(void **state)
{
    const char *body =
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
        "\"message\":\"Recommendation.tailor.dev \\\"web\\\" is invalid\","
        "\"reason\":\"Invalid\",\"details\":{\"name\":\"web\",\"causes\":["
        "{\"reason\":\"FieldValueRequired\",\"message\":\"Required value\",\"field\":"
        "\"spec.targetRef.name\"},{\"message\":\"no field\"}]},\"code\":422}";
    struct tl_kube_status *st = tl_kube_status_parse(body, strlen(body), 422);
    assert_non_null(st);
    assert_int_equal(st->code, 422);
    assert_string_equal(st->reason, "Invalid");
    assert_string_equal(st->status, "Failure");
    assert_string_equal(st->message, "Recommendation.tailor.dev \"web\" is invalid");
    assert_int_equal(st->ncauses, 2);
    assert_string_equal(st->causes[0].field, "spec.targetRef.name");
    assert_string_equal(st->causes[0].message, "Required value");
    assert_string_equal(st->causes[0].reason, "FieldValueRequired");
    assert_null(st->causes[1].field);
    assert_true(st->retry_after < 0);
    char line[256];
    tl_kube_status_format(st, line, sizeof(line));
    assert_string_equal(line, "422 Invalid: Recommendation.tailor.dev \"web\" is invalid; field "
                              "spec.targetRef.name: Required value");
    tl_kube_status_destroy(st);
}

static void test_retry_after_seconds(void **state)
{
    const char *body =
        "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"TooManyRequests\","
        "\"message\":\"slow down\",\"details\":{\"retryAfterSeconds\":7},\"code\":429}";
    struct tl_kube_status *st = tl_kube_status_parse(body, strlen(body), 429);
    assert_int_equal(st->code, 429);
    assert_true(st->retry_after == 7.0);
    assert_true(tl_kube_status_retryable(st->code));
    tl_kube_status_destroy(st);
}

static void test_gone(void **state)
{
    const char *body = "{\"kind\":\"Status\",\"status\":\"Failure\",\"reason\":\"Expired\","
                       "\"message\":\"too old resource version: 1 (5)\",\"code\":410}";
    struct tl_kube_status *st = tl_kube_status_parse(body, strlen(body), 200);
    assert_int_equal(st->code, 410); /* from the body: an ERROR event arrives inside a 200 */
    assert_true(tl_kube_status_is_gone(st));
    tl_kube_status_destroy(st);

    cJSON *obj = cJSON_Parse("{\"kind\":\"Status\",\"reason\":\"NotFound\",\"code\":404}");
    st = tl_kube_status_from_json(obj, 200);
    assert_int_equal(st->code, 404);
    assert_false(tl_kube_status_is_gone(st));
    tl_kube_status_destroy(st);
    cJSON_Delete(obj);
}

static void test_non_json_bodies(void **state)
{
    const char *html = "<html><body>502 Bad Gateway</body></html>\nmore";
    struct tl_kube_status *st = tl_kube_status_parse(html, strlen(html), 502);
    assert_int_equal(st->code, 502);
    assert_null(st->reason);
    assert_string_equal(st->message, "<html><body>502 Bad Gateway</body></html>");
    char line[128];
    tl_kube_status_format(st, line, sizeof(line));
    assert_string_equal(line, "502 Error: <html><body>502 Bad Gateway</body></html>");
    tl_kube_status_destroy(st);

    st = tl_kube_status_parse("", 0, 500);
    assert_int_equal(st->code, 500);
    assert_null(st->message);
    tl_kube_status_destroy(st);

    /* JSON that is not a Status (a Pod, say) keeps the HTTP code and no fields. */
    const char *pod = "{\"kind\":\"Pod\",\"code\":7}";
    st = tl_kube_status_parse(pod, strlen(pod), 409);
    assert_int_equal(st->code, 409);
    tl_kube_status_destroy(st);

    char big[2000];
    memset(big, 'a', sizeof(big));
    st = tl_kube_status_parse(big, sizeof(big), 500);
    assert_int_equal(strlen(st->message), 512);
    tl_kube_status_destroy(st);
}

static void test_code_mapping(void **state)
{
    assert_int_equal(tl_kube_status_err(200), TL_OK);
    assert_int_equal(tl_kube_status_err(201), TL_OK);
    assert_int_equal(tl_kube_status_err(404), TL_ENOTFOUND);
    assert_int_equal(tl_kube_status_err(409), TL_ECONFLICT);
    assert_int_equal(tl_kube_status_err(410), TL_EGONE);
    assert_int_equal(tl_kube_status_err(401), TL_EAUTH);
    assert_int_equal(tl_kube_status_err(403), TL_EAUTH);
    assert_int_equal(tl_kube_status_err(422), TL_EINVAL);
    assert_int_equal(tl_kube_status_err(429), TL_EHTTP);
    assert_int_equal(tl_kube_status_err(500), TL_EHTTP);
    assert_int_equal(tl_kube_status_err(503), TL_EHTTP);
    assert_int_equal(tl_kube_status_err(504), TL_ETIMEDOUT);
    assert_true(tl_kube_status_retryable(429));
    assert_true(tl_kube_status_retryable(500));
    assert_true(tl_kube_status_retryable(503));
    assert_false(tl_kube_status_retryable(501));
    assert_false(tl_kube_status_retryable(404));
    assert_false(tl_kube_status_retryable(409));
    assert_false(tl_kube_status_retryable(422));
}

static void test_format_truncates(void **state)
{
    const char *body = "{\"kind\":\"Status\",\"reason\":\"Conflict\",\"message\":\"the object has "
                       "been modified; please apply your changes to the latest version\","
                       "\"code\":409}";
    struct tl_kube_status *st = tl_kube_status_parse(body, strlen(body), 409);
    char line[20];
    tl_kube_status_format(st, line, sizeof(line));
    assert_string_equal(line, "409 Conflict: the o");
    tl_kube_status_destroy(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_with_causes),
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_gone),
        cmocka_unit_test(test_non_json_bodies),
        cmocka_unit_test(test_code_mapping),
        cmocka_unit_test(test_format_truncates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
