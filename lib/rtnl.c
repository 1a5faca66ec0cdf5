/* rtnl.c — see rtnl.h.
 *
 * One request at a time: each gets a fresh sequence number and only
 * messages from the kernel (nl_pid 0) carrying it are looked at, so the
 * late answer of a request that timed out is skipped, never taken for the
 * next one's.  Replies are read into a buffer of the struct rtnl, allocated
 * once at the open: 64 KiB, twice the most the kernel puts in one dump
 * datagram (32 KiB for a reader that offers that much), and far more than
 * one link's GETLINK reply without its statistics. */
#include "rtnl.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "timeutil.h"

#define RTNL_RX_MAX (64u * 1024)

_Static_assert(sizeof(struct rtnl_nlmsghdr) == 16, "nlmsghdr");
_Static_assert(sizeof(struct rtnl_nlmsgerr) == 20, "nlmsgerr");
_Static_assert(sizeof(struct rtnl_ifinfomsg) == 16, "ifinfomsg");
_Static_assert(sizeof(struct rtnl_ifaddrmsg) == 8, "ifaddrmsg");
_Static_assert(sizeof(struct rtnl_rtmsg) == 12, "rtmsg");
_Static_assert(sizeof(struct rtnl_ndmsg) == 12, "ndmsg");
_Static_assert(sizeof(struct rtnl_sockaddr_nl) == 12, "sockaddr_nl");

int rtnl_open(struct rtnl *nl, unsigned timeout_ms, enum rtnl_timeout mode)
{
    struct rtnl_sockaddr_nl sa = {.nl_family = AF_NETLINK};
    int one = 1, r;

    memset(nl, 0, sizeof(*nl));
    nl->mode = mode;
    nl->timeout_ms = timeout_ms;
    nl->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, RTNL_NETLINK_ROUTE);
    if (nl->fd < 0 || bind(nl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r = -errno;
        goto fail;
    }
    nl->rx = malloc(RTNL_RX_MAX);
    if (!nl->rx) {
        r = -ENOMEM;
        goto fail;
    }
    /* the kernel's reason in words ("Nexthop has invalid gateway"), without
     * a copy of our request in every ACK; both only since Linux 4.12/4.3,
     * so a refusal is not an error */
    (void)setsockopt(nl->fd, RTNL_SOL_NETLINK, RTNL_NETLINK_EXT_ACK, &one, sizeof(one));
    (void)setsockopt(nl->fd, RTNL_SOL_NETLINK, RTNL_NETLINK_CAP_ACK, &one, sizeof(one));
    /* a start that differs from one open to the next, so a socket number
     * reused within a process never meets the old one's answers */
    nl->seq = (uint32_t)time_mono_ms();
    nl->deadline_ms = time_mono_ms() + timeout_ms;
    return 0;

fail:
    rtnl_close(nl);
    return r;
}

void rtnl_close(struct rtnl *nl)
{
    if (nl->fd >= 0)
        close(nl->fd);
    nl->fd = -1;
    free(nl->rx);
    nl->rx = NULL;
}

void rtnl_req_init(struct rtnl_req *req, uint16_t type, uint16_t flags, const void *hdr,
                   size_t hdr_len)
{
    memset(req, 0, sizeof(*req));
    if (sizeof(struct rtnl_nlmsghdr) + RTNL_ALIGN(hdr_len) > RTNL_REQ_MAX)
        abort();
    req->h.nlmsg_len = (uint32_t)(sizeof(struct rtnl_nlmsghdr) + RTNL_ALIGN(hdr_len));
    req->h.nlmsg_type = type;
    req->h.nlmsg_flags = (uint16_t)(RTNL_NLM_F_REQUEST | flags);
    memcpy(req->buf + sizeof(struct rtnl_nlmsghdr), hdr, hdr_len);
}

void rtnl_req_attr(struct rtnl_req *req, uint16_t type, const void *data, size_t len)
{
    struct rtnl_rtattr a = {.rta_len = (uint16_t)(sizeof(a) + len), .rta_type = type};
    size_t off = req->h.nlmsg_len;

    if (off + RTNL_ALIGN(sizeof(a) + len) > RTNL_REQ_MAX)
        abort();
    memcpy(req->buf + off, &a, sizeof(a));
    memcpy(req->buf + off + sizeof(a), data, len);
    req->h.nlmsg_len = (uint32_t)(off + RTNL_ALIGN(sizeof(a) + len));
}

