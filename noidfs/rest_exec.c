/* rest_exec.c — the REST binding's exec: GET /v1/vms/{name}/exec over
 * WebSocket (docs/api.md), `/bin/sh -c LINE` with stdin /dev/null.
 *
 * The connection and the request are made by the caller of exec_start (so
 * "no such VM" and "not running" come back from it); then one thread per
 * exec owns the ws_client (it is not thread-safe): it hands output to the
 * sink, records the result and watches that the server is still there.
 * Other threads reach it through noidfs_exec.lock and an eventfd.
 *
 * Flow control: once REST_EXEC_WINDOW bytes are handed to on_output and
 * not yet acknowledged (exec_output_done), the thread stops reading the
 * socket; TCP then holds back the server, whose per-command output window
 * holds back the command in the guest. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "macro.h"
#include "rest-internal.h"
#include "timeutil.h"
#include "wire.h"

/* Output handed to on_output and not yet acknowledged by exec_output_done;
 * past it the socket is not read. */
#define REST_EXEC_WINDOW (1u * 1024 * 1024)
/* The longest a running exec may leave the socket silent: the server's
 * exec timeout plus this margin (it ends every command by then); while the
 * timeout is unknown, REST_EXEC_IDLE_DEFAULT_MS. */
#define REST_EXEC_IDLE_MARGIN_MS  30000
#define REST_EXEC_IDLE_DEFAULT_MS (3600 * 1000)
/* A silent WebSocket is pinged after REST_WS_PING_IDLE_MS; a server that
 * sends no byte within REST_WS_PONG_TIMEOUT_MS of the ping hangs. */
#define REST_WS_PING_IDLE_MS    5000
#define REST_WS_PONG_TIMEOUT_MS 10000
/* exec_wait's status for a command ended by exec_kill: closing the
 * WebSocket makes the server kill it (SIGKILL, its process group). */
#define REST_EXEC_KILLED_STATUS (128 + SIGKILL)

struct noidfs_exec {
    struct ws_client *wc; /* the thread's, once it runs */
    struct noidfs_exec_sink sink;
    int64_t idle_ms;
    int wake_fd; /* eventfd: kill, or the window reopened */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* done */
    size_t unacked;      /* (lock) handed to on_output, not acknowledged */
    bool stalled;        /* (lock) the thread waits for acknowledgements */
    bool kill;           /* (lock) */
    bool done;           /* (lock) the outcome is known */
    int end_r;           /* (lock) 1 ended with status, < 0 failed */
    int status;          /* (lock) */
    struct nerr err;     /* (lock) */
};

/* The server's exec timeout tells how long a command may stay silent. */
static int64_t exec_idle_ms(struct noidfs_rest *b)
{
    struct wire_capabilities caps = {0};
    json_object *o = NULL;
    int64_t ms;

    pthread_mutex_lock(&b->lock);
    ms = b->exec_idle_ms;
    pthread_mutex_unlock(&b->lock);
    if (ms > 0)
        return ms;
    if (rest_call_json(b, "GET", "/v1/capabilities", NULL, REST_TIMEOUT_MS, json_type_object, &o,
                       NULL) < 0 ||
        wire_capabilities_decode(o, &caps, NULL) < 0 || caps.exec_timeout_secs <= 0) {
        json_object_put(o);
        return REST_EXEC_IDLE_DEFAULT_MS;
    }
    json_object_put(o);
    ms = (int64_t)MIN(caps.exec_timeout_secs, 7LL * 24 * 3600) * 1000 + REST_EXEC_IDLE_MARGIN_MS;
    pthread_mutex_lock(&b->lock);
    b->exec_idle_ms = ms;
    pthread_mutex_unlock(&b->lock);
    return ms;
}

