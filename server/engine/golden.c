/* golden.c — the golden snapshot: a pre-booted template VM saved under
 * <data>/golden/, from which `create` starts new VMs in a fraction of a cold
 * boot (the guide's provisioning flow).
 *
 *   golden/config.json   what it was built from (see below)
 *   golden/vmstate.snap  device state (QEMU: saved with x-ignore-shared)
 *   golden/memory.snap   guest RAM; VMs map it MAP_PRIVATE, so all VMs made
 *                        from it share the pages they never write
 *   golden/rootfs.ext4   the template's disk at the moment of the snapshot
 *   golden/serial.log    its console log up to then
 *
 * config.json records the kernel, rootfs and initrd (path, size, mtime,
 * sha256), cpus, mem_mib, the VMM, its version and accelerator, and
 * whether the template has a NIC ("nic").  The template's NIC has no TAP
 * (no network exists at build time); every VM created from it gets its
 * own lease and the agent configures the guest (vm_start_and_wait).  When any of
 * them changes the snapshot is invalid: create cold-boots and a rebuild is
 * started in the background.  The files are never modified in place (VMs
 * map memory.snap): a (re)build writes golden.build-<id>/ and swaps it in
 * with one atomic exchange of directories.  Lock files (flock) work across
 * the server and admin commands: golden.build.lock lets one builder run,
 * golden.lock is shared by creates reading the files and exclusive for the
 * exchange. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "disk_pool.h"
#include "encoding.h"
#include "engine-internal.h"
#include "fsutil.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"
#include "test_hook.h"
#include "vm-internal.h"
#include "vm_net.h"

#define GOLDEN_CONFIG "config.json"
/* 2: the template has a NIC (golden creates get a network without a cold
 * boot); snapshots of format 1 have none and are rebuilt */
#define GOLDEN_FORMAT 2

/* sha256 over the data extents of a file (offset + bytes of each), so a
 * 1 GiB sparse disk image costs only its data. */
static int sparse_sha256(const char *path, char out[65])
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    _cleanup_free_ uint8_t *chunk = malloc(1 << 20);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char md[32];
    unsigned int mdlen;
    struct stat st;
    off_t pos = 0;
    int r = 0;

    if (fd < 0 || !chunk || !ctx || fstat(fd, &st) < 0) {
        r = fd < 0 ? -errno : -ENOMEM;
        goto out;
    }
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    while (pos < st.st_size) {
        off_t data = lseek(fd, pos, SEEK_DATA);
        if (data < 0)
            break; /* only a hole remains */
        off_t hole = lseek(fd, data, SEEK_HOLE);
        if (hole < 0)
            hole = st.st_size;
        EVP_DigestUpdate(ctx, &data, sizeof(data));
        for (off_t o = data; o < hole;) {
            ssize_t n = pread(fd, chunk, (size_t)MIN(hole - o, (off_t)1 << 20), o);
            if (n <= 0) {
                r = n < 0 ? -errno : -EIO;
                goto out;
            }
            EVP_DigestUpdate(ctx, chunk, (size_t)n);
            o += n;
        }
        pos = hole;
    }
    EVP_DigestUpdate(ctx, &st.st_size, sizeof(st.st_size));
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    hex_encode(md, 32, out);
out:
    EVP_MD_CTX_free(ctx);
    return r;
}

