/* engine.h — the VM engine: the one place front-ends (REST/WS, FUSE, admin
 * subcommands) go through.  It owns the database, the storage tree, the VMM
 * backends and the agent connections.  Front-ends never touch SQLite, QEMU or
 * btrfs themselves.
 *
 * Errors: -errno plus a sentence in the nerr.  The codes a front-end maps:
 *   -EINVAL bad input (400)       -ENOENT no such VM/checkpoint/user (404)
 *   -EEXIST name taken (409)      -EBUSY / -ESRCH conflict: busy or not running (409)
 *   -EDQUOT a per-user cap (429)  -ETIMEDOUT the guest did not answer (504)
 *   anything else: internal (500). */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent_files.h"
#include "config.h"
#include "db.h"
#include "nerr.h"
#include "token.h"
#include "wire.h"

struct engine;

enum engine_mode {
    ENGINE_ADMIN, /* user management from the command line: DB + storage only */
    ENGINE_SERVE, /* the server: also VMM backends, reconcile, agent connections */
    ENGINE_GOLDEN, /* golden build/promote/provision from the command line: DB, storage,
                    * backends */
};

/* Open the data dir (created 0700 if missing), the database and storage. */
int engine_open(struct server_config *cfg, enum engine_mode mode, struct engine **ret,
                struct nerr *e);
void engine_close(struct engine *eng);

/* ---- users (engine/users.c) ---- */

/* Create a user; writes the new token (shown once, never stored) to token_out. */
int engine_user_add(struct engine *eng, const char *name, char token_out[TOKEN_LEN + 1],
                    struct db_user *ret, struct nerr *e);
int engine_user_list(struct engine *eng, struct db_user **ret, size_t *ret_n, struct nerr *e);
/* The user named name (one indexed row; no token needed: for front-ends
 * that act for every user, such as the server-side noidfs mount).
 * -EINVAL for an invalid name, -ENOENT for no such user. */
int engine_user_find(struct engine *eng, const char *name, struct db_user *ret, struct nerr *e);
/* New token; the old one stops working at once. */
int engine_user_rotate_token(struct engine *eng, const char *name,
                             char token_out[TOKEN_LEN + 1], struct nerr *e);
/* Stop and remove the user's VMs, checkpoints and storage, then the user. */
int engine_user_remove(struct engine *eng, const char *name, struct nerr *e);
/* 0 and the user for a valid token; -EACCES otherwise (no reason given on
 * purpose: a caller must not learn which part was wrong). */
int engine_user_authenticate(struct engine *eng, const char *token, struct db_user *ret);

/* ---- VMs (engine/vm.c, engine/exec.c) ---- */

/* Server limits and defaults, as GET /v1/capabilities reports them. */
void engine_capabilities(struct engine *eng, struct wire_capabilities *ret);

/* Create and boot a VM; returns when its agent answers.  Any failure undoes
 * everything (process, storage, row).  -EINVAL, -EEXIST, -EDQUOT, -ETIMEDOUT. */
int engine_vm_create(struct engine *eng, const struct db_user *u,
                     const struct wire_create_req *req, struct wire_vm_info *ret,
                     struct nerr *e);
int engine_vm_list(struct engine *eng, const struct db_user *u, struct wire_vm_info **ret,
                   size_t *ret_n, struct nerr *e);
int engine_vm_info(struct engine *eng, const struct db_user *u, const char *name,
                   struct wire_vm_info *ret, struct nerr *e);
/* Kill the VMM, remove storage (and checkpoints), delete the row. */
int engine_vm_destroy(struct engine *eng, const struct db_user *u, const char *name,
                      struct nerr *e);
/* Run a command to completion; output capped at max_exec_output_bytes per
 * stream (truncated=true).  -ESRCH when the VM is not running. */
int engine_vm_exec(struct engine *eng, const struct db_user *u, const char *name,
                   const struct wire_exec_req *req, struct wire_exec_result *ret,
                   struct nerr *e);
void engine_vm_info_list_free(struct wire_vm_info *list, size_t n);

/* How many VMs of all users are in each state (as VmInfo's "state"), for
 * the metrics; reads every row and checks each VMM process. */
