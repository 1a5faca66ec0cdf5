/* exec_stream.c — the CLI's WebSocket sessions (exec_stream.h): connecting
 * with the server's refusals explained, and the one loop that relays a
 * streamed exec or a console.
 *
 * Invariants of the loop: every message already received (TLS may hold
 * some) is handled before poll() is called again; stdin is read only once
 * the socket is writable, so a server that stops reading stalls our stdin
 * and not our output; a session ends once, with one status and at most one
 * message, printed after the terminal is restored. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "exec_stream.h"
#include "term.h"
#include "timeutil.h"
#include "wire.h"

enum {
    CH_STDOUT = 0x01,
    CH_STDERR = 0x02,
    CH_STDIN = 0x03,
    CH_RESIZE = 0x04,
};

#define STATUS_RUNNING  (-1)
#define RESIZE_JSON_MAX 64

struct session {
    struct ws *ws;
    int wsfd;
    int sigfd;
    const struct exec_stream_opts *o;
    bool stdin_open;  /* stdin is still to be read */
    bool stdin_ready; /* stdin is readable; waiting for the socket to be writable */
    bool finished;    /* the connection is over: no close handshake to run */
    bool detached;    /* Ctrl-] in a console */
    bool mid_line;    /* the last output byte written was not a newline */
    int status;       /* STATUS_RUNNING until the outcome is known */
    const char *close_reason;
    char msg[NERR_MSG_MAX]; /* printed once the terminal is restored */
};

/* Record the outcome; the first one wins (a later failure on the way out,
 * such as a send error after an interrupt, does not replace it).
 * fmt NULL: end without a message. */
static void session_end(struct session *s, int status, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void session_end(struct session *s, int status, const char *reason, const char *fmt, ...)
{
    va_list ap;

    if (s->status != STATUS_RUNNING)
        return;
    s->status = status;
    s->close_reason = reason;
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
        va_end(ap);
    }
}

/* ---- connecting ---- */

/* Whether a refused upgrade means "no WebSocket here" rather than an answer
 * about the VM or the user: 405 is an older server that only knows POST on
 * the path, 501 a server or proxy that does not implement the upgrade, 400
 * an upgrade mangled on the way (a proxy dropping the Upgrade header), 2xx
 * something that answered as plain HTTP, and a 404 that is not noid's
 * answer about the VM (noid says "no such endpoint" for unknown paths; a
 * proxy's page is not JSON at all). */
static bool refusal_means_no_ws(long status, const char *noid_error)
{
    switch (status) {
    case 400:
    case 405:
    case 501:
        return true;
    case 404:
        return !noid_error || strncmp(noid_error, "no such endpoint", 16) == 0;
    default:
        return status >= 200 && status < 300;
    }
}

int exec_stream_connect(struct cli *c, const char *path, struct ws_client **ret)
{
    struct ws_refusal refusal = {0};
    struct nerr e = {0};
    json_object *o = NULL, *err;
    const char *msg = NULL;
    int r;

    r = cli_require_auth(c);
    if (r < 0)
        return r;
    buf_init(&refusal.body, 0);
    r = ws_client_connect(c->url, c->token, path, EXEC_STREAM_MAX_MESSAGE, EXEC_STREAM_CONNECT_MS,
                          ret, &refusal, &e);
    if (r == 0)
        goto out;
    if (r != -EPROTO || refusal.status == 0) {
        cli_print_error("%s", e.msg[0] ? e.msg : strerror(-r));
        goto out;
    }
    if (refusal.body.len > 0 &&
        wire_parse_object((char *)refusal.body.data, refusal.body.len, &o, NULL) == 0 &&
        json_object_object_get_ex(o, "error", &err) && json_object_is_type(err, json_type_string))
        msg = json_object_get_string(err);
    if (refusal_means_no_ws(refusal.status, msg)) {
        r = -EPROTONOSUPPORT;
        goto out;
    }
    if (!msg)
        msg = refusal.body.len ? (char *)refusal.body.data : "no details";
    r = cli_report_http_error(c, refusal.status, msg);
out:
    json_object_put(o);
    ws_refusal_free(&refusal);
    return r;
}

/* ---- the session ---- */

/* Send one binary frame: the channel byte then len bytes of data. */
static void send_frame(struct session *s, uint8_t channel, const void *data, size_t len)
{
    uint8_t frame[1 + EXEC_STREAM_STDIN_CHUNK];
    int r;

    if (len > EXEC_STREAM_STDIN_CHUNK)
        len = EXEC_STREAM_STDIN_CHUNK; /* callers never pass more */
    frame[0] = channel;
    if (len)
        memcpy(frame + 1, data, len);
    /* No time limit: the socket was writable when we read what we send,
     * so this waits only for the server to read the rest of one frame. */
    r = ws_send(s->ws, WS_OP_BINARY, frame, len + 1, -1);
    if (r < 0) {
        session_end(s, CLI_EXIT_FAIL, NULL, "cannot send to the server: %s", strerror(-r));
        s->finished = true;
    }
}

