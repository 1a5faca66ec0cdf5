/* ws_exec.c — GET /v1/vms/{name}/exec over WebSocket (DESIGN.md §4).
 *
 * The first client message is the exec request (text, the POST body's
 * JSON).  Then three threads per session:
 *   - the session thread receives: stdin (0x03; [0x03] alone = EOF) is
 *     queued for the stdin thread, resize (0x04 {"cols","rows"}) goes to
 *     the command; a close or a lost connection kills it;
 *   - the sender takes output chunks queued by the agent's reader thread
 *     and sends them as 0x01/0x02 frames, reporting each chunk delivered
 *     (which reopens the command's output window in the guest), and at the
 *     end sends the result (or an error) and the close;
 *   - the waiter waits for the command's end (and, while it is silent,
 *     checks the agent still answers);
 *   - the stdin thread hands what the client sent to the command, waiting
 *     for the guest as long as it takes, so the receiver never does.
 * Lock: exec_session.lock guards the queue and the flags; no I/O under it. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "api.h"
#include "log.h"
#include "macro.h"
#include "timeutil.h"
#include "wire.h"
#include "ws_session.h"

/* How long the client has to send its exec request after the upgrade. */
#define EXEC_WS_REQUEST_TIMEOUT_MS 30000
/* Output queued for a slow client when the guest's agent cannot hold it
 * back (older agents have no output window); beyond it the exec fails. */
#define EXEC_WS_MAX_QUEUED    (64u * 1024 * 1024)
#define EXEC_WS_WAIT_SLICE_MS 1000
/* stdin received from the client and not yet taken by the command; while
 * it is full the receiver waits (the client is slowed by TCP), watching
 * the connection so a client that leaves is still noticed. */
#define EXEC_WS_STDIN_QUEUE   (1u * 1024 * 1024)
#define EXEC_WS_STDIN_WAIT_MS 200

enum { CH_STDOUT = 0x01, CH_STDERR = 0x02, CH_STDIN = 0x03, CH_RESIZE = 0x04 };

struct out_chunk {
    struct out_chunk *next;
    size_t len;      /* payload bytes (after the channel byte) */
    uint8_t frame[]; /* channel byte + payload */
};

struct exec_session {
    struct api_ws_session *ws;
    struct engine_exec_stream *stream;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct out_chunk *head, *tail; /* (lock) */
    size_t queued;                 /* (lock) payload bytes */
    bool overflow;                 /* (lock) */
    bool done;                     /* (lock) the waiter finished */
    int done_r;                    /* (lock) 1 ended, < 0 error */
    struct wire_exec_result result;
    struct nerr err;
    bool client_gone; /* (lock) receiving ended: close, error, shutdown */
    /* stdin on its way to the command (the stdin thread writes it, so the
     * receiver never waits for the guest and always sees the client) */
    struct buf stdin_q; /* (lock) */
    bool stdin_eof;     /* (lock) the client sent end-of-stdin */
    bool stdin_done;    /* (lock) the stdin thread is finished */
};

static void on_output(void *user, bool is_stderr, const uint8_t *data, size_t len)
{
    struct exec_session *x = user;
    struct out_chunk *c;

    pthread_mutex_lock(&x->lock);
    if (x->overflow || x->client_gone)
        goto out;
    if (x->queued + len > EXEC_WS_MAX_QUEUED) {
        x->overflow = true;
        goto out;
    }
    c = malloc(sizeof(*c) + 1 + len);
    if (!c) {
        x->overflow = true;
        goto out;
    }
    c->next = NULL;
    c->len = len;
    c->frame[0] = is_stderr ? CH_STDERR : CH_STDOUT;
    memcpy(c->frame + 1, data, len);
    if (x->tail)
        x->tail->next = c;
    else
        x->head = c;
    x->tail = c;
    x->queued += len;
out:
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
}

static void *waiter_main(void *arg)
{
    struct exec_session *x = arg;
    struct wire_exec_result res;
    struct nerr e = {0};
    int r;

    for (;;) {
        pthread_mutex_lock(&x->lock);
        bool gone = x->client_gone;
        pthread_mutex_unlock(&x->lock);
        if (gone)
            return NULL;
        r = engine_exec_stream_wait(x->stream, EXEC_WS_WAIT_SLICE_MS, &res, &e);
        if (r != 0)
            break;
    }
    pthread_mutex_lock(&x->lock);
    x->done = true;
    x->done_r = r;
    if (r > 0)
        x->result = res;
    else
        x->err = e;
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
    return NULL;
}

