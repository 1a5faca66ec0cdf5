/* ws_console.c — GET /v1/vms/{name}/console over WebSocket: an attachment
 * to the VM's console hub (engine_console_*), both ways.
 *
 * Server -> client: a replay of the recent output (so a person sees the
 * prompt; none with ?replay=0), then 0x01 + output as it comes; {"skipped":N} (text) when this
 * client fell behind and N bytes were dropped for it.  Client -> server:
 * 0x03 + typed bytes; 0x04 resize is accepted and ignored (a serial line
 * has no window size).  Closes: 1000 "idle for N s" after
 * console_timeout_secs without traffic either way; 1001 with the reason when
 * the VM stops, is destroyed or restored, or the server shuts down.
 *
 * Two threads: the session thread receives (and watches the idle time);
 * the sender polls the attachment's eventfd and sends.  `lock` guards the
 * shared flags and the last-activity time. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "log.h"
#include "macro.h"
#include "timeutil.h"
#include "wire.h"
#include "ws_session.h"

/* Replayed at attach: enough for the last screenful and the prompt. */
#define CONSOLE_WS_REPLAY (4u * 1024)
#define CONSOLE_WS_CHUNK  (16u * 1024)
/* Typed bytes wait at most this long for room on their way to the guest. */
#define CONSOLE_WS_INPUT_TIMEOUT_MS 10000
#define CONSOLE_WS_TICK_MS          250
/* The kernel's send buffer of a console session (it doubles the value):
 * what a stalled client leaves unread beyond it waits in the attachment's
 * ring, where it is dropped oldest first and counted, instead of piling up
 * in the kernel (on loopback the buffer grows to megabytes by itself). */
#define CONSOLE_WS_SNDBUF (64 * 1024)
/* Output coalescing (see coalesce()): a read less than BURST after the
 * previous one that brought fewer than COALESCE_BYTES waits COALESCE_MS
 * for more before it is sent. */
#define CONSOLE_WS_BURST_NS       (1000 * 1000)
#define CONSOLE_WS_COALESCE_BYTES 4096
#define CONSOLE_WS_COALESCE_MS    2

enum { CH_OUTPUT = 0x01, CH_INPUT = 0x03 };

struct console_session {
    struct api_ws_session *ws;
    struct engine_console *con;
    int stop_fd; /* eventfd: the receiver ended, the sender must too */
    pthread_mutex_t lock;
    int64_t last_activity_ms; /* (lock) */
    bool closed;              /* (lock) a close was sent by the sender */
    int64_t closed_at_ms;     /* (lock) when */
};

static void touch(struct console_session *c)
{
    pthread_mutex_lock(&c->lock);
    c->last_activity_ms = time_mono_ms();
    pthread_mutex_unlock(&c->lock);
}

static int send_skipped(struct console_session *c, uint64_t n)
{
    json_object *o = json_object_new_object();

    if (!o)
        return -ENOMEM;
    json_object_object_add(o, "skipped", json_object_new_int64((int64_t)n));
    return api_ws_send_json(c->ws, o);
}

/* Send the frame's n output bytes; -errno when the client is gone. */
static int send_output(struct console_session *c, uint8_t *frame, size_t n)
{
    int r =
        ws_send(c->ws->ws, WS_OP_BINARY, frame, n + 1, (int)MIN(c->ws->send_timeout_ms, INT_MAX));
    touch(c);
    return r;
}

/* In a burst of output (QEMU's UART hands its socket a few bytes per
 * write), wait a moment and take what came meanwhile into the same frame:
 * one frame per few bytes costs the client and the machine dearly.  A
 * keystroke's echo comes alone, long after the previous read, and goes
 * out at once.  Returns the new length; a skip notice found on the way
 * is sent between the two parts, as it happened. */
static ssize_t coalesce(struct console_session *c, uint8_t *frame, size_t n, int *ret_r)
{
    struct pollfd stop = {.fd = c->stop_fd, .events = POLLIN};
    uint64_t skipped = 0;
    ssize_t more;

    if (poll(&stop, 1, CONSOLE_WS_COALESCE_MS) != 0)
        return (ssize_t)n; /* stopping (or poll failed): send what we have */
    more = engine_console_read(c->con, frame + 1 + n, CONSOLE_WS_CHUNK - n, &skipped);
    if (skipped) {
        /* the skipped bytes came after the first part: keep that order */
        *ret_r = send_output(c, frame, n);
        if (*ret_r >= 0)
            *ret_r = send_skipped(c, skipped);
        if (more > 0)
            memmove(frame + 1, frame + 1 + n, (size_t)more);
        return more > 0 ? more : 0;
    }
    return more > 0 ? (ssize_t)n + more : (ssize_t)n;
}

static void *sender_main(void *arg)
{
    struct console_session *c = arg;
    uint8_t frame[1 + CONSOLE_WS_CHUNK];
    struct pollfd p[2] = {{.fd = engine_console_fd(c->con), .events = POLLIN},
                          {.fd = c->stop_fd, .events = POLLIN}};
    int64_t last_read_ns = 0;

    frame[0] = CH_OUTPUT;
    for (;;) {
        uint64_t skipped = 0;
        ssize_t n = engine_console_read(c->con, frame + 1, CONSOLE_WS_CHUNK, &skipped);
        int r = 0;
        if (skipped)
            r = send_skipped(c, skipped);
        if (n > 0 && r >= 0) {
            int64_t now = time_mono_ns();
            bool burst = now - last_read_ns < CONSOLE_WS_BURST_NS;
            last_read_ns = now;
            if (burst && (size_t)n < CONSOLE_WS_COALESCE_BYTES)
                n = coalesce(c, frame, (size_t)n, &r);
            if (n > 0 && r >= 0)
                r = send_output(c, frame, (size_t)n);
        }
        if (n == -EPIPE) {
            bool vm_gone = false;
            const char *reason = engine_console_end_reason(c->con, &vm_gone);
            log_info("ws console %s/%s: %s", c->ws->user.name, c->ws->vm_name, reason);
            pthread_mutex_lock(&c->lock);
            c->closed = true;
            c->closed_at_ms = time_mono_ms();
            pthread_mutex_unlock(&c->lock);
            ws_close(c->ws->ws, vm_gone ? WS_CLOSE_GOING_AWAY : WS_CLOSE_INTERNAL, reason,
                     API_WS_CLOSE_WAIT_MS);
            break;
        }
        if (r < 0) {
            /* the client is gone or stalled: cut it, the receiver ends */
            shutdown(c->ws->fd, SHUT_RDWR);
            break;
        }
        if (n > 0 || skipped)
            continue;
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
    }
    return NULL;
}

