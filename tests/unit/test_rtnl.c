/* test_rtnl.c — the rtnetlink client shared by the agent and noid-netd
 * (lib/rtnl.h, lib/rtnl_link.h): its written-out kernel ABI against the
 * kernel's own headers, the requests it builds, the attributes it reads,
 * a link message parsed, broadcast addresses, and a few read-only
 * requests to the kernel of the namespace the tests run in. */
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "rtnl.h"
#include "rtnl_link.h"
#include "unit.h"

/* rtnl.h writes the ABI out for musl-gcc, which has no <linux/...>: every
 * number and layout must be the kernel's */
START_TEST(abi_is_the_kernels)
{
    ck_assert_int_eq(RTNL_NETLINK_ROUTE, NETLINK_ROUTE);
    ck_assert_int_eq(RTNL_SOL_NETLINK, SOL_NETLINK);
    ck_assert_int_eq(RTNL_NETLINK_CAP_ACK, NETLINK_CAP_ACK);
    ck_assert_int_eq(RTNL_NETLINK_EXT_ACK, NETLINK_EXT_ACK);
    ck_assert_int_eq(RTNL_NLMSG_ERROR, NLMSG_ERROR);
    ck_assert_int_eq(RTNL_NLMSG_DONE, NLMSG_DONE);
    ck_assert_int_eq(RTNL_NLM_F_REQUEST, NLM_F_REQUEST);
    ck_assert_int_eq(RTNL_NLM_F_MULTI, NLM_F_MULTI);
    ck_assert_int_eq(RTNL_NLM_F_ACK, NLM_F_ACK);
    ck_assert_int_eq(RTNL_NLM_F_DUMP_INTR, NLM_F_DUMP_INTR);
    ck_assert_int_eq(RTNL_NLM_F_DUMP, NLM_F_DUMP);
    ck_assert_int_eq(RTNL_NLM_F_REPLACE, NLM_F_REPLACE);
    ck_assert_int_eq(RTNL_NLM_F_EXCL, NLM_F_EXCL);
    ck_assert_int_eq(RTNL_NLM_F_CREATE, NLM_F_CREATE);
    ck_assert_int_eq(RTNL_NLM_F_CAPPED, NLM_F_CAPPED);
    ck_assert_int_eq(RTNL_NLM_F_ACK_TLVS, NLM_F_ACK_TLVS);
    ck_assert_int_eq(RTNL_NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_MSG);

    ck_assert_int_eq(RTNL_RTM_NEWLINK, RTM_NEWLINK);
    ck_assert_int_eq(RTNL_RTM_DELLINK, RTM_DELLINK);
    ck_assert_int_eq(RTNL_RTM_GETLINK, RTM_GETLINK);
    ck_assert_int_eq(RTNL_RTM_SETLINK, RTM_SETLINK);
    ck_assert_int_eq(RTNL_RTM_NEWADDR, RTM_NEWADDR);
    ck_assert_int_eq(RTNL_RTM_DELADDR, RTM_DELADDR);
    ck_assert_int_eq(RTNL_RTM_GETADDR, RTM_GETADDR);
    ck_assert_int_eq(RTNL_RTM_NEWROUTE, RTM_NEWROUTE);
    ck_assert_int_eq(RTNL_RTM_DELROUTE, RTM_DELROUTE);
    ck_assert_int_eq(RTNL_RTM_GETROUTE, RTM_GETROUTE);
    ck_assert_int_eq(RTNL_RTM_NEWNEIGH, RTM_NEWNEIGH);
    ck_assert_int_eq(RTNL_RTM_DELNEIGH, RTM_DELNEIGH);
    ck_assert_int_eq(RTNL_RTM_GETNEIGH, RTM_GETNEIGH);

    ck_assert_int_eq(RTNL_IFLA_ADDRESS, IFLA_ADDRESS);
    ck_assert_int_eq(RTNL_IFLA_IFNAME, IFLA_IFNAME);
    ck_assert_int_eq(RTNL_IFLA_LINKINFO, IFLA_LINKINFO);
    ck_assert_int_eq(RTNL_IFLA_IFALIAS, IFLA_IFALIAS);
    ck_assert_int_eq(RTNL_IFLA_EXT_MASK, IFLA_EXT_MASK);
    ck_assert_int_eq(RTNL_IFLA_CARRIER, IFLA_CARRIER);
    ck_assert_int_eq(RTNL_IFLA_INFO_KIND, IFLA_INFO_KIND);
    ck_assert_int_eq(RTNL_IFLA_INFO_DATA, IFLA_INFO_DATA);
    ck_assert_int_eq(RTNL_IFLA_TUN_OWNER, IFLA_TUN_OWNER);
    ck_assert_int_eq(RTNL_RTEXT_FILTER_SKIP_STATS, RTEXT_FILTER_SKIP_STATS);
    ck_assert_int_eq(RTNL_IFA_ADDRESS, IFA_ADDRESS);
    ck_assert_int_eq(RTNL_IFA_LOCAL, IFA_LOCAL);
    ck_assert_int_eq(RTNL_IFA_BROADCAST, IFA_BROADCAST);
    ck_assert_int_eq(RTNL_RTA_DST, RTA_DST);
    ck_assert_int_eq(RTNL_RTA_OIF, RTA_OIF);
    ck_assert_int_eq(RTNL_RTA_GATEWAY, RTA_GATEWAY);
    ck_assert_int_eq(RTNL_RTA_PRIORITY, RTA_PRIORITY);
    ck_assert_int_eq(RTNL_RTA_TABLE, RTA_TABLE);
    ck_assert_int_eq(RTNL_RT_TABLE_MAIN, RT_TABLE_MAIN);
    ck_assert_int_eq(RTNL_RT_TABLE_LOCAL, RT_TABLE_LOCAL);
    ck_assert_int_eq(RTNL_RTPROT_BOOT, RTPROT_BOOT);
    ck_assert_int_eq(RTNL_RT_SCOPE_UNIVERSE, RT_SCOPE_UNIVERSE);
    ck_assert_int_eq(RTNL_RTN_UNICAST, RTN_UNICAST);
    ck_assert_int_eq(RTNL_NDA_DST, NDA_DST);
    ck_assert_int_eq(RTNL_NUD_NOARP, NUD_NOARP);

    ck_assert_uint_eq(sizeof(struct rtnl_nlmsghdr), sizeof(struct nlmsghdr));
    ck_assert_uint_eq(sizeof(struct rtnl_nlmsgerr), sizeof(struct nlmsgerr));
    ck_assert_uint_eq(sizeof(struct rtnl_sockaddr_nl), sizeof(struct sockaddr_nl));
    ck_assert_uint_eq(sizeof(struct rtnl_rtattr), sizeof(struct rtattr));
    ck_assert_uint_eq(sizeof(struct rtnl_ifinfomsg), sizeof(struct ifinfomsg));
    ck_assert_uint_eq(offsetof(struct rtnl_ifinfomsg, ifi_change),
                      offsetof(struct ifinfomsg, ifi_change));
    ck_assert_uint_eq(sizeof(struct rtnl_ifaddrmsg), sizeof(struct ifaddrmsg));
    ck_assert_uint_eq(offsetof(struct rtnl_ifaddrmsg, ifa_index),
                      offsetof(struct ifaddrmsg, ifa_index));
    ck_assert_uint_eq(sizeof(struct rtnl_rtmsg), sizeof(struct rtmsg));
    ck_assert_uint_eq(offsetof(struct rtnl_rtmsg, rtm_type), offsetof(struct rtmsg, rtm_type));
    ck_assert_uint_eq(sizeof(struct rtnl_ndmsg), sizeof(struct ndmsg));
    ck_assert_uint_eq(offsetof(struct rtnl_ndmsg, ndm_state), offsetof(struct ndmsg, ndm_state));
    ck_assert_uint_eq(RTNL_ALIGN(5), NLMSG_ALIGN(5));
    ck_assert_uint_eq(RTNL_ALIGN(7), RTA_ALIGN(7));
}
END_TEST

