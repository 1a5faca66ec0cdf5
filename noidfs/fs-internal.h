/* fs-internal.h — what the front-end's files share: the mount's state, the
 * node (inode) table, per-VM run history, open-file handles.
 *
 * Lock order (outer first): vm_runs.lock > run.lock; nodes.lock,
 * vmcache.lock, handles_lock and inval.lock are leaves.  No lock is held
 * across a call into the binding (an op may take seconds). */
#pragma once

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "buf.h"
#include "guestfs_path.h"
#include "noidfs.h"

/* A run's stdout or stderr kept for reading back; past it the command is
 * stopped and its close fails with EFBIG (bulk output belongs to the
 * streaming API, which has no such bound). */
#define RUN_OUTPUT_MAX (16u * 1024 * 1024)
/* A command line written to an exec file. */
#define EXEC_COMMAND_MAX (256u * 1024)
/* Runs kept per VM (runs/N), and the output they may hold together (a
 * new run makes room by dropping the oldest; a run in progress may add up
 * to 2 x RUN_OUTPUT_MAX beyond it). */
#define RUNS_KEPT          32
#define RUNS_OUTPUT_BUDGET (64u * 1024 * 1024)
/* A write-only exec waits in slices this long and acknowledges the output
 * it stored in between (exec_wait returns at once when the command ends). */
#define EXEC_WAIT_SLICE_MS 25
/* Console input waits this long for room in the VM's input queue. */
#define CONSOLE_WRITE_TIMEOUT_MS 5000
/* Worker threads: blocking reads (console, exec streams) and closes that
 * wait for a command each hold one, so the bound is generous. */
#define FS_MAX_THREADS 512
/* Requests one user may have blocked at once (console reads, closes
 * waiting for a command, streaming reads): beyond it they get EAGAIN, so
 * one user cannot take every worker and stall everybody's `ls`. */
#define FS_BLOCKING_PER_USER (FS_MAX_THREADS / 4)
#define FS_BLOCKING_USERS    64

enum node_kind {
    NK_ROOT, /* multi-user top level: one directory per user */
    NK_USER, /* a user's VMs (the top level of a single-user mount) */
    NK_VM,
    NK_VM_INFO,
    NK_VM_STATE,
    NK_VM_EXEC,
    NK_VM_STDOUT,
    NK_VM_STDERR,
    NK_VM_STATUS,
    NK_VM_NEW,
    NK_VM_LAST,
    NK_VM_CONSOLE,
    NK_VM_CONSOLE_LOG,
    NK_RUNS,
    NK_RUN,
    NK_RUN_EXEC,
    NK_RUN_STDOUT,
    NK_RUN_STDERR,
    NK_RUN_STATUS,
    NK_RUN_COMMAND,
    NK_CKPTS,
    NK_CKPT,
    NK_CKPT_INFO,
    NK_CKPT_RESTORE,
    NK_CKPT_CLONE,
    NK_GUEST, /* VM/fs/ ("/") and everything below it: a file of the guest */
    NK__MAX,
};

/* One inode.  Fields other than nlookup and the guest part never change
 * after creation, so a request may use its node without a lock: the
 * kernel does not forget an inode while a request on it is in flight. */
struct node {
    fuse_ino_t ino;
    uint64_t nlookup; /* (nodes.lock) */
    enum node_kind kind;
    char *user;   /* NULL in a single-user mount */
    char *vm;     /* from NK_VM down */
    unsigned run; /* NK_RUN* */
    char *ckpt;   /* NK_CKPT*: the directory's name (label or id) */
    char *key;    /* (nodes.lock) identity: kind + the names above; NULL detached */
    struct node *next_by_ino, *next_by_key;

    /* NK_GUEST (nodes.c): renames move it, a vanished file detaches it */
    char *gpath;    /* (nodes.lock) guest path; NULL once detached.  In an
                     * identity node (not in the table): just the path */
    uint64_t gino;  /* (nodes.lock) the guest's inode number at gpath */
    uint32_t gmode; /* (nodes.lock) its type (and mode) */
    /* (nodes.lock) size and times last given to the kernel: a file found
     * unchanged at an open may keep its cached pages */
    bool sig_valid;
    uint64_t sig_size;
    struct ap_fs_time sig_mtime, sig_ctime;
};

struct nodes;

