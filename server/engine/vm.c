/* vm.c — the VM lifecycle: create (cold boot), list, info, destroy, and the
 * crash reconcile at start.
 *
 * Create is a transaction: the row is inserted first (phase "creating", which
 * reserves the name through UNIQUE(user_id, name)), then storage, then the
 * VMM, then the agent handshake; the row becomes "ready" last.  Any failure
 * undoes what was done, in reverse.  A crash in the middle leaves a
 * "creating" row that engine_reconcile() undoes at the next start.
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

#include "disk_pool.h"
#include "encoding.h"
#include "engine-internal.h"
#include "fsutil.h"
#include "log.h"
#include "noid-config.h"
#include "timeutil.h"
#include "vm-internal.h"

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
    _cleanup_free_ char *f = NULL;

    if (strcmp(vm->phase, VM_PHASE_READY) != 0 || !vm->instance_id[0] ||
        engine_vm_row_is_running(vm))
        return;
    f = vm_mem_file(eng, vm->instance_id);
    if (f && unlink(f) == 0)
        log_info("vm %s/%s is dead; released its RAM file", vm->user_id, vm->name);
}

int vm_info_from_row(const struct db_vm *vm, struct wire_vm_info *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->name = strdup(vm->name);
    ret->state = strdup(vm_state(vm));
    ret->created_at = strdup(vm->created_at);
    ret->vmm = strdup(vm->vmm);
    ret->restored_from = vm->restored_from[0] ? strdup(vm->restored_from) : NULL;
    ret->cpus = vm->cpus;
    ret->mem_mib = vm->mem_mib;
    if (!ret->name || !ret->state || !ret->created_at || !ret->vmm ||
        (vm->restored_from[0] && !ret->restored_from)) {
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
    int fd = -1, r = 0;

    if (!dir)
        return -ENOMEM;
    if (!be)
        return nerr_set(e, -ENODEV, "VM '%s' runs under %s, which this server cannot drive",
                        vm->name, vm->vmm);
    pthread_mutex_lock(&rt->conn_lock);
    if (rt->conn && agent_conn_is_broken(rt->conn)) {
        agent_conn_unref(rt->conn);
        rt->conn = NULL;
    }
    if (!rt->conn) {
        r = be->ops->agent_connect(be, dir, &fd, e);
        if (r >= 0)
            r = agent_conn_open(fd, timeout_ms, &rt->conn, e);
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

/* Last lines of the serial console, to explain a boot that went wrong. */
static void serial_tail(const char *dir, char *out, size_t size)
{
    _cleanup_free_ char *path = path_join(dir, VM_FILE_SERIAL_LOG);
    _cleanup_free_ char *text = NULL;
    size_t len = 0;

    out[0] = 0;
    if (!path || read_file(path, 16 * 1024 * 1024, &text, &len) < 0 || len == 0)
        return;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = 0;
    const char *start = len > size - 1 ? text + len - (size - 1) : text;
    snprintf(out, size, "%s", start);
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
}

