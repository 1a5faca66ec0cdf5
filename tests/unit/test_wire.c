/* test_wire.c — the JSON contract: exact field names, round trips, strict
 * request decoding, lossless binary output. */
#include <string.h>

#include "buf.h"
#include "unit.h"
#include "wire.h"

static json_object *parse(const char *text)
{
    json_object *o = NULL;
    struct nerr e = {0};

    ck_assert_int_eq(wire_parse_object(text, strlen(text), &o, &e), 0);
    return o;
}

static void assert_keys(json_object *o, const char *const *keys)
{
    for (; *keys; keys++)
        if (!json_object_object_get_ex(o, *keys, NULL))
            ck_abort_msg("field '%s' missing in %s", *keys, json_object_to_json_string(o));
}

START_TEST(vm_info_round_trip)
{
    struct wire_vm_info in = {.name = "box", .state = "running", .cpus = 2, .mem_mib = 512,
                              .created_at = "2026-11-26T00:00:00Z", .vmm = "qemu",
                              .restored_from = "golden"};
    struct wire_vm_info out = {0};
    static const char *const keys[] = {"name", "state", "cpus", "mem_mib", "created_at", NULL};
    json_object *o = wire_vm_info_encode(&in);

    assert_keys(o, keys);
    ck_assert_int_eq(wire_vm_info_decode(o, &out, NULL), 0);
    ck_assert_str_eq(out.name, "box");
    ck_assert_str_eq(out.state, "running");
    ck_assert_int_eq(out.cpus, 2);
    ck_assert_int_eq(out.mem_mib, 512);
    ck_assert_str_eq(out.restored_from, "golden");
    ck_assert_ptr_null(out.ip);
    json_object_put(o);
    wire_vm_info_free(&out);
}
END_TEST

START_TEST(responses_lenient_to_new_fields)
{
    json_object *o = parse("{\"user_id\":\"u1\",\"name\":\"alice\",\"added_later\":[1,2]}");
    struct wire_whoami w = {0};

    ck_assert_int_eq(wire_whoami_decode(o, &w, NULL), 0);
    ck_assert_str_eq(w.name, "alice");
    json_object_put(o);
    wire_whoami_free(&w);
}
END_TEST

START_TEST(capabilities_fields)
{
    struct wire_capabilities c = {.api_version = 1, .max_exec_output_bytes = 1048576,
                                  .exec_timeout_secs = 30, .console_timeout_secs = 3600,
                                  .max_vm_name_length = 64, .default_cpus = 1,
                                  .default_mem_mib = 256};
    static const char *const keys[] = {"api_version",       "max_exec_output_bytes",
                                       "exec_timeout_secs", "console_timeout_secs",
                                       "max_vm_name_length", "default_cpus",
                                       "default_mem_mib",   NULL};
    struct wire_capabilities back = {0};
    json_object *o = wire_capabilities_encode(&c);

    assert_keys(o, keys);
    ck_assert_int_eq(wire_capabilities_decode(o, &back, NULL), 0);
    ck_assert_int_eq(back.max_exec_output_bytes, 1048576);
    ck_assert_int_eq(back.default_mem_mib, 256);
    json_object_put(o);
}
END_TEST

START_TEST(exec_request_round_trip)
{
    char *cmd[] = {"sh", "-c", "echo hi"};
    char *env[] = {"A=1", "B=two"};
    struct wire_exec_req in = {.command = cmd, .ncommand = 3, .env = env, .nenv = 2,
                               .tty = false, .has_timeout_secs = true, .timeout_secs = 5};
    struct wire_exec_req out = {0};
    static const char *const keys[] = {"command", "tty", "env", NULL};
    json_object *o = wire_exec_req_encode(&in);

    assert_keys(o, keys);
    ck_assert_int_eq(wire_exec_req_decode(o, &out, NULL), 0);
    ck_assert_uint_eq(out.ncommand, 3);
    ck_assert_str_eq(out.command[2], "echo hi");
    ck_assert_uint_eq(out.nenv, 2);
    ck_assert_str_eq(out.env[1], "B=two");
    ck_assert_int_eq(out.timeout_secs, 5);
    json_object_put(o);
    wire_exec_req_free(&out);
}
END_TEST

