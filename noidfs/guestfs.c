/* guestfs.c — VM/fs/: the guest's root file system, each FUSE request
 * turned into one or a few guest file requests (struct ap_fs_req) through
 * the binding's fs_call / fs_dir_* ops, served by the guest's agent with
 * its own syscalls.  The host never opens the guest's disk.
 *
 * This file: the requests' plumbing shared by guestfs_file.c (open files)
 * and guestfs_names.c (making and removing names), attributes, lookup,
 * getattr/setattr, readlink, statfs and directory listings.
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

#include "guestfs-internal.h"
#include "log.h"
#include "macro.h"

bool guestfs_enabled(const struct noidfs *fs)
{
    return fs->ops->fs_call && fs->ops->fs_dir_open && fs->ops->fs_dir_next &&
           fs->ops->fs_dir_close;
}

/* ---- requests ---- */

void gfs_req_init(struct ap_fs_req *r, uint8_t op, const char *path)
{
    memset(r, 0, sizeof(*r));
    r->op = op;
    if (path) {
        r->present = 1u << APF_PATH;
        snprintf(r->path, sizeof(r->path), "%s", path);
    }
}

void gfs_req_handle(struct ap_fs_req *r, uint8_t op, uint32_t handle)
{
    gfs_req_init(r, op, NULL);
    r->present = 1u << APF_HANDLE;
    r->handle = handle;
}

/* One request for n's VM, counted as a blocking request of its user:
 * -EAGAIN beyond the bound, unless must (a CLOSE: refusing it would leak
 * the guest's handle). */
