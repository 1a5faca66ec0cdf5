/* client_mount.h — the client mount: a user's VMs as directories, served
 * through the REST/WebSocket binding (rest_ops.h).  What `noid mount`,
 * `noid umount` and the `noidfs` executable run. */
#pragma once

#include <stdbool.h>

/* Check that the server at url answers and takes token (GET /v1/whoami),
 * mount dir (a stale mount there is cleared first), then serve it until it
 * is unmounted (fusermount3 -u, `noid umount`) or SIGTERM/SIGINT/SIGHUP
 * arrives.
 *
 * Unless foreground, it goes to the background once the mount is ready:
 * the calling process prints "noidfs: mounted DIR (log: PATH)" and returns
 * 0 (the caller exits; the mount stays); the background process logs to
 * log_path (NULL: ~/.noid/logs/noidfs-<dir>.log, directories made 0700) and
 * returns when the mount is gone.  In the foreground it logs to stderr, or
 * to log_path when one is given.
 *
 * Returns a process exit status: 0, or 1 after printing "noidfs: <why>" on
 * stderr. */
int noidfs_client_main(const char *url, const char *token, const char *dir, bool foreground,
                       const char *log_path);

/* Unmount the noidfs mount at dir with fusermount3 -u.  Returns a process
 * exit status: 0, or 1 after printing why on stderr with prefix (e.g.
 * "noid") — also when dir is not a mount point. */
int noidfs_client_umount(const char *dir, const char *prefix);
