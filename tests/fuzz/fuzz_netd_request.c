/* fuzz_netd_request.c — libFuzzer target: noid-netd's request parser
 * (netd/request.c), the bytes of a request line.  The first input byte
 * picks --max-taps (1 or the full 16384), the rest is the line.  Checks
 * what netd relies on when it acts on a request: an accepted one has a
 * known op, a valid owner and a noid<N> name below max_taps, and every
 * reply it leads to — the setup for that index, the teardown, or the
 * error — is exactly one line of JSON. */
#include <json-c/json.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* a reply: newline-terminated, no other newline, a JSON object */
static void check_reply(char *line)
{
    json_object *o;
    size_t len;

    if (!line)
        abort();
    len = strlen(line);
    if (len < 2 || line[len - 1] != '\n' || memchr(line, '\n', len - 1))
        abort();
    o = json_tokener_parse(line);
    if (!o || !json_object_is_type(o, json_type_object))
        abort();
    json_object_put(o);
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct netd_request r;
    struct nerr e = {0};
    struct netd_addrs a;
    uint32_t max_taps, n;

    if (size < 1)
        return 0;
    max_taps = (data[0] & 1) ? 1 : NETD_MAX_TAPS;
    if (netd_request_parse((const char *)data + 1, size - 1, max_taps, &r, &e) < 0) {
        if (e.code >= 0 || !e.msg[0])
            abort();
        check_reply(netd_reply_error(e.msg));
        return 0;
    }
    if (r.op != NETD_OP_SETUP && r.op != NETD_OP_TEARDOWN)
        abort();
    if (r.owner[0] && !netd_owner_valid(r.owner, strlen(r.owner)))
        abort();
    if (r.op == NETD_OP_SETUP && (!r.owner[0] || r.tap[0]))
        abort();
    if (r.op == NETD_OP_TEARDOWN && !r.owner[0] && !r.tap[0])
        abort();
    if (r.tap[0]) {
        if (netd_tap_index(r.tap, max_taps, &n) < 0 || n != r.tap_index || n >= max_taps)
            abort();
        netd_addrs_of(n, &a);
        if (strcmp(a.tap, r.tap) != 0)
            abort();
        check_reply(netd_reply_setup(&a));
        check_reply(netd_reply_teardown(r.tap, data[0] & 2));
    }
    return 0;
}
