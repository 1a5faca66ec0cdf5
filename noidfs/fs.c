/* fs.c — the FUSE low-level front-end: directories and files of DESIGN.md
 * §9 turned into calls of struct noidfs_ops.
 *
 *   [ROOT/]USER/VM/{info,state,exec,stdout,stderr,status,new,last,
 *                   console,console.log,runs/N/…,checkpoints/X/…}
 *
 * Every request is served on a worker of libfuse's multi-threaded loop and
 * calls the binding without any front-end lock held, so a slow exec never
 * holds up `ls` or another VM.  Every path ends in exactly one fuse_reply_*.
 * Generated files are direct_io and report their real size; attributes and
 * entries are cached cache_secs, and our own changes that show elsewhere
 * (a finished run, a clone, a restore) are invalidated from a thread of
 * their own, never from a request's path.
 *
 * File modes say what each entry allows; the checks are made here too, so
 * root gets EACCES on a read-only entry like everyone else. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs-internal.h"
#include "log.h"
#include "macro.h"
#include "names.h"

struct inval {
    struct inval *next;
    fuse_ino_t ino; /* inode to invalidate, or parent of name */
    char *name;     /* NULL: the inode itself */
};

/* ---- entry tables ---- */

struct fixed_entry {
    const char *name;
    enum node_kind kind;
};

static const struct fixed_entry vm_entries[] = {
    {"info", NK_VM_INFO},       {"state", NK_VM_STATE},
    {"exec", NK_VM_EXEC},       {"stdout", NK_VM_STDOUT},
    {"stderr", NK_VM_STDERR},   {"status", NK_VM_STATUS},
    {"new", NK_VM_NEW},         {"runs", NK_RUNS},
    {"console", NK_VM_CONSOLE}, {"console.log", NK_VM_CONSOLE_LOG},
    {"checkpoints", NK_CKPTS},  {"last", NK_VM_LAST},
};

static const struct fixed_entry run_entries[] = {
    {"exec", NK_RUN_EXEC},     {"stdout", NK_RUN_STDOUT},   {"stderr", NK_RUN_STDERR},
    {"status", NK_RUN_STATUS}, {"command", NK_RUN_COMMAND},
};

static const struct fixed_entry ckpt_entries[] = {
    {"info", NK_CKPT_INFO},
    {"restore", NK_CKPT_RESTORE},
    {"clone", NK_CKPT_CLONE},
};

static bool kind_is_dir(enum node_kind k)
{
    return k == NK_ROOT || k == NK_USER || k == NK_VM || k == NK_RUNS || k == NK_RUN ||
           k == NK_CKPTS || k == NK_CKPT;
}

/* Permission bits of each entry (the table of DESIGN.md §9). */
static mode_t kind_mode(enum node_kind k)
{
    switch (k) {
    case NK_ROOT:
        return S_IFDIR | 0755;
    case NK_USER:
        return S_IFDIR | 0700;
    case NK_VM:
    case NK_RUNS:
    case NK_CKPTS:
    case NK_CKPT:
        return S_IFDIR | 0755;
    case NK_RUN:
        return S_IFDIR | 0555;
    case NK_VM_EXEC:
    case NK_VM_CONSOLE:
        return S_IFREG | 0666;
    case NK_RUN_EXEC:
    case NK_CKPT_RESTORE:
    case NK_CKPT_CLONE:
        return S_IFREG | 0222;
    case NK_VM_LAST:
        return S_IFLNK | 0777;
    case NK_VM_INFO:
    case NK_VM_STATE:
    case NK_VM_STDOUT:
    case NK_VM_STDERR:
    case NK_VM_STATUS:
    case NK_VM_NEW:
    case NK_VM_CONSOLE_LOG:
    case NK_RUN_STDOUT:
    case NK_RUN_STDERR:
    case NK_RUN_STATUS:
    case NK_RUN_COMMAND:
    case NK_CKPT_INFO:
    case NK__MAX:
    default:
        return S_IFREG | 0444;
    }
}

static const char *node_hint(const struct node *n)
{
    return n->vm ? n->vm : n->user ? n->user : "/";
}

/* ---- checkpoint directory names ---- */

static bool label_is_file_name(const char *l)
{
    return l[0] && strchr(l, '/') == NULL && strcmp(l, ".") != 0 && strcmp(l, "..") != 0 &&
           strlen(l) <= NAME_MAX;
}

/* The directory name of list[i]: its label when that is a usable file name
 * that no other checkpoint of the VM carries, else its id. */
static const char *ckpt_dir_name(const struct noidfs_checkpoint *list, size_t n, size_t i)
{
    const char *l = list[i].label;

    if (!label_is_file_name(l))
        return list[i].id;
    for (size_t j = 0; j < n; j++)
        if (j != i && (strcmp(list[j].label, l) == 0 || strcmp(list[j].id, l) == 0))
            return list[i].id;
    return l;
}

/* Find the checkpoint shown as directory name; *ret_i its index in *list. */
static int ckpt_find(struct noidfs *fs, const char *user, const char *vm, const char *name,
                     struct noidfs_checkpoint **ret_list, size_t *ret_n, size_t *ret_i,
                     struct nerr *e)
{
    struct noidfs_checkpoint *list = NULL;
    size_t n = 0;
    int r;

