/* test_textutil.c — escaping untrusted text for logs and error messages. */
#include <string.h>

#include "textutil.h"
#include "unit.h"

/* Sanitize a NUL-terminated string into a roomy buffer. */
static const char *san(const char *s)
{
    static char out[1024];

    ck_assert_uint_eq(text_sanitize(s, strlen(s), out, sizeof(out)), strlen(s));
    return out;
}

START_TEST(plain_text_is_kept)
{
    ck_assert_str_eq(san(""), "");
    ck_assert_str_eq(san("hello, world: 42 ~!@#$%^&*()"), "hello, world: 42 ~!@#$%^&*()");
    /* well-formed UTF-8 passes: 2, 3 and 4 byte sequences */
    ck_assert_str_eq(san("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
                     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
}
END_TEST

START_TEST(controls_are_escaped)
{
    ck_assert_str_eq(san("a\nb\rc\td"), "a\\nb\\rc\\td");
    ck_assert_str_eq(san("back\\slash"), "back\\\\slash");
    ck_assert_str_eq(san("\x1b[2J\x07\x7f"), "\\x1b[2J\\x07\\x7f");
    /* a forged log line stays on the same line */
    ck_assert_str_eq(san("x\n2026-01-01T00:00:00.000Z error: FORGED"),
                     "x\\n2026-01-01T00:00:00.000Z error: FORGED");
    /* an embedded NUL is escaped, not an end */
    char out[32];
    ck_assert_uint_eq(text_sanitize("a\0b", 3, out, sizeof(out)), 3);
    ck_assert_str_eq(out, "a\\x00b");
}
END_TEST

START_TEST(unsafe_unicode_is_escaped)
{
    /* C1 CSI (U+009B), NEL (U+0085), line separator, RTL override */
    ck_assert_str_eq(san("\xc2\x9b"
                         "1m"),
                     "\\xc2\\x9b1m");
    ck_assert_str_eq(san("a\xc2\x85"
                         "b"),
                     "a\\xc2\\x85b");
    ck_assert_str_eq(san("a\xe2\x80\xa8"
                         "b"),
                     "a\\xe2\\x80\\xa8b");
    ck_assert_str_eq(san("\xe2\x80\xae"
                         "cba"),
                     "\\xe2\\x80\\xaecba");
}
END_TEST

START_TEST(malformed_utf8_is_escaped)
{
    ck_assert_str_eq(san("\xff\xfe"
                         "A"),
                     "\\xff\\xfeA");
    ck_assert_str_eq(san("\xc0\xaf"), "\\xc0\\xaf");                   /* overlong '/' */
    ck_assert_str_eq(san("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");          /* overlong */
    ck_assert_str_eq(san("\xed\xa0\x80"), "\\xed\\xa0\\x80");          /* surrogate */
    ck_assert_str_eq(san("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80"); /* > U+10FFFF */
    ck_assert_str_eq(san("\xe2\x82"), "\\xe2\\x82");                   /* cut short */
    ck_assert_str_eq(san("\x80"
                         "a"),
                     "\\x80a"); /* stray continuation */
}
END_TEST

START_TEST(output_is_cut_whole)
{
    char out[8];

    /* "ab\\n" is 4 chars; the next escape (4) would not fit in 7 */
    ck_assert_uint_eq(text_sanitize("ab\n\x01z", 5, out, sizeof(out)), 3);
    ck_assert_str_eq(out, "ab\\n");
    /* a UTF-8 sequence is never split */
    ck_assert_uint_eq(text_sanitize("abcde\xe2\x82\xac", 8, out, sizeof(out)), 5);
    ck_assert_str_eq(out, "abcde");
    ck_assert_uint_eq(text_sanitize("abc", 3, out, 1), 0);
    ck_assert_str_eq(out, "");
    ck_assert_uint_eq(text_sanitize("abc", 3, out, 0), 0);
}
END_TEST

/* Every byte value, alone and after every other: the output never holds a
 * control byte or DEL and always fits. */
START_TEST(no_control_byte_survives)
{
    char out[64];

    for (int a = 0; a < 256; a++)
        for (int b = 0; b < 256; b++) {
            unsigned char in[3] = {(unsigned char)a, (unsigned char)b, 0x85};
            text_sanitize(in, sizeof(in), out, sizeof(out));
            for (const unsigned char *p = (const unsigned char *)out; *p; p++)
                ck_assert_msg(*p >= 0x20 && *p != 0x7f, "byte %02x after %02x %02x", *p, a, b);
            ck_assert_uint_lt(strlen(out), sizeof(out));
        }
}
END_TEST

Suite *suite_textutil(void)
{
    Suite *s = suite_create("textutil");
    TCase *t = tcase_create("core");

    tcase_add_test(t, plain_text_is_kept);
    tcase_add_test(t, controls_are_escaped);
    tcase_add_test(t, unsafe_unicode_is_escaped);
    tcase_add_test(t, malformed_utf8_is_escaped);
    tcase_add_test(t, output_is_cut_whole);
    tcase_add_test(t, no_control_byte_survives);
    suite_add_tcase(s, t);
    return s;
}
