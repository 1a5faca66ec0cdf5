/* test_ws.c — RFC 6455 in lib/ws.c and the libcurl client in
 * lib/ws_client.c: handshake values, the frame codec, then connections over
 * a socketpair, where one end is a struct ws and the other either another
 * struct ws or raw bytes written and read by the test (to send what no
 * conforming peer would, and to see the exact close frame that answers it).
 * The client tests run a tiny HTTP server on 127.0.0.1 in a thread. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "encoding.h"
#include "macro.h"
#include "unit.h"
#include "ws.h"
#include "ws_client.h"

#define IO_WAIT_MS 5000 /* bound on every blocking step, so a bug hangs no test */

static const uint8_t test_mask[4] = {0x37, 0xfa, 0x21, 0x3d};

/* ---- a struct ws_io over a non-blocking socket ---- */

struct sock_io {
    int fd;
    size_t max_read; /* 0: any */
};

static ssize_t sock_send(void *user, const void *buf, size_t len)
{
    struct sock_io *s = user;
    ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    return n < 0 ? -errno : n;
}

static ssize_t sock_recv(void *user, void *buf, size_t len)
{
    struct sock_io *s = user;
    ssize_t n = recv(s->fd, buf, s->max_read ? MIN(len, s->max_read) : len, MSG_DONTWAIT);
    return n < 0 ? -errno : n;
}

static int sock_wait(void *user, bool for_write, int timeout_ms)
{
    struct sock_io *s = user;
    struct pollfd p = {.fd = s->fd, .events = for_write ? POLLOUT : POLLIN};
    int r = poll(&p, 1, timeout_ms);
    return r < 0 ? -errno : r;
}

/* A struct ws in role on fd[0] of a fresh socketpair; fd[1] is the raw
 * peer (blocking). */
struct rig {
    int fd[2];
    struct sock_io io;
    struct ws *w;
};

static void rig_open(struct rig *g, enum ws_role role, size_t max_message, size_t max_read)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, g->fd), 0);
    g->io = (struct sock_io){.fd = g->fd[0], .max_read = max_read};
    struct ws_io io = {.send = sock_send, .recv = sock_recv, .wait = sock_wait, .user = &g->io};
    ck_assert_int_eq(ws_new(role, &io, max_message, &g->w), 0);
}

static void rig_close(struct rig *g)
{
    ws_free(g->w);
    close(g->fd[0]);
    if (g->fd[1] >= 0)
        close(g->fd[1]);
}

/* Two struct ws talking to each other: a = server, b = client. */
struct duo {
    int fd[2];
    struct sock_io io[2];
    struct ws *server, *client;
};

static void duo_open(struct duo *d, size_t max_message)
{
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, d->fd), 0);
    for (int i = 0; i < 2; i++)
        d->io[i] = (struct sock_io){.fd = d->fd[i]};
    struct ws_io s = {.send = sock_send, .recv = sock_recv, .wait = sock_wait, .user = &d->io[0]};
    struct ws_io c = {.send = sock_send, .recv = sock_recv, .wait = sock_wait, .user = &d->io[1]};
    ck_assert_int_eq(ws_new(WS_SERVER, &s, max_message, &d->server), 0);
    ck_assert_int_eq(ws_new(WS_CLIENT, &c, max_message, &d->client), 0);
}

static void duo_close(struct duo *d)
{
    ws_free(d->server);
    ws_free(d->client);
    close(d->fd[0]);
    close(d->fd[1]);
}

/* ---- raw frames ---- */

/* Append a frame with first byte b0 (FIN, RSV, opcode as on the wire) to
 * out, masked with test_mask when masked. */
static void frame_append(struct buf *out, uint8_t b0, const void *payload, size_t len, bool masked)
{
    uint8_t h[WS_MAX_HEADER];
    size_t hl = ws_frame_header_encode(h, b0 & 0x0F, true, len, masked ? test_mask : NULL);
    uint8_t *p;

    h[0] = b0;
    ck_assert_int_eq(buf_append(out, h, hl), 0);
    ck_assert_int_eq(buf_append(out, payload, len), 0);
    p = out->data + out->len - len;
    if (masked)
        ws_mask_apply(p, len, test_mask, 0);
}

/* Only a header, announcing len bytes that never follow. */
static void header_append(struct buf *out, uint8_t b0, uint64_t len, bool masked)
{
    uint8_t h[WS_MAX_HEADER];
    size_t hl = ws_frame_header_encode(h, b0 & 0x0F, true, len, masked ? test_mask : NULL);

    h[0] = b0;
    ck_assert_int_eq(buf_append(out, h, hl), 0);
}

static void write_all(int fd, const void *p, size_t len)
{
    const uint8_t *b = p;
    while (len > 0) {
        ssize_t n = send(fd, b, len, MSG_NOSIGNAL);
        ck_assert_int_gt(n, 0);
        b += n;
        len -= (size_t)n;
    }
}

/* Read exactly len bytes from blocking fd; false at EOF. */
static bool read_exact(int fd, void *p, size_t len)
{
    uint8_t *b = p;
    while (len > 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ck_assert_int_eq(poll(&pfd, 1, IO_WAIT_MS), 1);
        ssize_t n = read(fd, b, len);
        if (n == 0)
            return false;
        ck_assert_int_gt(n, 0);
        b += n;
        len -= (size_t)n;
    }
    return true;
}

/* Read one frame from fd: its header in *h, its (unmasked) payload in
 * payload (cap bytes at most); returns the payload length. */
static size_t read_frame(int fd, struct ws_frame_header *h, uint8_t *payload, size_t cap)
{
    uint8_t hb[WS_MAX_HEADER];
    size_t have = 0;
    int r;

    for (;;) {
        r = ws_frame_header_parse(hb, have, h);
        ck_assert_int_ge(r, 0);
        if (r > 0)
            break;
        ck_assert(read_exact(fd, hb + have, 1));
        have++;
    }
    ck_assert_uint_le(h->len, cap);
    ck_assert(read_exact(fd, payload, h->len));
    if (h->masked)
        ws_mask_apply(payload, h->len, h->mask, 0);
    return h->len;
}

/* The next frame on fd is a close with code (unmasked: from a server,
 * unless from_client). */
static void expect_close_frame(int fd, uint16_t code, bool from_client)
{
    struct ws_frame_header h;
    uint8_t p[WS_MAX_CONTROL_PAYLOAD];
    size_t n = read_frame(fd, &h, p, sizeof(p));

    ck_assert_uint_eq(h.opcode, WS_OP_CLOSE);
    ck_assert(h.fin);
    ck_assert(h.masked == from_client);
    ck_assert_uint_ge(n, 2);
    ck_assert_uint_eq((unsigned)(p[0] << 8 | p[1]), code);
}

/* Receive until something else than a message comes. */
static int drain(struct ws *w)
{
    struct ws_message m;
    int r;

    do
        r = ws_receive_wait(w, &m, IO_WAIT_MS);
    while (r == 1);
    return r;
}

/* bytes (from a raw peer in the other role) make a role connection fail
 * with -EPROTO, answered by a close with code. */
