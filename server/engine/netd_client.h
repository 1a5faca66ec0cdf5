/* netd_client.h — the server's side of noid-netd's protocol
 * (docs/netd-protocol.md): a TAP and a /30 per VMM process, asked for and
 * given back over netd's Unix socket, one request per connection.
 *
 * noid-server has no network privileges; noid-netd (root) creates the TAP,
 * owned by our uid, so the VMM we start can attach to it.  Every lease is
 * named by an owner, the VMM's instance id, so a crash between asking and
 * recording can still give it back (netd_teardown with the owner alone). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "nerr.h"

#define NETD_TAP_MAX 16   /* "noid16383" fits IFNAMSIZ */
#define NETD_IP_MAX 16    /* dotted IPv4 */
#define NETD_MAC_MAX 18   /* "AA:FC:00:00:00:05" */

/* One VM network: its TAP on the host and the /30 between host and guest. */
struct netd_lease {
    char tap[NETD_TAP_MAX];
    char host_ip[NETD_IP_MAX];  /* the guest's gateway */
    char guest_ip[NETD_IP_MAX];
    int prefix;                 /* 30 */
    char mac[NETD_MAC_MAX];     /* the guest NIC's MAC */
};

/* Ask netd at sock for a network for owner.  -ENOENT / -ECONNREFUSED
 * (netd is not running) are told apart from netd refusing (-EIO, with its
 * error in e).  The reply is checked strictly: it ends up in a VMM's
 * command line. */
int netd_setup(const char *sock, const char *owner, struct netd_lease *ret, struct nerr *e);

/* Give a TAP back: by name and owner, or (tap NULL) whatever TAP owner
 * holds.  A TAP that is already gone is success. */
int netd_teardown(const char *sock, const char *tap, const char *owner, struct nerr *e);

/* Whether a reply field is what netd may send (used on every reply). */
bool netd_tap_name_valid(const char *s);
/* "AA:FC:00:00:00:05" exactly (hex pairs, colons); its bytes into out
 * unless NULL. */
bool netd_mac_parse(const char *s, uint8_t out[6]);
