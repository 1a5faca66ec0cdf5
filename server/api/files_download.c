/* files_download.c — GET and HEAD on a regular guest file: its bytes,
 * whole or one Range of them, streamed from a READ_FILE of the engine.
 *
 * The handler (a worker thread) opens the stream and waits for its first
 * bytes, so a file the guest cannot read is an error status rather than a
 * cut body.  The rest is sent by libmicrohttpd's content reader on an
 * epoll thread, which must never wait for the guest: it takes what the
 * stream holds (engine_file_stream_read with timeout 0) and, when that is
 * nothing, suspends the connection and returns 0 (libmicrohttpd's rule
 * for "no data yet" in internal polling mode: returning 0 without
 * suspending would spin).  The stream's notify callback (the agent
 * reader's thread) resumes it when bytes come.  Server memory per download
 * is the stream's window plus one block.
 *
 * Suspend and resume both happen under d->lock with the flag `suspended`,
 * so a resume always follows its suspend and happens once.  The reader
 * calls the stream without d->lock (the notify callback holds the agent
 * connection's lock when it takes d->lock; the other order would
 * deadlock), so it notes the notify count before it reads and suspends
 * only if no notify came in between.
 *
 * A guest that stops sending would leave the connection suspended for
 * ever (suspended connections never time out), so a helper thread (one
 * per process, started with the first download) resumes downloads
 * suspended for more than ENGINE_FILE_TIMEOUT_MS, or any once the server
 * stops; the reader then ends them (the client sees the connection close
 * before Content-Length bytes).  The same thread frees finished downloads:
 * freeing a stream that has not ended sends a cancel to the guest, which
 * may wait for the agent channel, and that is no job for an epoll thread.
 *
 * Lock order: dl_lock -> d->lock -> libmicrohttpd's locks; the agent
 * connection's lock -> d->lock.  The download keeps its request's worker
 * slot (rq->load_kept) until it is freed, so api_server_stop waits for it. */
#include <errno.h>
#include <string.h>

#include "files.h"
#include "http_range.h"
#include "log.h"
#include "timeutil.h"

struct files_download {
    pthread_mutex_t lock;
    struct engine_file_stream *s;
    struct MHD_Connection *conn;
    struct api_server *srv;
    char user_id[DB_ID_LEN + 1];
    char path[128]; /* for log lines, cut */
    uint8_t *first; /* the bytes the handler waited for */
    size_t first_len, first_off;
    bool to_eof;          /* a file of size 0 (/proc, /sys): its bytes, however many */
    uint64_t notified;    /* (lock) notify calls so far */
    bool suspended;       /* (lock) we suspended the connection */
    int64_t suspended_ms; /* (lock) since when (time_mono_ms) */
    bool stalled;         /* (lock) the watchdog gave up waiting */
    struct files_download *prev, *next; /* (dl_lock) */
};

static pthread_mutex_t dl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dl_cond = PTHREAD_COND_INITIALIZER; /* a download began or ended */
static struct files_download *dl_list;                    /* (dl_lock) running */
static struct files_download *dl_done;                    /* (dl_lock) to free */
static bool dl_helper_running;                            /* (dl_lock) */

static bool server_stopping(const struct api_server *srv)
{
    return __atomic_load_n(&srv->stopping, __ATOMIC_ACQUIRE);
}

/* d->lock held. */
static void resume_locked(struct files_download *d)
{
    if (!d->suspended)
        return;
    d->suspended = false;
    MHD_resume_connection(d->conn);
}

static void download_free(struct files_download *d);

static void *helper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&dl_lock);
    for (;;) {
        struct timespec ts;
        int64_t now;

        while (!dl_list && !dl_done)
            pthread_cond_wait(&dl_cond, &dl_lock);
        while (dl_done) {
            struct files_download *d = dl_done;
            dl_done = d->next;
            pthread_mutex_unlock(&dl_lock);
            download_free(d);
            pthread_mutex_lock(&dl_lock);
        }
        if (!dl_list)
            continue;
        ts = time_mono_timespec(time_mono_ms() + 1000);
        pthread_cond_clockwait(&dl_cond, &dl_lock, CLOCK_MONOTONIC, &ts);
        now = time_mono_ms();
        for (struct files_download *d = dl_list; d; d = d->next) {
            bool waiting;

            pthread_mutex_lock(&d->lock);
            if (d->suspended &&
                (now - d->suspended_ms > ENGINE_FILE_TIMEOUT_MS || server_stopping(d->srv))) {
                d->stalled = true;
                resume_locked(d);
            }
            waiting = d->suspended;
            pthread_mutex_unlock(&d->lock);
            /* credit the epoll thread could not send (a busy channel):
             * without it the guest sends nothing and no notify comes */
            if (waiting)
                engine_file_stream_poke(d->s);
        }
    }
    return NULL;
}

