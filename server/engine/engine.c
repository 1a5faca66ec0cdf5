/* engine.c — opening the engine (data dir, database, storage, backends), the
 * registry of per-VM runtime objects, and the paths of the storage layout:
 *
 *   <data>/noid.db
 *   <data>/storage/users/<user_id>/vms/<vm_name>/            one VM
 *   <data>/storage/users/<user_id>/checkpoints/<vm_name>/<id>/ its checkpoints
 *   <data>/storage/base/rootfs-<key>.ext4                     reflink source
 *   <data>/golden/                                            golden snapshot */
#include "engine-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <linux/magic.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "console_hub.h"
#include "console_log.h"
#include "disk_pool.h"
#include "firecracker.h"
#include "fsutil.h"
#include "log.h"
#include "qemu.h"
#include "vm_net.h"
#include "spawn-util.h"

char *engine_user_dir(struct engine *eng, const char *user_id)
{
    char *p;

    if (asprintf(&p, "%s/users/%s", eng->storage_dir, user_id) < 0)
        return NULL;
    return p;
}

char *engine_vm_dir(struct engine *eng, const char *user_id, const char *vm_name)
{
    char *p;

    if (asprintf(&p, "%s/users/%s/vms/%s", eng->storage_dir, user_id, vm_name) < 0)
        return NULL;
    return p;
}

char *engine_checkpoints_dir(struct engine *eng, const char *user_id, const char *vm_name)
{
    char *p;

    if (asprintf(&p, "%s/users/%s/checkpoints/%s", eng->storage_dir, user_id, vm_name) < 0)
        return NULL;
    return p;
}

struct vm_rt *engine_rt_get(struct engine *eng, int64_t vm_id)
{
    struct vm_rt *rt;

    pthread_mutex_lock(&eng->reg_lock);
    for (rt = eng->registry; rt; rt = rt->next)
        if (rt->vm_id == vm_id && !rt->forgotten)
            break;
    if (!rt) {
        rt = calloc(1, sizeof(*rt));
        if (rt) {
            rt->vm_id = vm_id;
            pthread_mutex_init(&rt->lifecycle, NULL);
            pthread_mutex_init(&rt->conn_lock, NULL);
            rt->next = eng->registry;
            eng->registry = rt;
        }
    }
    if (rt)
        rt->refs++;
    pthread_mutex_unlock(&eng->reg_lock);
    return rt;
}

static void rt_free(struct vm_rt *rt)
{
    if (rt->conn) {
        agent_conn_shutdown(rt->conn);
        agent_conn_unref(rt->conn);
    }
    pthread_mutex_destroy(&rt->lifecycle);
    pthread_mutex_destroy(&rt->conn_lock);
    free(rt);
}

/* Entries stay while referenced; an entry whose VM row is gone is freed by
 * engine_rt_forget once nobody holds it. */
/* Unlink rt if it is forgotten and unreferenced (reg_lock held). */
static struct vm_rt *rt_unlink_if_dead(struct engine *eng, struct vm_rt *rt)
{
    if (!rt->forgotten || rt->refs > 0)
        return NULL;
    for (struct vm_rt **pp = &eng->registry; *pp; pp = &(*pp)->next)
        if (*pp == rt) {
            *pp = rt->next;
            return rt;
        }
    return NULL;
}

void engine_rt_put(struct engine *eng, struct vm_rt *rt)
{
    struct vm_rt *dead;

    if (!rt)
        return;
    pthread_mutex_lock(&eng->reg_lock);
    rt->refs--;
    dead = rt_unlink_if_dead(eng, rt);
    pthread_mutex_unlock(&eng->reg_lock);
    if (dead)
        rt_free(dead);
}

void engine_rt_forget(struct engine *eng, int64_t vm_id)
{
    struct vm_rt *dead = NULL;

    pthread_mutex_lock(&eng->reg_lock);
    for (struct vm_rt *rt = eng->registry; rt; rt = rt->next)
        if (rt->vm_id == vm_id) {
            /* freed now, or by the last engine_rt_put */
            rt->forgotten = true;
            dead = rt_unlink_if_dead(eng, rt);
            break;
        }
    pthread_mutex_unlock(&eng->reg_lock);
    if (dead)
        rt_free(dead);
}

