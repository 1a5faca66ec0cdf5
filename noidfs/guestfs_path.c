/* guestfs_path.c — see guestfs_path.h. */
#include "guestfs_path.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int gpath_join(const char *dir, const char *name, char out[GPATH_SIZE])
{
    size_t dl = strlen(dir), nl = strlen(name);
    bool root = strcmp(dir, "/") == 0;

    if (dir[0] != '/' || nl == 0 || strchr(name, '/') || strcmp(name, ".") == 0 ||
        strcmp(name, "..") == 0)
        return -EINVAL;
    if (nl > AP_FS_NAME_MAX || (root ? 0 : dl) + 1 + nl > AP_FS_PATH_MAX)
        return -ENAMETOOLONG;
    snprintf(out, GPATH_SIZE, "%s/%s", root ? "" : dir, name);
    return 0;
}

bool gpath_within(const char *path, const char *top)
{
    size_t tl = strlen(top);

    if (strcmp(top, "/") == 0)
        return path[0] == '/';
    return strncmp(path, top, tl) == 0 && (path[tl] == '\0' || path[tl] == '/');
}

int gpath_rebase(const char *path, const char *from, const char *to, char out[GPATH_SIZE])
{
    const char *rest;
    size_t len;

    if (!gpath_within(path, from))
        return -EINVAL;
    if (strcmp(path, from) == 0) {
        rest = "";
    } else {
        /* what follows from, starting with its '/' */
        rest = strcmp(from, "/") == 0 ? path : path + strlen(from);
        if (strcmp(to, "/") == 0)
            to = "";
    }
    len = strlen(to) + strlen(rest);
    if (len > AP_FS_PATH_MAX)
        return -ENAMETOOLONG;
    snprintf(out, GPATH_SIZE, "%s%s", to, rest);
    return 0;
}
