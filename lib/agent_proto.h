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
 * (output flow control, below).  Additions of version 3: the file
 * operations (frames FS, FS_DATA, FS_CANCEL, FS_REPLY, FS_ERRNO, FS_RDATA,
 * FS_DIRENTS; OUT_ACK and WINDOW on file streams).  A host that got
 * HELLO_ACK{1 or 2} must not send any of them (exec keeps working); it
 * answers its own file requests with "the guest agent is too old".
 * Additions of version 4: the control frame SET_NETWORK (struct ap_net), so
 * a restored or cloned guest drops the address, MAC and routes of its
 * snapshot.  A host that got HELLO_ACK{1..3} must not send it.
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
 * File operations (v3) are described in the block before enum ap_fs_op.
 *
 * Control requests (SET_TIME, ADD_ENTROPY, SET_NETWORK, PING) also use a
 * fresh stream id and get OK or ERROR (PONG for PING) on it.  Like every
 * request but HELLO, a PING outside a session gets ERROR ("no session"): a
 * host that pings during a long exec learns that the agent it talked to is
 * gone (killed and restarted by init, which keeps a virtio-serial channel
 * open).  Agents of version 1 answered PING with PONG even then.
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
#define AP_VERSION      4
#define AP_VERSION_BASE 1
/* virtio-serial port name (QEMU) and vsock port (Firecracker) of the agent. */
#define AP_SERIAL_PORT_NAME "org.noid.agent"
#define AP_VSOCK_PORT       1024
#define AP_MAGIC            0x4E41
#define AP_HEADER_LEN       12
/* Largest payload either side accepts (an EXEC with a large env fits). */
#define AP_MAX_PAYLOAD (4u * 1024 * 1024)
/* Data frames are cut to this size so one stream cannot hog the channel. */
#define AP_DATA_CHUNK   (64u * 1024)
#define AP_STDIN_WINDOW (256u * 1024)
#define AP_MAX_ARGS     4096
#define AP_MAX_ENV      256
#define AP_MAX_STRING   (128u * 1024)
#define AP_MAX_ENTROPY  4096

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
    AP_OUT_ACK = 9,      /* v2 */
    AP_FS = 10,          /* v3: a file request (struct ap_fs_req) */
    AP_FS_DATA = 11,     /* v3: upload bytes of a WRITE_FILE; empty = end */
    AP_FS_CANCEL = 12,   /* v3: end a streaming file request early */
    AP_SET_NETWORK = 13, /* v4: configure the guest's NIC (struct ap_net) */
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
    AP_FS_REPLY = 41,   /* v3: a file request succeeded; payload by op */
    AP_FS_ERRNO = 42,   /* v3: a file request failed: errno + message */
    AP_FS_RDATA = 43,   /* v3: file bytes of a PREAD or READ_FILE */
    AP_FS_DIRENTS = 44, /* v3: a batch of READDIR entries */
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
    int32_t code;    /* exit status when signal == 0 */
    uint32_t signal; /* terminating signal, 0 if it exited */
    bool timed_out;  /* killed because timeout_ms passed */
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

/* SET_NETWORK{struct ap_net} (v4): the guest's one NIC, as the host leased
 * it.  up: the NIC gets mac, exactly the IPv4 address addr/prefix, a default
 * route via gateway (unless 0.0.0.0) and, unless dns is 0.0.0.0, an
 * /etc/resolv.conf naming dns; its neighbour (ARP) entries are flushed, so a
 * clone never talks to its original's gateway MAC.  !up: the NIC loses its
 * IPv4 addresses, routes and neighbours and goes down (a VM without a
 * lease).  Answered OK once the guest kernel took all of it, else ERROR with
 * the failing step; a payload that does not decode is answered ERROR too
 * (the session goes on).
 *
 * Payload, AP_NET_LEN bytes: u8 flags (bit 0 = up, other bits 0), mac[6],
 * addr[4], u8 prefix, gateway[4], dns[4]; addresses in network order.  When
 * up is false every other byte is 0 (ap_net_encode() writes them so). */
