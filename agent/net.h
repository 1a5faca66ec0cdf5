/* net.h — configure the guest's one NIC (DESIGN.md §6, §8): the MAC, its
 * only IPv4 address, the default route, the neighbour table and
 * /etc/resolv.conf, through rtnetlink (lib/rtnl.h, lib/rtnl_link.h).
 *
 * Two callers, one code path:
 *  - SET_NETWORK (protocol v4, control.c), after every restore, clone or
 *    golden-snapshot create: a restored guest still holds its snapshot's
 *    address, MAC, routes and ARP entries, and must not keep any of them;
 *  - net_boot_from_cmdline() at agent start, before the host channel is
 *    opened, for a cold boot's `ip=` (net_cmdline.h), so the network is up
 *    when the host's first handshake succeeds.
 *
 * The NIC: the interface named by ip='s <device> field (remembered from
 * the agent's start, so SET_NETWORK configures the same one) when one of
 * that name exists; otherwise the non-loopback interface with a device
 * behind it (/sys/class/net/<if>/device) and the lowest ifindex — eth0 on
 * our guests, found rather than assumed.
 *
 * Time: all rtnetlink requests of one call share NET_TIMEOUT_MS, below the
 * host's 5 s for a control request; the agent's loop is blocked meanwhile
 * (a handful of requests the kernel answers in microseconds). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "agent_proto.h"

#define NET_TIMEOUT_MS 3000
/* A reason for the host or the log. */
#define NET_MSG_MAX 256

/* Make the NIC look exactly like n (see struct ap_net in agent_proto.h):
 * flush its IPv4 routes, addresses and neighbour entries, then for n->up
 * set the MAC (unless set_mac is false: a cold boot keeps the MAC QEMU
 * gave the device), add n->addr/n->prefix, bring the link up, replace the
 * default route via n->gateway (if set) and write /etc/resolv.conf (if
 * n->dns is set); for !n->up take the link down.  Logs what was
 * configured.  Returns 0, or -errno with msg saying which step failed (the
 * NIC may then be half configured; the next SET_NETWORK starts again from
 * the flush). */
int net_apply(const struct ap_net *n, bool set_mac, char *msg, size_t msg_size);

/* n in words: "172.16.0.2/30 via 172.16.0.1, dns 192.0.2.1, mac
 * aa:fc:00:00:00:01" or "down". */
void net_describe(const struct ap_net *n, bool with_mac, char *out, size_t size);

/* At agent start: read the kernel command line from cmdline_path, apply its
 * ip= with net_apply() and log the outcome (nothing is returned: a guest
 * without a network still gets its agent).  Done once per boot: the marker
 * NET_BOOT_MARKER (on the /run tmpfs) makes an agent that init respawned —
 * possibly inside a clone whose /proc/cmdline still names its original's
 * address — leave the network to the host's SET_NETWORK.  The <device>
 * field is remembered either way.  With dry_run only parse and log. */
#define NET_BOOT_MARKER "/run/noid-agent.net-configured"
void net_boot_from_cmdline(const char *cmdline_path, bool dry_run);
