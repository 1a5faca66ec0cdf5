/* test_kvfile.c — the seed format: values, comments, line numbers in errors. */
#include <string.h>

#include "kvfile.h"
#include "unit.h"

struct seen {
    char keys[8][32];
    char raws[8][128];
    int lines[8];
    int n;
};

static int collect(void *user, const char *key, const char *raw, int line, struct nerr *e)
{
    struct seen *s = user;

    if (strcmp(key, "reject") == 0)
        return nerr_set(e, -EINVAL, "rejected by handler");
    snprintf(s->keys[s->n], 32, "%s", key);
    snprintf(s->raws[s->n], 128, "%s", raw);
    s->lines[s->n] = line;
    s->n++;
    return 0;
}

START_TEST(lines_and_comments)
{
    struct seen s = {0};
    struct nerr e = {0};
    const char *text = "# header\n\nkernel = \"/a b\" # trailing\n  x=1\n; semicolon comment\ny = true\n";

    ck_assert_int_eq(kvfile_parse_string("t.toml", text, collect, &s, &e), 0);
    ck_assert_int_eq(s.n, 3);
    ck_assert_str_eq(s.keys[0], "kernel");
    ck_assert_int_eq(s.lines[0], 3);
    ck_assert_str_eq(s.keys[1], "x");
    ck_assert_int_eq(s.lines[1], 4);
    ck_assert_int_eq(s.lines[2], 6);
}
END_TEST

START_TEST(errors_name_file_and_line)
{
    struct seen s = {0};
    struct nerr e = {0};

    ck_assert_int_eq(kvfile_parse_string("f.toml", "a = 1\nreject = 2\n", collect, &s, &e),
                     -EINVAL);
    ck_assert_str_eq(e.msg, "f.toml:2: rejected by handler");

    memset(&e, 0, sizeof(e));
    ck_assert_int_eq(kvfile_parse_string("f.toml", "a = 1\n\nno equals sign\n", collect, &s, &e),
                     -EINVAL);
    ck_assert_str_eq(e.msg, "f.toml:3: expected 'key = value'");

    memset(&e, 0, sizeof(e));
    ck_assert_int_eq(kvfile_parse_string("f.toml", "[section]\na = 1\n", collect, &s, &e), -EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "f.toml:1: sections are not supported"));

    memset(&e, 0, sizeof(e));
    ck_assert_int_eq(kvfile_parse_string("f.toml", "a = 1\na = 2\n", collect, &s, &e), -EINVAL);
    ck_assert_str_eq(e.msg, "f.toml:2: duplicate key 'a'");
}
END_TEST

START_TEST(long_lines_are_refused_not_cut)
{
    static char text[KVFILE_MAX_LINE + 64];
    struct seen s = {0};
    struct nerr e = {0};

    memcpy(text, "k = \"", 5);
    memset(text + 5, 'x', KVFILE_MAX_LINE + 10);
    strcpy(text + 5 + KVFILE_MAX_LINE + 10, "\"\n");
    ck_assert_int_eq(kvfile_parse_string("f.toml", text, collect, &s, &e), -EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "line is longer than"));
    ck_assert_int_eq(s.n, 0);
}
END_TEST

START_TEST(values)
{
    char *str = NULL;
    long long v;
    bool b;
    struct nerr e = {0};

    ck_assert_int_eq(kv_value_string("\"a\\\"b\\\\c\\n\"", &str, &e), 0);
    ck_assert_str_eq(str, "a\"b\\c\n");
    free(str);
    ck_assert_int_eq(kv_value_string("'lit\\eral' # c", &str, &e), 0);
    ck_assert_str_eq(str, "lit\\eral");
    free(str);
    ck_assert_int_eq(kv_value_string("\"semi;colon\"", &str, &e), 0);
    ck_assert_str_eq(str, "semi;colon");
    free(str);
    ck_assert_int_eq(kv_value_string("bare", &str, NULL), -EINVAL);
    ck_assert_int_eq(kv_value_string("\"open", &str, NULL), -EINVAL);
    ck_assert_int_eq(kv_value_string("\"a\" junk", &str, NULL), -EINVAL);
    ck_assert_int_eq(kv_value_string("\"\\q\"", &str, NULL), -EINVAL);

    ck_assert_int_eq(kv_value_int("42 # c", 0, 100, &v, &e), 0);
    ck_assert_int_eq(v, 42);
    ck_assert_int_eq(kv_value_int("-5", -10, 10, &v, &e), 0);
    ck_assert_int_eq(v, -5);
    ck_assert_int_eq(kv_value_int("101", 0, 100, &v, NULL), -ERANGE);
    ck_assert_int_eq(kv_value_int("4x", 0, 100, &v, NULL), -EINVAL);
    ck_assert_int_eq(kv_value_int("\"4\"", 0, 100, &v, NULL), -EINVAL);
    ck_assert_int_eq(kv_value_int("99999999999999999999", 0, LLONG_MAX, &v, NULL), -EINVAL);

    ck_assert_int_eq(kv_value_bool("true", &b, &e), 0);
    ck_assert(b);
    ck_assert_int_eq(kv_value_bool("false # x", &b, &e), 0);
    ck_assert(!b);
    ck_assert_int_eq(kv_value_bool("yes", &b, NULL), -EINVAL);
    ck_assert_int_eq(kv_value_bool("True", &b, NULL), -EINVAL);
}
END_TEST

START_TEST(quote_round_trip)
{
    const char *in = "we\"ird\\ path\n";
    char *q = kv_quote(in), *back = NULL;

    ck_assert_int_eq(kv_value_string(q, &back, NULL), 0);
    ck_assert_str_eq(back, in);
    free(q);
    free(back);
}
END_TEST

Suite *suite_kvfile(void)
{
    Suite *s = suite_create("kvfile");
    TCase *t = tcase_create("core");

    tcase_add_test(t, lines_and_comments);
    tcase_add_test(t, errors_name_file_and_line);
    tcase_add_test(t, long_lines_are_refused_not_cut);
    tcase_add_test(t, values);
    tcase_add_test(t, quote_round_trip);
    suite_add_tcase(s, t);
    return s;
}