START_TEST(request_is_laid_out_as_the_kernel_reads_it)
{
    struct rtnl_ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = 7};
    struct rtnl_req req;
    const struct rtattr *a;
    uint32_t mask = 8;

    memset(&req, 0xaa, sizeof(req)); /* padding must not keep old bytes */
    rtnl_req_init(&req, RTNL_RTM_GETLINK, RTNL_NLM_F_ACK, &ifi, sizeof(ifi));
    ck_assert_uint_eq(req.h.nlmsg_len, NLMSG_LENGTH(sizeof(struct ifinfomsg)));
    ck_assert_uint_eq(req.h.nlmsg_type, RTM_GETLINK);
    ck_assert_uint_eq(req.h.nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
    ck_assert_int_eq(((const struct ifinfomsg *)NLMSG_DATA(&req.h))->ifi_index, 7);

    /* "ab" and its NUL: 3 bytes, padded to 4 */
    rtnl_req_attr(&req, RTNL_IFLA_IFNAME, "ab", 3);
    rtnl_req_attr(&req, RTNL_IFLA_EXT_MASK, &mask, sizeof(mask));
    ck_assert_uint_eq(req.h.nlmsg_len,
                      NLMSG_LENGTH(sizeof(struct ifinfomsg)) + RTA_LENGTH(4) + RTA_LENGTH(4));

    a = IFLA_RTA((const struct ifinfomsg *)NLMSG_DATA(&req.h));
    ck_assert_uint_eq(a->rta_type, IFLA_IFNAME);
    ck_assert_uint_eq(a->rta_len, RTA_LENGTH(3));
    ck_assert_str_eq(RTA_DATA(a), "ab");
    ck_assert_uint_eq(((const uint8_t *)RTA_DATA(a))[3], 0);
    a = (const struct rtattr *)((const char *)a + RTA_ALIGN(a->rta_len));
    ck_assert_uint_eq(a->rta_type, IFLA_EXT_MASK);
    ck_assert_uint_eq(*(const uint32_t *)RTA_DATA(a), 8);
}
END_TEST

