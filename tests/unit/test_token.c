/* test_token.c — token format, hashing and constant-time comparison. */
#include <string.h>

#include "token.h"
#include "unit.h"

START_TEST(generate_format)
{
    char a[TOKEN_LEN + 1], b[TOKEN_LEN + 1];

    ck_assert_int_eq(token_generate(a), 0);
    ck_assert_int_eq(token_generate(b), 0);
    ck_assert_uint_eq(strlen(a), 73);
    ck_assert(strncmp(a, "noid_tok_", 9) == 0);
    ck_assert(token_is_well_formed(a));
    ck_assert_str_ne(a, b); /* 256 bits of randomness */
}
END_TEST

START_TEST(well_formed)
{
    char t[TOKEN_LEN + 2];

    memcpy(t, "noid_tok_", 9);
    memset(t + 9, 'a', 64);
    t[73] = 0;
    ck_assert(token_is_well_formed(t));
    t[20] = 'A';
    ck_assert(!token_is_well_formed(t)); /* uppercase hex is not ours */
    t[20] = 'a';
    t[73] = 'a';
    t[74] = 0;
    ck_assert(!token_is_well_formed(t)); /* too long */
    t[72] = 0;
    ck_assert(!token_is_well_formed(t)); /* too short */
    ck_assert(!token_is_well_formed("noid_tak_aaaa"));
    ck_assert(!token_is_well_formed(""));
}
END_TEST

START_TEST(hash_known_value)
{
    char h[TOKEN_HASH_HEX_LEN + 1];

    /* SHA-256("abc"), FIPS 180-2 test vector */
    ck_assert_int_eq(token_hash("abc", h), 0);
    ck_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

START_TEST(hash_equal)
{
    char a[TOKEN_LEN + 1], ha[65], hb[65];

    token_generate(a);
    token_hash(a, ha);
    memcpy(hb, ha, sizeof(ha));
    ck_assert(token_hash_equal(ha, hb));
    hb[63] = hb[63] == '0' ? '1' : '0';
    ck_assert(!token_hash_equal(ha, hb));
    hb[63] = ha[63];
    hb[0] = hb[0] == '0' ? '1' : '0';
    ck_assert(!token_hash_equal(ha, hb));
}
END_TEST

START_TEST(rate_key)
{
    char k[TOKEN_RATE_KEY_LEN + 1];

    token_rate_key("noid_tok_0123456789abcdefXXXX", k);
    ck_assert_str_eq(k, "0123456789abcdef");
    token_rate_key("short", k);
    ck_assert_str_eq(k, "short");
    token_rate_key("noid_tok_", k);
    ck_assert_str_eq(k, "");
}
END_TEST

Suite *suite_token(void)
{
    Suite *s = suite_create("token");
    TCase *t = tcase_create("core");

    tcase_add_test(t, generate_format);
    tcase_add_test(t, well_formed);
    tcase_add_test(t, hash_known_value);
    tcase_add_test(t, hash_equal);
    tcase_add_test(t, rate_key);
    suite_add_tcase(s, t);
    return s;
}
