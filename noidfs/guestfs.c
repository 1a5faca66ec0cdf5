/* guestfs.c — VM/fs/: the guest's root file system, each FUSE request
 * turned into one or a few guest file requests (struct ap_fs_req) through
 * the binding's fs_call / fs_dir_* ops, served by the guest's agent with
 * its own syscalls.  The host never opens the guest's disk.
 *
 * Identity.  A node is (user, VM, guest path) (nodes.c says why not the
 * guest's inode number); renames through the mount move the nodes, and a
 * path whose guest inode changed gets a new node.  Every path-based
 * request names the node's path as it is now.  When attributes read at a
 * node's path show another file than the node's (replaced in the guest),
 * the answer is ESTALE: the kernel then looks the path up again and
 * retries the call once, which finds the new file.
 *
 * Caching.  Entries and attributes live cache_secs (1 s), like the rest of
 * the mount; negative entries are not cached (a file a command just made
 * in the guest shows at once).  File data goes through the page cache,
 * written through to the guest as it is written (no writeback cache).  An
 * open keeps the cached pages only when the guest's size, mtime and ctime
 * are what the kernel was last told; otherwise pages and attributes are
 * dropped, so a file changed in the guest reads right at once; the kernel
 * also drops pages when a getattr shows mtime or size moved
 * (auto_inval_data).  Writes with O_APPEND are direct (the guest decides
 * where they land), and so are reads of a file that was empty when opened
 * (/proc's files all say they are).
 *
 * Owners.  The guest's root (uid or gid 0) is shown as the owner of the
 * user's directory (its local account on the server-side mount), so that
 * account, which the kernel checks against these attributes
 * (default_permissions), may do in fs/ what the guest's root may: the
 * agent acts as the guest's root anyway.  Other ids are the guest's own
 * numbers; chown to the owner's uid or gid sets the guest's 0.
 *
 * Errors.  The guest's errno goes back unchanged; the binding turned its
 * own failures (VM gone or stopped, agent lost, no answer in time) into
 * EIO, which is logged with the reason.  Every request may wait for the
 * guest: it counts as a blocking request of its user (EAGAIN beyond the
 * bound), and no lock is held across a binding call. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "fs-internal.h"
#include "log.h"
#include "macro.h"

/* renameat2() flags as FUSE passes them (linux/fs.h) */
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1u << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1u << 1)
#endif

bool guestfs_enabled(const struct noidfs *fs)
{
    return fs->ops->fs_call && fs->ops->fs_dir_open && fs->ops->fs_dir_next &&
           fs->ops->fs_dir_close;
}

/* ---- requests ---- */

static void req_init(struct ap_fs_req *r, uint8_t op, const char *path)
{
    memset(r, 0, sizeof(*r));
    r->op = op;
    if (path) {
        r->present = 1u << APF_PATH;
        snprintf(r->path, sizeof(r->path), "%s", path);
    }
}

static void req_handle(struct ap_fs_req *r, uint8_t op, uint32_t handle)
{
    req_init(r, op, NULL);
    r->present = 1u << APF_HANDLE;
    r->handle = handle;
}

static inline void req_has(struct ap_fs_req *r, enum ap_fs_tag tag)
{
    r->present |= 1u << tag;
}

/* One request for n's VM, counted as a blocking request of its user:
 * -EAGAIN beyond the bound, unless must (a CLOSE: refusing it would leak
 * the guest's handle). */
static int gcall_counted(struct noidfs *fs, const struct node *n, const struct ap_fs_req *req,
                         struct noidfs_fs_reply *rep, bool must, struct nerr *e)
{
    bool counted = false;
    int r;

    if (!fs_blocking_enter(fs, n->user, &counted) && !must)
        return nerr_set(e, -EAGAIN, "too many requests of this user waiting");
    r = fs->ops->fs_call(fs->b, n->user, n->vm, req, rep, e);
    fs_blocking_leave(fs, n->user, counted);
    return r;
}

static int gcall(struct noidfs *fs, const struct node *n, const struct ap_fs_req *req,
                 struct noidfs_fs_reply *rep, struct nerr *e)
{
    return gcall_counted(fs, n, req, rep, false, e);
}

