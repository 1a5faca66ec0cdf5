/* disk_pool.h — ready-made copies of the disk images VMs start from (the
 * base rootfs, the golden snapshot's disk), kept in storage/pool/ so that
 * `create` renames one into place instead of copying tens of MiB while the
 * user waits.  A background thread refills the pool after each take.
 *
 * On btrfs the pool is not used: a reflink copy is already O(1). */
#pragma once

#include "nerr.h"

struct engine;

#define DISK_POOL_TARGET 2 /* ready copies kept per source image */

/* Put a private copy of src at dst (same storage file system): a pooled
 * copy if one is ready, else a copy made now.  Then refills in the background. */
int disk_pool_take(struct engine *eng, const char *src, const char *dst, struct nerr *e);

/* Drop every pooled copy (their sources may have changed). */
void disk_pool_clear(struct engine *eng);

/* Wait for a running refill to end (engine shutdown). */
void disk_pool_shutdown(struct engine *eng);
