/* vm_net.c — see vm_net.h. */
#include "vm_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent_proto.h"
#include "engine-internal.h"
#include "log.h"
#include "netd_client.h"
#include "timeutil.h"

/* The first "nameserver" of resolv.conf that a guest can use: a loopback
 * resolver (systemd-resolved's 127.0.0.53, a local dnsmasq) answers only
 * on the host itself, not behind NAT. */
static bool host_nameserver(char out[16])
{
    _cleanup_fclose_ FILE *f = fopen("/etc/resolv.conf", "re");
    char line[256], addr[64];
    struct in_addr a;

    if (!f)
        return false;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, " nameserver %63s", addr) != 1 || inet_pton(AF_INET, addr, &a) != 1)
            continue;
        if ((ntohl(a.s_addr) >> 24) == 127)
            continue;
        snprintf(out, 16, "%s", addr);
        return true;
    }
    return false;
}

void vm_net_init(struct engine *eng)
{
    eng->guest_dns[0] = '\0';
    if (eng->cfg->guest_dns) {
        snprintf(eng->guest_dns, sizeof(eng->guest_dns), "%s", eng->cfg->guest_dns);
        log_info("network: guests resolve names through %s (guest_dns)", eng->guest_dns);
    } else if (host_nameserver(eng->guest_dns)) {
        log_info("network: guests resolve names through %s (the host's resolv.conf)",
                 eng->guest_dns);
    } else {
        log_warn("network: /etc/resolv.conf names no nameserver a guest can reach (loopback "
                 "ones answer only the host); guests get no resolver until guest_dns is set");
    }
}

int vm_net_lease(struct engine *eng, const char *instance, struct db_vm_net *ret, struct nerr *e)
{
    struct netd_lease l;
    struct nerr ne = {0};
    int64_t t0 = time_mono_ms();
    int r;

    memset(ret, 0, sizeof(*ret));
    r = netd_setup(eng->cfg->netd_socket, instance, &l, &ne);
    if (r == -ENOENT || r == -ECONNREFUSED) {
        /* one warning per outage, not one per VM */
        if (!__atomic_exchange_n(&eng->netd_absent, true, __ATOMIC_RELAXED))
            log_warn("network: noid-netd is not running (%s); VMs start without a network "
                     "until it is",
                     nerr_msg(&ne));
        return 0;
    }
    if (r < 0) {
        /* netd may have made the TAP and then been too slow to say so */
        vm_net_release(eng, NULL, instance);
        return nerr_set(e, -EADDRNOTAVAIL, "no network for the VM: %s", nerr_msg(&ne));
    }
    if (__atomic_exchange_n(&eng->netd_absent, false, __ATOMIC_RELAXED))
        log_info("network: noid-netd answers again at %s", eng->cfg->netd_socket);
    snprintf(ret->tap, sizeof(ret->tap), "%s", l.tap);
    snprintf(ret->ip, sizeof(ret->ip), "%s", l.guest_ip);
    snprintf(ret->gateway, sizeof(ret->gateway), "%s", l.host_ip);
    snprintf(ret->mac, sizeof(ret->mac), "%s", l.mac);
    ret->prefix = l.prefix;
    log_debug("network: %s (%s) for noid-%s in %lld ms", ret->tap, ret->ip, instance,
              (long long)(time_mono_ms() - t0));
    return 1;
}

int vm_net_release(struct engine *eng, const char *tap, const char *owner)
{
    struct nerr e = {0};
    int r;

    if ((!tap || !tap[0]) && (!owner || !owner[0]))
        return 0;
    r = netd_teardown(eng->cfg->netd_socket, tap && tap[0] ? tap : NULL, owner, &e);
    if (r == -ENOENT || r == -ECONNREFUSED) { /* netd is not running: its next start sweeps */
        log_debug("network: %s", nerr_msg(&e));
        return 0;
    }
    if (r < 0)
        log_warn("network: cannot give back %s of noid-%s: %s (noid-netd removes TAPs nobody "
                 "holds when it starts)",
                 tap && tap[0] ? tap : "the TAP", owner ? owner : "?", nerr_msg(&e));
    return r;
}

static void netmask_of(int prefix, char out[16])
{
    struct in_addr m = {.s_addr = htonl(prefix <= 0 ? 0 : 0xffffffffu << (32 - prefix))};

    inet_ntop(AF_INET, &m, out, 16);
}

int vm_net_cmdline(struct engine *eng, const struct db_vm_net *net, char *out, size_t size)
{
    char mask[16];
    int n;

    netmask_of(net->prefix, mask);
    n = snprintf(out, size, "ip=%s::%s:%s::eth0:off%s%s", net->ip, net->gateway, mask,
                 eng->guest_dns[0] ? ":" : "", eng->guest_dns);
    return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

int vm_net_tell_guest(struct engine *eng, struct agent_conn *conn, const struct db_vm_net *net,
                      struct nerr *e)
{
    uint8_t payload[AP_NET_LEN];
    struct ap_net n = {0};

    if (agent_conn_version(conn) < 4) {
        log_warn("network: the guest's agent is older than protocol v4 and cannot take a new "
                 "address; the VM keeps the network of its snapshot");
        return 0;
    }
    if (net->tap[0]) {
        n.up = true;
        n.prefix = (uint8_t)net->prefix;
        if (!netd_mac_parse(net->mac, n.mac) || inet_pton(AF_INET, net->ip, n.addr) != 1 ||
            inet_pton(AF_INET, net->gateway, n.gateway) != 1)
            return nerr_set(e, -EINVAL, "the VM's network record is damaged");
        if (eng->guest_dns[0])
            inet_pton(AF_INET, eng->guest_dns, n.dns);
    }
    ap_net_encode(&n, payload);
    return agent_control(conn, AP_SET_NETWORK, payload, sizeof(payload), 5000, e);
}