static bool handle_stale(struct handle *h)
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
static int hcall(struct handle *h, const struct ap_fs_req *req, struct noidfs_fs_reply *rep,
                 struct nerr *e)
{
    int r;

    if (handle_stale(h))
        return nerr_set(e, -EIO, "the VM was restored: the file is no longer open in the guest");
    r = gcall(h->fs, h->node, req, rep, e);
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

int guestfs_errno(const char *what, const struct node *n, const char *path, int r,
                  const struct nerr *e)
{
    int err = errmap_guest(r);

    /* a guest's ENOENT, EEXIST, ENOTEMPTY... are answers, not failures */
    if (err == EIO || err == EAGAIN || err == ENOMEM)
        log_warn("noidfs: %s %s/fs%s: %s (%s)", what, n->vm ? n->vm : "",
                 path && path[0] ? path : " (an open file or listing)",
                 e && e->msg[0] ? e->msg : strerror(err), strerror(err));
    return err;
}

static void reply_err(fuse_req_t req, const char *what, const struct node *n, const char *path,
                      int r, const struct nerr *e)
{
    fuse_reply_err(req, guestfs_errno(what, n, path, r, e));
}

/* ---- attributes ---- */

static struct timespec ts_of(const struct ap_fs_time *t)
{
    return (struct timespec){.tv_sec = (time_t)t->sec, .tv_nsec = (long)t->nsec};
}

void guestfs_attr_to_stat(struct noidfs *fs, const char *user, const struct ap_fs_attr *a,
                          fuse_ino_t ino, struct stat *st)
{
    uid_t ouid;
    gid_t ogid;

    layout_owner_of(fs, user, &ouid, &ogid);
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_mode = a->mode;
    st->st_nlink = a->nlink;
    st->st_uid = a->uid == 0 ? ouid : a->uid;
    st->st_gid = a->gid == 0 ? ogid : a->gid;
    st->st_rdev = a->rdev;
    st->st_size = (off_t)a->size;
    st->st_blocks = (blkcnt_t)a->blocks;
    /* the preferred I/O size: cp, cat and friends then move a file in
     * 1 MiB calls, each one request to the guest (one PREAD/PWRITE) */
    st->st_blksize = S_ISREG(a->mode) ? AP_FS_IO_MAX : a->blksize;
    st->st_atim = ts_of(&a->atime);
    st->st_mtim = ts_of(&a->mtime);
    st->st_ctim = ts_of(&a->ctime);
}

/* The guest's id for an owner given through the mount. */
static uint32_t guest_uid(struct noidfs *fs, const char *user, uid_t uid)
{
    uid_t ouid;
    gid_t ogid;

    layout_owner_of(fs, user, &ouid, &ogid);
    return uid == ouid ? 0 : (uint32_t)uid;
}

static uint32_t guest_gid(struct noidfs *fs, const char *user, gid_t gid)
{
    uid_t ouid;
    gid_t ogid;

    layout_owner_of(fs, user, &ouid, &ogid);
    return gid == ogid ? 0 : (uint32_t)gid;
}

/* ---- paths ---- */

/* The guest path of node n: "/" for fs/ itself. */
static int node_path(struct noidfs *fs, const struct node *n, char out[GPATH_SIZE])
{
    return nodes_guest_path(fs->nodes, n, out);
}

/* The guest path of name in directory parent (a guest directory, or the
 * VM's directory for "fs" itself). */
static int child_path(struct noidfs *fs, const struct node *parent, const char *name,
                      char out[GPATH_SIZE])
{
    char dir[GPATH_SIZE];
    int r;

    if (parent->kind != NK_GUEST) {
        snprintf(out, GPATH_SIZE, "/");
        return 0;
    }
    r = node_path(fs, parent, dir);
    if (r < 0)
        return r;
    return gpath_join(dir, name, out);
}

static bool same_vm(const struct node *a, const struct node *b)
{
    return strcmp(a->vm, b->vm) == 0 &&
           (a->user ? b->user && strcmp(a->user, b->user) == 0 : !b->user);
}

/* ---- entries ---- */

/* Reply the entry of the file at path (attributes a) in parent's VM: one
 * lookup counted on its node. */
static void reply_entry(fuse_req_t req, const struct node *parent, const char *path,
                        const struct ap_fs_attr *a)
{
    struct noidfs *fs = fs_of(req);
    const struct node *n = nodes_ref_guest(fs->nodes, parent->user, parent->vm, path, a);
    struct fuse_entry_param ep;
    struct stat st;

    if (!n) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    guestfs_attr_to_stat(fs, parent->user, a, n->ino, &st);
    layout_fill_entry(fs, n, &st, &ep);
    if (fuse_reply_entry(req, &ep) < 0)
        nodes_forget(fs->nodes, n->ino, 1); /* interrupted: not counted */
}

/* The attributes of path, for the entry a change made when the op's
 * answer had none (the path changed again at once). */
static int entry_attr(struct noidfs *fs, const struct node *parent, const char *path,
                      struct noidfs_fs_reply *rep, struct nerr *e)
{
    struct ap_fs_req q;