    r = fs->ops->checkpoint_list(fs->b, user, vm, &list, &n, e);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++)
        if (strcmp(ckpt_dir_name(list, n, i), name) == 0) {
            *ret_list = list;
            *ret_n = n;
            *ret_i = i;
            return 0;
        }
    noidfs_checkpoints_free(list, n);
    return nerr_set(e, -ENOENT, "VM '%s' has no checkpoint '%s'", vm, name);
}

void noidfs_checkpoints_free(struct noidfs_checkpoint *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        free(list[i].json);
    free(list);
}

void noidfs_strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- attributes ---- */

static void owner_of(struct noidfs *fs, const char *user, uid_t *uid, gid_t *gid)
{
    struct passwd pw, *res = NULL;
    char buf[1024];

    *uid = fs->uid;
    *gid = fs->gid;
    if (!fs->per_user_owners || !user)
        return;
    if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) == 0 && res) {
        *uid = res->pw_uid;
        *gid = res->pw_gid;
    }
}

static int user_exists(struct noidfs *fs, const char *user, struct nerr *e)
{
    char **users = NULL;
    size_t n = 0;
    bool found = false;
    int r;

    r = fs->ops->list_users(fs->b, &users, &n, e);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n && !found; i++)
        found = strcmp(users[i], user) == 0;
    noidfs_strv_free(users, n);
    return found ? 0 : nerr_set(e, -ENOENT, "no user named '%s'", user);
}

static off_t run_file_size(struct run *r, enum node_kind k)
{
    off_t size = 0;
    char tmp[32];

    pthread_mutex_lock(&r->lock);
    switch (k) {
    case NK_VM_STDOUT:
    case NK_RUN_STDOUT:
        size = (off_t)r->out.len;
        break;
    case NK_VM_STDERR:
    case NK_RUN_STDERR:
        size = (off_t)r->err.len;
        break;
    case NK_VM_STATUS:
    case NK_RUN_STATUS:
        size = r->ended && !r->failed ? snprintf(tmp, sizeof(tmp), "%d\n", r->status) : 0;
        break;
    case NK_RUN_COMMAND:
        size = (off_t)r->command.len;
        break;
    default:
        break;
    }
    pthread_mutex_unlock(&r->lock);
    return size;
}

/* The run a run file shows (reference), NULL when there is none. */
static struct run *run_of(struct noidfs *fs, const struct node *n)
{
    switch (n->kind) {
    case NK_VM_STDOUT:
    case NK_VM_STDERR:
    case NK_VM_STATUS:
        return vmstate_run_top(fs, n->user, n->vm);
    case NK_RUN:
    case NK_RUN_EXEC:
    case NK_RUN_STDOUT:
    case NK_RUN_STDERR:
    case NK_RUN_STATUS:
    case NK_RUN_COMMAND:
        return vmstate_run_get(fs, n->user, n->vm, n->run);
    default:
        return NULL;
    }
}

static unsigned newest_run(struct noidfs *fs, const char *user, const char *vm)
{
    _cleanup_free_ unsigned *ids = NULL;
    size_t n = 0;

    if (vmstate_run_ids(fs, user, vm, &ids, &n) < 0 || n == 0)
        return 0;
    return ids[n - 1];
}

/* Fill st for node n (which need not be in the table: its identity is what
 * counts) after checking it exists.  0, -ENOENT, or the op's error. */
static int node_stat(struct noidfs *fs, const struct node *n, struct stat *st, struct nerr *e)
{
    struct noidfs_vm vm = {0};
    int r;

    memset(st, 0, sizeof(*st));
    st->st_ino = n->ino;
    st->st_mode = kind_mode(n->kind);
    st->st_nlink = kind_is_dir(n->kind) ? 2 : 1;
    owner_of(fs, n->user, &st->st_uid, &st->st_gid);
    st->st_blksize = 4096;

    if (n->kind == NK_ROOT)
        return 0;
    if (n->kind == NK_USER) {
        if (!fs->multi_user)
            return 0;
        return user_exists(fs, n->user, e);
    }
    r = vmstate_vm_find(fs, n->user, n->vm, &vm, e);
    if (r < 0)
        return r;
    st->st_mtime = st->st_ctime = st->st_atime = vm.created;

    switch (n->kind) {
    case NK_VM_STATE:
        st->st_size = (off_t)strlen(vm.state) + 1;
        break;
    case NK_VM_INFO: {
        _cleanup_free_ char *json = NULL;
        r = fs->ops->vm_info(fs->b, n->user, n->vm, &vm, &json, e);
        if (r < 0)
            return r;
        st->st_size = json ? (off_t)strlen(json) + 1 : 0;
        break;
    }
    case NK_VM_CONSOLE_LOG: {
        _cleanup_free_ char *log = NULL;
        size_t len = 0;
        r = fs->ops->console_log(fs->b, n->user, n->vm, &log, &len, e);
        if (r < 0)
            return r;
        st->st_size = (off_t)len;
        break;
    }
    case NK_VM_LAST: {
        unsigned id = newest_run(fs, n->user, n->vm);
        char target[32];
        if (id == 0)
            return nerr_set(e, -ENOENT, "no run yet");
        st->st_size = snprintf(target, sizeof(target), "runs/%u", id);
        break;
    }
    case NK_VM_STDOUT:
    case NK_VM_STDERR:
    case NK_VM_STATUS:
    case NK_RUN:
    case NK_RUN_EXEC:
    case NK_RUN_STDOUT:
    case NK_RUN_STDERR:
    case NK_RUN_STATUS:
    case NK_RUN_COMMAND: {
        struct run *run = run_of(fs, n);
        if (!run) {
            if (n->kind == NK_VM_STDOUT || n->kind == NK_VM_STDERR || n->kind == NK_VM_STATUS)
                break; /* nothing run yet: empty */
            return nerr_set(e, -ENOENT, "no run %u", n->run);
        }
        st->st_size = run_file_size(run, n->kind);
        pthread_mutex_lock(&run->lock);
        st->st_mtime = st->st_ctime = run->when;
        pthread_mutex_unlock(&run->lock);
        run_unref(run);
        break;
    }
    case NK_CKPT:
    case NK_CKPT_INFO:
    case NK_CKPT_RESTORE:
    case NK_CKPT_CLONE: {
        struct noidfs_checkpoint *list = NULL;
        size_t cn = 0, i = 0;
        r = ckpt_find(fs, n->user, n->vm, n->ckpt, &list, &cn, &i, e);
        if (r < 0)
            return r;
        st->st_mtime = st->st_ctime = list[i].created;
        if (n->kind == NK_CKPT_INFO)
            st->st_size = (off_t)strlen(list[i].json) + 1;
        noidfs_checkpoints_free(list, cn);
        break;
    }
    default:
        break;
    }
    return 0;
}

