/* agent_proto.h — the host <-> noid-agent protocol (DESIGN.md §6).
 *
 * One byte stream (virtio-serial port under QEMU, vsock under Firecracker)
 * carries length-prefixed frames, multiplexed by a 32-bit stream id:
 *
 *   offset 0  u16  magic 0x4E41 ("NA")         all integers big-endian
 *          2  u8   type (enum ap_type)
 *          3  u8   flags (0; reserved)
 *          4  u32  stream id (0 = the session itself)
 *          8  u32  payload length, at most AP_MAX_PAYLOAD
 *         12  ...  payload
 *
 * Session: the host sends HELLO{version, nonce} (repeating it until answered,
 * because bytes sent before the guest opened its port are lost) and the agent
 * answers HELLO_ACK{version, nonce, agent version}.  A HELLO at any time
 * starts a new session: the agent kills every exec of the previous one.  This
 * is how the channel survives a server restart or a snapshot restore.
 *
 * Versions.  Agents of protocol 1 live on inside users' saved checkpoints
 * and refuse any HELLO whose version is not 1, so the host always sends
 * HELLO{AP_VERSION_BASE} (1).  An agent accepts HELLO versions
 * AP_VERSION_BASE..AP_VERSION and answers HELLO_ACK{AP_VERSION}: "I also
 * speak every addition up to this version".  The host accepts any ACK
 * version >= AP_VERSION_BASE and uses the additions of min(ACK version, its
 * own AP_VERSION) — additions only ever add, so a newer agent serves an
 * older host.  A v1 agent must never see a v2 addition: it would take an
 * unknown frame type or EXEC tag as a malformed frame and drop the session.
 * Additions of version 2: the EXEC tag APT_OUT_WINDOW and the OUT_ACK frame
 * (output flow control, below).
 *
 * Exec: the host picks a fresh stream id and sends EXEC (TLV payload, see
 * struct ap_exec_req).  The agent answers STARTED{pid}, then STDOUT/STDERR
 * data frames, and finally EXIT{code, signal, timed_out}; or ERROR{message}
 * if the process could not be started.  stdin: STDIN data frames, an empty
 * one is EOF.  The host may have at most AP_STDIN_WINDOW bytes of stdin not
 * yet acknowledged by WINDOW{n} frames.  KILL{signal} and RESIZE{rows, cols}
 * act on a running exec.
 *
 * Output flow control (v2).  An EXEC carrying APT_OUT_WINDOW{w}, w > 0, gets
 * an output credit of w bytes.  STDOUT and STDERR payload bytes together
 * spend it; the agent reads the exec's pipes (or pty) only while credit is
 * left and never reads more than the credit, so at most w bytes of output
 * are ever unacknowledged and a child that produces more blocks in write().
 * The host gives credit back with OUT_ACK{n} on the exec's stream when it
 * has consumed n more bytes.  Credit never exceeds w: an OUT_ACK for more
 * than is outstanding is a host bug, and the agent clamps it (and logs);
 * OUT_ACK{AP_OUT_ACK_RELEASE} ends flow control for the exec (the host
 * stopped caring: output flows as without a window, so the exec can finish
 * and its slot be freed).  OUT_ACK for a stream without a running exec, or
 * for an exec without a window, is ignored.  Without APT_OUT_WINDOW (or
 * with 0) an exec behaves as in version 1: output is sent as fast as the
 * child produces it and the channel allows.  The order stays STARTED, data,
 * EXIT: once the child is reaped the agent still sends what is left in its
 * pipes, as credit allows, and EXIT after the last byte — so an EXIT may
 * wait for credit (a timeout still kills the child on time; its EXIT then
 * follows the remaining output).  The host watches the window too: more
 * than w bytes not yet acknowledged by it is an agent that ignores flow
 * control, a protocol error.  Other execs on the channel are not held back
 * by an exec that waits for credit.
 *
 * Control requests (SET_TIME, ADD_ENTROPY, PING) also use a fresh stream id
 * and get OK or ERROR (PONG for PING) on it.  Like every request but HELLO,
 * a PING outside a session gets ERROR ("no session"): a host that pings
 * during a long exec learns that the agent it talked to is gone (killed and
 * restarted by init, which keeps a virtio-serial channel open).  Agents of
 * version 1 answered PING with PONG even then.
 *
 * A malformed frame is a session error: the receiver sends ERROR on stream 0,
 * drops the session and resynchronises on the next magic.  It never exits.
 *
 * This file and agent_proto.c use libc only: the static agent builds them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The newest protocol this code speaks, and the oldest, which is what a
 * host puts in its HELLO (see "Versions" above). */
#define AP_VERSION      2
#define AP_VERSION_BASE 1
/* virtio-serial port name (QEMU) and vsock port (Firecracker) of the agent. */
#define AP_SERIAL_PORT_NAME "org.noid.agent"
#define AP_VSOCK_PORT 1024
#define AP_MAGIC 0x4E41
#define AP_HEADER_LEN 12
/* Largest payload either side accepts (an EXEC with a large env fits). */
#define AP_MAX_PAYLOAD (4u * 1024 * 1024)
/* Data frames are cut to this size so one stream cannot hog the channel. */
#define AP_DATA_CHUNK (64u * 1024)
#define AP_STDIN_WINDOW (256u * 1024)
#define AP_MAX_ARGS 4096
#define AP_MAX_ENV 256
#define AP_MAX_STRING (128u * 1024)
#define AP_MAX_ENTROPY 4096

