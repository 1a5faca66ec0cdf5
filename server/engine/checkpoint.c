/* checkpoint.c — checkpoints (memory + CPU/device state + disk + serial log,
 * taken without stopping the VM), restore in place and clone.
 *
 * Taking one (lifecycle lock held):
 *   1. pause the VM
 *   2. the VMM writes the device state (QEMU: a migration stream with
 *      x-ignore-shared, so RAM that lives in the VM's shared tmpfs file is
 *      left out — tens of KiB instead of the whole RAM)
 *   3. btrfs: a snapshot of the VM's subvolume; elsewhere copies (reflink
 *      when possible) of the disk and the serial log
 *   4. a copy of the RAM file (page cache only: no fsync while paused), made
 *      on a second thread at the same time as 2 and 3
 *   5. resume — the pause ends here and is reported as pause_ms
 *   6. move the RAM copy in, flush everything to disk, mark the snapshot
 *      read-only, rename it from its temporary name (.tmp-<id>) to <id>,
 *      insert the row.
 * A failure anywhere removes the temporary directory and resumes the VM, so
 * a checkpoint is either complete and listed, or absent.
 *
 * Restoring (in place or into a clone) starts a new VMM from the saved
 * state: in place, the RAM file is a fresh copy of the checkpoint's memory
 * (the VM stays checkpointable the fast way); a clone maps the checkpoint's
 * memory file privately, so clones share every page they do not write.
 * After any restore the guest is told the time and given fresh entropy. */
#include <dirent.h>
#include <errno.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine-internal.h"
#include "fsutil.h"
#include "log.h"
#include "timeutil.h"
#include "vm-internal.h"

#define CHECKPOINT_TMP_PREFIX ".tmp-"

void engine_checkpoint_list_free(struct wire_checkpoint *list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        wire_checkpoint_free(&list[i]);
    free(list);
}

static int checkpoint_to_wire(const struct db_checkpoint *c, struct wire_checkpoint *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->id = strdup(c->id);
    ret->vm_name = strdup(c->vm_name);
    ret->label = c->has_label ? strdup(c->label) : NULL;
    ret->created_at = strdup(c->created_at);
    ret->pause_ms = c->pause_ms;
    ret->size_bytes = c->size_bytes;
    if (!ret->id || !ret->vm_name || !ret->created_at || (c->has_label && !ret->label)) {
        wire_checkpoint_free(ret);
        return -ENOMEM;
    }
    return 0;
}

static char *checkpoint_dir(struct engine *eng, const struct db_vm *vm, const char *id)
{
    _cleanup_free_ char *base = engine_checkpoints_dir(eng, vm->user_id, vm->name);
    char *p;

    if (!base || asprintf(&p, "%s/%s", base, id) < 0)
        return NULL;
    return p;
}

/* Find a checkpoint of vm by id or unique prefix. */
static int checkpoint_resolve(struct engine *eng, const struct db_vm *vm, const char *prefix,
                              struct db_checkpoint *ret, struct nerr *e)
{
    struct db_checkpoint *list = NULL;
    size_t n = 0, found = 0, plen;
    char names[160] = "";
    int r;

    r = name_checkpoint_prefix_check(prefix, e);
    if (r < 0)
        return r;
    r = db_checkpoint_list(eng->db, vm->user_id, vm->id, &list, &n);
    if (r < 0)
        return nerr_set(e, r, "cannot list checkpoints: %s", db_errmsg(eng->db));
    plen = strlen(prefix);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(list[i].id, prefix, plen) != 0)
            continue;
        if (found == 0)
            *ret = list[i];
        size_t l = strlen(names);
        snprintf(names + l, sizeof(names) - l, "%s%s", found ? ", " : "", list[i].id);
        found++;
    }
    free(list);
    if (found == 0)
        return nerr_set(e, -ENOENT, "VM '%s' has no checkpoint '%s'", vm->name, prefix);
    if (found > 1)
        return nerr_set(e, -EBUSY, "checkpoint id '%s' is ambiguous: it matches %s", prefix,
                        names);
    return 0;
}

