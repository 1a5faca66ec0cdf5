/* console_log.c — the cap on each VM's serial console log.
 *
 * The VMM appends the guest's serial output to <vm_dir>/serial.log through
 * an O_APPEND descriptor it holds for the life of the VM (QEMU: the console
 * chardev's logfile=, logappend=on; Firecracker: its stdout), so a guest
 * printing without end would fill the disk.  A watcher thread, started by
 * engine_open in server mode, keeps every
 * storage/users/<uid>/vms/<name>/serial.log at most max_console_log_bytes
 * (the "cap"): when it is over, its content moves to serial.log.1, replacing
 * the older one, and serial.log starts again near empty.
 *
 * The bound: one VM's console output on disk is at most the cap in
 * serial.log.1 (when more than the cap moves out at once — the server was
 * down, or a fast guest — only the newest cap bytes are kept) plus the cap
 * in serial.log, plus what the guest printed since the last check.  Checks
 * follow writes within CONSOLE_LOG_SETTLE_MS (inotify: IN_MODIFY on each
 * serial.log, IN_CREATE/IN_MOVED_TO on the directories above so that new
 * users, VMs and logs are watched as they appear), and a rescan every
 * CONSOLE_LOG_RESCAN_MS catches what inotify missed (queue overflow, a
 * busy VM, no watch left).  The first scan runs at start, so a log that
 * grew while the server was down is handled at once.
 *
 * Why not rename serial.log: the VMM keeps writing to the inode it opened,
 * so a renamed file would go on growing under its new name.  The file is
 * shortened in place instead:
 *   - lossless, where the file system has FALLOC_FL_COLLAPSE_RANGE (ext4,
 *     XFS): copy the head [0, L) to serial.log.1, then collapse exactly that
 *     range out of the front.  L is the last block boundary below the size
 *     (the call needs block multiples and a range ending before EOF), so up
 *     to a block stays in serial.log — at most the cap, as a block larger
 *     than the cap disables this path.  An O_APPEND write and the collapse
 *     both hold the inode lock, so every byte written meanwhile lies beyond
 *     L and is kept.  Nothing is lost; a line may be split between the two
 *     files.
 *   - copytruncate elsewhere (btrfs, tmpfs: EOPNOTSUPP), as logrotate does:
 *     copy, catch up with what arrived during the copy (a few rounds), then
 *     ftruncate to 0; the VMM's next O_APPEND write lands at offset 0, no
 *     hole.  What the guest prints between the last catch-up and the
 *     truncate (microseconds) is lost — the price of not owning the
 *     writer's descriptor.
 * serial.log.1 is written as .serial.log.1.partial and renamed into place
 * before serial.log is shortened: a crash leaves a whole old or new .1
 * (the start-up sweep removes a leftover .partial) and at worst bytes in
 * both files, never in neither.
 *
 * Concurrency: the engine creates, restores (swapping directories) and
 * destroys VM directories on other threads, and a checkpoint copies
 * serial.log.  A rotation therefore runs under the VM's lifecycle lock,
 * taken with trylock — a VM busy with one of those is skipped and retried
 * at the next rescan, and the watcher never waits on a boot — and only for
 * a directory whose VM row exists.  Paths from events are hints: each is
 * checked again by path, and ENOENT anywhere just means "gone".
 *
 * Safety: only names directly in a VM directory are touched (serial.log,
 * serial.log.1, .serial.log.1.partial), every open is O_NOFOLLOW relative
 * to a directory opened O_NOFOLLOW, serial.log must be a regular file with
 * one link, and directories whose name starts with '.' (staging areas of a
 * restore, temporary dirs) are not VMs.  Golden build directories live
 * outside users/ and are not watched.
 *
 * Reading (engine_vm_console_log, for GET .../console.log and noidfs's
 * console.log file) takes no lock: a rotation seen meanwhile (serial.log.1
 * replaced) makes the read start again. */
#include "console_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine-internal.h"
#include "fsutil.h"
#include "log.h"
#include "names.h"
#include "timeutil.h"
#include "vm-internal.h"

