/* agent_client-internal.h — what agent_client.c shares with agent_files.c:
 * the connection itself and its send path.  Nothing else includes it. */
#pragma once

#include <pthread.h>
#include <stdatomic.h>

#include "agent_client.h"
#include "buf.h"

struct agent_exec;
struct ctl_wait;
struct agent_fs_op;

/* FS_CANCELs kept for the next frame when the channel was too busy to
 * send them (the agent's own bound of transfers, FILES_MAX_XFERS). */
#define AGENT_DEFERRED_CANCELS 64

struct agent_conn {
    atomic_int refs;
    int fd;
    pthread_mutex_t wlock;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool broken;                              /* (lock) */
    struct agent_exec *execs;                 /* (lock) */
    struct ctl_wait *ctls;                    /* (lock) */
    struct agent_fs_op *fs_ops;               /* (lock) file requests in flight (agent_files.c) */
    uint32_t cancels[AGENT_DEFERRED_CANCELS]; /* (lock) FS_CANCELs waiting for the channel */
    size_t ncancels;                          /* (lock) */
    uint32_t next_stream;                     /* (lock) */
    struct buf in;                            /* reader thread only */
    int version; /* protocol in use, set by the handshake, then fixed */
};

/* How long KILL, RESIZE, OUT_ACK and FS_CANCEL may wait for the channel:
 * they are sent when the caller's own deadline has passed, or from a
 * streaming client's thread, so each gets a short bound of its own. */
#define AGENT_SHORT_SEND_MS 1000

/* Mark the connection broken and wake every waiter; c->lock held. */
void agent_conn_mark_broken_locked(struct agent_conn *c);

/* Send one whole frame, waiting for wlock and for room on the socket until
 * deadline_ms (time_mono_ms) at most.  -ETIMEDOUT at the deadline, -errno
 * on a socket error.  A past deadline sends only if the channel is free
 * now.  A frame that has started gets AGENT_SHORT_SEND_MS more to finish
 * past the deadline; the channel is marked broken (and shut down) when a
 * frame went out only in part even so, or on a socket error; a frame of
 * which nothing was sent leaves it usable. */
int agent_conn_send(struct agent_conn *c, uint8_t type, uint32_t stream, const void *payload,
                    size_t len, int64_t deadline_ms);

/* Send FS_CANCEL for stream with the next frame that gets the channel
 * (this one could not: the channel stayed busy).  Without it the agent
 * would keep the transfer (a slot, an fd, an atomic upload's temporary
 * file) until the session ends. */
void agent_conn_defer_cancel(struct agent_conn *c, uint32_t stream);

/* A fresh stream id, used by no exec, control or file request; c->lock held. */
uint32_t agent_conn_next_stream_locked(struct agent_conn *c);

/* agent_files.c: the file request on stream, if any (c->lock held). */
struct agent_fs_op *agent_fs_find_locked(struct agent_conn *c, uint32_t stream);
/* agent_files.c: handle an FS_REPLY, FS_ERRNO, FS_RDATA, FS_DIRENTS or a
 * WINDOW for a file stream (c->lock held).  0 handled (or dropped: no such
 * request); -EPROTO breaks the connection.  *wake is set when a waiter
 * must be woken. */
int agent_fs_dispatch_locked(struct agent_conn *c, const struct ap_frame *f, bool *wake);
/* agent_files.c: call every file stream's notify callback (the channel
 * broke; c->lock held). */
void agent_fs_notify_all_locked(struct agent_conn *c);