/* Is the VM's RAM a shared file we can copy (fast checkpoint)? */
static char *shared_ram_file(struct engine *eng, const struct db_vm *vm)
{
    char *f = vm_mem_file(eng, vm->instance_id);

    if (f && !path_exists(f)) {
        free(f);
        return NULL;
    }
    return f;
}

struct ram_copy {
    struct engine *eng;
    const char *from, *to;
    struct nerr err;
    int r;
};

static void *ram_copy_main(void *arg)
{
    struct ram_copy *rc = arg;

    rc->r = storage_copy_file_nosync(rc->eng->storage, rc->from, rc->to, &rc->err);
    return NULL;
}

/* Steps 2-4 of the file comment: everything that happens while paused.  The
 * RAM file is frozen from the moment the VM is paused, so it is copied on a
 * second thread while the VMM saves the device state and the disk is
 * snapshotted: the pause lasts the longer of the two, not their sum. */
static int checkpoint_while_paused(struct engine *eng, struct vmm_backend *be,
                                   const struct db_vm *vm, const char *vm_dir,
                                   const char *tmp, const char *ram, struct nerr *e)
{
    bool btrfs = storage_is_btrfs(eng->storage);
    _cleanup_free_ char *state_in_vm = path_join(vm_dir, VM_FILE_VMSTATE);
    _cleanup_free_ char *mem_stage = NULL;
    struct ram_copy rc = {.eng = eng, .from = ram};
    pthread_t th;
    bool copying = false, mem_saved = false;
    int r = 0;

    if (!state_in_vm)
        return -ENOMEM;
    if (ram) {
        /* the copy cannot go into tmp yet (on btrfs tmp is the snapshot made
         * below): stage it beside, in the checkpoints directory */
        if (asprintf(&mem_stage, "%s.memory", tmp) < 0) {
            mem_stage = NULL;
            return -ENOMEM;
        }
        rc.to = mem_stage;
        copying = pthread_create(&th, NULL, ram_copy_main, &rc) == 0;
        if (!copying)
            ram_copy_main(&rc);
    }
    if (btrfs) {
        /* state into the VM's subvolume, then one snapshot takes it all */
        unlink(state_in_vm);
        r = be->ops->save_state(be, vm_dir, vm_dir, &mem_saved, e);
        if (r >= 0)
            r = storage_snapshot_dir(eng->storage, vm_dir, tmp, false, e);
        unlink(state_in_vm);
        if (mem_saved) {
            _cleanup_free_ char *m = path_join(vm_dir, VM_FILE_MEMORY);
            if (m)
                unlink(m);
        }
    } else {
        r = storage_make_vm_dir(eng->storage, tmp, e);
        if (r >= 0)
            r = be->ops->save_state(be, vm_dir, tmp, &mem_saved, e);
        const char *files[] = {VM_FILE_ROOTFS, VM_FILE_SERIAL_LOG};
        for (size_t i = 0; i < ARRAY_SIZE(files) && r >= 0; i++) {
            _cleanup_free_ char *from = path_join(vm_dir, files[i]);
            _cleanup_free_ char *to = path_join(tmp, files[i]);
            if (!from || !to)
                return -ENOMEM;
            if (!path_exists(from) && strcmp(files[i], VM_FILE_SERIAL_LOG) == 0)
                continue;
            r = storage_copy_file_nosync(eng->storage, from, to, e);
        }
    }
    if (copying)
        pthread_join(th, NULL);
    if (ram && rc.r < 0 && r >= 0)
        r = nerr_set(e, rc.r, "%s", rc.err.msg);
    return r;
}

/* After the resume: move the staged RAM copy into the checkpoint (a rename;
 * on btrfs a reflink, since the checkpoint is another subvolume). */
