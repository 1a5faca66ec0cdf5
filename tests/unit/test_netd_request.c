/* test_netd_request.c — noid-netd's protocol (netd/request.c) and index
 * space (netd/alloc.c): which requests are accepted and how they read,
 * which are refused and why, the reply lines, and index -> TAP name,
 * addresses and MAC.  Also the default-route reading of netd/route.c. */
#include <json-c/json.h>
#include <string.h>

#include "alloc.h"
#include "request.h"
#include "route.h"
#include "unit.h"

#define ALL_TAPS NETD_MAX_TAPS

static int parse(const char *line, struct netd_request *r, struct nerr *e)
{
    memset(e, 0, sizeof(*e));
    return netd_request_parse(line, strlen(line), ALL_TAPS, r, e);
}

START_TEST(accepts)
{
    struct netd_request r;
    struct nerr e;

    ck_assert_int_eq(
        parse("{\"op\":\"setup\",\"owner\":\"0123456789abcdef0123456789abcdef\"}", &r, &e), 0);
    ck_assert_int_eq(r.op, NETD_OP_SETUP);
    ck_assert_str_eq(r.owner, "0123456789abcdef0123456789abcdef");
    ck_assert_str_eq(r.tap, "");

    ck_assert_int_eq(parse(" { \"owner\" : \"A_b-9\", \"op\" : \"setup\" } \r", &r, &e), 0);
    ck_assert_str_eq(r.owner, "A_b-9");

    ck_assert_int_eq(parse("{\"op\":\"teardown\",\"tap\":\"noid5\"}", &r, &e), 0);
    ck_assert_int_eq(r.op, NETD_OP_TEARDOWN);
    ck_assert_str_eq(r.tap, "noid5");
    ck_assert_uint_eq(r.tap_index, 5);
    ck_assert_str_eq(r.owner, "");

    ck_assert_int_eq(parse("{\"op\":\"teardown\",\"owner\":\"x\"}", &r, &e), 0);
    ck_assert_str_eq(r.tap, "");
    ck_assert_str_eq(r.owner, "x");

    ck_assert_int_eq(parse("{\"op\":\"teardown\",\"tap\":\"noid16383\",\"owner\":\"x\"}", &r, &e),
                     0);
    ck_assert_uint_eq(r.tap_index, 16383);
    ck_assert_int_eq(parse("{\"op\":\"teardown\",\"tap\":\"noid0\"}", &r, &e), 0);
    ck_assert_uint_eq(r.tap_index, 0);
}
END_TEST

