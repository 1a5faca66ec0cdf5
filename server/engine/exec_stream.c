/* exec_stream.c — a command whose output is delivered as it is produced
 * (WebSocket exec; noidfs's exec file later).
 *
 * Output goes straight from the agent's reader thread to the consumer's
 * on_output.  End-to-end backpressure: the exec runs with an output window
 * of EXEC_STREAM_WINDOW bytes in the guest (the agent stops reading the
 * command's pipes when the window is used up) and the window opens again
 * as the consumer reports bytes delivered (engine_exec_stream_output_done).
 * A slow client therefore slows its own command, never the VM's other
 * execs.  An agent of an older guest has no window; the consumer then has
 * to bound what it buffers (ws_exec.c: EXEC_WS_MAX_QUEUED).
 *
 * A stream never hangs: the exec's deadline (timeout + EXEC_GRACE_MS)
 * holds as for HTTP exec; a VMM that dies closes the agent channel, which
 * wakes every waiter with -ECONNRESET; an agent that stops answering while
 * the command is silent is caught by a ping every EXEC_STREAM_PING_MS. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "encoding.h"
#include "engine-internal.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"
#include "vm-internal.h"

#define EXEC_STREAM_WINDOW          (1u * 1024 * 1024)
#define EXEC_STREAM_PING_MS         2000
#define EXEC_STREAM_PING_TIMEOUT_MS 3000
/* sending a command without a timeout (and its stdin) to the guest */
#define EXEC_UNTIMED_START_MS 30000

struct engine_exec_stream {
    struct engine *eng;
    struct vm_rt *rt;
    struct agent_conn *conn;
    struct agent_exec *x;
    int64_t deadline_ms; /* timeout + grace: the host's own bound */
    int64_t last_ping_ms;
    int64_t start_ns; /* for the metrics */
    bool ended;       /* EXIT seen or the command was given up */
    bool counted;     /* its end is in the metrics */
    char label[DB_ID_LEN + 80];
};

int engine_exec_stream_start(struct engine *eng, const struct db_user *u, const char *name,
                             const struct wire_exec_req *req, const struct engine_exec_events *ev,
                             struct engine_exec_stream **ret, struct nerr *e)
{
    long long timeout_secs;
    int r;

    r = exec_request_check(eng->cfg, req, &timeout_secs, e);
    if (r < 0) {
        metrics_exec_done(METRICS_EXEC_STREAM, r, false, time_mono_ns());
        return r;
    }
    /* 0 would mean "none" below: only the golden provisioning asks for that */
    return exec_stream_start(eng, u, name, req, MAX(timeout_secs, 1), ev, ret, e);
}

int exec_stream_start(struct engine *eng, const struct db_user *u, const char *name,
                      const struct wire_exec_req *req, long long timeout_secs,
                      const struct engine_exec_events *ev, struct engine_exec_stream **ret,
                      struct nerr *e)
{
    struct engine_exec_stream *s = NULL;
    struct agent_exec_sink sink = {ev->on_output, ev->user, EXEC_STREAM_WINDOW};
    struct ap_exec_req areq;
    uint8_t *stdin_bytes = NULL;
    size_t stdin_len = 0;
    int64_t start_deadline;
    int64_t t0 = time_mono_ns();
    int r;

    if (req->stdin_b64 &&
        base64_decode(req->stdin_b64, req->stdin_b64_len, &stdin_bytes, &stdin_len) < 0) {
        r = nerr_set(e, -EINVAL, "field 'stdin_b64' is not valid base64");
        goto fail;
    }
    s = calloc(1, sizeof(*s));
    if (!s) {
        r = -ENOMEM;
        goto fail;
    }
    s->eng = eng;
    s->start_ns = t0;
    s->counted = true; /* counted here if it fails to start */
    snprintf(s->label, sizeof(s->label), "%s/%s", u->id, name);
    r = exec_vm_agent(eng, u, name, &s->rt, &s->conn, e);
    if (r < 0)
        goto fail;
    exec_agent_request(req, timeout_secs, &areq);
    /* stdin stays open for the client's frames unless the request gives
     * its stdin whole or says "stdin": false */
    areq.stdin_open = req->stdin_text || req->stdin_b64 || !req->has_stdin_open || req->stdin_open;
    /* no timeout (0): the agent sets none and the host waits for ever, but
     * sending the request and stdin stays bounded */
    s->deadline_ms =
        timeout_secs > 0 ? time_mono_ms() + timeout_secs * 1000 + EXEC_GRACE_MS : INT64_MAX / 2;
    start_deadline = timeout_secs > 0 ? s->deadline_ms : time_mono_ms() + EXEC_UNTIMED_START_MS;
    s->last_ping_ms = time_mono_ms();
    r = agent_exec_start(s->conn, &areq, &sink, start_deadline, &s->x, e);
    if (r < 0)
        goto fail;
    if (req->stdin_text || req->stdin_b64) {
        r = agent_exec_write_stdin(
            s->x, req->stdin_text ? (const uint8_t *)req->stdin_text : stdin_bytes,
            req->stdin_text ? req->stdin_text_len : stdin_len, start_deadline, e);
        if (r >= 0)
            r = agent_exec_close_stdin(s->x, start_deadline, e);
        if (r < 0)
            goto fail;
    }
    free(stdin_bytes);
    s->counted = false;
    *ret = s;
    return 0;
fail:
    metrics_exec_done(METRICS_EXEC_STREAM, r, false, t0);
    free(stdin_bytes);
    engine_exec_stream_free(s);
    return r;
}

