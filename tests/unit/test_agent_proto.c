/* test_agent_proto.c — framing, payload codecs and their bounds; and, in
 * the "client" case, the host side of the protocol's version 2 additions
 * (server/engine/agent_client.c) against a scripted fake agent on a
 * socketpair: version negotiation, APT_OUT_WINDOW only for a v2 agent,
 * OUT_ACK batching and capping, the output window enforced on the agent,
 * RESIZE, and the release of flow control when an exec is freed.  The
 * file operations of version 3: every request's round trip, every
 * malformed payload and every bound refused with its error and a reason,
 * and the reply codecs (attr, statfs, FS_ERRNO, FS_DIRENTS, READLINK). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_client.h"
#include "agent_proto.h"
#include "timeutil.h"
#include "unit.h"

START_TEST(frame_round_trip_and_partial)
{
    uint8_t buf[64];
    struct ap_frame f;

    ap_header_encode(buf, AP_STDOUT, 0xdeadbeef, 5);
    memcpy(buf + AP_HEADER_LEN, "hello", 5);
    for (size_t n = 0; n < AP_HEADER_LEN + 5; n++)
        ck_assert_int_eq(ap_frame_parse(buf, n, &f), 0); /* needs more */
    ck_assert_int_eq(ap_frame_parse(buf, AP_HEADER_LEN + 5, &f), AP_HEADER_LEN + 5);
    ck_assert_int_eq(f.type, AP_STDOUT);
    ck_assert_uint_eq(f.stream, 0xdeadbeef);
    ck_assert_uint_eq(f.len, 5);
    ck_assert_mem_eq(f.payload, "hello", 5);
}
END_TEST

START_TEST(bad_frames)
{
    uint8_t buf[AP_HEADER_LEN];
    struct ap_frame f;

    ap_header_encode(buf, AP_STDOUT, 1, 0);
    buf[0] = 'X';
    ck_assert_int_eq(ap_frame_parse(buf, sizeof(buf), &f), -EBADMSG);
    ap_header_encode(buf, 200, 1, 0);
    ck_assert_int_eq(ap_frame_parse(buf, sizeof(buf), &f), -EBADMSG);
    ap_header_encode(buf, AP_STDOUT, 1, 0);
    buf[3] = 1; /* reserved flags */
    ck_assert_int_eq(ap_frame_parse(buf, sizeof(buf), &f), -EBADMSG);
    ap_header_encode(buf, AP_STDOUT, 1, AP_MAX_PAYLOAD + 1);
    ck_assert_int_eq(ap_frame_parse(buf, sizeof(buf), &f), -EMSGSIZE);
}
END_TEST

START_TEST(resync_finds_next_magic)
{
    uint8_t buf[32] = "garbage";
    size_t off;
    struct ap_frame f;

    ap_header_encode(buf + 7, AP_PONG, 9, 0);
    off = ap_resync(buf, 7 + AP_HEADER_LEN);
    ck_assert_uint_eq(off, 7);
    ck_assert_int_eq(ap_frame_parse(buf + off, AP_HEADER_LEN, &f), AP_HEADER_LEN);
    ck_assert_uint_eq(ap_resync((const uint8_t *)"abcdef", 6), 6);
}
END_TEST

START_TEST(hello_and_exit)
{
    struct ap_hello h = {.version = 1, .nonce = 0x0102030405060708ull}, back;
    struct ap_exit x = {.code = -1, .signal = 9, .timed_out = true}, xb;
    uint8_t p[AP_HELLO_MAX], e[AP_EXIT_LEN];
    size_t n;

    strcpy(h.agent_version, "noid-agent 1");
    n = ap_hello_encode(&h, true, p);
    ck_assert_int_eq(ap_hello_decode(p, n, &back), 0);
    ck_assert_uint_eq(back.nonce, h.nonce);
    ck_assert_str_eq(back.agent_version, "noid-agent 1");
    ck_assert_int_eq(ap_hello_decode(p, 11, &back), -EBADMSG);
    ap_exit_encode(&x, e);
    ck_assert_int_eq(ap_exit_decode(e, AP_EXIT_LEN, &xb), 0);
    ck_assert_int_eq(xb.code, -1);
    ck_assert_uint_eq(xb.signal, 9);
    ck_assert(xb.timed_out);
    e[8] = 2;
    ck_assert_int_eq(ap_exit_decode(e, AP_EXIT_LEN, &xb), -EBADMSG);
}
END_TEST

START_TEST(exec_request_round_trip)
{
    char *argv[] = {"sh", "-c", "echo $A", NULL};
    char *env[] = {"A=1", "B==", NULL};
    struct ap_exec_req in = {.argv = argv,
                             .argc = 3,
                             .env = env,
                             .nenv = 2,
                             .cwd = "/tmp",
                             .tty = true,
                             .stdin_open = true,
                             .timeout_ms = 1500,
                             .rows = 24,
                             .cols = 80};
    struct ap_exec_req out;
    uint8_t *p;
    size_t n;

    ck_assert_int_eq(ap_exec_req_encode(&in, &p, &n), 0);
    ck_assert_int_eq(ap_exec_req_decode(p, n, &out), 0);
    ck_assert_uint_eq(out.argc, 3);
    ck_assert_str_eq(out.argv[2], "echo $A");
    ck_assert_ptr_null(out.argv[3]);
    ck_assert_uint_eq(out.nenv, 2);
    ck_assert_str_eq(out.env[1], "B==");
    ck_assert_str_eq(out.cwd, "/tmp");
    ck_assert(out.tty && out.stdin_open);
    ck_assert_uint_eq(out.timeout_ms, 1500);
    ck_assert_uint_eq(out.rows, 24);
    ck_assert_uint_eq(out.cols, 80);
    ap_exec_req_free(&out);
    /* every truncation of a valid payload is refused or parses to a prefix,
     * never crashes; a cut inside a TLV is refused */
    for (size_t cut = 0; cut < n; cut++) {
        struct ap_exec_req o2;
        if (ap_exec_req_decode(p, cut, &o2) == 0)
            ap_exec_req_free(&o2);
    }
    ck_assert_int_eq(ap_exec_req_decode(p, 3, &out), -EBADMSG);
    free(p);
}
END_TEST

START_TEST(exec_request_rejects)
{
    uint8_t p[32] = {0};
    struct ap_exec_req out;

    /* no argv at all */
    ck_assert_int_eq(ap_exec_req_decode(p, 0, &out), -EBADMSG);
    /* unknown tag */
    p[0] = 0;
    p[1] = 99;
    p[2] = p[3] = p[4] = 0;
    p[5] = 1;
    p[6] = 'x';
    ck_assert_int_eq(ap_exec_req_decode(p, 7, &out), -EBADMSG);
    /* length beyond the payload */
    p[1] = APT_ARG;
    p[5] = 200;
    ck_assert_int_eq(ap_exec_req_decode(p, 7, &out), -EBADMSG);
    /* NUL inside an argument */
    p[5] = 3;
    memcpy(p + 6, "a\0b", 3);
    ck_assert_int_eq(ap_exec_req_decode(p, 9, &out), -EBADMSG);
    /* env without '=' */
    p[1] = APT_ENV;
    memcpy(p + 6, "abc", 3);
    ck_assert_int_eq(ap_exec_req_decode(p, 9, &out), -EBADMSG);
}
END_TEST

START_TEST(exec_request_too_large)
{
    static char big[AP_MAX_STRING + 2];
    char *argv[] = {big, NULL};
    struct ap_exec_req in = {.argv = argv, .argc = 1};
    uint8_t *p = NULL;
    size_t n;

    memset(big, 'a', sizeof(big) - 1);
    ck_assert_int_eq(ap_exec_req_encode(&in, &p, &n), -E2BIG);
}
END_TEST