static int place_memory_copy(struct engine *eng, const char *tmp, struct nerr *e)
{
    _cleanup_free_ char *stage = NULL, *out = path_join(tmp, VM_FILE_MEMORY);
    int r = 0;

    if (!out || asprintf(&stage, "%s.memory", tmp) < 0) {
        stage = NULL;
        return -ENOMEM;
    }
    if (!path_exists(stage))
        return 0;
    if (rename(stage, out) < 0) {
        if (errno == EXDEV)
            r = storage_copy_file_nosync(eng->storage, stage, out, e);
        else
            r = nerr_set(e, -EIO, "cannot place the memory copy: %s", strerror(errno));
    }
    unlink(stage);
    return r;
}

/* Flush the files of a finished checkpoint directory to disk. */
static int sync_dir_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int r = 0;

    if (!d)
        return -errno;
    while ((de = readdir(d)) && r >= 0) {
        _cleanup_free_ char *p = NULL;
        if (de->d_type != DT_REG)
            continue;
        p = path_join(dir, de->d_name);
        if (!p)
            r = -ENOMEM;
        else
            r = storage_sync_file(p);
    }
    if (r >= 0 && fsync(dirfd(d)) < 0)
        r = -errno;
    closedir(d);
    return r;
}

int engine_checkpoint_create(struct engine *eng, const struct db_user *u, const char *vm_name,
                             const char *label, struct wire_checkpoint *ret, struct nerr *e)
{
    struct db_checkpoint cp = {0};
    struct db_vm vm;
    struct vm_rt *rt = NULL;
    struct vmm_backend *be;
    _cleanup_free_ char *vm_dir = NULL, *cps = NULL, *tmp = NULL, *final = NULL, *ram = NULL;
    bool paused = false;
    int64_t t_pause = 0;
    int r;

    if (label) {
        r = name_label_check(label, strlen(label), e);
        if (r < 0)
            return r;
    }
    r = vm_acquire(eng, u, vm_name, &vm, &rt, e);
    if (r < 0)
        return r;
    if (strcmp(vm.phase, VM_PHASE_READY) != 0 || !engine_vm_row_is_running(&vm)) {
        r = nerr_set(e, -ESRCH, "VM '%s' is not running", vm_name);
        goto out;
    }
    be = engine_backend(eng, vm.vmm);
    if (!be) {
        r = nerr_set(e, -ENODEV, "VMM '%s' is not available", vm.vmm);
        goto out;
    }
    r = random_hex_id(cp.id, DB_ID_LEN / 2);
    if (r < 0)
        goto out;
    vm_dir = engine_vm_dir(eng, vm.user_id, vm.name);
    cps = engine_checkpoints_dir(eng, vm.user_id, vm.name);
    if (!vm_dir || !cps || asprintf(&tmp, "%s/" CHECKPOINT_TMP_PREFIX "%s", cps, cp.id) < 0 ||
        asprintf(&final, "%s/%s", cps, cp.id) < 0) {
        r = -ENOMEM;
        goto out;
    }
    r = mkdir_p(cps, 0700);
    if (r < 0) {
        nerr_set(e, r, "cannot create %s: %s", cps, strerror(-r));
        goto out;
    }
    ram = shared_ram_file(eng, &vm);

    t_pause = time_mono_ns();
    r = be->ops->pause(be, vm_dir, e);
    if (r < 0)
        goto out;
    paused = true;
    r = checkpoint_while_paused(eng, be, &vm, vm_dir, tmp, ram, e);
    if (r < 0)
        goto out;
    r = be->ops->resume(be, vm_dir, e);
    if (r < 0)
        goto out;
    paused = false;
    cp.pause_ms = (time_mono_ns() - t_pause + 500000) / 1000000;

    r = place_memory_copy(eng, tmp, e);
    if (r < 0)
        goto out;
    r = sync_dir_files(tmp);
    if (r < 0) {
        nerr_set(e, r, "cannot write the checkpoint to disk: %s", strerror(-r));
        goto out;
    }
    r = storage_set_read_only(eng->storage, tmp);
    if (r >= 0 && rename(tmp, final) < 0)
        r = -errno;
    if (r < 0) {
        nerr_set(e, r, "cannot finish the checkpoint: %s", strerror(-r));
        goto out;
    }
    cp.vm_id = vm.id;
    snprintf(cp.user_id, sizeof(cp.user_id), "%s", vm.user_id);
    snprintf(cp.vm_name, sizeof(cp.vm_name), "%s", vm.name);
    if (label) {
        cp.has_label = true;
        snprintf(cp.label, sizeof(cp.label), "%s", label);
    }
    time_now_rfc3339(cp.created_at);
    cp.size_bytes = storage_dir_bytes(final);
    cp.cpus = vm.cpus;
    cp.mem_mib = vm.mem_mib;
    snprintf(cp.vmm, sizeof(cp.vmm), "%s", vm.vmm);
    r = db_checkpoint_insert(eng->db, &cp);
    if (r < 0) {
        nerr_set(e, r, "cannot record the checkpoint: %s", db_errmsg(eng->db));
        storage_remove_tree(eng->storage, final);
        goto out;
    }
    log_info("vm %s/%s: checkpoint %s (%s) paused %lld ms", vm.user_id, vm.name, cp.id,
             ram ? "memory file" : "memory in state", cp.pause_ms);
    r = checkpoint_to_wire(&cp, ret);
out:
    if (paused) {
        struct nerr ignored = {0};
        if (be->ops->resume(be, vm_dir, &ignored) < 0)
            log_warn("vm %s/%s: cannot resume after a failed checkpoint: %s", vm.user_id,
                     vm.name, ignored.msg);
    }
    if (r < 0 && tmp) {
        _cleanup_free_ char *stage = NULL;
        storage_remove_tree(eng->storage, tmp);
        if (asprintf(&stage, "%s.memory", tmp) >= 0)
            unlink(stage);
    }
    vm_release(eng, rt, false);
    return r;
}

