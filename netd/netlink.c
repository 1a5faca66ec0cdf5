/* netlink.c — see netlink.h.  Plain rtnetlink over a socket, no library:
 * each request is built in a fixed buffer, sent with NLM_F_ACK, and the
 * answers are read until the kernel's ack (or NLMSG_DONE for a dump). */
#include "netlink.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "macro.h"

/* A request: header, family header and a few attributes */
#define NL_REQ_MAX 512
/* One read of answers; the kernel's dump messages are smaller */
#define NL_RECV_MAX (64 * 1024)
/* A dump the kernel flags as interrupted (links changed under it) is
 * retried this many times */
#define NL_DUMP_TRIES 5
/* The kernel answers at once; this only bounds a wedged kernel */
#define NL_TIMEOUT_SEC 5

/* one buffer seen as the header, so attributes are written inside it */
struct nl_req {
    union {
        struct nlmsghdr h;
        char raw[NL_REQ_MAX];
    };
};

static uint32_t nl_seq;

int nl_open(int *ret_fd)
{
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    struct timeval tv = {.tv_sec = NL_TIMEOUT_SEC};
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
        int r = -errno;
        close(fd);
        return r;
    }
    *ret_fd = fd;
    return 0;
}

static void *req_tail(struct nl_req *q)
{
    return q->raw + NLMSG_ALIGN(q->h.nlmsg_len);
}

static void req_init(struct nl_req *q, uint16_t type, uint16_t flags, const void *fam, size_t len)
{
    memset(q, 0, sizeof(*q));
    q->h.nlmsg_len = NLMSG_LENGTH(len);
    q->h.nlmsg_type = type;
    q->h.nlmsg_flags = NLM_F_REQUEST | flags;
    memcpy(q->raw + NLMSG_HDRLEN, fam, len);
}

/* Attributes are short and fixed by us; they always fit NL_REQ_MAX. */
static void req_attr(struct nl_req *q, uint16_t type, const void *data, size_t len)
{
    struct rtattr *a = req_tail(q);

    a->rta_type = type;
    a->rta_len = RTA_LENGTH(len);
    memcpy(RTA_DATA(a), data, len);
    q->h.nlmsg_len = NLMSG_ALIGN(q->h.nlmsg_len) + RTA_ALIGN(a->rta_len);
}

typedef int (*nl_cb)(const struct nlmsghdr *h, void *data);

/* Send q and read the answers: each message of ours that is not the
 * ack/done goes to cb.  0 or the kernel's -errno; -EAGAIN when a dump
 * was interrupted (the caller retries). */
static int nl_call(int fd, struct nl_req *q, nl_cb cb, void *data)
{
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    _cleanup_free_ char *buf = malloc(NL_RECV_MAX);
    /* NLM_F_DUMP is two bits, one of them NLM_F_EXCL's value for NEW requests */
    bool dump = (q->h.nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP && q->h.nlmsg_type == RTM_GETLINK;
    bool intr = false;
    int r = 0;

    if (!buf)
        return -ENOMEM;
    q->h.nlmsg_seq = ++nl_seq;
    if (!dump)
        q->h.nlmsg_flags |= NLM_F_ACK;
    if (sendto(fd, &q->h, q->h.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
        return -errno;
    for (;;) {
        ssize_t n = recv(fd, buf, NL_RECV_MAX, 0);
        int len;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? -ETIMEDOUT : -errno;
        }
        len = (int)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len);
             h = NLMSG_NEXT(h, len)) {
            /* an answer to an earlier request that timed out */
            if (h->nlmsg_seq != q->h.nlmsg_seq)
                continue;
            if (h->nlmsg_flags & NLM_F_DUMP_INTR)
                intr = true;
            if (h->nlmsg_type == NLMSG_DONE)
                return r < 0 ? r : intr ? -EAGAIN : 0;
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *err = NLMSG_DATA(h);
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*err)))
                    return -EPROTO;
                /* the ack: 0, or the request's failure */
                return err->error < 0 ? err->error : r;
            }
            if (r == 0 && cb)
                r = cb(h, data);
        }
    }
}

static void attr_string(const struct rtattr *a, char *out, size_t size)
{
    size_t len = RTA_PAYLOAD(a);

    /* the kernel's strings carry their NUL; never trust that blindly */
    len = strnlen(RTA_DATA(a), len);
    if (len >= size)
        len = size - 1;
    memcpy(out, RTA_DATA(a), len);
    out[len] = '\0';
}

static void parse_tun_data(const struct rtattr *data, struct nl_link *l)
{
    int len = (int)RTA_PAYLOAD(data);

    for (const struct rtattr *a = RTA_DATA(data); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == IFLA_TUN_OWNER && RTA_PAYLOAD(a) >= sizeof(uint32_t)) {
            memcpy(&l->tun_owner, RTA_DATA(a), sizeof(uint32_t));
            l->has_tun_owner = true;
        }
    }
}

static void parse_linkinfo(const struct rtattr *info, struct nl_link *l)
{
    const struct rtattr *data = NULL;
    int len = (int)RTA_PAYLOAD(info);
    char kind[16] = "";

    for (const struct rtattr *a = RTA_DATA(info); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == IFLA_INFO_KIND)
            attr_string(a, kind, sizeof(kind));
        else if (a->rta_type == IFLA_INFO_DATA)
            data = a;
    }
    l->is_tun = streq(kind, "tun");
    if (l->is_tun && data)
        parse_tun_data(data, l);
}

