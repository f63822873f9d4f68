#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "watch_decoder.h"

/* A recorded stream: events, a bookmark, non-ASCII text, a "\r\n" line end and an empty line. */
static const char STREAM[] =
    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-1\","
    "\"namespace\":\"shop\",\"resourceVersion\":\"101\"}}}\n"
    "{\"type\":\"MODIFIED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"caf\xc3\xa9-"
    "\xe2\x9c"
    "\x93\",\"namespace\":\"shop\",\"resourceVersion\":\"102\"}}}\r\n"
    "\n"
    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":\"150\"}"
    "}}\n"
    "{\"type\":\"DELETED\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"name\":\"web-1\","
    "\"namespace\":\"shop\",\"resourceVersion\":\"151\"}}}\n"
    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\"}}\n";

static const char EXPECTED[] =
    "ADDED:web-1@101|MODIFIED:caf\xc3\xa9-\xe2\x9c\x93@102|BOOKMARK:@150|"
    "DELETED:web-1@151|ERROR:410|";

struct log {
    char text[1024];
    size_t len;
    int events;
};

static enum tl_err record(void *arg, const char *type, cJSON *object)
{
    struct log *log = arg;
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(object, "metadata");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(meta, "name");
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(meta, "resourceVersion");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(object, "code");
    int n;
    if (cJSON_IsNumber(code))
        n = snprintf(log->text + log->len, sizeof(log->text) - log->len, "%s:%d|", type,
                     code->valueint);
    else
        n = snprintf(log->text + log->len, sizeof(log->text) - log->len, "%s:%s@%s|", type,
                     cJSON_IsString(name) ? name->valuestring : "",
                     cJSON_IsString(rv) ? rv->valuestring : "?");
    assert_true(n > 0 && (size_t)n < sizeof(log->text) - log->len);
    log->len += (size_t)n;
    log->events++;
    return TL_OK;
}

static void test_whole_stream(void **state)
{
    struct log log = {0};
    struct tl_watch_decoder *dec = tl_watch_decoder_create(0, record, &log);
    assert_int_equal(tl_watch_decoder_feed(dec, STREAM, strlen(STREAM)), TL_OK);
    assert_string_equal(log.text, EXPECTED);
    assert_int_equal(tl_watch_decoder_pending(dec), 0);
    tl_watch_decoder_destroy(dec);
}

static void test_every_single_split(void **state)
{
    size_t len = strlen(STREAM);
    for (size_t i = 0; i <= len; i++) {
        struct log log = {0};
        struct tl_watch_decoder *dec = tl_watch_decoder_create(0, record, &log);
        assert_int_equal(tl_watch_decoder_feed(dec, STREAM, i), TL_OK);
        assert_int_equal(tl_watch_decoder_feed(dec, STREAM + i, len - i), TL_OK);
        assert_string_equal(log.text, EXPECTED);
        tl_watch_decoder_destroy(dec);
    }
}

static void test_every_pair_of_splits(void **state)
{
    size_t len = strlen(STREAM);
    struct log log;
    struct tl_watch_decoder *dec = tl_watch_decoder_create(0, record, &log);
    for (size_t i = 0; i <= len; i++) {
        for (size_t j = i; j <= len; j++) {
            memset(&log, 0, sizeof(log));
            tl_watch_decoder_reset(dec);
            assert_int_equal(tl_watch_decoder_feed(dec, STREAM, i), TL_OK);
            assert_int_equal(tl_watch_decoder_feed(dec, STREAM + i, j - i), TL_OK);
            assert_int_equal(tl_watch_decoder_feed(dec, STREAM + j, len - j), TL_OK);
            assert_int_equal(log.events, 5);
            assert_string_equal(log.text, EXPECTED);
        }
    }
    tl_watch_decoder_destroy(dec);
}

static void test_byte_at_a_time(void **state)
{
    struct log log = {0};
    struct tl_watch_decoder *dec = tl_watch_decoder_create(0, record, &log);
    for (size_t i = 0; STREAM[i]; i++)
        assert_int_equal(tl_watch_decoder_feed(dec, STREAM + i, 1), TL_OK);
    assert_string_equal(log.text, EXPECTED);
    tl_watch_decoder_destroy(dec);
}

