/* agent_files.c — see agent_files.h.
 *
 * Every file request in flight is a struct agent_fs_op on c->fs_ops, found
 * by its stream id.  The reader thread fills it under c->lock
 * (agent_fs_dispatch_locked) and wakes c->cond; the caller waits on c->cond
 * with its deadline and takes the op off the list before it returns or
 * frees it, so the reader never touches an op (or a caller's reply) that
 * is gone.  Frames for a stream nobody waits on any more (cancelled, timed
 * out) are dropped: stream ids only grow, so a late frame cannot land in a
 * newer request.
 *
 * What the guest sends is checked before it is used: a download that sends
 * past its window, a PREAD answer longer than asked, a malformed entry or
 * reply, a count that disagrees with the bytes that came, or any frame
 * after the final answer breaks the channel (-EPROTO from the dispatcher),
 * like every other protocol error.
 *
 * A download's bytes wait in a linear buffer of twice the window: at most
 * a window of them is ever unconsumed, so when an append would not fit,
 * moving the unconsumed rest to the front makes room, and each byte is
 * moved at most once on average. */
#include "agent_files.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent_client-internal.h"
#include "log.h"
#include "macro.h"
#include "textutil.h"
#include "timeutil.h"

enum op_kind {
    KIND_CALL,     /* one answer (PREAD: FS_RDATA frames before it) */
    KIND_DOWNLOAD, /* READ_FILE: FS_RDATA frames into the buffer */
    KIND_DIRENTS,  /* READDIR: FS_DIRENTS frames into the buffer */
    KIND_UPLOAD,   /* WRITE_FILE: FS_DATA out, WINDOW back */
};

/* An FS_ERRNO message, escaped (text_sanitize may quadruple a byte). */
#define FS_MSG_TEXT_MAX (AP_FS_MSG_MAX * 4 + 1)

struct agent_fs_op {
    struct agent_conn *c;
    uint32_t stream;
    uint8_t op;
    enum op_kind kind;
    char path[96];             /* for messages, cut */
    struct agent_fs_op *next;  /* (lock) */
    bool done;                 /* (lock) FS_REPLY or FS_ERRNO came */
    int err;                   /* (lock) FS_ERRNO's errno, 0 on success */
    char msg[FS_MSG_TEXT_MAX]; /* (lock) FS_ERRNO's message, escaped */
    /* KIND_CALL */
    struct agent_fs_reply *reply;  /* (lock) the caller's */
    uint64_t pread_cap, pread_got; /* (lock) */
    /* KIND_DOWNLOAD / KIND_DIRENTS */
    uint8_t *buf;      /* 2 * window bytes */
    size_t head, tail; /* (lock) unconsumed bytes are buf[head..tail) */
    uint32_t window;
    uint32_t unacked;  /* (lock) received, not yet given back by OUT_ACK */
    uint32_t owed;     /* (lock) consumed, to give back in the next OUT_ACK */
    uint64_t received; /* (lock) payload bytes (or entries) that came */
    uint64_t count;    /* (lock) the final answer's count */
    /* KIND_UPLOAD */
    uint32_t credit;            /* (lock) FS_DATA bytes we may still send */
    void (*notify)(void *user); /* (lock) */
    void *notify_user;
};

struct agent_fs_stream {
    struct agent_fs_op op;
};

struct agent_fs_op *agent_fs_find_locked(struct agent_conn *c, uint32_t stream)
{
    for (struct agent_fs_op *o = c->fs_ops; o; o = o->next)
        if (o->stream == stream)
            return o;
    return NULL;
}

void agent_fs_notify_all_locked(struct agent_conn *c)
{
    for (struct agent_fs_op *o = c->fs_ops; o; o = o->next)
        if (o->notify)
            o->notify(o->notify_user);
}

/* ---- the reader's side ---- */

static bool op_answers_attr(uint8_t op)
{
    switch (op) {
    case APO_STAT:
    case APO_LSTAT:
    case APO_FSTAT:
    case APO_TRUNCATE:
    case APO_MKDIR:
    case APO_SYMLINK:
    case APO_LINK:
    case APO_CHMOD:
    case APO_CHOWN:
    case APO_UTIMENS:
        return true;
    default:
        return false;
    }
}

