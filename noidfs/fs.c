/* fs.c — the FUSE low-level front-end's request table, and the requests
 * on inodes and open files (DESIGN.md §9 turned into calls of struct
 * noidfs_ops):
 *
 *   [ROOT/]USER/VM/{info,state,exec,stdout,stderr,status,new,last,
 *                   console,console.log,runs/N/…,checkpoints/X/…}
 *
 * layout.c knows the tree's shape, dir.c serves directories, exec_file.c
 * and console_file.c the two stream-like files, mount.c the mount's life.
 *
 * Every request is served on a worker of libfuse's multi-threaded loop and
 * calls the binding without any front-end lock held, so a slow exec never
 * holds up `ls` or another VM.  Every path ends in exactly one fuse_reply_*.
 * Generated files are direct_io and report their real size; attributes and
 * entries are cached cache_secs, and our own changes that show elsewhere
 * (a finished run, a clone, a restore) are invalidated by inval.c.
 *
 * File modes say what each entry allows; the checks are made here too, so
 * root gets EACCES on a read-only entry like everyone else. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "fs-internal.h"
#include "log.h"
#include "macro.h"
#include "names.h"

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
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
    r = p->kind == NK_GUEST ? 0 : layout_child_of(fs, p, name, &child);
    if (r == 0 && (p->kind == NK_GUEST || child.kind == NK_GUEST)) {
        guestfs_lookup(req, p, name);
        return;
    }
    if (r == 0)
        r = layout_entry_for(fs, &child, &ep, &e);
    if (r < 0) {
        fuse_reply_err(req, errmap_log("lookup", name, r, &e));
        return;
    }
    if (fuse_reply_entry(req, &ep) < 0)
        nodes_forget(fs->nodes, ep.ino, 1); /* interrupted: not counted */
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    nodes_forget(fs_of(req)->nodes, ino, nlookup);
    fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    for (size_t i = 0; i < count; i++)
        nodes_forget(fs_of(req)->nodes, forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct noidfs *fs = fs_of(req);
    const struct node *n = nodes_get(fs->nodes, ino);
    struct nerr e = {0};
    struct stat st;
    int r;

    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (n->kind == NK_GUEST) {
        guestfs_getattr(req, n, fi);
        return;
    }
    r = layout_node_stat(fs, n, &st, &e);
    if (r < 0) {
        fuse_reply_err(req, errmap_log("stat", layout_node_hint(n), r, &e));
        return;
    }
    fuse_reply_attr(req, &st, fs->cache_secs);
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    struct noidfs *fs = fs_of(req);
    const struct node *n = nodes_get(fs->nodes, ino);
    struct nerr e = {0};
    struct stat st;
    int r;

    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (n->kind == NK_GUEST) {
        guestfs_setattr(req, n, attr, to_set, fi);
        return;
    }
    if (to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
                   FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    if ((to_set & FUSE_SET_ATTR_SIZE) &&
        (!layout_kind_is_writable(n->kind) || attr->st_size != 0)) {
        fuse_reply_err(req, layout_kind_is_writable(n->kind) ? EINVAL : EACCES);
        return;
    }
    r = layout_node_stat(fs, n, &st, &e);
    if (r < 0) {
        fuse_reply_err(req, errmap_log("setattr", layout_node_hint(n), r, &e));
        return;
    }
    fuse_reply_attr(req, &st, fs->cache_secs);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
    struct noidfs *fs = fs_of(req);
    const struct node *n = nodes_get(fs->nodes, ino);
    char target[32];
    unsigned id;

    if (n && n->kind == NK_GUEST) {
        guestfs_readlink(req, n);
        return;
    }
    if (!n || n->kind != NK_VM_LAST) {
        fuse_reply_err(req, n ? EINVAL : ESTALE);
        return;
    }
    id = layout_newest_run(fs, n->user, n->vm);
    if (id == 0) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    snprintf(target, sizeof(target), "runs/%u", id);
    fuse_reply_readlink(req, target);
}

/* ---- files ---- */

void fs_handle_add(struct noidfs *fs, struct handle *h)
{
    pthread_mutex_lock(&fs->handles_lock);
    h->next = fs->handles;
    if (h->next)
        h->next->prev = h;
    fs->handles = h;
    pthread_mutex_unlock(&fs->handles_lock);
}

static void handles_remove(struct noidfs *fs, struct handle *h)
{
    pthread_mutex_lock(&fs->handles_lock);
    if (h->prev)
        h->prev->next = h->next;
    else
        fs->handles = h->next;
    if (h->next)
        h->next->prev = h->prev;
    pthread_mutex_unlock(&fs->handles_lock);
}

void fs_handle_free(struct handle *h)
{
    if (!h)
        return;
    buf_free(&h->data);
    run_unref(h->run);
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* Generate a H_STATIC file's content. */
static int static_content(struct noidfs *fs, const struct node *n, struct buf *out, struct nerr *e)
{
    int r = 0;

    switch (n->kind) {
    case NK_VM_INFO:
    case NK_VM_STATE: {
        _cleanup_free_ char *json = NULL;
        struct noidfs_vm vm;
        r = fs->ops->vm_info(fs->b, n->user, n->vm, &vm, n->kind == NK_VM_INFO ? &json : NULL, e);
        if (r < 0)
            return r;
        return n->kind == NK_VM_INFO ? buf_printf(out, "%s\n", json ? json : "{}")
                                     : buf_printf(out, "%s\n", vm.state);
    }
    case NK_VM_CONSOLE_LOG: {
        _cleanup_free_ char *log = NULL;
        size_t len = 0;
        r = fs->ops->console_log(fs->b, n->user, n->vm, &log, &len, e);
        if (r < 0)
            return r;
        return buf_append(out, log, len);
    }
    case NK_CKPT_INFO: {
        struct noidfs_checkpoint *list = NULL;
        size_t cn = 0, ci = 0;
        r = layout_ckpt_find(fs, n->user, n->vm, n->ckpt, &list, &cn, &ci, e);
        if (r >= 0)
            r = buf_printf(out, "%s\n", list[ci].json);
        noidfs_checkpoints_free(list, cn);
        return r;
    }
    default:
        return 0;
    }
}

static int open_handle(struct noidfs *fs, const struct node *n, struct handle *h, struct nerr *e)
{
    bool generated = n->kind == NK_VM_INFO || n->kind == NK_VM_STATE ||
                     n->kind == NK_VM_CONSOLE_LOG || n->kind == NK_CKPT_INFO;
    struct stat st;
    int r;

    /* the VM (or run, checkpoint) must exist; also gives the right errno.
     * A generated file's content is fetched below, which checks that
     * already: stat would fetch it twice (console.log: the whole log). */
    if (!generated) {
        r = layout_node_stat(fs, n, &st, e);
        if (r < 0)
            return r;
    }
    switch (n->kind) {
    case NK_VM_EXEC:
    case NK_RUN_EXEC:
        h->kind = H_EXEC;
        return 0;
    case NK_CKPT_RESTORE:
    case NK_CKPT_CLONE:
        h->kind = H_ACTION;
        return 0;
    case NK_VM_CONSOLE:
        h->kind = H_CONSOLE;
        return console_file_open(h, e);
    case NK_VM_NEW: {
        h->kind = H_STATIC;
        h->run = vmstate_run_new(fs, n->user, n->vm, false);
        if (!h->run)
            return -ENOMEM;
        fs_run_changed(fs, n->user, n->vm, h->run->id, false);
        return buf_printf(&h->data, "%u\n", h->run->id);
    }
    case NK_VM_STDOUT:
    case NK_VM_STDERR:
    case NK_VM_STATUS:
    case NK_RUN_STDOUT:
    case NK_RUN_STDERR:
    case NK_RUN_STATUS:
    case NK_RUN_COMMAND:
        h->kind = H_RUN_OUT;
        h->run = layout_run_of(fs, n); /* NULL: nothing run yet, the file is empty */
        return 0;
    default:
        h->kind = H_STATIC;
        return static_content(fs, n, &h->data, e);
    }
}

void fs_handle_release(struct handle *h)
{
    handles_remove(h->fs, h);
    if (h->kind == H_EXEC)
        exec_file_release(h);
    if (h->kind == H_CONSOLE)
        console_file_release(h);
    if (h->kind == H_GUEST)
        guestfs_release(h);
    fs_handle_free(h);
}

struct handle *fs_handle_new(struct noidfs *fs, const struct node *n, int flags)
{
    struct handle *h = calloc(1, sizeof(*h));
    int acc = flags & O_ACCMODE;

    if (!h)
        return NULL;
    pthread_mutex_init(&h->lock, NULL);
    h->fs = fs;
    h->node = n;
    h->readable = acc != O_WRONLY;
    h->writable = acc != O_RDONLY;
    return h;
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct noidfs *fs = fs_of(req);
    const struct node *n = nodes_get(fs->nodes, ino);
    int acc = fi->flags & O_ACCMODE;
    struct nerr e = {0};
    struct handle *h;
    mode_t mode;
    int r;

    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    if (n->kind == NK_GUEST) {
        guestfs_open(req, n, fi);
        return;
    }
    mode = layout_kind_mode(n->kind);
    if (!S_ISREG(mode)) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    if ((acc != O_RDONLY && !(mode & 0222)) || (acc != O_WRONLY && !(mode & 0444))) {
        fuse_reply_err(req, EACCES);
        return;
    }
    h = fs_handle_new(fs, n, fi->flags);
    if (!h) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    buf_init(&h->data, n->kind == NK_VM_CONSOLE_LOG ? 0 : EXEC_COMMAND_MAX);
    r = open_handle(fs, n, h, &e);
    if (r < 0) {
        fs_handle_free(h);
        fuse_reply_err(req, errmap_log("open", layout_node_hint(n), r, &e));
        return;
    }
    fs_handle_add(fs, h);
    fi->fh = (uintptr_t)h;
    fi->direct_io = 1;
    if (h->kind == H_CONSOLE || h->kind == H_EXEC)
        fi->nonseekable = 1;
    if (fuse_reply_open(req, fi) == -ENOENT)
        fs_handle_release(h); /* the opener was interrupted: no release will come */
}

static size_t run_read(struct run *r, enum node_kind k, char *out, size_t size, off_t off)
{
    const uint8_t *src = NULL;
    char tmp[32];
    size_t len = 0, n = 0;

    pthread_mutex_lock(&r->lock);
    switch (k) {
    case NK_VM_STDOUT:
    case NK_RUN_STDOUT:
        src = r->out.data;
        len = r->out.len;
        break;
    case NK_VM_STDERR:
    case NK_RUN_STDERR:
        src = r->err.data;
        len = r->err.len;
        break;
    case NK_RUN_COMMAND:
        src = r->command.data;
        len = r->command.len;
        break;
    case NK_VM_STATUS:
    case NK_RUN_STATUS:
        if (r->ended && !r->failed) {
            len = (size_t)snprintf(tmp, sizeof(tmp), "%d\n", r->status);
            src = (const uint8_t *)tmp;
        }
        break;
    default:
        break;
    }
    if (off >= 0 && (size_t)off < len) {
        n = len - (size_t)off < size ? len - (size_t)off : size;
        memcpy(out, src + off, n);
    }
    pthread_mutex_unlock(&r->lock);
    return n;
}

static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;
    _cleanup_free_ char *buf = NULL;
    ssize_t r = 0;

    if (!h->readable) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (h->kind == H_GUEST) {
        guestfs_read(req, h, size, off);
        return;
    }
    buf = malloc(size ? size : 1);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    switch (h->kind) {
    case H_STATIC:
        if (off >= 0 && (size_t)off < h->data.len) {
            r = (ssize_t)(h->data.len - (size_t)off < size ? h->data.len - (size_t)off : size);
            memcpy(buf, h->data.data + off, (size_t)r);
        }
        break;
    case H_RUN_OUT:
        r = h->run ? (ssize_t)run_read(h->run, h->node->kind, buf, size, off) : 0;
        break;
    case H_EXEC:
    case H_CONSOLE: {
        bool counted;
        if (!fs_blocking_enter(h->fs, h->node->user, &counted)) {
            r = -EAGAIN;
            break;
        }
        r = h->kind == H_EXEC ? exec_file_read(h, req, buf, size)
                              : console_file_read(h, req, buf, size, fi->flags & O_NONBLOCK);
        fs_blocking_leave(h->fs, h->node->user, counted);
        break;
    }
    case H_ACTION:
    default:
        r = -EBADF;
        break;
    }
    if (r < 0)
        fuse_reply_err(req, (int)-r);
    else
        fuse_reply_buf(req, buf, (size_t)r);
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;
    ssize_t r = (ssize_t)size;

    if (!h->writable) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (h->kind == H_GUEST) {
        guestfs_write(req, h, buf, size, off);
        return;
    }
    if (h->kind == H_CONSOLE) {
        r = console_file_write(h, buf, size);
    } else if (h->kind == H_EXEC || h->kind == H_ACTION) {
        pthread_mutex_lock(&h->lock);
        if (h->exec)
            r = -EBUSY; /* a streaming session runs already */
        else if (buf_append(&h->data, buf, size) < 0)
            r = -errmap_log("write", layout_node_hint(h->node), -EFBIG,
                            &(struct nerr){-EFBIG, "a command line is at most 256 KiB"});
        pthread_mutex_unlock(&h->lock);
    } else {
        r = -EACCES;
    }
    if (r < 0)
        fuse_reply_err(req, (int)-r);
    else
        fuse_reply_write(req, (size_t)r);
}

/* checkpoints/X/restore or clone was written and closed. */
static int run_action(struct handle *h)
{
    struct noidfs *fs = h->fs;
    const struct node *n = h->node;
    struct noidfs_checkpoint *list = NULL;
    size_t cn = 0, ci = 0;
    struct nerr e = {0};
    char *new_name = NULL;
    int r;

    if (n->kind == NK_CKPT_CLONE) {
        /* the name written, without the newline echo adds */
        new_name = (char *)h->data.data;
        while (h->data.len > 0 &&
               (new_name[h->data.len - 1] == '\n' || new_name[h->data.len - 1] == ' ' ||
                new_name[h->data.len - 1] == '\t'))
            new_name[--h->data.len] = '\0';
        if (memchr(new_name, '\0', h->data.len) || name_vm_check(new_name, &e) < 0)
            return errmap_log("clone", n->vm, -EINVAL, &e);
    }
    r = layout_ckpt_find(fs, n->user, n->vm, n->ckpt, &list, &cn, &ci, &e);
    if (r >= 0)
        r = fs->ops->restore(fs->b, n->user, n->vm, list[ci].id, new_name, &e);
    noidfs_checkpoints_free(list, cn);
    vmstate_vm_list_dirty(fs, n->user);
    if (r < 0)
        return errmap_log(new_name ? "clone" : "restore", n->vm, r, &e);
    if (new_name) {
        log_info("noidfs: cloned %s/checkpoints/%s into %s", n->vm, n->ckpt, new_name);
        fs_inval_entry(fs, nodes_find(fs->nodes, NK_USER, n->user, NULL, 0, NULL), new_name);
        fs_inval_inode(fs, nodes_find(fs->nodes, NK_USER, n->user, NULL, 0, NULL));
    } else {
        log_info("noidfs: restored %s to checkpoint %s", n->vm, n->ckpt);
        guestfs_vm_restored(fs, n->user, n->vm);
        fs_inval_inode(fs, nodes_find(fs->nodes, NK_VM_INFO, n->user, n->vm, 0, NULL));
        fs_inval_inode(fs, nodes_find(fs->nodes, NK_VM_STATE, n->user, n->vm, 0, NULL));
    }
    return 0;
}

/* close(2): a written command runs now, and close returns when it ended. */
static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;
    int err = 0;

    /* a read-write exec runs at its first read: nothing to do at close */
    if (h->kind == H_EXEC && !h->readable) {
        bool counted = false;
        pthread_mutex_lock(&h->lock);
        if (h->data.len > 0 && !fs_blocking_enter(h->fs, h->node->user, &counted))
            err = EAGAIN;
        else if (h->data.len > 0)
            err = exec_file_run(h, req);
        pthread_mutex_unlock(&h->lock);
        fs_blocking_leave(h->fs, h->node->user, counted);
    } else if (h->kind == H_ACTION) {
        pthread_mutex_lock(&h->lock);
        if (h->data.len > 0 && !h->done) {
            h->done = true;
            err = run_action(h);
        }
        pthread_mutex_unlock(&h->lock);
    }
    fuse_reply_err(req, err);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_handle_release((struct handle *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}

bool fs_blocking_enter(struct noidfs *fs, const char *user, bool *ret_counted)
{
    const char *u = user ? user : "";
    struct blocking_count *slot = NULL, *free_slot = NULL;
    bool ok = true;

    pthread_mutex_lock(&fs->blocking_lock);
    for (size_t i = 0; i < FS_BLOCKING_USERS && !slot; i++) {
        if (fs->blocking[i].n > 0 && strcmp(fs->blocking[i].user, u) == 0)
            slot = &fs->blocking[i];
        else if (fs->blocking[i].n == 0 && !free_slot)
            free_slot = &fs->blocking[i];
    }
    if (!slot && free_slot) {
        slot = free_slot;
        snprintf(slot->user, sizeof(slot->user), "%s", u);
    }
    /* more users blocked at once than slots: not counted (the worker
     * bound still holds) */
    *ret_counted = false;
    if (slot) {
        ok = slot->n < FS_BLOCKING_PER_USER;
        if (ok)
            slot->n++;
        *ret_counted = ok;
    }
    pthread_mutex_unlock(&fs->blocking_lock);
    if (!ok)
        log_warn("noidfs: user %s has %d requests waiting (console reads, commands); refused one "
                 "more (EAGAIN)",
                 u[0] ? u : "(mount owner)", FS_BLOCKING_PER_USER);
    return ok;
}

void fs_blocking_leave(struct noidfs *fs, const char *user, bool counted)
{
    const char *u = user ? user : "";

    if (!counted)
        return;
    pthread_mutex_lock(&fs->blocking_lock);
    for (size_t i = 0; i < FS_BLOCKING_USERS; i++)
        if (fs->blocking[i].n > 0 && strcmp(fs->blocking[i].user, u) == 0) {
            fs->blocking[i].n--;
            break;
        }
    pthread_mutex_unlock(&fs->blocking_lock);
}

void fs_handles_release_all(struct noidfs *fs)
{
    for (;;) {
        pthread_mutex_lock(&fs->handles_lock);
        struct handle *h = fs->handles;
        pthread_mutex_unlock(&fs->handles_lock);
        if (!h)
            break;
        fs_handle_release(h);
    }
}

static void ll_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                    struct fuse_pollhandle *ph)
{
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;

    if (h->kind == H_CONSOLE) {
        fuse_reply_poll(req, console_file_poll(h, ph));
        return;
    }
    /* everything else is readable (and writable) at once */
    if (ph)
        fuse_pollhandle_destroy(ph);
    fuse_reply_poll(req, POLLIN | POLLOUT);
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;

    if (h->kind == H_GUEST)
        guestfs_fsync(req, h, datasync);
    else
        fuse_reply_err(req, 0); /* nothing is buffered here */
}

/* Directories have nothing to flush here; the guest's own are synced with
 * the files' fsync (the agent has no directory handles). */
static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    fuse_reply_err(req, 0);
}

