/* files.c — see files.h.
 *
 * Every path comes from a checked request: absolute, at most
 * AP_FS_PATH_MAX bytes, NUL-terminated.  Syscalls resolve it in the guest.
 * Files the agent opens are O_CLOEXEC (execs must not inherit them),
 * O_NOCTTY and O_NONBLOCK (a FIFO or a device must not block the open),
 * and only regular files are served.
 *
 * Modes given by the host are applied as given: the agent's umask is set
 * to 0 around the creating syscall (the agent is single-threaded, and
 * execs fork outside of it). */
#include "files.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files-internal.h"

/* Linux's renameat2() flags */
#define FILES_RENAME_NOREPLACE 1u
#define FILES_RENAME_EXCHANGE  2u

/* Handle numbers of a session start at a random value.  A VM restored
 * from a checkpoint runs the agent as it was then: counting from where
 * that agent stood would hand out numbers the host saw before the restore,
 * and a stale handle of the host could then reach another file.  A random
 * start makes that a 1 in 2^32 / FILES_MAX_HANDLES chance. */
static uint32_t first_handle_id(void)
{
    uint32_t v = 0;

    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        v = (uint32_t)(ts.tv_nsec ^ ts.tv_sec * 2654435761u);
    }
    return v ? v : 1;
}

void files_init(struct files *f, struct outq *q)
{
    memset(f, 0, sizeof(*f));
    f->q = q;
    f->next_id = first_handle_id();
    for (size_t i = 0; i < FILES_MAX_HANDLES; i++)
        f->fds[i] = -1;
}

void files_handles_reset(struct files *f)
{
    for (size_t i = 0; i < FILES_MAX_HANDLES; i++)
        if (f->fds[i] >= 0) {
            close(f->fds[i]);
            f->fds[i] = -1;
        }
    f->next_id = first_handle_id();
}

/* ---- answers ---- */

void files_reply_errno(struct files *f, uint32_t stream, int err, const char *what)
{
    uint8_t p[AP_FS_ERRNO_MAX];
    char msg[AP_FS_MSG_MAX + 1];

    snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err));
    outq_push(f->q, AP_FS_ERRNO, stream, p, ap_fs_errno_encode(err, msg, p));
}

void files_reply(struct files *f, uint32_t stream, const void *p, size_t len)
{
    outq_push(f->q, AP_FS_REPLY, stream, p, len);
}

void files_reply_u64(struct files *f, uint32_t stream, uint64_t v)
{
    uint8_t p[8];

    ap_u64_encode(v, p);
    files_reply(f, stream, p, sizeof(p));
}

void files_attr_from_stat(const struct stat *st, struct ap_fs_attr *a)
{
    a->mode = st->st_mode;
    a->nlink = (uint32_t)st->st_nlink;
    a->uid = st->st_uid;
    a->gid = st->st_gid;
    a->blksize = (uint32_t)st->st_blksize;
    a->ino = st->st_ino;
    a->size = (uint64_t)st->st_size;
    a->blocks = (uint64_t)st->st_blocks;
    a->rdev = st->st_rdev;
    a->atime = (struct ap_fs_time){st->st_atim.tv_sec, (uint32_t)st->st_atim.tv_nsec};
    a->mtime = (struct ap_fs_time){st->st_mtim.tv_sec, (uint32_t)st->st_mtim.tv_nsec};
    a->ctime = (struct ap_fs_time){st->st_ctim.tv_sec, (uint32_t)st->st_ctim.tv_nsec};
}

static void reply_stat(struct files *f, uint32_t stream, const struct stat *st)
{
    uint8_t p[AP_FS_ATTR_LEN];
    struct ap_fs_attr a;

    files_attr_from_stat(st, &a);
    ap_fs_attr_encode(&a, p);
    files_reply(f, stream, p, sizeof(p));
}

/* After a successful change: the attr of path (stat() if follow, else
 * lstat()), or an empty reply if it is gone already. */
static void reply_path_attr(struct files *f, uint32_t stream, const char *path, bool follow)
{
    struct stat st;

    if ((follow ? stat(path, &st) : lstat(path, &st)) < 0) {
        files_reply(f, stream, NULL, 0);
        return;
    }
    reply_stat(f, stream, &st);
}

