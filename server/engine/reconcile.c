/* reconcile.c — what the server does at start so that a crash (kill -9 at
 * any point) loses nothing and leaves nothing behind.  It runs before the
 * API serves anyone, with the data dir locked against a second server.
 *
 *   1. checkpoints of older servers get their save format recorded (from
 *      their files: what those servers always wrote); the temporary VM of
 *      a killed `golden provision` is removed with its hidden owner, unless
 *      a provisioning runs (it holds golden.provision.lock);
 *   2. every VM row is brought to a settled state:
 *        a VMM being started (pending_instance_id) is killed: the operation
 *        that started it never finished;
 *        "creating": the VM is removed (VMM found by instance id, storage,
 *        RAM file, row);
 *        "restoring": rolled back — the directories move back and the old
 *        VMM, still named by the row, runs on;
 *        live VMMs are asked (QMP) whether a save was cut short: it is
 *        cancelled and a paused VM resumed;
 *        rows of older servers get their RAM backing from the live process;
 *   3. VMM processes of this data dir that no row names (a shadow of a live
 *      save, a golden template VM, a start whose row is gone) are killed;
 *   4. RAM files no live VM uses are removed, and what checkpoints staged
 *      in the RAM directory;
 *   5. leftovers are removed: dot-named work files and directories (never a
 *      VM's name: VM names start with a letter or digit), checkpoint
 *      directories without a row, golden build directories. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint-internal.h"
#include "fsutil.h"
#include "log.h"
#include "vm-internal.h"
#include "vm_net.h"

/* Step 1: v2 checkpoints.  Those servers always set x-ignore-shared; RAM
 * was in memory.snap when the VM had a RAM file, else inside the state. */
static void upgrade_checkpoint_rows(struct engine *eng)
{
    struct db_checkpoint *list = NULL;
    size_t n = 0;

    if (db_checkpoint_list_all(eng->db, &list, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        struct db_checkpoint *c = &list[i];
        _cleanup_free_ char *cps = NULL, *mem = NULL, *state = NULL;
        if (c->has_format)
            continue;
        cps = engine_checkpoints_dir(eng, c->user_id, c->vm_name);
        if (!cps || asprintf(&mem, "%s/%s/%s", cps, c->id, VM_FILE_MEMORY) < 0 ||
            asprintf(&state, "%s/%s/%s", cps, c->id, VM_FILE_VMSTATE) < 0)
            continue;
        struct vmm_backend *be = engine_backend(eng, c->vmm);
        bool file = path_exists(mem);
        const char *block = file || !be || !be->ops->state_ram_block
                                ? VMM_RAM_BLOCK
                                : be->ops->state_ram_block(be, state);
        snprintf(c->mem_format, sizeof(c->mem_format), "%s", file ? CP_MEM_FILE : CP_MEM_STREAM);
        c->ignore_shared = true;
        snprintf(c->ram_block, sizeof(c->ram_block), "%s", block);
        if (db_checkpoint_set_format(eng->db, c) == 0)
            log_info("reconcile: checkpoint %s of an older server: %s format, RAM block %s", c->id,
                     c->mem_format, c->ram_block[0] ? c->ram_block : "(the machine's own)");
    }
    free(list);
}

/* Rows of older servers do not say how the VM's RAM is backed: the
 * backend reads it from the live process (not from which files exist). */
static void learn_ram_backing(struct engine *eng, struct db_vm *vm)
{
    struct vmm_backend *be = engine_backend(eng, vm->vmm);
    enum vmm_ram ram = VMM_RAM_ANON;
    char path[VM_RAM_PATH_MAX] = "";

    if (!be || (be->ops->ram_of && be->ops->ram_of(be, vm->pid, &ram, path, sizeof(path)) < 0))
        return;
    vm_set_ram(vm, ram, path);
    log_info("reconcile: VM %s/%s of an older server: RAM %s%s%s", vm->user_id, vm->name,
             vm->ram_backing, vm->ram_path[0] ? " " : "", vm->ram_path);
}

/* A restore cut short: move the directories back and let the old VMM
 * (the row still names it; the new one was pending and is killed) run on;
 * recover() resumes it.  Returns false when the old directory could not be
 * put back: the row stays "restoring" (and the aside is never swept) for
 * the next start. */
static bool roll_back_restore(struct engine *eng, struct db_vm *vm)
{
    log_warn("reconcile: VM %s/%s was being restored when the server stopped; rolling back",
             vm->user_id, vm->name);
    if (restore_roll_back_dirs(eng, vm) < 0)
        return false;
    snprintf(vm->phase, sizeof(vm->phase), "%s", VM_PHASE_READY);
    return true;
}

/* Step 2 for one row; returns whether the VM runs afterwards. */
static bool settle_vm(struct engine *eng, struct db_vm *vm)
{
    struct nerr e = {0};
    bool changed = false;

    if (vm->pending_instance_id[0]) {
        if (vm_kill_pending(eng, vm->pending_instance_id) > 0)
            log_warn("reconcile: VM %s/%s: stopped a VMM whose start was cut short", vm->user_id,
                     vm->name);
        vm->pending_instance_id[0] = '\0';
        changed = true;
    }
    if (strcmp(vm->phase, VM_PHASE_CREATING) == 0) {
        log_warn("reconcile: VM %s/%s was being created when the server stopped; removing it",
                 vm->user_id, vm->name);
        vm_teardown(eng, vm, NULL, &e);
        return false;
    }
    if (strcmp(vm->phase, VM_PHASE_RESTORING) == 0)
        changed = roll_back_restore(eng, vm) || changed;
    bool running = engine_vm_row_is_running(vm);
    if (!running && vm->net.tap[0]) {
        /* a dead VM's TAP: nobody will attach to it again (a restore
         * leases a new one).  Kept in the row when netd refused, so the
         * next start tries again. */
        log_info("reconcile: VM %s/%s is dead; giving back its network %s", vm->user_id,
                 vm->name, vm->net.tap);
        if (vm_net_release(eng, vm->net.tap, vm->instance_id) >= 0) {
            memset(&vm->net, 0, sizeof(vm->net));
            changed = true;
        }
    }
    if (running && !vm->ram_backing[0]) {
        learn_ram_backing(eng, vm);
        changed = changed || vm->ram_backing[0] != '\0';
    }
    if (running) {
        struct vmm_backend *be = engine_backend(eng, vm->vmm);
        _cleanup_free_ char *dir = engine_vm_dir(eng, vm->user_id, vm->name);
        bool resumed = false;
        if (be && be->ops->recover && dir && be->ops->recover(be, dir, &resumed, &e) < 0)
            log_warn("reconcile: VM %s/%s: cannot check its VMM: %s", vm->user_id, vm->name,
                     nerr_msg(&e));
        if (resumed)
            log_warn("reconcile: VM %s/%s was paused by a save cut short; resumed it", vm->user_id,
                     vm->name);
    }
    if (changed && vm_save_row(eng, vm, &e) < 0)
        log_error("reconcile: %s", nerr_msg(&e));
    return running;
}

/* Whether an instance id belongs to a live row. */
static bool instance_is_known(const struct db_vm *rows, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].instance_id, id) == 0 && engine_vm_row_is_running(&rows[i]))
            return true;
    return false;
}

