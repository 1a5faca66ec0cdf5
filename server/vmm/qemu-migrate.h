/* qemu-migrate.h — QMP steps of QEMU's migration machinery, shared by the
 * saves and loads of qemu.c and the state conversion of qemu-convert.c.  Every
 * function works on an open QMP connection and reports QEMU's own reason
 * when something fails. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "nerr.h"
#include "qmp.h"

/* Saves to a local file or socket are limited by the disk, not by QEMU's
 * default bandwidth cap (32 MiB/s), which would throttle them. */
#define QEMU_MIGRATE_BANDWIDTH  (INT64_MAX / 2)
#define QEMU_MIGRATE_TIMEOUT_MS 120000
/* The name a save's file descriptor has inside QEMU (getfd). */
#define QEMU_MIG_SAVE_FD "noidsave"

/* Set one migration capability. */
int qemu_mig_set_cap(struct qmp *m, const char *cap, bool on, struct nerr *e);
/* Set max-bandwidth to QEMU_MIGRATE_BANDWIDTH. */
int qemu_mig_set_params(struct qmp *m, struct nerr *e);
/* Hand fd to QEMU (getfd) under fdname and start an outgoing migration to
 * it, or, with incoming, load an incoming one from it (migrate-incoming;
 * QEMU must run with -incoming defer). */
int qemu_mig_start_fd(struct qmp *m, int fd, const char *fdname, bool incoming, struct nerr *e);

struct qemu_mig_info {
    char status[32];     /* "setup", "active", "completed", "failed", ... */
    char error[160];     /* after "failed": QEMU's reason */
};
int qemu_mig_query(struct qmp *m, struct qemu_mig_info *ret, struct nerr *e);

/* A save of the VM's state into a file, in two halves so that a checkpoint
 * can do the first before it stops the VM.  The first needs no stopped VM:
 * x-ignore-shared as ignore_shared (set every time: a VM restored from a
 * state keeps the capabilities it was loaded with), max-bandwidth, and fd
 * handed to QEMU as QEMU_MIG_SAVE_FD (QEMU keeps it until a migration or a
 * closefd). */
int qemu_mig_save_prepare(struct qmp *m, int fd, bool ignore_shared, struct nerr *e);
/* The second half: migrate into QEMU_MIG_SAVE_FD and poll query-migrate
 * until "completed", or "failed"/"cancelled" (an error carrying QEMU's
 * reason), or deadline_ms (time_mono_ms) passes (the migration is
 * cancelled); on success also until the VM has left the "finish-migrate"
 * run state, so a 'cont' right after is accepted.  No fsync: the VM is paused; the caller flushes once it runs. */
int qemu_mig_save_run(struct qmp *m, int64_t deadline_ms, struct nerr *e);

/* The VM's run state as query-status names it ("running", "paused", ...). */
int qemu_query_status(struct qmp *m, char *out, size_t size, struct nerr *e);

/* Wait, until deadline_ms, for an incoming migration to be loaded: the run
 * state in status once it is no longer "inmigrate" ("paused", or
 * "postmigrate", ...).  A state QEMU cannot load makes it exit, and the
 * query fails; -ETIMEDOUT, with "<who> did not finish loading the saved state", after
 * the deadline. */
int qemu_wait_loaded(struct qmp *m, const char *who, int64_t deadline_ms, char *status,
                     size_t size, struct nerr *e);

/* A save that cannot finish: cancel any migration (QEMU then resumes a VM it
 * stopped for it) and make sure the VM runs.  Best effort, never fails. */
void qemu_mig_abort_and_resume(struct qmp *m);
