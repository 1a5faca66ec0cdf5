/* test_encoding.c — UTF-8 validation, hex, base64 (strict decoding). */
#include <string.h>

#include "encoding.h"
#include "unit.h"

START_TEST(utf8)
{
    ck_assert(utf8_is_valid("plain", 5));
    ck_assert(utf8_is_valid("h\xc3\xa9", 3));
    ck_assert(utf8_is_valid("\xf0\x9f\x98\x80", 4));
    ck_assert(utf8_is_valid("a\0b", 3));
    ck_assert(!utf8_is_valid("\xc3", 1));          /* truncated */
    ck_assert(!utf8_is_valid("\xc0\xaf", 2));      /* overlong */
    ck_assert(!utf8_is_valid("\xed\xa0\x80", 3));  /* surrogate */
    ck_assert(!utf8_is_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    ck_assert(!utf8_is_valid("\xff", 1));
}
END_TEST

START_TEST(base64)
{
    uint8_t *out;
    size_t n;
    char *enc;
    uint8_t all[256];

    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    for (size_t len = 0; len < 10; len++) {
        enc = base64_encode(all, len);
        ck_assert_int_eq(base64_decode(enc, strlen(enc), &out, &n), 0);
        ck_assert_uint_eq(n, len);
        ck_assert(len == 0 || memcmp(out, all, len) == 0);
        free(out);
        free(enc);
    }
    ck_assert_int_eq(base64_decode("YQ=", 3, &out, &n), -EINVAL);
    ck_assert_int_eq(base64_decode("Y Q==", 5, &out, &n), -EINVAL);
    ck_assert_int_eq(base64_decode("Y$Q=", 4, &out, &n), -EINVAL);
    ck_assert_int_eq(base64_decode("YQ==", 4, &out, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(out[0], 'a');
    free(out);
}
END_TEST

START_TEST(hex)
{
    char out[9];
    const uint8_t in[] = {0x00, 0x7f, 0xab, 0xff};

    hex_encode(in, 4, out);
    ck_assert_str_eq(out, "007fabff");
}
END_TEST

Suite *suite_encoding(void)
{
    Suite *s = suite_create("encoding");
    TCase *t = tcase_create("core");

    tcase_add_test(t, utf8);
    tcase_add_test(t, base64);
    tcase_add_test(t, hex);
    suite_add_tcase(s, t);
    return s;
}
