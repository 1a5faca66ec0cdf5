/* restore.c — restoring a checkpoint in place, or cloning it into a new VM.
 *
 * A restore starts a new VMM from the checkpoint's saved state with exactly
 * the capabilities it was saved with (checkpoints.mem_format,
 * ignore_shared, ram_block), so every checkpoint restores however its VM
 * was started.  Guest RAM:
 *   memory file, in place  a fresh RAM file of the VM's own, seeded with a
 *                          copy (the VM stays checkpointable the fast way)
 *   memory file, clone     the checkpoint's memory mapped copy-on-write:
 *                          clones share every page they do not write
 *   RAM in the state       anonymous memory behind the same backend name
 * After any restore the guest is told the time and given fresh entropy
 * (vm_start_and_wait). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint-internal.h"
#include "console_hub.h"
#include "fsutil.h"
#include "log.h"
#include "metrics.h"
#include "test_hook.h"
#include "timeutil.h"
#include "vm-internal.h"

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
    twin = checkpoint_twin_path(cp_dir);
    if (!twin)
        return -ENOMEM;
    if (!path_exists(twin)) {
        r = storage_copy_file(eng->storage, mem, twin, e);
        if (r < 0)
            return r;
    }
    *ret = TAKE_PTR(twin);
    return 0;
}

/* Start vm from the checkpoint cp in cp_dir (vm_dir already prepared). */
static int start_from_checkpoint(struct engine *eng, struct db_vm *vm, struct vm_rt *rt,
                                 const char *vm_dir, const char *cp_dir,
                                 const struct db_checkpoint *cp, bool clone, struct nerr *e)
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
    spec.restore_ignore_shared = cp->ignore_shared;
    spec.nic = cp->nic;
    if (strcmp(cp->mem_format, CP_MEM_FILE) == 0) {
        if (!path_exists(mem))
            return nerr_set(e, -EIO, "checkpoint %s is damaged: its memory file is missing",
                            cp->id);
        /* in place, the VM gets a RAM file of its own when it can have one;
         * else (and clones) it maps the checkpoint's memory copy-on-write,
         * through the writable twin where the checkpoint is read-only */
        if (clone || !vm_can_have_ram_file(eng, be)) {
            r = clone_memory_file(eng, cp_dir, mem, &clone_mem, e);
            if (r < 0)
                return r;
            spec.ram = VM_RAM_TEMPLATE; /* pages shared with the other clones */
            spec.mem_file = clone_mem;
        } else {
            spec.ram = VM_RAM_SEEDED; /* a fresh RAM file of our own */
            spec.mem_file = mem;
        }
    } else {
        /* RAM comes out of the state: the RAM block must have the name it
         * had when saved */
        spec.ram = cp->ram_block[0] ? VM_RAM_ANON_ONLY : VM_RAM_NO_BACKEND;
    }
    return vm_start_and_wait(eng, vm, rt, vm_dir, &spec, e);
}

/* restore_in_place removes any leftover aside directory before it marks
 * the row, so an existing aside is this restore's:
 *   staging present, aside absent          not swapped yet
 *   aside present, VM directory absent     cut between the two renames
 *   aside present, staging absent          swapped: the VM dir is the new one */
int restore_roll_back_dirs(struct engine *eng, const struct db_vm *vm)
{
    _cleanup_free_ char *dir = engine_vm_dir(eng, vm->user_id, vm->name);
    _cleanup_free_ char *staging = vm_staging_dir(eng, vm, "restoring");
    _cleanup_free_ char *aside = vm_staging_dir(eng, vm, "replaced");
    int r;

    if (!dir || !staging || !aside)
        return -ENOMEM;
    if (path_exists(aside)) {
        if (path_exists(dir) && !path_exists(staging)) {
            r = storage_remove_tree(eng->storage, dir);
            if (r < 0) {
                log_error("vm %s/%s: cannot remove the half-restored %s: %s", vm->user_id,
                          vm->name, dir, strerror(-r));
                return r;
            }
        }
        if (!path_exists(dir) && rename(aside, dir) < 0) {
            r = -errno;
            log_error("vm %s/%s: cannot move %s back to %s: %s", vm->user_id, vm->name, aside,
                      dir, strerror(-r));
            return r;
        }
    }
    storage_remove_tree(eng->storage, staging);
    return 0;
}

/* Replace the VM by the checkpoint without ever losing it.
 *   1. The new directory is prepared beside the old one (.restoring-<name>,
 *      a name no VM can have) while the VM runs untouched; a crash here
 *      leaves only that directory, which the reconcile removes.
 *   2. The row says "restoring" (execs get a 409); the old VM is paused, its
 *      directory moved aside (.replaced-<name>) and the new one moved in, so
 *      the new VMM starts from its final paths (QEMU reopens its disk by
 *      path when it saves state).  The new VMM is named in the row as
 *      pending before it starts.  A crash here is rolled back by the
 *      reconcile: the pending VMM is killed, the directories move back and
 *      the old VM resumes.
 *   3. Once the new guest answers, the row names the new VMM (the commit);
 *      then the old VMM is killed and its directory removed.
 * Any failure before the commit moves the directories back and resumes the
 * old VM as it was. */