START_TEST(v2_additions)
{
    uint8_t b[4];
    uint32_t v;

    ck_assert(ap_type_is_known(AP_OUT_ACK));
    ck_assert_str_eq(ap_type_name(AP_OUT_ACK), "OUT_ACK");
    ck_assert_str_eq(ap_type_name(AP_PING), "PING");
    ck_assert_int_lt(AP_VERSION_BASE, AP_VERSION);
    ap_u32_encode(AP_OUT_ACK_RELEASE, b);
    ck_assert_int_eq(ap_u32_decode(b, 4, &v), 0);
    ck_assert_uint_eq(v, AP_OUT_ACK_RELEASE);
    ck_assert_int_eq(ap_u32_decode(b, 3, &v), -EBADMSG);
}
END_TEST

/* Whether the TLV payload p[len] holds tag anywhere. */
static bool tlv_has(const uint8_t *p, size_t len, uint16_t tag)
{
    while (len >= 6) {
        uint32_t vlen =
            ((uint32_t)p[2] << 24) | ((uint32_t)p[3] << 16) | ((uint32_t)p[4] << 8) | p[5];
        if (((p[0] << 8) | p[1]) == tag)
            return true;
        if (vlen > len - 6)
            return false;
        p += 6 + vlen;
        len -= 6 + vlen;
    }
    return false;
}

START_TEST(exec_request_out_window)
{
    char *argv[] = {"yes", NULL};
    struct ap_exec_req in = {.argv = argv, .argc = 1, .out_window = 65536}, out;
    uint8_t *p, *p1;
    size_t n, n1;

    ck_assert_int_eq(ap_exec_req_encode(&in, &p, &n), 0);
    ck_assert(tlv_has(p, n, APT_OUT_WINDOW));
    ck_assert_int_eq(ap_exec_req_decode(p, n, &out), 0);
    ck_assert_uint_eq(out.out_window, 65536);
    ap_exec_req_free(&out);

    /* no window: no tag at all, so a v1 agent can take the request */
    in.out_window = 0;
    ck_assert_int_eq(ap_exec_req_encode(&in, &p1, &n1), 0);
    ck_assert(!tlv_has(p1, n1, APT_OUT_WINDOW));
    ck_assert_uint_eq(n1 + 10, n);
    ck_assert_int_eq(ap_exec_req_decode(p1, n1, &out), 0);
    ck_assert_uint_eq(out.out_window, 0);
    ap_exec_req_free(&out);
    free(p1);

    /* the tag's value must be exactly 4 bytes; 0 is allowed (no window) */
    {
        uint8_t bad[64];
        size_t off = n - 10; /* the window TLV is the last one */

        memcpy(bad, p, off);
        memcpy(bad + off, (const uint8_t[]){0, APT_OUT_WINDOW, 0, 0, 0, 3, 1, 2, 3}, 9);
        ck_assert_int_eq(ap_exec_req_decode(bad, off + 9, &out), -EBADMSG);
        memcpy(bad + off, (const uint8_t[]){0, APT_OUT_WINDOW, 0, 0, 0, 5, 0, 0, 0, 0, 1}, 11);
        ck_assert_int_eq(ap_exec_req_decode(bad, off + 11, &out), -EBADMSG);
        memcpy(bad + off, (const uint8_t[]){0, APT_OUT_WINDOW, 0, 0, 0, 4, 0, 0, 0, 0}, 10);
        ck_assert_int_eq(ap_exec_req_decode(bad, off + 10, &out), 0);
        ck_assert_uint_eq(out.out_window, 0);
        ap_exec_req_free(&out);
        memcpy(bad + off, (const uint8_t[]){0, APT_OUT_WINDOW, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff},
               10);
        ck_assert_int_eq(ap_exec_req_decode(bad, off + 10, &out), 0);
        ck_assert_uint_eq(out.out_window, UINT32_MAX);
        ap_exec_req_free(&out);
    }
    free(p);
}
END_TEST

/* ---- file operations (v3) ---- */

START_TEST(v3_types)
{
    static const uint8_t known[] = {AP_FS,       AP_FS_DATA,  AP_FS_CANCEL, AP_FS_REPLY,
                                    AP_FS_ERRNO, AP_FS_RDATA, AP_FS_DIRENTS};

    ck_assert_int_ge(AP_VERSION, 3);
    for (size_t i = 0; i < sizeof(known); i++)
        ck_assert(ap_type_is_known(known[i]));
    ck_assert(!ap_type_is_known(AP_FS_DIRENTS + 1));
    ck_assert_str_eq(ap_type_name(AP_FS), "FS");
    ck_assert_str_eq(ap_type_name(AP_FS_CANCEL), "FS_CANCEL");
    ck_assert_str_eq(ap_type_name(AP_FS_DIRENTS), "FS_DIRENTS");
    ck_assert_str_eq(ap_type_name(AP_FS_DIRENTS + 1), "UNKNOWN");
    ck_assert_str_eq(ap_fs_op_name(APO_UTIMENS), "UTIMENS");
    ck_assert_str_eq(ap_fs_op_name(APO_MAX + 1), "UNKNOWN");
    ck_assert_str_eq(ap_fs_op_name(0), "UNKNOWN");
}
END_TEST

#define T(tag) (1u << (tag))

/* A valid request of op with every tag it takes (TRUNCATE: the path). */
static void fs_req_full(struct ap_fs_req *r, uint8_t op)
{
    static const uint8_t data[] = "some data";

    memset(r, 0, sizeof(*r));
    r->op = op;
    strcpy(r->path, "/dir with space/ü/../file");
    strcpy(r->path2, op == APO_SYMLINK ? "../relative target" : "/other");
    r->handle = 0x01020304;
    r->offset = 0x0102030405060708ull;
    r->length = op == APO_PREAD ? AP_FS_IO_MAX : 0x1112131415161718ull;
    r->mode = 04755;
    r->uid = 1000;
    r->gid = 0xfffffffe;
    r->window = AP_FS_WINDOW_MIN;
    r->atime = (struct ap_fs_time){-5, 999999999};
    r->mtime = (struct ap_fs_time){1700000000, AP_TIME_NOW};
    r->data = data;
    r->data_len = sizeof(data);
    switch (op) {
    case APO_STAT:
    case APO_LSTAT:
    case APO_UNLINK:
    case APO_RMDIR:
    case APO_READLINK:
    case APO_STATFS:
        r->present = T(APF_PATH);
        break;
    case APO_FSTAT:
    case APO_CLOSE:
        r->present = T(APF_HANDLE);
        break;
    case APO_READDIR:
        r->present = T(APF_PATH) | T(APF_WINDOW);
        break;
    case APO_OPEN:
        r->flags = AP_OPEN_RDWR | AP_OPEN_CREAT | AP_OPEN_EXCL | AP_OPEN_NOFOLLOW;
        r->present = T(APF_PATH) | T(APF_FLAGS) | T(APF_MODE);
        break;
    case APO_PREAD:
        r->present = T(APF_HANDLE) | T(APF_OFFSET) | T(APF_LENGTH);
        break;
    case APO_PWRITE:
        r->present = T(APF_HANDLE) | T(APF_OFFSET) | T(APF_DATA);
        break;
    case APO_READ_FILE:
        r->present = T(APF_PATH) | T(APF_WINDOW) | T(APF_OFFSET) | T(APF_LENGTH);
        break;
    case APO_WRITE_FILE:
        r->flags = AP_WRITE_ATOMIC | AP_WRITE_PARENTS | AP_WRITE_FSYNC | AP_WRITE_EXCL;
        r->present = T(APF_PATH) | T(APF_FLAGS) | T(APF_MODE);
        break;
    case APO_TRUNCATE:
        r->length = 12345;
        r->present = T(APF_PATH) | T(APF_LENGTH);
        break;
    case APO_MKDIR:
        r->flags = AP_MKDIR_PARENTS;
        r->present = T(APF_PATH) | T(APF_MODE) | T(APF_FLAGS);
        break;
    case APO_RENAME:
        r->flags = AP_RENAME_EXCHANGE;
        r->present = T(APF_PATH) | T(APF_PATH2) | T(APF_FLAGS);
        break;
    case APO_SYMLINK:
    case APO_LINK:
        r->present = T(APF_PATH) | T(APF_PATH2);
        break;
    case APO_CHMOD:
        r->present = T(APF_PATH) | T(APF_MODE);
        break;
    case APO_CHOWN:
        r->flags = AP_NOFOLLOW;
        r->present = T(APF_PATH) | T(APF_UID) | T(APF_GID) | T(APF_FLAGS);
        break;
    case APO_UTIMENS:
        r->flags = AP_NOFOLLOW;
        r->present = T(APF_PATH) | T(APF_ATIME) | T(APF_MTIME) | T(APF_FLAGS);
        break;
    case APO_FSYNC:
        r->flags = AP_FSYNC_DATA;
        r->present = T(APF_HANDLE) | T(APF_FLAGS);
        break;
    default:
        ck_abort_msg("op %u not covered", op);
    }
}

