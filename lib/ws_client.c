/* ws_client.c — see ws_client.h.
 *
 * curl connects (TCP, TLS for https://, a CONNECT tunnel when a system
 * proxy is allowed) and then only moves bytes: the upgrade request is
 * written and its answer read here, by hand, and the frames are struct
 * ws's.  Everything read from the server before the connection is handed
 * to struct ws is bounded: the response head (WS_CLIENT_MAX_HEAD) and, on
 * a refusal, its body (WS_CLIENT_MAX_REFUSAL_BODY). */
#include "ws_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"
#include "textutil.h"
#include "timeutil.h"

/* The 101 answer's head (status line and headers). */
#define WS_CLIENT_MAX_HEAD (16u * 1024)
/* What is kept of a refusal's body (the server's {"error":...}). */
#define WS_CLIENT_MAX_REFUSAL_BODY (64u * 1024)
/* Bytes asked of curl per read during the handshake: small, so that what
 * is read past the head (frames the server sent right behind its 101)
 * stays well under what ws_push_input takes. */
#define WS_CLIENT_HEAD_READ 1024
/* connect_timeout_ms <= 0 means this. */
#define WS_CLIENT_DEFAULT_TIMEOUT_MS 10000
/* How much of the refusal's body goes into the error message. */
#define WS_CLIENT_BODY_IN_MSG 300

struct ws_client {
    CURL *curl;
    curl_socket_t fd;
    struct ws *ws;
};

/* ---- the transport under struct ws ---- */

static ssize_t client_send(void *user, const void *buf, size_t len)
{
    struct ws_client *c = user;
    size_t n = 0;
    CURLcode cc = curl_easy_send(c->curl, buf, len, &n);

    if (cc == CURLE_AGAIN)
        return -EAGAIN;
    if (cc != CURLE_OK)
        return cc == CURLE_SEND_ERROR ? -EPIPE : -EIO;
    return n > 0 ? (ssize_t)n : -EAGAIN;
}

static ssize_t client_recv(void *user, void *buf, size_t len)
{
    struct ws_client *c = user;
    size_t n = 0;
    CURLcode cc = curl_easy_recv(c->curl, buf, len, &n);

    if (cc == CURLE_AGAIN)
        return -EAGAIN;
    if (cc != CURLE_OK)
        return cc == CURLE_RECV_ERROR ? -ECONNRESET : -EIO;
    return (ssize_t)n; /* 0: end of stream */
}

static int client_wait(void *user, bool for_write, int timeout_ms)
{
    struct ws_client *c = user;
    struct pollfd pfd = {.fd = c->fd, .events = for_write ? POLLOUT : POLLIN};
    int64_t deadline = timeout_ms < 0 ? -1 : time_mono_ms() + timeout_ms;

    for (;;) {
        int r = poll(&pfd, 1, timeout_ms);
        if (r >= 0)
            return r > 0 ? 1 : 0; /* POLLHUP/POLLERR too: recv or send will tell */
        if (errno != EINTR)
            return -errno;
        if (deadline >= 0) {
            int64_t left = deadline - time_mono_ms();
            timeout_ms = left > 0 ? (int)left : 0;
        }
    }
}

/* ---- the handshake ---- */

static int send_all(struct ws_client *c, const char *p, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t n = client_send(c, p, len);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n != -EAGAIN)
            return (int)n;
        int r = client_wait(c, true, time_left_ms(deadline));
        if (r < 0)
            return r;
        if (r == 0)
            return -ETIMEDOUT;
    }
    return 0;
}

/* Read some bytes into b (at most WS_CLIENT_HEAD_READ, within b's cap),
 * waiting until deadline: > 0 bytes read, 0 end of stream, -ETIMEDOUT,
 * -E2BIG when b is full, other -errno. */
static ssize_t read_some(struct ws_client *c, struct buf *b, int64_t deadline)
{
    char tmp[WS_CLIENT_HEAD_READ];
    size_t room = b->max ? b->max - b->len : sizeof(tmp);

    if (room == 0)
        return -E2BIG;
    for (;;) {
        ssize_t n = client_recv(c, tmp, MIN(room, sizeof(tmp)));
        if (n >= 0) {
            if (n > 0 && buf_append(b, tmp, (size_t)n) < 0)
                return -ENOMEM;
            return n;
        }
        if (n != -EAGAIN)
            return n;
        int r = client_wait(c, false, time_left_ms(deadline));
        if (r < 0)
            return r;
        if (r == 0)
            return -ETIMEDOUT;
    }
}

