/* control.h — the agent's control requests that touch the guest kernel
 * rather than a process: set the wall clock and feed entropy.  The host sends
 * both after every restore or clone (clones must never share random state).
 * PING needs no kernel work and is answered in session.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* With dry_run, both requests are checked and answered but change nothing:
 * for running the agent on a host in tests (as root it would otherwise set
 * the host's clock). */
void control_set_dry_run(bool dry_run);

/* Set CLOCK_REALTIME to ns nanoseconds since the epoch.  Returns 0 or -errno. */
int control_set_time(uint64_t ns);

/* Mix len bytes (1..AP_MAX_ENTROPY) into the kernel pool, credited as full
 * entropy, then ask the kernel to reseed its CRNG now so the next
 * getrandom() already differs between clones.  Returns 0 or -errno. */
int control_add_entropy(const uint8_t *bytes, size_t len);
