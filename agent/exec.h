/* exec.h — the processes the agent runs for the host (EXEC requests).
 *
 * One struct exec per running request, keyed by its stream id, at most
 * EXEC_MAX at once.  Each child runs in its own session and process group
 * (setsid), so KILL, a timeout or the end of the session reaches everything
 * it started.  Output is read from non-blocking pipes (or a pty master) and
 * queued as STDOUT/STDERR frames of at most AP_DATA_CHUNK bytes; stdin
 * frames are buffered (at most AP_STDIN_WINDOW bytes per exec) and
 * acknowledged with WINDOW frames as they reach the child's pipe.
 *
 * Output flow control (agent_proto.h, v2): an exec started with an output
 * window reads its pipes only while it has credit, at most the credit at a
 * time; exec_out_ack() gives credit back.  An exec without credit adds no
 * output pollfds, so it costs the loop nothing and holds back no other exec.
 *
 * EXIT is queued exactly once, when the child has been reaped and its output
 * reached EOF — or EXEC_DRAIN_MS after it was reaped if something it left
 * behind (a daemonised grandchild) still holds the pipes open; the pipes are
 * then emptied (as far as credit allows: the rest of the drain waits for an
 * OUT_ACK) and closed without killing anyone.  Timeouts fire whatever the
 * credit: a killed child's EXIT follows its remaining output.
 *
 * The table does not own the poll loop: exec_poll_fill() adds the fds it
 * wants watched, exec_poll_handle() acts on the results, exec_on_sigchld()
 * reaps, and exec_tick() handles deadlines.  All output goes to the outq
 * given at init. */
#pragma once

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_proto.h"
#include "outq.h"

#define EXEC_MAX 256
/* How long after the child exits we keep waiting for EOF on its output. */
#define EXEC_DRAIN_MS 500
/* pollfds one exec may add (stdout, stderr, stdin). */
#define EXEC_POLLFDS 3

struct exec;

struct exec_table {
    struct exec *slots[EXEC_MAX]; /* NULL = free */
    size_t count;
    struct outq *q;
};

void exec_table_init(struct exec_table *t, struct outq *q);

/* Start req on stream.  On success queues STARTED{pid} and returns 0.  On
 * failure returns -errno and writes a reason for an ERROR frame into
 * msg[msg_size]; nothing is queued.  req stays owned by the caller. */
int exec_start(struct exec_table *t, uint32_t stream, const struct ap_exec_req *req, char *msg,
               size_t msg_size);

bool exec_exists(const struct exec_table *t, uint32_t stream);

/* Queue stdin bytes for stream (len 0 = EOF once buffered bytes drained).
 * Returns 0; -ENOENT for an unknown stream; -ENOBUFS if the host overran
 * its AP_STDIN_WINDOW (the excess is dropped and acknowledged). */
int exec_stdin(struct exec_table *t, uint32_t stream, const uint8_t *data, size_t len);

/* Send sig to the process group of stream.  Returns 0, -ENOENT or -errno. */
int exec_kill(struct exec_table *t, uint32_t stream, int sig);

/* Set the pty window size of stream.  Returns 0, -ENOENT, -ENOTTY for a
 * non-tty exec, or -errno. */
int exec_resize(struct exec_table *t, uint32_t stream, uint16_t rows, uint16_t cols);

/* OUT_ACK{n} for stream: give back n bytes of output credit, never above
 * the exec's window (an excess is clamped and logged once);
 * AP_OUT_ACK_RELEASE ends flow control for it.  No-op for an exec without
 * a window.  Returns 0 or -ENOENT (no such exec: it may just have ended). */
int exec_out_ack(struct exec_table *t, uint32_t stream, uint32_t n);

/* SIGKILL every process group and forget every exec without queueing EXIT
 * (the session they belonged to is over).  Zombies are reaped later by
 * exec_on_sigchld(), which ignores pids it does not know. */
void exec_kill_all(struct exec_table *t);

/* Append this table's pollfds at pfds[*n...] (room for EXEC_MAX *
 * EXEC_POLLFDS must exist).  With backpressure, output pipes are not
 * watched, nor those of an exec out of output credit. */
void exec_poll_fill(struct exec_table *t, struct pollfd *pfds, size_t *n, bool backpressure);

/* Act on the revents of the pollfds exec_poll_fill() added. */
void exec_poll_handle(struct exec_table *t, const struct pollfd *pfds, bool backpressure);

/* Reap every exited child (call on SIGCHLD). */
void exec_on_sigchld(struct exec_table *t);

/* Handle timeouts and drain deadlines that passed, queue EXIT for execs
 * that are done.  Returns the next deadline in CLOCK_MONOTONIC ms, or 0 if
 * none. */
uint64_t exec_tick(struct exec_table *t, bool backpressure);
