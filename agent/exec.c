/* exec.c — see exec.h.
 *
 * Child set-up (after fork, before execvp): its own session and process
 * group; every signal disposition back to default and an empty mask (the
 * agent blocks SIGCHLD/SIGTERM for its signalfd and ignores SIGPIPE, and both
 * would otherwise be inherited); stdin/stdout/stderr from pipes or the pty
 * slave; the environment built by exec_build_env(); the working directory.
 * All the agent's own fds are O_CLOEXEC, so nothing else leaks into the
 * child.  If execvp fails the child writes "noid-agent: cannot run 'X': why"
 * to its stderr and exits 127 (126 if the file exists but cannot be run),
 * as a shell would.
 *
 * Environment (documented for the host): PATH (a Debian root's default),
 * HOME (/root for root), LANG=C.UTF-8 (built into Debian's libc, so no
 * locale package is needed and tools print UTF-8), TERM=xterm-256color with
 * a tty and TERM=dumb without, then the request's NAME=VALUE entries, which replace a base entry
 * of the same name.  Working directory: the request's cwd (the exec fails
 * with 127 if it cannot be entered), else HOME, else "/".
 *
 * Exit status in EXIT: code = exit status, or 128 + signal when killed by a
 * signal (signal then says which). */
#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "alog.h"
#include "macro.h"
#include "util.h"

#define EXEC_BASE_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
/* The most output bytes read from one pipe once we stop waiting for EOF (a
 * pipe holds 64 KiB unless resized; this bounds a grandchild that keeps
 * writing into it while we drain). */
#define EXEC_FINAL_DRAIN_BYTES (32u * AP_DATA_CHUNK)

struct exec {
    uint32_t stream;
    pid_t pid; /* also the process group id */
    bool tty;
    int out_fd;                   /* stdout pipe, or the pty master (all output) */
    int err_fd;                   /* stderr pipe; -1 with a tty */
    int in_fd;                    /* stdin pipe or a dup of the master; -1 if none or closed */
    int slave_fd;                 /* our copy of the pty slave, held until the child is reaped */
    int out_pfd, err_pfd, in_pfd; /* pollfd index this round, -1 = not polled */

    uint8_t *in_buf; /* stdin bytes not yet taken by the child */
    size_t in_len, in_cap;
    bool in_eof; /* host sent EOF; close once in_buf drained */

    uint64_t deadline_ms; /* timeout, 0 = none */
    bool timed_out;

    bool reaped;
    int status;
    uint64_t drain_until_ms;
    size_t out_drained, err_drained; /* bytes taken by the final drain, per pipe */

    /* Output flow control (agent_proto.h): out_window 0 = none. */
    uint32_t out_window;
    uint32_t out_credit;  /* output bytes we may still send, <= out_window */
    bool out_ack_clamped; /* an over-large OUT_ACK was logged */
};

void exec_table_init(struct exec_table *t, struct outq *q)
{
    memset(t, 0, sizeof(*t));
    t->q = q;
}

static struct exec *exec_find(const struct exec_table *t, uint32_t stream)
{
    for (size_t i = 0; i < EXEC_MAX; i++)
        if (t->slots[i] && t->slots[i]->stream == stream)
            return t->slots[i];
    return NULL;
}

bool exec_exists(const struct exec_table *t, uint32_t stream)
{
    return exec_find(t, stream) != NULL;
}

