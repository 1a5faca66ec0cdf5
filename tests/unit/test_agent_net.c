/* test_agent_net.c — the agent's parser of the kernel command line's ip=
 * (agent/net_cmdline.c, compiled into this binary: it is pure).  The rest
 * of agent/net.c talks to the kernel and is tested for real by
 * tests/integration/test_agent_net.sh. */
#include <stdio.h>
#include <string.h>

#include "../../agent/net_cmdline.h"
#include "unit.h"

/* The host's form (server/engine/vm_net.c). */
#define HOST_IP "ip=172.16.0.2::172.16.0.1:255.255.255.252::eth0:off"

static int parse(const char *cmdline, struct net_cmdline *ret, const char **why)
{
    return net_cmdline_parse(cmdline, strlen(cmdline), ret, why);
}

static void assert_quad(const uint8_t q[4], uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    const uint8_t want[4] = {a, b, c, d};

    ck_assert_mem_eq(q, want, 4);
}

START_TEST(host_form)
{
    struct net_cmdline c;
    const char *why = "x";

    ck_assert_int_eq(
        parse("console=ttyS0 quiet panic=-1 " HOST_IP ":192.0.2.1 tsc_early_khz=1\n", &c, &why), 1);
    ck_assert_ptr_null(why);
    ck_assert(c.net.up);
    assert_quad(c.net.addr, 172, 16, 0, 2);
    ck_assert_uint_eq(c.net.prefix, 30);
    assert_quad(c.net.gateway, 172, 16, 0, 1);
    assert_quad(c.net.dns, 192, 0, 2, 1);
    ck_assert_str_eq(c.dev, "eth0");
    /* a cold boot keeps the MAC the VMM gave the device */
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(c.net.mac[i], 0);

    /* without dns, at the very end of the line */
    ck_assert_int_eq(parse("quiet " HOST_IP, &c, &why), 1);
    assert_quad(c.net.dns, 0, 0, 0, 0);
    assert_quad(c.net.gateway, 172, 16, 0, 1);
}
END_TEST

START_TEST(optional_fields)
{
    struct net_cmdline c;
    const char *why;

    /* no gateway, no device, empty autoconf, a /32 */
    ck_assert_int_eq(parse("ip=10.1.2.3:::255.255.255.255", &c, &why), 1);
    ck_assert_uint_eq(c.net.prefix, 32);
    assert_quad(c.net.gateway, 0, 0, 0, 0);
    ck_assert_str_eq(c.dev, "");
    /* server-ip, hostname, dns1 and ntp0 are ignored, whatever they hold;
     * fields beyond the tenth too */
    ck_assert_int_eq(
        parse("ip=10.0.0.2:junk:10.0.0.1:255.0.0.0:my-host:eth1:none:10.0.0.53:x:y:z:w", &c, &why),
        1);
    ck_assert_uint_eq(c.net.prefix, 8);
    ck_assert_str_eq(c.dev, "eth1");
    assert_quad(c.net.dns, 10, 0, 0, 53);
    /* explicit 0.0.0.0 gateway = none; a 15-character device name */
    ck_assert_int_eq(parse("ip=10.0.0.2::0.0.0.0:255.255.255.0::abcdefghijklmno:off", &c, &why), 1);
    assert_quad(c.net.gateway, 0, 0, 0, 0);
    ck_assert_str_eq(c.dev, "abcdefghijklmno");
    /* leading zeros are decimal, as for the kernel */
    ck_assert_int_eq(parse("ip=010.000.000.002:::255.0.0.0", &c, &why), 1);
    assert_quad(c.net.addr, 10, 0, 0, 2);
}
END_TEST

