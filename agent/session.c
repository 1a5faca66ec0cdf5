/* session.c — see session.h.
 *
 * Error policy (DESIGN.md §6 and agent_proto.h):
 *  - bytes that are no frame (bad magic, unknown or host-bound type, flags,
 *    payload over AP_MAX_PAYLOAD) or a frame whose payload does not decode
 *    for its type: ERROR on stream 0 with the reason, the session is dropped
 *    (its execs killed), and garbage is skipped up to the next magic.  One
 *    ERROR per run of garbage, not one per skipped byte;
 *  - a well-formed request that cannot be served (duplicate stream, too many
 *    execs, an EXEC over a bound, a failing clock_settime, a SET_NETWORK
 *    payload that does not decode or that the kernel refuses): ERROR on
 *    that request's stream, the session goes on;
 *  - STDIN/KILL/RESIZE/OUT_ACK for a stream with no running exec: ignored,
 *    since an exec may end while the host is still talking to it;
 *  - an OUT_ACK for more output than is outstanding: clamped (exec.c).
 *  - file requests (v3): a payload that does not decode is malformed as
 *    above; a well-formed one over a bound or with a bad value, or on a
 *    stream in use, gets FS_ERRNO on its stream and the session goes on;
 *    FS_DATA and FS_CANCEL for a stream without a transfer are ignored.
 * The agent never exits on bad input.
 *
 * Versions: any HELLO version AP_VERSION_BASE..AP_VERSION is served the
 * same way (a v1 host simply never uses the later additions); the answer is
 * always HELLO_ACK{AP_VERSION}. */
#include "session.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_proto.h"
#include "alog.h"
#include "control.h"
#include "macro.h"
#include "net.h"
#include "util.h"

#ifndef NOID_AGENT_VERSION
#define NOID_AGENT_VERSION "0.0.0"
#endif

#define SESSION_IN_MIN (256u * 1024)
#define SESSION_IN_MAX (AP_HEADER_LEN + AP_MAX_PAYLOAD)

int session_init(struct session *s)
{
    memset(s, 0, sizeof(*s));
    exec_table_init(&s->execs, &s->out);
    files_init(&s->files, &s->out);
    s->in = malloc(SESSION_IN_MIN);
    if (!s->in)
        return -ENOMEM;
    s->in_cap = SESSION_IN_MIN;
    return 0;
}

void session_done(struct session *s)
{
    exec_kill_all(&s->execs);
    files_reset(&s->files);
    outq_free(&s->out);
    free(s->in);
    s->in = NULL;
}

int session_input_space(struct session *s, uint8_t **ret_buf, size_t *ret_len)
{
    size_t want = s->in_cap;

    if (s->in_len == s->in_cap && s->in_cap < SESSION_IN_MAX) {
        /* The buffer is full of one incomplete frame (session_process() ran
         * first): grow to what its header asks for, within the bound. */
        struct ap_frame f;
        int r = ap_frame_parse(s->in, s->in_len, &f);

        if (r == 0 && s->in_len >= AP_HEADER_LEN) {
            uint32_t plen = ((uint32_t)s->in[8] << 24) | ((uint32_t)s->in[9] << 16) |
                            ((uint32_t)s->in[10] << 8) | s->in[11];
            want = AP_HEADER_LEN + (size_t)plen;
        }
    }
    if (want > s->in_cap) {
        uint8_t *nb = realloc(s->in, want);

        if (!nb)
            return -ENOMEM;
        s->in = nb;
        s->in_cap = want;
    }
    *ret_buf = s->in + s->in_len;
    *ret_len = s->in_cap - s->in_len;
    return 0;
}

void session_input_commit(struct session *s, size_t n)
{
    s->in_len += n;
}

/* End the session: kill its execs; a new HELLO is needed. */
static void session_drop(struct session *s)
{
    if (s->execs.count > 0)
        alog_info("session dropped, killing %zu exec(s)", s->execs.count);
    exec_kill_all(&s->execs);
    files_reset(&s->files);
    s->established = false;
}

static void session_error(struct session *s, uint32_t stream, const char *fmt, ...) _printf_(3, 4);

static void session_error(struct session *s, uint32_t stream, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    outq_push_error(&s->out, stream, msg);
}

/* A malformed frame: report on stream 0 and drop the session. */
static void session_malformed(struct session *s, const struct ap_frame *f, const char *why)
{
    alog_warn("malformed %s frame on stream %u: %s", ap_type_name(f->type), f->stream, why);
    session_error(s, 0, "malformed %s frame on stream %u: %s", ap_type_name(f->type), f->stream,
                  why);
    session_drop(s);
}