int engine_checkpoint_list(struct engine *eng, const struct db_user *u, const char *vm_name,
                           struct wire_checkpoint **ret, size_t *ret_n, struct nerr *e)
{
    struct db_checkpoint *rows = NULL;
    struct wire_checkpoint *list;
    struct db_vm vm;
    size_t n = 0;
    int r;

    r = vm_lookup(eng, u, vm_name, &vm, e);
    if (r < 0)
        return r;
    r = db_checkpoint_list(eng->db, u->id, vm.id, &rows, &n);
    if (r < 0)
        return nerr_set(e, r, "cannot list checkpoints: %s", db_errmsg(eng->db));
    list = calloc(n ? n : 1, sizeof(*list));
    if (!list) {
        free(rows);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        r = checkpoint_to_wire(&rows[i], &list[i]);
        if (r < 0) {
            engine_checkpoint_list_free(list, i);
            free(rows);
            return r;
        }
    }
    free(rows);
    *ret = list;
    *ret_n = n;
    return 0;
}

int engine_checkpoint_delete(struct engine *eng, const struct db_user *u, const char *vm_name,
                             const char *id, struct nerr *e)
{
    struct db_checkpoint cp;
    struct db_vm vm;
    struct vm_rt *rt;
    _cleanup_free_ char *dir = NULL;
    int r;

    r = vm_acquire(eng, u, vm_name, &vm, &rt, e);
    if (r < 0)
        return r;
    r = checkpoint_resolve(eng, &vm, id, &cp, e);
    if (r < 0)
        goto out;
    /* the row first: once it is gone the checkpoint is not listed, and a
     * crash before the files go only leaves an unlisted directory */
    r = db_checkpoint_delete(eng->db, u->id, cp.id);
    if (r < 0) {
        nerr_set(e, r, "cannot delete the checkpoint: %s", db_errmsg(eng->db));
        goto out;
    }
    dir = checkpoint_dir(eng, &vm, cp.id);
    if (!dir) {
        r = -ENOMEM;
        goto out;
    }
    r = storage_remove_tree(eng->storage, dir);
    if (r < 0)
        log_warn("cannot remove %s: %s", dir, strerror(-r));
    {
        /* the clones' memory twin; running clones keep its inode alive */
        _cleanup_free_ char *twin = NULL;
        if (asprintf(&twin, "%s.memory", dir) >= 0)
            unlink(twin);
    }
    r = 0;
out:
    vm_release(eng, rt, false);
    return r;
}

