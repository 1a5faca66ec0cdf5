/* outq.c — see outq.h.  A singly linked list of heap frames (header and
 * payload in one allocation) written with writev(); at most OUTQ_IOV frames
 * per system call.  Frames of more than OUTQ_SMALL payload bytes get a buffer
 * of the full AP_DATA_CHUNK size, recycled through a small free list. */
#include "outq.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "agent_proto.h"

#define OUTQ_IOV   64
#define OUTQ_SMALL 4096

struct outq_frame {
    struct outq_frame *next;
    size_t len; /* header + payload */
    bool big;   /* data[] holds AP_HEADER_LEN + AP_DATA_CHUNK bytes */
    uint8_t data[];
};

static struct outq_frame *outq_frame_new(struct outq *q, size_t len)
{
    struct outq_frame *f;
    bool big = len > OUTQ_SMALL && len <= AP_DATA_CHUNK;

    if (big && q->cache) {
        f = q->cache;
        q->cache = f->next;
        q->ncache--;
        return f;
    }
    f = malloc(sizeof(*f) + AP_HEADER_LEN + (big ? AP_DATA_CHUNK : len));
    if (f)
        f->big = big;
    return f;
}

static void outq_frame_free(struct outq *q, struct outq_frame *f)
{
    if (f->big && q->ncache < OUTQ_CACHE_MAX) {
        f->next = q->cache;
        q->cache = f;
        q->ncache++;
        return;
    }
    free(f);
}

static void outq_append(struct outq *q, struct outq_frame *f, uint8_t type, uint32_t stream,
                        size_t len)
{
    f->next = NULL;
    f->len = AP_HEADER_LEN + len;
    ap_header_encode(f->data, type, stream, (uint32_t)len);
    if (q->tail)
        q->tail->next = f;
    else
        q->head = f;
    q->tail = f;
    q->bytes += f->len;
}

int outq_push(struct outq *q, uint8_t type, uint32_t stream, const void *payload, size_t len)
{
    struct outq_frame *f;

    if (len > AP_MAX_PAYLOAD)
        return -EMSGSIZE;
    f = outq_frame_new(q, len);
    if (!f)
        return -ENOMEM;
    if (len)
        memcpy(f->data + AP_HEADER_LEN, payload, len);
    outq_append(q, f, type, stream, len);
    return 0;
}

uint8_t *outq_data_begin(struct outq *q, struct outq_frame **ret_frame)
{
    struct outq_frame *f = outq_frame_new(q, AP_DATA_CHUNK);

    *ret_frame = f;
    return f ? f->data + AP_HEADER_LEN : NULL;
}

int outq_data_commit(struct outq *q, struct outq_frame *f, uint8_t type, uint32_t stream,
                     size_t len)
{
    int r = 0;

    if (len > OUTQ_SMALL) {
        outq_append(q, f, type, stream, len);
        return 0;
    }
    /* A small chunk must not pin a whole chunk-sized buffer: the high water
     * mark counts bytes, so it only bounds memory if frames are tight. */
    if (len > 0)
        r = outq_push(q, type, stream, f->data + AP_HEADER_LEN, len);
    outq_frame_free(q, f);
    return r;
}

int outq_push_error(struct outq *q, uint32_t stream, const char *msg)
{
    return outq_push(q, AP_ERROR, stream, msg, strnlen(msg, AP_MAX_STRING));
}

static void outq_pop(struct outq *q)
{
    struct outq_frame *f = q->head;

    q->head = f->next;
    if (!q->head)
        q->tail = NULL;
    outq_frame_free(q, f);
}

int outq_flush(struct outq *q, int fd)
{
    while (q->head) {
        struct iovec iov[OUTQ_IOV];
        struct outq_frame *f = q->head;
        size_t off = q->head_off;
        int n = 0;
        ssize_t w;

        for (; f && n < OUTQ_IOV; f = f->next, n++) {
            iov[n].iov_base = f->data + off;
            iov[n].iov_len = f->len - off;
            off = 0;
        }
        w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -errno;
        }
        q->bytes -= (size_t)w;
        while (w > 0) {
            size_t left = q->head->len - q->head_off;

            if ((size_t)w < left) {
                q->head_off += (size_t)w;
                break;
            }
            w -= (ssize_t)left;
            q->head_off = 0;
            outq_pop(q);
        }
    }
    return 0;
}

void outq_drop_unstarted(struct outq *q)
{
    struct outq_frame *keep = NULL;

    if (q->head && q->head_off > 0) {
        keep = q->head;
        q->head = keep->next;
    }
    while (q->head)
        outq_pop(q);
    q->bytes = 0;
    if (keep) {
        keep->next = NULL;
        q->head = q->tail = keep;
        q->bytes = keep->len - q->head_off;
    }
}

void outq_clear(struct outq *q)
{
    while (q->head)
        outq_pop(q);
    q->bytes = 0;
    q->head_off = 0;
}

void outq_free(struct outq *q)
{
    outq_clear(q);
    while (q->cache) {
        struct outq_frame *f = q->cache;
        q->cache = f->next;
        free(f);
    }
    q->ncache = 0;
}
