/* agent_client.c — see agent_client.h.
 *
 * Locks: c->lock protects the exec and control lists, every field of a
 * struct agent_exec marked (lock), c->broken and the condition variable;
 * c->wlock serialises whole frames on the socket.  Order: wlock, then lock
 * (agent_conn_send takes the deferred cancels); never lock, then wlock.  The reader thread holds a
 * reference and is detached; the last unref closes the socket.
 *
 * The guest is untrusted, so nothing it does may hold a server thread or
 * grow server memory without bound:
 *  - the socket is non-blocking; every send has a deadline (the exec's own
 *    for EXEC and STDIN, AGENT_KILL_SEND_MS for KILL, the request timeout for
 *    controls), and so does the wait for wlock.  A frame cut off half way is
 *    unrecoverable: the connection is then marked broken.  A frame that never
 *    started leaves the channel whole.
 *  - stdin credit is capped at AP_STDIN_WINDOW, whatever WINDOW frames say;
 *  - output of an exec with flow control is counted against its window:
 *    more than out_window bytes not acknowledged (by an OUT_ACK sent or
 *    being sent) breaks the connection, so a consumer may size its buffer
 *    by the window;
 *  - the input buffer holds at most one maximal frame plus a read chunk;
 *    frames for unknown streams are dropped; output goes to the exec's sink
 *    (capped there); ERROR text is cut to a fixed size and escaped
 *    (text_sanitize) before it can reach a client or a log. */
#include "agent_client.h"
#include "agent_client-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "textutil.h"
#include "timeutil.h"
#include "unixsock.h"

#define HELLO_RETRY_MS 20
/* An agent's ERROR text, escaped, as kept for the caller. */
#define AGENT_ERROR_MAX 200

struct agent_exec {
    struct agent_conn *c;
    uint32_t stream;
    struct agent_exec_sink sink;
    struct agent_exec *next;      /* (lock) list of the connection's execs */
    bool started, exited, failed; /* (lock) */
    uint32_t pid;                 /* (lock) */
    struct ap_exit exit;          /* (lock) */
    char error[AGENT_ERROR_MAX];  /* (lock) escaped */
    uint32_t window;              /* (lock) stdin bytes we may still send, <= AP_STDIN_WINDOW */
    bool stdin_closed;
    /* Output flow control: out_window is fixed before the EXEC goes out,
     * 0 = none.  out_unacked counts output received and not yet
     * acknowledged to the agent; out_owed, the part of it the consumer has
     * delivered, goes out in the next OUT_ACK.
     * out_owed <= out_unacked <= out_window. */
    uint32_t out_window;
    uint32_t out_unacked; /* (lock) */
    uint32_t out_owed;    /* (lock) */
};

struct ctl_wait {
    uint32_t stream;
    bool done, ok;
    char error[AGENT_ERROR_MAX]; /* escaped */
    struct ctl_wait *next;
};

void agent_conn_mark_broken_locked(struct agent_conn *c)
{
    c->broken = true;
    pthread_cond_broadcast(&c->cond);
    agent_fs_notify_all_locked(c); /* file streams polled without waiting */
}

void agent_conn_defer_cancel(struct agent_conn *c, uint32_t stream)
{
    pthread_mutex_lock(&c->lock);
    if (c->ncancels < AGENT_DEFERRED_CANCELS)
        c->cancels[c->ncancels++] = stream;
    else
        log_warn("agent channel: more than %d cancels waiting for the channel; stream %u is "
                 "left to the end of the session",
                 AGENT_DEFERRED_CANCELS, stream);
    pthread_mutex_unlock(&c->lock);
}

/* wlock held: the deferred FS_CANCEL headers (taken off the list) and
 * then this frame's header into out; returns the bytes used and how many
 * cancels went in (to put back if nothing is sent). */
