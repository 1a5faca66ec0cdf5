/* http_client.h — the REST client used by the CLI and noidfs (libcurl).
 *
 * One client = one base URL, one token and one reused curl handle (so
 * consecutive requests share a keep-alive connection).  Not thread-safe: use
 * one client per thread.  System proxies (HTTP_PROXY, …) are ignored unless
 * NOID_USE_SYSTEM_PROXY=1, because a noid server is usually reached directly
 * and a stray corporate proxy would otherwise swallow the requests. */
#pragma once

#include <stddef.h>

#include "buf.h"
#include "nerr.h"

#define HTTP_MAX_RESPONSE (512u * 1024 * 1024)

struct http_client;

struct http_response {
    long status;
    struct buf body; /* NUL-terminated */
};

/* Call once at program start (libcurl global state). */
void http_global_init(void);

int http_client_new(const char *base_url, const char *token, struct http_client **ret);
/* A client for an HTTP server on the unix socket dir/name (as Firecracker's
 * API); sockets beyond sun_path's 108 bytes work too (lib/unixsock.h). */
int http_client_new_unix(const char *dir, const char *name, struct http_client **ret);
/* Connect and whole-request timeouts in ms (0 = none); default 10000 / 0. */
void http_client_set_timeouts(struct http_client *c, long connect_ms, long total_ms);
/* Cap on response bodies (default HTTP_MAX_RESPONSE). */
void http_client_set_max_response(struct http_client *c, size_t max);
void http_client_free(struct http_client *c);

/* Perform method path (relative to the base URL, starting with '/').  body may
 * be NULL.  0 once any HTTP response arrived (whatever its status); -errno
 * with a readable reason when none did (refused, DNS, timeout, …). */
int http_client_request(struct http_client *c, const char *method, const char *path,
                        const char *body, size_t body_len, struct http_response *resp,
                        struct nerr *e);

void http_response_free(struct http_response *r);