static void handle_message(struct console_session *c, const struct ws_message *m)
{
    if (m->opcode != WS_OP_BINARY || m->len < 2 || m->data[0] != CH_INPUT)
        return; /* resize (0x04) and anything else: nothing to do on a serial line */
    if (engine_console_write(c->con, m->data + 1, m->len - 1, CONSOLE_WS_INPUT_TIMEOUT_MS) ==
        -ETIMEDOUT)
        log_warn("ws console %s/%s: typed bytes dropped: the guest does not read its console",
                 c->ws->user.name, c->ws->vm_name);
}

static void console_body(struct api_ws_session *s)
{
    struct console_session c = {.ws = s, .stop_fd = -1};
    long long idle_secs = s->srv->cfg->console_timeout_secs;
    struct nerr e = {0};
    pthread_t sender;
    bool have_sender = false;
    uint64_t one = 1;
    int r;

    pthread_mutex_init(&c.lock, NULL);
    c.last_activity_ms = time_mono_ms();
    setsockopt(s->fd, SOL_SOCKET, SO_SNDBUF, &(int){CONSOLE_WS_SNDBUF}, sizeof(int));
    s->send_timeout_ms = MAX((long long)API_WS_SEND_TIMEOUT_MS, idle_secs * 1000);
    r = engine_console_attach(s->srv->eng, &s->user, s->vm_name, (size_t)s->body_arg, &c.con, &e);
    if (r < 0) {
        api_ws_fail(s, WS_CLOSE_INTERNAL, "%s", nerr_msg(&e)[0] ? nerr_msg(&e) : strerror(-r));
        goto out;
    }
    c.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    have_sender = c.stop_fd >= 0 && pthread_create(&sender, NULL, sender_main, &c) == 0;
    if (!have_sender) {
        api_ws_fail(s, WS_CLOSE_INTERNAL, "cannot start the console session");
        goto out;
    }
    for (;;) {
        struct ws_message m;
        r = ws_receive_wait(s->ws, &m, CONSOLE_WS_TICK_MS);
        if (r < 0)
            break;
        if (r > 0) {
            touch(&c);
            handle_message(&c, &m);
            continue;
        }
        pthread_mutex_lock(&c.lock);
        bool closed = c.closed;
        int64_t idle_ms = time_mono_ms() - c.last_activity_ms;
        int64_t since_close_ms = time_mono_ms() - c.closed_at_ms;
        pthread_mutex_unlock(&c.lock);
        if (closed && since_close_ms < API_WS_CLOSE_WAIT_MS)
            continue; /* the sender closed: a moment for the client's close */
        if (closed) {
            shutdown(s->fd, SHUT_RDWR);
            break;
        }
        if (api_ws_stopping(s)) {
            api_ws_finish(s, WS_CLOSE_GOING_AWAY, "the server is shutting down");
            break;
        }
        if (idle_ms >= idle_secs * 1000) {
            char reason[64];
            snprintf(reason, sizeof(reason), "idle for %lld s", idle_secs);
            log_info("ws console %s/%s: %s", s->user.name, s->vm_name, reason);
            api_ws_finish(s, WS_CLOSE_NORMAL, reason);
            break;
        }
    }
    if (r == -ESHUTDOWN && !ws_close_sent(s->ws))
        api_ws_finish(s, WS_CLOSE_GOING_AWAY, "the server is shutting down");
out:
    if (have_sender) {
        (void)!write(c.stop_fd, &one, sizeof(one));
        pthread_join(sender, NULL);
    }
    if (c.stop_fd >= 0)
        close(c.stop_fd);
    engine_console_detach(c.con);
    pthread_mutex_destroy(&c.lock);
}

void api_get_console_ws(struct api_request *rq, char **params)
{
    struct wire_vm_info info = {0};
    const char *replay_arg =
        MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "replay");
    long long replay = CONSOLE_WS_REPLAY;
    bool firecracker;

    /* ?replay=0: output from the moment of attaching only (noidfs's
     * console file); anything else keeps the default replay */
    if (replay_arg && strcmp(replay_arg, "0") != 0) {
        api_reply_error(rq, 400, "replay: only 0 (no replay) is accepted, not '%s'", replay_arg);
        return;
    }
    if (replay_arg)
        replay = 0;
    if (!api_ws_vm_runs(rq, params[0], &info))
        goto out;
    firecracker = info.vmm && strcmp(info.vmm, "firecracker") == 0;
    if (firecracker)
        /* no console socket: its output is only in serial.log */
        api_reply_error(rq, 501,
                        "VM '%s' runs under Firecracker, whose serial console cannot "
                        "be attached to; its output is in serial.log",
                        params[0]);
    else
        api_ws_upgrade(rq, "console", params[0], console_body, replay);
out:
    wire_vm_info_free(&info);
}
