/* vm-internal.h — VM lifecycle pieces shared by vm.c, exec.c, checkpoint.c
 * and golden.c.  Callers hold the VM's lifecycle lock where noted. */
#pragma once

#include "engine-internal.h"

/* Where the guest RAM of a VMM being started comes from. */
enum vm_ram_source {
    VM_RAM_FRESH,      /* a new shared RAM file of our own in mem_dir (fast checkpoints);
                        * anonymous memory when the backend or mem_dir cannot have one */
    VM_RAM_SEEDED,     /* the same, first filled with a copy of mem_file */
    VM_RAM_TEMPLATE,   /* mem_file mapped copy-on-write: pages stay shared */
    VM_RAM_ANON_ONLY,  /* anonymous memory behind the named backend */
    VM_RAM_NO_BACKEND, /* anonymous machine RAM (states of VMs of older servers) */
};

/* How to start a VM other than a plain cold boot. */
struct vm_start_spec {
    const char *restore_state;  /* saved VM_FILE_VMSTATE, or NULL */
    bool restore_ignore_shared; /* as the state was saved */
    enum vm_ram_source ram;
    const char *mem_file;       /* for VM_RAM_SEEDED and VM_RAM_TEMPLATE */
    bool nic;                   /* the saved state has a NIC (so must the VMM) */
};

int vm_info_from_row(const struct db_vm *vm, struct wire_vm_info *ret);
int vm_lookup(struct engine *eng, const struct db_user *u, const char *name, struct db_vm *ret,
              struct nerr *e);
/* Look a VM up and take its lifecycle lock (the row is re-read under it).
 * Every success is paired with vm_release; forget drops the runtime entry
 * (after a destroy). */
int vm_acquire(struct engine *eng, const struct db_user *u, const char *name, struct db_vm *vm,
               struct vm_rt **ret_rt, struct nerr *e);
void vm_release(struct engine *eng, struct vm_rt *rt, bool forget);
/* A VM being made (create, clone): its row (phase "creating", which
 * reserves the name and counts against max_vms_per_user) and its runtime,
 * whose lifecycle lock is taken.  vm_new_end finishes it: with r >= 0 the
 * row becomes "ready" (the commit), else everything of it is removed; the
 * lock is released.  Returns the final r. */
int vm_new_begin(struct engine *eng, const struct db_user *u, const char *name,
                 long long cpus, long long mem, const char *vmm, struct db_vm *vm,
                 struct vm_rt **ret_rt, struct nerr *e);
int vm_new_end(struct engine *eng, struct db_vm *vm, struct vm_rt *rt, int r, struct nerr *e);
/* A sibling of the VM's directory that no VM can own (".<what>-<name>"),
 * for work on the side (a restore in progress). */
char *vm_staging_dir(struct engine *eng, const struct db_vm *vm, const char *what);
/* Fresh VM dir with a copy of the base rootfs; *ret_dir is malloc'd. */
int vm_prepare_dir(struct engine *eng, const struct db_vm *vm, char **ret_dir, struct nerr *e);
/* Start a VMM for vm in dir (cold boot when spec is NULL) and wait until
 * its agent answers; after a restore, refresh the guest's clock, entropy
 * and network.  A cold boot always gets a NIC (a restore one when its state
 * has one), and the NIC a network leased from noid-netd when it runs; the
 * lease is the new VMM's and given back when the VMM goes.  Lifecycle lock
 * held.  The new VMM's instance id is recorded in
 * the row as pending_instance_id before the process starts, so a crash at
 * any point can find it.  On success vm holds the new process (pid,
 * instance_id, ram_backing, ram_path; pending cleared) but the row is not
 * written: the caller commits with vm_save_row once the VM is what it should
 * be.  On failure nothing of the attempt is left running, its logs are kept
 * under <data>/failed/, and e carries the VMM's own last words. */
int vm_start_and_wait(struct engine *eng, struct db_vm *vm, struct vm_rt *rt, const char *dir,
                      const struct vm_start_spec *spec, struct nerr *e);
