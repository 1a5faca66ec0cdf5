/* checkpoint.c — taking, listing and deleting checkpoints: memory + CPU and
 * device state + disk + serial log, taken without stopping the VM.
 * Restoring them is restore.c.
 *
 * Every checkpoint is built beside its final place and published at once:
 *   <cps>/.tmp-<id>.work/   the VMM's output: vmstate.snap (+ memory.snap)
 *   <cps>/.tmp-<id>/        the disk and serial log, snapshotted while paused
 * then the saved state moves into .tmp-<id>, everything is flushed, the
 * directory becomes read-only (btrfs), is renamed to <id>, and its row is
 * inserted.  A failure anywhere removes both and resumes the VM; a crash
 * leaves only dot-names, which the reconcile at start removes.  So a
 * checkpoint is either complete and listed, or absent.
 *
 * How the VM is saved depends on how its RAM is backed (vms.ram_backing).
 * It is paused either way, and while paused two copies run at once:
 *   shared  RAM is our tmpfs file: the device state is saved with
 *           x-ignore-shared (tens of KiB) and the disk snapshotted, while a
 *           second thread copies the RAM file;
 *   other   (a VM from the golden snapshot or a clone maps its RAM privately
 *           from a template; older VMs have anonymous RAM) the VMM streams
 *           RAM and devices into the state file while a second thread
 *           snapshots the disk.  Once the VM runs again the state is
 *           converted (vmm.h convert_state) into the first form, so every
 *           checkpoint restores and clones the fast way.
 * The pause is the longer of the two copies, and nothing is flushed to disk
 * during it.  Where the disk cannot be snapshotted (no btrfs) it is copied
 * before the pause and only checked during it (precopy_disk).  Firecracker
 * always writes its memory to a file of its own.  What was used (memory file
 * or RAM in the state, x-ignore-shared, the RAM block's name) is recorded in
 * the row and replayed exactly on restore. */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "checkpoint-internal.h"
#include "fsutil.h"
#include "log.h"
#include "metrics.h"
#include "test_hook.h"
#include "timeutil.h"
#include "vm-internal.h"

#define CHECKPOINT_TMP_PREFIX ".tmp-"
/* The most a pause's output is preallocated in tmpfs (see stage_file). */
#define CHECKPOINT_STAGE_PREALLOC_MAX (1LL << 30)

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

char *checkpoint_dir(struct engine *eng, const struct db_vm *vm, const char *id)
{
    _cleanup_free_ char *base = engine_checkpoints_dir(eng, vm->user_id, vm->name);
    char *p;

    if (!base || asprintf(&p, "%s/%s", base, id) < 0)
        return NULL;
    return p;
}

char *checkpoint_twin_path(const char *cp_dir)
{
    char *p;

    return asprintf(&p, "%s.memory", cp_dir) < 0 ? NULL : p;
}

/* Find a checkpoint of vm by id or unique prefix. */
int checkpoint_resolve(struct engine *eng, const struct db_vm *vm, const char *prefix,
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
        return nerr_set(e, -EBUSY, "checkpoint id '%s' is ambiguous: it matches %s", prefix, names);
    return 0;
}

/* One checkpoint being taken. */
struct cp_job {
    struct engine *eng;
    struct vmm_backend *be;
    const struct db_vm *vm;
    char *vm_dir;
    char *tmp;           /* <cps>/.tmp-<id>: disk and serial log, later everything */
    char *work;          /* <cps>/.tmp-<id>.work: what the VMM writes */
    char *stage;         /* where the pause's output lands: <mem_dir>/.cp-<id> (tmpfs), else work */
    bool stage_in_ram;   /* stage is the one in mem_dir, not work */
    int state_fd;        /* stage/vmstate.snap, preallocated */
    int mem_fd;          /* stage/memory.snap, preallocated (VMs with a RAM file) */
    bool ram_file;       /* the VM's RAM is a file of ours, copied in the pause */
    bool mem_saved;      /* the checkpoint has a memory file (CP_MEM_FILE) */
    bool disk_precopied; /* tmp holds a copy of the disk made while running */
    uint64_t disk_writes; /* the disk's write counter when that copy began */
};

static void cp_job_free(struct cp_job *j)
{
    if (j->state_fd >= 0)
        close(j->state_fd);
    if (j->mem_fd >= 0)
        close(j->mem_fd);
    if (j->stage_in_ram)
        rm_rf(j->stage);
    free(j->stage);
    free(j->vm_dir);
    free(j->tmp);
    free(j->work);
}