    if (rep->has_attr)
        return 0;
    req_init(&q, APO_LSTAT, path);
    return gcall(fs, parent, &q, rep, e);
}

void guestfs_lookup(fuse_req_t req, const struct node *parent, const char *name)
{
    struct noidfs *fs = fs_of(req);
    struct noidfs_fs_reply rep = {0};
    char path[GPATH_SIZE];
    struct ap_fs_req q;
    struct nerr e = {0};
    int r;

    r = child_path(fs, parent, name, path);
    if (r < 0) {
        fuse_reply_err(req, r == -EINVAL ? ENOENT : -r);
        return;
    }
    req_init(&q, APO_LSTAT, path);
    r = gcall(fs, parent, &q, &rep, &e);
    if (r < 0) {
        reply_err(req, "lookup", parent, path, r, &e);
        return;
    }
    reply_entry(req, parent, path, &rep.attr);
}

/* ---- attributes of a node ---- */

static struct handle *guest_handle(struct fuse_file_info *fi)
{
    struct handle *h = fi ? (struct handle *)(uintptr_t)fi->fh : NULL;

    return h && h->kind == H_GUEST ? h : NULL;
}

/* Reply a (read at n's path, or through h) as n's attributes; ESTALE when
 * the path names another file now. */
static void reply_attr(fuse_req_t req, const struct node *n, const struct ap_fs_attr *a,
                       bool by_path)
{
    struct noidfs *fs = fs_of(req);
    struct stat st;

    if (by_path && !nodes_guest_same(fs->nodes, n, a)) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    nodes_guest_told(fs->nodes, n, a);
    guestfs_attr_to_stat(fs, n->user, a, n->ino, &st);
    fuse_reply_attr(req, &st, fs->cache_secs);
}

void guestfs_getattr(fuse_req_t req, const struct node *n, struct fuse_file_info *fi)
{
    struct noidfs *fs = fs_of(req);
    struct handle *h = guest_handle(fi);
    struct noidfs_fs_reply rep = {0};
    char path[GPATH_SIZE] = "";
    struct ap_fs_req q;
    struct nerr e = {0};
    int r = -EBADF;

    /* fstat: the open file, even when its name is gone */
    if (h && !handle_stale(h)) {
        req_handle(&q, APO_FSTAT, h->ghandle);
        r = gcall(fs, n, &q, &rep, &e);
        if (r >= 0) {
            reply_attr(req, n, &rep.attr, false);
            return;
        }
        if (r != -EBADF) {
            reply_err(req, "fstat", n, NULL, r, &e);
            return;
        }
        memset(&e, 0, sizeof(e));
    }
    /* a handle the guest forgot (restored): the attributes by name */
    r = node_path(fs, n, path);
    if (r >= 0) {
        req_init(&q, APO_LSTAT, path);
        r = gcall(fs, n, &q, &rep, &e);
    }
    if (r < 0) {
        reply_err(req, "stat", n, path, r, &e);
        return;
    }
    reply_attr(req, n, &rep.attr, true);
}

void guestfs_setattr(fuse_req_t req, const struct node *n, struct stat *attr, int to_set,
                     struct fuse_file_info *fi)
{
    struct noidfs *fs = fs_of(req);
    struct handle *h = guest_handle(fi);
    struct noidfs_fs_reply rep = {0};
    char path[GPATH_SIZE] = "";
    const char *what = "setattr";
    bool by_path = true;
    struct ap_fs_req q;
    struct nerr e = {0};
    /* a removed file has no path; through an open handle it still has a
     * size and attributes */
    int has_path = node_path(fs, n, path);
    int r = 0;