/* {"path","size","mtime_ns"} (+ "sha256" when hashing) of an input file. */
static json_object *describe_file(const char *path, bool hash)
{
    json_object *o;
    struct stat st;
    char sha[65];

    if (!path)
        return NULL;
    if (stat(path, &st) < 0)
        return NULL;
    o = json_object_new_object();
    json_object_object_add(o, "path", json_object_new_string(path));
    json_object_object_add(o, "size", json_object_new_int64(st.st_size));
    json_object_object_add(
        o, "mtime_ns",
        json_object_new_int64((int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec));
    if (hash && sparse_sha256(path, sha) == 0)
        json_object_object_add(o, "sha256", json_object_new_string(sha));
    return o;
}

/* What a golden snapshot built now would be made from. */
static json_object *current_inputs(struct engine *eng, long long cpus, long long mem, bool hash)
{
    const struct server_config *c = eng->cfg;
    struct vmm_backend *be = engine_backend(eng, eng->default_vmm);
    json_object *o = json_object_new_object();

    json_object_object_add(o, "format", json_object_new_int(GOLDEN_FORMAT));
    json_object_object_add(o, "kernel", describe_file(c->kernel, hash));
    json_object_object_add(o, "rootfs", describe_file(c->rootfs, hash));
    json_object_object_add(o, "initrd", describe_file(c->initrd, hash));
    json_object_object_add(o, "cpus", json_object_new_int64(cpus));
    json_object_object_add(o, "mem_mib", json_object_new_int64(mem));
    json_object_object_add(o, "vmm", json_object_new_string(eng->default_vmm));
    json_object_object_add(o, "vmm_version",
                           json_object_new_string(be ? be->ops->version(be) : "unknown"));
    json_object_object_add(o, "accel",
                           json_object_new_string(engine_accel_name(eng, eng->default_vmm)));
    return o;
}

static bool file_desc_equal(json_object *a, json_object *b)
{
    static const char *const keys[] = {"path", "size", "mtime_ns"};

    if (!a || !b)
        return a == b;
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
        json_object *x = NULL, *y = NULL;
        json_object_object_get_ex(a, keys[i], &x);
        json_object_object_get_ex(b, keys[i], &y);
        if (!x || !y || strcmp(json_object_get_string(x), json_object_get_string(y)) != 0)
            return false;
    }
    return true;
}

/* Why the recorded config no longer matches (NULL: it matches). */
static const char *golden_mismatch(struct engine *eng, json_object *rec)
{
    static const char *const files[] = {"kernel", "rootfs", "initrd"};
    static const char *const scalars[] = {"format", "vmm", "vmm_version", "accel"};
    json_object *cur, *src = NULL;
    const char *why = NULL;
    bool promoted;

    json_object_object_get_ex(rec, "source", &src);
    promoted = src && strncmp(json_object_get_string(src), "checkpoint:", 11) == 0;
    cur = current_inputs(eng, eng->cfg->default_cpus, eng->cfg->default_mem_mib, false);
    for (size_t i = 0; i < ARRAY_SIZE(files) && !why; i++) {
        json_object *a = NULL, *b = NULL;
        json_object_object_get_ex(rec, files[i], &a);
        json_object_object_get_ex(cur, files[i], &b);
        if (!file_desc_equal(a, b))
            why = files[i];
    }
    for (size_t i = 0; i < ARRAY_SIZE(scalars) && !why; i++) {
        json_object *a = NULL, *b = NULL;
        json_object_object_get_ex(rec, scalars[i], &a);
        json_object_object_get_ex(cur, scalars[i], &b);
        if (!a || !b || strcmp(json_object_get_string(a), json_object_get_string(b)) != 0)
            why = scalars[i];
    }
    /* a built template uses the defaults; a promoted checkpoint keeps its own size */
    if (!why && !promoted) {
        json_object *a = NULL, *b = NULL;
        json_object_object_get_ex(rec, "cpus", &a);
        json_object_object_get_ex(cur, "cpus", &b);
        if (!a || json_object_get_int64(a) != json_object_get_int64(b))
            why = "default cpus";
        json_object_object_get_ex(rec, "mem_mib", &a);
        json_object_object_get_ex(cur, "mem_mib", &b);
        if (!why && (!a || json_object_get_int64(a) != json_object_get_int64(b)))
            why = "default memory";
    }
    json_object_put(cur);
    return why;
}

static json_object *golden_read_config(struct engine *eng)
{
    _cleanup_free_ char *p = path_join(eng->golden_dir, GOLDEN_CONFIG);

    return p ? json_object_from_file(p) : NULL;
}

/* flock() on <golden>.<suffix>, held until the returned fd is closed.
 * Locks work across processes (server and admin commands):
 *   "build.lock" exclusive: one builder per data dir;
 *   "lock" shared while a create reads the snapshot, exclusive to swap it. */
static int golden_flock(struct engine *eng, const char *suffix, int how)
{
    _cleanup_free_ char *p = NULL;
    int fd;

    if (asprintf(&p, "%s.%s", eng->golden_dir, suffix) < 0)
        return -ENOMEM;
    fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    while (flock(fd, how) < 0) {
        if (errno == EINTR)
            continue;
        int r = -errno;
        close(fd);
        return r;
    }
    return fd;
}

