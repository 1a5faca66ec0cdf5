/* metrics.h — the server's counters and histograms, and their rendering as
 * the Prometheus text served on metrics_listen (api/metrics_http.c).
 *
 * One process-wide registry: the engine records the operations (create,
 * checkpoint, restore, clone, exec) where they run, so every front-end
 * (REST, WebSocket, noidfs) is counted; the REST front-end records what
 * only it sees (WebSocket sessions, authentication failures, refusals).
 * Recording is a few relaxed atomic additions: no lock, callable from any
 * thread, never fails.  Values that are a state rather than a count (VMs by
 * state, the golden snapshot) are read at scrape time by the caller and
 * handed to metrics_render.  docs/admin-guide.md ("Metrics") lists every
 * series; keep it in step with the table in metrics.c. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Operations with a success counter, failure counter and latency
 * histogram (VM create has its own entry point: it has a source). */
enum metrics_op {
    METRICS_OP_CHECKPOINT,
    METRICS_OP_RESTORE, /* in place */
    METRICS_OP_CLONE,   /* restore into a new VM */
};

enum metrics_exec_mode {
    METRICS_EXEC_HTTP,   /* POST /v1/vms/{name}/exec: output in the reply */
    METRICS_EXEC_STREAM, /* WebSocket exec, noidfs exec files */
};

enum metrics_ws_kind {
    METRICS_WS_CONSOLE,
    METRICS_WS_EXEC,
};

enum metrics_auth_reason {
    METRICS_AUTH_MISSING_TOKEN, /* no "Authorization: Bearer" */
    METRICS_AUTH_INVALID_TOKEN, /* a token that is wrong, revoked or malformed */
};

enum metrics_limit {
    METRICS_LIMIT_AUTH,            /* too many failed authentications (429) */
    METRICS_LIMIT_USER_REQUESTS,   /* the user's long requests (429) */
    METRICS_LIMIT_SERVER_REQUESTS, /* the server's long requests (503) */
    METRICS_LIMIT_WS_SESSIONS,     /* max_ws_sessions (503) */
};

/* The end of a VM create that began at start_ns (time_mono_ns); r its
 * result (a failure is classed by its errno, see metrics.c). */
void metrics_create_done(int r, bool from_golden, int64_t start_ns);
void metrics_op_done(enum metrics_op op, int r, int64_t start_ns);
/* An exec ended: r < 0 it could not run or its VM went away; otherwise
 * it ran to its exit (or its timeout, timed_out). */
void metrics_exec_done(enum metrics_exec_mode mode, int r, bool timed_out, int64_t start_ns);
/* A streamed exec given up by its client before it ended (killed). */
void metrics_exec_cancelled(enum metrics_exec_mode mode);
void metrics_ws_session_begin(enum metrics_ws_kind kind);
void metrics_ws_session_end(enum metrics_ws_kind kind);
void metrics_auth_failure(enum metrics_auth_reason reason);
void metrics_refusal(enum metrics_limit limit);
/* A golden snapshot build ended (r < 0: it failed). */
void metrics_golden_build_done(int r);

/* What is read at scrape time (engine_vm_state_counts, engine_golden_ready). */
struct metrics_scrape {
    size_t vms_creating, vms_restoring, vms_running, vms_dead;
    bool golden_ready;
};

/* Append every series, in the text format 0.0.4, to out. */
int metrics_render(struct buf *out, const struct metrics_scrape *s);
