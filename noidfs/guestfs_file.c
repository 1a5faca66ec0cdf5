/* guestfs_file.c — open files of VM/fs/ (guestfs.c says how fs/ works):
 * each FUSE open is one OPEN in the guest, whose handle the H_GUEST handle
 * keeps; reads and writes are PREAD/PWRITE on it, release is CLOSE.
 *
 * The guest forgets its handles when the VM is restored or its agent
 * restarts: a handle of a VM restored through this mount is marked stale
 * and never used again, and the guest's EBADF on any other is EIO, for an
 * open file that no longer exists in the guest.  (A restored agent starts
 * its handle numbers at a fresh random value each session, agent/files.c,
 * so a stale number of a VM restored through the API does not reach
 * another file either, but for a 1 in 2^32 / 128 chance.) */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "guestfs-internal.h"
#include "macro.h"

bool gfs_handle_is_stale(struct handle *h)
{
    bool stale;

    pthread_mutex_lock(&h->fs->handles_lock);
    stale = h->gstale;
    pthread_mutex_unlock(&h->fs->handles_lock);
    return stale;
}

/* A request on open file h.  The guest forgets its handles when the VM is
 * restored or its agent restarts (EBADF: we never send a handle it did not
 * give us), and the file is then gone for this open: EIO, as for a VM
 * that stopped. */
int gfs_hcall(struct handle *h, const struct ap_fs_req *req, struct noidfs_fs_reply *rep,
              struct nerr *e)
{
    int r;

    if (gfs_handle_is_stale(h))
        return nerr_set(e, -EIO, "the VM was restored: the file is no longer open in the guest");
    r = gfs_call(h->fs, h->node, req, rep, e);
    if (r == -EBADF)
        r = nerr_reset(e, -EIO,
                       "the guest no longer has the file open (the VM was restored, or its "
                       "agent restarted)");
    return r;
}

void guestfs_vm_restored(struct noidfs *fs, const char *user, const char *vm)
{
    pthread_mutex_lock(&fs->handles_lock);
    for (struct handle *h = fs->handles; h; h = h->next)
        if (h->kind == H_GUEST && strcmp(h->node->vm, vm) == 0 &&
            (user ? h->node->user && strcmp(h->node->user, user) == 0 : !h->node->user))
            h->gstale = true;
    pthread_mutex_unlock(&fs->handles_lock);
}

struct handle *gfs_handle_of(struct fuse_file_info *fi)
{
    struct handle *h = fi ? (struct handle *)(uintptr_t)fi->fh : NULL;

    return h && h->kind == H_GUEST ? h : NULL;
}

/* OPEN's flags for open(2) flags: only what the guest's open needs; the
 * kernel checked permissions and asks for O_CREAT through create. */
static uint32_t open_flags(int flags)
{
    uint32_t f = AP_OPEN_NOFOLLOW; /* the node's own file, never a link's target */

    switch (flags & O_ACCMODE) {
    case O_WRONLY:
        f |= AP_OPEN_WRONLY;
        break;
    case O_RDWR:
        f |= AP_OPEN_RDWR;
        break;
    default:
        f |= AP_OPEN_RDONLY;
        break;
    }
    if (flags & O_TRUNC)
        f |= AP_OPEN_TRUNC;
    if (flags & O_APPEND)
        f |= AP_OPEN_APPEND;
    return f;
}

static void guest_close(struct noidfs *fs, const struct node *n, uint32_t ghandle)
{
    struct noidfs_fs_reply rep = {0};
    struct ap_fs_req q;
    struct nerr e = {0};
    int r;

    gfs_req_handle(&q, APO_CLOSE, ghandle);
    r = gfs_call_counted(fs, n, &q, &rep, true, &e);
    /* EBADF: the guest's agent dropped its handles already (restore) */
    if (r < 0 && r != -EBADF)
        guestfs_errno("close", n, NULL, r, &e);
}

/* A H_GUEST handle for the guest's ghandle, its open flags in fi; fills
 * fi for the reply.  NULL: out of memory (the guest's handle is closed). */
