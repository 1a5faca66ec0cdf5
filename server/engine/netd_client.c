/* netd_client.c — see netd_client.h. */
#include "netd_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "fsutil.h"
#include "macro.h"
#include "unixsock.h"

/* netd answers in milliseconds; a netd stuck for longer must not hold a
 * create (or a destroy) with it */
#define NETD_TIMEOUT_SECS 10
#define NETD_REPLY_MAX 4096

bool netd_tap_name_valid(const char *s)
{
    size_t n;

    if (strncmp(s, "noid", 4) != 0)
        return false;
    s += 4;
    n = strlen(s);
    if (n < 1 || n > 5 || (s[0] == '0' && n > 1))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* The value of a hex digit, -1 for anything else. */
static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
        return (c | 0x20) - 'a' + 10;
    return -1;
}

bool netd_mac_parse(const char *s, uint8_t out[6])
{
    uint8_t mac[6];

    if (strlen(s) != 17)
        return false;
    for (int i = 0; i < 6; i++) {
        int hi = hex_value(s[3 * i]), lo = hex_value(s[3 * i + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
            return false;
        mac[i] = (uint8_t)(hi << 4 | lo);
    }
    if (out)
        memcpy(out, mac, sizeof(mac));
    return true;
}

static bool ipv4_valid(const char *s)
{
    struct in_addr a;

    return strlen(s) < NETD_IP_MAX && inet_pton(AF_INET, s, &a) == 1;
}

/* One request, one reply line, parsed. */
static int netd_call(const char *sock, json_object *req, json_object **ret, struct nerr *e)
{
    _cleanup_free_ char *dir = strdup(sock);
    _cleanup_free_ char *reply = malloc(NETD_REPLY_MAX + 1);
    _cleanup_close_ int fd = -1;
    struct timeval tv = {.tv_sec = NETD_TIMEOUT_SECS};
    const char *text, *name;
    json_object *o;
    size_t len, got = 0;
    char *slash;
    int r;

    if (!dir || !reply)
        return -ENOMEM;
    slash = strrchr(dir, '/');
    if (!slash)
        return nerr_set(e, -EINVAL, "netd_socket '%s' is not an absolute path", sock);
    *slash = '\0';
    name = slash + 1;
    r = unix_connect(slash == dir ? "/" : dir, name, &fd);
    if (r < 0)
        return nerr_set(e, r, "cannot reach noid-netd at %s: %s", sock, strerror(-r));
    /* the caller holds a VM's lifecycle lock: never wait on netd unbounded */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
        return nerr_set(e, -errno, "cannot set a timeout on noid-netd's socket: %s",
                        strerror(errno));
    text = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &len);
    if (!text)
        return -ENOMEM;
    r = fd_write_all(fd, text, len);
    if (r >= 0)
        r = fd_write_all(fd, "\n", 1);
    if (r < 0)
        return nerr_set(e, r, "cannot send to noid-netd at %s: %s", sock, strerror(-r));
    while (got < NETD_REPLY_MAX) {
        ssize_t n = read(fd, reply + got, NETD_REPLY_MAX - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return nerr_set(e, -errno, "no answer from noid-netd at %s: %s", sock,
                            errno == EAGAIN ? "timed out" : strerror(errno));
        if (n == 0)
            break;
        got += (size_t)n;
        if (memchr(reply, '\n', got))
            break;
    }
    reply[got] = '\0';
    if (!memchr(reply, '\n', got))
        return nerr_set(e, -EIO, "noid-netd at %s sent no complete answer", sock);
    o = json_tokener_parse(reply);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return nerr_set(e, -EIO, "noid-netd at %s answered something that is not JSON", sock);
    }
    *ret = o;
    return 0;
}

static const char *field(json_object *o, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

/* 0 when the reply says ok; else netd's own error in e. */
static int reply_ok(json_object *o, const char *what, struct nerr *e)
{
    json_object *ok;
    const char *err;

    if (json_object_object_get_ex(o, "ok", &ok) && json_object_get_boolean(ok))
        return 0;
    err = field(o, "error");
    return nerr_set(e, -EIO, "noid-netd refused the %s: %s", what, err ? err : "no reason given");
}

int netd_setup(const char *sock, const char *owner, struct netd_lease *ret, struct nerr *e)
{
    json_object *req = json_object_new_object(), *rep = NULL, *v;
    const char *tap, *host, *guest, *mac;
    int r;

    if (!req)
        return -ENOMEM;
    json_object_object_add(req, "op", json_object_new_string("setup"));
    json_object_object_add(req, "owner", json_object_new_string(owner));
    r = netd_call(sock, req, &rep, e);
    json_object_put(req);
    if (r < 0)
        return r;
    r = reply_ok(rep, "network setup", e);
    if (r < 0)
        goto out;
    tap = field(rep, "tap");
    host = field(rep, "host_ip");
    guest = field(rep, "guest_ip");
    mac = field(rep, "mac");
    if (!tap || !netd_tap_name_valid(tap) || !host || !ipv4_valid(host) || !guest ||
        !ipv4_valid(guest) || !mac || !netd_mac_parse(mac, NULL) ||
        !json_object_object_get_ex(rep, "prefix", &v) ||
        !json_object_is_type(v, json_type_int) || json_object_get_int(v) < 1 ||
        json_object_get_int(v) > 30) {
        r = nerr_set(e, -EIO, "noid-netd sent a network setup this server cannot use");
        goto out;
    }
    memset(ret, 0, sizeof(*ret));
    snprintf(ret->tap, sizeof(ret->tap), "%s", tap);
    snprintf(ret->host_ip, sizeof(ret->host_ip), "%s", host);
    snprintf(ret->guest_ip, sizeof(ret->guest_ip), "%s", guest);
    snprintf(ret->mac, sizeof(ret->mac), "%s", mac);
    ret->prefix = json_object_get_int(v);
out:
    json_object_put(rep);
    return r;
}

int netd_teardown(const char *sock, const char *tap, const char *owner, struct nerr *e)
{
    json_object *req = json_object_new_object(), *rep = NULL;
    int r;

    if (!req)
        return -ENOMEM;
    json_object_object_add(req, "op", json_object_new_string("teardown"));
    if (tap)
        json_object_object_add(req, "tap", json_object_new_string(tap));
    if (owner)
        json_object_object_add(req, "owner", json_object_new_string(owner));
    r = netd_call(sock, req, &rep, e);
    json_object_put(req);
    if (r >= 0)
        r = reply_ok(rep, "teardown", e);
    json_object_put(rep);
    return r;
}