#define PARTIAL_NAME "." VM_FILE_SERIAL_LOG_OLD ".partial" /* a dot-name: swept at start */
/* copytruncate: rounds of catching up with the writer before truncating */
#define CATCHUP_ROUNDS 8

/* The levels of storage/users/<uid>/vms/<name>/serial.log: each directory
 * is watched for the next one appearing (IN_CREATE, IN_MOVED_TO), the log
 * file itself for writes (IN_MODIFY).  Not IN_MODIFY on the VM directory:
 * that would also report every write to the VM's disk, and those events,
 * alternating with the log's, would not coalesce in the queue. */
enum level { LVL_STORAGE, LVL_USERS, LVL_USER, LVL_VMS, LVL_VM, LVL_LOG };

struct watch {
    int wd;
    enum level level;
    bool dirty; /* LVL_LOG: a write was reported since the last check */
    char *path; /* the directory (for LVL_LOG: the VM directory) where it was
                 * when last seen: a hint, checked again before use */
};

/* All fields belong to the watcher thread, except stop_fd (written by
 * console_log_stop) and what is set before the thread starts. */
struct console_log {
    struct engine *eng;
    long long cap;
    int ino_fd;  /* -1 without inotify: rescans only */
    int stop_fd; /* eventfd: readable = stop */
    pthread_t thread;
    struct watch *w;
    size_t nw, w_alloc;
    bool watch_warned;
};

/* ---- one rotation ---- */

static int install_partial(int dir_fd)
{
    return renameat(dir_fd, PARTIAL_NAME, dir_fd, VM_FILE_SERIAL_LOG_OLD) < 0 ? -errno : 0;
}

/* serial.log.1 grew past the cap while catching up: keep its newest cap bytes. */
static int trim_old(int dir_fd, int old, long long cap)
{
    _cleanup_close_ int out = -1;
    struct stat st;
    int r;

    if (fstat(old, &st) < 0)
        return -errno;
    if (st.st_size <= cap)
        return 0;
    out = openat(dir_fd, PARTIAL_NAME, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0)
        return -errno;
    r = fd_copy_range(old, st.st_size - cap, out, 0, cap);
    if (r < 0)
        return r;
    return install_partial(dir_fd);
}

int console_log_rotate(int dir_fd, long long cap, bool allow_collapse,
                       struct console_log_rotation *ret)
{
    _cleanup_close_ int fd = -1, out = -1;
    struct console_log_rotation rot = {0};
    struct stat st;
    off_t blk, head, end, start, done;
    int r;

    /* O_NONBLOCK: a FIFO planted under the name must not block the open */
    fd =
        openat(dir_fd, VM_FILE_SERIAL_LOG, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0)
        return errno == ELOOP ? -EPERM : -errno;
    if (fstat(fd, &st) < 0)
        return -errno;
    /* a second link would be a file outside the VM that we would shorten */
    if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
        return -EPERM;
    if (st.st_size <= cap)
        return 0;
    rot.size = st.st_size;
    /* O_RDWR: trim_old reads it back */
    out = openat(dir_fd, PARTIAL_NAME, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0)
        return -errno;
    (void)fchmod(out, st.st_mode & 0666); /* readable by whoever may read serial.log */

    blk = st.st_blksize > 0 ? st.st_blksize : 4096;
    /* lossless: the head up to the last block boundary below the size */
    head = allow_collapse && blk <= cap ? (st.st_size - 1) / blk * blk : 0;
    end = head > 0 ? head : st.st_size;
    start = end > cap ? end - cap : 0;
    r = fd_copy_range(fd, start, out, 0, end - start);
    /* in place before serial.log is shortened (a crash duplicates, never
     * loses), and not between the catch-up and the truncate below */
    if (r >= 0)
        r = install_partial(dir_fd);
    if (r < 0)
        goto fail;
    if (head > 0 && fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, head) == 0) {
        rot.moved = head;
        rot.kept = head - start;
        rot.lossless = true;
        *ret = rot;
        return 1;
    }
    /* copytruncate: collapsing is not for this file system (EOPNOTSUPP) or
     * this file (EINVAL); .1 goes on from end */
    done = end;
    /* catch up, then truncate at once: what arrives in between is lost */
    for (int round = 0; round < CATCHUP_ROUNDS; round++) {
        if (fstat(fd, &st) < 0) {
            r = -errno;
            goto fail;
        }
        if (st.st_size <= done)
            break;
        r = fd_copy_range(fd, done, out, done - start, st.st_size - done);
        if (r < 0)
            goto fail;
        done = st.st_size;
    }
    if (ftruncate(fd, 0) < 0) {
        r = -errno;
        goto fail;
    }
    r = trim_old(dir_fd, out, cap);
    if (r < 0)
        goto fail;
    rot.moved = done;
    rot.kept = MIN((long long)done - start, cap);
    *ret = rot;
    return 1;
