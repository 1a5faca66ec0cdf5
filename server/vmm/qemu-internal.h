/* qemu-internal.h — what the QEMU backend's files (qemu.c, qemu-convert.c)
 * share: argv helpers, the pid file, and the ops qemu-convert.c implements. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "vmm.h"

/* The memory backend every VM's RAM lives behind (QEMU's RAM block name). */
#define QEMU_RAM_BACKEND_ID VMM_RAM_BLOCK
/* The netdev a VM's NIC is attached to (its TAP).  build_argv names it last
 * in the NIC's options, so the conversion helper can drop it. */
#define QEMU_NETDEV_ID "net0"

/* Append a printf-formatted argument to a NULL-terminated argv. */
int qemu_argv_add(char ***argv, size_t *n, const char *fmt, ...) _printf_(3, 4);
void qemu_argv_free(char **argv);
int qemu_read_pidfile(const char *vm_dir, int64_t *ret);

int qemu_convert_state(struct vmm_backend *be, const char *vm_dir, const struct vmm_convert *c,
                       struct nerr *e);
const char *qemu_state_ram_block(struct vmm_backend *be, const char *state_path);
