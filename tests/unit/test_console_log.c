/* test_console_log.c — console_log_rotate on real files, with a writer
 * holding serial.log open O_APPEND as the VMM does: lossless where the file
 * system collapses ranges, copytruncate where it cannot or must not; the
 * cap on serial.log.1; what it refuses to touch. */
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "console_log.h"
#include "fsutil.h"
#include "unit.h"

#define CAP 16384

struct text {
    char *p;
    size_t len;
};

static char *make_dir(const char *base)
{
    char *t;

    ck_assert_int_ge(asprintf(&t, "%s/noid-console-log-XXXXXX", base), 0);
    ck_assert_ptr_nonnull(mkdtemp(t));
    return t;
}

static int open_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    ck_assert_int_ge(fd, 0);
    return fd;
}

/* The VMM's side: serial.log opened O_APPEND, kept open. */
static int open_writer(const char *dir)
{
    char *p = path_join(dir, "serial.log");
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

    ck_assert_int_ge(fd, 0);
    free(p);
    return fd;
}

/* Append lines first..end-1 (40 bytes each) through fd and to t. */
static void print_lines(int fd, int first, int end, struct text *t)
{
    for (int i = first; i < end; i++) {
        char line[64];
        int n = snprintf(line, sizeof(line), "line-%06d-xxxxxxxxxxxxxxxxxxxxxxxxxxx\n", i);
        ck_assert_int_eq(write(fd, line, (size_t)n), n);
        t->p = realloc(t->p, t->len + (size_t)n + 1);
        memcpy(t->p + t->len, line, (size_t)n);
        t->len += (size_t)n;
    }
}

static struct text read_in(const char *dir, const char *name)
{
    char *p = path_join(dir, name);
    struct text t = {0};

    ck_assert_int_eq(read_file(p, 1 << 24, &t.p, &t.len), 0);
    free(p);
    return t;
}

static bool exists_in(const char *dir, const char *name)
{
    char *p = path_join(dir, name);
    struct stat st;
    bool r = lstat(p, &st) == 0;

    free(p);
    return r;
}

/* A VM directory with the VMM writing serial.log, and all it printed. */
struct vm_log {
    char *dir;
    int dfd, w;
    struct text all;
};

static struct vm_log vm_log_open(const char *base)
{
    struct vm_log v = {.dir = make_dir(base)};

    v.dfd = open_dir(v.dir);
    v.w = open_writer(v.dir);
    return v;
}

static void vm_log_close(struct vm_log *v)
{
    free(v->all.p);
    close(v->w);
    close(v->dfd);
    rm_rf(v->dir);
    free(v->dir);
}

/* The state after a copytruncate of everything printed (all): serial.log
 * empty, .1 the newest CAP bytes; the writer goes on at offset 0. */
static void check_copytruncate(const char *dir, int w, const struct text *all,
                               const struct console_log_rotation *rot)
{
    struct text log, old;

    ck_assert(!rot->lossless);
    ck_assert_int_eq(rot->size, (long long)all->len);
    ck_assert_int_eq(rot->kept, CAP);
    log = read_in(dir, "serial.log");
    old = read_in(dir, "serial.log.1");
    ck_assert_uint_eq(log.len, 0);
    ck_assert_uint_eq(old.len, CAP);
    ck_assert(memcmp(old.p, all->p + all->len - CAP, CAP) == 0);
    ck_assert(write(w, "after\n", 6) == 6);
    free(log.p);
    log = read_in(dir, "serial.log");
    ck_assert_str_eq(log.p, "after\n"); /* no hole: O_APPEND went to the new end */
    ck_assert(!exists_in(dir, "serial.log.1.partial"));
    free(log.p);
    free(old.p);
}

/* Whether serial.log (w) can have a range collapsed out of its front
 * (FALLOC_FL_COLLAPSE_RANGE), so that the rotation must be lossless: XFS,
 * and ext4 for an extent-mapped file; and a block no larger than the cap
 * (console_log_rotate takes the lossless path only then). */