START_TEST(refuses)
{
    static const struct {
        const char *line;
        const char *why; /* a part of the message */
    } cases[] = {
        {"", "bad JSON"},
        {"{", "bad JSON"},
        {"{\"op\":\"setup\",\"owner\":\"a\"", "bad JSON"},
        {"not json", "bad JSON"},
        {"{\"op\":\"setup\",\"owner\":\"a\"} x", "bad JSON"},
        {"{\"op\":\"setup\",\"owner\":\"a\"}{}", "bad JSON"},
        {"{\"op\":\"setup\",\"owner\":\"a\"}\n{}", "bad JSON"},
        {"[\"op\",\"setup\"]", "JSON object"},
        {"\"setup\"", "JSON object"},
        {"null", "JSON object"},
        {"{}", "missing field 'op'"},
        {"{\"owner\":\"a\"}", "missing field 'op'"},
        {"{\"op\":\"create\",\"owner\":\"a\"}", "unknown op 'create'"},
        {"{\"op\":\"SETUP\",\"owner\":\"a\"}", "unknown op"},
        {"{\"op\":1,\"owner\":\"a\"}", "'op' must be a string"},
        {"{\"op\":\"setup\",\"owner\":5}", "'owner' must be a string"},
        {"{\"op\":\"setup\",\"owner\":null}", "'owner' must be a string"},
        {"{\"op\":\"setup\",\"owner\":[\"a\"]}", "'owner' must be a string"},
        {"{\"op\":\"setup\",\"owner\":\"a\",\"ip\":\"1.2.3.4\"}", "unknown field 'ip'"},
        {"{\"op\":\"setup\",\"owner\":\"a\",\"x\":{\"y\":{\"z\":{\"w\":{}}}}}", "bad JSON"},
        {"{\"op\":\"setup\",\"owner\":\"a\",\"x\":{}}", "unknown field 'x'"},
        {"{\"op\":\"setup\"}", "setup needs an owner"},
        {"{\"op\":\"setup\",\"owner\":\"\"}", "owner must be"},
        {"{\"op\":\"setup\",\"owner\":\"a b\"}", "owner must be"},
        {"{\"op\":\"setup\",\"owner\":\"a/b\"}", "owner must be"},
        {"{\"op\":\"setup\",\"owner\":\"a\\u0000b\"}", "owner must be"},
        {"{\"op\":\"setup\",\"owner\":\"\\u00e9\"}", "owner must be"},
        {"{\"op\":\"setup\",\"owner\":"
         "\"0123456789012345678901234567890123456789012345678901234567890"
         "1234\"}",
         "owner must be"},
        {"{\"op\":\"setup\",\"owner\":\"a\",\"tap\":\"noid1\"}", "setup takes no tap"},
        {"{\"op\":\"teardown\"}", "needs a tap or an owner"},
        {"{\"op\":\"teardown\",\"tap\":\"eth0\"}", "refused: 'eth0' is not a noid TAP"},
        {"{\"op\":\"teardown\",\"tap\":\"lo\"}", "refused: 'lo' is not a noid TAP"},
        {"{\"op\":\"teardown\",\"tap\":\"noid\"}", "is not a noid TAP"},
        {"{\"op\":\"teardown\",\"tap\":\"noid05\"}", "is not a noid TAP"},
        {"{\"op\":\"teardown\",\"tap\":\"noid-1\"}", "is not a noid TAP"},
        {"{\"op\":\"teardown\",\"tap\":\"noid+\"}", "is not a noid TAP"},
        {"{\"op\":\"teardown\",\"tap\":\"noid16384\"}", "is not a noid TAP"},
        {"{\"op\":\"teardown\",\"tap\":\"noid99999\"}", "is not a noid TAP"},
        {"{\"op\":\"teardown\",\"tap\":\"noid123456\"}", "is not a noid TAP"},
        {"{\"op\":\"teardown\",\"tap\":\"noid1 \"}", "is not a noid TAP"},
        {"{\"op\":\"teardown\",\"tap\":\"NOID1\"}", "is not a noid TAP"},
        {"{\"op\":\"teardown\",\"tap\":\"noid1\\u0000x\"}", "is not a noid TAP"},
        {"{\"op\":\"teardown\",\"tap\":\"bad\\nline\"}", "'bad\\nline' is not"},
        {"{\"op\":\"teardown\",\"tap\":5}", "'tap' must be a string"},
    };
    struct netd_request r;
    struct nerr e;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = parse(cases[i].line, &r, &e);
        ck_assert_msg(rc == -EINVAL, "'%s' accepted", cases[i].line);
        ck_assert_msg(strstr(nerr_msg(&e), cases[i].why), "'%s': '%s' lacks '%s'", cases[i].line,
                      nerr_msg(&e), cases[i].why);
        ck_assert_msg(!strchr(nerr_msg(&e), '\n'), "'%s': message has a newline", cases[i].line);
    }
}
END_TEST

START_TEST(bounds)
{
    char line[NETD_LINE_MAX + 16];
    struct netd_request r;
    struct nerr e = {0};
    size_t pre;

    /* the longest line allowed (its newline would be byte NETD_LINE_MAX) */
    strcpy(line, "{\"op\":\"setup\",\"owner\":\"a\"}");
    pre = strlen(line);
    memset(line + pre, ' ', NETD_LINE_MAX - 1 - pre);
    ck_assert_int_eq(netd_request_parse(line, NETD_LINE_MAX - 1, ALL_TAPS, &r, &e), 0);
    line[NETD_LINE_MAX - 1] = ' ';
    ck_assert_int_eq(netd_request_parse(line, NETD_LINE_MAX, ALL_TAPS, &r, &e), -EINVAL);
    ck_assert_str_eq(nerr_msg(&e), "request longer than 4095 bytes");

    /* a NUL byte inside the line */
    memset(&e, 0, sizeof(e));
    ck_assert_int_eq(netd_request_parse("{\"op\"\0:1}", 9, ALL_TAPS, &r, &e), -EINVAL);
    ck_assert_str_eq(nerr_msg(&e), "request holds a NUL byte");

    /* --max-taps bounds the names accepted */
    memset(&e, 0, sizeof(e));
    strcpy(line, "{\"op\":\"teardown\",\"tap\":\"noid1\"}");
    ck_assert_int_eq(netd_request_parse(line, strlen(line), 2, &r, &e), 0);
    strcpy(line, "{\"op\":\"teardown\",\"tap\":\"noid2\"}");
    ck_assert_int_eq(netd_request_parse(line, strlen(line), 2, &r, &e), -EINVAL);
    ck_assert_str_eq(nerr_msg(&e), "refused: 'noid2' is not a noid TAP");

    /* a long name is quoted only in part */
    memset(&e, 0, sizeof(e));
    memset(line, 0, sizeof(line));
    strcpy(line, "{\"op\":\"teardown\",\"tap\":\"");
    memset(line + strlen(line), 'x', 1000);
    strcat(line, "\"}");
    ck_assert_int_eq(parse(line, &r, &e), -EINVAL);
    ck_assert_ptr_nonnull(strstr(nerr_msg(&e), "xxx...' is not a noid TAP"));
    ck_assert_int_lt(strlen(nerr_msg(&e)), 100);
}
END_TEST

