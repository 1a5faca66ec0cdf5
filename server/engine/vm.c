/* vm.c — the VM lifecycle: create (cold boot), list, info, destroy, and
 * starting a VMM and waiting for its agent (shared by every way a VM starts).
 *
 * Create is a transaction: the row is inserted first (phase "creating", which
 * reserves the name through UNIQUE(user_id, name)), then storage, then the
 * VMM, then the agent handshake; the row becomes "ready" last.  Any failure
 * undoes what was done, in reverse.  A crash in the middle leaves a
 * "creating" row that engine_reconcile() (reconcile.c) undoes at the next
 * start; the VMM being started is named in the row before it exists.
 *
 * Whether a VM runs is never stored: it is read from /proc (pid + instance id). */
#include <errno.h>
#include <dirent.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "console_hub.h"
#include "disk_pool.h"
#include "failed_log.h"
#include "test_hook.h"
#include "encoding.h"
#include "engine-internal.h"
#include "fsutil.h"
#include "log.h"
#include "metrics.h"
#include "noid-config.h"
#include "timeutil.h"
#include "vm-internal.h"
#include "vm_net.h"

bool engine_vm_row_is_running(const struct db_vm *vm)
{
    return vmm_proc_is_alive(vm->pid, vm->instance_id);
}

void engine_capabilities(struct engine *eng, struct wire_capabilities *ret)
{
    const struct server_config *c = eng->cfg;

    memset(ret, 0, sizeof(*ret));
    ret->api_version = NOID_API_VERSION;
    ret->max_exec_output_bytes = c->max_exec_output_bytes;
    ret->exec_timeout_secs = c->exec_timeout_secs;
    ret->console_timeout_secs = c->console_timeout_secs;
    ret->max_vm_name_length = VM_NAME_MAX;
    ret->default_cpus = c->default_cpus;
    ret->default_mem_mib = c->default_mem_mib;
    ret->max_cpus = c->max_cpus;
    ret->max_mem_mib = c->max_mem_mib;
    ret->max_vms_per_user = c->max_vms_per_user;
    ret->golden_ready = c->golden && engine_golden_ready(eng);
}

static const char *vm_state(const struct db_vm *vm)
{
    if (strcmp(vm->phase, VM_PHASE_CREATING) == 0)
        return "creating";
    if (strcmp(vm->phase, VM_PHASE_RESTORING) == 0)
        return "restoring";
    return engine_vm_row_is_running(vm) ? "running" : "dead";
}

/* A VM whose VMM died (crash, OOM kill) no longer needs its RAM file, which
 * holds host memory (tmpfs) until removed. */
static void release_dead_ram(struct engine *eng, const struct db_vm *vm)
{
    if (strcmp(vm->phase, VM_PHASE_READY) != 0 || strcmp(vm->ram_backing, VM_RAM_SHARED) != 0 ||
        !vm->ram_path[0] || engine_vm_row_is_running(vm))
        return;
    if (unlink(vm->ram_path) == 0)
        log_info("vm %s/%s is dead; released its RAM file", vm->user_id, vm->name);
}

int vm_info_from_row(const struct db_vm *vm, struct wire_vm_info *ret)
{
    const char *state = vm_state(vm);
    /* the address a running VM answers on; a dead VM's lease goes back at
     * its destroy, restore or the next start */
    bool has_ip = vm->net.tap[0] && strcmp(state, "running") == 0;

    memset(ret, 0, sizeof(*ret));
    ret->name = strdup(vm->name);
    ret->state = strdup(state);
    ret->created_at = strdup(vm->created_at);
    ret->vmm = strdup(vm->vmm);
    ret->restored_from = vm->restored_from[0] ? strdup(vm->restored_from) : NULL;
    ret->cpus = vm->cpus;
    ret->mem_mib = vm->mem_mib;
    ret->ip = has_ip ? strdup(vm->net.ip) : NULL;
    if (!ret->name || !ret->state || !ret->created_at || !ret->vmm ||
        (vm->restored_from[0] && !ret->restored_from) || (has_ip && !ret->ip)) {
        wire_vm_info_free(ret);
        return -ENOMEM;
    }
    return 0;
}

/* ---- guest RAM files ---- */

char *vm_mem_dir(struct engine *eng)
{
    unsigned char md[32];
    char hex[17];
    unsigned int mdlen;
    char *p;

    if (eng->cfg->mem_dir)
        return strdup(eng->cfg->mem_dir);
    /* one directory per data dir, so servers with different data dirs (tests
     * run several at once) never touch each other's files */
    EVP_Digest(eng->data_dir, strlen(eng->data_dir), md, &mdlen, EVP_sha256(), NULL);
    hex_encode(md, 8, hex);
    if (asprintf(&p, "/dev/shm/noid-%s", hex) < 0)
        return NULL;
    return p;
}

