/* noidfs.h — the FUSE front-end (DESIGN.md §9) and the ops interface its
 * bindings implement.
 *
 * The front-end (noidfs/fs*.c) turns directories and files into calls of a
 * small table of operations, struct noidfs_ops.  Two bindings fill it:
 *   - the engine binding, in server/noidfs/ (so noidfs/ never links
 *     server code): the server-side mount, one directory per user;
 *   - the REST/WebSocket binding, noidfs/rest_ops.c: `noid mount DIR` and
 *     `noidfs DIR`, one user (the token's), top level = that user's VMs.
 *
 * Contract for every op:
 *   - called from many FUSE worker threads at once: a binding is
 *     thread-safe and never serialises unrelated calls behind one lock;
 *   - returns 0 (or a count) on success, -errno on failure with the reason
 *     in *e.  The codes are the engine's (engine.h): -EINVAL bad name or
 *     input, -ENOENT no such VM/checkpoint/user, -EEXIST taken, -EBUSY /
 *     -ESRCH busy or not running, -EDQUOT a per-user cap, -ETIMEDOUT the
 *     guest did not answer, -ENOTCONN / -EIO the server is unreachable or
 *     failed.  The front-end maps them to what a file system call returns
 *     and logs the reason;
 *   - `user` is the user's name in a multi-user binding (list_users set)
 *     and NULL in a single-user one. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "agent_proto.h"
#include "names.h"
#include "nerr.h"

/* One VM as its directory shows it. */
struct noidfs_vm {
    char name[VM_NAME_MAX + 1];
    char state[16]; /* "running", "dead", ... as VmInfo's state */
    time_t created; /* the directory's mtime/ctime */
};

/* One checkpoint.  json is malloc'd: the checkpoint as GET
 * /v1/vms/{name}/checkpoints lists it, one object, no trailing newline. */
struct noidfs_checkpoint {
    char id[CHECKPOINT_ID_LEN + 1];
    char label[LABEL_MAX + 1]; /* "" when it has none */
    time_t created;
    char *json;
};

/* Output of an exec is pushed to the front-end as it is produced.
 * on_output is called from a binding thread, is quick and never blocks; all
 * calls for one exec are made before its exec_wait reports the end.  The
 * binding holds further output back (in the guest) until the front-end
 * says with exec_output_done that it consumed what it got, so a slow
 * reader slows its own command only. */
struct noidfs_exec_sink {
    void (*on_output)(void *user, bool is_stderr, const uint8_t *data, size_t len);
    void *user;
};

struct noidfs_exec;    /* a running command (binding-defined) */
struct noidfs_console; /* a console attachment (binding-defined) */
struct noidfs_fs_dir;  /* a guest directory being listed (binding-defined) */

/* The answer to a guest file request (fs_call).  Requests and attributes
 * are lib/agent_proto.h's struct ap_fs_req and struct ap_fs_attr: that
 * header is libc-only and shared by every side (agent, server, clients),
 * and it already is the one precise statement of each operation, its
 * arguments and bounds.  A noidfs copy of it would be the same fields
 * under other names, translated twice; a binding that does not talk to
 * the agent (REST) encodes the same request its own way. */
struct noidfs_fs_reply {
    bool has_attr;                 /* attr is set (the ops that answer one) */
    struct ap_fs_attr attr;        /* what the op changed, after the change */
    uint32_t handle;               /* OPEN */
    uint64_t count;                /* PWRITE: bytes written; PREAD: bytes read */
    struct ap_fs_statfs statfs;    /* STATFS */
    char link[AP_FS_PATH_MAX + 1]; /* READLINK, NUL-terminated */
    /* PREAD: set by the caller, at least req->length bytes; count says how
     * many came (fewer = end of file) */
    void *read_buf;
};

struct noidfs_ops {
    /* Multi-user bindings: the names of all users (malloc'd array of
     * malloc'd strings).  NULL in a single-user binding: the top level
     * is then the VM list and every `user` argument is NULL. */
    int (*list_users)(void *b, char ***ret, size_t *ret_n, struct nerr *e);

    /* ---- VMs ---- */
    /* All VMs of the user (*ret malloc'd, may be NULL when n is 0). */
    int (*list_vms)(void *b, const char *user, struct noidfs_vm **ret, size_t *ret_n,
                    struct nerr *e);
    /* One VM; *ret_json (malloc'd, may be NULL when not wanted) is the VM
     * as GET /v1/vms/{name} returns it.  -ENOENT when there is none. */
    int (*vm_info)(void *b, const char *user, const char *vm, struct noidfs_vm *ret,
                   char **ret_json, struct nerr *e);
    /* Create with the server's defaults; returns when the VM runs. */
    int (*vm_create)(void *b, const char *user, const char *vm, struct nerr *e);
    int (*vm_destroy)(void *b, const char *user, const char *vm, struct nerr *e);
    /* The whole console log so far (*ret malloc'd, *ret_len bytes). */
    int (*console_log)(void *b, const char *user, const char *vm, char **ret, size_t *ret_len,
                       struct nerr *e);