/* The row fields that describe a VMM's RAM (ram_backing, ram_path). */
void vm_set_ram(struct db_vm *vm, enum vmm_ram ram, const char *path);
/* Write vm's runtime fields to its row. */
int vm_save_row(struct engine *eng, const struct db_vm *vm, struct nerr *e);
/* Kill the VMM (and a pending one) and drop its RAM file and agent
 * connection; keeps storage. */
void vm_teardown_runtime(struct engine *eng, const struct db_vm *vm, struct vm_rt *rt);

/* Connect to the agent of the VMM (pid, instance_id) in dir and shake hands,
 * retrying while the VMM lives, until deadline_ms (time_mono_ms). */
int vm_agent_connect_wait(struct vmm_backend *be, const char *dir, int64_t pid,
                          const char *instance_id, int64_t deadline_ms, struct agent_conn **ret,
                          struct nerr *e);

/* Tell a restored guest the time and give it fresh entropy. */
int vm_refresh_identity(struct agent_conn *conn, struct nerr *e);

char *vm_mem_dir(struct engine *eng);
/* Create or check the RAM directory (private to us); false = do not use it. */
bool vm_mem_dir_ready(const char *dir);
char *vm_mem_file(struct engine *eng, const char *instance_id);
/* Kill the VMM of a start that never became the VM's (the row's pending
 * instance) and remove its RAM file.  > 0 if there was a VMM to kill. */
int vm_kill_pending(struct engine *eng, const char *instance_id);
/* Whether a VM started now gets a shared RAM file of its own. */
bool vm_can_have_ram_file(struct engine *eng, struct vmm_backend *be);
/* Remove a VM row's VMM, storage, checkpoints and row (destroy, a failed or
 * interrupted create). */
int vm_teardown(struct engine *eng, const struct db_vm *vm, struct vm_rt *rt, struct nerr *e);

/* exec.c: the checks of an exec request (env, cwd, timeout against
 * exec_timeout_secs); *timeout_secs is the timeout to apply. */
int exec_request_check(const struct server_config *cfg, const struct wire_exec_req *req,
                       long long *timeout_secs, struct nerr *e);
/* The agent's request for req (pointers into req; stdin_open left false). */
void exec_agent_request(const struct wire_exec_req *req, long long timeout_secs,
                        struct ap_exec_req *ret);
/* The result of an exec that ended with ex (output left empty): exit code
 * 124 when it timed out (in the guest, or host_timed_out), 128+N when
 * signal N killed it. */
void exec_result_from_exit(const struct ap_exit *ex, bool host_timed_out,
                           struct wire_exec_result *ret);
/* The runtime and agent connection of a ready, running VM (both to put). */
int exec_vm_agent(struct engine *eng, const struct db_user *u, const char *name,
                  struct vm_rt **ret_rt, struct agent_conn **ret_conn, struct nerr *e);
/* exec_stream.c: engine_exec_stream_start without the checks of the
 * request, with the timeout given: timeout_secs 0 = none (the agent sets
 * none and the host waits until the command ends, the VM stops or its agent
 * stops answering); for the golden provisioning, whose commands are the
 * admin's and may run longer than exec_timeout_secs. */
int exec_stream_start(struct engine *eng, const struct db_user *u, const char *name,
                      const struct wire_exec_req *req, long long timeout_secs,
                      const struct engine_exec_events *ev, struct engine_exec_stream **ret,
                      struct nerr *e);
/* The host's grace beyond the agent's own timeout before it kills the
 * command itself and reports a timeout. */
#define EXEC_GRACE_MS 5000

/* golden.c: create vm from the golden snapshot; -ENOENT when there is no
 * usable one (the caller then cold-boots). */
int vm_create_from_golden(struct engine *eng, struct db_vm *vm, struct vm_rt *rt,
                          struct nerr *e);
/* golden.c: the size (cpus, MiB) of the golden snapshot in place; -ENOENT
 * when there is none. */
int golden_size(struct engine *eng, long long *ret_cpus, long long *ret_mem, struct nerr *e);