/* New VM directory holding the checkpoint's disk and serial log. */
static int vm_dir_from_checkpoint(struct engine *eng, const char *cp_dir, const char *vm_dir,
                                  struct nerr *e)
{
    int r;

    storage_remove_tree(eng->storage, vm_dir);
    if (storage_is_btrfs(eng->storage)) {
        r = storage_snapshot_dir(eng->storage, cp_dir, vm_dir, false, e);
        if (r < 0)
            return r;
        /* the VM runs from its own RAM file; these stay in the checkpoint */
        const char *drop[] = {VM_FILE_VMSTATE, VM_FILE_MEMORY};
        for (size_t i = 0; i < ARRAY_SIZE(drop); i++) {
            _cleanup_free_ char *p = path_join(vm_dir, drop[i]);
            if (p)
                unlink(p);
        }
        return 0;
    }
    r = storage_make_vm_dir(eng->storage, vm_dir, e);
    if (r < 0)
        return r;
    const char *files[] = {VM_FILE_ROOTFS, VM_FILE_SERIAL_LOG};
    for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
        _cleanup_free_ char *from = path_join(cp_dir, files[i]);
        _cleanup_free_ char *to = path_join(vm_dir, files[i]);
        if (!from || !to)
            return -ENOMEM;
        if (!path_exists(from) && i > 0)
            continue;
        r = storage_copy_file(eng->storage, from, to, e);
        if (r < 0) {
            storage_remove_tree(eng->storage, vm_dir);
            return r;
        }
    }
    return 0;
}

/* The memory file clones of a checkpoint map.  QEMU opens it read-write
 * even for a private mapping, which a read-only btrfs snapshot refuses; the
 * clones then map a reflinked twin next to the checkpoint (<dir>.memory,
 * created once, removed with the checkpoint), so they still share pages. */
static int clone_memory_file(struct engine *eng, const char *cp_dir, const char *mem, char **ret,
                             struct nerr *e)
{
    _cleanup_free_ char *twin = NULL;
    int r;

    if (access(mem, W_OK) == 0)
        return (*ret = strdup(mem)) ? 0 : -ENOMEM;
    if (asprintf(&twin, "%s.memory", cp_dir) < 0) {
        twin = NULL;
        return -ENOMEM;
    }
    if (!path_exists(twin)) {
        r = storage_copy_file(eng->storage, mem, twin, e);
        if (r < 0)
            return r;
    }
    *ret = TAKE_PTR(twin);
    return 0;
}

/* Start vm from the checkpoint in cp_dir (directory already prepared). */
static int start_from_checkpoint(struct engine *eng, struct db_vm *vm, struct vm_rt *rt,
                                 const char *vm_dir, const char *cp_dir, bool clone,
                                 struct nerr *e)
{
    _cleanup_free_ char *state = path_join(cp_dir, VM_FILE_VMSTATE);
    _cleanup_free_ char *mem = path_join(cp_dir, VM_FILE_MEMORY);
    _cleanup_free_ char *clone_mem = NULL;
    struct vmm_backend *be = engine_backend(eng, vm->vmm);
    struct vm_start_spec spec = {0};
    int r;