const char *engine_accel_name(struct engine *eng, const char *vmm)
{
    if (strcmp(vmm, "qemu") == 0 && eng->qemu)
        return vmm_qemu_uses_kvm(eng->qemu) ? "kvm" : "tcg";
    return "kvm"; /* Firecracker always runs on KVM */
}

struct vmm_backend *engine_backend(struct engine *eng, const char *vmm_name)
{
    if (strcmp(vmm_name, "qemu") == 0)
        return eng->qemu;
    if (strcmp(vmm_name, "firecracker") == 0)
        return eng->firecracker;
    return NULL;
}

/* The user VMMs drop to: vmm_user when we are root (it must exist), else
 * nobody to switch to.  *ret is NULL for "stay who we are". */
static int vmm_run_as(const struct server_config *c, const char **ret, struct nerr *e)
{
    *ret = NULL;
    if (geteuid() != 0)
        return 0;
    if (!c->vmm_user || !c->vmm_user[0]) {
        log_warn("vmm: VMMs run as root (vmm_user is empty)");
        return 0;
    }
    if (!getpwnam(c->vmm_user))
        return nerr_set(e, -ENOENT,
                        "vmm_user '%s' does not exist: create it (useradd --system "
                        "--no-create-home --shell /usr/sbin/nologin %s; scripts/deps.sh does) "
                        "or set vmm_user = \"\" to run VMMs as root",
                        c->vmm_user, c->vmm_user);
    *ret = c->vmm_user;
    return 0;
}

static int open_backends(struct engine *eng, struct nerr *e)
{
    const struct server_config *c = eng->cfg;
    _cleanup_free_ char *probe_cache = path_join(eng->data_dir, "kvm-probe");
    struct qemu_options qo = {
        .qemu_bin = c->qemu_bin,
        .accel = c->accel,
        .kernel = c->kernel,
        .initrd = c->initrd,
        .probe_cache = probe_cache,
    };
    bool want_fc = strcmp(c->vmm, "firecracker") == 0;
    bool fc_ok = vmm_firecracker_available(c->firecracker_bin);
    int r;

    r = vmm_run_as(c, &qo.run_as, e);
    if (r < 0)
        return r;
    if (want_fc && !fc_ok)
        return nerr_set(e, -ENODEV,
                        "vmm = \"firecracker\" but %s is not executable or /dev/kvm is not usable",
                        c->firecracker_bin);
    if (fc_ok) {
        struct firecracker_options fo = {.firecracker_bin = c->firecracker_bin};
        r = vmm_firecracker_new(&fo, &eng->firecracker, e);
        if (r < 0)
            return r;
    }
    if (!want_fc) {
        r = vmm_qemu_new(&qo, &eng->qemu, e);
        if (r < 0 && strcmp(c->vmm, "qemu") == 0)
            return r;
        if (r < 0 && !eng->firecracker)
            return r;
    }
    /* auto: Firecracker when it is really usable, else QEMU */
    eng->default_vmm = (want_fc || (strcmp(c->vmm, "auto") == 0 && eng->firecracker))
                           ? "firecracker"
                           : "qemu";
    if (strcmp(eng->default_vmm, "qemu") == 0)
        log_info("vmm: qemu (%s, %s, %s)", vmm_qemu_uses_kvm(eng->qemu) ? "KVM" : "TCG",
                 vmm_qemu_sandboxed(eng->qemu) ? "seccomp sandbox" : "no seccomp sandbox",
                 qo.run_as ? qo.run_as : "as the server's user");
    else
        log_info("vmm: firecracker");
    return 0;
}

/* btrfs_image: give storage/ a btrfs file system from a loop-mounted image
 * when it is not on btrfs already (the guide's btrfs setup, done for the
 * admin).  Needs root; without it plain storage is used, with a warning. */