/* A run: one command's line, output and status. Refcounted: the history,
 * the VM's stdout/stderr/status and open handles each hold one. */
struct run {
    unsigned id;
    int refs; /* (run.lock) */
    pthread_mutex_t lock;
    bool started, ended; /* (run.lock) */
    bool failed;         /* (run.lock) ended without an exit status */
    int status;          /* (run.lock) exit code once ended && !failed */
    struct buf command;  /* (run.lock) */
    struct buf out, err; /* (run.lock) */
    time_t when;         /* (run.lock) start, then end */
};

/* Local accounts owning user directories, remembered cache_secs. */
#define OWNER_CACHE_N 64
struct owner_entry {
    char user[USER_NAME_MAX + 1];
    uid_t uid;
    gid_t gid;
    int64_t at_ms; /* 0: empty */
};

struct blocking_count {
    char user[USER_NAME_MAX + 1]; /* "" for a single-user mount */
    unsigned n;                   /* 0: free slot */
};

struct noidfs {
    const struct noidfs_ops *ops;
    void *b;
    bool multi_user;
    bool per_user_owners;
    uid_t uid;
    gid_t gid;
    double cache_secs;
    char *mountpoint;
    struct fuse_session *se;
    struct nodes *nodes;
    struct vmstate *vms;
    time_t mounted_at; /* the times of the directories above the VMs */

    pthread_mutex_t owners_lock;
    struct owner_entry owners[OWNER_CACHE_N]; /* (owners_lock) layout.c's owner_of */
    pthread_mutex_t blocking_lock;
    struct blocking_count blocking[FS_BLOCKING_USERS]; /* (blocking_lock) */

    pthread_t loop_thread;
    bool loop_started;
    volatile int exiting;
    int exit_fd; /* eventfd: readable once exiting (signal-safe to set) */

    /* open handles, so shutdown can wake the ones that block */
    pthread_mutex_t handles_lock;
    struct handle *handles; /* (handles_lock) */

    /* invalidations are sent from a thread of their own: never from a
     * request's path (the kernel may hold the locks they need) */
    pthread_mutex_t inval_lock;
    pthread_cond_t inval_cond;
    struct inval *inval_head; /* (inval_lock) */
    bool inval_stop;          /* (inval_lock) */
    pthread_t inval_thread;
    bool inval_started;

    struct console_watch *watch; /* poll notifications (console_file.c) */
};

enum handle_kind {
    H_STATIC,  /* content generated at open, read from a snapshot */
    H_RUN_OUT, /* a run's stdout/stderr/status/command: read live */
    H_EXEC,    /* vm/exec or runs/N/exec */
    H_CONSOLE,
    H_ACTION, /* checkpoints/X/restore or clone */
    H_GUEST,  /* a file of the guest (fs/), open in the guest */
};

/* A queued invalidation (inval.c). */
struct inval {
    struct inval *next;
    fuse_ino_t ino; /* inode to invalidate, or parent of name */
    char *name;     /* NULL: the inode itself */
    bool attr_only; /* the inode's attributes, not its cached pages */
};

struct exec_session;   /* exec_file.c */
struct console_handle; /* console_file.c */

struct handle {
    enum handle_kind kind;
    struct noidfs *fs;
    const struct node *node;
    struct handle *prev, *next; /* (fs->handles_lock) */
    pthread_mutex_t lock;       /* serialises this handle's operations */
    struct buf data;            /* H_STATIC content; H_EXEC/H_ACTION bytes written */
    struct run *run;            /* H_RUN_OUT; vm/new's H_STATIC (the run it made) */
    struct exec_session *exec;  /* H_EXEC */
    struct console_handle *con; /* H_CONSOLE */
    bool readable, writable;
    bool done; /* H_ACTION: the restore or clone ran */
    /* H_GUEST */
    uint32_t ghandle; /* the agent's handle */
    bool gappend;     /* O_APPEND: the guest decides where writes go */
    bool gsync;       /* O_SYNC / O_DSYNC: fsync after each write */
    bool gstale;      /* (fs->handles_lock) the VM was restored: the guest
                       * forgot the handle (and may give its number to
                       * another file), so it is never used again */
};

/* ---- nodes.c ---- */
struct nodes *nodes_new(bool multi_user);
void nodes_free(struct nodes *t);
/* The root (ino FUSE_ROOT_ID) always exists. */
const struct node *nodes_get(struct nodes *t, fuse_ino_t ino);
/* Find or make the node, and count one lookup (the kernel will forget it). */
const struct node *nodes_ref(struct nodes *t, enum node_kind kind, const char *user, const char *vm,
                             unsigned run, const char *ckpt);
