/* console_log.h — keeps every VM's serial.log under max_console_log_bytes:
 * over the cap, its content moves to serial.log.1 (one older file) and
 * serial.log starts again.  A watcher thread does it for the running server;
 * console_log_rotate is the step on one directory.  Engine-internal; see
 * console_log.c for the bound and the method. */
#pragma once

#include <stdbool.h>

struct engine;

#define VM_FILE_SERIAL_LOG_OLD "serial.log.1"

/* How often every VM directory is checked even without an inotify event,
 * and how long a burst of console writes may coalesce before a check. */
#define CONSOLE_LOG_RESCAN_MS 2000
#define CONSOLE_LOG_SETTLE_MS 100
/* Directories watched at most (users, their vms dirs and VM dirs); beyond
 * it VM directories are checked by the rescan only. */
#define CONSOLE_LOG_MAX_WATCHES 65536

/* Start the watcher thread on eng's storage tree (server mode).  It checks
 * everything at once, then on every write to a serial.log and every
 * CONSOLE_LOG_RESCAN_MS.  Without inotify it still runs, on rescans only. */
int console_log_start(struct engine *eng);
/* Stop the watcher and wait for it; nothing when it was not started. */
void console_log_stop(struct engine *eng);

struct console_log_rotation {
    long long size;  /* serial.log when it was found over the cap */
    long long moved; /* bytes taken out of the front of serial.log */
    long long kept;  /* bytes now in serial.log.1 (<= cap) */
    bool lossless;   /* shortened by FALLOC_FL_COLLAPSE_RANGE, not truncated */
};

/* If dir_fd's serial.log holds more than cap bytes, move its content to
 * serial.log.1 (replacing it; only the newest cap bytes are kept) and
 * shorten serial.log: losslessly by collapsing the copied range when
 * allow_collapse and the file system can, else by truncating it to 0.
 * 1 and *ret when it rotated, 0 when under the cap; -errno otherwise
 * (-ENOENT: no serial.log; -EPERM: not a regular file with one link).
 * The caller keeps other writers of the directory away (the VM's lifecycle
 * lock); the VMM appending meanwhile is expected. */
int console_log_rotate(int dir_fd, long long cap, bool allow_collapse,
                       struct console_log_rotation *ret);
