/* serve.c — see serve.h. */
#include "serve.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "fsutil.h"
#include "log.h"
#include "macro.h"
#include "request.h"

#define LISTEN_BACKLOG 64

/* Whether a netd still answers on path: connect succeeds. */
static bool socket_is_live(const struct sockaddr_un *sa)
{
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    return fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
}

int serve_listen(const char *path, uid_t server_uid, int *ret_fd, ino_t *ret_ino, struct nerr *e)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    _cleanup_free_ char *dir = strdup(path);
    _cleanup_close_ int fd = -1;
    struct stat st;
    mode_t old_umask;
    int r;

    if (!dir)
        return nerr_set(e, -ENOMEM, "out of memory");
    if (strlen(path) >= sizeof(sa.sun_path))
        return nerr_set(e, -ENAMETOOLONG, "socket path %s is longer than %zu bytes", path,
                        sizeof(sa.sun_path) - 1);
    memcpy(sa.sun_path, path, strlen(path));
    r = mkdir_p(dirname(dir), 0755);
    if (r < 0)
        return nerr_set(e, r, "cannot create the directory of %s: %s", path, strerror(-r));
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return nerr_set(e, -EEXIST, "%s exists and is not a socket", path);
        if (socket_is_live(&sa))
            return nerr_set(e, -EADDRINUSE, "another noid-netd is serving %s", path);
        if (unlink(path) < 0 && errno != ENOENT) {
            r = -errno;
            return nerr_set(e, r, "cannot remove the stale socket %s: %s", path, strerror(-r));
        }
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r = -errno;
        return nerr_set(e, r, "cannot create a socket: %s", strerror(-r));
    }
    /* born 0600: no moment where another uid could connect */
    old_umask = umask(0177);
    r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    if (r < 0)
        r = -errno;
    umask(old_umask);
    if (r < 0)
        return nerr_set(e, r, "cannot bind %s: %s", path, strerror(-r));
    /* never through a symlink: whoever may write the socket's directory
     * could swap the socket for a link and have root chown its target (the
     * umask already made it 0600) */
    if (fchownat(AT_FDCWD, path, server_uid, (gid_t)-1, AT_SYMLINK_NOFOLLOW) < 0 ||
        lstat(path, &st) < 0)
        r = -errno;
    else
        r = S_ISSOCK(st.st_mode) ? 0 : -EEXIST; /* swapped under us */
    if (r < 0) {
        unlink(path);
        return nerr_set(e, r, "cannot give %s to uid %u: %s", path, (unsigned)server_uid,
                        strerror(-r));
    }
    if (listen(fd, LISTEN_BACKLOG) < 0) {
        r = -errno;
        unlink(path);
        return nerr_set(e, r, "cannot listen on %s: %s", path, strerror(-r));
    }
    *ret_ino = st.st_ino;
    *ret_fd = TAKE_FD(fd);
    return 0;
}

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read the request line into buf (NUL-terminated, without its newline).
 * A line also ends where the client shuts its side down.  0 on success,
 * -EMSGSIZE when it is too long, -ETIMEDOUT, -ENODATA when the client
 * sent nothing at all. */
