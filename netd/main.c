/* main.c — noid-netd: the root half of VM networking (DESIGN.md §8,
 * docs/netd-protocol.md).  Options, start-up (orphan TAPs, IP forwarding,
 * firewall), then one connection at a time until SIGTERM/SIGINT.
 *
 * At exit the socket goes and every TAP stays: VMs outlive netd, and the
 * next netd finds their TAPs in the kernel. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>

#include "firewall.h"
#include "log.h"
#include "macro.h"
#include "noid-config.h"
#include "notify.h"
#include "route.h"
#include "rtnl.h"
#include "serve.h"
#include "vmnet.h"

#define DEFAULT_SOCKET "/run/noid/netd.sock"
/* the user noid-server runs as, when the admin made one */
#define DEFAULT_SERVER_USER "noid"
/* Each rtnetlink call: the kernel answers at once, this only bounds a
 * wedged kernel */
#define NETD_RTNL_TIMEOUT_MS 5000

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: noid-netd [--socket PATH] [--server-uid UID] [--max-taps N]\n"
            "\n"
            "The network daemon of noid (runs as root): creates and removes the TAP\n"
            "device of each VM (noid<N>, a /30 of " NETD_SUBNET ") on request of\n"
            "noid-server, and keeps the NAT and FORWARD iptables rules in place.\n"
            "Requests come as JSON lines on a Unix socket (docs/netd-protocol.md).\n"
            "\n"
            "  --socket PATH     listen here (default " DEFAULT_SOCKET ")\n"
            "  --server-uid UID  the only uid allowed to connect and the owner of every\n"
            "                    TAP (default: the uid of the user '" DEFAULT_SERVER_USER
            "', else 0)\n"
            "  --max-taps N      at most N TAPs, 1 to %d (default %d)\n"
            "  -h, --help        this help\n"
            "  --version         the version\n"
            "\n"
            "At start it removes noid<N> TAPs no VM holds open, warns when\n"
            "net.ipv4.ip_forward is off and adds the missing iptables rules.\n"
            "NOID_DEBUG=1 logs more.\n",
            NETD_MAX_TAPS, NETD_MAX_TAPS);
}

/* A decimal number in [min, max], nothing else */
static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *ret)
{
    char *end;
    unsigned long v;

    if (!*s || *s < '0' || *s > '9')
        return -EINVAL;
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return -EINVAL;
    *ret = v;
    return 0;
}

static void orphan_removed(const char *tap, const char *owner, int err, void *data)
{
    if (err < 0)
        log_warn("cannot remove orphaned TAP %s (owner %s): %s", tap, owner, strerror(-err));
    else
        log_info("removed orphaned TAP %s (owner %s)", tap, owner);
}

static void check_forwarding(void)
{
    bool on = false;
    int r = route_ip_forward(&on);

    if (r < 0)
        log_warn("cannot read net.ipv4.ip_forward: %s", strerror(-r));
    else if (!on)
        log_warn("net.ipv4.ip_forward is 0: VMs cannot reach anything beyond this host. Fix: "
                 "sysctl -w net.ipv4.ip_forward=1, and echo net.ipv4.ip_forward=1 > "
                 "/etc/sysctl.d/90-noid.conf to keep it after a reboot");
}