bool engine_golden_ready(struct engine *eng)
{
    json_object *rec;
    bool ok;

    if (eng->mode != ENGINE_SERVE && eng->mode != ENGINE_GOLDEN)
        return false;
    int lock = golden_flock(eng, "lock", LOCK_SH);
    rec = golden_read_config(eng);
    ok = rec && !golden_mismatch(eng, rec);
    if (lock >= 0)
        close(lock);
    json_object_put(rec);
    return ok;
}

int golden_size(struct engine *eng, long long *ret_cpus, long long *ret_mem, struct nerr *e)
{
    json_object *rec, *c = NULL, *m = NULL;
    int lock = golden_flock(eng, "lock", LOCK_SH);
    int r = 0;

    rec = golden_read_config(eng);
    if (lock >= 0)
        close(lock);
    if (!rec || !json_object_object_get_ex(rec, "cpus", &c) ||
        !json_object_object_get_ex(rec, "mem_mib", &m))
        r = nerr_set(e, -ENOENT, "no golden snapshot in %s", eng->golden_dir);
    else {
        *ret_cpus = json_object_get_int64(c);
        *ret_mem = json_object_get_int64(m);
    }
    json_object_put(rec);
    return r;
}

/* The agent starts first thing at boot and answers before the rest of the
 * guest has settled: the console's login shell (Debian's bash: a dynamic
 * binary, its profile and bashrc, ~100 ms of CPU under TCG) may still be
 * starting.  A snapshot taken then would make every VM made from it finish
 * that work after its restore, on the same vCPU its agent needs (measured:
 * golden creates of the Debian guest 1.66 x the busybox guest's, 1.2 x with
 * a shell that starts at once; the template's serial log had no prompt yet).
 * So wait, at most ~10 s, until every user process but the waiting shell
 * itself has been asleep (state S, not running or in disk wait) at two
 * looks 0.1 s apart, then take the snapshot.  Only shell builtins look, so
 * the check itself does not keep the guest busy.  Best effort: a guest that
 * never settles is saved anyway. */
#define TEMPLATE_SETTLE_SCRIPT                                                                     \
    "n=0; i=0; while [ $i -lt 100 ]; do busy=; "                                                   \
    "for f in /proc/[0-9]*/stat; do read -r pid comm state ppid rest < \"$f\" || continue; "       \
    "{ [ \"$pid\" = $$ ] || [ \"$pid\" = 2 ] || [ \"$ppid\" = 2 ]; } && continue; "                \
    "case $state in R|D) busy=1 ;; esac; done; "                                                   \
    "if [ -z \"$busy\" ]; then n=$((n + 1)); [ $n -ge 2 ] && exit 0; else n=0; fi; "               \
    "sleep 0.1; i=$((i + 1)); done; exit 1"

static void settle_discard_output(void *user, bool is_stderr, const uint8_t *data, size_t len)
{
    (void)user, (void)is_stderr, (void)data, (void)len;
}

static void template_settle(struct agent_conn *conn)
{
    static char sh[] = "/bin/sh", dash_c[] = "-c", script[] = TEMPLATE_SETTLE_SCRIPT;
    char *argv[] = {sh, dash_c, script, NULL};
    char *env[] = {NULL};
    struct ap_exec_req req = {.argv = argv, .argc = 3, .env = env, .timeout_ms = 15000};
    struct agent_exec_sink sink = {.on_output = settle_discard_output};
    struct agent_exec *x = NULL;
    struct ap_exit ex = {0};
    struct nerr e = {0};
    int64_t t0 = time_mono_ms(), deadline = t0 + 20000;
    int r;

    r = agent_exec_start(conn, &req, &sink, deadline, &x, &e);
    if (r >= 0)
        r = agent_exec_wait(x, deadline, &ex, &e);
    if (r < 0)
        log_warn("golden: cannot wait for the template to settle (%s); saving it as it is",
                 nerr_msg(&e));
    else
        log_debug("golden: template %s after %lld ms", ex.code == 0 ? "settled" : "still busy",
                  (long long)(time_mono_ms() - t0));
    agent_exec_free(x);
}

/* Boot a template VM in dir, wait for its agent and for the guest to
 * settle, pause it and save it. */
