/* rtnl.h — a minimal rtnetlink client: build one request, send it, wait
 * for the kernel's answer (an ACK with its errno, the reply messages of a
 * get, or the messages of a dump).  Both the guest agent (agent/net.c:
 * configuring the guest's NIC without running `ip`, which the guest may not
 * have and whose fork costs milliseconds under TCG) and noid-netd (its
 * TAPs, through rtnl_link.h) talk to the kernel through it.
 *
 * libc only: the agent is a static binary built with musl-gcc, which
 * compiles this file directly (agent/meson.build).  That is also why the
 * netlink structures and constants are written out here, with an rtnl_
 * prefix: musl-gcc has no <linux/...> headers.  They are kernel ABI
 * (include/uapi/linux/{netlink,rtnetlink,if_link,if_addr,neighbour}.h) and
 * do not change; tests/unit/test_rtnl.c checks them against the headers.
 *
 * Time: every call waits at most until a deadline (see rtnl_open()), so a
 * kernel that never answers (it always does) cannot hang the caller. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- kernel ABI ---- */

#define RTNL_NETLINK_ROUTE   0
#define RTNL_SOL_NETLINK     270
#define RTNL_NETLINK_CAP_ACK 10
#define RTNL_NETLINK_EXT_ACK 11

struct rtnl_nlmsghdr {
    uint32_t nlmsg_len;
    uint16_t nlmsg_type;
    uint16_t nlmsg_flags;
    uint32_t nlmsg_seq;
    uint32_t nlmsg_pid;
};

struct rtnl_sockaddr_nl {
    uint16_t nl_family; /* AF_NETLINK */
    uint16_t nl_pad;
    uint32_t nl_pid;
    uint32_t nl_groups;
};

struct rtnl_nlmsgerr {
    int error;
    struct rtnl_nlmsghdr msg;
};

struct rtnl_rtattr {
    uint16_t rta_len;
    uint16_t rta_type;
};

#define RTNL_NLMSG_ERROR 2
#define RTNL_NLMSG_DONE  3

#define RTNL_NLM_F_REQUEST     0x001
#define RTNL_NLM_F_MULTI       0x002
#define RTNL_NLM_F_ACK         0x004
#define RTNL_NLM_F_DUMP_INTR   0x010 /* a dump's table changed while it was read */
#define RTNL_NLM_F_ROOT        0x100
#define RTNL_NLM_F_MATCH       0x200
#define RTNL_NLM_F_DUMP        (RTNL_NLM_F_ROOT | RTNL_NLM_F_MATCH)
#define RTNL_NLM_F_REPLACE     0x100
#define RTNL_NLM_F_EXCL        0x200
#define RTNL_NLM_F_CREATE      0x400
#define RTNL_NLM_F_CAPPED      0x100 /* in an ACK: the request was not copied */
#define RTNL_NLM_F_ACK_TLVS    0x200 /* in an ACK: extended ACK attributes follow */
#define RTNL_NLMSGERR_ATTR_MSG 1

#define RTNL_RTM_NEWLINK  16
#define RTNL_RTM_DELLINK  17
#define RTNL_RTM_GETLINK  18
#define RTNL_RTM_SETLINK  19
#define RTNL_RTM_NEWADDR  20
#define RTNL_RTM_DELADDR  21
#define RTNL_RTM_GETADDR  22
#define RTNL_RTM_NEWROUTE 24
#define RTNL_RTM_DELROUTE 25
#define RTNL_RTM_GETROUTE 26
#define RTNL_RTM_NEWNEIGH 28
#define RTNL_RTM_DELNEIGH 29
#define RTNL_RTM_GETNEIGH 30

struct rtnl_ifinfomsg {
    uint8_t ifi_family;
    uint8_t ifi_pad;
    uint16_t ifi_type;
    int32_t ifi_index;
    uint32_t ifi_flags;
    uint32_t ifi_change;
};
#define RTNL_IFLA_ADDRESS  1
#define RTNL_IFLA_IFNAME   3
#define RTNL_IFLA_LINKINFO 18
#define RTNL_IFLA_IFALIAS  20
#define RTNL_IFLA_EXT_MASK 29
#define RTNL_IFLA_CARRIER  33
/* inside IFLA_LINKINFO */
#define RTNL_IFLA_INFO_KIND 1
#define RTNL_IFLA_INFO_DATA 2
/* inside IFLA_INFO_DATA of a "tun" link */
#define RTNL_IFLA_TUN_OWNER 1
/* IFLA_EXT_MASK bits */
#define RTNL_RTEXT_FILTER_SKIP_STATS (1u << 3)

struct rtnl_ifaddrmsg {
    uint8_t ifa_family;
    uint8_t ifa_prefixlen;
    uint8_t ifa_flags;
    uint8_t ifa_scope;
    uint32_t ifa_index;
};
#define RTNL_IFA_ADDRESS   1
#define RTNL_IFA_LOCAL     2
#define RTNL_IFA_BROADCAST 4

struct rtnl_rtmsg {
    uint8_t rtm_family;
    uint8_t rtm_dst_len;
    uint8_t rtm_src_len;
    uint8_t rtm_tos;
    uint8_t rtm_table;
    uint8_t rtm_protocol;
    uint8_t rtm_scope;
    uint8_t rtm_type;
    uint32_t rtm_flags;
};
#define RTNL_RTA_DST           1
#define RTNL_RTA_OIF           4
#define RTNL_RTA_GATEWAY       5
#define RTNL_RTA_PRIORITY      6
#define RTNL_RTA_TABLE         15
#define RTNL_RT_TABLE_MAIN     254
#define RTNL_RT_TABLE_LOCAL    255
#define RTNL_RTPROT_BOOT       3
#define RTNL_RT_SCOPE_UNIVERSE 0
#define RTNL_RTN_UNICAST       1