/* Record the outcome (the first one wins) and wake exec_wait. */
static void exec_finish(struct noidfs_exec *x, int r, int status, const struct nerr *err)
{
    pthread_mutex_lock(&x->lock);
    if (!x->done) {
        x->done = true;
        x->end_r = r;
        x->status = status;
        if (err)
            x->err = *err;
        pthread_cond_broadcast(&x->cond);
    }
    pthread_mutex_unlock(&x->lock);
}

/* The result message: 1 and *status, or -EIO and err for anything else. */
static int exec_parse_result(const struct ws_message *m, int *status, char *error, size_t size)
{
    struct wire_exec_result res = {0};
    json_object *o = NULL, *v;
    int r = 0;

    if (wire_parse_object((const char *)m->data, m->len, &o, NULL) < 0)
        return 0; /* not ours to understand (a newer server) */
    if (json_object_object_get_ex(o, "error", &v)) {
        snprintf(error, size, "%s", json_object_get_string(v));
        r = -EIO;
    } else if (json_object_object_get_ex(o, "exit_code", &v) &&
               wire_exec_result_decode(o, &res, NULL) == 0) {
        *status = res.timed_out ? 124 : (int)(res.exit_code & 0xff);
        r = 1;
    }
    wire_exec_result_free(&res);
    json_object_put(o);
    return r;
}

/* The connection ended (ws_receive's r < 0) before the result: why. */
static void exec_lost(struct noidfs_exec *x, struct ws *ws, int r, const char *error)
{
    struct nerr e = {0};
    const char *reason = "";
    uint16_t code;

    switch (r) {
    case -ECONNRESET:
        code = ws_peer_close(ws, &reason);
        if (code == WS_CLOSE_GOING_AWAY)
            nerr_set(&e, -ENOTCONN, "the server went away: %s",
                     error[0] ? error : (*reason ? reason : "no reason given"));
        else if (error[0])
            nerr_set(&e, strstr(error, "not running") ? -ESRCH : -EIO, "%s", error);
        else
            nerr_set(&e, -EIO,
                     "the server ended the session before the command finished (close code "
                     "%u%s%s)",
                     code, *reason ? ": " : "", reason);
        break;
    case -EPROTO:
        nerr_set(&e, -EIO, "the server broke the WebSocket protocol (we closed with %u)",
                 ws_sent_close_code(ws));
        break;
    default:
        nerr_set(&e, -ENOTCONN, "the connection to the server was lost%s%s: %s",
                 error[0] ? " after: " : "", error, strerror(-r));
        break;
    }
    exec_finish(x, e.code, 0, &e);
}

/* Whether a server that sends nothing is still there: after
 * REST_WS_PING_IDLE_MS of silence we ping; the server's receiver answers at
 * once, so when no byte at all arrives within REST_WS_PONG_TIMEOUT_MS it is
 * hung (a stopped one closes the socket, which ws_receive reports). */
struct liveness {
    int64_t ping_due;      /* when to ping, while pong_deadline is 0 */
    int64_t pong_deadline; /* 0 when no ping is unanswered */
};

static void liveness_alive(struct liveness *l)
{
    l->ping_due = time_mono_ms() + REST_WS_PING_IDLE_MS;
    l->pong_deadline = 0;
}

static int64_t liveness_next(const struct liveness *l)
{
    return l->pong_deadline ? l->pong_deadline : l->ping_due;
}

/* Ping when due; -ETIMEDOUT when the last ping went unanswered. */
static int liveness_check(struct liveness *l, struct ws *ws)
{
    int64_t now = time_mono_ms();

    if (l->pong_deadline)
        return now >= l->pong_deadline ? -ETIMEDOUT : 0;
    if (now < l->ping_due)
        return 0;
    l->pong_deadline = now + REST_WS_PONG_TIMEOUT_MS;
    /* a failed send is seen by the next receive */
    (void)ws_send(ws, WS_OP_PING, "", 0, REST_WS_SEND_MS);
    return 0;
}

static void exec_fail(struct noidfs_exec *x, int code, const char *fmt, ...) _printf_(3, 4);