static void expect_refused(enum ws_role role, size_t max_message, const struct buf *bytes,
                           uint16_t code)
{
    struct rig g;

    rig_open(&g, role, max_message, 0);
    write_all(g.fd[1], bytes->data, bytes->len);
    ck_assert_int_eq(drain(g.w), -EPROTO);
    ck_assert_uint_eq(ws_sent_close_code(g.w), code);
    ck_assert(ws_close_sent(g.w));
    expect_close_frame(g.fd[1], code, role == WS_CLIENT);
    /* finished: it stays so */
    ck_assert_int_eq(drain(g.w), -EPROTO);
    ck_assert_int_eq(ws_send(g.w, WS_OP_TEXT, "x", 1, 100), -EPIPE);
    rig_close(&g);
}

/* ---- handshake ---- */

START_TEST(accept_key_rfc_example)
{
    char out[WS_ACCEPT_LEN + 1];

    /* RFC 6455 §1.3 (SHA-1 b3 7a 4f 2c c0 62 4f 16 90 f6 46 06 cf 38 ...) */
    ck_assert_int_eq(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
    ck_assert_str_eq(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}
END_TEST

START_TEST(accept_key_rejects_bad_keys)
{
    char out[WS_ACCEPT_LEN + 1];

    ck_assert_int_eq(ws_accept_key("", out), -EINVAL);
    ck_assert_int_eq(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=", out), -EINVAL);
    ck_assert_int_eq(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ===", out), -EINVAL);
    /* 24 characters, but 18 bytes */
    ck_assert_int_eq(ws_accept_key("dGhlIHNhbXBsZSBub25jZQab", out), -EINVAL);
    ck_assert_int_eq(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ!=", out), -EINVAL);
}
END_TEST

START_TEST(client_keys_are_fresh)
{
    char a[WS_KEY_LEN + 1], b[WS_KEY_LEN + 1], out[WS_ACCEPT_LEN + 1];
    uint8_t *raw = NULL;
    size_t raw_len = 0;

    ck_assert_int_eq(ws_client_key(a), 0);
    ck_assert_int_eq(ws_client_key(b), 0);
    ck_assert_uint_eq(strlen(a), WS_KEY_LEN);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(base64_decode(a, strlen(a), &raw, &raw_len), 0);
    ck_assert_uint_eq(raw_len, 16);
    free(raw);
    ck_assert_int_eq(ws_accept_key(a, out), 0);
    ck_assert_uint_eq(strlen(out), WS_ACCEPT_LEN);
}
END_TEST

/* ---- frames ---- */

START_TEST(header_round_trips)
{
    static const uint64_t lens[] = {0, 1, 125, 126, 65535, 65536, (uint64_t)1 << 40};
    static const size_t hlens[] = {2, 2, 2, 4, 4, 10, 10};

    for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
        for (int masked = 0; masked < 2; masked++) {
            uint8_t buf[WS_MAX_HEADER];
            struct ws_frame_header h;
            size_t n = ws_frame_header_encode(buf, WS_OP_BINARY, i % 2 == 0, lens[i],
                                              masked ? test_mask : NULL);
            ck_assert_uint_eq(n, hlens[i] + (masked ? 4 : 0));
            /* every prefix is "need more" */
            for (size_t k = 0; k < n; k++)
                ck_assert_int_eq(ws_frame_header_parse(buf, k, &h), 0);
            ck_assert_int_eq(ws_frame_header_parse(buf, n, &h), (int)n);
            ck_assert_uint_eq(h.header_len, n);
            ck_assert_uint_eq(h.len, lens[i]);
            ck_assert_uint_eq(h.opcode, WS_OP_BINARY);
            ck_assert(h.fin == (i % 2 == 0));
            ck_assert_uint_eq(h.rsv, 0);
            ck_assert(h.masked == masked);
            if (masked)
                ck_assert_mem_eq(h.mask, test_mask, 4);
        }
    }
}
END_TEST

START_TEST(header_fields)
{
    /* RFC 6455 §5.7: a single-frame unmasked "Hello", then masked */
    static const uint8_t unmasked[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
    static const uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d,
                                     0x7f, 0x9f, 0x4d, 0x51, 0x58};
    static const uint8_t rsv_ping[] = {0x59, 0x00}; /* RSV1 | RSV3, not FIN, ping */
    static const uint8_t top_bit[] = {0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 1};
    struct ws_frame_header h;
    uint8_t payload[5];

    ck_assert_int_eq(ws_frame_header_parse(unmasked, sizeof(unmasked), &h), 2);
    ck_assert(h.fin && !h.masked && h.opcode == WS_OP_TEXT && h.len == 5);
    ck_assert_int_eq(ws_frame_header_parse(masked, sizeof(masked), &h), 6);
    ck_assert(h.fin && h.masked && h.opcode == WS_OP_TEXT && h.len == 5);
    memcpy(payload, masked + 6, 5);
    ws_mask_apply(payload, 5, h.mask, 0);
    ck_assert_mem_eq(payload, "Hello", 5);

    ck_assert_int_eq(ws_frame_header_parse(rsv_ping, sizeof(rsv_ping), &h), 2);
    ck_assert(!h.fin);
    ck_assert_uint_eq(h.rsv, 0x5);
    ck_assert_uint_eq(h.opcode, WS_OP_PING);

    ck_assert_int_eq(ws_frame_header_parse(top_bit, sizeof(top_bit), &h), -EBADMSG);
}
END_TEST

START_TEST(mask_in_pieces)
{
    uint8_t whole[37], pieces[37];

    for (size_t i = 0; i < sizeof(whole); i++)
        whole[i] = pieces[i] = (uint8_t)(i * 7);
    ws_mask_apply(whole, sizeof(whole), test_mask, 0);
    ck_assert_uint_eq(whole[0], 0 ^ test_mask[0]);
    ck_assert_uint_eq(whole[5], 35 ^ test_mask[1]);
    /* pieces of odd sizes at their offsets give the same bytes */
    ws_mask_apply(pieces, 3, test_mask, 0);
    ws_mask_apply(pieces + 3, 1, test_mask, 3);
    ws_mask_apply(pieces + 4, 30, test_mask, 4);
    ws_mask_apply(pieces + 34, 3, test_mask, 34);
    ck_assert_mem_eq(whole, pieces, sizeof(whole));
    /* and masking twice restores */
    ws_mask_apply(whole, sizeof(whole), test_mask, 0);
    ck_assert_uint_eq(whole[36], (uint8_t)(36 * 7));
}
END_TEST

/* ---- messages ---- */

START_TEST(messages_both_ways)
{
    struct duo d;
    struct ws_message m;
    static const uint8_t bin[] = {0, 1, 0xff, 0, 0x80};

    duo_open(&d, 1024);
    ck_assert_int_eq(ws_send(d.client, WS_OP_TEXT, "hello", 5, IO_WAIT_MS), 0);
    ck_assert_int_eq(ws_receive_wait(d.server, &m, IO_WAIT_MS), 1);
    ck_assert_uint_eq(m.opcode, WS_OP_TEXT);
    ck_assert_uint_eq(m.len, 5);
    ck_assert_str_eq((char *)m.data, "hello");

    ck_assert_int_eq(ws_send(d.server, WS_OP_BINARY, bin, sizeof(bin), IO_WAIT_MS), 0);
    ck_assert_int_eq(ws_send(d.server, WS_OP_TEXT, NULL, 0, IO_WAIT_MS), 0);
    ck_assert_int_eq(ws_receive_wait(d.client, &m, IO_WAIT_MS), 1);
    ck_assert_uint_eq(m.opcode, WS_OP_BINARY);
    ck_assert_uint_eq(m.len, sizeof(bin));
    ck_assert_mem_eq(m.data, bin, sizeof(bin));
    ck_assert_uint_eq(m.data[m.len], 0);
    /* the second message was in the same read: no wait needed for it */
    ck_assert_int_eq(ws_receive(d.client, &m), 1);
    ck_assert_uint_eq(m.opcode, WS_OP_TEXT);
    ck_assert_uint_eq(m.len, 0);
    ck_assert_ptr_nonnull(m.data);
    ck_assert_uint_eq(m.data[0], 0);
    ck_assert_int_eq(ws_receive(d.client, &m), 0);
    ck_assert_int_eq(ws_receive_wait(d.client, &m, 10), 0);
    duo_close(&d);
}
END_TEST

struct big_send {
    struct ws *w;
    const uint8_t *data;
    size_t len;
    int r;
};

static void *big_sender(void *arg)
{
    struct big_send *b = arg;
    b->r = ws_send(b->w, WS_OP_BINARY, b->data, b->len, 30000);
    return NULL;
}

/* Messages larger than the socket buffer and the send chunk, both roles. */
START_TEST(large_messages)
{
    const size_t len = 3 * 1024 * 1024 + 17;
    _cleanup_free_ uint8_t *data = malloc(len);
    struct duo d;
    struct ws_message m;
    pthread_t t;

    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i * 31 + (i >> 12));
    duo_open(&d, len);
    for (int dir = 0; dir < 2; dir++) {
        struct big_send b = {.w = dir ? d.server : d.client, .data = data, .len = len};
        ck_assert_int_eq(pthread_create(&t, NULL, big_sender, &b), 0);
        ck_assert_int_eq(ws_receive_wait(dir ? d.client : d.server, &m, 30000), 1);
        pthread_join(t, NULL);
        ck_assert_int_eq(b.r, 0);
        ck_assert_uint_eq(m.len, len);
        ck_assert(memcmp(m.data, data, len) == 0);
    }
    duo_close(&d);
}
END_TEST

START_TEST(masking_by_role)
{
    struct rig c, s;
    struct ws_frame_header h1, h2;
    uint8_t p[16];

    rig_open(&c, WS_CLIENT, 1024, 0);
    ck_assert_int_eq(ws_send(c.w, WS_OP_TEXT, "abcdef", 6, IO_WAIT_MS), 0);
    ck_assert_int_eq(ws_send(c.w, WS_OP_TEXT, "abcdef", 6, IO_WAIT_MS), 0);
    ck_assert_uint_eq(read_frame(c.fd[1], &h1, p, sizeof(p)), 6);
    ck_assert_mem_eq(p, "abcdef", 6);
    ck_assert_uint_eq(read_frame(c.fd[1], &h2, p, sizeof(p)), 6);
    ck_assert(h1.masked && h2.masked);
    /* a fresh mask per frame (equal by chance once in 2^32) */
    ck_assert(memcmp(h1.mask, h2.mask, 4) != 0);
    rig_close(&c);

    rig_open(&s, WS_SERVER, 1024, 0);
    ck_assert_int_eq(ws_send(s.w, WS_OP_BINARY, "xyz", 3, IO_WAIT_MS), 0);
    ck_assert_uint_eq(read_frame(s.fd[1], &h1, p, sizeof(p)), 3);
    ck_assert(!h1.masked);
    ck_assert_uint_eq(h1.opcode, WS_OP_BINARY);
    ck_assert_mem_eq(p, "xyz", 3);
    rig_close(&s);
}
END_TEST

/* A client's fragmented text message with control frames in between, and
 * a UTF-8 character split across two fragments. */
static void fragmented_input(struct buf *b)
{
    buf_init(b, 0);
    frame_append(b, WS_OP_TEXT, "Hel", 3, true);
    frame_append(b, 0x80 | WS_OP_PING, "ab", 2, true);
    frame_append(b, WS_OP_CONTINUATION, "lo w\xc3", 5, true);
    frame_append(b, 0x80 | WS_OP_PONG, "x", 1, true);
    frame_append(b, 0x80 | WS_OP_CONTINUATION, "\xb6rld", 4, true);
}

static void expect_pong(int fd, const char *payload)
{
    struct ws_frame_header h;
    uint8_t p[WS_MAX_CONTROL_PAYLOAD];
    size_t n = read_frame(fd, &h, p, sizeof(p));

    ck_assert_uint_eq(h.opcode, WS_OP_PONG);
    ck_assert(!h.masked);
    ck_assert_uint_eq(n, strlen(payload));
    ck_assert_mem_eq(p, payload, n);
}

START_TEST(fragmented_with_ping)
{
    struct rig g;
    struct buf b;
    struct ws_message m;

    fragmented_input(&b);
    rig_open(&g, WS_SERVER, 1024, 0);
    write_all(g.fd[1], b.data, b.len);
    ck_assert_int_eq(ws_receive_wait(g.w, &m, IO_WAIT_MS), 1);
    ck_assert_uint_eq(m.opcode, WS_OP_TEXT);
    ck_assert_str_eq((char *)m.data, "Hello w\xc3\xb6rld");
    expect_pong(g.fd[1], "ab");
    buf_free(&b);
    rig_close(&g);
}
END_TEST

/* Every byte on its own: the bytes arrive one by one, and the transport
 * gives one byte per read. */
START_TEST(one_byte_reads)
{
    struct rig g;
    struct buf b;
    struct ws_message m;

    fragmented_input(&b);
    frame_append(&b, 0x80 | WS_OP_BINARY, "\x01\x02", 2, true);
    rig_open(&g, WS_SERVER, 1024, 1);
    int got = 0;
    for (size_t i = 0; i < b.len; i++) {
        int r;
        write_all(g.fd[1], b.data + i, 1);
        r = ws_receive(g.w, &m);
        if (r == 0)
            continue;
        ck_assert_int_eq(r, 1);
        if (got++ == 0) {
            ck_assert_str_eq((char *)m.data, "Hello w\xc3\xb6rld");
            /* the text's last byte, before the binary frame */
            ck_assert_uint_eq(i, b.len - 9);
        } else {
            /* complete with its very last byte, not before */
            ck_assert_uint_eq(i, b.len - 1);
            ck_assert_uint_eq(m.opcode, WS_OP_BINARY);
            ck_assert_uint_eq(m.len, 2);
            ck_assert_mem_eq(m.data, "\x01\x02", 2);
        }
    }
    ck_assert_int_eq(got, 2);
    expect_pong(g.fd[1], "ab");

    /* and all of it at once, still read a byte at a time */
    write_all(g.fd[1], b.data, b.len);
    ck_assert_int_eq(ws_receive_wait(g.w, &m, IO_WAIT_MS), 1);
    ck_assert_str_eq((char *)m.data, "Hello w\xc3\xb6rld");
    ck_assert_int_eq(ws_receive_wait(g.w, &m, IO_WAIT_MS), 1);
    ck_assert_uint_eq(m.len, 2);
    buf_free(&b);
    rig_close(&g);
}
END_TEST

/* ---- bad input ---- */

struct bad_case {
    const char *what;
    void (*make)(struct buf *b);
    uint16_t code;
};

static void bad_unmasked(struct buf *b)
{
    frame_append(b, 0x81, "hi", 2, false);
}
static void bad_rsv1(struct buf *b)
{
    frame_append(b, 0x80 | 0x40 | WS_OP_TEXT, "hi", 2, true);
}
static void bad_rsv3(struct buf *b)
{
    frame_append(b, 0x80 | 0x10 | WS_OP_BINARY, "hi", 2, true);
}
static void bad_opcode3(struct buf *b)
{
    frame_append(b, 0x83, "hi", 2, true);
}
static void bad_opcode_b(struct buf *b)
{
    frame_append(b, 0x8B, "", 0, true);
}
static void bad_ping_126(struct buf *b)
{
    header_append(b, 0x80 | WS_OP_PING, 126, true);
}
static void bad_ping_10mb(struct buf *b)
{
    /* refused from the header: the 10 MB never come */
    header_append(b, 0x80 | WS_OP_PING, 10u * 1024 * 1024, true);
}
static void bad_fragmented_ping(struct buf *b)
{
    frame_append(b, WS_OP_PING, "p", 1, true);
}
static void bad_fragmented_close(struct buf *b)
{
    frame_append(b, WS_OP_CLOSE, "\x03\xe8", 2, true);
}
static void bad_text_in_open_message(struct buf *b)
{
    frame_append(b, WS_OP_TEXT, "a", 1, true);
    frame_append(b, 0x80 | WS_OP_TEXT, "b", 1, true);
}
static void bad_continuation_alone(struct buf *b)
{
    frame_append(b, 0x80 | WS_OP_CONTINUATION, "a", 1, true);
}
static void bad_continuation_after_end(struct buf *b)
{
    frame_append(b, 0x80 | WS_OP_TEXT, "a", 1, true);
    frame_append(b, 0x80 | WS_OP_CONTINUATION, "b", 1, true);
}
static void bad_top_bit(struct buf *b)
{
    static const uint8_t h[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    buf_append(b, h, sizeof(h));
}
static void bad_too_big(struct buf *b)
{
    header_append(b, 0x80 | WS_OP_BINARY, 65, true); /* max is 64 */
}
static void bad_too_big_64bit(struct buf *b)
{
    header_append(b, 0x80 | WS_OP_BINARY, (uint64_t)1 << 62, true);
}
static void bad_too_big_fragments(struct buf *b)
{
    uint8_t p[40] = {0};
    frame_append(b, WS_OP_BINARY, p, 40, true);
    frame_append(b, WS_OP_CONTINUATION, p, 24, true); /* 64: still fine */
    header_append(b, 0x80 | WS_OP_CONTINUATION, 1, true);
}
static void bad_utf8_overlong(struct buf *b)
{
    frame_append(b, 0x81, "a\xc0\xaf", 3, true);
}
static void bad_utf8_overlong3(struct buf *b)
{
    frame_append(b, 0x81, "\xe0\x80\xaf", 3, true);
}
static void bad_utf8_surrogate(struct buf *b)
{
    frame_append(b, 0x81, "\xed\xa0\x80", 3, true);
}
static void bad_utf8_above_max(struct buf *b)
{
    frame_append(b, 0x81, "\xf4\x90\x80\x80", 4, true);
}
static void bad_utf8_truncated(struct buf *b)
{
    frame_append(b, 0x81, "ok\xe2\x82", 4, true);
}
static void bad_utf8_truncated_fragments(struct buf *b)
{
    frame_append(b, WS_OP_TEXT, "ok\xe2", 3, true);
    frame_append(b, 0x80 | WS_OP_CONTINUATION, "\x82", 1, true);
}
static void bad_close_1byte(struct buf *b)
{
    frame_append(b, 0x88, "\x03", 1, true);
}
static void bad_close_code(struct buf *b, uint16_t code)
{
    uint8_t p[2] = {(uint8_t)(code >> 8), (uint8_t)code};
    frame_append(b, 0x88, p, 2, true);
}
static void bad_close_999(struct buf *b)
{
    bad_close_code(b, 999);
}
static void bad_close_1004(struct buf *b)
{
    bad_close_code(b, 1004);
}
static void bad_close_1005(struct buf *b)
{
    bad_close_code(b, 1005);
}
static void bad_close_1006(struct buf *b)
{
    bad_close_code(b, 1006);
}
static void bad_close_1015(struct buf *b)
{
    bad_close_code(b, 1015);
}
static void bad_close_2000(struct buf *b)
{
    bad_close_code(b, 2000);
}
static void bad_close_5000(struct buf *b)
{
    bad_close_code(b, 5000);
}
static void bad_close_reason(struct buf *b)
{
    frame_append(b, 0x88, "\x03\xe8ok\xed\xa0\x80", 7, true);
}
static void bad_eof_mid_payload(struct buf *b)
{
    /* announces 10 bytes, 3 come, then the end (added by the test) */
    header_append(b, 0x80 | WS_OP_BINARY, 10, true);
    buf_append(b, "abc", 3);
}

static const struct bad_case bad_cases[] = {
    {"unmasked client frame", bad_unmasked, WS_CLOSE_PROTOCOL},
    {"RSV1", bad_rsv1, WS_CLOSE_PROTOCOL},
    {"RSV3", bad_rsv3, WS_CLOSE_PROTOCOL},
    {"opcode 3", bad_opcode3, WS_CLOSE_PROTOCOL},
    {"opcode 0xB", bad_opcode_b, WS_CLOSE_PROTOCOL},
    {"ping of 126", bad_ping_126, WS_CLOSE_PROTOCOL},
    {"ping of 10 MB", bad_ping_10mb, WS_CLOSE_PROTOCOL},
    {"fragmented ping", bad_fragmented_ping, WS_CLOSE_PROTOCOL},
    {"fragmented close", bad_fragmented_close, WS_CLOSE_PROTOCOL},
    {"text in an open message", bad_text_in_open_message, WS_CLOSE_PROTOCOL},
    {"continuation alone", bad_continuation_alone, WS_CLOSE_PROTOCOL},
    {"continuation after the end", bad_continuation_after_end, WS_CLOSE_PROTOCOL},
    {"64-bit length top bit", bad_top_bit, WS_CLOSE_PROTOCOL},
    {"too big", bad_too_big, WS_CLOSE_TOO_BIG},
    {"too big, 2^62", bad_too_big_64bit, WS_CLOSE_TOO_BIG},
    {"too big in fragments", bad_too_big_fragments, WS_CLOSE_TOO_BIG},
    {"overlong", bad_utf8_overlong, WS_CLOSE_BAD_DATA},
    {"overlong 3 bytes", bad_utf8_overlong3, WS_CLOSE_BAD_DATA},
    {"surrogate", bad_utf8_surrogate, WS_CLOSE_BAD_DATA},
    {"above U+10FFFF", bad_utf8_above_max, WS_CLOSE_BAD_DATA},
    {"truncated at the end", bad_utf8_truncated, WS_CLOSE_BAD_DATA},
    {"truncated across fragments", bad_utf8_truncated_fragments, WS_CLOSE_BAD_DATA},
    {"close of 1 byte", bad_close_1byte, WS_CLOSE_PROTOCOL},
    {"close 999", bad_close_999, WS_CLOSE_PROTOCOL},
    {"close 1004", bad_close_1004, WS_CLOSE_PROTOCOL},
    {"close 1005", bad_close_1005, WS_CLOSE_PROTOCOL},
    {"close 1006", bad_close_1006, WS_CLOSE_PROTOCOL},
    {"close 1015", bad_close_1015, WS_CLOSE_PROTOCOL},
    {"close 2000", bad_close_2000, WS_CLOSE_PROTOCOL},
    {"close 5000", bad_close_5000, WS_CLOSE_PROTOCOL},
    {"close reason not UTF-8", bad_close_reason, WS_CLOSE_PROTOCOL},
};

START_TEST(bad_input_closes_with_code)
{
    const struct bad_case *c = &bad_cases[_i];
    struct buf b;

    buf_init(&b, 0);
    c->make(&b);
    /* messages up to 64 bytes here */
    expect_refused(WS_SERVER, 64, &b, c->code);
    buf_free(&b);
}
END_TEST

START_TEST(client_refuses_masked_frames)
{
    struct buf b;

    buf_init(&b, 0);
    frame_append(&b, 0x81, "hi", 2, true);
    expect_refused(WS_CLIENT, 64, &b, WS_CLOSE_PROTOCOL);
    buf_free(&b);
}
END_TEST

START_TEST(max_message_exact)
{
    struct rig g;
    struct buf b;
    struct ws_message m;
    uint8_t p[64];

    memset(p, 'a', sizeof(p));
    buf_init(&b, 0);
    frame_append(&b, WS_OP_TEXT, p, 60, true);
    frame_append(&b, 0x80 | WS_OP_CONTINUATION, p, 4, true);
    frame_append(&b, 0x80 | WS_OP_BINARY, p, 64, true);
    rig_open(&g, WS_SERVER, 64, 0);
    write_all(g.fd[1], b.data, b.len);
    ck_assert_int_eq(ws_receive_wait(g.w, &m, IO_WAIT_MS), 1);
    ck_assert_uint_eq(m.len, 64);
    ck_assert_int_eq(ws_receive_wait(g.w, &m, IO_WAIT_MS), 1);
    ck_assert_uint_eq(m.len, 64);
    ck_assert_uint_eq(m.opcode, WS_OP_BINARY);
    buf_free(&b);
    rig_close(&g);
}
END_TEST

START_TEST(eof_mid_frame)
{
    struct rig g;
    struct buf b;

    for (int partial_header = 0; partial_header < 2; partial_header++) {
        buf_init(&b, 0);
        if (partial_header)
            buf_append(&b, "\x82\xfe\x01", 3); /* a 16-bit length cut in two */
        else
            bad_eof_mid_payload(&b);
        rig_open(&g, WS_SERVER, 1024, 0);
        write_all(g.fd[1], b.data, b.len);
        ck_assert_int_eq(shutdown(g.fd[1], SHUT_WR), 0);
        ck_assert_int_eq(drain(g.w), -EPROTO);
        ck_assert_uint_eq(ws_sent_close_code(g.w), WS_CLOSE_PROTOCOL);
        expect_close_frame(g.fd[1], WS_CLOSE_PROTOCOL, false);
        rig_close(&g);
        buf_free(&b);
    }
}
END_TEST

START_TEST(eof_between_frames)
{
    struct rig g;
    struct buf b;
    struct ws_message m;

    buf_init(&b, 0);
    frame_append(&b, 0x82, "ab", 2, true);
    rig_open(&g, WS_SERVER, 1024, 0);
    write_all(g.fd[1], b.data, b.len);
    ck_assert_int_eq(shutdown(g.fd[1], SHUT_WR), 0);
    ck_assert_int_eq(ws_receive_wait(g.w, &m, IO_WAIT_MS), 1);
    ck_assert_int_eq(ws_receive_wait(g.w, &m, IO_WAIT_MS), -EPIPE);
    ck_assert(!ws_close_sent(g.w));
    ck_assert_uint_eq(ws_peer_close(g.w, NULL), 0);
    ck_assert_int_eq(ws_receive(g.w, &m), -EPIPE);
    rig_close(&g);
    buf_free(&b);
}
END_TEST

/* ---- closing ---- */

START_TEST(close_handshake_client_first)
{
    struct duo d;
    struct ws_message m;
    const char *reason;

    duo_open(&d, 1024);
    ck_assert_int_eq(ws_close(d.client, WS_CLOSE_NORMAL, "bye", IO_WAIT_MS), 0);
    ck_assert(ws_close_sent(d.client));
    ck_assert_int_eq(ws_send(d.client, WS_OP_TEXT, "late", 4, IO_WAIT_MS), -EPIPE);
    ck_assert_int_eq(ws_close(d.client, WS_CLOSE_NORMAL, "again", IO_WAIT_MS), -EPIPE);

    ck_assert_int_eq(ws_receive_wait(d.server, &m, IO_WAIT_MS), -ECONNRESET);
    ck_assert_uint_eq(ws_peer_close(d.server, &reason), WS_CLOSE_NORMAL);
    ck_assert_str_eq(reason, "bye");
    /* answered with the same code */
    ck_assert(ws_close_sent(d.server));
    ck_assert_uint_eq(ws_sent_close_code(d.server), WS_CLOSE_NORMAL);
    ck_assert_int_eq(ws_send(d.server, WS_OP_TEXT, "late", 4, IO_WAIT_MS), -EPIPE);
    ck_assert_int_eq(ws_receive(d.server, &m), -ECONNRESET);

    ck_assert_int_eq(ws_receive_wait(d.client, &m, IO_WAIT_MS), -ECONNRESET);
    ck_assert_uint_eq(ws_peer_close(d.client, &reason), WS_CLOSE_NORMAL);
    ck_assert_uint_eq(ws_sent_close_code(d.client), WS_CLOSE_NORMAL);
    duo_close(&d);
}
END_TEST

START_TEST(close_handshake_server_first)
{
    struct duo d;
    struct ws_message m;
    const char *reason;

    duo_open(&d, 1024);
    /* a message sent before the close still arrives */
    ck_assert_int_eq(ws_send(d.server, WS_OP_TEXT, "{\"exit_code\":0}", 15, IO_WAIT_MS), 0);
    ck_assert_int_eq(ws_close(d.server, 4000, "done", IO_WAIT_MS), 0);
    ck_assert_int_eq(ws_receive_wait(d.client, &m, IO_WAIT_MS), 1);
    ck_assert_str_eq((char *)m.data, "{\"exit_code\":0}");
    ck_assert_int_eq(ws_receive_wait(d.client, &m, IO_WAIT_MS), -ECONNRESET);
    ck_assert_uint_eq(ws_peer_close(d.client, &reason), 4000);
    ck_assert_str_eq(reason, "done");
    ck_assert_uint_eq(ws_sent_close_code(d.client), 4000);
    ck_assert_int_eq(ws_receive_wait(d.server, &m, IO_WAIT_MS), -ECONNRESET);
    ck_assert_uint_eq(ws_peer_close(d.server, NULL), 4000);
    duo_close(&d);
}
END_TEST

START_TEST(close_without_code)
{
    struct rig g;
    struct buf b;
    struct ws_message m;
    struct ws_frame_header h;
    uint8_t p[WS_MAX_CONTROL_PAYLOAD];
    const char *reason;

    buf_init(&b, 0);
    frame_append(&b, 0x88, "", 0, true);
    rig_open(&g, WS_SERVER, 1024, 0);
    write_all(g.fd[1], b.data, b.len);
    ck_assert_int_eq(ws_receive_wait(g.w, &m, IO_WAIT_MS), -ECONNRESET);
    ck_assert_uint_eq(ws_peer_close(g.w, &reason), WS_CLOSE_NO_STATUS);
    ck_assert_str_eq(reason, "");
    /* the echo has no code either */
    ck_assert_uint_eq(read_frame(g.fd[1], &h, p, sizeof(p)), 0);
    ck_assert_uint_eq(h.opcode, WS_OP_CLOSE);
    ck_assert(ws_close_sent(g.w));
    rig_close(&g);
    buf_free(&b);
}
END_TEST

START_TEST(close_reason_cut_at_a_character)
{
    struct rig g;
    struct ws_frame_header h;
    uint8_t p[WS_MAX_CONTROL_PAYLOAD];
    char reason[200] = "";

    for (int i = 0; i < 62; i++)
        strcat(reason, "\xc3\xa9"); /* é: 124 bytes in all */
    rig_open(&g, WS_SERVER, 1024, 0);
    ck_assert_int_eq(ws_close(g.w, 1005, "x", IO_WAIT_MS), -EINVAL);
    ck_assert_int_eq(ws_close(g.w, 999, "x", IO_WAIT_MS), -EINVAL);
    ck_assert(!ws_close_sent(g.w));
    ck_assert_int_eq(ws_close(g.w, WS_CLOSE_GOING_AWAY, reason, IO_WAIT_MS), 0);
    ck_assert_uint_eq(read_frame(g.fd[1], &h, p, sizeof(p)), 2 + 122);
    ck_assert_uint_eq(p[0] << 8 | p[1], WS_CLOSE_GOING_AWAY);
    ck_assert_mem_eq(p + 2, reason, 122);
    rig_close(&g);
}
END_TEST

START_TEST(no_pong_after_close)
{
    struct rig g;
    struct buf b;
    struct ws_message m;
    struct ws_frame_header h;
    uint8_t p[WS_MAX_CONTROL_PAYLOAD];

    buf_init(&b, 0);
    frame_append(&b, 0x89, "p", 1, true);
    frame_append(&b, 0x82, "data", 4, true);
    rig_open(&g, WS_SERVER, 1024, 0);
    ck_assert_int_eq(ws_close(g.w, WS_CLOSE_NORMAL, NULL, IO_WAIT_MS), 0);
    write_all(g.fd[1], b.data, b.len);
    /* data after our close is still delivered, the ping not answered */
    ck_assert_int_eq(ws_receive_wait(g.w, &m, IO_WAIT_MS), 1);
    ck_assert_mem_eq(m.data, "data", 4);
    ck_assert_uint_eq(read_frame(g.fd[1], &h, p, sizeof(p)), 2);
    ck_assert_uint_eq(h.opcode, WS_OP_CLOSE);
    /* and nothing after it: the ping was handled before the data came out */
    struct pollfd pfd = {.fd = g.fd[1], .events = POLLIN};
    ck_assert_int_eq(poll(&pfd, 1, 0), 0);
    close(g.fd[1]);
    g.fd[1] = -1;
    ck_assert_int_eq(ws_receive_wait(g.w, &m, IO_WAIT_MS), -EPIPE);
    rig_close(&g);
    buf_free(&b);
}
END_TEST

/* ---- sending ---- */

START_TEST(send_rejects)
{
    struct rig g;
    uint8_t p[126] = {0};

    rig_open(&g, WS_CLIENT, 1024, 0);
    ck_assert_int_eq(ws_send(g.w, WS_OP_PING, p, 126, IO_WAIT_MS), -EINVAL);
    ck_assert_int_eq(ws_send(g.w, WS_OP_CLOSE, p, 2, IO_WAIT_MS), -EINVAL);
    ck_assert_int_eq(ws_send(g.w, WS_OP_CONTINUATION, p, 2, IO_WAIT_MS), -EINVAL);
    ck_assert_int_eq(ws_send(g.w, 0x3, p, 2, IO_WAIT_MS), -EINVAL);
    ck_assert_int_eq(ws_send(g.w, WS_OP_PING, p, 125, IO_WAIT_MS), 0);
    rig_close(&g);
}
END_TEST

START_TEST(send_timeout_breaks_the_connection)
{
    struct rig g;
    const size_t len = 8 * 1024 * 1024;
    _cleanup_free_ uint8_t *p = calloc(1, len);

    rig_open(&g, WS_SERVER, 1024, 0);
    /* nobody reads fd[1]: the socket buffer fills */
    ck_assert_int_eq(ws_send(g.w, WS_OP_BINARY, p, len, 50), -ETIMEDOUT);
    ck_assert_int_eq(ws_send(g.w, WS_OP_TEXT, "x", 1, 50), -EPIPE);
    ck_assert_int_eq(ws_close(g.w, WS_CLOSE_NORMAL, NULL, 50), -EPIPE);
    rig_close(&g);
}
END_TEST

#define SENDERS  4
#define SENDS    50
#define SEND_LEN 40000 /* several send chunks: frames go out in pieces */

struct sender {
    struct ws *w;
    int id, r;
};

static void *sender_main(void *arg)
{
    struct sender *s = arg;
    static __thread uint8_t p[SEND_LEN];

    for (int i = 0; i < SENDS && s->r == 0; i++) {
        memset(p, (s->id << 6) | (i & 0x3f), sizeof(p));
        s->r = ws_send(s->w, WS_OP_BINARY, p, sizeof(p), 30000);
    }
    return NULL;
}

static void *client_receiver(void *arg)
{
    struct ws *w = arg;
    struct ws_message m;
    int r;

    /* answers the server's pings until the server closes */
    do
        r = ws_receive_wait(w, &m, 30000);
    while (r == 0);
    return (void *)(intptr_t)r;
}

/* Senders on several threads, pongs from the receiving thread: frames never
 * interleave. */
START_TEST(concurrent_senders)
{
    struct duo d;
    struct sender s[SENDERS];
    pthread_t t[SENDERS], rt;
    int next[SENDERS] = {0};
    struct ws_message m;
    void *rr;

    duo_open(&d, SEND_LEN);
    /* a small socket buffer: every frame needs several writes and waits,
     * which is where frames of different threads could mix */
    int small = 4096;
    ck_assert_int_eq(setsockopt(d.fd[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    ck_assert_int_eq(pthread_create(&rt, NULL, client_receiver, d.client), 0);
    for (int i = 0; i < SENDERS; i++) {
        s[i] = (struct sender){.w = d.client, .id = i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, sender_main, &s[i]), 0);
    }
    for (int n = 0; n < SENDERS * SENDS; n++) {
        ck_assert_int_eq(ws_receive_wait(d.server, &m, 30000), 1);
        ck_assert_uint_eq(m.len, SEND_LEN);
        int id = m.data[0] >> 6;
        ck_assert_uint_eq(m.data[0] & 0x3f, next[id] & 0x3f);
        /* one assertion per message: each Check assertion costs a write */
        size_t k = 1;
        while (k < m.len && m.data[k] == m.data[0])
            k++;
        ck_assert_uint_eq(k, m.len);
        next[id]++;
        if (n % 8 == 0) /* the client's receiving thread answers with a pong */
            ck_assert_int_eq(ws_send(d.server, WS_OP_PING, "q", 1, IO_WAIT_MS), 0);
    }
    for (int i = 0; i < SENDERS; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(s[i].r, 0);
        ck_assert_int_eq(next[i], SENDS);
    }
    ck_assert_int_eq(ws_close(d.server, WS_CLOSE_NORMAL, NULL, IO_WAIT_MS), 0);
    /* the last pongs, then the echo of the close: whole frames too */
    ck_assert_int_eq(ws_receive_wait(d.server, &m, IO_WAIT_MS), -ECONNRESET);
    pthread_join(rt, &rr);
    ck_assert_int_eq((int)(intptr_t)rr, -ECONNRESET);
    duo_close(&d);
}
END_TEST

START_TEST(pushed_input_first)
{
    struct rig g;
    struct buf b;
    struct ws_message m;
    uint8_t big[80] = {0};

    buf_init(&b, 0);
    frame_append(&b, 0x81, "one", 3, true);
    frame_append(&b, 0x81, "two", 3, true);
    rig_open(&g, WS_SERVER, 64, 0);
    /* the first frame and a half pushed, the rest from the transport */
    ck_assert_int_eq(ws_push_input(g.w, b.data, 9 + 4), 0);
    write_all(g.fd[1], b.data + 13, b.len - 13);
    ck_assert_int_eq(ws_receive_wait(g.w, &m, IO_WAIT_MS), 1);
    ck_assert_str_eq((char *)m.data, "one");
    ck_assert_int_eq(ws_receive_wait(g.w, &m, IO_WAIT_MS), 1);
    ck_assert_str_eq((char *)m.data, "two");
    /* bounded: max_message + WS_MAX_HEADER */
    ck_assert_int_eq(ws_push_input(g.w, big, 64 + WS_MAX_HEADER + 1), -E2BIG);
    ck_assert_int_eq(ws_push_input(g.w, big, 64), 0);
    ck_assert_int_eq(ws_push_input(g.w, big, WS_MAX_HEADER + 1), -E2BIG);
    rig_close(&g);
    buf_free(&b);
}
END_TEST

/* ---- the client over libcurl ---- */

enum srv_mode {
    SRV_UPGRADE,
    SRV_404,
    SRV_401_UNTIL_CLOSE,
    SRV_503_CHUNKED,
    SRV_BAD_ACCEPT,
};

struct srv {
    int lfd;
    int port;
    enum srv_mode mode;
    char request[4096];
    uint8_t got[64]; /* the client's first frame */
    size_t got_len;
    bool got_masked;
};

static void srv_start(struct srv *s, enum srv_mode mode)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof(a);

    memset(s, 0, sizeof(*s));
    s->mode = mode;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(s->lfd, 0);
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(s->lfd, 4), 0);
    ck_assert_int_eq(getsockname(s->lfd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
}

static void write_str(int fd, const char *str)
{
    write_all(fd, str, strlen(str));
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    size_t n = 0;
    char *key, *eol, accept_key[WS_ACCEPT_LEN + 1];
    struct buf out;

    ck_assert_int_ge(fd, 0);
    while (!strstr(s->request, "\r\n\r\n")) {
        ck_assert_uint_lt(n, sizeof(s->request) - 1);
        ck_assert(read_exact(fd, s->request + n, 1));
        n++;
    }
    buf_init(&out, 0);
    switch (s->mode) {
    case SRV_UPGRADE:
    case SRV_BAD_ACCEPT:
        key = strstr(s->request, "Sec-WebSocket-Key: ");
        ck_assert_ptr_nonnull(key);
        key += strlen("Sec-WebSocket-Key: ");
        eol = strstr(key, "\r\n");
        *eol = '\0';
        ck_assert_int_eq(ws_accept_key(key, accept_key), 0);
        *eol = '\r';
        if (s->mode == SRV_BAD_ACCEPT)
            accept_key[3] ^= 1;
        buf_printf(&out,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\n"
                   "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                   accept_key);
        /* a first frame in the same write: the client reads it with the head */
        frame_append(&out, 0x81, "hi", 2, false);
        write_all(fd, out.data, out.len);
        if (s->mode == SRV_UPGRADE) {
            struct ws_frame_header h;
            uint8_t p[WS_MAX_CONTROL_PAYLOAD];
            s->got_len = read_frame(fd, &h, s->got, sizeof(s->got));
            s->got_masked = h.masked;
            buf_reset(&out);
            frame_append(&out, 0x88,
                         "\x03\xe8"
                         "done",
                         6, false);
            write_all(fd, out.data, out.len);
            /* the client's echo */
            ck_assert_uint_eq(read_frame(fd, &h, p, sizeof(p)), 6);
            ck_assert_uint_eq(h.opcode, WS_OP_CLOSE);
        }
        break;
    case SRV_404:
        /* bytes past Content-Length are not part of the body */
        write_str(fd, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                      "Content-Length: 26\r\n\r\n{\"error\":\"no such vm: x\"}\nEXTRA");
        break;
    case SRV_401_UNTIL_CLOSE:
        write_str(fd, "HTTP/1.0 401 Unauthorized\r\n\r\n{\"error\":\"bad token\"}");
        break;
    case SRV_503_CHUNKED:
        write_str(fd, "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "9\r\n{\"error\":\r\n"
                      "b;ext=1\r\n\"too many\"}\r\n0\r\n\r\n");
        break;
    default:
        break;
    }
    /* keep the connection open until the client lets go, except where the
     * end of the stream is the end of the body */
    if (s->mode != SRV_401_UNTIL_CLOSE) {
        char c;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        while (poll(&pfd, 1, IO_WAIT_MS) == 1 && read(fd, &c, 1) == 1)
            ;
    }
    buf_free(&out);
    close(fd);
    return NULL;
}

START_TEST(client_upgrade)
{
    struct srv s;
    pthread_t t;
    struct ws_client *c = NULL;
    struct ws_refusal refusal;
    struct nerr e = {0};
    struct ws_message m;
    char url[64], want[128];
    const char *reason;

    srv_start(&s, SRV_UPGRADE);
    ck_assert_int_eq(pthread_create(&t, NULL, srv_main, &s), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
    ck_assert_int_eq(ws_client_connect(url, "noid_tok_abc", "/v1/vms/box/exec?x=1", 4096,
                                       IO_WAIT_MS, &c, &refusal, &e),
                     0);
    ck_assert_int_ge(ws_client_fd(c), 0);
    ck_assert_int_eq(ws_receive_wait(ws_client_ws(c), &m, IO_WAIT_MS), 1);
    ck_assert_str_eq((char *)m.data, "hi");
    ck_assert_int_eq(ws_send(ws_client_ws(c), WS_OP_TEXT, "from client", 11, IO_WAIT_MS), 0);
    ck_assert_int_eq(ws_receive_wait(ws_client_ws(c), &m, IO_WAIT_MS), -ECONNRESET);
    ck_assert_uint_eq(ws_peer_close(ws_client_ws(c), &reason), WS_CLOSE_NORMAL);
    ck_assert_str_eq(reason, "done");
    ws_client_free(c);
    pthread_join(t, NULL);
    close(s.lfd);

    ck_assert_ptr_nonnull(strstr(s.request, "GET /v1/vms/box/exec?x=1 HTTP/1.1\r\n"));
    snprintf(want, sizeof(want), "\r\nHost: 127.0.0.1:%d\r\n", s.port);
    ck_assert_ptr_nonnull(strstr(s.request, want));
    ck_assert_ptr_nonnull(strstr(s.request, "\r\nUpgrade: websocket\r\n"));
    ck_assert_ptr_nonnull(strstr(s.request, "\r\nConnection: Upgrade\r\n"));
    ck_assert_ptr_nonnull(strstr(s.request, "\r\nSec-WebSocket-Version: 13\r\n"));
    ck_assert_ptr_nonnull(strstr(s.request, "\r\nAuthorization: Bearer noid_tok_abc\r\n"));
    ck_assert_ptr_nonnull(strstr(s.request, "\r\nUser-Agent: noid\r\n"));
    ck_assert(s.got_masked);
    ck_assert_uint_eq(s.got_len, 11);
    ck_assert_mem_eq(s.got, "from client", 11);
}
END_TEST

/* Connect to a server in mode that refuses; returns what connect did. */
static int connect_refused(enum srv_mode mode, struct ws_refusal *refusal, struct nerr *e)
{
    struct srv s;
    pthread_t t;
    struct ws_client *c = NULL;
    char url[64];
    int r;

    srv_start(&s, mode);
    ck_assert_int_eq(pthread_create(&t, NULL, srv_main, &s), 0);
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d", s.port);
    r = ws_client_connect(url, NULL, "/v1/vms/x/console", 4096, IO_WAIT_MS, &c, refusal, e);
    ck_assert_ptr_null(c);
    pthread_join(t, NULL);
    close(s.lfd);
    ck_assert_ptr_null(strstr(s.request, "Authorization"));
    return r;
}

START_TEST(client_refused_404)
{
    struct ws_refusal r;
    struct nerr e = {0};

    ck_assert_int_eq(connect_refused(SRV_404, &r, &e), -EPROTO);
    ck_assert_int_eq(r.status, 404);
    ck_assert_str_eq((char *)r.body.data, "{\"error\":\"no such vm: x\"}\n");
    ck_assert_str_eq(e.msg,
                     "server refused the WebSocket upgrade: 404 {\"error\":\"no such vm: x\"}");
    ws_refusal_free(&r);
}
END_TEST

START_TEST(client_refused_until_close)
{
    struct ws_refusal r;
    struct nerr e = {0};

    ck_assert_int_eq(connect_refused(SRV_401_UNTIL_CLOSE, &r, &e), -EPROTO);
    ck_assert_int_eq(r.status, 401);
    ck_assert_str_eq((char *)r.body.data, "{\"error\":\"bad token\"}");
    ws_refusal_free(&r);
}
END_TEST

START_TEST(client_refused_chunked)
{
    struct ws_refusal r;
    struct nerr e = {0};

    ck_assert_int_eq(connect_refused(SRV_503_CHUNKED, &r, &e), -EPROTO);
    ck_assert_int_eq(r.status, 503);
    ck_assert_str_eq((char *)r.body.data, "{\"error\":\"too many\"}");
    ws_refusal_free(&r);
}
END_TEST

START_TEST(client_bad_accept)
{
    struct ws_refusal r;
    struct nerr e = {0};

    ck_assert_int_eq(connect_refused(SRV_BAD_ACCEPT, &r, &e), -EPROTO);
    ck_assert_int_eq(r.status, 101);
    ck_assert_ptr_nonnull(strstr(e.msg, "Sec-WebSocket-Accept"));
    ws_refusal_free(&r);
}
END_TEST

START_TEST(client_connection_refused)
{
    struct srv s;
    struct ws_client *c = NULL;
    struct ws_refusal r;
    struct nerr e = {0};
    char url[64];

    /* a port that was just free */
    srv_start(&s, SRV_404);
    close(s.lfd);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", s.port);
    ck_assert_int_eq(ws_client_connect(url, "t", "/v1/x", 4096, IO_WAIT_MS, &c, &r, &e),
                     -ECONNREFUSED);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(e.msg, "cannot connect"));
    ck_assert_int_eq(ws_client_connect(url, "t\r\nX: y", "/v1/x", 4096, IO_WAIT_MS, &c, &r, &e),
                     -EINVAL);
    ck_assert_int_eq(ws_client_connect(url, "t", "v1/x", 4096, IO_WAIT_MS, &c, &r, &e), -EINVAL);
    ws_refusal_free(&r);
}
END_TEST

Suite *suite_ws(void)
{
    Suite *s = suite_create("ws");
    TCase *t = tcase_create("core");

    tcase_set_timeout(t, 60);
    tcase_add_test(t, accept_key_rfc_example);
    tcase_add_test(t, accept_key_rejects_bad_keys);
    tcase_add_test(t, client_keys_are_fresh);
    tcase_add_test(t, header_round_trips);
    tcase_add_test(t, header_fields);
    tcase_add_test(t, mask_in_pieces);
    tcase_add_test(t, messages_both_ways);
    tcase_add_test(t, large_messages);
    tcase_add_test(t, masking_by_role);
    tcase_add_test(t, fragmented_with_ping);
    tcase_add_test(t, one_byte_reads);
    tcase_add_loop_test(t, bad_input_closes_with_code, 0, (int)ARRAY_SIZE(bad_cases));
    tcase_add_test(t, client_refuses_masked_frames);
    tcase_add_test(t, max_message_exact);
    tcase_add_test(t, eof_mid_frame);
    tcase_add_test(t, eof_between_frames);
    tcase_add_test(t, close_handshake_client_first);
    tcase_add_test(t, close_handshake_server_first);
    tcase_add_test(t, close_without_code);
    tcase_add_test(t, close_reason_cut_at_a_character);
    tcase_add_test(t, no_pong_after_close);
    tcase_add_test(t, send_rejects);
    tcase_add_test(t, send_timeout_breaks_the_connection);
    tcase_add_test(t, concurrent_senders);
    tcase_add_test(t, pushed_input_first);
    tcase_add_test(t, client_upgrade);
    tcase_add_test(t, client_refused_404);
    tcase_add_test(t, client_refused_until_close);
    tcase_add_test(t, client_refused_chunked);
    tcase_add_test(t, client_bad_accept);
    tcase_add_test(t, client_connection_refused);
    suite_add_tcase(s, t);
    return s;
}
