#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "scan_output.h"
#include "yaml_json.h"

#define MIB 1048576.0
#define GIB 1073741824.0
#define T0  1795000000.0 /* 2026-11-18T11:06:40Z */

/*
 * A fixed report: shop/web (over-provisioned, with a sidecar), and data/zookeeper, which has no
 * history and an init container. Texts carry commas, quotes and markup to see them escaped.
 */
struct fixture {
    struct tl_scan_container web[2];
    struct tl_scan_container zk[2];
    struct tl_scan_workload workloads[2];
    struct tl_scan_report report;
};

static struct fixture fx;

static int setup(void **state)
{
    memset(&fx, 0, sizeof(fx));
    struct tl_scan_container *nginx = &fx.web[0];
    snprintf(nginx->name, sizeof(nginx->name), "nginx");
    nginx->type = TL_CONTAINER_APP;
    nginx->confidence = TL_CONFIDENCE_HIGH;
    nginx->current = (struct tl_resources){1, 2, GIB, GIB};
    nginx->recommended = (struct tl_resources){0.25, 0, 640 * MIB, 768 * MIB};
    nginx->lower = (struct tl_resources){0.2, 0, 512 * MIB, 0};
    nginx->upper = (struct tl_resources){0.4, 0, 900 * MIB, 0};
    nginx->usage.cpu_p95 = 0.212;
    nginx->usage.memory_max = 530 * MIB;
    nginx->usage.samples = 20160;
    nginx->usage.coverage = 0.987;
    nginx->savings_usd = 61.2;
    snprintf(nginx->explanation, sizeof(nginx->explanation), "p95 CPU 212m, over 14d");
    struct tl_scan_container *proxy = &fx.web[1];
    snprintf(proxy->name, sizeof(proxy->name), "istio-proxy");
    proxy->type = TL_CONTAINER_SIDECAR;
    proxy->confidence = TL_CONFIDENCE_MEDIUM;
    proxy->current = (struct tl_resources){0.1, 0, 128 * MIB, 0};
    proxy->recommended = (struct tl_resources){0.05, 0, 64 * MIB, 0};
    proxy->savings_usd = 3.1;
    snprintf(proxy->explanation, sizeof(proxy->explanation), "the \"sidecar\" idles");

    struct tl_scan_container *zk = &fx.zk[0];
    snprintf(zk->name, sizeof(zk->name), "zookeeper");
    zk->type = TL_CONTAINER_APP;
    zk->confidence = TL_CONFIDENCE_NONE;
    snprintf(zk->explanation, sizeof(zk->explanation), "no usage history yet");
    struct tl_scan_container *init = &fx.zk[1];
    snprintf(init->name, sizeof(init->name), "init-perms");
    init->type = TL_CONTAINER_INIT;
    init->confidence = TL_CONFIDENCE_NONE;
    init->current = (struct tl_resources){0.01, 0, 16 * MIB, 0};
    init->recommended = init->current;

    struct tl_scan_workload *web = &fx.workloads[0];
    snprintf(web->ns, sizeof(web->ns), "shop");
    web->kind = TL_KIND_DEPLOYMENT;
    snprintf(web->name, sizeof(web->name), "web");
    web->replicas = 3;
    web->confidence = TL_CONFIDENCE_MEDIUM;
    snprintf(web->explanation, sizeof(web->explanation),
             "<script>alert(\"x\")</script> & 'y', over 14d");
    web->savings_usd = 64.3;
    web->cpu_saved = 2.4;
    web->memory_saved = 1536 * MIB;
    web->hpa.present = true;
    web->hpa.min_replicas = 2;
    web->hpa.max_replicas = 6;
    web->hpa.target_percent = 70;
    snprintf(web->hpa.metric, sizeof(web->hpa.metric), "cpu");
    snprintf(web->hpa.reason, sizeof(web->hpa.reason), "CPU is spiky");
    web->containers = fx.web;
    web->ncontainers = 2;

    struct tl_scan_workload *zkw = &fx.workloads[1];
    snprintf(zkw->ns, sizeof(zkw->ns), "data");
    zkw->kind = TL_KIND_STATEFULSET;
    snprintf(zkw->name, sizeof(zkw->name), "zookeeper");
    zkw->replicas = 1;
    zkw->confidence = TL_CONFIDENCE_NONE;
    snprintf(zkw->explanation, sizeof(zkw->explanation), "no usage history yet");
    zkw->containers = fx.zk;
    zkw->ncontainers = 2;

    fx.report.workloads = fx.workloads;
    fx.report.count = 2;
    fx.report.namespaces = 2;
    fx.report.context = "kind-demo";
    fx.report.prometheus = "http://prometheus:9090";
    fx.report.history = 14 * 86400.0;
    fx.report.region = "us-east-1";
    fx.report.generated_at = T0;
    *state = &fx;
    return 0;
}