static int copy_vm_file(struct cp_job *j, const char *name, struct nerr *e)
{
    _cleanup_free_ char *from = path_join(j->vm_dir, name);
    _cleanup_free_ char *to = path_join(j->tmp, name);

    if (!from || !to)
        return -ENOMEM;
    if (!path_exists(from) && strcmp(name, VM_FILE_SERIAL_LOG) == 0)
        return 0;
    unlink(to);
    return storage_copy_file_nosync(j->eng->storage, from, to, e);
}

/* A directory for the checkpoint holding a copy of the disk (no btrfs). */
static int copy_disk(struct cp_job *j, struct nerr *e)
{
    int r = storage_make_vm_dir(j->eng->storage, j->tmp, e);

    return r < 0 ? r : copy_vm_file(j, VM_FILE_ROOTFS, e);
}

/* The disk and the serial log into j->tmp, with the VM paused (its I/O is
 * drained): a snapshot of the VM's subvolume on btrfs, else copies
 * (reflinks where the file system can). */
static int snapshot_disk(struct cp_job *j, struct nerr *e)
{
    int r;

    if (storage_is_btrfs(j->eng->storage))
        return storage_snapshot_dir(j->eng->storage, j->vm_dir, j->tmp, false, e);
    r = copy_disk(j, e);
    return r < 0 ? r : copy_vm_file(j, VM_FILE_SERIAL_LOG, e);
}

/* Copying a disk without reflinks costs its size, so on such storage it is
 * copied before the pause, while the VM runs; the pause then only checks
 * that the disk's write counter did not move (disk_in_pause).  A write that
 * was in flight when the copy began completes later and moves the counter,
 * so a copy that may have missed it is never kept. */
static void precopy_disk(struct cp_job *j)
{
    struct nerr ignored = {0};

    if (storage_is_btrfs(j->eng->storage) || !j->be->ops->disk_write_count ||
        j->be->ops->disk_write_count(j->be, j->vm_dir, &j->disk_writes, &ignored) < 0)
        return;
    j->disk_precopied = copy_disk(j, &ignored) >= 0;
    if (!j->disk_precopied)
        storage_remove_tree(j->eng->storage, j->tmp);
}

/* In the pause (I/O drained): keep the disk copied before it if the disk's
 * write counter did not move since, else copy it now; the serial log is
 * copied either way. */
static int disk_in_pause(struct cp_job *j, uint64_t writes, bool have_writes, struct nerr *e)
{
    if (j->disk_precopied && have_writes && writes == j->disk_writes) {
        log_debug("vm %s/%s: the disk copied before the pause is current", j->vm->user_id,
                  j->vm->name);
        return copy_vm_file(j, VM_FILE_SERIAL_LOG, e);
    }
    if (j->disk_precopied) {
        log_debug("vm %s/%s: the disk changed during its copy; copying it again while paused",
                  j->vm->user_id, j->vm->name);
        storage_remove_tree(j->eng->storage, j->tmp);
    }
    return snapshot_disk(j, e);
}

/* Create stage/name for the pause to write into, with its pages allocated
 * beforehand (tmpfs): writing into allocated pages is about a fifth
 * faster than allocating them as the data comes, and this happens in the
 * pause.  Returns the open fd. */
static int stage_file(struct cp_job *j, const char *name, int64_t prealloc, struct nerr *e)
{
    _cleanup_free_ char *p = path_join(j->stage, name);
    int fd;

    if (!p)
        return -ENOMEM;
    fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return nerr_set(e, -errno, "cannot create %s: %s", p, strerror(errno));
    prealloc = MIN(prealloc, CHECKPOINT_STAGE_PREALLOC_MAX);
    if (prealloc > 0 && j->stage_in_ram &&
        fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, prealloc) < 0)
        log_debug("checkpoint: cannot preallocate %s: %s", p, strerror(errno));
    return fd;
}

/* Whether staging need more bytes in the RAM directory leaves at least
 * half of its file system free: the RAM files of running VMs are allocated
 * as their guests touch memory, and a tmpfs filled up by a checkpoint
 * would make them fail (SIGBUS) — other users' VMs included. */
static bool stage_fits(const char *memdir, int64_t need)
{
    struct statvfs sv;

    if (statvfs(memdir, &sv) < 0)
        return false;
    return (int64_t)sv.f_bavail * (int64_t)sv.f_frsize - need >=
           (int64_t)sv.f_blocks * (int64_t)sv.f_frsize / 2;
}

/* The stage of the pause's output: a private directory in the RAM
 * directory (tmpfs) when we have one with room to spare, else the work
 * directory on disk. */
