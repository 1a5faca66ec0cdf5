/* vmnet.c — see vmnet.h. */
#include "vmnet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"

#include "request.h"
#include "rtnl_link.h"
#include "tap.h"

/* Indexes tried when a name turns out to be taken under us (a link made
 * by someone else between our listing and the creation) */
#define SETUP_TRIES 8

/* A TAP netd may act on: named noid<N> (N below every bound) and TUN/TAP. */
static bool is_noid_tap(const struct rtnl_link *l)
{
    uint32_t n;

    return l->is_tun && netd_tap_index(l->name, NETD_MAX_TAPS, &n) == 0;
}

/* The owner an alias names, or NULL */
static const char *alias_owner(const struct rtnl_link *l)
{
    size_t plen = strlen(NETD_ALIAS_PREFIX);

    if (strncmp(l->alias, NETD_ALIAS_PREFIX, plen) != 0)
        return NULL;
    return l->alias + plen;
}

static bool owned_by(const struct rtnl_link *l, const char *owner)
{
    const char *o = alias_owner(l);

    return o && streq(o, owner);
}

/* No IPv6 on a TAP: a guest's router advertisement would otherwise give
 * the host an address and a default route through that guest.  0 also
 * when the kernel has no IPv6. */
static int disable_ipv6(const char *tap)
{
    char path[96];
    _cleanup_close_ int fd = -1;

    snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", tap);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    return write(fd, "1", 1) == 1 ? 0 : -errno;
}

/* Address and link state of an existing TAP: both idempotent. */
static int configure(struct vmnet *v, int ifindex, const struct netd_addrs *a, struct nerr *e)
{
    uint32_t wire_addr;
    int r = disable_ipv6(a->tap);

    if (r < 0)
        return nerr_set(e, r, "cannot turn IPv6 off on %s: %s", a->tap, strerror(-r));
    /* the address as on the wire */
    wire_addr = htonl(a->host_addr);
    r = rtnl_addr_add(&v->nl, ifindex, (const uint8_t *)&wire_addr, (unsigned)a->prefix, false);

    if (r < 0 && r != -EEXIST)
        return nerr_set(e, r, "cannot give %s the address %s/%d: %s", a->tap, a->host_ip, a->prefix,
                        strerror(-r));
    r = rtnl_link_set_up(&v->nl, ifindex, true);
    if (r < 0)
        return nerr_set(e, r, "cannot bring %s up: %s", a->tap, strerror(-r));
    return 0;
}

/* Create, name and configure the TAP of index n; all or nothing. */
static int create(struct vmnet *v, uint32_t n, const char *owner, struct netd_addrs *a,
                  struct nerr *e)
{
    char alias[RTNL_ALIAS_MAX];
    struct rtnl_link l;
    int r;

    netd_addrs_of(n, a);
    r = tap_create(a->tap, v->server_uid);
    if (r == -EBUSY)
        return r;
    if (r < 0)
        return nerr_set(e, r, "cannot create TAP %s through /dev/net/tun: %s", a->tap,
                        strerror(-r));
    r = rtnl_link_by_name(&v->nl, a->tap, &l);
    if (r < 0) {
        nerr_set(e, r, "TAP %s vanished after its creation: %s", a->tap, strerror(-r));
        return r;
    }
    snprintf(alias, sizeof(alias), NETD_ALIAS_PREFIX "%s", owner);
    r = rtnl_link_set_alias(&v->nl, l.ifindex, alias);
    if (r < 0)
        nerr_set(e, r, "cannot set the alias of %s: %s", a->tap, strerror(-r));
    else
        r = configure(v, l.ifindex, a, e);
    if (r < 0)
        (void)rtnl_link_del(&v->nl, l.ifindex);
    return r;
}

int vmnet_setup(struct vmnet *v, const char *owner, struct netd_addrs *ret, struct nerr *e)
{
    _cleanup_free_ struct rtnl_link *links = NULL;
    struct netd_indexset used;
    struct netd_addrs a;
    size_t nlinks = 0;
    uint32_t n;
    int r;

    r = rtnl_links(&v->nl, &links, &nlinks);
    if (r < 0)
        return nerr_set(e, r, "cannot list the network links: %s", strerror(-r));
    netd_indexset_clear(&used);
    for (size_t i = 0; i < nlinks; i++) {
        /* any link of a noid name takes its index, TAP or not */
        if (netd_tap_index(links[i].name, NETD_MAX_TAPS, &n) < 0)
            continue;
        netd_indexset_add(&used, n);
        if (links[i].is_tun && owned_by(&links[i], owner)) {
            /* a retry: the same TAP again, made whole if a crash cut it short */
            netd_addrs_of(n, &a);
            r = configure(v, links[i].ifindex, &a, e);
            if (r < 0)
                return r;
            *ret = a;
            return 0;
        }
    }
    for (int tries = 0; tries < SETUP_TRIES; tries++) {
        r = netd_indexset_lowest_free(&used, v->max_taps, &n);
        if (r < 0)
            return nerr_set(e, -ENOSPC,
                            "no free network: all %u /30 subnets netd may use (--max-taps) of "
                            "%s are in use",
                            v->max_taps, NETD_SUBNET);
        r = create(v, n, owner, &a, e);
        if (r != -EBUSY)
            break;
        netd_indexset_add(&used, n);
    }
    if (r == -EBUSY)
        return nerr_set(e, r, "every free TAP name was taken while netd tried it");
    if (r < 0)
        return r;
    *ret = a;
    return 0;
}