static int restore_in_place(struct engine *eng, struct db_vm *vm, struct vm_rt *rt,
                            const struct db_checkpoint *cp, struct nerr *e)
{
    _cleanup_free_ char *vm_dir = engine_vm_dir(eng, vm->user_id, vm->name);
    _cleanup_free_ char *cp_dir = checkpoint_dir(eng, vm, cp->id);
    _cleanup_free_ char *staging = vm_staging_dir(eng, vm, "restoring");
    _cleanup_free_ char *aside = vm_staging_dir(eng, vm, "replaced");
    struct vmm_backend *be = engine_backend(eng, vm->vmm);
    struct db_vm old = *vm;
    bool marked = false, paused = false, started = false, stuck = false;
    int r;

    if (!vm_dir || !cp_dir || !staging || !aside)
        return -ENOMEM;
    if (!be)
        return nerr_set(e, -ENODEV, "VMM '%s' is not available", vm->vmm);
    r = vm_dir_from_checkpoint(eng, cp_dir, staging, e);
    if (r < 0)
        goto fail;
    test_hook("restore-staged");

    /* an aside left by an earlier restore would pass for this one's in a
     * roll back after a crash */
    storage_remove_tree(eng->storage, aside);
    if (path_exists(aside)) {
        r = nerr_set(e, -EIO, "cannot remove the leftover %s", aside);
        goto fail;
    }
    snprintf(vm->phase, sizeof(vm->phase), "%s", VM_PHASE_RESTORING);
    r = vm_save_row(eng, vm, e);
    if (r < 0)
        goto fail;
    marked = true;
    if (engine_vm_row_is_running(&old)) {
        struct nerr ignored = {0};
        paused = be->ops->pause(be, vm_dir, &ignored) >= 0;
    }
    /* the console socket goes with the old VMM */
    console_hubs_end_vm(eng, vm->id, "the VM is being restored to a checkpoint");
    engine_vm_agent_drop(rt);
    if (rename(vm_dir, aside) < 0) {
        r = nerr_set(e, -EIO, "cannot move the VM aside: %s", strerror(errno));
        goto fail;
    }
    if (rename(staging, vm_dir) < 0) {
        r = nerr_set(e, -EIO, "cannot move the restored VM in: %s", strerror(errno));
        goto fail;
    }
    r = start_from_checkpoint(eng, vm, rt, vm_dir, cp_dir, cp, false, e);
    if (r < 0)
        goto fail;
    started = true;
    test_hook("restore-started");

    snprintf(vm->phase, sizeof(vm->phase), "%s", VM_PHASE_READY);
    snprintf(vm->restored_from, sizeof(vm->restored_from), "%s", cp->id);
    r = vm_save_row(eng, vm, e);
    if (r < 0)
        goto fail;
    /* the row names the new VMM: retire the old one */
    vm_teardown_runtime(eng, &old, NULL);
    storage_remove_tree(eng->storage, aside);
    return 0;
fail:
    if (started)
        vm_teardown_runtime(eng, vm, rt);
    if (marked)
        stuck = restore_roll_back_dirs(eng, vm) < 0;
    else
        storage_remove_tree(eng->storage, staging);
    if (stuck)
        log_error("vm %s/%s: it stays \"restoring\" until the next start rolls it back",
                  vm->user_id, vm->name);
    *vm = old;
    if (paused && !stuck) {
        struct nerr ignored = {0};
        if (be->ops->resume(be, vm_dir, &ignored) < 0)
            log_warn("vm %s/%s: cannot resume after a failed restore: %s", vm->user_id,
                     vm->name, ignored.msg);
    }
    if (marked) {
        struct nerr ignored = {0};
        if (stuck)
            snprintf(vm->phase, sizeof(vm->phase), "%s", VM_PHASE_RESTORING);
        vm_save_row(eng, vm, &ignored);
    }
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
    r = vm_new_begin(eng, u, new_name, cp->cpus, cp->mem_mib, cp->vmm, &vm, &rt, e);
    if (r < 0)
        return r;
    vm_dir = engine_vm_dir(eng, vm.user_id, vm.name);
    r = vm_dir ? vm_dir_from_checkpoint(eng, cp_dir, vm_dir, e) : -ENOMEM;
    if (r >= 0)
        r = start_from_checkpoint(eng, &vm, rt, vm_dir, cp_dir, cp, true, e);
    if (r >= 0) {
        test_hook("clone-started");
        snprintf(vm.restored_from, sizeof(vm.restored_from), "%s", cp->id);
    }
    r = vm_new_end(eng, &vm, rt, r, e);
    if (r >= 0)
        *ret_vm = vm;
    return r;
}

static int vm_restore(struct engine *eng, const struct db_user *u, const char *vm_name,
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

int engine_vm_restore(struct engine *eng, const struct db_user *u, const char *vm_name,
                      const char *checkpoint_id, const char *new_name, struct wire_vm_info *ret,
                      bool *ret_created, struct nerr *e)
{
    int64_t t0 = time_mono_ns();
    int r = vm_restore(eng, u, vm_name, checkpoint_id, new_name, ret, ret_created, e);

    metrics_op_done(new_name ? METRICS_OP_CLONE : METRICS_OP_RESTORE, r, t0);
    return r;
}
