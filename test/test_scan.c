#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "scan.h"

/* Compiles text and renders it back in the query syntax; the caller frees the string. */
static char *normalized(const char *text)
{
    struct tl_selector sel;
    char err[256] = "";
    assert_int_equal(tl_scan_selector_parse(text, &sel, err, sizeof(err)), TL_OK);
    char *out = tl_selector_to_string(&sel);
    assert_non_null(out);
    tl_selector_free(&sel);
    return out;
}

static void expect_selector(const char *text, const char *rendered)
{
    char *got = normalized(text);
    assert_string_equal(got, rendered);
    free(got);
}

static void test_selector_forms(void **state)
{
    (void)state;
    expect_selector("tier=web", "tier=web");
    expect_selector("tier==web", "tier=web");
    expect_selector("app!=storefront", "app notin (storefront)");
    expect_selector(" env in ( b , a ) , !canary , team ", "env in (a,b),!canary,team");
    expect_selector("env notin (dev)", "env notin (dev)");
    expect_selector("app.kubernetes.io/name=web", "app.kubernetes.io/name=web");
    expect_selector("tier=", "tier=");
    expect_selector("", "");
}

static void test_selector_matches_labels(void **state)
{
    (void)state;
    struct tl_selector sel;
    char err[256];
    assert_int_equal(
        tl_scan_selector_parse("tier=web,env in (a,b),!canary", &sel, err, sizeof(err)), TL_OK);
    cJSON *yes = cJSON_Parse("{\"tier\":\"web\",\"env\":\"b\"}");
    cJSON *canary = cJSON_Parse("{\"tier\":\"web\",\"env\":\"a\",\"canary\":\"true\"}");
    cJSON *other = cJSON_Parse("{\"tier\":\"api\",\"env\":\"a\"}");
    struct tl_labels l1, l2, l3;
    assert_int_equal(tl_labels_from_json(yes, &l1), TL_OK);
    assert_int_equal(tl_labels_from_json(canary, &l2), TL_OK);
    assert_int_equal(tl_labels_from_json(other, &l3), TL_OK);
    assert_true(tl_selector_matches(&sel, &l1));
    assert_false(tl_selector_matches(&sel, &l2));
    assert_false(tl_selector_matches(&sel, &l3));
    tl_labels_free(&l1);
    tl_labels_free(&l2);
    tl_labels_free(&l3);
    cJSON_Delete(yes);
    cJSON_Delete(canary);
    cJSON_Delete(other);
    tl_selector_free(&sel);
}

static void expect_bad_selector(const char *text, const char *message)
{
    struct tl_selector sel;
    char err[256] = "";
    assert_int_equal(tl_scan_selector_parse(text, &sel, err, sizeof(err)), TL_EINVAL);
    if (!strstr(err, message))
        fail_msg("selector \"%s\": message \"%s\" lacks \"%s\"", text, err, message);
}

static void test_selector_errors_say_what_is_wrong(void **state)
{
    (void)state;
    expect_bad_selector("a in ()", "at least one value");
    expect_bad_selector("a in (x", "expected \",\" or \")\"");
    expect_bad_selector("a<3", "< and > are not supported");
    expect_bad_selector("a=b=c", "expected \",\" between requirements");
    expect_bad_selector("a,", "a requirement must follow");
    expect_bad_selector("!a=b", "must stand alone");
    expect_bad_selector("Bad Key=x", "expected =, ==, !=, in or notin");
    expect_bad_selector("-bad=x", "invalid label key \"-bad\"");
    expect_bad_selector("a=-bad-", "invalid label value \"-bad-\" for \"a\"");
}

static void test_namespaces_split_and_dedupe(void **state)
{
    (void)state;
    char **list = NULL;
    size_t count = 0;
    char err[256];
    assert_int_equal(tl_scan_add_namespaces("shop,payments", &list, &count, err, sizeof(err)),
                     TL_OK);
    assert_int_equal(tl_scan_add_namespaces("shop", &list, &count, err, sizeof(err)), TL_OK);
    assert_int_equal(count, 2);
    assert_string_equal(list[0], "shop");
    assert_string_equal(list[1], "payments");
    assert_int_equal(tl_scan_add_namespaces("Shop", &list, &count, err, sizeof(err)), TL_EINVAL);
    assert_non_null(strstr(err, "\"Shop\" is not a namespace name"));
    assert_int_equal(tl_scan_add_namespaces("a,,b", &list, &count, err, sizeof(err)), TL_EINVAL);
    for (size_t i = 0; i < count; i++)
        free(list[i]);
    free(list);
}

static enum tl_err parse(struct tl_scan_options *o, char *err, size_t errlen, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, errlen);
    for (char *a = va_arg(ap, char *); a && argc < 32; a = va_arg(ap, char *))
        argv[argc++] = a;
    va_end(ap);
    return tl_scan_options_parse(argc, argv, o, err, errlen);
}

