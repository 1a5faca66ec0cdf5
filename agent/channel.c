/* channel.c — see channel.h.
 *
 * struct sockaddr_vm is spelled out here because musl-gcc has no
 * <linux/vm_sockets.h>; its layout is kernel ABI.  AF_VSOCK itself is in
 * musl's <sys/socket.h>. */
#include "channel.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent_proto.h"
#include "macro.h"
#include "util.h"

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#define CHANNEL_VMADDR_CID_ANY 0xFFFFFFFFu

struct channel_sockaddr_vm {
    unsigned short svm_family;
    unsigned short svm_reserved1;
    unsigned int svm_port;
    unsigned int svm_cid;
    unsigned char svm_zero[4];
};

#define VIRTIO_PORTS_DIR "/sys/class/virtio-ports"

static void channel_reset(struct channel *c, enum channel_kind kind)
{
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->fd = c->listen_fd = -1;
    c->fd_pfd = c->listen_pfd = -1;
}

/* Read a short sysfs attribute into buf without its trailing newline.
 * Returns 0 or -errno. */
static int read_attr(const char *path, char *buf, size_t size)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = read(fd, buf, size - 1);
    if (n < 0)
        return -errno;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        n--;
    buf[n] = '\0';
    return 0;
}

/* Make /dev/<port> from /sys/class/virtio-ports/<port>/dev if it is missing. */
static int make_port_node(const char *port, const char *devpath)
{
    char path[sizeof(VIRTIO_PORTS_DIR) + NAME_MAX + 16], dev[32];
    unsigned maj, min;
    int r;

    snprintf(path, sizeof(path), VIRTIO_PORTS_DIR "/%s/dev", port);
    r = read_attr(path, dev, sizeof(dev));
    if (r < 0)
        return r;
    if (sscanf(dev, "%u:%u", &maj, &min) != 2)
        return -EINVAL;
    if (mknod(devpath, S_IFCHR | 0600, makedev(maj, min)) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int channel_open_virtio(struct channel *c)
{
    DIR *d = opendir(VIRTIO_PORTS_DIR);
    struct dirent *de;
    char port[NAME_MAX + 1] = "";
    char path[sizeof(VIRTIO_PORTS_DIR) + NAME_MAX + 16], name[128], devpath[NAME_MAX + 8];
    int fd;

    if (!d)
        return errno == ENOENT ? -ENOENT : -errno;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || strlen(de->d_name) >= sizeof(port))
            continue;
        snprintf(path, sizeof(path), VIRTIO_PORTS_DIR "/%s/name", de->d_name);
        if (read_attr(path, name, sizeof(name)) == 0 && streq(name, AP_SERIAL_PORT_NAME)) {
            snprintf(port, sizeof(port), "%s", de->d_name);
            break;
        }
    }
    closedir(d);
    if (!port[0])
        return -ENOENT;

    snprintf(devpath, sizeof(devpath), "/dev/%s", port);
    fd = open(devpath, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 && errno == ENOENT) {
        int r = make_port_node(port, devpath);
        if (r < 0)
            return r;
        fd = open(devpath, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    }
    if (fd < 0)
        return -errno;
    channel_reset(c, CHANNEL_VIRTIO);
    c->fd = fd;
    snprintf(c->name, sizeof(c->name), "virtio-serial %s (%s)", devpath, AP_SERIAL_PORT_NAME);
    return 0;
}

int channel_listen_vsock(struct channel *c, uint32_t port)
{
    struct channel_sockaddr_vm sa = {
        .svm_family = AF_VSOCK,
        .svm_port = port,
        .svm_cid = CHANNEL_VMADDR_CID_ANY,
    };
    _cleanup_close_ int fd = -1;

    fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
        return -errno;
    channel_reset(c, CHANNEL_LISTEN);
    c->listen_fd = TAKE_FD(fd);
    snprintf(c->name, sizeof(c->name), "vsock port %u", port);
    return 0;
}

int channel_listen_unix(struct channel *c, const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    _cleanup_close_ int fd = -1;
    struct stat st;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0)
        return -errno;
    channel_reset(c, CHANNEL_LISTEN);
    c->listen_fd = TAKE_FD(fd);
    snprintf(c->name, sizeof(c->name), "unix socket %s", path);
    return 0;
}