/* ---- name resolution ---- */

/* What name in directory parent is; fills child's identity.  -ENOENT for
 * names that cannot exist there (no op is called). */
static int child_of(const struct node *parent, const char *name, struct node *child)
{
    memset(child, 0, sizeof(*child));
    child->user = parent->user;
    child->vm = parent->vm;
    child->run = parent->run;
    child->ckpt = parent->ckpt;

    switch (parent->kind) {
    case NK_ROOT:
        if (name_user_check(name, NULL) < 0)
            return -ENOENT;
        child->kind = NK_USER;
        child->user = (char *)name;
        return 0;
    case NK_USER:
        if (name_vm_check(name, NULL) < 0)
            return -ENOENT;
        child->kind = NK_VM;
        child->vm = (char *)name;
        return 0;
    case NK_VM:
        for (size_t i = 0; i < ARRAY_SIZE(vm_entries); i++)
            if (strcmp(vm_entries[i].name, name) == 0) {
                child->kind = vm_entries[i].kind;
                return 0;
            }
        return -ENOENT;
    case NK_RUNS: {
        char *end;
        unsigned long id = strtoul(name, &end, 10);
        if (!name[0] || *end || name[0] == '0' || id == 0 || id > UINT_MAX)
            return -ENOENT;
        child->kind = NK_RUN;
        child->run = (unsigned)id;
        return 0;
    }
    case NK_RUN:
        for (size_t i = 0; i < ARRAY_SIZE(run_entries); i++)
            if (strcmp(run_entries[i].name, name) == 0) {
                child->kind = run_entries[i].kind;
                return 0;
            }
        return -ENOENT;
    case NK_CKPTS:
        child->kind = NK_CKPT;
        child->ckpt = (char *)name;
        return 0;
    case NK_CKPT:
        for (size_t i = 0; i < ARRAY_SIZE(ckpt_entries); i++)
            if (strcmp(ckpt_entries[i].name, name) == 0) {
                child->kind = ckpt_entries[i].kind;
                return 0;
            }
        return -ENOENT;
    default:
        return -ENOTDIR;
    }
}

static void fill_entry(struct noidfs *fs, const struct node *n, const struct stat *st,
                       struct fuse_entry_param *ep)
{
    memset(ep, 0, sizeof(*ep));
    ep->ino = n->ino;
    ep->generation = 1;
    ep->attr = *st;
    ep->attr.st_ino = n->ino;
    ep->attr_timeout = fs->cache_secs;
    ep->entry_timeout = fs->cache_secs;
}

/* Stat child and enter it in the table: one lookup counted on success. */
static int entry_for(struct noidfs *fs, const struct node *child, struct fuse_entry_param *ep,
                     struct nerr *e)
{
    const struct node *n;
    struct stat st;
    int r;

    r = node_stat(fs, child, &st, e);
    if (r < 0)
        return r;
    n = nodes_ref(fs->nodes, child->kind, child->user, child->vm, child->run, child->ckpt);
    if (!n)
        return -ENOMEM;
    fill_entry(fs, n, &st, ep);
    return 0;
}

static struct noidfs *fs_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

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
    r = child_of(p, name, &child);
    if (r == 0)
        r = entry_for(fs, &child, &ep, &e);
    if (r < 0) {
        fuse_reply_err(req, errmap_log("lookup", name, r, &e));
        return;
    }
    fuse_reply_entry(req, &ep);
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
    r = node_stat(fs, n, &st, &e);
    if (r < 0) {
        fuse_reply_err(req, errmap_log("stat", node_hint(n), r, &e));
        return;
    }
    fuse_reply_attr(req, &st, fs->cache_secs);
}

static bool kind_is_writable(enum node_kind k)
{
    return k == NK_VM_EXEC || k == NK_VM_CONSOLE || k == NK_RUN_EXEC || k == NK_CKPT_RESTORE ||
           k == NK_CKPT_CLONE;
}