START_TEST(absent_or_off)
{
    struct net_cmdline c;
    const char *why = "x";

    memset(&c, 0x5a, sizeof(c));
    ck_assert_int_eq(parse("console=ttyS0 quiet\n", &c, &why), 0);
    ck_assert_ptr_null(why);
    ck_assert_int_eq(parse("", &c, &why), 0);
    ck_assert_int_eq(parse("   \n", &c, &why), 0);
    /* look-alikes are other parameters */
    ck_assert_int_eq(
        parse("nfsip=1.2.3.4:::255.0.0.0 xip=1 ip ipv6=1 IP=1.2.3.4:::255.0.0.0", &c, &why), 0);
    ck_assert_int_eq(parse("ip=off", &c, &why), 0);
    ck_assert_str_eq(why, "ip=off");
    ck_assert_int_eq(parse("quiet ip=none\n", &c, &why), 0);
    ck_assert_str_eq(why, "ip=off");
    ck_assert_uint_eq(c.net.prefix, 0x5a); /* untouched */
}
END_TEST

START_TEST(last_wins_and_init_args)
{
    struct net_cmdline c;
    const char *why;

    ck_assert_int_eq(parse("ip=off ip=10.0.0.2::10.0.0.1:255.0.0.0::eth1:off", &c, &why), 1);
    assert_quad(c.net.addr, 10, 0, 0, 2);
    ck_assert_int_eq(parse(HOST_IP " ip=off", &c, &why), 0);
    ck_assert_int_eq(parse(HOST_IP " ip=dhcp", &c, &why), -EINVAL);
    /* after "--" the parameters are init's */
    ck_assert_int_eq(parse(HOST_IP " -- ip=dhcp", &c, &why), 1);
    assert_quad(c.net.addr, 172, 16, 0, 2);
    ck_assert_int_eq(parse("quiet -- " HOST_IP, &c, &why), 0);
    /* "--x" or "--=1" is not the separator */
    ck_assert_int_eq(parse("--x " HOST_IP, &c, &why), 1);
    ck_assert_int_eq(parse("--=1 " HOST_IP, &c, &why), 1);
}
END_TEST

START_TEST(quotes_and_bytes)
{
    struct net_cmdline c;
    const char *why;

    ck_assert_int_eq(parse("a=\"x y\" \"" HOST_IP "\" b", &c, &why), 1);
    ck_assert_str_eq(c.dev, "eth0");
    ck_assert_int_eq(parse("ip=\"172.16.0.2::172.16.0.1:255.255.255.252::eth0:off\" b", &c, &why),
                     1);
    ck_assert_str_eq(c.dev, "eth0");
    /* a quoted space does not split the parameter: the value holds it */
    ck_assert_int_eq(parse("ip=\"10.0.0.2:::255.0.0.0:a b\"", &c, &why), 1);
    /* an ip= inside another parameter's quotes is not one */
    ck_assert_int_eq(parse("x=\"a " HOST_IP "\"", &c, &why), 0);
    /* tabs and newlines separate too */
    ck_assert_int_eq(parse("quiet\t" HOST_IP "\nmore", &c, &why), 1);
    /* nothing after a NUL counts */
    {
        static const char buf[] = "quiet\0" HOST_IP;
        ck_assert_int_eq(net_cmdline_parse(buf, sizeof(buf) - 1, &c, &why), 0);
    }
    /* the length bounds the parse, not a NUL */
    ck_assert_int_eq(net_cmdline_parse(HOST_IP ":192.0.2.1", strlen(HOST_IP) + 1, &c, &why), 1);
    assert_quad(c.net.dns, 0, 0, 0, 0);
    ck_assert_int_eq(net_cmdline_parse(HOST_IP ":192.0.2.1", strlen(HOST_IP) + 4, &c, &why),
                     -EINVAL);
    /* an unterminated quote runs to the end */
    ck_assert_int_eq(parse("\"" HOST_IP, &c, &why), 1);
    ck_assert_int_eq(parse("ip=\"", &c, &why), -EINVAL);
    ck_assert_int_eq(parse("\"", &c, &why), 0);
    ck_assert_int_eq(parse("\"\"", &c, &why), 0);
}
END_TEST