static void exec_fail(struct noidfs_exec *x, int code, const char *fmt, ...)
{
    struct nerr e = {.code = code};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
    va_end(ap);
    exec_finish(x, code, 0, &e);
}

static void *exec_main(void *arg)
{
    struct noidfs_exec *x = arg;
    struct ws *ws = ws_client_ws(x->wc);
    int wsfd = ws_client_fd(x->wc);
    int64_t idle_deadline = time_mono_ms() + x->idle_ms;
    char error[NERR_MSG_MAX] = "";
    struct liveness live;
    int status = 0;

    liveness_alive(&live);
    for (;;) {
        struct ws_message m;
        bool kill, stalled;
        int r;

        pthread_mutex_lock(&x->lock);
        kill = x->kill;
        stalled = x->stalled = x->unacked >= REST_EXEC_WINDOW;
        pthread_mutex_unlock(&x->lock);
        if (kill) {
            /* the server kills the command when the socket closes */
            rest_ws_close_politely(ws, "killed");
            exec_finish(x, 1, REST_EXEC_KILLED_STATUS, NULL);
            break;
        }
        if (stalled) {
            /* time spent waiting for the reader is not the server's */
            idle_deadline = time_mono_ms() + x->idle_ms;
            liveness_alive(&live);
        } else {
            r = ws_receive(ws, &m);
            if (r < 0) {
                exec_lost(x, ws, r, error);
                break;
            }
            if (r > 0) {
                idle_deadline = time_mono_ms() + x->idle_ms;
                if (m.opcode == WS_OP_BINARY && m.len > 1 &&
                    (m.data[0] == REST_CH_STDOUT || m.data[0] == REST_CH_STDERR)) {
                    /* counted first: on_output may acknowledge at once */
                    pthread_mutex_lock(&x->lock);
                    x->unacked += m.len - 1;
                    pthread_mutex_unlock(&x->lock);
                    x->sink.on_output(x->sink.user, m.data[0] == REST_CH_STDERR, m.data + 1,
                                      m.len - 1);
                } else if (m.opcode == WS_OP_TEXT &&
                           exec_parse_result(&m, &status, error, sizeof(error)) > 0) {
                    /* all output came before the result */
                    exec_finish(x, 1, status, NULL);
                    rest_ws_close_politely(ws, "");
                    break;
                }
                continue;
            }
            if (liveness_check(&live, ws) < 0) {
                exec_fail(x, -ETIMEDOUT, "the server does not answer (no reply to a ping in %d s)",
                          REST_WS_PONG_TIMEOUT_MS / 1000);
                break;
            }
            if (time_mono_ms() >= idle_deadline) {
                exec_fail(x, -ETIMEDOUT,
                          "the server sent nothing for %lld s, past its exec timeout",
                          (long long)(x->idle_ms / 1000));
                break;
            }
        }

        struct pollfd p[2] = {{.fd = x->wake_fd, .events = POLLIN},
                              {.fd = stalled ? -1 : wsfd, .events = POLLIN}};
        r = poll(p, 2, stalled ? -1 : time_left_ms(MIN(idle_deadline, liveness_next(&live))));
        if (r < 0 && errno != EINTR) {
            exec_fail(x, -errno, "poll failed: %s", strerror(errno));
            break;
        }
        if (r > 0 && p[0].revents)
            rest_efd_drain(x->wake_fd);
        if (r > 0 && p[1].revents)
            liveness_alive(&live); /* any byte (a pong too) shows it is there */
    }
    return NULL;
}

static void exec_destroy(struct noidfs_exec *x)
{
    ws_client_free(x->wc);
    if (x->wake_fd >= 0)
        close(x->wake_fd);
    pthread_cond_destroy(&x->cond);
    pthread_mutex_destroy(&x->lock);
    free(x);
}