int gfs_call_counted(struct noidfs *fs, const struct node *n, const struct ap_fs_req *req,
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

int gfs_call(struct noidfs *fs, const struct node *n, const struct ap_fs_req *req,
             struct noidfs_fs_reply *rep, struct nerr *e)
{
    return gfs_call_counted(fs, n, req, rep, false, e);
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

void gfs_reply_err(fuse_req_t req, const char *what, const struct node *n, const char *path, int r,
                   const struct nerr *e)
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
int gfs_node_path(struct noidfs *fs, const struct node *n, char out[GPATH_SIZE])
{
    return nodes_guest_path(fs->nodes, n, out);
}

/* The guest path of name in directory parent (a guest directory, or the
 * VM's directory for "fs" itself). */
int gfs_child_path(struct noidfs *fs, const struct node *parent, const char *name,
                   char out[GPATH_SIZE])
{
    char dir[GPATH_SIZE];
    int r;

    if (parent->kind != NK_GUEST) {
        snprintf(out, GPATH_SIZE, "/");
        return 0;
    }
    r = gfs_node_path(fs, parent, dir);
    if (r < 0)
        return r;
    return gpath_join(dir, name, out);
}

bool gfs_same_vm(const struct node *a, const struct node *b)
{
    return strcmp(a->vm, b->vm) == 0 &&
           (a->user ? b->user && strcmp(a->user, b->user) == 0 : !b->user);
}

/* ---- entries ---- */

/* Reply the entry of the file at path (attributes a) in parent's VM: one
 * lookup counted on its node. */
void gfs_reply_entry(fuse_req_t req, const struct node *parent, const char *path,
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
int gfs_entry_attr(struct noidfs *fs, const struct node *parent, const char *path,
                   struct noidfs_fs_reply *rep, struct nerr *e)
{
    struct ap_fs_req q;

    if (rep->has_attr)
        return 0;
    gfs_req_init(&q, APO_LSTAT, path);
    return gfs_call(fs, parent, &q, rep, e);
}

void guestfs_lookup(fuse_req_t req, const struct node *parent, const char *name)
{
    struct noidfs *fs = fs_of(req);
    struct noidfs_fs_reply rep = {0};
    char path[GPATH_SIZE];
    struct ap_fs_req q;
    struct nerr e = {0};
    int r;

    r = gfs_child_path(fs, parent, name, path);
    if (r < 0) {
        fuse_reply_err(req, r == -EINVAL ? ENOENT : -r);
        return;
    }
    gfs_req_init(&q, APO_LSTAT, path);
    r = gfs_call(fs, parent, &q, &rep, &e);
    if (r < 0) {
        gfs_reply_err(req, "lookup", parent, path, r, &e);
        return;
    }
    gfs_reply_entry(req, parent, path, &rep.attr);
}

/* ---- attributes of a node ---- */

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
    struct handle *h = gfs_handle_of(fi);
    struct noidfs_fs_reply rep = {0};
    char path[GPATH_SIZE] = "";
    struct ap_fs_req q;
    struct nerr e = {0};
    int r = -EBADF;

    /* fstat: the open file, even when its name is gone */
    if (h && !gfs_handle_is_stale(h)) {
        gfs_req_handle(&q, APO_FSTAT, h->ghandle);
        r = gfs_call(fs, n, &q, &rep, &e);
        if (r >= 0) {
            reply_attr(req, n, &rep.attr, false);
            return;
        }
        if (r != -EBADF) {
            gfs_reply_err(req, "fstat", n, NULL, r, &e);
            return;
        }
        memset(&e, 0, sizeof(e));
    }
    /* a handle the guest forgot (restored): the attributes by name */
    r = gfs_node_path(fs, n, path);
    if (r >= 0) {
        gfs_req_init(&q, APO_LSTAT, path);
        r = gfs_call(fs, n, &q, &rep, &e);
    }
    if (r < 0) {
        gfs_reply_err(req, "stat", n, path, r, &e);
        return;
    }
    reply_attr(req, n, &rep.attr, true);
}

void guestfs_setattr(fuse_req_t req, const struct node *n, struct stat *attr, int to_set,
                     struct fuse_file_info *fi)
{
    struct noidfs *fs = fs_of(req);
    struct handle *h = gfs_handle_of(fi);
    struct noidfs_fs_reply rep = {0};
    char path[GPATH_SIZE] = "";
    const char *what = "setattr";
    bool by_path = true;
    struct ap_fs_req q;
    struct nerr e = {0};
    /* a removed file has no path; through an open handle it still has a
     * size and attributes */
    int has_path = gfs_node_path(fs, n, path);
    int r = 0;

    /* the changes in the order tar makes them: owner (which may clear
     * set-id bits), mode, size, times (a truncate moves mtime) */
    if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
        what = "chown";
        gfs_req_init(&q, APO_CHOWN, path);
        gfs_req_has(&q, APF_FLAGS);
        q.flags = AP_NOFOLLOW; /* setattr acts on the inode: a symlink itself */
        if (to_set & FUSE_SET_ATTR_UID) {
            gfs_req_has(&q, APF_UID);
            q.uid = guest_uid(fs, n->user, attr->st_uid);
        }
        if (to_set & FUSE_SET_ATTR_GID) {
            gfs_req_has(&q, APF_GID);
            q.gid = guest_gid(fs, n->user, attr->st_gid);
        }
        r = has_path < 0 ? has_path : gfs_call(fs, n, &q, &rep, &e);
    }
    if (r >= 0 && (to_set & FUSE_SET_ATTR_MODE)) {
        what = "chmod";
        gfs_req_init(&q, APO_CHMOD, path);
        gfs_req_has(&q, APF_MODE);
        q.mode = attr->st_mode & 07777;
        r = has_path < 0 ? has_path : gfs_call(fs, n, &q, &rep, &e);
    }
    if (r >= 0 && (to_set & FUSE_SET_ATTR_SIZE)) {
        what = "truncate";
        if (h)
            gfs_req_handle(&q, APO_TRUNCATE, h->ghandle); /* ftruncate, O_TRUNC of an open file */
        else
            gfs_req_init(&q, APO_TRUNCATE, path);
        by_path = !h;
        gfs_req_has(&q, APF_LENGTH);
        q.length = (uint64_t)attr->st_size;
        r = h              ? gfs_hcall(h, &q, &rep, &e)
            : has_path < 0 ? has_path
                           : gfs_call(fs, n, &q, &rep, &e);
    }
    if (r >= 0 && (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
                             FUSE_SET_ATTR_MTIME_NOW))) {
        what = "utimens";
        gfs_req_init(&q, APO_UTIMENS, path);
        gfs_req_has(&q, APF_FLAGS);
        q.flags = AP_NOFOLLOW;
        gfs_req_has(&q, APF_ATIME);
        gfs_req_has(&q, APF_MTIME);
        q.atime = (to_set & FUSE_SET_ATTR_ATIME_NOW) ? (struct ap_fs_time){0, AP_TIME_NOW}
                  : (to_set & FUSE_SET_ATTR_ATIME)
                      ? (struct ap_fs_time){attr->st_atim.tv_sec, (uint32_t)attr->st_atim.tv_nsec}
                      : (struct ap_fs_time){0, AP_TIME_OMIT};
        q.mtime = (to_set & FUSE_SET_ATTR_MTIME_NOW) ? (struct ap_fs_time){0, AP_TIME_NOW}
                  : (to_set & FUSE_SET_ATTR_MTIME)
                      ? (struct ap_fs_time){attr->st_mtim.tv_sec, (uint32_t)attr->st_mtim.tv_nsec}
                      : (struct ap_fs_time){0, AP_TIME_OMIT};
        by_path = true;
        r = has_path < 0 ? has_path : gfs_call(fs, n, &q, &rep, &e);
    }
    /* nothing we can change (ctime alone), or the file vanished meanwhile:
     * what it is now */
    if (r >= 0 && !rep.has_attr) {
        what = "stat";
        if (h)
            gfs_req_handle(&q, APO_FSTAT, h->ghandle);
        else
            gfs_req_init(&q, APO_LSTAT, path);
        by_path = !h;
        r = h              ? gfs_hcall(h, &q, &rep, &e)
            : has_path < 0 ? has_path
                           : gfs_call(fs, n, &q, &rep, &e);
    }
    if (r < 0) {
        gfs_reply_err(req, what, n, path, r, &e);
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

    r = gfs_node_path(fs, n, path);
    if (r >= 0) {
        gfs_req_init(&q, APO_READLINK, path);
        r = gfs_call(fs, n, &q, &rep, &e);
    }
    if (r < 0) {
        gfs_reply_err(req, "readlink", n, path, r, &e);
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

    if (gfs_node_path(fs, n, path) < 0)
        snprintf(path, sizeof(path), "/"); /* a removed file: its VM's root */
    gfs_req_init(&q, APO_STATFS, path);
    r = gfs_call(fs, n, &q, &rep, &e);
    if (r < 0) {
        gfs_reply_err(req, "statfs", n, path, r, &e);
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

    r = gfs_node_path(fs, dir, path);
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
