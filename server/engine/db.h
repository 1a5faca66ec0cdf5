/* db.h — the SQLite store: users, vms, checkpoints (DESIGN.md §7, the guide).
 *
 * One connection per process, guarded by db->lock: every db_* function takes
 * the lock for the duration of its statements only, so callers never hold it
 * while talking to a VMM or an agent.  Prepared statements are cached on the
 * connection.  All rows are scoped by user_id; no function here returns a row
 * of another user unless it is an admin/reconcile helper named *_all.
 *
 * Return values: 0 / -ENOENT (no such row) / -EEXIST (unique violation) /
 * -EIO (SQLite error, logged by the caller with db_errmsg()). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"
#include "nerr.h"
#include "timeutil.h"
#include "token.h"

#define DB_SCHEMA_VERSION 4
#define DB_ID_LEN 16 /* user ids and checkpoint ids: 16 lowercase hex */

struct db;

struct db_user {
    char id[DB_ID_LEN + 1];
    char name[USER_NAME_MAX + 1];
    char token_hash[TOKEN_HASH_HEX_LEN + 1];
    char created_at[RFC3339_LEN];
};

/* Stored lifecycle phase of a VM row.  Whether the VM runs is never stored:
 * it is read from the live process (vm_is_running in the engine). */
#define VM_PHASE_CREATING "creating"
#define VM_PHASE_READY "ready"
#define VM_PHASE_RESTORING "restoring"

/* How the guest RAM of a VM's current VMM is backed (vms.ram_backing). */
#define VM_RAM_SHARED "shared"   /* ram_path: our own tmpfs file, mapped shared */
#define VM_RAM_PRIVATE "private" /* ram_path: a template, mapped copy-on-write */
#define VM_RAM_ANON "anon"       /* anonymous memory behind a named backend */
#define VM_RAM_NONE "none"       /* anonymous machine RAM without a backend */
#define VM_RAM_PATH_MAX 512

/* What a checkpoint's save wrote (checkpoints.mem_format). */
#define CP_MEM_FILE "file"     /* RAM in memory.snap; state saved without it */
#define CP_MEM_STREAM "stream" /* RAM inside vmstate.snap */

struct db_vm {
    int64_t id;
    char user_id[DB_ID_LEN + 1];
    char name[VM_NAME_MAX + 1];
    int64_t pid;
    long long cpus;
    long long mem_mib;
    char phase[16];
    char created_at[RFC3339_LEN];
    char vmm[16];
    char instance_id[33];
    char restored_from[24]; /* "" for a cold boot */
    char ram_backing[16];   /* VM_RAM_*; "" for rows of schema v2 not seen running yet */
    char ram_path[VM_RAM_PATH_MAX];
    char pending_instance_id[33]; /* a VMM being started for this row, or "" */
    /* The VMM has a virtio-net device (a VM started by a server older than
     * networking has none, and a restore must match the saved devices). */
    bool nic;
    /* The network noid-netd leased to the current VMM (owner: its
     * instance id); tap "" = none. */
    struct db_vm_net {
        char tap[16];
        char ip[16];       /* the guest's address */
        char gateway[16];  /* the host's end of the /30 */
        char mac[18];
        int prefix;
    } net;
};

struct db_checkpoint {
    char id[DB_ID_LEN + 1];
    int64_t vm_id;
    char user_id[DB_ID_LEN + 1];
    char vm_name[VM_NAME_MAX + 1];
    char label[LABEL_MAX + 1];
    bool has_label;
    char created_at[RFC3339_LEN];
    long long pause_ms;
    long long size_bytes;
    long long cpus;
    long long mem_mib;
    char vmm[16];
    /* How it was saved, replayed exactly on restore.  has_format is false
     * for checkpoints of schema v2 until engine_reconcile fills it in. */
    bool has_format;
    char mem_format[8];     /* CP_MEM_* */
    bool ignore_shared;     /* QEMU's x-ignore-shared capability at the save */
    char ram_block[16];     /* name of the RAM block: "mem" (a backend), "" (none) */
    bool nic;               /* the saved devices include a virtio-net NIC */
};

int db_open(const char *path, struct db **ret, struct nerr *e);
void db_close(struct db *db);
int db_user_version(struct db *db);

/* users */
int db_user_insert(struct db *db, const struct db_user *u);
int db_user_get_by_name(struct db *db, const char *name, struct db_user *ret);
/* Candidate row whose token hash starts with lookup; the caller compares the
 * full hash in constant time. */
int db_user_get_by_token_lookup(struct db *db, const char *lookup, struct db_user *ret);
int db_user_set_token_hash(struct db *db, const char *user_id, const char *token_hash);
int db_user_delete(struct db *db, const char *user_id);
int db_user_list(struct db *db, struct db_user **ret, size_t *ret_n);

/* vms */
int db_vm_insert(struct db *db, struct db_vm *vm); /* sets vm->id */
int db_vm_get(struct db *db, const char *user_id, const char *name, struct db_vm *ret);
int db_vm_list(struct db *db, const char *user_id, struct db_vm **ret, size_t *ret_n);
int db_vm_list_all(struct db *db, struct db_vm **ret, size_t *ret_n);
int db_vm_count(struct db *db, const char *user_id, size_t *ret);
/* Write the runtime fields of vm (pid, instance_id, phase, restored_from,
 * ram_backing, ram_path, pending_instance_id) to its row. */
int db_vm_save_runtime(struct db *db, const struct db_vm *vm);
int db_vm_delete(struct db *db, int64_t vm_id);

/* checkpoints */
int db_checkpoint_insert(struct db *db, const struct db_checkpoint *c);
int db_checkpoint_list(struct db *db, const char *user_id, int64_t vm_id,
                       struct db_checkpoint **ret, size_t *ret_n);
int db_checkpoint_get(struct db *db, const char *user_id, const char *id,
                      struct db_checkpoint *ret);
int db_checkpoint_delete(struct db *db, const char *user_id, const char *id);
/* How many checkpoints a user has, and how many of them belong to vm_id. */
int db_checkpoint_count(struct db *db, const char *user_id, int64_t vm_id, size_t *ret_user,
                        size_t *ret_vm);
/* Record how a checkpoint was saved (upgrade of v2 rows). */
int db_checkpoint_set_format(struct db *db, const struct db_checkpoint *c);
/* Admin/reconcile: every checkpoint of every user. */
int db_checkpoint_list_all(struct db *db, struct db_checkpoint **ret, size_t *ret_n);
/* Admin (golden promote): checkpoints of any user whose id starts with prefix. */
int db_checkpoint_find_prefix_all(struct db *db, const char *prefix, struct db_checkpoint **ret,
                                  size_t *ret_n);

const char *db_errmsg(struct db *db);
