#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct capture {
    FILE *file;
    char text[16384];
};

static int setup(void **state)
{
    struct capture *cap = calloc(1, sizeof(*cap));
    if (!cap)
        return -1;
    cap->file = tmpfile();
    if (!cap->file) {
        free(cap);
        return -1;
    }
    *state = cap;
    return 0;
}

static int teardown(void **state)
{
    struct capture *cap = *state;
    tl_log_configure(TL_LOG_INFO, TL_LOG_TEXT, NULL);
    fclose(cap->file);
    free(cap);
    return 0;
}

/* Everything written so far, as one string. */
static const char *captured(struct capture *cap)
{
    long len = ftell(cap->file);
    assert_true(len >= 0 && (size_t)len < sizeof(cap->text));
    rewind(cap->file);
    size_t got = fread(cap->text, 1, (size_t)len, cap->file);
    cap->text[got] = '\0';
    return cap->text;
}

static int evaluations;

static const char *counted(const char *s)
{
    evaluations++;
    return s;
}

static void test_level_threshold_filters_and_skips_formatting(void **state)
{
    struct capture *cap = *state;
    tl_log_configure(TL_LOG_WARN, TL_LOG_TEXT, cap->file);
    evaluations = 0;
    TL_INFO("hidden", TL_STR("k", counted("v")));
    TL_DEBUG("hidden too");
    assert_int_equal(evaluations, 0); /* arguments are not even evaluated */
    TL_WARN("shown", TL_STR("k", counted("v")));
    assert_int_equal(evaluations, 1);
    const char *out = captured(cap);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, " warn  shown k=v\n"));
}

static void test_text_line_has_timestamp_level_message_and_fields(void **state)
{
    struct capture *cap = *state;
    tl_log_configure(TL_LOG_DEBUG, TL_LOG_TEXT, cap->file);
    TL_INFO("reconciled", TL_STR("ns", "shop"), TL_STR("name", "web"), TL_INT("rv", 123),
            TL_BOOL("changed", false), TL_DBL("ratio", 0.25));
    const char *out = captured(cap);
    /* 2026-11-21T23:50:01.123Z */
    assert_true(strlen(out) > 24);
    assert_int_equal(out[4], '-');
    assert_int_equal(out[10], 'T');
    assert_int_equal(out[19], '.');
    assert_int_equal(out[23], 'Z');
    assert_string_equal(out + 24, " info  reconciled ns=shop name=web rv=123 changed=false "
                                  "ratio=0.25\n");
}

static void test_text_values_that_would_misparse_are_quoted(void **state)
{
    struct capture *cap = *state;
    tl_log_configure(TL_LOG_INFO, TL_LOG_TEXT, cap->file);
    TL_ERROR("failed", TL_STR("msg", "no such \"thing\"\nhere"), TL_STR("empty", ""),
             TL_STR("eq", "a=b"), TL_STR("missing", NULL));
    const char *out = captured(cap);
    assert_non_null(strstr(out, " msg=\"no such \\\"thing\\\"\\nhere\" empty=\"\" eq=\"a=b\" "
                                "missing=<null>\n"));
    /* One event is one line, whatever the values hold. */
    assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));
}

static void test_json_line_parses_with_typed_fields(void **state)
{
    struct capture *cap = *state;
    tl_log_configure(TL_LOG_INFO, TL_LOG_JSON, cap->file);
    TL_WARN("watch \"restarted\"", TL_STR("resource", "pods"), TL_INT("attempt", -3),
            TL_BOOL("gone", true), TL_DBL("nan", NAN), TL_STR("ctl", "\x01"));
    const char *out = captured(cap);
    cJSON *doc = cJSON_Parse(out);
    assert_non_null(doc);
    assert_string_equal(cJSON_GetObjectItem(doc, "level")->valuestring, "warn");
    assert_string_equal(cJSON_GetObjectItem(doc, "msg")->valuestring, "watch \"restarted\"");
    assert_string_equal(cJSON_GetObjectItem(doc, "resource")->valuestring, "pods");
    assert_int_equal(cJSON_GetObjectItem(doc, "attempt")->valuedouble, -3);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(doc, "gone")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(doc, "nan")));
    assert_string_equal(cJSON_GetObjectItem(doc, "ctl")->valuestring, "\x01");
    assert_int_equal(strlen(cJSON_GetObjectItem(doc, "ts")->valuestring), 24);
    cJSON_Delete(doc);
}

static void test_overlong_lines_are_cut_at_a_field_and_stay_valid(void **state)
{
    struct capture *cap = *state;
    char *big = malloc(10000);
    assert_non_null(big);
    memset(big, 'x', 9999);
    big[9999] = '\0';

    tl_log_configure(TL_LOG_INFO, TL_LOG_JSON, cap->file);
    TL_INFO("big", TL_STR("first", "kept"), TL_STR("huge", big), TL_STR("after", "dropped"));
    const char *out = captured(cap);
    assert_true(strlen(out) <= 4096);
    cJSON *doc = cJSON_Parse(out);
    assert_non_null(doc);
    assert_string_equal(cJSON_GetObjectItem(doc, "first")->valuestring, "kept");
    assert_null(cJSON_GetObjectItem(doc, "huge"));
    assert_null(cJSON_GetObjectItem(doc, "after"));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(doc, "truncated")));
    cJSON_Delete(doc);

    rewind(cap->file);
    tl_log_configure(TL_LOG_INFO, TL_LOG_TEXT, cap->file);
    TL_INFO("big", TL_STR("first", "kept"), TL_STR("huge", big));
    out = captured(cap);
    assert_non_null(strstr(out, " big first=kept truncated=true\n"));
    free(big);
}

static void test_level_and_format_names_parse(void **state)
{
    (void)state;
    enum tl_log_level level = TL_LOG_INFO;
    enum tl_log_format format = TL_LOG_TEXT;
    assert_int_equal(tl_log_level_parse("debug", &level), TL_OK);
    assert_int_equal(level, TL_LOG_DEBUG);
    assert_int_equal(tl_log_level_parse("error", &level), TL_OK);
    assert_int_equal(level, TL_LOG_ERROR);
    assert_int_equal(tl_log_level_parse("verbose", &level), TL_EINVAL);
    assert_int_equal(level, TL_LOG_ERROR); /* untouched on failure */
    assert_int_equal(tl_log_format_parse("json", &format), TL_OK);
    assert_int_equal(format, TL_LOG_JSON);
    assert_int_equal(tl_log_format_parse("yaml", &format), TL_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_level_threshold_filters_and_skips_formatting, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_text_line_has_timestamp_level_message_and_fields,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_values_that_would_misparse_are_quoted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_json_line_parses_with_typed_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_overlong_lines_are_cut_at_a_field_and_stay_valid,
                                        setup, teardown),
        cmocka_unit_test(test_level_and_format_names_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