static size_t take_prefix(struct agent_conn *c, uint8_t *out, uint8_t type, uint32_t stream,
                          size_t len, uint32_t *taken, size_t *ret_ntaken)
{
    size_t n = 0, used = 0;

    pthread_mutex_lock(&c->lock);
    for (; n < c->ncancels; n++) {
        taken[n] = c->cancels[n];
        ap_header_encode(out + used, AP_FS_CANCEL, taken[n], 0);
        used += AP_HEADER_LEN;
    }
    c->ncancels = 0;
    pthread_mutex_unlock(&c->lock);
    ap_header_encode(out + used, type, stream, (uint32_t)len);
    *ret_ntaken = n;
    return used + AP_HEADER_LEN;
}

int agent_conn_send(struct agent_conn *c, uint8_t type, uint32_t stream, const void *payload,
                    size_t len, int64_t deadline_ms)
{
    /* the frame's header, after any deferred cancels: they go out with
     * the next frame that gets the channel */
    uint8_t hdr[AP_HEADER_LEN * (AGENT_DEFERRED_CANCELS + 1)];
    uint32_t taken[AGENT_DEFERRED_CANCELS];
    size_t ntaken = 0, hlen;
    struct iovec iov[2] = {{hdr, 0}, {(void *)payload, len}};
    size_t total, done = 0;
    bool finishing = false;
    struct timespec ts;
    int r = 0;

    ts = time_mono_timespec(deadline_ms);
    r = pthread_mutex_clocklock(&c->wlock, CLOCK_MONOTONIC, &ts);
    if (r != 0)
        return -r; /* ETIMEDOUT: another writer held the channel all along */
    hlen = take_prefix(c, hdr, type, stream, len, taken, &ntaken);
    iov[0].iov_len = hlen;
    total = hlen + len;
    while (done < total) {
        struct msghdr msg = {0};
        struct iovec v[2];
        int nv = 0;
        size_t skip = done;
        for (int i = 0; i < 2; i++) {
            if (skip >= iov[i].iov_len) {
                skip -= iov[i].iov_len;
                continue;
            }
            v[nv].iov_base = (char *)iov[i].iov_base + skip;
            v[nv].iov_len = iov[i].iov_len - skip;
            skip = 0;
            nv++;
        }
        msg.msg_iov = v;
        msg.msg_iovlen = (size_t)nv;
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* the guest is not taking bytes: wait for room, not past the deadline */
            int64_t left = deadline_ms - time_mono_ms();
            struct pollfd p = {.fd = c->fd, .events = POLLOUT};
            if (left <= 0 && done > 0 && !finishing) {
                /* a frame cut half way breaks the channel: one that has
                 * started gets a short while more, even when its sender
                 * did not want to wait at all */
                deadline_ms = time_mono_ms() + AGENT_SHORT_SEND_MS;
                finishing = true;
                continue;
            }
            if (left <= 0) {
                r = -ETIMEDOUT;
                break;
            }
            if (poll(&p, 1, (int)MIN(left, (int64_t)INT_MAX)) < 0 && errno != EINTR) {
                r = -errno;
                break;
            }
            continue;
        }
        if (n < 0) {
            r = -errno;
            break;
        }
        done += (size_t)n;
    }
    if (r < 0 && done == 0)
        for (size_t i = 0; i < ntaken; i++) /* nothing went out: later */
            agent_conn_defer_cancel(c, taken[i]);
    pthread_mutex_unlock(&c->wlock);
    if (r < 0 && (done > 0 || r != -ETIMEDOUT)) {
        pthread_mutex_lock(&c->lock);
        agent_conn_mark_broken_locked(c);
        pthread_mutex_unlock(&c->lock);
        shutdown(c->fd, SHUT_RDWR);
    }
    return r;
}

static struct agent_exec *find_exec(struct agent_conn *c, uint32_t stream)
{
    for (struct agent_exec *x = c->execs; x; x = x->next)
        if (x->stream == stream)
            return x;
    return NULL;
}

static struct ctl_wait *find_ctl(struct agent_conn *c, uint32_t stream)
{
    for (struct ctl_wait *w = c->ctls; w; w = w->next)
        if (w->stream == stream)
            return w;
    return NULL;
}