/* Decode the FS_REPLY of o into the caller's reply or o->count. */
static int take_reply(struct agent_fs_op *o, const uint8_t *p, size_t len)
{
    struct agent_fs_reply *rp = o->reply;
    uint64_t v;

    switch (o->op) {
    case APO_READ_FILE:
    case APO_READDIR:
    case APO_WRITE_FILE:
        if (ap_u64_decode(p, len, &v) < 0)
            return -EPROTO;
        /* what came must be what the agent says it sent */
        if (o->op != APO_WRITE_FILE && v != o->received)
            return -EPROTO;
        o->count = v;
        return 0;
    case APO_PREAD:
    case APO_PWRITE:
        if (ap_u64_decode(p, len, &v) < 0 || (o->op == APO_PREAD && v != o->pread_got))
            return -EPROTO;
        rp->count = v;
        return 0;
    case APO_OPEN:
        if (len != AP_FS_OPEN_REPLY_LEN || ap_u32_decode(p, 4, &rp->handle) < 0 ||
            ap_fs_attr_decode(p + 4, AP_FS_ATTR_LEN, &rp->attr) < 0)
            return -EPROTO;
        rp->has_attr = true;
        return 0;
    case APO_READLINK:
        return ap_fs_path_decode(p, len, rp->link) < 0 ? -EPROTO : 0;
    case APO_STATFS:
        return ap_fs_statfs_decode(p, len, &rp->statfs) < 0 ? -EPROTO : 0;
    default:
        if (op_answers_attr(o->op)) {
            if (len == 0)
                return 0; /* the path vanished in between */
            if (ap_fs_attr_decode(p, len, &rp->attr) < 0)
                return -EPROTO;
            rp->has_attr = true;
            return 0;
        }
        return len == 0 ? 0 : -EPROTO; /* CLOSE, UNLINK, RMDIR, RENAME, FSYNC */
    }
}

/* Append a download's payload, counted against its window. */
static int take_bytes(struct agent_fs_op *o, const uint8_t *p, size_t len)
{
    size_t cap = 2 * (size_t)o->window;

    if (len > o->window - o->unacked)
        return -EPROTO;
    if (o->tail + len > cap) {
        /* unconsumed <= unacked <= window - len: it fits after the move */
        memmove(o->buf, o->buf + o->head, o->tail - o->head);
        o->tail -= o->head;
        o->head = 0;
    }
    memcpy(o->buf + o->tail, p, len);
    o->tail += len;
    o->unacked += (uint32_t)len;
    return 0;
}

static int take_dirents(struct agent_fs_op *o, const uint8_t *p, size_t len)
{
    char name[AP_FS_NAME_MAX + 1];
    struct ap_fs_attr a;
    size_t off = 0;
    int r;

    /* every entry whole and valid now, so the consumer never meets a bad one */
    while ((r = ap_fs_dirent_next(p, len, &off, name, &a)) == 1)
        o->received++;
    if (r < 0 || len == 0)
        return -EPROTO;
    return take_bytes(o, p, len); /* entries are counted, bytes spend the window */
}

int agent_fs_dispatch_locked(struct agent_conn *c, const struct ap_frame *f, bool *wake)
{
    struct agent_fs_op *o = agent_fs_find_locked(c, f->stream);
    uint32_t v32;
    int r = 0;

    if (!o)
        return 0; /* cancelled or timed out: dropped */
    if (o->done)
        return -EPROTO; /* nothing follows the final answer */
    switch (f->type) {
    case AP_WINDOW:
        if (o->kind != KIND_UPLOAD || ap_u32_decode(f->payload, f->len, &v32) < 0)
            return -EPROTO;
        /* at most AP_FS_WRITE_WINDOW outstanding, whatever the agent says */
        o->credit = (uint32_t)MIN((uint64_t)o->credit + v32, (uint64_t)AP_FS_WRITE_WINDOW);
        break;
    case AP_FS_RDATA:
        if (o->kind == KIND_CALL && o->op == APO_PREAD) {
            if (f->len > o->pread_cap - o->pread_got)
                return -EPROTO;
            memcpy((uint8_t *)o->reply->read_buf + o->pread_got, f->payload, f->len);
            o->pread_got += f->len;
            return 0; /* the caller waits for the reply, not for bytes */
        }
        if (o->kind != KIND_DOWNLOAD || f->len == 0 || take_bytes(o, f->payload, f->len) < 0)
            return -EPROTO;
        o->received += f->len;
        break;
    case AP_FS_DIRENTS:
        if (o->kind != KIND_DIRENTS || take_dirents(o, f->payload, f->len) < 0)
            return -EPROTO;
        break;
    case AP_FS_ERRNO: {
        char raw[AP_FS_MSG_MAX + 1];
        if (ap_fs_errno_decode(f->payload, f->len, &o->err, raw) < 0)
            return -EPROTO;
        text_sanitize(raw, strlen(raw), o->msg, sizeof(o->msg));
        o->done = true;
        break;
    }
    case AP_FS_REPLY:
        r = take_reply(o, f->payload, f->len);
        if (r < 0)
            return r;
        o->done = true;
        break;
    default:
        return -EPROTO;
    }
    *wake = true;
    if (o->notify)
        o->notify(o->notify_user);
    return 0;
}