/* Append attribute type with data[len] at buf[*off], as the kernel would. */
static void put_attr(uint8_t *buf, size_t *off, uint16_t type, const void *data, size_t len)
{
    struct rtattr a = {.rta_len = (unsigned short)RTA_LENGTH(len), .rta_type = type};

    memcpy(buf + *off, &a, sizeof(a));
    memcpy(buf + *off + sizeof(a), data, len);
    memset(buf + *off + RTA_LENGTH(len), 0, RTA_ALIGN(a.rta_len) - a.rta_len);
    *off += RTA_ALIGN(a.rta_len);
}

START_TEST(attributes_are_found_and_bounded)
{
    uint8_t buf[64] __attribute__((aligned(4)));
    uint32_t v = 42;
    size_t off = 0, len = 0;
    char s[8];
    const void *p;

    put_attr(buf, &off, 1, "eth0", 5);
    put_attr(buf, &off, NLA_F_NESTED | 2, &v, sizeof(v));
    put_attr(buf, &off, 3, "abcdef", 6); /* no NUL */

    p = rtnl_attrs_find(buf, off, 1, &len);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(len, 5);
    ck_assert_str_eq(p, "eth0");
    /* the flag bits of the type do not hide it */
    p = rtnl_attrs_find(buf, off, 2, &len);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(len, 4);
    ck_assert_ptr_null(rtnl_attrs_find(buf, off, 9, &len));

    /* a string is cut to fit, NUL or not */
    ck_assert(rtnl_attrs_string(buf, off, 3, s, sizeof(s)));
    ck_assert_str_eq(s, "abcdef");
    ck_assert(rtnl_attrs_string(buf, off, 3, s, 4));
    ck_assert_str_eq(s, "abc");
    ck_assert(!rtnl_attrs_string(buf, off, 9, s, sizeof(s)));
    ck_assert_str_eq(s, "");

    /* an attribute longer than what is left ends the search: the last
     * one is 4 + 6 bytes padded to 12, so 3 fewer cut into its data */
    ck_assert_ptr_null(rtnl_attrs_find(buf, off - 3, 3, &len));
    ck_assert_ptr_nonnull(rtnl_attrs_find(buf, off - 3, 1, &len));
    /* so does one shorter than its own header */
    buf[0] = 2;
    buf[1] = 0;
    ck_assert_ptr_null(rtnl_attrs_find(buf, off, 2, &len));
}
END_TEST

/* A RTM_NEWLINK message as the kernel sends one. */
struct link_msg {
    union {
        struct rtnl_nlmsghdr h;
        uint8_t buf[1024];
    };
};