/* The text of an ERROR frame, escaped and cut to fit out. */
static void copy_message(char *out, size_t size, const struct ap_frame *f)
{
    text_sanitize(f->payload, f->len, out, size);
}

/* Handle one frame from the agent; returns -EPROTO to drop the connection.
 * Frames for streams nobody waits on are dropped.  Waiters are woken only
 * when something they wait for changed: a flood of output must not make
 * every waiting thread spin. */
static int dispatch(struct agent_conn *c, const struct ap_frame *f)
{
    struct agent_exec *x;
    struct ctl_wait *w;
    uint32_t v32;
    bool wake = false;
    int r = 0;

    pthread_mutex_lock(&c->lock);
    switch (f->type) {
    case AP_HELLO_ACK:
        break; /* a late answer to a repeated HELLO */
    case AP_STARTED:
        x = find_exec(c, f->stream);
        if (x && ap_u32_decode(f->payload, f->len, &v32) == 0) {
            x->started = true;
            x->pid = v32;
        }
        break;
    case AP_STDOUT:
    case AP_STDERR:
        x = find_exec(c, f->stream);
        if (x && x->out_window) {
            if (f->len > x->out_window - x->out_unacked) {
                log_warn("agent channel: stream %u sent %u output bytes beyond its window of %u",
                         f->stream, f->len - (x->out_window - x->out_unacked), x->out_window);
                r = -EPROTO;
                break;
            }
            x->out_unacked += f->len;
        }
        if (x && x->sink.on_output && f->len > 0)
            x->sink.on_output(x->sink.user, f->type == AP_STDERR, f->payload, f->len);
        break;
    case AP_EXIT:
        x = find_exec(c, f->stream);
        if (x) {
            if (ap_exit_decode(f->payload, f->len, &x->exit) < 0) {
                r = -EPROTO;
                break;
            }
            x->exited = wake = true;
        }
        break;
    case AP_WINDOW:
        /* WINDOW acknowledges stdin the agent consumed, and at most
         * AP_STDIN_WINDOW bytes may be unacknowledged: so credit never
         * exceeds AP_STDIN_WINDOW, however much a (buggy or hostile) agent
         * grants — which is the same as capping its acknowledgements at
         * what was sent. */
        x = find_exec(c, f->stream);
        if (!x) {
            r = agent_fs_dispatch_locked(c, f, &wake); /* an upload's credit */
            break;
        }
        if (ap_u32_decode(f->payload, f->len, &v32) == 0 && v32 > 0) {
            x->window = (uint32_t)MIN((uint64_t)x->window + v32, (uint64_t)AP_STDIN_WINDOW);
            wake = true;
        }
        break;
    case AP_OK:
    case AP_PONG:
        w = find_ctl(c, f->stream);
        if (w) {
            w->done = w->ok = wake = true;
        }
        break;
    case AP_ERROR:
        if (f->stream == 0) {
            /* raw text, cut: log_warn escapes it */
            log_warn("agent reported a session error: %.*s", (int)MIN(f->len, AGENT_ERROR_MAX),
                     (const char *)f->payload);
            r = -EPROTO;
            break;
        }
        x = find_exec(c, f->stream);
        if (x) {
            x->failed = wake = true;
            copy_message(x->error, sizeof(x->error), f);
        }
        w = find_ctl(c, f->stream);
        if (w) {
            w->done = wake = true;
            copy_message(w->error, sizeof(w->error), f);
        }
        break;
    case AP_FS_REPLY:
    case AP_FS_ERRNO:
    case AP_FS_RDATA:
    case AP_FS_DIRENTS:
        if (c->version < 3) {
            r = -EPROTO; /* never asked for */
            break;
        }
        r = agent_fs_dispatch_locked(c, f, &wake);
        break;
    default:
        r = -EPROTO; /* the agent sent a host-to-agent frame type */
        break;
    }
    if (wake)
        pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
    return r;
}

