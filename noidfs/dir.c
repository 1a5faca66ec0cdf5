/* dir.c — directory requests: listing (a snapshot taken at offset 0, so a
 * listing in several calls is consistent; readdirplus hands out attributes
 * and counts a lookup only for the entries that fit), and mkdir/rmdir,
 * which make and remove VMs and checkpoints.  Everything else that would
 * change the tree (unlink, rename, create) is refused, except inside a
 * VM's fs/, where all of it goes to the guest (guestfs.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs-internal.h"
#include "log.h"
#include "macro.h"
#include "names.h"

struct dirent_snap {
    char *name;
    struct node id; /* identity: its own name points at name above */
    /* a guest entry: id.gpath is malloc'd, and the listing gave its
     * attributes (readdirplus needs no request per entry) */
    bool has_attr;
    struct ap_fs_attr attr;
};

struct dir_handle {
    pthread_mutex_t lock;
    struct dirent_snap *ents; /* (lock) */
    size_t n;                 /* (lock) */
};

static void dir_snap_free(struct dir_handle *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->ents[i].name);
        if (d->ents[i].has_attr)
            free(d->ents[i].id.gpath);
    }
    free(d->ents);
    d->ents = NULL;
    d->n = 0;
}

static struct dirent_snap *snap_grow(struct dirent_snap **ents, size_t *n, size_t *cap)
{
    struct dirent_snap *s;

    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 32;
        s = realloc(*ents, nc * sizeof(*s));
        if (!s)
            return NULL;
        *ents = s;
        *cap = nc;
    }
    s = &(*ents)[*n];
    memset(s, 0, sizeof(*s));
    return s;
}

static int snap_add(struct noidfs *fs, struct dirent_snap **ents, size_t *n, size_t *cap,
                    const char *name, const struct node *parent)
{
    struct dirent_snap *s = snap_grow(ents, n, cap);

    if (!s)
        return -ENOMEM;
    s->name = strdup(name);
    if (!s->name)
        return -ENOMEM;
    if (layout_child_of(fs, parent, s->name, &s->id) < 0) {
        free(s->name);
        return 0; /* not a name that can live here: skip it */
    }
    (*n)++;
    return 0;
}

/* A guest directory's listing, entry by entry (guestfs_list).  The guest
 * decides how many entries there are and how long their paths: a
 * snapshot holds at most GUEST_SNAP_MAX_BYTES of names and paths (EFBIG
 * beyond, logged), so one `ls` cannot take the server's memory. */
#define GUEST_SNAP_MAX_BYTES (64u * 1024 * 1024)
struct guest_snap {
    struct dirent_snap **ents;
    size_t *n, *cap;
    const struct node *parent;
    size_t bytes;
};

static int snap_add_guest(void *ctx, const char *name, const char *gpath,
                          const struct ap_fs_attr *a)
{
    struct guest_snap *g = ctx;
    struct dirent_snap *s;

    g->bytes += strlen(name) + strlen(gpath) + 2 + sizeof(*s);
    if (g->bytes > GUEST_SNAP_MAX_BYTES) {
        log_warn("noidfs: a guest directory of %s/%s lists more than %u MiB of names; "
                 "refused (EFBIG)",
                 g->parent->user ? g->parent->user : "-", g->parent->vm ? g->parent->vm : "-",
                 GUEST_SNAP_MAX_BYTES >> 20);
        return -EFBIG;
    }
    s = snap_grow(g->ents, g->n, g->cap);
    if (!s)
        return -ENOMEM;
    s->name = strdup(name);
    s->id.gpath = strdup(gpath);
    if (!s->name || !s->id.gpath) {
        free(s->name);
        free(s->id.gpath);
        return -ENOMEM;
    }
    s->id.kind = NK_GUEST;
    s->id.user = g->parent->user;
    s->id.vm = g->parent->vm;
    s->has_attr = true;
    s->attr = *a;
    (*g->n)++;
    return 0;
}

/* The names in directory p now. */
static int dir_snapshot(struct noidfs *fs, const struct node *p, struct dir_handle *d,
                        struct nerr *e)
{
    struct dirent_snap *ents = NULL;
    size_t n = 0, cap = 0;
    int r = 0;