static void ll_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    const struct node *p = nodes_get(fs_of(req)->nodes, parent);

    if (p && p->kind == NK_GUEST)
        guestfs_symlink(req, link, p, name);
    else
        fuse_reply_err(req, p ? EPERM : ESTALE);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    struct noidfs *fs = fs_of(req);
    const struct node *n = nodes_get(fs->nodes, ino);
    const struct node *np = nodes_get(fs->nodes, newparent);

    if (!n || !np)
        fuse_reply_err(req, ESTALE);
    else if (n->kind == NK_GUEST && np->kind == NK_GUEST)
        guestfs_link(req, n, np, newname);
    else
        fuse_reply_err(req, n->kind == NK_GUEST || np->kind == NK_GUEST ? EXDEV : EPERM);
}

/* Special files (FIFOs, devices, sockets): the agent makes none; regular
 * files come through create. */
static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    fuse_reply_err(req, EPERM);
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
    const struct node *n = nodes_get(fs_of(req)->nodes, ino);
    struct statvfs sv = {.f_namemax = 255, .f_bsize = 512}; /* libfuse's default */

    if (n && n->kind == NK_GUEST)
        guestfs_statfs(req, n);
    else
        fuse_reply_statfs(req, &sv);
}

static void ll_init(void *userdata, struct fuse_conn_info *conn)
{
    /* `>` opens with O_TRUNC; take it in open's flags rather than as a
     * separate setattr */
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    /* readdirplus always: `ls -l` of a user's VMs is then one list call */
    if (conn->capable & FUSE_CAP_READDIRPLUS)
        conn->want |= FUSE_CAP_READDIRPLUS;
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
    /* guest files (fs/): writes go through to the guest as they are made
     * (no writeback cache: the kernel would hold dirty pages we could not
     * flush to a stopped VM, and would need read access to write-only
     * files); cached pages are dropped when the guest's mtime or size
     * moves.  Requests of up to 1 MiB each (the agent's PREAD/PWRITE
     * bound) instead of 128 KiB: a quarter of the round trips. */
    conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
        conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
    conn->max_write = AP_FS_IO_MAX;
}

const struct fuse_lowlevel_ops fs_ll_ops = {
    .init = ll_init,
    .lookup = ll_lookup,
    .forget = ll_forget,
    .forget_multi = ll_forget_multi,
    .getattr = ll_getattr,
    .setattr = ll_setattr,
    .readlink = ll_readlink,
    .mkdir = dir_mkdir,
    .rmdir = dir_rmdir,
    .unlink = dir_unlink,
    .rename = dir_rename,
    .create = dir_create,
    .open = ll_open,
    .read = ll_read,
    .write = ll_write,
    .flush = ll_flush,
    .release = ll_release,
    .opendir = dir_opendir,
    .readdir = dir_readdir,
    .readdirplus = dir_readdirplus,
    .releasedir = dir_releasedir,
    .poll = ll_poll,
    .fsync = ll_fsync,
    .fsyncdir = ll_fsyncdir,
    .symlink = ll_symlink,
    .link = ll_link,
    .mknod = ll_mknod,
    .statfs = ll_statfs,
};