enum ap_type {
    /* host -> agent */
    AP_HELLO = 1,
    AP_EXEC = 2,
    AP_STDIN = 3,
    AP_KILL = 4,
    AP_RESIZE = 5,
    AP_SET_TIME = 6,
    AP_ADD_ENTROPY = 7,
    AP_PING = 8,
    AP_OUT_ACK = 9, /* v2 */
    /* agent -> host */
    AP_HELLO_ACK = 32,
    AP_STARTED = 33,
    AP_STDOUT = 34,
    AP_STDERR = 35,
    AP_EXIT = 36,
    AP_WINDOW = 37,
    AP_OK = 38,
    AP_ERROR = 39,
    AP_PONG = 40,
};

struct ap_frame {
    uint8_t type;
    uint8_t flags;
    uint32_t stream;
    uint32_t len;
    const uint8_t *payload; /* points into the caller's buffer */
};

bool ap_type_is_known(uint8_t type);
const char *ap_type_name(uint8_t type);

/* Write a frame header into out. */
void ap_header_encode(uint8_t out[AP_HEADER_LEN], uint8_t type, uint32_t stream, uint32_t len);

/* Try to take one frame from the front of buf.
 * Returns the number of bytes it spans (> 0) and fills *ret; 0 if more bytes
 * are needed; -EBADMSG for a bad magic, unknown type or non-zero flags;
 * -EMSGSIZE for a payload over AP_MAX_PAYLOAD. */
int ap_frame_parse(const uint8_t *buf, size_t len, struct ap_frame *ret);

/* After a bad frame: offset of the next possible frame start (the next magic
 * byte pair after offset 0), or len if there is none. */
size_t ap_resync(const uint8_t *buf, size_t len);

/* ---- payloads ---- */

struct ap_hello {
    uint32_t version;
    uint64_t nonce;
    char agent_version[64]; /* HELLO_ACK only */
};
/* out must hold AP_HELLO_MAX bytes; returns the length used. */
#define AP_HELLO_MAX (12 + 63) /* the version string is at most 63 bytes */
size_t ap_hello_encode(const struct ap_hello *h, bool with_version, uint8_t *out);
int ap_hello_decode(const uint8_t *p, size_t len, struct ap_hello *ret);

struct ap_exit {
    int32_t code;     /* exit status when signal == 0 */
    uint32_t signal;  /* terminating signal, 0 if it exited */
    bool timed_out;   /* killed because timeout_ms passed */
};
#define AP_EXIT_LEN 9
void ap_exit_encode(const struct ap_exit *x, uint8_t out[AP_EXIT_LEN]);
int ap_exit_decode(const uint8_t *p, size_t len, struct ap_exit *ret);

/* u32 payloads: STARTED{pid}, KILL{signal}, WINDOW{bytes}, OUT_ACK{bytes} */
void ap_u32_encode(uint32_t v, uint8_t out[4]);
int ap_u32_decode(const uint8_t *p, size_t len, uint32_t *ret);
/* u64 payloads: SET_TIME{realtime ns} */
void ap_u64_encode(uint64_t v, uint8_t out[8]);
int ap_u64_decode(const uint8_t *p, size_t len, uint64_t *ret);
/* RESIZE{rows, cols} */
void ap_resize_encode(uint16_t rows, uint16_t cols, uint8_t out[4]);
int ap_resize_decode(const uint8_t *p, size_t len, uint16_t *rows, uint16_t *cols);

/* EXEC payload: a sequence of TLVs {u16 tag, u32 len, bytes}. */
enum ap_exec_tag {
    APT_ARG = 1,        /* repeated, in order; at least one */
    APT_ENV = 2,        /* repeated "NAME=VALUE" */
    APT_CWD = 3,
    APT_TTY = 4,        /* u8 */
    APT_TIMEOUT_MS = 5, /* u32, 0 = none */
    APT_ROWS = 6,       /* u16 */
    APT_COLS = 7,       /* u16 */
    APT_STDIN = 8,      /* u8: 1 = host sends stdin frames; 0 = stdin is /dev/null */
    APT_OUT_WINDOW = 9, /* u32: output credit in bytes, 0 = none (v2 agents only) */
};

/* OUT_ACK{n} with this n: no more flow control for the exec. */
#define AP_OUT_ACK_RELEASE UINT32_MAX

struct ap_exec_req {
    char **argv; /* NULL-terminated */
    size_t argc;
    char **env;  /* NULL-terminated */
    size_t nenv;
    char *cwd;   /* NULL = /root (falling back to /) */
    bool tty;
    bool stdin_open;
    uint32_t timeout_ms;
    uint16_t rows, cols;
    uint32_t out_window; /* 0 = no output flow control (and no APT_OUT_WINDOW sent) */
};

/* Encode into a malloc'd buffer; -E2BIG if it would exceed AP_MAX_PAYLOAD. */
int ap_exec_req_encode(const struct ap_exec_req *r, uint8_t **ret, size_t *ret_len);
/* Decode, checking every bound (AP_MAX_ARGS, AP_MAX_ENV, AP_MAX_STRING, no NUL
 * inside strings, unknown tags refused).  On failure *ret is freed. */
int ap_exec_req_decode(const uint8_t *p, size_t len, struct ap_exec_req *ret);
void ap_exec_req_free(struct ap_exec_req *r);