bool vm_mem_dir_ready(const char *dir)
{
    int r = mkdir_private(dir);

    if (r == -ENOENT) { /* a configured mem_dir whose parents are missing */
        _cleanup_free_ char *parent = strdup(dir);
        char *slash = parent ? strrchr(parent, '/') : NULL;
        if (slash && slash != parent) {
            *slash = 0;
            if (mkdir_p(parent, 0700) == 0)
                r = mkdir_private(dir);
        }
    }
    if (r < 0)
        log_warn("mem_dir %s is not a private directory of ours (%s); guest RAM stays "
                 "anonymous, checkpoints copy it through the VMM",
                 dir, r == -EPERM ? "wrong owner, mode or a symlink" : strerror(-r));
    return r >= 0;
}

char *vm_mem_file(struct engine *eng, const char *instance_id)
{
    _cleanup_free_ char *dir = vm_mem_dir(eng);
    char *p;

    if (!dir || asprintf(&p, "%s/%s.ram", dir, instance_id) < 0)
        return NULL;
    return p;
}

int vm_kill_pending(struct engine *eng, const char *instance_id)
{
    _cleanup_free_ char *ram = vm_mem_file(eng, instance_id);
    int r = vmm_proc_kill_instance(instance_id, 10000);

    if (ram)
        unlink(ram);
    /* a network leased for it was never recorded: netd finds it by owner */
    vm_net_release(eng, NULL, instance_id);
    return r;
}

/* ---- storage of one VM ---- */

char *vm_staging_dir(struct engine *eng, const struct db_vm *vm, const char *what)
{
    char *p;

    /* VM names start with a letter or digit, so ".<what>-<name>" is never
     * the directory of another VM */
    if (asprintf(&p, "%s/users/%s/vms/.%s-%s", eng->storage_dir, vm->user_id, what, vm->name) < 0)
        return NULL;
    return p;
}

