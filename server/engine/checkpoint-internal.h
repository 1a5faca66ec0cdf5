/* checkpoint-internal.h — what checkpoint.c (taking checkpoints) and
 * restore.c (restoring them) share. */
#pragma once

#include "engine-internal.h"

/* <storage>/users/<uid>/checkpoints/<vm>/<id> (malloc'd). */
char *checkpoint_dir(struct engine *eng, const struct db_vm *vm, const char *id);
/* Find a checkpoint of vm by id or unique prefix; -EBUSY names the
 * candidates when ambiguous. */
int checkpoint_resolve(struct engine *eng, const struct db_vm *vm, const char *prefix,
                       struct db_checkpoint *ret, struct nerr *e);