struct engine_vm_states {
    size_t creating, restoring, running, dead;
};
int engine_vm_state_counts(struct engine *eng, struct engine_vm_states *ret);

/* ---- live streams: exec (engine/exec_stream.c), console (engine/console_hub.c) ---- */

/* A running command whose output is delivered as it is produced. */
struct engine_exec_stream;

/* Output of a stream goes to on_output, called from the agent's reader
 * thread: it must be quick, must not block and must not call back into the
 * stream, except engine_exec_stream_output_done from another thread later.
 * Output is held back in the guest (per-exec credit) until the consumer
 * says it delivered it with engine_exec_stream_output_done, so a slow
 * consumer slows the command, not the VM.  An agent of an older guest has
 * no credit and sends unasked: the consumer must bound what it buffers. */
struct engine_exec_events {
    void (*on_output)(void *user, bool is_stderr, const uint8_t *data, size_t len);
    void *user;
};

/* Start req in VM name with stdin open (unless req says "stdin": false or
 * gives its stdin text, which is written and closed).  Same checks and
 * errors as engine_vm_exec. */
int engine_exec_stream_start(struct engine *eng, const struct db_user *u, const char *name,
                             const struct wire_exec_req *req, const struct engine_exec_events *ev,
                             struct engine_exec_stream **ret, struct nerr *e);
/* The consumer delivered n bytes of output. */
void engine_exec_stream_output_done(struct engine_exec_stream *s, size_t n);
/* Send stdin bytes; waits for the command to take them, at most until its
 * deadline.  0 also when the command is gone (the bytes are dropped). */
int engine_exec_stream_stdin(struct engine_exec_stream *s, const void *data, size_t len,
                             struct nerr *e);
int engine_exec_stream_stdin_close(struct engine_exec_stream *s, struct nerr *e);
int engine_exec_stream_resize(struct engine_exec_stream *s, unsigned cols, unsigned rows);
/* Wait up to timeout_ms for the end.  1 and *ret (exit code, timed_out,
 * signal; no output) when it ended; 0 when still running; -ECONNRESET
 * (and e) when the VM or its agent went away: a stream never hangs, the
 * agent is pinged while the command is silent.  Output credit that could
 * not be sent earlier (a busy channel) is offered again on each call, so
 * keep calling it while the command runs. */
int engine_exec_stream_wait(struct engine_exec_stream *s, int timeout_ms,
                            struct wire_exec_result *ret, struct nerr *e);
/* Kill the command's process group now (best effort, bounded); callable
 * from any thread, also while another waits in engine_exec_stream_wait. */
void engine_exec_stream_kill(struct engine_exec_stream *s);
/* End the stream; a command still running is killed (its process group). */
void engine_exec_stream_free(struct engine_exec_stream *s);

/* An attachment to a VM's serial console.  Output from the moment of
 * attaching (after a replay of up to `replay` recent bytes) is queued per
 * attachment; input from every attachment goes to the guest in order. */
struct engine_console;

/* -ESRCH when the VM does not run; -EOPNOTSUPP for backends without a
 * console socket (Firecracker). */
int engine_console_attach(struct engine *eng, const struct db_user *u, const char *name,
                          size_t replay, struct engine_console **ret, struct nerr *e);
/* Readable (an eventfd) when output, a skip notice or the end waits. */
int engine_console_fd(const struct engine_console *c);
/* Take queued output.  > 0 bytes; 0 nothing now (the fd is drained);
 * -EPIPE the attachment ended (engine_console_end_reason says why).
 * *ret_skipped: bytes this reader missed (it fell CONSOLE_READER_BUF
 * behind) just before the bytes returned; they are counted once. */
ssize_t engine_console_read(struct engine_console *c, void *buf, size_t len,
                            uint64_t *ret_skipped);
/* Why the attachment ended; *ret_vm_gone says whether it was the VM (or the
 * server) going away rather than an error. */
const char *engine_console_end_reason(struct engine_console *c, bool *ret_vm_gone);
/* Queue typed bytes for the guest; waits up to timeout_ms for room.  Up
 * to CONSOLE_INPUT_MAX (64 KiB) bytes go in whole, never mixed with another
 * attachment's.  -ETIMEDOUT (nothing of the rest queued), -EPIPE when
 * ended. */