/* ---- the callers' side ---- */

static enum op_kind kind_of(uint8_t op)
{
    switch (op) {
    case APO_READ_FILE:
        return KIND_DOWNLOAD;
    case APO_READDIR:
        return KIND_DIRENTS;
    case APO_WRITE_FILE:
        return KIND_UPLOAD;
    default:
        return KIND_CALL;
    }
}

/* Encode req, register o and send the request.  On failure o is not on
 * the list. */
static int op_start(struct agent_conn *c, struct agent_fs_op *o, const struct ap_fs_req *req,
                    int64_t deadline_ms, struct nerr *e)
{
    const char *why = NULL;
    uint8_t *payload = NULL;
    size_t plen;
    int r;

    o->c = c;
    o->op = req->op;
    o->kind = kind_of(req->op);
    snprintf(o->path, sizeof(o->path), "%s", ap_fs_req_has(req, APF_PATH) ? req->path : "");
    if (c->version < 3)
        return nerr_set(e, -EPROTONOSUPPORT,
                        "the guest agent speaks protocol v%d and has no file access (v3); "
                        "the VM comes from an image or checkpoint older than this server",
                        c->version);
    r = ap_fs_req_check(req, &why);
    if (r == 0)
        r = ap_fs_req_encode(req, &payload, &plen);
    if (r == -ENOMEM)
        return r;
    if (r < 0)
        return nerr_set(e, r == -EBADMSG ? -EINVAL : r, "bad file request (%s): %s",
                        ap_fs_op_name(req->op), why ? why : strerror(-r));

    pthread_mutex_lock(&c->lock);
    if (c->broken) {
        pthread_mutex_unlock(&c->lock);
        free(payload);
        return nerr_set(e, -ECONNRESET, "the agent channel is closed");
    }
    o->stream = agent_conn_next_stream_locked(c);
    o->next = c->fs_ops;
    c->fs_ops = o;
    pthread_mutex_unlock(&c->lock);

    r = agent_conn_send(c, AP_FS, o->stream, payload, plen, deadline_ms);
    free(payload);
    if (r < 0) {
        pthread_mutex_lock(&c->lock);
        for (struct agent_fs_op **pp = &c->fs_ops; *pp; pp = &(*pp)->next)
            if (*pp == o) {
                *pp = o->next;
                break;
            }
        pthread_mutex_unlock(&c->lock);
        if (r == -ETIMEDOUT)
            return nerr_set(e, -ETIMEDOUT, "the guest agent did not take the %s request in time",
                            ap_fs_op_name(req->op));
        return nerr_set(e, -ECONNRESET, "cannot send the %s request to the agent: %s",
                        ap_fs_op_name(req->op), strerror(-r));
    }
    return 0;
}

/* Take o off the list; FS_CANCEL if the agent may still be working on it. */
static void op_finish(struct agent_fs_op *o)
{
    struct agent_conn *c = o->c;
    bool cancel;

    pthread_mutex_lock(&c->lock);
    for (struct agent_fs_op **pp = &c->fs_ops; *pp; pp = &(*pp)->next)
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    cancel = !o->done && !c->broken;
    pthread_mutex_unlock(&c->lock);
    if (cancel && agent_conn_send(c, AP_FS_CANCEL, o->stream, NULL, 0,
                                  time_mono_ms() + AGENT_SHORT_SEND_MS) == -ETIMEDOUT)
        agent_conn_defer_cancel(c, o->stream); /* with the next frame */
}

