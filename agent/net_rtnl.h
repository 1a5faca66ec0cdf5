/* net_rtnl.h — a minimal rtnetlink client for the agent: build one request,
 * send it, wait for the kernel's answer (an ACK with its errno, or the
 * messages of a dump).  net.c uses it to configure the guest's NIC without
 * running `ip` (the guest may not have it, and a fork costs milliseconds
 * under TCG).
 *
 * The netlink structures and constants are written out here, with an rtnl_
 * prefix, because musl-gcc has no <linux/...> headers; they are kernel ABI
 * (include/uapi/linux/{netlink,rtnetlink,if_link,if_addr,neighbour}.h) and
 * do not change.
 *
 * Time: every call waits at most until the deadline given to rtnl_open(),
 * so a kernel that never answers (it always does) cannot hang the agent. */
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
#define RTNL_NLM_F_ROOT        0x100
#define RTNL_NLM_F_MATCH       0x200
#define RTNL_NLM_F_DUMP        (RTNL_NLM_F_ROOT | RTNL_NLM_F_MATCH)
#define RTNL_NLM_F_REPLACE     0x100
#define RTNL_NLM_F_CREATE      0x400
#define RTNL_NLM_F_CAPPED      0x100 /* in an ACK: the request was not copied */
#define RTNL_NLM_F_ACK_TLVS    0x200 /* in an ACK: extended ACK attributes follow */
#define RTNL_NLMSGERR_ATTR_MSG 1

#define RTNL_RTM_NEWLINK  16
#define RTNL_RTM_GETLINK  18
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
#define RTNL_IFLA_ADDRESS 1

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

#define RTNL_ALIGN(len) (((len) + 3u) & ~3u)

/* ---- the client ---- */

/* Largest request we build (a header, a fixed message and a few attributes). */
#define RTNL_REQ_MAX 256
/* The reason of the last failure, for a person. */
#define RTNL_ERR_MAX 200

struct rtnl {
    int fd;
    uint32_t seq;
    uint64_t deadline_ms;   /* CLOCK_MONOTONIC, see util.h now_ms() */
    char err[RTNL_ERR_MAX]; /* the kernel's extended ACK message, or "" */
};

/* A request under construction. */
struct rtnl_req {
    union {
        struct rtnl_nlmsghdr h;
        uint8_t buf[RTNL_REQ_MAX];
    };
};

/* Open a NETLINK_ROUTE socket; every later call fails with -ETIMEDOUT once
 * timeout_ms have passed.  Returns 0 or -errno. */
int rtnl_open(struct rtnl *nl, unsigned timeout_ms);
void rtnl_close(struct rtnl *nl);

/* Start req as message type with flags (REQUEST is added), its fixed part
 * a copy of hdr[hdr_len]. */
void rtnl_req_init(struct rtnl_req *req, uint16_t type, uint16_t flags, const void *hdr,
                   size_t hdr_len);
/* Append attribute type with data[len].  The caller keeps within
 * RTNL_REQ_MAX (our requests are a few dozen bytes); a request that would
 * not fit is a bug and aborts. */
void rtnl_req_attr(struct rtnl_req *req, uint16_t type, const void *data, size_t len);

/* Send the request m (a struct rtnl_req's h, or a message taken from a
 * dump and given a new type, as `ip ... flush` does) and wait for its ACK;
 * sets its sequence number and adds NLM_F_REQUEST | NLM_F_ACK.  Returns 0,
 * or the kernel's -errno (its extended ACK message, if any, in nl->err),
 * or -ETIMEDOUT / a socket -errno. */
int rtnl_call(struct rtnl *nl, struct rtnl_nlmsghdr *m);

/* Send req as a dump request and call cb(message, ud) for each message of
 * the answer; a negative return of cb stops the dump (the rest is still
 * read and discarded) and is returned.  Returns 0 or -errno. */
int rtnl_dump(struct rtnl *nl, struct rtnl_req *req,
              int (*cb)(const struct rtnl_nlmsghdr *m, void *ud), void *ud);

/* The attribute of type in the attributes after a message's fixed part of
 * hdr_len bytes, or NULL.  *ret_len gets the length of its data. */
const void *rtnl_attr_find(const struct rtnl_nlmsghdr *m, size_t hdr_len, uint16_t type,
                           size_t *ret_len);
