/* transfer.h — what the parts of `noid cp` share: cmd_cp.c decides what
 * goes where, transfer_file.c moves one file over the REST files API
 * (GET/HEAD/PUT /v1/vms/{name}/files/<path>), transfer_tree.c moves a
 * directory as a tar stream through the WebSocket exec, and
 * transfer_progress.c draws the progress line.
 *
 * Errors are printed once, by the function that knows the reason, as
 * "noid cp: <sentence>" (cp(1)'s wording where cp has one); the functions
 * then return -errno and the command maps that to its exit status. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cli.h"

/* Transfers at least this large (or that grow past it) show progress. */
#define TRANSFER_PROGRESS_MIN (4 * 1024 * 1024)
/* At most this often, in ms, the progress line is redrawn. */
#define TRANSFER_PROGRESS_EVERY_MS 200
/* Bytes per read of a local file or pipe. */
#define TRANSFER_CHUNK (128 * 1024)

/* A side of the copy that is in a VM ("NAME:/path", ":/path"). */
struct cp_remote {
    char *vm;    /* the VM's name (the active one for ":/path") */
    char *path;  /* absolute guest path, without trailing '/' (but "/") */
    char *label; /* "vm:/path", for messages */
};

/* Build a remote for vm and path (both copied; path made canonical as
 * above).  -ENOMEM. */
int cp_remote_set(struct cp_remote *r, const char *vm, const char *path);
void cp_remote_free(struct cp_remote *r);

struct cp_opts {
    bool recursive;
    bool progress; /* stderr is a terminal and no -q */
};

void cp_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The last component of path (trailing '/' ignored), malloc'd; "/" for
 * "/".  NULL on ENOMEM. */
char *cp_basename(const char *path);
/* Everything before the last component ("." when there is none, "/" for
 * a child of the root), malloc'd; NULL on ENOMEM. */
char *cp_dirname(const char *path);

/* ---- interruptions (transfer_progress.c) ----
 * SIGINT, SIGTERM and SIGHUP only set transfer_interrupted (no
 * SA_RESTART), so a transfer stops through its normal cleanup: the
 * partial file is removed, and the exit status is 128 + the signal. */
extern volatile sig_atomic_t transfer_interrupted;
void transfer_catch_signals(void);

/* ---- progress (transfer_progress.c) ---- */

struct progress {
    bool enabled;   /* drawing allowed at all */
    bool shown;     /* a line is on the terminal */
    char label[40]; /* the file's name, cut to fit */
    int64_t total;  /* bytes, -1 while unknown */
    int64_t done;
    int64_t start_ms; /* time_mono_ms() at the start */
    int64_t drawn_ms; /* when the line was last drawn */
};

void progress_start(struct progress *p, bool enabled, const char *label, int64_t total);
/* done bytes moved so far; total may become known (-1: unchanged). */
void progress_update(struct progress *p, int64_t done, int64_t total);
/* Draw the final state (ok) and end the line, or just end it so that an
 * error starts on a line of its own. */
void progress_end(struct progress *p, bool ok);

/* ---- one file over REST (transfer_file.c) ---- */

enum remote_type {
    REMOTE_FILE,
    REMOTE_DIR,
    REMOTE_OTHER, /* a type this client does not know */
};

struct remote_stat {
    enum remote_type type;
    mode_t mode;  /* permission bits, 0 when the server did not say */
    int64_t size; /* -1 when unknown */
};

/* HEAD the remote: 0 and *ret; -ENOENT when there is no such file (the VM
 * exists), not printed, for the caller's cp-like message; other -errno
 * printed (no such VM, VM not running, ...). */
int remote_stat(struct cli *c, const struct cp_remote *r, struct remote_stat *ret);

/* Upload the local file src ("-": stdin) to dst, replacing it.  mode: the
 * permission bits to give it, or -1 to leave that to the server. */
int remote_upload(struct cli *c, const char *src, const struct cp_remote *dst, int mode,
                  const struct cp_opts *o);

/* Download src into the local file dst ("-": stdout) through a temporary
 * file next to it, renamed at the end; the mode the server reports is
 * kept. */
int remote_download(struct cli *c, const struct cp_remote *src, const char *dst,
                    const struct cp_opts *o);

/* ---- a directory tree through exec (transfer_tree.c) ---- */

/* Copy the local directory src to dst: into it as its basename when
 * into_dir, else as dst itself (which must not exist). */
int tree_upload(struct cli *c, const char *src, const struct cp_remote *dst, bool into_dir,
                const struct cp_opts *o);
/* Copy the guest directory src to the local dst, likewise. */
int tree_download(struct cli *c, const struct cp_remote *src, const char *dst, bool into_dir,
                  const struct cp_opts *o);