static void session_on_hello(struct session *s, const struct ap_frame *f)
{
    struct ap_hello h;
    uint8_t out[AP_HELLO_MAX];
    bool repeat;
    size_t n;

    /* a HELLO from the host carries no version string; the length check
     * also keeps ap_hello_decode() inside agent_version[] */
    if (f->len >= AP_HELLO_MAX || ap_hello_decode(f->payload, f->len, &h) < 0) {
        session_malformed(s, f, "bad HELLO payload");
        return;
    }
    if (h.version < AP_VERSION_BASE || h.version > AP_VERSION) {
        alog_warn("HELLO with unsupported protocol version %" PRIu32, h.version);
        session_error(s, 0, "unsupported protocol version %" PRIu32 " (agent speaks %d to %d)",
                      h.version, AP_VERSION_BASE, AP_VERSION);
        return;
    }
    /* A host repeats its HELLO until answered (bytes sent before the port
     * was open may be lost, or may all arrive at once): same nonce, same
     * host, so only the first one is worth a log line. */
    repeat = s->established && s->nonce == h.nonce;
    session_drop(s);
    /* Output of the old session that has not started to go out is stale. */
    outq_drop_unstarted(&s->out);
    s->established = true;
    s->nonce = h.nonce;

    memset(&h, 0, sizeof(h));
    h.version = AP_VERSION;
    h.nonce = s->nonce;
    snprintf(h.agent_version, sizeof(h.agent_version), "noid-agent %s", NOID_AGENT_VERSION);
    n = ap_hello_encode(&h, true, out);
    outq_push(&s->out, AP_HELLO_ACK, f->stream, out, n);
    alog(repeat ? ALOG_DEBUG : ALOG_INFO, "session started (nonce %016" PRIx64 ")", s->nonce);
}

static void session_on_exec(struct session *s, const struct ap_frame *f)
{
    struct ap_exec_req req;
    char msg[256];
    int r;

    r = ap_exec_req_decode(f->payload, f->len, &req);
    if (r == -EBADMSG) {
        session_malformed(s, f, "bad EXEC payload");
        return;
    }
    if (r < 0) {
        session_error(s, f->stream, "exec request refused: %s",
                      r == -E2BIG ? "over a bound (args, env or string length)" : strerror(-r));
        return;
    }
    if (files_has_xfer(&s->files, f->stream)) {
        session_error(s, f->stream, "stream %u is in use by a file transfer", f->stream);
        ap_exec_req_free(&req);
        return;
    }
    r = exec_start(&s->execs, f->stream, &req, msg, sizeof(msg));
    if (r < 0) {
        alog_warn("stream %u: cannot start '%s': %s", f->stream, req.argv[0], msg);
        outq_push_error(&s->out, f->stream, msg);
    }
    ap_exec_req_free(&req);
}

static void session_on_stdin(struct session *s, const struct ap_frame *f)
{
    int r = exec_stdin(&s->execs, f->stream, f->payload, f->len);

    if (r == -ENOBUFS)
        session_error(s, f->stream, "stdin window of %u bytes exceeded; excess dropped",
                      AP_STDIN_WINDOW);
    else if (r == -ENOMEM)
        session_error(s, f->stream, "out of memory for stdin");
}

static void session_on_kill(struct session *s, const struct ap_frame *f)
{
    uint32_t sig;
    int r;

    if (ap_u32_decode(f->payload, f->len, &sig) < 0) {
        session_malformed(s, f, "bad KILL payload");
        return;
    }
    if (sig == 0 || sig > 64) {
        session_error(s, f->stream, "bad signal number %" PRIu32, sig);
        return;
    }
    r = exec_kill(&s->execs, f->stream, (int)sig);
    if (r < 0 && r != -ENOENT)
        session_error(s, f->stream, "kill: %s", strerror(-r));
}

static void session_on_resize(struct session *s, const struct ap_frame *f)
{
    uint16_t rows, cols;
    int r;

    if (ap_resize_decode(f->payload, f->len, &rows, &cols) < 0) {
        session_malformed(s, f, "bad RESIZE payload");
        return;
    }
    r = exec_resize(&s->execs, f->stream, rows, cols);
    /* a resize of a non-tty exec is harmless: ignore it like a finished one */
    if (r < 0 && r != -ENOENT && r != -ENOTTY)
        session_error(s, f->stream, "resize: %s", strerror(-r));
}

static void session_on_out_ack(struct session *s, const struct ap_frame *f)
{
    uint32_t n;

    if (ap_u32_decode(f->payload, f->len, &n) < 0) {
        session_malformed(s, f, "bad OUT_ACK payload");
        return;
    }
    /* -ENOENT: the exec or download just ended */
    if (exec_out_ack(&s->execs, f->stream, n) == -ENOENT)
        files_ack(&s->files, f->stream, n);
}