static int build_template(struct engine *eng, const char *dir, bool *ret_nic, struct nerr *e)
{
    struct vmm_backend *be = engine_backend(eng, eng->default_vmm);
    _cleanup_free_ char *disk = path_join(dir, VM_FILE_ROOTFS);
    _cleanup_free_ char *mem = path_join(dir, VM_FILE_MEMORY);
    _cleanup_free_ char *base = NULL;
    struct vmm_boot b = {0};
    struct vmm_proc proc = {0};
    struct agent_conn *conn = NULL;
    char instance[33];
    bool mem_saved = false;
    int64_t deadline;
    int r;

    if (!be || !disk || !mem)
        return -ENOMEM;
    r = engine_base_copy(eng, eng->cfg->rootfs, &base, e);
    if (r < 0)
        return r;
    r = storage_copy_file(eng->storage, base, disk, e);
    if (r < 0)
        return r;
    r = random_hex_id(instance, 16);
    if (r < 0)
        return r;
    b.vm_dir = dir;
    b.instance_id = instance;
    b.kernel = eng->cfg->kernel;
    b.initrd = eng->cfg->initrd;
    b.rootfs = disk;
    b.cpus = (int)eng->cfg->default_cpus;
    b.mem_mib = (int)eng->cfg->default_mem_mib;
    if (be->ops->supports_shared_memory_file(be)) {
        /* the template's RAM is the golden memory file itself */
        b.ram = VMM_RAM_SHARED_FILE;
        b.mem_file = mem;
    } else {
        b.ram = VMM_RAM_ANON;
    }
    /* a NIC without a peer, where the backend allows one (Firecracker
     * needs a TAP behind every NIC: its templates have none) */
    b.nic = !be->ops->nic_needs_tap;
    b.mac = VM_NET_UNLEASED_MAC;
    *ret_nic = b.nic;
    r = be->ops->start(be, &b, &proc, e);
    if (r < 0)
        return r;
    test_hook("golden-template-started");
    deadline = time_mono_ms() + eng->cfg->boot_timeout_secs * 1000;
    r = vm_agent_connect_wait(be, dir, proc.pid, instance, deadline, &conn, e);
    if (r < 0) {
        nerr_prefix(e, "template VM");
        goto out;
    }
    template_settle(conn);
    agent_conn_shutdown(conn);
    agent_conn_unref(conn);
    r = be->ops->pause(be, dir, e);
    if (r >= 0)
        r = be->ops->save_state(be, dir, dir, true, &mem_saved, e);
out:
    vmm_proc_kill(proc.pid, instance, 10000);
    if (r >= 0) {
        /* QEMU flushed the disk when the migration completed; RAM pages of the
         * shared mapping may still be dirty in the page cache */
        const char *keep[] = {VM_FILE_ROOTFS, VM_FILE_MEMORY, VM_FILE_VMSTATE};
        for (size_t i = 0; i < ARRAY_SIZE(keep) && r >= 0; i++) {
            _cleanup_free_ char *p = path_join(dir, keep[i]);
            r = p ? storage_sync_file(p) : -ENOMEM;
            if (r < 0)
                nerr_set(e, r, "cannot flush %s: %s", keep[i], strerror(-r));
        }
        const char *drop[] = {VM_FILE_AGENT_SOCK, VM_FILE_CONSOLE_SOCK, VM_FILE_QMP_SOCK,
                              VM_FILE_QEMU_PID,   VM_FILE_VSOCK,        VM_FILE_FC_SOCK};
        for (size_t i = 0; i < ARRAY_SIZE(drop); i++) {
            _cleanup_free_ char *p = path_join(dir, drop[i]);
            if (p)
                unlink(p);
        }
    }
    return r;
}

/* Write config.json into dir and swap dir in as the golden snapshot. */
static int golden_install(struct engine *eng, const char *dir, json_object *cfg, struct nerr *e)
{
    _cleanup_free_ char *cfg_path = path_join(dir, GOLDEN_CONFIG);
    _cleanup_free_ char *old = NULL;
    char created[RFC3339_LEN];
    const char *text;
    size_t len;
    int r;

    if (!cfg_path || asprintf(&old, "%s.old-%lld", eng->golden_dir, (long long)time_mono_ns()) < 0)
        return -ENOMEM;
    time_now_rfc3339(created);
    json_object_object_add(cfg, "created_at", json_object_new_string(created));
    text = json_object_to_json_string_length(cfg, JSON_C_TO_STRING_PRETTY, &len);
    r = write_file_atomic(cfg_path, text, len, 0600);
    if (r < 0)
        return nerr_set(e, r, "cannot write %s: %s", cfg_path, strerror(-r));
    int lock = golden_flock(eng, "lock", LOCK_EX); /* wait for creates reading it */
    if (lock < 0)
        return nerr_set(e, lock, "cannot lock the golden snapshot: %s", strerror(-lock));
    /* one atomic exchange: there is always a complete snapshot in place */
    if (path_exists(eng->golden_dir)) {
        if (renameat2(AT_FDCWD, dir, AT_FDCWD, eng->golden_dir, RENAME_EXCHANGE) < 0)
            r = -errno;
        else if (rename(dir, old) < 0) /* dir holds the old snapshot now */
            r = -errno;
    } else if (rename(dir, eng->golden_dir) < 0) {
        r = -errno;
    }
    close(lock);
    if (r < 0)
        return nerr_set(e, r, "cannot put the golden snapshot in place: %s", strerror(-r));
    rm_rf(old);           /* VMs that map the old memory.snap keep its inode alive */
    disk_pool_clear(eng); /* copies of the old disk */
    return 0;
}

