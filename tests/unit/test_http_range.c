/* test_http_range.c — Range headers (RFC 9110 §14) and HTTP dates for
 * guest file downloads (server/api/http_range.c). */
#include <string.h>

#include "http_range.h"
#include "unit.h"

START_TEST(ranges)
{
    static const struct {
        const char *value;
        uint64_t size;
        enum http_range_result want;
        uint64_t off, len;
    } cases[] = {
        {"bytes=0-99", 1000, HTTP_RANGE_PARTIAL, 0, 100},
        {"bytes=100-", 1000, HTTP_RANGE_PARTIAL, 100, 900},
        {"bytes=-100", 1000, HTTP_RANGE_PARTIAL, 900, 100},
        {"bytes=-5000", 1000, HTTP_RANGE_PARTIAL, 0, 1000},
        {"bytes=990-5000", 1000, HTTP_RANGE_PARTIAL, 990, 10},
        {"bytes=999-999", 1000, HTTP_RANGE_PARTIAL, 999, 1},
        {"Bytes = 5-9 ", 1000, HTTP_RANGE_PARTIAL, 5, 5},
        {"bytes=1000-", 1000, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=1000-2000", 1000, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=-0", 1000, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=0-", 0, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        {"bytes=-1", 0, HTTP_RANGE_UNSATISFIABLE, 0, 0},
        /* ignored: the whole file */
        {"bytes=0-1,5-9", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=9-5", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=-", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=a-b", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=1-2x", 1000, HTTP_RANGE_NONE, 0, 0},
        {"items=0-1", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes0-1", 1000, HTTP_RANGE_NONE, 0, 0},
        {"", 1000, HTTP_RANGE_NONE, 0, 0},
        {"bytes=99999999999999999999-", 1000, HTTP_RANGE_NONE, 0, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t off = 7, len = 7;
        enum http_range_result r = http_range_parse(cases[i].value, cases[i].size, &off, &len);
        ck_assert_msg(r == cases[i].want, "'%s' size %llu: got %d", cases[i].value,
                      (unsigned long long)cases[i].size, r);
        if (r == HTTP_RANGE_PARTIAL) {
            ck_assert_msg(off == cases[i].off && len == cases[i].len, "'%s': got %llu+%llu",
                          cases[i].value, (unsigned long long)off, (unsigned long long)len);
        }
    }
}
END_TEST

START_TEST(dates)
{
    char d[HTTP_DATE_LEN];

    http_date(784111777, d);
    ck_assert_str_eq(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    http_date(0, d);
    ck_assert_str_eq(d, "Thu, 01 Jan 1970 00:00:00 GMT");
}
END_TEST

Suite *suite_http_range(void)
{
    Suite *s = suite_create("http_range");
    TCase *tc = tcase_create("range");

    tcase_add_test(tc, ranges);
    tcase_add_test(tc, dates);
    suite_add_tcase(s, tc);
    return s;
}
