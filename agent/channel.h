/* channel.h — the byte stream to the host, and how the agent finds it.
 *
 * Three kinds:
 *  - VIRTIO: the virtio-serial port named AP_SERIAL_PORT_NAME (QEMU).  The
 *    fd stays open for the agent's life; the host comes and goes behind it.
 *    While no host is connected read() returns 0 and poll() reports POLLHUP
 *    at once, so the agent then stops polling the port and probes it every
 *    CHANNEL_RETRY_MS instead of spinning (QEMU-NOTES.md).
 *  - LISTEN: a listening socket, AF_VSOCK port AP_VSOCK_PORT (Firecracker)
 *    or a unix socket (tests on the host).  One connection is served at a
 *    time; a newer connection replaces the current one.
 *  - FD: an already connected fd (--fd N); its EOF ends the agent.
 *
 * The connected fd is always non-blocking and close-on-exec. */
#pragma once

#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CHANNEL_RETRY_MS 30

enum channel_kind { CHANNEL_VIRTIO, CHANNEL_LISTEN, CHANNEL_FD };

struct channel {
    enum channel_kind kind;
    int fd;                   /* the stream to the host, -1 if none */
    int listen_fd;            /* LISTEN only */
    bool host_down;           /* VIRTIO: no host behind the port; fd is not polled */
    uint64_t retry_at;        /* VIRTIO: when to probe the port next (while host_down) */
    int fd_pfd, listen_pfd;   /* pollfd indexes this round, -1 = not polled */
    char name[NAME_MAX + 64]; /* for log lines */
};

/* Find the virtio-serial port AP_SERIAL_PORT_NAME in /sys/class/virtio-ports
 * and open its /dev node (creating the node from the port's "dev" file if
 * devtmpfs lacks it).  Returns 0, -ENOENT if there is no such port, or
 * -errno. */
int channel_open_virtio(struct channel *c);

/* Listen on AF_VSOCK, VMADDR_CID_ANY, port.  Returns 0 or -errno
 * (-EAFNOSUPPORT without the vsock modules). */
int channel_listen_vsock(struct channel *c, uint32_t port);

/* Listen on a unix socket at path (an old socket file there is replaced).
 * Returns 0 or -errno. */
int channel_listen_unix(struct channel *c, const char *path);

/* Use fd, already connected.  Returns 0 or -errno. */
int channel_from_fd(struct channel *c, int fd);

void channel_close(struct channel *c);

/* Add the channel's pollfds at pfds[*n...] (at most 2).  want_in: there is
 * room for input; want_out: output is queued. */
void channel_poll_fill(struct channel *c, struct pollfd *pfds, size_t *n, bool want_in,
                       bool want_out);

/* After poll: accept a waiting connection, if any.  Returns true when the
 * host stream was replaced by a new connection (the caller resets the
 * session). */
bool channel_accept(struct channel *c, const struct pollfd *pfds);

/* Whether the stream is worth a read now: it polled readable or hung up,
 * or (VIRTIO, host down) its probe time came. */
bool channel_readable(const struct channel *c, const struct pollfd *pfds, uint64_t now);
bool channel_writable(const struct channel *c, const struct pollfd *pfds);

/* VIRTIO: poll() reported POLLHUP, so the host was gone at that instant,
 * even if a new one is already connected when we read (a fast reconnect
 * must still reset the session's input).  Always false for other kinds. */
bool channel_hung_up(const struct channel *c, const struct pollfd *pfds);

/* Read into buf.  Returns > 0 bytes, 0 for nothing now, -EPIPE when the
 * host went away (VIRTIO: the first time it is noticed; LISTEN: the
 * connection is closed; FD: the fd is closed and nothing is left), or
 * another -errno. */
ssize_t channel_read(struct channel *c, void *buf, size_t len, uint64_t now);

/* A write to the stream failed with err: note the host as gone the same way
 * channel_read() does.  Returns -EPIPE if that is news, else 0. */
int channel_write_failed(struct channel *c, int err, uint64_t now);

/* Next time the loop must wake up for the channel (ms, 0 = none). */
uint64_t channel_deadline(const struct channel *c);