/* ---- handles ---- */

int files_handle_fd(const struct files *f, uint32_t id)
{
    for (size_t i = 0; i < FILES_MAX_HANDLES; i++)
        if (f->fds[i] >= 0 && f->ids[i] == id)
            return f->fds[i];
    return -EBADF;
}

static int handle_free_slot(const struct files *f)
{
    for (size_t i = 0; i < FILES_MAX_HANDLES; i++)
        if (f->fds[i] < 0)
            return (int)i;
    return -EMFILE;
}

/* ---- helpers ---- */

int files_open_regular(const char *path, int flags, mode_t mode)
{
    struct stat st;
    mode_t old = umask(0);
    int fd = open(path, flags | FILES_OPEN_FLAGS, mode);
    int err = errno;

    umask(old);
    if (fd < 0)
        return -err;
    if (fstat(fd, &st) < 0)
        err = errno;
    else if (!S_ISREG(st.st_mode))
        err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    else
        return fd;
    close(fd);
    return -err;
}

int files_mkdir_parents(const char *path, mode_t mode, bool parents)
{
    char buf[AP_FS_PATH_MAX + 1];
    mode_t old = umask(0);
    struct stat st;
    int r = 0;

    snprintf(buf, sizeof(buf), "%s", path);
    if (parents)
        for (char *s = strchr(buf + 1, '/'); s; s = strchr(s + 1, '/')) {
            *s = '\0';
            if (mkdir(buf, FILES_DIR_MODE) < 0 && errno != EEXIST) {
                r = -errno;
                *s = '/';
                goto out;
            }
            *s = '/';
        }
    if (mkdir(path, mode) < 0) {
        r = -errno;
        if (r == -EEXIST && parents && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            r = 0;
    }
out:
    umask(old);
    return r;
}

/* The parent directory of path into ret[AP_FS_PATH_MAX + 1] ("/" for a
 * top-level name). */
void files_parent_of(const char *path, char ret[AP_FS_PATH_MAX + 1])
{
    const char *slash = strrchr(path, '/');
    size_t n = (size_t)(slash - path);

    if (n == 0)
        n = 1;
    memcpy(ret, path, n);
    ret[n] = '\0';
}

/* ---- requests ---- */

static void op_open(struct files *f, uint32_t stream, const struct ap_fs_req *req)
{
    static const int acc[] = {O_RDONLY, O_WRONLY, O_RDWR};
    uint8_t p[AP_FS_OPEN_REPLY_LEN];
    uint32_t fl = req->flags;
    struct ap_fs_attr a;
    struct stat st;
    int slot, fd, oflags;

    slot = handle_free_slot(f);
    if (slot < 0) {
        files_reply_errno(f, stream, EMFILE, "open: FILES_MAX_HANDLES handles open");
        return;
    }
    oflags = acc[fl & AP_OPEN_ACCMODE] | ((fl & AP_OPEN_CREAT) ? O_CREAT : 0) |
             ((fl & AP_OPEN_EXCL) ? O_EXCL : 0) | ((fl & AP_OPEN_TRUNC) ? O_TRUNC : 0) |
             ((fl & AP_OPEN_APPEND) ? O_APPEND : 0) | ((fl & AP_OPEN_NOFOLLOW) ? O_NOFOLLOW : 0);
    fd = files_open_regular(req->path, oflags,
                            ap_fs_req_has(req, APF_MODE) ? req->mode : FILES_FILE_MODE);
    if (fd < 0) {
        files_reply_errno(f, stream, -fd, "open");
        return;
    }
    if (fstat(fd, &st) < 0) {
        files_reply_errno(f, stream, errno, "fstat");
        close(fd);
        return;
    }
    f->fds[slot] = fd;
    f->ids[slot] = f->next_id++;
    if (f->next_id == 0)
        f->next_id = 1;
    ap_u32_encode(f->ids[slot], p);
    files_attr_from_stat(&st, &a);
    ap_fs_attr_encode(&a, p + 4);
    files_reply(f, stream, p, sizeof(p));
}

static void op_close(struct files *f, uint32_t stream, uint32_t id)
{
    for (size_t i = 0; i < FILES_MAX_HANDLES; i++)
        if (f->fds[i] >= 0 && f->ids[i] == id) {
            int r = close(f->fds[i]);

            f->fds[i] = -1;
            /* the fd is gone even when close() reports an error */
            if (r < 0 && errno != EINTR)
                files_reply_errno(f, stream, errno, "close");
            else
                files_reply(f, stream, NULL, 0);
            return;
        }
    files_reply_errno(f, stream, EBADF, "close");
}

static void op_pwrite(struct files *f, uint32_t stream, const struct ap_fs_req *req)
{
    int fd = files_handle_fd(f, req->handle);
    size_t done = 0;

    if (fd < 0) {
        files_reply_errno(f, stream, EBADF, "pwrite");
        return;
    }
    while (done < req->data_len) {
        ssize_t n = pwrite(fd, req->data + done, req->data_len - done, (off_t)(req->offset + done));

        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            /* what was written stays written; the error says why not all */
            if (done > 0)
                break;
            files_reply_errno(f, stream, errno, "pwrite");
            return;
        }
        done += (size_t)n;
    }
    files_reply_u64(f, stream, done);
}