static void fd_closep_set(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void exec_free(struct exec_table *t, size_t slot)
{
    struct exec *e = t->slots[slot];

    fd_closep_set(&e->out_fd);
    fd_closep_set(&e->err_fd);
    fd_closep_set(&e->in_fd);
    fd_closep_set(&e->slave_fd);
    free(e->in_buf);
    free(e);
    t->slots[slot] = NULL;
    t->count--;
}

/* Build the child's environment: base entries, then the request's, each
 * replacing an earlier entry with the same name.  The array points into
 * req and static strings; it is only used by the child before execvp. */
static char **exec_build_env(const struct ap_exec_req *req)
{
    static char home_root[] = "HOME=/root";
    static char term_tty[] = "TERM=xterm-256color";
    static char term_dumb[] = "TERM=dumb";
    static char path[] = EXEC_BASE_PATH;
    static char lang[] = "LANG=C.UTF-8";
    static char home_buf[512];
    char **env;
    size_t n = 0;

    env = calloc(5 + req->nenv + 1, sizeof(char *));
    if (!env)
        return NULL;
    env[n++] = path;
    if (getuid() == 0 || !getenv("HOME")) {
        env[n++] = home_root;
    } else {
        snprintf(home_buf, sizeof(home_buf), "HOME=%s", getenv("HOME"));
        env[n++] = home_buf;
    }
    env[n++] = lang;
    env[n++] = req->tty ? term_tty : term_dumb;
    for (size_t i = 0; i < req->nenv; i++) {
        const char *eq = strchr(req->env[i], '=');
        size_t namelen = (size_t)(eq - req->env[i]) + 1; /* with '=' */
        size_t j;

        for (j = 0; j < n; j++)
            if (strncmp(env[j], req->env[i], namelen) == 0)
                break;
        env[j] = req->env[i];
        if (j == n)
            n++;
    }
    env[n] = NULL;
    return env;
}

struct exec_spawn {
    const struct ap_exec_req *req;
    char **env;
    int slave;              /* pty slave, tty only */
    int in_r, out_w, err_w; /* child ends, pipes only; in_r -1 = /dev/null */
};

static _noreturn_ void exec_child(const struct exec_spawn *s)
{
    extern char **environ;
    const struct ap_exec_req *req = s->req;
    const char *home;
    sigset_t none;
    int err;

    /* setsid() before the signal reset: a signal the agent sends to the
     * pid before the group exists (see exec_signal()) stays blocked, and
     * so pending, until the mask is cleared below, then acts by default. */
    setsid();
    for (int sig = 1; sig < NSIG; sig++)
        signal(sig, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    if (req->tty) {
        ioctl(s->slave, TIOCSCTTY, 0);
        dup2(s->slave, 0);
        dup2(s->slave, 1);
        dup2(s->slave, 2);
    } else {
        int in = s->in_r >= 0 ? s->in_r : open("/dev/null", O_RDONLY);
        if (in < 0)
            _exit(127);
        dup2(in, 0);
        dup2(s->out_w, 1);
        dup2(s->err_w, 2);
        /* the originals are O_CLOEXEC; only 0-2 survive execvp */
    }

    environ = s->env;
    home = getenv("HOME");
    if (req->cwd) {
        if (chdir(req->cwd) < 0) {
            err = errno;
            dprintf(2, "noid-agent: cannot chdir to '%s': %s\n", req->cwd, strerror(err));
            _exit(127);
        }
    } else if (!home || chdir(home) < 0) {
        if (chdir("/") < 0) {
            /* nothing better to do */
        }
    }

    execvp(req->argv[0], req->argv);
    err = errno;
    dprintf(2, "noid-agent: cannot run '%s': %s\n", req->argv[0], strerror(err));
    /* as a shell: 126 when the file is there but cannot be run */
    _exit(err == EACCES || err == ENOEXEC || err == EPERM || err == EISDIR ? 126 : 127);
}

/* Open a pty pair with the window size of req: the master non-blocking, both
 * close-on-exec.  The agent keeps the slave open until the child is reaped:
 * before any slave is open, and after the last one closes, reading the
 * master fails with EIO, which we take as EOF.  Returns 0 or -errno. */
static int exec_open_pty(const struct ap_exec_req *req, int *ret_master, int *ret_slave)
{
    _cleanup_close_ int m = -1, s = -1;
    char slave[128];
    struct winsize ws = {
        .ws_row = req->rows ? req->rows : 24,
        .ws_col = req->cols ? req->cols : 80,
    };

    m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0)
        return -errno;
    if (grantpt(m) < 0 || unlockpt(m) < 0)
        return -errno;
    if (ptsname_r(m, slave, sizeof(slave)) != 0)
        return -EIO;
    s = open(slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0)
        return -errno;
    if (ioctl(m, TIOCSWINSZ, &ws) < 0)
        return -errno;
    if (fd_set_nonblock(m) < 0)
        return -errno;
    *ret_master = TAKE_FD(m);
    *ret_slave = TAKE_FD(s);
    return 0;
}

int exec_start(struct exec_table *t, uint32_t stream, const struct ap_exec_req *req, char *msg,
               size_t msg_size)
{
    _cleanup_free_ char **env = NULL;
    _cleanup_free_ struct exec *e = NULL;
    _cleanup_close_ int in_r = -1, in_w = -1, out_r = -1, out_w = -1, err_r = -1, err_w = -1;
    _cleanup_close_ int master = -1, slave = -1, in_dup = -1;
    struct exec_spawn spawn = {0};
    size_t slot;
    uint8_t started[4];
    pid_t pid;
    int r, p[2];

    if (stream == 0) {
        snprintf(msg, msg_size, "stream 0 is the session; EXEC needs a fresh stream id");
        return -EINVAL;
    }
    if (exec_find(t, stream)) {
        snprintf(msg, msg_size, "stream %u already has a running exec", stream);
        return -EEXIST;
    }
    if (t->count >= EXEC_MAX) {
        snprintf(msg, msg_size, "too many concurrent execs (limit %d)", EXEC_MAX);
        return -EAGAIN;
    }
    for (slot = 0; t->slots[slot]; slot++)
        ;

    env = exec_build_env(req);
    e = calloc(1, sizeof(*e));
    if (!env || !e) {
        snprintf(msg, msg_size, "out of memory");
        return -ENOMEM;
    }

    if (req->tty) {
        r = exec_open_pty(req, &master, &slave);
        if (r < 0)
            goto fail_errno;
        if (req->stdin_open) {
            in_dup = fcntl(master, F_DUPFD_CLOEXEC, 3);
            if (in_dup < 0) {
                r = -errno;
                goto fail_errno;
            }
        }
        spawn.slave = slave;
    } else {
        if (pipe2(p, O_CLOEXEC) < 0)
            goto fail_pipe;
        out_r = p[0], out_w = p[1];
        if (pipe2(p, O_CLOEXEC) < 0)
            goto fail_pipe;
        err_r = p[0], err_w = p[1];
        if (req->stdin_open) {
            if (pipe2(p, O_CLOEXEC) < 0)
                goto fail_pipe;
            in_r = p[0], in_w = p[1];
        }
        if (fd_set_nonblock(out_r) < 0 || fd_set_nonblock(err_r) < 0 ||
            (in_w >= 0 && fd_set_nonblock(in_w) < 0))
            goto fail_pipe;
    }
    spawn.req = req;
    spawn.env = env;
    spawn.in_r = in_r;
    spawn.out_w = out_w;
    spawn.err_w = err_w;

    pid = fork();
    if (pid < 0) {
        r = -errno;
        snprintf(msg, msg_size, "fork: %s", strerror(-r));
        return r;
    }
    if (pid == 0)
        exec_child(&spawn);

    e->stream = stream;
    e->pid = pid;
    e->tty = req->tty;
    e->out_fd = req->tty ? TAKE_FD(master) : TAKE_FD(out_r);
    e->err_fd = TAKE_FD(err_r);
    e->in_fd = req->tty ? TAKE_FD(in_dup) : TAKE_FD(in_w);
    e->slave_fd = TAKE_FD(slave);
    e->out_pfd = e->err_pfd = e->in_pfd = -1;
    e->out_window = e->out_credit = req->out_window;
    if (req->timeout_ms > 0)
        e->deadline_ms = now_ms() + req->timeout_ms;
    t->slots[slot] = TAKE_PTR(e);
    t->count++;

    ap_u32_encode((uint32_t)pid, started);
    outq_push(t->q, AP_STARTED, stream, started, sizeof(started));
    alog_debug("stream %u: started pid %d: %s%s, output window %u", stream, (int)pid, req->argv[0],
               req->tty ? " (tty)" : "", req->out_window);
    return 0;

fail_pipe:
    r = -errno;
fail_errno:
    snprintf(msg, msg_size, "cannot set up %s: %s", req->tty ? "pty" : "pipes", strerror(-r));
    return r;
}

static void exec_push_window(struct exec_table *t, struct exec *e, size_t n)
{
    uint8_t b[4];

    if (n == 0)
        return;
    ap_u32_encode((uint32_t)n, b);
    outq_push(t->q, AP_WINDOW, e->stream, b, sizeof(b));
}

/* Write buffered stdin without blocking; acknowledge what the pipe took (or
 * what was thrown away because the reader is gone).  Closes stdin after EOF
 * once the buffer is empty. */
static void exec_stdin_flush(struct exec_table *t, struct exec *e)
{
    size_t acked = 0;

    while (e->in_fd >= 0 && e->in_len > 0) {
        ssize_t w = write(e->in_fd, e->in_buf, e->in_len);

        if (w > 0) {
            memmove(e->in_buf, e->in_buf + w, e->in_len - (size_t)w);
            e->in_len -= (size_t)w;
            acked += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            /* EPIPE (the child closed its stdin) or EIO: nobody will read */
            acked += e->in_len;
            e->in_len = 0;
            fd_closep_set(&e->in_fd);
        }
    }
    if (e->in_fd >= 0 && e->in_len == 0 && e->in_eof) {
        if (e->tty) {
            /* closing a dup of the master is no EOF for the child: type the
             * terminal's EOF character, as a person would */
            struct termios tio;
            char eof = tcgetattr(e->in_fd, &tio) == 0 ? (char)tio.c_cc[VEOF] : 4;
            if (write(e->in_fd, &eof, 1) < 0) {
                /* the child is gone or not reading: nothing to end */
            }
        }
        fd_closep_set(&e->in_fd);
    }
    exec_push_window(t, e, acked);
}

int exec_stdin(struct exec_table *t, uint32_t stream, const uint8_t *data, size_t len)
{
    struct exec *e = exec_find(t, stream);
    size_t take;

    if (!e)
        return -ENOENT;
    if (len == 0) {
        e->in_eof = true;
        exec_stdin_flush(t, e);
        return 0;
    }
    if (e->in_fd < 0 || e->in_eof) {
        /* no stdin, or already closed: drop, but keep the host's window open */
        exec_push_window(t, e, len);
        return 0;
    }
    take = MIN(len, AP_STDIN_WINDOW - e->in_len);
    if (e->in_len + take > e->in_cap) {
        size_t cap = e->in_cap ? e->in_cap : 4096;
        uint8_t *nb;

        while (cap < e->in_len + take)
            cap *= 2;
        cap = MIN(cap, (size_t)AP_STDIN_WINDOW);
        nb = realloc(e->in_buf, cap);
        if (!nb)
            return -ENOMEM;
        e->in_buf = nb;
        e->in_cap = cap;
    }
    memcpy(e->in_buf + e->in_len, data, take);
    e->in_len += take;
    exec_stdin_flush(t, e);
    if (take < len) {
        exec_push_window(t, e, len - take);
        return -ENOBUFS;
    }
    return 0;
}

/* Signal e's process group.  Right after fork() the child may not have
 * called setsid() yet (with one vCPU it usually has not run at all), so
 * there is no group to signal: then signal the child itself.  Returns 0 or
 * -errno; ESRCH (everything already gone) is not an error. */
static int exec_signal(struct exec *e, int sig)
{
    if (kill(-e->pid, sig) == 0)
        return 0;
    if (errno == ESRCH && !e->reaped && kill(e->pid, sig) == 0)
        return 0;
    return errno == ESRCH ? 0 : -errno;
}

int exec_kill(struct exec_table *t, uint32_t stream, int sig)
{
    struct exec *e = exec_find(t, stream);

    if (!e)
        return -ENOENT;
    return exec_signal(e, sig);
}

int exec_resize(struct exec_table *t, uint32_t stream, uint16_t rows, uint16_t cols)
{
    struct exec *e = exec_find(t, stream);
    struct winsize ws = {.ws_row = rows, .ws_col = cols};

    if (!e)
        return -ENOENT;
    if (!e->tty || e->out_fd < 0)
        return -ENOTTY;
    if (ioctl(e->out_fd, TIOCSWINSZ, &ws) < 0)
        return -errno;
    return 0;
}

int exec_out_ack(struct exec_table *t, uint32_t stream, uint32_t n)
{
    struct exec *e = exec_find(t, stream);

    if (!e)
        return -ENOENT;
    if (e->out_window == 0)
        return 0;
    if (n == AP_OUT_ACK_RELEASE) {
        alog_debug("stream %u: output flow control released", stream);
        e->out_window = e->out_credit = 0;
        return 0;
    }
    if (n > e->out_window - e->out_credit) {
        /* more than is outstanding: a host bug; the window still holds */
        if (!e->out_ack_clamped)
            alog_warn("stream %u: OUT_ACK of %u bytes, only %u outstanding; clamped", stream, n,
                      e->out_window - e->out_credit);
        e->out_ack_clamped = true;
        n = e->out_window - e->out_credit;
    }
    e->out_credit += n;
    return 0;
}

void exec_kill_all(struct exec_table *t)
{
    for (size_t i = 0; i < EXEC_MAX; i++) {
        if (!t->slots[i])
            continue;
        exec_signal(t->slots[i], SIGKILL);
        exec_free(t, i);
    }
}

/* How many output bytes e may read and send now. */
static size_t exec_out_allowance(const struct exec *e)
{
    return e->out_window ? MIN((size_t)e->out_credit, (size_t)AP_DATA_CHUNK) : AP_DATA_CHUNK;
}

void exec_poll_fill(struct exec_table *t, struct pollfd *pfds, size_t *n, bool backpressure)
{
    for (size_t i = 0; i < EXEC_MAX; i++) {
        struct exec *e = t->slots[i];
        bool may_read;

        if (!e)
            continue;
        e->out_pfd = e->err_pfd = e->in_pfd = -1;
        /* Without credit the pipes are left alone: the child blocks in
         * write() once they are full, which is the point. */
        may_read = !backpressure && exec_out_allowance(e) > 0;
        if (e->out_fd >= 0 && may_read) {
            pfds[*n] = (struct pollfd){.fd = e->out_fd, .events = POLLIN};
            e->out_pfd = (int)(*n)++;
        }
        if (e->err_fd >= 0 && may_read) {
            pfds[*n] = (struct pollfd){.fd = e->err_fd, .events = POLLIN};
            e->err_pfd = (int)(*n)++;
        }
        if (e->in_fd >= 0 && (e->in_len > 0 || e->in_eof)) {
            pfds[*n] = (struct pollfd){.fd = e->in_fd, .events = POLLOUT};
            e->in_pfd = (int)(*n)++;
        }
    }
}

/* Read one chunk (at most the output credit) from *fd into a frame of type.
 * Closes *fd at EOF (EIO is how a pty master reports that the last slave fd
 * closed).  Returns the number of bytes read, 0 at EOF, if nothing was
 * there, or without credit (the caller checks exec_out_allowance()). */
static size_t exec_read_chunk(struct exec_table *t, struct exec *e, int *fd, uint8_t type)
{
    size_t want = exec_out_allowance(e);
    struct outq_frame *f;
    uint8_t *buf;
    ssize_t n;
    int err;

    if (want == 0)
        return 0;
    buf = outq_data_begin(t->q, &f);
    if (!buf) {
        alog_error("stream %u: out of memory for output", e->stream);
        return 0;
    }
    do
        n = read(*fd, buf, want);
    while (n < 0 && errno == EINTR);
    err = errno;
    if (outq_data_commit(t->q, f, type, e->stream, n > 0 ? (size_t)n : 0) < 0)
        alog_error("stream %u: out of memory, %zd output bytes lost", e->stream, n);
    else if (n > 0 && e->out_window)
        e->out_credit -= (uint32_t)n; /* lost bytes are never acknowledged: spend only sent ones */
    if (n > 0)
        return (size_t)n;
    if (n < 0 && (err == EAGAIN || err == EWOULDBLOCK))
        return 0;
    fd_closep_set(fd);
    return 0;
}

void exec_poll_handle(struct exec_table *t, const struct pollfd *pfds, bool backpressure)
{
    for (size_t i = 0; i < EXEC_MAX; i++) {
        struct exec *e = t->slots[i];

        if (!e)
            continue;
        if (e->out_pfd >= 0 && pfds[e->out_pfd].revents && e->out_fd >= 0)
            exec_read_chunk(t, e, &e->out_fd, AP_STDOUT);
        if (e->err_pfd >= 0 && pfds[e->err_pfd].revents && e->err_fd >= 0)
            exec_read_chunk(t, e, &e->err_fd, AP_STDERR);
        if (e->in_pfd >= 0 && pfds[e->in_pfd].revents && e->in_fd >= 0) {
            if (pfds[e->in_pfd].revents & (POLLERR | POLLHUP)) {
                /* the read end is gone: drop what is buffered */
                exec_push_window(t, e, e->in_len);
                e->in_len = 0;
                fd_closep_set(&e->in_fd);
            } else {
                exec_stdin_flush(t, e);
            }
        }
        e->out_pfd = e->err_pfd = e->in_pfd = -1;
    }
}

static struct exec *exec_find_pid(const struct exec_table *t, pid_t pid)
{
    for (size_t i = 0; i < EXEC_MAX; i++)
        if (t->slots[i] && t->slots[i]->pid == pid && !t->slots[i]->reaped)
            return t->slots[i];
    return NULL;
}

void exec_on_sigchld(struct exec_table *t)
{
    pid_t pid;
    int status;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        struct exec *e = exec_find_pid(t, pid);

        if (!e)
            continue; /* a child of a finished session */
        e->reaped = true;
        e->status = status;
        fd_closep_set(&e->slave_fd);
        e->drain_until_ms = now_ms() + EXEC_DRAIN_MS;
    }
}

