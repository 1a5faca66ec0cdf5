/* mount.c — a noidfs mount's life: clearing a dead mount left by a
 * crash, mounting, running libfuse's multi-threaded loop (here or on a
 * thread of its own), and ending it: blocked requests are woken, the
 * mount is detached, and if files stay open on it the FUSE connection is
 * aborted so the loop ends anyway. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs-internal.h"
#include "fsutil.h"
#include "log.h"
#include "macro.h"

/* Whether path is a FUSE mount; *ret_minor its connection number. */
static bool fuse_mount_at(const char *path, unsigned *ret_minor)
{
    char fstype[64] = "";

    return mount_point_type(path, fstype, sizeof(fstype), ret_minor) > 0 &&
           strncmp(fstype, "fuse", 4) == 0;
}

static int run_fusermount_unmount(const char *path)
{
    pid_t pid = fork();
    int status;

    if (pid < 0)
        return -errno;
    if (pid == 0) {
        execlp("fusermount3", "fusermount3", "-u", "-z", "-q", "--", path, (char *)NULL);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0)
        return -errno;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int noidfs_clear_stale(const char *mountpoint, struct nerr *e)
{
    _cleanup_free_ char *abs = path_absolute_keep_last(mountpoint);
    struct statfs sf;
    unsigned minor;
    int r;

    if (!abs)
        return nerr_set(e, -errno, "%s: %s", mountpoint, strerror(errno));
    if (!fuse_mount_at(abs, &minor))
        return 0; /* not a FUSE mount: mounting tells whether the path is usable */
    /* statfs, not stat: the kernel answers stat from its attribute cache
     * for a while after the server died, statfs always asks the server */
    if (statfs(abs, &sf) == 0)
        return nerr_set(e, -EBUSY,
                        "%s is a FUSE mount already (unmount it first: "
                        "fusermount3 -u %s)",
                        abs, abs);
    if (errno != ENOTCONN && errno != ECONNABORTED)
        return nerr_set(e, -errno, "%s: %s", abs, strerror(errno));
    /* the file system server behind it died: detach the dead mount */
    r = geteuid() == 0 ? (umount2(abs, MNT_DETACH) < 0 ? -errno : 0) : run_fusermount_unmount(abs);
    if (r < 0)
        return nerr_set(e, r, "%s is a dead FUSE mount and could not be detached: %s", abs,
                        strerror(-r));
    log_warn("noidfs: %s was a dead mount (its server had stopped); detached it", abs);
    return 1;
}

int noidfs_mount(const struct noidfs_ops *ops, void *binding, const struct noidfs_options *o,
                 struct noidfs **ret, struct nerr *e)
{
    struct noidfs *fs = NULL;
    char opts[512];
    int r;

    fs = calloc(1, sizeof(*fs));
    if (!fs)
        return nerr_set(e, -ENOMEM, "out of memory");
    fs->ops = ops;
    fs->b = binding;
    fs->multi_user = ops->list_users != NULL;
    fs->mounted_at = time(NULL);
    fs->exit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fs->exit_fd < 0) {
        r = nerr_set(e, -errno, "eventfd: %s", strerror(errno));
        free(fs);
        return r;
    }
    fs->per_user_owners = o->per_user_owners;
    fs->uid = o->uid;
    fs->gid = o->gid;
    fs->cache_secs = o->cache_secs > 0 ? o->cache_secs : 1.0;
    pthread_mutex_init(&fs->handles_lock, NULL);
    pthread_mutex_init(&fs->owners_lock, NULL);
    pthread_mutex_init(&fs->blocking_lock, NULL);
    pthread_mutex_init(&fs->inval_lock, NULL);
    pthread_cond_init(&fs->inval_cond, NULL);
    fs->mountpoint = path_absolute_keep_last(o->mountpoint);
    fs->nodes = nodes_new(fs->multi_user);
    fs->vms = vmstate_new(fs->cache_secs);
    if (!fs->mountpoint || !fs->nodes || !fs->vms) {
        r = nerr_set(e, -ENOMEM, "%s: %s", o->mountpoint,
                     fs->mountpoint ? "out of memory" : strerror(errno));
        goto fail;
    }
    r = noidfs_clear_stale(fs->mountpoint, e);
    if (r < 0)
        goto fail;

    snprintf(opts, sizeof(opts), "fsname=%s,subtype=noidfs,default_permissions%s",
             o->fsname ? o->fsname : "noid", o->per_user_owners ? ",allow_other" : "");
    char *argv[] = {"noidfs", "-o", opts, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, argv);
    fs->se = fuse_session_new(&args, &fs_ll_ops, sizeof(fs_ll_ops), fs);
    fuse_opt_free_args(&args);
    if (!fs->se) {
        r = nerr_set(e, -EIO, "cannot start a FUSE session (see the messages above)");
        goto fail;
    }
    if (fuse_session_mount(fs->se, fs->mountpoint) != 0) {
        r = nerr_set(e, -EIO, "cannot mount on %s (does it exist? is /dev/fuse usable%s?)",
                     fs->mountpoint,
                     o->per_user_owners ? "; allow_other needs root or user_allow_other in "
                                          "/etc/fuse.conf"
                                        : "");
        fuse_session_destroy(fs->se);
        fs->se = NULL;
        goto fail;
    }
    *ret = fs;
    return 0;
fail:
    noidfs_free(fs);
    return r;
}

/* The helper threads of a mount, started with the loop (after a fork). */
static int helpers_start(struct noidfs *fs)
{
    sigset_t all, old;
    int r;

    if (fs->inval_started)
        return 0;
    r = console_watch_start(fs);
    if (r < 0)
        return r;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    r = -pthread_create(&fs->inval_thread, NULL, inval_main, fs);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r == 0)
        fs->inval_started = true;
    return r;
}