/* The value of header name in head (the bytes after the status line, up
 * to the blank line), trimmed; NULL if absent.  Returns a pointer into
 * head with its length in *ret_len. */
static const char *header_value(const char *head, size_t head_len, const char *name,
                                size_t *ret_len)
{
    const char *p = memchr(head, '\n', head_len), *end = head + head_len;
    size_t name_len = strlen(name);

    while (p && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        if ((size_t)(line_end - p) > name_len && strncasecmp(p, name, name_len) == 0 &&
            p[name_len] == ':') {
            const char *v = p + name_len + 1, *ve = line_end;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *ret_len = (size_t)(ve - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

static bool value_is(const char *v, size_t len, const char *want)
{
    return v && len == strlen(want) && strncasecmp(v, want, len) == 0;
}

/* Whether the comma-separated list v holds token (case-insensitive). */
static bool list_has(const char *v, size_t len, const char *token)
{
    const char *end = v ? v + len : NULL;

    while (v && v < end) {
        const char *comma = memchr(v, ',', (size_t)(end - v));
        const char *te = comma ? comma : end;
        while (v < te && (*v == ' ' || *v == '\t'))
            v++;
        const char *tail = te;
        while (tail > v && (tail[-1] == ' ' || tail[-1] == '\t'))
            tail--;
        if (value_is(v, (size_t)(tail - v), token))
            return true;
        v = comma ? comma + 1 : NULL;
    }
    return false;
}

/* Decode a chunked body (RFC 9112 §7.1) from raw into out: 1 when its last
 * chunk arrived, 0 when more is needed, -EBADMSG when it is not chunked
 * encoding.  out keeps what fits under its cap. */
static int dechunk(const uint8_t *raw, size_t len, struct buf *out)
{
    size_t pos = 0;

    buf_reset(out);
    for (;;) {
        const uint8_t *eol = memchr(raw + pos, '\n', len - pos);
        uint64_t size = 0;
        size_t i = pos;
        if (!eol)
            return 0;
        for (; raw + i < eol; i++) {
            int d = raw[i] >= '0' && raw[i] <= '9'   ? raw[i] - '0'
                    : raw[i] >= 'a' && raw[i] <= 'f' ? raw[i] - 'a' + 10
                    : raw[i] >= 'A' && raw[i] <= 'F' ? raw[i] - 'A' + 10
                                                     : -1;
            if (d < 0)
                break; /* extensions (";...") and the CR */
            if (size >> 60)
                return -EBADMSG;
            size = size << 4 | (uint64_t)d;
        }
        if (i == pos)
            return -EBADMSG;
        pos = (size_t)(eol - raw) + 1;
        if (size == 0)
            return 1; /* trailers are of no interest */
        if (size + 2 > len - pos)
            return 0;
        buf_append_capped(out, raw + pos, (size_t)size);
        pos += (size_t)size + 2;
    }
}

/* The body of a refusal whose head ended at head_end in raw: whatever
 * arrives, per Content-Length, chunked, or up to the end of the stream,
 * until WS_CLIENT_MAX_REFUSAL_BODY or the deadline. */
static void read_refusal_body(struct ws_client *c, struct buf *raw, size_t head_end,
                              int64_t deadline, struct buf *body)
{
    size_t cl_len = 0, te_len = 0;
    const char *cl = header_value((const char *)raw->data, head_end, "Content-Length", &cl_len);
    const char *te = header_value((const char *)raw->data, head_end, "Transfer-Encoding", &te_len);
    bool chunked = list_has(te, te_len, "chunked");
    uint64_t want = WS_CLIENT_MAX_REFUSAL_BODY;

    if (cl && !chunked) {
        char tmp[24] = "";
        char *endp;
        memcpy(tmp, cl, MIN(cl_len, sizeof(tmp) - 1));
        unsigned long long v = strtoull(tmp, &endp, 10);
        if (endp != tmp && *endp == '\0')
            want = MIN(v, (uint64_t)WS_CLIENT_MAX_REFUSAL_BODY);
    }
    /* raw holds the head too; it may grow by the body's cap (plus a chunked
     * encoding's sizes) past it */
    raw->max = head_end + 2 * WS_CLIENT_MAX_REFUSAL_BODY;
    for (;;) {
        const uint8_t *b = raw->data + head_end;
        size_t blen = raw->len - head_end;
        if (chunked) {
            if (dechunk(b, blen, body) != 0)
                break;
        } else if (blen >= want) {
            break;
        }
        if (read_some(c, raw, deadline) <= 0)
            break;
    }
    if (!chunked) {
        buf_reset(body);
        buf_append_capped(body, raw->data + head_end, MIN(raw->len - head_end, (size_t)want));
    }
}

/* Whether s is fit to go into a request line or header: no controls, no
 * spaces where they would end a token. */
static bool is_header_safe(const char *s, bool spaces_ok)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || (*s == ' ' && !spaces_ok))
            return false;
    return true;
}

static int map_connect_error(CURLcode cc, CURL *curl, const char *url, const char *errbuf,
                             struct nerr *e)
{
    long oserr = 0;

    curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &oserr);
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
        return nerr_set(e, -ECONNREFUSED, "cannot connect to %s: %s (is noid-server running?)", url,
                        oserr ? strerror((int)oserr) : "connection refused");
    case CURLE_COULDNT_RESOLVE_HOST:
        return nerr_set(e, -EHOSTUNREACH, "cannot resolve the host of %s", url);
    case CURLE_OPERATION_TIMEDOUT:
        return nerr_set(e, -ETIMEDOUT, "%s: timed out", url);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return nerr_set(e, -EINVAL, "invalid server URL '%s'", url);
    default:
        return nerr_set(e, -EIO, "cannot connect to %s: %s", url,
                        errbuf[0] ? errbuf : curl_easy_strerror(cc));
    }
}

