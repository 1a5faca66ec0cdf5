/* ws.c — see ws.h.
 *
 * Receiving is a small state machine over a buffer of raw input (w->in):
 * either a frame header is awaited (in_frame false) or the payload of
 * w->hdr is being copied out (into w->msg for data frames, w->ctl for
 * control frames) and unmasked at its offset, so frames may arrive in
 * pieces of any size.  Every check a header allows is made before its
 * payload is read: a frame announcing more than max_message, or a control
 * frame above 125 bytes, is refused without reading (or allocating) any of
 * it.  w->msg only ever grows by bytes that actually arrived.
 *
 * Invariants:
 *   - w->in holds at most WS_READ_CHUNK + WS_MAX_HEADER bytes from the
 *     transport (it is read from only when the bytes in it cannot complete
 *     anything), plus what ws_push_input put there (bounded there);
 *   - w->msg.len <= max_message;
 *   - once w->result is set (< 0) the connection is finished and every
 *     ws_receive returns it.
 *
 * Locking: one lock, w->send_lock, held around every frame written (so
 * frames from different threads never interleave) and protecting the send
 * state (close_sent, sent_close_code, broken).  The receive state belongs
 * to the one receiving thread and has no lock. */
#include "ws.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "encoding.h"
#include "macro.h"
#include "timeutil.h"

/* Bytes asked of the transport per recv. */
#define WS_READ_CHUNK (16u * 1024)
/* Masked frames are built in pieces of this size on the stack. */
#define WS_SEND_CHUNK (16u * 1024)
/* How long ws_receive may wait to write a pong or the close answering a
 * broken peer: these are written from the receiving path, which otherwise
 * never waits, so a peer that stops reading costs it at most this once
 * (after a timeout the connection is broken and later sends fail at once). */
#define WS_CONTROL_SEND_TIMEOUT_MS 5000
#define WS_KEY_BYTES               16

struct ws {
    enum ws_role role;
    struct ws_io io;
    size_t max_message;

    /* ---- receive state: the receiving thread only ---- */
    uint8_t *in; /* raw input; bytes [in_pos, in_len) not processed yet */
    size_t in_pos, in_len, in_cap;
    bool in_frame; /* hdr is the frame whose payload is coming */
    struct ws_frame_header hdr;
    uint64_t frame_off; /* payload bytes of hdr processed */
    bool msg_open;      /* a data message has started, not finished */
    bool msg_returned;  /* msg was handed out; reset it on the next call */
    uint8_t msg_opcode;
    struct buf msg; /* the data message being reassembled */
    uint8_t ctl[WS_MAX_CONTROL_PAYLOAD];
    int result;         /* < 0: finished, what ws_receive returns */
    uint16_t peer_code; /* 0: no close received */
    char peer_reason[WS_MAX_CLOSE_REASON + 1];

    /* ---- send state ---- */
    pthread_mutex_t send_lock;
    bool close_sent;          /* send_lock */
    uint16_t sent_close_code; /* send_lock */
    bool broken;              /* send_lock: a frame may have been cut */
};

/* ---- handshake ---- */

int ws_accept_key(const char *client_key, char out[WS_ACCEPT_LEN + 1])
{
    _cleanup_free_ uint8_t *raw = NULL;
    char joined[WS_KEY_LEN + sizeof(WS_GUID)];
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    size_t raw_len = 0;

    if (!client_key || strlen(client_key) != WS_KEY_LEN)
        return -EINVAL;
    if (base64_decode(client_key, WS_KEY_LEN, &raw, &raw_len) < 0 || raw_len != WS_KEY_BYTES)
        return -EINVAL;
    memcpy(joined, client_key, WS_KEY_LEN);
    memcpy(joined + WS_KEY_LEN, WS_GUID, sizeof(WS_GUID));
    if (EVP_Digest(joined, WS_KEY_LEN + sizeof(WS_GUID) - 1, digest, &digest_len, EVP_sha1(),
                   NULL) != 1 ||
        digest_len != 20)
        return -EIO;
    EVP_EncodeBlock((unsigned char *)out, digest, (int)digest_len);
    return 0;
}

int ws_client_key(char out[WS_KEY_LEN + 1])
{
    uint8_t raw[WS_KEY_BYTES];

    if (RAND_bytes(raw, sizeof(raw)) != 1)
        return -EIO;
    EVP_EncodeBlock((unsigned char *)out, raw, sizeof(raw));
    return 0;
}

/* ---- frames ---- */

