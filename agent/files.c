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

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "alog.h"
#include "macro.h"

#define FILES_OPEN_FLAGS (O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
#define FILES_FILE_MODE  0644
#define FILES_DIR_MODE   0755
#define FILES_TMP_SUFFIX ".noid-XXXXXX"
/* Linux's renameat2() flags */
#define FILES_RENAME_NOREPLACE 1u
#define FILES_RENAME_EXCHANGE  2u

enum xfer_kind { XFER_READ, XFER_READDIR, XFER_WRITE };

struct files_xfer {
    uint32_t stream;
    enum xfer_kind kind;
    int fd;           /* READ: the file (a dup for PREAD); WRITE: the file */
    DIR *dir;         /* READDIR */
    uint64_t offset;  /* READ: where the next chunk starts */
    uint64_t left;    /* READ: bytes still wanted, UINT64_MAX = to the end */
    uint64_t total;   /* bytes sent or written; READDIR: entries sent */
    uint64_t credit;  /* READ, READDIR: payload bytes that may still go out */
    uint32_t window;  /* READ_FILE, READDIR: the cap of credit; 0 = PREAD */
    bool released;    /* OUT_ACK{AP_OUT_ACK_RELEASE}: credit no longer counts */
    uint32_t wflags;  /* WRITE: AP_WRITE_* */
    char *tmp;        /* WRITE with AP_WRITE_ATOMIC: the temporary name */
    char *target;     /* WRITE with AP_WRITE_ATOMIC: the final name */
    bool has_pending; /* READDIR: an entry that did not fit the last frame */
    uint8_t pending[AP_FS_DIRENT_MAX];
    size_t pending_len;
};

void files_init(struct files *f, struct outq *q)
{
    memset(f, 0, sizeof(*f));
    f->q = q;
    f->next_id = 1;
    for (size_t i = 0; i < FILES_MAX_HANDLES; i++)
        f->fds[i] = -1;
}

/* ---- answers ---- */

void files_reply_errno(struct files *f, uint32_t stream, int err, const char *what)
{
    uint8_t p[AP_FS_ERRNO_MAX];
    char msg[AP_FS_MSG_MAX + 1];

    snprintf(msg, sizeof(msg), "%s: %s", what, strerror(err));
    outq_push(f->q, AP_FS_ERRNO, stream, p, ap_fs_errno_encode(err, msg, p));
}

static void reply(struct files *f, uint32_t stream, const void *p, size_t len)
{
    outq_push(f->q, AP_FS_REPLY, stream, p, len);
}

static void reply_u64(struct files *f, uint32_t stream, uint64_t v)
{
    uint8_t p[8];

    ap_u64_encode(v, p);
    reply(f, stream, p, sizeof(p));
}

static void attr_from_stat(const struct stat *st, struct ap_fs_attr *a)
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

    attr_from_stat(st, &a);
    ap_fs_attr_encode(&a, p);
    reply(f, stream, p, sizeof(p));
}

/* After a successful change: the attr of path (stat() if follow, else
 * lstat()), or an empty reply if it is gone already. */
static void reply_path_attr(struct files *f, uint32_t stream, const char *path, bool follow)
{
    struct stat st;

    if ((follow ? stat(path, &st) : lstat(path, &st)) < 0) {
        reply(f, stream, NULL, 0);
        return;
    }
    reply_stat(f, stream, &st);
}

/* ---- handles ---- */

static int handle_fd(const struct files *f, uint32_t id)
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

/* ---- transfers ---- */

static struct files_xfer *xfer_find(const struct files *f, uint32_t stream)
{
    for (size_t i = 0; i < FILES_MAX_XFERS; i++)
        if (f->xfers[i] && f->xfers[i]->stream == stream)
            return f->xfers[i];
    return NULL;
}

bool files_has_xfer(const struct files *f, uint32_t stream)
{
    return xfer_find(f, stream) != NULL;
}

