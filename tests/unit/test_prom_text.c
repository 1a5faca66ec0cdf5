/* test_prom_text.c — the Prometheus text format writer: escaping, names,
 * value forms, and histograms whose buckets add up. */
#include <math.h>
#include <string.h>

#include "prom_text.h"
#include "unit.h"

/* What b holds, as a string (the buffer is NUL-terminated past len). */
static const char *text(struct buf *b)
{
    return b->data ? (const char *)b->data : "";
}

START_TEST(family_lines)
{
    struct buf b;

    buf_init(&b, 0);
    ck_assert_int_eq(prom_text_family(&b, "noid_x_total", "counter", "Line one\nback\\slash \"q\""),
                     0);
    /* help: backslash and newline escaped, quotes kept as they are */
    ck_assert_str_eq(text(&b), "# HELP noid_x_total Line one\\nback\\\\slash \"q\"\n"
                               "# TYPE noid_x_total counter\n");
    buf_free(&b);
}
END_TEST

START_TEST(names_are_checked)
{
    struct buf b;
    struct prom_label bad[] = {{"le", "x"}, {"__name", "x"}, {"1a", "x"}, {"a-b", "x"}, {"", "x"}};
    struct prom_label ok = {"state_2", "x"};

    buf_init(&b, 0);
    ck_assert_int_eq(prom_text_family(&b, "noid-x", "counter", "h"), -EINVAL);
    ck_assert_int_eq(prom_text_family(&b, "9x", "gauge", "h"), -EINVAL);
    ck_assert_int_eq(prom_text_family(&b, "x", "countr", "h"), -EINVAL);
    ck_assert_int_eq(prom_text_sample(&b, "", NULL, 0, 1), -EINVAL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_int_eq(prom_text_sample(&b, "x", &bad[i], 1, 1), -EINVAL);
    ck_assert_uint_eq(b.len, 0); /* nothing half-written */
    ck_assert_int_eq(prom_text_sample(&b, "ns:x_y", &ok, 1, 1), 0);
    ck_assert_str_eq(text(&b), "ns:x_y{state_2=\"x\"} 1\n");
    buf_free(&b);
}
END_TEST

START_TEST(label_values_are_escaped)
{
    struct buf b;
    struct prom_label l[] = {{"a", "q\"b\\s\nn"}, {"b", "ünïcode"}, {"c", ""}};

    buf_init(&b, 0);
    ck_assert_int_eq(prom_text_sample(&b, "m", l, 3, 2), 0);
    ck_assert_str_eq(text(&b), "m{a=\"q\\\"b\\\\s\\nn\",b=\"ünïcode\",c=\"\"} 2\n");
    buf_free(&b);
}
END_TEST

START_TEST(values)
{
    static const struct {
        double v;
        const char *s;
    } cases[] = {
        {0, "0"},
        {3, "3"},
        {-7, "-7"},
        {0.05, "0.05"},
        {2.5, "2.5"},
        {1e20, "1e+20"},
        {123456789012.0, "123456789012"},
        {0.1 + 0.2, "0.30000000000000004"},
    };
    struct buf b;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_init(&b, 0);
        ck_assert_int_eq(prom_text_value(&b, cases[i].v), 0);
        ck_assert_str_eq(text(&b), cases[i].s);
        buf_free(&b);
    }
    buf_init(&b, 0);
    prom_text_value(&b, INFINITY);
    prom_text_value(&b, -INFINITY);
    prom_text_value(&b, NAN);
    ck_assert_str_eq(text(&b), "+Inf-InfNaN");
    buf_free(&b);
}
END_TEST

START_TEST(histogram_is_cumulative)
{
    const double bounds[] = {0.5, 1, 2.5};
    const uint64_t counts[] = {1, 0, 2, 3}; /* per bucket; 3 above 2.5 */
    struct prom_label l = {"source", "cold"};
    struct buf b;

    buf_init(&b, 0);
    ck_assert_int_eq(prom_text_histogram(&b, "d_seconds", &l, 1, bounds, counts, 3, 12.25), 0);
    ck_assert_str_eq(text(&b), "d_seconds_bucket{source=\"cold\",le=\"0.5\"} 1\n"
                               "d_seconds_bucket{source=\"cold\",le=\"1\"} 1\n"
                               "d_seconds_bucket{source=\"cold\",le=\"2.5\"} 3\n"
                               "d_seconds_bucket{source=\"cold\",le=\"+Inf\"} 6\n"
                               "d_seconds_sum{source=\"cold\"} 12.25\n"
                               "d_seconds_count{source=\"cold\"} 6\n");
    buf_free(&b);

    /* without labels, le is the only one */
    buf_init(&b, 0);
    ck_assert_int_eq(prom_text_histogram(&b, "h", NULL, 0, bounds, counts, 1, 0), 0);
    ck_assert_str_eq(text(&b), "h_bucket{le=\"0.5\"} 1\n"
                               "h_bucket{le=\"+Inf\"} 1\n"
                               "h_sum 0\n"
                               "h_count 1\n");
    buf_free(&b);
}
END_TEST

START_TEST(histogram_bounds_must_increase)
{
    const double down[] = {1, 0.5};
    const double same[] = {1, 1};
    const double inf[] = {1, INFINITY};
    const uint64_t counts[3] = {0};
    struct buf b;

    buf_init(&b, 0);
    ck_assert_int_eq(prom_text_histogram(&b, "h", NULL, 0, down, counts, 2, 0), -EINVAL);
    ck_assert_int_eq(prom_text_histogram(&b, "h", NULL, 0, same, counts, 2, 0), -EINVAL);
    ck_assert_int_eq(prom_text_histogram(&b, "h", NULL, 0, inf, counts, 2, 0), -EINVAL);
    ck_assert_uint_eq(b.len, 0);
    buf_free(&b);
}
END_TEST

Suite *suite_prom_text(void)
{
    Suite *s = suite_create("prom_text");
    TCase *t = tcase_create("core");

    tcase_add_test(t, family_lines);
    tcase_add_test(t, names_are_checked);
    tcase_add_test(t, label_values_are_escaped);
    tcase_add_test(t, values);
    tcase_add_test(t, histogram_is_cumulative);
    tcase_add_test(t, histogram_bounds_must_increase);
    suite_add_tcase(s, t);
    return s;
}