struct ap_net {
    bool up; /* false: no IPv4 address or route on the NIC, link down */
    uint8_t mac[6];
    uint8_t addr[4];    /* guest address */
    uint8_t prefix;     /* 1..32 */
    uint8_t gateway[4]; /* 0.0.0.0 = no default route */
    uint8_t dns[4];     /* 0.0.0.0 = no resolver */
};
#define AP_NET_LEN     20 /* u8 flags, mac[6], addr[4], prefix, gateway[4], dns[4] */
#define AP_NET_FLAG_UP 0x01u
void ap_net_encode(const struct ap_net *n, uint8_t out[AP_NET_LEN]);
/* Returns 0, or -EINVAL for: a length other than AP_NET_LEN, unknown flag
 * bits; when up: prefix 0 or over 32, a multicast or all-zero MAC, addr
 * 0.0.0.0, a gateway (when set) outside addr/prefix or equal to addr (so a
 * /32 has no gateway); when down: any non-zero byte after the flags.  *ret
 * is untouched on failure. */
int ap_net_decode(const uint8_t *p, size_t len, struct ap_net *ret);
/* Whether a is inside b/prefix (prefix 0..32). */
bool ap_net_in_subnet(const uint8_t a[4], const uint8_t b[4], uint8_t prefix);

/* EXEC payload: a sequence of TLVs {u16 tag, u32 len, bytes}. */
enum ap_exec_tag {
    APT_ARG = 1, /* repeated, in order; at least one */
    APT_ENV = 2, /* repeated "NAME=VALUE" */
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
    char **env; /* NULL-terminated */
    size_t nenv;
    char *cwd; /* NULL = /root (falling back to /) */
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

/* ---- file operations (v3) ----
 *
 * Requests.  The host sends FS{op, TLVs} on a fresh stream id; the stream id
 * is the request id, so any number of requests (up to the agent's bounds)
 * are in flight at once and their answers interleave.  Payload: u8 op
 * (enum ap_fs_op), then TLVs {u16 tag, u32 len, value} as in EXEC (enum
 * ap_fs_tag).  Every tag at most once; which tags an op requires and
 * allows is fixed (ap_fs_req_check(), table in agent_proto.c); an unknown
 * op or tag, a duplicate, a missing required or a foreign tag, a value of
 * the wrong length or a NUL inside a string makes the payload malformed
 * (the session error of every frame, see above).  A well-formed request
 * over a bound or with a bad value (path over AP_FS_PATH_MAX: ENAMETOOLONG;
 * data or length over AP_FS_IO_MAX: E2BIG; unknown flag bits, mode bits
 * above 07777, a relative path, nsec out of range, a window outside
 * AP_FS_WINDOW_MIN..AP_FS_WINDOW_MAX: EINVAL) is answered with FS_ERRNO on
 * its stream and the session goes on.
 *
 * Answers.  Every request ends with exactly one FS_REPLY (success) or
 * FS_ERRNO{u32 errno, message} on its stream, after every data frame of it;
 * then the stream id is free again.  errno values are Linux's generic ones
 * (asm-generic/errno*.h), as the guest's syscalls returned them.  Modes
 * and file types are Linux st_mode bits.
 *
 * Paths are the guest's own, absolute, resolved by the agent's syscalls
 * inside the guest (symlinks included; "..", spaces and any bytes but NUL
 * are just path bytes).  The host never resolves or names anything on its
 * side with them.
 *
 * Ops and their answers (FS_REPLY payloads; "attr" is struct ap_fs_attr,
 * AP_FS_ATTR_LEN bytes, of what the op changed, after the change: stat()
 * for ops that follow symlinks (TRUNCATE, CHMOD, CHOWN and UTIMENS without
 * AP_NOFOLLOW), lstat() otherwise; empty if the path vanished in between):
 *   STAT{path} LSTAT{path} FSTAT{handle}           attr
 *   READDIR{path, window}      FS_DIRENTS frames, then u64 entry count
 *   OPEN{path, flags (AP_OPEN_*), mode?}           u32 handle + attr
 *   CLOSE{handle}                                  empty
 *   PREAD{handle, offset, length <= AP_FS_IO_MAX}  FS_RDATA frames (fewer
 *                              bytes than asked = end of file), then u64 count
 *   PWRITE{handle, offset, data <= AP_FS_IO_MAX}   u64 bytes written
 *   READ_FILE{path, offset?, length?, window}      FS_RDATA frames to the
 *                              end of file or length, then u64 count
 *   WRITE_FILE{path, flags (AP_WRITE_*)?, mode?}   then FS_DATA frames from
 *                              the host, an empty one last; u64 bytes written
 *   TRUNCATE{path | handle, length}                attr
 *   UNLINK{path} RMDIR{path}                       empty
 *   MKDIR{path, mode?, flags (AP_MKDIR_PARENTS)?}  attr
 *   RENAME{path, path2, flags (AP_RENAME_*)?}      empty (path2 = new name)
 *   SYMLINK{path, path2}                           attr (path2 = the link's
 *                              target, stored as given: may be relative)
 *   LINK{path, path2}                              attr (path2 = new name)
 *   READLINK{path}                                 the target's bytes
 *   CHMOD{path, mode}                              attr
 *   CHOWN{path, uid?, gid?, flags (AP_NOFOLLOW)?}  attr (absent = unchanged)
 *   UTIMENS{path, atime?, mtime?, flags (AP_NOFOLLOW)?}  attr (absent =
 *                              omitted; nsec AP_TIME_NOW / AP_TIME_OMIT)
 *   STATFS{path}                                   struct ap_fs_statfs
 *   FSYNC{handle, flags (AP_FSYNC_DATA)?}          empty
 * "create" is OPEN with AP_OPEN_CREAT (| AP_OPEN_EXCL).  OPEN, READ_FILE and
 * WRITE_FILE serve regular files only (a FIFO or a device could block the
 * single-threaded agent): anything else is EISDIR for a directory, EINVAL
 * otherwise.  Handles belong to the session: a new HELLO or a dropped
 * session closes them all; the agent keeps at most its own bound open
 * (EMFILE beyond it).
 *
 * Streaming downloads (READ_FILE, READDIR) reuse exec's output flow
 * control: the request's window w (AP_FS_WINDOW_MIN..AP_FS_WINDOW_MAX) is
 * the credit, FS_RDATA / FS_DIRENTS payload bytes spend it, OUT_ACK{n} on
 * the stream gives n back (clamped to w), OUT_ACK{AP_OUT_ACK_RELEASE} ends
 * flow control.  The agent reads the file only as far as credit allows,
 * at most AP_FS_CHUNK_MAX per frame, so it holds no more than one chunk
 * per transfer; the host holds at most w.  PREAD needs no window: its
 * length is the credit.  FS_DIRENTS batches whole entries (struct
 * ap_fs_dirent: name + lstat attr, no "." or ".."), never over the credit
 * or AP_FS_CHUNK_MAX bytes.
 *
 * Streaming uploads (WRITE_FILE) reuse exec's stdin flow control: right
 * after FS the host may send FS_DATA frames of at most AP_FS_CHUNK_MAX
 * bytes, never more than AP_FS_WRITE_WINDOW bytes not yet acknowledged by
 * WINDOW{n} frames on the stream.  The agent writes each frame to the file
 * before it acknowledges it and before it reads the next frame, so it
 * buffers nothing; the window bounds what an upload puts in the channel
 * ahead of other streams' frames (the agent cannot see a host overrun it
 * and does not try).  An empty FS_DATA ends the file: the agent fsyncs
 * it (with AP_WRITE_FSYNC), closes it and answers FS_REPLY.  If the file
 * cannot be opened or a write fails the agent answers FS_ERRNO at once
 * and ignores the stream's further FS_DATA; the host stops on that.  An
 * FS_DATA over AP_FS_CHUNK_MAX ends the transfer with FS_ERRNO{E2BIG}.
 * Modes are applied as given (no umask); without APF_MODE a new file is
 * 0644 and an atomic replacement keeps the old file's mode.
 * AP_WRITE_ATOMIC writes to a temporary name in the same directory and
 * renames it over the path at the end (with AP_WRITE_EXCL: links it, so
 * an existing path fails with EEXIST); on any failure, a cancel or the end
 * of the session the temporary file is removed, so the path holds either
 * the old or the whole new content.
 *
 * FS_CANCEL on the stream of a running READ_FILE, READDIR, PREAD or
 * WRITE_FILE ends it with FS_ERRNO{ECANCELED}; for any other stream it is
 * ignored (the request may just have ended).  FS_DATA and OUT_ACK for a
 * stream without a matching transfer are ignored likewise.
 *
 * Blocking: the agent is single-threaded and its syscalls on regular files
 * and directories are taken as fast; a request on a hung file system (a
 * dead NFS mount inside the guest) stalls the agent.  The host's request
 * timeouts are the remedy. */

/* A path, without its NUL (PATH_MAX includes it). */
#define AP_FS_PATH_MAX 4095
/* A directory entry's name. */
#define AP_FS_NAME_MAX 255
/* PREAD length and PWRITE data. */
#define AP_FS_IO_MAX (1024u * 1024)
/* FS_DATA, FS_RDATA and FS_DIRENTS payloads. */
#define AP_FS_CHUNK_MAX AP_DATA_CHUNK
/* Bounds of a READ_FILE / READDIR window. */
#define AP_FS_WINDOW_MIN (4u * 1024)
#define AP_FS_WINDOW_MAX (64u * 1024 * 1024)
/* FS_DATA bytes a host may have sent and not seen acknowledged. */
#define AP_FS_WRITE_WINDOW (1024u * 1024)
/* The message of an FS_ERRNO. */
#define AP_FS_MSG_MAX 256

enum ap_fs_op {
    APO_STAT = 1,
    APO_LSTAT = 2,
    APO_FSTAT = 3,
    APO_READDIR = 4,
    APO_OPEN = 5,
    APO_CLOSE = 6,
    APO_PREAD = 7,
    APO_PWRITE = 8,
    APO_READ_FILE = 9,
    APO_WRITE_FILE = 10,
    APO_TRUNCATE = 11,
    APO_UNLINK = 12,
    APO_MKDIR = 13,
    APO_RMDIR = 14,
    APO_RENAME = 15,
    APO_SYMLINK = 16,
    APO_LINK = 17,
    APO_READLINK = 18,
    APO_CHMOD = 19,
    APO_CHOWN = 20,
    APO_UTIMENS = 21,
    APO_STATFS = 22,
    APO_FSYNC = 23,
};
#define APO_MAX APO_FSYNC

enum ap_fs_tag {
    APF_PATH = 1,    /* string, absolute */
    APF_PATH2 = 2,   /* string: RENAME/LINK new name (absolute), SYMLINK target */
    APF_HANDLE = 3,  /* u32 */
    APF_OFFSET = 4,  /* u64 */
    APF_LENGTH = 5,  /* u64 */
    APF_MODE = 6,    /* u32, permission bits only (07777) */
    APF_FLAGS = 7,   /* u32, bits by op (below) */
    APF_UID = 8,     /* u32 */
    APF_GID = 9,     /* u32 */
    APF_ATIME = 10,  /* s64 seconds, u32 nanoseconds */
    APF_MTIME = 11,  /* s64 seconds, u32 nanoseconds */
    APF_WINDOW = 12, /* u32 */
    APF_DATA = 13,   /* bytes */
};
#define APF_MAX APF_DATA

/* APF_FLAGS of OPEN.  The access mode is the low two bits. */
#define AP_OPEN_RDONLY   0u
#define AP_OPEN_WRONLY   1u
#define AP_OPEN_RDWR     2u
#define AP_OPEN_ACCMODE  3u
#define AP_OPEN_CREAT    (1u << 2)
#define AP_OPEN_EXCL     (1u << 3)
#define AP_OPEN_TRUNC    (1u << 4)
#define AP_OPEN_APPEND   (1u << 5)
#define AP_OPEN_NOFOLLOW (1u << 6)
/* APF_FLAGS of WRITE_FILE.  Without any, the file is created or truncated. */
#define AP_WRITE_EXCL    (1u << 0) /* fail with EEXIST if the path exists */
#define AP_WRITE_APPEND  (1u << 1) /* append instead of truncating */
#define AP_WRITE_ATOMIC  (1u << 2) /* temporary name + rename (not with APPEND) */
#define AP_WRITE_PARENTS (1u << 3) /* create missing parent directories (0755) */
#define AP_WRITE_FSYNC   (1u << 4) /* fsync before the reply */
/* APF_FLAGS of MKDIR: create missing parents, an existing directory is
 * success (mkdir -p). */
#define AP_MKDIR_PARENTS (1u << 0)
/* APF_FLAGS of RENAME (renameat2) */
#define AP_RENAME_NOREPLACE (1u << 0)
#define AP_RENAME_EXCHANGE  (1u << 1)
/* APF_FLAGS of CHOWN and UTIMENS: act on a symlink itself */
#define AP_NOFOLLOW (1u << 0)
/* APF_FLAGS of FSYNC: fdatasync */
#define AP_FSYNC_DATA (1u << 0)
/* Special nanosecond values of APF_ATIME / APF_MTIME (Linux's UTIME_*) */
#define AP_TIME_NOW  ((1u << 30) - 1)
#define AP_TIME_OMIT ((1u << 30) - 2)

struct ap_fs_time {
    int64_t sec;
    uint32_t nsec; /* < 1e9, or AP_TIME_NOW / AP_TIME_OMIT */
};

struct ap_fs_req {
    uint8_t op;       /* enum ap_fs_op */
    uint32_t present; /* bit (1u << tag) for each tag given */
    char path[AP_FS_PATH_MAX + 1];
    char path2[AP_FS_PATH_MAX + 1];
    uint32_t handle;
    uint64_t offset, length;
    uint32_t mode, flags, uid, gid, window;
    struct ap_fs_time atime, mtime;
    const uint8_t *data; /* APF_DATA: points into the caller's buffer */
    size_t data_len;
};

static inline bool ap_fs_req_has(const struct ap_fs_req *r, enum ap_fs_tag tag)
{
    return r->present & (1u << tag);
}

const char *ap_fs_op_name(uint8_t op);

/* Check r against its op's rules (see "Requests" above).  Returns 0;
 * -EBADMSG (unknown op, a required tag missing, a tag the op does not
 * take); or -ENAMETOOLONG, -E2BIG, -EINVAL for a bad value.  *ret_why (if
 * not NULL) says which rule failed, as a static string. */
int ap_fs_req_check(const struct ap_fs_req *r, const char **ret_why);

/* Encode r (only the tags in r->present) into a malloc'd buffer.  Returns
 * 0, or what ap_fs_req_check() returns, or -ENOMEM. */
int ap_fs_req_encode(const struct ap_fs_req *r, uint8_t **ret, size_t *ret_len);

/* Decode an FS payload into *ret (data points into p) and check it.
 * Returns 0, -EBADMSG for a malformed payload, or the value errors of
 * ap_fs_req_check(); *ret_why (if not NULL) gets the reason.  *ret is
 * undefined on failure, except that ret->op is set once the op was read. */
int ap_fs_req_decode(const uint8_t *p, size_t len, struct ap_fs_req *ret, const char **ret_why);

/* File attributes, as lstat() gives them. */
struct ap_fs_attr {
    uint32_t mode; /* type and permission bits */
    uint32_t nlink, uid, gid, blksize;
    uint64_t ino, size, blocks, rdev;
    struct ap_fs_time atime, mtime, ctime;
};
#define AP_FS_ATTR_LEN 88
void ap_fs_attr_encode(const struct ap_fs_attr *a, uint8_t out[AP_FS_ATTR_LEN]);
/* -EBADMSG unless len == AP_FS_ATTR_LEN and every nsec < 1e9. */
int ap_fs_attr_decode(const uint8_t *p, size_t len, struct ap_fs_attr *ret);

/* OPEN's reply: u32 handle + attr */
#define AP_FS_OPEN_REPLY_LEN (4 + AP_FS_ATTR_LEN)

struct ap_fs_statfs {
    uint32_t bsize, frsize, namemax;
    uint64_t blocks, bfree, bavail, files, ffree;
};
#define AP_FS_STATFS_LEN 52
void ap_fs_statfs_encode(const struct ap_fs_statfs *s, uint8_t out[AP_FS_STATFS_LEN]);
int ap_fs_statfs_decode(const uint8_t *p, size_t len, struct ap_fs_statfs *ret);

/* FS_ERRNO: u32 errno (1..AP_FS_ERRNO_LIMIT-1), then a message of at most
 * AP_FS_MSG_MAX bytes without NUL (may be empty). */
#define AP_FS_ERRNO_LIMIT 4096
#define AP_FS_ERRNO_MAX   (4 + AP_FS_MSG_MAX)
/* msg may be NULL; a longer one is cut.  Returns the length used. */
size_t ap_fs_errno_encode(int err, const char *msg, uint8_t out[AP_FS_ERRNO_MAX]);
int ap_fs_errno_decode(const uint8_t *p, size_t len, int *ret_err, char ret_msg[AP_FS_MSG_MAX + 1]);

/* One entry of FS_DIRENTS: u16 name length, name, attr.  A name is
 * 1..AP_FS_NAME_MAX bytes, neither "." nor "..", without '/' or NUL. */
#define AP_FS_DIRENT_MAX (2 + AP_FS_NAME_MAX + AP_FS_ATTR_LEN)
/* Returns the bytes used, or -EINVAL for a name that breaks the rules. */
int ap_fs_dirent_encode(const char *name, const struct ap_fs_attr *a,
                        uint8_t out[AP_FS_DIRENT_MAX]);
/* Take the entry at p[*off] of a FS_DIRENTS payload p[len]: returns 1 and
 * advances *off, 0 at the end, -EBADMSG for a malformed entry. */
int ap_fs_dirent_next(const uint8_t *p, size_t len, size_t *off, char ret_name[AP_FS_NAME_MAX + 1],
                      struct ap_fs_attr *ret_attr);

/* READLINK's reply: 1..AP_FS_PATH_MAX bytes without NUL, into a string. */
int ap_fs_path_decode(const uint8_t *p, size_t len, char ret[AP_FS_PATH_MAX + 1]);
