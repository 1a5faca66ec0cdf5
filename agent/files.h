/* files.h — the file operations the agent serves for the host (protocol v3,
 * agent_proto.h "file operations").
 *
 * Simple requests (stat, mkdir, rename, ...) are served at once by
 * files_request(): one syscall or a few, one FS_REPLY or FS_ERRNO.  The
 * rest are transfers, keyed by their stream id, at most FILES_MAX_XFERS:
 *  - downloads (READ_FILE, PREAD, READDIR) are produced by files_pump()
 *    one chunk at a time, only while the outq is below its high water mark
 *    and the transfer has credit, so each holds at most one chunk;
 *  - uploads (WRITE_FILE) are written by files_data() as FS_DATA frames
 *    arrive and acknowledged with WINDOW once on disk; nothing is buffered.
 * Open handles (OPEN) live in a table of FILES_MAX_HANDLES.
 *
 * Everything belongs to the session: files_reset() closes every handle and
 * ends every transfer without an answer (removing the temporary file of an
 * atomic upload).  Every answer goes to the outq given at init.  Nothing
 * here exits or logs above warning level because of what the host sent. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_proto.h"
#include "outq.h"

/* Open handles per session; OPEN beyond it gets EMFILE. */
#define FILES_MAX_HANDLES 128
/* Transfers running at once; one more gets EBUSY. */
#define FILES_MAX_XFERS 64

struct files_xfer;

struct files {
    struct outq *q;
    int fds[FILES_MAX_HANDLES];                /* -1 = free slot */
    uint32_t ids[FILES_MAX_HANDLES];           /* the handle the host knows the slot by */
    uint32_t next_id;                          /* never 0: handle 0 is never valid */
    struct files_xfer *xfers[FILES_MAX_XFERS]; /* NULL = free */
    size_t nxfers;
};

void files_init(struct files *f, struct outq *q);

/* The session ended: close every handle, end every transfer silently. */
void files_reset(struct files *f);

/* Whether stream has a transfer running (so its id is taken). */
bool files_has_xfer(const struct files *f, uint32_t stream);

/* Serve req, a request that decoded and passed ap_fs_req_check(), on
 * stream (not in use: the caller checked).  Queues the answer, or starts a
 * transfer that answers later. */
void files_request(struct files *f, uint32_t stream, const struct ap_fs_req *req);

/* FS_DATA for stream: write it to the upload's file and acknowledge it; an
 * empty one finishes the upload.  Ignored without an upload on stream. */
void files_data(struct files *f, uint32_t stream, const uint8_t *p, size_t len);

/* OUT_ACK{n} for stream: n bytes of download credit back (clamped to the
 * window), AP_OUT_ACK_RELEASE ends flow control.  Returns 0, or -ENOENT if
 * stream has no download. */
int files_ack(struct files *f, uint32_t stream, uint32_t n);

/* FS_CANCEL: end stream's transfer with FS_ERRNO{ECANCELED}.  Ignored
 * without one. */
void files_cancel(struct files *f, uint32_t stream);

/* Produce download chunks, round-robin over the transfers, until the
 * outq reaches its high water mark or no transfer has credit left.  What
 * lets them go on (a flush, an OUT_ACK) wakes the main loop, which calls
 * this every round. */
void files_pump(struct files *f);

/* FS_ERRNO{err, "what: strerror(err)"} on stream. */
void files_reply_errno(struct files *f, uint32_t stream, int err, const char *what);
