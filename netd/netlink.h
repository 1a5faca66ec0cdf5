/* netlink.h — the few rtnetlink operations netd needs, on a NETLINK_ROUTE
 * socket of its own network namespace: list links, look one up by name,
 * set its alias and bring it up, add an IPv4 address, delete a link.
 *
 * Every call is one request and its answer; -errno is the kernel's own
 * (-ENODEV: no such link, -EEXIST: address already there).  Nothing is
 * logged here. */
#pragma once

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* IFALIASZ in the kernel: the longest alias plus its NUL */
#define NL_ALIAS_MAX 256

struct nl_link {
    int ifindex;
    char name[IFNAMSIZ];
    char alias[NL_ALIAS_MAX]; /* "" when none */
    bool is_tun;              /* IFLA_INFO_KIND "tun": a TUN/TAP device */
    /* IFLA_CARRIER: for a TUN/TAP device, whether a process has it open
     * (the kernel turns the carrier on at attach and off when the last
     * queue detaches from a persistent device) */
    bool carrier;
    bool has_tun_owner;
    uint32_t tun_owner; /* IFLA_TUN_OWNER */
};

/* A NETLINK_ROUTE socket (CLOEXEC), closed by the caller. */
int nl_open(int *ret_fd);

/* Every link of the namespace, malloc'd array of *ret_n entries. */
int nl_links(int fd, struct nl_link **ret, size_t *ret_n);
/* The link called name; -ENODEV when there is none. */
int nl_link_by_name(int fd, const char *name, struct nl_link *ret);

int nl_link_set_alias(int fd, int ifindex, const char *alias);
int nl_link_set_up(int fd, int ifindex);
/* addr/prefix (host byte order) with its subnet's broadcast address. */
int nl_addr_add(int fd, int ifindex, uint32_t addr, int prefix);
int nl_link_del(int fd, int ifindex);
