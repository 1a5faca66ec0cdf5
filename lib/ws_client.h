/* ws_client.h — a WebSocket client connection over libcurl (the CLI, and
 * noidfs's REST binding).
 *
 * Debian 12's libcurl has no WebSocket support of its own, so curl only
 * connects (CURLOPT_CONNECT_ONLY; TLS too for https:// URLs) and the upgrade
 * request and struct ws (lib/ws.h) ride on curl_easy_send/curl_easy_recv.
 * Proxies are handled as lib/http_client.h does.
 *
 * Not thread-safe: curl's handle is used by one thread at a time, so the
 * owner drives both directions from one loop (poll ws_client_fd, then
 * ws_receive until it returns 0). */
#pragma once

#include "buf.h"
#include "nerr.h"
#include "ws.h"

struct ws_client;

/* What a refused upgrade answered instead of 101. */
struct ws_refusal {
    long status;     /* HTTP status, 0 if none arrived */
    struct buf body; /* the response body (the server's {"error":...}), capped */
};

/* Connect to base_url + path (path starts with '/', may hold a query;
 * base_url is http://, https://, or ws:// / wss:// for the same, and may
 * have a path of its own), send the upgrade request with "Authorization:
 * Bearer token" (token may be NULL) and check the 101 answer (Upgrade,
 * Connection, Sec-WebSocket-Accept, no extension or subprotocol).
 *   0 and *ret: connected; ws_client_ws(*ret) sends and receives.
 *   -ECONNREFUSED (and others) with e: no HTTP answer at all.
 *   -EPROTO with e and *refusal filled (when refusal is not NULL): the
 *     server answered with another status (401, 404, 503, ...); the caller
 *     may fall back (e.g. to POST exec) or print the server's error.  e
 *     reads "server refused the WebSocket upgrade: 404 {"error":...}".
 *     Also for a 101 that fails the checks (refusal->status 101, empty
 *     body).
 *   -EINVAL with e: a bad URL, or a path/token a header cannot carry.
 * *refusal is always initialised (free it with ws_refusal_free).
 * connect_timeout_ms bounds connecting and the handshake (<= 0: 10 s). */
int ws_client_connect(const char *base_url, const char *token, const char *path, size_t max_message,
                      long connect_timeout_ms, struct ws_client **ret, struct ws_refusal *refusal,
                      struct nerr *e);
struct ws *ws_client_ws(struct ws_client *c);
/* The socket, to poll for reading (POLLIN) alongside other descriptors. */
int ws_client_fd(struct ws_client *c);
void ws_client_free(struct ws_client *c);
void ws_refusal_free(struct ws_refusal *r);
