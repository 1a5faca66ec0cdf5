/* vmm.h — one interface, two VMM backends (QEMU, Firecracker).
 *
 * The engine decides *what* runs (which files, how much CPU and memory,
 * whether it boots cold or resumes a saved state); a backend decides *how*
 * its VMM is told so.  Every VMM process runs detached in its own session
 * with the VM directory as its working directory, so it outlives
 * noid-server; the engine finds it again by pid + instance id.
 *
 * Files a backend creates inside the VM directory have the names below, so
 * the engine and the tests can find them without asking the backend.  Unix
 * sockets are bound with relative names because absolute socket paths can
 * exceed the 108-byte sun_path limit. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "nerr.h"

#define VM_FILE_ROOTFS "rootfs.ext4"
#define VM_FILE_SERIAL_LOG "serial.log"
#define VM_FILE_SERIAL_IN "serial.in"      /* Firecracker: FIFO to its stdin */
#define VM_FILE_CONSOLE_SOCK "console.sock" /* QEMU: serial console input */
#define VM_FILE_AGENT_SOCK "agent.sock"     /* QEMU: virtio-serial agent port */
#define VM_FILE_QMP_SOCK "qmp.sock"
#define VM_FILE_QEMU_PID "qemu.pid"
#define VM_FILE_VMM_LOG "vmm.log"           /* the VMM's own stderr */
#define VM_FILE_FC_SOCK "firecracker.sock"
#define VM_FILE_FC_LOG "firecracker.log"
#define VM_FILE_VSOCK "v.sock"              /* Firecracker: vsock host side */
#define VM_FILE_MEMORY "memory.snap"        /* guest RAM / saved memory */
#define VM_FILE_VMSTATE "vmstate.snap"      /* saved CPU + device state */

struct vmm_boot {
    const char *vm_dir;      /* absolute; the VMM's working directory */
    const char *instance_id; /* unique per VMM process; appears in its argv */
    const char *kernel;
    const char *initrd;      /* may be NULL */
    const char *rootfs;      /* absolute path of this VM's own disk */
    int cpus;
    int mem_mib;
    /* Guest RAM backing: NULL = anonymous memory.  Otherwise a file of
     * exactly mem_mib MiB; mem_shared maps it MAP_SHARED (the file *is* the
     * RAM and can be snapshotted), else MAP_PRIVATE (copy-on-write clone of a
     * template: unchanged pages are shared between all clones). */
    const char *mem_file;
    bool mem_shared;
    /* Resume instead of booting: the saved VM_FILE_VMSTATE.  Its RAM comes
     * from the state file itself, or — when restore_ignore_shared — from
     * mem_file (QEMU: saved with x-ignore-shared; Firecracker: always, its
     * snapshot memory file, mapped private). */
    const char *restore_state;
    bool restore_ignore_shared;
};

struct vmm_proc {
    int64_t pid;
};

struct vmm_backend;

struct vmm_ops {
    const char *name; /* "qemu", "firecracker" */

    /* Start a VMM for b; on success the VM runs (booting, or resumed) and
     * *ret holds its process.  On failure nothing is left running. */
    int (*start)(struct vmm_backend *be, const struct vmm_boot *b, struct vmm_proc *ret,
                 struct nerr *e);
    int (*pause)(struct vmm_backend *be, const char *vm_dir, struct nerr *e);
    int (*resume)(struct vmm_backend *be, const char *vm_dir, struct nerr *e);
    /* With the VM paused: write its state into snap_dir (absolute):
     * VM_FILE_VMSTATE always; VM_FILE_MEMORY too for backends that keep guest
     * memory apart (Firecracker).  QEMU leaves out RAM that lives in a shared
     * mem_file (x-ignore-shared; the caller copies that file) and includes any
     * other RAM in the state file.  *ret_mem_saved says whether the backend
     * wrote VM_FILE_MEMORY. */
    int (*save_state)(struct vmm_backend *be, const char *vm_dir, const char *snap_dir,
                      bool *ret_mem_saved, struct nerr *e);
    /* A connected stream to the guest agent (caller owns the fd). */
    int (*agent_connect)(struct vmm_backend *be, const char *vm_dir, int *ret_fd,
                         struct nerr *e);
    /* Whether guest RAM may live in a shared mem_file (QEMU: yes). */
    bool (*supports_shared_memory_file)(struct vmm_backend *be);
    /* Version string of the VMM binary (for golden snapshot invalidation). */
    const char *(*version)(struct vmm_backend *be);
};

struct vmm_backend {
    const struct vmm_ops *ops;
    void *data; /* backend private */
};

/* Whether pid is alive and is the VMM started with instance_id (guards
 * against pid reuse).  Zombies count as dead. */
bool vmm_proc_is_alive(int64_t pid, const char *instance_id);

/* Whether pid is gone or a zombie, whatever it runs (just after a spawn its
 * argv may not show the instance id yet). */
bool vmm_proc_has_exited(int64_t pid);

/* SIGKILL every process whose command line contains needle (an absolute
 * path of ours, e.g. "<vm_dir>/"), except the caller; returns how many. Used
 * to sweep VMMs that a crash left without a record. */
int vmm_proc_kill_matching(const char *needle, int timeout_ms);

/* Last line of the VMM's own log (VM_FILE_VMM_LOG), for error messages. */
void vmm_log_tail(const char *vm_dir, char *out, size_t size);

/* SIGKILL the VMM (if it is ours) and wait up to timeout_ms for it to go. */
int vmm_proc_kill(int64_t pid, const char *instance_id, int timeout_ms);
