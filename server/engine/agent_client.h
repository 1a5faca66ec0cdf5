/* agent_client.h — the host side of the agent protocol (lib/agent_proto.h).
 *
 * One struct agent_conn per VM wraps the connected channel.  After the
 * handshake a reader thread owns the read side: it parses frames and hands
 * each to the exec (or control request) that owns its stream id.  Writers
 * (exec start, stdin, kill, control) serialise on the connection's write
 * lock, so many execs can run at once over one channel.
 *
 * The guest is untrusted: every call that sends takes a deadline (or, for
 * KILL, a short fixed bound), so an agent that stops reading cannot hold
 * the caller past it; everything the agent sends is bounded (frame size,
 * stdin credit, ERROR text, which is escaped before it reaches a message).
 *
 * Output flow control: an exec whose sink has an out_window runs, on an
 * agent of protocol 2 or later, with that much output credit (agent_proto.h):
 * the agent sends at most out_window bytes that the consumer has not yet
 * given back with agent_exec_ack_output(), so a slow consumer holds back
 * that one command and no other on the channel.  On a v1 agent (one inside
 * an old checkpoint) the exec runs without it; agent_exec_has_flow_control()
 * tells the caller, which must then cap or buffer the output itself.  An
 * agent that sends more than the window allows breaks the connection.
 *
 * When the channel breaks (VMM killed, guest rebooted, bad frame), every
 * waiter wakes with -ECONNRESET and the connection is marked broken; the
 * engine then opens a new one on next use.  Thread-safe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_proto.h"
#include "nerr.h"

struct agent_conn;
struct agent_exec;

/* Take ownership of fd and perform the HELLO handshake, repeating HELLO
 * until the agent answers or timeout_ms passes (the guest may still be
 * booting).  -ETIMEDOUT if it never answered, -ECONNRESET if the channel
 * closed. */
int agent_conn_open(int fd, int timeout_ms, struct agent_conn **ret, struct nerr *e);
struct agent_conn *agent_conn_ref(struct agent_conn *c);
void agent_conn_unref(struct agent_conn *c);
/* Shut the channel down: wakes every waiter with -ECONNRESET. */
void agent_conn_shutdown(struct agent_conn *c);
bool agent_conn_is_broken(struct agent_conn *c);
/* The protocol version in use on c: min(the agent's HELLO_ACK version,
 * AP_VERSION), so 1 (an old agent: no flow control), 2 (no file
 * operations) or 3.  Fixed for the connection's life. */
int agent_conn_version(struct agent_conn *c);

/* Where an exec's output goes.  on_output is called from the reader thread
 * with the connection's dispatch lock held: it must be quick, must not block
 * and must not call back into this module (agent_exec_ack_output() included:
 * acknowledge from the consumer's own thread).
 * out_window: output credit in bytes for flow control, 0 = none (output
 * comes as fast as the guest produces it).  A window below AP_DATA_CHUNK
 * works but cuts output into smaller frames. */
struct agent_exec_sink {
    void (*on_output)(void *user, bool is_stderr, const uint8_t *data, size_t len);
    void *user;
    uint32_t out_window;
};

/* Start a command.  Sending it waits for the channel until deadline_ms (a
 * time_mono_ms() value) at most: -ETIMEDOUT then, the command not started.
 * req->out_window is ignored: the window comes from sink->out_window, and is
 * sent only to an agent of protocol 2 or later. */
int agent_exec_start(struct agent_conn *c, const struct ap_exec_req *req,
                     const struct agent_exec_sink *sink, int64_t deadline_ms,
                     struct agent_exec **ret, struct nerr *e);
/* Send stdin bytes, waiting for window credit from the agent and for room
 * on the channel as needed, but not past deadline_ms (time_mono_ms): a
 * guest that never reads must not hold the caller for ever.  -ETIMEDOUT at
 * the deadline (the channel is broken if a frame was cut half way); 0 early
 * if the process is gone (what it did not read is dropped). */
int agent_exec_write_stdin(struct agent_exec *x, const void *data, size_t len,
                           int64_t deadline_ms, struct nerr *e);
/* Send end-of-stdin, not waiting past deadline_ms. */
int agent_exec_close_stdin(struct agent_exec *x, int64_t deadline_ms, struct nerr *e);
/* Send a signal to the command; best effort, waits at most about a second
 * for the channel (the caller's deadline has usually passed already). */
int agent_exec_kill(struct agent_exec *x, int sig);
/* Whether x runs with output flow control: its sink asked for a window and
 * the agent speaks protocol 2.  If false, nothing holds the output back:
 * the caller must cap or buffer it. */
bool agent_exec_has_flow_control(const struct agent_exec *x);
/* The consumer has delivered n more bytes of x's output (stdout and stderr
 * payload together, as on_output handed them over).  Credit is collected
 * and sent back to the agent in one OUT_ACK once at least a quarter of the
 * window is owed, not one frame per chunk.  Call from any thread but the
 * reader (never inside on_output).  Waits at most about a second for the
 * channel, like agent_exec_kill().  0 (also: no flow control, the command
 * has ended, nothing to send yet); -ETIMEDOUT if the channel stayed busy
 * (the credit is kept: call again, n may be 0, or the command may stall);
 * -ECONNRESET if the channel is broken.  Acknowledging more than on_output
 * delivered is capped at what it delivered. */
int agent_exec_ack_output(struct agent_exec *x, size_t n);
/* Set the terminal size of a tty command (RESIZE); ignored by the agent
 * for a command without a tty.  Bounded like agent_exec_kill().  0 (also
 * when the command has ended), -EINVAL for a zero size, -ETIMEDOUT,
 * -ECONNRESET. */
int agent_exec_resize(struct agent_exec *x, uint16_t rows, uint16_t cols);
/* Wait for the process to end (until deadline, a time_mono_ms() value).
 * 0 and *ret on exit; -ETIMEDOUT at the deadline; -ECONNRESET if the channel
 * broke; -EIO with the agent's reason if it could not start the command. */
int agent_exec_wait(struct agent_exec *x, int64_t deadline_ms, struct ap_exit *ret,
                    struct nerr *e);
/* Unregister x (no more on_output calls once this returns) and free it.
 * If x still runs with flow control, the agent is told to stop holding its
 * output back (OUT_ACK release, bounded like agent_exec_kill()) so that the
 * command can finish and leave the agent's table; kill it first if it must
 * not run on. */
void agent_exec_free(struct agent_exec *x);

/* A control request (SET_TIME, ADD_ENTROPY, PING) and its OK/PONG; sending
 * and waiting for the answer together take at most timeout_ms. */
int agent_control(struct agent_conn *c, uint8_t type, const void *payload, size_t len,
                  int timeout_ms, struct nerr *e);
