/* body_stream.c — request bodies handed to a worker thread as they arrive
 * (routes with .streaming_body; see "streaming request bodies" in api.h).
 *
 * Two threads share one struct api_body_stream: libmicrohttpd's epoll
 * thread, which gets the body in pieces in the access handler
 * (api_body_stream_feed) and puts them in a ring buffer, and the route's
 * worker thread, which takes them out (api_body_read).  Neither ever waits
 * for the other on the epoll thread: when the ring is full the epoll side
 * takes what fits and suspends the connection; the worker resumes it once
 * it made room.  The same goes for the two moments the epoll side waits
 * for the handler: after the headers (until api_body_begin or a reply) and
 * after the last byte (until the reply).
 *
 * Suspend and resume both happen under bs->lock, each with the flag
 * `suspended`: a resume is only ever called for a suspend that has
 * happened, and only once.  The connection cannot complete while it is
 * suspended, so a resume never names a finished connection.
 *
 * Ownership: the request has two references while its worker runs, one
 * for libmicrohttpd (dropped by the completion callback) and one for the
 * worker (dropped when the handler returned); the last one frees it.  A
 * client that goes away in the middle of the body completes the request
 * while the worker still runs: api_body_read then returns -ECONNRESET.
 *
 * Lock order: bs->lock, then libmicrohttpd's own locks (inside suspend and
 * resume).  Nothing else is called with bs->lock held. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "api.h"

struct api_body_stream {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* bytes came, the body ended or the client left */
    uint8_t *ring;       /* (lock) API_BODY_STREAM_BUF bytes, from api_body_begin */
    size_t head, len;    /* (lock) where the bytes start, how many there are */
    bool begun;          /* (lock) the handler wants the body */
    bool eof;            /* (lock) all of it is in the ring or taken */
    bool done;           /* (lock) the handler returned; its reply is in rq */
    bool gone;           /* (lock) libmicrohttpd completed the request */
    bool suspended;      /* (lock) we suspended the connection */
    unsigned refs;       /* (lock) libmicrohttpd's, the worker's */
    bool started;        /* epoll thread only: past the headers, body flowing */
};

void api_body_stream_free(struct api_body_stream *bs)
{
    if (!bs)
        return;
    pthread_mutex_destroy(&bs->lock);
    pthread_cond_destroy(&bs->cond);
    free(bs->ring);
    free(bs);
}

/* bs->lock held.  Only from the epoll thread, inside the access handler. */
static void suspend(struct api_request *rq)
{
    rq->body_stream->suspended = true;
    MHD_suspend_connection(rq->conn);
}

/* bs->lock held.  Any thread. */
static void resume(struct api_request *rq)
{
    struct api_body_stream *bs = rq->body_stream;

    if (!bs->suspended)
        return;
    bs->suspended = false;
    MHD_resume_connection(rq->conn);
}

/* Drop a reference; true when it was the last. */
static bool unref(struct api_body_stream *bs)
{
    bool last;

    pthread_mutex_lock(&bs->lock);
    last = --bs->refs == 0;
    pthread_mutex_unlock(&bs->lock);
    return last;
}

static void *stream_worker_main(void *arg)
{
    struct api_request *rq = arg;
    struct api_body_stream *bs = rq->body_stream;
    struct api_server *srv = rq->srv;
    char user_id[DB_ID_LEN + 1];
    bool last;

    snprintf(user_id, sizeof(user_id), "%s", rq->user.id);
    rq->route->fn(rq, rq->params);
    if (!rq->response)
        api_reply_error(rq, 500, "internal error: no reply");
    pthread_mutex_lock(&bs->lock);
    bs->done = true;
    resume(rq);
    last = --bs->refs == 0;
    pthread_mutex_unlock(&bs->lock);
    /* unless the client went away already, rq is libmicrohttpd's again */
    if (last)
        api_request_free(rq);
    api_load_release(srv, user_id);
    return NULL;
}

bool api_body_stream_start(struct api_request *rq)
{
    struct api_body_stream *bs = calloc(1, sizeof(*bs));
    pthread_attr_t attr;
    pthread_t th;
    bool ok;

    if (!bs) {
        api_load_release(rq->srv, rq->user.id);
        api_reply_error(rq, 503, "server busy: out of memory");
        return false;
    }
    pthread_mutex_init(&bs->lock, NULL);
    pthread_cond_init(&bs->cond, NULL);
    bs->refs = 2;
    rq->body_stream = bs;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* suspended before the thread exists: its first resume finds the flag */
    pthread_mutex_lock(&bs->lock);
    suspend(rq);
    ok = pthread_create(&th, &attr, stream_worker_main, rq) == 0;
    if (!ok) {
        resume(rq);
        bs->refs = 1;
        bs->done = true;
    }
    pthread_mutex_unlock(&bs->lock);
    pthread_attr_destroy(&attr);
    if (!ok) {
        api_load_release(rq->srv, rq->user.id);
        api_reply_error(rq, 503, "server busy: cannot start a worker thread");
    }
    return ok;
}