static void expect_bad_exec(const char *text, const char *msg)
{
    json_object *o = parse(text);
    struct wire_exec_req r = {0};
    struct nerr e = {0};

    ck_assert_int_eq(wire_exec_req_decode(o, &r, &e), -EINVAL);
    if (!strstr(e.msg, msg))
        ck_abort_msg("expected \"%s\" in \"%s\"", msg, e.msg);
    json_object_put(o);
    wire_exec_req_free(&r);
}

START_TEST(exec_request_strict)
{
    expect_bad_exec("{}", "missing required field 'command'");
    expect_bad_exec("{\"command\":\"ls\"}", "field 'command' must be an array");
    expect_bad_exec("{\"command\":[]}", "at least one");
    expect_bad_exec("{\"command\":[1]}", "entry 0 must be a string");
    expect_bad_exec("{\"command\":[\"\"]}", "program name is empty");
    expect_bad_exec("{\"command\":[\"ls\"],\"tty\":\"yes\"}", "'tty' must be true or false");
    expect_bad_exec("{\"command\":[\"ls\"],\"envv\":[]}", "unknown field 'envv'");
    expect_bad_exec("{\"command\":[\"a\\u0000b\"]}", "NUL");
    expect_bad_exec("{\"command\":[\"ls\"],\"timeout_secs\":0}", "'timeout_secs' must be between");
    expect_bad_exec("{\"command\":[\"ls\"],\"stdin\":\"a\",\"stdin_b64\":\"YQ==\"}",
                    "either 'stdin' or 'stdin_b64'");
}
END_TEST

START_TEST(env_entry_count_bound)
{
    struct buf b;
    json_object *o;
    struct wire_exec_req r = {0};
    struct nerr e = {0};

    buf_init(&b, 0);
    buf_printf(&b, "{\"command\":[\"true\"],\"env\":[");
    for (int i = 0; i < 10000; i++)
        buf_printf(&b, "%s\"V%d=x\"", i ? "," : "", i);
    buf_printf(&b, "]}");
    o = parse((char *)b.data);
    ck_assert_int_eq(wire_exec_req_decode(o, &r, &e), -EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "has 10000 entries; the limit is 64"));
    json_object_put(o);
    wire_exec_req_free(&r);
    buf_free(&b);
}
END_TEST

START_TEST(create_request_strict)
{
    struct wire_create_req r = {0};
    struct nerr e = {0};
    json_object *o = parse("{\"name\":\"a\",\"cpus\":2}");

    ck_assert_int_eq(wire_create_req_decode(o, &r, &e), 0);
    ck_assert(r.has_cpus && !r.has_mem_mib);
    json_object_put(o);
    wire_create_req_free(&r);

    o = parse("{\"name\":\"a\",\"mem_mb\":2}");
    ck_assert_int_eq(wire_create_req_decode(o, &r, &e), -EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "unknown field 'mem_mb'"));
    json_object_put(o);
    wire_create_req_free(&r);

    memset(&e, 0, sizeof(e));
    o = parse("{\"name\":\"a\",\"cpus\":1.5}");
    ck_assert_int_eq(wire_create_req_decode(o, &r, &e), -EINVAL);
    json_object_put(o);
    wire_create_req_free(&r);

    memset(&e, 0, sizeof(e));
    o = parse("{\"name\":\"a\",\"cpus\":99999999999999999999}");
    ck_assert_int_eq(wire_create_req_decode(o, &r, &e), -EINVAL);
    json_object_put(o);
    wire_create_req_free(&r);
}
END_TEST

