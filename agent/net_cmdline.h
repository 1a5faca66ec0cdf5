/* net_cmdline.h — the kernel command line's `ip=` parameter, as the host
 * writes it for a cold boot (DESIGN.md §8):
 *
 *   ip=<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>:<dns0-ip>
 *
 * (the form of the kernel's Documentation/admin-guide/nfs/nfsroot.rst; the
 * host passes ip=<guest>::<gateway>:<netmask>::eth0:off[:<dns>]).  The
 * guest kernel never applies it itself (virtio_net is a module, loaded by
 * the initramfs after the kernel's own ip= code ran), so the agent does, at
 * start, with the code that serves SET_NETWORK.
 *
 * Understood: the static form with a client address and a contiguous
 * netmask; an optional gateway (inside the subnet) and dns0; autoconf
 * empty, "off" or "none".  Ignored: server-ip, hostname, dns1 and ntp0.
 * Refused (the caller logs and leaves the network alone): DHCP/BOOTP/RARP
 * autoconfiguration, a missing or broken address or netmask.
 *
 * Pure: no I/O, no allocation; the unit tests and a fuzz target call it. */
#pragma once

#include <stddef.h>

#include "agent_proto.h"

/* IFNAMSIZ - 1 */
#define NET_CMDLINE_DEV_MAX 15

struct net_cmdline {
    struct ap_net net;                 /* up; mac all zero: the NIC keeps its own */
    char dev[NET_CMDLINE_DEV_MAX + 1]; /* the <device> field, "" if empty */
};

/* Parse the last ip= of the kernel command line cmdline[len] (the text of
 * /proc/cmdline; parameters after a bare "--" belong to init and are not
 * looked at; double quotes group as for the kernel).  Returns 1 with *ret
 * filled; 0 if there is no ip= or it is "off"/"none" (*ret_why then NULL or
 * "ip=off"); -EINVAL for an ip= this parser does not understand, with
 * *ret_why saying why (a static string).  *ret is untouched unless 1 is
 * returned. */
int net_cmdline_parse(const char *cmdline, size_t len, struct net_cmdline *ret,
                      const char **ret_why);
