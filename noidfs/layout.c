/* layout.c — the shape of the tree (DESIGN.md §9): which names live in
 * which directory, what each entry's mode is, whether it exists now and its
 * attributes (real sizes, generated from the binding's answers).
 *
 * Checkpoint directories are named by label when the label is a usable
 * file name no other checkpoint of the VM carries, else by id. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs-internal.h"
#include "macro.h"
#include "names.h"
#include "timeutil.h"

/* ---- the fixed entries of each directory ---- */

static const struct layout_entry vm_entries[] = {
    {"info", NK_VM_INFO},       {"state", NK_VM_STATE},
    {"exec", NK_VM_EXEC},       {"stdout", NK_VM_STDOUT},
    {"stderr", NK_VM_STDERR},   {"status", NK_VM_STATUS},
    {"new", NK_VM_NEW},         {"runs", NK_RUNS},
    {"console", NK_VM_CONSOLE}, {"console.log", NK_VM_CONSOLE_LOG},
    {"checkpoints", NK_CKPTS},  {"last", NK_VM_LAST},
    {"fs", NK_GUEST},
};

static const struct layout_entry run_entries[] = {
    {"exec", NK_RUN_EXEC},     {"stdout", NK_RUN_STDOUT},   {"stderr", NK_RUN_STDERR},
    {"status", NK_RUN_STATUS}, {"command", NK_RUN_COMMAND},
};

static const struct layout_entry ckpt_entries[] = {
    {"info", NK_CKPT_INFO},
    {"restore", NK_CKPT_RESTORE},
    {"clone", NK_CKPT_CLONE},
};

bool layout_kind_is_dir(enum node_kind k)
{
    return k == NK_ROOT || k == NK_USER || k == NK_VM || k == NK_RUNS || k == NK_RUN ||
           k == NK_CKPTS || k == NK_CKPT || k == NK_GUEST;
}

bool layout_entry_shown(struct noidfs *fs, enum node_kind k)
{
    return k != NK_GUEST || guestfs_enabled(fs);
}

/* Permission bits of each entry (the table of DESIGN.md §9). */
mode_t layout_kind_mode(enum node_kind k)
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
    case NK_GUEST: /* fs/ as listed in the VM's directory; the guest's attributes show
                    * once it is looked up */
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

