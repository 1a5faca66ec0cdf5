/* files_xfer.c — the transfers of the agent's file operations (files.h):
 * downloads (READ_FILE, PREAD, READDIR) produced chunk by chunk under the
 * host's credit, uploads (WRITE_FILE) written frame by frame as FS_DATA
 * arrives, and the table they live in.  Simple requests are files.c's. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alog.h"
#include "files-internal.h"
#include "macro.h"

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
    files_handles_reset(f);
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
        files_reply_u64(f, x->stream, x->total);
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
        files_attr_from_stat(&st, &a);
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
        files_reply_u64(f, x->stream, x->total);
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
void files_upload_start(struct files *f, uint32_t stream, const struct ap_fs_req *req)
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
    files_parent_of(req->path, dir);
    if (fl & AP_WRITE_PARENTS) {
        r = files_mkdir_parents(dir, FILES_DIR_MODE, true);
        if (r < 0) {
            xfer_fail(f, x, -r, "create parent directories");
            return;
        }
    }
    if (!(fl & AP_WRITE_ATOMIC)) {
        int oflags = O_WRONLY | O_CREAT | ((fl & AP_WRITE_EXCL) ? O_EXCL : 0) |
                     ((fl & AP_WRITE_APPEND) ? O_APPEND : O_TRUNC);

        x->fd = files_open_regular(req->path, oflags, mode);
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
    files_reply_u64(f, x->stream, x->total);
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

/* ---- starting a download ---- */

/* Start a download: READ_FILE (own fd), PREAD (a dup of the handle's fd),
 * READDIR. */
void files_download_start(struct files *f, uint32_t stream, const struct ap_fs_req *req)
{
    struct files_xfer *x;
    int err;

    if (req->op == APO_PREAD && req->length == 0) {
        files_reply_u64(f, stream, 0);
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
        x->fd = files_open_regular(req->path, O_RDONLY, 0);
        x->offset = ap_fs_req_has(req, APF_OFFSET) ? req->offset : 0;
        x->left = ap_fs_req_has(req, APF_LENGTH) ? req->length : UINT64_MAX;
        x->credit = x->window = req->window;
        break;
    default: /* APO_PREAD */
        /* a dup: CLOSE of the handle must not pull the fd from under us */
        x->fd = files_handle_fd(f, req->handle);
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
        files_reply_u64(f, stream, 0);
        xfer_end(f, x);
    }
}