static void session_on_fs(struct session *s, const struct ap_frame *f)
{
    /* 8 KiB of paths: static, the agent is single-threaded */
    static struct ap_fs_req req;
    const char *why = "?";
    char msg[160];
    int r;

    r = ap_fs_req_decode(f->payload, f->len, &req, &why);
    if (r == -EBADMSG) {
        snprintf(msg, sizeof(msg), "bad FS payload (%s %s)", ap_fs_op_name(req.op), why);
        session_malformed(s, f, msg);
        return;
    }
    if (r < 0) {
        snprintf(msg, sizeof(msg), "%s refused: %s", ap_fs_op_name(req.op), why);
        files_reply_errno(&s->files, f->stream, -r, msg);
        return;
    }
    if (exec_exists(&s->execs, f->stream) || files_has_xfer(&s->files, f->stream)) {
        files_reply_errno(&s->files, f->stream, EBUSY, "stream id in use");
        return;
    }
    files_request(&s->files, f->stream, &req);
}

static void session_on_fs_cancel(struct session *s, const struct ap_frame *f)
{
    if (f->len != 0) {
        session_malformed(s, f, "FS_CANCEL carries no payload");
        return;
    }
    files_cancel(&s->files, f->stream);
}

static void session_on_set_time(struct session *s, const struct ap_frame *f)
{
    uint64_t ns;
    int r;

    if (ap_u64_decode(f->payload, f->len, &ns) < 0) {
        session_malformed(s, f, "bad SET_TIME payload");
        return;
    }
    r = control_set_time(ns);
    if (r < 0) {
        session_error(s, f->stream, "set time: %s", strerror(-r));
        return;
    }
    outq_push(&s->out, AP_OK, f->stream, NULL, 0);
}

static void session_on_add_entropy(struct session *s, const struct ap_frame *f)
{
    int r;

    if (f->len == 0 || f->len > AP_MAX_ENTROPY) {
        session_error(s, f->stream, "entropy must be 1..%d bytes, got %" PRIu32, AP_MAX_ENTROPY,
                      f->len);
        return;
    }
    r = control_add_entropy(f->payload, f->len);
    if (r < 0) {
        session_error(s, f->stream, "add entropy: %s", strerror(-r));
        return;
    }
    outq_push(&s->out, AP_OK, f->stream, NULL, 0);
}

static void session_on_set_network(struct session *s, const struct ap_frame *f)
{
    struct ap_net n;
    char msg[NET_MSG_MAX];
    int r;

    /* a payload that does not decode is refused on its stream, not taken
     * for a broken channel: the frame itself was well delimited */
    if (f->len != AP_NET_LEN) {
        session_error(s, f->stream, "set network: payload of %" PRIu32 " bytes, want %d", f->len,
                      AP_NET_LEN);
        return;
    }
    if (ap_net_decode(f->payload, f->len, &n) < 0) {
        session_error(s, f->stream,
                      "set network: invalid settings (flag bits, prefix, MAC, address or a "
                      "gateway outside the subnet)");
        return;
    }
    r = control_set_network(&n, msg, sizeof(msg));
    if (r < 0) {
        alog_warn("set network: %s", msg);
        session_error(s, f->stream, "set network: %s", msg);
        return;
    }
    outq_push(&s->out, AP_OK, f->stream, NULL, 0);
}

static void session_dispatch(struct session *s, const struct ap_frame *f)
{
    if (f->type >= AP_HELLO_ACK) {
        session_malformed(s, f, "agent-to-host frame type sent to the agent");
        return;
    }
    if (f->type == AP_HELLO) {
        session_on_hello(s, f);
        return;
    }
    if (!s->established) {
        /* Stray frames after a drop: STDIN/KILL/RESIZE/OUT_ACK/FS_DATA/
         * FS_CANCEL have nothing
         * to act on; the rest get told. */
        if (f->type == AP_EXEC || f->type == AP_SET_TIME || f->type == AP_ADD_ENTROPY ||
            f->type == AP_SET_NETWORK || f->type == AP_PING || f->type == AP_FS)
            session_error(s, f->stream, "no session: send HELLO first");
        return;
    }
    if (f->type == AP_PING) {
        outq_push(&s->out, AP_PONG, f->stream, f->payload, f->len);
        return;
    }
    switch (f->type) {
    case AP_EXEC:
        session_on_exec(s, f);
        break;
    case AP_STDIN:
        session_on_stdin(s, f);
        break;
    case AP_KILL:
        session_on_kill(s, f);
        break;
    case AP_RESIZE:
        session_on_resize(s, f);
        break;
    case AP_OUT_ACK:
        session_on_out_ack(s, f);
        break;
    case AP_SET_TIME:
        session_on_set_time(s, f);
        break;
    case AP_ADD_ENTROPY:
        session_on_add_entropy(s, f);
        break;
    case AP_SET_NETWORK:
        session_on_set_network(s, f);
        break;
    case AP_FS:
        session_on_fs(s, f);
        break;
    case AP_FS_DATA:
        files_data(&s->files, f->stream, f->payload, f->len);
        break;
    case AP_FS_CANCEL:
        session_on_fs_cancel(s, f);
        break;
    default:
        session_malformed(s, f, "unexpected frame type");
        break;
    }
}