/* Queue EXIT for e and free its slot. */
static void exec_finish(struct exec_table *t, size_t slot)
{
    struct exec *e = t->slots[slot];
    struct ap_exit x = {.timed_out = e->timed_out};
    uint8_t b[AP_EXIT_LEN];

    if (WIFSIGNALED(e->status)) {
        x.signal = (uint32_t)WTERMSIG(e->status);
        x.code = 128 + WTERMSIG(e->status);
    } else {
        x.code = WEXITSTATUS(e->status);
    }
    ap_exit_encode(&x, b);
    outq_push(t->q, AP_EXIT, e->stream, b, sizeof(b));
    alog_debug("stream %u: pid %d exited, code %d signal %u%s", e->stream, (int)e->pid, x.code,
               x.signal, x.timed_out ? " (timed out)" : "");
    exec_free(t, slot);
}

/* Final drain of one pipe: take what is in it now (at most
 * EXEC_FINAL_DRAIN_BYTES over all calls), then close it.  Returns false,
 * leaving the pipe open, if the output credit ran out first. */
static bool exec_final_drain_fd(struct exec_table *t, struct exec *e, int *fd, uint8_t type,
                                size_t *drained)
{
    while (*fd >= 0 && *drained < EXEC_FINAL_DRAIN_BYTES) {
        size_t n;

        if (exec_out_allowance(e) == 0) {
            int avail;

            /* Without credit only an empty pipe may be closed (nothing is
             * lost), or an EXIT would wait for an OUT_ACK even after output
             * that ended exactly at the window. */
            if (ioctl(*fd, FIONREAD, &avail) < 0 || avail > 0)
                return false;
            break;
        }
        n = exec_read_chunk(t, e, fd, type);
        if (n == 0)
            break; /* empty for now, or EOF (then already closed) */
        *drained += n;
    }
    if (*fd >= 0)
        alog_debug("stream %u: output still held open %d ms after exit, closing", e->stream,
                   EXEC_DRAIN_MS);
    fd_closep_set(fd);
    return true;
}

