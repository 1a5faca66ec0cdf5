/* request.h — the netd protocol (docs/netd-protocol.md): parsing one request
 * line and formatting one reply line.  No side effects, nothing logged: the
 * unit tests and the fuzz target drive it directly.
 *
 * A request is one JSON object on one line, at most NETD_LINE_MAX bytes:
 *   {"op":"setup","owner":"<owner>"}
 *   {"op":"teardown","tap":"noid<N>","owner":"<owner>"}   (tap and/or owner)
 * Every field is a string; an unknown field, a missing or wrong-typed one, a
 * second JSON value or anything that is not one object is refused. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "nerr.h"

/* Longest request line, its newline included. */
#define NETD_LINE_MAX 4096
/* Owner: 1..64 of [A-Za-z0-9_-] (the server sends a 32-hex instance id). */
#define NETD_OWNER_MAX 64
/* The alias a TAP carries to name its owner: "noid:<owner>" (IFLA_IFALIAS). */
#define NETD_ALIAS_PREFIX "noid:"

enum netd_op {
    NETD_OP_SETUP = 1,
    NETD_OP_TEARDOWN,
};

struct netd_request {
    enum netd_op op;
    char owner[NETD_OWNER_MAX + 1]; /* "" when absent */
    char tap[NETD_TAP_NAME_MAX];    /* "" when absent */
    uint32_t tap_index;             /* tap's index when tap is set */
};

/* Parse line[0..len) (without its newline; trailing whitespace is allowed).
 * Names are checked against max_taps: a tap that is not noid<N> with
 * N < max_taps is refused with "refused: '<name>' is not a noid TAP".
 * 0 and *ret filled, or -EINVAL with the reason in e. */
int netd_request_parse(const char *line, size_t len, uint32_t max_taps, struct netd_request *ret,
                       struct nerr *e);

/* Whether s[0..len) is a valid owner. */
bool netd_owner_valid(const char *s, size_t len);

/* Reply lines, malloc'd, newline-terminated; NULL only when out of memory. */
char *netd_reply_setup(const struct netd_addrs *a);
/* tap NULL: nothing was found to remove (and then gone is true). */
char *netd_reply_teardown(const char *tap, bool gone);
char *netd_reply_error(const char *msg);
