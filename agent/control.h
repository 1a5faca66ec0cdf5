/* control.h — the agent's control requests that touch the guest kernel
 * rather than a process: set the wall clock, feed entropy and configure the
 * network.  The host sends them after every restore or clone (clones must
 * never share random state, nor their original's address).  PING needs no
 * kernel work and is answered in session.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_proto.h"

/* With dry_run, the requests are checked and answered but change nothing:
 * for running the agent on a host in tests (as root it would otherwise set
 * the host's clock or reconfigure its NIC). */
void control_set_dry_run(bool dry_run);

/* Set CLOCK_REALTIME to ns nanoseconds since the epoch.  Returns 0 or -errno. */
int control_set_time(uint64_t ns);

/* Mix len bytes (1..AP_MAX_ENTROPY) into the kernel pool, credited as full
 * entropy, then ask the kernel to reseed its CRNG now so the next
 * getrandom() already differs between clones.  Returns 0 or -errno. */
int control_add_entropy(const uint8_t *bytes, size_t len);

/* Configure the guest's NIC as n says (net.h, net_apply()).  Returns 0, or
 * -errno with msg[msg_size] saying which step failed. */
int control_set_network(const struct ap_net *n, char *msg, size_t msg_size);
