/* alloc.c — see alloc.h. */
#include "alloc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void format_ip(uint32_t a, char out[16])
{
    snprintf(out, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
}

void netd_addrs_of(uint32_t index, struct netd_addrs *ret)
{
    uint32_t net = NETD_SUBNET_BASE + 4 * index;

    memset(ret, 0, sizeof(*ret));
    ret->index = index;
    snprintf(ret->tap, sizeof(ret->tap), NETD_TAP_PREFIX "%u", index);
    ret->host_addr = net + 1;
    format_ip(net + 1, ret->host_ip);
    format_ip(net + 2, ret->guest_ip);
    format_ip(~((1u << (32 - NETD_PREFIX)) - 1), ret->netmask);
    snprintf(ret->mac, sizeof(ret->mac), "AA:FC:00:00:%02X:%02X", (index >> 8) & 0xff,
             index & 0xff);
    ret->prefix = NETD_PREFIX;
}

int netd_tap_index(const char *name, uint32_t max_taps, uint32_t *ret_index)
{
    const char *d = name + strlen(NETD_TAP_PREFIX);
    uint32_t n = 0;
    size_t len;

    if (strncmp(name, NETD_TAP_PREFIX, strlen(NETD_TAP_PREFIX)) != 0)
        return -EINVAL;
    len = strlen(d);
    /* 1 to 5 digits (16383 has 5), no leading zero but "0" itself */
    if (len < 1 || len > 5 || (d[0] == '0' && len > 1))
        return -EINVAL;
    for (size_t i = 0; i < len; i++) {
        if (d[i] < '0' || d[i] > '9')
            return -EINVAL;
        n = n * 10 + (uint32_t)(d[i] - '0');
    }
    if (n >= max_taps || n >= NETD_MAX_TAPS)
        return -EINVAL;
    *ret_index = n;
    return 0;
}

void netd_indexset_clear(struct netd_indexset *s)
{
    memset(s, 0, sizeof(*s));
}

void netd_indexset_add(struct netd_indexset *s, uint32_t index)
{
    if (index < NETD_MAX_TAPS)
        s->bits[index / 8] |= (uint8_t)(1u << (index % 8));
}

bool netd_indexset_has(const struct netd_indexset *s, uint32_t index)
{
    return index < NETD_MAX_TAPS && (s->bits[index / 8] & (1u << (index % 8)));
}

int netd_indexset_lowest_free(const struct netd_indexset *s, uint32_t max_taps, uint32_t *ret_index)
{
    for (uint32_t i = 0; i < max_taps && i < NETD_MAX_TAPS; i++) {
        if (s->bits[i / 8] == 0xff) {
            i |= 7;
            continue;
        }
        if (!netd_indexset_has(s, i)) {
            *ret_index = i;
            return 0;
        }
    }
    return -ENOSPC;
}