void api_body_begin(struct api_request *rq)
{
    struct api_body_stream *bs = rq->body_stream;
    uint8_t *ring = malloc(API_BODY_STREAM_BUF);

    pthread_mutex_lock(&bs->lock);
    if (!bs->begun) {
        bs->begun = true;
        bs->ring = ring;
        ring = NULL;
        resume(rq);
    }
    pthread_mutex_unlock(&bs->lock);
    free(ring);
}

ssize_t api_body_read(struct api_request *rq, void *buf, size_t len)
{
    struct api_body_stream *bs = rq->body_stream;
    size_t n = 0;

    api_body_begin(rq);
    if (!bs->ring)
        return -ENOMEM; /* begun by us just now: the field is ours to read */
    pthread_mutex_lock(&bs->lock);
    while (bs->len == 0 && !bs->eof && !bs->gone) {
        struct timespec ts;

        /* a client that trickles its body must not hold a shutdown:
         * look at the server's stopping flag every second */
        if (__atomic_load_n(&rq->srv->stopping, __ATOMIC_ACQUIRE)) {
            pthread_mutex_unlock(&bs->lock);
            return -ESHUTDOWN;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&bs->cond, &bs->lock, &ts);
    }
    if (bs->gone) {
        pthread_mutex_unlock(&bs->lock);
        return -ECONNRESET;
    }
    while (n < len && bs->len > 0) {
        size_t chunk = MIN(MIN(len - n, bs->len), API_BODY_STREAM_BUF - bs->head);
        memcpy((uint8_t *)buf + n, bs->ring + bs->head, chunk);
        bs->head = (bs->head + chunk) % API_BODY_STREAM_BUF;
        bs->len -= chunk;
        n += chunk;
    }
    /* room made: let the rest of the body come */
    resume(rq);
    pthread_mutex_unlock(&bs->lock);
    return (ssize_t)n;
}

/* bs->lock held: copy what fits into the ring; the number of bytes taken. */
static size_t ring_put(struct api_body_stream *bs, const char *data, size_t size)
{
    size_t n = 0;

    while (n < size && bs->len < API_BODY_STREAM_BUF) {
        size_t tail = (bs->head + bs->len) % API_BODY_STREAM_BUF;
        size_t chunk = MIN(size - n, API_BODY_STREAM_BUF - bs->len);
        chunk = MIN(chunk, API_BODY_STREAM_BUF - tail);
        memcpy(bs->ring + tail, data + n, chunk);
        bs->len += chunk;
        n += chunk;
    }
    return n;
}

enum MHD_Result api_body_stream_feed(struct api_request *rq, const char *data, size_t *size,
                                     enum MHD_Result (*queue_fn)(struct api_request *rq))
{
    struct api_body_stream *bs = rq->body_stream;

    pthread_mutex_lock(&bs->lock);
    if (!bs->started) {
        /* called again after the headers: resumed by a reply or by
         * api_body_begin.  A reply now goes out before the body, which
         * libmicrohttpd then skips (and closes the connection). */
        if (bs->done) {
            pthread_mutex_unlock(&bs->lock);
            return queue_fn(rq);
        }
        if (!bs->begun) {
            suspend(rq); /* not ours to decide yet */
            pthread_mutex_unlock(&bs->lock);
            return MHD_YES;
        }
        bs->started = true;
        pthread_mutex_unlock(&bs->lock);
        return MHD_YES; /* libmicrohttpd goes on with the body */
    }
    if (*size > 0) {
        size_t n;
        if (bs->done || !bs->ring) {
            /* the handler has replied: the rest of the body is dropped */
            *size = 0;
            pthread_mutex_unlock(&bs->lock);
            return MHD_YES;
        }
        n = ring_put(bs, data, *size);
        *size -= n;
        if (n > 0)
            pthread_cond_signal(&bs->cond);
        if (*size > 0)
            suspend(rq); /* libmicrohttpd keeps the rest for later */
        pthread_mutex_unlock(&bs->lock);
        return MHD_YES;
    }
    /* the whole body is in */
    bs->eof = true;
    pthread_cond_signal(&bs->cond);
    if (bs->done) {
        pthread_mutex_unlock(&bs->lock);
        return queue_fn(rq);
    }
    suspend(rq);
    pthread_mutex_unlock(&bs->lock);
    return MHD_YES;
}

void api_body_stream_gone(struct api_request *rq, bool *ret_done)
{
    struct api_body_stream *bs = rq->body_stream;

    pthread_mutex_lock(&bs->lock);
    bs->gone = true;
    pthread_cond_broadcast(&bs->cond);
    *ret_done = bs->done;
    pthread_mutex_unlock(&bs->lock);
}

bool api_body_stream_unref(struct api_request *rq)
{
    return unref(rq->body_stream);
}
