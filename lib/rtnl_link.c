/* rtnl_link.c — see rtnl_link.h. */
#include "rtnl_link.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A dump the kernel flags as interrupted (links changed under it) is
 * retried this many times */
#define RTNL_DUMP_TRIES 5

/* The TUN/TAP attributes, IFLA_LINKINFO's IFLA_INFO_DATA of a "tun" link. */
static void link_parse_tun(const void *data, size_t len, struct rtnl_link *l)
{
    size_t n;
    const void *owner = rtnl_attrs_find(data, len, RTNL_IFLA_TUN_OWNER, &n);

    if (owner && n >= sizeof(uint32_t)) {
        memcpy(&l->tun_owner, owner, sizeof(uint32_t));
        l->has_tun_owner = true;
    }
}

static void link_parse_info(const void *info, size_t len, struct rtnl_link *l)
{
    char kind[16];
    size_t n;
    const void *data;

    rtnl_attrs_string(info, len, RTNL_IFLA_INFO_KIND, kind, sizeof(kind));
    l->is_tun = strcmp(kind, "tun") == 0;
    data = rtnl_attrs_find(info, len, RTNL_IFLA_INFO_DATA, &n);
    if (l->is_tun && data)
        link_parse_tun(data, n, l);
}

int rtnl_link_parse(const struct rtnl_nlmsghdr *m, struct rtnl_link *ret)
{
    struct rtnl_ifinfomsg ifi;
    const void *attrs, *p;
    size_t len, n;

    attrs = rtnl_msg_attrs(m, sizeof(ifi), &len);
    if (m->nlmsg_type != RTNL_RTM_NEWLINK || !attrs)
        return -EBADMSG;
    memcpy(&ifi, m + 1, sizeof(ifi));
    memset(ret, 0, sizeof(*ret));
    ret->ifindex = ifi.ifi_index;
    rtnl_attrs_string(attrs, len, RTNL_IFLA_IFNAME, ret->name, sizeof(ret->name));
    rtnl_attrs_string(attrs, len, RTNL_IFLA_IFALIAS, ret->alias, sizeof(ret->alias));
    p = rtnl_attrs_find(attrs, len, RTNL_IFLA_CARRIER, &n);
    if (p && n >= 1)
        ret->carrier = *(const uint8_t *)p != 0;
    p = rtnl_attrs_find(attrs, len, RTNL_IFLA_LINKINFO, &n);
    if (p)
        link_parse_info(p, n, ret);
    return 0;
}

/* A GETLINK request for ifindex (0: by name or all), without the
 * statistics: they are most of a link's message and nobody here reads
 * them. */
static void link_req_get(struct rtnl_req *req, int ifindex)
{
    struct rtnl_ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex};
    uint32_t mask = RTNL_RTEXT_FILTER_SKIP_STATS;

    rtnl_req_init(req, RTNL_RTM_GETLINK, 0, &ifi, sizeof(ifi));
    rtnl_req_attr(req, RTNL_IFLA_EXT_MASK, &mask, sizeof(mask));
}

struct link_list {
    struct rtnl_link *v;
    size_t n, cap;
};

static int link_collect(const struct rtnl_nlmsghdr *m, void *ud)
{
    struct link_list *ll = ud;

    if (ll->n == ll->cap) {
        size_t cap = ll->cap ? 2 * ll->cap : 16;
        struct rtnl_link *v = realloc(ll->v, cap * sizeof(*v));

        if (!v)
            return -ENOMEM;
        ll->v = v;
        ll->cap = cap;
    }
    /* not a link (it always is): left out */
    if (rtnl_link_parse(m, &ll->v[ll->n]) == 0)
        ll->n++;
    return 0;
}

int rtnl_links(struct rtnl *nl, struct rtnl_link **ret, size_t *ret_n)
{
    struct link_list ll = {0};
    struct rtnl_req req;
    int r = 0;

    for (int i = 0; i < RTNL_DUMP_TRIES; i++) {
        ll.n = 0;
        link_req_get(&req, 0);
        r = rtnl_dump(nl, &req, link_collect, &ll);
        if (r < 0 || !nl->dump_intr)
            break;
        /* links came or went during the dump: the list may miss one */
        r = -EAGAIN;
    }
    if (r < 0) {
        free(ll.v);
        return r;
    }
    *ret = ll.v;
    *ret_n = ll.n;
    return 0;
}