/* Renders into a string the caller frees. */
static char *render(const struct tl_scan_report *report, enum tl_scan_format format)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(tl_scan_output_write(report, format, out), TL_OK);
    assert_int_equal(fclose(out), 0);
    return text;
}

/* Terminal columns of a UTF-8 line. */
static size_t columns(const char *line, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)line[i] & 0xC0) != 0x80;
    return n;
}

static void test_format_names(void **state)
{
    (void)state;
    enum tl_scan_format f = TL_SCAN_TABLE;
    assert_true(tl_scan_format_parse("html", &f));
    assert_int_equal(f, TL_SCAN_HTML);
    assert_true(tl_scan_format_parse("yaml", &f));
    assert_int_equal(f, TL_SCAN_YAML);
    assert_false(tl_scan_format_parse("xml", &f));
    assert_false(tl_scan_format_parse("JSON", &f));
    assert_int_equal(f, TL_SCAN_YAML);
}

static void test_table(void **state)
{
    struct fixture *f = *state;
    char *text = render(&f->report, TL_SCAN_TABLE);
    const char *expected =
        "NAMESPACE  KIND/NAME              CONTAINER    CPU       MEMORY      SAVINGS/MO  "
        "CONFIDENCE\n"
        "shop       Deployment/web         nginx        1\xE2\x86\x92"
        "250m    "
        "1Gi\xE2\x86\x92"
        "640Mi       $61.20  High\n"
        "shop       Deployment/web         istio-proxy  100m\xE2\x86\x92"
        "50m  "
        "128Mi\xE2\x86\x92"
        "64Mi       $3.10  Medium\n"
        "data       StatefulSet/zookeeper  zookeeper    -\xE2\x86\x92-       "
        "-\xE2\x86\x92-              $0.00  None\n"
        "data       StatefulSet/zookeeper  init-perms   10m\xE2\x86\x92"
        "10m   "
        "16Mi\xE2\x86\x92"
        "16Mi            -  None\n"
        "\n"
        "TOTAL  2 workloads, 4 containers in 2 namespaces; estimated savings $64.30/month\n"
        "       requests of all replicas: CPU 3.30\xE2\x86\x92"
        "0.90 cores, memory "
        "3.4\xE2\x86\x92"
        "2.1 GiB\n"
        "NOTE   1 workload has no usage history in Prometheus (confidence None): its values are "
        "left as they are.\n";
    assert_string_equal(text, expected);
    free(text);
}

static void test_table_never_passes_120_columns(void **state)
{
    struct fixture *f = *state;
    struct tl_scan_workload *web = &f->workloads[0];
    memset(web->name, 'a', 200);
    web->name[200] = '\0';
    snprintf(web->ns, sizeof(web->ns), "a-namespace-with-a-rather-long-name-for-the-table");
    snprintf(f->web[0].name, sizeof(f->web[0].name), "a-container-with-a-long-name-too");
    char *text = render(&f->report, TL_SCAN_TABLE);
    size_t lines = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        assert_non_null(end);
        assert_true(columns(line, (size_t)(end - line)) <= TL_SCAN_TABLE_WIDTH);
        line = end + 1;
        lines++;
    }
    assert_int_equal(lines, 9);
    /* The long name is cut with an ellipsis, not dropped. */
    assert_non_null(strstr(text, "Deployment/aaaa"));
    assert_non_null(strstr(text, "\xE2\x80\xA6"));
    free(text);
}

static void test_table_without_workloads(void **state)
{
    struct fixture *f = *state;
    f->report.count = 0;
    f->report.namespaces = 3;
    char *text = render(&f->report, TL_SCAN_TABLE);
    assert_string_equal(text, "No workloads found in 3 namespaces.\n");
    free(text);
}