int ws_frame_header_parse(const uint8_t *buf, size_t len, struct ws_frame_header *ret)
{
    struct ws_frame_header h = {0};
    size_t need, pos = 2;
    uint8_t len7;

    if (len < 2)
        return 0;
    h.fin = buf[0] & 0x80;
    h.rsv = (buf[0] >> 4) & 0x7;
    h.opcode = buf[0] & 0x0F;
    h.masked = buf[1] & 0x80;
    len7 = buf[1] & 0x7F;
    need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (h.masked ? 4 : 0);
    if (len < need)
        return 0;
    if (len7 == 126) {
        h.len = (uint64_t)buf[2] << 8 | buf[3];
        pos = 4;
    } else if (len7 == 127) {
        for (int i = 0; i < 8; i++)
            h.len = h.len << 8 | buf[2 + i];
        pos = 10;
        if (h.len >> 63)
            return -EBADMSG;
    } else {
        h.len = len7;
    }
    if (h.masked)
        memcpy(h.mask, buf + pos, 4);
    h.header_len = need;
    *ret = h;
    return (int)need;
}

size_t ws_frame_header_encode(uint8_t out[WS_MAX_HEADER], uint8_t opcode, bool fin, uint64_t len,
                              const uint8_t *mask)
{
    size_t pos = 2;

    out[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F));
    if (len <= 125) {
        out[1] = (uint8_t)len;
    } else if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        pos = 4;
    } else {
        out[1] = 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        pos = 10;
    }
    if (mask) {
        out[1] |= 0x80;
        memcpy(out + pos, mask, 4);
        pos += 4;
    }
    return pos;
}

void ws_mask_apply(uint8_t *data, size_t len, const uint8_t mask[4], uint64_t offset)
{
    for (size_t i = 0; i < len; i++)
        data[i] ^= mask[(offset + i) & 3];
}

/* ---- connections ---- */

int ws_new(enum ws_role role, const struct ws_io *io, size_t max_message, struct ws **ret)
{
    struct ws *w;

    if ((role != WS_SERVER && role != WS_CLIENT) || !io || !io->send || !io->recv || !io->wait ||
        max_message == 0 || max_message > SIZE_MAX / 2)
        return -EINVAL;
    w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->role = role;
    w->io = *io;
    w->max_message = max_message;
    w->in_cap = WS_READ_CHUNK + WS_MAX_HEADER;
    w->in = malloc(w->in_cap);
    if (!w->in) {
        free(w);
        return -ENOMEM;
    }
    buf_init(&w->msg, max_message);
    pthread_mutex_init(&w->send_lock, NULL);
    *ret = w;
    return 0;
}

void ws_free(struct ws *w)
{
    if (!w)
        return;
    pthread_mutex_destroy(&w->send_lock);
    buf_free(&w->msg);
    free(w->in);
    free(w);
}

/* Make room for extra more bytes at the end of w->in, first moving the
 * unprocessed bytes to the front. */
static int in_reserve(struct ws *w, size_t extra)
{
    size_t pending = w->in_len - w->in_pos;
    uint8_t *p;

    if (w->in_pos > 0) {
        memmove(w->in, w->in + w->in_pos, pending);
        w->in_pos = 0;
        w->in_len = pending;
    }
    if (w->in_cap - w->in_len >= extra)
        return 0;
    p = realloc(w->in, w->in_len + extra);
    if (!p)
        return -ENOMEM;
    w->in = p;
    w->in_cap = w->in_len + extra;
    return 0;
}

int ws_push_input(struct ws *w, const void *data, size_t len)
{
    size_t pending = w->in_len - w->in_pos;
    int r;

    if (len > w->max_message + WS_MAX_HEADER - pending)
        return -E2BIG;
    if (len == 0)
        return 0;
    r = in_reserve(w, len);
    if (r < 0)
        return r;
    memcpy(w->in + w->in_len, data, len);
    w->in_len += len;
    return 0;
}

/* ---- sending (all under send_lock) ---- */

static int64_t deadline_of(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : time_mono_ms() + timeout_ms;
}

/* Milliseconds left until deadline (-1: no deadline), never negative. */
static int remaining_ms(int64_t deadline)
{
    int64_t left;

    if (deadline < 0)
        return -1;
    left = deadline - time_mono_ms();
    return left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

static int send_all(struct ws *w, const uint8_t *p, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t n = w->io.send(w->io.user, p, len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0)
            return -EIO; /* a transport that takes nothing and says nothing */
        if (n != -EAGAIN)
            return (int)n;
        int left = remaining_ms(deadline);
        if (left == 0)
            return -ETIMEDOUT;
        int r = w->io.wait(w->io.user, true, left);
        if (r < 0)
            return r;
        if (r == 0)
            return -ETIMEDOUT;
    }
    return 0;
}