/* Delete l, a noid TAP; a link already gone counts as removed by us. */
static int remove_tap(struct vmnet *v, const struct rtnl_link *l, bool *ret_gone, struct nerr *e)
{
    int r = rtnl_link_del(&v->nl, l->ifindex);

    if (r == -ENODEV) {
        *ret_gone = true;
        return 0;
    }
    if (r < 0)
        return nerr_set(e, r, "cannot delete %s: %s", l->name, strerror(-r));
    *ret_gone = false;
    return 0;
}

static int teardown_by_name(struct vmnet *v, const char *tap, const char *owner, bool *ret_gone,
                            struct nerr *e)
{
    struct rtnl_link l;
    int r = rtnl_link_by_name(&v->nl, tap, &l);

    if (r == -ENODEV) {
        *ret_gone = true;
        return 0;
    }
    if (r < 0)
        return nerr_set(e, r, "cannot look up %s: %s", tap, strerror(-r));
    if (!is_noid_tap(&l))
        return nerr_set(e, -EPERM, "refused: %s is not a TUN/TAP device", tap);
    if (owner && !owned_by(&l, owner))
        return nerr_set(e, -EPERM, "refused: %s does not belong to owner %s", tap, owner);
    return remove_tap(v, &l, ret_gone, e);
}

static int teardown_by_owner(struct vmnet *v, const char *owner, char ret_tap[NETD_TAP_NAME_MAX],
                             bool *ret_gone, struct nerr *e)
{
    _cleanup_free_ struct rtnl_link *links = NULL;
    size_t nlinks = 0;
    bool found = false;
    int r;

    r = rtnl_links(&v->nl, &links, &nlinks);
    if (r < 0)
        return nerr_set(e, r, "cannot list the network links: %s", strerror(-r));
    *ret_gone = true;
    /* setup gives an owner one TAP; should there be more, all go */
    for (size_t i = 0; i < nlinks; i++) {
        bool gone;
        if (!is_noid_tap(&links[i]) || !owned_by(&links[i], owner))
            continue;
        r = remove_tap(v, &links[i], &gone, e);
        if (r < 0)
            return r;
        if (!found)
            snprintf(ret_tap, NETD_TAP_NAME_MAX, "%s", links[i].name);
        found = true;
        *ret_gone = *ret_gone && gone;
    }
    return 0;
}

int vmnet_teardown(struct vmnet *v, const char *tap, const char *owner,
                   char ret_tap[NETD_TAP_NAME_MAX], bool *ret_gone, struct nerr *e)
{
    ret_tap[0] = '\0';
    if (tap) {
        snprintf(ret_tap, NETD_TAP_NAME_MAX, "%s", tap);
        return teardown_by_name(v, tap, owner, ret_gone, e);
    }
    if (owner)
        return teardown_by_owner(v, owner, ret_tap, ret_gone, e);
    return nerr_set(e, -EINVAL, "teardown needs a tap or an owner");
}

int vmnet_sweep_orphans(struct vmnet *v, vmnet_orphan_cb cb, void *data)
{
    _cleanup_free_ struct rtnl_link *links = NULL;
    size_t nlinks = 0;
    int r, removed = 0;

    r = rtnl_links(&v->nl, &links, &nlinks);
    if (r < 0)
        return r;
    for (size_t i = 0; i < nlinks; i++) {
        const char *owner;
        if (!is_noid_tap(&links[i]) || links[i].carrier)
            continue;
        owner = alias_owner(&links[i]);
        r = rtnl_link_del(&v->nl, links[i].ifindex);
        if (r == -ENODEV)
            continue;
        if (r == 0)
            removed++;
        if (cb)
            cb(links[i].name, owner && *owner ? owner : "unknown", r, data);
    }
    return removed;
}
