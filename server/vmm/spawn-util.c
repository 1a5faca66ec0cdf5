/* spawn-util.c — see spawn-util.h. */
#include "spawn-util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "macro.h"

extern char **environ;

static int setup(posix_spawn_file_actions_t *fa, posix_spawnattr_t *at, const struct spawn_opts *o,
                 int stdout_pipe)
{
    sigset_t none, all;
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;

    posix_spawn_file_actions_init(fa);
    posix_spawnattr_init(at);
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(at, &none);
    posix_spawnattr_setsigdefault(at, &all);
    if (o && o->new_session)
        flags |= POSIX_SPAWN_SETSID;
    posix_spawnattr_setflags(at, flags);
    if (o && o->cwd)
        posix_spawn_file_actions_addchdir_np(fa, o->cwd);
    if (o && o->stdin_path)
        posix_spawn_file_actions_addopen(fa, 0, o->stdin_path, O_RDWR, 0);
    else
        posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
    if (stdout_pipe >= 0)
        posix_spawn_file_actions_adddup2(fa, stdout_pipe, 1);
    else if (o && o->stdout_path)
        posix_spawn_file_actions_addopen(fa, 1, o->stdout_path, O_WRONLY | O_CREAT | O_APPEND,
                                         0600);
    else
        posix_spawn_file_actions_addopen(fa, 1, "/dev/null", O_WRONLY, 0);
    if (o && o->stderr_path)
        posix_spawn_file_actions_addopen(fa, 2, o->stderr_path, O_WRONLY | O_CREAT | O_APPEND,
                                         0600);
    else if (stdout_pipe >= 0)
        posix_spawn_file_actions_addopen(fa, 2, "/dev/null", O_WRONLY, 0);
    else
        posix_spawn_file_actions_adddup2(fa, 1, 2);
    return 0;
}

static int do_spawn(char *const argv[], const struct spawn_opts *o, int stdout_pipe,
                    pid_t *ret_pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    int r;

    setup(&fa, &at, o, stdout_pipe);
    r = posix_spawnp(ret_pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return -r;
}

int spawn_process(char *const argv[], const struct spawn_opts *o, pid_t *ret_pid)
{
    return do_spawn(argv, o, -1, ret_pid);
}

static int wait_status(pid_t pid)
{
    int status;

    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

int spawn_wait(char *const argv[], const struct spawn_opts *o)
{
    pid_t pid;
    int r = do_spawn(argv, o, -1, &pid);

    if (r < 0)
        return r;
    return wait_status(pid);
}

int spawn_capture_line(char *const argv[], char *out, size_t size)
{
    int p[2];
    pid_t pid;
    size_t n = 0;
    int r;

    if (pipe2(p, O_CLOEXEC) < 0)
        return -errno;
    r = do_spawn(argv, NULL, p[1], &pid);
    close(p[1]);
    if (r < 0) {
        close(p[0]);
        return r;
    }
    for (;;) {
        ssize_t k = read(p[0], out + n, size - 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t)k;
        if (n >= size - 1)
            break;
    }
    close(p[0]);
    out[n] = 0;
    out[strcspn(out, "\n")] = 0;
    r = wait_status(pid);
    return r == 0 ? 0 : -EIO;
}

/* Resolve argv0 through PATH before forking: execvp may allocate, and only
 * async-signal-safe calls are allowed between fork and exec in a threaded
 * program. */
static int resolve_program(const char *argv0, char *out, size_t size)
{
    const char *path = getenv("PATH");

    if (strchr(argv0, '/')) {
        snprintf(out, size, "%s", argv0);
        return access(out, X_OK) == 0 ? 0 : -errno;
    }
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t len = strcspn(path, ":");
        snprintf(out, size, "%.*s/%s", (int)len, path, argv0);
        if (access(out, X_OK) == 0)
            return 0;
        path += len;
        if (*path == ':')
            path++;
    }
    return -ENOENT;
}

/* dup2 that also works when fd == target (dup2 would keep close-on-exec). */
static void dup_to(int fd, int target)
{
    if (fd == target)
        fcntl(fd, F_SETFD, 0);
    else
        dup2(fd, target);
}

int spawn_detached(char *const argv[], const struct spawn_opts *o, pid_t *ret_pid)
{
    char prog[4096];
    int p[2] = {-1, -1}, ex[2] = {-1, -1};
    int logfd = -1, nullfd = -1, infd = -1, errfd = -1;
    pid_t child, grandchild = -1;
    int exec_errno = 0;
    sigset_t none;
    ssize_t n;
    int r;

    r = resolve_program(argv[0], prog, sizeof(prog));
    if (r < 0)
        return r;
    nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nullfd < 0)
        return -errno;
    if (o && o->stdout_path) {
        logfd = open(o->stdout_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (logfd < 0) {
            r = -errno;
            goto out;
        }
    }
    if (o && o->stdin_path) {
        infd = open(o->stdin_path, O_RDWR | O_CLOEXEC);
        if (infd < 0) {
            r = -errno;
            goto out;
        }
    }
    if (o && o->stderr_path) {
        errfd = open(o->stderr_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (errfd < 0) {
            r = -errno;
            goto out;
        }
    }
    /* p carries the grandchild's pid; ex stays open until its execve: EOF
     * means the program runs, an errno means execve failed. */
    if (pipe2(p, O_CLOEXEC) < 0 || pipe2(ex, O_CLOEXEC) < 0) {
        r = -errno;
        goto out;
    }
    sigemptyset(&none);
    child = fork();
    if (child < 0) {
        r = -errno;
        goto out;
    }
    if (child == 0) {
        /* async-signal-safe calls only from here on */
        if (!o || o->new_session)
            setsid();
        pid_t gc = fork();
        if (gc == 0) {
            int err;
            for (int sig = 1; sig < NSIG; sig++)
                signal(sig, SIG_DFL);
            sigprocmask(SIG_SETMASK, &none, NULL);
            if (o && o->cwd && chdir(o->cwd) < 0) {
                err = errno;
                ssize_t _unused_ w = write(ex[1], &err, sizeof(err));
                _exit(127);
            }
            dup_to(infd >= 0 ? infd : nullfd, 0);
            dup_to(logfd >= 0 ? logfd : nullfd, 1);
            dup_to(errfd >= 0 ? errfd : logfd >= 0 ? logfd : nullfd, 2);
            execve(prog, argv, environ);
            err = errno;
            ssize_t _unused_ w = write(ex[1], &err, sizeof(err));
            _exit(127);
        }
        if (write(p[1], &gc, sizeof(gc)) != (ssize_t)sizeof(gc))
            _exit(1);
        _exit(gc > 0 ? 0 : 1);
    }
    close(p[1]);
    p[1] = -1;
    close(ex[1]);
    ex[1] = -1;
    do
        n = read(p[0], &grandchild, sizeof(grandchild));
    while (n < 0 && errno == EINTR);
    r = wait_status(child);
    if (n != (ssize_t)sizeof(grandchild) || grandchild <= 0 || r != 0) {
        r = -ECHILD;
        goto out;
    }
    do
        n = read(ex[0], &exec_errno, sizeof(exec_errno));
    while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof(exec_errno)) {
        r = -exec_errno;
        goto out;
    }
    *ret_pid = grandchild;
    r = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (p[i] >= 0)
            close(p[i]);
        if (ex[i] >= 0)
            close(ex[i]);
    }
    if (logfd >= 0)
        close(logfd);
    if (infd >= 0)
        close(infd);
    if (errfd >= 0)
        close(errfd);
    close(nullfd);
    return r;
}
