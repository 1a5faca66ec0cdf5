/* rtnl_link.h — links and IPv4 addresses over rtnl.h: list the links,
 * look one up by name, set its alias, MAC or up/down state, add an
 * address, delete a link.  noid-netd manages its TAPs with these and the
 * guest agent its NIC (both compile this file: it stays libc-only, see
 * rtnl.h).
 *
 * Every call is one request and its answer (a listing: one dump); -errno is
 * the kernel's own (-ENODEV: no such link, -EEXIST: address already there),
 * with its extended ACK message, if any, in nl->err.  Nothing is logged
 * here. */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rtnl.h"

/* IFALIASZ in the kernel: the longest alias plus its NUL */
#define RTNL_ALIAS_MAX 256

struct rtnl_link {
    int ifindex;
    char name[IFNAMSIZ];
    char alias[RTNL_ALIAS_MAX]; /* "" when none */
    bool is_tun;                /* IFLA_INFO_KIND "tun": a TUN/TAP device */
    /* IFLA_CARRIER: for a TUN/TAP device, whether a process has it open
     * (the kernel turns the carrier on at attach and off when the last
     * queue detaches from a persistent device) */
    bool carrier;
    bool has_tun_owner;
    uint32_t tun_owner; /* IFLA_TUN_OWNER */
};

/* A RTM_NEWLINK message m as a struct rtnl_link.  -EBADMSG when m is not
 * one (another type, or shorter than its fixed part). */
int rtnl_link_parse(const struct rtnl_nlmsghdr *m, struct rtnl_link *ret);

/* Every link of the namespace, a malloc'd array of *ret_n entries. */
int rtnl_links(struct rtnl *nl, struct rtnl_link **ret, size_t *ret_n);
/* The link called name; -ENODEV when there is none. */
int rtnl_link_by_name(struct rtnl *nl, const char *name, struct rtnl_link *ret);

/* -ENAMETOOLONG for an alias of RTNL_ALIAS_MAX bytes or more. */
int rtnl_link_set_alias(struct rtnl *nl, int ifindex, const char *alias);
/* Set (up) or clear IFF_UP. */
int rtnl_link_set_up(struct rtnl *nl, int ifindex, bool up);
int rtnl_link_set_mac(struct rtnl *nl, int ifindex, const uint8_t mac[6]);
int rtnl_link_del(struct rtnl *nl, int ifindex);

/* The broadcast address of addr/prefix (both in network byte order, as
 * on the wire) into brd; false for a /31 or /32, which have none
 * (RFC 3021). */
bool rtnl_ipv4_broadcast(const uint8_t addr[4], unsigned prefix, uint8_t brd[4]);
/* addr/prefix (network byte order) on the link, with its subnet's
 * broadcast address when it has one.  An address already there is renewed
 * when replace, else -EEXIST. */
int rtnl_addr_add(struct rtnl *nl, int ifindex, const uint8_t addr[4], unsigned prefix,
                  bool replace);