int engine_console_write(struct engine_console *c, const void *data, size_t len,
                         int timeout_ms);
void engine_console_detach(struct engine_console *c);
/* The VM's console log so far (serial.log, engine/console_log.c): *ret is
 * malloc'd and NUL-terminated, *ret_len bytes (0 before the VM printed
 * anything).  At most max_console_log_bytes plus a little slack: a longer
 * log (the guest printed faster than the cap is kept) yields its newest
 * bytes.  Works for VMs that do not run.  -ENOENT for no such VM. */
int engine_vm_console_log(struct engine *eng, const struct db_user *u, const char *name,
                          char **ret, size_t *ret_len, struct nerr *e);

/* ---- guest files (engine/files.c): through the agent, never the disk ----
 *
 * Requests are struct ap_fs_req (lib/agent_proto.h, "File operations"):
 * paths are the guest's own, absolute, resolved by the agent inside the
 * guest; nothing on the host is ever named by them.  Errors: the guest's
 * errno as -errno with its message (-ENOENT, -EEXIST, -ENOTDIR, -EISDIR,
 * -ENOTEMPTY, -EACCES, -EPERM, -ENOSPC, -EDQUOT, -EROFS, -ENAMETOOLONG,
 * -EINVAL, -ELOOP, -EXDEV, -EFBIG, -E2BIG...), or the engine's: -ENOENT no
 * such VM, -EBUSY being created or restored, -ESRCH not running,
 * -ETIMEDOUT the agent gave no answer (or no progress of a stream) within
 * ENGINE_FILE_TIMEOUT_MS, -ECONNRESET the VM stopped or was restored under
 * the request, -EPROTONOSUPPORT the guest's agent predates file operations
 * (a VM restored from an old checkpoint). */
#define ENGINE_FILE_TIMEOUT_MS 30000

/* One request, one answer: every op but READ_FILE, READDIR, WRITE_FILE
 * (PREAD: set ret->read_buf to req->length bytes first). */
int engine_file_call(struct engine *eng, const struct db_user *u, const char *name,
                     const struct ap_fs_req *req, struct agent_fs_reply *ret, struct nerr *e);

/* A READ_FILE, READDIR or WRITE_FILE in flight; it keeps the VM's agent
 * connection.  See agent_files.h for the semantics of each call. */
struct engine_file_stream;
int engine_file_stream_open(struct engine *eng, const struct db_user *u, const char *name,
                            const struct ap_fs_req *req, struct engine_file_stream **ret,
                            struct nerr *e);
/* fn(user) runs when the stream may have become readable or writable, on
 * the agent's reader thread (or the thread that found the channel
 * broken): quick, non-blocking, no calls into the stream, and no lock
 * that is held around calls into it. */
void engine_file_stream_set_notify(struct engine_file_stream *s, void (*fn)(void *user),
                                   void *user);
/* timeout_ms: 0 = do not wait (-EAGAIN when nothing is there yet);
 * < 0 = ENGINE_FILE_TIMEOUT_MS.  Bytes > 0, 0 at the end, -errno. */
ssize_t engine_file_stream_read(struct engine_file_stream *s, void *buf, size_t len,
                                int timeout_ms, struct nerr *e);
/* A polling consumer, every second while it waits for a notify: gives
 * back credit a busy channel kept from going out (never waits). */
void engine_file_stream_poke(struct engine_file_stream *s);
/* 1 and an entry, 0 at the end, -EAGAIN / -errno as above. */
int engine_file_stream_next_dirent(struct engine_file_stream *s, char name[AP_FS_NAME_MAX + 1],
                                   struct ap_fs_attr *attr, int timeout_ms, struct nerr *e);
/* Upload bytes; waits for the guest up to ENGINE_FILE_TIMEOUT_MS. */
int engine_file_stream_write(struct engine_file_stream *s, const void *data, size_t len,
                             struct nerr *e);
/* End of the upload: 0 and the bytes written, or -errno (an atomic upload
 * then left nothing behind). */
int engine_file_stream_finish(struct engine_file_stream *s, uint64_t *ret_count, struct nerr *e);
/* Cancel what has not been answered and free. */
void engine_file_stream_free(struct engine_file_stream *s);