/* Read what is there into c->in (the socket is non-blocking): > 0 bytes
 * read, 0 on EOF, -EAGAIN if nothing is there, -EMSGSIZE if c->in is full
 * (no valid frame is that long), -errno. */
static ssize_t fill(struct agent_conn *c)
{
    uint8_t chunk[64 * 1024];
    ssize_t n;

    do
        n = read(c->fd, chunk, sizeof(chunk));
    while (n < 0 && errno == EINTR);
    if (n > 0 && buf_append(&c->in, chunk, (size_t)n) < 0)
        return -EMSGSIZE;
    return n < 0 ? -errno : n;
}

/* Dispatch every whole frame in c->in, then drop them from it in one go
 * (consuming frame by frame would move the rest of the buffer once per
 * frame: a flood of tiny frames would cost the reader quadratic time).
 * Returns -EPROTO if the connection must be dropped. */
static int dispatch_buffered(struct agent_conn *c)
{
    size_t off = 0;
    int r = 0;

    while (off < c->in.len) {
        struct ap_frame f;
        int used = ap_frame_parse(c->in.data + off, c->in.len - off, &f);
        if (used == 0)
            break;
        if (used < 0) {
            log_warn("agent channel: malformed frame; dropping the channel");
            r = -EPROTO;
            break;
        }
        if (dispatch(c, &f) < 0) {
            log_warn("agent channel: protocol error in a %s frame; dropping the channel",
                     ap_type_name(f.type));
            r = -EPROTO;
            break;
        }
        off += (size_t)used;
    }
    buf_consume(&c->in, off);
    return r;
}

static void *reader_main(void *arg)
{
    struct agent_conn *c = arg;

    for (;;) {
        ssize_t n;

        if (dispatch_buffered(c) < 0)
            goto out;
        n = fill(c);
        if (n == -EAGAIN) {
            /* shutdown() by a writer or agent_conn_shutdown() wakes this */
            if (fd_wait_readable(c->fd, -1) < 0)
                goto out;
            continue;
        }
        if (n == -EMSGSIZE)
            log_warn("agent channel: a frame larger than the input buffer; dropping the channel");
        if (n <= 0)
            goto out;
    }
out:
    pthread_mutex_lock(&c->lock);
    agent_conn_mark_broken_locked(c);
    pthread_mutex_unlock(&c->lock);
    shutdown(c->fd, SHUT_RDWR);
    agent_conn_unref(c);
    return NULL;
}

/* Before the reader runs: send HELLO until the matching HELLO_ACK arrives,
 * and settle c->version.  Frames of an earlier session (output of execs the
 * agent is about to kill, half a frame cut by a disconnect) are skipped.
 * HELLO says AP_VERSION_BASE, the only version a v1 agent accepts
 * (agent_proto.h, "Versions"). */
