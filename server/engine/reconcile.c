/* reconcile.c — what the server does at start so that a crash (kill -9 at
 * any point) loses nothing and leaves nothing behind.  It runs before the
 * API serves anyone, with the data dir locked against a second server.
 *
 *   1. checkpoints of older servers get their save format recorded (from
 *      their files: what those servers always wrote);
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "engine-internal.h"
#include "fsutil.h"
#include "log.h"
#include "vm-internal.h"

#define CMDLINE_MAX (64 * 1024)

/* Step 1: v2 checkpoints.  Those servers always set x-ignore-shared; RAM
 * was in memory.snap when the VM had a RAM file, else inside the state,
 * and every VM they could checkpoint that way had the backend "mem". */
static void upgrade_checkpoint_rows(struct engine *eng)
{
    struct db_checkpoint *list = NULL;
    size_t n = 0;

    if (db_checkpoint_list_all(eng->db, &list, &n) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        struct db_checkpoint *c = &list[i];
        _cleanup_free_ char *cps = NULL, *mem = NULL;
        if (c->has_format)
            continue;
        cps = engine_checkpoints_dir(eng, c->user_id, c->vm_name);
        if (!cps || asprintf(&mem, "%s/%s/%s", cps, c->id, VM_FILE_MEMORY) < 0) {
            mem = NULL;
            continue;
        }
        snprintf(c->mem_format, sizeof(c->mem_format), "%s",
                 path_exists(mem) ? CP_MEM_FILE : CP_MEM_STREAM);
        c->ignore_shared = true;
        snprintf(c->ram_block, sizeof(c->ram_block), "mem");
        if (db_checkpoint_set_format(eng->db, c) == 0)
            log_info("reconcile: checkpoint %s of an older server: %s format", c->id,
                     c->mem_format);
    }
    free(list);
}

/* Read a process's command line (NUL-separated); 0 or -errno. */
static int read_cmdline(long pid, char **ret, size_t *ret_len)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
    return read_file(path, CMDLINE_MAX, ret, ret_len);
}

/* The value following the argument "flag" in a command line, or NULL. */
static const char *cmdline_arg(const char *buf, size_t len, const char *flag)
{
    for (const char *a = buf; a < buf + len; a += strlen(a) + 1)
        if (strcmp(a, flag) == 0 && a + strlen(a) + 1 < buf + len)
            return a + strlen(a) + 1;
    return NULL;
}

/* Rows of older servers do not say how the VM's RAM is backed: read it from
 * the live process (not from which files exist). */
static void learn_ram_backing(struct engine *eng, struct db_vm *vm)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    const char *m;
    bool found = false;

    if (read_cmdline(vm->pid, &buf, &len) < 0)
        return;
    m = cmdline_arg(buf, len, "-M");
    snprintf(vm->ram_backing, sizeof(vm->ram_backing), "%s", VM_RAM_NONE);
    vm->ram_path[0] = '\0';
    for (const char *a = buf; m && strstr(m, "memory-backend=mem") && a < buf + len;
         a += strlen(a) + 1) {
        const char *path, *end;
        if (strncmp(a, "memory-backend-", 15) != 0 || !strstr(a, "id=mem"))
            continue;
        found = true;
        path = strstr(a, "mem-path=");
        if (!path) {
            snprintf(vm->ram_backing, sizeof(vm->ram_backing), "%s", VM_RAM_ANON);
            break;
        }
        path += 9;
        end = path + strcspn(path, ",");
        snprintf(vm->ram_path, sizeof(vm->ram_path), "%.*s", (int)(end - path), path);
        snprintf(vm->ram_backing, sizeof(vm->ram_backing), "%s",
                 strstr(a, "share=on") ? VM_RAM_SHARED : VM_RAM_PRIVATE);
        break;
    }
    (void)found;
    log_info("reconcile: VM %s/%s of an older server: RAM %s%s%s", vm->user_id, vm->name,
             vm->ram_backing, vm->ram_path[0] ? " " : "", vm->ram_path);
}

/* A restore cut short: kill the new VMM, move the directories back, and let
 * the old VMM (the row still names it) run on; recover() resumes it. */
static void roll_back_restore(struct engine *eng, struct db_vm *vm)
{
    _cleanup_free_ char *dir = engine_vm_dir(eng, vm->user_id, vm->name);
    _cleanup_free_ char *staging = vm_staging_dir(eng, vm, "restoring");
    _cleanup_free_ char *aside = vm_staging_dir(eng, vm, "replaced");

    log_warn("reconcile: VM %s/%s was being restored when the server stopped; rolling back",
             vm->user_id, vm->name);
    if (!dir || !staging || !aside)
        return;
    if (path_exists(aside)) {
        /* swapped: dir is the new VM's, aside the old one's */
        storage_remove_tree(eng->storage, dir);
        if (rename(aside, dir) < 0)
            log_error("reconcile: cannot move %s back to %s: %s", aside, dir, strerror(errno));
    }
    storage_remove_tree(eng->storage, staging);
    snprintf(vm->phase, sizeof(vm->phase), "%s", VM_PHASE_READY);
}

