/* test_client_login.c — the saved login both the CLI and noidfs read: the
 * file written by client_login_save, and NOID_URL / NOID_TOKEN over it. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client_login.h"
#include "fsutil.h"
#include "unit.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/noid-login-%d", (int)getpid());
    rm_rf(dir);
    unsetenv("NOID_URL");
    unsetenv("NOID_TOKEN");
}

static void teardown(void)
{
    rm_rf(dir);
}

START_TEST(save_then_load)
{
    char path[128];
    char *url = NULL, *token = NULL;
    struct nerr e = {0};
    struct stat st;

    snprintf(path, sizeof(path), "%s/.noid/config.toml", dir);
    ck_assert_int_eq(client_login_save(path, "http://h:1/", "tok \"quoted\"", &e), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(client_login_load(path, &url, &token, &e), 0);
    ck_assert_str_eq(url, "http://h:1/");
    ck_assert_str_eq(token, "tok \"quoted\"");
    free(url);
    free(token);
}
END_TEST

START_TEST(environment_wins)
{
    char path[128];
    char *url = NULL, *token = NULL;
    struct nerr e = {0};

    snprintf(path, sizeof(path), "%s/.noid/config.toml", dir);
    ck_assert_int_eq(client_login_save(path, "http://file", "file-token", &e), 0);
    setenv("NOID_URL", "http://env", 1);
    setenv("NOID_TOKEN", "", 1); /* empty: the file's stays */
    ck_assert_int_eq(client_login_load(path, &url, &token, &e), 0);
    ck_assert_str_eq(url, "http://env");
    ck_assert_str_eq(token, "file-token");
    free(url);
    free(token);
}
END_TEST

START_TEST(no_file)
{
    char path[128];
    char *url = NULL, *token = NULL;
    struct nerr e = {0};

    snprintf(path, sizeof(path), "%s/missing.toml", dir);
    ck_assert_int_eq(client_login_load(path, &url, &token, &e), 0);
    ck_assert_ptr_null(url);
    ck_assert_ptr_null(token);
    setenv("NOID_TOKEN", "t", 1);
    ck_assert_int_eq(client_login_load(path, &url, &token, &e), 0);
    ck_assert_ptr_null(url);
    ck_assert_str_eq(token, "t");
    free(token);
}
END_TEST

START_TEST(bad_file)
{
    char path[128];
    char *url = NULL, *token = NULL;
    struct nerr e = {0};

    snprintf(path, sizeof(path), "%s/bad.toml", dir);
    ck_assert_int_eq(mkdir_p(dir, 0700), 0);
    ck_assert_int_eq(write_file_atomic(path, "colour = \"red\"\n", 15, 0600), 0);
    ck_assert_int_eq(client_login_load(path, &url, &token, &e), -EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "unknown key 'colour'"));
    ck_assert_ptr_nonnull(strstr(e.msg, ":1:"));
    free(url);
    free(token);
}
END_TEST

Suite *suite_client_login(void)
{
    Suite *s = suite_create("client_login");
    TCase *tc = tcase_create("core");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, save_then_load);
    tcase_add_test(tc, environment_wins);
    tcase_add_test(tc, no_file);
    tcase_add_test(tc, bad_file);
    suite_add_tcase(s, tc);
    return s;
}