START_TEST(fs_request_round_trip)
{
    for (uint8_t op = 1; op <= APO_MAX; op++) {
        static struct ap_fs_req in, out;
        const char *why = NULL;
        uint8_t *p;
        size_t n;

        fs_req_full(&in, op);
        ck_assert_msg(ap_fs_req_encode(&in, &p, &n) == 0, "encode %s", ap_fs_op_name(op));
        ck_assert_msg(ap_fs_req_decode(p, n, &out, &why) == 0, "decode %s: %s", ap_fs_op_name(op),
                      why);
        ck_assert_uint_eq(out.op, op);
        ck_assert_uint_eq(out.present, in.present);
        if (ap_fs_req_has(&in, APF_PATH))
            ck_assert_str_eq(out.path, in.path);
        if (ap_fs_req_has(&in, APF_PATH2))
            ck_assert_str_eq(out.path2, in.path2);
        if (ap_fs_req_has(&in, APF_HANDLE))
            ck_assert_uint_eq(out.handle, in.handle);
        if (ap_fs_req_has(&in, APF_OFFSET))
            ck_assert_uint_eq(out.offset, in.offset);
        if (ap_fs_req_has(&in, APF_LENGTH))
            ck_assert_uint_eq(out.length, in.length);
        if (ap_fs_req_has(&in, APF_MODE))
            ck_assert_uint_eq(out.mode, in.mode);
        if (ap_fs_req_has(&in, APF_FLAGS))
            ck_assert_uint_eq(out.flags, in.flags);
        if (ap_fs_req_has(&in, APF_UID))
            ck_assert_uint_eq(out.uid, in.uid);
        if (ap_fs_req_has(&in, APF_GID))
            ck_assert_uint_eq(out.gid, in.gid);
        if (ap_fs_req_has(&in, APF_WINDOW))
            ck_assert_uint_eq(out.window, in.window);
        if (ap_fs_req_has(&in, APF_ATIME)) {
            ck_assert_int_eq(out.atime.sec, in.atime.sec);
            ck_assert_uint_eq(out.atime.nsec, in.atime.nsec);
            ck_assert_uint_eq(out.mtime.nsec, in.mtime.nsec);
        }
        if (ap_fs_req_has(&in, APF_DATA)) {
            ck_assert_uint_eq(out.data_len, in.data_len);
            ck_assert_mem_eq(out.data, in.data, in.data_len);
        }
        /* every cut is refused (a required tag goes missing, or the cut
         * lands inside a field) or, at a field boundary, is the request
         * without some optional fields; it is never read past */
        for (size_t cut = 0; cut < n; cut++) {
            int rc = ap_fs_req_decode(p, cut, &out, NULL);

            ck_assert_msg(rc == 0 || rc == -EBADMSG, "%s cut at %zu: %d", ap_fs_op_name(op), cut,
                          rc);
            if (rc == 0)
                ck_assert((out.present & ~in.present) == 0 && out.present != in.present);
        }
        free(p);
    }
}
END_TEST

/* Append TLV {tag, v[vlen]} to buf at *off. */
static void tlv_add(uint8_t *buf, size_t *off, uint16_t tag, const void *v, uint32_t vlen)
{
    buf[*off] = (uint8_t)(tag >> 8);
    buf[*off + 1] = (uint8_t)tag;
    buf[*off + 2] = (uint8_t)(vlen >> 24);
    buf[*off + 3] = (uint8_t)(vlen >> 16);
    buf[*off + 4] = (uint8_t)(vlen >> 8);
    buf[*off + 5] = (uint8_t)vlen;
    memcpy(buf + *off + 6, v, vlen);
    *off += 6 + vlen;
}

/* Decode buf[n] and expect err, with a reason. */
static void fs_expect(const uint8_t *buf, size_t n, int err, const char *what)
{
    static struct ap_fs_req r;
    const char *why = NULL;
    int rc = ap_fs_req_decode(buf, n, &r, &why);

    ck_assert_msg(rc == err, "%s: got %d, want %d (%s)", what, rc, err, why ? why : "-");
    if (err < 0)
        ck_assert_msg(why && *why, "%s: no reason given", what);
}

START_TEST(fs_request_malformed)
{
    static uint8_t b[256];
    static const uint8_t u32[4] = {0, 0, 0x10, 0}, u64[8] = {0};
    size_t n;

    fs_expect(b, 0, -EBADMSG, "empty payload");
    b[0] = 0;
    fs_expect(b, 1, -EBADMSG, "op 0");
    b[0] = APO_MAX + 1;
    fs_expect(b, 1, -EBADMSG, "op past the last");
    b[0] = APO_STAT;
    fs_expect(b, 1, -EBADMSG, "required path missing");

    n = 1;
    tlv_add(b, &n, APF_PATH, "/a", 2);
    fs_expect(b, n, 0, "a good STAT");
    fs_expect(b, n - 1, -EBADMSG, "field longer than the payload");
    fs_expect(b, 4, -EBADMSG, "truncated field header");
    tlv_add(b, &n, APF_PATH, "/b", 2);
    fs_expect(b, n, -EBADMSG, "duplicate path");

    n = 1;
    tlv_add(b, &n, APF_PATH, "/a", 2);
    tlv_add(b, &n, APF_MAX + 1, "x", 1);
    fs_expect(b, n, -EBADMSG, "unknown tag");
    n = 1;
    tlv_add(b, &n, 0, "x", 1);
    fs_expect(b, n, -EBADMSG, "tag 0");
    n = 1;
    tlv_add(b, &n, APF_PATH, "/a", 2);
    tlv_add(b, &n, APF_MODE, u32, 4);
    fs_expect(b, n, -EBADMSG, "a tag STAT does not take");
    n = 1;
    tlv_add(b, &n, APF_PATH, "/a\0b", 4);
    fs_expect(b, n, -EBADMSG, "NUL inside a path");

    b[0] = APO_FSTAT;
    n = 1;
    tlv_add(b, &n, APF_HANDLE, u32, 3);
    fs_expect(b, n, -EBADMSG, "u32 of 3 bytes");
    n = 1;
    tlv_add(b, &n, APF_HANDLE, u64, 8);
    fs_expect(b, n, -EBADMSG, "u32 of 8 bytes");

    b[0] = APO_PREAD;
    n = 1;
    tlv_add(b, &n, APF_HANDLE, u32, 4);
    tlv_add(b, &n, APF_OFFSET, u32, 4);
    tlv_add(b, &n, APF_LENGTH, u64, 8);
    fs_expect(b, n, -EBADMSG, "u64 of 4 bytes");

    b[0] = APO_UTIMENS;
    n = 1;
    tlv_add(b, &n, APF_PATH, "/a", 2);
    tlv_add(b, &n, APF_ATIME, u64, 8);
    fs_expect(b, n, -EBADMSG, "time of 8 bytes");

    b[0] = APO_TRUNCATE;
    n = 1;
    tlv_add(b, &n, APF_LENGTH, u64, 8);
    fs_expect(b, n, -EBADMSG, "TRUNCATE without path or handle");
    tlv_add(b, &n, APF_PATH, "/a", 2);
    fs_expect(b, n, 0, "TRUNCATE of a path");
    tlv_add(b, &n, APF_HANDLE, u32, 4);
    fs_expect(b, n, -EBADMSG, "TRUNCATE with path and handle");
}
END_TEST