static void op_statfs(struct files *f, uint32_t stream, const char *path)
{
    uint8_t p[AP_FS_STATFS_LEN];
    struct ap_fs_statfs s;
    struct statvfs v;

    if (statvfs(path, &v) < 0) {
        files_reply_errno(f, stream, errno, "statfs");
        return;
    }
    s = (struct ap_fs_statfs){
        .bsize = (uint32_t)v.f_bsize,
        .frsize = (uint32_t)v.f_frsize,
        .namemax = (uint32_t)v.f_namemax,
        .blocks = v.f_blocks,
        .bfree = v.f_bfree,
        .bavail = v.f_bavail,
        .files = v.f_files,
        .ffree = v.f_ffree,
    };
    ap_fs_statfs_encode(&s, p);
    files_reply(f, stream, p, sizeof(p));
}

static void op_readlink(struct files *f, uint32_t stream, const char *path)
{
    char buf[AP_FS_PATH_MAX + 1];
    ssize_t n = readlink(path, buf, sizeof(buf));

    if (n < 0) {
        files_reply_errno(f, stream, errno, "readlink");
        return;
    }
    if ((size_t)n > AP_FS_PATH_MAX) {
        files_reply_errno(f, stream, ENAMETOOLONG, "readlink: target over AP_FS_PATH_MAX");
        return;
    }
    files_reply(f, stream, buf, (size_t)n);
}

static struct timespec fs_timespec(const struct ap_fs_time *t)
{
    if (t->nsec == AP_TIME_NOW)
        return (struct timespec){0, UTIME_NOW};
    if (t->nsec == AP_TIME_OMIT)
        return (struct timespec){0, UTIME_OMIT};
    return (struct timespec){(time_t)t->sec, (long)t->nsec};
}

/* The ops that are one syscall and an attr or empty reply.  Returns the
 * -errno of the syscall, or 0 after replying. */
