/* test_noidfs_rest.c — the pure part of noidfs's REST binding: how an HTTP
 * status and the server's sentence become the engine's error code. */
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

Suite *suite_noidfs_rest(void)
{
    Suite *s = suite_create("noidfs_rest");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, success_is_zero);
    tcase_add_test(tc, statuses);
    tcase_add_test(tc, unknown_endpoint);
    tcase_add_test(tc, conflicts);
    suite_add_tcase(s, tc);
    return s;
}
