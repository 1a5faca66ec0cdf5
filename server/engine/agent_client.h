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

/* Where an exec's output goes.  Called from the reader thread with the
 * connection's dispatch lock held: must be quick and must not call back into
 * this module. */
struct agent_exec_sink {
    void (*on_output)(void *user, bool is_stderr, const uint8_t *data, size_t len);
    void *user;
};

/* Start a command.  Sending it waits for the channel until deadline_ms (a
 * time_mono_ms() value) at most: -ETIMEDOUT then, the command not started. */
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
/* Wait for the process to end (until deadline, a time_mono_ms() value).
 * 0 and *ret on exit; -ETIMEDOUT at the deadline; -ECONNRESET if the channel
 * broke; -EIO with the agent's reason if it could not start the command. */
int agent_exec_wait(struct agent_exec *x, int64_t deadline_ms, struct ap_exit *ret,
                    struct nerr *e);
void agent_exec_free(struct agent_exec *x);

/* A control request (SET_TIME, ADD_ENTROPY, PING) and its OK/PONG; sending
 * and waiting for the answer together take at most timeout_ms. */
int agent_control(struct agent_conn *c, uint8_t type, const void *payload, size_t len,
                  int timeout_ms, struct nerr *e);