int vm_start_and_wait(struct engine *eng, struct db_vm *vm, struct vm_rt *rt, const char *dir,
                      const struct vm_start_spec *spec, struct nerr *e)
{
    struct vmm_backend *be = engine_backend(eng, vm->vmm);
    _cleanup_free_ char *disk = path_join(dir, VM_FILE_ROOTFS);
    _cleanup_free_ char *memdir = vm_mem_dir(eng);
    _cleanup_free_ char *memfile = NULL;
    struct vmm_boot b = {0};
    struct vmm_proc proc = {0};
    struct agent_conn *conn = NULL;
    int64_t t0 = time_mono_ms();
    int r;

    if (!be)
        return nerr_set(e, -ENODEV, "VMM '%s' is not available on this server", vm->vmm);
    if (!disk || !memdir)
        return -ENOMEM;
    r = random_hex_id(vm->instance_id, 16);
    if (r < 0)
        return r;
    b.vm_dir = dir;
    b.instance_id = vm->instance_id;
    b.kernel = eng->cfg->kernel;
    b.initrd = eng->cfg->initrd;
    b.rootfs = disk;
    b.cpus = (int)vm->cpus;
    b.mem_mib = (int)vm->mem_mib;
    if (spec && spec->mem_file) {
        /* a private (copy-on-write) mapping of a template's memory */
        b.mem_file = spec->mem_file;
        b.mem_shared = spec->mem_shared;
    } else if (be->ops->supports_shared_memory_file(be) && vm_mem_dir_ready(memdir)) {
        /* guest RAM in a tmpfs file: a checkpoint copies it instead of
         * streaming it through the migration channel */
        memfile = vm_mem_file(eng, vm->instance_id);
        if (!memfile)
            return -ENOMEM;
        if (spec && spec->mem_seed) {
            r = storage_copy_file(eng->storage, spec->mem_seed, memfile, e);
            if (r < 0)
                return r;
        }
        b.mem_file = memfile;
        b.mem_shared = true;
    }
    if (spec) {
        b.restore_state = spec->restore_state;
        b.restore_ignore_shared = spec->restore_ignore_shared;
    }

    int64_t t_spawn = time_mono_ms();
    r = be->ops->start(be, &b, &proc, e);
    if (r < 0)
        goto fail;
    log_debug("vm %s/%s: VMM started in %lld ms", vm->user_id, vm->name,
              (long long)(time_mono_ms() - t_spawn));
    vm->pid = proc.pid;
    /* record the process at once, so a crash from here on is reconciled */
    r = db_vm_set_runtime(eng->db, vm->id, vm->pid, vm->instance_id, vm->phase,
                          vm->restored_from);
    if (r < 0) {
        nerr_set(e, r, "cannot record the VM process: %s", db_errmsg(eng->db));
        goto fail;
    }
    engine_vm_agent_drop(rt);
    r = vm_agent_connect_wait(be, dir, vm->pid, vm->instance_id,
                              t0 + eng->cfg->boot_timeout_secs * 1000, &conn, e);
    if (r < 0) {
        char tail[200];
        serial_tail(dir, tail, sizeof(tail));
        if (tail[0]) {
            size_t n = strlen(e->msg);
            snprintf(e->msg + n, sizeof(e->msg) - n, "; console: %s", tail);
        }
        goto fail;
    }
    /* keep the connection for later execs */
    pthread_mutex_lock(&rt->conn_lock);
    if (rt->conn) /* an exec raced in and connected: ours is the one to keep */
        agent_conn_unref(rt->conn);
    rt->conn = agent_conn_ref(conn);
    pthread_mutex_unlock(&rt->conn_lock);
    if (spec && spec->restore_state) {
        r = vm_refresh_identity(conn, e);
        if (r < 0) {
            agent_conn_unref(conn);
            goto fail;
        }
    }
    agent_conn_unref(conn);
    log_info("vm %s/%s: %s, agent answered after %lld ms", vm->user_id, vm->name,
             spec && spec->restore_state ? "restored" : "booted",
             (long long)(time_mono_ms() - t0));
    return 0;
fail:
    engine_vm_agent_drop(rt);
    if (proc.pid > 0)
        vmm_proc_kill(proc.pid, vm->instance_id, 10000);
    if (memfile)
        unlink(memfile);
    return r;
}

/* Kill the VMM and remove everything of the VM except its row. */
void vm_teardown_runtime(struct engine *eng, const struct db_vm *vm, struct vm_rt *rt)
{
    _cleanup_free_ char *memfile = NULL;

    if (rt)
        engine_vm_agent_drop(rt);
    if (vm->pid > 0 && vmm_proc_kill(vm->pid, vm->instance_id, 10000) < 0)
        log_warn("vm %s/%s: pid %lld did not die", vm->user_id, vm->name, (long long)vm->pid);
    if (vm->instance_id[0] && (memfile = vm_mem_file(eng, vm->instance_id)))
        unlink(memfile);
}

static int vm_teardown(struct engine *eng, const struct db_vm *vm, struct vm_rt *rt,
                       struct nerr *e)
{
    _cleanup_free_ char *dir = engine_vm_dir(eng, vm->user_id, vm->name);
    _cleanup_free_ char *cps = engine_checkpoints_dir(eng, vm->user_id, vm->name);
    int r;