static void test_partial_line_is_held_until_newline(void **state)
{
    struct log log = {0};
    struct tl_watch_decoder *dec = tl_watch_decoder_create(0, record, &log);
    const char *line = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}";
    assert_int_equal(tl_watch_decoder_feed(dec, line, strlen(line)), TL_OK);
    assert_int_equal(log.events, 0);
    assert_int_equal(tl_watch_decoder_pending(dec), strlen(line));
    assert_int_equal(tl_watch_decoder_feed(dec, "\n", 1), TL_OK);
    assert_int_equal(log.events, 1);
    assert_int_equal(tl_watch_decoder_pending(dec), 0);
    tl_watch_decoder_destroy(dec);
}

static void test_line_cap(void **state)
{
    struct log log = {0};
    const char *line = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n";
    size_t n = strlen(line) - 1; /* without the newline */
    /* Exactly at the cap passes, in one chunk and split. */
    struct tl_watch_decoder *dec = tl_watch_decoder_create(n, record, &log);
    assert_int_equal(tl_watch_decoder_feed(dec, line, n + 1), TL_OK);
    assert_int_equal(tl_watch_decoder_feed(dec, line, 10), TL_OK);
    assert_int_equal(tl_watch_decoder_feed(dec, line + 10, n + 1 - 10), TL_OK);
    assert_int_equal(log.events, 2);
    tl_watch_decoder_destroy(dec);

    /* One byte less is too big, whether the line arrives whole or in pieces. */
    dec = tl_watch_decoder_create(n - 1, record, &log);
    assert_int_equal(tl_watch_decoder_feed(dec, line, n + 1), TL_ETOOBIG);
    assert_int_equal(tl_watch_decoder_feed(dec, "\n", 1), TL_ETOOBIG); /* sticky */
    tl_watch_decoder_reset(dec);
    assert_int_equal(tl_watch_decoder_feed(dec, line, 10), TL_OK);
    assert_int_equal(tl_watch_decoder_feed(dec, line + 10, n - 10), TL_ETOOBIG);
    tl_watch_decoder_destroy(dec);
    assert_int_equal(log.events, 2);
}

static void test_malformed_lines_are_errors(void **state)
{
    const char *bad[] = {
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":\n", /* truncated JSON */
        "not json at all\n",
        "{\"type\":\"ADDED\"}\n",                    /* no object */
        "{\"type\":7,\"object\":{}}\n",              /* type not a string */
        "{\"type\":\"ADDED\",\"object\":\"pod\"}\n", /* object not an object */
        "[1,2,3]\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct log log = {0};
        struct tl_watch_decoder *dec = tl_watch_decoder_create(0, record, &log);
        assert_int_equal(tl_watch_decoder_feed(dec, bad[i], strlen(bad[i])), TL_EINVAL);
        assert_int_equal(log.events, 0);
        tl_watch_decoder_destroy(dec);
    }
}

static enum tl_err refuse_second(void *arg, const char *type, cJSON *object)
{
    int *count = arg;
    return ++*count == 2 ? TL_ECONFLICT : TL_OK;
}

static void test_callback_error_stops_feed(void **state)
{
    int count = 0;
    struct tl_watch_decoder *dec = tl_watch_decoder_create(0, refuse_second, &count);
    assert_int_equal(tl_watch_decoder_feed(dec, STREAM, strlen(STREAM)), TL_ECONFLICT);
    assert_int_equal(count, 2);
    tl_watch_decoder_destroy(dec);
}

static enum tl_err keep_object(void *arg, const char *type, cJSON *object)
{
    cJSON **kept = arg;
    *kept = cJSON_Duplicate(object, 1);
    return TL_OK;
}

static void test_object_can_be_kept(void **state)
{
    cJSON *kept = NULL;
    struct tl_watch_decoder *dec = tl_watch_decoder_create(0, keep_object, &kept);
    const char *line = "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\"}}}\n";
    assert_int_equal(tl_watch_decoder_feed(dec, line, strlen(line)), TL_OK);
    tl_watch_decoder_destroy(dec);
    assert_non_null(kept);
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(kept, "metadata");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(meta, "name")->valuestring, "a");
    cJSON_Delete(kept);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_stream),
        cmocka_unit_test(test_every_single_split),
        cmocka_unit_test(test_every_pair_of_splits),
        cmocka_unit_test(test_byte_at_a_time),
        cmocka_unit_test(test_partial_line_is_held_until_newline),
        cmocka_unit_test(test_line_cap),
        cmocka_unit_test(test_malformed_lines_are_errors),
        cmocka_unit_test(test_callback_error_stops_feed),
        cmocka_unit_test(test_object_can_be_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
