/* guestfs-internal.h — what guestfs.c, guestfs_file.c and guestfs_names.c
 * share: building requests, calling the binding for a node's VM (counted
 * as a blocking request of its user), guest paths of nodes, and replies. */
#pragma once

#include "fs-internal.h"

/* A request of op (on path, when not NULL): every other field zero. */
void gfs_req_init(struct ap_fs_req *r, uint8_t op, const char *path);
/* A request of op on an open file's guest handle. */
void gfs_req_handle(struct ap_fs_req *r, uint8_t op, uint32_t handle);
static inline void gfs_req_has(struct ap_fs_req *r, enum ap_fs_tag tag)
{
    r->present |= 1u << tag;
}

/* One request for n's VM, counted as a blocking request of its user:
 * -EAGAIN beyond the bound, unless must (a CLOSE: refusing it would leak
 * the guest's handle).  The binding's answer otherwise (noidfs.h). */
int gfs_call_counted(struct noidfs *fs, const struct node *n, const struct ap_fs_req *req,
                     struct noidfs_fs_reply *rep, bool must, struct nerr *e);
int gfs_call(struct noidfs *fs, const struct node *n, const struct ap_fs_req *req,
             struct noidfs_fs_reply *rep, struct nerr *e);
/* The same on open file h: EIO once the guest forgot its handle. */
int gfs_hcall(struct handle *h, const struct ap_fs_req *req, struct noidfs_fs_reply *rep,
              struct nerr *e);
bool gfs_handle_is_stale(struct handle *h);
/* The H_GUEST handle of a request's file info, or NULL. */
struct handle *gfs_handle_of(struct fuse_file_info *fi);

/* Reply the errno for r (guestfs_errno). */
void gfs_reply_err(fuse_req_t req, const char *what, const struct node *n, const char *path, int r,
                   const struct nerr *e);

/* Node n's guest path ("/" for fs/ itself); -ESTALE once detached. */
int gfs_node_path(struct noidfs *fs, const struct node *n, char out[GPATH_SIZE]);
/* The guest path of name in directory parent (a guest directory, or the
 * VM's directory for "fs" itself); gpath_join's errors. */
int gfs_child_path(struct noidfs *fs, const struct node *parent, const char *name,
                   char out[GPATH_SIZE]);
/* Whether two nodes are files of the same VM of the same user. */
bool gfs_same_vm(const struct node *a, const struct node *b);

/* Reply the entry of the file at path (attributes a) in parent's VM: one
 * lookup counted on its node. */
void gfs_reply_entry(fuse_req_t req, const struct node *parent, const char *path,
                     const struct ap_fs_attr *a);
/* The attributes of path after a change whose answer had none (the path
 * changed again at once): LSTAT into rep unless rep has them. */
int gfs_entry_attr(struct noidfs *fs, const struct node *parent, const char *path,
                   struct noidfs_fs_reply *rep, struct nerr *e);
