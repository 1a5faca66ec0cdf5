/* tap.h — creating a persistent TAP device through /dev/net/tun. */
#pragma once

#include <sys/types.h>

/* Create TAP `name` in our network namespace, persistent and owned by
 * owner (the uid that may attach to it: the server's, so its VMM can open
 * it without privileges).  -EBUSY when a link of that name exists already
 * (never attaches to someone else's device); nothing is left behind on
 * failure. */
int tap_create(const char *name, uid_t owner);
