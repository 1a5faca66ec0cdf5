/* alloc.h — the noid<N> index space: names, addresses and which index is free.
 *
 * Index N (0 <= N < max_taps <= NETD_MAX_TAPS) is TAP "noid<N>" and the /30
 * 172.16.0.0 + 4N: network .4N, host .4N+1, guest .4N+2, broadcast .4N+3;
 * the guest's MAC is AA:FC:00:00:hi:lo of N.  16384 /30s fill
 * 172.16.0.0/16 exactly, so every address stays inside the NAT'ed subnet.
 *
 * Nothing here touches the kernel: the in-use set is filled by the caller
 * from the links the kernel has (the TAPs are the record), which keeps the
 * allocation right across netd restarts without a state file. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* 172.16.0.0/16 in /30s */
#define NETD_MAX_TAPS    16384
#define NETD_SUBNET      "172.16.0.0/16"
#define NETD_SUBNET_BASE 0xAC100000u /* 172.16.0.0, host order */
#define NETD_PREFIX      30
#define NETD_TAP_PREFIX  "noid"
/* "noid16383" + NUL fits IFNAMSIZ (16) with room to spare */
#define NETD_TAP_NAME_MAX 16

/* Everything a VM's network is made of, derived from its index. */
struct netd_addrs {
    uint32_t index;
    char tap[NETD_TAP_NAME_MAX];
    uint32_t host_addr; /* host order */
    char host_ip[16];
    char guest_ip[16];
    char netmask[16];
    char mac[18];
    int prefix;
};

void netd_addrs_of(uint32_t index, struct netd_addrs *ret);

/* The index of a noid TAP name: "noid" followed by a decimal number
 * without leading zeros (so every index has exactly one name) below
 * max_taps.  -EINVAL for any other name. */
int netd_tap_index(const char *name, uint32_t max_taps, uint32_t *ret_index);

/* The set of indexes in use. */
struct netd_indexset {
    uint8_t bits[NETD_MAX_TAPS / 8];
};

void netd_indexset_clear(struct netd_indexset *s);
void netd_indexset_add(struct netd_indexset *s, uint32_t index);
bool netd_indexset_has(const struct netd_indexset *s, uint32_t index);
/* The lowest index below max_taps not in s, or -ENOSPC. */
int netd_indexset_lowest_free(const struct netd_indexset *s, uint32_t max_taps,
                              uint32_t *ret_index);
