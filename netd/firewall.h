/* firewall.h — the iptables rules VM networking needs, made present
 * exactly once (each is checked with `iptables -C` and added only when
 * missing, so restarts and a manual set-up coexist):
 *
 *   nat     POSTROUTING  -s 172.16.0.0/16 -o <uplink> -j MASQUERADE
 *   filter  FORWARD (top) -i noid+ -o noid+ -j DROP       VM to VM: never
 *   filter  FORWARD      -i noid+ -j ACCEPT
 *   filter  FORWARD      -o noid+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
 *   mangle  FORWARD      -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu
 *
 * The MASQUERADE rule needs the uplink (the default route's interface);
 * without one it is skipped and the rest still applies. */
#pragma once

#include "nerr.h"

struct firewall_result {
    int present; /* rules found in place */
    int added;   /* rules added now */
    int failed;  /* rules neither present nor added (the first reason in e) */
};

/* Ensure the rules; uplink NULL skips MASQUERADE.  0 when every rule is in
 * place, else -errno with the first failure in e (-ENOENT: no iptables
 * command at all, and then nothing was tried further). */
int firewall_ensure(const char *uplink, struct firewall_result *ret, struct nerr *e);
