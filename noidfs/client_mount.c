/* client_mount.c — see client_mount.h.
 *
 * Order matters: the server is checked in the calling process, so that
 * failure is printed where the user sees it; then it forks, and the child
 * mounts and serves (the mount and libfuse's threads belong to the process
 * that serves).  The parent returns only once the child says it is about
 * to serve, through a pipe: one NUL byte for "ready", or the reason it
 * could not (a failed mount included), which the parent prints. */
#include "client_mount.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fsutil.h"
#include "http_client.h"
#include "log.h"
#include "macro.h"
#include "noidfs.h"
#include "rest_ops.h"

/* A log file name's part made from the mount point. */
#define CLIENT_LOG_NAME_MAX 180
/* The child's message when it cannot start serving. */
#define CLIENT_READY_MSG_MAX 512

static void print_error(const char *prefix, const char *fmt, ...) _printf_(2, 3);

static void print_error(const char *prefix, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", prefix);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ~/.noid/logs/noidfs-<mount point with '/' and odd bytes as '_'>.log,
 * creating the directories (0700).  malloc'd; NULL and *e on failure. */
static char *default_log_path(const char *abs_dir, struct nerr *e)
{
    const char *home = getenv("HOME");
    _cleanup_free_ char *dir = NULL;
    char name[CLIENT_LOG_NAME_MAX + 1];
    size_t n = 0;
    char *path;
    int r;

    if (!home || !*home)
        home = "/";
    for (const char *p = abs_dir; *p && n < CLIENT_LOG_NAME_MAX; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-' || c == '_';
        if (n == 0 && c == '/')
            continue;
        name[n++] = ok ? c : '_';
    }
    name[n] = '\0';
    if (n == 0)
        snprintf(name, sizeof(name), "root");
    if (asprintf(&dir, "%s/.noid/logs", home) < 0) {
        dir = NULL;
        nerr_set(e, -ENOMEM, "out of memory");
        return NULL;
    }
    r = mkdir_p(dir, 0700);
    if (r < 0) {
        nerr_set(e, r, "cannot create %s: %s", dir, strerror(-r));
        return NULL;
    }
    if (asprintf(&path, "%s/noidfs-%s.log", dir, name) < 0) {
        nerr_set(e, -ENOMEM, "out of memory");
        return NULL;
    }
    return path;
}

/* The mount the signal handlers end (set once, before they are installed). */
static struct noidfs *signalled_fs;

static void on_signal(int sig)
{
    if (signalled_fs)
        noidfs_exit(signalled_fs);
}

static void install_signals(struct noidfs *fs)
{
    struct sigaction sa = {.sa_handler = on_signal};

    signalled_fs = fs;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Serve until unmounted; the process's exit status. */
static int serve(struct noidfs *fs, const char *dir)
{
    int r = noidfs_run(fs);

    if (r < 0)
        log_error("noidfs %s: the FUSE session failed: %s", dir, strerror(-r));
    else
        log_info("noidfs %s: unmounted", dir);
    noidfs_free(fs);
    return r < 0 ? 1 : 0;
}

/* Mount dir over the REST binding b; on failure msg says why. */
static int mount_dir(struct noidfs_rest *b, const char *dir, struct noidfs **ret, char *msg,
                     size_t msg_len)
{
    struct noidfs_options o = {
        .mountpoint = dir,
        .fsname = "noid",
        .uid = getuid(),
        .gid = getgid(),
        .per_user_owners = false,
    };
    struct nerr e = {0};
    int r = noidfs_mount(&noidfs_rest_ops, b, &o, ret, &e);

    if (r < 0)
        snprintf(msg, msg_len, "cannot mount %s: %s", dir, e.msg[0] ? e.msg : strerror(-r));
    return r;
}

/* Tell the parent (ready_fd) whether we serve: a NUL byte, or the reason. */
static void tell_parent(int ready_fd, const char *msg)
{
    (void)!write(ready_fd, msg ? msg : "", msg ? strlen(msg) : 1);
    close(ready_fd);
}

/* The background process: detach from the terminal and the caller, log to
 * log_fd, serve. */
static int run_child(struct noidfs *fs, const char *dir, const char *url, const char *user,
                     int log_fd, int ready_fd)
{
    char msg[CLIENT_READY_MSG_MAX];
    int null_fd;

    if (setsid() < 0 || chdir("/") < 0) {
        snprintf(msg, sizeof(msg), "cannot detach: %s", strerror(errno));
        goto fail;
    }
    null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0 || dup2(log_fd, STDOUT_FILENO) < 0 ||
        dup2(log_fd, STDERR_FILENO) < 0) {
        snprintf(msg, sizeof(msg), "cannot redirect output to the log: %s", strerror(errno));
        goto fail;
    }
    close(null_fd);
    close(log_fd);
    install_signals(fs);
    log_info("noidfs %s: serving %s as %s (pid %d)", dir, url, user, (int)getpid());
    tell_parent(ready_fd, NULL);
    return serve(fs, dir);
fail:
    tell_parent(ready_fd, msg);
    noidfs_free(fs);
    return 1;
}

/* The caller's side after fork: wait for the child's word. */
static int wait_child(pid_t pid, int ready_fd, const char *dir, const char *log_path)
{
    char msg[CLIENT_READY_MSG_MAX + 1];
    size_t len = 0;
    ssize_t n;

    while (len < sizeof(msg) - 1) {
        n = read(ready_fd, msg + len, sizeof(msg) - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(ready_fd);
    msg[len] = '\0';
    if (len == 1 && msg[0] == '\0') {
        printf("noidfs: mounted %s (log: %s)\n", dir, log_path);
        fflush(stdout);
        return 0;
    }
    if (len > 0)
        print_error("noidfs", "%s", msg);
    else
        print_error("noidfs", "the background process ended before serving %s; see %s", dir,
                    log_path);
    /* it unmounted (or died, and the kernel ends the mount once we exit too) */
    waitpid(pid, NULL, 0);
    return 1;
}

int noidfs_client_main(const char *url, const char *token, const char *dir, bool foreground,
                       const char *log_path)
{
    _cleanup_free_ char *abs_dir = NULL;
    _cleanup_free_ char *default_log = NULL;
    _cleanup_free_ char *user = NULL;
    _cleanup_close_ int log_fd = -1;
    struct noidfs_rest *check = NULL, *b = NULL;
    struct noidfs *fs = NULL;
    struct nerr e = {0};
    int ready[2] = {-1, -1};
    char msg[CLIENT_READY_MSG_MAX];
    pid_t pid;
    int r, status = 1;

    if (!url || !*url || !token || !*token) {
        print_error("noidfs", "not logged in: run 'noid auth setup --url URL --token TOKEN' "
                              "first (or set NOID_URL and NOID_TOKEN)");
        return 1;
    }
    abs_dir = path_absolute_keep_last(dir);
    if (!abs_dir) {
        print_error("noidfs", "cannot use %s: %m", dir);
        return 1;
    }
    http_global_init();

    /* the server first: a mount that can only answer ENOTCONN helps nobody */
    r = noidfs_rest_new(url, token, &check);
    if (r >= 0)
        r = noidfs_rest_whoami(check, &user, &e);
    noidfs_rest_free(check);
    if (r == -EACCES) {
        print_error("noidfs", "the server at %s refuses the token: %s (run 'noid auth setup')", url,
                    nerr_msg(&e));
        return 1;
    }
    if (r < 0) {
        print_error("noidfs", "cannot use the noid server at %s: %s", url,
                    e.msg[0] ? e.msg : strerror(-r));
        return 1;
    }

    if (log_path || !foreground) {
        if (!log_path) {
            default_log = default_log_path(abs_dir, &e);
            if (!default_log) {
                print_error("noidfs", "%s", nerr_msg(&e));
                return 1;
            }
            log_path = default_log;
        }
        log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
        if (log_fd < 0) {
            print_error("noidfs", "cannot open the log %s: %m", log_path);
            return 1;
        }
    }

    r = noidfs_rest_new(url, token, &b);
    if (r < 0) {
        print_error("noidfs", "out of memory");
        return 1;
    }
    if (foreground) {
        if (mount_dir(b, abs_dir, &fs, msg, sizeof(msg)) < 0) {
            print_error("noidfs", "%s", msg);
            goto out;
        }
        fprintf(stderr,
                "noidfs: mounted %s for %s (log: %s; Ctrl-C or 'noid umount %s' unmounts)\n",
                abs_dir, user, log_path ? log_path : "stderr", abs_dir);
        if (log_fd >= 0 && (dup2(log_fd, STDOUT_FILENO) < 0 || dup2(log_fd, STDERR_FILENO) < 0)) {
            print_error("noidfs", "cannot redirect output to %s: %m", log_path);
            noidfs_free(fs);
            goto out;
        }
        install_signals(fs);
        log_info("noidfs %s: serving %s as %s", abs_dir, url, user);
        status = serve(fs, abs_dir);
        goto out;
    }

    if (pipe2(ready, O_CLOEXEC) < 0) {
        print_error("noidfs", "pipe: %m");
        goto out;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        print_error("noidfs", "fork: %m");
        close(ready[0]);
        close(ready[1]);
        goto out;
    }
    if (pid == 0) {
        close(ready[0]);
        if (mount_dir(b, abs_dir, &fs, msg, sizeof(msg)) < 0) {
            tell_parent(ready[1], msg);
            goto out;
        }
        status = run_child(fs, abs_dir, url, user, TAKE_FD(log_fd), ready[1]);
        goto out;
    }
    close(ready[1]);
    status = wait_child(pid, ready[0], abs_dir, log_path);
out:
    noidfs_rest_free(b);
    return status;
}

int noidfs_client_umount(const char *dir, const char *prefix)
{
    _cleanup_free_ char *abs_dir = path_absolute_keep_last(dir);
    char fstype[64] = "";
    pid_t pid;
    int r, wstatus;

    if (!abs_dir) {
        print_error(prefix, "cannot use %s: %m", dir);
        return 1;
    }
    r = mount_point_type(abs_dir, fstype, sizeof(fstype), NULL);
    if (r < 0) {
        print_error(prefix, "cannot read the mount table: %s", strerror(-r));
        return 1;
    }
    if (r == 0) {
        print_error(prefix, "%s is not mounted", abs_dir);
        return 1;
    }
    if (strncmp(fstype, "fuse", 4) != 0) {
        print_error(prefix, "%s is a %s mount, not a noidfs one", abs_dir, fstype);
        return 1;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        print_error(prefix, "fork: %m");
        return 1;
    }
    if (pid == 0) {
        execlp("fusermount3", "fusermount3", "-u", "--", abs_dir, (char *)NULL);
        fprintf(stderr, "%s: cannot run fusermount3: %m\n", prefix);
        _exit(127);
    }
    while (waitpid(pid, &wstatus, 0) < 0) {
        if (errno != EINTR) {
            print_error(prefix, "waitpid: %m");
            return 1;
        }
    }
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)
        return 0;
    if (!(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 127))
        print_error(prefix, "fusermount3 -u %s failed (its message is above)", abs_dir);
    return 1;
}