fail:
    unlinkat(dir_fd, PARTIAL_NAME, 0);
    return r;
}

/* ---- the watcher ---- */

static struct watch *watch_find(struct console_log *cl, int wd)
{
    for (size_t i = 0; i < cl->nw; i++)
        if (cl->w[i].wd == wd)
            return &cl->w[i];
    return NULL;
}

static void watch_remove(struct console_log *cl, struct watch *w)
{
    free(w->path);
    *w = cl->w[--cl->nw];
}

/* Watch target (a directory of the given level, or a VM's serial.log) and
 * remember it under path; an inode watched already gets its path
 * refreshed (it may have been renamed).  NULL when it is not watched. */
static struct watch *watch_add(struct console_log *cl, const char *target, const char *path,
                               enum level level)
{
    uint32_t mask = level == LVL_LOG ? IN_MODIFY : IN_CREATE | IN_MOVED_TO | IN_ONLYDIR;
    struct watch *w;
    char *p;
    int wd;

    if (cl->ino_fd < 0)
        return NULL;
    wd = inotify_add_watch(cl->ino_fd, target, mask | IN_DONT_FOLLOW);
    if (wd < 0) {
        if (errno == ENOSPC && !cl->watch_warned) {
            cl->watch_warned = true;
            log_warn("console log: out of inotify watches (fs.inotify.max_user_watches); "
                     "some serial.log files are checked every %d ms only",
                     CONSOLE_LOG_RESCAN_MS);
        }
        return NULL;
    }
    w = watch_find(cl, wd);
    if (w) {
        if (strcmp(w->path, path) != 0 && (p = strdup(path))) {
            free(w->path);
            w->path = p;
            w->level = level;
        }
        return w;
    }
    if (cl->nw == CONSOLE_LOG_MAX_WATCHES || !(p = strdup(path))) {
        inotify_rm_watch(cl->ino_fd, wd);
        return NULL;
    }
    if (cl->nw == cl->w_alloc) {
        size_t n = cl->w_alloc ? cl->w_alloc * 2 : 64;
        struct watch *nw = realloc(cl->w, n * sizeof(*nw));
        if (!nw) {
            free(p);
            inotify_rm_watch(cl->ino_fd, wd);
            return NULL;
        }
        cl->w = nw;
        cl->w_alloc = n;
    }
    w = &cl->w[cl->nw++];
    *w = (struct watch){.wd = wd, .level = level, .path = p};
    return w;
}

/* Watch the serial.log of the VM directory dir. */
static struct watch *watch_add_log(struct console_log *cl, const char *dir)
{
    _cleanup_free_ char *logp = path_join(dir, VM_FILE_SERIAL_LOG);

    return logp ? watch_add(cl, logp, dir, LVL_LOG) : NULL;
}

/* Whether name, inside a directory of level parent, is part of the tree. */
static bool child_wanted(enum level parent, const char *name)
{
    switch (parent) {
    case LVL_STORAGE:
        return streq(name, "users");
    case LVL_USER:
        return streq(name, "vms");
    case LVL_USERS:
    case LVL_VMS:
        /* user ids and VM names never start with '.'; staging dirs do */
        return name[0] != '.';
    case LVL_VM:
    case LVL_LOG:
        return false;
    default:
        return false;
    }
}

/* Check one VM directory; rotate its serial.log under the VM's lifecycle
 * lock when it is over the cap.  Never blocks on that lock. */