static int read_line(int fd, char buf[NETD_LINE_MAX + 1], size_t *ret_len)
{
    long long deadline = now_ms() + NETD_REQUEST_TIMEOUT_MS;
    size_t len = 0;

    for (;;) {
        long long left = deadline - now_ms();
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char *nl;
        ssize_t n;
        int r;

        if (left <= 0)
            return -ETIMEDOUT;
        r = poll(&p, 1, (int)left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return -ETIMEDOUT;
        n = recv(fd, buf + len, NETD_LINE_MAX - len, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return -errno;
        if (n == 0) {
            if (len == 0)
                return -ENODATA;
            break;
        }
        nl = memchr(buf + len, '\n', (size_t)n);
        len += (size_t)n;
        if (nl) {
            len = (size_t)(nl - buf);
            break;
        }
        /* NETD_LINE_MAX bytes and no newline: the line (its newline
         * included) is longer than the bound */
        if (len == NETD_LINE_MAX)
            return -EMSGSIZE;
    }
    buf[len] = '\0';
    *ret_len = len;
    return 0;
}

static void send_reply(int fd, const char *line)
{
    size_t len = strlen(line), off = 0;

    while (off < len) {
        ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the client went away; nothing to tell it */
        off += (size_t)n;
    }
}

static void send_error(int fd, const char *msg)
{
    _cleanup_free_ char *line = netd_reply_error(msg);

    send_reply(fd, line ? line : "{\"ok\":false,\"error\":\"out of memory\"}\n");
}

/* A request we do not carry out: logged, and the reason is the reply */
static void refuse(int fd, pid_t pid, const struct nerr *e)
{
    const char *msg = nerr_msg(e);
    const char *why = strncmp(msg, "refused: ", 9) == 0 ? msg + 9 : msg;

    log_warn("refused request from pid %d: %s", (int)pid, why);
    send_error(fd, msg);
}

/* Carry out a parsed request; the reply line (malloc'd) or NULL with e */
static char *handle(const struct netd_request *rq, struct vmnet *v, pid_t pid, struct nerr *e)
{
    char tap[NETD_TAP_NAME_MAX];
    struct netd_addrs a;
    bool gone = false;
    char *reply;

    switch (rq->op) {
    case NETD_OP_SETUP:
        if (vmnet_setup(v, rq->owner, &a, e) < 0)
            return NULL;
        log_info("setup for %s (pid %d): %s %s/%d, guest %s %s", rq->owner, (int)pid, a.tap,
                 a.host_ip, a.prefix, a.guest_ip, a.mac);
        reply = netd_reply_setup(&a);
        break;
    case NETD_OP_TEARDOWN:
        if (vmnet_teardown(v, rq->tap[0] ? rq->tap : NULL, rq->owner[0] ? rq->owner : NULL, tap,
                           &gone, e) < 0)
            return NULL;
        log_info("teardown%s%s (owner %s, pid %d): %s", tap[0] ? " " : "", tap,
                 rq->owner[0] ? rq->owner : "not given", (int)pid,
                 gone ? "nothing to remove" : "removed");
        reply = netd_reply_teardown(tap[0] ? tap : NULL, gone);
        break;
    default:
        nerr_set(e, -EINVAL, "unknown op");
        return NULL;
    }
    if (!reply)
        nerr_set(e, -ENOMEM, "out of memory");
    return reply;
}

void serve_one(int listen_fd, struct vmnet *v)
{
    _cleanup_close_ int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    _cleanup_free_ char *reply = NULL;
    char buf[NETD_LINE_MAX + 1];
    struct netd_request rq;
    struct nerr e = {0};
    struct ucred cred;
    socklen_t clen = sizeof(cred);
    size_t len = 0;
    int r;

    if (fd < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
            log_warn("accept: %m");
        return;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
        log_warn("refused connection: cannot read its credentials: %m");
        return;
    }
    if (cred.uid != v->server_uid) {
        log_warn("refused connection from uid %u pid %d (not the server uid %u)",
                 (unsigned)cred.uid, (int)cred.pid, (unsigned)v->server_uid);
        return;
    }
    r = read_line(fd, buf, &len);
    if (r == -ENODATA)
        return;
    if (r < 0) {
        if (r == -EMSGSIZE)
            nerr_set(&e, r, "request longer than %d bytes", NETD_LINE_MAX - 1);
        else if (r == -ETIMEDOUT)
            nerr_set(&e, r, "no complete request line within %d ms", NETD_REQUEST_TIMEOUT_MS);
        else
            nerr_set(&e, r, "cannot read the request: %s", strerror(-r));
        refuse(fd, cred.pid, &e);
        return;
    }
    if (netd_request_parse(buf, len, v->max_taps, &rq, &e) < 0) {
        refuse(fd, cred.pid, &e);
        return;
    }
    reply = handle(&rq, v, cred.pid, &e);
    if (!reply) {
        if (e.code == -EPERM) {
            refuse(fd, cred.pid, &e);
            return;
        }
        log_warn("%s request from pid %d failed: %s", rq.op == NETD_OP_SETUP ? "setup" : "teardown",
                 (int)cred.pid, nerr_msg(&e));
        send_error(fd, nerr_msg(&e));
        return;
    }
    send_reply(fd, reply);
}