/* The inode of an existing node, or 0 (for invalidations). */
fuse_ino_t nodes_find(struct nodes *t, enum node_kind kind, const char *user, const char *vm,
                      unsigned run, const char *ckpt);
void nodes_forget(struct nodes *t, fuse_ino_t ino, uint64_t n);
/* Guest nodes (NK_GUEST), found by (user, VM, guest path).  ref counts one
 * lookup; a node at gpath standing for another guest file than a (inode
 * number or type differ) is detached first and a new one made. */
const struct node *nodes_ref_guest(struct nodes *t, const char *user, const char *vm,
                                   const char *gpath, const struct ap_fs_attr *a);
fuse_ino_t nodes_find_guest(struct nodes *t, const char *user, const char *vm, const char *gpath);
/* n's guest path now; -ESTALE once detached. */
int nodes_guest_path(struct nodes *t, const struct node *n, char out[GPATH_SIZE]);
/* Whether a (attributes just read at n's path) is still n's file; if not,
 * n is detached (the caller answers ESTALE: the kernel looks the path up
 * again). */
bool nodes_guest_same(struct nodes *t, const struct node *n, const struct ap_fs_attr *a);
/* The kernel was given a as n's attributes (ref_guest does this itself). */
void nodes_guest_told(struct nodes *t, const struct node *n, const struct ap_fs_attr *a);
/* At an open: whether a (the opened file) shows the size, mtime and ctime
 * the kernel was last given, so its cached size and pages are right;
 * counts a as given from now on. */
bool nodes_guest_unchanged(struct nodes *t, const struct node *n, const struct ap_fs_attr *a);
/* gpath and everything below it is gone (unlink, rmdir). */
void nodes_guest_detach(struct nodes *t, const char *user, const char *vm, const char *gpath);
/* A rename succeeded in the guest: from (and below) is now at to; what
 * was at to is gone, or with exchange is now at from. */
void nodes_guest_move(struct nodes *t, const char *user, const char *vm, const char *from,
                      const char *to, bool exchange);

/* ---- vmstate.c: VM list cache and per-VM runs ---- */
struct vmstate *vmstate_new(double cache_secs);
void vmstate_free(struct vmstate *s);
/* Look VM up in the cached list (refreshed when older than cache_secs).
 * 0 and *ret, -ENOENT, or the op's error. */
int vmstate_vm_find(struct noidfs *fs, const char *user, const char *vm, struct noidfs_vm *ret,
                    struct nerr *e);
/* The user's VMs (fresh when the cache is stale). *ret malloc'd. */
int vmstate_vm_list(struct noidfs *fs, const char *user, struct noidfs_vm **ret, size_t *ret_n,
                    struct nerr *e);
/* Forget the cached list of the user (our own create/destroy/clone). */
void vmstate_vm_list_dirty(struct noidfs *fs, const char *user);
/* Drop the VM's run history (it was destroyed). */
void vmstate_vm_gone(struct noidfs *fs, const char *user, const char *vm);
/* A new run for the VM: id assigned, kept in the history; top says it
 * becomes the VM's stdout/stderr/status.  Returns a reference. */
struct run *vmstate_run_new(struct noidfs *fs, const char *user, const char *vm, bool top);
/* A run by id (reference) or NULL. */
struct run *vmstate_run_get(struct noidfs *fs, const char *user, const char *vm, unsigned id);
/* The run shown as vm/stdout… (reference) or NULL. */
struct run *vmstate_run_top(struct noidfs *fs, const char *user, const char *vm);
/* Ids of the kept runs, oldest first (*ret malloc'd, the newest last). */
int vmstate_run_ids(struct noidfs *fs, const char *user, const char *vm, unsigned **ret,
                    size_t *ret_n);
void run_unref(struct run *r);
void run_ref(struct run *r);

/* ---- exec_file.c ---- */
/* Run h's written command line to the end (close of a write-only exec).
 * 0 or the errno to reply (the reason is logged). */
int exec_file_run(struct handle *h, fuse_req_t req);
/* Read-write exec: start at the first read, stream output. */
ssize_t exec_file_read(struct handle *h, fuse_req_t req, char *buf, size_t size);
void exec_file_release(struct handle *h);
void exec_file_wake(struct handle *h);

