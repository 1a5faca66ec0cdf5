/* firecracker.h — the Firecracker backend.
 *
 * One firecracker process per VM (started detached, in the VM directory),
 * configured through its API socket exactly as the official API spec
 * (shared/firecracker/firecracker.yaml) allows; the agent is reached over
 * vsock (connect to v.sock, "CONNECT <port>\n", "OK <n>\n").
 *
 * Firecracker needs a usable /dev/kvm, which our own machines do not have, so
 * this backend is exercised by a contract test that validates every request
 * against the spec (tests/integration/firecracker/). */
#pragma once

#include <stdbool.h>

#include "vmm.h"

struct firecracker_options {
    const char *firecracker_bin;
    const char *boot_args;   /* kernel command line */
};

/* Whether bin is an executable file and /dev/kvm can be opened read-write. */
bool vmm_firecracker_available(const char *bin);

int vmm_firecracker_new(const struct firecracker_options *o, struct vmm_backend **ret,
                        struct nerr *e);
void vmm_firecracker_free(struct vmm_backend *be);