    /* the changes in the order tar makes them: owner (which may clear
     * set-id bits), mode, size, times (a truncate moves mtime) */
    if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
        what = "chown";
        req_init(&q, APO_CHOWN, path);
        req_has(&q, APF_FLAGS);
        q.flags = AP_NOFOLLOW; /* setattr acts on the inode: a symlink itself */
        if (to_set & FUSE_SET_ATTR_UID) {
            req_has(&q, APF_UID);
            q.uid = guest_uid(fs, n->user, attr->st_uid);
        }
        if (to_set & FUSE_SET_ATTR_GID) {
            req_has(&q, APF_GID);
            q.gid = guest_gid(fs, n->user, attr->st_gid);
        }
        r = has_path < 0 ? has_path : gcall(fs, n, &q, &rep, &e);
    }
    if (r >= 0 && (to_set & FUSE_SET_ATTR_MODE)) {
        what = "chmod";
        req_init(&q, APO_CHMOD, path);
        req_has(&q, APF_MODE);
        q.mode = attr->st_mode & 07777;
        r = has_path < 0 ? has_path : gcall(fs, n, &q, &rep, &e);
    }
    if (r >= 0 && (to_set & FUSE_SET_ATTR_SIZE)) {
        what = "truncate";
        if (h)
            req_handle(&q, APO_TRUNCATE, h->ghandle); /* ftruncate, O_TRUNC of an open file */
        else
            req_init(&q, APO_TRUNCATE, path);
        by_path = !h;
        req_has(&q, APF_LENGTH);
        q.length = (uint64_t)attr->st_size;
        r = h ? hcall(h, &q, &rep, &e) : has_path < 0 ? has_path : gcall(fs, n, &q, &rep, &e);
    }
    if (r >= 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
                             FUSE_SET_ATTR_MTIME_NOW))) {
        what = "utimens";
        req_init(&q, APO_UTIMENS, path);
        req_has(&q, APF_FLAGS);
        q.flags = AP_NOFOLLOW;
        req_has(&q, APF_ATIME);
        req_has(&q, APF_MTIME);
        q.atime = (to_set & FUSE_SET_ATTR_ATIME_NOW) ? (struct ap_fs_time){0, AP_TIME_NOW}
                  : (to_set & FUSE_SET_ATTR_ATIME)
                      ? (struct ap_fs_time){attr->st_atim.tv_sec, (uint32_t)attr->st_atim.tv_nsec}
                      : (struct ap_fs_time){0, AP_TIME_OMIT};
        q.mtime = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? (struct ap_fs_time){0, AP_TIME_NOW}
                  : (to_set & FUSE_SET_ATTR_MTIME)
                      ? (struct ap_fs_time){attr->st_mtim.tv_sec, (uint32_t)attr->st_mtim.tv_nsec}
                      : (struct ap_fs_time){0, AP_TIME_OMIT};
        by_path = true;
        r = has_path < 0 ? has_path : gcall(fs, n, &q, &rep, &e);
    }
    /* nothing we can change (ctime alone), or the file vanished meanwhile:
     * what it is now */
    if (r >= 0 && !rep.has_attr) {
        what = "stat";
        if (h)
            req_handle(&q, APO_FSTAT, h->ghandle);
        else
            req_init(&q, APO_LSTAT, path);
        by_path = !h;
        r = h ? hcall(h, &q, &rep, &e) : has_path < 0 ? has_path : gcall(fs, n, &q, &rep, &e);
    }
    if (r < 0) {
        reply_err(req, what, n, path, r, &e);
        return;
    }
    reply_attr(req, n, &rep.attr, by_path);
}