static void setup_firewall(void)
{
    char uplink[IFNAMSIZ];
    struct firewall_result res;
    struct nerr e = {0};
    bool have_uplink = route_default_ifname(uplink) == 0;
    int r;

    if (!have_uplink)
        log_warn("no default route: no MASQUERADE rule for %s, VMs reach only this host "
                 "(restart noid-netd once the network is up)",
                 NETD_SUBNET);
    r = firewall_ensure(have_uplink ? uplink : NULL, &res, &e);
    if (r == -ENOENT) {
        log_error("%s; no firewall rule applied, VMs get TAPs but no NAT", nerr_msg(&e));
        return;
    }
    if (r < 0)
        log_error("iptables: %d rule(s) could not be applied: %s", res.failed, nerr_msg(&e));
    log_info("iptables: %d rule(s) added, %d already present", res.added, res.present);
    if (have_uplink && (r == 0 || res.added + res.present == 5))
        log_info("iptables: NAT %s via %s", NETD_SUBNET, uplink);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, NULL, 's'},   {"server-uid", required_argument, NULL, 'u'},
        {"max-taps", required_argument, NULL, 'm'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},        {0},
    };
    const char *socket_path = DEFAULT_SOCKET;
    struct vmnet v = {.nl = RTNL_CLOSED, .max_taps = NETD_MAX_TAPS};
    bool uid_given = false;
    _cleanup_close_ int listen_fd = -1, sig_fd = -1;
    struct nerr e = {0};
    unsigned long num;
    ino_t sock_ino = 0;
    sigset_t mask;
    int opt, r;

    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            socket_path = optarg;
            break;
        case 'u':
            if (parse_uint(optarg, 0, (uid_t)-2, &num) < 0) {
                fprintf(stderr, "noid-netd: --server-uid: '%s' is not a uid\n", optarg);
                return 2;
            }
            v.server_uid = (uid_t)num;
            uid_given = true;
            break;
        case 'm':
            if (parse_uint(optarg, 1, NETD_MAX_TAPS, &num) < 0) {
                fprintf(stderr, "noid-netd: --max-taps: '%s' is not a number from 1 to %d\n",
                        optarg, NETD_MAX_TAPS);
                return 2;
            }
            v.max_taps = (uint32_t)num;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("noid-netd %s\n", NOID_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "noid-netd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (getenv("NOID_DEBUG"))
        log_set_level(LOG_LVL_DEBUG);
    if (!uid_given) {
        struct passwd *pw = getpwnam(DEFAULT_SERVER_USER);
        v.server_uid = pw ? pw->pw_uid : 0;
    }
    if (geteuid() != 0)
        log_warn("noid-netd is meant to run as root; as uid %u it will likely fail to "
                 "create TAPs and rules",
                 (unsigned)geteuid());

    /* SIGTERM/SIGINT arrive through sig_fd, between two requests */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
        (sig_fd = signalfd(-1, &mask, SFD_CLOEXEC)) < 0) {
        log_error("cannot set up signal handling: %m");
        return 1;
    }
    r = rtnl_open(&v.nl, NETD_RTNL_TIMEOUT_MS, RTNL_TIMEOUT_EACH);
    if (r < 0) {
        log_error("cannot open a rtnetlink socket: %s", strerror(-r));
        return 1;
    }
    /* listening first: a server that connects during the start-up work
     * waits in the backlog instead of finding no netd */
    r = serve_listen(socket_path, v.server_uid, &listen_fd, &sock_ino, &e);
    if (r < 0) {
        log_error("%s", nerr_msg(&e));
        rtnl_close(&v.nl);
        return 1;
    }

    r = vmnet_sweep_orphans(&v, orphan_removed, NULL);
    if (r < 0)
        log_warn("cannot look for orphaned TAPs: %s", strerror(-r));
    check_forwarding();
    setup_firewall();

    log_info("noid-netd %s serving %s (server uid %u, up to %u TAPs)", NOID_VERSION, socket_path,
             (unsigned)v.server_uid, v.max_taps);
    (void)notify_systemd("READY=1");

    for (;;) {
        struct pollfd p[2] = {{.fd = listen_fd, .events = POLLIN},
                              {.fd = sig_fd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("poll: %m");
            break;
        }
        if (p[1].revents) {
            struct signalfd_siginfo si;
            if (read(sig_fd, &si, sizeof(si)) == sizeof(si))
                log_info("signal %u: stopping (TAPs stay for their VMs)", si.ssi_signo);
            break;
        }
        if (p[0].revents)
            serve_one(listen_fd, &v);
    }

    /* only our own socket: a newer netd may have taken the path over */
    struct stat st;
    if (stat(socket_path, &st) == 0 && st.st_ino == sock_ino)
        unlink(socket_path);
    (void)notify_systemd("STOPPING=1");
    rtnl_close(&v.nl);
    return 0;
}