static void check_vm(struct console_log *cl, const char *dir)
{
    struct engine *eng = cl->eng;
    _cleanup_free_ char *logp = path_join(dir, VM_FILE_SERIAL_LOG);
    _cleanup_close_ int dfd = -1;
    char uid[DB_ID_LEN + 1], name[VM_NAME_MAX + 1];
    struct console_log_rotation rot;
    struct db_vm vm, again;
    struct vm_rt *rt;
    struct stat st;
    size_t slen = strlen(eng->storage_dir);
    const char *rel, *slash;
    bool gone;
    int r;

    /* no lock needed: it only ever drops the head of the log of whichever
     * VMM the directory holds */
    vmm_log_cap(dir);
    if (!logp || fstatat(AT_FDCWD, logp, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
        st.st_size <= cl->cap)
        return;
    /* dir is <storage>/users/<uid>/vms/<name> */
    if (strncmp(dir, eng->storage_dir, slen) != 0 || strncmp(dir + slen, "/users/", 7) != 0)
        return;
    rel = dir + slen + 7;
    slash = strchr(rel, '/');
    if (!slash || (size_t)(slash - rel) > DB_ID_LEN || strncmp(slash, "/vms/", 5) != 0 ||
        strlen(slash + 5) > VM_NAME_MAX || strchr(slash + 5, '/'))
        return;
    snprintf(uid, sizeof(uid), "%.*s", (int)(slash - rel), rel);
    snprintf(name, sizeof(name), "%s", slash + 5);

    if (db_vm_get(eng->db, uid, name, &vm) < 0)
        return; /* no VM (yet, or any more) */
    rt = engine_rt_get(eng, vm.id);
    if (!rt)
        return;
    if (pthread_mutex_trylock(&rt->lifecycle) != 0) {
        log_debug("console log: %s/%s is busy; its serial.log (%lld bytes) waits for the "
                  "next scan",
                  uid, name, (long long)st.st_size);
        engine_rt_put(eng, rt);
        return;
    }
    /* re-read under the lock: a destroy (or destroy + create) may have won */
    gone = db_vm_get(eng->db, uid, name, &again) < 0 || again.id != vm.id;
    if (!gone) {
        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        r = dfd < 0 ? -errno : console_log_rotate(dfd, cl->cap, true, &rot);
        if (r > 0)
            log_info("console log: %s/%s: serial.log reached %lld bytes "
                     "(max_console_log_bytes = %lld); rotated %lld bytes out (%s), the "
                     "newest %lld kept in serial.log.1",
                     uid, name, rot.size, cl->cap, rot.moved,
                     rot.lossless ? "lossless" : "copytruncate", rot.kept);
        else if (r < 0 && r != -ENOENT)
            log_warn("console log: %s/%s: cannot rotate serial.log: %s", uid, name, strerror(-r));
    }
    pthread_mutex_unlock(&rt->lifecycle);
    engine_rt_put(eng, rt);
    if (gone)
        engine_rt_forget(eng, vm.id); /* ids are never reused: drop our entry */
}

/* Watch path (of level) and everything under it that belongs to the tree;
 * check the VM directories met. */
static void scan_tree(struct console_log *cl, const char *path, enum level level)
{
    DIR *d;
    struct dirent *de;
    int fd;

    watch_add(cl, path, path, level);
    if (level == LVL_VM) {
        watch_add_log(cl, path);
        check_vm(cl, path);
        return;
    }
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return; /* not there (yet), or gone */
    d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    while ((de = readdir(d))) {
        if (streq(de->d_name, ".") || streq(de->d_name, "..") ||
            (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) || !child_wanted(level, de->d_name))
            continue;
        _cleanup_free_ char *child = path_join(path, de->d_name);
        if (child)
            scan_tree(cl, child, level + 1);
    }
    closedir(d);
}

/* Read every queued event; returns whether a full rescan is needed. */
static bool drain_events(struct console_log *cl)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool rescan = false;

    for (;;) {
        ssize_t n = read(cl->ino_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EAGAIN: all read */
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            struct watch *w;
            p += sizeof(*ev) + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                rescan = true;
                continue;
            }
            w = watch_find(cl, ev->wd);
            if (!w)
                continue;
            if (ev->mask & IN_IGNORED) { /* the file or directory is gone */
                watch_remove(cl, w);
                continue;
            }
            if (w->level == LVL_LOG) {
                if (ev->mask & IN_MODIFY)
                    w->dirty = true;
                continue;
            }
            if (ev->len == 0)
                continue;
            if (w->level == LVL_VM) {
                /* a new serial.log (the VMM started, a restore copied one) */
                if (streq(ev->name, VM_FILE_SERIAL_LOG)) {
                    _cleanup_free_ char *dir = strdup(w->path);
                    struct watch *lw = dir ? watch_add_log(cl, dir) : NULL;
                    if (lw)
                        lw->dirty = true;
                }
            } else if ((ev->mask & IN_ISDIR) && child_wanted(w->level, ev->name)) {
                /* a new directory: its children may predate the watch, so
                 * scan it (scan_tree may move cl->w: copy what we need) */
                enum level child_level = w->level + 1;
                _cleanup_free_ char *child = path_join(w->path, ev->name);
                if (child)
                    scan_tree(cl, child, child_level);
            }
        }
    }
    for (size_t i = 0; i < cl->nw; i++)
        if (cl->w[i].dirty) {
            cl->w[i].dirty = false;
            check_vm(cl, cl->w[i].path);
        }
    return rescan;
}