/* Remove path and, if it is a directory, everything under it (rm -rf
 * without following symlinks).  -ENOENT if path does not exist. */
int engine_file_remove_tree(struct engine *eng, const struct db_user *u, const char *name,
                            const char *path, struct nerr *e);

/* ---- checkpoints, restore, clone (engine/checkpoint.c) ---- */

/* Save the VM's memory, CPU and device state, disk and serial log without
 * stopping it (it is paused for pause_ms).  Nothing is listed unless it is
 * complete; on failure everything is removed and the VM resumed. */
int engine_checkpoint_create(struct engine *eng, const struct db_user *u, const char *vm_name,
                             const char *label, struct wire_checkpoint *ret, struct nerr *e);
int engine_checkpoint_list(struct engine *eng, const struct db_user *u, const char *vm_name,
                           struct wire_checkpoint **ret, size_t *ret_n, struct nerr *e);
/* id may be any unique prefix; -EBUSY names the candidates when ambiguous. */
int engine_checkpoint_delete(struct engine *eng, const struct db_user *u, const char *vm_name,
                             const char *id, struct nerr *e);
/* Restore vm_name to the checkpoint in place (new_name NULL) or clone it
 * into a new VM new_name.  *ret_created says which. */
int engine_vm_restore(struct engine *eng, const struct db_user *u, const char *vm_name,
                      const char *checkpoint_id, const char *new_name, struct wire_vm_info *ret,
                      bool *ret_created, struct nerr *e);
void engine_checkpoint_list_free(struct wire_checkpoint *list, size_t n);

/* ---- golden snapshot (engine/golden.c) ---- */

/* Make sure a golden snapshot matching the current kernel, rootfs, initrd,
 * default cpus/mem and VMM exists; (re)build it if not.  force rebuilds. */
int engine_golden_ensure(struct engine *eng, bool force, struct nerr *e);
/* Make a checkpoint (by id or unique prefix, any user) the golden image. */
int engine_golden_promote(struct engine *eng, const char *checkpoint_id, struct nerr *e);
/* Whether a usable golden snapshot is in place. */
bool engine_golden_ready(struct engine *eng);
/* engine_golden_ensure on a background thread (the server keeps serving;
 * creates cold-boot until the snapshot is ready). */
void engine_golden_ensure_async(struct engine *eng);

/* ---- golden provisioning (engine/golden_provision.c) ----
 *
 * `noid-server golden provision`: a temporary VM from the golden snapshot
 * (built first when missing or stale), commands run in it, then it is
 * checkpointed and the checkpoint promoted.  ENGINE_GOLDEN only.  The VM
 * belongs to a hidden owner named ENGINE_PROVISION_USER (a name no user
 * can have, left out of user listings). */
#define ENGINE_PROVISION_USER "(golden-provision)"

struct engine_provision;

/* Take the data dir's provisioning lock (-EBUSY: another runs), remove
 * what a killed provisioning left, make sure the golden snapshot is there,
 * and start the temporary VM from it.  Any failure undoes all of it.
 * *stop (may be NULL), set by the caller's signal handler, is looked at
 * between those steps (a build and a boot can take a minute): once set,
 * -ECANCELED after undoing what was done. */
int engine_provision_begin(struct engine *eng, const volatile sig_atomic_t *stop,
                           struct engine_provision **ret, struct nerr *e);
/* Start `sh -c shell_command` in the temporary VM, stdin /dev/null, its
 * output streamed as engine_exec_stream_start does; timeout_secs 0 = none
 * (exec_timeout_secs does not apply: the commands are the admin's). */
int engine_provision_exec_start(struct engine_provision *p, const char *shell_command,
                                long long timeout_secs, const struct engine_exec_events *ev,
                                struct engine_exec_stream **ret, struct nerr *e);
/* Checkpoint the VM (the golden snapshot is not touched yet). */
int engine_provision_checkpoint(struct engine_provision *p, struct nerr *e);
/* Promote that checkpoint: the golden snapshot is replaced at once. */
int engine_provision_promote(struct engine_provision *p, struct nerr *e);
/* Destroy the VM with its checkpoint and storage, remove the hidden owner,
 * release the lock, free p.  What cannot be removed now is logged and
 * removed by the next provisioning. */
void engine_provision_end(struct engine_provision *p);