    switch (p->kind) {
    case NK_ROOT: {
        char **users = NULL;
        size_t un = 0;
        r = fs->ops->list_users(fs->b, &users, &un, e);
        for (size_t i = 0; r >= 0 && i < un; i++)
            r = snap_add(fs, &ents, &n, &cap, users[i], p);
        noidfs_strv_free(users, un);
        break;
    }
    case NK_USER: {
        _cleanup_free_ struct noidfs_vm *vms = NULL;
        size_t vn = 0;
        r = vmstate_vm_list(fs, p->user, &vms, &vn, e);
        for (size_t i = 0; r >= 0 && i < vn; i++)
            r = snap_add(fs, &ents, &n, &cap, vms[i].name, p);
        break;
    }
    case NK_VM: {
        struct noidfs_vm vm;
        r = vmstate_vm_find(fs, p->user, p->vm, &vm, e);
        bool has_runs = r >= 0 && layout_newest_run(fs, p->user, p->vm) != 0;
        size_t en;
        const struct layout_entry *ent = layout_entries(NK_VM, &en);
        for (size_t i = 0; r >= 0 && i < en; i++)
            if ((ent[i].kind != NK_VM_LAST || has_runs) && layout_entry_shown(fs, ent[i].kind))
                r = snap_add(fs, &ents, &n, &cap, ent[i].name, p);
        break;
    }
    case NK_GUEST: {
        struct guest_snap g = {&ents, &n, &cap, p, 0};
        r = guestfs_list(fs, p, snap_add_guest, &g, e);
        break;
    }
    case NK_RUNS: {
        _cleanup_free_ unsigned *ids = NULL;
        size_t in = 0;
        struct noidfs_vm vm;
        r = vmstate_vm_find(fs, p->user, p->vm, &vm, e);
        if (r >= 0)
            r = vmstate_run_ids(fs, p->user, p->vm, &ids, &in);
        for (size_t i = 0; r >= 0 && i < in; i++) {
            char name[16];
            snprintf(name, sizeof(name), "%u", ids[i]);
            r = snap_add(fs, &ents, &n, &cap, name, p);
        }
        break;
    }
    case NK_RUN: {
        struct run *run = layout_run_of(fs, p);
        if (!run) {
            r = nerr_set(e, -ENOENT, "no run %u", p->run);
            break;
        }
        run_unref(run);
        size_t en;
        const struct layout_entry *ent = layout_entries(NK_RUN, &en);
        for (size_t i = 0; r >= 0 && i < en; i++)
            r = snap_add(fs, &ents, &n, &cap, ent[i].name, p);
        break;
    }
    case NK_CKPTS: {
        struct noidfs_checkpoint *list = NULL;
        size_t cn = 0;
        r = fs->ops->checkpoint_list(fs->b, p->user, p->vm, &list, &cn, e);
        for (size_t i = 0; r >= 0 && i < cn; i++)
            r = snap_add(fs, &ents, &n, &cap, layout_ckpt_name(list, cn, i), p);
        noidfs_checkpoints_free(list, cn);
        break;
    }
    case NK_CKPT: {
        struct noidfs_checkpoint *list = NULL;
        size_t cn = 0, ci = 0;
        r = layout_ckpt_find(fs, p->user, p->vm, p->ckpt, &list, &cn, &ci, e);
        noidfs_checkpoints_free(list, cn);
        size_t en;
        const struct layout_entry *ent = layout_entries(NK_CKPT, &en);
        for (size_t i = 0; r >= 0 && i < en; i++)
            r = snap_add(fs, &ents, &n, &cap, ent[i].name, p);
        break;
    }
    default:
        r = -ENOTDIR;
        break;
    }
    struct dir_handle tmp = {.ents = ents, .n = n};
    if (r < 0) {
        dir_snap_free(&tmp);
        return r;
    }
    dir_snap_free(d);
    d->ents = ents;
    d->n = n;
    return 0;
}