static int handshake(struct agent_conn *c, int timeout_ms, struct nerr *e)
{
    struct ap_hello hello = {.version = AP_VERSION_BASE};
    uint8_t payload[AP_HELLO_MAX];
    int64_t deadline = time_mono_ms() + timeout_ms;
    int64_t next_hello = 0;
    size_t plen;
    int r;

    if (RAND_bytes((unsigned char *)&hello.nonce, sizeof(hello.nonce)) != 1)
        return -EIO;
    plen = ap_hello_encode(&hello, false, payload);
    for (;;) {
        int64_t now = time_mono_ms();
        if (now >= deadline)
            return nerr_set(e, -ETIMEDOUT, "the guest agent did not answer within %d ms",
                            timeout_ms);
        if (now >= next_hello) {
            r = agent_conn_send(c, AP_HELLO, 0, payload, plen, deadline);
            if (r == -ETIMEDOUT)
                continue; /* the deadline check above answers */
            if (r < 0)
                return nerr_set(e, -ECONNRESET, "agent channel closed: %s", strerror(-r));
            next_hello = now + HELLO_RETRY_MS;
        }
        r = fd_wait_readable(c->fd, (int)MAX(MIN(next_hello, deadline) - now, (int64_t)1));
        if (r < 0)
            return nerr_set(e, r, "agent channel: %s", strerror(-r));
        if (r == 0)
            continue;
        ssize_t n = fill(c);
        if (n == -EAGAIN)
            continue;
        if (n == 0)
            return nerr_set(e, -ECONNRESET, "agent channel closed during the handshake");
        if (n < 0)
            return nerr_set(e, (int)n, "agent channel: %s", strerror((int)-n));
        /* skip to the matching HELLO_ACK; what precedes it is dropped in
         * one buf_consume, never frame by frame */
        size_t off = 0;
        for (;;) {
            struct ap_frame f;
            int used = ap_frame_parse(c->in.data + off, c->in.len - off, &f);
            if (used == 0)
                break;
            if (used < 0) {
                off += MAX((size_t)1, ap_resync(c->in.data + off, c->in.len - off));
                continue;
            }
            off += (size_t)used;
            if (f.type == AP_HELLO_ACK) {
                struct ap_hello ack;
                if (ap_hello_decode(f.payload, f.len, &ack) == 0 && ack.nonce == hello.nonce) {
                    if (ack.version < AP_VERSION_BASE) {
                        return nerr_set(e, -EPROTONOSUPPORT,
                                        "guest agent speaks protocol v%u, the server v%u to v%u",
                                        ack.version, AP_VERSION_BASE, AP_VERSION);
                    }
                    /* a newer agent still speaks our additions */
                    c->version = (int)MIN(ack.version, (uint32_t)AP_VERSION);
                    log_debug("agent channel: %s, protocol v%u (using v%d)", ack.agent_version,
                              ack.version, c->version);
                    buf_consume(&c->in, off);
                    return 0;
                }
            }
        }
        buf_consume(&c->in, off);
    }
}

int agent_conn_open(int fd, int timeout_ms, struct agent_conn **ret, struct nerr *e)
{
    struct agent_conn *c = calloc(1, sizeof(*c));
    pthread_condattr_t ca;
    pthread_attr_t ta;
    pthread_t th;
    int r;

    if (!c) {
        close(fd);
        return -ENOMEM;
    }
    atomic_init(&c->refs, 1);
    c->fd = fd;
    pthread_mutex_init(&c->wlock, NULL);
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    buf_init(&c->in, AP_MAX_PAYLOAD + AP_HEADER_LEN + 64 * 1024);
    /* every send and read is bounded by poll() with a deadline, never by
     * a blocking call the guest could stretch */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        r = nerr_set(e, -errno, "agent channel: cannot make the socket non-blocking");
        goto fail;
    }
    if (RAND_bytes((unsigned char *)&c->next_stream, sizeof(c->next_stream)) != 1)
        c->next_stream = (uint32_t)time_mono_ns();

    r = handshake(c, timeout_ms, e);
    if (r < 0)
        goto fail;
    atomic_fetch_add(&c->refs, 1); /* the reader's reference */
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    r = -pthread_create(&th, &ta, reader_main, c);
    pthread_attr_destroy(&ta);
    if (r < 0) {
        atomic_fetch_sub(&c->refs, 1);
        nerr_set(e, r, "cannot start the agent reader thread");
        goto fail;
    }
    *ret = c;
    return 0;
fail:
    agent_conn_unref(c);
    return r;
}

struct agent_conn *agent_conn_ref(struct agent_conn *c)
{
    atomic_fetch_add(&c->refs, 1);
    return c;
}

void agent_conn_unref(struct agent_conn *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    close(c->fd);
    buf_free(&c->in);
    pthread_mutex_destroy(&c->wlock);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}

void agent_conn_shutdown(struct agent_conn *c)
{
    pthread_mutex_lock(&c->lock);
    agent_conn_mark_broken_locked(c);
    pthread_mutex_unlock(&c->lock);
    shutdown(c->fd, SHUT_RDWR);
}