static void test_flags(void **state)
{
    (void)state;
    struct tl_scan_options o;
    char err[512] = "";
    assert_int_equal(parse(&o, err, sizeof(err), "--prometheus-url=http://p:9090", "-nshop",
                           "--namespace", "data,shop", "-l", "tier=web", "-ojson", "--kinds",
                           "deploy,sts", "--history", "7d", "--cpu-percentile", "90",
                           "--memory-headroom=30", "--region", "eu-west-1", "--no-progress", NULL),
                     TL_OK);
    assert_string_equal(o.prometheus_url, "http://p:9090");
    assert_int_equal(o.nnamespaces, 2);
    assert_string_equal(o.namespaces[1], "data");
    assert_int_equal(o.output, TL_SCAN_JSON);
    assert_int_equal(o.kinds, TL_KIND_DEPLOYMENT | TL_KIND_STATEFULSET);
    assert_string_equal(o.history, "7d");
    assert_int_equal(o.cpu_percentile, 90);
    assert_int_equal(o.memory_percentile, 0);
    assert_int_equal(o.memory_headroom, 30);
    assert_int_equal(o.cpu_headroom, -1);
    assert_string_equal(o.region, "eu-west-1");
    assert_true(o.no_progress);
    assert_int_equal(o.selector.count, 1);
    tl_scan_options_free(&o);

    assert_int_equal(parse(&o, err, sizeof(err), "--prometheus-url", "http://p", NULL), TL_OK);
    assert_int_equal(o.nnamespaces, 0);
    assert_int_equal(o.output, TL_SCAN_TABLE);
    assert_string_equal(o.history, "14d");
    assert_string_equal(o.region, "us-east-1");
    tl_scan_options_free(&o);

    assert_int_equal(parse(&o, err, sizeof(err), "--prometheus-url", "http://p",
                           "--prometheus-header", "X-Scope-OrgID: team-a", "--prometheus-header",
                           "X-Other: b", NULL),
                     TL_OK);
    assert_int_equal(o.nprometheus_headers, 2);
    assert_string_equal(o.prometheus_headers[0], "X-Scope-OrgID: team-a");
    assert_string_equal(o.prometheus_headers[1], "X-Other: b");
    assert_null(o.prometheus_headers[2]);
    tl_scan_options_free(&o);

    assert_int_equal(parse(&o, err, sizeof(err), "-h", NULL), TL_OK);
    assert_true(o.help);
    tl_scan_options_free(&o);
}

static void expect_bad_flags(const char *message, ...)
{
    char *argv[16];
    int argc = 0;
    va_list ap;
    va_start(ap, message);
    for (char *a = va_arg(ap, char *); a && argc < 16; a = va_arg(ap, char *))
        argv[argc++] = a;
    va_end(ap);
    struct tl_scan_options o;
    char err[512] = "";
    assert_int_equal(tl_scan_options_parse(argc, argv, &o, err, sizeof(err)), TL_EINVAL);
    if (!strstr(err, message))
        fail_msg("message \"%s\" lacks \"%s\"", err, message);
}

static void test_bad_flags(void **state)
{
    (void)state;
    expect_bad_flags("--prometheus-url is required", "-n", "shop", NULL);
    expect_bad_flags("http:// or https://", "--prometheus-url", "prom:9090", NULL);
    expect_bad_flags("unknown flag \"--bogus\"", "--bogus", NULL);
    expect_bad_flags("unknown flag \"-x\"", "-x", NULL);
    expect_bad_flags("--namespace needs a value", "--prometheus-url", "http://p", "--namespace",
                     NULL);
    expect_bad_flags("cannot be used together", "--prometheus-url", "http://p", "-n", "a", "-A",
                     NULL);
    expect_bad_flags("--output: expected table", "--prometheus-url", "http://p", "-o", "xml", NULL);
    expect_bad_flags("--kinds", "--prometheus-url", "http://p", "--kinds", "Job", NULL);
    expect_bad_flags("at least 1h", "--prometheus-url", "http://p", "--history", "30m", NULL);
    expect_bad_flags("50 to 100", "--prometheus-url", "http://p", "--cpu-percentile", "40", NULL);
    expect_bad_flags("0 to 200", "--prometheus-url", "http://p", "--cpu-headroom", "x", NULL);
    expect_bad_flags("no prices for region", "--prometheus-url", "http://p", "--region", "mars-1",
                     NULL);
    expect_bad_flags("not supported yet", "--metrics-server", NULL);
    expect_bad_flags("takes no value", "--no-progress=yes", NULL);
    expect_bad_flags("expected \"Name: value\"", "--prometheus-header", "no-colon", NULL);
    expect_bad_flags("unexpected argument \"extra\"", "--prometheus-url", "http://p", "extra",
                     NULL);
}

static void test_redact_url(void **state)
{
    (void)state;
    char buf[128];
    tl_scan_redact_url("http://user:secret@prom:9090/api", buf, sizeof(buf));
    assert_string_equal(buf, "http://prom:9090/api");
    tl_scan_redact_url("https://prom:9090/x?a=b@c", buf, sizeof(buf));
    assert_string_equal(buf, "https://prom:9090/x?a=b@c");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_selector_forms),
        cmocka_unit_test(test_selector_matches_labels),
        cmocka_unit_test(test_selector_errors_say_what_is_wrong),
        cmocka_unit_test(test_namespaces_split_and_dedupe),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_bad_flags),
        cmocka_unit_test(test_redact_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
