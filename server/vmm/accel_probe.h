/* accel_probe.h — decide between KVM and TCG for QEMU.
 *
 * /dev/kvm existing proves nothing: on nested hosts QEMU starts under KVM and
 * then hangs forever (QEMU-NOTES.md).  So "auto" boots the real guest kernel
 * and initramfs under KVM with a short timeout and waits for the initramfs
 * marker on the serial console.  The answer is remembered in a cache file,
 * keyed by the kernel (size, mtime) and the QEMU version, so the ~3 s a
 * failed probe costs is paid once. */
#pragma once

#include <stdbool.h>

#include "nerr.h"
#include "qemu.h"

#define ACCEL_PROBE_TIMEOUT_MS 4000
#define ACCEL_PROBE_MARKER "noid-init"

int accel_choose(const struct qemu_options *o, bool *ret_kvm, struct nerr *e);