struct orphan_sweep {
    struct engine *eng;
    const struct db_vm *rows;
    size_t n;
    const char *golden_prefix; /* NULL: golden template VMs are orphans too */
};

static int kill_if_orphan(int64_t pid, const char *cmdline, size_t len, void *ud)
{
    const struct orphan_sweep *s = ud;
    char id[33];

    if (!vmm_cmdline_instance(cmdline, len, id) ||
        !vmm_cmdline_mentions_dir(cmdline, len, s->eng->data_dir) ||
        instance_is_known(s->rows, s->n, id))
        return 0;
    if (s->golden_prefix && memmem(cmdline, len, s->golden_prefix, strlen(s->golden_prefix)))
        return 0;
    log_warn("reconcile: stopping VMM pid %lld (noid-%s): no VM row names it", (long long)pid, id);
    vmm_proc_kill(pid, id, 10000);
    /* its network too (the old VMM of a restore cut short after the
     * commit): netd finds the TAP by its owner */
    vm_net_release(s->eng, NULL, id);
    return 0;
}

/* Step 3.  A VMM of ours carries an instance id (vmm_cmdline_instance) and
 * names a path of this data dir.  Golden template VMs are spared while an
 * admin `golden build` holds the build lock (keep_golden). */
static void kill_orphan_vmms(struct engine *eng, const struct db_vm *rows, size_t n,
                             bool keep_golden)
{
    _cleanup_free_ char *golden_prefix = NULL;
    struct orphan_sweep s = {.eng = eng, .rows = rows, .n = n};

    if (keep_golden) {
        if (asprintf(&golden_prefix, "%s/golden.build-", eng->data_dir) < 0)
            return;
        s.golden_prefix = golden_prefix;
    }
    vmm_proc_foreach(kill_if_orphan, &s);
}

