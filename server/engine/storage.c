/* storage.c — see storage.h. */
#include "storage.h"

#include <btrfsutil.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "fsutil.h"
#include "macro.h"

struct storage {
    char *root;
    bool btrfs;
};

/* What a storage failure means to the caller: a full disk or quota stays
 * (507), everything else is an internal error — a missing or unreadable
 * file inside our own storage is not the user's "not found". */
static int storage_errno(int r)
{
    return r == -ENOSPC || r == -EDQUOT || r == -ENOMEM ? r : -EIO;
}

int storage_open(const char *root, struct storage **ret, struct nerr *e)
{
    struct storage *st;
    struct statfs sfs;
    int r;

    r = mkdir_p(root, 0700);
    if (r < 0)
        return nerr_set(e, storage_errno(r), "cannot create storage dir %s: %s", root,
                        strerror(-r));
    if (statfs(root, &sfs) < 0)
        return nerr_set(e, storage_errno(-errno), "cannot stat storage dir %s: %s", root,
                        strerror(errno));
    st = calloc(1, sizeof(*st));
    if (!st || !(st->root = strdup(root))) {
        free(st);
        return -ENOMEM;
    }
    st->btrfs = sfs.f_type == BTRFS_SUPER_MAGIC;
    *ret = st;
    return 0;
}

void storage_free(struct storage *st)
{
    if (!st)
        return;
    free(st->root);
    free(st);
}

bool storage_is_btrfs(const struct storage *st)
{
    return st->btrfs;
}

const char *storage_kind(const struct storage *st)
{
    return st->btrfs ? "btrfs" : "plain";
}

static int btrfs_errno(enum btrfs_util_error be)
{
    return errno ? -errno : (be == BTRFS_UTIL_ERROR_NOT_BTRFS ? -EXDEV : -EIO);
}

int storage_make_vm_dir(struct storage *st, const char *path, struct nerr *e)
{
    _cleanup_free_ char *parent = strdup(path);
    char *slash;
    int r;

    if (!parent)
        return -ENOMEM;
    slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = 0;
        r = mkdir_p(parent, 0700);
        if (r < 0)
            return nerr_set(e, storage_errno(r), "cannot create %s: %s", parent, strerror(-r));
    }
    if (st->btrfs) {
        enum btrfs_util_error be;
        errno = 0;
        be = btrfs_util_create_subvolume(path, 0, NULL, NULL);
        if (be != BTRFS_UTIL_OK) {
            r = btrfs_errno(be);
            return nerr_set(e, storage_errno(r), "cannot create subvolume %s: %s", path,
                            btrfs_util_strerror(be));
        }
        chmod(path, 0700);
        return 0;
    }
    if (mkdir(path, 0700) < 0)
        return nerr_set(e, storage_errno(-errno), "cannot create %s: %s", path, strerror(errno));
    return 0;
}

/* Copy only the data extents (SEEK_DATA/SEEK_HOLE), then set the size:
 * a 1 GiB sparse disk image with 30 MiB of data costs 30 MiB. */
static int copy_sparse(int in, int out, off_t size)
{
    off_t pos = 0;
    int r;

    while (pos < size) {
        off_t data = lseek(in, pos, SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO)
                break; /* only a hole remains */
            /* no SEEK_DATA support: copy everything */
            return fd_copy_range(in, pos, out, pos, size - pos);
        }
        off_t hole = lseek(in, data, SEEK_HOLE);
        if (hole < 0)
            hole = size;
        r = fd_copy_range(in, data, out, data, hole - data);
        if (r < 0)
            return r;
        pos = hole;
    }
    if (ftruncate(out, size) < 0)
        return -errno;
    return 0;
}

static int copy_file(struct storage *st, const char *src, const char *dst, bool sync,
                     struct nerr *e)
{
    _cleanup_free_ char *tmp = NULL;
    _cleanup_close_ int in = -1;
    _cleanup_close_ int out = -1;
    struct stat s;
    int r;

    in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return nerr_set(e, storage_errno(-errno), "cannot open %s: %s", src, strerror(errno));
    if (fstat(in, &s) < 0)
        return nerr_set(e, storage_errno(-errno), "cannot stat %s: %s", src, strerror(errno));
    tmp = storage_temp_name(dst, "partial");
    if (!tmp)
        return -ENOMEM;
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, s.st_mode & 0777);
    if (out < 0)
        return nerr_set(e, storage_errno(-errno), "cannot create %s: %s", tmp, strerror(errno));
    if (ioctl(out, FICLONE, in) == 0) {
        r = 0;
    } else {
        r = copy_sparse(in, out, s.st_size);
        if (r == 0 && sync && fdatasync(out) < 0)
            r = -errno;
    }
    if (r < 0) {
        unlink(tmp);
        return nerr_set(e, storage_errno(r), "cannot copy %s: %s", src, strerror(-r));
    }
    if (rename(tmp, dst) < 0) {
        r = -errno;
        unlink(tmp);
        return nerr_set(e, storage_errno(r), "cannot create %s: %s", dst, strerror(-r));
    }
    (void)st;
    return 0;
}

