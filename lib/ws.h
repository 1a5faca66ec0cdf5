/* ws.h — WebSocket (RFC 6455), written once for both ends: the server (over
 * the socket libmicrohttpd hands over after an upgrade) and the client
 * (lib/ws_client.h, over a libcurl connection).
 *
 * Three layers:
 *   - handshake helpers: Sec-WebSocket-Accept from a key (OpenSSL SHA-1 and
 *     base64), fresh client keys;
 *   - the frame codec: header parse/encode and masking; pure functions on
 *     bytes (unit-tested and fuzzed, tests/fuzz/fuzz_ws.c);
 *   - struct ws: messages over a byte transport (struct ws_io).  It
 *     reassembles fragmented messages up to a maximum size, answers pings,
 *     ignores pongs, checks UTF-8 in text messages, masks what a client
 *     sends and insists that what a client sends is masked (and what a
 *     server sends is not), and runs the close handshake.
 *
 * Threads: one thread receives (ws_receive*); any number send (ws_send and
 * ws_close take the send lock, and so do the pongs ws_receive sends).
 *
 * Bad input from the peer never crashes or blocks: the connection answers
 * with a close frame carrying the matching code (1002 protocol error, 1007
 * bad UTF-8, 1009 too big) and ws_receive returns -EPROTO.  What a header
 * announces is judged before any of its payload is read: a 10 MB ping or a
 * frame above max_message is refused from its first bytes, and memory only
 * grows with bytes that actually arrived.
 *
 * RFC 6455 §1.3's example: ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==") is
 * "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum ws_role {
    WS_SERVER,
    WS_CLIENT,
};

enum ws_opcode {
    WS_OP_CONTINUATION = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_UNSUPPORTED = 1003,
    WS_CLOSE_NO_STATUS = 1005, /* never sent: the peer's close had no code */
    WS_CLOSE_ABNORMAL = 1006,  /* never sent: the transport ended without a close */
    WS_CLOSE_BAD_DATA = 1007,
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
    WS_CLOSE_INTERNAL = 1011,
};

#define WS_GUID                "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_LEN             24 /* base64 of 16 random bytes */
#define WS_ACCEPT_LEN          28 /* base64 of a SHA-1 */
#define WS_MAX_HEADER          14
#define WS_MAX_CONTROL_PAYLOAD 125
#define WS_MAX_CLOSE_REASON    123

/* ---- handshake ---- */

/* The Sec-WebSocket-Accept value for a client's Sec-WebSocket-Key.
 * -EINVAL when the key is not the base64 of 16 bytes (RFC 6455 §4.1). */
int ws_accept_key(const char *client_key, char out[WS_ACCEPT_LEN + 1]);
/* A fresh random Sec-WebSocket-Key for a client. */
int ws_client_key(char out[WS_KEY_LEN + 1]);

/* ---- frames ---- */

struct ws_frame_header {
    bool fin;
    uint8_t rsv;    /* the three RSV bits, as bits 0..2 (RSV1 = 0x4, RSV3 = 0x1) */
    uint8_t opcode; /* enum ws_opcode, or a reserved value as sent */
    bool masked;
    uint8_t mask[4];
    uint64_t len;      /* payload length */
    size_t header_len; /* bytes of the header, 2..14 */
};

/* Parse the frame header at the front of buf.  > 0 (the header's length)
 * and *ret; 0 when more bytes are needed; -EBADMSG when no conforming sender
 * could have produced it (a 64-bit length with its top bit set).  Checks
 * that depend on the role and state (masking, opcodes, control frame rules,
 * sizes) are the connection's: this only decodes. */
int ws_frame_header_parse(const uint8_t *buf, size_t len, struct ws_frame_header *ret);
/* Encode a header (shortest length form) into out; returns its length.
 * mask NULL = unmasked. */
size_t ws_frame_header_encode(uint8_t out[WS_MAX_HEADER], uint8_t opcode, bool fin, uint64_t len,
                              const uint8_t *mask);
/* XOR data with mask, data being the payload bytes from offset on. */
void ws_mask_apply(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset);

/* ---- connections ---- */