START_TEST(fs_request_bounds)
{
    static struct ap_fs_req r;
    static uint8_t big[AP_FS_IO_MAX + 1];
    const char *why = NULL;
    uint8_t *p = NULL;
    size_t n;

    /* a path of AP_FS_PATH_MAX bytes is fine, one more is ENAMETOOLONG both
     * ways */
    fs_req_full(&r, APO_STAT);
    memset(r.path, 'a', AP_FS_PATH_MAX);
    r.path[0] = '/';
    r.path[AP_FS_PATH_MAX] = '\0';
    ck_assert_int_eq(ap_fs_req_encode(&r, &p, &n), 0);
    fs_expect(p, n, 0, "path of AP_FS_PATH_MAX bytes");
    {
        uint8_t *p2 = malloc(n + 1);
        size_t n2 = 1;

        p2[0] = APO_STAT;
        memset(big, 'a', AP_FS_PATH_MAX + 1);
        big[0] = '/';
        tlv_add(p2, &n2, APF_PATH, big, AP_FS_PATH_MAX + 1);
        fs_expect(p2, n2, -ENAMETOOLONG, "path over AP_FS_PATH_MAX");
        free(p2);
    }
    free(p);
    r.path[AP_FS_PATH_MAX] = 'a'; /* no NUL left in the buffer */
    ck_assert_int_eq(ap_fs_req_check(&r, &why), -ENAMETOOLONG);
    ck_assert_int_eq(ap_fs_req_encode(&r, &p, &n), -ENAMETOOLONG);

    fs_req_full(&r, APO_STAT);
    strcpy(r.path, "relative");
    ck_assert_int_eq(ap_fs_req_check(&r, &why), -EINVAL);
    strcpy(r.path, "");
    ck_assert_int_eq(ap_fs_req_check(&r, &why), -EINVAL);

    fs_req_full(&r, APO_RENAME);
    strcpy(r.path2, "relative");
    ck_assert_int_eq(ap_fs_req_check(&r, &why), -EINVAL);
    r.flags = AP_RENAME_EXCHANGE | AP_RENAME_NOREPLACE;
    strcpy(r.path2, "/b");
    ck_assert_int_eq(ap_fs_req_check(&r, &why), -EINVAL);
    fs_req_full(&r, APO_SYMLINK);
    r.path2[0] = '\0';
    ck_assert_int_eq(ap_fs_req_check(&r, &why), -EINVAL);

    /* data and PREAD length over AP_FS_IO_MAX: E2BIG, from the encoder and
     * from the decoder */
    fs_req_full(&r, APO_PWRITE);
    r.data = big;
    r.data_len = AP_FS_IO_MAX;
    ck_assert_int_eq(ap_fs_req_encode(&r, &p, &n), 0);
    fs_expect(p, n, 0, "data of AP_FS_IO_MAX bytes");
    free(p);
    r.data_len = AP_FS_IO_MAX + 1;
    ck_assert_int_eq(ap_fs_req_encode(&r, &p, &n), -E2BIG);
    {
        uint8_t *p2 = malloc(AP_FS_IO_MAX + 64);
        size_t n2 = 1;
        static const uint8_t z[8] = {0};

        p2[0] = APO_PWRITE;
        tlv_add(p2, &n2, APF_HANDLE, z, 4);
        tlv_add(p2, &n2, APF_OFFSET, z, 8);
        tlv_add(p2, &n2, APF_DATA, big, AP_FS_IO_MAX + 1);
        fs_expect(p2, n2, -E2BIG, "data over AP_FS_IO_MAX");
        free(p2);
    }
    fs_req_full(&r, APO_PREAD);
    r.length = AP_FS_IO_MAX + 1;
    ck_assert_int_eq(ap_fs_req_check(&r, &why), -E2BIG);

    fs_req_full(&r, APO_READ_FILE);
    r.window = AP_FS_WINDOW_MIN - 1;
    ck_assert_int_eq(ap_fs_req_check(&r, &why), -EINVAL);
    r.window = AP_FS_WINDOW_MAX + 1;
    ck_assert_int_eq(ap_fs_req_check(&r, &why), -EINVAL);
    r.window = AP_FS_WINDOW_MAX;
    ck_assert_int_eq(ap_fs_req_check(&r, &why), 0);
    r.offset = (uint64_t)INT64_MAX + 1;
    ck_assert_int_eq(ap_fs_req_check(&r, &why), -EINVAL);

    fs_req_full(&r, APO_CHMOD);
    r.mode = 010000;
    ck_assert_int_eq(ap_fs_req_check(&r, &why), -EINVAL);
    ck_assert_int_eq(ap_fs_req_encode(&r, &p, &n), -EINVAL);

    fs_req_full(&r, APO_OPEN);
    r.flags = AP_OPEN_ACCMODE;
    ck_assert_int_eq(ap_fs_req_check(&r, &why), -EINVAL);
    r.flags = 1u << 7;
    ck_assert_int_eq(ap_fs_req_check(&r, &why), -EINVAL);
    fs_req_full(&r, APO_WRITE_FILE);
    r.flags = AP_WRITE_ATOMIC | AP_WRITE_APPEND;
    ck_assert_int_eq(ap_fs_req_check(&r, &why), -EINVAL);
    fs_req_full(&r, APO_FSYNC);
    r.flags = 2;
    ck_assert_int_eq(ap_fs_req_check(&r, &why), -EINVAL);

    fs_req_full(&r, APO_UTIMENS);
    r.atime.nsec = 1000000000;
    ck_assert_int_eq(ap_fs_req_check(&r, &why), -EINVAL);
    r.atime.nsec = AP_TIME_OMIT;
    ck_assert_int_eq(ap_fs_req_check(&r, &why), 0);
    ck_assert_ptr_nonnull(why);
}
END_TEST