/* Only what `>` does to a file: truncate a writable one to 0 (a no-op:
 * writes are commands, not contents).  Modes, owners and times are fixed. */
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
    if (to_set & ~(FUSE_SET_ATTR_SIZE | FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
                   FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_CTIME)) {
        fuse_reply_err(req, EPERM);
        return;
    }
    if ((to_set & FUSE_SET_ATTR_SIZE) && (!kind_is_writable(n->kind) || attr->st_size != 0)) {
        fuse_reply_err(req, kind_is_writable(n->kind) ? EINVAL : EACCES);
        return;
    }
    r = node_stat(fs, n, &st, &e);
    if (r < 0) {
        fuse_reply_err(req, errmap_log("setattr", node_hint(n), r, &e));
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

    if (!n || n->kind != NK_VM_LAST) {
        fuse_reply_err(req, n ? EINVAL : ESTALE);
        return;
    }
    id = newest_run(fs, n->user, n->vm);
    if (id == 0) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    snprintf(target, sizeof(target), "runs/%u", id);
    fuse_reply_readlink(req, target);
}

/* ---- directories ---- */

struct dirent_snap {
    char *name;
    struct node id; /* identity (names point into name/ckpt below) */
    char *ckpt;
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
        free(d->ents[i].ckpt);
    }
    free(d->ents);
    d->ents = NULL;
    d->n = 0;
}

static int snap_add(struct dirent_snap **ents, size_t *n, size_t *cap, const char *name,
                    const struct node *parent)
{
    struct dirent_snap *s;

    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 32;
        s = realloc(*ents, nc * sizeof(*s));
        if (!s)
            return -ENOMEM;
        *ents = s;
        *cap = nc;
    }
    s = &(*ents)[*n];
    memset(s, 0, sizeof(*s));
    s->name = strdup(name);
    if (!s->name)
        return -ENOMEM;
    if (child_of(parent, s->name, &s->id) < 0) {
        free(s->name);
        return 0; /* not a name that can live here: skip it */
    }
    if (s->id.kind == NK_CKPT) {
        s->ckpt = s->name;
        s->id.ckpt = s->ckpt;
        s->name = strdup(s->ckpt);
        if (!s->name)
            return -ENOMEM;
    }
    (*n)++;
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
            r = snap_add(&ents, &n, &cap, users[i], p);
        noidfs_strv_free(users, un);
        break;
    }
    case NK_USER: {
        _cleanup_free_ struct noidfs_vm *vms = NULL;
        size_t vn = 0;
        r = vmstate_vm_list(fs, p->user, &vms, &vn, e);
        for (size_t i = 0; r >= 0 && i < vn; i++)
            r = snap_add(&ents, &n, &cap, vms[i].name, p);
        break;
    }
    case NK_VM: {
        struct noidfs_vm vm;
        r = vmstate_vm_find(fs, p->user, p->vm, &vm, e);
        bool has_runs = r >= 0 && newest_run(fs, p->user, p->vm) != 0;
        for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(vm_entries); i++)
            if (vm_entries[i].kind != NK_VM_LAST || has_runs)
                r = snap_add(&ents, &n, &cap, vm_entries[i].name, p);
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
            r = snap_add(&ents, &n, &cap, name, p);
        }
        break;
    }
    case NK_RUN: {
        struct run *run = run_of(fs, p);
        if (!run) {
            r = nerr_set(e, -ENOENT, "no run %u", p->run);
            break;
        }
        run_unref(run);
        for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(run_entries); i++)
            r = snap_add(&ents, &n, &cap, run_entries[i].name, p);
        break;
    }
    case NK_CKPTS: {
        struct noidfs_checkpoint *list = NULL;
        size_t cn = 0;
        r = fs->ops->checkpoint_list(fs->b, p->user, p->vm, &list, &cn, e);
        for (size_t i = 0; r >= 0 && i < cn; i++)
            r = snap_add(&ents, &n, &cap, ckpt_dir_name(list, cn, i), p);
        noidfs_checkpoints_free(list, cn);
        break;
    }
    case NK_CKPT: {
        struct noidfs_checkpoint *list = NULL;
        size_t cn = 0, ci = 0;
        r = ckpt_find(fs, p->user, p->vm, p->ckpt, &list, &cn, &ci, e);
        noidfs_checkpoints_free(list, cn);
        for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(ckpt_entries); i++)
            r = snap_add(&ents, &n, &cap, ckpt_entries[i].name, p);
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

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct noidfs *fs = fs_of(req);
    const struct node *n = nodes_get(fs->nodes, ino);
    struct dir_handle *d;

    if (!n || !kind_is_dir(n->kind)) {
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
    fuse_reply_open(req, fi);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, bool plus)
{
    struct noidfs *fs = fs_of(req);
    const struct node *p = nodes_get(fs->nodes, ino);
    struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
    _cleanup_free_ char *buf = NULL;
    struct nerr e = {0};
    size_t used = 0;
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
        const struct node *id = &d->ents[i - 2].id;
        if (!plus) {
            st.st_mode = kind_mode(id->kind);
            st.st_ino = nodes_find(fs->nodes, id->kind, id->user, id->vm, id->run, id->ckpt);
            if (st.st_ino == 0)
                st.st_ino = (ino_t)-1; /* unknown yet: the kernel looks it up */
            need = fuse_add_direntry(req, buf + used, size - used, name, &st, i + 1);
            if (need > size - used)
                break;
            used += need;
            continue;
        }
        struct nerr ee = {0};
        if (node_stat(fs, id, &st, &ee) < 0)
            continue; /* gone since the snapshot */
        need = fuse_add_direntry_plus(req, NULL, 0, name, NULL, 0);
        if (need > size - used)
            break;
        struct fuse_entry_param ep;
        const struct node *n = nodes_ref(fs->nodes, id->kind, id->user, id->vm, id->run, id->ckpt);
        if (!n) {
            r = -ENOMEM;
            break;
        }
        fill_entry(fs, n, &st, &ep);
        used += fuse_add_direntry_plus(req, buf + used, size - used, name, &ep, i + 1);
    }
    pthread_mutex_unlock(&d->lock);
    if (r < 0 && used == 0) {
        fuse_reply_err(req, errmap_log("readdir", node_hint(p), r, &e));
        return;
    }
    fuse_reply_buf(req, buf, used);
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, false);
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, true);
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;

    if (d) {
        dir_snap_free(d);
        pthread_mutex_destroy(&d->lock);
        free(d);
    }
    fuse_reply_err(req, 0);
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
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
    if (p->kind == NK_USER) {
        r = name_vm_check(name, &e);
        if (r >= 0) {
            r = fs->ops->vm_create(fs->b, p->user, name, &e);
            vmstate_vm_list_dirty(fs, p->user);
        }
    } else if (p->kind == NK_CKPTS) {
        struct noidfs_checkpoint *list = NULL;
        size_t cn = 0, ci = 0;
        r = name_label_check(name, strlen(name), &e);
        if (r >= 0 && ckpt_find(fs, p->user, p->vm, name, &list, &cn, &ci, NULL) == 0)
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
        r = child_of(p, name, &child);
        if (r == 0)
            r = entry_for(fs, &child, &ep, &e);
    }
    if (r < 0) {
        fuse_reply_err(req, errmap_log("mkdir", name, r, &e));
        return;
    }
    log_info("noidfs: mkdir %s%s%s: done", p->vm ? p->vm : "", p->vm ? "/checkpoints/" : "", name);
    fuse_reply_entry(req, &ep);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct noidfs *fs = fs_of(req);
    const struct node *p = nodes_get(fs->nodes, parent);
    struct nerr e = {0};
    int r;

    if (!p) {
        fuse_reply_err(req, ESTALE);
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
        r = ckpt_find(fs, p->user, p->vm, name, &list, &cn, &ci, &e);
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

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    fuse_reply_err(req, EPERM);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    fuse_reply_err(req, EPERM);
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    fuse_reply_err(req, EACCES);
}