static bool stop_requested(struct console_log *cl, int timeout_ms)
{
    struct pollfd p = {.fd = cl->stop_fd, .events = POLLIN};

    return poll(&p, 1, timeout_ms) > 0;
}

static void *watch_main(void *arg)
{
    struct console_log *cl = arg;
    int64_t next_scan = 0; /* the first scan at once */

    for (;;) {
        int64_t now = time_mono_ms();
        struct pollfd p[2] = {{.fd = cl->stop_fd, .events = POLLIN},
                              {.fd = cl->ino_fd, .events = POLLIN}};
        int n;

        if (now >= next_scan) {
            scan_tree(cl, cl->eng->storage_dir, LVL_STORAGE);
            next_scan = time_mono_ms() + CONSOLE_LOG_RESCAN_MS;
            continue;
        }
        n = poll(p, cl->ino_fd >= 0 ? 2 : 1, (int)(next_scan - now));
        if (n < 0 && errno != EINTR) {
            log_warn("console log: poll: %s", strerror(errno));
            if (stop_requested(cl, CONSOLE_LOG_RESCAN_MS))
                break;
            continue;
        }
        if (n > 0 && p[0].revents)
            break;
        if (n > 0 && (p[1].revents & POLLIN)) {
            /* QEMU writes the console byte by byte: let the burst coalesce
             * into one queued event instead of waking per byte */
            if (stop_requested(cl, CONSOLE_LOG_SETTLE_MS))
                break;
            if (drain_events(cl))
                next_scan = 0;
        }
    }
    return NULL;
}

int console_log_start(struct engine *eng)
{
    struct console_log *cl = calloc(1, sizeof(*cl));
    int r;

    if (!cl)
        return -ENOMEM;
    cl->eng = eng;
    cl->cap = eng->cfg->max_console_log_bytes;
    cl->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (cl->stop_fd < 0) {
        r = -errno;
        free(cl);
        return r;
    }
    cl->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (cl->ino_fd < 0)
        log_warn("console log: inotify unavailable (%s); serial.log files are checked every "
                 "%d ms only",
                 strerror(errno), CONSOLE_LOG_RESCAN_MS);
    r = -pthread_create(&cl->thread, NULL, watch_main, cl);
    if (r < 0) {
        if (cl->ino_fd >= 0)
            close(cl->ino_fd);
        close(cl->stop_fd);
        free(cl);
        return r;
    }
    eng->console_log = cl;
    return 0;
}

void console_log_stop(struct engine *eng)
{
    struct console_log *cl = eng->console_log;
    uint64_t one = 1;

    if (!cl)
        return;
    if (write(cl->stop_fd, &one, sizeof(one)) < 0)
        log_warn("console log: cannot signal the watcher: %s", strerror(errno));
    pthread_join(cl->thread, NULL);
    for (size_t i = 0; i < cl->nw; i++)
        free(cl->w[i].path);
    free(cl->w);
    if (cl->ino_fd >= 0)
        close(cl->ino_fd);
    close(cl->stop_fd);
    free(cl);
    eng->console_log = NULL;
}