void guestfs_readlink(fuse_req_t req, const struct node *n)
{
    struct noidfs *fs = fs_of(req);
    struct noidfs_fs_reply rep = {0};
    char path[GPATH_SIZE] = "";
    struct ap_fs_req q;
    struct nerr e = {0};
    int r;

    r = node_path(fs, n, path);
    if (r >= 0) {
        req_init(&q, APO_READLINK, path);
        r = gcall(fs, n, &q, &rep, &e);
    }
    if (r < 0) {
        reply_err(req, "readlink", n, path, r, &e);
        return;
    }
    fuse_reply_readlink(req, rep.link);
}

/* The file system holding n (df fs/tmp shows the guest's /tmp). */
void guestfs_statfs(fuse_req_t req, const struct node *n)
{
    struct noidfs *fs = fs_of(req);
    struct noidfs_fs_reply rep = {0};
    char path[GPATH_SIZE] = "/";
    struct ap_fs_req q;
    struct statvfs sv;
    struct nerr e = {0};
    int r;

    if (node_path(fs, n, path) < 0)
        snprintf(path, sizeof(path), "/"); /* a removed file: its VM's root */
    req_init(&q, APO_STATFS, path);
    r = gcall(fs, n, &q, &rep, &e);
    if (r < 0) {
        reply_err(req, "statfs", n, path, r, &e);
        return;
    }
    sv = (struct statvfs){
        .f_bsize = rep.statfs.bsize,
        .f_frsize = rep.statfs.frsize,
        .f_blocks = rep.statfs.blocks,
        .f_bfree = rep.statfs.bfree,
        .f_bavail = rep.statfs.bavail,
        .f_files = rep.statfs.files,
        .f_ffree = rep.statfs.ffree,
        .f_favail = rep.statfs.ffree,
        .f_namemax = rep.statfs.namemax,
    };
    fuse_reply_statfs(req, &sv);
}