static void link_msg(struct link_msg *m, int ifindex, const char *name, const char *alias,
                     int carrier, const char *kind, const uint32_t *owner)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex};
    uint8_t info[128], data[32];
    size_t off = NLMSG_LENGTH(sizeof(ifi)), ioff = 0, doff = 0;

    memset(m, 0, sizeof(*m));
    m->h.nlmsg_type = RTM_NEWLINK;
    memcpy(m->buf + NLMSG_HDRLEN, &ifi, sizeof(ifi));
    if (name)
        put_attr(m->buf, &off, IFLA_IFNAME, name, strlen(name) + 1);
    if (alias)
        put_attr(m->buf, &off, IFLA_IFALIAS, alias, strlen(alias) + 1);
    if (carrier >= 0) {
        uint8_t c = (uint8_t)carrier;
        put_attr(m->buf, &off, IFLA_CARRIER, &c, 1);
    }
    if (kind) {
        put_attr(info, &ioff, IFLA_INFO_KIND, kind, strlen(kind) + 1);
        if (owner) {
            put_attr(data, &doff, IFLA_TUN_OWNER, owner, sizeof(*owner));
            put_attr(info, &ioff, NLA_F_NESTED | IFLA_INFO_DATA, data, doff);
        }
        put_attr(m->buf, &off, NLA_F_NESTED | IFLA_LINKINFO, info, ioff);
    }
    m->h.nlmsg_len = (uint32_t)off;
}

START_TEST(link_message_is_parsed)
{
    struct link_msg m;
    struct rtnl_link l;
    uint32_t owner = 1000;

    link_msg(&m, 12, "noid3", "noid:vm-1", 1, "tun", &owner);
    ck_assert_int_eq(rtnl_link_parse(&m.h, &l), 0);
    ck_assert_int_eq(l.ifindex, 12);
    ck_assert_str_eq(l.name, "noid3");
    ck_assert_str_eq(l.alias, "noid:vm-1");
    ck_assert(l.carrier);
    ck_assert(l.is_tun);
    ck_assert(l.has_tun_owner);
    ck_assert_uint_eq(l.tun_owner, 1000);

    /* a TAP nobody holds, without an owner or an alias */
    link_msg(&m, 13, "noid4", NULL, 0, "tun", NULL);
    ck_assert_int_eq(rtnl_link_parse(&m.h, &l), 0);
    ck_assert_str_eq(l.alias, "");
    ck_assert(!l.carrier);
    ck_assert(l.is_tun);
    ck_assert(!l.has_tun_owner);

    /* another kind: its data is not taken for a TAP's */
    link_msg(&m, 14, "noid5", NULL, 1, "veth", &owner);
    ck_assert_int_eq(rtnl_link_parse(&m.h, &l), 0);
    ck_assert(!l.is_tun);
    ck_assert(!l.has_tun_owner);

    /* no link info at all (a loopback) */
    link_msg(&m, 1, "lo", NULL, -1, NULL, NULL);
    ck_assert_int_eq(rtnl_link_parse(&m.h, &l), 0);
    ck_assert_str_eq(l.name, "lo");
    ck_assert(!l.is_tun);
    ck_assert(!l.carrier);

    /* a name longer than a link name can be is cut, never overflows */
    link_msg(&m, 2, "a-name-of-twenty-chars", NULL, -1, NULL, NULL);
    ck_assert_int_eq(rtnl_link_parse(&m.h, &l), 0);
    ck_assert_uint_eq(strlen(l.name), IFNAMSIZ - 1);
}
END_TEST

START_TEST(non_link_message_is_refused)
{
    struct link_msg m;
    struct rtnl_link l;

    link_msg(&m, 12, "noid3", NULL, 1, NULL, NULL);
    m.h.nlmsg_type = RTM_NEWADDR;
    ck_assert_int_eq(rtnl_link_parse(&m.h, &l), -EBADMSG);
    m.h.nlmsg_type = RTM_NEWLINK;
    m.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg) - 1);
    ck_assert_int_eq(rtnl_link_parse(&m.h, &l), -EBADMSG);
    /* the fixed part alone is a link without attributes */
    m.h.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    ck_assert_int_eq(rtnl_link_parse(&m.h, &l), 0);
    ck_assert_int_eq(l.ifindex, 12);
    ck_assert_str_eq(l.name, "");
}
END_TEST

