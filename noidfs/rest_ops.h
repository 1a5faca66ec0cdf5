/* rest_ops.h — noidfs's REST/WebSocket binding: struct noidfs_ops over a
 * noid server's API (DESIGN.md §4, docs/api.md), for the client mount
 * (`noid mount DIR`, `noidfs DIR`).
 *
 * Single-user: everything is the token's user's (list_users is NULL and
 * every `user` argument is ignored).  Plain requests go through a small
 * pool of lib/http_client.h clients, one per request in flight, so many
 * FUSE threads call the server at once; an exec and a console attachment
 * each own a WebSocket (lib/ws_client.h) driven by a thread of their own.
 *
 * Errors: an HTTP status becomes the engine's code (noidfs_rest_errno) with
 * the server's {"error"} sentence as the reason; no HTTP answer at all
 * (refused, reset, timed out, unresolvable) is -ENOTCONN.  Every wait is
 * bounded (the constants in rest_ops.c), so a stopped or hung server gives
 * an error, never a hang. */
#pragma once

#include <time.h>

#include "nerr.h"
#include "noidfs.h"

/* The table; its `void *b` is a struct noidfs_rest. */
extern const struct noidfs_ops noidfs_rest_ops;

struct noidfs_rest;

/* A binding for the server at url (http:// or https://) with token.
 * Nothing is sent yet.  http_global_init() must have been called. */
int noidfs_rest_new(const char *url, const char *token, struct noidfs_rest **ret);
/* Free it; every exec and console attachment must be freed first. */
void noidfs_rest_free(struct noidfs_rest *b);

/* GET /v1/whoami: the token's user name (malloc'd).  Also tells whether the
 * server answers and takes the token. */
int noidfs_rest_whoami(struct noidfs_rest *b, char **ret_name, struct nerr *e);

/* ---- pure helpers (exported for the unit tests) ---- */

/* The engine's code for an HTTP status and the server's error sentence msg
 * (may be NULL): 0 for 2xx; 400 -EINVAL; 401/403 -EACCES; 404 -ENOENT (but
 * -EOPNOTSUPP for the server's "no such endpoint": an older server); 409
 * -ESRCH when msg says "not running", -EEXIST when it says "exists" or
 * "taken", else -EBUSY; 429 -EDQUOT; 503 -EBUSY; 501 -EOPNOTSUPP; 504
 * -ETIMEDOUT; 507 -ENOSPC; anything else -EIO. */
int noidfs_rest_errno(long status, const char *msg);
