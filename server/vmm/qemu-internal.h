/* qemu-internal.h — what the QEMU backend's files (qemu.c, qemu-convert.c)
 * share: the backend's state and argv helpers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "vmm.h"

/* The memory backend every VM's RAM lives behind (QEMU's RAM block name). */
#define QEMU_RAM_BACKEND_ID "mem"

/* seccomp filter: what works with -daemonize and -runas on QEMU 7.2
 * (spawn=deny forbids the daemonizing fork, elevateprivileges=deny the
 * setuid of -runas). */
#define QEMU_SANDBOX_OPTS "on,obsolete=deny,resourcecontrol=deny"

struct qemu {
    char *bin;
    bool kvm;
    bool sandbox; /* QEMU supports -sandbox (probed once) */
    char *run_as; /* -runas user, or NULL */
    char version[128];
    char cmdline[512];
};

/* Append a printf-formatted argument to a NULL-terminated argv. */
int qemu_argv_add(char ***argv, size_t *n, const char *fmt, ...) _printf_(3, 4);
void qemu_argv_free(char **argv);
/* -sandbox and -runas as configured. */
int qemu_add_confinement(struct qemu *q, char ***argv, size_t *n);
/* Whether bin accepts -sandbox QEMU_SANDBOX_OPTS (built with seccomp). */
bool qemu_probe_sandbox(const char *bin);
int qemu_read_pidfile(const char *vm_dir, int64_t *ret);

int qemu_convert_state(struct vmm_backend *be, const char *vm_dir, const struct vmm_convert *c,
                       struct nerr *e);
int qemu_recover(struct vmm_backend *be, const char *vm_dir, bool *ret_resumed, struct nerr *e);