int engine_base_copy(struct engine *eng, const char *src, char **ret, struct nerr *e)
{
    struct stat s;
    char key[512], hex[17];
    unsigned char md[32];
    unsigned int mdlen;
    _cleanup_free_ char *copy = NULL;
    int r = 0;

    if (stat(src, &s) < 0)
        return nerr_set(e, -errno, "%s: %s", src, strerror(errno));
    if (!storage_is_btrfs(eng->storage))
        return (*ret = strdup(src)) ? 0 : -ENOMEM;
    snprintf(key, sizeof(key), "%s:%lld:%lld.%09ld", src, (long long)s.st_size,
             (long long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
    EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL);
    hex_encode(md, 8, hex);
    if (asprintf(&copy, "%s/base/%s.img", eng->storage_dir, hex) < 0) {
        copy = NULL;
        return -ENOMEM;
    }
    pthread_mutex_lock(&eng->base_lock);
    if (!path_exists(copy)) {
        _cleanup_free_ char *dir = path_join(eng->storage_dir, "base");
        if (!dir || mkdir_p(dir, 0700) < 0) {
            r = nerr_set(e, -EIO, "cannot create %s/base", eng->storage_dir);
            goto out;
        }
        r = storage_copy_file(eng->storage, src, copy, e);
        if (r < 0)
            goto out;
        log_info("storage: cached %s as %s (reflink source)", src, copy);
    }
    *ret = TAKE_PTR(copy);
out:
    pthread_mutex_unlock(&eng->base_lock);
    return r;
}

int vm_prepare_dir(struct engine *eng, const struct db_vm *vm, char **ret_dir, struct nerr *e)
{
    _cleanup_free_ char *dir = engine_vm_dir(eng, vm->user_id, vm->name);
    _cleanup_free_ char *disk = NULL, *base = NULL;
    int r;

    if (!dir)
        return -ENOMEM;
    /* a leftover of a crash: the row (which we hold) says the name is ours */
    storage_remove_tree(eng->storage, dir);
    r = storage_make_vm_dir(eng->storage, dir, e);
    if (r < 0)
        return r;
    r = engine_base_copy(eng, eng->cfg->rootfs, &base, e);
    if (r < 0)
        goto fail;
    disk = path_join(dir, VM_FILE_ROOTFS);
    if (!disk) {
        r = -ENOMEM;
        goto fail;
    }
    r = disk_pool_take(eng, base, disk, e);
    if (r < 0)
        goto fail;
    *ret_dir = TAKE_PTR(dir);
    return 0;
fail:
    storage_remove_tree(eng->storage, dir);
    return r;
}

/* ---- starting, connecting ---- */

int engine_vm_agent(struct engine *eng, const struct db_vm *vm, struct vm_rt *rt,
                    int timeout_ms, struct agent_conn **ret, struct nerr *e)
{
    struct vmm_backend *be = engine_backend(eng, vm->vmm);
    _cleanup_free_ char *dir = engine_vm_dir(eng, vm->user_id, vm->name);
    int64_t deadline = time_mono_ms() + timeout_ms;
    struct timespec ts = time_mono_timespec(deadline);
    int fd = -1, r = 0;

    if (!dir)
        return -ENOMEM;
    if (!be)
        return nerr_set(e, -ENODEV, "VM '%s' runs under %s, which this server cannot drive",
                        vm->name, vm->vmm);
    /* one handshake at a time (the VMM serves one client on the agent
     * socket), but nobody waits for another's past their own timeout: a
     * guest whose agent is silent must not queue execs behind each other */
    if (pthread_mutex_clocklock(&rt->conn_lock, CLOCK_MONOTONIC, &ts) != 0)
        return nerr_set(e, -ETIMEDOUT, "the guest agent did not answer within %d ms",
                        timeout_ms);
    if (rt->conn && agent_conn_is_broken(rt->conn)) {
        agent_conn_unref(rt->conn);
        rt->conn = NULL;
    }
    if (!rt->conn) {
        r = be->ops->agent_connect(be, dir, &fd, e);
        if (r >= 0)
            r = agent_conn_open(fd, (int)MAX(1, deadline - time_mono_ms()), &rt->conn, e);
    }
    if (r >= 0)
        *ret = agent_conn_ref(rt->conn);
    pthread_mutex_unlock(&rt->conn_lock);
    return r;
}

void engine_vm_agent_drop(struct vm_rt *rt)
{
    pthread_mutex_lock(&rt->conn_lock);
    if (rt->conn) {
        agent_conn_shutdown(rt->conn);
        agent_conn_unref(rt->conn);
        rt->conn = NULL;
    }
    pthread_mutex_unlock(&rt->conn_lock);
}

int vm_agent_connect_wait(struct vmm_backend *be, const char *dir, int64_t pid,
                          const char *instance_id, int64_t deadline_ms, struct agent_conn **ret,
                          struct nerr *e)
{
    for (;;) {
        int64_t left = deadline_ms - time_mono_ms();
        struct nerr attempt = {0};
        int fd = -1, r;

        r = left > 0 ? be->ops->agent_connect(be, dir, &fd, &attempt) : -ETIMEDOUT;
        if (r >= 0)
            r = agent_conn_open(fd, (int)MAX(1, left), ret, &attempt);
        if (r >= 0)
            return 0;
        /* QEMU accepts the agent socket at once and the handshake waits for
         * the guest; Firecracker refuses vsock connections until the agent
         * listens: connection errors are retried while the VMM lives */
        bool alive = vmm_proc_is_alive(pid, instance_id);
        if (left <= 0 || r == -ETIMEDOUT || !alive ||
            !(r == -ECONNREFUSED || r == -ECONNRESET || r == -ENOENT || r == -EAGAIN))
            return nerr_set(e, r, "the guest agent did not answer (%s)",
                            !alive ? "the VMM exited"
                                   : attempt.msg[0] ? attempt.msg : "timeout");
        time_sleep_ms(20);
    }
}

/* After a restore the guest's clock is where it was at the checkpoint and
 * its random state is shared with every other VM restored from the same
 * snapshot: set the time and reseed the kernel CRNG. */
int vm_refresh_identity(struct agent_conn *conn, struct nerr *e)
{
    uint8_t now[8], seed[64];
    int r;

    ap_u64_encode((uint64_t)time_real_ns(), now);
    r = agent_control(conn, AP_SET_TIME, now, sizeof(now), 5000, e);
    if (r < 0)
        return r;
    if (RAND_bytes(seed, sizeof(seed)) != 1)
        return nerr_set(e, -EIO, "cannot draw entropy for the guest");
    r = agent_control(conn, AP_ADD_ENTROPY, seed, sizeof(seed), 5000, e);
    OPENSSL_cleanse(seed, sizeof(seed));
    return r;
}

void vm_set_ram(struct db_vm *vm, enum vmm_ram ram, const char *path)
{
    static const char *const names[] = {
        [VMM_RAM_NONE] = VM_RAM_NONE,
        [VMM_RAM_ANON] = VM_RAM_ANON,
        [VMM_RAM_SHARED_FILE] = VM_RAM_SHARED,
        [VMM_RAM_PRIVATE_FILE] = VM_RAM_PRIVATE,
    };

    snprintf(vm->ram_backing, sizeof(vm->ram_backing), "%s", names[ram]);
    snprintf(vm->ram_path, sizeof(vm->ram_path), "%s", path ? path : "");
}

int vm_save_row(struct engine *eng, const struct db_vm *vm, struct nerr *e)
{
    int r = db_vm_save_runtime(eng->db, vm);

    if (r < 0)
        return nerr_set(e, r, "cannot record VM '%s': %s", vm->name, db_errmsg(eng->db));
    return 0;
}

bool vm_can_have_ram_file(struct engine *eng, struct vmm_backend *be)
{
    _cleanup_free_ char *memdir = vm_mem_dir(eng);

    return memdir && be->ops->supports_shared_memory_file(be) && vm_mem_dir_ready(memdir);
}

/* Fill the RAM fields of b for spec; *ret_own_file is a RAM file this start
 * creates (removed again if the start fails).  A seeded start is only asked
 * for when the VM can have a RAM file (restore.c). */
static int choose_ram(struct engine *eng, struct vmm_backend *be, const struct vm_start_spec *spec,
                      const char *instance_id, struct vmm_boot *b, char **ret_own_file,
                      struct nerr *e)
{
    enum vm_ram_source src = spec ? spec->ram : VM_RAM_FRESH;
    _cleanup_free_ char *memfile = NULL;
    int r;

    switch (src) {
    case VM_RAM_TEMPLATE:
        b->ram = VMM_RAM_PRIVATE_FILE;
        b->mem_file = spec->mem_file;
        return 0;
    case VM_RAM_ANON_ONLY:
        b->ram = VMM_RAM_ANON;
        return 0;
    case VM_RAM_NO_BACKEND:
        b->ram = VMM_RAM_NONE;
        return 0;
    case VM_RAM_FRESH:
    case VM_RAM_SEEDED:
    default:
        break;
    }
    if (!vm_can_have_ram_file(eng, be)) {
        if (src == VM_RAM_SEEDED)
            return nerr_set(e, -EIO, "no RAM directory to restore into");
        b->ram = VMM_RAM_ANON;
        return 0;
    }
    /* guest RAM in a tmpfs file: a checkpoint copies it instead of
     * streaming it through the migration channel */
    memfile = vm_mem_file(eng, instance_id);
    if (!memfile)
        return -ENOMEM;
    if (src == VM_RAM_SEEDED) {
        r = storage_copy_file(eng->storage, spec->mem_file, memfile, e);
        if (r < 0)
            return r;
    }
    b->ram = VMM_RAM_SHARED_FILE;
    b->mem_file = memfile;
    *ret_own_file = TAKE_PTR(memfile);
    return 0;
}

/* Append the last words of the VMM (its log) or, failing that, of the guest
 * (the serial console) to the error of a start that failed. */
static void explain_failed_start(const char *dir, struct nerr *e)
{
    _cleanup_free_ char *serial = path_join(dir, VM_FILE_SERIAL_LOG);
    char tail[300];
    size_t n;

    if (!e)
        return;
    vmm_log_tail(dir, tail, sizeof(tail));
    n = strlen(e->msg);
    if (tail[0]) {
        /* a backend that failed to start or load quotes its log already */
        if (!strstr(e->msg, tail))
            snprintf(e->msg + n, sizeof(e->msg) - n, "; VMM log: %s", tail);
        return;
    }
    if (serial)
        file_tail_lines(serial, 2, tail, sizeof(tail));
    if (tail[0])
        snprintf(e->msg + n, sizeof(e->msg) - n, "; console: %s", tail);
}

int vm_start_and_wait(struct engine *eng, struct db_vm *vm, struct vm_rt *rt, const char *dir,
                      const struct vm_start_spec *spec, struct nerr *e)
{
    struct vmm_backend *be = engine_backend(eng, vm->vmm);
    _cleanup_free_ char *disk = path_join(dir, VM_FILE_ROOTFS);
    _cleanup_free_ char *own_file = NULL, *kept = NULL;
    char instance[33];
    struct vmm_boot b = {0};
    struct vmm_proc proc = {0};
    struct agent_conn *conn = NULL;
    struct db_vm_net net = {0};
    char ip_arg[128];
    bool nic;
    int64_t t0 = time_mono_ms(), t_spawn;
    int r;

    if (!be)
        return nerr_set(e, -ENODEV, "VMM '%s' is not available on this server", vm->vmm);
    if (!disk)
        return -ENOMEM;
    r = random_hex_id(instance, 16);
    if (r < 0)
        return r;
    /* recorded before the process exists: a crash from here on finds it */
    snprintf(vm->pending_instance_id, sizeof(vm->pending_instance_id), "%s", instance);
    r = vm_save_row(eng, vm, e);
    if (r < 0)
        goto fail;
    b.vm_dir = dir;
    b.instance_id = instance;
    b.kernel = eng->cfg->kernel;
    b.initrd = eng->cfg->initrd;
    b.rootfs = disk;
    b.cpus = (int)vm->cpus;
    b.mem_mib = (int)vm->mem_mib;
    r = choose_ram(eng, be, spec, instance, &b, &own_file, e);
    if (r < 0)
        goto fail;
    if (spec) {
        b.restore_state = spec->restore_state;
        b.restore_ignore_shared = spec->restore_ignore_shared;
    }
    /* a restore recreates the devices it was saved with: a NIC only if the
     * saved VM had one (VMs of servers older than networking have none) */
    nic = !spec || !spec->restore_state || spec->nic;
    if (nic) {
        r = vm_net_lease(eng, instance, &net, e);
        if (r < 0)
            goto fail;
    }
    if (nic && !net.tap[0] && be->ops->nic_needs_tap) {
        if (spec && spec->restore_state) {
            r = nerr_set(e, -ENODEV, "this VM was saved with a network interface, which %s "
                                     "can only restore with noid-netd running",
                         be->ops->name);
            goto fail;
        }
        nic = false;
    }
    b.nic = nic;
    b.tap = net.tap[0] ? net.tap : NULL;
    b.mac = net.tap[0] ? net.mac : VM_NET_UNLEASED_MAC;
    if (net.tap[0] && !b.restore_state) {
        r = vm_net_cmdline(eng, &net, ip_arg, sizeof(ip_arg));
        if (r < 0)
            goto fail;
        b.cmdline_extra = ip_arg;
    }

    t_spawn = time_mono_ms();
    r = be->ops->start(be, &b, &proc, e);
    if (r < 0)
        goto fail;
    log_debug("vm %s/%s: VMM started in %lld ms", vm->user_id, vm->name,
              (long long)(time_mono_ms() - t_spawn));
    test_hook("vmm-started");
    engine_vm_agent_drop(rt);
    r = vm_agent_connect_wait(be, dir, proc.pid, instance,
                              t0 + eng->cfg->boot_timeout_secs * 1000, &conn, e);
    if (r < 0)
        goto fail;
    if (spec && spec->restore_state) {
        int64_t t_agent = time_mono_ms(), t_identity;
        r = vm_refresh_identity(conn, e);
        t_identity = time_mono_ms();
        /* the saved guest still has the address, MAC and routes it had */
        if (r >= 0 && nic)
            r = vm_net_tell_guest(eng, conn, &net, e);
        log_debug("vm %s/%s: agent connected after %lld ms; clock and entropy %lld ms, "
                  "network %lld ms",
                  vm->user_id, vm->name, (long long)(t_agent - t0),
                  (long long)(t_identity - t_agent), (long long)(time_mono_ms() - t_identity));
        if (r < 0) {
            agent_conn_unref(conn);
            goto fail;
        }
    }
    /* keep the connection for later execs */
    pthread_mutex_lock(&rt->conn_lock);
    if (rt->conn) /* an exec raced in and connected: ours is the one to keep */
        agent_conn_unref(rt->conn);
    rt->conn = conn;
    pthread_mutex_unlock(&rt->conn_lock);
    vm->pid = proc.pid;
    snprintf(vm->instance_id, sizeof(vm->instance_id), "%s", instance);
    vm->pending_instance_id[0] = '\0';
    vm_set_ram(vm, b.ram, b.mem_file);
    vm->nic = nic;
    vm->net = net;
    log_info("vm %s/%s: %s, agent answered after %lld ms; %s%s", vm->user_id, vm->name,
             spec && spec->restore_state ? "restored" : "booted",
             (long long)(time_mono_ms() - t0),
             net.tap[0] ? "network " : nic ? "no network" : "no NIC (saved without one)",
             net.tap[0] ? net.ip : "");
    return 0;
fail:
    engine_vm_agent_drop(rt);
    if (proc.pid > 0)
        vmm_proc_kill(proc.pid, instance, 10000);
    else
        vmm_proc_kill_instance(instance, 10000);
    if (own_file)
        unlink(own_file);
    if (net.tap[0])
        vm_net_release(eng, net.tap, instance);
    explain_failed_start(dir, e);
    kept = failed_log_keep(eng, vm, dir, spec && spec->restore_state ? "restore" : "boot",
                           nerr_msg(e));
    if (kept)
        log_warn("vm %s/%s: start failed (%s); its logs are kept in %s", vm->user_id, vm->name,
                 nerr_msg(e), kept);
    vm->pending_instance_id[0] = '\0';
    return r;
}

/* Kill the VMM (and one being started) and remove everything of the VM
 * except its row and storage. */
void vm_teardown_runtime(struct engine *eng, const struct db_vm *vm, struct vm_rt *rt)
{
    if (rt)
        engine_vm_agent_drop(rt);
    if (vm->pid > 0 && vmm_proc_kill(vm->pid, vm->instance_id, 10000) < 0)
        log_warn("vm %s/%s: pid %lld did not die", vm->user_id, vm->name, (long long)vm->pid);
    if (vm->pending_instance_id[0])
        vm_kill_pending(eng, vm->pending_instance_id);
    if (strcmp(vm->ram_backing, VM_RAM_SHARED) == 0 && vm->ram_path[0])
        unlink(vm->ram_path);
    if (vm->net.tap[0])
        vm_net_release(eng, vm->net.tap, vm->instance_id);
}

int vm_teardown(struct engine *eng, const struct db_vm *vm, struct vm_rt *rt, struct nerr *e)
{
    _cleanup_free_ char *dir = engine_vm_dir(eng, vm->user_id, vm->name);
    _cleanup_free_ char *cps = engine_checkpoints_dir(eng, vm->user_id, vm->name);
    _cleanup_free_ char *dir_gone = NULL, *cps_gone = NULL;
    int r;

    if (!dir || !cps || !(dir_gone = storage_temp_name(dir, "destroyed")) ||
        !(cps_gone = storage_temp_name(cps, "destroyed")))
        return -ENOMEM;
    console_hubs_end_vm(eng, vm->id, "the VM was destroyed");
    vm_teardown_runtime(eng, vm, rt);
    /* out of sight first, the row next, the files last: a crash or a
     * failure in between leaves dot-named trees for the sweep at start,
     * never a listed checkpoint without its files */
    storage_remove_tree(eng->storage, dir_gone);
    storage_remove_tree(eng->storage, cps_gone);
    if (rename(cps, cps_gone) < 0 && errno != ENOENT)
        return nerr_set(e, -errno, "cannot remove %s: %s", cps, strerror(errno));
    if (rename(dir, dir_gone) < 0 && errno != ENOENT)
        return nerr_set(e, -errno, "cannot remove %s: %s", dir, strerror(errno));
    r = db_vm_delete(eng->db, vm->id);
    if (r < 0 && r != -ENOENT)
        return nerr_set(e, r, "cannot delete the VM row: %s", db_errmsg(eng->db));
    r = storage_remove_tree(eng->storage, cps_gone);
    if (r >= 0)
        r = storage_remove_tree(eng->storage, dir_gone);
    if (r < 0)
        log_warn("vm %s/%s: files left for the next start to remove: %s", vm->user_id,
                 vm->name, strerror(-r));
    return 0;
}

/* ---- public operations ---- */

static int resolve_size(const struct server_config *c, const struct wire_create_req *req,
                        long long *cpus, long long *mem, struct nerr *e)
{
    *cpus = req->has_cpus ? req->cpus : c->default_cpus;
    *mem = req->has_mem_mib ? req->mem_mib : c->default_mem_mib;
    if (*cpus < 1 || *cpus > c->max_cpus)
        return nerr_set(e, -EINVAL, "cpus must be between 1 and %lld (max_cpus), got %lld",
                        c->max_cpus, *cpus);
    if (*mem < 64 || *mem > c->max_mem_mib)
        return nerr_set(e, -EINVAL, "mem_mib must be between 64 and %lld (max_mem_mib), got %lld",
                        c->max_mem_mib, *mem);
    return 0;
}

/* Insert a "creating" row, enforcing max_vms_per_user atomically. */
static int vm_insert_row(struct engine *eng, const struct db_user *u, const char *name,
                  long long cpus, long long mem, const char *vmm, struct db_vm *vm,
                  struct nerr *e)
{
    size_t count = 0;
    int r;

    memset(vm, 0, sizeof(*vm));
    snprintf(vm->user_id, sizeof(vm->user_id), "%s", u->id);
    snprintf(vm->name, sizeof(vm->name), "%s", name);
    snprintf(vm->phase, sizeof(vm->phase), "%s", VM_PHASE_CREATING);
    snprintf(vm->vmm, sizeof(vm->vmm), "%s", vmm);
    vm->cpus = cpus;
    vm->mem_mib = mem;
    time_now_rfc3339(vm->created_at);

    pthread_mutex_lock(&eng->quota_lock);
    r = db_vm_count(eng->db, u->id, &count);
    if (r < 0) {
        r = nerr_set(e, r, "cannot count VMs: %s", db_errmsg(eng->db));
    } else if ((long long)count >= eng->cfg->max_vms_per_user) {
        r = nerr_set(e, -EDQUOT, "VM limit reached: you have %zu VMs (max_vms_per_user = %lld)",
                     count, eng->cfg->max_vms_per_user);
    } else {
        r = db_vm_insert(eng->db, vm);
        if (r == -EEXIST)
            r = nerr_set(e, r, "a VM named '%s' already exists", name);
        else if (r < 0)
            r = nerr_set(e, r, "cannot record the VM: %s", db_errmsg(eng->db));
    }
    pthread_mutex_unlock(&eng->quota_lock);
    return r;
}

int vm_new_begin(struct engine *eng, const struct db_user *u, const char *name,
                 long long cpus, long long mem, const char *vmm, struct db_vm *vm,
                 struct vm_rt **ret_rt, struct nerr *e)
{
    struct vm_rt *rt;
    int r = vm_insert_row(eng, u, name, cpus, mem, vmm, vm, e);

    if (r < 0)
        return r;
    rt = engine_rt_get(eng, vm->id);
    if (!rt) {
        db_vm_delete(eng->db, vm->id);
        return -ENOMEM;
    }
    pthread_mutex_lock(&rt->lifecycle);
    *ret_rt = rt;
    return 0;
}

int vm_new_end(struct engine *eng, struct db_vm *vm, struct vm_rt *rt, int r, struct nerr *e)
{
    if (r >= 0) {
        snprintf(vm->phase, sizeof(vm->phase), "%s", VM_PHASE_READY);
        r = vm_save_row(eng, vm, e);
    }
    if (r < 0) {
        struct nerr ignored = {0};
        vm_teardown(eng, vm, rt, &ignored);
    }
    pthread_mutex_unlock(&rt->lifecycle);
    engine_rt_put(eng, rt);
    if (r < 0)
        engine_rt_forget(eng, vm->id);
    return r;
}

int engine_vm_create(struct engine *eng, const struct db_user *u,
                     const struct wire_create_req *req, struct wire_vm_info *ret,
                     struct nerr *e)
{
    _cleanup_free_ char *dir = NULL;
    struct db_vm vm;
    struct vm_rt *rt;
    long long cpus, mem;
    int64_t t0 = time_mono_ns();
    bool golden = true;
    int r;

    if (eng->mode != ENGINE_SERVE)
        return nerr_set(e, -EPERM, "VMs are created by the running server");
    r = name_vm_check(req->name, e);
    if (r >= 0)
        r = resolve_size(eng->cfg, req, &cpus, &mem, e);
    if (r >= 0)
        r = vm_new_begin(eng, u, req->name, cpus, mem, eng->default_vmm, &vm, &rt, e);
    if (r < 0)
        goto out;
    r = vm_create_from_golden(eng, &vm, rt, e);
    if (r == -ENOENT) { /* no usable golden snapshot: cold boot */
        golden = false;
        r = vm_prepare_dir(eng, &vm, &dir, e);
        if (r >= 0)
            r = vm_start_and_wait(eng, &vm, rt, dir, NULL, e);
    }
    if (r >= 0)
        test_hook("create-started");
    r = vm_new_end(eng, &vm, rt, r, e);
    if (r >= 0)
        r = vm_info_from_row(&vm, ret);
out:
    metrics_create_done(r, golden, t0);
    return r;
}

int engine_vm_state_counts(struct engine *eng, struct engine_vm_states *ret)
{
    struct db_vm *rows = NULL;
    size_t n = 0;
    int r;

    r = db_vm_list_all(eng->db, &rows, &n);
    if (r < 0)
        return r;
    memset(ret, 0, sizeof(*ret));
    for (size_t i = 0; i < n; i++) {
        const char *state = vm_state(&rows[i]);
        if (strcmp(state, "creating") == 0)
            ret->creating++;
        else if (strcmp(state, "restoring") == 0)
            ret->restoring++;
        else if (strcmp(state, "running") == 0)
            ret->running++;
        else
            ret->dead++;
    }
    free(rows);
    return 0;
}

int engine_vm_list(struct engine *eng, const struct db_user *u, struct wire_vm_info **ret,
                   size_t *ret_n, struct nerr *e)
{
    struct db_vm *rows = NULL;
    struct wire_vm_info *list;
    size_t n = 0;
    int r;

    r = db_vm_list(eng->db, u->id, &rows, &n);
    if (r < 0)
        return nerr_set(e, r, "cannot list VMs: %s", db_errmsg(eng->db));
    list = calloc(n ? n : 1, sizeof(*list));
    if (!list) {
        free(rows);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        release_dead_ram(eng, &rows[i]);
        r = vm_info_from_row(&rows[i], &list[i]);
        if (r < 0) {
            engine_vm_info_list_free(list, i);
            free(rows);
            return r;
        }
    }
    free(rows);
    *ret = list;
    *ret_n = n;
    return 0;
}

void engine_vm_info_list_free(struct wire_vm_info *list, size_t n)
{
    if (!list)
        return;
    for (size_t i = 0; i < n; i++)
        wire_vm_info_free(&list[i]);
    free(list);
}

int vm_lookup(struct engine *eng, const struct db_user *u, const char *name, struct db_vm *ret,
              struct nerr *e)
{
    int r = name_vm_check(name, e);

    if (r < 0)
        return r;
    r = db_vm_get(eng->db, u->id, name, ret);
    if (r == -ENOENT)
        return nerr_set(e, r, "no VM named '%s'", name);
    if (r < 0)
        return nerr_set(e, r, "cannot read VM '%s': %s", name, db_errmsg(eng->db));
    return 0;
}

int vm_acquire(struct engine *eng, const struct db_user *u, const char *name, struct db_vm *vm,
               struct vm_rt **ret_rt, struct nerr *e)
{
    struct vm_rt *rt;
    int64_t id;
    int r;

    r = vm_lookup(eng, u, name, vm, e);
    if (r < 0)
        return r;
    id = vm->id;
    rt = engine_rt_get(eng, id);
    if (!rt)
        return -ENOMEM;
    pthread_mutex_lock(&rt->lifecycle);
    /* re-read under the lock: a concurrent destroy (or destroy + create of
     * the same name) may have won */
    r = vm_lookup(eng, u, name, vm, e);
    if (r >= 0 && vm->id != id)
        r = nerr_set(e, -ENOENT, "no VM named '%s'", name);
    /* a row still being created is its creator's until it is ready (or gone) */
    if (r >= 0 && strcmp(vm->phase, VM_PHASE_CREATING) == 0)
        r = nerr_set(e, -EBUSY, "VM '%s' is still being created", name);
    if (r < 0) {
        vm_release(eng, rt, false);
        return r;
    }
    *ret_rt = rt;
    return 0;
}

void vm_release(struct engine *eng, struct vm_rt *rt, bool forget)
{
    int64_t id = rt->vm_id;

    pthread_mutex_unlock(&rt->lifecycle);
    engine_rt_put(eng, rt);
    if (forget)
        engine_rt_forget(eng, id);
}

int engine_vm_info(struct engine *eng, const struct db_user *u, const char *name,
                   struct wire_vm_info *ret, struct nerr *e)
{
    struct db_vm vm;
    int r = vm_lookup(eng, u, name, &vm, e);

    if (r < 0)
        return r;
    release_dead_ram(eng, &vm);
    return vm_info_from_row(&vm, ret);
}

int engine_vm_destroy(struct engine *eng, const struct db_user *u, const char *name,
                      struct nerr *e)
{
    struct db_vm vm;
    struct vm_rt *rt;
    int r;

    r = vm_acquire(eng, u, name, &vm, &rt, e);
    if (r < 0)
        return r;
    r = vm_teardown(eng, &vm, rt, e);
    vm_release(eng, rt, true);
    return r;
}

int engine_vms_destroy_all_of_user(struct engine *eng, const char *user_id, struct nerr *e)
{
    struct db_vm *rows = NULL;
    size_t n = 0;
    int r;

    r = db_vm_list(eng->db, user_id, &rows, &n);
    if (r < 0)
        return nerr_set(e, r, "cannot list VMs: %s", db_errmsg(eng->db));
    for (size_t i = 0; i < n && r >= 0; i++) {
        struct vm_rt *rt = engine_rt_get(eng, rows[i].id);
        if (rt)
            pthread_mutex_lock(&rt->lifecycle);
        r = vm_teardown(eng, &rows[i], rt, e);
        if (rt) {
            pthread_mutex_unlock(&rt->lifecycle);
            engine_rt_put(eng, rt);
            engine_rt_forget(eng, rows[i].id);
        }
    }
    free(rows);
    return r;
}

