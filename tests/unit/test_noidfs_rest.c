/* test_noidfs_rest.c — the pure parts of noidfs's REST binding: how an HTTP
 * status and the server's sentence become the engine's error code, and the
 * server's timestamps. */
#include <string.h>

#include "rest_ops.h"
#include "unit.h"

START_TEST(success_is_zero)
{
    ck_assert_int_eq(noidfs_rest_errno(200, NULL), 0);
    ck_assert_int_eq(noidfs_rest_errno(201, "{}"), 0);
    ck_assert_int_eq(noidfs_rest_errno(204, ""), 0);
}
END_TEST

START_TEST(statuses)
{
    ck_assert_int_eq(noidfs_rest_errno(400, "invalid VM name"), -EINVAL);
    ck_assert_int_eq(noidfs_rest_errno(413, "too large"), -EINVAL);
    ck_assert_int_eq(noidfs_rest_errno(401, "invalid or revoked token"), -EACCES);
    ck_assert_int_eq(noidfs_rest_errno(403, NULL), -EACCES);
    ck_assert_int_eq(noidfs_rest_errno(404, "no VM named 'x'"), -ENOENT);
    ck_assert_int_eq(noidfs_rest_errno(429, "max_vms_per_user (20) reached"), -EDQUOT);
    ck_assert_int_eq(
        noidfs_rest_errno(429, "you have 32 long requests (exec, create, console, ...) running"),
        -EAGAIN);
    ck_assert_int_eq(noidfs_rest_errno(501, "Firecracker"), -EOPNOTSUPP);
    ck_assert_int_eq(noidfs_rest_errno(503, "max_ws_sessions"), -EBUSY);
    ck_assert_int_eq(noidfs_rest_errno(504, "the guest did not answer"), -ETIMEDOUT);
    ck_assert_int_eq(noidfs_rest_errno(507, "disk full"), -ENOSPC);
    ck_assert_int_eq(noidfs_rest_errno(500, "internal"), -EIO);
    ck_assert_int_eq(noidfs_rest_errno(502, "agent broke"), -EIO);
    ck_assert_int_eq(noidfs_rest_errno(302, NULL), -EIO);
    ck_assert_int_eq(noidfs_rest_errno(0, NULL), -EIO);
}
END_TEST

/* An endpoint the server does not know is an older server, not a missing VM
 * (the front-end must not show a VM as gone because of it). */
START_TEST(unknown_endpoint)
{
    ck_assert_int_eq(noidfs_rest_errno(404, "no such endpoint: GET /v1/vms/a/console.log"),
                     -EOPNOTSUPP);
    ck_assert_int_eq(noidfs_rest_errno(404, "no such endpoint"), -EOPNOTSUPP);
    ck_assert_int_eq(noidfs_rest_errno(404, "no such VM 'no such endpoint'"), -ENOENT);
}
END_TEST

/* 409 covers three engine codes; the server's sentences tell them apart. */
START_TEST(conflicts)
{
    ck_assert_int_eq(noidfs_rest_errno(409, "VM 'a' is not running (state: dead)"), -ESRCH);
    ck_assert_int_eq(noidfs_rest_errno(409, "a VM named 'a' already exists"), -EEXIST);
    ck_assert_int_eq(noidfs_rest_errno(409, "the name is taken"), -EEXIST);
    ck_assert_int_eq(noidfs_rest_errno(409, "VM 'a' is being restored; try again in a moment"),
                     -EBUSY);
    ck_assert_int_eq(noidfs_rest_errno(409, "checkpoint id '4' is ambiguous: it matches 45, 46"),
                     -EBUSY);
    ck_assert_int_eq(noidfs_rest_errno(409, NULL), -EBUSY);
}
END_TEST

START_TEST(times)
{
    time_t t = 1;

    ck_assert_int_eq(noidfs_rest_parse_time("1970-01-01T00:00:00Z", &t), 0);
    ck_assert_int_eq(t, 0);
    ck_assert_int_eq(noidfs_rest_parse_time("2026-11-26T16:00:00Z", &t), 0);
    ck_assert_int_eq(t, 1795708800);
    ck_assert_int_eq(noidfs_rest_parse_time("2026-11-26T16:00:00.123456Z", &t), 0);
    ck_assert_int_eq(t, 1795708800);
    ck_assert_int_eq(noidfs_rest_parse_time("2026-11-26T17:30:00+01:30", &t), 0);
    ck_assert_int_eq(t, 1795708800);
    ck_assert_int_eq(noidfs_rest_parse_time("2026-11-26T14:00:00-02:00", &t), 0);
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
        ck_assert_msg(noidfs_rest_parse_time(bad[i], &t) == -EINVAL, "accepted '%s'", bad[i]);
        ck_assert_int_eq(t, 42);
    }
    ck_assert_int_eq(noidfs_rest_parse_time(NULL, &t), -EINVAL);
}
END_TEST

Suite *suite_noidfs_rest(void)
{
    Suite *s = suite_create("noidfs_rest");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, success_is_zero);
    tcase_add_test(tc, statuses);
    tcase_add_test(tc, unknown_endpoint);
    tcase_add_test(tc, conflicts);
    tcase_add_test(tc, times);
    tcase_add_test(tc, bad_times);
    suite_add_tcase(s, tc);
    return s;
}
