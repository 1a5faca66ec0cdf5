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

/* The name of the memory backend guest RAM lives behind (QEMU's RAM block
 * of that name); see enum vmm_ram. */
#define VMM_RAM_BLOCK "mem"

/* How guest RAM is backed.  Every kind but NONE puts RAM behind a memory
 * backend named VMM_RAM_BLOCK (QEMU's RAM block "mem"), which a migration stream
 * names: a saved state only loads into a VMM whose RAM block has the same
 * name, so the kind a VM runs with is recorded in its row. */
enum vmm_ram {
    VMM_RAM_NONE,         /* machine RAM without a named backend (VMs of older servers) */
    VMM_RAM_ANON,         /* anonymous memory behind the backend "mem" */
    VMM_RAM_SHARED_FILE,  /* mem_file mapped MAP_SHARED: the file *is* the RAM */
    VMM_RAM_PRIVATE_FILE, /* mem_file mapped MAP_PRIVATE: a copy-on-write view of a
                           * template; unchanged pages are shared by all its users */
};

struct vmm_boot {
    const char *vm_dir;      /* absolute; the VMM's working directory */
    const char *instance_id; /* unique per VMM process; appears in its argv */
    const char *kernel;
    const char *initrd;      /* may be NULL */
    const char *rootfs;      /* absolute path of this VM's own disk */
    int cpus;
    int mem_mib;
    enum vmm_ram ram;
    const char *mem_file;    /* for the *_FILE kinds: exactly mem_mib MiB */
    /* Resume instead of booting: the saved VM_FILE_VMSTATE, loaded with the
     * capabilities it was saved with.  QEMU: restore_ignore_shared = the
     * state was saved with x-ignore-shared, so RAM in a shared file was
     * left out of it and comes from mem_file.  Firecracker: RAM always
     * comes from mem_file (or VM_FILE_MEMORY beside the state). */
    const char *restore_state;
    bool restore_ignore_shared;
    /* A virtio-net NIC with MAC mac.  tap: the host TAP it is attached to
     * (NULL: a NIC without a peer; the guest sees a link that carries
     * nothing).  A restore must have the NIC exactly when the saved VM had
     * one; its MAC then comes from the saved state (the agent sets the new
     * one), and the TAP may be another than at the save. */
    bool nic;
    const char *mac;
    const char *tap;
    /* Appended to the kernel command line of a cold boot (the guest's
     * ip=), NULL for none. */
    const char *cmdline_extra;
};

struct vmm_proc {
    int64_t pid;
};

struct vmm_backend;
struct vmm_convert;
struct vmm_save;

struct vmm_ops {
    const char *name; /* "qemu", "firecracker" */
    /* A NIC must have a TAP behind it (Firecracker); else a NIC may exist
     * without one (vmm_boot.nic without tap). */
    bool nic_needs_tap;

    /* Start a VMM for b; on success the VM runs (booting, or resumed) and
     * *ret holds its process.  On failure nothing is left running. */
    int (*start)(struct vmm_backend *be, const struct vmm_boot *b, struct vmm_proc *ret,
                 struct nerr *e);
    int (*pause)(struct vmm_backend *be, const char *vm_dir, struct nerr *e);
    int (*resume)(struct vmm_backend *be, const char *vm_dir, struct nerr *e);
    /* With the VM paused: write its state into snap_dir (absolute):
     * VM_FILE_VMSTATE always; VM_FILE_MEMORY too for backends that keep guest
     * memory apart (Firecracker).  QEMU: ignore_shared sets x-ignore-shared,
     * which leaves RAM of a shared mem_file out of the state (the caller
     * copies that file); any other RAM goes into the state file.
     * *ret_mem_saved says whether the backend wrote VM_FILE_MEMORY.  The
     * files are not flushed to disk (that would lengthen the pause): the
     * caller syncs them. */
    int (*save_state)(struct vmm_backend *be, const char *vm_dir, const char *snap_dir,
                      bool ignore_shared, bool *ret_mem_saved, struct nerr *e);
    /* A checkpoint's pause: pause the VM, save its state like save_state
     * into s->snap_dir while s->while_paused runs on a second thread, resume.
     * One call, so the backend can keep it as short as it can (QEMU: one
     * QMP session, everything but the stop prepared before it).  The VM
     * runs again when this returns, whatever the result. */
    int (*checkpoint)(struct vmm_backend *be, const char *vm_dir, struct vmm_save *s,
                      struct nerr *e);
    /* Turn a state saved with its RAM inside (save_state without
     * ignore_shared) into the format of a VM with a RAM file: a state
     * without RAM plus the RAM in its own file (NULL when the backend cannot).
     * See struct vmm_convert.  The VM in vm_dir must run: its command line
     * describes the devices the state belongs to. */
    int (*convert_state)(struct vmm_backend *be, const char *vm_dir,
                         const struct vmm_convert *c, struct nerr *e);
    /* A counter of the writes (and discards) the guest's disk has completed,
     * NULL when the backend cannot tell.  Unchanged between two reads means
     * the disk file did not change in between: a copy made then is current. */
    int (*disk_write_count)(struct vmm_backend *be, const char *vm_dir, uint64_t *ret,
                            struct nerr *e);
    /* How the RAM of the live VMM pid is backed, read from its command
     * line (rows of older servers did not record it); NULL: the backend
     * has no RAM files (anonymous). */
    int (*ram_of)(struct vmm_backend *be, int64_t pid, enum vmm_ram *ret, char *path,
                  size_t path_size);
    /* The RAM block a state saved with its RAM inside (save_state without
     * ignore_shared) was saved from, read from the state file: VMM_RAM_BLOCK,
     * or "" for the machine's own RAM of a VM without a named backend
     * (VMM_RAM_NONE).  An unreadable file counts as VMM_RAM_BLOCK.  NULL:
     * the backend's states do not name RAM blocks. */
    const char *(*state_ram_block)(struct vmm_backend *be, const char *state_path);
    /* After a crash of the server: end any save left half-done and resume
     * the VM if it is paused.  *ret_resumed says whether it was paused. */
    int (*recover)(struct vmm_backend *be, const char *vm_dir, bool *ret_resumed,
                   struct nerr *e);
    /* A connected stream to the guest agent (caller owns the fd). */
    int (*agent_connect)(struct vmm_backend *be, const char *vm_dir, int *ret_fd,
                         struct nerr *e);
    /* A connected stream to the guest's serial console, both ways (caller
     * owns the fd).  NULL when the backend has none (Firecracker: output
     * only in serial.log, input through the serial.in FIFO). */
    int (*console_connect)(struct vmm_backend *be, const char *vm_dir, int *ret_fd,
                           struct nerr *e);
    /* Whether guest RAM may live in a shared mem_file (QEMU: yes). */
    bool (*supports_shared_memory_file)(struct vmm_backend *be);
    /* Version string of the VMM binary (for golden snapshot invalidation). */
    const char *(*version)(struct vmm_backend *be);
};