/* The stream's end, in the metrics once. */
static void stream_count(struct engine_exec_stream *s, int r, bool timed_out)
{
    if (s->counted)
        return;
    s->counted = true;
    metrics_exec_done(METRICS_EXEC_STREAM, r, timed_out, s->start_ns);
}

void engine_exec_stream_output_done(struct engine_exec_stream *s, size_t n)
{
    if (s->x && !s->ended)
        agent_exec_ack_output(s->x, n);
}

int engine_exec_stream_stdin(struct engine_exec_stream *s, const void *data, size_t len,
                             struct nerr *e)
{
    return agent_exec_write_stdin(s->x, data, len, s->deadline_ms, e);
}

int engine_exec_stream_stdin_close(struct engine_exec_stream *s, struct nerr *e)
{
    return agent_exec_close_stdin(s->x, s->deadline_ms, e);
}

int engine_exec_stream_resize(struct engine_exec_stream *s, unsigned cols, unsigned rows)
{
    if (cols == 0 || rows == 0 || cols > WIRE_MAX_TTY_SIDE || rows > WIRE_MAX_TTY_SIDE)
        return -EINVAL;
    return agent_exec_resize(s->x, (uint16_t)rows, (uint16_t)cols);
}

int engine_exec_stream_wait(struct engine_exec_stream *s, int timeout_ms,
                            struct wire_exec_result *ret, struct nerr *e)
{
    struct ap_exit ex = {0};
    int64_t now = time_mono_ms();
    int64_t until = MIN(now + timeout_ms, s->deadline_ms);
    int r;

    r = agent_exec_wait(s->x, until, &ex, e);
    if (r >= 0) {
        s->ended = true;
        exec_result_from_exit(&ex, false, ret);
        stream_count(s, 0, ret->timed_out);
        return 1;
    }
    if (r != -ETIMEDOUT) {
        stream_count(s, r, false);
        return r;
    }
    now = time_mono_ms();
    if (now >= s->deadline_ms) {
        log_warn("vm %s: streamed command did not end by its deadline; killing it", s->label);
        agent_exec_kill(s->x, SIGKILL);
        s->ended = true;
        exec_result_from_exit(&ex, true, ret);
        stream_count(s, 0, true);
        return 1;
    }
    if (now - s->last_ping_ms >= EXEC_STREAM_PING_MS) {
        struct nerr pe = {0};
        s->last_ping_ms = now;
        r = agent_control(s->conn, AP_PING, NULL, 0, EXEC_STREAM_PING_TIMEOUT_MS, &pe);
        if (r < 0) {
            log_warn("vm %s: the agent stopped answering during a streamed command (%s)", s->label,
                     nerr_msg(&pe));
            /* the next user reconnects and starts a new agent session */
            agent_conn_shutdown(s->conn);
            stream_count(s, -ECONNRESET, false);
            return nerr_set(e, -ECONNRESET,
                            "the VM's agent stopped answering (the VM stopped, or the agent "
                            "died): %s",
                            nerr_msg(&pe));
        }
    }
    /* an acknowledgement the channel was too busy for earlier must not
     * leave the command's output window shut while it runs */
    engine_exec_stream_output_done(s, 0);
    return 0;
}

void engine_exec_stream_kill(struct engine_exec_stream *s)
{
    if (s && s->x)
        agent_exec_kill(s->x, SIGKILL);
}

void engine_exec_stream_free(struct engine_exec_stream *s)
{
    if (!s)
        return;
    if (!s->counted)
        metrics_exec_cancelled(METRICS_EXEC_STREAM);
    if (s->x && !s->ended)
        agent_exec_kill(s->x, SIGKILL); /* the agent kills the process group */
    agent_exec_free(s->x);
    if (s->conn)
        agent_conn_unref(s->conn);
    engine_rt_put(s->eng, s->rt);
    free(s);
}
