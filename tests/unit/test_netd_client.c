/* test_netd_client.c — the server's noid-netd client
 * (server/engine/netd_client.c): what it sends, and that it takes only a
 * reply it can use.  netd runs as root, but what it answers ends up in a
 * VMM's command line: a TAP name with a comma would add QEMU options.  The
 * peer here is a Unix socket in a temporary directory that records the
 * request and sends one canned answer. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "netd_client.h"
#include "unit.h"

struct peer {
    int listen_fd;
    const char *reply; /* NULL: close without answering */
    char request[1024];
};

static void *peer_main(void *arg)
{
    struct peer *p = arg;
    int fd = accept(p->listen_fd, NULL, NULL);
    ssize_t n;

    if (fd < 0)
        return NULL;
    n = read(fd, p->request, sizeof(p->request) - 1);
    p->request[n > 0 ? n : 0] = '\0';
    if (p->reply && write(fd, p->reply, strlen(p->reply)) < 0)
        p->request[0] = '\0';
    close(fd);
    return NULL;
}

/* One client call against a peer answering reply; returns its result. */
static int call_setup(const char *reply, struct netd_lease *l, char request[1024])
{
    char dir[] = "/tmp/noid-unit-netd.XXXXXX", sock[128];
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    struct peer p = {.reply = reply};
    struct nerr e = {0};
    pthread_t th;
    int r;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sock, sizeof(sock), "%s/netd.sock", dir);
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
    p.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(bind(p.listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
    ck_assert_int_eq(listen(p.listen_fd, 1), 0);
    ck_assert_int_eq(pthread_create(&th, NULL, peer_main, &p), 0);
    r = netd_setup(sock, "0123456789abcdef0123456789abcdef", l, &e);
    pthread_join(th, NULL);
    close(p.listen_fd);
    unlink(sock);
    rmdir(dir);
    if (request)
        snprintf(request, 1024, "%s", p.request);
    return r;
}

#define GOOD_PREFIX "{\"ok\":true,\"index\":5,\"prefix\":30,\"netmask\":\"255.255.255.252\","

START_TEST(setup_ok)
{
    struct netd_lease l;
    char req[1024];

    ck_assert_int_eq(call_setup(GOOD_PREFIX "\"tap\":\"noid5\",\"host_ip\":\"172.16.0.21\","
                                            "\"guest_ip\":\"172.16.0.22\",\"mac\":\"AA:FC:00:00:00:05\"}\n",
                                &l, req),
                     0);
    ck_assert_str_eq(req, "{\"op\":\"setup\",\"owner\":\"0123456789abcdef0123456789abcdef\"}\n");
    ck_assert_str_eq(l.tap, "noid5");
    ck_assert_str_eq(l.host_ip, "172.16.0.21");
    ck_assert_str_eq(l.guest_ip, "172.16.0.22");
    ck_assert_str_eq(l.mac, "AA:FC:00:00:00:05");
    ck_assert_int_eq(l.prefix, 30);
}
END_TEST

START_TEST(setup_refusals)
{
    static const char *const bad[] = {
        /* netd's own refusal */
        "{\"ok\":false,\"error\":\"no free network\"}\n",
        /* option injection through the TAP name, and other non-TAP names */
        GOOD_PREFIX "\"tap\":\"noid5,script=/tmp/x\",\"host_ip\":\"172.16.0.21\","
                    "\"guest_ip\":\"172.16.0.22\",\"mac\":\"AA:FC:00:00:00:05\"}\n",
        GOOD_PREFIX "\"tap\":\"eth0\",\"host_ip\":\"172.16.0.21\","
                    "\"guest_ip\":\"172.16.0.22\",\"mac\":\"AA:FC:00:00:00:05\"}\n",
        GOOD_PREFIX "\"tap\":\"noid05\",\"host_ip\":\"172.16.0.21\","
                    "\"guest_ip\":\"172.16.0.22\",\"mac\":\"AA:FC:00:00:00:05\"}\n",
        GOOD_PREFIX "\"tap\":\"noid123456\",\"host_ip\":\"172.16.0.21\","
                    "\"guest_ip\":\"172.16.0.22\",\"mac\":\"AA:FC:00:00:00:05\"}\n",
        /* addresses and MAC that are not what they claim */
        GOOD_PREFIX "\"tap\":\"noid5\",\"host_ip\":\"172.16.0.21,x\","
                    "\"guest_ip\":\"172.16.0.22\",\"mac\":\"AA:FC:00:00:00:05\"}\n",
        GOOD_PREFIX "\"tap\":\"noid5\",\"host_ip\":\"172.16.0.21\","
                    "\"guest_ip\":\"::1\",\"mac\":\"AA:FC:00:00:00:05\"}\n",
        GOOD_PREFIX "\"tap\":\"noid5\",\"host_ip\":\"172.16.0.21\","
                    "\"guest_ip\":\"172.16.0.22\",\"mac\":\"AA:FC:00:00:00:05,id=x\"}\n",
        GOOD_PREFIX "\"tap\":\"noid5\",\"host_ip\":\"172.16.0.21\","
                    "\"guest_ip\":\"172.16.0.22\",\"mac\":\"AA-FC-00-00-00-05\"}\n",
        /* missing fields, wrong types */
        "{\"ok\":true,\"tap\":\"noid5\"}\n",
        "{\"ok\":true,\"index\":5,\"prefix\":\"30\",\"tap\":\"noid5\",\"host_ip\":\"172.16.0.21\","
        "\"guest_ip\":\"172.16.0.22\",\"mac\":\"AA:FC:00:00:00:05\"}\n",
        /* not JSON, no line end, nothing */
        "hello\n",
        "{\"ok\":true",
        NULL,
    };
    struct netd_lease l;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(call_setup(bad[i], &l, NULL) < 0, "accepted reply %zu: %s", i,
                      bad[i] ? bad[i] : "(none)");
}
END_TEST

START_TEST(absent)
{
    struct netd_lease l;
    struct nerr e = {0};

    ck_assert_int_eq(netd_setup("/nonexistent/noid/netd.sock", "x", &l, &e), -ENOENT);
    ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent/noid/netd.sock"));
}
END_TEST

START_TEST(validators)
{
    ck_assert(netd_tap_name_valid("noid0"));
    ck_assert(netd_tap_name_valid("noid16383"));
    ck_assert(!netd_tap_name_valid("noid"));
    ck_assert(!netd_tap_name_valid("noid-1"));
    ck_assert(!netd_tap_name_valid("noid1 "));
    ck_assert(!netd_tap_name_valid("tap0"));
    ck_assert(netd_mac_parse("AA:FC:00:00:3f:ff", NULL));
    ck_assert(!netd_mac_parse("AA:FC:00:00:3f:f", NULL));
    ck_assert(!netd_mac_parse("AA:FC:00:00:3f:fg", NULL));
    ck_assert(!netd_mac_parse("AA:FC:00:00:3f:ff:", NULL));
}
END_TEST

Suite *suite_netd_client(void)
{
    Suite *s = suite_create("netd_client");
    TCase *tc = tcase_create("client");

    tcase_add_test(tc, setup_ok);
    tcase_add_test(tc, setup_refusals);
    tcase_add_test(tc, absent);
    tcase_add_test(tc, validators);
    suite_add_tcase(s, tc);
    return s;
}
