/* fsutil.h — file-system helpers: directories, atomic writes, removal. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* mkdir -p with mode for every created component. */
int mkdir_p(const char *path, mode_t mode);

/* A directory only we can use: created 0700, or if it exists, accepted only
 * when it is a real directory (no symlink) owned by us with no access for
 * group or others.  -EPERM otherwise (someone may have planted it). */
int mkdir_private(const char *path);

/* rm -rf that never follows symlinks and never leaves the file system of
 * path (so a mount inside a VM dir is not emptied). -ENOENT is success. */
int rm_rf(const char *path);

/* Write data to path atomically: a temporary file in the same directory,
 * fsync, rename.  The file gets mode. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Copy len bytes of in, from in_off, to out at out_off: copy_file_range
 * (reflinks or in-kernel copies where the file system can), read/write on
 * those that refuse it.  -EIO when in is shorter than in_off + len. */
int fd_copy_range(int in, off_t in_off, int out, off_t out_off, off_t len);

/* Read a whole file of at most max bytes (NUL-terminated, malloc'd). */
int read_file(const char *path, size_t max, char **ret, size_t *ret_len);

bool path_exists(const char *path);

/* The last max_lines non-empty lines of a text file, joined with " | " on
 * one line, every byte that is not printable ASCII replaced by '?' (the
 * text may come from a process we do not trust and goes into log lines and
 * API errors).  Only the file's last 4 KiB are read.  "" when there is
 * nothing. */
void file_tail_lines(const char *path, int max_lines, char *out, size_t size);

/* path_join("a", "b") == "a/b", malloc'd. */
char *path_join(const char *a, const char *b);

/* p as an absolute path without resolving its last component, which may be
 * a dead FUSE mount (stat on it fails with ENOTCONN); trailing slashes go.
 * malloc'd, or NULL with errno set. */
char *path_absolute_keep_last(const char *p);

/* The topmost mount at path (absolute, as /proc/self/mountinfo spells it):
 * 1 and its file system type in fstype (may be NULL) and device minor
 * number in *ret_minor (may be NULL; a FUSE mount's connection number)
 * when there is one, 0 when path is no mount point, -errno. */
int mount_point_type(const char *path, char *fstype, size_t size, unsigned *ret_minor);
