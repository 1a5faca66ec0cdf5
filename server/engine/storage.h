/* storage.h — where VM disks, logs and checkpoints live on the host.
 *
 * Two implementations behind one interface, chosen by detection, never by
 * configuration (DESIGN.md §7):
 *   btrfs:  a subvolume per VM dir, reflinked files, a read-only snapshot per
 *           checkpoint, a writable snapshot per restore/clone, subvolume delete;
 *   other:  plain directories; files cloned with FICLONE when the file system
 *           supports it, else copied sparse-aware (holes stay holes).
 * Paths handed in are absolute and already validated by the caller. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "nerr.h"

struct storage;

int storage_open(const char *root, struct storage **ret, struct nerr *e);
void storage_free(struct storage *st);

bool storage_is_btrfs(const struct storage *st);
const char *storage_kind(const struct storage *st); /* "btrfs" or "plain" */

/* Create a VM directory (btrfs: a subvolume); parents are created as needed. */
int storage_make_vm_dir(struct storage *st, const char *path, struct nerr *e);

/* Copy one file: reflink when possible, else a sparse-aware copy.  dst must
 * not exist; it is written under a temporary name (storage_temp_name) and
 * renamed, so it never appears half-written. */
int storage_copy_file(struct storage *st, const char *src, const char *dst, struct nerr *e);
/* Same without waiting for the data to reach the disk (the caller syncs
 * later with storage_sync_file): for copies made while a VM is paused. */
int storage_copy_file_nosync(struct storage *st, const char *src, const char *dst,
                             struct nerr *e);
int storage_sync_file(const char *path);
/* Copy src's data into the open, empty file out (sparse-aware, not
 * flushed): for a destination the caller prepared (preallocated). */
int storage_copy_into(const char *src, int out, struct nerr *e);
/* Rename src to dst; across file systems or btrfs subvolumes (EXDEV) a
 * copy (a reflink where possible), then src is removed. */
int storage_move_file(struct storage *st, const char *src, const char *dst, struct nerr *e);

/* "<dir>/.<name>.<what>" for path "<dir>/<name>": where work on path is
 * done before it is renamed into place.  The leading dot keeps it outside
 * the VM-name grammar (names start with a letter or digit), so the sweep
 * of leftovers at start can never take a VM for one.  Malloc'd. */
char *storage_temp_name(const char *path, const char *what);
/* Mark a btrfs snapshot read-only (no-op elsewhere). */
int storage_set_read_only(struct storage *st, const char *path);

/* Snapshot a VM directory into dst (which must not exist).  btrfs: a snapshot
 * of the subvolume (read-only if asked); else a new directory holding copies
 * of src's regular files (sockets, FIFOs and subdirectories are skipped). */
int storage_snapshot_dir(struct storage *st, const char *src, const char *dst, bool readonly,
                         struct nerr *e);

/* Remove a VM or checkpoint directory, whatever it is (subvolume or not). */
int storage_remove_tree(struct storage *st, const char *path);

/* Sum of allocated bytes of the regular files in dir (not recursive). */
int64_t storage_dir_bytes(const char *dir);
