/* engine_ops.h — the engine binding of noidfs (DESIGN.md §9): struct
 * noidfs_ops on top of engine.h, for the server-side mount.
 *
 * Multi-user: list_users lists every user of the engine, and every op acts
 * for the user its `user` argument names (looked up by name, one indexed
 * row per call).  The binding pointer handed to noidfs_mount is the struct
 * engine itself; the engine is thread-safe, so the ops are too, and no op
 * holds a lock of its own around an engine call. */
#pragma once

#include "engine.h"
#include "noidfs.h"

/* The ops table; binding = the struct engine * (it must outlive the mount). */
extern const struct noidfs_ops noidfs_engine_ops;