static int prepare_stage(struct cp_job *j, const char *id, struct nerr *e)
{
    _cleanup_free_ char *memdir = vm_mem_dir(j->eng);
    struct stat st;
    /* RAM inside the state: as much as the guest has; else tens of KiB
     * plus the copy of the RAM file (its allocated size) */
    int64_t state_size = j->ram_file ? 0 : (int64_t)j->vm->mem_mib << 20, ram_size = 0;
    int r;

    if (j->ram_file) {
        if (stat(j->vm->ram_path, &st) < 0)
            return nerr_set(e, -errno, "cannot stat the VM's RAM file: %s", strerror(errno));
        ram_size = (int64_t)st.st_blocks * 512;
    }
    if (memdir && vm_mem_dir_ready(memdir) && stage_fits(memdir, state_size + ram_size) &&
        asprintf(&j->stage, "%s/" CHECKPOINT_STAGE_PREFIX "%s", memdir, id) >= 0 &&
        mkdir(j->stage, 0700) == 0) {
        j->stage_in_ram = true;
    } else {
        free(j->stage);
        j->stage = strdup(j->work);
        if (!j->stage)
            return -ENOMEM;
    }
    r = j->state_fd = stage_file(j, VM_FILE_VMSTATE, state_size, e);
    if (r >= 0 && j->ram_file)
        r = j->mem_fd = stage_file(j, VM_FILE_MEMORY, ram_size, e);
    return r < 0 ? r : 0;
}

/* What the engine does in the pause, on a second thread while the VMM
 * saves the device state (vmm_save.while_paused): copy the RAM file (a
 * VM with one) and take the disk. */
static int while_paused(void *ud, uint64_t writes, bool have_writes, struct nerr *e)
{
    struct cp_job *j = ud;
    int r = 0;

    if (j->ram_file)
        r = storage_copy_into(j->vm->ram_path, j->mem_fd, e);
    if (r >= 0)
        r = disk_in_pause(j, writes, have_writes, e);
    if (r >= 0)
        test_hook("checkpoint-paused");
    return r;
}

/* A state saved with its RAM inside becomes a state without RAM plus a
 * memory file (vmm.h convert_state), so the checkpoint restores and clones
 * as fast as one of a VM with a RAM file.  The VM runs meanwhile.  Returns
 * whether it was converted; a failure leaves the first form, which restores
 * too, and is only logged. */
static bool convert_to_memory_file(struct cp_job *j)
{
    _cleanup_free_ char *helper = path_join(j->work, "convert");
    _cleanup_free_ char *staged = path_join(j->stage, VM_FILE_VMSTATE);
    _cleanup_free_ char *state = path_join(j->work, VM_FILE_VMSTATE);
    _cleanup_free_ char *mem = path_join(j->work, VM_FILE_MEMORY);
    _cleanup_free_ char *out = path_join(j->work, "vmstate.without-ram");
    char id[33];
    struct nerr e = {0};
    int r;

    if (!helper || !staged || !state || !mem || !out || random_hex_id(id, 16) < 0 ||
        mkdir(helper, 0700) < 0)
        return false;
    struct vmm_convert c = {.work_dir = helper,
                            .instance_id = id,
                            .state_in = staged,
                            .mem_out = mem,
                            .state_out = out};
    r = j->be->ops->convert_state(j->be, j->vm_dir, &c, &e);
    if (r >= 0 && rename(out, state) < 0)
        r = nerr_set(&e, -errno, "cannot put the converted state in place: %s", strerror(errno));
    if (r >= 0 && j->stage_in_ram)
        unlink(staged); /* replaced by the converted state */
    if (r < 0) {
        log_warn("vm %s/%s: checkpoint keeps RAM inside its state (slower restores): %s",
                 j->vm->user_id, j->vm->name, nerr_msg(&e));
        unlink(mem);
        unlink(out);
        return false;
    }
    return true;
}

/* Move one file the VMM wrote (converted in the work directory, or as
 * staged) into the checkpoint; a required one must be there and not
 * empty (a stage removed under our feet, a VMM that wrote nothing). */
static int place_saved_file(struct cp_job *j, const char *name, bool required, struct nerr *e)
{
    _cleanup_free_ char *worked = path_join(j->work, name);
    _cleanup_free_ char *staged = path_join(j->stage, name);
    _cleanup_free_ char *to = path_join(j->tmp, name);
    struct stat st;
    int r = 0;

    if (!worked || !staged || !to)
        return -ENOMEM;
    unlink(to); /* a btrfs snapshot of the VM may hold a stale one */
    if (path_exists(worked))
        r = storage_move_file(j->eng->storage, worked, to, e);
    else if (path_exists(staged))
        r = storage_move_file(j->eng->storage, staged, to, e);
    if (r >= 0 && required && (stat(to, &st) < 0 || st.st_size == 0))
        r = nerr_set(e, -EIO, "the checkpoint lacks its %s", name);
    return r;
}