void dir_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct noidfs *fs = fs_of(req);
    const struct node *n = nodes_get(fs->nodes, ino);
    struct dir_handle *d;

    if (!n || !layout_kind_is_dir(n->kind)) {
        fuse_reply_err(req, n ? ENOTDIR : ESTALE);
        return;
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    pthread_mutex_init(&d->lock, NULL);
    fi->fh = (uintptr_t)d;
    if (fuse_reply_open(req, fi) < 0) {
        /* the opener was interrupted: no releasedir will come */
        pthread_mutex_destroy(&d->lock);
        free(d);
    }
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, bool plus)
{
    struct noidfs *fs = fs_of(req);
    const struct node *p = nodes_get(fs->nodes, ino);
    struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
    _cleanup_free_ char *buf = NULL;
    _cleanup_free_ fuse_ino_t *refs = NULL; /* lookups counted for this reply */
    struct nerr e = {0};
    size_t used = 0, nrefs = 0;
    int r = 0;

    if (!p) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    buf = malloc(size);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    pthread_mutex_lock(&d->lock);
    /* offset 0 (the first call, or a rewinddir): take the names now */
    if (off == 0)
        r = dir_snapshot(fs, p, d, &e);
    if (r >= 0 && plus && !(refs = calloc(d->n + 1, sizeof(*refs))))
        r = -ENOMEM;
    /* offsets: 1 ".", 2 "..", 2 + i + 1 after entry i */
    for (off_t i = off; r >= 0 && i < (off_t)d->n + 2; i++) {
        const char *name = i == 0 ? "." : i == 1 ? ".." : d->ents[i - 2].name;
        struct stat st = {0};
        size_t need;

        if (i < 2) {
            st.st_ino = i == 0 ? ino : FUSE_ROOT_ID;
            st.st_mode = S_IFDIR;
            if (plus) {
                struct fuse_entry_param ep = {.attr = st};
                need = fuse_add_direntry_plus(req, buf + used, size - used, name, &ep, i + 1);
            } else {
                need = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
            }
            if (need > size - used)
                break;
            used += need;
            continue;
        }
        const struct dirent_snap *ent = &d->ents[i - 2];
        const struct node *id = &ent->id;
        if (!plus || (id->kind == NK_GUEST && !ent->has_attr)) {
            /* readdirplus: fs/ in a VM's directory comes without
             * attributes (ino 0): they are the guest's, and a VM that
             * does not answer must not hold up `ls -l VM` */
            st.st_mode = ent->has_attr ? ent->attr.mode : layout_kind_mode(id->kind);
            st.st_ino = id->kind == NK_GUEST
                            ? nodes_find_guest(fs->nodes, id->user, id->vm, id->gpath)
                            : nodes_find(fs->nodes, id->kind, id->user, id->vm, id->run, id->ckpt);
            if (st.st_ino == 0)
                st.st_ino = (ino_t)-1; /* unknown yet: the kernel looks it up */
            if (plus) {
                struct fuse_entry_param ep = {.attr = st}; /* ino 0: no entry made */
                need = fuse_add_direntry_plus(req, buf + used, size - used, name, &ep, i + 1);
            } else {
                need = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
            }
            if (need > size - used)
                break;
            used += need;
            continue;
        }
        struct nerr ee = {0};
        if (!ent->has_attr && layout_node_stat(fs, id, &st, &ee) < 0)
            continue; /* gone since the snapshot */
        need = fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0);
        if (need > size - used)
            break;
        struct fuse_entry_param ep;
        const struct node *n =
            ent->has_attr ? nodes_ref_guest(fs->nodes, id->user, id->vm, id->gpath, &ent->attr)
                          : nodes_ref(fs->nodes, id->kind, id->user, id->vm, id->run, id->ckpt);
        if (!n) {
            r = -ENOMEM;
            break;
        }
        refs[nrefs++] = n->ino;
        if (ent->has_attr)
            guestfs_attr_to_stat(fs, id->user, &ent->attr, n->ino, &st);
        layout_fill_entry(fs, n, &st, &ep);
        used += fuse_add_direntry_plus(req, buf + used, size - used, name, &ep, i + 1);
    }
    pthread_mutex_unlock(&d->lock);
    if (r < 0 && used == 0) {
        fuse_reply_err(req, p->kind == NK_GUEST
                                ? guestfs_errno("readdir", p, NULL, r, &e)
                                : errmap_log("readdir", layout_node_hint(p), r, &e));
        return;
    }
    /* an interrupted reply never reached the kernel: it counted nothing */
    if (fuse_reply_buf(req, buf, used) < 0)
        for (size_t i = 0; i < nrefs; i++)
            nodes_forget(fs->nodes, refs[i], 1);
}

void dir_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, false);
}

void dir_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, true);
}

void dir_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;

    if (d) {
        dir_snap_free(d);
        pthread_mutex_destroy(&d->lock);
        free(d);
    }
    fuse_reply_err(req, 0);
}