/* The child is gone but its output is still open: take what is already in
 * the pipes, then close them.  With flow control this can stop half way for
 * want of credit; the next call (after an OUT_ACK) goes on from there.
 * Returns true once both pipes are closed. */
static bool exec_final_drain(struct exec_table *t, struct exec *e)
{
    if (!exec_final_drain_fd(t, e, &e->out_fd, AP_STDOUT, &e->out_drained))
        return false;
    return exec_final_drain_fd(t, e, &e->err_fd, AP_STDERR, &e->err_drained);
}

static uint64_t earliest(uint64_t a, uint64_t b)
{
    if (a == 0)
        return b;
    if (b == 0)
        return a;
    return MIN(a, b);
}

uint64_t exec_tick(struct exec_table *t, bool backpressure)
{
    uint64_t now = now_ms(), next = 0;

    for (size_t i = 0; i < EXEC_MAX; i++) {
        struct exec *e = t->slots[i];

        if (!e)
            continue;
        if (!e->reaped && e->deadline_ms && now >= e->deadline_ms) {
            alog_info("stream %u: timed out, killing process group %d", e->stream, (int)e->pid);
            exec_signal(e, SIGKILL);
            e->timed_out = true;
            e->deadline_ms = 0;
        }
        if (e->reaped) {
            bool open = e->out_fd >= 0 || e->err_fd >= 0;

            if (open && now >= e->drain_until_ms) {
                if (backpressure)
                    /* the output waits for the host, not for a grandchild */
                    e->drain_until_ms = now + EXEC_DRAIN_MS;
                else
                    open = !exec_final_drain(t, e);
            }
            if (!open) {
                exec_finish(t, i);
                continue;
            }
            /* A drain stopped for want of credit goes on when an OUT_ACK
             * comes in, which wakes the loop: no deadline of its own (a
             * passed one would make the loop spin). */
            if (e->drain_until_ms > now)
                next = earliest(next, e->drain_until_ms);
        }
        next = earliest(next, e->deadline_ms);
    }
    return next;
}
