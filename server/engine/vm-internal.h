/* vm-internal.h — VM lifecycle pieces shared by vm.c, exec.c, checkpoint.c
 * and golden.c.  Callers hold the VM's lifecycle lock where noted. */
#pragma once

#include "engine-internal.h"

/* How to start a VM other than a plain cold boot. */
struct vm_start_spec {
    const char *restore_state;  /* saved VM_FILE_VMSTATE, or NULL */
    bool restore_ignore_shared;
    const char *mem_file;       /* map this file as guest RAM (mem_shared says how) */
    bool mem_shared;
    const char *mem_seed;       /* copy this into a fresh shared RAM file first */
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
/* Insert a "creating" row, enforcing max_vms_per_user atomically. */
int vm_insert_row(struct engine *eng, const struct db_user *u, const char *name,
                  long long cpus, long long mem, const char *vmm, struct db_vm *vm,
                  struct nerr *e);
/* A sibling of the VM's directory that no VM can own (".<what>-<name>"),
 * for work on the side (a restore in progress). */
char *vm_staging_dir(struct engine *eng, const struct db_vm *vm, const char *what);
/* Fresh VM dir with a copy of the base rootfs; *ret_dir is malloc'd. */
int vm_prepare_dir(struct engine *eng, const struct db_vm *vm, char **ret_dir, struct nerr *e);
/* Start the VMM for vm in dir (cold boot when spec is NULL), record the
 * process in the row, and wait until the agent answers.  Lifecycle lock held.
 * On failure nothing of the attempt is left running. */
int vm_start_and_wait(struct engine *eng, struct db_vm *vm, struct vm_rt *rt, const char *dir,
                      const struct vm_start_spec *spec, struct nerr *e);
/* Kill the VMM and drop its RAM file and agent connection; keeps storage. */
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

/* golden.c: create vm from the golden snapshot; -ENOENT when there is no
 * usable one (the caller then cold-boots). */
int vm_create_from_golden(struct engine *eng, struct db_vm *vm, struct vm_rt *rt,
                          struct nerr *e);