void dir_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct noidfs *fs = fs_of(req);
    const struct node *p = nodes_get(fs->nodes, parent);
    struct fuse_entry_param ep;
    struct node child;
    struct nerr e = {0};
    int r;

    if (!p) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (p->kind == NK_GUEST) {
        guestfs_mkdir(req, p, name, mode);
        return;
    }
    if (p->kind == NK_USER) {
        r = name_vm_check(name, &e);
        if (r >= 0) {
            r = fs->ops->vm_create(fs->b, p->user, name, &e);
            vmstate_vm_list_dirty(fs, p->user);
        }
    } else if (p->kind == NK_CKPTS) {
        struct noidfs_checkpoint *list = NULL;
        size_t cn = 0;
        r = name_label_check(name, strlen(name), &e);
        if (r >= 0 && strchr(name, '/'))
            r = nerr_set(&e, -EINVAL, "a checkpoint's label is its directory name: no '/'");
        if (r >= 0)
            r = fs->ops->checkpoint_list(fs->b, p->user, p->vm, &list, &cn, &e);
        /* a label or id in use would leave the new one shown under its id,
         * not as the directory just made */
        for (size_t i = 0; r >= 0 && i < cn; i++)
            if (strcmp(list[i].label, name) == 0 || strcmp(list[i].id, name) == 0)
                r = nerr_set(&e, -EEXIST, "VM '%s' has a checkpoint '%s' already", p->vm, name);
        noidfs_checkpoints_free(list, cn);
        if (r >= 0)
            r = fs->ops->checkpoint_create(fs->b, p->user, p->vm, name, &e);
    } else {
        r = nerr_set(&e, -EPERM,
                     "only VMs (in a user's directory) and checkpoints (in "
                     "checkpoints/) are made with mkdir");
    }
    if (r >= 0) {
        r = layout_child_of(fs, p, name, &child);
        if (r == 0)
            r = layout_entry_for(fs, &child, &ep, &e);
    }
    if (r < 0) {
        fuse_reply_err(req, errmap_log("mkdir", name, r, &e));
        return;
    }
    log_info("noidfs: mkdir %s%s%s: done", p->vm ? p->vm : "", p->vm ? "/checkpoints/" : "", name);
    if (fuse_reply_entry(req, &ep) < 0)
        nodes_forget(fs->nodes, ep.ino, 1); /* interrupted: not counted */
}

void dir_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct noidfs *fs = fs_of(req);
    const struct node *p = nodes_get(fs->nodes, parent);
    struct nerr e = {0};
    int r;

    if (!p) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (p->kind == NK_GUEST) {
        guestfs_unlink(req, p, name, true);
        return;
    }
    if (p->kind == NK_USER) {
        r = name_vm_check(name, NULL) < 0 ? nerr_set(&e, -ENOENT, "no VM named '%s'", name)
                                          : fs->ops->vm_destroy(fs->b, p->user, name, &e);
        vmstate_vm_list_dirty(fs, p->user);
        if (r >= 0)
            vmstate_vm_gone(fs, p->user, name);
    } else if (p->kind == NK_CKPTS) {
        struct noidfs_checkpoint *list = NULL;
        size_t cn = 0, ci = 0;
        r = layout_ckpt_find(fs, p->user, p->vm, name, &list, &cn, &ci, &e);
        if (r >= 0)
            r = fs->ops->checkpoint_delete(fs->b, p->user, p->vm, list[ci].id, &e);
        noidfs_checkpoints_free(list, cn);
    } else {
        r = nerr_set(&e, -EPERM, "only VMs and checkpoints are removed with rmdir");
    }
    if (r < 0) {
        fuse_reply_err(req, errmap_log("rmdir", name, r, &e));
        return;
    }
    log_info("noidfs: rmdir %s%s%s: done", p->vm ? p->vm : "", p->vm ? "/checkpoints/" : "", name);
    fuse_reply_err(req, 0);
}

void dir_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    const struct node *p = nodes_get(fs_of(req)->nodes, parent);

    if (p && p->kind == NK_GUEST)
        guestfs_unlink(req, p, name, false);
    else
        fuse_reply_err(req, p ? EPERM : ESTALE);
}

void dir_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                const char *newname, unsigned int flags)
{
    struct noidfs *fs = fs_of(req);
    const struct node *p = nodes_get(fs->nodes, parent);
    const struct node *np = nodes_get(fs->nodes, newparent);

    if (!p || !np)
        fuse_reply_err(req, ESTALE);
    else if (p->kind == NK_GUEST && np->kind == NK_GUEST)
        guestfs_rename(req, p, name, np, newname, flags);
    else if (p->kind == NK_GUEST || np->kind == NK_GUEST)
        fuse_reply_err(req, EXDEV); /* in or out of a guest: a copy, as across file systems */
    else
        fuse_reply_err(req, EPERM);
}

void dir_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                struct fuse_file_info *fi)
{
    const struct node *p = nodes_get(fs_of(req)->nodes, parent);

    if (p && p->kind == NK_GUEST)
        guestfs_create(req, p, name, mode, fi);
    else
        fuse_reply_err(req, p ? EACCES : ESTALE);
}
