/* guestfs_names.c — making, removing and moving names in VM/fs/
 * (guestfs.c says how fs/ works): mkdir, unlink, rmdir, rename, symlink,
 * link, each one request to the guest.  The node table follows what
 * succeeded: removed paths are detached, renamed ones moved (nodes.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "guestfs-internal.h"

/* renameat2() flags as FUSE passes them (linux/fs.h) */
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1u << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1u << 1)
#endif

void guestfs_mkdir(fuse_req_t req, const struct node *parent, const char *name, mode_t mode)
{
    struct noidfs *fs = fs_of(req);
    struct noidfs_fs_reply rep = {0};
    char path[GPATH_SIZE] = "";
    struct ap_fs_req q;
    struct nerr e = {0};
    int r;

    r = gfs_child_path(fs, parent, name, path);
    if (r >= 0) {
        gfs_req_init(&q, APO_MKDIR, path);
        gfs_req_has(&q, APF_MODE);
        q.mode = mode & 07777;
        r = gfs_call(fs, parent, &q, &rep, &e);
    }
    if (r >= 0)
        r = gfs_entry_attr(fs, parent, path, &rep, &e);
    if (r < 0) {
        gfs_reply_err(req, "mkdir", parent, path, r, &e);
        return;
    }
    gfs_reply_entry(req, parent, path, &rep.attr);
}

void guestfs_unlink(fuse_req_t req, const struct node *parent, const char *name, bool dir)
{
    struct noidfs *fs = fs_of(req);
    struct noidfs_fs_reply rep = {0};
    char path[GPATH_SIZE] = "";
    struct ap_fs_req q;
    struct nerr e = {0};
    int r;

    r = gfs_child_path(fs, parent, name, path);
    if (r >= 0) {
        gfs_req_init(&q, dir ? APO_RMDIR : APO_UNLINK, path);
        r = gfs_call(fs, parent, &q, &rep, &e);
    }
    if (r < 0) {
        gfs_reply_err(req, dir ? "rmdir" : "unlink", parent, path, r, &e);
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

    if (!gfs_same_vm(parent, newparent)) {
        fuse_reply_err(req, EXDEV); /* another VM: another machine */
        return;
    }
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
        fuse_reply_err(req, EINVAL); /* RENAME_WHITEOUT: overlayfs's, not ours */
        return;
    }
    r = gfs_child_path(fs, parent, name, from);
    if (r >= 0)
        r = gfs_child_path(fs, newparent, newname, to);
    if (r >= 0) {
        gfs_req_init(&q, APO_RENAME, from);
        gfs_req_has(&q, APF_PATH2);
        snprintf(q.path2, sizeof(q.path2), "%s", to);
        if (flags) {
            gfs_req_has(&q, APF_FLAGS);
            q.flags = ((flags & RENAME_NOREPLACE) ? AP_RENAME_NOREPLACE : 0) |
                      ((flags & RENAME_EXCHANGE) ? AP_RENAME_EXCHANGE : 0);
        }
        r = gfs_call(fs, parent, &q, &rep, &e);
    }
    if (r < 0) {
        gfs_reply_err(req, "rename", parent, from, r, &e);
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

    r = strlen(target) > AP_FS_PATH_MAX ? -ENAMETOOLONG : gfs_child_path(fs, parent, name, path);
    if (r >= 0) {
        /* the target is stored as given, relative or not: the guest's
         * meaning of it, which the host resolves in the mount (so an
         * absolute one points at the host's own files from here) */
        gfs_req_init(&q, APO_SYMLINK, path);
        gfs_req_has(&q, APF_PATH2);
        snprintf(q.path2, sizeof(q.path2), "%s", target);
        r = gfs_call(fs, parent, &q, &rep, &e);
    }
    if (r >= 0)
        r = gfs_entry_attr(fs, parent, path, &rep, &e);
    if (r < 0) {
        gfs_reply_err(req, "symlink", parent, path, r, &e);
        return;
    }
    gfs_reply_entry(req, parent, path, &rep.attr);
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

    if (!gfs_same_vm(n, newparent)) {
        fuse_reply_err(req, EXDEV);
        return;
    }
    r = gfs_node_path(fs, n, from);
    if (r >= 0)
        r = gfs_child_path(fs, newparent, newname, to);
    if (r >= 0) {
        gfs_req_init(&q, APO_LINK, from);
        gfs_req_has(&q, APF_PATH2);
        snprintf(q.path2, sizeof(q.path2), "%s", to);
        r = gfs_call(fs, n, &q, &rep, &e);
    }
    if (r >= 0)
        r = gfs_entry_attr(fs, newparent, to, &rep, &e);
    if (r < 0) {
        gfs_reply_err(req, "link", n, from, r, &e);
        return;
    }
    /* its link count changed; the new name is a node of its own (a path
     * is an identity here), showing the same file */
    fs_inval_attr(fs, n->ino);
    gfs_reply_entry(req, newparent, to, &rep.attr);
}