static int link_one(const struct rtnl_nlmsghdr *m, void *ud)
{
    return rtnl_link_parse(m, ud);
}

int rtnl_link_by_name(struct rtnl *nl, const char *name, struct rtnl_link *ret)
{
    struct rtnl_link l = {.ifindex = 0};
    struct rtnl_req req;
    int r;

    /* the kernel would refuse it with -EINVAL; no such link is the truth */
    if (strlen(name) >= IFNAMSIZ)
        return -ENODEV;
    link_req_get(&req, 0);
    rtnl_req_attr(&req, RTNL_IFLA_IFNAME, name, strlen(name) + 1);
    r = rtnl_get(nl, &req, link_one, &l);
    if (r < 0)
        return r;
    if (l.ifindex <= 0)
        return -ENODEV;
    *ret = l;
    return 0;
}

/* Start a SETLINK of ifindex changing the ifi_flags bits in change. */
static void link_req_set(struct rtnl_req *req, int ifindex, uint32_t flags, uint32_t change)
{
    struct rtnl_ifinfomsg ifi = {
        .ifi_family = AF_UNSPEC,
        .ifi_index = ifindex,
        .ifi_flags = flags,
        .ifi_change = change,
    };

    rtnl_req_init(req, RTNL_RTM_SETLINK, 0, &ifi, sizeof(ifi));
}

int rtnl_link_set_alias(struct rtnl *nl, int ifindex, const char *alias)
{
    struct rtnl_req req;

    if (strlen(alias) >= RTNL_ALIAS_MAX)
        return -ENAMETOOLONG;
    link_req_set(&req, ifindex, 0, 0);
    /* without its NUL: the kernel keeps the bytes given as the alias */
    rtnl_req_attr(&req, RTNL_IFLA_IFALIAS, alias, strlen(alias));
    return rtnl_call(nl, &req.h);
}

int rtnl_link_set_up(struct rtnl *nl, int ifindex, bool up)
{
    struct rtnl_req req;

    link_req_set(&req, ifindex, up ? IFF_UP : 0, IFF_UP);
    return rtnl_call(nl, &req.h);
}

int rtnl_link_set_mac(struct rtnl *nl, int ifindex, const uint8_t mac[6])
{
    struct rtnl_req req;

    link_req_set(&req, ifindex, 0, 0);
    rtnl_req_attr(&req, RTNL_IFLA_ADDRESS, mac, 6);
    return rtnl_call(nl, &req.h);
}

int rtnl_link_del(struct rtnl *nl, int ifindex)
{
    struct rtnl_ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex};
    struct rtnl_req req;

    rtnl_req_init(&req, RTNL_RTM_DELLINK, 0, &ifi, sizeof(ifi));
    return rtnl_call(nl, &req.h);
}

bool rtnl_ipv4_broadcast(const uint8_t addr[4], unsigned prefix, uint8_t brd[4])
{
    uint32_t host;

    if (prefix > 30)
        return false;
    host = UINT32_MAX >> prefix;
    for (int i = 0; i < 4; i++)
        brd[i] = (uint8_t)(addr[i] | (host >> (24 - 8 * i)));
    return true;
}

int rtnl_addr_add(struct rtnl *nl, int ifindex, const uint8_t addr[4], unsigned prefix,
                  bool replace)
{
    struct rtnl_ifaddrmsg ifa = {.ifa_family = AF_INET,
                                 .ifa_prefixlen = (uint8_t)prefix,
                                 .ifa_scope = RTNL_RT_SCOPE_UNIVERSE,
                                 .ifa_index = (uint32_t)ifindex};
    uint16_t flags = RTNL_NLM_F_CREATE | (replace ? RTNL_NLM_F_REPLACE : RTNL_NLM_F_EXCL);
    struct rtnl_req req;
    uint8_t brd[4];

    rtnl_req_init(&req, RTNL_RTM_NEWADDR, flags, &ifa, sizeof(ifa));
    rtnl_req_attr(&req, RTNL_IFA_LOCAL, addr, 4);
    rtnl_req_attr(&req, RTNL_IFA_ADDRESS, addr, 4);
    if (rtnl_ipv4_broadcast(addr, prefix, brd))
        rtnl_req_attr(&req, RTNL_IFA_BROADCAST, brd, 4);
    return rtnl_call(nl, &req.h);
}
