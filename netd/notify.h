/* notify.h — tell systemd (Type=notify) that netd is ready: its socket
 * listens, stale TAPs are gone and the firewall is in place.  The protocol
 * is one datagram to $NOTIFY_SOCKET; no libsystemd needed for that. */
#pragma once

/* Send state (e.g. "READY=1") when started by systemd; 0 when there is
 * nobody to tell. */
int notify_systemd(const char *state);