/* Whether name is one we create in mem_dir: <32 hex>.ram, its copy in
 * progress .<32 hex>.ram.partial, or a checkpoint's stage .cp-<16 hex>. */
static bool is_our_ram_name(const char *name)
{
    const size_t cp = strlen(CHECKPOINT_STAGE_PREFIX);
    size_t hex = strspn(name + (name[0] == '.'), "0123456789abcdef");

    if (strncmp(name, CHECKPOINT_STAGE_PREFIX, cp) == 0)
        return strspn(name + cp, "0123456789abcdef") == 16 && name[cp + 16] == '\0';
    if (name[0] == '.')
        return hex == 32 && strcmp(name + 33, ".ram.partial") == 0;
    return hex == 32 && strcmp(name + 32, ".ram") == 0;
}

/* Step 4: RAM files of our mem_dir that no live VM maps, and what
 * checkpoints staged there.  Only a directory that is ours (no symlink,
 * owned by us, mode 0700: what vm_mem_dir_ready makes) is swept, and in it
 * only names of ours: mem_dir may be set to a shared place. */
static void remove_stale_ram_files(struct engine *eng, const struct db_vm *rows, size_t n)
{
    _cleanup_free_ char *dir = vm_mem_dir(eng);
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    struct stat st;
    struct dirent *de;
    DIR *d;

    if (fd < 0)
        return;
    if (fstat(fd, &st) < 0 || st.st_uid != geteuid() || (st.st_mode & 07777) != 0700 ||
        !(d = fdopendir(fd))) {
        close(fd);
        return;
    }
    while ((de = readdir(d))) {
        _cleanup_free_ char *p = NULL;
        bool live = false;
        if (!is_our_ram_name(de->d_name) || !(p = path_join(dir, de->d_name)))
            continue;
        if (de->d_name[0] == '.') {
            log_info("reconcile: removing leftover %s", p);
            rm_rf(p);
            continue;
        }
        for (size_t i = 0; i < n && !live; i++)
            live = strcmp(rows[i].ram_path, p) == 0 && engine_vm_row_is_running(&rows[i]);
        if (!live && unlinkat(dirfd(d), de->d_name, 0) == 0)
            log_info("reconcile: removed stale guest RAM file %s", p);
    }
    closedir(d);
}

/* A .replaced-<name> directory whose VM directory is missing holds the VM
 * (a restore whose roll back could not finish): never swept. */
static bool is_only_copy(const char *dir, const char *n)
{
    _cleanup_free_ char *vm = NULL;

    if (strncmp(n, ".replaced-", 10) != 0 || !(vm = path_join(dir, n + 10)))
        return false;
    return !path_exists(vm);
}

/* Step 5: dot-named entries are work in progress of some operation; at
 * start none is in progress.  depth bounds the walk to our layout:
 * storage/users/<uid>/{vms,checkpoints/<vm>}/<entry>, storage/base, pool. */
static void sweep_dot_entries(struct engine *eng, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d)
        return;
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        _cleanup_free_ char *p = NULL;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        p = path_join(dir, n);
        if (!p)
            break;
        if (n[0] == '.' && !is_only_copy(dir, n)) {
            log_info("reconcile: removing leftover %s", p);
            storage_remove_tree(eng->storage, p);
        } else if (n[0] == '.') {
            log_warn("reconcile: keeping %s: it is the only copy of its VM", p);
        } else if (de->d_type == DT_DIR && depth > 0) {
            sweep_dot_entries(eng, p, depth - 1);
        }
    }
    closedir(d);
}

/* Whether a checkpoints/<vm> entry (<id>, or a clone memory twin
 * <id>.memory) belongs to a listed checkpoint. */
static bool checkpoint_is_listed(const struct db_checkpoint *list, size_t n, const char *uid,
                                 const char *vm, const char *entry)
{
    size_t idlen = strcspn(entry, ".");

    for (size_t i = 0; i < n; i++)
        if (strlen(list[i].id) == idlen && strncmp(list[i].id, entry, idlen) == 0 &&
            strcmp(list[i].user_id, uid) == 0 && strcmp(list[i].vm_name, vm) == 0)
            return true;
    return false;
}

/* Step 5: checkpoint directories and twins whose row is gone (a crash
 * between publishing and inserting the row, or between deleting the row
 * and the files): storage/users/<uid>/checkpoints/<vm>/<entry>. */