int noidfs_run(struct noidfs *fs)
{
    struct fuse_loop_config *cfg;
    int r;

    r = helpers_start(fs);
    if (r < 0)
        return r;
    cfg = fuse_loop_cfg_create();
    if (!cfg)
        return -ENOMEM;
    fuse_loop_cfg_set_max_threads(cfg, FS_MAX_THREADS);
    fuse_loop_cfg_set_idle_threads(cfg, 8);
    r = fuse_session_loop_mt(fs->se, cfg);
    fuse_loop_cfg_destroy(cfg);
    return r < 0 ? r : r > 0 ? -EIO : 0;
}

static void *loop_main(void *arg)
{
    struct noidfs *fs = arg;
    int r = noidfs_run(fs);

    if (r < 0 && !fs->exiting)
        log_error("noidfs: the session on %s ended: %s", fs->mountpoint, strerror(-r));
    return NULL;
}

int noidfs_start(struct noidfs *fs, struct nerr *e)
{
    int r = helpers_start(fs);

    if (r < 0)
        return nerr_set(e, r, "noidfs: cannot start its threads: %s", strerror(-r));
    r = -pthread_create(&fs->loop_thread, NULL, loop_main, fs);
    if (r < 0)
        return nerr_set(e, r, "noidfs: cannot start its thread: %s", strerror(-r));
    fs->loop_started = true;
    return 0;
}

void noidfs_exit(struct noidfs *fs)
{
    uint64_t one = 1;

    fs->exiting = 1;
    /* blocked console reads poll it; never drained, so it stays readable */
    if (fs->exit_fd >= 0 && write(fs->exit_fd, &one, sizeof(one)) < 0) {
        /* full or closed: the flag is set either way */
    }
    if (fs->se)
        fuse_session_exit(fs->se);
}

/* Wake every request that blocks on a handle (console reads, streaming
 * reads, closes waiting for a command) so the loop can end. */
static void wake_all(struct noidfs *fs)
{
    pthread_mutex_lock(&fs->handles_lock);
    for (struct handle *h = fs->handles; h; h = h->next) {
        if (h->kind == H_CONSOLE)
            console_file_wake(h);
        else if (h->kind == H_EXEC)
            exec_file_wake(h);
    }
    pthread_mutex_unlock(&fs->handles_lock);
}

/* Abort the FUSE connection: every request still queued fails and the
 * loop's reads return, even while files stay open (root only). */
static void abort_connection(unsigned minor)
{
    char path[64];
    int fd;

    snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/abort", minor);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (write(fd, "1", 1) < 0)
        log_warn("noidfs: abort %s: %s", path, strerror(errno));
    close(fd);
}

/* A request on the mount from a thread of its own: the worker that serves
 * it sees the exit flag and ends the loop (the idle workers wait in read
 * and would not notice).  Detached: it must not hold the caller up. */
static void *poke_main(void *arg)
{
    char *path = arg;
    struct statfs sf;

    (void)!statfs(path, &sf);
    free(path);
    return NULL;
}

static void poke(const char *mountpoint)
{
    char *path = strdup(mountpoint);
    sigset_t all, old;
    pthread_t t;

    if (!path)
        return;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    if (pthread_create(&t, NULL, poke_main, path) == 0)
        pthread_detach(t);
    else
        free(path);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void noidfs_free(struct noidfs *fs)
{
    unsigned minor = 0;

    if (!fs)
        return;
    noidfs_exit(fs);
    if (fs->loop_started) {
        bool mounted = fuse_mount_at(fs->mountpoint, &minor);
        struct timespec deadline;

        wake_all(fs);
        poke(fs->mountpoint);
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += 3;
        if (pthread_timedjoin_np(fs->loop_thread, NULL, &deadline) != 0) {
            /* a request does not end (a binding call that hangs): fail
             * every request of the connection so the loop can */
            log_warn("noidfs: requests on %s still running after 3 s; aborting the connection",
                     fs->mountpoint);
            if (mounted)
                abort_connection(minor);
            wake_all(fs);
            pthread_join(fs->loop_thread, NULL);
        }
    }
    /* no request runs now: release what the kernel never will */
    fs_handles_release_all(fs);
    /* closes /dev/fuse and detaches the mount (lazily: a shell's working
     * directory there does not keep it) */
    if (fs->se)
        fuse_session_unmount(fs->se);
    console_watch_stop(fs);
    if (fs->inval_started) {
        pthread_mutex_lock(&fs->inval_lock);
        fs->inval_stop = true;
        pthread_cond_signal(&fs->inval_cond);
        pthread_mutex_unlock(&fs->inval_lock);
        pthread_join(fs->inval_thread, NULL);
    }
    while (fs->inval_head) {
        struct inval *iv = fs->inval_head;
        fs->inval_head = iv->next;
        free(iv->name);
        free(iv);
    }
    if (fs->se)
        fuse_session_destroy(fs->se);
    vmstate_free(fs->vms);
    nodes_free(fs->nodes);
    pthread_cond_destroy(&fs->inval_cond);
    pthread_mutex_destroy(&fs->inval_lock);
    pthread_mutex_destroy(&fs->handles_lock);
    pthread_mutex_destroy(&fs->owners_lock);
    pthread_mutex_destroy(&fs->blocking_lock);
    if (fs->exit_fd >= 0)
        close(fs->exit_fd);
    free(fs->mountpoint);
    free(fs);
}
