/* session.h — one host conversation: the input buffer, frame dispatch and
 * the session state (established by HELLO, dropped by a malformed frame or a
 * new HELLO).
 *
 * The byte stream from the channel is appended with session_input_space() /
 * session_input_commit() and consumed by session_process(), which parses
 * whole frames and acts on them.  Answers go to the session's outq; exec
 * output reaches the same outq through the exec table, file downloads
 * through files_pump() (files.h), which the main loop calls.
 *
 * Bounds: the input buffer grows only as far as the frame at its front
 * needs, and never beyond AP_HEADER_LEN + AP_MAX_PAYLOAD; it shrinks back
 * after a large frame.  Processing pauses while the outq is over its high
 * water mark, so a host that sends requests without reading answers stalls
 * itself, not the agent.
 *
 * Stale input: a host that vanished in the middle of a frame leaves its
 * beginning in the buffer, and the next host's HELLOs would be swallowed as
 * that frame's payload.  Channels that notice the hang-up call
 * session_disconnected(); for the case where a virtio-serial host came back
 * too fast to be noticed, a front frame that stays incomplete for
 * SESSION_STALE_MS while a complete HELLO waits behind it is dropped.
 *
 * Invariant: frames other than HELLO are only served inside an established
 * session; before that requests get ERROR on their stream (PING included:
 * that is how a host notices that a new agent replaced the one it talked
 * to). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exec.h"
#include "files.h"
#include "outq.h"

#define SESSION_STALE_MS 1000

struct session {
    struct outq out;
    struct exec_table execs;
    struct files files; /* file handles and transfers (protocol v3) */

    uint8_t *in;   /* received bytes not yet consumed */
    size_t in_len; /* bytes in in[] */
    size_t in_cap;
    bool resyncing;            /* skipping garbage; ERROR already sent for it */
    uint64_t partial_since_ms; /* when the incomplete front frame was first seen, 0 = none */
    size_t stale_scanned;      /* in[] before this offset holds no HELLO (stale check) */

    bool established; /* a HELLO was accepted and nothing broke it since */
    uint64_t nonce;
};

int session_init(struct session *s);
void session_done(struct session *s);

/* Where the channel may append received bytes: *ret_len is 0 when the buffer
 * is full (the front frame is complete, waiting for session_process()).
 * Returns -ENOMEM if growing the buffer failed. */
int session_input_space(struct session *s, uint8_t **ret_buf, size_t *ret_len);
void session_input_commit(struct session *s, size_t n);

/* Parse and act on every complete frame in the input buffer (pausing while
 * the outq is full). */
void session_process(struct session *s);

/* The connection to the host is gone: forget partial input and output that
 * belonged to it.  With kill_execs (socket channels, where a session is one
 * connection) the execs are killed as well; a virtio-serial port keeps them
 * until the next HELLO. */
void session_disconnected(struct session *s, bool kill_execs);