int agent_conn_version(struct agent_conn *c)
{
    return c->version;
}

bool agent_conn_is_broken(struct agent_conn *c)
{
    bool b;

    pthread_mutex_lock(&c->lock);
    b = c->broken;
    pthread_mutex_unlock(&c->lock);
    return b;
}

uint32_t agent_conn_next_stream_locked(struct agent_conn *c)
{
    do
        c->next_stream++;
    while (c->next_stream == 0 || find_exec(c, c->next_stream) || find_ctl(c, c->next_stream) ||
           agent_fs_find_locked(c, c->next_stream));
    return c->next_stream;
}

int agent_exec_start(struct agent_conn *c, const struct ap_exec_req *req,
                     const struct agent_exec_sink *sink, int64_t deadline_ms,
                     struct agent_exec **ret, struct nerr *e)
{
    struct agent_exec *x;
    struct ap_exec_req wire = *req;
    uint8_t *payload = NULL;
    size_t plen;
    int r;

    /* APT_OUT_WINDOW only for an agent that knows it: a v1 agent drops the
     * whole session on an unknown tag */
    wire.out_window = sink && c->version >= 2 ? sink->out_window : 0;
    r = ap_exec_req_encode(&wire, &payload, &plen);
    if (r < 0)
        return nerr_set(e, r == -E2BIG ? -EINVAL : r,
                        r == -E2BIG ? "the command and its environment are too large"
                                    : "cannot encode the exec request");
    x = calloc(1, sizeof(*x));
    if (!x) {
        free(payload);
        return -ENOMEM;
    }
    x->c = agent_conn_ref(c);
    if (sink)
        x->sink = *sink;
    x->out_window = wire.out_window;
    x->window = AP_STDIN_WINDOW;
    pthread_mutex_lock(&c->lock);
    if (c->broken) {
        pthread_mutex_unlock(&c->lock);
        r = nerr_set(e, -ECONNRESET, "the agent channel is closed");
        goto fail;
    }
    x->stream = agent_conn_next_stream_locked(c);
    x->next = c->execs;
    c->execs = x;
    pthread_mutex_unlock(&c->lock);

    r = agent_conn_send(c, AP_EXEC, x->stream, payload, plen, deadline_ms);
    free(payload);
    payload = NULL;
    if (r < 0) {
        x->out_window = 0; /* the agent never saw it: nothing to release */
        agent_exec_free(x);
        if (r == -ETIMEDOUT)
            return nerr_set(e, -ETIMEDOUT,
                            "the guest agent did not take the command before the timeout");
        return nerr_set(e, -ECONNRESET, "cannot send the command to the agent: %s", strerror(-r));
    }
    *ret = x;
    return 0;
fail:
    free(payload);
    agent_conn_unref(x->c);
    free(x);
    return r;
}

int agent_exec_write_stdin(struct agent_exec *x, const void *data, size_t len, int64_t deadline_ms,
                           struct nerr *e)
{
    struct agent_conn *c = x->c;
    const uint8_t *p = data;
    struct timespec ts;

    ts = time_mono_timespec(deadline_ms);
    while (len > 0) {
        size_t n;
        pthread_mutex_lock(&c->lock);
        while (x->window == 0 && !x->exited && !x->failed && !c->broken)
            if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT) {
                pthread_mutex_unlock(&c->lock);
                return nerr_set(e, -ETIMEDOUT, "the command did not read its stdin in time");
            }
        if (c->broken) {
            pthread_mutex_unlock(&c->lock);
            return nerr_set(e, -ECONNRESET, "the agent channel closed while sending stdin");
        }
        if (x->exited || x->failed) {
            /* the process is gone; what it did not read is dropped, like EPIPE */
            pthread_mutex_unlock(&c->lock);
            return 0;
        }
        n = MIN(len, MIN((size_t)x->window, (size_t)AP_DATA_CHUNK));
        x->window -= (uint32_t)n;
        pthread_mutex_unlock(&c->lock);
        int r = agent_conn_send(c, AP_STDIN, x->stream, p, n, deadline_ms);
        if (r == -ETIMEDOUT)
            return nerr_set(e, -ETIMEDOUT, "the guest did not take stdin in time");
        if (r < 0)
            return nerr_set(e, -ECONNRESET, "cannot send stdin: %s", strerror(-r));
        p += n;
        len -= n;
    }
    return 0;
}

