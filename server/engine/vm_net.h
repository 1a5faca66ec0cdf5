/* vm_net.h — a VM's network (DESIGN.md §8), for the engine's lifecycle code:
 * leased from noid-netd for each VMM start (owner: the VMM's instance id),
 * told to the guest (kernel ip= on a cold boot, the agent after a restore,
 * clone or golden create), given back when that VMM goes. */
#pragma once

#include <stddef.h>

#include "agent_client.h"
#include "db.h"

struct engine;

/* Find the resolver guests get (guest_dns, else the host's first nameserver
 * a guest can reach) once, at engine start; logs what it chose. */
void vm_net_init(struct engine *eng);

/* Lease a network for the VMM instance about to start.  1 with *ret
 * filled; 0 when noid-netd is not running (the VM goes without a network:
 * one warning per outage); -EADDRNOTAVAIL when netd refused, did not
 * answer in time or answered nonsense (the reason in e): the create or
 * restore fails (503) rather than run a VM without the network it should
 * have.  Whatever netd may have set up by then for instance is given back. */
int vm_net_lease(struct engine *eng, const char *instance, struct db_vm_net *ret, struct nerr *e);

/* Give back the lease of owner (tap "" or NULL: whatever owner holds).
 * Failures are logged: the VM is going anyway, and netd removes TAPs
 * nobody holds at its next start.  0 when the TAP is gone or netd is not
 * running (its start sweeps), -errno when netd refused or did not answer. */
int vm_net_release(struct engine *eng, const char *tap, const char *owner);

/* The kernel command line argument of a cold boot with net:
 * "ip=<guest>::<gateway>:<netmask>::eth0:off[:<dns>]". */
int vm_net_cmdline(struct engine *eng, const struct db_vm_net *net, char *out, size_t size);

/* Tell a restored guest its network (net->tap "" : none, its NIC goes
 * down).  Agents older than protocol v4 cannot: a warning, and 0. */
int vm_net_tell_guest(struct engine *eng, struct agent_conn *conn, const struct db_vm_net *net,
                      struct nerr *e);

/* The MAC of a NIC without a lease (netd absent, the golden template):
 * outside the range netd hands out (AA:FC:00:00:00:00 + at most 16383). */
#define VM_NET_UNLEASED_MAC "AA:FC:00:00:FF:FF"