/* Wait (c->lock held) until ready(o) holds, the answer came, the channel
 * broke or deadline_ms passed (a past deadline: do not wait).  false when
 * the deadline came first. */
static bool op_wait_locked(struct agent_fs_op *o, bool (*ready)(const struct agent_fs_op *),
                           int64_t deadline_ms)
{
    struct agent_conn *c = o->c;
    struct timespec ts = time_mono_timespec(deadline_ms);

    while (!(ready && ready(o)) && !o->done && !c->broken)
        if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) == ETIMEDOUT)
            return (ready && ready(o)) || o->done || c->broken;
    return true;
}

/* The error of an op that ended with FS_ERRNO (c->lock held). */
static int op_error_locked(const struct agent_fs_op *o, struct nerr *e)
{
    if (o->path[0])
        return nerr_set(e, -o->err, "%s: %s", o->path, o->msg[0] ? o->msg : strerror(o->err));
    return nerr_set(e, -o->err, "%s", o->msg[0] ? o->msg : strerror(o->err));
}

static int op_lost(const struct agent_fs_op *o, struct nerr *e)
{
    return nerr_set(e, -ECONNRESET, "the connection to the guest agent was lost during %s",
                    ap_fs_op_name(o->op));
}

static int op_timeout(const struct agent_fs_op *o, struct nerr *e)
{
    return nerr_set(e, -ETIMEDOUT, "the guest agent did not answer %s%s%s in time",
                    ap_fs_op_name(o->op), o->path[0] ? " of " : "", o->path);
}

int agent_fs_call(struct agent_conn *c, const struct ap_fs_req *req, int64_t deadline_ms,
                  struct agent_fs_reply *ret, struct nerr *e)
{
    struct agent_fs_op o = {0};
    void *read_buf = ret->read_buf;
    int r;

    if (kind_of(req->op) != KIND_CALL)
        return nerr_set(e, -EINVAL, "%s is a streaming request", ap_fs_op_name(req->op));
    if (req->op == APO_PREAD && !read_buf)
        return nerr_set(e, -EINVAL, "PREAD needs a buffer");
    memset(ret, 0, sizeof(*ret));
    ret->read_buf = read_buf;
    o.reply = ret;
    o.pread_cap = req->op == APO_PREAD ? req->length : 0;
    r = op_start(c, &o, req, deadline_ms, e);
    if (r < 0)
        return r;
    pthread_mutex_lock(&c->lock);
    if (!op_wait_locked(&o, NULL, deadline_ms))
        r = op_timeout(&o, e);
    else if (o.done && o.err)
        r = op_error_locked(&o, e);
    else if (!o.done)
        r = op_lost(&o, e);
    pthread_mutex_unlock(&c->lock);
    op_finish(&o);
    return r;
}

int agent_fs_stream_open(struct agent_conn *c, const struct ap_fs_req *req, int64_t deadline_ms,
                         struct agent_fs_stream **ret, struct nerr *e)
{
    struct agent_fs_stream *s;
    struct ap_fs_req wire = *req;
    int r;

    if (kind_of(req->op) == KIND_CALL)
        return nerr_set(e, -EINVAL, "%s is not a streaming request", ap_fs_op_name(req->op));
    s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    if (req->op != APO_WRITE_FILE) {
        wire.window = AGENT_FS_STREAM_WINDOW;
        wire.present |= 1u << APF_WINDOW;
        s->op.window = AGENT_FS_STREAM_WINDOW;
        s->op.buf = malloc(2 * (size_t)AGENT_FS_STREAM_WINDOW);
        if (!s->op.buf) {
            free(s);
            return -ENOMEM;
        }
    }
    s->op.credit = AP_FS_WRITE_WINDOW;
    r = op_start(c, &s->op, &wire, deadline_ms, e);
    if (r < 0) {
        free(s->op.buf);
        free(s);
        return r;
    }
    agent_conn_ref(c);
    *ret = s;
    return 0;
}

void agent_fs_stream_set_notify(struct agent_fs_stream *s, void (*fn)(void *user), void *user)
{
    pthread_mutex_lock(&s->op.c->lock);
    s->op.notify = fn;
    s->op.notify_user = user;
    pthread_mutex_unlock(&s->op.c->lock);
}

static bool has_bytes(const struct agent_fs_op *o)
{
    return o->tail > o->head;
}