/* The byte transport under a connection. */
struct ws_io {
    /* > 0: bytes moved; -EAGAIN: nothing possible now; recv 0: end of
     * stream; other -errno: the transport failed. */
    ssize_t (*send)(void *user, const void *buf, size_t len);
    ssize_t (*recv)(void *user, void *buf, size_t len);
    /* Wait until send (for_write) or recv may make progress, at most
     * timeout_ms (-1: no limit).  1 ready, 0 timed out, -errno. */
    int (*wait)(void *user, bool for_write, int timeout_ms);
    void *user;
};

/* A complete data message. */
struct ws_message {
    uint8_t opcode; /* WS_OP_TEXT or WS_OP_BINARY */
    uint8_t *data;  /* owned by the connection, valid until the next receive;
                     * NUL-terminated (past len) */
    size_t len;
};

struct ws;

/* A connection in role over io (copied); messages above max_message bytes
 * are refused with close code 1009. */
int ws_new(enum ws_role role, const struct ws_io *io, size_t max_message, struct ws **ret);
void ws_free(struct ws *w);
/* Bytes of the connection already read from the transport by someone else
 * (libmicrohttpd's extra_in after the upgrade, a client's over-read after
 * the 101 response): they are processed before anything the transport
 * gives.  At most max_message + WS_MAX_HEADER bytes; -E2BIG beyond. */
int ws_push_input(struct ws *w, const void *data, size_t len);

/* Send one data or control message as a single frame, waiting for the
 * transport at most timeout_ms in all (-1: no limit).  Thread-safe.
 * opcode: WS_OP_TEXT, WS_OP_BINARY, WS_OP_PING or WS_OP_PONG (these two at
 * most WS_MAX_CONTROL_PAYLOAD bytes); anything else is -EINVAL (closes go
 * through ws_close).  A client masks with a fresh random mask per frame.
 * -ETIMEDOUT: not (wholly) sent in time; the connection is then unusable
 * (a frame may be cut) and later sends fail with -EPIPE, as they do after
 * ws_close.  Other transport errors also leave it unusable. */
int ws_send(struct ws *w, uint8_t opcode, const void *data, size_t len, int timeout_ms);
/* Send a close frame with code and reason (NULL: none; cut at a UTF-8
 * boundary to WS_MAX_CLOSE_REASON bytes, and before any invalid UTF-8),
 * once; later sends and closes fail with -EPIPE.  -EINVAL for a code no
 * peer may send (1005, 1006, 1015, reserved ranges; 1000-1003, 1007-1014
 * and 3000-4999 are fine).  The caller then keeps receiving until the
 * peer's close (-ECONNRESET) or gives up after a moment. */
int ws_close(struct ws *w, uint16_t code, const char *reason, int timeout_ms);

/* Process what the transport has now, without waiting on it for input:
 *   1 and *ret: a complete data message (more may be buffered: call again);
 *   0: nothing complete yet, the transport would block (recv said -EAGAIN,
 *      so over TLS nothing is left inside curl either: poll, then call
 *      again);
 *   -ECONNRESET: the peer sent a close (answered, unless we sent ours
 *                first); ws_peer_close tells its code and reason;
 *   -EPROTO: the peer broke the protocol; we sent a close with the code
 *            (ws_sent_close_code) and the connection is finished.  Also
 *            when the transport ends in the middle of a frame (1002);
 *   -EPIPE: the transport ended between frames without a close frame;
 *   other -errno: the transport failed (or a pong could not be written
 *                 within a few seconds: the peer does not read).
 * Pings are answered with a pong carrying the same payload (not after our
 * close), pongs are dropped.  Once it returned < 0 it returns the same
 * every time.  Data messages arriving after our close are still returned. */
int ws_receive(struct ws *w, struct ws_message *ret);
/* ws_receive, waiting on the transport up to timeout_ms (-1: no limit) for
 * a complete message: 0 when the time ran out. */
int ws_receive_wait(struct ws *w, struct ws_message *ret, int timeout_ms);

/* The peer's close code (WS_CLOSE_NO_STATUS when its close had none, 0 when
 * it sent none) and reason (NUL-terminated, "" if none, owned by w).  From
 * the receiving thread. */
uint16_t ws_peer_close(const struct ws *w, const char **ret_reason);
/* The code of the close we sent, 0 if none (or if ours was the codeless
 * echo of a peer's codeless close). */
uint16_t ws_sent_close_code(const struct ws *w);
/* Whether we have sent a close frame. */
bool ws_close_sent(const struct ws *w);