    if (!state || !mem)
        return -ENOMEM;
    if (!be)
        return nerr_set(e, -ENODEV, "VMM '%s' is not available", vm->vmm);
    spec.restore_state = state;
    if (path_exists(mem)) {
        spec.restore_ignore_shared = true;
        if (clone || !be->ops->supports_shared_memory_file(be)) {
            r = clone_memory_file(eng, cp_dir, mem, &clone_mem, e);
            if (r < 0)
                return r;
            spec.mem_file = clone_mem; /* private mapping: pages shared with other clones */
            spec.mem_shared = false;
        } else {
            spec.mem_seed = mem; /* a fresh RAM file of our own */
        }
    }
    return vm_start_and_wait(eng, vm, rt, vm_dir, &spec, e);
}

/* Replace the VM by the checkpoint without ever losing it.  The new
 * directory is prepared beside the old one (.restoring-<name>, a name no VM
 * can have); then the old VM is paused, its directory moved aside
 * (.replaced-<name>) and the new one moved in, so the new VMM starts from
 * its final paths (QEMU reopens its disk by path when it saves state).  Once
 * the new guest answers, the old VMM is killed and its directory removed;
 * on failure the directories move back and the old VM resumes as it was.
 * The row says "restoring" meanwhile, so execs get a 409 until it is over. */
static int restore_in_place(struct engine *eng, struct db_vm *vm, struct vm_rt *rt,
                            const struct db_checkpoint *cp, struct nerr *e)
{
    _cleanup_free_ char *vm_dir = engine_vm_dir(eng, vm->user_id, vm->name);
    _cleanup_free_ char *cp_dir = checkpoint_dir(eng, vm, cp->id);
    _cleanup_free_ char *staging = vm_staging_dir(eng, vm, "restoring");
    _cleanup_free_ char *aside = vm_staging_dir(eng, vm, "replaced");
    struct vmm_backend *be = engine_backend(eng, vm->vmm);
    struct db_vm old = *vm;
    bool paused = false, swapped = false;
    int r;

    if (!vm_dir || !cp_dir || !staging || !aside)
        return -ENOMEM;
    if (!be)
        return nerr_set(e, -ENODEV, "VMM '%s' is not available", vm->vmm);
    snprintf(vm->phase, sizeof(vm->phase), "%s", VM_PHASE_RESTORING);
    r = db_vm_set_runtime(eng->db, vm->id, old.pid, old.instance_id, vm->phase,
                          old.restored_from);
    if (r < 0)
        return nerr_set(e, r, "cannot record the restore: %s", db_errmsg(eng->db));
    r = vm_dir_from_checkpoint(eng, cp_dir, staging, e);
    if (r < 0)
        goto fail;
    if (engine_vm_row_is_running(&old)) {
        struct nerr ignored = {0};
        paused = be->ops->pause(be, vm_dir, &ignored) >= 0;
    }
    engine_vm_agent_drop(rt);
    storage_remove_tree(eng->storage, aside);
    if (rename(vm_dir, aside) < 0) {
        r = nerr_set(e, -EIO, "cannot move the VM aside: %s", strerror(errno));
        goto fail;
    }
    if (rename(staging, vm_dir) < 0) {
        r = nerr_set(e, -EIO, "cannot move the restored VM in: %s", strerror(errno));
        rename(aside, vm_dir);
        goto fail;
    }
    swapped = true;
    snprintf(vm->restored_from, sizeof(vm->restored_from), "%s", cp->id);
    r = start_from_checkpoint(eng, vm, rt, vm_dir, cp_dir, false, e);
    if (r < 0)
        goto fail;
    /* the new guest answers: retire the old one */
    vm_teardown_runtime(eng, &old, NULL);
    storage_remove_tree(eng->storage, aside);
    goto out;
fail:
    if (swapped) {
        storage_remove_tree(eng->storage, vm_dir);
        if (rename(aside, vm_dir) < 0)
            log_error("vm %s/%s: cannot move the old VM back from %s: %s", vm->user_id,
                      vm->name, aside, strerror(errno));
    }
    storage_remove_tree(eng->storage, staging);
    *vm = old;
    if (paused) {
        struct nerr ignored = {0};
        if (be->ops->resume(be, vm_dir, &ignored) < 0)
            log_warn("vm %s/%s: cannot resume after a failed restore: %s", vm->user_id,
                     vm->name, ignored.msg);
    }
out:
    snprintf(vm->phase, sizeof(vm->phase), "%s", VM_PHASE_READY);
    db_vm_set_runtime(eng->db, vm->id, vm->pid, vm->instance_id, vm->phase, vm->restored_from);
    return r;
}