void ws_refusal_free(struct ws_refusal *r)
{
    if (!r)
        return;
    buf_free(&r->body);
    r->status = 0;
}

void ws_client_free(struct ws_client *c)
{
    if (!c)
        return;
    ws_free(c->ws);
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(struct ws_client *, ws_client_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(CURLU *, curl_url_cleanup);

static void curl_freep(char **p)
{
    curl_free(*p);
}

static void buf_freep(struct buf *b)
{
    buf_free(b);
}

/* The answer was not 101: record it in refusal and e. */
static int refused(struct ws_client *c, struct buf *raw, size_t head_end, long status,
                   int64_t deadline, struct ws_refusal *refusal, struct nerr *e)
{
    _cleanup_(buf_freep) struct buf body = {0};
    char shown[WS_CLIENT_BODY_IN_MSG] = "";
    /* the head ends in CRLFCRLF, so the status line has its CR */
    const uint8_t *eol = memchr(raw->data, '\r', head_end);
    size_t line_len = (size_t)(eol - raw->data), n;

    buf_init(&body, WS_CLIENT_MAX_REFUSAL_BODY);
    /* these have no body (RFC 9110 §6.4.1) */
    if (!(status < 200 || status == 204 || status == 304))
        read_refusal_body(c, raw, head_end, deadline, &body);
    n = body.len;
    while (n > 0 &&
           (body.data[n - 1] == '\n' || body.data[n - 1] == '\r' || body.data[n - 1] == ' '))
        n--;
    if (n > 0)
        text_sanitize(body.data, n, shown, sizeof(shown));
    else if (line_len > 13) /* no body: the reason phrase after "HTTP/1.1 404 " */
        text_sanitize(raw->data + 13, line_len - 13, shown, sizeof(shown));
    nerr_set(e, -EPROTO, "server refused the WebSocket upgrade: %ld %s", status, shown);
    if (refusal) {
        (void)buf_append(&body, "", 0); /* a string even when empty */
        refusal->status = status;
        refusal->body = body;
        body = (struct buf){0};
    }
    return -EPROTO;
}

int ws_client_connect(const char *base_url, const char *token, const char *path, size_t max_message,
                      long connect_timeout_ms, struct ws_client **ret, struct ws_refusal *refusal,
                      struct nerr *e)
{
    _cleanup_(ws_client_freep) struct ws_client *c = NULL;
    _cleanup_(curl_url_cleanupp) CURLU *u = NULL;
    _cleanup_(curl_freep) char *host = NULL;
    _cleanup_(curl_freep) char *port = NULL;
    _cleanup_(curl_freep) char *req_path = NULL;
    _cleanup_(curl_freep) char *query = NULL;
    _cleanup_free_ char *url = NULL;
    _cleanup_free_ char *request = NULL;
    _cleanup_(buf_freep) struct buf raw = {0};
    char errbuf[CURL_ERROR_SIZE] = "";
    char key[WS_KEY_LEN + 1], accept[WS_ACCEPT_LEN + 1];
    const char *proxy_env = getenv("NOID_USE_SYSTEM_PROXY");
    const char *scheme_rest = base_url;
    const char *scheme = "http://";
    int64_t deadline;
    size_t base_len, head_end = 0, vlen;
    const char *v;
    long status;
    CURLcode cc;
    int r;

    if (refusal)
        *refusal = (struct ws_refusal){0};
    if (connect_timeout_ms <= 0)
        connect_timeout_ms = WS_CLIENT_DEFAULT_TIMEOUT_MS;
    deadline = time_mono_ms() + connect_timeout_ms;
    if (!path || path[0] != '/' || !is_header_safe(path, false))
        return nerr_set(e, -EINVAL, "invalid WebSocket path");
    if (token && !is_header_safe(token, false))
        return nerr_set(e, -EINVAL, "the token holds characters a header cannot carry");

    /* ws:// and wss:// name the same servers as http:// and https:// */
    if (strncasecmp(base_url, "ws://", 5) == 0) {
        scheme_rest = base_url + 5;
    } else if (strncasecmp(base_url, "wss://", 6) == 0) {
        scheme = "https://";
        scheme_rest = base_url + 6;
    } else {
        scheme = "";
    }
    base_len = strlen(scheme_rest);
    while (base_len > 0 && scheme_rest[base_len - 1] == '/')
        base_len--;
    if (asprintf(&url, "%s%.*s%s", scheme, (int)base_len, scheme_rest, path) < 0) {
        url = NULL;
        return -ENOMEM;
    }
    u = curl_url();
    if (!u)
        return -ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &req_path, 0) != CURLUE_OK)
        return nerr_set(e, -EINVAL, "invalid server URL '%s'", base_url);
    (void)curl_url_get(u, CURLUPART_PORT, &port, 0);   /* absent: the scheme's */
    (void)curl_url_get(u, CURLUPART_QUERY, &query, 0); /* absent: none */

    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->fd = CURL_SOCKET_BAD;
    c->curl = curl_easy_init();
    if (!c->curl)
        return -ENOMEM;
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_CONNECT_ONLY, 1L);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf);
    /* the request we write is HTTP/1.1: TLS must not agree on h2 (ALPN) */
    curl_easy_setopt(c->curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (!(proxy_env && strcmp(proxy_env, "1") == 0)) {
        curl_easy_setopt(c->curl, CURLOPT_PROXY, "");
        curl_easy_setopt(c->curl, CURLOPT_NOPROXY, "*");
    } else {
        /* through a proxy, the upgrade must ride a CONNECT tunnel */
        curl_easy_setopt(c->curl, CURLOPT_HTTPPROXYTUNNEL, 1L);
    }
    cc = curl_easy_perform(c->curl);
    if (cc != CURLE_OK)
        return map_connect_error(cc, c->curl, base_url, errbuf, e);
    if (curl_easy_getinfo(c->curl, CURLINFO_ACTIVESOCKET, &c->fd) != CURLE_OK ||
        c->fd == CURL_SOCKET_BAD)
        return nerr_set(e, -EIO, "cannot connect to %s: no socket", base_url);

    r = ws_client_key(key);
    if (r < 0)
        return nerr_set(e, r, "cannot make a WebSocket key");
    r = ws_accept_key(key, accept);
    if (r < 0)
        return nerr_set(e, r, "cannot make a WebSocket key");
    if (asprintf(&request,
                 "GET %s%s%s HTTP/1.1\r\n"
                 "Host: %s%s%s\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Key: %s\r\n"
                 "Sec-WebSocket-Version: 13\r\n"
                 "%s%s%s"
                 "User-Agent: noid\r\n"
                 "\r\n",
                 req_path, query ? "?" : "", query ? query : "", host, port ? ":" : "",
                 port ? port : "", key, token ? "Authorization: Bearer " : "", token ? token : "",
                 token ? "\r\n" : "") < 0) {
        request = NULL;
        return -ENOMEM;
    }
    r = send_all(c, request, strlen(request), deadline);
    if (r < 0)
        return nerr_set(e, r, "cannot send the WebSocket upgrade to %s: %s", base_url,
                        strerror(-r));

    /* the head, up to the blank line; what follows it is already the
     * server's first frames (or a refusal's body) */
    buf_init(&raw, WS_CLIENT_MAX_HEAD);
    while (head_end == 0) {
        size_t scan_from = raw.len > 3 ? raw.len - 3 : 0;
        ssize_t n = read_some(c, &raw, deadline);
        if (n == 0)
            return nerr_set(e, -ECONNRESET, "%s closed the connection %s", base_url,
                            raw.len ? "in the middle of its answer"
                                    : "without answering the WebSocket upgrade");
        if (n == -E2BIG)
            return nerr_set(e, -EBADMSG, "the answer of %s has a head over %u bytes", base_url,
                            WS_CLIENT_MAX_HEAD);
        if (n == -ETIMEDOUT)
            return nerr_set(e, -ETIMEDOUT, "%s: timed out waiting for the WebSocket upgrade",
                            base_url);
        if (n < 0)
            return nerr_set(e, (int)n, "reading from %s: %s", base_url, strerror((int)-n));
        const uint8_t *end = memmem(raw.data + scan_from, raw.len - scan_from, "\r\n\r\n", 4);
        if (end)
            head_end = (size_t)(end - raw.data) + 4;
    }

    /* "HTTP/1.1 101 Switching Protocols" */
    if (raw.len < 12 || memcmp(raw.data, "HTTP/1.", 7) != 0 || raw.data[8] != ' ' ||
        !(raw.data[9] >= '1' && raw.data[9] <= '9') ||
        !(raw.data[10] >= '0' && raw.data[10] <= '9') ||
        !(raw.data[11] >= '0' && raw.data[11] <= '9') ||
        (raw.data[12] != ' ' && raw.data[12] != '\r'))
        return nerr_set(e, -EBADMSG, "%s did not answer in HTTP/1.1", base_url);
    status = (raw.data[9] - '0') * 100 + (raw.data[10] - '0') * 10 + (raw.data[11] - '0');
    if (status != 101)
        return refused(c, &raw, head_end, status, deadline, refusal, e);

    r = 0;
    v = header_value((const char *)raw.data, head_end, "Upgrade", &vlen);
    if (!value_is(v, vlen, "websocket"))
        r = nerr_set(e, -EPROTO, "invalid WebSocket handshake from %s: no Upgrade: websocket",
                     base_url);
    v = header_value((const char *)raw.data, head_end, "Connection", &vlen);
    if (r >= 0 && !list_has(v, vlen, "upgrade"))
        r = nerr_set(e, -EPROTO, "invalid WebSocket handshake from %s: no Connection: Upgrade",
                     base_url);
    v = header_value((const char *)raw.data, head_end, "Sec-WebSocket-Accept", &vlen);
    if (r >= 0 && !(v && vlen == WS_ACCEPT_LEN && memcmp(v, accept, WS_ACCEPT_LEN) == 0))
        r = nerr_set(e, -EPROTO, "invalid WebSocket handshake from %s: wrong Sec-WebSocket-Accept",
                     base_url);
    /* we asked for no extension and no subprotocol, so none may be in use */
    if (r >= 0 &&
        (header_value((const char *)raw.data, head_end, "Sec-WebSocket-Extensions", &vlen) ||
         header_value((const char *)raw.data, head_end, "Sec-WebSocket-Protocol", &vlen)))
        r = nerr_set(e, -EPROTO,
                     "invalid WebSocket handshake from %s: an extension or subprotocol "
                     "we did not ask for",
                     base_url);
    if (r < 0) {
        if (refusal)
            refusal->status = status;
        return r;
    }

    struct ws_io io = {.send = client_send, .recv = client_recv, .wait = client_wait, .user = c};
    r = ws_new(WS_CLIENT, &io, max_message, &c->ws);
    if (r < 0)
        return nerr_set(e, r, "cannot set up the WebSocket: %s", strerror(-r));
    r = ws_push_input(c->ws, raw.data + head_end, raw.len - head_end);
    if (r < 0)
        return nerr_set(e, r, "%s sent more after its 101 than a message may hold", base_url);
    *ret = TAKE_PTR(c);
    return 0;
}

struct ws *ws_client_ws(struct ws_client *c)
{
    return c->ws;
}

int ws_client_fd(struct ws_client *c)
{
    return c->fd;
}
