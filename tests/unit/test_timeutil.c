/* test_timeutil.c — timestamps: parsing RFC 3339 (the server's created_at,
 * read back by both noidfs bindings). */
#include <errno.h>

#include "timeutil.h"
#include "unit.h"

START_TEST(times)
{
    time_t t = 1;

    ck_assert_int_eq(time_parse_rfc3339("1970-01-01T00:00:00Z", &t), 0);
    ck_assert_int_eq(t, 0);
    ck_assert_int_eq(time_parse_rfc3339("2026-11-26T16:00:00Z", &t), 0);
    ck_assert_int_eq(t, 1795708800);
    ck_assert_int_eq(time_parse_rfc3339("2026-11-26T16:00:00.123456Z", &t), 0);
    ck_assert_int_eq(t, 1795708800);
    ck_assert_int_eq(time_parse_rfc3339("2026-11-26T17:30:00+01:30", &t), 0);
    ck_assert_int_eq(t, 1795708800);
    ck_assert_int_eq(time_parse_rfc3339("2026-11-26T14:00:00-02:00", &t), 0);
    ck_assert_int_eq(t, 1795708800);
}
END_TEST

START_TEST(bad_times)
{
    const char *bad[] = {"",
                         "2026-11-26",
                         "2026-11-26T16:00:00",
                         "2026-11-26T16:00:00ZZ",
                         "2026-13-26T16:00:00Z",
                         "2026-11-26T24:00:00Z",
                         "2026-11-26T16:00:00.Z",
                         "2026-11-26T16:00:00+0100",
                         "26-11-26T16:00:00Z",
                         "2026-11-26T16:00:0xZ",
                         "null"};
    time_t t = 42;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(time_parse_rfc3339(bad[i], &t) == -EINVAL, "accepted '%s'", bad[i]);
        ck_assert_int_eq(t, 42);
    }
    ck_assert_int_eq(time_parse_rfc3339(NULL, &t), -EINVAL);
}
END_TEST

Suite *suite_timeutil(void)
{
    Suite *s = suite_create("timeutil");
    TCase *tc = tcase_create("rfc3339");

    tcase_add_test(tc, times);
    tcase_add_test(tc, bad_times);
    suite_add_tcase(s, tc);
    return s;
}
