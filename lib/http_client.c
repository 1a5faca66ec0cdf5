/* http_client.c — see http_client.h. */
#include "http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "unixsock.h"

struct http_client {
    CURL *curl;
    char *base_url; /* without trailing '/' */
    char *auth_header;
    char unix_path[108]; /* "" for TCP */
    int dirfd;           /* keeps a /proc/self/fd/<dirfd> unix_path valid */
    long connect_ms, total_ms;
    size_t max_response;
};

void http_global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int http_client_new(const char *base_url, const char *token, struct http_client **ret)
{
    struct http_client *c = calloc(1, sizeof(*c));
    size_t n;

    if (!c)
        return -ENOMEM;
    c->dirfd = -1;
    c->connect_ms = 10000;
    c->max_response = HTTP_MAX_RESPONSE;
    c->base_url = strdup(base_url);
    if (!c->base_url)
        goto nomem;
    n = strlen(c->base_url);
    while (n > 0 && c->base_url[n - 1] == '/')
        c->base_url[--n] = '\0';
    if (token && asprintf(&c->auth_header, "Authorization: Bearer %s", token) < 0) {
        c->auth_header = NULL;
        goto nomem;
    }
    c->curl = curl_easy_init();
    if (!c->curl)
        goto nomem;
    *ret = c;
    return 0;
nomem:
    http_client_free(c);
    return -ENOMEM;
}

int http_client_new_unix(const char *dir, const char *name, struct http_client **ret)
{
    struct http_client *c;
    int r = http_client_new("http://localhost", NULL, &c);

    if (r < 0)
        return r;
    r = unix_sock_path(dir, name, c->unix_path, &c->dirfd);
    if (r < 0) {
        http_client_free(c);
        return r;
    }
    *ret = c;
    return 0;
}

void http_client_set_timeouts(struct http_client *c, long connect_ms, long total_ms)
{
    c->connect_ms = connect_ms;
    c->total_ms = total_ms;
}

void http_client_set_max_response(struct http_client *c, size_t max)
{
    c->max_response = max;
}

void http_client_free(struct http_client *c)
{
    if (!c)
        return;
    if (c->dirfd >= 0)
        close(c->dirfd);
    if (c->curl)
        curl_easy_cleanup(c->curl);
    free(c->base_url);
    free(c->auth_header);
    free(c);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    struct buf *b = user;
    size_t n = size * nmemb;

    if (buf_append(b, data, n) < 0)
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    return n;
}

int http_client_request(struct http_client *c, const char *method, const char *path,
                        const char *body, size_t body_len, struct http_response *resp,
                        struct nerr *e)
{
    _cleanup_free_ char *url = NULL;
    struct curl_slist *headers = NULL;
    const char *proxy_env = getenv("NOID_USE_SYSTEM_PROXY");
    CURLcode cc;
    int r = 0;

    if (asprintf(&url, "%s%s", c->base_url, path) < 0) {
        url = NULL;
        return -ENOMEM;
    }
    buf_init(&resp->body, c->max_response);
    resp->status = 0;

    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
    if (c->total_ms)
        curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->total_ms);
    if (c->unix_path[0])
        curl_easy_setopt(c->curl, CURLOPT_UNIX_SOCKET_PATH, c->unix_path);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &resp->body);
    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "noid-cli");
    /* a proxy never applies to a unix socket */
    if (c->unix_path[0] || !(proxy_env && strcmp(proxy_env, "1") == 0)) {
        curl_easy_setopt(c->curl, CURLOPT_PROXY, "");
        curl_easy_setopt(c->curl, CURLOPT_NOPROXY, "*");
    }
    if (c->auth_header)
        headers = curl_slist_append(headers, c->auth_header);
    if (body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
    }
    /* no "Expect: 100-continue" round trip for large bodies */
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);

    cc = curl_easy_perform(c->curl);
    if (cc != CURLE_OK) {
        long oserr = 0;
        curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &oserr);
        switch (cc) {
        case CURLE_COULDNT_CONNECT:
            r = nerr_set(e, -ECONNREFUSED, "cannot connect to %s: %s (is noid-server running?)",
                         c->base_url, oserr ? strerror((int)oserr) : "connection refused");
            break;
        case CURLE_COULDNT_RESOLVE_HOST:
            r = nerr_set(e, -EHOSTUNREACH, "cannot resolve the host of %s", c->base_url);
            break;
        case CURLE_OPERATION_TIMEDOUT:
            r = nerr_set(e, -ETIMEDOUT, "%s: timed out", c->base_url);
            break;
        case CURLE_WRITE_ERROR:
            r = nerr_set(e, -EFBIG, "response from %s is larger than %zu bytes", c->base_url,
                         c->max_response);
            break;
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL:
            r = nerr_set(e, -EINVAL, "invalid server URL '%s'", c->base_url);
            break;
        default:
            r = nerr_set(e, -EIO, "request to %s failed: %s", url, curl_easy_strerror(cc));
            break;
        }
        buf_free(&resp->body);
    } else {
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &resp->status);
    }
    curl_slist_free_all(headers);
    return r;
}

void http_response_free(struct http_response *r)
{
    buf_free(&r->body);
}
