/* fuzz_ws.c — libFuzzer target: WebSocket frames from a peer (lib/ws.c).
 *
 * The first byte shapes the run: its low 6 bits + 1 are the size of every
 * transport read (so frames arrive cut anywhere), bit 6 picks the role (a
 * server receiving from a client, or the reverse), bit 7 pushes the first
 * read as ws_push_input instead (the bytes a handshake read too far).  The
 * rest is what the peer sent; the connection receives until it is finished
 * and what it sends back is dropped.  The header codec is checked on the
 * same bytes: a parsed header encodes back to one that parses the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small, so that the 1009 paths are reached. */
#define FUZZ_MAX_MESSAGE 4096

struct mem_io {
    const uint8_t *data;
    size_t len, pos, chunk;
};

static ssize_t mem_send(void *user, const void *buf, size_t len)
{
    return (ssize_t)len;
}

static ssize_t mem_recv(void *user, void *buf, size_t len)
{
    struct mem_io *m = user;
    size_t n = m->len - m->pos;

    if (n > m->chunk)
        n = m->chunk;
    if (n > len)
        n = len;
    memcpy(buf, m->data + m->pos, n);
    m->pos += n;
    return (ssize_t)n; /* 0 at the end: the peer went away */
}

static int mem_wait(void *user, bool for_write, int timeout_ms)
{
    return 1;
}

static void check_codec(const uint8_t *data, size_t size)
{
    struct ws_frame_header h, h2;
    uint8_t out[WS_MAX_HEADER];
    int r = ws_frame_header_parse(data, size, &h);

    if (r <= 0)
        return;
    if ((size_t)r != h.header_len || h.header_len > WS_MAX_HEADER || h.header_len > size)
        abort();
    size_t n = ws_frame_header_encode(out, h.opcode, h.fin, h.len, h.masked ? h.mask : NULL);
    if (ws_frame_header_parse(out, n, &h2) != (int)n || h2.len != h.len || h2.opcode != h.opcode ||
        h2.fin != h.fin || h2.masked != h.masked || (h.masked && memcmp(h.mask, h2.mask, 4) != 0) ||
        n > h.header_len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mem_io m;
    struct ws_io io = {.send = mem_send, .recv = mem_recv, .wait = mem_wait, .user = &m};
    struct ws_message msg;
    struct ws *w = NULL;
    int r;

    if (size < 1)
        return 0;
    check_codec(data + 1, size - 1);
    m = (struct mem_io){.data = data + 1, .len = size - 1, .chunk = (data[0] & 0x3f) + 1u};
    if (ws_new(data[0] & 0x40 ? WS_CLIENT : WS_SERVER, &io, FUZZ_MAX_MESSAGE, &w) < 0)
        return 0;
    if (data[0] & 0x80) {
        size_t n = m.len < m.chunk ? m.len : m.chunk;
        if (ws_push_input(w, m.data, n) == 0)
            m.pos = n;
    }
    do {
        r = ws_receive(w, &msg);
        if (r == 1 && (msg.len > FUZZ_MAX_MESSAGE || msg.data[msg.len] != 0 ||
                       (msg.opcode != WS_OP_TEXT && msg.opcode != WS_OP_BINARY)))
            abort();
    } while (r == 1);
    /* the transport never blocks, so only the end of the stream or a
     * refusal ends it */
    if (r == 0)
        abort();
    ws_free(w);
    return 0;
}
