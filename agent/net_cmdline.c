/* net_cmdline.c — see net_cmdline.h.
 *
 * Everything works on (pointer, length) slices of the caller's buffer: the
 * command line is not NUL-terminated as read from /proc (it ends in '\n'),
 * and nothing is copied but the device name. */
#include "net_cmdline.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define NET_CMDLINE_FIELDS 10 /* client:server:gw:mask:host:dev:autoconf:dns0:dns1:ntp0 */

enum {
    F_CLIENT = 0,
    F_SERVER = 1,
    F_GATEWAY = 2,
    F_NETMASK = 3,
    F_HOSTNAME = 4,
    F_DEVICE = 5,
    F_AUTOCONF = 6,
    F_DNS0 = 7,
};

struct slice {
    const char *p;
    size_t len;
};

static bool is_space(char c)
{
    /* the kernel's isspace() on its command line */
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool slice_is(struct slice s, const char *word)
{
    return s.len == strlen(word) && memcmp(s.p, word, s.len) == 0;
}

/* Take the next parameter of cmdline[*off..len) as the kernel's next_arg()
 * does: a double quote toggles quoting (spaces inside do not split), quotes
 * around the value (or the whole parameter) are not part of it.  Sets
 * *param (the name, up to '=') and *val (after '=', .p NULL without one).
 * Returns false at the end. */
static bool next_param(const char *cmdline, size_t len, size_t *off, struct slice *param,
                       struct slice *val)
{
    size_t i = *off, start, end, eq = 0;
    bool in_quote = false, quoted = false, has_eq = false;

    while (i < len && is_space(cmdline[i]))
        i++;
    if (i >= len)
        return false;
    if (cmdline[i] == '"') {
        i++;
        in_quote = quoted = true;
    }
    start = i;
    for (; i < len; i++) {
        if (is_space(cmdline[i]) && !in_quote)
            break;
        if (!has_eq && cmdline[i] == '=') {
            has_eq = true;
            eq = i;
        }
        if (cmdline[i] == '"')
            in_quote = !in_quote;
    }
    end = i;
    *off = i;
    if (!has_eq) {
        /* the closing quote of a quoted parameter is not part of it */
        if (quoted && end > start && cmdline[end - 1] == '"')
            end--;
        *param = (struct slice){cmdline + start, end - start};
        *val = (struct slice){NULL, 0};
        return true;
    }
    *param = (struct slice){cmdline + start, eq - start};
    start = eq + 1;
    if (start < end && cmdline[start] == '"') {
        /* quotes around the value are not part of it */
        start++;
        if (end > start && cmdline[end - 1] == '"')
            end--;
    } else if (quoted && end > start && cmdline[end - 1] == '"') {
        end--;
    }
    *val = (struct slice){cmdline + start, end - start};
    return true;
}

/* A dotted quad "a.b.c.d", each part 1..3 decimal digits up to 255. */
static bool parse_ipv4(struct slice s, uint8_t out[4])
{
    size_t i = 0;

    for (int part = 0; part < 4; part++) {
        unsigned v = 0, digits = 0;

        if (part > 0) {
            if (i >= s.len || s.p[i] != '.')
                return false;
            i++;
        }
        while (i < s.len && s.p[i] >= '0' && s.p[i] <= '9' && digits < 4) {
            v = v * 10 + (unsigned)(s.p[i] - '0');
            digits++;
            i++;
        }
        if (digits == 0 || digits > 3 || v > 255)
            return false;
        out[part] = (uint8_t)v;
    }
    return i == s.len;
}

/* An optional address: empty is 0.0.0.0. */
static bool parse_ipv4_opt(struct slice s, uint8_t out[4])
{
    if (s.len == 0) {
        memset(out, 0, 4);
        return true;
    }
    return parse_ipv4(s, out);
}

/* A netmask's prefix length: 1..32 leading one bits and nothing after. */
static int netmask_prefix(const uint8_t m[4])
{
    uint32_t v = ((uint32_t)m[0] << 24) | ((uint32_t)m[1] << 16) | ((uint32_t)m[2] << 8) | m[3];
    int n = 0;

    while (n < 32 && (v & (UINT32_C(1) << (31 - n))))
        n++;
    if (n == 0 || (n < 32 && (v << n) != 0))
        return -1;
    return n;
}

/* Parse the value of one ip= into *ret.  Same returns as
 * net_cmdline_parse(). */
static int parse_ip_value(struct slice v, struct net_cmdline *ret, const char **ret_why)
{
    struct slice f[NET_CMDLINE_FIELDS] = {{0}};
    struct net_cmdline c = {0};
    uint8_t mask[4];
    size_t start = 0, n = 0;
    int prefix;

    if (!memchr(v.p, ':', v.len)) {
        /* a lone keyword: the kernel's autoconfiguration protocols */
        if (slice_is(v, "off") || slice_is(v, "none")) {
            *ret_why = "ip=off";
            return 0;
        }
        *ret_why = "autoconfiguration (dhcp, bootp, rarp) is not supported; only the static "
                   "form <client-ip>::<gw-ip>:<netmask>::<device>:off[:<dns0-ip>]";
        return -EINVAL;
    }
    for (size_t i = 0; i <= v.len && n < NET_CMDLINE_FIELDS; i++) {
        if (i == v.len || v.p[i] == ':') {
            f[n++] = (struct slice){v.p + start, i - start};
            start = i + 1;
        }
    }
    /* missing fields are empty ones (never a NULL pointer for mem*()) */
    for (; n < NET_CMDLINE_FIELDS; n++)
        f[n] = (struct slice){"", 0};
    if (f[F_AUTOCONF].len > 0 && !slice_is(f[F_AUTOCONF], "off") &&
        !slice_is(f[F_AUTOCONF], "none")) {
        *ret_why = "autoconf field other than off or none (dhcp, bootp, rarp are not supported)";
        return -EINVAL;
    }
    if (f[F_CLIENT].len == 0 || !parse_ipv4(f[F_CLIENT], c.net.addr)) {
        *ret_why = "no valid client address (the first field)";
        return -EINVAL;
    }
    if (!memcmp(c.net.addr, "\0\0\0\0", 4)) {
        *ret_why = "client address 0.0.0.0";
        return -EINVAL;
    }
    if (f[F_NETMASK].len == 0 || !parse_ipv4(f[F_NETMASK], mask) ||
        (prefix = netmask_prefix(mask)) < 0) {
        *ret_why = "no valid netmask (the fourth field, contiguous, not 0.0.0.0)";
        return -EINVAL;
    }
    c.net.prefix = (uint8_t)prefix;
    if (!parse_ipv4_opt(f[F_GATEWAY], c.net.gateway)) {
        *ret_why = "broken gateway address (the third field)";
        return -EINVAL;
    }
    if (memcmp(c.net.gateway, "\0\0\0\0", 4) != 0 &&
        (!ap_net_in_subnet(c.net.gateway, c.net.addr, c.net.prefix) ||
         !memcmp(c.net.gateway, c.net.addr, 4))) {
        *ret_why = "gateway outside the client's subnet, or the client's own address";
        return -EINVAL;
    }
    if (!parse_ipv4_opt(f[F_DNS0], c.net.dns)) {
        *ret_why = "broken dns0 address (the eighth field)";
        return -EINVAL;
    }
    if (f[F_DEVICE].len > NET_CMDLINE_DEV_MAX || memchr(f[F_DEVICE].p, '/', f[F_DEVICE].len) ||
        slice_is(f[F_DEVICE], ".") || slice_is(f[F_DEVICE], "..")) {
        *ret_why = "device name too long or not a name (the sixth field)";
        return -EINVAL;
    }
    if (f[F_DEVICE].len > 0)
        memcpy(c.dev, f[F_DEVICE].p, f[F_DEVICE].len);
    c.net.up = true;
    *ret = c;
    *ret_why = NULL;
    return 1;
}

int net_cmdline_parse(const char *cmdline, size_t len, struct net_cmdline *ret,
                      const char **ret_why)
{
    struct slice param, val, last = {NULL, 0};
    size_t off = 0;
    const char *nul = memchr(cmdline, '\0', len);

    /* the kernel's command line is a C string: nothing after a NUL */
    if (nul)
        len = (size_t)(nul - cmdline);
    *ret_why = NULL;
    while (next_param(cmdline, len, &off, &param, &val)) {
        if (!val.p && slice_is(param, "--"))
            break;
        /* the kernel takes each ip= in turn: the last one wins */
        if (val.p && slice_is(param, "ip"))
            last = val;
    }
    if (!last.p)
        return 0;
    if (last.len == 0) {
        *ret_why = "empty ip=";
        return -EINVAL;
    }
    return parse_ip_value(last, ret, ret_why);
}