int channel_from_fd(struct channel *c, int fd)
{
    int r;

    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    r = fd_set_nonblock(fd);
    if (r < 0)
        return r;
    channel_reset(c, CHANNEL_FD);
    c->fd = fd;
    snprintf(c->name, sizeof(c->name), "fd %d", fd);
    return 0;
}

void channel_close(struct channel *c)
{
    if (c->fd >= 0)
        close(c->fd);
    if (c->listen_fd >= 0)
        close(c->listen_fd);
    c->fd = c->listen_fd = -1;
}

void channel_poll_fill(struct channel *c, struct pollfd *pfds, size_t *n, bool want_in,
                       bool want_out)
{
    c->fd_pfd = c->listen_pfd = -1;
    if (c->listen_fd >= 0) {
        pfds[*n] = (struct pollfd){.fd = c->listen_fd, .events = POLLIN};
        c->listen_pfd = (int)(*n)++;
    }
    if (c->fd >= 0 && !c->host_down && (want_in || want_out)) {
        pfds[*n] = (struct pollfd){
            .fd = c->fd, .events = (short)((want_in ? POLLIN : 0) | (want_out ? POLLOUT : 0))};
        c->fd_pfd = (int)(*n)++;
    }
}

bool channel_accept(struct channel *c, const struct pollfd *pfds)
{
    int fd;

    if (c->listen_pfd < 0 || !(pfds[c->listen_pfd].revents & POLLIN))
        return false;
    fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0)
        return false;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = fd;
    c->fd_pfd = -1; /* not polled this round */
    return true;
}

bool channel_readable(const struct channel *c, const struct pollfd *pfds, uint64_t now)
{
    if (c->fd < 0)
        return false;
    if (c->host_down)
        return now >= c->retry_at;
    return c->fd_pfd >= 0 && (pfds[c->fd_pfd].revents & (POLLIN | POLLHUP | POLLERR));
}

bool channel_writable(const struct channel *c, const struct pollfd *pfds)
{
    return c->fd >= 0 && !c->host_down && c->fd_pfd >= 0 && (pfds[c->fd_pfd].revents & POLLOUT);
}

bool channel_hung_up(const struct channel *c, const struct pollfd *pfds)
{
    return c->kind == CHANNEL_VIRTIO && !c->host_down && c->fd_pfd >= 0 &&
           (pfds[c->fd_pfd].revents & POLLHUP);
}

/* The host is gone.  Returns -EPIPE if this is news. */
static int channel_hangup(struct channel *c, uint64_t now)
{
    if (c->kind == CHANNEL_VIRTIO) {
        bool news = !c->host_down;

        /* keep the port open; probe it again later */
        c->host_down = true;
        c->retry_at = now + CHANNEL_RETRY_MS;
        return news ? -EPIPE : 0;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
        return -EPIPE;
    }
    return 0;
}

ssize_t channel_read(struct channel *c, void *buf, size_t len, uint64_t now)
{
    ssize_t n;

    if (c->fd < 0)
        return 0;
    do
        n = read(c->fd, buf, len);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        c->host_down = false;
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        /* VIRTIO: a host is connected again (or still) */
        c->host_down = false;
        return 0;
    }
    if (n == 0 || errno == ECONNRESET || errno == EPIPE || errno == EIO || errno == ENOTCONN)
        return channel_hangup(c, now);
    return -errno;
}

int channel_write_failed(struct channel *c, int err, uint64_t now)
{
    (void)err;
    return channel_hangup(c, now);
}

uint64_t channel_deadline(const struct channel *c)
{
    return c->fd >= 0 && c->host_down ? c->retry_at : 0;
}