static struct handle *handle_make(struct noidfs *fs, const struct node *n, uint32_t ghandle,
                                  const struct ap_fs_attr *a, struct fuse_file_info *fi)
{
    struct handle *h = fs_handle_new(fs, n, fi->flags);
    bool unchanged;

    if (!h) {
        guest_close(fs, n, ghandle);
        return NULL;
    }
    h->kind = H_GUEST;
    h->ghandle = ghandle;
    h->gappend = fi->flags & O_APPEND;
    h->gsync = fi->flags & (O_SYNC | O_DSYNC);
    fs_handle_add(fs, h);
    fi->fh = (uintptr_t)h;
    /* the kernel's cached pages and size are right while the file is as
     * the kernel was last told; else the pages go (keep_cache off) and so
     * do the attributes, now, before the open returns: a read stops at the
     * cached size, which would otherwise stay for up to cache_secs */
    unchanged = nodes_guest_unchanged(fs->nodes, n, a);
    fi->keep_cache = unchanged;
    if (!unchanged)
        fs_inval_attr_now(fs, n->ino);
    /* appends land where the guest's file ends, which the kernel's cached
     * size may not know: they bypass the page cache.  So do reads of a file
     * that says it is empty: the kernel would not even ask for its bytes,
     * while /proc and /sys files say so and have content.  And writes
     * through a write-only open (cp, tar -x, >): nothing reads them back
     * through it, nor can it be mapped shared, and the page cache would
     * cut each write() that does not end on a page boundary into a request
     * per page (a round trip to the guest each) */
    fi->direct_io = h->gappend || (fi->flags & O_ACCMODE) == O_WRONLY ||
                    (a->size == 0 && (fi->flags & O_ACCMODE) == O_RDONLY);
    return h;
}

void guestfs_open(fuse_req_t req, const struct node *n, struct fuse_file_info *fi)
{
    struct noidfs *fs = fs_of(req);
    struct noidfs_fs_reply rep = {0};
    char path[GPATH_SIZE] = "";
    struct handle *h;
    struct ap_fs_req q;
    struct nerr e = {0};
    int r;

    r = gfs_node_path(fs, n, path);
    if (r >= 0) {
        gfs_req_init(&q, APO_OPEN, path);
        gfs_req_has(&q, APF_FLAGS);
        q.flags = open_flags(fi->flags);
        r = gfs_call(fs, n, &q, &rep, &e);
    }
    if (r < 0) {
        gfs_reply_err(req, "open", n, path, r, &e);
        return;
    }
    if (!nodes_guest_same(fs->nodes, n, &rep.attr)) {
        guest_close(fs, n, rep.handle);
        fuse_reply_err(req, ESTALE); /* another file now: the kernel looks it up again */
        return;
    }
    h = handle_make(fs, n, rep.handle, &rep.attr, fi);
    if (!h) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (fuse_reply_open(req, fi) < 0)
        fs_handle_release(h); /* the opener was interrupted: no release will come */
}

void guestfs_create(fuse_req_t req, const struct node *parent, const char *name, mode_t mode,
                    struct fuse_file_info *fi)
{
    struct noidfs *fs = fs_of(req);
    struct noidfs_fs_reply rep = {0};
    char path[GPATH_SIZE] = "";
    const struct node *n;
    struct fuse_entry_param ep;
    struct handle *h;
    struct ap_fs_req q;
    struct stat st;
    struct nerr e = {0};
    int r;