static int op_simple(struct files *f, uint32_t stream, const struct ap_fs_req *req)
{
    bool nofollow = ap_fs_req_has(req, APF_FLAGS) && (req->flags & AP_NOFOLLOW);
    struct stat st;
    int fd;

    switch (req->op) {
    case APO_STAT:
    case APO_LSTAT:
        if ((req->op == APO_STAT ? stat(req->path, &st) : lstat(req->path, &st)) < 0)
            return -errno;
        reply_stat(f, stream, &st);
        return 0;
    case APO_FSTAT:
        fd = files_handle_fd(f, req->handle);
        if (fd < 0)
            return fd;
        if (fstat(fd, &st) < 0)
            return -errno;
        reply_stat(f, stream, &st);
        return 0;
    case APO_TRUNCATE:
        if (ap_fs_req_has(req, APF_HANDLE)) {
            fd = files_handle_fd(f, req->handle);
            if (fd < 0)
                return fd;
            if (ftruncate(fd, (off_t)req->length) < 0 || fstat(fd, &st) < 0)
                return -errno;
            reply_stat(f, stream, &st);
            return 0;
        }
        if (truncate(req->path, (off_t)req->length) < 0)
            return -errno;
        reply_path_attr(f, stream, req->path, true);
        return 0;
    case APO_UNLINK:
        if (unlink(req->path) < 0)
            return -errno;
        break;
    case APO_RMDIR:
        if (rmdir(req->path) < 0)
            return -errno;
        break;
    case APO_MKDIR: {
        int r = files_mkdir_parents(
            req->path, ap_fs_req_has(req, APF_MODE) ? req->mode : FILES_DIR_MODE,
            ap_fs_req_has(req, APF_FLAGS) && (req->flags & AP_MKDIR_PARENTS));
        if (r < 0)
            return r;
        reply_path_attr(f, stream, req->path, false);
        return 0;
    }
    case APO_RENAME: {
        unsigned rf = 0;

        if (ap_fs_req_has(req, APF_FLAGS)) {
            rf |= (req->flags & AP_RENAME_NOREPLACE) ? FILES_RENAME_NOREPLACE : 0;
            rf |= (req->flags & AP_RENAME_EXCHANGE) ? FILES_RENAME_EXCHANGE : 0;
        }
        if (rf ? syscall(SYS_renameat2, AT_FDCWD, req->path, AT_FDCWD, req->path2, rf) < 0
               : rename(req->path, req->path2) < 0)
            return -errno;
        break;
    }
    case APO_SYMLINK:
        if (symlink(req->path2, req->path) < 0)
            return -errno;
        reply_path_attr(f, stream, req->path, false);
        return 0;
    case APO_LINK:
        if (link(req->path, req->path2) < 0)
            return -errno;
        reply_path_attr(f, stream, req->path2, false);
        return 0;
    case APO_CHMOD:
        if (chmod(req->path, req->mode) < 0)
            return -errno;
        reply_path_attr(f, stream, req->path, true);
        return 0;
    case APO_CHOWN:
        if (fchownat(AT_FDCWD, req->path, ap_fs_req_has(req, APF_UID) ? (uid_t)req->uid : (uid_t)-1,
                     ap_fs_req_has(req, APF_GID) ? (gid_t)req->gid : (gid_t)-1,
                     nofollow ? AT_SYMLINK_NOFOLLOW : 0) < 0)
            return -errno;
        reply_path_attr(f, stream, req->path, !nofollow);
        return 0;
    case APO_UTIMENS: {
        struct timespec ts[2] = {fs_timespec(&req->atime), fs_timespec(&req->mtime)};

        if (utimensat(AT_FDCWD, req->path, ts, nofollow ? AT_SYMLINK_NOFOLLOW : 0) < 0)
            return -errno;
        reply_path_attr(f, stream, req->path, !nofollow);
        return 0;
    }
    case APO_FSYNC:
        fd = files_handle_fd(f, req->handle);
        if (fd < 0)
            return fd;
        if ((ap_fs_req_has(req, APF_FLAGS) && (req->flags & AP_FSYNC_DATA) ? fdatasync(fd)
                                                                           : fsync(fd)) < 0)
            return -errno;
        break;
    default:
        return -EOPNOTSUPP;
    }
    files_reply(f, stream, NULL, 0);
    return 0;
}

void files_request(struct files *f, uint32_t stream, const struct ap_fs_req *req)
{
    int r;

    switch (req->op) {
    case APO_READDIR:
    case APO_READ_FILE:
    case APO_PREAD:
        files_download_start(f, stream, req);
        return;
    case APO_WRITE_FILE:
        files_upload_start(f, stream, req);
        return;
    case APO_OPEN:
        op_open(f, stream, req);
        return;
    case APO_CLOSE:
        op_close(f, stream, req->handle);
        return;
    case APO_PWRITE:
        op_pwrite(f, stream, req);
        return;
    case APO_STATFS:
        op_statfs(f, stream, req->path);
        return;
    case APO_READLINK:
        op_readlink(f, stream, req->path);
        return;
    default:
        r = op_simple(f, stream, req);
        if (r < 0)
            files_reply_errno(f, stream, -r, ap_fs_op_name(req->op));
        return;
    }
}
