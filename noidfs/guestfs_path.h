/* guestfs_path.h — the guest paths behind VM/fs/: built from a directory's
 * path and a name the kernel hands us, and moved by renames.  Pure string
 * logic (libc only), so it is unit tested on its own.
 *
 * A guest path is absolute, "/" being fs/ itself, with no trailing slash
 * (but "/"), at most AP_FS_PATH_MAX bytes: what the agent accepts. */
#pragma once

#include <stdbool.h>

#include "agent_proto.h"

#define GPATH_SIZE (AP_FS_PATH_MAX + 1)

/* dir + "/" + name into out.  0; -EINVAL for a name that is not one entry
 * ("", ".", "..", or with a '/') or a dir that is not absolute;
 * -ENAMETOOLONG for a name over AP_FS_NAME_MAX or a path over
 * AP_FS_PATH_MAX. */
int gpath_join(const char *dir, const char *name, char out[GPATH_SIZE]);

/* Whether path is top or lies below it ("/a/b" is within "/a", "/ab" is
 * not; everything is within "/"). */
bool gpath_within(const char *path, const char *top);

/* path, which is within from, as it is named once from is renamed to to.
 * 0, or -ENAMETOOLONG when the result would be too long, -EINVAL when
 * path is not within from. */
int gpath_rebase(const char *path, const char *from, const char *to, char out[GPATH_SIZE]);