static void send_resize(struct session *s)
{
    char json[RESIZE_JSON_MAX];
    unsigned cols, rows;
    int n;

    term_size_guess(&cols, &rows);
    n = snprintf(json, sizeof(json), "{\"cols\":%u,\"rows\":%u}", cols, rows);
    send_frame(s, CH_RESIZE, json, (size_t)n);
}

/* SIGWINCH is forwarded; the others end the session as they would have
 * ended the process (128 + N), through the close that stops the remote
 * command. */
static void handle_signals(struct session *s)
{
    int sig;

    while ((sig = term_signal_next(s->sigfd)) > 0) {
        if (sig == SIGWINCH) {
            if (s->o->resize && !s->finished)
                send_resize(s);
            continue;
        }
        session_end(s, 128 + sig, "interrupted", NULL);
    }
}

/* Write all of data to fd, waiting with poll() so that a signal (Ctrl-C
 * while a slow reader holds our stdout) still ends the session.  Writes of
 * at most PIPE_BUF bytes after POLLOUT never block on a pipe.  -ECANCELED
 * when a signal ended the session meanwhile. */
static int write_out(struct session *s, int fd, const uint8_t *data, size_t len)
{
    while (len > 0) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLOUT}, {.fd = s->sigfd, .events = POLLIN}};
        ssize_t n;

        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (p[1].revents) {
            handle_signals(s);
            if (s->status != STATUS_RUNNING)
                return -ECANCELED;
        }
        if (!p[0].revents)
            continue;
        n = write(fd, data, len < PIPE_BUF ? len : PIPE_BUF);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -errno;
        }
        data += n;
        len -= (size_t)n;
        s->mid_line = data[-1] != '\n';
    }
    return 0;
}

static void handle_output(struct session *s, const struct ws_message *m)
{
    int fd, r;

    if (m->len < 1)
        return;
    if (m->data[0] == CH_STDOUT)
        fd = STDOUT_FILENO;
    else if (m->data[0] == CH_STDERR && !s->o->console)
        fd = STDERR_FILENO;
    else
        return; /* a channel of a newer server */
    r = write_out(s, fd, m->data + 1, m->len - 1);
    if (r == -EPIPE)
        /* our reader is gone (`noid exec vm -- cat big | head -1`): end as
         * a pipe writer does, quietly, and stop the remote command */
        session_end(s, 128 + SIGPIPE, "output closed", NULL);
    else if (r < 0 && r != -ECANCELED)
        session_end(s, CLI_EXIT_FAIL, "output failed", "cannot write the output: %s", strerror(-r));
}

/* Text frames: {"error"}, the exec result, a console's {"skipped"}.  Others
 * (from a newer server) are ignored. */
static void handle_text(struct session *s, const struct ws_message *m)
{
    json_object *o = NULL, *v;

    if (wire_parse_object((char *)m->data, m->len, &o, NULL) < 0)
        return;
    if (json_object_object_get_ex(o, "error", &v)) {
        session_end(s, CLI_EXIT_FAIL, "error", "%s", json_object_get_string(v));
    } else if (s->o->console && json_object_object_get_ex(o, "skipped", &v)) {
        fprintf(stderr, "\r\n[noid: %lld bytes of console output skipped]\r\n",
                (long long)json_object_get_int64(v));
    } else if (!s->o->console && json_object_object_get_ex(o, "exit_code", &v)) {
        int code = json_object_get_int(v) & 0xff;
        if (json_object_object_get_ex(o, "timed_out", &v) && json_object_get_boolean(v))
            session_end(s, CLI_EXIT_TIMEOUT, "done", "command timed out");
        else
            session_end(s, code, "done", NULL);
    }
    json_object_put(o);
}

/* The connection ended from the server's side (ws_receive's r < 0). */
static void handle_end(struct session *s, int r)
{
    const char *reason = "";
    uint16_t code;

    s->finished = true;
    switch (r) {
    case -ECONNRESET:
        code = ws_peer_close(s->ws, &reason);
        if (!s->o->console)
            session_end(s, CLI_EXIT_FAIL, NULL,
                        "the server ended the session before the command finished "
                        "(close code %u%s%s)",
                        code, *reason ? ": " : "", reason);
        else if (code == WS_CLOSE_NORMAL || code == WS_CLOSE_GOING_AWAY)
            session_end(s, 0, NULL, "console closed%s%s", *reason ? ": " : "", reason);
        else
            session_end(s, CLI_EXIT_FAIL, NULL, "console closed: %s (close code %u)",
                        *reason ? reason : "no reason given", code);
        break;
    case -EPIPE:
        session_end(s, CLI_EXIT_FAIL, NULL, "the connection to the server was lost");
        break;
    case -EPROTO:
        session_end(s, CLI_EXIT_FAIL, NULL,
                    "the server broke the WebSocket protocol (closed with code %u)",
                    ws_sent_close_code(s->ws));
        break;
    default:
        session_end(s, CLI_EXIT_FAIL, NULL, "connection to the server failed: %s", strerror(-r));
        break;
    }
}