/* ---- console_file.c ---- */
int console_file_open(struct handle *h, struct nerr *e);
ssize_t console_file_read(struct handle *h, fuse_req_t req, char *buf, size_t size, bool nonblock);
/* Bytes typed (a short count when the console stopped taking them), or -errno. */
ssize_t console_file_write(struct handle *h, const char *buf, size_t size);
/* FUSE poll: revents now; ph kept for a notification when not readable. */
unsigned console_file_poll(struct handle *h, struct fuse_pollhandle *ph);
void console_file_release(struct handle *h);
void console_file_wake(struct handle *h);
int console_watch_start(struct noidfs *fs);
void console_watch_stop(struct noidfs *fs);

/* ---- errmap.c ---- */
/* The errno a file system call returns for an op's -errno. */
int errmap_op(int r);
/* Log why an operation failed; returns the errno to reply. */
int errmap_log(const char *what, const char *path_hint, int r, const struct nerr *e);
/* The errno for a guest file op's -errno: the guest's own passes through
 * unchanged; what is not an errno at all is EIO. */
int errmap_guest(int r);

/* ---- layout.c: the tree's shape, existence and attributes ---- */
struct layout_entry {
    const char *name;
    enum node_kind kind;
};
/* The fixed entries of a VM, run or checkpoint directory (a VM's "fs"
 * only when the binding has guest files). */
const struct layout_entry *layout_entries(enum node_kind dir, size_t *ret_n);
bool layout_entry_shown(struct noidfs *fs, enum node_kind k);
bool layout_kind_is_dir(enum node_kind k);
bool layout_kind_is_writable(enum node_kind k);
mode_t layout_kind_mode(enum node_kind k);
/* For log lines: the VM (or user) a node belongs to. */
const char *layout_node_hint(const struct node *n);
/* What name in directory parent is: child's identity (names point into
 * parent and name).  -ENOENT for names that cannot live there.  Not for
 * names inside fs/ (guestfs.c). */
int layout_child_of(struct noidfs *fs, const struct node *parent, const char *name,
                    struct node *child);
/* The local account owning user's files (the mount's owner when none). */
void layout_owner_of(struct noidfs *fs, const char *user, uid_t *uid, gid_t *gid);
/* Check n exists (its identity is what counts: it need not be in the
 * table) and fill st.  0, -ENOENT, or the binding's error. */
int layout_node_stat(struct noidfs *fs, const struct node *n, struct stat *st, struct nerr *e);
/* Stat child and enter it in the table (one lookup counted). */
int layout_entry_for(struct noidfs *fs, const struct node *child, struct fuse_entry_param *ep,
                     struct nerr *e);
void layout_fill_entry(struct noidfs *fs, const struct node *n, const struct stat *st,
                       struct fuse_entry_param *ep);
/* The directory name of checkpoint i of list. */
const char *layout_ckpt_name(const struct noidfs_checkpoint *list, size_t n, size_t i);
/* The checkpoint shown as directory name: the VM's list and its index. */
int layout_ckpt_find(struct noidfs *fs, const char *user, const char *vm, const char *name,
                     struct noidfs_checkpoint **ret_list, size_t *ret_n, size_t *ret_i,
                     struct nerr *e);
/* The run a run file or directory shows (a reference), or NULL. */
struct run *layout_run_of(struct noidfs *fs, const struct node *n);
/* The newest run's id, 0 when none. */
unsigned layout_newest_run(struct noidfs *fs, const char *user, const char *vm);

/* ---- dir.c: directory requests ---- */
void dir_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void dir_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi);
void dir_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                     struct fuse_file_info *fi);
void dir_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void dir_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void dir_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void dir_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void dir_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                const char *newname, unsigned int flags);
void dir_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                struct fuse_file_info *fi);

/* ---- fs.c: the request table, inode and file requests ---- */
extern const struct fuse_lowlevel_ops fs_ll_ops;
/* Release the handles still open when the loop has ended (the kernel
 * sends no release any more). */
void fs_handles_release_all(struct noidfs *fs);
/* Count a request of user's that may block; false (reply EAGAIN) when the
 * user has FS_BLOCKING_PER_USER already.  Each true needs a leave with
 * the same *ret_counted. */
