/* http_client.h — the REST client used by the CLI and noidfs (libcurl).
 *
 * One client = one base URL, one token and one reused curl handle (so
 * consecutive requests share a keep-alive connection).  Not thread-safe: use
 * one client per thread.  System proxies (HTTP_PROXY, …) are ignored unless
 * NOID_USE_SYSTEM_PROXY=1, because a noid server is usually reached directly
 * and a stray corporate proxy would otherwise swallow the requests. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

/* A request whose body and response body stream through callbacks, for
 * transfers of any size in constant memory.  Every member may be 0/NULL. */
struct http_stream {
    /* The request body: fill up to len bytes of buf, return how many, 0 at
     * its end, or -errno to abort the request.  NULL: no body. */
    ssize_t (*read_body)(void *user, void *buf, size_t len);
    /* The body's size when known (sent with Content-Length), else -1: sent
     * chunked. */
    int64_t body_size;
    /* Each response header as it arrives, name and value without the
     * surrounding blanks (lines over 8 KiB are not passed). */
    void (*on_header)(void *user, const char *name, const char *value);
    /* The body of a 2xx response, as it arrives: 0, or -errno to abort.  A
     * body of any other status (the server's {"error"}) goes to resp->body,
     * up to the client's max_response; so does a 2xx body without this. */
    int (*write_body)(void *user, const void *data, size_t len);
    /* Called as bytes move and at least once a second: non-zero aborts the
     * request (-ECANCELED).  Totals are 0 while unknown. */
    int (*progress)(void *user, int64_t down_now, int64_t down_total, int64_t up_now,
                    int64_t up_total);
    void *user;
};

/* Perform method path as http_client_request does, streaming through s.
 * "HEAD" asks for the headers only.  0 once a response arrived; the -errno a
 * callback returned (e says only that the transfer was aborted: the caller
 * knows what failed); -ECANCELED when progress aborted; other -errno with a
 * readable reason in e. */
int http_client_stream(struct http_client *c, const char *method, const char *path,
                       const struct http_stream *s, struct http_response *resp, struct nerr *e);

void http_response_free(struct http_response *r);