static void test_csv(void **state)
{
    struct fixture *f = *state;
    char *text = render(&f->report, TL_SCAN_CSV);
    const char *expected =
        "namespace,kind,name,container,type,replicas,confidence,cpu_request_cores,"
        "cpu_request_recommended_cores,cpu_limit_cores,cpu_limit_recommended_cores,"
        "memory_request_bytes,memory_request_recommended_bytes,memory_limit_bytes,"
        "memory_limit_recommended_bytes,monthly_savings_usd,explanation\n"
        "shop,Deployment,web,nginx,Container,3,High,1.000,0.250,2.000,,1073741824,671088640,"
        "1073741824,805306368,61.20,\"p95 CPU 212m, over 14d\"\n"
        "shop,Deployment,web,istio-proxy,Sidecar,3,Medium,0.100,0.050,,,134217728,67108864,,,"
        "3.10,\"the \"\"sidecar\"\" idles\"\n"
        "data,StatefulSet,zookeeper,zookeeper,Container,1,None,,,,,,,,,0.00,no usage history "
        "yet\n"
        "data,StatefulSet,zookeeper,init-perms,Init,1,None,0.010,0.010,,,16777216,16777216,,,,"
        "\n";
    assert_string_equal(text, expected);
    free(text);
}

static void test_json_parses_back(void **state)
{
    struct fixture *f = *state;
    char *text = render(&f->report, TL_SCAN_JSON);
    cJSON *doc = NULL;
    char err[200];
    assert_int_equal(tl_json_parse(text, strlen(text), 1 << 20, &doc, err, sizeof(err)), TL_OK);
    const char *s = NULL;
    assert_int_equal(tl_json_string(doc, "kind", NULL, &s), TL_OK);
    assert_string_equal(s, "ScanReport");
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(meta, "generatedAt")->valuestring,
                        "2026-11-18T11:06:40Z");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(meta, "history")->valuestring, "14d");
    const cJSON *summary = cJSON_GetObjectItemCaseSensitive(doc, "summary");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(summary, "monthlySavingsUSD")->valuestring,
                        "64.30");
    assert_int_equal(tl_json_get(summary, "workloads", NULL)->valueint, 2);
    assert_int_equal(tl_json_get(summary, "containers", NULL)->valueint, 4);
    assert_int_equal(tl_json_get(summary, "confidence", "None", NULL)->valueint, 1);
    assert_int_equal(tl_json_get(summary, "confidence", "Medium", NULL)->valueint, 1);
    assert_string_equal(tl_json_get(summary, "requests", "current", "cpu", NULL)->valuestring,
                        "3300m");
    assert_string_equal(tl_json_get(summary, "requests", "recommended", "cpu", NULL)->valuestring,
                        "900m");

    const cJSON *web = tl_json_get(doc, "workloads", "0", NULL);
    assert_string_equal(tl_json_get(web, "namespace", NULL)->valuestring, "shop");
    assert_string_equal(tl_json_get(web, "kind", NULL)->valuestring, "Deployment");
    assert_string_equal(tl_json_get(web, "explanation", NULL)->valuestring,
                        "<script>alert(\"x\")</script> & 'y', over 14d");
    assert_string_equal(tl_json_get(web, "savings", "cpuCores", NULL)->valuestring, "2.400");
    assert_string_equal(tl_json_get(web, "savings", "memoryBytes", NULL)->valuestring,
                        "1610612736");
    assert_int_equal(tl_json_get(web, "hpa", "recommended", "maxReplicas", NULL)->valueint, 6);
    const cJSON *nginx = tl_json_get(web, "containers", "0", NULL);
    /* The shape of a Recommendation's status.containers[]. */
    assert_string_equal(tl_json_get(nginx, "current", "requests", "cpu", NULL)->valuestring, "1");
    assert_string_equal(tl_json_get(nginx, "current", "limits", "cpu", NULL)->valuestring, "2");
    assert_string_equal(tl_json_get(nginx, "recommended", "requests", "cpu", NULL)->valuestring,
                        "250m");
    assert_string_equal(tl_json_get(nginx, "recommended", "requests", "memory", NULL)->valuestring,
                        "640Mi");
    assert_null(tl_json_get(nginx, "recommended", "limits", "cpu", NULL));
    assert_string_equal(tl_json_get(nginx, "lowerBound", "cpu", NULL)->valuestring, "200m");
    assert_string_equal(tl_json_get(nginx, "usage", "cpuP95", NULL)->valuestring, "212m");
    assert_int_equal(tl_json_get(nginx, "usage", "samples", NULL)->valueint, 20160);
    assert_int_equal(tl_json_get(nginx, "usage", "coveragePercent", NULL)->valueint, 98);

    /* Without history there are no bounds or usage; init containers have no savings. */
    const cJSON *zk = tl_json_get(doc, "workloads", "1", "containers", "0", NULL);
    assert_null(cJSON_GetObjectItemCaseSensitive(zk, "usage"));
    assert_null(cJSON_GetObjectItemCaseSensitive(zk, "lowerBound"));
    assert_null(tl_json_get(zk, "current", "requests", "cpu", NULL));
    const cJSON *init = tl_json_get(doc, "workloads", "1", "containers", "1", NULL);
    assert_string_equal(tl_json_get(init, "type", NULL)->valuestring, "Init");
    assert_null(cJSON_GetObjectItemCaseSensitive(init, "savings"));
    assert_null(tl_json_get(doc, "workloads", "1", "hpa", NULL));
    cJSON_Delete(doc);
    free(text);
}