    r = gfs_child_path(fs, parent, name, path);
    if (r >= 0) {
        gfs_req_init(&q, APO_OPEN, path);
        gfs_req_has(&q, APF_FLAGS);
        gfs_req_has(&q, APF_MODE);
        q.flags = open_flags(fi->flags) | AP_OPEN_CREAT | ((fi->flags & O_EXCL) ? AP_OPEN_EXCL : 0);
        q.mode = mode & 07777; /* the kernel applied the umask */
        r = gfs_call(fs, parent, &q, &rep, &e);
    }
    if (r < 0) {
        gfs_reply_err(req, "create", parent, path, r, &e);
        return;
    }
    n = nodes_ref_guest(fs->nodes, parent->user, parent->vm, path, &rep.attr);
    if (!n) {
        guest_close(fs, parent, rep.handle);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    h = handle_make(fs, n, rep.handle, &rep.attr, fi);
    if (!h) {
        nodes_forget(fs->nodes, n->ino, 1);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    guestfs_attr_to_stat(fs, parent->user, &rep.attr, n->ino, &st);
    layout_fill_entry(fs, n, &st, &ep);
    if (fuse_reply_create(req, &ep, fi) < 0) {
        /* interrupted: neither the entry nor the handle reached the kernel */
        fs_handle_release(h);
        nodes_forget(fs->nodes, n->ino, 1);
    }
}

void guestfs_read(fuse_req_t req, struct handle *h, size_t size, off_t off)
{
    _cleanup_free_ char *buf = malloc(size ? size : 1);
    struct ap_fs_req q;
    struct nerr e = {0};
    size_t done = 0;
    int r = 0;

    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    /* the kernel asks for at most max_read (1 MiB) at once; more would be
     * several PREADs */
    while (done < size) {
        struct noidfs_fs_reply rep = {.read_buf = buf + done};
        size_t want = MIN(size - done, (size_t)AP_FS_IO_MAX);

        gfs_req_handle(&q, APO_PREAD, h->ghandle);
        gfs_req_has(&q, APF_OFFSET);
        gfs_req_has(&q, APF_LENGTH);
        q.offset = (uint64_t)off + done;
        q.length = want;
        r = gfs_hcall(h, &q, &rep, &e);
        if (r < 0)
            break;
        done += (size_t)MIN(rep.count, (uint64_t)want);
        if (rep.count < want)
            break; /* the end of the file */
    }
    if (r < 0 && done == 0) {
        gfs_reply_err(req, "read", h->node, NULL, r, &e);
        return;
    }
    fuse_reply_buf(req, buf, done);
}

void guestfs_write(fuse_req_t req, struct handle *h, const char *buf, size_t size, off_t off)
{
    struct noidfs *fs = h->fs;
    struct noidfs_fs_reply rep;
    struct ap_fs_req q;
    struct nerr e = {0};
    size_t done = 0;
    int r = 0;

    while (done < size) {
        size_t chunk = MIN(size - done, (size_t)AP_FS_IO_MAX);

        memset(&rep, 0, sizeof(rep));
        gfs_req_handle(&q, APO_PWRITE, h->ghandle);
        gfs_req_has(&q, APF_OFFSET);
        gfs_req_has(&q, APF_DATA);
        q.offset = (uint64_t)off + done;
        q.data = (const uint8_t *)buf + done;
        q.data_len = chunk;
        r = gfs_hcall(h, &q, &rep, &e);
        if (r < 0)
            break;
        done += (size_t)MIN(rep.count, (uint64_t)chunk);
        if (rep.count < chunk)
            break; /* a short write: the guest says why at the next one */
    }
    if (done > 0 && h->gsync) {
        gfs_req_handle(&q, APO_FSYNC, h->ghandle);
        memset(&rep, 0, sizeof(rep));
        r = gfs_hcall(h, &q, &rep, &e);
        if (r < 0)
            done = 0; /* O_SYNC: not written until it is on the guest's disk */
    }
    /* an append went where the guest's file ended, maybe not where the
     * kernel thought: its size and pages are the guest's to say */
    if (done > 0 && h->gappend)
        fs_inval_inode(fs, h->node->ino);
    if (r < 0 && done == 0) {
        gfs_reply_err(req, "write", h->node, NULL, r, &e);
        return;
    }
    fuse_reply_write(req, done);
}

void guestfs_fsync(fuse_req_t req, struct handle *h, int datasync)
{
    struct noidfs_fs_reply rep = {0};
    struct ap_fs_req q;
    struct nerr e = {0};
    int r;

    gfs_req_handle(&q, APO_FSYNC, h->ghandle);
    if (datasync) {
        gfs_req_has(&q, APF_FLAGS);
        q.flags = AP_FSYNC_DATA;
    }
    r = gfs_hcall(h, &q, &rep, &e);
    fuse_reply_err(req, r < 0 ? guestfs_errno("fsync", h->node, NULL, r, &e) : 0);
}

void guestfs_release(struct handle *h)
{
    /* at shutdown the agent's session ends with the server's connection,
     * which closes every handle of it: no request that could wait.  A
     * stale handle's number may be another file's now. */
    if (!h->fs->exiting && !gfs_handle_is_stale(h))
        guest_close(h->fs, h->node, h->ghandle);
}