int agent_exec_close_stdin(struct agent_exec *x, int64_t deadline_ms, struct nerr *e)
{
    int r;

    if (x->stdin_closed)
        return 0;
    x->stdin_closed = true;
    r = agent_conn_send(x->c, AP_STDIN, x->stream, NULL, 0, deadline_ms);
    if (r == -ETIMEDOUT)
        return nerr_set(e, -ETIMEDOUT, "the guest did not take the end of stdin in time");
    if (r < 0)
        return nerr_set(e, -ECONNRESET, "cannot close stdin: %s", strerror(-r));
    return 0;
}

int agent_exec_kill(struct agent_exec *x, int sig)
{
    uint8_t p[4];

    ap_u32_encode((uint32_t)sig, p);
    return agent_conn_send(x->c, AP_KILL, x->stream, p, sizeof(p),
                           time_mono_ms() + AGENT_SHORT_SEND_MS);
}

bool agent_exec_has_flow_control(const struct agent_exec *x)
{
    return x->out_window != 0;
}

/* Credit owed before an OUT_ACK is worth a frame: a quarter of the window
 * (at least 1 byte), so the agent never runs dry while the consumer keeps
 * up, and a stream of small chunks does not cost one frame each. */
static uint32_t ack_threshold(const struct agent_exec *x)
{
    return MAX(x->out_window / 4, (uint32_t)1);
}

int agent_exec_ack_output(struct agent_exec *x, size_t n)
{
    struct agent_conn *c = x->c;
    uint32_t send;
    uint8_t p[4];
    int r;

    if (!x->out_window)
        return 0;
    pthread_mutex_lock(&c->lock);
    if (c->broken) {
        pthread_mutex_unlock(&c->lock);
        return -ECONNRESET;
    }
    /* capped at what was received: out_unacked <= out_window fits u32 */
    x->out_owed = (uint32_t)MIN((uint64_t)x->out_owed + n, (uint64_t)x->out_unacked);
    if (x->exited || x->failed || x->out_owed < ack_threshold(x)) {
        pthread_mutex_unlock(&c->lock);
        return 0;
    }
    /* Counted as acknowledged before it goes out: the agent may answer
     * with new output before agent_conn_send() returns, and the reader must not
     * take that for an overrun. */
    send = x->out_owed;
    x->out_owed = 0;
    x->out_unacked -= send;
    pthread_mutex_unlock(&c->lock);

    ap_u32_encode(send, p);
    r = agent_conn_send(c, AP_OUT_ACK, x->stream, p, sizeof(p),
                        time_mono_ms() + AGENT_SHORT_SEND_MS);
    if (r == -ETIMEDOUT) {
        /* not sent (a half-sent frame breaks the channel): keep the credit */
        pthread_mutex_lock(&c->lock);
        if (!c->broken) {
            x->out_owed += send;
            x->out_unacked += send;
        }
        pthread_mutex_unlock(&c->lock);
        return -ETIMEDOUT;
    }
    return r < 0 ? -ECONNRESET : 0;
}

int agent_exec_resize(struct agent_exec *x, uint16_t rows, uint16_t cols)
{
    struct agent_conn *c = x->c;
    bool done, broken;
    uint8_t p[4];
    int r;

    if (rows == 0 || cols == 0)
        return -EINVAL;
    pthread_mutex_lock(&c->lock);
    done = x->exited || x->failed;
    broken = c->broken;
    pthread_mutex_unlock(&c->lock);
    if (broken)
        return -ECONNRESET;
    if (done)
        return 0;
    ap_resize_encode(rows, cols, p);
    r = agent_conn_send(c, AP_RESIZE, x->stream, p, sizeof(p),
                        time_mono_ms() + AGENT_SHORT_SEND_MS);
    if (r == -ETIMEDOUT)
        return r;
    return r < 0 ? -ECONNRESET : 0;
}