/* Give consumed bytes back to the agent once a quarter of the window is
 * owed (one OUT_ACK per quarter, not per chunk), waiting for the channel
 * until deadline_ms at most (a past one: only if it is free now).  Credit
 * that could not go out stays owed.  Called without the lock. */
static int give_credit(struct agent_fs_op *o, int64_t deadline_ms)
{
    struct agent_conn *c = o->c;
    uint32_t send = 0;
    uint8_t p[4];
    int r;

    pthread_mutex_lock(&c->lock);
    if (!o->done && !c->broken && o->owed >= o->window / 4) {
        /* counted before it goes out: the answer may overtake the send */
        send = o->owed;
        o->owed = 0;
        o->unacked -= send;
    }
    pthread_mutex_unlock(&c->lock);
    if (!send)
        return 0;
    ap_u32_encode(send, p);
    r = agent_conn_send(c, AP_OUT_ACK, o->stream, p, sizeof(p), deadline_ms);
    if (r == -ETIMEDOUT) {
        /* not sent (a half-sent frame breaks the channel): keep the credit */
        pthread_mutex_lock(&c->lock);
        if (!c->broken) {
            o->owed += send;
            o->unacked += send;
        }
        pthread_mutex_unlock(&c->lock);
    }
    return 0;
}

/* Wait for the next bytes of a download (c->lock held).  1 bytes are
 * there, 0 the end, -EAGAIN the deadline passed first, < 0 an error. */
static int wait_readable_locked(struct agent_fs_op *o, int64_t deadline_ms, struct nerr *e)
{
    if (!op_wait_locked(o, has_bytes, deadline_ms))
        return -EAGAIN;
    if (has_bytes(o))
        return 1;
    if (o->done)
        return o->err ? op_error_locked(o, e) : 0;
    return op_lost(o, e);
}

/* How long giving credit back may wait for the channel: a consumer that
 * polls (its deadline passed already: an HTTP response on an epoll
 * thread) never waits, it only takes the channel if it is free now, and
 * agent_fs_stream_poke() tries again later; one that waits for bytes
 * waits a little for the channel too. */
static int64_t credit_deadline(int64_t deadline_ms)
{
    int64_t now = time_mono_ms();

    return deadline_ms <= now ? now : now + AGENT_SHORT_SEND_MS;
}

/* How often a consumer waiting for bytes tries again to give back credit
 * it could not send (the channel was busy): without it the agent, out of
 * credit, would send nothing more and the wait would run to its end. */
#define CREDIT_RETRY_MS 1000

/* Lock c and wait for the next bytes of a download: 1 with the lock
 * held; otherwise unlocked, with what wait_readable_locked() said. */
static int lock_readable(struct agent_fs_op *o, int64_t deadline_ms, struct nerr *e)
{
    for (;;) {
        int64_t now = time_mono_ms();
        int64_t until = deadline_ms <= now ? deadline_ms : MIN(deadline_ms, now + CREDIT_RETRY_MS);
        int r;

        pthread_mutex_lock(&o->c->lock);
        r = wait_readable_locked(o, until, e);
        if (r > 0)
            return r;
        pthread_mutex_unlock(&o->c->lock);
        if (r != -EAGAIN)
            return r;
        give_credit(o, credit_deadline(deadline_ms));
        if (time_mono_ms() >= deadline_ms)
            return -EAGAIN;
    }
}

/* The consumer took n buffered bytes: unlock and give them back. */
static void consumed_unlock(struct agent_fs_op *o, size_t n, int64_t deadline_ms)
{
    o->head += n;
    if (o->head == o->tail)
        o->head = o->tail = 0;
    o->owed += (uint32_t)n;
    pthread_mutex_unlock(&o->c->lock);
    give_credit(o, credit_deadline(deadline_ms));
}

void agent_fs_stream_poke(struct agent_fs_stream *s)
{
    if (s->op.kind == KIND_DOWNLOAD || s->op.kind == KIND_DIRENTS)
        give_credit(&s->op, time_mono_ms());
}

ssize_t agent_fs_stream_read(struct agent_fs_stream *s, void *buf, size_t len, int64_t deadline_ms,
                             struct nerr *e)
{
    struct agent_fs_op *o = &s->op;
    size_t n;
    int r;

