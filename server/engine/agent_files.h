/* agent_files.h — the host side of the agent's file operations (protocol
 * v3, lib/agent_proto.h "File operations").
 *
 * Built on agent_client's connection: the same reader thread hands every
 * FS_* frame to the request that owns its stream id, so any number of file
 * requests and execs share one channel and their answers interleave.
 *
 * Two kinds of request:
 *  - agent_fs_call(): one request, one answer (STAT, OPEN, PREAD, RENAME,
 *    ...): sends it and waits for FS_REPLY or FS_ERRNO;
 *  - a stream (READ_FILE, READDIR, WRITE_FILE): agent_fs_stream_open()
 *    sends the request, then the caller reads bytes or directory entries,
 *    or writes the file's bytes, with flow control both ways: a download
 *    holds at most its window in server memory (the agent reads the file
 *    only as the consumer takes bytes), an upload waits for the agent's
 *    WINDOW acknowledgements.  Memory stays constant for any file size.
 *
 * Errors: the guest's errno as -errno with its message ("guest: ..."), or
 * the channel's own: -ETIMEDOUT (no answer before the deadline; the
 * request is cancelled), -ECONNRESET (channel broken), -EPROTONOSUPPORT
 * (the agent speaks protocol 1 or 2: it has no file operations, and is
 * never sent a file frame).  Thread-safe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent_client.h"
#include "agent_proto.h"
#include "nerr.h"

/* What an answered request carried; which fields are set depends on the op
 * (agent_proto.h, "Ops and their answers"). */
struct agent_fs_reply {
    bool has_attr; /* attr is set (STAT, OPEN, MKDIR, CHMOD, ...) */
    struct ap_fs_attr attr;
    uint32_t handle;               /* OPEN */
    uint64_t count;                /* PWRITE: bytes written; PREAD: bytes read */
    struct ap_fs_statfs statfs;    /* STATFS */
    char link[AP_FS_PATH_MAX + 1]; /* READLINK, NUL-terminated */
    /* PREAD: set by the caller before the call: where the bytes go (at
     * least req->length bytes); count says how many came (fewer = EOF). */
    void *read_buf;
};

/* Send req (any op but READ_FILE, READDIR, WRITE_FILE) and wait for its
 * answer until deadline_ms (time_mono_ms()).  0 and *ret, or an error
 * (see above; a malformed answer breaks the channel: -ECONNRESET). */
int agent_fs_call(struct agent_conn *c, const struct ap_fs_req *req, int64_t deadline_ms,
                  struct agent_fs_reply *ret, struct nerr *e);

struct agent_fs_stream;

/* Start a READ_FILE, READDIR or WRITE_FILE.  For downloads req->window is
 * set here (the stream's buffer size, AGENT_FS_STREAM_WINDOW).  Returns
 * once the request is sent; an error of the guest (no such file) comes
 * with the first read, or the first write / finish. */
#define AGENT_FS_STREAM_WINDOW (1024u * 1024)
int agent_fs_stream_open(struct agent_conn *c, const struct ap_fs_req *req, int64_t deadline_ms,
                         struct agent_fs_stream **ret, struct nerr *e);

/* Called with the connection's lock held (be quick, never call back into
 * this module, never take a lock held around calls into it) whenever the
 * stream becomes readable (bytes, an entry, its end or an error) or
 * writable (upload credit came back): from the reader thread, or from
 * whichever thread found the channel broken.  For consumers that poll
 * without blocking (an HTTP response reader).  Set it before the first
 * read. */
void agent_fs_stream_set_notify(struct agent_fs_stream *s, void (*fn)(void *user), void *user);

/* Downloads.  Take up to len bytes of a READ_FILE: > 0 bytes; 0 the end
 * (the whole answer has come: the file's bytes are all delivered);
 * -EAGAIN nothing yet and deadline_ms already passed (pass 0 to never
 * wait); -errno the guest's error or the channel's.  Consumed bytes go
 * back to the agent as credit; a polling caller (deadline passed) never
 * waits for a busy channel (see agent_fs_stream_poke). */
ssize_t agent_fs_stream_read(struct agent_fs_stream *s, void *buf, size_t len, int64_t deadline_ms,
                             struct nerr *e);
/* A polling consumer's retry: give back consumed bytes that could not go
 * out when they were read (the channel was busy then); never waits.  Call
 * it now and then (every second) while waiting for a notify. */
void agent_fs_stream_poke(struct agent_fs_stream *s);
/* The next READDIR entry: 1 and *name, *attr; 0 at the end; -EAGAIN, -errno
 * as agent_fs_stream_read. */
int agent_fs_stream_next_dirent(struct agent_fs_stream *s, char name[AP_FS_NAME_MAX + 1],
                                struct ap_fs_attr *attr, int64_t deadline_ms, struct nerr *e);

/* Uploads (WRITE_FILE).  Send len bytes, waiting for credit until
 * deadline_ms: 0; -errno (the guest refused the file or a write: the rest
 * of the upload is pointless); -ETIMEDOUT. */
int agent_fs_stream_write(struct agent_fs_stream *s, const void *data, size_t len,
                          int64_t deadline_ms, struct nerr *e);
/* Send the end of the file and wait for the answer: 0 and *ret_count
 * (bytes written), or -errno (with AP_WRITE_ATOMIC nothing was replaced). */
int agent_fs_stream_finish(struct agent_fs_stream *s, int64_t deadline_ms, uint64_t *ret_count,
                           struct nerr *e);

/* End the stream.  One not yet answered is cancelled (FS_CANCEL: an atomic
 * upload leaves nothing behind; a download stops reading the file). */
void agent_fs_stream_free(struct agent_fs_stream *s);