/* Write one whole frame.  A client masks with a fresh mask per frame; the
 * masked copy is made in WS_SEND_CHUNK pieces so that sending never costs
 * an allocation the size of the message.  On failure the connection is
 * marked broken: part of the frame may have gone out. */
static int send_frame_locked(struct ws *w, uint8_t opcode, const uint8_t *data, size_t len,
                             int64_t deadline)
{
    uint8_t chunk[WS_SEND_CHUNK];
    uint8_t mask[4];
    size_t fill, off = 0;
    int r;

    if (w->role == WS_CLIENT && RAND_bytes(mask, sizeof(mask)) != 1)
        return -EIO;
    fill = ws_frame_header_encode(chunk, opcode, true, len, w->role == WS_CLIENT ? mask : NULL);
    do {
        size_t n = MIN(len - off, sizeof(chunk) - fill);
        if (n)
            memcpy(chunk + fill, data + off, n);
        if (w->role == WS_CLIENT)
            ws_mask_apply(chunk + fill, n, mask, off);
        r = send_all(w, chunk, fill + n, deadline);
        if (r < 0)
            goto fail;
        off += n;
        fill = 0;
        if (w->role == WS_SERVER && off < len) {
            /* unmasked: the rest goes out as it is, without copies */
            r = send_all(w, data + off, len - off, deadline);
            if (r < 0)
                goto fail;
            off = len;
        }
    } while (off < len);
    return 0;
fail:
    w->broken = true;
    return r;
}

/* Close codes a peer may put on the wire (RFC 6455 §7.4 and the IANA
 * registry): 1005, 1006 and 1015 only ever live in APIs, 1004 and the rest
 * of 1000-2999 are reserved, 3000-4999 belong to libraries and
 * applications. */
static bool close_code_is_valid(uint16_t code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* The longest prefix of s, at most max bytes, made of whole valid UTF-8
 * characters. */
static size_t utf8_prefix(const char *s, size_t max)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t len = strlen(s), i = 0;
    uint32_t cp;

    while (i < len) {
        size_t n = p[i] < 0x80 ? 1 : utf8_sequence(p + i, len - i, &cp);
        if (n == 0 || i + n > max)
            break;
        i += n;
    }
    return i;
}

/* Send our close (code 0: one without a code, to echo a peer's codeless
 * close).  Marks the close as sent first, so that nothing follows it even
 * when writing it fails. */
static int send_close_locked(struct ws *w, uint16_t code, const char *reason, int timeout_ms)
{
    uint8_t payload[2 + WS_MAX_CLOSE_REASON];
    size_t len = 0;

    if (w->close_sent || w->broken)
        return -EPIPE;
    w->close_sent = true;
    w->sent_close_code = code;
    if (code) {
        payload[0] = (uint8_t)(code >> 8);
        payload[1] = (uint8_t)code;
        len = 2;
        if (reason) {
            size_t n = utf8_prefix(reason, WS_MAX_CLOSE_REASON);
            memcpy(payload + 2, reason, n);
            len += n;
        }
    }
    return send_frame_locked(w, WS_OP_CLOSE, payload, len, deadline_of(timeout_ms));
}

int ws_send(struct ws *w, uint8_t opcode, const void *data, size_t len, int timeout_ms)
{
    int r;

    switch (opcode) {
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        break;
    case WS_OP_PING:
    case WS_OP_PONG:
        if (len > WS_MAX_CONTROL_PAYLOAD)
            return -EINVAL;
        break;
    default: /* continuations are ours to make; closes go through ws_close */
        return -EINVAL;
    }
    if (len > 0 && !data)
        return -EINVAL;
    pthread_mutex_lock(&w->send_lock);
    if (w->close_sent || w->broken) {
        r = -EPIPE;
    } else {
        r = send_frame_locked(w, opcode, data, len, deadline_of(timeout_ms));
    }
    pthread_mutex_unlock(&w->send_lock);
    return r;
}

int ws_close(struct ws *w, uint16_t code, const char *reason, int timeout_ms)
{
    int r;

    if (!close_code_is_valid(code))
        return -EINVAL;
    pthread_mutex_lock(&w->send_lock);
    r = send_close_locked(w, code, reason, timeout_ms);
    pthread_mutex_unlock(&w->send_lock);
    return r;
}

