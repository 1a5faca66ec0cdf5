/* failed_log.h — keep the logs of a VMM start that failed.
 *
 * A failed attempt's directory is removed (nothing half-made may stay), and
 * with it the VMM's log that says why.  Before that, its vmm.log and the
 * tail of its serial.log are copied to <data>/failed/<time>-<user>-<vm>-
 * <what>/ together with the error, at most FAILED_LOG_KEEP attempts (the
 * oldest go first), FAILED_LOG_FILE_MAX bytes per file. */
#pragma once

#include "engine-internal.h"

#define FAILED_LOG_KEEP     32
#define FAILED_LOG_FILE_MAX (256 * 1024)

/* Copy the logs of the attempt in dir; returns the directory kept
 * (malloc'd) or NULL.  Never fails the caller: errors are logged. */
char *failed_log_keep(struct engine *eng, const struct db_vm *vm, const char *dir, const char *what,
                      const char *reason);
