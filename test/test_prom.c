#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "prom.h"

/* Shapes as documented in the Prometheus HTTP API reference ("Expression queries"). */
static enum tl_err parse(const char *body, struct tl_prom_result *out, char *err, size_t len)
{
    return tl_prom_parse(body, strlen(body), out, err, len);
}

static void test_parses_a_matrix(void **state)
{
    (void)state;
    const char *body =
        "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":["
        "{\"metric\":{\"pod\":\"web-1\",\"namespace\":\"shop\",\"container\":\"web\"},"
        "\"values\":[[1435781430.781,\"0.25\"],[1435781445.781,\"1.5e-3\"]]},"
        "{\"metric\":{\"pod\":\"web-2\",\"namespace\":\"shop\",\"container\":\"web\"},"
        "\"values\":[[1435781430.781,\"NaN\"],[1435781445.781,\"+Inf\"],[1435781460.781,\"3\"]]}"
        "]}}";
    struct tl_prom_result result;
    char err[256] = "";
    assert_int_equal(parse(body, &result, err, sizeof(err)), TL_OK);
    assert_int_equal(result.count, 2);
    assert_int_equal(result.samples, 5);
    const struct tl_prom_series *s = &result.series[0];
    assert_string_equal(tl_prom_label(s, "pod"), "web-1");
    assert_string_equal(tl_prom_label(s, "namespace"), "shop");
    assert_null(tl_prom_label(s, "node"));
    assert_string_equal(s->labels[0].name, "container"); /* labels are sorted by name */
    assert_int_equal(s->npoints, 2);
    assert_float_equal(s->points[0].t, 1435781430.781, 1e-6);
    assert_float_equal(s->points[0].v, 0.25, 1e-12);
    assert_float_equal(s->points[1].v, 0.0015, 1e-12);
    assert_true(isnan(result.series[1].points[0].v));
    assert_true(isinf(result.series[1].points[1].v));
    tl_prom_result_free(&result);
}

static void test_parses_vectors_and_scalars(void **state)
{
    (void)state;
    struct tl_prom_result result;
    char err[256] = "";
    assert_int_equal(parse("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
                           "[{\"metric\":{\"__name__\":\"up\",\"job\":\"prometheus\"},\"value\":"
                           "[1435781451.781,\"1\"]},{\"metric\":{},\"value\":[1435781451.781,"
                           "\"0\"]}]}}",
                           &result, err, sizeof(err)),
                     TL_OK);
    assert_int_equal(result.count, 2);
    assert_string_equal(tl_prom_label(&result.series[0], "__name__"), "up");
    assert_int_equal(result.series[1].nlabels, 0);
    assert_float_equal(result.series[0].points[0].v, 1, 0);
    tl_prom_result_free(&result);

    assert_int_equal(parse("{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":"
                           "[1435781451.781,\"42.5\"]}}",
                           &result, err, sizeof(err)),
                     TL_OK);
    assert_int_equal(result.count, 1);
    assert_float_equal(result.series[0].points[0].v, 42.5, 0);
    tl_prom_result_free(&result);

    assert_int_equal(parse("{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":"
                           "[]}}",
                           &result, err, sizeof(err)),
                     TL_OK);
    assert_int_equal(result.count, 0);
    tl_prom_result_free(&result);
}

static void test_prometheus_errors_are_reported_verbatim(void **state)
{
    (void)state;
    struct tl_prom_result result;
    char err[256] = "";
    assert_int_equal(
        parse("{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"1:5: parse "
              "error: unexpected \\\")\\\"\"}",
              &result, err, sizeof(err)),
        TL_EINVAL);
    assert_string_equal(err, "bad_data: 1:5: parse error: unexpected \")\"");
}

static void test_malformed_answers_name_what_was_wrong(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *message;
    } cases[] = {
        {"<html>502 Bad Gateway</html>", "not a Prometheus API answer"},
        {"{\"data\":{}}", "status: expected \"success\" or \"error\""},
        {"{\"status\":\"success\",\"data\":{\"result\":[]}}", "data.resultType: missing"},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"string\",\"result\":[]}}",
         "data.resultType: unsupported \"string\""},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":{}}}",
         "data.result: expected a list"},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},"
         "\"values\":[[1,\"1\"],[2,3]]}]}}",
         "data.result[0].values[1]: expected [time, \"value\"]"},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},"
         "\"values\":[[1,\"1\"]]},{\"metric\":{\"a\":1},\"values\":[]}]}}",
         "data.result[1].metric.a: expected a string"},
        {"{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{},"
         "\"value\":[1,\"12abc\"]}]}}",
         "data.result[0].value: expected [time, \"value\"]"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tl_prom_result result;
        char err[256] = "";
        assert_int_equal(parse(cases[i].body, &result, err, sizeof(err)), TL_EINVAL);
        if (strncmp(err, cases[i].message, strlen(cases[i].message)) != 0)
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, err, cases[i].message);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parses_a_matrix),
        cmocka_unit_test(test_parses_vectors_and_scalars),
        cmocka_unit_test(test_prometheus_errors_are_reported_verbatim),
        cmocka_unit_test(test_malformed_answers_name_what_was_wrong),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