static void dl_register(struct files_download *d)
{
    pthread_mutex_lock(&dl_lock);
    if (!dl_helper_running) {
        pthread_attr_t attr;
        pthread_t th;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        dl_helper_running = pthread_create(&th, &attr, helper_main, NULL) == 0;
        pthread_attr_destroy(&attr);
        if (!dl_helper_running)
            log_warn("cannot start the downloads' helper thread: a stalled guest may hold a "
                     "download until it answers");
    }
    d->next = dl_list;
    if (dl_list)
        dl_list->prev = d;
    dl_list = d;
    pthread_cond_signal(&dl_cond);
    pthread_mutex_unlock(&dl_lock);
}

/* Off the running list; true if the helper thread will free d. */
static bool dl_unregister(struct files_download *d)
{
    bool helper;

    pthread_mutex_lock(&dl_lock);
    if (d->prev)
        d->prev->next = d->next;
    else if (dl_list == d)
        dl_list = d->next;
    if (d->next)
        d->next->prev = d->prev;
    helper = dl_helper_running;
    if (helper) {
        d->next = dl_done;
        dl_done = d;
        pthread_cond_signal(&dl_cond);
    }
    pthread_mutex_unlock(&dl_lock);
    return helper;
}

/* The agent reader's thread, its connection's lock held: quick. */
static void on_stream_notify(void *user)
{
    struct files_download *d = user;

    pthread_mutex_lock(&d->lock);
    d->notified++;
    resume_locked(d);
    pthread_mutex_unlock(&d->lock);
}