/* One checkpoint's pause (vmm_ops.checkpoint). */
struct vmm_save {
    const char *snap_dir;    /* VM_FILE_VMSTATE (+ VM_FILE_MEMORY) go here */
    /* An open, empty file for the state (backends that write the state
     * through a descriptor use it instead of snap_dir/VM_FILE_VMSTATE: the
     * caller may have preallocated it, which makes the pause shorter). */
    int state_fd;
    bool ignore_shared;      /* as for save_state */
    /* Runs on a second thread while the VM is paused and saved.
     * disk_writes is the disk's write counter (disk_write_count) read right
     * after the VM stopped, when have_disk_writes. */
    int (*while_paused)(void *ud, uint64_t disk_writes, bool have_disk_writes, struct nerr *e);
    void *ud;
    bool mem_saved;          /* out: the backend wrote VM_FILE_MEMORY */
    int64_t pause_ns;        /* out: from the stop until the VM runs again */
};

/* A conversion (convert_state): a helper VMM with the VM's devices, its RAM
 * a shared mapping of mem_out, loads state_in and saves its devices into
 * state_out with the RAM left out.  instance_id names the helper process,
 * so a crash can find and stop it; work_dir is its scratch directory. */
struct vmm_convert {
    const char *work_dir;    /* absolute, existing */
    const char *instance_id;
    const char *state_in;    /* a state with RAM inside */
    const char *mem_out;     /* absolute path of the RAM file to write */
    const char *state_out;   /* absolute path of the state to write */
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

/* Call cb once for every process in /proc but the caller, with its command
 * line as vmm_proc_cmdline reads it (processes that are gone, or whose
 * command line cannot be read, are skipped; kernel threads have len 0).
 * cb returns 0 to go on; anything else stops the walk and is returned.
 * 0 after the last process, -errno when /proc cannot be read. */
int vmm_proc_foreach(int (*cb)(int64_t pid, const char *cmdline, size_t len, void *ud),
                     void *ud);

/* The last lines of the VMM's own log (VM_FILE_VMM_LOG) on one line, with
 * anything that is not printable ASCII replaced: the log is written by a
 * process a guest may control, and the text ends up in API errors and in
 * our log.  "" when there is no log. */
void vmm_log_tail(const char *vm_dir, char *out, size_t size);

/* A process's command line (NUL-separated, at most VMM_CMDLINE_MAX). */
#define VMM_CMDLINE_MAX (64 * 1024)
int vmm_proc_cmdline(int64_t pid, char **ret, size_t *ret_len);
/* The argument after flag in a command line, or NULL. */
const char *vmm_cmdline_arg(const char *buf, size_t len, const char *flag);
/* The instance id a VMM of ours carries in its command line (both backends
 * pass "noid-<32 hex>" as the process's name or id); false for any other
 * process. */
bool vmm_cmdline_instance(const char *buf, size_t len, char out[33]);
/* Whether an argument of the command line, or the value of one of its
 * key=value options, is dir or a path below it (not a mere substring:
 * /data must not match /mnt/data). */
bool vmm_cmdline_mentions_dir(const char *buf, size_t len, const char *dir);

/* SIGKILL every process whose command line holds instance_id (a VMM whose
 * pid may never have been learnt: a crash during its start). */
int vmm_proc_kill_instance(const char *instance_id, int timeout_ms);

/* vmm.log is written through a stream at the VMM's own offset, so it cannot
 * be rotated or shortened: above VMM_LOG_MAX allocated bytes everything but
 * its last VMM_LOG_KEEP bytes (what error messages quote) becomes a hole.
 * A guest that makes its VMM complain in a loop cannot fill the disk.
 * Called at every scan of the console log watcher (console_log.c). */
#define VMM_LOG_MAX (1024 * 1024)
#define VMM_LOG_KEEP (64 * 1024)
void vmm_log_cap(const char *vm_dir);

/* SIGKILL the VMM (if it is ours) and wait up to timeout_ms for it to go. */
int vmm_proc_kill(int64_t pid, const char *instance_id, int timeout_ms);