    if (o->kind != KIND_DOWNLOAD)
        return nerr_set(e, -EINVAL, "not a file download");
    r = lock_readable(o, deadline_ms, e);
    if (r <= 0)
        return r;
    n = MIN(len, o->tail - o->head);
    memcpy(buf, o->buf + o->head, n);
    consumed_unlock(o, n, deadline_ms);
    return (ssize_t)n;
}

int agent_fs_stream_next_dirent(struct agent_fs_stream *s, char name[AP_FS_NAME_MAX + 1],
                                struct ap_fs_attr *attr, int64_t deadline_ms, struct nerr *e)
{
    struct agent_fs_op *o = &s->op;
    size_t off = 0;
    int r;

    if (o->kind != KIND_DIRENTS)
        return nerr_set(e, -EINVAL, "not a directory listing");
    r = lock_readable(o, deadline_ms, e);
    if (r <= 0)
        return r;
    /* checked whole when it came (take_dirents): cannot fail here */
    r = ap_fs_dirent_next(o->buf + o->head, o->tail - o->head, &off, name, attr);
    if (r != 1) {
        pthread_mutex_unlock(&o->c->lock);
        return -EIO;
    }
    consumed_unlock(o, off, deadline_ms);
    return 1;
}

static bool has_credit(const struct agent_fs_op *o)
{
    return o->credit > 0;
}

int agent_fs_stream_write(struct agent_fs_stream *s, const void *data, size_t len,
                          int64_t deadline_ms, struct nerr *e)
{
    struct agent_fs_op *o = &s->op;
    struct agent_conn *c = o->c;
    const uint8_t *p = data;

    if (o->kind != KIND_UPLOAD)
        return nerr_set(e, -EINVAL, "not a file upload");
    while (len > 0) {
        size_t n;
        int r;

        pthread_mutex_lock(&c->lock);
        if (!op_wait_locked(o, has_credit, deadline_ms)) {
            pthread_mutex_unlock(&c->lock);
            return nerr_set(e, -ETIMEDOUT, "the guest did not take the file's bytes in time");
        }
        if (o->done) {
            /* the agent gave up on the file (or, wrongly, ended it early) */
            r = o->err ? op_error_locked(o, e)
                       : nerr_set(e, -EIO, "the guest agent ended the upload early");
            pthread_mutex_unlock(&c->lock);
            return r;
        }
        if (c->broken) {
            pthread_mutex_unlock(&c->lock);
            return op_lost(o, e);
        }
        n = MIN(len, MIN((size_t)o->credit, (size_t)AP_FS_CHUNK_MAX));
        o->credit -= (uint32_t)n;
        pthread_mutex_unlock(&c->lock);
        r = agent_conn_send(c, AP_FS_DATA, o->stream, p, n, deadline_ms);
        if (r == -ETIMEDOUT)
            return nerr_set(e, -ETIMEDOUT, "the guest did not take the file's bytes in time");
        if (r < 0)
            return op_lost(o, e);
        p += n;
        len -= n;
    }
    return 0;
}

int agent_fs_stream_finish(struct agent_fs_stream *s, int64_t deadline_ms, uint64_t *ret_count,
                           struct nerr *e)
{
    struct agent_fs_op *o = &s->op;
    struct agent_conn *c = o->c;
    bool done;
    int r;

    if (o->kind != KIND_UPLOAD)
        return nerr_set(e, -EINVAL, "not a file upload");
    pthread_mutex_lock(&c->lock);
    done = o->done;
    pthread_mutex_unlock(&c->lock);
    if (!done) {
        r = agent_conn_send(c, AP_FS_DATA, o->stream, NULL, 0, deadline_ms);
        if (r == -ETIMEDOUT)
            return nerr_set(e, -ETIMEDOUT, "the guest did not take the end of the file in time");
        if (r < 0)
            return op_lost(o, e);
    }
    pthread_mutex_lock(&c->lock);
    if (!op_wait_locked(o, NULL, deadline_ms))
        r = op_timeout(o, e);
    else if (o->done && o->err)
        r = op_error_locked(o, e);
    else if (!o->done)
        r = op_lost(o, e);
    else {
        *ret_count = o->count;
        r = 0;
    }
    pthread_mutex_unlock(&c->lock);
    return r;
}

void agent_fs_stream_free(struct agent_fs_stream *s)
{
    struct agent_conn *c;

    if (!s)
        return;
    c = s->op.c;
    op_finish(&s->op);
    agent_conn_unref(c);
    free(s->op.buf);
    free(s);
}
