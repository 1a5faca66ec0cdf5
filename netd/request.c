/* request.c — see request.h.  json-c does the JSON; everything a request
 * may hold is checked here, so the code that acts on it (vmnet.c) only ever
 * sees a known op, a well-formed owner and a noid<N> name in range. */
#include "request.h"

#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "macro.h"
#include "textutil.h"

/* Nesting json-c may follow before giving up: a request is flat, so any
 * depth beyond an object of strings is refused anyway. */
#define REQUEST_JSON_DEPTH 4
/* Bytes of a client's string quoted back in an error, after escaping. */
#define QUOTE_MAX 48

DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free)

static void json_object_putp(json_object **o)
{
    json_object_put(*o);
}

/* s[0..len) escaped for a message: untrusted, so never raw */
static void quote(const char *s, size_t len, char out[QUOTE_MAX])
{
    size_t used = text_sanitize(s, len, out, QUOTE_MAX - 3);

    if (used < len)
        strcat(out, "...");
}

bool netd_owner_valid(const char *s, size_t len)
{
    if (len < 1 || len > NETD_OWNER_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static int parse_field(const char *key, json_object *v, uint32_t max_taps, struct netd_request *r,
                       struct nerr *e)
{
    char q[QUOTE_MAX];
    const char *s;
    size_t len;

    if (!streq(key, "op") && !streq(key, "owner") && !streq(key, "tap")) {
        quote(key, strlen(key), q);
        return nerr_set(e, -EINVAL, "unknown field '%s'", q);
    }
    if (!json_object_is_type(v, json_type_string))
        return nerr_set(e, -EINVAL, "field '%s' must be a string", key);
    s = json_object_get_string(v);
    len = (size_t)json_object_get_string_len(v);

    if (streq(key, "op")) {
        if (len == strlen("setup") && streq(s, "setup"))
            r->op = NETD_OP_SETUP;
        else if (len == strlen("teardown") && streq(s, "teardown"))
            r->op = NETD_OP_TEARDOWN;
        else {
            quote(s, len, q);
            return nerr_set(e, -EINVAL, "unknown op '%s' (setup or teardown)", q);
        }
    } else if (streq(key, "owner")) {
        if (!netd_owner_valid(s, len))
            return nerr_set(e, -EINVAL, "owner must be 1 to %d characters of A-Z a-z 0-9 _ -",
                            NETD_OWNER_MAX);
        memcpy(r->owner, s, len + 1);
    } else {
        /* a NUL inside the string must not shorten the name we check */
        if (strlen(s) != len || netd_tap_index(s, max_taps, &r->tap_index) < 0) {
            quote(s, len, q);
            return nerr_set(e, -EINVAL, "refused: '%s' is not a noid TAP", q);
        }
        memcpy(r->tap, s, len + 1);
    }
    return 0;
}

int netd_request_parse(const char *line, size_t len, uint32_t max_taps, struct netd_request *ret,
                       struct nerr *e)
{
    _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
    _cleanup_(json_object_putp) json_object *o = NULL;
    struct netd_request r = {0};
    enum json_tokener_error je;
    size_t end;
    int rc;

    if (len >= NETD_LINE_MAX)
        return nerr_set(e, -EINVAL, "request longer than %d bytes", NETD_LINE_MAX - 1);
    if (memchr(line, '\0', len))
        return nerr_set(e, -EINVAL, "request holds a NUL byte");
    tok = json_tokener_new_ex(REQUEST_JSON_DEPTH);
    if (!tok)
        return nerr_set(e, -ENOMEM, "out of memory");
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, line, (int)len);
    je = json_tokener_get_error(tok);
    end = o ? json_tokener_get_parse_end(tok) : len;
    if (!o && je == json_tokener_continue) {
        /* a bare scalar ("null", "5") is only complete at its terminator */
        o = json_tokener_parse_ex(tok, "", 1);
        je = json_tokener_get_error(tok);
    }
    if (je == json_tokener_continue)
        return nerr_set(e, -EINVAL, "bad JSON: the request ends inside a value");
    if (je != json_tokener_success)
        return nerr_set(e, -EINVAL, "bad JSON: %s", json_tokener_error_desc(je));
    for (; end < len; end++) {
        if (!strchr(" \t\r\n", line[end]))
            return nerr_set(e, -EINVAL, "bad JSON: bytes after the request object");
    }
    if (!o || !json_object_is_type(o, json_type_object))
        return nerr_set(e, -EINVAL, "the request must be a JSON object");

    json_object_object_foreach(o, key, v)
    {
        rc = parse_field(key, v, max_taps, &r, e);
        if (rc < 0)
            return rc;
    }
    switch (r.op) {
    case NETD_OP_SETUP:
        if (r.tap[0])
            return nerr_set(e, -EINVAL, "setup takes no tap field");
        if (!r.owner[0])
            return nerr_set(e, -EINVAL, "setup needs an owner");
        break;
    case NETD_OP_TEARDOWN:
        if (!r.tap[0] && !r.owner[0])
            return nerr_set(e, -EINVAL, "teardown needs a tap or an owner");
        break;
    default:
        return nerr_set(e, -EINVAL, "missing field 'op' (setup or teardown)");
    }
    *ret = r;
    return 0;
}

/* o as one line with its newline, malloc'd; takes o */
static char *reply_line(json_object *o)
{
    _cleanup_(json_object_putp) json_object *owned = o;
    const char *s;
    char *out;
    size_t len;

    if (!o)
        return NULL;
    s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s)
        return NULL;
    len = strlen(s);
    out = malloc(len + 2);
    if (!out)
        return NULL;
    memcpy(out, s, len);
    out[len] = '\n';
    out[len + 1] = '\0';
    return out;
}

/* json-c's adders fail only when out of memory; one check at the end */
static int add(json_object *o, const char *key, json_object *v)
{
    if (!v)
        return -ENOMEM;
    if (json_object_object_add(o, key, v) < 0) {
        json_object_put(v);
        return -ENOMEM;
    }
    return 0;
}

char *netd_reply_setup(const struct netd_addrs *a)
{
    json_object *o = json_object_new_object();
    int r = 0;

    if (!o)
        return NULL;
    r |= add(o, "ok", json_object_new_boolean(1));
    r |= add(o, "tap", json_object_new_string(a->tap));
    r |= add(o, "index", json_object_new_int64(a->index));
    r |= add(o, "host_ip", json_object_new_string(a->host_ip));
    r |= add(o, "guest_ip", json_object_new_string(a->guest_ip));
    r |= add(o, "prefix", json_object_new_int(a->prefix));
    r |= add(o, "netmask", json_object_new_string(a->netmask));
    r |= add(o, "mac", json_object_new_string(a->mac));
    if (r) {
        json_object_put(o);
        return NULL;
    }
    return reply_line(o);
}

char *netd_reply_teardown(const char *tap, bool gone)
{
    json_object *o = json_object_new_object();
    int r = 0;

    if (!o)
        return NULL;
    r |= add(o, "ok", json_object_new_boolean(1));
    if (tap)
        r |= add(o, "tap", json_object_new_string(tap));
    r |= add(o, "gone", json_object_new_boolean(gone || !tap));
    if (r) {
        json_object_put(o);
        return NULL;
    }
    return reply_line(o);
}

char *netd_reply_error(const char *msg)
{
    json_object *o = json_object_new_object();
    int r = 0;

    if (!o)
        return NULL;
    r |= add(o, "ok", json_object_new_boolean(0));
    r |= add(o, "error", json_object_new_string(msg));
    if (r) {
        json_object_put(o);
        return NULL;
    }
    return reply_line(o);
}
