/* route.h — what the host's IPv4 routing says that netd needs: the
 * interface of the default route (where NAT goes out) and whether the
 * host forwards at all.  Both are read from /proc, which shows the network
 * namespace netd runs in. */
#pragma once

#include <net/if.h>
#include <stdbool.h>

/* The interface of the default route (lowest metric) in a
 * /proc/net/route text; -ENOENT when it has none. */
int route_default_parse(const char *text, char ret_ifname[IFNAMSIZ]);
/* The same from /proc/net/route. */
int route_default_ifname(char ret_ifname[IFNAMSIZ]);
/* net.ipv4.ip_forward, from /proc/sys/net/ipv4/ip_forward. */
int route_ip_forward(bool *ret_on);