START_TEST(fs_replies)
{
    struct ap_fs_attr a = {.mode = 0100644,
                           .nlink = 2,
                           .uid = 1,
                           .gid = 2,
                           .blksize = 4096,
                           .ino = 1ull << 40,
                           .size = 5ull << 32,
                           .blocks = 8,
                           .rdev = 0x0801,
                           .atime = {-1, 1},
                           .mtime = {2, 999999999},
                           .ctime = {1ll << 40, 0}};
    struct ap_fs_attr ab;
    struct ap_fs_statfs st = {.bsize = 4096,
                              .frsize = 1024,
                              .namemax = 255,
                              .blocks = 1ull << 33,
                              .bfree = 3,
                              .bavail = 2,
                              .files = 100,
                              .ffree = 50};
    struct ap_fs_statfs sb;
    uint8_t buf[AP_FS_CHUNK_MAX], ab_raw[AP_FS_ATTR_LEN], sraw[AP_FS_STATFS_LEN];
    uint8_t e[AP_FS_ERRNO_MAX];
    char msg[AP_FS_MSG_MAX + 1], name[AP_FS_NAME_MAX + 1], longname[AP_FS_NAME_MAX + 2];
    char path[AP_FS_PATH_MAX + 1];
    size_t n, off;
    int err;

    ap_fs_attr_encode(&a, ab_raw);
    ck_assert_int_eq(ap_fs_attr_decode(ab_raw, AP_FS_ATTR_LEN, &ab), 0);
    ck_assert_mem_eq(&ab, &a, sizeof(a));
    ck_assert_int_eq(ap_fs_attr_decode(ab_raw, AP_FS_ATTR_LEN - 1, &ab), -EBADMSG);
    a.mtime.nsec = 1000000000;
    ap_fs_attr_encode(&a, ab_raw);
    ck_assert_int_eq(ap_fs_attr_decode(ab_raw, AP_FS_ATTR_LEN, &ab), -EBADMSG);
    a.mtime.nsec = 5;

    ap_fs_statfs_encode(&st, sraw);
    ck_assert_int_eq(ap_fs_statfs_decode(sraw, AP_FS_STATFS_LEN, &sb), 0);
    ck_assert_mem_eq(&sb, &st, sizeof(st));
    ck_assert_int_eq(ap_fs_statfs_decode(sraw, AP_FS_STATFS_LEN + 1, &sb), -EBADMSG);

    n = ap_fs_errno_encode(ENOENT, "no such file", e);
    ck_assert_int_eq(ap_fs_errno_decode(e, n, &err, msg), 0);
    ck_assert_int_eq(err, ENOENT);
    ck_assert_str_eq(msg, "no such file");
    n = ap_fs_errno_encode(ENOSPC, NULL, e);
    ck_assert_uint_eq(n, 4);
    ck_assert_int_eq(ap_fs_errno_decode(e, n, &err, msg), 0);
    ck_assert_str_eq(msg, "");
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    {
        char huge[AP_FS_MSG_MAX + 50];

        memset(huge, 'm', sizeof(huge) - 1);
        huge[sizeof(huge) - 1] = '\0';
        n = ap_fs_errno_encode(EIO, huge, e);
        ck_assert_uint_eq(n, AP_FS_ERRNO_MAX); /* cut to AP_FS_MSG_MAX */
    }
    ck_assert_int_eq(ap_fs_errno_decode(e, n, &err, msg), 0);
    ck_assert_int_eq(ap_fs_errno_decode(e, 3, &err, msg), -EBADMSG);
    n = ap_fs_errno_encode(0, "x", e); /* a bug: sent as EIO */
    ck_assert_int_eq(ap_fs_errno_decode(e, n, &err, msg), 0);
    ck_assert_int_eq(err, EIO);
    memcpy(e, (const uint8_t[]){0, 0, 0, 0}, 4);
    ck_assert_int_eq(ap_fs_errno_decode(e, 4, &err, msg), -EBADMSG);
    memcpy(e, (const uint8_t[]){0, 0, 0x10, 0, 'a'}, 5);
    ck_assert_int_eq(ap_fs_errno_decode(e, 5, &err, msg), -EBADMSG);
    memcpy(e, (const uint8_t[]){0, 0, 0, 2, 'a', 0}, 6);
    ck_assert_int_eq(ap_fs_errno_decode(e, 6, &err, msg), -EBADMSG);
    {
        uint8_t e2[AP_FS_ERRNO_MAX + 1] = {0, 0, 0, 5};

        memset(e2 + 4, 'z', sizeof(e2) - 4);
        ck_assert_int_eq(ap_fs_errno_decode(e2, sizeof(e2), &err, msg), -EBADMSG);
    }

    /* directory entries */
    n = 0;
    n += (size_t)ap_fs_dirent_encode("file one", &a, buf + n);
    n += (size_t)ap_fs_dirent_encode("ü", &a, buf + n);
    longname[AP_FS_NAME_MAX] = '\0';
    n += (size_t)ap_fs_dirent_encode(longname, &a, buf + n);
    ck_assert_uint_eq(n, 3 * (2 + AP_FS_ATTR_LEN) + 8 + 2 + AP_FS_NAME_MAX);
    off = 0;
    ck_assert_int_eq(ap_fs_dirent_next(buf, n, &off, name, &ab), 1);
    ck_assert_str_eq(name, "file one");
    ck_assert_uint_eq(ab.size, a.size);
    ck_assert_int_eq(ap_fs_dirent_next(buf, n, &off, name, &ab), 1);
    ck_assert_str_eq(name, "ü");
    ck_assert_int_eq(ap_fs_dirent_next(buf, n, &off, name, &ab), 1);
    ck_assert_uint_eq(strlen(name), AP_FS_NAME_MAX);
    ck_assert_int_eq(ap_fs_dirent_next(buf, n, &off, name, &ab), 0);
    /* cut anywhere inside the last entry */
    for (size_t cut = n - 1; cut > n - (2 + AP_FS_NAME_MAX + AP_FS_ATTR_LEN); cut--) {
        off = n - (2 + AP_FS_NAME_MAX + AP_FS_ATTR_LEN);
        ck_assert_int_eq(ap_fs_dirent_next(buf, cut, &off, name, &ab), -EBADMSG);
    }
    /* names the encoder refuses, and the decoder too */
    longname[AP_FS_NAME_MAX] = 'x';
    ck_assert_int_eq(ap_fs_dirent_encode(longname, &a, buf), -EINVAL);
    ck_assert_int_eq(ap_fs_dirent_encode("", &a, buf), -EINVAL);
    ck_assert_int_eq(ap_fs_dirent_encode(".", &a, buf), -EINVAL);
    ck_assert_int_eq(ap_fs_dirent_encode("..", &a, buf), -EINVAL);
    ck_assert_int_eq(ap_fs_dirent_encode("a/b", &a, buf), -EINVAL);
    n = (size_t)ap_fs_dirent_encode("ab", &a, buf);
    buf[3] = '/';
    off = 0;
    ck_assert_int_eq(ap_fs_dirent_next(buf, n, &off, name, &ab), -EBADMSG);
    buf[2] = buf[3] = '.';
    ck_assert_int_eq(ap_fs_dirent_next(buf, n, &off, name, &ab), -EBADMSG);
    buf[0] = 1; /* name length 256+ */
    ck_assert_int_eq(ap_fs_dirent_next(buf, n, &off, name, &ab), -EBADMSG);
    ck_assert_int_eq(ap_fs_dirent_next(buf, 1, &off, name, &ab), -EBADMSG);

    /* READLINK's target */
    ck_assert_int_eq(ap_fs_path_decode((const uint8_t *)"../x", 4, path), 0);
    ck_assert_str_eq(path, "../x");
    ck_assert_int_eq(ap_fs_path_decode((const uint8_t *)"", 0, path), -EBADMSG);
    ck_assert_int_eq(ap_fs_path_decode((const uint8_t *)"a\0b", 3, path), -EBADMSG);
    ck_assert_int_eq(ap_fs_path_decode(buf, AP_FS_PATH_MAX + 1, path), -EBADMSG);
}
END_TEST

/* ---- the host side against a fake agent ---- */

#define FAKE_MAX_FRAMES 64

struct fake_frame {
    uint8_t type;
    uint32_t stream;
    uint8_t *payload;
    uint32_t len;
};

/* A scripted agent: its thread answers HELLO (with ack_version) and PING,
 * and records every other frame the host sends; the test sends the agent's
 * frames itself with fake_send(). */