const void *rtnl_msg_attrs(const struct rtnl_nlmsghdr *m, size_t hdr_len, size_t *ret_len)
{
    size_t off = sizeof(*m) + RTNL_ALIGN(hdr_len);

    if (m->nlmsg_len < off)
        return NULL;
    *ret_len = m->nlmsg_len - off;
    return (const uint8_t *)m + off;
}

const void *rtnl_attrs_find(const void *p, size_t len, uint16_t type, size_t *ret_len)
{
    const uint8_t *b = p;
    size_t off = 0;

    while (off + sizeof(struct rtnl_rtattr) <= len) {
        struct rtnl_rtattr a;

        /* memcpy: a nested attribute's data need not be aligned for us */
        memcpy(&a, b + off, sizeof(a));
        if (a.rta_len < sizeof(a) || a.rta_len > len - off)
            return NULL;
        /* the top bits are NLA_F_NESTED / NLA_F_NET_BYTEORDER */
        if ((a.rta_type & 0x3fff) == type) {
            *ret_len = a.rta_len - sizeof(a);
            return b + off + sizeof(a);
        }
        off += RTNL_ALIGN(a.rta_len);
    }
    return NULL;
}

const void *rtnl_attr_find(const struct rtnl_nlmsghdr *m, size_t hdr_len, uint16_t type,
                           size_t *ret_len)
{
    size_t len;
    const void *p = rtnl_msg_attrs(m, hdr_len, &len);

    return p ? rtnl_attrs_find(p, len, type, ret_len) : NULL;
}

bool rtnl_attrs_string(const void *p, size_t len, uint16_t type, char *out, size_t size)
{
    size_t n;
    const char *s = rtnl_attrs_find(p, len, type, &n);

    out[0] = '\0';
    if (!s)
        return false;
    n = strnlen(s, n);
    if (n >= size)
        n = size - 1;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

static int rtnl_send(struct rtnl *nl, struct rtnl_nlmsghdr *m)
{
    struct rtnl_sockaddr_nl sa = {.nl_family = AF_NETLINK};
    ssize_t n;

    nl->err[0] = '\0';
    nl->dump_intr = false;
    if (nl->mode == RTNL_TIMEOUT_EACH)
        nl->deadline_ms = time_mono_ms() + nl->timeout_ms;
    m->nlmsg_seq = ++nl->seq;
    m->nlmsg_pid = 0;
    do
        n = sendto(nl->fd, m, m->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa));
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    return n == (ssize_t)m->nlmsg_len ? 0 : -EIO;
}

/* Receive one datagram from the kernel into buf before the deadline.
 * Returns its length or -errno. */