/* ---- files ---- */

static void handles_add(struct noidfs *fs, struct handle *h)
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

static void handle_free(struct handle *h)
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
        r = ckpt_find(fs, n->user, n->vm, n->ckpt, &list, &cn, &ci, e);
        if (r >= 0)
            r = buf_printf(out, "%s\n", list[ci].json);
        noidfs_checkpoints_free(list, cn);
        return r;
    }
    default:
        return 0;
    }
}

static int open_handle(struct noidfs *fs, const struct node *n, int flags, struct handle *h,
                       struct nerr *e)
{
    struct stat st;
    int r;

    /* the VM (or run, checkpoint) must exist; also gives the right errno */
    r = node_stat(fs, n, &st, e);
    if (r < 0)
        return r;
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
        h->run = run_of(fs, n); /* NULL: nothing run yet, the file is empty */
        return 0;
    default:
        h->kind = H_STATIC;
        return static_content(fs, n, &h->data, e);
    }
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
    mode = kind_mode(n->kind);
    if (!S_ISREG(mode)) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    if ((acc != O_RDONLY && !(mode & 0222)) || (acc != O_WRONLY && !(mode & 0444))) {
        fuse_reply_err(req, EACCES);
        return;
    }
    h = calloc(1, sizeof(*h));
    if (!h) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    pthread_mutex_init(&h->lock, NULL);
    h->fs = fs;
    h->node = n;
    h->readable = acc != O_WRONLY;
    h->writable = acc != O_RDONLY;
    buf_init(&h->data, n->kind == NK_VM_CONSOLE_LOG ? 0 : EXEC_COMMAND_MAX);
    r = open_handle(fs, n, fi->flags, h, &e);
    if (r < 0) {
        handle_free(h);
        fuse_reply_err(req, errmap_log("open", node_hint(n), r, &e));
        return;
    }
    handles_add(fs, h);
    fi->fh = (uintptr_t)h;
    fi->direct_io = 1;
    if (h->kind == H_CONSOLE || h->kind == H_EXEC)
        fi->nonseekable = 1;
    if (fuse_reply_open(req, fi) == -ENOENT) {
        /* the opener was interrupted: no release will come */
        handles_remove(fs, h);
        console_file_release(h);
        handle_free(h);
    }
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
        pthread_mutex_lock(&h->lock);
        r = exec_file_read(h, req, buf, size);
        pthread_mutex_unlock(&h->lock);
        break;
    case H_CONSOLE:
        r = console_file_read(h, req, buf, size, fi->flags & O_NONBLOCK);
        break;
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
    int r = 0;

    if (!h->writable) {
        fuse_reply_err(req, EBADF);
        return;
    }
    if (h->kind == H_CONSOLE) {
        r = console_file_write(h, buf, size);
    } else if (h->kind == H_EXEC || h->kind == H_ACTION) {
        pthread_mutex_lock(&h->lock);
        if (h->exec)
            r = -EBUSY; /* a streaming session runs already */
        else if (buf_append(&h->data, buf, size) < 0)
            r = -errmap_log("write", node_hint(h->node), -EFBIG,
                            &(struct nerr){-EFBIG, "a command line is at most 256 KiB"});
        pthread_mutex_unlock(&h->lock);
    } else {
        r = -EACCES;
    }
    if (r < 0)
        fuse_reply_err(req, -r);
    else
        fuse_reply_write(req, size);
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
    r = ckpt_find(fs, n->user, n->vm, n->ckpt, &list, &cn, &ci, &e);
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

    pthread_mutex_lock(&h->lock);
    if (h->kind == H_EXEC && !h->readable && h->data.len > 0)
        err = exec_file_run(h, req);
    else if (h->kind == H_ACTION && h->data.len > 0 && !h->done) {
        h->done = true;
        err = run_action(h);
    }
    pthread_mutex_unlock(&h->lock);
    fuse_reply_err(req, err);
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct handle *h = (struct handle *)(uintptr_t)fi->fh;

    handles_remove(h->fs, h);
    if (h->kind == H_EXEC)
        exec_file_release(h);
    if (h->kind == H_CONSOLE)
        console_file_release(h);
    handle_free(h);
    fuse_reply_err(req, 0);
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
}