static char *new_build_dir(struct engine *eng)
{
    char id[17];
    char *p;

    if (random_hex_id(id, 8) < 0 || asprintf(&p, "%s.build-%s", eng->golden_dir, id) < 0)
        return NULL;
    if (mkdir(p, 0700) < 0) {
        free(p);
        return NULL;
    }
    return p;
}

int engine_golden_ensure(struct engine *eng, bool force, struct nerr *e)
{
    _cleanup_close_ int lock = -1;
    _cleanup_free_ char *dir = NULL;
    json_object *rec, *cfg = NULL;
    const char *why = NULL;
    int64_t t0 = time_mono_ms();
    bool nic = false;
    int r;

    if (!engine_backend(eng, eng->default_vmm))
        return nerr_set(e, -ENODEV, "no VMM backend to build a golden snapshot with");
    lock = golden_flock(eng, "build.lock", LOCK_EX);
    if (lock < 0)
        return nerr_set(e, lock, "cannot lock %s.build.lock: %s", eng->golden_dir, strerror(-lock));
    rec = golden_read_config(eng);
    why = rec ? golden_mismatch(eng, rec) : "missing";
    json_object_put(rec);
    if (!why && !force)
        return 0;
    log_info("golden: %s snapshot (%s%s)", rec ? "rebuilding the" : "building a",
             force ? "forced" : why, rec && !force ? " changed" : "");
    dir = new_build_dir(eng);
    if (!dir) {
        metrics_golden_build_done(-EIO); /* a build that failed, like any other */
        return nerr_set(e, -EIO, "cannot create a build directory next to %s", eng->golden_dir);
    }
    r = build_template(eng, dir, &nic, e);
    if (r >= 0) {
        cfg = current_inputs(eng, eng->cfg->default_cpus, eng->cfg->default_mem_mib, true);
        json_object_object_add(cfg, "source", json_object_new_string("build"));
        json_object_object_add(cfg, "nic", json_object_new_boolean(nic));
        json_object_object_add(cfg, "ignore_shared", json_object_new_boolean(true));
        r = golden_install(eng, dir, cfg, e);
    }
    json_object_put(cfg);
    metrics_golden_build_done(r);
    if (r < 0) {
        rm_rf(dir);
        return r;
    }
    log_info("golden: ready in %s (%lld ms)", eng->golden_dir, (long long)(time_mono_ms() - t0));
    return 0;
}

static void *rebuild_main(void *arg)
{
    struct engine *eng = arg;
    struct nerr e = {0};

    if (engine_golden_ensure(eng, false, &e) < 0)
        log_warn("golden: rebuild failed: %s", nerr_msg(&e));
    pthread_mutex_lock(&eng->golden_build_lock);
    eng->golden_rebuild_running = false;
    pthread_cond_broadcast(&eng->golden_build_done);
    pthread_mutex_unlock(&eng->golden_build_lock);
    return NULL;
}

/* Start a background rebuild unless one runs already. */
void engine_golden_ensure_async(struct engine *eng)
{
    pthread_attr_t attr;
    pthread_t th;
    bool start;

    pthread_mutex_lock(&eng->golden_build_lock);
    start = !eng->golden_rebuild_running;
    eng->golden_rebuild_running = true;
    pthread_mutex_unlock(&eng->golden_build_lock);
    if (!start)
        return;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, rebuild_main, eng) != 0) {
        pthread_mutex_lock(&eng->golden_build_lock);
        eng->golden_rebuild_running = false;
        pthread_mutex_unlock(&eng->golden_build_lock);
    }
    pthread_attr_destroy(&attr);
}