/* ---- open files ---- */

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

    req_handle(&q, APO_CLOSE, ghandle);
    r = gcall_counted(fs, n, &q, &rep, true, &e);
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
     * while /proc and /sys files say so and have content */
    fi->direct_io = h->gappend || (a->size == 0 && (fi->flags & O_ACCMODE) == O_RDONLY);
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

    r = node_path(fs, n, path);
    if (r >= 0) {
        req_init(&q, APO_OPEN, path);
        req_has(&q, APF_FLAGS);
        q.flags = open_flags(fi->flags);
        r = gcall(fs, n, &q, &rep, &e);
    }
    if (r < 0) {
        reply_err(req, "open", n, path, r, &e);
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

    r = child_path(fs, parent, name, path);
    if (r >= 0) {
        req_init(&q, APO_OPEN, path);
        req_has(&q, APF_FLAGS);
        req_has(&q, APF_MODE);
        q.flags = open_flags(fi->flags) | AP_OPEN_CREAT | ((fi->flags & O_EXCL) ? AP_OPEN_EXCL : 0);
        q.mode = mode & 07777; /* the kernel applied the umask */
        r = gcall(fs, parent, &q, &rep, &e);
    }
    if (r < 0) {
        reply_err(req, "create", parent, path, r, &e);
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

        req_handle(&q, APO_PREAD, h->ghandle);
        req_has(&q, APF_OFFSET);
        req_has(&q, APF_LENGTH);
        q.offset = (uint64_t)off + done;
        q.length = want;
        r = hcall(h, &q, &rep, &e);
        if (r < 0)
            break;
        done += (size_t)MIN(rep.count, (uint64_t)want);
        if (rep.count < want)
            break; /* the end of the file */
    }
    if (r < 0 && done == 0) {
        reply_err(req, "read", h->node, NULL, r, &e);
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
        req_handle(&q, APO_PWRITE, h->ghandle);
        req_has(&q, APF_OFFSET);
        req_has(&q, APF_DATA);
        q.offset = (uint64_t)off + done;
        q.data = (const uint8_t *)buf + done;
        q.data_len = chunk;
        r = hcall(h, &q, &rep, &e);
        if (r < 0)
            break;
        done += (size_t)MIN(rep.count, (uint64_t)chunk);
        if (rep.count < chunk)
            break; /* a short write: the guest says why at the next one */
    }
    if (done > 0 && h->gsync) {
        req_handle(&q, APO_FSYNC, h->ghandle);
        memset(&rep, 0, sizeof(rep));
        r = hcall(h, &q, &rep, &e);
        if (r < 0)
            done = 0; /* O_SYNC: not written until it is on the guest's disk */
    }
    /* an append went where the guest's file ended, maybe not where the
     * kernel thought: its size and pages are the guest's to say */
    if (done > 0 && h->gappend)
        fs_inval_inode(fs, h->node->ino);
    if (r < 0 && done == 0) {
        reply_err(req, "write", h->node, NULL, r, &e);
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

    req_handle(&q, APO_FSYNC, h->ghandle);
    if (datasync) {
        req_has(&q, APF_FLAGS);
        q.flags = AP_FSYNC_DATA;
    }
    r = hcall(h, &q, &rep, &e);
    fuse_reply_err(req, r < 0 ? guestfs_errno("fsync", h->node, NULL, r, &e) : 0);
}

void guestfs_release(struct handle *h)
{
    /* at shutdown the agent's session ends with the server's connection,
     * which closes every handle of it: no request that could wait.  A
     * stale handle's number may be another file's now. */
    if (!h->fs->exiting && !handle_stale(h))
        guest_close(h->fs, h->node, h->ghandle);
}

/* ---- names ---- */

void guestfs_mkdir(fuse_req_t req, const struct node *parent, const char *name, mode_t mode)
{
    struct noidfs *fs = fs_of(req);
    struct noidfs_fs_reply rep = {0};
    char path[GPATH_SIZE] = "";
    struct ap_fs_req q;
    struct nerr e = {0};
    int r;

    r = child_path(fs, parent, name, path);
    if (r >= 0) {
        req_init(&q, APO_MKDIR, path);
        req_has(&q, APF_MODE);
        q.mode = mode & 07777;
        r = gcall(fs, parent, &q, &rep, &e);
    }
    if (r >= 0)
        r = entry_attr(fs, parent, path, &rep, &e);
    if (r < 0) {
        reply_err(req, "mkdir", parent, path, r, &e);
        return;
    }
    reply_entry(req, parent, path, &rep.attr);
}

void guestfs_unlink(fuse_req_t req, const struct node *parent, const char *name, bool dir)
{
    struct noidfs *fs = fs_of(req);
    struct noidfs_fs_reply rep = {0};
    char path[GPATH_SIZE] = "";
    struct ap_fs_req q;
    struct nerr e = {0};
    int r;

    r = child_path(fs, parent, name, path);
    if (r >= 0) {
        req_init(&q, dir ? APO_RMDIR : APO_UNLINK, path);
        r = gcall(fs, parent, &q, &rep, &e);
    }
    if (r < 0) {
        reply_err(req, dir ? "rmdir" : "unlink", parent, path, r, &e);
        return;
    }
    /* open handles on it go on; a new file there is a new node */
    nodes_guest_detach(fs->nodes, parent->user, parent->vm, path);
    fuse_reply_err(req, 0);
}

void guestfs_rename(fuse_req_t req, const struct node *parent, const char *name,
                    const struct node *newparent, const char *newname, unsigned flags)
{
    struct noidfs *fs = fs_of(req);
    struct noidfs_fs_reply rep = {0};
    char from[GPATH_SIZE] = "", to[GPATH_SIZE] = "";
    struct ap_fs_req q;
    struct nerr e = {0};
    int r;

    if (!same_vm(parent, newparent)) {
        fuse_reply_err(req, EXDEV); /* another VM: another machine */
        return;
    }
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
        fuse_reply_err(req, EINVAL); /* RENAME_WHITEOUT: overlayfs's, not ours */
        return;
    }
    r = child_path(fs, parent, name, from);
    if (r >= 0)
        r = child_path(fs, newparent, newname, to);
    if (r >= 0) {
        req_init(&q, APO_RENAME, from);
        req_has(&q, APF_PATH2);
        snprintf(q.path2, sizeof(q.path2), "%s", to);
        if (flags) {
            req_has(&q, APF_FLAGS);
            q.flags = ((flags & RENAME_NOREPLACE) ? AP_RENAME_NOREPLACE : 0) |
                      ((flags & RENAME_EXCHANGE) ? AP_RENAME_EXCHANGE : 0);
        }
        r = gcall(fs, parent, &q, &rep, &e);
    }
    if (r < 0) {
        reply_err(req, "rename", parent, from, r, &e);
        return;
    }
    /* the kernel moved its dentries; the nodes under them follow */
    nodes_guest_move(fs->nodes, parent->user, parent->vm, from, to, flags & RENAME_EXCHANGE);
    fuse_reply_err(req, 0);
}

