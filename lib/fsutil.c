/* fsutil.c — see fsutil.h. */
#define _XOPEN_SOURCE 700
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"

/* A line of /proc/self/mountinfo (paths are at most PATH_MAX, escaped). */
#define MOUNTINFO_LINE_MAX 8192

int mkdir_p(const char *path, mode_t mode)
{
    _cleanup_free_ char *p = strdup(path);

    if (!p)
        return -ENOMEM;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, mode) < 0 && errno != EEXIST)
            return -errno;
        *s = '/';
    }
    if (mkdir(p, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int mkdir_private(const char *path)
{
    struct stat st;

    if (mkdir(path, 0700) == 0)
        return 0;
    if (errno != EEXIST)
        return -errno;
    if (lstat(path, &st) < 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0)
        return -EPERM;
    return 0;
}

static int rm_one(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
    int r = type == FTW_DP ? rmdir(fpath) : unlink(fpath);

    if (r < 0 && errno != ENOENT)
        return -errno;
    return 0;
}

int rm_rf(const char *path)
{
    struct stat st;
    int r;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
    r = nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    if (r > 0)
        r = -EIO;
    return r;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
    _cleanup_free_ char *tmp = NULL;
    _cleanup_close_ int fd = -1;
    const char *p = data;

    if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
        return -ENOMEM;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0)
        return -errno;
    if (fchmod(fd, mode) < 0)
        goto fail;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto fail;
        p += n;
        len -= (size_t)n;
    }
    if (fsync(fd) < 0)
        goto fail;
    if (rename(tmp, path) < 0)
        goto fail;
    return 0;
fail : {
    int r = -errno;
    unlink(tmp);
    return r;
}
}

int read_file(const char *path, size_t max, char **ret, size_t *ret_len)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    _cleanup_free_ char *data = NULL;
    size_t len = 0, cap = 0;

    if (fd < 0)
        return -errno;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *p = realloc(data, ncap);
            if (!p)
                return -ENOMEM;
            data = p;
            cap = ncap;
        }
        ssize_t n = read(fd, data + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max)
            return -EFBIG;
    }
    if (!data && !(data = malloc(1)))
        return -ENOMEM;
    data[len] = 0;
    *ret = TAKE_PTR(data);
    if (ret_len)
        *ret_len = len;
    return 0;
}

bool path_exists(const char *path)
{
    return access(path, F_OK) == 0;
}

char *path_join(const char *a, const char *b)
{
    char *p;

    if (asprintf(&p, "%s/%s", a, b) < 0)
        return NULL;
    return p;
}

int fd_copy_range(int in, off_t in_off, int out, off_t out_off, off_t len)
{
    _cleanup_free_ char *tbuf = NULL;

    while (len > 0) {
        ssize_t n =
            copy_file_range(in, &in_off, out, &out_off, (size_t)MIN(len, (off_t)1 << 30), 0);
        if (n > 0) {
            len -= n;
            continue;
        }
        if (n == 0)
            return -EIO; /* source shrank under us */
        if (errno == EINTR)
            continue;
        if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
            return -errno;
        break;
    }
    if (len > 0 && !(tbuf = malloc(1 << 20)))
        return -ENOMEM;
    while (len > 0) {
        ssize_t n = pread(in, tbuf, (size_t)MIN(len, (off_t)1 << 20), in_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = pwrite(out, tbuf + done, (size_t)(n - done), out_off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                return -errno;
            done += w;
            out_off += w;
        }
        in_off += n;
        len -= n;
    }
    return 0;
}

void file_tail_lines(const char *path, int max_lines, char *out, size_t size)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    char buf[4096 + 1];
    struct stat st;
    ssize_t n;
    size_t len, o = 0;
    char *start;

    out[0] = 0;
    if (fd < 0 || fstat(fd, &st) < 0 || size == 0)
        return;
    n = pread(fd, buf, sizeof(buf) - 1, st.st_size > 4096 ? st.st_size - 4096 : 0);
    if (n <= 0)
        return;
    len = (size_t)n;
    buf[len] = 0;
    /* walk back over max_lines non-empty lines */
    start = buf + len;
    for (int lines = 0; start > buf && lines < max_lines;) {
        char *end = start;
        while (end > buf && (end[-1] == '\n' || end[-1] == '\r'))
            end--;
        start = end;
        while (start > buf && start[-1] != '\n')
            start--;
        if (end > start)
            lines++;
    }
    bool sep = false;
    for (char *p = start; *p && o + 4 < size; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '\n' || c == '\r') {
            sep = o > 0;
            continue;
        }
        if (sep) {
            memcpy(out + o, " | ", 3);
            o += 3;
            sep = false;
        }
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[o] = 0;
}

/* dir as an absolute path without resolving its last component, which may
 * be a dead FUSE mount (stat on it fails with ENOTCONN).  malloc'd, or NULL
 * with errno set. */
char *path_absolute_keep_last(const char *dir)
{
    _cleanup_free_ char *copy = strdup(dir);
    _cleanup_free_ char *parent_abs = NULL;
    char *base, *slash;
    size_t n;
    char *ret;

    if (!copy)
        return NULL;
    n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/')
        copy[--n] = '\0';
    slash = strrchr(copy, '/');
    base = slash ? slash + 1 : copy;
    if (streq(copy, "/") || streq(base, ".") || streq(base, "..") || !*base)
        return realpath(copy, NULL);
    if (slash == copy)
        parent_abs = realpath("/", NULL);
    else if (slash) {
        *slash = '\0';
        parent_abs = realpath(copy, NULL);
    } else {
        parent_abs = realpath(".", NULL);
    }
    if (!parent_abs)
        return NULL;
    if (asprintf(&ret, "%s%s%s", parent_abs, streq(parent_abs, "/") ? "" : "/", base) < 0)
        return NULL;
    return ret;
}

/* Undo mountinfo's octal escapes (\040 for a space, ...) in place. */
static void unescape_octal(char *s)
{
    char *w = s;

    for (char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
            p[3] >= '0' && p[3] <= '7') {
            *w++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
            p += 3;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
}

/* The file system type of the topmost mount at path (absolute), into
 * fstype; 1 when there is one, 0 when path is no mount point, -errno. */
int mount_point_type(const char *path, char *fstype, size_t size, unsigned *ret_minor)
{
    _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[MOUNTINFO_LINE_MAX];
    int found = 0;

    if (!f)
        return -errno;
    while (fgets(line, sizeof(line), f)) {
        /* id parent major:minor root mountpoint options [optional...] - type source super */
        char *save = NULL, *field, *mnt = NULL, *type = NULL, *dev = NULL;
        int i = 0;
        bool after_dash = false;

        for (field = strtok_r(line, " \n", &save); field; field = strtok_r(NULL, " \n", &save)) {
            if (i == 2)
                dev = field;
            if (i == 4)
                mnt = field;
            if (after_dash) {
                type = field;
                break;
            }
            if (i >= 6 && streq(field, "-"))
                after_dash = true;
            i++;
        }
        if (!mnt || !type)
            continue;
        unescape_octal(mnt);
        if (streq(mnt, path)) {
            unsigned maj, min;
            if (fstype)
                snprintf(fstype, size, "%s", type);
            if (ret_minor && dev && sscanf(dev, "%u:%u", &maj, &min) == 2)
                *ret_minor = min;
            found = 1; /* keep going: a later line is mounted on top */
        }
    }
    return found;
}
