/* net.c — see net.h.
 *
 * Flushing works as `ip {route,addr,neigh} flush dev X` does: dump the
 * table, keep the entries of our NIC, and send each one back with the
 * DEL type, so the kernel deletes exactly what it listed.  Entries that
 * vanished in between (deleting an address takes its routes and secondary
 * addresses with it) are not an error.  A table too large for one pass is
 * flushed in several.
 *
 * Order, for a NIC that may carry a snapshot's whole configuration: routes,
 * neighbours, addresses (the kernel also drops the ARP cache with a
 * device's last address; our own flush does not count on it), then the MAC
 * (before the address, so no ARP reply ever leaves with the old MAC), the
 * address, link up, the default route (which needs the link up for its
 * on-link gateway), resolv.conf last. */
#include "net.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alog.h"
#include "macro.h"
#include "net_cmdline.h"
#include "rtnl.h"
#include "rtnl_link.h"

#define NET_SYS_CLASS   "/sys/class/net"
#define NET_RESOLV_CONF "/etc/resolv.conf"
#define NET_FLUSH_ARENA (32u * 1024)
#define NET_CMDLINE_MAX 8192 /* the kernel's own limit is 2048 on x86 */
#define NET_NAME_MAX    (IF_NAMESIZE - 1)

/* ip='s <device> field, "" for none (net.h: "The NIC") */
static char net_dev_pref[NET_NAME_MAX + 1];

/* Fill msg with "what: strerror (kernel: reason)" and return r. */
static int net_fail(char *msg, size_t size, const struct rtnl *nl, int r, const char *fmt, ...)
    _printf_(5, 6);

static int net_fail(char *msg, size_t size, const struct rtnl *nl, int r, const char *fmt, ...)
{
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(msg, size, fmt, ap);
    va_end(ap);
    n = strlen(msg);
    if (nl && nl->err[0])
        snprintf(msg + n, size - n, ": %s (kernel: %s)", strerror(-r), nl->err);
    else
        snprintf(msg + n, size - n, ": %s", strerror(-r));
    return r;
}

/* Read a small sysfs file of the interface name into buf, without its
 * trailing newline.  Returns the length or -errno. */
static int net_sys_read(const char *name, const char *attr, char *buf, size_t size)
{
    char path[128];
    _cleanup_close_ int fd = -1;
    ssize_t n;

    snprintf(path, sizeof(path), NET_SYS_CLASS "/%s/%s", name, attr);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    n = read(fd, buf, size - 1);
    if (n < 0)
        return -errno;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0'))
        n--;
    buf[n] = '\0';
    return (int)n;
}

/* The ifindex of interface name, and whether it is a NIC: not loopback and
 * backed by a device.  Returns the ifindex (> 0) or -errno. */
static int net_sys_ifindex(const char *name, bool *ret_is_nic)
{
    char buf[32], path[128];
    unsigned long flags;
    long index;
    int r;

    r = net_sys_read(name, "ifindex", buf, sizeof(buf));
    if (r < 0)
        return r;
    index = strtol(buf, NULL, 10);
    if (index <= 0 || index > INT32_MAX)
        return -EINVAL;
    r = net_sys_read(name, "flags", buf, sizeof(buf));
    flags = r < 0 ? 0 : strtoul(buf, NULL, 16);
    snprintf(path, sizeof(path), NET_SYS_CLASS "/%s/device", name);
    *ret_is_nic = !(flags & IFF_LOOPBACK) && access(path, F_OK) == 0;
    return (int)index;
}

/* Walk /sys/class/net for the NIC: want if an interface of that name
 * exists, else the NIC with the lowest ifindex.  Returns its ifindex or
 * -ENODEV. */
static int net_scan_nic(const char *want, char ret_name[NET_NAME_MAX + 1])
{
    DIR *d;
    struct dirent *de;
    int best = -ENODEV;
    bool is_nic;

    if (want && want[0] && strlen(want) <= NET_NAME_MAX) {
        int index = net_sys_ifindex(want, &is_nic);
        if (index > 0) {
            snprintf(ret_name, NET_NAME_MAX + 1, "%s", want);
            return index;
        }
        alog_info("network: no interface '%s'; looking for the NIC", want);
    }
    d = opendir(NET_SYS_CLASS);
    if (!d)
        return -ENODEV;
    while ((de = readdir(d))) {
        int index;

        if (de->d_name[0] == '.' || strlen(de->d_name) > NET_NAME_MAX)
            continue;
        index = net_sys_ifindex(de->d_name, &is_nic);
        if (index > 0 && is_nic && (best < 0 || index < best)) {
            best = index;
            snprintf(ret_name, NET_NAME_MAX + 1, "%s", de->d_name);
        }
    }
    closedir(d);
    return best;
}