void guestfs_symlink(fuse_req_t req, const char *target, const struct node *parent,
                     const char *name)
{
    struct noidfs *fs = fs_of(req);
    struct noidfs_fs_reply rep = {0};
    char path[GPATH_SIZE] = "";
    struct ap_fs_req q;
    struct nerr e = {0};
    int r;

    r = strlen(target) > AP_FS_PATH_MAX ? -ENAMETOOLONG : child_path(fs, parent, name, path);
    if (r >= 0) {
        /* the target is stored as given, relative or not: the guest's
         * meaning of it, which the host resolves in the mount (so an
         * absolute one points at the host's own files from here) */
        req_init(&q, APO_SYMLINK, path);
        req_has(&q, APF_PATH2);
        snprintf(q.path2, sizeof(q.path2), "%s", target);
        r = gcall(fs, parent, &q, &rep, &e);
    }
    if (r >= 0)
        r = entry_attr(fs, parent, path, &rep, &e);
    if (r < 0) {
        reply_err(req, "symlink", parent, path, r, &e);
        return;
    }
    reply_entry(req, parent, path, &rep.attr);
}

void guestfs_link(fuse_req_t req, const struct node *n, const struct node *newparent,
                  const char *newname)
{
    struct noidfs *fs = fs_of(req);
    struct noidfs_fs_reply rep = {0};
    char from[GPATH_SIZE] = "", to[GPATH_SIZE] = "";
    struct ap_fs_req q;
    struct nerr e = {0};
    int r;

    if (!same_vm(n, newparent)) {
        fuse_reply_err(req, EXDEV);
        return;
    }
    r = node_path(fs, n, from);
    if (r >= 0)
        r = child_path(fs, newparent, newname, to);
    if (r >= 0) {
        req_init(&q, APO_LINK, from);
        req_has(&q, APF_PATH2);
        snprintf(q.path2, sizeof(q.path2), "%s", to);
        r = gcall(fs, n, &q, &rep, &e);
    }
    if (r >= 0)
        r = entry_attr(fs, newparent, to, &rep, &e);
    if (r < 0) {
        reply_err(req, "link", n, from, r, &e);
        return;
    }
    /* its link count changed; the new name is a node of its own (a path
     * is an identity here), showing the same file */
    fs_inval_attr(fs, n->ino);
    reply_entry(req, newparent, to, &rep.attr);
}

/* ---- listing ---- */

int guestfs_list(struct noidfs *fs, const struct node *dir,
                 int (*add)(void *ctx, const char *name, const char *gpath,
                            const struct ap_fs_attr *a),
                 void *ctx, struct nerr *e)
{
    struct noidfs_fs_dir *d = NULL;
    char path[GPATH_SIZE], child[GPATH_SIZE];
    char name[AP_FS_NAME_MAX + 1];
    struct ap_fs_attr a;
    bool counted;
    int r;

    r = node_path(fs, dir, path);
    if (r < 0)
        return r;
    if (!fs_blocking_enter(fs, dir->user, &counted))
        return nerr_set(e, -EAGAIN, "too many requests of this user waiting");
    r = fs->ops->fs_dir_open(fs->b, dir->user, dir->vm, path, &d, e);
    while (r >= 0) {
        r = fs->ops->fs_dir_next(d, name, &a, e);
        if (r <= 0)
            break;
        /* a name the kernel could not use ("", "/" inside) is not listed */
        if (gpath_join(path, name, child) < 0)
            continue;
        r = add(ctx, name, child, &a);
    }
    if (d)
        fs->ops->fs_dir_close(d);
    fs_blocking_leave(fs, dir->user, counted);
    return r;
}