/* Each of these is an ip= the parser does not understand: -EINVAL with a
 * reason, and *ret untouched. */
static const char *const refused[] = {
    "ip=",
    "ip=dhcp",
    "ip=on",
    "ip=any",
    "ip=bootp",
    "ip=rarp",
    "ip=both",
    "ip=static",
    "ip=10.0.0.2::10.0.0.1:255.0.0.0::eth0:dhcp",
    "ip=10.0.0.2::10.0.0.1:255.0.0.0::eth0:on",
    "ip=:::255.0.0.0",
    "ip=0.0.0.0:::255.0.0.0",
    "ip=10.0.0.2",
    "ip=10.0.0.2:",
    "ip=10.0.0.2::10.0.0.1",
    "ip=10.0.0.2::10.0.0.1:",
    "ip=10.0.0.2:::0.0.0.0",
    "ip=10.0.0.2:::255.0.255.0",
    "ip=10.0.0.2:::255.255.255.254x",
    "ip=10.0.0.2:::128.0.0.1",
    "ip=10.0.0.256:::255.0.0.0",
    "ip=10.0.0:::255.0.0.0",
    "ip=10.0.0.2.5:::255.0.0.0",
    "ip=10.0.0.2x:::255.0.0.0",
    "ip=10.0..2:::255.0.0.0",
    "ip=+10.0.0.2:::255.0.0.0",
    "ip= 10.0.0.2:::255.0.0.0",
    "ip=0010.0.0.2:::255.0.0.0",
    "ip=10.0.0.2::10.1.0.1:255.255.0.0",
    "ip=172.16.0.2::172.16.0.5:255.255.255.252",
    "ip=172.16.0.2::172.16.0.2:255.255.255.252",
    "ip=10.0.0.2::10.0.0.1.1:255.0.0.0",
    "ip=10.0.0.2:::255.0.0.0::eth0:off:192.0.2",
    "ip=10.0.0.2:::255.0.0.0::abcdefghijklmnop:off",
    "ip=10.0.0.2:::255.0.0.0::a/b:off",
    "ip=10.0.0.2:::255.0.0.0::..:off",
};

START_TEST(refusals)
{
    struct net_cmdline c;
    const char *why = NULL;

    memset(&c, 0x5a, sizeof(c));
    ck_assert_msg(parse(refused[_i], &c, &why) == -EINVAL, "'%s' not refused", refused[_i]);
    ck_assert_ptr_nonnull(why);
    ck_assert(strlen(why) > 5);
    ck_assert_uint_eq(c.net.prefix, 0x5a);
    ck_assert_uint_eq((uint8_t)c.dev[0], 0x5a);
}
END_TEST

START_TEST(netmasks)
{
    struct net_cmdline c;
    const char *why;
    char line[64];

    /* every contiguous mask gives its prefix */
    for (int p = 1; p <= 32; p++) {
        uint32_t m = p == 32 ? UINT32_MAX : ~(UINT32_MAX >> p);

        snprintf(line, sizeof(line), "ip=128.0.0.1:::%u.%u.%u.%u", m >> 24, (m >> 16) & 255,
                 (m >> 8) & 255, m & 255);
        ck_assert_int_eq(parse(line, &c, &why), 1);
        ck_assert_uint_eq(c.net.prefix, p);
    }
}
END_TEST

Suite *suite_agent_net(void)
{
    Suite *s = suite_create("agent_net");
    TCase *t = tcase_create("cmdline");

    tcase_add_test(t, host_form);
    tcase_add_test(t, optional_fields);
    tcase_add_test(t, absent_or_off);
    tcase_add_test(t, last_wins_and_init_args);
    tcase_add_test(t, quotes_and_bytes);
    tcase_add_loop_test(t, refusals, 0, sizeof(refused) / sizeof(refused[0]));
    tcase_add_test(t, netmasks);
    suite_add_tcase(s, t);
    return s;
}