/* Close (or fail) from the sender, then give the receiver a moment for the
 * client's close before cutting the connection. */
static void sender_close(struct exec_session *x, uint16_t code, const char *reason)
{
    struct timespec until = time_mono_timespec(time_mono_ms() + API_WS_CLOSE_WAIT_MS);

    ws_close(x->ws->ws, code, reason, API_WS_CLOSE_WAIT_MS);
    pthread_mutex_lock(&x->lock);
    while (!x->client_gone &&
           pthread_cond_clockwait(&x->cond, &x->lock, CLOCK_MONOTONIC, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&x->lock);
    shutdown(x->ws->fd, SHUT_RDWR);
}

static void sender_error(struct exec_session *x, uint16_t code, const char *msg)
{
    log_info("ws exec %s/%s: %s", x->ws->user.name, x->ws->vm_name, msg);
    api_ws_send_json(x->ws, wire_error_encode(msg));
    sender_close(x, code, code == WS_CLOSE_GOING_AWAY ? "server shutting down" : "error");
}

static void *sender_main(void *arg)
{
    struct exec_session *x = arg;
    struct api_ws_session *s = x->ws;

    pthread_mutex_lock(&x->lock);
    for (;;) {
        if (x->client_gone)
            break;
        if (x->head) {
            struct out_chunk *c = x->head;
            x->head = c->next;
            if (!x->head)
                x->tail = NULL;
            x->queued -= c->len;
            pthread_mutex_unlock(&x->lock);
            int r = ws_send(s->ws, WS_OP_BINARY, c->frame, c->len + 1,
                            (int)MIN(s->send_timeout_ms, INT_MAX));
            if (r >= 0)
                engine_exec_stream_output_done(x->stream, c->len);
            free(c);
            pthread_mutex_lock(&x->lock);
            if (r < 0) {
                /* the client is gone or stalled past the timeout */
                x->client_gone = true;
                pthread_cond_broadcast(&x->cond);
                shutdown(s->fd, SHUT_RDWR);
                break;
            }
            continue;
        }
        if (x->overflow) {
            pthread_mutex_unlock(&x->lock);
            sender_error(x, WS_CLOSE_INTERNAL,
                         "the client did not keep up with the output and the guest's agent is "
                         "too old to hold it back; the command was stopped");
            pthread_mutex_lock(&x->lock);
            break;
        }
        if (x->done) {
            pthread_mutex_unlock(&x->lock);
            if (x->done_r > 0) {
                api_ws_send_json(s, wire_exec_result_encode(&x->result));
                sender_close(x, WS_CLOSE_NORMAL, "exec finished");
            } else {
                sender_error(x, WS_CLOSE_INTERNAL, nerr_msg(&x->err));
            }
            pthread_mutex_lock(&x->lock);
            break;
        }
        if (api_ws_stopping(s)) {
            pthread_mutex_unlock(&x->lock);
            sender_error(x, WS_CLOSE_GOING_AWAY,
                         "the server is shutting down; the command was stopped");
            pthread_mutex_lock(&x->lock);
            break;
        }
        struct timespec until = time_mono_timespec(time_mono_ms() + EXEC_WS_WAIT_SLICE_MS);
        /* (credit that could not go out earlier is offered again by
         * engine_exec_stream_wait, on the waiter thread) */
        pthread_cond_clockwait(&x->cond, &x->lock, CLOCK_MONOTONIC, &until);
    }
    pthread_mutex_unlock(&x->lock);
    return NULL;
}

static void *stdin_main(void *arg)
{
    struct exec_session *x = arg;
    struct nerr e = {0};

    pthread_mutex_lock(&x->lock);
    for (;;) {
        if (x->client_gone || x->done)
            break;
        if (x->stdin_q.len > 0) {
            size_t n;
            uint8_t *data = (uint8_t *)buf_steal(&x->stdin_q, &n);
            pthread_cond_broadcast(&x->cond); /* room for the receiver */
            pthread_mutex_unlock(&x->lock);
            /* returns early when the command ends or is killed */
            if (data)
                engine_exec_stream_stdin(x->stream, data, n, &e);
            free(data);
            pthread_mutex_lock(&x->lock);
            continue;
        }
        if (x->stdin_eof) {
            pthread_mutex_unlock(&x->lock);
            engine_exec_stream_stdin_close(x->stream, &e);
            pthread_mutex_lock(&x->lock);
            break;
        }
        pthread_cond_wait(&x->cond, &x->lock);
    }
    x->stdin_done = true;
    pthread_mutex_unlock(&x->lock);
    return NULL;
}

/* Whether the client's side of the connection is closed or broken (a
 * close frame we have not read yet is seen later, by the receiver). */
static bool client_hung_up(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};

    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

/* Queue stdin bytes for the stdin thread, waiting for room while the
 * command is slow to read; dropped once the command has ended.  -EPIPE
 * when the client is gone or the server stops. */
static int stdin_queue(struct exec_session *x, const uint8_t *data, size_t len)
{
    int r = 0;

    pthread_mutex_lock(&x->lock);
    for (;;) {
        if (x->client_gone) {
            r = -EPIPE;
            break;
        }
        /* the command ended (or stopped taking stdin): its stdin goes
         * nowhere, and the session carries on to send the result */
        if (x->done || x->stdin_done)
            goto out;
        if (x->stdin_q.len == 0 || x->stdin_q.len + len <= EXEC_WS_STDIN_QUEUE)
            break;
        struct timespec until = time_mono_timespec(time_mono_ms() + EXEC_WS_STDIN_WAIT_MS);
        if (pthread_cond_clockwait(&x->cond, &x->lock, CLOCK_MONOTONIC, &until) == ETIMEDOUT) {
            pthread_mutex_unlock(&x->lock);
            bool gone = client_hung_up(x->ws->fd) || api_ws_stopping(x->ws);
            pthread_mutex_lock(&x->lock);
            if (gone) {
                r = -EPIPE;
                break;
            }
        }
    }
    if (r == 0 && buf_append(&x->stdin_q, data, len) < 0)
        r = -ENOMEM;
out:
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
    return r;
}

/* The first message: the exec request.  0, or the session was failed. */
static int read_request(struct api_ws_session *s, struct wire_exec_req *req)
{
    struct ws_message m;
    json_object *o = NULL;
    struct nerr e = {0};
    int r = ws_receive_wait(s->ws, &m, EXEC_WS_REQUEST_TIMEOUT_MS);

    if (r == 0) {
        api_ws_fail(s, WS_CLOSE_POLICY, "no exec request within %d s",
                    EXEC_WS_REQUEST_TIMEOUT_MS / 1000);
        return -ETIMEDOUT;
    }
    if (r < 0)
        return r; /* closed, or a protocol error already answered */
    if (m.opcode != WS_OP_TEXT) {
        api_ws_fail(s, WS_CLOSE_POLICY, "the first message must be the exec request as JSON text");
        return -EINVAL;
    }
    r = wire_parse_object((const char *)m.data, m.len, &o, &e);
    if (r >= 0)
        r = wire_exec_req_decode(o, req, &e);
    json_object_put(o);
    if (r < 0) {
        api_ws_fail(s, WS_CLOSE_POLICY, "bad exec request: %s", nerr_msg(&e));
        return r;
    }
    return 0;
}

/* A client message during the command.  < 0 ends the session. */
static int handle_message(struct exec_session *x, const struct ws_message *m, bool *stdin_closed)
{
    if (m->opcode != WS_OP_BINARY || m->len == 0)
        return 0; /* nothing else is defined: ignored */
    switch (m->data[0]) {
    case CH_STDIN:
        if (*stdin_closed)
            return 0;
        if (m->len == 1) {
            *stdin_closed = true;
            pthread_mutex_lock(&x->lock);
            x->stdin_eof = true;
            pthread_cond_broadcast(&x->cond);
            pthread_mutex_unlock(&x->lock);
            return 0;
        }
        return stdin_queue(x, m->data + 1, m->len - 1) == -EPIPE ? -EPIPE : 0;
    case CH_RESIZE: {
        json_object *o = NULL, *v;
        long long cols = 0, rows = 0;
        if (wire_parse_object((const char *)m->data + 1, m->len - 1, &o, NULL) >= 0) {
            if (json_object_object_get_ex(o, "cols", &v) && json_object_is_type(v, json_type_int))
                cols = json_object_get_int64(v);
            if (json_object_object_get_ex(o, "rows", &v) && json_object_is_type(v, json_type_int))
                rows = json_object_get_int64(v);
        }
        json_object_put(o);
        if (cols > 0 && rows > 0 && cols <= WIRE_MAX_TTY_SIDE && rows <= WIRE_MAX_TTY_SIDE)
            engine_exec_stream_resize(x->stream, (unsigned)cols, (unsigned)rows);
        return 0;
    }
    default:
        return 0;
    }
}

static void exec_body(struct api_ws_session *s)
{
    struct exec_session x = {.ws = s};
    struct engine_exec_events ev = {on_output, &x};
    struct wire_exec_req req = {0};
    struct nerr e = {0};
    pthread_t sender, waiter, stdin_thread;
    bool have_sender = false, have_waiter = false, have_stdin = false, stdin_closed = false;
    int r;

    pthread_mutex_init(&x.lock, NULL);
    buf_init(&x.stdin_q, EXEC_WS_STDIN_QUEUE + API_WS_MAX_MESSAGE);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&x.cond, &ca);
        pthread_condattr_destroy(&ca);
    }
    if (read_request(s, &req) < 0)
        goto out;
    r = engine_exec_stream_start(s->srv->eng, &s->user, s->vm_name, &req, &ev, &x.stream, &e);
    if (r < 0) {
        api_ws_fail(s, r == -EINVAL ? WS_CLOSE_POLICY : WS_CLOSE_INTERNAL, "%s",
                    nerr_msg(&e)[0] ? nerr_msg(&e) : strerror(-r));
        goto out;
    }
    s->send_timeout_ms =
        MAX((long long)API_WS_SEND_TIMEOUT_MS,
            (req.has_timeout_secs ? req.timeout_secs : s->srv->cfg->exec_timeout_secs) * 1000 +
                API_WS_SEND_TIMEOUT_MS);
    have_waiter = pthread_create(&waiter, NULL, waiter_main, &x) == 0;
    have_stdin = have_waiter && pthread_create(&stdin_thread, NULL, stdin_main, &x) == 0;
    have_sender = have_stdin && pthread_create(&sender, NULL, sender_main, &x) == 0;
    if (!have_sender) {
        pthread_mutex_lock(&x.lock);
        x.client_gone = true;
        pthread_mutex_unlock(&x.lock);
        api_ws_fail(s, WS_CLOSE_INTERNAL, "cannot start the session's threads");
        goto out;
    }
    for (;;) {
        struct ws_message m;
        r = ws_receive_wait(s->ws, &m, -1);
        if (r < 0)
            break;
        if (r > 0 && handle_message(&x, &m, &stdin_closed) < 0)
            break;
    }
    if (r == -ESHUTDOWN && have_sender) {
        /* the server stops: the sender tells the client and closes (1001) */
        pthread_join(sender, NULL);
        have_sender = false;
    }