/* ---- reading the log (engine_vm_console_log) ---- */

/* Beyond the cap, what a reader takes: the guest may have printed this
 * much since the watcher's last check (it follows writes within
 * CONSOLE_LOG_SETTLE_MS, so it takes a very fast guest or a server that
 * was down to get near it).  A longer serial.log yields its newest bytes. */
#define CONSOLE_LOG_READ_SLACK (1u * 1024 * 1024)
/* A rotation seen during a read makes it start again, this many times. */
#define CONSOLE_LOG_READ_TRIES 3

/* serial.log.1's inode, 0 when there is none: a rotation renames a new
 * one into place before it shortens serial.log. */
static ino_t old_log_ino(int dir_fd)
{
    struct stat st;

    return fstatat(dir_fd, VM_FILE_SERIAL_LOG_OLD, &st, AT_SYMLINK_NOFOLLOW) < 0 ? 0 : st.st_ino;
}

/* At most max bytes of serial.log in dir_fd: all of it, or its newest max
 * bytes.  An empty log for a VM without one (yet). */
static int read_serial_log(int dir_fd, size_t max, char **ret, size_t *ret_len)
{
    _cleanup_close_ int fd = -1;
    _cleanup_free_ char *data = NULL;
    struct stat st;
    size_t want, got = 0;
    off_t off;

    fd = openat(dir_fd, VM_FILE_SERIAL_LOG, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT)
        return -errno;
    if (fd >= 0 && fstat(fd, &st) < 0)
        return -errno;
    if (fd >= 0 && !S_ISREG(st.st_mode))
        return -EPERM;
    want = fd < 0 ? 0 : (size_t)MIN((unsigned long long)st.st_size, (unsigned long long)max);
    off = fd < 0 ? 0 : st.st_size - (off_t)want;
    data = malloc(want + 1); /* never 0 bytes: the caller gets a buffer */
    if (!data)
        return -ENOMEM;
    /* what was there at the fstat: later bytes are left for the next read,
     * and a truncate meanwhile just makes this shorter */
    while (got < want) {
        ssize_t n = pread(fd, data + got, want - got, off + (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    data[got] = '\0';
    *ret = TAKE_PTR(data);
    *ret_len = got;
    return 0;
}

int engine_vm_console_log(struct engine *eng, const struct db_user *u, const char *name, char **ret,
                          size_t *ret_len, struct nerr *e)
{
    _cleanup_free_ char *dir = NULL;
    _cleanup_close_ int dir_fd = -1;
    size_t max =
        (size_t)MIN((unsigned long long)eng->cfg->max_console_log_bytes + CONSOLE_LOG_READ_SLACK,
                    (unsigned long long)SIZE_MAX / 2);
    struct db_vm vm;
    int r;

    r = vm_lookup(eng, u, name, &vm, e);
    if (r < 0)
        return r;
    dir = engine_vm_dir(eng, vm.user_id, vm.name);
    if (!dir)
        return -ENOMEM;
    /* No lifecycle lock: a read must not wait for a boot or a checkpoint.
     * A VM being created or restored may have no directory for a moment:
     * its log is then empty. */
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dir_fd < 0 && errno != ENOENT)
        return nerr_set(e, -errno, "cannot open the directory of VM '%s': %s", name,
                        strerror(errno));
    if (dir_fd < 0) {
        *ret = strdup("");
        *ret_len = 0;
        return *ret ? 0 : -ENOMEM;
    }
    for (int i = 0;; i++) {
        ino_t before = old_log_ino(dir_fd);
        char *data = NULL;
        size_t len = 0;

        r = read_serial_log(dir_fd, max, &data, &len);
        if (r < 0)
            return nerr_set(e, r, "cannot read the console log of VM '%s': %s", name, strerror(-r));
        /* a rotation moved bytes out of serial.log while we read it: what
         * we have may miss a part; read again (the new log is short) */
        if (old_log_ino(dir_fd) != before && i + 1 < CONSOLE_LOG_READ_TRIES) {
            free(data);
            continue;
        }
        *ret = data;
        *ret_len = len;
        return 0;
    }
}