static ssize_t rtnl_recv(struct rtnl *nl, uint8_t *buf, size_t size)
{
    for (;;) {
        struct rtnl_sockaddr_nl sa;
        struct iovec iov = {.iov_base = buf, .iov_len = size};
        struct msghdr mh = {
            .msg_name = &sa, .msg_namelen = sizeof(sa), .msg_iov = &iov, .msg_iovlen = 1};
        struct pollfd p = {.fd = nl->fd, .events = POLLIN};
        int left = time_left_ms(nl->deadline_ms);
        ssize_t n;

        if (left == 0)
            return -ETIMEDOUT;
        if (poll(&p, 1, left) < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        n = recvmsg(nl->fd, &mh, MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            return -errno;
        }
        if (mh.msg_flags & MSG_TRUNC)
            return -EMSGSIZE;
        if (sa.nl_pid != 0)
            continue; /* not from the kernel */
        return n;
    }
}

/* The extended ACK message of an NLMSG_ERROR m (if any) into nl->err. */
static void rtnl_take_ext_ack(struct rtnl *nl, const struct rtnl_nlmsghdr *m)
{
    const struct rtnl_nlmsgerr *e = (const void *)(m + 1);
    size_t skip;
    const char *msg;
    size_t len;

    if (!(m->nlmsg_flags & RTNL_NLM_F_ACK_TLVS))
        return;
    /* the TLVs follow the error and the echoed request (only its header
     * when capped): present them as attributes after a fixed part */
    skip = sizeof(*e);
    if (!(m->nlmsg_flags & RTNL_NLM_F_CAPPED) && e->msg.nlmsg_len > sizeof(e->msg))
        skip += RTNL_ALIGN(e->msg.nlmsg_len - sizeof(e->msg));
    if (sizeof(*m) + skip > m->nlmsg_len)
        return;
    msg = rtnl_attr_find(m, skip, RTNL_NLMSGERR_ATTR_MSG, &len);
    if (msg && len > 0)
        snprintf(nl->err, sizeof(nl->err), "%.*s", (int)strnlen(msg, len), msg);
}

/* Read answers to the current request.  The messages of a get or a dump
 * go to cb (when cb is not NULL); the end is an NLMSG_ERROR (an ACK, error
 * 0 or not) or, for a dump, NLMSG_DONE.  Returns 0, -errno of the kernel,
 * or the first negative cb result. */
static int rtnl_read_answer(struct rtnl *nl, rtnl_msg_cb cb, void *ud)
{
    int cb_r = 0;

    for (;;) {
        ssize_t n = rtnl_recv(nl, nl->rx, RTNL_RX_MAX);
        size_t off = 0;

        if (n < 0)
            return (int)n;
        while (off + sizeof(struct rtnl_nlmsghdr) <= (size_t)n) {
            const struct rtnl_nlmsghdr *m = (const void *)(nl->rx + off);

            if (m->nlmsg_len < sizeof(*m) || m->nlmsg_len > (size_t)n - off)
                break; /* a truncated message: the rest of the datagram is void */
            off += RTNL_ALIGN(m->nlmsg_len);
            if (m->nlmsg_seq != nl->seq)
                continue;
            if (m->nlmsg_flags & RTNL_NLM_F_DUMP_INTR)
                nl->dump_intr = true;
            if (m->nlmsg_type == RTNL_NLMSG_ERROR) {
                const struct rtnl_nlmsgerr *e = (const void *)(m + 1);

                if (m->nlmsg_len < sizeof(*m) + sizeof(e->error))
                    return -EBADMSG;
                if (e->error < 0 && m->nlmsg_len >= sizeof(*m) + sizeof(*e))
                    rtnl_take_ext_ack(nl, m);
                return e->error < 0 ? e->error : cb_r;
            }
            if (m->nlmsg_type == RTNL_NLMSG_DONE) {
                int err = 0;

                if (m->nlmsg_len >= sizeof(*m) + sizeof(err))
                    memcpy(&err, m + 1, sizeof(err));
                return err < 0 ? err : cb_r;
            }
            if (cb && cb_r >= 0)
                cb_r = cb(m, ud);
        }
    }
}

/* Send m with the flags of its kind and read the answer. */
static int rtnl_exchange(struct rtnl *nl, struct rtnl_nlmsghdr *m, uint16_t flags, rtnl_msg_cb cb,
                         void *ud)
{
    int r;

    m->nlmsg_flags |= (uint16_t)(RTNL_NLM_F_REQUEST | flags);
    r = rtnl_send(nl, m);
    if (r < 0)
        return r;
    return rtnl_read_answer(nl, cb, ud);
}

int rtnl_call(struct rtnl *nl, struct rtnl_nlmsghdr *m)
{
    return rtnl_exchange(nl, m, RTNL_NLM_F_ACK, NULL, NULL);
}

int rtnl_get(struct rtnl *nl, struct rtnl_req *req, rtnl_msg_cb cb, void *ud)
{
    return rtnl_exchange(nl, &req->h, RTNL_NLM_F_ACK, cb, ud);
}

int rtnl_dump(struct rtnl *nl, struct rtnl_req *req, rtnl_msg_cb cb, void *ud)
{
    /* no NLM_F_ACK: a dump ends with NLMSG_DONE */
    return rtnl_exchange(nl, &req->h, RTNL_NLM_F_DUMP, cb, ud);
}