static int parse_link(const struct nlmsghdr *h, struct nl_link *l)
{
    const struct ifinfomsg *ifi = NLMSG_DATA(h);
    int len = (int)h->nlmsg_len - (int)NLMSG_LENGTH(sizeof(*ifi));

    if (h->nlmsg_type != RTM_NEWLINK || len < 0)
        return -EPROTO;
    memset(l, 0, sizeof(*l));
    l->ifindex = ifi->ifi_index;
    for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        switch (a->rta_type) {
        case IFLA_IFNAME:
            attr_string(a, l->name, sizeof(l->name));
            break;
        case IFLA_IFALIAS:
            attr_string(a, l->alias, sizeof(l->alias));
            break;
        case IFLA_CARRIER:
            if (RTA_PAYLOAD(a) >= 1)
                l->carrier = *(const uint8_t *)RTA_DATA(a) != 0;
            break;
        case IFLA_LINKINFO:
            parse_linkinfo(a, l);
            break;
        default:
            break;
        }
    }
    return 0;
}

struct link_list {
    struct nl_link *v;
    size_t n, cap;
};

static int collect_link(const struct nlmsghdr *h, void *data)
{
    struct link_list *ll = data;

    if (ll->n == ll->cap) {
        size_t cap = ll->cap ? 2 * ll->cap : 16;
        struct nl_link *v = realloc(ll->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        ll->v = v;
        ll->cap = cap;
    }
    if (parse_link(h, &ll->v[ll->n]) == 0)
        ll->n++;
    return 0;
}

/* stats are most of a link's dump and we read none */
static void req_skip_stats(struct nl_req *q)
{
    uint32_t mask = RTEXT_FILTER_SKIP_STATS;

    req_attr(q, IFLA_EXT_MASK, &mask, sizeof(mask));
}

int nl_links(int fd, struct nl_link **ret, size_t *ret_n)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    struct link_list ll = {0};
    struct nl_req q;
    int r = -EAGAIN;

    for (int i = 0; i < NL_DUMP_TRIES && r == -EAGAIN; i++) {
        ll.n = 0;
        req_init(&q, RTM_GETLINK, NLM_F_DUMP, &ifi, sizeof(ifi));
        req_skip_stats(&q);
        r = nl_call(fd, &q, collect_link, &ll);
    }
    if (r < 0) {
        free(ll.v);
        return r;
    }
    *ret = ll.v;
    *ret_n = ll.n;
    return 0;
}

static int one_link(const struct nlmsghdr *h, void *data)
{
    return parse_link(h, data);
}

int nl_link_by_name(int fd, const char *name, struct nl_link *ret)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
    struct nl_link l = {.ifindex = 0};
    struct nl_req q;
    int r;

    if (strlen(name) >= IFNAMSIZ)
        return -ENODEV;
    req_init(&q, RTM_GETLINK, 0, &ifi, sizeof(ifi));
    req_attr(&q, IFLA_IFNAME, name, strlen(name) + 1);
    req_skip_stats(&q);
    r = nl_call(fd, &q, one_link, &l);
    if (r < 0)
        return r;
    if (l.ifindex <= 0)
        return -ENODEV;
    *ret = l;
    return 0;
}

int nl_link_set_alias(int fd, int ifindex, const char *alias)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex};
    struct nl_req q;

    if (strlen(alias) >= NL_ALIAS_MAX)
        return -ENAMETOOLONG;
    req_init(&q, RTM_SETLINK, 0, &ifi, sizeof(ifi));
    req_attr(&q, IFLA_IFALIAS, alias, strlen(alias));
    return nl_call(fd, &q, NULL, NULL);
}

int nl_link_set_up(int fd, int ifindex)
{
    struct ifinfomsg ifi = {
        .ifi_family = AF_UNSPEC,
        .ifi_index = ifindex,
        .ifi_flags = IFF_UP,
        .ifi_change = IFF_UP,
    };
    struct nl_req q;

    req_init(&q, RTM_SETLINK, 0, &ifi, sizeof(ifi));
    return nl_call(fd, &q, NULL, NULL);
}

int nl_addr_add(int fd, int ifindex, uint32_t addr, int prefix)
{
    struct ifaddrmsg ifa = {
        .ifa_family = AF_INET,
        .ifa_prefixlen = (unsigned char)prefix,
        .ifa_scope = RT_SCOPE_UNIVERSE,
        .ifa_index = (unsigned)ifindex,
    };
    uint32_t host_mask = prefix == 0 ? 0 : ~((1u << (32 - prefix)) - 1);
    uint32_t local = htonl(addr), brd = htonl(addr | ~host_mask);
    struct nl_req q;

    req_init(&q, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof(ifa));
    req_attr(&q, IFA_LOCAL, &local, sizeof(local));
    req_attr(&q, IFA_ADDRESS, &local, sizeof(local));
    req_attr(&q, IFA_BROADCAST, &brd, sizeof(brd));
    return nl_call(fd, &q, NULL, NULL);
}

int nl_link_del(int fd, int ifindex)
{
    struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = ifindex};
    struct nl_req q;

    req_init(&q, RTM_DELLINK, 0, &ifi, sizeof(ifi));
    return nl_call(fd, &q, NULL, NULL);
}