static int clone_checkpoint(struct engine *eng, const struct db_user *u, const struct db_vm *src,
                            const struct db_checkpoint *cp, const char *new_name,
                            struct db_vm *ret_vm, struct nerr *e)
{
    _cleanup_free_ char *vm_dir = NULL, *cp_dir = checkpoint_dir(eng, src, cp->id);
    struct db_vm vm;
    struct vm_rt *rt;
    int r;

    if (!cp_dir)
        return -ENOMEM;
    r = name_vm_check(new_name, e);
    if (r < 0)
        return r;
    r = vm_insert_row(eng, u, new_name, cp->cpus, cp->mem_mib, cp->vmm, &vm, e);
    if (r < 0)
        return r;
    rt = engine_rt_get(eng, vm.id);
    if (!rt) {
        db_vm_delete(eng->db, vm.id);
        return -ENOMEM;
    }
    pthread_mutex_lock(&rt->lifecycle);
    vm_dir = engine_vm_dir(eng, vm.user_id, vm.name);
    r = vm_dir ? vm_dir_from_checkpoint(eng, cp_dir, vm_dir, e) : -ENOMEM;
    snprintf(vm.restored_from, sizeof(vm.restored_from), "%s", cp->id);
    if (r >= 0)
        r = start_from_checkpoint(eng, &vm, rt, vm_dir, cp_dir, true, e);
    if (r >= 0) {
        snprintf(vm.phase, sizeof(vm.phase), "%s", VM_PHASE_READY);
        r = db_vm_set_runtime(eng->db, vm.id, vm.pid, vm.instance_id, vm.phase,
                              vm.restored_from);
    }
    if (r < 0) {
        vm_teardown_runtime(eng, &vm, rt);
        if (vm_dir)
            storage_remove_tree(eng->storage, vm_dir);
        db_vm_delete(eng->db, vm.id);
    }
    pthread_mutex_unlock(&rt->lifecycle);
    engine_rt_put(eng, rt);
    if (r < 0)
        engine_rt_forget(eng, vm.id);
    else
        *ret_vm = vm;
    return r;
}

int engine_vm_restore(struct engine *eng, const struct db_user *u, const char *vm_name,
                      const char *checkpoint_id, const char *new_name, struct wire_vm_info *ret,
                      bool *ret_created, struct nerr *e)
{
    struct db_checkpoint cp;
    struct db_vm vm, clone;
    struct vm_rt *rt;
    int r;

    if (new_name) {
        r = name_vm_check(new_name, e);
        if (r < 0)
            return r;
    }
    r = vm_acquire(eng, u, vm_name, &vm, &rt, e);
    if (r < 0)
        return r;
    r = checkpoint_resolve(eng, &vm, checkpoint_id, &cp, e);
    if (r >= 0 && strcmp(vm.phase, VM_PHASE_READY) != 0)
        r = nerr_set(e, -EBUSY, "VM '%s' is still being created", vm_name);
    if (r >= 0 && new_name) {
        /* the source stays locked so its checkpoint cannot vanish meanwhile */
        r = clone_checkpoint(eng, u, &vm, &cp, new_name, &clone, e);
        if (r >= 0)
            r = vm_info_from_row(&clone, ret);
        *ret_created = true;
    } else if (r >= 0) {
        r = restore_in_place(eng, &vm, rt, &cp, e);
        if (r >= 0)
            r = vm_info_from_row(&vm, ret);
        *ret_created = false;
    }
    vm_release(eng, rt, false);
    return r;
}