/* ---- receiving ---- */

/* The peer broke the protocol: tell it why (if we still may) and finish. */
static int ws_fail(struct ws *w, uint16_t code)
{
    pthread_mutex_lock(&w->send_lock);
    (void)send_close_locked(w, code, NULL, WS_CONTROL_SEND_TIMEOUT_MS);
    pthread_mutex_unlock(&w->send_lock);
    w->result = -EPROTO;
    return w->result;
}

static bool is_control(uint8_t opcode)
{
    return opcode & 0x8;
}

/* Everything a header alone tells about a frame from this peer here and
 * now: 0 to read its payload, or the connection fails. */
static int check_header(struct ws *w, const struct ws_frame_header *h)
{
    if (h->rsv != 0) /* we negotiate no extension */
        return ws_fail(w, WS_CLOSE_PROTOCOL);
    if (h->masked != (w->role == WS_SERVER))
        return ws_fail(w, WS_CLOSE_PROTOCOL);
    switch (h->opcode) {
    case WS_OP_CLOSE:
    case WS_OP_PING:
    case WS_OP_PONG:
        if (!h->fin || h->len > WS_MAX_CONTROL_PAYLOAD)
            return ws_fail(w, WS_CLOSE_PROTOCOL);
        return 0;
    case WS_OP_CONTINUATION:
        if (!w->msg_open)
            return ws_fail(w, WS_CLOSE_PROTOCOL);
        break;
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        if (w->msg_open)
            return ws_fail(w, WS_CLOSE_PROTOCOL);
        break;
    default:
        return ws_fail(w, WS_CLOSE_PROTOCOL);
    }
    if (h->len > w->max_message - w->msg.len)
        return ws_fail(w, WS_CLOSE_TOO_BIG);
    return 0;
}

/* The peer's close (its payload in w->ctl): record it, answer it unless we
 * closed first, and finish. */
static int handle_close(struct ws *w, size_t len)
{
    uint16_t code = WS_CLOSE_NO_STATUS;

    if (len == 1)
        return ws_fail(w, WS_CLOSE_PROTOCOL);
    if (len >= 2) {
        code = (uint16_t)(w->ctl[0] << 8 | w->ctl[1]);
        if (!close_code_is_valid(code) || !utf8_is_valid((const char *)w->ctl + 2, len - 2))
            return ws_fail(w, WS_CLOSE_PROTOCOL);
        memcpy(w->peer_reason, w->ctl + 2, len - 2);
        w->peer_reason[len - 2] = '\0';
    }
    w->peer_code = code;
    pthread_mutex_lock(&w->send_lock);
    (void)send_close_locked(w, code == WS_CLOSE_NO_STATUS ? 0 : code, w->peer_reason,
                            WS_CONTROL_SEND_TIMEOUT_MS);
    pthread_mutex_unlock(&w->send_lock);
    w->result = -ECONNRESET;
    return w->result;
}

/* A frame's payload is complete: 1 and *ret when it completed a message,
 * 0 to go on, < 0 when the connection is finished. */
static int frame_done(struct ws *w, struct ws_message *ret)
{
    const struct ws_frame_header *h = &w->hdr;
    int r;

    switch (h->opcode) {
    case WS_OP_PING:
        r = ws_send(w, WS_OP_PONG, w->ctl, h->len, WS_CONTROL_SEND_TIMEOUT_MS);
        /* -EPIPE: we closed, or another sender broke the connection and
         * was told so; a pong is then neither due nor possible */
        if (r < 0 && r != -EPIPE) {
            w->result = r;
            return r;
        }
        return 0;
    case WS_OP_PONG:
        return 0; /* we send no pings that would wait for it */
    case WS_OP_CLOSE:
        return handle_close(w, h->len);
    default:
        break;
    }
    if (!h->fin)
        return 0;
    w->msg_open = false;
    if (w->msg_opcode == WS_OP_TEXT && !utf8_is_valid((const char *)w->msg.data, w->msg.len))
        return ws_fail(w, WS_CLOSE_BAD_DATA);
    /* an empty message still gets a NUL-terminated buffer */
    r = buf_append(&w->msg, "", 0);
    if (r < 0) {
        w->result = r;
        return r;
    }
    w->msg_returned = true;
    *ret = (struct ws_message){.opcode = w->msg_opcode, .data = w->msg.data, .len = w->msg.len};
    return 1;
}

/* Process the bytes in w->in: 1 with a message, 0 when more input is
 * needed, < 0 when the connection is finished. */