static void test_yaml_reads_back_as_the_json(void **state)
{
    struct fixture *f = *state;
    cJSON *doc = tl_scan_report_json(&f->report);
    assert_non_null(doc);
    char *text = render(&f->report, TL_SCAN_YAML);
    cJSON *back = NULL;
    char err[200];
    assert_int_equal(tl_yaml_to_json(text, strlen(text), &back, err, sizeof(err)), TL_OK);
    assert_int_equal(tl_json_size(back), 1);
    assert_true(tl_json_equal(cJSON_GetArrayItem(back, 0), doc));
    /* Money stays a string, so YAML must quote it. */
    assert_non_null(strstr(text, "monthlySavingsUSD: \"64.30\"\n"));
    cJSON_Delete(back);
    cJSON_Delete(doc);
    free(text);
}

/* Strings YAML 1.1 would read as something else, keys included, and other tricky values. */
static void test_yaml_writer_round_trips_tricky_values(void **state)
{
    (void)state;
    static const char *const strings[] = {"on",
                                          "Off",
                                          "yes",
                                          "y",
                                          "NULL",
                                          "~",
                                          "",
                                          "1.0",
                                          "0755",
                                          "1e3",
                                          "0x1F",
                                          ".inf",
                                          "-5",
                                          "2026-11-22",
                                          "a: b",
                                          "- x",
                                          "#c",
                                          "x #y",
                                          "  lead",
                                          "trail ",
                                          "multi\nline\n",
                                          "tab\t",
                                          "<<",
                                          "{a}",
                                          "[1]",
                                          "\"quoted\"",
                                          "it's",
                                          "@at",
                                          "`tick",
                                          "%pct",
                                          "&anchor",
                                          "*alias",
                                          "!tag",
                                          "250m",
                                          "640Mi",
                                          "web",
                                          "\xE2\x86\x92",
                                          "a\\b",
                                          "line\rfeed",
                                          "ends with newline\n",
                                          "\nstarts"};
    cJSON *doc = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(doc, "list");
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        assert_non_null(
            cJSON_AddStringToObject(doc, strings[i][0] ? strings[i] : "empty", strings[i]));
        assert_true(cJSON_AddItemToArray(list, cJSON_CreateString(strings[i])));
    }
    cJSON_AddNumberToObject(doc, "tenth", 0.1);
    cJSON_AddNumberToObject(doc, "big", 1e20);
    cJSON_AddNumberToObject(doc, "negative", -5);
    cJSON_AddNumberToObject(doc, "third", 1.0 / 3);
    cJSON_AddBoolToObject(doc, "flag", true);
    cJSON_AddNullToObject(doc, "nothing");
    cJSON_AddObjectToObject(doc, "emptyObject");
    cJSON_AddArrayToObject(doc, "emptyList");

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(tl_scan_output_yaml(doc, out), TL_OK);
    assert_int_equal(fclose(out), 0);
    cJSON *back = NULL;
    char err[200] = "";
    assert_int_equal(tl_yaml_to_json(text, len, &back, err, sizeof(err)), TL_OK);
    assert_true(tl_json_equal(cJSON_GetArrayItem(back, 0), doc));
    /* Plain where that is safe, so the output reads like a manifest. */
    assert_non_null(strstr(text, "\nweb: web\n"));
    assert_non_null(strstr(text, "\n250m: 250m\n"));
    cJSON_Delete(back);
    cJSON_Delete(doc);
    free(text);
}