    if (!dir || !cps)
        return -ENOMEM;
    vm_teardown_runtime(eng, vm, rt);
    r = storage_remove_tree(eng->storage, cps);
    if (r < 0)
        return nerr_set(e, r, "cannot remove %s: %s", cps, strerror(-r));
    r = storage_remove_tree(eng->storage, dir);
    if (r < 0)
        return nerr_set(e, r, "cannot remove %s: %s", dir, strerror(-r));
    r = db_vm_delete(eng->db, vm->id);
    if (r < 0 && r != -ENOENT)
        return nerr_set(e, r, "cannot delete the VM row: %s", db_errmsg(eng->db));
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

int vm_insert_row(struct engine *eng, const struct db_user *u, const char *name,
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

int engine_vm_create(struct engine *eng, const struct db_user *u,
                     const struct wire_create_req *req, struct wire_vm_info *ret,
                     struct nerr *e)
{
    _cleanup_free_ char *dir = NULL;
    struct db_vm vm;
    struct vm_rt *rt;
    long long cpus, mem;
    int r;

    if (eng->mode != ENGINE_SERVE)
        return nerr_set(e, -EPERM, "VMs are created by the running server");
    r = name_vm_check(req->name, e);
    if (r < 0)
        return r;
    r = resolve_size(eng->cfg, req, &cpus, &mem, e);
    if (r < 0)
        return r;
    r = vm_insert_row(eng, u, req->name, cpus, mem, eng->default_vmm, &vm, e);
    if (r < 0)
        return r;
    rt = engine_rt_get(eng, vm.id);
    if (!rt) {
        db_vm_delete(eng->db, vm.id);
        return -ENOMEM;
    }
    pthread_mutex_lock(&rt->lifecycle);
    r = vm_create_from_golden(eng, &vm, rt, e);
    if (r == -ENOENT) { /* no usable golden snapshot: cold boot */
        r = vm_prepare_dir(eng, &vm, &dir, e);
        if (r >= 0)
            r = vm_start_and_wait(eng, &vm, rt, dir, NULL, e);
    }
    if (r >= 0) {
        snprintf(vm.phase, sizeof(vm.phase), "%s", VM_PHASE_READY);
        r = db_vm_set_runtime(eng->db, vm.id, vm.pid, vm.instance_id, vm.phase,
                              vm.restored_from);
        if (r < 0)
            nerr_set(e, r, "cannot record the VM: %s", db_errmsg(eng->db));
    }
    if (r < 0) {
        struct nerr ignored = {0};
        vm_teardown(eng, &vm, rt, &ignored);
    } else {
        r = vm_info_from_row(&vm, ret);
    }
    pthread_mutex_unlock(&rt->lifecycle);
    engine_rt_put(eng, rt);
    if (r < 0)
        engine_rt_forget(eng, vm.id);
    return r;
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

/* Remove RAM files of VMM processes that no longer exist. */
static void reconcile_mem_files(struct engine *eng, const struct db_vm *rows, size_t n)
{
    _cleanup_free_ char *dir = vm_mem_dir(eng);
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *de;

    if (!d)
        return;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        bool live = false;
        if (len < 5 || strcmp(de->d_name + len - 4, ".ram") != 0)
            continue;
        for (size_t i = 0; i < n && !live; i++)
            live = strncmp(rows[i].instance_id, de->d_name, len - 4) == 0 &&
                   rows[i].instance_id[len - 4] == '\0' && engine_vm_row_is_running(&rows[i]);
        if (!live && unlinkat(dirfd(d), de->d_name, 0) == 0)
            log_info("reconcile: removed stale guest RAM file %s/%s", dir, de->d_name);
    }
    closedir(d);
}

/* A restore was interrupted: the old VMM may be paused and a new one half
 * started.  Neither can be trusted, so both go and the VM shows as dead; its
 * owner restores again or destroys it. */
static void reconcile_restore(struct engine *eng, struct db_vm *vm)
{
    _cleanup_free_ char *dir = engine_vm_dir(eng, vm->user_id, vm->name);
    _cleanup_free_ char *staging = vm_staging_dir(eng, vm, "restoring");
    _cleanup_free_ char *needle = NULL;

    log_warn("reconcile: VM %s/%s was being restored when the server stopped; it is dead now",
             vm->user_id, vm->name);
    if (dir && asprintf(&needle, "%s/", dir) >= 0)
        vmm_proc_kill_matching(needle, 5000);
    free(needle);
    needle = NULL;
    if (staging && asprintf(&needle, "%s/", staging) >= 0)
        vmm_proc_kill_matching(needle, 5000);
    if (staging)
        storage_remove_tree(eng->storage, staging);
    {
        /* if the old directory was moved aside and not back, it is the VM */
        _cleanup_free_ char *aside = vm_staging_dir(eng, vm, "replaced");
        if (aside && dir && path_exists(aside) && !path_exists(dir))
            rename(aside, dir);
    }
    vm_teardown_runtime(eng, vm, NULL);
    vm->pid = 0;
    snprintf(vm->phase, sizeof(vm->phase), "%s", VM_PHASE_READY);
    db_vm_set_runtime(eng->db, vm->id, 0, vm->instance_id, vm->phase, vm->restored_from);
}

/* Remove what an operation cut short by a crash leaves: temporary checkpoint
 * directories, half-copied files, golden build directories, and work dirs
 * beside VMs.  None of it is listed anywhere. */
static void sweep_dir(struct engine *eng, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (!d)
        return;
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        _cleanup_free_ char *p = NULL;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        p = path_join(dir, n);
        if (!p)
            break;
        bool stale = strncmp(n, ".tmp-", 5) == 0 || strncmp(n, ".restoring-", 11) == 0 ||
                     strncmp(n, ".replaced-", 10) == 0 ||
                     (len > 8 && strcmp(n + len - 8, ".partial") == 0);
        if (stale) {
            log_info("reconcile: removing leftover %s", p);
            storage_remove_tree(eng->storage, p);
        } else if (de->d_type == DT_DIR && depth > 0) {
            sweep_dir(eng, p, depth - 1);
        }
    }
    closedir(d);
}

static void reconcile_leftovers(struct engine *eng)
{
    DIR *d;
    struct dirent *de;

    /* storage/users/<uid>/{vms,checkpoints/<vm>}/<entry>, storage/base, pool */
    sweep_dir(eng, eng->storage_dir, 4);
    /* golden build dirs, unless an admin `golden build` is running now */
    _cleanup_free_ char *lockp = NULL;
    _cleanup_close_ int lock = -1;
    if (asprintf(&lockp, "%s.build.lock", eng->golden_dir) < 0) {
        lockp = NULL;
        return;
    }
    lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0)
        return;
    d = opendir(eng->data_dir);
    if (!d)
        return;
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
}

int engine_reconcile(struct engine *eng)
{
    struct db_vm *rows = NULL;
    size_t n = 0, running = 0, dead = 0;
    int r;

    r = db_vm_list_all(eng->db, &rows, &n);
    if (r < 0) {
        log_error("reconcile: cannot list VMs: %s", db_errmsg(eng->db));
        return r;
    }
    for (size_t i = 0; i < n; i++) {
        struct db_vm *vm = &rows[i];
        if (strcmp(vm->phase, VM_PHASE_CREATING) == 0) {
            struct nerr ignored = {0};
            log_warn("reconcile: VM %s/%s was being created when the server stopped; removing it",
                     vm->user_id, vm->name);
            vm_teardown(eng, vm, NULL, &ignored);
            vm->pid = 0;
            continue;
        }
        if (strcmp(vm->phase, VM_PHASE_RESTORING) == 0)
            reconcile_restore(eng, vm);
        if (engine_vm_row_is_running(vm))
            running++;
        else
            dead++;
    }
    reconcile_mem_files(eng, rows, n);
    reconcile_leftovers(eng);
    log_info("reconcile: %zu VMs running, %zu dead", running, dead);
    free(rows);
    return 0;
}
