/* test_buf.c — the capped byte buffer. */
#include <string.h>

#include "buf.h"
#include "unit.h"

START_TEST(cap_is_enforced)
{
    struct buf b;

    buf_init(&b, 8);
    ck_assert_int_eq(buf_append(&b, "12345", 5), 0);
    ck_assert_int_eq(buf_append(&b, "6789", 4), -E2BIG);
    ck_assert_uint_eq(b.len, 5); /* unchanged after a refused append */
    ck_assert_uint_eq(buf_append_capped(&b, "6789", 4), 3);
    ck_assert_str_eq((char *)b.data, "12345678");
    ck_assert_uint_eq(buf_append_capped(&b, "x", 1), 0);
    buf_consume(&b, 3);
    ck_assert_str_eq((char *)b.data, "45678");
    buf_free(&b);
}
END_TEST

START_TEST(printf_and_steal)
{
    struct buf b;
    size_t n;
    char *s;

    buf_init(&b, 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(buf_printf(&b, "%d,", i), 0);
    s = buf_steal(&b, &n);
    ck_assert_uint_eq(n, strlen(s));
    ck_assert(strncmp(s, "0,1,2,", 6) == 0);
    ck_assert_ptr_null(b.data);
    free(s);
}
END_TEST

Suite *suite_buf(void)
{
    Suite *s = suite_create("buf");
    TCase *t = tcase_create("core");

    tcase_add_test(t, cap_is_enforced);
    tcase_add_test(t, printf_and_steal);
    suite_add_tcase(s, t);
    return s;
}