static void test_html_is_escaped_and_standalone(void **state)
{
    struct fixture *f = *state;
    f->report.context = "ctx<b>&\"'";
    char *text = render(&f->report, TL_SCAN_HTML);
    assert_true(strncmp(text, "<!DOCTYPE html>\n", 16) == 0);
    assert_non_null(strstr(text, "<style>"));
    assert_non_null(strstr(text, "<table>"));
    assert_non_null(strstr(text, "</html>\n"));
    assert_null(strstr(text, "<script"));
    assert_null(strstr(text, "src="));
    assert_null(strstr(text, "href="));
    assert_non_null(strstr(text, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; "
                                 "&#39;y&#39;, over 14d"));
    assert_non_null(strstr(text, "ctx&lt;b&gt;&amp;&quot;&#39;"));
    assert_null(strstr(text, "ctx<b>"));
    /* Summary and one row per container, with the HPA advice and the savings. */
    assert_non_null(strstr(text, "<b>$64.30</b>"));
    assert_non_null(strstr(text, "<td>Deployment/web</td>"));
    assert_non_null(strstr(text, "<td>istio-proxy (sidecar)</td>"));
    assert_non_null(strstr(text, "<td>init-perms (init)</td>"));
    assert_non_null(strstr(text, "HPA: CPU is spiky"));
    assert_non_null(strstr(text, "<td class=\"num\">$61.20</td>"));
    free(text);
}

static void test_totals(void **state)
{
    struct fixture *f = *state;
    struct tl_scan_totals t;
    tl_scan_report_totals(&f->report, &t);
    assert_int_equal(t.workloads, 2);
    assert_int_equal(t.containers, 4);
    /* Three replicas of 1 + 0.1 cores; the init container does not count. */
    assert_true(t.cpu_current > 3.3 - 1e-9 && t.cpu_current < 3.3 + 1e-9);
    assert_true(t.cpu_recommended > 0.9 - 1e-9 && t.cpu_recommended < 0.9 + 1e-9);
    assert_true(t.memory_current == 3 * (GIB + 128 * MIB));
    assert_true(t.savings_usd > 64.3 - 1e-9 && t.savings_usd < 64.3 + 1e-9);
    assert_int_equal(t.by_confidence[TL_CONFIDENCE_MEDIUM], 1);
    assert_int_equal(t.by_confidence[TL_CONFIDENCE_NONE], 1);
    assert_int_equal(t.by_confidence[TL_CONFIDENCE_HIGH], 0);
}

static void test_negative_savings_print_with_a_minus(void **state)
{
    struct fixture *f = *state;
    f->web[0].savings_usd = -12.345;
    f->web[1].savings_usd = -0.001; /* rounds to zero cents: no "-$0.00" */
    char *text = render(&f->report, TL_SCAN_TABLE);
    assert_non_null(strstr(text, "  -$12.35  High\n"));
    assert_non_null(strstr(text, "   $0.00  Medium\n"));
    assert_null(strstr(text, "-$0.00"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_names),
        cmocka_unit_test_setup(test_table, setup),
        cmocka_unit_test_setup(test_table_never_passes_120_columns, setup),
        cmocka_unit_test_setup(test_table_without_workloads, setup),
        cmocka_unit_test_setup(test_csv, setup),
        cmocka_unit_test_setup(test_json_parses_back, setup),
        cmocka_unit_test_setup(test_yaml_reads_back_as_the_json, setup),
        cmocka_unit_test(test_yaml_writer_round_trips_tricky_values),
        cmocka_unit_test_setup(test_html_is_escaped_and_standalone, setup),
        cmocka_unit_test_setup(test_totals, setup),
        cmocka_unit_test_setup(test_negative_savings_print_with_a_minus, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