/* libmicrohttpd's content reader (an epoll thread). */
static ssize_t read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct files_download *d = cls;
    struct nerr e = {0};
    uint64_t seen;
    ssize_t n;

    (void)pos;
    pthread_mutex_lock(&d->lock);
    if (d->stalled || server_stopping(d->srv)) {
        pthread_mutex_unlock(&d->lock);
        log_warn("download of %s cut: %s", d->path,
                 d->stalled ? "the guest sent nothing in time" : "the server is stopping");
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    pthread_mutex_unlock(&d->lock);
    if (d->first_off < d->first_len) {
        n = (ssize_t)MIN(max, d->first_len - d->first_off);
        memcpy(buf, d->first + d->first_off, (size_t)n);
        d->first_off += (size_t)n;
        return n;
    }
    for (;;) {
        pthread_mutex_lock(&d->lock);
        seen = d->notified;
        pthread_mutex_unlock(&d->lock);
        n = engine_file_stream_read(d->s, buf, max, 0, &e);
        if (n > 0)
            return n;
        if (n == 0 && d->to_eof)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (n == 0) {
            /* READ_FILE had an explicit length: the file shrank */
            log_warn("download of %s cut: the file ended early", d->path);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (n != -EAGAIN) {
            log_warn("download of %s cut: %s", d->path, nerr_msg(&e));
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        pthread_mutex_lock(&d->lock);
        if (d->notified == seen) {
            /* nothing came since the read looked: the next notify resumes */
            d->suspended = true;
            d->suspended_ms = time_mono_ms();
            MHD_suspend_connection(d->conn);
            pthread_mutex_unlock(&d->lock);
            return 0;
        }
        pthread_mutex_unlock(&d->lock); /* bytes came meanwhile: read again */
    }
}

/* Free d, which is on no list (its stream cancelled if not ended). */
static void download_discard(struct files_download *d)
{
    if (!d)
        return;
    engine_file_stream_free(d->s); /* no notify after this */
    pthread_mutex_destroy(&d->lock);
    free(d->first);
    free(d);
}

/* Free a download that ran, and give its worker slot back. */
static void download_free(struct files_download *d)
{
    struct api_server *srv = d->srv;
    char user_id[DB_ID_LEN + 1];

    snprintf(user_id, sizeof(user_id), "%s", d->user_id);
    download_discard(d);
    /* last: once every slot is back, api_server_stop may free srv */
    api_load_release(srv, user_id);
}

/* libmicrohttpd frees the response (an epoll thread): the download is
 * over; the helper thread frees it. */
static void on_response_free(void *cls)
{
    struct files_download *d = cls;

    if (!dl_unregister(d))
        download_free(d);
}

static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls, (void)pos, (void)buf, (void)max;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* Open the READ_FILE of [off, off+len) and wait for its first bytes;
 * len 0: the whole file, to its end, however long (a file whose stat says
 * 0 bytes may have more: /proc, /sys). */
static int download_open(struct api_request *rq, const char *vm, const char *path, uint64_t off,
                         uint64_t len, struct files_download **ret, struct nerr *e)
{
    struct ap_fs_req req = {.op = APO_READ_FILE,
                            .present =
                                1u << APF_PATH | 1u << APF_OFFSET | (len ? 1u << APF_LENGTH : 0),
                            .offset = off,
                            .length = len};
    struct files_download *d = calloc(1, sizeof(*d));
    ssize_t n;
    int r;

    if (!d)
        return -ENOMEM;
    pthread_mutex_init(&d->lock, NULL);
    d->conn = rq->conn;
    d->srv = rq->srv;
    snprintf(d->user_id, sizeof(d->user_id), "%s", rq->user.id);
    snprintf(d->path, sizeof(d->path), "%s", path);
    snprintf(req.path, sizeof(req.path), "%s", path);
    d->first = malloc(FILES_DOWNLOAD_BLOCK);
    if (!d->first) {
        r = -ENOMEM;
        goto fail;
    }
    r = engine_file_stream_open(rq->srv->eng, &rq->user, vm, &req, &d->s, e);
    if (r < 0)
        goto fail;
    engine_file_stream_set_notify(d->s, on_stream_notify, d);
    d->to_eof = len == 0;
    n = engine_file_stream_read(
        d->s, d->first, d->to_eof ? FILES_DOWNLOAD_BLOCK : MIN(len, (uint64_t)FILES_DOWNLOAD_BLOCK),
        -1, e);
    if (n == 0 && !d->to_eof)
        n = nerr_set(e, -EIO, "%s: the file ended before its size", path);
    if (n < 0) {
        r = (int)n;
        goto fail;
    }
    d->first_len = (size_t)n;
    *ret = d;
    return 0;
fail:
    download_discard(d);
    return r;
}

void files_send_file(struct api_request *rq, const char *vm, const char *path,
                     const struct ap_fs_attr *a, bool head)
{
    const char *range = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "Range");
    const char *if_range = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "If-Range");
    enum http_range_result rr = HTTP_RANGE_NONE;
    uint64_t size = a->size, off = 0, len = size;
    struct files_download *d = NULL;
    struct MHD_Response *resp;
    char date[HTTP_DATE_LEN], cr[80];
    struct nerr e = {0};
    unsigned status = 200;
    int r;

    http_date((time_t)a->mtime.sec, date);
    if (range)
        rr = http_range_parse(range, size, &off, &len);
    /* If-Range (a date; we give no ETag): the range holds only while the
     * file is the one the client saw */
    if (rr != HTTP_RANGE_NONE && if_range && strcmp(if_range, date) != 0) {
        rr = HTTP_RANGE_NONE;
        off = 0;
        len = size;
    }
    if (rr == HTTP_RANGE_UNSATISFIABLE) {
        snprintf(cr, sizeof(cr), "bytes */%llu", (unsigned long long)size);
        api_reply_error_hdr(rq, 416, MHD_HTTP_HEADER_CONTENT_RANGE, cr,
                            "%s: the range '%.64s' is outside the file's %llu bytes", path, range,
                            (unsigned long long)size);
        return;
    }
    if (rr == HTTP_RANGE_PARTIAL) {
        status = 206;
        snprintf(cr, sizeof(cr), "bytes %llu-%llu/%llu", (unsigned long long)off,
                 (unsigned long long)(off + len - 1), (unsigned long long)size);
    }
    if (head || (len == 0 && size > 0)) {
        /* Content-Length says len; no body is asked for */
        resp = MHD_create_response_from_callback(len, 1024, no_body, NULL, NULL);
    } else {
        /* size 0 is what /proc and /sys files say whatever they hold:
         * their bytes go out to the end, without a Content-Length */
        r = download_open(rq, vm, path, off, len, &d, &e);
        if (r < 0) {
            files_reply_error(rq, r, &e);
            return;
        }
        resp =
            MHD_create_response_from_callback(size == 0 ? MHD_SIZE_UNKNOWN : len,
                                              FILES_DOWNLOAD_BLOCK, read_body, d, on_response_free);
        if (!resp)
            download_discard(d);
    }
    if (!resp) {
        api_reply_error(rq, 500, "out of memory");
        return;
    }
    if (d) {
        /* from here the response owns d, and d the worker slot */
        rq->load_kept = true;
        dl_register(d);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    if (status == 206)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
    files_add_entry_headers(resp, a);
    if (rq->response) {
        MHD_destroy_response(resp); /* one reply per request (frees d) */
        return;
    }
    rq->response = resp;
    rq->status = status;
}
