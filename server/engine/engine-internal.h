/* engine-internal.h — what the engine's files share.  Front-ends include
 * engine.h only.
 *
 * Lock order (outer to inner):
 *     vm_rt.lifecycle  ->  vm_rt.conn_lock  ->  engine.quota_lock  ->  db.lock
 * engine.reg_lock is only ever held alone, to look an entry up. */
#pragma once

#include <pthread.h>

#include "agent_client.h"
#include "db.h"
#include "engine.h"
#include "storage.h"
#include "vmm.h"

/* In-memory companion of a VM row: the things that must not be duplicated
 * between concurrent requests on the same VM. */
struct vm_rt {
    int64_t vm_id;              /* vms.id: AUTOINCREMENT, never reused */
    int refs;                   /* (engine.reg_lock) */
    bool forgotten;             /* (engine.reg_lock) the VM is gone: free at refs == 0 */
    struct vm_rt *next;         /* (engine.reg_lock) */
    pthread_mutex_t lifecycle;  /* serialises create/destroy/checkpoint/restore */
    pthread_mutex_t conn_lock;  /* protects conn */
    struct agent_conn *conn;    /* (conn_lock) NULL until first use */
};

struct engine {
    struct server_config *cfg;
    enum engine_mode mode;
    struct db *db;
    struct storage *storage;
    char *data_dir;             /* canonical (realpath) */
    int server_lock;            /* flock on <data>/server.lock (serve mode), or -1 */
    char *storage_dir;
    struct vmm_backend *qemu;   /* NULL in admin mode */
    struct vmm_backend *firecracker;
    const char *default_vmm;    /* "qemu" or "firecracker" */
    pthread_mutex_t base_lock;  /* serialises filling storage/base (reflink sources) */
    pthread_mutex_t quota_lock; /* makes "count, insert row" atomic (VMs, checkpoints) */
    pthread_mutex_t reg_lock;   /* protects the registry list */
    struct vm_rt *registry;
    char *golden_dir;           /* <data>/golden (see golden.c for its locks) */
    pthread_mutex_t golden_build_lock; /* protects golden_rebuild_running */
    pthread_cond_t golden_build_done;
    bool golden_rebuild_running;       /* (golden_build_lock) a background build runs */
    pthread_mutex_t pool_lock;  /* disk_pool.c: protects the fields below */
    pthread_cond_t pool_idle;
    char *pool_wanted[4];       /* (pool_lock) sources to keep copies of */
    bool pool_refilling;        /* (pool_lock) a refill thread runs */
    bool pool_stopping;         /* (pool_lock) */
    struct console_log *console_log; /* serial.log cap (console_log.c); NULL unless serving */
    struct console_hubs *consoles;   /* console_hub.c; NULL unless serving */
    char guest_dns[16];         /* vm_net.c: the guests' resolver, "" = none */
    bool netd_absent;           /* vm_net.c (atomic): noid-netd was not running at the last try */
};

/* Paths (malloc'd).  Names must be validated before. */
char *engine_user_dir(struct engine *eng, const char *user_id);
char *engine_vm_dir(struct engine *eng, const char *user_id, const char *vm_name);
char *engine_checkpoints_dir(struct engine *eng, const char *user_id, const char *vm_name);

/* Registry: get (creating if needed) and release the runtime of a VM row. */
struct vm_rt *engine_rt_get(struct engine *eng, int64_t vm_id);
void engine_rt_put(struct engine *eng, struct vm_rt *rt);
void engine_rt_forget(struct engine *eng, int64_t vm_id);

struct vmm_backend *engine_backend(struct engine *eng, const char *vmm_name);

/* Whether the VM's process runs. */
bool engine_vm_row_is_running(const struct db_vm *vm);

/* The VM's agent connection, (re)connecting and handshaking if needed. The
 * caller unrefs it. */
int engine_vm_agent(struct engine *eng, const struct db_vm *vm, struct vm_rt *rt,
                    int timeout_ms, struct agent_conn **ret, struct nerr *e);
/* Drop the cached connection (after the VMM was replaced or killed). */
void engine_vm_agent_drop(struct vm_rt *rt);

/* Remove every VM of a user (used by remove-user). */
int engine_vms_destroy_all_of_user(struct engine *eng, const char *user_id, struct nerr *e);

/* Reconcile rows left half-done by a crash (server start only). */
int engine_reconcile(struct engine *eng);

/* golden_provision.c: remove what a killed `golden provision` left (its
 * hidden owner with the owner's VMs, checkpoints and storage); 0 when
 * there is nothing.  The caller holds <golden>.provision.lock, so no
 * provisioning runs that could still use it. */
int provision_sweep_leftover(struct engine *eng, struct nerr *e);

/* The pristine copy of src inside storage (so VM disks can be reflinks of
 * it on btrfs); elsewhere src itself.  *ret is malloc'd. */
int engine_base_copy(struct engine *eng, const char *src, char **ret, struct nerr *e);

/* Accelerator name of a backend ("kvm", "tcg") for the golden key. */
const char *engine_accel_name(struct engine *eng, const char *vmm);
