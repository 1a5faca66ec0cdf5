/* test_guestfs_path.c — the pure parts of noidfs's VM/fs/: guest paths
 * built from a directory and a name the kernel hands over, moved by
 * renames; and the errno a guest's answer becomes. */
#include <string.h>

#include "fs-internal.h"
#include "guestfs_path.h"
#include "unit.h"

static char out[GPATH_SIZE];

START_TEST(join)
{
    ck_assert_int_eq(gpath_join("/", "etc", out), 0);
    ck_assert_str_eq(out, "/etc");
    ck_assert_int_eq(gpath_join("/etc", "hosts", out), 0);
    ck_assert_str_eq(out, "/etc/hosts");
    /* any byte but '/' and NUL is a name's byte */
    ck_assert_int_eq(gpath_join("/a b", "..x\n\xff", out), 0);
    ck_assert_str_eq(out, "/a b/..x\n\xff");
    ck_assert_int_eq(gpath_join("/", "...", out), 0);
    ck_assert_str_eq(out, "/...");
}
END_TEST

START_TEST(join_refuses)
{
    strcpy(out, "untouched");
    ck_assert_int_eq(gpath_join("/etc", "", out), -EINVAL);
    ck_assert_int_eq(gpath_join("/etc", ".", out), -EINVAL);
    ck_assert_int_eq(gpath_join("/etc", "..", out), -EINVAL);
    ck_assert_int_eq(gpath_join("/etc", "a/b", out), -EINVAL);
    ck_assert_int_eq(gpath_join("/etc", "/", out), -EINVAL);
    ck_assert_int_eq(gpath_join("etc", "a", out), -EINVAL);
    ck_assert_int_eq(gpath_join("", "a", out), -EINVAL);
    ck_assert_str_eq(out, "untouched");
}
END_TEST

START_TEST(join_bounds)
{
    char name[AP_FS_NAME_MAX + 2];
    char dir[GPATH_SIZE];

    memset(name, 'n', sizeof(name));
    name[AP_FS_NAME_MAX] = '\0';
    ck_assert_int_eq(gpath_join("/", name, out), 0); /* 255 bytes: fine */
    ck_assert_uint_eq(strlen(out), AP_FS_NAME_MAX + 1);
    name[AP_FS_NAME_MAX] = 'n';
    name[AP_FS_NAME_MAX + 1] = '\0';
    ck_assert_int_eq(gpath_join("/", name, out), -ENAMETOOLONG);

    /* a directory path leaving room for "/x" exactly */
    memset(dir, 'd', sizeof(dir));
    dir[0] = '/';
    dir[AP_FS_PATH_MAX - 2] = '\0';
    ck_assert_int_eq(gpath_join(dir, "x", out), 0);
    ck_assert_uint_eq(strlen(out), AP_FS_PATH_MAX);
    ck_assert_int_eq(gpath_join(dir, "xy", out), -ENAMETOOLONG);
}
END_TEST

START_TEST(within)
{
    ck_assert(gpath_within("/a", "/a"));
    ck_assert(gpath_within("/a/b", "/a"));
    ck_assert(gpath_within("/a/b/c", "/a/b"));
    ck_assert(!gpath_within("/ab", "/a"));
    ck_assert(!gpath_within("/a", "/a/b"));
    ck_assert(!gpath_within("/b/a", "/a"));
    ck_assert(gpath_within("/", "/"));
    ck_assert(gpath_within("/anything/at/all", "/"));
}
END_TEST

START_TEST(rebase)
{
    ck_assert_int_eq(gpath_rebase("/a", "/a", "/b", out), 0);
    ck_assert_str_eq(out, "/b");
    ck_assert_int_eq(gpath_rebase("/a/x/y", "/a", "/b/c", out), 0);
    ck_assert_str_eq(out, "/b/c/x/y");
    ck_assert_int_eq(gpath_rebase("/d/a/x", "/d/a", "/a", out), 0);
    ck_assert_str_eq(out, "/a/x");
    /* to or from the root's level */
    ck_assert_int_eq(gpath_rebase("/a/x", "/a", "/", out), 0);
    ck_assert_str_eq(out, "/x");
    ck_assert_int_eq(gpath_rebase("/x", "/", "/a", out), 0);
    ck_assert_str_eq(out, "/a/x");
    ck_assert_int_eq(gpath_rebase("/", "/", "/a", out), 0);
    ck_assert_str_eq(out, "/a");
    /* not below from: refused, out untouched */
    strcpy(out, "untouched");
    ck_assert_int_eq(gpath_rebase("/ab", "/a", "/b", out), -EINVAL);
    ck_assert_str_eq(out, "untouched");
}
END_TEST

START_TEST(rebase_too_long)
{
    char to[GPATH_SIZE];

    memset(to, 't', sizeof(to));
    to[0] = '/';
    to[AP_FS_PATH_MAX - 1] = '\0'; /* 4094 bytes */
    ck_assert_int_eq(gpath_rebase("/a", "/a", to, out), 0);
    ck_assert_int_eq(gpath_rebase("/a/x", "/a", to, out), -ENAMETOOLONG);
}
END_TEST

/* the guest's errno is the answer, whatever it is; only what is not an
 * errno becomes EIO */
START_TEST(guest_errno)
{
    ck_assert_int_eq(errmap_guest(-ENOENT), ENOENT);
    ck_assert_int_eq(errmap_guest(-EEXIST), EEXIST);
    ck_assert_int_eq(errmap_guest(-ENOTEMPTY), ENOTEMPTY);
    ck_assert_int_eq(errmap_guest(-EACCES), EACCES);
    ck_assert_int_eq(errmap_guest(-EPERM), EPERM); /* not folded into EACCES as in the layout */
    ck_assert_int_eq(errmap_guest(-ENOSPC), ENOSPC);
    ck_assert_int_eq(errmap_guest(-ENOTDIR), ENOTDIR);
    ck_assert_int_eq(errmap_guest(-EXDEV), EXDEV);
    ck_assert_int_eq(errmap_guest(-EIO), EIO);
    ck_assert_int_eq(errmap_guest(0), EIO);
    ck_assert_int_eq(errmap_guest(1), EIO);
    ck_assert_int_eq(errmap_guest(-100000), EIO);
}
END_TEST

Suite *suite_guestfs_path(void)
{
    Suite *s = suite_create("guestfs_path");
    TCase *tc = tcase_create("core");

    tcase_add_test(tc, join);
    tcase_add_test(tc, join_refuses);
    tcase_add_test(tc, join_bounds);
    tcase_add_test(tc, within);
    tcase_add_test(tc, rebase);
    tcase_add_test(tc, rebase_too_long);
    tcase_add_test(tc, guest_errno);
    suite_add_tcase(s, tc);
    return s;
}