int agent_exec_wait(struct agent_exec *x, int64_t deadline_ms, struct ap_exit *ret, struct nerr *e)
{
    struct agent_conn *c = x->c;
    struct timespec ts;
    int r = 0;

    ts = time_mono_timespec(deadline_ms);
    pthread_mutex_lock(&c->lock);
    while (!x->exited && !x->failed && !c->broken) {
        int rc = pthread_cond_timedwait(&c->cond, &c->lock, &ts);
        if (rc == ETIMEDOUT) {
            r = -ETIMEDOUT;
            break;
        }
    }
    if (x->exited) {
        *ret = x->exit;
        r = 0;
    } else if (x->failed) {
        r = nerr_set(e, -EIO, "the agent could not run the command: %s", x->error);
    } else if (c->broken) {
        r = nerr_set(e, -ECONNRESET, "the connection to the guest agent was lost");
    } else {
        r = nerr_set(e, -ETIMEDOUT, "the guest agent did not report the end of the command");
    }
    pthread_mutex_unlock(&c->lock);
    return r;
}

void agent_exec_free(struct agent_exec *x)
{
    struct agent_conn *c;
    bool release;

    if (!x)
        return;
    c = x->c;
    pthread_mutex_lock(&c->lock);
    for (struct agent_exec **pp = &c->execs; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    release = x->out_window && !x->exited && !x->failed && !c->broken;
    pthread_mutex_unlock(&c->lock);
    if (release) {
        /* Nobody will acknowledge its output any more: without this the
         * agent would hold the command (and its slot) until the session
         * ends.  Best effort; its output is dropped here as for any
         * unknown stream. */
        uint8_t p[4];

        ap_u32_encode(AP_OUT_ACK_RELEASE, p);
        agent_conn_send(c, AP_OUT_ACK, x->stream, p, sizeof(p),
                        time_mono_ms() + AGENT_SHORT_SEND_MS);
    }
    agent_conn_unref(c);
    free(x);
}

int agent_control(struct agent_conn *c, uint8_t type, const void *payload, size_t len,
                  int timeout_ms, struct nerr *e)
{
    struct ctl_wait w = {0};
    int64_t deadline = time_mono_ms() + timeout_ms;
    struct timespec ts;
    int r;

    ts = time_mono_timespec(deadline);
    pthread_mutex_lock(&c->lock);
    if (c->broken) {
        pthread_mutex_unlock(&c->lock);
        return nerr_set(e, -ECONNRESET, "the agent channel is closed");
    }
    w.stream = agent_conn_next_stream_locked(c);
    w.next = c->ctls;
    c->ctls = &w;
    pthread_mutex_unlock(&c->lock);

    r = agent_conn_send(c, type, w.stream, payload, len, deadline);

    pthread_mutex_lock(&c->lock);
    while (r == 0 && !w.done && !c->broken)
        if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT)
            break;
    if (r == -ETIMEDOUT)
        r = nerr_set(e, -ETIMEDOUT, "the guest agent did not take %s in time", ap_type_name(type));
    else if (r < 0 || (!w.done && c->broken))
        r = nerr_set(e, -ECONNRESET, "the agent channel closed");
    else if (!w.done)
        r = nerr_set(e, -ETIMEDOUT, "the guest agent did not answer %s", ap_type_name(type));
    else if (!w.ok)
        r = nerr_set(e, -EIO, "the guest agent refused %s: %s", ap_type_name(type), w.error);
    for (struct ctl_wait **pp = &c->ctls; *pp; pp = &(*pp)->next)
        if (*pp == &w) {
            *pp = w.next;
            break;
        }
    pthread_mutex_unlock(&c->lock);
    return r;
}