int vm_create_from_golden(struct engine *eng, struct db_vm *vm, struct vm_rt *rt, struct nerr *e)
{
    _cleanup_free_ char *dir = NULL, *disk = NULL, *gdisk = NULL, *base = NULL;
    _cleanup_free_ char *gstate = NULL, *gmem = NULL, *glog = NULL, *log_copy = NULL;
    struct vm_start_spec spec = {0};
    json_object *rec, *v;
    const char *why;
    bool ignore_shared;
    int lock, r;

    /* the server's creates, and the temporary VM of `golden provision` */
    if (!eng->cfg->golden || (eng->mode != ENGINE_SERVE && eng->mode != ENGINE_GOLDEN))
        return -ENOENT;
    /* shared until QEMU has read everything: a rebuild (maybe by an admin
     * command in another process) cannot swap the files under us */
    lock = golden_flock(eng, "lock", LOCK_SH);
    if (lock < 0)
        return -ENOENT;
    rec = golden_read_config(eng);
    why = rec ? golden_mismatch(eng, rec) : "missing";
    if (why) {
        close(lock);
        json_object_put(rec);
        /* only a server cold-boots and rebuilds behind it; `golden
         * provision` (ENGINE_GOLDEN) fails instead, and built the snapshot
         * itself just before */
        if (eng->mode == ENGINE_SERVE) {
            log_info("golden: not usable (%s%s); cold boot, rebuilding in the background", why,
                     strcmp(why, "missing") ? " changed" : "");
            engine_golden_ensure_async(eng);
        } else {
            log_info("golden: not usable (%s%s)", why, strcmp(why, "missing") ? " changed" : "");
        }
        return -ENOENT;
    }
    if (!json_object_object_get_ex(rec, "cpus", &v) || json_object_get_int64(v) != vm->cpus ||
        !json_object_object_get_ex(rec, "mem_mib", &v) || json_object_get_int64(v) != vm->mem_mib ||
        !json_object_object_get_ex(rec, "vmm", &v) || strcmp(json_object_get_string(v), vm->vmm)) {
        close(lock);
        json_object_put(rec);
        return -ENOENT; /* another size than the template: cold boot */
    }
    /* snapshots of servers that did not record it were all saved with it */
    ignore_shared =
        !json_object_object_get_ex(rec, "ignore_shared", &v) || json_object_get_boolean(v);
    spec.nic = json_object_object_get_ex(rec, "nic", &v) && json_object_get_boolean(v);
    json_object_put(rec);

    dir = engine_vm_dir(eng, vm->user_id, vm->name);
    disk = dir ? path_join(dir, VM_FILE_ROOTFS) : NULL;
    gdisk = path_join(eng->golden_dir, VM_FILE_ROOTFS);
    gstate = path_join(eng->golden_dir, VM_FILE_VMSTATE);
    gmem = path_join(eng->golden_dir, VM_FILE_MEMORY);
    glog = path_join(eng->golden_dir, VM_FILE_SERIAL_LOG);
    log_copy = dir ? path_join(dir, VM_FILE_SERIAL_LOG) : NULL;
    if (!disk || !gdisk || !gstate || !gmem || !glog || !log_copy) {
        r = -ENOMEM;
        goto out;
    }
    storage_remove_tree(eng->storage, dir);
    r = storage_make_vm_dir(eng->storage, dir, e);
    if (r < 0)
        goto out;
    r = engine_base_copy(eng, gdisk, &base, e);
    if (r >= 0)
        r = disk_pool_take(eng, base, disk, e);
    if (r >= 0 && path_exists(glog))
        r = storage_copy_file(eng->storage, glog, log_copy, e);
    if (r < 0)
        goto fail;
    log_debug("vm %s/%s: disk from golden ready", vm->user_id, vm->name);
    spec.restore_state = gstate;
    spec.restore_ignore_shared = ignore_shared;
    spec.ram = VM_RAM_TEMPLATE; /* copy-on-write: pages stay shared with the template */
    spec.mem_file = gmem;
    snprintf(vm->restored_from, sizeof(vm->restored_from), "golden");
    {
        /* a golden snapshot that does not start is worth a warning, not a
         * failed create: fall back to a cold boot */
        struct nerr ge = {0};
        r = vm_start_and_wait(eng, vm, rt, dir, &spec, &ge);
        if (r == -EADDRNOTAVAIL) { /* noid-netd refused: a cold boot would get the same */
            nerr_set(e, r, "%s", nerr_msg(&ge));
            goto fail;
        }
        if (r < 0) {
            log_warn("golden: starting %s/%s from the snapshot failed (%s); cold boot", vm->user_id,
                     vm->name, nerr_msg(&ge));
            r = -ENOENT;
            goto fail;
        }
    }
    goto out;
fail:
    storage_remove_tree(eng->storage, dir);
    vm->restored_from[0] = '\0';
out:
    close(lock);
    return r;
}