/* A new transfer in a free slot, or NULL (*ret_err: EBUSY or ENOMEM). */
static struct files_xfer *xfer_new(struct files *f, uint32_t stream, enum xfer_kind kind,
                                   int *ret_err)
{
    struct files_xfer *x;

    if (f->nxfers >= FILES_MAX_XFERS) {
        *ret_err = EBUSY;
        return NULL;
    }
    x = calloc(1, sizeof(*x));
    if (!x) {
        *ret_err = ENOMEM;
        return NULL;
    }
    x->stream = stream;
    x->kind = kind;
    x->fd = -1;
    for (size_t i = 0; i < FILES_MAX_XFERS; i++)
        if (!f->xfers[i]) {
            f->xfers[i] = x;
            break;
        }
    f->nxfers++;
    return x;
}

/* Forget x: close what it holds; an unfinished atomic upload's temporary
 * file is removed. */
static void xfer_end(struct files *f, struct files_xfer *x)
{
    for (size_t i = 0; i < FILES_MAX_XFERS; i++)
        if (f->xfers[i] == x) {
            f->xfers[i] = NULL;
            f->nxfers--;
            break;
        }
    if (x->fd >= 0)
        close(x->fd);
    if (x->dir)
        closedir(x->dir);
    if (x->tmp)
        unlink(x->tmp);
    free(x->tmp);
    free(x->target);
    free(x);
}

static void xfer_fail(struct files *f, struct files_xfer *x, int err, const char *what)
{
    files_reply_errno(f, x->stream, err, what);
    xfer_end(f, x);
}

void files_reset(struct files *f)
{
    for (size_t i = 0; i < FILES_MAX_XFERS; i++)
        if (f->xfers[i])
            xfer_end(f, f->xfers[i]);
    for (size_t i = 0; i < FILES_MAX_HANDLES; i++)
        if (f->fds[i] >= 0) {
            close(f->fds[i]);
            f->fds[i] = -1;
        }
}

/* ---- helpers ---- */

/* Open path as a regular file with flags (plus FILES_OPEN_FLAGS) and mode.
 * Returns the fd or -errno (-EISDIR for a directory, -EINVAL for another
 * non-regular file). */
static int open_regular(const char *path, int flags, mode_t mode)
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

/* mkdir path; with parents, also every missing ancestor (FILES_DIR_MODE),
 * and an existing directory at path is success.  Returns 0 or -errno. */
static int mkdir_parents(const char *path, mode_t mode, bool parents)
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
static void parent_of(const char *path, char ret[AP_FS_PATH_MAX + 1])
{
    const char *slash = strrchr(path, '/');
    size_t n = (size_t)(slash - path);

    if (n == 0)
        n = 1;
    memcpy(ret, path, n);
    ret[n] = '\0';
}

/* ---- downloads ---- */

static bool xfer_can_send(const struct files_xfer *x)
{
    if (x->kind == XFER_WRITE)
        return false;
    if (x->released)
        return true;
    return x->credit >= (x->kind == XFER_READDIR ? AP_FS_DIRENT_MAX : 1);
}

static void xfer_spend(struct files_xfer *x, size_t n)
{
    if (!x->released)
        x->credit -= n;
}

/* Send one chunk of file x.  May end x.  Returns false if nothing
 * happened (no memory for a buffer, an interrupted read). */
static bool read_step(struct files *f, struct files_xfer *x)
{
    struct outq_frame *fr;
    uint8_t *buf = outq_data_begin(f->q, &fr);
    size_t want = AP_FS_CHUNK_MAX;
    ssize_t n;

    if (!buf)
        return false; /* out of memory: try again next round */
    if (!x->released)
        want = (size_t)MIN((uint64_t)want, x->credit);
    want = (size_t)MIN((uint64_t)want, x->left);
    n = pread(x->fd, buf, want, (off_t)x->offset);
    if (n < 0) {
        int err = errno;

        outq_data_commit(f->q, fr, AP_FS_RDATA, x->stream, 0);
        if (err == EINTR || err == EAGAIN)
            return false;
        xfer_fail(f, x, err, "read");
        return true;
    }
    outq_data_commit(f->q, fr, AP_FS_RDATA, x->stream, (size_t)n);
    x->offset += (uint64_t)n;
    x->total += (uint64_t)n;
    if (x->left != UINT64_MAX)
        x->left -= (uint64_t)n;
    xfer_spend(x, (size_t)n);
    if (n == 0 || x->left == 0) {
        reply_u64(f, x->stream, x->total);
        xfer_end(f, x);
    }
    return true;
}