static void remove_unlisted_checkpoints(struct engine *eng)
{
    struct db_checkpoint *list = NULL;
    size_t n = 0;
    _cleanup_free_ char *users = path_join(eng->storage_dir, "users");
    glob_t g;

    if (!users || db_checkpoint_list_all(eng->db, &list, &n) < 0)
        return;
    _cleanup_free_ char *pattern = path_join(users, "*/checkpoints/*/*");
    if (pattern && glob(pattern, GLOB_NOSORT, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            /* <users>/<uid>/checkpoints/<vm>/<entry>; glob skips dot-names */
            char uid[DB_ID_LEN + 1], vm[VM_NAME_MAX + 1], entry[NAME_MAX + 1];
            const char *rel = g.gl_pathv[i] + strlen(users) + 1;
            if (sscanf(rel, "%16[^/]/checkpoints/%64[^/]/%255s", uid, vm, entry) != 3 ||
                checkpoint_is_listed(list, n, uid, vm, entry))
                continue;
            log_info("reconcile: removing unlisted checkpoint %s", g.gl_pathv[i]);
            storage_remove_tree(eng->storage, g.gl_pathv[i]);
        }
        globfree(&g);
    }
    free(list);
}

/* Golden build directories, unless an admin `golden build` runs now.
 * Returns whether we hold the build lock (then its template VMs are ours
 * to stop). */
static bool remove_golden_leftovers(struct engine *eng, int *ret_lock)
{
    _cleanup_free_ char *lockp = NULL;
    DIR *d;
    struct dirent *de;
    int lock;

    *ret_lock = -1;
    if (asprintf(&lockp, "%s.build.lock", eng->golden_dir) < 0)
        return false;
    lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0)
        return false;
    if (flock(lock, LOCK_EX | LOCK_NB) < 0) {
        close(lock);
        return false;
    }
    *ret_lock = lock;
    d = opendir(eng->data_dir);
    if (!d)
        return true;
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "golden.build-", 13) == 0 ||
            strncmp(de->d_name, "golden.old-", 11) == 0) {
            _cleanup_free_ char *p = path_join(eng->data_dir, de->d_name);
            if (p) {
                log_info("reconcile: removing leftover %s", p);
                rm_rf(p);
            }
        }
    }
    closedir(d);
    return true;
}

/* The temporary VM of a `golden provision` that was killed (kill -9, or a
 * second Ctrl-C): its QEMU runs on and its hidden owner is listed nowhere,
 * so nobody but the next provisioning would remove it.  The provisioning
 * lock free means no provisioning runs: what its owner has is left over. */
static void remove_provision_leftover(struct engine *eng)
{
    _cleanup_free_ char *lockp = NULL;
    struct nerr e = {0};
    int lock;

    if (asprintf(&lockp, "%s.provision.lock", eng->golden_dir) < 0)
        return;
    lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0)
        return;
    if (flock(lock, LOCK_EX | LOCK_NB) == 0 && provision_sweep_leftover(eng, &e) < 0)
        log_warn("reconcile: cannot remove what a golden provision left: %s (the next "
                 "start or provisioning tries again)",
                 nerr_msg(&e));
    close(lock); /* releases the lock */
}

int engine_reconcile(struct engine *eng)
{
    struct db_vm *rows = NULL;
    size_t n = 0, running = 0, dead = 0;
    int golden_lock = -1;
    bool own_golden;
    int r;

    upgrade_checkpoint_rows(eng);
    /* first: the steps below then never see the VMs it removes */
    remove_provision_leftover(eng);
    r = db_vm_list_all(eng->db, &rows, &n);
    if (r < 0) {
        log_error("reconcile: cannot list VMs: %s", db_errmsg(eng->db));
        return r;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i].phase, VM_PHASE_CREATING) == 0) {
            settle_vm(eng, &rows[i]);
            rows[i].pid = 0;
            rows[i].instance_id[0] = '\0';
            continue;
        }
        if (settle_vm(eng, &rows[i]))
            running++;
        else
            dead++;
    }
    /* golden first: its template VMMs are orphans only when no admin
     * build is running */
    own_golden = remove_golden_leftovers(eng, &golden_lock);
    kill_orphan_vmms(eng, rows, n, !own_golden);
    if (golden_lock >= 0)
        close(golden_lock);
    remove_stale_ram_files(eng, rows, n);
    sweep_dot_entries(eng, eng->storage_dir, 4);
    remove_unlisted_checkpoints(eng);
    log_info("reconcile: %zu VMs running, %zu dead", running, dead);
    free(rows);
    return 0;
}