int rest_exec_start(void *bp, const char *user, const char *vm, const char *command_line,
                    const struct noidfs_exec_sink *sink, struct noidfs_exec **ret, struct nerr *e)
{
    struct noidfs_rest *b = bp;
    _cleanup_free_ char *path = NULL;
    const char *argv[] = {"/bin/sh", "-c", command_line};
    struct wire_exec_req req = {
        .command = (char **)argv,
        .ncommand = ARRAY_SIZE(argv),
        .has_stdin_open = true,
        .stdin_open = false,
    };
    struct noidfs_exec *x;
    json_object *o;
    const char *text;
    size_t len;
    int r;

    r = rest_check_vm(vm, e);
    if (r < 0)
        return r;
    if (asprintf(&path, "/v1/vms/%s/exec", vm) < 0) {
        path = NULL;
        return -ENOMEM;
    }
    x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->wake_fd = -1;
    x->sink = *sink;
    pthread_mutex_init(&x->lock, NULL);
    r = rest_cond_init_mono(&x->cond);
    if (r < 0) {
        pthread_mutex_destroy(&x->lock);
        free(x);
        return r;
    }
    x->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (x->wake_fd < 0) {
        r = nerr_set(e, -errno, "eventfd: %m");
        goto fail;
    }
    r = rest_ws_open(b, path, &x->wc, e);
    if (r < 0)
        goto fail;
    x->idle_ms = exec_idle_ms(b);
    o = wire_exec_req_encode(&req);
    text = o ? wire_to_string(o, &len) : NULL;
    r = text ? ws_send(ws_client_ws(x->wc), WS_OP_TEXT, text, len, REST_WS_SEND_MS) : -ENOMEM;
    json_object_put(o);
    if (r < 0) {
        r = nerr_set(e, r == -ENOMEM ? r : -ENOTCONN, "cannot send the exec request: %s",
                     strerror(-r));
        goto fail;
    }
    r = -pthread_create(&x->thread, NULL, exec_main, x);
    if (r < 0) {
        nerr_set(e, r, "cannot start the exec's thread: %s", strerror(-r));
        goto fail;
    }
    *ret = x;
    return 0;
fail:
    exec_destroy(x);
    return r;
}

void rest_exec_output_done(struct noidfs_exec *x, size_t n)
{
    bool wake;

    pthread_mutex_lock(&x->lock);
    x->unacked -= MIN(n, x->unacked);
    wake = x->stalled && x->unacked < REST_EXEC_WINDOW;
    if (wake)
        x->stalled = false;
    pthread_mutex_unlock(&x->lock);
    if (wake)
        rest_efd_signal(x->wake_fd);
}

int rest_exec_wait(struct noidfs_exec *x, int timeout_ms, int *ret_status, struct nerr *e)
{
    struct timespec until = time_mono_timespec(time_mono_ms() + MAX(timeout_ms, 0));
    int r = 0;

    pthread_mutex_lock(&x->lock);
    while (!x->done) {
        if (timeout_ms < 0)
            pthread_cond_wait(&x->cond, &x->lock);
        else if (pthread_cond_clockwait(&x->cond, &x->lock, CLOCK_MONOTONIC, &until) == ETIMEDOUT)
            break;
    }
    if (x->done) {
        r = x->end_r;
        if (r > 0 && ret_status)
            *ret_status = x->status;
        else if (r < 0)
            nerr_set(e, r, "%s", nerr_msg(&x->err));
    }
    pthread_mutex_unlock(&x->lock);
    return r;
}

void rest_exec_kill(struct noidfs_exec *x)
{
    pthread_mutex_lock(&x->lock);
    x->kill = true;
    pthread_mutex_unlock(&x->lock);
    rest_efd_signal(x->wake_fd);
}

void rest_exec_free(struct noidfs_exec *x)
{
    if (!x)
        return;
    /* an exec handed out always has its thread */
    rest_exec_kill(x);
    pthread_join(x->thread, NULL);
    exec_destroy(x);
}