/* Put what the VMM wrote into the checkpoint, check its disk is there,
 * flush it all and make it read-only: after this it only needs its final
 * name. */
static int finish_files(struct cp_job *j, struct nerr *e)
{
    _cleanup_free_ char *disk = path_join(j->tmp, VM_FILE_ROOTFS);
    DIR *d;
    struct dirent *de;
    int r;

    if (!disk)
        return -ENOMEM;
    r = place_saved_file(j, VM_FILE_VMSTATE, true, e);
    if (r >= 0)
        r = place_saved_file(j, VM_FILE_MEMORY, j->mem_saved, e);
    if (r >= 0 && !path_exists(disk))
        r = nerr_set(e, -EIO, "the checkpoint lacks its %s", VM_FILE_ROOTFS);
    if (r < 0)
        return r;
    d = opendir(j->tmp);
    if (!d)
        return nerr_set(e, -errno, "cannot read %s: %s", j->tmp, strerror(errno));
    while ((de = readdir(d)) && r >= 0) {
        _cleanup_free_ char *p = NULL;
        if (de->d_type != DT_REG)
            continue;
        p = path_join(j->tmp, de->d_name);
        r = p ? storage_sync_file(p) : -ENOMEM;
    }
    if (r >= 0 && fsync(dirfd(d)) < 0)
        r = -errno;
    closedir(d);
    if (r < 0)
        return nerr_set(e, r, "cannot write the checkpoint to disk: %s", strerror(-r));
    r = storage_set_read_only(j->eng->storage, j->tmp);
    if (r < 0)
        return nerr_set(e, r, "cannot make the checkpoint read-only: %s", strerror(-r));
    return 0;
}

/* The per-VM and per-user checkpoint caps. */
static int check_caps(struct engine *eng, const struct db_vm *vm, struct nerr *e)
{
    size_t of_user = 0, of_vm = 0;
    int r = db_checkpoint_count(eng->db, vm->user_id, vm->id, &of_user, &of_vm);

    if (r < 0)
        return nerr_set(e, r, "cannot count checkpoints: %s", db_errmsg(eng->db));
    if ((long long)of_vm >= eng->cfg->max_checkpoints_per_vm)
        return nerr_set(e, -EDQUOT,
                        "checkpoint limit reached: VM '%s' has %zu checkpoints "
                        "(max_checkpoints_per_vm = %lld); delete some first",
                        vm->name, of_vm, eng->cfg->max_checkpoints_per_vm);
    if ((long long)of_user >= eng->cfg->max_checkpoints_per_user)
        return nerr_set(e, -EDQUOT,
                        "checkpoint limit reached: you have %zu checkpoints "
                        "(max_checkpoints_per_user = %lld); delete some first",
                        of_user, eng->cfg->max_checkpoints_per_user);
    return 0;
}

/* Save the VM into j (everything but publishing), filling in how in cp. */
static int save_vm(struct cp_job *j, struct db_checkpoint *cp, struct nerr *e)
{
    const struct db_vm *vm = j->vm;
    struct vmm_save save = {.while_paused = while_paused, .ud = j};
    int r;

    /* a RAM file of ours is frozen while the VM is paused: copied beside
     * the device state; any other RAM goes into the state file */
    j->ram_file =
        strcmp(vm->ram_backing, VM_RAM_SHARED) == 0 && vm->ram_path[0] && path_exists(vm->ram_path);
    r = prepare_stage(j, cp->id, e);
    if (r < 0)
        return r;
    save.snap_dir = j->stage;
    save.state_fd = j->state_fd;
    save.ignore_shared = j->ram_file;
    snprintf(cp->ram_block, sizeof(cp->ram_block), "%s",
             strcmp(vm->ram_backing, VM_RAM_NONE) == 0 ? "" : VMM_RAM_BLOCK);
    precopy_disk(j);
    r = j->be->ops->checkpoint(j->be, j->vm_dir, &save, e);
    if (r < 0)
        return r;
    cp->pause_ms = (save.pause_ns + 500000) / 1000000;
    test_hook("checkpoint-resumed");
    j->mem_saved = j->ram_file || save.mem_saved;
    cp->ignore_shared = j->ram_file;
    if (!j->mem_saved && cp->ram_block[0] && j->be->ops->convert_state) {
        j->mem_saved = convert_to_memory_file(j);
        cp->ignore_shared = j->mem_saved; /* the converted state leaves RAM out */
    }
    snprintf(cp->mem_format, sizeof(cp->mem_format), "%s",
             j->mem_saved ? CP_MEM_FILE : CP_MEM_STREAM);
    return 0;
}