bool fs_blocking_enter(struct noidfs *fs, const char *user, bool *ret_counted);
/* A handle on n opened with flags (access mode: readable, writable), not
 * yet on the mount's list; add puts it there (then release it, else free). */
struct handle *fs_handle_new(struct noidfs *fs, const struct node *n, int flags);
void fs_handle_add(struct noidfs *fs, struct handle *h);
void fs_handle_free(struct handle *h);
/* Off the list, closed as its kind needs, freed. */
void fs_handle_release(struct handle *h);
void fs_blocking_leave(struct noidfs *fs, const char *user, bool counted);

static inline struct noidfs *fs_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* ---- guestfs.c: VM/fs/, the guest's files through the binding ---- */
/* Whether the binding has guest files (VM/fs/ exists). */
bool guestfs_enabled(const struct noidfs *fs);
void guestfs_lookup(fuse_req_t req, const struct node *parent, const char *name);
void guestfs_getattr(fuse_req_t req, const struct node *n, struct fuse_file_info *fi);
void guestfs_setattr(fuse_req_t req, const struct node *n, struct stat *attr, int to_set,
                     struct fuse_file_info *fi);
void guestfs_readlink(fuse_req_t req, const struct node *n);
void guestfs_statfs(fuse_req_t req, const struct node *n);
/* Files: open and create fill a H_GUEST handle; read, write and fsync
 * reply; release closes it in the guest (no reply). */
void guestfs_open(fuse_req_t req, const struct node *n, struct fuse_file_info *fi);
void guestfs_create(fuse_req_t req, const struct node *parent, const char *name, mode_t mode,
                    struct fuse_file_info *fi);
void guestfs_read(fuse_req_t req, struct handle *h, size_t size, off_t off);
void guestfs_write(fuse_req_t req, struct handle *h, const char *buf, size_t size, off_t off);
void guestfs_fsync(fuse_req_t req, struct handle *h, int datasync);
void guestfs_release(struct handle *h);
/* The VM was restored in place: its open files are gone in the guest. */
void guestfs_vm_restored(struct noidfs *fs, const char *user, const char *vm);
/* Names: each replies. */
void guestfs_mkdir(fuse_req_t req, const struct node *parent, const char *name, mode_t mode);
void guestfs_unlink(fuse_req_t req, const struct node *parent, const char *name, bool dir);
void guestfs_rename(fuse_req_t req, const struct node *parent, const char *name,
                    const struct node *newparent, const char *newname, unsigned flags);
void guestfs_symlink(fuse_req_t req, const char *target, const struct node *parent,
                     const char *name);
void guestfs_link(fuse_req_t req, const struct node *n, const struct node *newparent,
                  const char *newname);
/* The errno to reply for a guest op's r, logged when it is the binding's
 * failure (EIO) rather than the guest's everyday answer. */
int guestfs_errno(const char *what, const struct node *n, const char *path, int r,
                  const struct nerr *e);
/* Directory listing (dir.c's snapshot): add(ctx, name, guest path, attributes)
 * for each entry of directory node dir. */
int guestfs_list(struct noidfs *fs, const struct node *dir,
                 int (*add)(void *ctx, const char *name, const char *gpath,
                            const struct ap_fs_attr *a),
                 void *ctx, struct nerr *e);
/* The stat of a guest file as the mount shows it (ino: the node's). */
void guestfs_attr_to_stat(struct noidfs *fs, const char *user, const struct ap_fs_attr *a,
                          fuse_ino_t ino, struct stat *st);

/* ---- inval.c ---- */
/* The notifier thread's body (mount.c starts it). */
void *inval_main(void *arg);
/* Queue an invalidation of an inode's attributes/data (0: none). */
void fs_inval_inode(struct noidfs *fs, fuse_ino_t ino);
/* Queue an invalidation of an inode's attributes only (its cached pages
 * stay). */
void fs_inval_attr(struct noidfs *fs, fuse_ino_t ino);
/* The same at once, from a request (before its reply). */
void fs_inval_attr_now(struct noidfs *fs, fuse_ino_t ino);
/* Queue an invalidation of a directory entry. */
void fs_inval_entry(struct noidfs *fs, fuse_ino_t parent, const char *name);
/* The results of a run changed: sizes of the files showing it. */
void fs_run_changed(struct noidfs *fs, const char *user, const char *vm, unsigned id, bool top);