int storage_copy_into(const char *src, int out, struct nerr *e)
{
    _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
    struct stat s;
    int r;

    if (in < 0)
        return nerr_set(e, storage_errno(-errno), "cannot open %s: %s", src, strerror(errno));
    if (fstat(in, &s) < 0)
        return nerr_set(e, storage_errno(-errno), "cannot stat %s: %s", src, strerror(errno));
    r = copy_sparse(in, out, s.st_size);
    if (r < 0)
        return nerr_set(e, storage_errno(r), "cannot copy %s: %s", src, strerror(-r));
    return 0;
}

char *storage_temp_name(const char *path, const char *what)
{
    const char *slash = strrchr(path, '/');
    char *p;

    if (!slash)
        return NULL;
    if (asprintf(&p, "%.*s/.%s.%s", (int)(slash - path), path, slash + 1, what) < 0)
        return NULL;
    return p;
}

int storage_move_file(struct storage *st, const char *src, const char *dst, struct nerr *e)
{
    int r;

    if (rename(src, dst) == 0)
        return 0;
    if (errno != EXDEV)
        return nerr_set(e, storage_errno(-errno), "cannot move %s to %s: %s", src, dst,
                        strerror(errno));
    /* another btrfs subvolume: a reflink, then the original goes */
    r = copy_file(st, src, dst, false, e);
    if (r >= 0)
        unlink(src);
    return r;
}

int storage_copy_file(struct storage *st, const char *src, const char *dst, struct nerr *e)
{
    return copy_file(st, src, dst, true, e);
}

int storage_copy_file_nosync(struct storage *st, const char *src, const char *dst, struct nerr *e)
{
    return copy_file(st, src, dst, false, e);
}

int storage_sync_file(const char *path)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return -errno;
    return fsync(fd) < 0 ? -errno : 0;
}

int storage_set_read_only(struct storage *st, const char *path)
{
    enum btrfs_util_error be;

    if (!st->btrfs || btrfs_util_is_subvolume(path) != BTRFS_UTIL_OK)
        return 0;
    errno = 0;
    be = btrfs_util_set_subvolume_read_only(path, true);
    return be == BTRFS_UTIL_OK ? 0 : btrfs_errno(be);
}

int storage_snapshot_dir(struct storage *st, const char *src, const char *dst, bool readonly,
                         struct nerr *e)
{
    DIR *d;
    struct dirent *de;
    int r = 0;

    if (st->btrfs && btrfs_util_is_subvolume(src) == BTRFS_UTIL_OK) {
        enum btrfs_util_error be;
        errno = 0;
        be = btrfs_util_create_snapshot(
            src, dst, readonly ? BTRFS_UTIL_CREATE_SNAPSHOT_READ_ONLY : 0, NULL, NULL);
        if (be != BTRFS_UTIL_OK) {
            r = btrfs_errno(be);
            return nerr_set(e, storage_errno(r), "cannot snapshot %s: %s", src,
                            btrfs_util_strerror(be));
        }
        return 0;
    }
    r = storage_make_vm_dir(st, dst, e);
    if (r < 0)
        return r;
    d = opendir(src);
    if (!d) {
        r = nerr_set(e, storage_errno(-errno), "cannot read %s: %s", src, strerror(errno));
        goto fail;
    }
    while ((de = readdir(d))) {
        _cleanup_free_ char *from = NULL, *to = NULL;
        struct stat s;
        if (de->d_name[0] == '.')
            continue;
        from = path_join(src, de->d_name);
        to = path_join(dst, de->d_name);
        if (!from || !to) {
            r = -ENOMEM;
            break;
        }
        if (lstat(from, &s) < 0 || !S_ISREG(s.st_mode))
            continue;
        r = storage_copy_file(st, from, to, e);
        if (r < 0)
            break;
    }
    closedir(d);
    if (r < 0)
        goto fail;
    return 0;
fail:
    storage_remove_tree(st, dst);
    return r;
}

int storage_remove_tree(struct storage *st, const char *path)
{
    if (st->btrfs && btrfs_util_is_subvolume(path) == BTRFS_UTIL_OK) {
        enum btrfs_util_error be;
        errno = 0;
        be = btrfs_util_delete_subvolume(path, BTRFS_UTIL_DELETE_SUBVOLUME_RECURSIVE);
        if (be == BTRFS_UTIL_OK)
            return 0;
        /* fall through: e.g. a read-only snapshot needs the flag cleared */
        btrfs_util_set_subvolume_read_only(path, false);
        be = btrfs_util_delete_subvolume(path, BTRFS_UTIL_DELETE_SUBVOLUME_RECURSIVE);
        if (be == BTRFS_UTIL_OK)
            return 0;
        return btrfs_errno(be);
    }
    if (st->btrfs) {
        /* a plain directory that may hold subvolumes (a user's tree) */
        DIR *d = opendir(path);
        struct dirent *de;
        if (d) {
            while ((de = readdir(d))) {
                _cleanup_free_ char *child = NULL;
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                    continue;
                if (de->d_type != DT_DIR)
                    continue;
                child = path_join(path, de->d_name);
                if (child)
                    storage_remove_tree(st, child);
            }
            closedir(d);
        }
    }
    return rm_rf(path);
}

int64_t storage_dir_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int64_t total = 0;

    if (!d)
        return 0;
    while ((de = readdir(d))) {
        struct stat s;
        if (fstatat(dirfd(d), de->d_name, &s, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(s.st_mode))
            total += (int64_t)s.st_blocks * 512;
    }
    closedir(d);
    return total;
}
