/* serve.h — netd's socket: where the server's requests come in.
 *
 * One request per connection: the peer's uid (SO_PEERCRED) must be the
 * server's, then one line is read (NETD_LINE_MAX, NETD_REQUEST_TIMEOUT_MS
 * for all of it), handled, answered with one line, and the connection
 * closed.  Connections are handled one at a time: a request takes a few
 * milliseconds, and serial handling is what keeps index allocation free
 * of races. */
#pragma once

#include <sys/types.h>

#include "nerr.h"
#include "vmnet.h"

/* Time a client has to send its whole request line */
#define NETD_REQUEST_TIMEOUT_MS 5000

/* Listen on path: its parent directory made (0755) when missing, a stale
 * socket file replaced — but not the socket of a netd still serving there
 * (-EADDRINUSE) — and the new socket 0600 owned by server_uid, so only
 * that uid (and root, refused later by SO_PEERCRED unless it is the
 * server uid) can connect.  The socket's inode goes to *ret_ino so the
 * caller removes only its own socket at exit. */
int serve_listen(const char *path, uid_t server_uid, int *ret_fd, ino_t *ret_ino, struct nerr *e);

/* Accept one connection on listen_fd and serve it completely; logs what
 * it did.  Never fails: a bad client is the client's problem. */
void serve_one(int listen_fd, struct vmnet *v);