int engine_golden_promote(struct engine *eng, const char *checkpoint_id, struct nerr *e)
{
    struct db_checkpoint *list = NULL;
    _cleanup_close_ int lock = -1;
    _cleanup_free_ char *dir = NULL, *cp_dir = NULL, *cps = NULL;
    json_object *cfg = NULL;
    size_t n = 0;
    char from[64];
    int r;

    r = name_checkpoint_prefix_check(checkpoint_id, e);
    if (r < 0)
        return r;
    r = db_checkpoint_find_prefix_all(eng->db, checkpoint_id, &list, &n);
    if (r < 0)
        return nerr_set(e, r, "cannot look up checkpoints: %s", db_errmsg(eng->db));
    if (n != 1) {
        free(list);
        return nerr_set(e, n ? -EBUSY : -ENOENT,
                        n ? "checkpoint id '%s' is ambiguous" : "no checkpoint '%s'",
                        checkpoint_id);
    }
    cps = engine_checkpoints_dir(eng, list[0].user_id, list[0].vm_name);
    if (!cps || asprintf(&cp_dir, "%s/%s", cps, list[0].id) < 0) {
        cp_dir = NULL;
        r = -ENOMEM;
        goto out;
    }
    {
        _cleanup_free_ char *mem = path_join(cp_dir, VM_FILE_MEMORY);
        /* a checkpoint of an older server not yet upgraded by the reconcile
         * has the format its files show */
        if ((list[0].has_format && strcmp(list[0].mem_format, CP_MEM_FILE) != 0) || !mem ||
            !path_exists(mem)) {
            r = nerr_set(e, -EINVAL,
                         "checkpoint %s keeps the guest's memory inside its state file (it was "
                         "taken by an older server of a VM without a RAM file); checkpoint the "
                         "VM again and promote that",
                         list[0].id);
            goto out;
        }
    }
    if (strcmp(list[0].vmm, eng->default_vmm) != 0) {
        r = nerr_set(e, -EINVAL, "checkpoint %s was taken under %s, the server runs %s", list[0].id,
                     list[0].vmm, eng->default_vmm);
        goto out;
    }
    lock = golden_flock(eng, "build.lock", LOCK_EX);
    if (lock < 0) {
        r = nerr_set(e, lock, "cannot lock the golden snapshot: %s", strerror(-lock));
        goto out;
    }
    dir = new_build_dir(eng);
    if (!dir) {
        r = nerr_set(e, -EIO, "cannot create a build directory next to %s", eng->golden_dir);
        goto out;
    }
    const char *files[] = {VM_FILE_ROOTFS, VM_FILE_MEMORY, VM_FILE_VMSTATE, VM_FILE_SERIAL_LOG};
    for (size_t i = 0; i < ARRAY_SIZE(files) && r >= 0; i++) {
        _cleanup_free_ char *a = path_join(cp_dir, files[i]), *b = path_join(dir, files[i]);
        if (!a || !b)
            r = -ENOMEM;
        else if (path_exists(a) || i < 3)
            r = storage_copy_file(eng->storage, a, b, e);
    }
    if (r >= 0) {
        cfg = current_inputs(eng, list[0].cpus, list[0].mem_mib, true);
        snprintf(from, sizeof(from), "checkpoint:%s", list[0].id);
        json_object_object_add(cfg, "source", json_object_new_string(from));
        json_object_object_add(
            cfg, "ignore_shared",
            json_object_new_boolean(!list[0].has_format || list[0].ignore_shared));
        json_object_object_add(cfg, "nic", json_object_new_boolean(list[0].nic));
        r = golden_install(eng, dir, cfg, e);
    }
    if (r < 0)
        rm_rf(dir);
    else
        log_info("golden: promoted checkpoint %s (%lld cpus, %lld MiB)", list[0].id, list[0].cpus,
                 list[0].mem_mib);
out:
    json_object_put(cfg);
    free(list);
    return r;
}