/* The NIC found last (ifindex 0: none yet).  A guest restored from a
 * snapshot has its agent's memory too, so it starts with the NIC its
 * template found at boot: under TCG every kernel path a restored guest runs
 * for the first time is translated anew, and the walk of /sys/class/net
 * cost ~50 ms of each SET_NETWORK.  A NIC that went away fails the first
 * netlink request with ENODEV, and net_apply() looks again. */
static int net_nic_index;
static char net_nic_name[NET_NAME_MAX + 1];

/* Find the NIC (see net.h), the remembered one first. */
static int net_find_nic(const char *want, char ret_name[NET_NAME_MAX + 1])
{
    int index;

    if (net_nic_index > 0) {
        snprintf(ret_name, NET_NAME_MAX + 1, "%s", net_nic_name);
        return net_nic_index;
    }
    index = net_scan_nic(want, ret_name);
    if (index > 0) {
        net_nic_index = index;
        snprintf(net_nic_name, sizeof(net_nic_name), "%s", ret_name);
    }
    return index;
}

/* The interface's current MAC.  Returns 0 or -errno. */
static int net_sys_mac(const char *name, uint8_t ret[6])
{
    char buf[64];
    unsigned v[6];
    int r = net_sys_read(name, "address", buf, sizeof(buf));

    if (r < 0)
        return r;
    if (sscanf(buf, "%2x:%2x:%2x:%2x:%2x:%2x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
        return -EINVAL;
    for (int i = 0; i < 6; i++)
        ret[i] = (uint8_t)v[i];
    return 0;
}

/* ---- flushing ---- */

struct net_flush {
    int ifindex;
    bool (*pick)(const struct rtnl_nlmsghdr *m, int ifindex);
    uint8_t *arena;
    size_t used;
    bool full; /* entries were left out: another pass is needed */
};

static bool net_pick_addr(const struct rtnl_nlmsghdr *m, int ifindex)
{
    struct rtnl_ifaddrmsg a;

    if (m->nlmsg_type != RTNL_RTM_NEWADDR || m->nlmsg_len < sizeof(*m) + sizeof(a))
        return false;
    memcpy(&a, m + 1, sizeof(a));
    return a.ifa_family == AF_INET && a.ifa_index == (uint32_t)ifindex;
}

static bool net_pick_route(const struct rtnl_nlmsghdr *m, int ifindex)
{
    struct rtnl_rtmsg rt;
    const void *p;
    uint32_t table, oif;
    size_t len;

    if (m->nlmsg_type != RTNL_RTM_NEWROUTE || m->nlmsg_len < sizeof(*m) + sizeof(rt))
        return false;
    memcpy(&rt, m + 1, sizeof(rt));
    if (rt.rtm_family != AF_INET)
        return false;
    table = rt.rtm_table;
    p = rtnl_attr_find(m, sizeof(rt), RTNL_RTA_TABLE, &len);
    if (p && len == 4)
        memcpy(&table, p, 4);
    /* local and broadcast routes of the addresses go with the addresses */
    if (table == RTNL_RT_TABLE_LOCAL)
        return false;
    p = rtnl_attr_find(m, sizeof(rt), RTNL_RTA_OIF, &len);
    if (!p || len != 4)
        return false; /* multipath routes: not ours to touch */
    memcpy(&oif, p, 4);
    return oif == (uint32_t)ifindex;
}

static bool net_pick_neigh(const struct rtnl_nlmsghdr *m, int ifindex)
{
    struct rtnl_ndmsg nd;

    if (m->nlmsg_type != RTNL_RTM_NEWNEIGH || m->nlmsg_len < sizeof(*m) + sizeof(nd))
        return false;
    memcpy(&nd, m + 1, sizeof(nd));
    /* NOARP entries are the kernel's own (broadcast, multicast) */
    return nd.ndm_family == AF_INET && nd.ndm_ifindex == ifindex &&
           !(nd.ndm_state & RTNL_NUD_NOARP);
}

static int net_flush_collect(const struct rtnl_nlmsghdr *m, void *ud)
{
    struct net_flush *f = ud;
    size_t need = RTNL_ALIGN(m->nlmsg_len);

    if (!f->pick(m, f->ifindex))
        return 0;
    if (f->used + need > NET_FLUSH_ARENA) {
        f->full = true;
        return 0;
    }
    memcpy(f->arena + f->used, m, m->nlmsg_len);
    f->used += need;
    return 0;
}

/* Delete every entry of the table dumped by get_type (fixed part hdr) that
 * pick() chooses, by sending it back as del_type.  Returns the number
 * deleted or -errno. */
static int net_flush(struct rtnl *nl, int ifindex, uint16_t get_type, uint16_t del_type,
                     const void *hdr, size_t hdr_len,
                     bool (*pick)(const struct rtnl_nlmsghdr *m, int ifindex))
{
    static uint8_t arena[NET_FLUSH_ARENA] __attribute__((aligned(4)));
    int count = 0;

    for (;;) {
        struct net_flush f = {.ifindex = ifindex, .pick = pick, .arena = arena};
        struct rtnl_req req;
        int r;

        rtnl_req_init(&req, get_type, 0, hdr, hdr_len);
        r = rtnl_dump(nl, &req, net_flush_collect, &f);
        if (r < 0)
            return r;
        for (size_t off = 0; off < f.used;) {
            struct rtnl_nlmsghdr *m = (struct rtnl_nlmsghdr *)(void *)(arena + off);

            off += RTNL_ALIGN(m->nlmsg_len);
            m->nlmsg_type = del_type;
            m->nlmsg_flags = 0;
            r = rtnl_call(nl, m);
            if (r < 0 && r != -ENOENT && r != -ESRCH && r != -EADDRNOTAVAIL)
                return r;
            count++;
        }
        if (!f.full)
            return count;
    }
}

/* ---- configuring ---- */

static int net_default_route(struct rtnl *nl, int ifindex, const uint8_t gateway[4])
{
    struct rtnl_rtmsg rt = {.rtm_family = AF_INET,
                            .rtm_table = RTNL_RT_TABLE_MAIN,
                            .rtm_protocol = RTNL_RTPROT_BOOT,
                            .rtm_scope = RTNL_RT_SCOPE_UNIVERSE,
                            .rtm_type = RTNL_RTN_UNICAST};
    uint32_t oif = (uint32_t)ifindex;
    struct rtnl_req req;

    rtnl_req_init(&req, RTNL_RTM_NEWROUTE, RTNL_NLM_F_CREATE | RTNL_NLM_F_REPLACE, &rt, sizeof(rt));
    rtnl_req_attr(&req, RTNL_RTA_GATEWAY, gateway, 4);
    rtnl_req_attr(&req, RTNL_RTA_OIF, &oif, 4);
    return rtnl_call(nl, &req.h);
}

/* The file to write for /etc/resolv.conf, and the temporary name beside
 * it.  A symlink is followed one step and the file it names replaced, not
 * the link: the noid guest's points into /run, where a write costs nothing,
 * while a rename on the root disk costs ~40 ms under TCG (ext4 starts
 * writing the new file out at once) — most of a SET_NETWORK. */
static int net_resolv_conf_paths(char *path, size_t size, char *tmp, size_t tmp_size)
{
    char link[PATH_MAX];
    struct stat st;
    const char *slash;
    ssize_t n;
    int len;

    snprintf(path, size, "%s", NET_RESOLV_CONF);
    if (lstat(NET_RESOLV_CONF, &st) == 0 && S_ISLNK(st.st_mode)) {
        n = readlink(NET_RESOLV_CONF, link, sizeof(link) - 1);
        if (n <= 0)
            return n < 0 ? -errno : -EINVAL;
        link[n] = '\0';
        len = snprintf(path, size, "%s%s", link[0] == '/' ? "" : "/etc/", link);
        if (len < 0 || (size_t)len >= size)
            return -ENAMETOOLONG;
    }
    slash = strrchr(path, '/');
    snprintf(tmp, tmp_size, "%.*s/.resolv.conf.noid-agent", (int)(slash - path), path);
    return 0;
}

/* Make /etc/resolv.conf name dns, replacing the file in one rename (a
 * reader sees the old or the new file, never a part).  No fsync: the file
 * is written again at every boot and after every restore.  Left alone when
 * it already says exactly this (no disk write at every boot). */
static int net_write_resolv_conf(const uint8_t dns[4])
{
    char want[64], have[64], path[PATH_MAX], tmp[PATH_MAX + 32];
    _cleanup_close_ int fd = -1;
    ssize_t n;
    int len, r;

    len = snprintf(want, sizeof(want), "nameserver %u.%u.%u.%u\n", dns[0], dns[1], dns[2], dns[3]);
    r = net_resolv_conf_paths(path, sizeof(path), tmp, sizeof(tmp));
    if (r < 0)
        return r;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, have, sizeof(have));
        if (n == len && memcmp(have, want, (size_t)len) == 0)
            return 0;
        close(fd);
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -errno;
    /* no umask games: the file is for every user */
    if (fchmod(fd, 0644) < 0)
        r = -errno;
    else if ((n = write(fd, want, (size_t)len)) != len)
        r = n < 0 ? -errno : -EIO;
    else if (rename(tmp, path) < 0)
        r = -errno;
    else
        return 0;
    unlink(tmp);
    return r;
}

static void ip4(const uint8_t a[4], char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
}

void net_describe(const struct ap_net *n, bool with_mac, char *out, size_t size)
{
    static const uint8_t zero[4];
    char addr[16], gw[16], dns[16];

    if (!n->up) {
        snprintf(out, size, "down");
        return;
    }
    ip4(n->addr, addr);
    ip4(n->gateway, gw);
    ip4(n->dns, dns);
    snprintf(out, size, "%s/%u%s%s, %s%s", addr, n->prefix,
             memcmp(n->gateway, zero, 4) ? " via " : ", no default route",
             memcmp(n->gateway, zero, 4) ? gw : "",
             memcmp(n->dns, zero, 4) ? "dns " : "resolv.conf untouched",
             memcmp(n->dns, zero, 4) ? dns : "");
    if (with_mac) {
        size_t l = strlen(out);
        snprintf(out + l, size - l, ", mac %02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
                 n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
    }
}

/* Everything of net_apply() once the NIC is known and the socket open. */
static int net_configure(struct rtnl *nl, const char *name, int ifindex, const struct ap_net *n,
                         bool set_mac, char *msg, size_t msg_size)
{
    static const uint8_t zero[4];
    struct rtnl_ifaddrmsg ifa = {.ifa_family = AF_INET};
    struct rtnl_rtmsg rt = {.rtm_family = AF_INET};
    struct rtnl_ndmsg nd = {.ndm_family = AF_INET};
    uint8_t mac[6];
    int routes, neighs, addrs, r;

    routes = net_flush(nl, ifindex, RTNL_RTM_GETROUTE, RTNL_RTM_DELROUTE, &rt, sizeof(rt),
                       net_pick_route);
    if (routes < 0)
        return net_fail(msg, msg_size, nl, routes, "flush the IPv4 routes of %s", name);
    neighs = net_flush(nl, ifindex, RTNL_RTM_GETNEIGH, RTNL_RTM_DELNEIGH, &nd, sizeof(nd),
                       net_pick_neigh);
    if (neighs < 0)
        return net_fail(msg, msg_size, nl, neighs, "flush the neighbours of %s", name);
    addrs = net_flush(nl, ifindex, RTNL_RTM_GETADDR, RTNL_RTM_DELADDR, &ifa, sizeof(ifa),
                      net_pick_addr);
    if (addrs < 0)
        return net_fail(msg, msg_size, nl, addrs, "flush the IPv4 addresses of %s", name);
    alog_debug("network: %s: flushed %d route(s), %d neighbour(s), %d address(es)", name, routes,
               neighs, addrs);
    if (!n->up) {
        r = rtnl_link_set_up(nl, ifindex, false);
        if (r < 0)
            return net_fail(msg, msg_size, nl, r, "take %s down", name);
        return 0;
    }
    if (set_mac && (net_sys_mac(name, mac) < 0 || memcmp(mac, n->mac, 6) != 0)) {
        r = rtnl_link_set_mac(nl, ifindex, n->mac);
        if (r == -EBUSY) {
            /* a driver without live MAC change wants the link down */
            r = rtnl_link_set_up(nl, ifindex, false);
            if (r >= 0)
                r = rtnl_link_set_mac(nl, ifindex, n->mac);
        }
        if (r < 0)
            return net_fail(msg, msg_size, nl, r, "set the MAC of %s", name);
    }
    r = rtnl_addr_add(nl, ifindex, n->addr, n->prefix, true);
    if (r < 0)
        return net_fail(msg, msg_size, nl, r, "add the address to %s", name);
    r = rtnl_link_set_up(nl, ifindex, true);
    if (r < 0)
        return net_fail(msg, msg_size, nl, r, "bring %s up", name);
    if (memcmp(n->gateway, zero, 4) != 0) {
        r = net_default_route(nl, ifindex, n->gateway);
        if (r < 0)
            return net_fail(msg, msg_size, nl, r, "set the default route via %s", name);
    }
    if (memcmp(n->dns, zero, 4) != 0) {
        r = net_write_resolv_conf(n->dns);
        if (r < 0)
            return net_fail(msg, msg_size, NULL, r, "write " NET_RESOLV_CONF);
    }
    return 0;
}

int net_apply(const struct ap_net *n, bool set_mac, char *msg, size_t msg_size)
{
    char name[NET_NAME_MAX + 1] = "", desc[160];
    struct rtnl nl;
    int ifindex, r;

    ifindex = net_find_nic(net_dev_pref, name);
    if (ifindex < 0)
        return net_fail(msg, msg_size, NULL, ifindex,
                        "no network interface with a device in " NET_SYS_CLASS);
    r = rtnl_open(&nl, NET_TIMEOUT_MS, RTNL_TIMEOUT_TOTAL);
    if (r < 0)
        return net_fail(msg, msg_size, NULL, r, "open an rtnetlink socket");
    r = net_configure(&nl, name, ifindex, n, set_mac, msg, msg_size);
    if (r == -ENODEV) { /* the remembered NIC is gone: look once more */
        net_nic_index = 0;
        ifindex = net_find_nic(net_dev_pref, name);
        r = ifindex < 0 ? ifindex : net_configure(&nl, name, ifindex, n, set_mac, msg, msg_size);
    }
    rtnl_close(&nl);
    if (r < 0)
        return r;
    net_describe(n, set_mac, desc, sizeof(desc));
    alog_info("network: %s: %s", name, desc);
    return 0;
}

/* A boot without ip= (the golden template): the NIC's link goes up without
 * an address.  The guests restored from the template then find it up: the
 * first link up of a virtio NIC (its receive ring filled) is the dearest
 * step of SET_NETWORK under TCG, and the template pays it once for all. */
static void net_boot_link_up(void)
{
    char name[NET_NAME_MAX + 1] = "";
    struct rtnl nl;
    int ifindex, r;

    ifindex = net_find_nic(net_dev_pref, name);
    if (ifindex < 0)
        return; /* no NIC: nothing to prepare */
    r = rtnl_open(&nl, NET_TIMEOUT_MS, RTNL_TIMEOUT_TOTAL);
    if (r >= 0) {
        r = rtnl_link_set_up(&nl, ifindex, true);
        rtnl_close(&nl);
    }
    if (r < 0)
        alog_warn("network: cannot bring %s up: %s", name, strerror(-r));
    else
        alog_info("network: %s up without an address (no ip= on the kernel command line)", name);
}

/* Read the kernel command line into buf.  Returns its length or -errno. */
static ssize_t net_read_cmdline(const char *path, char *buf, size_t size)
{
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return -errno;
    n = read(fd, buf, size);
    return n < 0 ? -errno : n;
}

void net_boot_from_cmdline(const char *cmdline_path, bool dry_run)
{
    static char buf[NET_CMDLINE_MAX];
    struct net_cmdline c;
    char msg[NET_MSG_MAX], desc[160];
    const char *why;
    _cleanup_close_ int marker = -1;
    ssize_t n;
    int r;

    n = net_read_cmdline(cmdline_path, buf, sizeof(buf));
    if (n < 0) {
        alog_warn("network: cannot read %s: %s; ip= not applied", cmdline_path, strerror((int)-n));
        return;
    }
    r = net_cmdline_parse(buf, (size_t)n, &c, &why);
    if (r == 0) {
        if (why)
            alog_info("network: kernel command line says %s; the network is left alone", why);
        else if (!dry_run)
            net_boot_link_up();
        return;
    }
    if (r < 0) {
        alog_warn("network: ip= on the kernel command line not understood (%s); "
                  "the network is left alone",
                  why);
        return;
    }
    snprintf(net_dev_pref, sizeof(net_dev_pref), "%s", c.dev);
    net_describe(&c.net, false, desc, sizeof(desc));
    if (dry_run) {
        alog_info("network: dry run: ip= would configure %s on %s", desc,
                  c.dev[0] ? c.dev : "the first NIC");
        return;
    }
    marker = open(NET_BOOT_MARKER, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (marker < 0 && errno == EEXIST) {
        alog_info("network: ip= was applied earlier in this boot (" NET_BOOT_MARKER
                  "); the host's SET_NETWORK owns the network now");
        return;
    }
    if (marker < 0)
        alog_warn("network: cannot create " NET_BOOT_MARKER
                  " (%s); a restarted agent would apply ip= again",
                  strerror(errno));
    r = net_apply(&c.net, false, msg, sizeof(msg));
    if (r < 0) {
        alog_error("network: ip= of the kernel command line (%s): %s", desc, msg);
        /* a respawned agent tries again: nothing else would configure a
         * cold-booted guest */
        if (marker >= 0)
            unlink(NET_BOOT_MARKER);
    }
}