/* Offset > 0 of the first complete HELLO frame (a version we accept, no
 * version string) inside in[], or 0.  Each byte is looked at once per stale
 * frame. */
static size_t session_find_hello(struct session *s)
{
    static const uint8_t head[4] = {AP_MAGIC >> 8, AP_MAGIC & 0xff, AP_HELLO, 0};
    /* payload length 12, then the version's three high bytes */
    static const uint8_t tail[7] = {0, 0, 0, 12, 0, 0, 0};
    size_t i = MAX(s->stale_scanned, (size_t)1);

    for (; i + AP_HEADER_LEN + 12 <= s->in_len; i++)
        if (memcmp(s->in + i, head, 4) == 0 && memcmp(s->in + i + 8, tail, 7) == 0 &&
            s->in[i + 15] >= AP_VERSION_BASE && s->in[i + 15] <= AP_VERSION)
            return i;
    s->stale_scanned = i;
    return 0;
}

/* Drop an incomplete front frame that has waited too long while a HELLO
 * sits behind it (see session.h).  Returns true if bytes were dropped. */
static bool session_drop_stale(struct session *s)
{
    struct ap_frame f;
    size_t at;

    if (s->partial_since_ms == 0 || now_ms() - s->partial_since_ms < SESSION_STALE_MS)
        return false;
    if (outq_is_full(&s->out) || ap_frame_parse(s->in, s->in_len, &f) != 0)
        return false; /* the front frame is waiting for us, not for the host */
    at = session_find_hello(s);
    if (at == 0)
        return false;
    alog_warn("dropping %zu bytes of a frame left incomplete by a previous host", at);
    memmove(s->in, s->in + at, s->in_len - at);
    s->in_len -= at;
    s->partial_since_ms = 0;
    s->stale_scanned = 0;
    s->resyncing = false;
    return true;
}

static void session_process_once(struct session *s)
{
    size_t off = 0;

    while (off < s->in_len && !outq_is_full(&s->out)) {
        struct ap_frame f;
        int r = ap_frame_parse(s->in + off, s->in_len - off, &f);

        if (r == 0)
            break;
        if (r < 0) {
            if (!s->resyncing) {
                const char *why = r == -EMSGSIZE ? "payload over the frame size limit"
                                                 : "bad magic, type or flags";
                alog_warn("malformed input: %s; resynchronising", why);
                session_error(s, 0, "malformed frame: %s", why);
                session_drop(s);
                s->resyncing = true;
            }
            off += ap_resync(s->in + off, s->in_len - off);
            continue;
        }
        s->resyncing = false;
        session_dispatch(s, &f);
        off += (size_t)r;
        s->partial_since_ms = 0;
        s->stale_scanned = 0;
    }
    if (off > 0) {
        memmove(s->in, s->in + off, s->in_len - off);
        s->in_len -= off;
        s->stale_scanned = 0;
    }
    if (s->in_len == 0 || outq_is_full(&s->out)) {
        s->partial_since_ms = 0;
        s->stale_scanned = 0;
    } else if (s->partial_since_ms == 0) {
        s->partial_since_ms = now_ms();
    }
    /* give back the memory of a large frame once it is consumed */
    if (s->in_cap > SESSION_IN_MIN && s->in_len <= SESSION_IN_MIN) {
        uint8_t *nb = realloc(s->in, SESSION_IN_MIN);
        if (nb) {
            s->in = nb;
            s->in_cap = SESSION_IN_MIN;
        }
    }
}

void session_process(struct session *s)
{
    session_process_once(s);
    if (session_drop_stale(s))
        session_process_once(s);
}

void session_disconnected(struct session *s, bool kill_execs)
{
    s->in_len = 0;
    s->resyncing = false;
    s->partial_since_ms = 0;
    s->stale_scanned = 0;
    outq_clear(&s->out);
    if (kill_execs)
        session_drop(s);
}