static int mount_btrfs_image(struct engine *eng, struct nerr *e)
{
    const struct server_config *c = eng->cfg;
    _cleanup_free_ char *image = NULL;
    struct statfs sfs;
    int r;

    if (!c->btrfs_image)
        return 0;
    r = mkdir_p(eng->storage_dir, 0700);
    if (r < 0)
        return nerr_set(e, r, "cannot create %s: %s", eng->storage_dir, strerror(-r));
    if (statfs(eng->storage_dir, &sfs) == 0 && sfs.f_type == BTRFS_SUPER_MAGIC)
        return 0; /* mounted already (by us earlier, or by the admin) */
    if (geteuid() != 0) {
        log_warn("storage: btrfs_image needs root to mount; using %s as it is",
                 eng->storage_dir);
        return 0;
    }
    image = c->btrfs_image[0] == '/' ? strdup(c->btrfs_image)
                                      : path_join(eng->data_dir, c->btrfs_image);
    if (!image)
        return -ENOMEM;
    if (!path_exists(image)) {
        int fd = open(image, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            return nerr_set(e, -errno, "cannot create %s: %s", image, strerror(errno));
        r = ftruncate(fd, (off_t)c->btrfs_image_size_mib * 1024 * 1024) < 0 ? -errno : 0;
        close(fd);
        char *mkfs[] = {(char *)"mkfs.btrfs", (char *)"-q", image, NULL};
        if (r >= 0 && spawn_wait(mkfs, NULL) != 0)
            r = -EIO;
        if (r < 0) {
            unlink(image);
            return nerr_set(e, r, "cannot make a btrfs file system in %s (is btrfs-progs "
                                  "installed?)", image);
        }
        log_info("storage: created btrfs image %s (%lld MiB)", image, c->btrfs_image_size_mib);
    }
    char *mount_argv[] = {(char *)"mount", (char *)"-o", (char *)"loop", image,
                          eng->storage_dir, NULL};
    if (spawn_wait(mount_argv, NULL) != 0)
        return nerr_set(e, -EIO, "cannot loop-mount %s on %s", image, eng->storage_dir);
    chmod(eng->storage_dir, 0700);
    log_info("storage: mounted btrfs image %s on %s", image, eng->storage_dir);
    return 0;
}

/* One server per data dir: two would reconcile each other's work away. */
static int lock_data_dir(struct engine *eng, struct nerr *e)
{
    _cleanup_free_ char *p = path_join(eng->data_dir, "server.lock");
    char pid[32];

    if (!p)
        return -ENOMEM;
    eng->server_lock = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (eng->server_lock < 0)
        return nerr_set(e, -errno, "cannot open %s: %s", p, strerror(errno));
    if (flock(eng->server_lock, LOCK_EX | LOCK_NB) < 0) {
        ssize_t n = pread(eng->server_lock, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        return nerr_set(e, -EBUSY, "another noid-server (pid %s) serves data dir %s",
                        pid[0] ? pid : "?", eng->data_dir);
    }
    snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(eng->server_lock, 0) == 0 &&
        pwrite(eng->server_lock, pid, strlen(pid), 0) < 0)
        log_warn("cannot write %s: %s", p, strerror(errno));
    return 0;
}

int engine_open(struct server_config *cfg, enum engine_mode mode, struct engine **ret,
                struct nerr *e)
{
    struct engine *eng = calloc(1, sizeof(*eng));
    _cleanup_free_ char *db_path = NULL;
    int r;

    if (!eng)
        return -ENOMEM;
    eng->cfg = cfg;
    eng->mode = mode;
    eng->server_lock = -1;
    pthread_mutex_init(&eng->base_lock, NULL);
    pthread_mutex_init(&eng->quota_lock, NULL);
    pthread_mutex_init(&eng->reg_lock, NULL);
    pthread_cond_init(&eng->golden_build_done, NULL);
    pthread_mutex_init(&eng->pool_lock, NULL);
    pthread_cond_init(&eng->pool_idle, NULL);
    pthread_mutex_init(&eng->golden_build_lock, NULL);
    r = mkdir_p(cfg->data_dir, 0700);
    if (r < 0) {
        nerr_set(e, r, "cannot create data dir %s: %s", cfg->data_dir, strerror(-r));
        goto fail;
    }
    /* one spelling of the data dir (no trailing slash, no symlink): paths
     * derived from it (the RAM directory's name, VMM command lines the
     * reconcile looks for) must not depend on how it was written */
    eng->data_dir = realpath(cfg->data_dir, NULL);
    if (!eng->data_dir) {
        r = nerr_set(e, -errno, "cannot resolve data dir %s: %s", cfg->data_dir,
                     strerror(errno));
        goto fail;
    }
    eng->golden_dir = path_join(eng->data_dir, "golden");
    eng->storage_dir = path_join(eng->data_dir, "storage");
    db_path = path_join(eng->data_dir, "noid.db");
    if (!eng->storage_dir || !eng->golden_dir || !db_path) {
        r = -ENOMEM;
        goto fail;
    }
    if (mode == ENGINE_SERVE) {
        r = lock_data_dir(eng, e);
        if (r < 0)
            goto fail;
    }
    r = db_open(db_path, &eng->db, e);
    if (r < 0)
        goto fail;
    r = mount_btrfs_image(eng, e);
    if (r < 0)
        goto fail;
    r = storage_open(eng->storage_dir, &eng->storage, e);
    if (r < 0)
        goto fail;
    if (mode == ENGINE_SERVE || mode == ENGINE_GOLDEN) {
        r = open_backends(eng, e);
        if (r < 0)
            goto fail;
        log_info("storage: %s (%s)", eng->storage_dir, storage_kind(eng->storage));
    }
    if (mode == ENGINE_SERVE) {
        vm_net_init(eng);
        engine_reconcile(eng);
        disk_pool_clear(eng); /* sources may have changed while we were away */
        r = console_log_start(eng);
        if (r < 0) {
            nerr_set(e, r, "cannot start the console log watcher: %s", strerror(-r));
            goto fail;
        }
        r = console_hubs_start(eng);
        if (r < 0) {
            nerr_set(e, r, "cannot start the console hubs: %s", strerror(-r));
            goto fail;
        }
    }
    *ret = eng;
    return 0;
fail:
    engine_close(eng);
    return r;
}

void engine_close(struct engine *eng)
{
    if (!eng)
        return;
    console_hubs_stop(eng);
    console_log_stop(eng); /* early: it uses the DB and the registry */
    disk_pool_shutdown(eng);
    /* a background golden build uses the engine: let it finish */
    pthread_mutex_lock(&eng->golden_build_lock);
    while (eng->golden_rebuild_running)
        pthread_cond_wait(&eng->golden_build_done, &eng->golden_build_lock);
    pthread_mutex_unlock(&eng->golden_build_lock);
    while (eng->registry) {
        struct vm_rt *rt = eng->registry;
        eng->registry = rt->next;
        rt_free(rt);
    }
    if (eng->qemu)
        vmm_qemu_free(eng->qemu);
    if (eng->firecracker)
        vmm_firecracker_free(eng->firecracker);
    storage_free(eng->storage);
    db_close(eng->db);
    free(eng->data_dir);
    free(eng->storage_dir);
    free(eng->golden_dir);
    if (eng->server_lock >= 0)
        close(eng->server_lock);
    pthread_cond_destroy(&eng->golden_build_done);
    pthread_mutex_destroy(&eng->pool_lock);
    pthread_cond_destroy(&eng->pool_idle);
    pthread_mutex_destroy(&eng->golden_build_lock);
    pthread_mutex_destroy(&eng->base_lock);
    pthread_mutex_destroy(&eng->quota_lock);
    pthread_mutex_destroy(&eng->reg_lock);
    free(eng);
}