const char *layout_node_hint(const struct node *n)
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
const char *layout_ckpt_name(const struct noidfs_checkpoint *list, size_t n, size_t i)
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
int layout_ckpt_find(struct noidfs *fs, const char *user, const char *vm, const char *name,
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
        if (strcmp(layout_ckpt_name(list, n, i), name) == 0) {
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

/* The local account named user owns that user's files (server-side
 * mount).  Looked up through NSS, which reads several files per call, so
 * the answer is kept for the cache lifetime: `ls -l` of a user directory
 * would otherwise pay one lookup per entry. */
void layout_owner_of(struct noidfs *fs, const char *user, uid_t *uid, gid_t *gid)
{
    struct owner_entry *slot = NULL;
    struct passwd pw, *res = NULL;
    int64_t now = time_mono_ms();
    char buf[1024];

    *uid = fs->uid;
    *gid = fs->gid;
    if (!fs->per_user_owners || !user)
        return;
    pthread_mutex_lock(&fs->owners_lock);
    for (size_t i = 0; i < OWNER_CACHE_N; i++) {
        struct owner_entry *o = &fs->owners[i];
        if (strcmp(o->user, user) == 0 && now - o->at_ms < (int64_t)(fs->cache_secs * 1000)) {
            *uid = o->uid;
            *gid = o->gid;
            pthread_mutex_unlock(&fs->owners_lock);
            return;
        }
        if (!slot || o->at_ms < slot->at_ms)
            slot = o; /* the oldest entry makes room */
    }
    pthread_mutex_unlock(&fs->owners_lock);
    if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) == 0 && res) {
        *uid = res->pw_uid;
        *gid = res->pw_gid;
    }
    pthread_mutex_lock(&fs->owners_lock);
    snprintf(slot->user, sizeof(slot->user), "%s", user);
    slot->uid = *uid;
    slot->gid = *gid;
    slot->at_ms = now;
    pthread_mutex_unlock(&fs->owners_lock);
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
struct run *layout_run_of(struct noidfs *fs, const struct node *n)
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

unsigned layout_newest_run(struct noidfs *fs, const char *user, const char *vm)
{
    _cleanup_free_ unsigned *ids = NULL;
    size_t n = 0;

    if (vmstate_run_ids(fs, user, vm, &ids, &n) < 0 || n == 0)
        return 0;
    return ids[n - 1];
}

/* Fill st for node n (which need not be in the table: its identity is what
 * counts) after checking it exists.  0, -ENOENT, or the op's error. */
int layout_node_stat(struct noidfs *fs, const struct node *n, struct stat *st, struct nerr *e)
{
    struct noidfs_vm vm = {0};
    int r;

    memset(st, 0, sizeof(*st));
    st->st_ino = n->ino;
    st->st_mode = layout_kind_mode(n->kind);
    st->st_nlink = layout_kind_is_dir(n->kind) ? 2 : 1;
    layout_owner_of(fs, n->user, &st->st_uid, &st->st_gid);
    st->st_blksize = 4096;

    st->st_mtime = st->st_ctime = st->st_atime = fs->mounted_at;
    if (n->kind == NK_ROOT)
        return 0;
    /* guest files are answered by guestfs.c, with a request's file handle */
    if (n->kind == NK_GUEST)
        return nerr_set(e, -EIO, "internal: a guest file's attributes asked of the layout");
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
        unsigned id = layout_newest_run(fs, n->user, n->vm);
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
        struct run *run = layout_run_of(fs, n);
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
        r = layout_ckpt_find(fs, n->user, n->vm, n->ckpt, &list, &cn, &i, e);
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

/* name among the fixed entries of a VM, run or checkpoint directory. */
static int fixed_entry(struct noidfs *fs, enum node_kind dir, const char *name, struct node *child)
{
    size_t n;
    const struct layout_entry *ent = layout_entries(dir, &n);

    for (size_t i = 0; i < n; i++)
        if (strcmp(ent[i].name, name) == 0 && layout_entry_shown(fs, ent[i].kind)) {
            child->kind = ent[i].kind;
            if (child->kind == NK_GUEST)
                child->gpath = (char *)"/";
            return 0;
        }
    return -ENOENT;
}

/* What name in directory parent is; fills child's identity.  -ENOENT for
 * names that cannot exist there (no op is called). */
int layout_child_of(struct noidfs *fs, const struct node *parent, const char *name,
                    struct node *child)
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
        return fixed_entry(fs, parent->kind, name, child);
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
        return fixed_entry(fs, parent->kind, name, child);
    case NK_CKPTS:
        child->kind = NK_CKPT;
        child->ckpt = (char *)name;
        return 0;
    case NK_CKPT:
        return fixed_entry(fs, parent->kind, name, child);
    default:
        return -ENOTDIR;
    }
}

void layout_fill_entry(struct noidfs *fs, const struct node *n, const struct stat *st,
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
int layout_entry_for(struct noidfs *fs, const struct node *child, struct fuse_entry_param *ep,
                     struct nerr *e)
{
    const struct node *n;
    struct stat st;
    int r;

    r = layout_node_stat(fs, child, &st, e);
    if (r < 0)
        return r;
    n = nodes_ref(fs->nodes, child->kind, child->user, child->vm, child->run, child->ckpt);
    if (!n)
        return -ENOMEM;
    layout_fill_entry(fs, n, &st, ep);
    return 0;
}

bool layout_kind_is_writable(enum node_kind k)
{
    return k == NK_VM_EXEC || k == NK_VM_CONSOLE || k == NK_RUN_EXEC || k == NK_CKPT_RESTORE ||
           k == NK_CKPT_CLONE;
}

/* Only what `>` does to a file: truncate a writable one to 0 (a no-op:
 * writes are commands, not contents).  Modes, owners and times are fixed. */
const struct layout_entry *layout_entries(enum node_kind dir, size_t *ret_n)
{
    switch (dir) {
    case NK_VM:
        *ret_n = ARRAY_SIZE(vm_entries);
        return vm_entries;
    case NK_RUN:
        *ret_n = ARRAY_SIZE(run_entries);
        return run_entries;
    case NK_CKPT:
        *ret_n = ARRAY_SIZE(ckpt_entries);
        return ckpt_entries;
    default:
        *ret_n = 0;
        return NULL;
    }
}