static const struct fuse_lowlevel_ops ll_ops = {
    .init = ll_init,
    .lookup = ll_lookup,
    .forget = ll_forget,
    .forget_multi = ll_forget_multi,
    .getattr = ll_getattr,
    .setattr = ll_setattr,
    .readlink = ll_readlink,
    .mkdir = ll_mkdir,
    .rmdir = ll_rmdir,
    .unlink = ll_unlink,
    .rename = ll_rename,
    .create = ll_create,
    .open = ll_open,
    .read = ll_read,
    .write = ll_write,
    .flush = ll_flush,
    .release = ll_release,
    .opendir = ll_opendir,
    .readdir = ll_readdir,
    .readdirplus = ll_readdirplus,
    .releasedir = ll_releasedir,
    .poll = ll_poll,
};

/* ---- invalidations ---- */

static void inval_push(struct noidfs *fs, fuse_ino_t ino, const char *name)
{
    struct inval *iv;

    if (ino == 0 || !fs->inval_started)
        return;
    iv = calloc(1, sizeof(*iv));
    if (!iv)
        return;
    iv->ino = ino;
    if (name && !(iv->name = strdup(name))) {
        free(iv);
        return;
    }
    pthread_mutex_lock(&fs->inval_lock);
    iv->next = fs->inval_head;
    fs->inval_head = iv;
    pthread_cond_signal(&fs->inval_cond);
    pthread_mutex_unlock(&fs->inval_lock);
}

void fs_inval_inode(struct noidfs *fs, fuse_ino_t ino)
{
    inval_push(fs, ino, NULL);
}

void fs_inval_entry(struct noidfs *fs, fuse_ino_t parent, const char *name)
{
    inval_push(fs, parent, name);
}

void fs_run_changed(struct noidfs *fs, const char *user, const char *vm, unsigned id, bool top)
{
    static const enum node_kind run_kinds[] = {NK_RUN_STDOUT, NK_RUN_STDERR, NK_RUN_STATUS,
                                               NK_RUN_COMMAND};
    static const enum node_kind top_kinds[] = {NK_VM_STDOUT, NK_VM_STDERR, NK_VM_STATUS};

    for (size_t i = 0; i < ARRAY_SIZE(run_kinds); i++)
        fs_inval_inode(fs, nodes_find(fs->nodes, run_kinds[i], user, vm, id, NULL));
    for (size_t i = 0; top && i < ARRAY_SIZE(top_kinds); i++)
        fs_inval_inode(fs, nodes_find(fs->nodes, top_kinds[i], user, vm, 0, NULL));
    fs_inval_inode(fs, nodes_find(fs->nodes, NK_RUNS, user, vm, 0, NULL));
    fs_inval_inode(fs, nodes_find(fs->nodes, NK_VM_LAST, user, vm, 0, NULL));
    fs_inval_entry(fs, nodes_find(fs->nodes, NK_VM, user, vm, 0, NULL), "last");
}

static void *inval_main(void *arg)
{
    struct noidfs *fs = arg;

    pthread_mutex_lock(&fs->inval_lock);
    for (;;) {
        while (!fs->inval_head && !fs->inval_stop)
            pthread_cond_wait(&fs->inval_cond, &fs->inval_lock);
        if (!fs->inval_head)
            break;
        struct inval *iv = fs->inval_head;
        fs->inval_head = iv->next;
        pthread_mutex_unlock(&fs->inval_lock);
        /* -ENOENT (the kernel forgot it already) is fine */
        if (iv->name)
            fuse_lowlevel_notify_inval_entry(fs->se, iv->ino, iv->name, strlen(iv->name));
        else
            fuse_lowlevel_notify_inval_inode(fs->se, iv->ino, 0, 0);
        free(iv->name);
        free(iv);
        pthread_mutex_lock(&fs->inval_lock);
    }
    pthread_mutex_unlock(&fs->inval_lock);
    return NULL;
}