struct fake_agent {
    int fd;
    uint32_t ack_version;
    uint32_t hello_version; /* what the host's HELLO said */
    pthread_t thread;
    pthread_mutex_t lock; /* frames, nframes, socket writes */
    struct fake_frame frames[FAKE_MAX_FRAMES];
    size_t nframes;
};

static void fake_send(struct fake_agent *a, uint8_t type, uint32_t stream, const void *p,
                      size_t len)
{
    uint8_t hdr[AP_HEADER_LEN];

    ap_header_encode(hdr, type, stream, (uint32_t)len);
    pthread_mutex_lock(&a->lock);
    ck_assert_int_eq(write(a->fd, hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
    for (size_t off = 0; off < len;) {
        ssize_t w = write(a->fd, (const uint8_t *)p + off, len - off);
        ck_assert_int_gt(w, 0);
        off += (size_t)w;
    }
    pthread_mutex_unlock(&a->lock);
}

static void *fake_main(void *arg)
{
    struct fake_agent *a = arg;
    static uint8_t in[AP_HEADER_LEN + 1024 * 1024];
    size_t len = 0;

    for (;;) {
        struct ap_frame f;
        int used;
        ssize_t n = read(a->fd, in + len, sizeof(in) - len);

        if (n <= 0)
            return NULL;
        len += (size_t)n;
        while ((used = ap_frame_parse(in, len, &f)) > 0) {
            struct ap_hello h;
            uint8_t b[AP_HELLO_MAX];

            if (f.type == AP_HELLO && ap_hello_decode(f.payload, f.len, &h) == 0) {
                a->hello_version = h.version;
                h.version = a->ack_version;
                strcpy(h.agent_version, "fake");
                fake_send(a, AP_HELLO_ACK, 0, b, ap_hello_encode(&h, true, b));
            } else if (f.type == AP_PING) {
                fake_send(a, AP_PONG, f.stream, NULL, 0);
            } else {
                pthread_mutex_lock(&a->lock);
                ck_assert_uint_lt(a->nframes, FAKE_MAX_FRAMES);
                a->frames[a->nframes++] = (struct fake_frame){
                    .type = f.type,
                    .stream = f.stream,
                    .payload = f.len ? memcpy(malloc(f.len), f.payload, f.len) : NULL,
                    .len = f.len,
                };
                pthread_mutex_unlock(&a->lock);
            }
            memmove(in, in + used, len - (size_t)used);
            len -= (size_t)used;
        }
        ck_assert_int_eq(used, 0);
    }
}

/* Start a fake agent answering HELLO with ack_version and connect a host
 * to it.  Returns agent_conn_open()'s result. */
static int fake_open(struct fake_agent *a, uint32_t ack_version, struct agent_conn **ret)
{
    int sv[2];

    memset(a, 0, sizeof(*a));
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    a->fd = sv[1];
    a->ack_version = ack_version;
    pthread_mutex_init(&a->lock, NULL);
    ck_assert_int_eq(pthread_create(&a->thread, NULL, fake_main, a), 0);
    return agent_conn_open(sv[0], 5000, ret, NULL);
}

static void fake_close(struct fake_agent *a, struct agent_conn *c)
{
    if (c) {
        agent_conn_shutdown(c);
        agent_conn_unref(c);
    }
    shutdown(a->fd, SHUT_RDWR);
    pthread_join(a->thread, NULL);
    close(a->fd);
    for (size_t i = 0; i < a->nframes; i++)
        free(a->frames[i].payload);
}

/* Every frame the host sent before this returns has been recorded: a PING
 * round trip through the fake agent, which reads in order. */
static void fake_barrier(struct agent_conn *c)
{
    ck_assert_int_eq(agent_control(c, AP_PING, "b", 1, 5000, NULL), 0);
}

/* Take the oldest recorded frame (after a barrier); it must be of type. */
static struct fake_frame fake_take(struct fake_agent *a, uint8_t type)
{
    struct fake_frame f;

    pthread_mutex_lock(&a->lock);
    ck_assert_uint_gt(a->nframes, 0);
    f = a->frames[0];
    memmove(a->frames, a->frames + 1, (a->nframes - 1) * sizeof(f));
    a->nframes--;
    pthread_mutex_unlock(&a->lock);
    ck_assert_str_eq(ap_type_name(f.type), ap_type_name(type));
    return f;
}

static size_t fake_pending(struct fake_agent *a)
{
    size_t n;

    pthread_mutex_lock(&a->lock);
    n = a->nframes;
    pthread_mutex_unlock(&a->lock);
    return n;
}

/* The exec the host started: its stream and decoded request. */
static uint32_t fake_take_exec(struct fake_agent *a, struct ap_exec_req *ret)
{
    struct fake_frame f = fake_take(a, AP_EXEC);

    ck_assert_int_eq(ap_exec_req_decode(f.payload, f.len, ret), 0);
    free(f.payload);
    return f.stream;
}

static uint32_t fake_take_u32(struct fake_agent *a, uint8_t type, uint32_t stream)
{
    struct fake_frame f = fake_take(a, type);
    uint32_t v;

    ck_assert_uint_eq(f.stream, stream);
    ck_assert_int_eq(ap_u32_decode(f.payload, f.len, &v), 0);
    free(f.payload);
    return v;
}

static atomic_size_t sink_bytes;

static void count_output(void *user, bool is_stderr, const uint8_t *data, size_t len)
{
    atomic_fetch_add(&sink_bytes, len);
}

/* Wait (bounded) until the sink has seen n bytes in all. */
static void wait_sink(size_t n)
{
    int64_t end = time_mono_ms() + 5000;

    while (atomic_load(&sink_bytes) < n && time_mono_ms() < end)
        usleep(1000);
    ck_assert_uint_eq(atomic_load(&sink_bytes), n);
}

static void send_output(struct fake_agent *a, uint8_t type, uint32_t stream, size_t n)
{
    static uint8_t zeros[AP_DATA_CHUNK];

    while (n > 0) {
        size_t k = n < sizeof(zeros) ? n : sizeof(zeros);
        fake_send(a, type, stream, zeros, k);
        n -= k;
    }
}

static const char *const yes_argv[] = {"yes", NULL};

static int start_exec(struct agent_conn *c, uint32_t window, struct agent_exec **ret)
{
    struct ap_exec_req req = {.argv = (char **)yes_argv, .argc = 1, .out_window = 12345};
    struct agent_exec_sink sink = {.on_output = count_output, .out_window = window};

    atomic_store(&sink_bytes, 0);
    return agent_exec_start(c, &req, &sink, time_mono_ms() + 5000, ret, NULL);
}

START_TEST(client_v1_agent)
{
    struct fake_agent a;
    struct agent_conn *c = NULL;
    struct agent_exec *x = NULL;
    struct ap_exec_req req;
    uint32_t stream;
    uint16_t rows, cols;
    struct fake_frame f;

    ck_assert_int_eq(fake_open(&a, 1, &c), 0);
    ck_assert_uint_eq(a.hello_version, AP_VERSION_BASE);
    ck_assert_int_eq(agent_conn_version(c), 1);

    /* a window asked for, but a v1 agent must not see APT_OUT_WINDOW */
    ck_assert_int_eq(start_exec(c, 65536, &x), 0);
    ck_assert(!agent_exec_has_flow_control(x));
    fake_barrier(c);
    stream = fake_take_exec(&a, &req);
    ck_assert_uint_eq(req.out_window, 0);
    ap_exec_req_free(&req);

    /* output beyond the window is fine without flow control; acks send nothing */
    send_output(&a, AP_STDOUT, stream, 200000);
    wait_sink(200000);
    ck_assert_int_eq(agent_exec_ack_output(x, 200000), 0);
    ck_assert(!agent_conn_is_broken(c));

    /* RESIZE */
    ck_assert_int_eq(agent_exec_resize(x, 0, 80), -EINVAL);
    ck_assert_int_eq(agent_exec_resize(x, 50, 132), 0);
    fake_barrier(c);
    f = fake_take(&a, AP_RESIZE);
    ck_assert_uint_eq(f.stream, stream);
    ck_assert_int_eq(ap_resize_decode(f.payload, f.len, &rows, &cols), 0);
    ck_assert_uint_eq(rows, 50);
    ck_assert_uint_eq(cols, 132);
    free(f.payload);
    ck_assert_uint_eq(fake_pending(&a), 0); /* no OUT_ACK, no KILL */

    /* freeing it sends nothing either (no flow control to release) */
    agent_exec_free(x);
    fake_barrier(c);
    ck_assert_uint_eq(fake_pending(&a), 0);
    fake_close(&a, c);
}
END_TEST

START_TEST(client_v2_flow_control)
{
    struct fake_agent a;
    struct agent_conn *c = NULL;
    struct agent_exec *x = NULL;
    struct ap_exec_req req;
    uint32_t stream;
    struct ap_exit ex;
    int64_t end;

    ck_assert_int_eq(fake_open(&a, 2, &c), 0);
    ck_assert_uint_eq(a.hello_version, AP_VERSION_BASE); /* never more, for v1 agents */
    ck_assert_int_eq(agent_conn_version(c), 2);

    ck_assert_int_eq(start_exec(c, 65536, &x), 0);
    ck_assert(agent_exec_has_flow_control(x));
    fake_barrier(c);
    stream = fake_take_exec(&a, &req);
    ck_assert_uint_eq(req.out_window, 65536); /* from the sink, not the request */
    ap_exec_req_free(&req);

    /* stdout and stderr count together */
    send_output(&a, AP_STDOUT, stream, 40000);
    send_output(&a, AP_STDERR, stream, 24000);
    wait_sink(64000);

    /* acks are collected until a quarter of the window is owed */
    ck_assert_int_eq(agent_exec_ack_output(x, 10000), 0);
    fake_barrier(c);
    ck_assert_uint_eq(fake_pending(&a), 0);
    ck_assert_int_eq(agent_exec_ack_output(x, 10000), 0);
    fake_barrier(c);
    ck_assert_uint_eq(fake_take_u32(&a, AP_OUT_ACK, stream), 20000);
    /* more than was delivered is capped at what arrived */
    ck_assert_int_eq(agent_exec_ack_output(x, 1000000), 0);
    fake_barrier(c);
    ck_assert_uint_eq(fake_take_u32(&a, AP_OUT_ACK, stream), 44000);
    ck_assert_uint_eq(fake_pending(&a), 0);

    /* the whole window again is within the rules ... */
    send_output(&a, AP_STDOUT, stream, 65536);
    wait_sink(64000 + 65536);
    fake_barrier(c);
    ck_assert(!agent_conn_is_broken(c));
    /* ... one byte more is an agent ignoring flow control */
    send_output(&a, AP_STDOUT, stream, 1);
    end = time_mono_ms() + 5000;
    while (!agent_conn_is_broken(c) && time_mono_ms() < end)
        usleep(1000);
    ck_assert(agent_conn_is_broken(c));
    ck_assert_int_eq(agent_exec_wait(x, time_mono_ms() + 5000, &ex, NULL), -ECONNRESET);
    ck_assert_int_eq(agent_exec_ack_output(x, 1), -ECONNRESET);
    agent_exec_free(x);
    fake_close(&a, c);
}
END_TEST

START_TEST(client_release_on_free)
{
    struct fake_agent a;
    struct agent_conn *c = NULL;
    struct agent_exec *x = NULL, *y = NULL;
    struct ap_exec_req req;
    uint32_t sx, sy;
    struct ap_exit ex = {.code = 3}, got;
    uint8_t b[AP_EXIT_LEN];

    ck_assert_int_eq(fake_open(&a, 2, &c), 0);
    ck_assert_int_eq(start_exec(c, 4096, &x), 0);
    ck_assert_int_eq(start_exec(c, 4096, &y), 0);
    fake_barrier(c);
    sx = fake_take_exec(&a, &req);
    ap_exec_req_free(&req);
    sy = fake_take_exec(&a, &req);
    ap_exec_req_free(&req);

    /* x ended: freeing it owes the agent nothing */
    ap_exit_encode(&ex, b);
    fake_send(&a, AP_EXIT, sx, b, sizeof(b));
    ck_assert_int_eq(agent_exec_wait(x, time_mono_ms() + 5000, &got, NULL), 0);
    ck_assert_int_eq(got.code, 3);
    agent_exec_free(x);
    /* y still runs: freeing it releases its flow control */
    agent_exec_free(y);
    fake_barrier(c);
    ck_assert_uint_eq(fake_take_u32(&a, AP_OUT_ACK, sy), AP_OUT_ACK_RELEASE);
    ck_assert_uint_eq(fake_pending(&a), 0);
    /* a window of 0 is no flow control, even on a v2 agent */
    ck_assert_int_eq(start_exec(c, 0, &x), 0);
    ck_assert(!agent_exec_has_flow_control(x));
    fake_barrier(c);
    fake_take_exec(&a, &req);
    ck_assert_uint_eq(req.out_window, 0);
    ap_exec_req_free(&req);
    agent_exec_free(x);
    fake_close(&a, c);
}
END_TEST

START_TEST(client_versions)
{
    struct fake_agent a;
    struct agent_conn *c = NULL;
    struct nerr e = {0};
    int sv[2];

    /* a newer agent still speaks our additions: we use ours */
    ck_assert_int_eq(fake_open(&a, 7, &c), 0);
    ck_assert_int_eq(agent_conn_version(c), AP_VERSION);
    fake_close(&a, c);

    /* version 0 does not exist */
    c = NULL;
    memset(&a, 0, sizeof(a));
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    a.fd = sv[1];
    pthread_mutex_init(&a.lock, NULL);
    ck_assert_int_eq(pthread_create(&a.thread, NULL, fake_main, &a), 0);
    ck_assert_int_eq(agent_conn_open(sv[0], 5000, &c, &e), -EPROTONOSUPPORT);
    ck_assert_ptr_null(c);
    fake_close(&a, NULL);
}
END_TEST

/* ---- SET_NETWORK (v4) ---- */

START_TEST(v4_set_network_type)
{
    uint8_t buf[AP_HEADER_LEN];
    struct ap_frame f;

    ck_assert_int_eq(AP_VERSION, 4);
    ck_assert(ap_type_is_known(AP_SET_NETWORK));
    ck_assert(!ap_type_is_known(AP_SET_NETWORK + 1));
    ck_assert_str_eq(ap_type_name(AP_SET_NETWORK), "SET_NETWORK");
    ck_assert_str_eq(ap_type_name(AP_SET_NETWORK + 1), "UNKNOWN");
    ap_header_encode(buf, AP_SET_NETWORK, 9, 0);
    ck_assert_int_eq(ap_frame_parse(buf, sizeof(buf), &f), AP_HEADER_LEN);
    ck_assert_uint_eq(f.type, AP_SET_NETWORK);
    buf[2] = AP_SET_NETWORK + 1;
    ck_assert_int_eq(ap_frame_parse(buf, sizeof(buf), &f), -EBADMSG);
}
END_TEST

static const struct ap_net net_ok = {
    .up = true,
    .mac = {0xaa, 0xfc, 0x00, 0x00, 0x01, 0x02},
    .addr = {172, 16, 1, 2},
    .prefix = 30,
    .gateway = {172, 16, 1, 1},
    .dns = {192, 0, 2, 1},
};

START_TEST(net_round_trip)
{
    static const uint8_t wire[AP_NET_LEN] = {0x01, 0xaa, 0xfc, 0x00, 0x00, 0x01, 0x02, 172, 16, 1,
                                             2,    30,   172,  16,   1,    1,    192,  0,   2,  1};
    uint8_t b[AP_NET_LEN];
    struct ap_net n, down = {.up = false, .prefix = 24, .addr = {10, 0, 0, 1}, .mac = {2}};

    /* the exact layout: flags, mac, addr, prefix, gateway, dns */
    ap_net_encode(&net_ok, b);
    ck_assert_mem_eq(b, wire, AP_NET_LEN);
    ck_assert_int_eq(ap_net_decode(b, AP_NET_LEN, &n), 0);
    ck_assert(n.up);
    ck_assert_mem_eq(n.mac, net_ok.mac, 6);
    ck_assert_mem_eq(n.addr, net_ok.addr, 4);
    ck_assert_uint_eq(n.prefix, 30);
    ck_assert_mem_eq(n.gateway, net_ok.gateway, 4);
    ck_assert_mem_eq(n.dns, net_ok.dns, 4);

    /* no gateway and no dns; a /32; a /1 */
    n = net_ok;
    memset(n.gateway, 0, 4);
    memset(n.dns, 0, 4);
    n.prefix = 32;
    ap_net_encode(&n, b);
    memset(&n, 0x55, sizeof(n));
    ck_assert_int_eq(ap_net_decode(b, AP_NET_LEN, &n), 0);
    ck_assert_uint_eq(n.prefix, 32);
    ck_assert_mem_eq(n.gateway, "\0\0\0\0", 4);
    ck_assert_mem_eq(n.dns, "\0\0\0\0", 4);
    n = net_ok;
    n.prefix = 1;
    n.gateway[0] = 128; /* 128.16.1.1 is inside 172.16.1.2/1 */
    ap_net_encode(&n, b);
    ck_assert_int_eq(ap_net_decode(b, AP_NET_LEN, &n), 0);
    ck_assert_uint_eq(n.prefix, 1);

    /* down: the settings are not sent, and decode to zeros */
    ap_net_encode(&down, b);
    for (size_t i = 0; i < AP_NET_LEN; i++)
        ck_assert_uint_eq(b[i], 0);
    memset(&n, 0x55, sizeof(n));
    ck_assert_int_eq(ap_net_decode(b, AP_NET_LEN, &n), 0);
    ck_assert(!n.up);
    ck_assert_uint_eq(n.prefix, 0);
    ck_assert_mem_eq(n.addr, "\0\0\0\0", 4);
    ck_assert_uint_eq(n.mac[0], 0);
}
END_TEST

/* The refusals of ap_net_decode(): a payload (net_ok's encoding, or all
 * zeros = down) with len bytes at off replaced by val. */
static const struct {
    const char *what;
    bool from_down;
    size_t off, len;
    uint8_t val[6];
} net_bad[] = {
    {"unknown flag bit", false, 0, 1, {0x03}},
    {"a high flag bit", false, 0, 1, {0x81}},
    {"flag bits without up", true, 0, 1, {0x80}},
    {"prefix 33", false, 11, 1, {33}},
    {"prefix 0", false, 11, 1, {0}},
    {"multicast MAC", false, 1, 1, {0x01}},
    {"broadcast MAC", false, 1, 6, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
    {"zero MAC", false, 1, 6, {0}},
    {"address 0.0.0.0", false, 7, 4, {0}},
    {"gateway outside the /30", false, 15, 1, {5}},
    {"gateway in another network", false, 12, 1, {10}},
    {"gateway = address", false, 15, 1, {2}},
    {"gateway on a /32", false, 11, 1, {32}},
    {"down with settings", false, 0, 1, {0}},
    {"down with one stray byte", true, AP_NET_LEN - 1, 1, {1}},
};

START_TEST(net_refusals)
{
    uint8_t b[AP_NET_LEN];
    struct ap_net ret;

    if (net_bad[_i].from_down)
        memset(b, 0, sizeof(b));
    else
        ap_net_encode(&net_ok, b);
    memcpy(b + net_bad[_i].off, net_bad[_i].val, net_bad[_i].len);
    memset(&ret, 0x5a, sizeof(ret));
    ck_assert_msg(ap_net_decode(b, AP_NET_LEN, &ret) == -EINVAL, "%s accepted", net_bad[_i].what);
    ck_assert_uint_eq(ret.prefix, 0x5a); /* untouched */
}
END_TEST

START_TEST(net_lengths)
{
    uint8_t b[AP_NET_LEN + 1] = {0};
    struct ap_net n;

    ap_net_encode(&net_ok, b);
    ck_assert_int_eq(ap_net_decode(b, AP_NET_LEN - 1, &n), -EINVAL);
    ck_assert_int_eq(ap_net_decode(b, AP_NET_LEN + 1, &n), -EINVAL);
    ck_assert_int_eq(ap_net_decode(b, 0, &n), -EINVAL);
    memset(b, 0, sizeof(b));
    ck_assert_int_eq(ap_net_decode(b, AP_NET_LEN + 1, &n), -EINVAL);
    ck_assert_int_eq(ap_net_decode(b, 1, &n), -EINVAL);
    ck_assert_int_eq(ap_net_decode(b, AP_NET_LEN, &n), 0);
}
END_TEST

START_TEST(net_subnet)
{
    static const uint8_t a[4] = {172, 16, 1, 2}, b[4] = {172, 16, 1, 1}, c[4] = {172, 16, 1, 6};

    ck_assert(ap_net_in_subnet(a, b, 30));
    ck_assert(!ap_net_in_subnet(a, c, 30));
    ck_assert(ap_net_in_subnet(a, c, 29));
    ck_assert(!ap_net_in_subnet(a, b, 32));
    ck_assert(ap_net_in_subnet(a, a, 32));
    ck_assert(ap_net_in_subnet(a, (const uint8_t[4]){1, 2, 3, 4}, 0));
}
END_TEST

Suite *suite_agent_proto(void)
{
    Suite *s = suite_create("agent_proto");
    TCase *t = tcase_create("core");

    tcase_add_test(t, frame_round_trip_and_partial);
    tcase_add_test(t, bad_frames);
    tcase_add_test(t, resync_finds_next_magic);
    tcase_add_test(t, hello_and_exit);
    tcase_add_test(t, exec_request_round_trip);
    tcase_add_test(t, exec_request_rejects);
    tcase_add_test(t, exec_request_too_large);
    tcase_add_test(t, v2_additions);
    tcase_add_test(t, exec_request_out_window);
    tcase_add_test(t, v3_types);
    tcase_add_test(t, fs_request_round_trip);
    tcase_add_test(t, fs_request_malformed);
    tcase_add_test(t, fs_request_bounds);
    tcase_add_test(t, fs_replies);
    tcase_add_test(t, v4_set_network_type);
    tcase_add_test(t, net_round_trip);
    tcase_add_loop_test(t, net_refusals, 0, sizeof(net_bad) / sizeof(net_bad[0]));
    tcase_add_test(t, net_lengths);
    tcase_add_test(t, net_subnet);
    suite_add_tcase(s, t);

    t = tcase_create("client");
    tcase_add_test(t, client_v1_agent);
    tcase_add_test(t, client_v2_flow_control);
    tcase_add_test(t, client_release_on_free);
    tcase_add_test(t, client_versions);
    tcase_set_timeout(t, 30);
    suite_add_tcase(s, t);
    return s;
}