START_TEST(owner_names)
{
    ck_assert(netd_owner_valid("a", 1));
    ck_assert(netd_owner_valid("AZaz09_-", 8));
    ck_assert(!netd_owner_valid("", 0));
    ck_assert(!netd_owner_valid("a.b", 3));
    ck_assert(!netd_owner_valid("a:b", 3));
    char s[NETD_OWNER_MAX + 1];
    memset(s, 'a', sizeof(s));
    ck_assert(netd_owner_valid(s, NETD_OWNER_MAX));
    ck_assert(!netd_owner_valid(s, NETD_OWNER_MAX + 1));
}
END_TEST

START_TEST(tap_names)
{
    uint32_t n = 77;

    ck_assert_int_eq(netd_tap_index("noid0", ALL_TAPS, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(netd_tap_index("noid16383", ALL_TAPS, &n), 0);
    ck_assert_uint_eq(n, 16383);
    ck_assert_int_eq(netd_tap_index("noid16384", ALL_TAPS, &n), -EINVAL);
    ck_assert_int_eq(netd_tap_index("noid00", ALL_TAPS, &n), -EINVAL);
    ck_assert_int_eq(netd_tap_index("noid", ALL_TAPS, &n), -EINVAL);
    ck_assert_int_eq(netd_tap_index("noid1a", ALL_TAPS, &n), -EINVAL);
    ck_assert_int_eq(netd_tap_index("xnoid1", ALL_TAPS, &n), -EINVAL);
    ck_assert_int_eq(netd_tap_index("eth0", ALL_TAPS, &n), -EINVAL);
    ck_assert_int_eq(netd_tap_index("noid1", 1, &n), -EINVAL);
    ck_assert_int_eq(netd_tap_index("noid0", 1, &n), 0);
}
END_TEST

START_TEST(addresses)
{
    struct netd_addrs a;

    netd_addrs_of(0, &a);
    ck_assert_str_eq(a.tap, "noid0");
    ck_assert_str_eq(a.host_ip, "172.16.0.1");
    ck_assert_str_eq(a.guest_ip, "172.16.0.2");
    ck_assert_str_eq(a.netmask, "255.255.255.252");
    ck_assert_int_eq(a.prefix, 30);
    ck_assert_str_eq(a.mac, "AA:FC:00:00:00:00");
    ck_assert_uint_eq(a.host_addr, 0xAC100001u);

    netd_addrs_of(5, &a);
    ck_assert_str_eq(a.tap, "noid5");
    ck_assert_str_eq(a.host_ip, "172.16.0.21");
    ck_assert_str_eq(a.guest_ip, "172.16.0.22");
    ck_assert_str_eq(a.mac, "AA:FC:00:00:00:05");

    netd_addrs_of(64, &a);
    ck_assert_str_eq(a.host_ip, "172.16.1.1");
    ck_assert_str_eq(a.guest_ip, "172.16.1.2");
    ck_assert_str_eq(a.mac, "AA:FC:00:00:00:40");

    netd_addrs_of(300, &a);
    ck_assert_str_eq(a.mac, "AA:FC:00:00:01:2C");

    /* the last /30 still lies inside 172.16.0.0/16 */
    netd_addrs_of(NETD_MAX_TAPS - 1, &a);
    ck_assert_str_eq(a.tap, "noid16383");
    ck_assert_str_eq(a.host_ip, "172.16.255.253");
    ck_assert_str_eq(a.guest_ip, "172.16.255.254");
    ck_assert_str_eq(a.mac, "AA:FC:00:00:3F:FF");
}
END_TEST

START_TEST(allocation)
{
    struct netd_indexset s;
    uint32_t n = 99;

    netd_indexset_clear(&s);
    ck_assert_int_eq(netd_indexset_lowest_free(&s, ALL_TAPS, &n), 0);
    ck_assert_uint_eq(n, 0);
    netd_indexset_add(&s, 0);
    netd_indexset_add(&s, 1);
    netd_indexset_add(&s, 3);
    ck_assert_int_eq(netd_indexset_lowest_free(&s, ALL_TAPS, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(netd_indexset_lowest_free(&s, 2, &n), -ENOSPC);
    ck_assert(netd_indexset_has(&s, 3));
    ck_assert(!netd_indexset_has(&s, 4));
    ck_assert(!netd_indexset_has(&s, NETD_MAX_TAPS));

    for (uint32_t i = 0; i < NETD_MAX_TAPS; i++)
        netd_indexset_add(&s, i);
    ck_assert_int_eq(netd_indexset_lowest_free(&s, ALL_TAPS, &n), -ENOSPC);
    netd_indexset_clear(&s);
    for (uint32_t i = 0; i < NETD_MAX_TAPS - 1; i++)
        netd_indexset_add(&s, i);
    ck_assert_int_eq(netd_indexset_lowest_free(&s, ALL_TAPS, &n), 0);
    ck_assert_uint_eq(n, NETD_MAX_TAPS - 1);
}
END_TEST

/* a reply line: one line, valid JSON, read back with json-c */
static json_object *reply_json(char *line)
{
    size_t len;
    json_object *o;

    ck_assert_ptr_nonnull(line);
    len = strlen(line);
    ck_assert_int_gt(len, 1);
    ck_assert_int_eq(line[len - 1], '\n');
    ck_assert_ptr_eq(strchr(line, '\n'), line + len - 1);
    o = json_tokener_parse(line);
    ck_assert_ptr_nonnull(o);
    free(line);
    return o;
}

static const char *field(json_object *o, const char *key)
{
    json_object *v;

    ck_assert_msg(json_object_object_get_ex(o, key, &v), "no field %s", key);
    return json_object_get_string(v);
}

START_TEST(replies)
{
    struct netd_addrs a;
    json_object *o;
    char *line;

    netd_addrs_of(5, &a);
    line = netd_reply_setup(&a);
    ck_assert_str_eq(line, "{\"ok\":true,\"tap\":\"noid5\",\"index\":5,\"host_ip\":\"172.16.0.21\","
                           "\"guest_ip\":\"172.16.0.22\",\"prefix\":30,\"netmask\":"
                           "\"255.255.255.252\",\"mac\":\"AA:FC:00:00:00:05\"}\n");
    o = reply_json(line);
    ck_assert_str_eq(field(o, "tap"), "noid5");
    json_object_put(o);

    line = netd_reply_teardown("noid5", false);
    ck_assert_str_eq(line, "{\"ok\":true,\"tap\":\"noid5\",\"gone\":false}\n");
    free(line);
    line = netd_reply_teardown("noid5", true);
    ck_assert_str_eq(line, "{\"ok\":true,\"tap\":\"noid5\",\"gone\":true}\n");
    free(line);
    line = netd_reply_teardown(NULL, false);
    ck_assert_str_eq(line, "{\"ok\":true,\"gone\":true}\n");
    free(line);

    line = netd_reply_error("refused: 'eth0' is not a noid TAP");
    ck_assert_str_eq(line, "{\"ok\":false,\"error\":\"refused: 'eth0' is not a noid TAP\"}\n");
    free(line);
    /* whatever the message holds, the reply stays one line of JSON */
    o = reply_json(netd_reply_error("a \"quoted\"\nsecond line \\ / \x01"));
    ck_assert_str_eq(field(o, "error"), "a \"quoted\"\nsecond line \\ / \x01");
    json_object_put(o);
}
END_TEST

START_TEST(default_route)
{
    char ifname[IFNAMSIZ] = "";
    static const char header[] =
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";
    char text[1024];

    snprintf(text, sizeof(text),
             "%seth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
             "uplink0\t00000000\t010200C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
             "wlan0\t00000000\t010200C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n",
             header);
    ck_assert_int_eq(route_default_parse(text, ifname), 0);
    ck_assert_str_eq(ifname, "uplink0");

    /* lowest metric wins, whatever the order */
    snprintf(text, sizeof(text),
             "%swlan0\t00000000\t010200C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
             "eth1\t00000000\t010200C0\t0003\t0\t0\t5\t00000000\t0\t0\t0\n",
             header);
    ck_assert_int_eq(route_default_parse(text, ifname), 0);
    ck_assert_str_eq(ifname, "eth1");

    /* a route that is down, or only a /24: no default */
    snprintf(text, sizeof(text),
             "%seth0\t00000000\t010200C0\t0002\t0\t0\t0\t00000000\t0\t0\t0\n"
             "eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
             header);
    ck_assert_int_eq(route_default_parse(text, ifname), -ENOENT);
    ck_assert_int_eq(route_default_parse(header, ifname), -ENOENT);
    ck_assert_int_eq(route_default_parse("", ifname), -ENOENT);
}
END_TEST

Suite *suite_netd_request(void)
{
    Suite *s = suite_create("netd_request");
    TCase *tc = tcase_create("netd_request");

    tcase_add_test(tc, accepts);
    tcase_add_test(tc, refuses);
    tcase_add_test(tc, bounds);
    tcase_add_test(tc, owner_names);
    tcase_add_test(tc, tap_names);
    tcase_add_test(tc, addresses);
    tcase_add_test(tc, allocation);
    tcase_add_test(tc, replies);
    tcase_add_test(tc, default_route);
    suite_add_tcase(s, tc);
    return s;
}
