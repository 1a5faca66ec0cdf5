/* qemu.h — the QEMU backend (-M microvm).  See QEMU-NOTES.md for why each
 * flag is there: pit=on and tsc_early_khz under TCG, ACPI left on, the
 * virtio-serial agent port, the console socket with a logfile. */
#pragma once

#include <stdbool.h>

#include "vmm.h"

struct qemu_options {
    const char *qemu_bin;
    const char *accel;      /* "auto", "kvm", "tcg" */
    const char *kernel;     /* for the KVM probe */
    const char *initrd;
    const char *probe_cache; /* file remembering the KVM probe answer */
    const char *run_as;     /* user the VMMs drop to (-runas), or NULL */
};

int vmm_qemu_new(const struct qemu_options *o, struct vmm_backend **ret, struct nerr *e);
void vmm_qemu_free(struct vmm_backend *be);

/* Whether this backend runs guests with KVM (false: TCG). */
bool vmm_qemu_uses_kvm(struct vmm_backend *be);
/* Whether VMMs run under QEMU's seccomp sandbox (-sandbox). */
bool vmm_qemu_sandboxed(struct vmm_backend *be);
