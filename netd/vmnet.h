/* vmnet.h — one VM's network as netd keeps it: a persistent TAP noid<N>
 * owned by the server's uid, whose alias "noid:<owner>" names the VM it
 * belongs to, with the host address of the N-th /30 (alloc.h), up.
 *
 * The kernel's links are the only record: which indexes are taken, who
 * owns a TAP and whether a VMM holds it are read from them on every
 * request, so nothing is lost or stale across netd restarts.
 *
 * Invariant: nothing here deletes a link unless it is named noid<N> and is
 * a TUN/TAP device (IFLA_INFO_KIND "tun").  Nothing is logged; errors carry
 * their sentence in a struct nerr. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "alloc.h"
#include "nerr.h"
#include "rtnl.h"

struct vmnet {
    struct rtnl nl;   /* NETLINK_ROUTE socket (rtnl_link.h) */
    uid_t server_uid; /* owner of every TAP created */
    uint32_t max_taps;
};

/* The TAP of owner: the one it already has (a retried setup), else a new
 * one at the lowest free index.  Failing half-way removes what it created.
 * -ENOSPC when all max_taps indexes are taken. */
int vmnet_setup(struct vmnet *v, const char *owner, struct netd_addrs *ret, struct nerr *e);

/* Remove the TAP named tap (when not NULL) and/or the one owner has (when
 * not NULL); with both, tap must be owner's.  *ret_gone is true when there
 * was nothing to remove (idempotent); ret_tap gets the name of the TAP
 * removed or found gone ("" when none was named or found).  -EPERM when
 * refused (not a TUN/TAP device, another owner's). */
int vmnet_teardown(struct vmnet *v, const char *tap, const char *owner,
                   char ret_tap[NETD_TAP_NAME_MAX], bool *ret_gone, struct nerr *e);

/* Called for each orphan removed (err 0) or that could not be (-errno). */
typedef void (*vmnet_orphan_cb)(const char *tap, const char *owner, int err, void *data);

/* Remove every noid<N> TAP no process holds open (carrier off): TAPs of
 * VMs that died while netd was away.  Returns how many were removed. */
int vmnet_sweep_orphans(struct vmnet *v, vmnet_orphan_cb cb, void *data);