struct rtnl_ndmsg {
    uint8_t ndm_family;
    uint8_t ndm_pad1;
    uint16_t ndm_pad2;
    int32_t ndm_ifindex;
    uint16_t ndm_state;
    uint8_t ndm_flags;
    uint8_t ndm_type;
};
#define RTNL_NDA_DST   1
#define RTNL_NUD_NOARP 0x40

/* ~(size_t)3: a 32-bit ~3u would clear the high bits of a size_t length */
#define RTNL_ALIGN(len) (((len) + (size_t)3) & ~(size_t)3)

/* ---- the client ---- */

/* Largest request we build: a header, a fixed message and a few
 * attributes, the longest a link alias (IFALIASZ, 256 bytes with its NUL). */
#define RTNL_REQ_MAX 512
/* The reason of the last failure, for a person. */
#define RTNL_ERR_MAX 200

/* How the timeout given to rtnl_open() counts. */
enum rtnl_timeout {
    /* from the open, for every call together: a short-lived user that
     * opens, does a few calls and closes (the agent's SET_NETWORK) */
    RTNL_TIMEOUT_TOTAL,
    /* from the start of each call: a daemon that keeps its socket open
     * (noid-netd) */
    RTNL_TIMEOUT_EACH,
};

struct rtnl {
    int fd;
    uint32_t seq;
    enum rtnl_timeout mode;
    unsigned timeout_ms;
    int64_t deadline_ms;    /* CLOCK_MONOTONIC, see timeutil.h time_mono_ms() */
    uint8_t *rx;            /* the answers are read here (RTNL_RX_MAX, rtnl.c) */
    bool dump_intr;         /* the last dump was flagged NLM_F_DUMP_INTR */
    char err[RTNL_ERR_MAX]; /* the kernel's extended ACK message, or "" */
};

/* A struct rtnl that rtnl_close() may be called on before rtnl_open(). */
#define RTNL_CLOSED                                                                                \
    {                                                                                              \
        .fd = -1                                                                                   \
    }

/* A request under construction. */
struct rtnl_req {
    union {
        struct rtnl_nlmsghdr h;
        uint8_t buf[RTNL_REQ_MAX];
    };
};

/* Open a NETLINK_ROUTE socket; a call fails with -ETIMEDOUT once
 * timeout_ms have passed, counted as mode says.  Returns 0 or -errno (nl
 * is then closed). */
int rtnl_open(struct rtnl *nl, unsigned timeout_ms, enum rtnl_timeout mode);
/* Idempotent; nl may be RTNL_CLOSED or a failed open. */
void rtnl_close(struct rtnl *nl);

/* Start req as message type with flags (REQUEST is added), its fixed part
 * a copy of hdr[hdr_len]. */
void rtnl_req_init(struct rtnl_req *req, uint16_t type, uint16_t flags, const void *hdr,
                   size_t hdr_len);
/* Append attribute type with data[len].  The caller keeps within
 * RTNL_REQ_MAX (our requests are a few dozen bytes, an alias at most 256);
 * a request that would not fit is a bug and aborts. */
void rtnl_req_attr(struct rtnl_req *req, uint16_t type, const void *data, size_t len);

/* Called with each message of an answer; a negative return stops the
 * callbacks (the rest of the answer is still read and discarded) and is
 * what the call returns. */
typedef int (*rtnl_msg_cb)(const struct rtnl_nlmsghdr *m, void *ud);

/* Send the request m (a struct rtnl_req's h, or a message taken from a
 * dump and given a new type, as `ip ... flush` does) and wait for its ACK;
 * sets its sequence number and adds NLM_F_REQUEST | NLM_F_ACK.  Returns 0,
 * or the kernel's -errno (its extended ACK message, if any, in nl->err),
 * or -ETIMEDOUT / a socket -errno. */
int rtnl_call(struct rtnl *nl, struct rtnl_nlmsghdr *m);
/* The same for a request the kernel answers with messages before its ACK
 * (a GETLINK of one link): each goes to cb(message, ud). */
int rtnl_get(struct rtnl *nl, struct rtnl_req *req, rtnl_msg_cb cb, void *ud);

/* Send req as a dump request and call cb(message, ud) for each message of
 * the answer.  Returns 0 or -errno.  nl->dump_intr tells afterwards whether
 * the kernel flagged the dump inconsistent (its table changed meanwhile);
 * a caller that needs a coherent list dumps again. */
int rtnl_dump(struct rtnl *nl, struct rtnl_req *req, rtnl_msg_cb cb, void *ud);

/* The attributes after a message's fixed part of hdr_len bytes, their
 * length in *ret_len; NULL when m is shorter than that fixed part. */
const void *rtnl_msg_attrs(const struct rtnl_nlmsghdr *m, size_t hdr_len, size_t *ret_len);
/* The attribute of type among the attributes in p[len], or NULL.  *ret_len
 * gets the length of its data.  For a nested attribute, p and len are the
 * data and length of the one it is in. */
const void *rtnl_attrs_find(const void *p, size_t len, uint16_t type, size_t *ret_len);
/* The attribute of type in the attributes after a message's fixed part of
 * hdr_len bytes, or NULL. */
const void *rtnl_attr_find(const struct rtnl_nlmsghdr *m, size_t hdr_len, uint16_t type,
                           size_t *ret_len);
/* The string attribute of type, copied into out[size] (cut to fit, always
 * NUL-terminated); false, and out "", when there is none.  The kernel's
 * strings carry their NUL, but a copy never relies on it. */
bool rtnl_attrs_string(const void *p, size_t len, uint16_t type, char *out, size_t size);