/* stdin is readable and the socket writable: move one chunk.  EOF is
 * [0x03] for a command and the end of the session for a console; Ctrl-]
 * typed into a console in raw mode detaches (what was typed before it is
 * still sent). */
static void read_stdin(struct session *s)
{
    uint8_t chunk[EXEC_STREAM_STDIN_CHUNK];
    ssize_t n;
    uint8_t *key;

    n = read(STDIN_FILENO, chunk, sizeof(chunk));
    if (n < 0) {
        if (errno != EINTR && errno != EAGAIN)
            session_end(s, CLI_EXIT_FAIL, "stdin failed", "cannot read stdin: %m");
        return;
    }
    if (n == 0) {
        s->stdin_open = false;
        if (s->o->console)
            session_end(s, 0, "detached", NULL);
        else
            send_frame(s, CH_STDIN, NULL, 0);
        return;
    }
    key = s->o->console && s->o->raw ? memchr(chunk, EXEC_STREAM_DETACH_KEY, (size_t)n) : NULL;
    if (key)
        n = key - chunk;
    if (n > 0)
        send_frame(s, CH_STDIN, chunk, (size_t)n);
    if (key) {
        s->detached = true;
        session_end(s, 0, "detached", NULL);
    }
}

/* Close from our side (which stops the remote command if it still runs)
 * and wait a moment for the server's close, so that it has seen ours before
 * we exit.  What arrives meanwhile is dropped: the session is over. */
static void session_close(struct session *s)
{
    struct ws_message m;
    int64_t deadline = time_mono_ms() + EXEC_STREAM_CLOSE_WAIT_MS;
    int64_t left;
    int r;

    if (s->finished)
        return;
    if (!ws_close_sent(s->ws) &&
        ws_close(s->ws, WS_CLOSE_NORMAL, s->close_reason ? s->close_reason : "",
                 EXEC_STREAM_CLOSE_WAIT_MS) < 0)
        return;
    while ((left = deadline - time_mono_ms()) > 0) {
        r = ws_receive_wait(s->ws, &m, (int)left);
        if (r <= 0)
            return;
    }
}

static void session_loop(struct session *s)
{
    while (s->status == STATUS_RUNNING) {
        struct ws_message m;
        struct pollfd p[3];
        int r = ws_receive(s->ws, &m);

        if (r < 0) {
            handle_end(s, r);
            break;
        }
        if (r > 0) {
            if (m.opcode == WS_OP_BINARY)
                handle_output(s, &m);
            else
                handle_text(s, &m);
            continue;
        }
        p[0] = (struct pollfd){.fd = s->wsfd, .events = POLLIN | (s->stdin_ready ? POLLOUT : 0)};
        p[1] = (struct pollfd){.fd = s->sigfd, .events = POLLIN};
        p[2] = (struct pollfd){.fd = s->stdin_open && !s->stdin_ready ? STDIN_FILENO : -1,
                               .events = POLLIN};
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            session_end(s, CLI_EXIT_FAIL, NULL, "poll failed: %m");
            break;
        }
        if (p[1].revents)
            handle_signals(s);
        if (s->status != STATUS_RUNNING)
            break;
        if (p[2].revents)
            s->stdin_ready = true;
        if (s->stdin_ready && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
            s->stdin_ready = false;
            read_stdin(s);
        }
    }
}

int exec_stream_run(struct ws_client *wc, const char *request, const struct exec_stream_opts *o)
{
    struct session s = {
        .ws = ws_client_ws(wc),
        .wsfd = ws_client_fd(wc),
        .o = o,
        .stdin_open = o->forward_stdin,
        .status = STATUS_RUNNING,
    };
    int r;

    s.sigfd = term_signals_open();
    if (s.sigfd < 0) {
        cli_print_error("cannot watch signals: %s", strerror(-s.sigfd));
        return CLI_EXIT_FAIL;
    }
    if (request) {
        r = ws_send(s.ws, WS_OP_TEXT, request, strlen(request), EXEC_STREAM_CONNECT_MS);
        if (r < 0) {
            cli_print_error("cannot send the request: %s", strerror(-r));
            close(s.sigfd);
            return CLI_EXIT_FAIL;
        }
    }
    if (o->raw) {
        r = term_raw_enter(STDIN_FILENO);
        if (r < 0)
            session_end(&s, CLI_EXIT_FAIL, "terminal failed",
                        "cannot put the terminal in raw mode: %s", strerror(-r));
    }
    session_loop(&s);
    session_close(&s);
    term_restore();
    if (s.detached)
        fprintf(stderr, "\r\n[detached from %s]\r\n", o->vm_name);
    if (s.msg[0]) {
        /* not after a prompt the session left on the screen */
        if (s.mid_line && isatty(STDERR_FILENO))
            fputs("\r\n", stderr);
        cli_print_error("%s", s.msg);
    }
    close(s.sigfd);
    return s.status;
}