/* Step 2 for one row; returns whether the VM runs afterwards. */
static bool settle_vm(struct engine *eng, struct db_vm *vm)
{
    struct nerr e = {0};
    bool changed = false;

    if (vm->pending_instance_id[0]) {
        _cleanup_free_ char *ram = vm_mem_file(eng, vm->pending_instance_id);
        if (vmm_proc_kill_instance(vm->pending_instance_id, 10000) > 0)
            log_warn("reconcile: VM %s/%s: stopped a VMM whose start was cut short", vm->user_id,
                     vm->name);
        if (ram)
            unlink(ram);
        vm->pending_instance_id[0] = '\0';
        changed = true;
    }
    if (strcmp(vm->phase, VM_PHASE_CREATING) == 0) {
        log_warn("reconcile: VM %s/%s was being created when the server stopped; removing it",
                 vm->user_id, vm->name);
        vm_teardown(eng, vm, NULL, &e);
        return false;
    }
    if (strcmp(vm->phase, VM_PHASE_RESTORING) == 0) {
        roll_back_restore(eng, vm);
        changed = true;
    }
    bool running = engine_vm_row_is_running(vm);
    if (running && !vm->ram_backing[0]) {
        learn_ram_backing(eng, vm);
        changed = true;
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

/* Whether the 32-hex instance id that follows "noid-" in a -name argument
 * belongs to a live row. */
static bool instance_is_known(const struct db_vm *rows, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].instance_id, id) == 0 && engine_vm_row_is_running(&rows[i]))
            return true;
    return false;
}

/* Step 3.  A VMM of ours names a path of this data dir in its command line
 * and is called noid-<instance id>.  Golden template VMs are spared while
 * an admin `golden build` holds the build lock (keep_golden). */
static void kill_orphan_vmms(struct engine *eng, const struct db_vm *rows, size_t n,
                             bool keep_golden)
{
    _cleanup_free_ char *needle = NULL, *golden_needle = NULL;
    DIR *d = opendir("/proc");
    struct dirent *de;

    if (!d || asprintf(&needle, "%s/", eng->data_dir) < 0 ||
        asprintf(&golden_needle, "%s/golden.build-", eng->data_dir) < 0) {
        if (d)
            closedir(d);
        return;
    }
    while ((de = readdir(d))) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        const char *name;
        if (*end || pid <= 0 || pid == getpid() || read_cmdline(pid, &buf, &len) < 0)
            continue;
        name = cmdline_arg(buf, len, "-name");
        if (!name || strncmp(name, "noid-", 5) != 0 || strlen(name + 5) != 32 ||
            !memmem(buf, len, needle, strlen(needle)))
            continue;
        if (instance_is_known(rows, n, name + 5))
            continue;
        if (keep_golden && memmem(buf, len, golden_needle, strlen(golden_needle)))
            continue;
        log_warn("reconcile: stopping VMM pid %ld (%s): no VM row names it", pid, name);
        vmm_proc_kill_instance(name + 5, 10000);
    }
    closedir(d);
}

/* Step 4: RAM files of our mem_dir that no live VM maps. */
static void remove_stale_ram_files(struct engine *eng, const struct db_vm *rows, size_t n)
{
    _cleanup_free_ char *dir = vm_mem_dir(eng);
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *de;

    if (!d)
        return;
    while ((de = readdir(d))) {
        _cleanup_free_ char *p = NULL;
        bool live = false;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            !(p = path_join(dir, de->d_name)))
            continue;
        if (strncmp(de->d_name, ".cp-", 4) == 0) {
            /* a checkpoint's pause output, staged here (checkpoint.c) */
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
        if (n[0] == '.') {
            log_info("reconcile: removing leftover %s", p);
            storage_remove_tree(eng->storage, p);
        } else if (de->d_type == DT_DIR && depth > 0) {
            sweep_dot_entries(eng, p, depth - 1);
        }
    }
    closedir(d);
}

/* Step 5: checkpoint directories (and clone memory twins, <id>.memory)
 * whose row is gone: a crash between publishing and inserting the row, or
 * between deleting the row and the files. */
static void remove_unlisted_checkpoints(struct engine *eng)
{
    struct db_checkpoint *list = NULL;
    size_t n = 0;
    _cleanup_free_ char *users = path_join(eng->storage_dir, "users");
    DIR *du = users ? opendir(users) : NULL;
    struct dirent *u;

    if (!du || db_checkpoint_list_all(eng->db, &list, &n) < 0) {
        if (du)
            closedir(du);
        return;
    }
    while ((u = readdir(du))) {
        _cleanup_free_ char *cps = NULL;
        DIR *dv;
        struct dirent *v;
        if (u->d_name[0] == '.' || asprintf(&cps, "%s/%s/checkpoints", users, u->d_name) < 0)
            continue;
        dv = opendir(cps);
        while (dv && (v = readdir(dv))) {
            _cleanup_free_ char *vdir = NULL;
            DIR *dc;
            struct dirent *c;
            if (v->d_name[0] == '.' || !(vdir = path_join(cps, v->d_name)))
                continue;
            dc = opendir(vdir);
            while (dc && (c = readdir(dc))) {
                bool listed = false;
                size_t idlen = strcspn(c->d_name, ".");
                if (c->d_name[0] == '.')
                    continue;
                for (size_t i = 0; i < n && !listed; i++)
                    listed = strlen(list[i].id) == idlen &&
                             strncmp(list[i].id, c->d_name, idlen) == 0 &&
                             strcmp(list[i].user_id, u->d_name) == 0 &&
                             strcmp(list[i].vm_name, v->d_name) == 0;
                if (!listed) {
                    _cleanup_free_ char *p = path_join(vdir, c->d_name);
                    if (p) {
                        log_info("reconcile: removing unlisted checkpoint %s", p);
                        storage_remove_tree(eng->storage, p);
                    }
                }
            }
            if (dc)
                closedir(dc);
        }
        if (dv)
            closedir(dv);
    }
    closedir(du);
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

int engine_reconcile(struct engine *eng)
{
    struct db_vm *rows = NULL;
    size_t n = 0, running = 0, dead = 0;
    int golden_lock = -1;
    bool own_golden;
    int r;

    upgrade_checkpoint_rows(eng);
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