START_TEST(malformed_documents)
{
    json_object *o = NULL;
    struct nerr e = {0};

    ck_assert_int_eq(wire_parse_object("{\"a\":", 5, &o, &e), -EINVAL);
    ck_assert_int_eq(wire_parse_object("[1]", 3, &o, NULL), -EINVAL);
    ck_assert_int_eq(wire_parse_object("{} {}", 5, &o, NULL), -EINVAL);
    ck_assert_int_eq(wire_parse_object("", 0, &o, NULL), -EINVAL);
    ck_assert_int_eq(wire_parse_object("{}  \n", 5, &o, NULL), 0);
    json_object_put(o);
    /* nesting beyond WIRE_MAX_DEPTH is refused, not recursed into */
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    ck_assert_int_eq(wire_parse_value(deep, 200, &o, NULL), -EINVAL);
}
END_TEST

START_TEST(binary_output_is_lossless)
{
    uint8_t bytes[256];
    struct wire_exec_result in = {0}, out = {0};
    json_object *o, *reparsed = NULL;
    const char *text;
    size_t len;

    for (int i = 0; i < 256; i++)
        bytes[i] = (uint8_t)i;
    in.out = bytes;
    in.out_len = sizeof(bytes);
    in.err = (uint8_t *)"plain text\n";
    in.err_len = 11;
    in.exit_code = 3;
    o = wire_exec_result_encode(&in);
    ck_assert(json_object_object_get_ex(o, "stdout_b64", NULL));
    ck_assert(!json_object_object_get_ex(o, "stderr_b64", NULL));
    /* through text, as on the wire */
    text = wire_to_string(o, &len);
    ck_assert_int_eq(wire_parse_object(text, len, &reparsed, NULL), 0);
    ck_assert_int_eq(wire_exec_result_decode(reparsed, &out, NULL), 0);
    ck_assert_uint_eq(out.out_len, 256);
    ck_assert_mem_eq(out.out, bytes, 256);
    ck_assert_uint_eq(out.err_len, 11);
    ck_assert_int_eq(out.exit_code, 3);
    json_object_put(o);
    json_object_put(reparsed);
    wire_exec_result_free(&out);
}
END_TEST

START_TEST(checkpoint_and_restore)
{
    struct wire_checkpoint cp = {.id = "0123456789abcdef", .vm_name = "v", .label = "l",
                                 .created_at = "t", .pause_ms = 12};
    static const char *const keys[] = {"id", "vm_name", "label", "created_at", NULL};
    json_object *o = wire_checkpoint_encode(&cp);
    struct wire_restore_req rr = {0};
    struct wire_checkpoint_req cr = {0};
    struct nerr e = {0};

    assert_keys(o, keys);
    json_object_put(o);
    o = parse("{\"checkpoint_id\":\"01ab\",\"new_name\":\"c\"}");
    ck_assert_int_eq(wire_restore_req_decode(o, &rr, &e), 0);
    ck_assert_str_eq(rr.checkpoint_id, "01ab");
    json_object_put(o);
    wire_restore_req_free(&rr);
    o = parse("{\"label\":\"bad\\u0007label\"}");
    ck_assert_int_eq(wire_checkpoint_req_decode(o, &cr, &e), -EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "control character"));
    json_object_put(o);
    wire_checkpoint_req_free(&cr);
}
END_TEST

Suite *suite_wire(void)
{
    Suite *s = suite_create("wire");
    TCase *t = tcase_create("core");

    tcase_add_test(t, vm_info_round_trip);
    tcase_add_test(t, responses_lenient_to_new_fields);
    tcase_add_test(t, capabilities_fields);
    tcase_add_test(t, exec_request_round_trip);
    tcase_add_test(t, exec_request_strict);
    tcase_add_test(t, env_entry_count_bound);
    tcase_add_test(t, create_request_strict);
    tcase_add_test(t, malformed_documents);
    tcase_add_test(t, binary_output_is_lossless);
    tcase_add_test(t, checkpoint_and_restore);
    suite_add_tcase(s, t);
    return s;
}