static bool can_collapse(int w, const struct stat *st)
{
    struct statfs sfs;
    int flags = 0;

    ck_assert_int_eq(fstatfs(w, &sfs), 0);
    if (st->st_blksize > CAP)
        return false;
    if (sfs.f_type == XFS_SUPER_MAGIC)
        return true;
    return sfs.f_type == EXT4_SUPER_MAGIC && ioctl(w, FS_IOC_GETFLAGS, &flags) == 0 &&
           (flags & FS_EXTENT_FL);
}

START_TEST(rotates_and_the_writer_goes_on)
{
    struct vm_log v = vm_log_open(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    const struct text *all = &v.all;
    struct console_log_rotation rot;
    struct text log, old, more = {0};
    struct stat before, after;

    print_lines(v.w, 0, 1000, &v.all); /* 40000 bytes: more than twice the cap */
    ck_assert_int_eq(fstat(v.w, &before), 0);
    ck_assert_int_eq(console_log_rotate(v.dfd, CAP, true, &rot), 1);
    if (can_collapse(v.w, &before))
        ck_assert_msg(rot.lossless, "%s supports FALLOC_FL_COLLAPSE_RANGE, but the rotation "
                      "was not lossless", v.dir);
    if (!rot.lossless) { /* a file system without FALLOC_FL_COLLAPSE_RANGE */
        check_copytruncate(v.dir, v.w, all, &rot);
        goto out;
    }
    log = read_in(v.dir, "serial.log");
    old = read_in(v.dir, "serial.log.1");
    /* the head up to a block boundary left; less than a block stays */
    ck_assert_int_eq(rot.moved % before.st_blksize, 0);
    ck_assert_uint_eq(log.len, all->len - (size_t)rot.moved);
    ck_assert_uint_le(log.len, (size_t)before.st_blksize);
    ck_assert_uint_gt(log.len, 0);
    ck_assert(memcmp(log.p, all->p + rot.moved, log.len) == 0);
    /* .1: the newest CAP bytes of what left, ending where serial.log starts */
    ck_assert_uint_eq(old.len, CAP);
    ck_assert_int_eq(rot.kept, CAP);
    ck_assert(memcmp(old.p, all->p + rot.moved - CAP, CAP) == 0);
    /* the writer's next lines follow on in the same file */
    print_lines(v.w, 1000, 1010, &more);
    ck_assert_int_eq(fstat(v.w, &after), 0);
    ck_assert_uint_eq(before.st_ino, after.st_ino);
    free(log.p);
    log = read_in(v.dir, "serial.log");
    ck_assert_uint_eq(log.len, all->len - (size_t)rot.moved + more.len);
    ck_assert(memcmp(log.p + log.len - more.len, more.p, more.len) == 0);
    ck_assert(!exists_in(v.dir, "serial.log.1.partial"));
    free(log.p);
    free(old.p);
out:
    free(more.p);
    vm_log_close(&v);
}
END_TEST

START_TEST(copytruncate_when_collapsing_is_not_allowed)
{
    struct vm_log v = vm_log_open(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    struct console_log_rotation rot;

    print_lines(v.w, 0, 1000, &v.all);
    ck_assert_int_eq(console_log_rotate(v.dfd, CAP, false, &rot), 1);
    check_copytruncate(v.dir, v.w, &v.all, &rot);
    vm_log_close(&v);
}
END_TEST

/* tmpfs cannot collapse: the collapse fails after .1 is in place and the
 * rotation goes on as copytruncate */
START_TEST(falls_back_where_the_file_system_cannot_collapse)
{
    struct statfs sfs;
    struct console_log_rotation rot;

    if (statfs("/dev/shm", &sfs) < 0 || sfs.f_type != TMPFS_MAGIC) {
        fprintf(stderr, "NOTICE: falls_back_where_the_file_system_cannot_collapse: /dev/shm is "
                        "not tmpfs here, nothing checked\n");
        return; /* no tmpfs here: nothing to show */
    }
    struct vm_log v = vm_log_open("/dev/shm");
    print_lines(v.w, 0, 1000, &v.all);
    ck_assert_int_eq(console_log_rotate(v.dfd, CAP, true, &rot), 1);
    check_copytruncate(v.dir, v.w, &v.all, &rot);
    vm_log_close(&v);
}
END_TEST

START_TEST(under_the_cap_or_absent_nothing_happens)
{
    char *dir = make_dir("/tmp");
    int dfd = open_dir(dir), w;
    struct console_log_rotation rot;
    struct text all = {0};

    ck_assert_int_eq(console_log_rotate(dfd, CAP, true, &rot), -ENOENT);
    w = open_writer(dir);
    print_lines(w, 0, CAP / 40, &all);
    ck_assert_uint_le(all.len, CAP);
    ck_assert_int_eq(console_log_rotate(dfd, CAP, true, &rot), 0);
    ck_assert(!exists_in(dir, "serial.log.1"));
    free(all.p);
    close(w);
    close(dfd);
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(an_older_old_log_is_replaced)
{
    struct vm_log v = vm_log_open("/tmp");
    char *oldp = path_join(v.dir, "serial.log.1");
    struct console_log_rotation rot;
    struct text old;

    ck_assert_int_eq(write_file_atomic(oldp, "older\n", 6, 0600), 0);
    print_lines(v.w, 0, 500, &v.all);
    ck_assert_int_eq(console_log_rotate(v.dfd, CAP, true, &rot), 1);
    old = read_in(v.dir, "serial.log.1");
    ck_assert_ptr_null(strstr(old.p, "older"));
    ck_assert(!exists_in(v.dir, "serial.log.1.partial"));
    free(old.p);
    free(oldp);
    vm_log_close(&v);
}
END_TEST

/* Never shorten a file that is not the VM's own log: a symlink (to a file
 * elsewhere), a second hard link, a FIFO (and do not block on it). */
START_TEST(refuses_symlinks_hard_links_and_fifos)
{
    char *dir = make_dir("/tmp");
    char *outside = path_join(dir, "outside");
    char *vmdir = path_join(dir, "vm");
    int vfd, w;
    struct console_log_rotation rot;
    struct text all = {0}, t;
    char *vm_log;

    ck_assert_int_eq(mkdir(vmdir, 0700), 0);
    vm_log = path_join(vmdir, "serial.log");
    vfd = open_dir(vmdir);
    w = open(outside, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    ck_assert_int_ge(w, 0);
    print_lines(w, 0, 1000, &all);

    ck_assert_int_eq(symlink(outside, vm_log), 0);
    ck_assert_int_eq(console_log_rotate(vfd, CAP, true, &rot), -EPERM);
    ck_assert_int_eq(unlink(vm_log), 0);
    ck_assert_int_eq(link(outside, vm_log), 0);
    ck_assert_int_eq(console_log_rotate(vfd, CAP, true, &rot), -EPERM);
    ck_assert_int_eq(unlink(vm_log), 0);
    ck_assert_int_eq(mkfifo(vm_log, 0600), 0);
    ck_assert_int_eq(console_log_rotate(vfd, CAP, true, &rot), -EPERM);

    t = read_in(dir, "outside");
    ck_assert_uint_eq(t.len, all.len);
    ck_assert(!exists_in(vmdir, "serial.log.1"));
    free(t.p);
    free(all.p);
    free(vm_log);
    free(outside);
    close(w);
    close(vfd);
    rm_rf(dir);
    free(vmdir);
    free(dir);
}
END_TEST

Suite *suite_console_log(void)
{
    Suite *s = suite_create("console_log");
    TCase *tc = tcase_create("rotate");

    tcase_add_test(tc, rotates_and_the_writer_goes_on);
    tcase_add_test(tc, copytruncate_when_collapsing_is_not_allowed);
    tcase_add_test(tc, falls_back_where_the_file_system_cannot_collapse);
    tcase_add_test(tc, under_the_cap_or_absent_nothing_happens);
    tcase_add_test(tc, an_older_old_log_is_replaced);
    tcase_add_test(tc, refuses_symlinks_hard_links_and_fifos);
    suite_add_tcase(s, tc);
    return s;
}
