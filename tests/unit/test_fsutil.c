/* test_fsutil.c — file helpers; here the tail of a log that a process we do
 * not trust wrote (file_tail_lines), which ends up in API errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "unit.h"

static char path[64];

static void write_text(const char *text, size_t len)
{
    FILE *f;

    snprintf(path, sizeof(path), "/tmp/noid-fsutil-%d", (int)getpid());
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    fclose(f);
}

START_TEST(tail_joins_the_last_lines)
{
    char out[128];
    static const char text[] = "one\ntwo\n\nthree\r\nfour\n\n";

    write_text(text, sizeof(text) - 1);
    file_tail_lines(path, 2, out, sizeof(out));
    ck_assert_str_eq(out, "three | four");
    file_tail_lines(path, 9, out, sizeof(out));
    ck_assert_str_eq(out, "one | two | three | four");
    file_tail_lines(path, 1, out, sizeof(out));
    ck_assert_str_eq(out, "four");
    unlink(path);
}
END_TEST

START_TEST(tail_replaces_what_is_not_printable)
{
    char out[64];
    static const char text[] = "a\x1b[31mred\x07\xff\n2026 error: forged";

    write_text(text, sizeof(text) - 1);
    file_tail_lines(path, 2, out, sizeof(out));
    ck_assert_str_eq(out, "a?[31mred?? | 2026 error: forged");
    for (char *p = out; *p; p++)
        ck_assert(*p >= 0x20 && *p < 0x7f);
    unlink(path);
}
END_TEST

START_TEST(tail_is_bounded)
{
    static char big[100000];
    char out[32];

    memset(big, 'x', sizeof(big));
    big[sizeof(big) - 1] = '\n';
    write_text(big, sizeof(big));
    file_tail_lines(path, 3, out, sizeof(out));
    ck_assert_uint_lt(strlen(out), sizeof(out));
    ck_assert_uint_gt(strlen(out), 0);
    unlink(path);
    file_tail_lines("/nonexistent/x", 3, out, sizeof(out));
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(absolute_keeps_the_last_component)
{
    char *cwd = getcwd(NULL, 0), *p, want[4200];

    ck_assert_ptr_nonnull(cwd);
    /* the last component is never looked at: it need not exist */
    p = path_absolute_keep_last("/proc/no-such-noid-entry///");
    ck_assert_str_eq(p, "/proc/no-such-noid-entry");
    free(p);
    p = path_absolute_keep_last("no-such-noid-entry");
    snprintf(want, sizeof(want), "%s%sno-such-noid-entry", cwd, strcmp(cwd, "/") ? "/" : "");
    ck_assert_str_eq(p, want);
    free(p);
    p = path_absolute_keep_last("/");
    ck_assert_str_eq(p, "/");
    free(p);
    /* a missing parent is an error */
    ck_assert_ptr_null(path_absolute_keep_last("/no-such-noid-dir/x"));
    free(cwd);
}
END_TEST

START_TEST(mount_point_type_reads_mountinfo)
{
    char fstype[64] = "";
    unsigned minor = 12345;

    ck_assert_int_eq(mount_point_type("/proc", fstype, sizeof(fstype), &minor), 1);
    ck_assert_str_eq(fstype, "proc");
    ck_assert_uint_ne(minor, 12345);
    ck_assert_int_eq(mount_point_type("/proc/self", fstype, sizeof(fstype), NULL), 0);
}
END_TEST

Suite *suite_fsutil(void)
{
    Suite *s = suite_create("fsutil");
    TCase *t = tcase_create("tail");

    tcase_add_test(t, tail_joins_the_last_lines);
    tcase_add_test(t, tail_replaces_what_is_not_printable);
    tcase_add_test(t, tail_is_bounded);
    suite_add_tcase(s, t);
    t = tcase_create("paths and mounts");
    tcase_add_test(t, absolute_keeps_the_last_component);
    tcase_add_test(t, mount_point_type_reads_mountinfo);
    suite_add_tcase(s, t);
    return s;
}