static int checkpoint_create(struct engine *eng, const struct db_user *u, const char *vm_name,
                             const char *label, struct wire_checkpoint *ret, struct nerr *e)
{
    struct db_checkpoint cp = {0};
    struct db_vm vm;
    struct vm_rt *rt = NULL;
    struct cp_job j = {.eng = eng, .vm = &vm, .state_fd = -1, .mem_fd = -1};
    _cleanup_free_ char *cps = NULL, *final = NULL;
    bool published = false;
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
    j.be = engine_backend(eng, vm.vmm);
    if (!j.be) {
        r = nerr_set(e, -ENODEV, "VMM '%s' is not available", vm.vmm);
        goto out;
    }
    r = check_caps(eng, &vm, e);
    if (r < 0)
        goto out;
    r = random_hex_id(cp.id, DB_ID_LEN / 2);
    if (r < 0)
        goto out;
    j.vm_dir = engine_vm_dir(eng, vm.user_id, vm.name);
    cps = engine_checkpoints_dir(eng, vm.user_id, vm.name);
    if (!j.vm_dir || !cps || asprintf(&j.tmp, "%s/" CHECKPOINT_TMP_PREFIX "%s", cps, cp.id) < 0 ||
        asprintf(&j.work, "%s.work", j.tmp) < 0 || !(final = checkpoint_dir(eng, &vm, cp.id))) {
        r = -ENOMEM;
        goto out;
    }
    r = mkdir_p(j.work, 0700);
    if (r < 0) {
        nerr_set(e, r, "cannot create %s: %s", j.work, strerror(-r));
        goto out;
    }

    r = save_vm(&j, &cp, e);
    if (r < 0)
        goto out;
    r = finish_files(&j, e);
    if (r < 0)
        goto out;
    if (rename(j.tmp, final) < 0) {
        r = nerr_set(e, -errno, "cannot finish the checkpoint: %s", strerror(errno));
        goto out;
    }
    published = true;
    cp.vm_id = vm.id;
    cp.has_format = true;
    snprintf(cp.user_id, sizeof(cp.user_id), "%s", vm.user_id);
    snprintf(cp.vm_name, sizeof(cp.vm_name), "%s", vm.name);
    if (label) {
        cp.has_label = true;
        snprintf(cp.label, sizeof(cp.label), "%s", label);
    }
    time_now_rfc3339(cp.created_at);
    cp.size_bytes = storage_dir_bytes(final);
    cp.cpus = vm.cpus;
    cp.nic = vm.nic;
    cp.mem_mib = vm.mem_mib;
    snprintf(cp.vmm, sizeof(cp.vmm), "%s", vm.vmm);
    /* counted again with the insert: checkpoints of the user's other VMs
     * may have been taken meanwhile (the first count refuses early) */
    pthread_mutex_lock(&eng->quota_lock);
    r = check_caps(eng, &vm, e);
    if (r >= 0) {
        r = db_checkpoint_insert(eng->db, &cp);
        if (r < 0)
            nerr_set(e, r, "cannot record the checkpoint: %s", db_errmsg(eng->db));
    }
    pthread_mutex_unlock(&eng->quota_lock);
    if (r < 0)
        goto out;
    log_info("vm %s/%s: checkpoint %s (%s, %s) paused %lld ms", vm.user_id, vm.name, cp.id,
             vm.ram_backing, j.mem_saved ? "memory file" : "memory in state", cp.pause_ms);
    r = checkpoint_to_wire(&cp, ret);
out:
    if (r < 0 && published && final)
        storage_remove_tree(eng->storage, final);
    if (r < 0 && j.tmp)
        storage_remove_tree(eng->storage, j.tmp);
    if (j.work)
        rm_rf(j.work);
    cp_job_free(&j);
    vm_release(eng, rt, false);
    return r;
}

int engine_checkpoint_create(struct engine *eng, const struct db_user *u, const char *vm_name,
                             const char *label, struct wire_checkpoint *ret, struct nerr *e)
{
    int64_t t0 = time_mono_ns();
    int r = checkpoint_create(eng, u, vm_name, label, ret, e);

    metrics_op_done(METRICS_OP_CHECKPOINT, r, t0);
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
        _cleanup_free_ char *twin = checkpoint_twin_path(dir);
        if (twin)
            unlink(twin);
    }
    r = 0;
out:
    vm_release(eng, rt, false);
    return r;
}