static int process_input(struct ws *w, struct ws_message *ret)
{
    int r;

    for (;;) {
        size_t avail = w->in_len - w->in_pos;
        const uint8_t *p = w->in + w->in_pos;

        if (!w->in_frame) {
            r = ws_frame_header_parse(p, avail, &w->hdr);
            if (r == 0)
                return 0;
            if (r < 0)
                return ws_fail(w, WS_CLOSE_PROTOCOL);
            r = check_header(w, &w->hdr);
            if (r < 0)
                return r;
            w->in_pos += w->hdr.header_len;
            avail -= w->hdr.header_len;
            p += w->hdr.header_len;
            w->in_frame = true;
            w->frame_off = 0;
            if (w->hdr.opcode == WS_OP_TEXT || w->hdr.opcode == WS_OP_BINARY) {
                w->msg_open = true;
                w->msg_opcode = w->hdr.opcode;
            }
        }

        size_t n = (size_t)MIN((uint64_t)avail, w->hdr.len - w->frame_off);
        if (n > 0) {
            uint8_t *dst;
            if (is_control(w->hdr.opcode)) {
                dst = w->ctl + w->frame_off;
                memcpy(dst, p, n);
            } else {
                /* within max_message: check_header saw the whole length */
                r = buf_append(&w->msg, p, n);
                if (r < 0) {
                    w->result = r;
                    return r;
                }
                dst = w->msg.data + w->msg.len - n;
            }
            if (w->hdr.masked)
                ws_mask_apply(dst, n, w->hdr.mask, w->frame_off);
            w->frame_off += n;
            w->in_pos += n;
        }
        if (w->in_pos == w->in_len)
            w->in_pos = w->in_len = 0;
        if (w->frame_off < w->hdr.len)
            return 0;
        w->in_frame = false;
        r = frame_done(w, ret);
        if (r != 0)
            return r;
    }
}

/* Read what the transport has into w->in: > 0 bytes read, -EAGAIN, 0 at
 * the end of the stream, other -errno. */
static ssize_t read_input(struct ws *w)
{
    ssize_t n;
    int r = in_reserve(w, WS_READ_CHUNK);

    if (r < 0)
        return r;
    n = w->io.recv(w->io.user, w->in + w->in_len, WS_READ_CHUNK);
    if (n > 0)
        w->in_len += (size_t)MIN((size_t)n, WS_READ_CHUNK);
    return n;
}

int ws_receive(struct ws *w, struct ws_message *ret)
{
    if (w->result < 0)
        return w->result;
    if (w->msg_returned) {
        buf_reset(&w->msg);
        w->msg_returned = false;
    }
    for (;;) {
        int r = process_input(w, ret);
        if (r != 0)
            return r;
        /* Only once the transport says it would block: over TLS, curl may
         * hold decrypted bytes the socket no longer signals. */
        ssize_t n = read_input(w);
        if (n == -EAGAIN)
            return 0;
        if (n == 0) {
            if (w->in_frame || w->in_len > w->in_pos)
                return ws_fail(w, WS_CLOSE_PROTOCOL); /* cut in the middle of a frame */
            w->result = -EPIPE;
            return w->result;
        }
        if (n < 0) {
            w->result = (int)n;
            return w->result;
        }
    }
}

int ws_receive_wait(struct ws *w, struct ws_message *ret, int timeout_ms)
{
    int64_t deadline = deadline_of(timeout_ms);

    for (;;) {
        int r = ws_receive(w, ret);
        if (r != 0)
            return r;
        int left = remaining_ms(deadline);
        if (left == 0)
            return 0;
        r = w->io.wait(w->io.user, false, left);
        if (r <= 0)
            return r;
    }
}

uint16_t ws_peer_close(const struct ws *w, const char **ret_reason)
{
    if (ret_reason)
        *ret_reason = w->peer_reason;
    return w->peer_code;
}

uint16_t ws_sent_close_code(const struct ws *w)
{
    struct ws *mw = (struct ws *)w; /* the lock is not part of the value */
    uint16_t code;

    pthread_mutex_lock(&mw->send_lock);
    code = w->sent_close_code;
    pthread_mutex_unlock(&mw->send_lock);
    return code;
}

bool ws_close_sent(const struct ws *w)
{
    struct ws *mw = (struct ws *)w;
    bool sent;

    pthread_mutex_lock(&mw->send_lock);
    sent = w->close_sent;
    pthread_mutex_unlock(&mw->send_lock);
    return sent;
}
