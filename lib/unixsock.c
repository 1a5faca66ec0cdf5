/* unixsock.c — see unixsock.h. */
#include "unixsock.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "macro.h"

_Static_assert(sizeof(((struct sockaddr_un *)0)->sun_path) == 108, "sun_path size");

int unix_sock_path(const char *dir, const char *name, char out[108], int *ret_dirfd)
{
    int n;

    *ret_dirfd = -1;
    n = snprintf(out, 108, "%s/%s", dir, name);
    if (n >= 0 && n < 108)
        return 0;
    *ret_dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*ret_dirfd < 0)
        return -errno;
    n = snprintf(out, 108, "/proc/self/fd/%d/%s", *ret_dirfd, name);
    if (n < 0 || n >= 108)
        return -ENAMETOOLONG;
    return 0;
}

/* Fill addr with the path of dir/name (*dirfd must stay open until
 * connect/bind is done). */
static int make_addr(const char *dir, const char *name, struct sockaddr_un *addr, int *dirfd)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    return unix_sock_path(dir, name, addr->sun_path, dirfd);
}

int unix_connect(const char *dir, const char *name, int *ret_fd)
{
    struct sockaddr_un addr;
    _cleanup_close_ int dirfd = -1;
    _cleanup_close_ int fd = -1;
    int r;

    r = make_addr(dir, name, &addr, &dirfd);
    if (r < 0)
        return r;
    /* non-blocking connect: a full backlog (a stopped VMM) gives EAGAIN at
     * once instead of hanging the caller */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        return -errno;
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
        return -errno;
    *ret_fd = TAKE_FD(fd);
    return 0;
}

int unix_listen(const char *dir, const char *name, int backlog, int *ret_fd)
{
    struct sockaddr_un addr;
    _cleanup_close_ int dirfd = -1;
    _cleanup_close_ int fd = -1;
    int r;

    r = make_addr(dir, name, &addr, &dirfd);
    if (r < 0)
        return r;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    unlink(addr.sun_path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        return -errno;
    if (listen(fd, backlog) < 0)
        return -errno;
    *ret_fd = TAKE_FD(fd);
    return 0;
}

int fd_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                poll(&pfd, 1, 1000);
                continue;
            }
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fd_send_with_fd(int fd, const void *buf, size_t len, int passfd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    struct msghdr msg = {
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = u.buf,
        .msg_controllen = sizeof(u.buf),
    };
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    ssize_t n;

    memset(u.buf, 0, sizeof(u.buf));
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &passfd, sizeof(int));
    do
        n = sendmsg(fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    if ((size_t)n < len)
        return fd_write_all(fd, (const char *)buf + n, len - (size_t)n);
    return 0;
}

int fd_wait_readable(int fd, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r;

    do
        r = poll(&pfd, 1, timeout_ms);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return -errno;
    return r > 0 ? 1 : 0;
}