out:
    pthread_mutex_lock(&x.lock);
    bool finished = x.done;
    x.client_gone = true;
    pthread_cond_broadcast(&x.cond);
    pthread_mutex_unlock(&x.lock);
    /* the client went away first: kill now rather than after the waiter's
     * slice (the waiter then sees the end at once) */
    if (!finished && x.stream)
        engine_exec_stream_kill(x.stream);
    if (have_sender)
        pthread_join(sender, NULL);
    if (have_waiter)
        pthread_join(waiter, NULL);
    if (have_stdin)
        pthread_join(stdin_thread, NULL); /* the kill or the end let it return */
    /* a command still running is killed with its process group */
    engine_exec_stream_free(x.stream);
    while (x.head) {
        struct out_chunk *c = x.head;
        x.head = c->next;
        free(c);
    }
    wire_exec_req_free(&req);
    buf_free(&x.stdin_q);
    pthread_cond_destroy(&x.cond);
    pthread_mutex_destroy(&x.lock);
}

void api_get_exec_ws(struct api_request *rq, char **params)
{
    struct wire_vm_info info = {0};

    /* the answers that need no upgrade come as plain HTTP errors */
    if (api_ws_vm_runs(rq, params[0], &info))
        api_ws_upgrade(rq, "exec", params[0], exec_body, 0);
    wire_vm_info_free(&info);
}
