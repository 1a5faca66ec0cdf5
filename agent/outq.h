/* outq.h — the agent's queue of outgoing frames.
 *
 * Everything the agent says goes through one outq and is written to the
 * channel only when the channel fd is writable, so the poll loop never blocks
 * in write(): a virtio-serial port with no host connected refuses writes, and
 * a slow host must not stall the other execs.  The queue keeps whole frames;
 * the frame at the head may be partly written.
 *
 * Bounds: producers of bulk data (exec stdout/stderr, the channel reader)
 * check outq_is_full() and stop producing while it is true; small control
 * frames are always accepted, so the total stays near OUTQ_HIGH_WATER plus
 * one input frame's worth of answers. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Above this many queued bytes the agent stops reading exec pipes and the
 * channel until the host has taken some output. */
#define OUTQ_HIGH_WATER (4u * 1024 * 1024)

struct outq_frame;

/* Data-chunk-sized frame buffers kept for reuse.  musl's malloc returns
 * 64 KiB blocks to the kernel on free(), and the mmap/munmap pair per
 * output chunk cut bulk throughput by an order of magnitude. */
#define OUTQ_CACHE_MAX 16

struct outq {
    struct outq_frame *head, *tail;
    size_t bytes;             /* queued bytes not yet written, headers included */
    size_t head_off;          /* bytes of the head frame already written */
    struct outq_frame *cache; /* free big frames, at most OUTQ_CACHE_MAX */
    size_t ncache;
};

/* Append one frame {type, stream, payload[len]}; len <= AP_MAX_PAYLOAD.
 * Returns 0 or -ENOMEM (the frame is then lost; the caller logs). */
int outq_push(struct outq *q, uint8_t type, uint32_t stream, const void *payload, size_t len);

/* Zero-copy data frames: outq_data_begin() hands out a buffer for up to
 * AP_DATA_CHUNK payload bytes (NULL when out of memory); fill it, then
 * outq_data_commit() queues len of them (len 0 queues nothing and just gives
 * the buffer back).  Saves copying every output chunk once more, which
 * matters under TCG.  Commit returns 0 or -ENOMEM. */
uint8_t *outq_data_begin(struct outq *q, struct outq_frame **ret_frame);
int outq_data_commit(struct outq *q, struct outq_frame *f, uint8_t type, uint32_t stream,
                     size_t len);

/* Convenience: ERROR{message} on stream. */
int outq_push_error(struct outq *q, uint32_t stream, const char *msg);

/* Write as much as fd takes without blocking (fd must be O_NONBLOCK).
 * Returns 0 when the queue was emptied or fd would block, or -errno on a
 * write error (the queue is left as it was after the last good write). */
int outq_flush(struct outq *q, int fd);

/* Drop every frame not yet started.  A partly written head frame is kept so
 * the byte stream the host sees is always made of whole frames. */
void outq_drop_unstarted(struct outq *q);

/* Drop everything, including a partly written frame (the connection it was
 * going to is gone). */
void outq_clear(struct outq *q);

/* outq_clear() and give the cached buffers back too. */
void outq_free(struct outq *q);

static inline bool outq_is_empty(const struct outq *q)
{
    return q->bytes == 0;
}

static inline bool outq_is_full(const struct outq *q)
{
    return q->bytes >= OUTQ_HIGH_WATER;
}