/* Encode the next directory entry of x into x->pending.  Returns 1, 0 at
 * the end of the directory, or -errno. */
static int readdir_next(struct files_xfer *x)
{
    for (;;) {
        struct ap_fs_attr a;
        struct dirent *de;
        struct stat st;
        int n;

        errno = 0;
        de = readdir(x->dir);
        if (!de)
            return errno ? -errno : 0;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        /* an entry removed since readdir() saw it is simply not listed */
        if (fstatat(dirfd(x->dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        attr_from_stat(&st, &a);
        n = ap_fs_dirent_encode(de->d_name, &a, x->pending);
        if (n < 0)
            continue;
        x->pending_len = (size_t)n;
        x->has_pending = true;
        return 1;
    }
}

/* Send one FS_DIRENTS frame of whole entries for x.  May end x.  Returns
 * false if nothing happened (no memory for a buffer). */
static bool readdir_step(struct files *f, struct files_xfer *x)
{
    struct outq_frame *fr;
    uint8_t *buf = outq_data_begin(f->q, &fr);
    size_t cap = AP_FS_CHUNK_MAX, used = 0;
    uint64_t count = 0;
    int r = 1;

    if (!buf)
        return false;
    if (!x->released)
        cap = (size_t)MIN((uint64_t)cap, x->credit);
    for (;;) {
        if (!x->has_pending) {
            r = readdir_next(x);
            if (r <= 0)
                break;
        }
        if (used + x->pending_len > cap)
            break;
        memcpy(buf + used, x->pending, x->pending_len);
        used += x->pending_len;
        x->has_pending = false;
        count++;
    }
    outq_data_commit(f->q, fr, AP_FS_DIRENTS, x->stream, used);
    xfer_spend(x, used);
    x->total += count;
    if (r < 0) {
        xfer_fail(f, x, -r, "readdir");
    } else if (r == 0) {
        reply_u64(f, x->stream, x->total);
        xfer_end(f, x);
    }
    return true;
}

void files_pump(struct files *f)
{
    bool progress = true;

    /* round-robin, one chunk per transfer per pass, so no download starves
     * another */
    while (progress && f->nxfers > 0) {
        progress = false;
        for (size_t i = 0; i < FILES_MAX_XFERS; i++) {
            struct files_xfer *x = f->xfers[i];

            if (outq_is_full(f->q))
                return;
            if (!x || !xfer_can_send(x))
                continue;
            if (x->kind == XFER_READ ? read_step(f, x) : readdir_step(f, x))
                progress = true;
        }
    }
}

int files_ack(struct files *f, uint32_t stream, uint32_t n)
{
    struct files_xfer *x = xfer_find(f, stream);

    if (!x || x->kind == XFER_WRITE)
        return -ENOENT;
    if (x->window == 0)
        return 0; /* PREAD: its length is its credit */
    if (n == AP_OUT_ACK_RELEASE) {
        x->released = true;
        return 0;
    }
    if (x->credit + n > x->window) {
        alog_warn("stream %u: OUT_ACK for more than is outstanding, clamped", stream);
        x->credit = x->window;
        return 0;
    }
    x->credit += n;
    return 0;
}

void files_cancel(struct files *f, uint32_t stream)
{
    struct files_xfer *x = xfer_find(f, stream);

    if (x)
        xfer_fail(f, x, ECANCELED, "cancelled");
}

/* ---- uploads ---- */

/* Start WRITE_FILE: open the file (or its temporary twin) and wait for
 * FS_DATA. */
static void write_file_start(struct files *f, uint32_t stream, const struct ap_fs_req *req)
{
    char dir[AP_FS_PATH_MAX + 1];
    uint32_t fl = ap_fs_req_has(req, APF_FLAGS) ? req->flags : 0;
    mode_t mode = ap_fs_req_has(req, APF_MODE) ? req->mode : FILES_FILE_MODE;
    struct files_xfer *x;
    struct stat st;
    int err, r;

    x = xfer_new(f, stream, XFER_WRITE, &err);
    if (!x) {
        files_reply_errno(f, stream, err, "write file");
        return;
    }
    x->wflags = fl;
    parent_of(req->path, dir);
    if (fl & AP_WRITE_PARENTS) {
        r = mkdir_parents(dir, FILES_DIR_MODE, true);
        if (r < 0) {
            xfer_fail(f, x, -r, "create parent directories");
            return;
        }
    }
    if (!(fl & AP_WRITE_ATOMIC)) {
        int oflags = O_WRONLY | O_CREAT | ((fl & AP_WRITE_EXCL) ? O_EXCL : 0) |
                     ((fl & AP_WRITE_APPEND) ? O_APPEND : O_TRUNC);

        x->fd = open_regular(req->path, oflags, mode);
        if (x->fd < 0) {
            err = -x->fd;
            x->fd = -1;
            xfer_fail(f, x, err, "open");
            return;
        }
        if (ap_fs_req_has(req, APF_MODE) && fchmod(x->fd, mode) < 0) {
            xfer_fail(f, x, errno, "chmod");
            return;
        }
        return;
    }

    /* atomic: a temporary name in the same directory, renamed at the end */
    if (fl & AP_WRITE_EXCL && lstat(req->path, &st) == 0) {
        xfer_fail(f, x, EEXIST, "write file");
        return;
    }
    if (!ap_fs_req_has(req, APF_MODE) && stat(req->path, &st) == 0 && S_ISREG(st.st_mode))
        mode = st.st_mode & 07777; /* replacing keeps the old file's mode */
    {
        const char *base = strrchr(req->path, '/') + 1;
        size_t blen = strlen(base);
        char tmp[AP_FS_PATH_MAX + 1];
        int n;

        /* "." + base + suffix must stay a valid name */
        if (blen + 1 + strlen(FILES_TMP_SUFFIX) > AP_FS_NAME_MAX)
            blen = 0;
        n = snprintf(tmp, sizeof(tmp), "%s%s.%.*s%s", dir, strcmp(dir, "/") ? "/" : "", (int)blen,
                     base, FILES_TMP_SUFFIX);
        if (n < 0 || (size_t)n >= sizeof(tmp)) {
            xfer_fail(f, x, ENAMETOOLONG, "temporary name");
            return;
        }
        x->fd = mkostemp(tmp, O_CLOEXEC);
        if (x->fd < 0) {
            xfer_fail(f, x, errno, "create temporary file");
            return;
        }
        x->tmp = strdup(tmp);
        x->target = strdup(req->path);
        if (!x->tmp || !x->target) {
            if (!x->tmp)
                unlink(tmp);
            xfer_fail(f, x, ENOMEM, "write file");
            return;
        }
    }
    if (fchmod(x->fd, mode) < 0)
        xfer_fail(f, x, errno, "chmod");
}

/* The empty FS_DATA: make the upload final and answer. */
static void write_file_finish(struct files *f, struct files_xfer *x)
{
    int fd = x->fd;

    if ((x->wflags & AP_WRITE_FSYNC) && fsync(fd) < 0) {
        xfer_fail(f, x, errno, "fsync");
        return;
    }
    x->fd = -1;
    if (close(fd) < 0 && errno != EINTR) {
        xfer_fail(f, x, errno, "close");
        return;
    }
    if (x->tmp) {
        if (x->wflags & AP_WRITE_EXCL) {
            /* link() fails if the name was taken meanwhile; rename() would
             * replace it */
            if (link(x->tmp, x->target) < 0) {
                xfer_fail(f, x, errno, "link into place");
                return;
            }
            unlink(x->tmp);
        } else if (rename(x->tmp, x->target) < 0) {
            xfer_fail(f, x, errno, "rename into place");
            return;
        }
        free(x->tmp);
        x->tmp = NULL;
    }
    reply_u64(f, x->stream, x->total);
    xfer_end(f, x);
}

void files_data(struct files *f, uint32_t stream, const uint8_t *p, size_t len)
{
    struct files_xfer *x = xfer_find(f, stream);
    uint8_t ack[4];
    size_t done = 0;

    if (!x || x->kind != XFER_WRITE)
        return; /* the upload failed already and was answered */
    if (len == 0) {
        write_file_finish(f, x);
        return;
    }
    if (len > AP_FS_CHUNK_MAX) {
        xfer_fail(f, x, E2BIG, "FS_DATA over AP_FS_CHUNK_MAX");
        return;
    }
    while (done < len) {
        ssize_t n = write(x->fd, p + done, len - done);

        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            xfer_fail(f, x, errno, "write");
            return;
        }
        done += (size_t)n;
    }
    x->total += len;
    ap_u32_encode((uint32_t)len, ack);
    outq_push(f->q, AP_WINDOW, stream, ack, sizeof(ack));
}

/* ---- requests ---- */

/* Start a download: READ_FILE (own fd), PREAD (a dup of the handle's fd),
 * READDIR. */
static void download_start(struct files *f, uint32_t stream, const struct ap_fs_req *req)
{
    struct files_xfer *x;
    int err;

    if (req->op == APO_PREAD && req->length == 0) {
        reply_u64(f, stream, 0);
        return;
    }
    x = xfer_new(f, stream, req->op == APO_READDIR ? XFER_READDIR : XFER_READ, &err);
    if (!x) {
        files_reply_errno(f, stream, err, ap_fs_op_name(req->op));
        return;
    }
    switch (req->op) {
    case APO_READDIR:
        x->dir = opendir(req->path);
        if (!x->dir) {
            xfer_fail(f, x, errno, "opendir");
            return;
        }
        x->credit = x->window = req->window;
        return;
    case APO_READ_FILE:
        x->fd = open_regular(req->path, O_RDONLY, 0);
        x->offset = ap_fs_req_has(req, APF_OFFSET) ? req->offset : 0;
        x->left = ap_fs_req_has(req, APF_LENGTH) ? req->length : UINT64_MAX;
        x->credit = x->window = req->window;
        break;
    default: /* APO_PREAD */
        /* a dup: CLOSE of the handle must not pull the fd from under us */
        x->fd = handle_fd(f, req->handle);
        if (x->fd >= 0) {
            int d = fcntl(x->fd, F_DUPFD_CLOEXEC, 0);

            x->fd = d < 0 ? -errno : d;
        }
        x->offset = req->offset;
        x->left = x->credit = req->length;
        break;
    }
    if (x->fd < 0) {
        err = -x->fd;
        x->fd = -1;
        xfer_fail(f, x, err, req->op == APO_PREAD ? "handle" : "open");
        return;
    }
    if (x->left == 0) {
        reply_u64(f, stream, 0);
        xfer_end(f, x);
    }
}

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
    fd =
        open_regular(req->path, oflags, ap_fs_req_has(req, APF_MODE) ? req->mode : FILES_FILE_MODE);
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
    attr_from_stat(&st, &a);
    ap_fs_attr_encode(&a, p + 4);
    reply(f, stream, p, sizeof(p));
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
                reply(f, stream, NULL, 0);
            return;
        }
    files_reply_errno(f, stream, EBADF, "close");
}