static bool brd(const char *addr, unsigned prefix, char out[16])
{
    uint8_t a[4], b[4];
    unsigned v[4];

    ck_assert_int_eq(sscanf(addr, "%u.%u.%u.%u", &v[0], &v[1], &v[2], &v[3]), 4);
    for (int i = 0; i < 4; i++)
        a[i] = (uint8_t)v[i];
    memset(b, 0, sizeof(b));
    if (!rtnl_ipv4_broadcast(a, prefix, b))
        return false;
    snprintf(out, 16, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
    return true;
}

START_TEST(broadcast_address_of_a_subnet)
{
    char out[16];

    /* netd's /30s: the host .1, the guest .2, broadcast .3 */
    ck_assert(brd("10.200.0.1", 30, out));
    ck_assert_str_eq(out, "10.200.0.3");
    ck_assert(brd("10.200.1.6", 30, out));
    ck_assert_str_eq(out, "10.200.1.7");
    ck_assert(brd("192.168.7.10", 24, out));
    ck_assert_str_eq(out, "192.168.7.255");
    ck_assert(brd("172.16.0.1", 12, out));
    ck_assert_str_eq(out, "172.31.255.255");
    ck_assert(brd("10.0.0.1", 0, out));
    ck_assert_str_eq(out, "255.255.255.255");
    /* point-to-point and host addresses have none */
    ck_assert(!brd("10.0.0.0", 31, out));
    ck_assert(!brd("10.0.0.1", 32, out));
}
END_TEST

/* Read-only requests to the kernel of the tests' own namespace, where
 * "lo" always exists as link 1. */
START_TEST(kernel_answers_link_lookups)
{
    struct rtnl nl = RTNL_CLOSED;
    struct rtnl_link l, *links = NULL;
    size_t n = 0;
    bool lo = false;

    rtnl_close(&nl); /* closing before opening is allowed */
    ck_assert_int_eq(rtnl_open(&nl, 5000, RTNL_TIMEOUT_EACH), 0);
    ck_assert_int_eq(rtnl_link_by_name(&nl, "lo", &l), 0);
    ck_assert_int_eq(l.ifindex, 1);
    ck_assert_str_eq(l.name, "lo");
    ck_assert(!l.is_tun);
    ck_assert_int_eq(rtnl_link_by_name(&nl, "noid-no-such", &l), -ENODEV);
    ck_assert_int_eq(rtnl_link_by_name(&nl, "a-name-too-long-for-a-link", &l), -ENODEV);

    ck_assert_int_eq(rtnl_links(&nl, &links, &n), 0);
    ck_assert_uint_ge(n, 1);
    for (size_t i = 0; i < n; i++)
        lo = lo || (links[i].ifindex == 1 && strcmp(links[i].name, "lo") == 0);
    ck_assert(lo);
    free(links);
    rtnl_close(&nl);
    rtnl_close(&nl);
}
END_TEST

/* A deadline already passed fails the call instead of waiting. */
START_TEST(passed_deadline_times_out)
{
    struct rtnl nl;
    struct rtnl_link l;

    ck_assert_int_eq(rtnl_open(&nl, 0, RTNL_TIMEOUT_TOTAL), 0);
    ck_assert_int_eq(rtnl_link_by_name(&nl, "lo", &l), -ETIMEDOUT);
    rtnl_close(&nl);
}
END_TEST

Suite *suite_rtnl(void)
{
    Suite *s = suite_create("rtnl");
    TCase *t = tcase_create("core");

    tcase_add_test(t, abi_is_the_kernels);
    tcase_add_test(t, request_is_laid_out_as_the_kernel_reads_it);
    tcase_add_test(t, attributes_are_found_and_bounded);
    tcase_add_test(t, link_message_is_parsed);
    tcase_add_test(t, non_link_message_is_refused);
    tcase_add_test(t, broadcast_address_of_a_subnet);
    tcase_add_test(t, kernel_answers_link_lookups);
    tcase_add_test(t, passed_deadline_times_out);
    suite_add_tcase(s, t);
    return s;
}
