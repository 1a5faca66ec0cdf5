/* checkpoint-internal.h — what checkpoint.c (taking checkpoints) and
 * restore.c (restoring them) share. */
#pragma once

#include "engine-internal.h"

/* A checkpoint's stage in the RAM directory (mem_dir): .cp-<16 hex>. */
#define CHECKPOINT_STAGE_PREFIX ".cp-"

/* <storage>/users/<uid>/checkpoints/<vm>/<id> (malloc'd). */
char *checkpoint_dir(struct engine *eng, const struct db_vm *vm, const char *id);
/* The memory twin clones map when the checkpoint's own memory file is
 * read-only (restore.c): <checkpoint dir>.memory (malloc'd). */
char *checkpoint_twin_path(const char *cp_dir);
/* Put a VM's directories back as they were before a restore in place
 * that marked its row "restoring" (restore.c): the old directory back from
 * .replaced-<name>, the new one or its staging removed.  Used when the
 * restore fails, and by the reconcile after a crash in one.  -errno (and
 * logged) when the old directory could not be put back. */
int restore_roll_back_dirs(struct engine *eng, const struct db_vm *vm);
/* Find a checkpoint of vm by id or unique prefix; -EBUSY names the
 * candidates when ambiguous. */
int checkpoint_resolve(struct engine *eng, const struct db_vm *vm, const char *prefix,
                       struct db_checkpoint *ret, struct nerr *e);
