/* test_agent_proto.c — framing, payload codecs and their bounds. */
#include <stdlib.h>
#include <string.h>

#include "agent_proto.h"
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
    struct ap_exec_req in = {.argv = argv, .argc = 3, .env = env, .nenv = 2, .cwd = "/tmp",
                             .tty = true, .stdin_open = true, .timeout_ms = 1500,
                             .rows = 24, .cols = 80};
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
    suite_add_tcase(s, t);
    return s;
}