static void op_pwrite(struct files *f, uint32_t stream, const struct ap_fs_req *req)
{
    int fd = handle_fd(f, req->handle);
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
    reply_u64(f, stream, done);
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
    reply(f, stream, p, sizeof(p));
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
    reply(f, stream, buf, (size_t)n);
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
        fd = handle_fd(f, req->handle);
        if (fd < 0)
            return fd;
        if (fstat(fd, &st) < 0)
            return -errno;
        reply_stat(f, stream, &st);
        return 0;
    case APO_TRUNCATE:
        if (ap_fs_req_has(req, APF_HANDLE)) {
            fd = handle_fd(f, req->handle);
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
        int r = mkdir_parents(req->path, ap_fs_req_has(req, APF_MODE) ? req->mode : FILES_DIR_MODE,
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
        fd = handle_fd(f, req->handle);
        if (fd < 0)
            return fd;
        if ((ap_fs_req_has(req, APF_FLAGS) && (req->flags & AP_FSYNC_DATA) ? fdatasync(fd)
                                                                           : fsync(fd)) < 0)
            return -errno;
        break;
    default:
        return -EOPNOTSUPP;
    }
    reply(f, stream, NULL, 0);
    return 0;
}

void files_request(struct files *f, uint32_t stream, const struct ap_fs_req *req)
{
    int r;

    switch (req->op) {
    case APO_READDIR:
    case APO_READ_FILE:
    case APO_PREAD:
        download_start(f, stream, req);
        return;
    case APO_WRITE_FILE:
        write_file_start(f, stream, req);
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
