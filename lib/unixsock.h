/* unixsock.h — AF_UNIX helpers.
 *
 * sun_path holds 108 bytes, and VM directories can be longer than that
 * (data dir + user id + 64-character VM name).  unix_connect() and
 * unix_listen() therefore go through /proc/self/fd/<dirfd>/<name> when the
 * plain path does not fit. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* The sun_path to reach dir/name: the plain path when it fits, else
 * /proc/self/fd/<dirfd>/name with *ret_dirfd opened (the caller closes it
 * once done connecting); *ret_dirfd is -1 in the plain case. */
int unix_sock_path(const char *dir, const char *name, char out[108], int *ret_dirfd);

/* Connect a SOCK_STREAM socket to dir/name; the result is CLOEXEC and
 * blocking.  -EAGAIN when the listener's backlog is full, never a hang. */
int unix_connect(const char *dir, const char *name, int *ret_fd);
/* Bind + listen on dir/name, replacing a stale socket file. */
int unix_listen(const char *dir, const char *name, int backlog, int *ret_fd);

/* Write all of buf, retrying on EINTR/EAGAIN (polls for POLLOUT). */
int fd_write_all(int fd, const void *buf, size_t len);
/* Write all of buf with an fd attached as SCM_RIGHTS to the first byte. */
int fd_send_with_fd(int fd, const void *buf, size_t len, int passfd);
/* Wait up to timeout_ms for fd to become readable: 1 ready, 0 timeout, -errno. */
int fd_wait_readable(int fd, int timeout_ms);
