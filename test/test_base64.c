/* Tests for base64: RFC 4648 vectors, the whitespace kubeconfigs carry, and malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base64.h"

static void decode_ok(const char *text, const char *want, size_t want_len)
{
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(tl_base64_decode(text, strlen(text), &out, &len), TL_OK);
    assert_int_equal(len, want_len);
    assert_memory_equal(out, want, want_len);
    assert_int_equal(out[len], '\0');
    free(out);
}

static void decode_bad(const char *text)
{
    char *out = (char *)"untouched";
    size_t len = 7;
    assert_int_equal(tl_base64_decode(text, strlen(text), &out, &len), TL_EINVAL);
    assert_string_equal(out, "untouched");
    assert_int_equal(len, 7);
}

/* RFC 4648 section 10. */
static void rfc4648_vectors_round_trip(void **state)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                        "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        char *enc = tl_base64_encode(plain[i], strlen(plain[i]));
        assert_non_null(enc);
        assert_string_equal(enc, coded[i]);
        free(enc);
        decode_ok(coded[i], plain[i], strlen(plain[i]));
    }
}

static void binary_bytes_round_trip(void **state)
{
    unsigned char bytes[256];
    for (size_t i = 0; i < sizeof(bytes); i++)
        bytes[i] = (unsigned char)(255 - i);
    char *enc = tl_base64_encode(bytes, sizeof(bytes));
    assert_non_null(enc);
    decode_ok(enc, (const char *)bytes, sizeof(bytes));
    free(enc);
}

static void line_breaks_and_spaces_are_skipped(void **state)
{
    decode_ok("Zm9v\r\nYmFy\n", "foobar", 6);
    decode_ok("  Zm9v YmE=\n\t", "fooba", 5);
}

static void malformed_input_is_refused(void **state)
{
    decode_bad("Zm9");       /* not a multiple of four */
    decode_bad("Zm9v*mFy");  /* outside the alphabet */
    decode_bad("Zm9vYmFy="); /* stray padding */
    decode_bad("Z===");      /* too much padding */
    decode_bad("Zg==Zg==");  /* data after padding */
    decode_bad("Zm=v");      /* padding in the middle */
    decode_bad("Zm9v_-==");  /* URL-safe alphabet is not Kubernetes' */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc4648_vectors_round_trip),
        cmocka_unit_test(binary_bytes_round_trip),
        cmocka_unit_test(line_breaks_and_spaces_are_skipped),
        cmocka_unit_test(malformed_input_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