    /* ---- exec: `/bin/sh -c command_line`, stdin closed (/dev/null) ---- */
    int (*exec_start)(void *b, const char *user, const char *vm, const char *command_line,
                      const struct noidfs_exec_sink *sink, struct noidfs_exec **ret,
                      struct nerr *e);
    /* The front-end consumed n bytes handed to on_output. */
    void (*exec_output_done)(struct noidfs_exec *x, size_t n);
    /* Wait up to timeout_ms (-1: no bound) for the end.  1 and *ret_status
     * (the exit code; 124 after the server's exec timeout; 128+N when killed
     * by signal N) when it ended; 0 when still running; -errno and e when
     * the VM, the agent or the server went away. */
    int (*exec_wait)(struct noidfs_exec *x, int timeout_ms, int *ret_status, struct nerr *e);
    /* Kill the command now (any thread, also during exec_wait). */
    void (*exec_kill)(struct noidfs_exec *x);
    /* End and free; kills a command still running.  No on_output call is
     * made once this returns. */
    void (*exec_free)(struct noidfs_exec *x);

    /* ---- console: live output from the moment of attaching ---- */
    int (*console_attach)(void *b, const char *user, const char *vm, struct noidfs_console **ret,
                          struct nerr *e);
    /* Readable (POLLIN) when output or the end waits. */
    int (*console_fd)(struct noidfs_console *c);
    /* > 0 bytes; 0 nothing now; -EPIPE the attachment ended (VM gone). */
    ssize_t (*console_read)(struct noidfs_console *c, void *buf, size_t len);
    /* Type len bytes (len <= 64 KiB) into the console, waiting at most
     * timeout_ms for room.  0, -ETIMEDOUT, -EPIPE. */
    int (*console_write)(struct noidfs_console *c, const void *data, size_t len, int timeout_ms);
    void (*console_detach)(struct noidfs_console *c);

    /* ---- checkpoints ---- */
    int (*checkpoint_list)(void *b, const char *user, const char *vm,
                           struct noidfs_checkpoint **ret, size_t *ret_n, struct nerr *e);
    /* Checkpoint with this label (never NULL); returns when it is complete. */
    int (*checkpoint_create)(void *b, const char *user, const char *vm, const char *label,
                             struct nerr *e);
    int (*checkpoint_delete)(void *b, const char *user, const char *vm, const char *id,
                             struct nerr *e);
    /* Restore vm in place (new_name NULL) or clone the checkpoint into the
     * new VM new_name; returns when the VM runs. */
    int (*restore)(void *b, const char *user, const char *vm, const char *checkpoint_id,
                   const char *new_name, struct nerr *e);

    /* ---- guest files: VM/fs/ (optional: all NULL = no fs/ entry) ----
     * Paths are the guest's, absolute; the guest resolves them.  Errors:
     * the guest's errno unchanged (-ENOENT, -EEXIST, -ENOTEMPTY, -EACCES,
     * -ENOSPC, ...); -EIO (the reason in e) when the request did not reach
     * the guest or got no answer: no such VM (any more), not running, the
     * agent lost or silent, an agent without file operations.  -EBUSY
     * also when the VM is being created or restored. */
    /* Any op but READDIR, READ_FILE, WRITE_FILE. */
    int (*fs_call)(void *b, const char *user, const char *vm, const struct ap_fs_req *req,
                   struct noidfs_fs_reply *ret, struct nerr *e);
    /* List directory path: open, then next until it gives 0, then close
     * (also early).  next: 1 and an entry (lstat attributes, no "." or
     * ".."), 0 at the end, -errno. */
    int (*fs_dir_open)(void *b, const char *user, const char *vm, const char *path,
                       struct noidfs_fs_dir **ret, struct nerr *e);
    int (*fs_dir_next)(struct noidfs_fs_dir *d, char name[AP_FS_NAME_MAX + 1],
                       struct ap_fs_attr *attr, struct nerr *e);
    void (*fs_dir_close)(struct noidfs_fs_dir *d);
};

void noidfs_checkpoints_free(struct noidfs_checkpoint *list, size_t n);
void noidfs_strv_free(char **v, size_t n);

struct noidfs_options {
    const char *mountpoint;
    const char *fsname; /* shown by mount(8); default "noid" */
    /* Owner of everything not given to a local account: the mounting
     * user for a client mount, root for the server. */
    uid_t uid;
    gid_t gid;
    /* Server-side mount: allow_other,default_permissions; a user directory
     * whose name is a local account's belongs to that account, mode 0700. */
    bool per_user_owners;
    /* Entry and attribute cache lifetimes (seconds); 0 = the default 1 s. */
    double cache_secs;
};

struct noidfs;

/* Mount at o->mountpoint (a stale mount there is cleared first) and return
 * once the kernel has it; requests are served once noidfs_start or
 * noidfs_run runs the session loop.  ops and binding must outlive it. */
int noidfs_mount(const struct noidfs_ops *ops, void *binding, const struct noidfs_options *o,
                 struct noidfs **ret, struct nerr *e);
/* Serve requests on the calling thread until unmounted (fusermount3 -u,
 * umount) or noidfs_exit; 0 or -errno. */
int noidfs_run(struct noidfs *fs);
/* Serve requests on a thread of its own. */
int noidfs_start(struct noidfs *fs, struct nerr *e);
/* Ask a running loop to end (signal-safe: only sets a flag and wakes it). */
void noidfs_exit(struct noidfs *fs);
/* Unmount (if still mounted), stop the loop, free everything. */
void noidfs_free(struct noidfs *fs);

/* A mount point whose FUSE server died answers ENOTCONN: detach it.
 * 1 when one was cleared, 0 when there was none, -errno (and e) when it
 * could not be cleared. */
int noidfs_clear_stale(const char *mountpoint, struct nerr *e);