/* ---- mount, loop, unmount ---- */

/* Mount points in /proc/self/mountinfo escape space, tab, newline and
 * backslash as \ooo. */
static void unescape_octal(char *s)
{
    char *w = s;

    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
            r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 3;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* Whether path is a mount point; *ret_minor its device minor (the FUSE
 * connection's number) and *ret_fuse whether it is a FUSE mount. */
static bool mount_lookup(const char *path, unsigned *ret_minor, bool *ret_fuse)
{
    _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4096];
    bool found = false;

    if (!f)
        return false;
    while (fgets(line, sizeof(line), f)) {
        unsigned maj, min;
        char mp[PATH_MAX], *sep, fstype[64];
        if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mp) != 3)
            continue;
        unescape_octal(mp);
        if (strcmp(mp, path) != 0)
            continue;
        sep = strstr(line, " - ");
        if (!sep || sscanf(sep + 3, "%63s", fstype) != 1)
            continue;
        /* the last mount on the path is the visible one */
        found = true;
        *ret_minor = min;
        *ret_fuse = strncmp(fstype, "fuse", 4) == 0;
    }
    return found;
}

/* The absolute path of p without resolving its last component (which may
 * be a dead mount that cannot be stat'ed). */
static char *absolute_path(const char *p)
{
    _cleanup_free_ char *dup = strdup(p), *dir = NULL;
    char *slash, *res = NULL;
    const char *base;

    if (!dup)
        return NULL;
    while (strlen(dup) > 1 && dup[strlen(dup) - 1] == '/')
        dup[strlen(dup) - 1] = '\0';
    slash = strrchr(dup, '/');
    if (slash == dup) {
        dir = strdup("/");
        base = dup + 1;
    } else if (slash) {
        *slash = '\0';
        dir = realpath(dup, NULL);
        base = slash + 1;
    } else {
        dir = realpath(".", NULL);
        base = dup;
    }
    if (!dir)
        return NULL;
    if (!base[0])
        return strdup(dir);
    if (asprintf(&res, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", base) < 0)
        return NULL;
    return res;
}

static int run_fusermount_unmount(const char *path)
{
    pid_t pid = fork();
    int status;

    if (pid < 0)
        return -errno;
    if (pid == 0) {
        execlp("fusermount3", "fusermount3", "-u", "-z", "-q", "--", path, (char *)NULL);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0)
        return -errno;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int noidfs_clear_stale(const char *mountpoint, struct nerr *e)
{
    _cleanup_free_ char *abs = absolute_path(mountpoint);
    struct stat st;
    unsigned minor;
    bool is_fuse;
    int r;

    if (!abs)
        return nerr_set(e, -errno, "%s: %s", mountpoint, strerror(errno));
    if (stat(abs, &st) == 0) {
        if (mount_lookup(abs, &minor, &is_fuse) && is_fuse)
            return nerr_set(e, -EBUSY,
                            "%s is a FUSE mount already (unmount it first: "
                            "fusermount3 -u %s)",
                            abs, abs);
        return 0;
    }
    if (errno != ENOTCONN && errno != ECONNABORTED)
        return 0; /* missing or unreadable: mounting tells the reason */
    /* the file system server behind it died: detach the dead mount */
    r = geteuid() == 0 ? (umount2(abs, MNT_DETACH) < 0 ? -errno : 0) : run_fusermount_unmount(abs);
    if (r < 0)
        return nerr_set(e, r, "%s is a dead FUSE mount and could not be detached: %s", abs,
                        strerror(-r));
    log_warn("noidfs: %s was a dead mount (its server had stopped); detached it", abs);
    return 1;
}

int noidfs_mount(const struct noidfs_ops *ops, void *binding, const struct noidfs_options *o,
                 struct noidfs **ret, struct nerr *e)
{
    struct noidfs *fs = NULL;
    char opts[512];
    int r;

    fs = calloc(1, sizeof(*fs));
    if (!fs)
        return nerr_set(e, -ENOMEM, "out of memory");
    fs->ops = ops;
    fs->b = binding;
    fs->multi_user = ops->list_users != NULL;
    fs->per_user_owners = o->per_user_owners;
    fs->uid = o->uid;
    fs->gid = o->gid;
    fs->cache_secs = o->cache_secs > 0 ? o->cache_secs : 1.0;
    pthread_mutex_init(&fs->handles_lock, NULL);
    pthread_mutex_init(&fs->inval_lock, NULL);
    pthread_cond_init(&fs->inval_cond, NULL);
    fs->mountpoint = absolute_path(o->mountpoint);
    fs->nodes = nodes_new(fs->multi_user);
    fs->vms = vmstate_new(fs->cache_secs);
    if (!fs->mountpoint || !fs->nodes || !fs->vms) {
        r = nerr_set(e, -ENOMEM, "%s: %s", o->mountpoint,
                     fs->mountpoint ? "out of memory" : strerror(errno));
        goto fail;
    }
    r = noidfs_clear_stale(fs->mountpoint, e);
    if (r < 0)
        goto fail;

    snprintf(opts, sizeof(opts), "fsname=%s,subtype=noidfs,default_permissions%s",
             o->fsname ? o->fsname : "noid", o->per_user_owners ? ",allow_other" : "");
    char *argv[] = {"noidfs", "-o", opts, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, argv);
    fs->se = fuse_session_new(&args, &ll_ops, sizeof(ll_ops), fs);
    fuse_opt_free_args(&args);
    if (!fs->se) {
        r = nerr_set(e, -EIO, "cannot start a FUSE session (see the messages above)");
        goto fail;
    }
    if (fuse_session_mount(fs->se, fs->mountpoint) != 0) {
        r = nerr_set(e, -EIO, "cannot mount on %s (does it exist? is /dev/fuse usable%s?)",
                     fs->mountpoint,
                     o->per_user_owners ? "; allow_other needs root or user_allow_other in "
                                          "/etc/fuse.conf"
                                        : "");
        fuse_session_destroy(fs->se);
        fs->se = NULL;
        goto fail;
    }
    *ret = fs;
    return 0;
fail:
    noidfs_free(fs);
    return r;
}

/* The helper threads of a mount, started with the loop (after a fork). */
static int helpers_start(struct noidfs *fs)
{
    sigset_t all, old;
    int r;

    if (fs->inval_started)
        return 0;
    r = console_watch_start(fs);
    if (r < 0)
        return r;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    r = -pthread_create(&fs->inval_thread, NULL, inval_main, fs);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r == 0)
        fs->inval_started = true;
    return r;
}

int noidfs_run(struct noidfs *fs)
{
    struct fuse_loop_config *cfg;
    int r;

    r = helpers_start(fs);
    if (r < 0)
        return r;
    cfg = fuse_loop_cfg_create();
    if (!cfg)
        return -ENOMEM;
    fuse_loop_cfg_set_max_threads(cfg, FS_MAX_THREADS);
    fuse_loop_cfg_set_idle_threads(cfg, 8);
    r = fuse_session_loop_mt(fs->se, cfg);
    fuse_loop_cfg_destroy(cfg);
    return r < 0 ? r : r > 0 ? -EIO : 0;
}

static void *loop_main(void *arg)
{
    struct noidfs *fs = arg;
    int r = noidfs_run(fs);

    if (r < 0 && !fs->exiting)
        log_error("noidfs: the session on %s ended: %s", fs->mountpoint, strerror(-r));
    return NULL;
}

int noidfs_start(struct noidfs *fs, struct nerr *e)
{
    int r = helpers_start(fs);

    if (r < 0)
        return nerr_set(e, r, "noidfs: cannot start its threads: %s", strerror(-r));
    r = -pthread_create(&fs->loop_thread, NULL, loop_main, fs);
    if (r < 0)
        return nerr_set(e, r, "noidfs: cannot start its thread: %s", strerror(-r));
    fs->loop_started = true;
    return 0;
}

void noidfs_exit(struct noidfs *fs)
{
    fs->exiting = 1;
    if (fs->se)
        fuse_session_exit(fs->se);
}

/* Wake every request that blocks on a handle (console reads, streaming
 * reads, closes waiting for a command) so the loop can end. */
static void wake_all(struct noidfs *fs)
{
    pthread_mutex_lock(&fs->handles_lock);
    for (struct handle *h = fs->handles; h; h = h->next) {
        if (h->kind == H_CONSOLE)
            console_file_wake(h);
        else if (h->kind == H_EXEC)
            exec_file_wake(h);
    }
    pthread_mutex_unlock(&fs->handles_lock);
}

/* Abort the FUSE connection: every request still queued fails and the
 * loop's reads return, even while files stay open (root only). */
static void abort_connection(unsigned minor)
{
    char path[64];
    int fd;

    snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/abort", minor);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (write(fd, "1", 1) < 0)
        log_warn("noidfs: abort %s: %s", path, strerror(errno));
    close(fd);
}

void noidfs_free(struct noidfs *fs)
{
    unsigned minor = 0;
    bool is_fuse = false, mounted = false;

    if (!fs)
        return;
    fs->exiting = 1;
    if (fs->se) {
        mounted = mount_lookup(fs->mountpoint, &minor, &is_fuse) && is_fuse;
        wake_all(fs);
        fuse_session_exit(fs->se);
        /* lazy unmount; also closes /dev/fuse, which ends idle workers */
        fuse_session_unmount(fs->se);
    }
    if (fs->loop_started) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 2;
        if (pthread_timedjoin_np(fs->loop_thread, NULL, &deadline) != 0) {
            /* files are open on the detached mount: end it by force */
            if (mounted)
                abort_connection(minor);
            wake_all(fs);
            pthread_join(fs->loop_thread, NULL);
        }
    }
    console_watch_stop(fs);
    if (fs->inval_started) {
        pthread_mutex_lock(&fs->inval_lock);
        fs->inval_stop = true;
        pthread_cond_signal(&fs->inval_cond);
        pthread_mutex_unlock(&fs->inval_lock);
        pthread_join(fs->inval_thread, NULL);
    }
    while (fs->inval_head) {
        struct inval *iv = fs->inval_head;
        fs->inval_head = iv->next;
        free(iv->name);
        free(iv);
    }
    if (fs->se)
        fuse_session_destroy(fs->se);
    vmstate_free(fs->vms);
    nodes_free(fs->nodes);
    pthread_cond_destroy(&fs->inval_cond);
    pthread_mutex_destroy(&fs->inval_lock);
    pthread_mutex_destroy(&fs->handles_lock);
    free(fs->mountpoint);
    free(fs);
}
