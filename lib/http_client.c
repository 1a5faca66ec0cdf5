/* http_client.c — see http_client.h. */
#include "http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
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

/* The longest header line passed to http_stream.on_header. */
#define HTTP_HEADER_LINE_MAX 8192

/* One perform: where its callbacks deliver, and the first error one of
 * them returned (reported instead of curl's "write error"). */
struct transfer {
    struct http_client *c;
    const struct http_stream *s; /* NULL for http_client_request */
    struct http_response *resp;
    int cb_err;
    bool too_large; /* resp->body reached max_response */
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    struct transfer *t = user;
    size_t n = size * nmemb;
    long status = 0;

    if (t->s && t->s->write_body) {
        curl_easy_getinfo(t->c->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 && status < 300) {
            int r = t->s->write_body(t->s->user, data, n);
            if (r < 0) {
                t->cb_err = r;
                return 0; /* makes curl fail with CURLE_WRITE_ERROR */
            }
            return n;
        }
    }
    if (buf_append(&t->resp->body, data, n) < 0) {
        t->too_large = true;
        return 0;
    }
    return n;
}

static size_t on_read(char *data, size_t size, size_t nitems, void *user)
{
    struct transfer *t = user;
    ssize_t n = t->s->read_body(t->s->user, data, size * nitems);

    if (n < 0) {
        t->cb_err = (int)n;
        return CURL_READFUNC_ABORT;
    }
    return (size_t)n;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *user)
{
    struct transfer *t = user;
    size_t n = size * nitems, name_len, start, end;
    char line[HTTP_HEADER_LINE_MAX];
    char *colon;

    if (n >= sizeof(line))
        return n;
    memcpy(line, data, n);
    line[n] = '\0';
    colon = strchr(line, ':');
    if (!colon || colon == line)
        return n; /* the status line, the blank line at the end */
    name_len = (size_t)(colon - line);
    while (name_len > 0 && (line[name_len - 1] == ' ' || line[name_len - 1] == '\t'))
        name_len--;
    line[name_len] = '\0';
    start = (size_t)(colon - line) + 1;
    end = n;
    while (start < end && (line[start] == ' ' || line[start] == '\t'))
        start++;
    while (end > start && strchr(" \t\r\n", line[end - 1]))
        end--;
    line[end] = '\0';
    t->s->on_header(t->s->user, line, line + start);
    return n;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    struct transfer *t = user;

    return t->s->progress(t->s->user, dlnow, dltotal, ulnow, ultotal);
}

/* Everything both kinds of request set: the URL, method, timeouts, proxy
 * rule, token, and the response body's destination.  Adds to *headers. */
static int setup(struct transfer *t, const char *method, const char *path,
                 struct curl_slist **headers, char **ret_url)
{
    struct http_client *c = t->c;
    const char *proxy_env = getenv("NOID_USE_SYSTEM_PROXY");
    char *url;

    if (asprintf(&url, "%s%s", c->base_url, path) < 0)
        return -ENOMEM;
    buf_init(&t->resp->body, c->max_response);
    t->resp->status = 0;

    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c->curl, CURLOPT_NOBODY, 1L); /* else curl waits for a body */
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, c->connect_ms);
    if (c->total_ms)
        curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->total_ms);
    if (c->unix_path[0])
        curl_easy_setopt(c->curl, CURLOPT_UNIX_SOCKET_PATH, c->unix_path);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "noid-cli");
    /* a proxy never applies to a unix socket */
    if (c->unix_path[0] || !(proxy_env && strcmp(proxy_env, "1") == 0)) {
        curl_easy_setopt(c->curl, CURLOPT_PROXY, "");
        curl_easy_setopt(c->curl, CURLOPT_NOPROXY, "*");
    }
    if (c->auth_header)
        *headers = curl_slist_append(*headers, c->auth_header);
    *ret_url = url;
    return 0;
}

/* Run the request set up on t; the result as http_client_request's. */
static int perform(struct transfer *t, const char *url, struct curl_slist *headers, struct nerr *e)
{
    struct http_client *c = t->c;
    CURLcode cc;
    int r = 0;

    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
    cc = curl_easy_perform(c->curl);
    if (cc != CURLE_OK) {
        long oserr = 0;
        curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &oserr);
        if (t->too_large)
            cc = CURLE_FILESIZE_EXCEEDED;
        else if (t->cb_err < 0)
            cc = CURLE_ABORTED_BY_CALLBACK;
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
        case CURLE_FILESIZE_EXCEEDED:
            r = nerr_set(e, -EFBIG, "response from %s is larger than %zu bytes", c->base_url,
                         c->max_response);
            break;
        case CURLE_ABORTED_BY_CALLBACK:
            r = nerr_set(e, t->cb_err < 0 ? t->cb_err : -ECANCELED, "request to %s aborted", url);
            break;
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL:
            r = nerr_set(e, -EINVAL, "invalid server URL '%s'", c->base_url);
            break;
        default:
            r = nerr_set(e, -EIO, "request to %s failed: %s", url, curl_easy_strerror(cc));
            break;
        }
        buf_free(&t->resp->body);
    } else {
        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &t->resp->status);
    }
    return r;
}

int http_client_request(struct http_client *c, const char *method, const char *path,
                        const char *body, size_t body_len, struct http_response *resp,
                        struct nerr *e)
{
    struct transfer t = {.c = c, .resp = resp};
    _cleanup_free_ char *url = NULL;
    struct curl_slist *headers = NULL;
    int r;

    r = setup(&t, method, path, &headers, &url);
    if (r < 0)
        goto out;
    if (body) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
    }
    /* no "Expect: 100-continue" round trip for large bodies */
    headers = curl_slist_append(headers, "Expect:");
    r = perform(&t, url, headers, e);
out:
    curl_slist_free_all(headers);
    return r;
}

int http_client_stream(struct http_client *c, const char *method, const char *path,
                       const struct http_stream *s, struct http_response *resp, struct nerr *e)
{
    struct transfer t = {.c = c, .s = s, .resp = resp};
    _cleanup_free_ char *url = NULL;
    struct curl_slist *headers = NULL;
    int r;

    r = setup(&t, method, path, &headers, &url);
    if (r < 0)
        goto out;
    if (s->read_body) {
        /* UPLOAD makes a PUT, which CUSTOMREQUEST renames; without a size
         * curl sends the body chunked */
        curl_easy_setopt(c->curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c->curl, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c->curl, CURLOPT_READDATA, &t);
        if (s->body_size >= 0)
            curl_easy_setopt(c->curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)s->body_size);
        headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
        /* the server may refuse the upload from its headers (no such
         * directory): let it, before the body goes, instead of answering
         * a connection it then closes under a body still being sent */
        headers = curl_slist_append(headers, "Expect: 100-continue");
    } else {
        headers = curl_slist_append(headers, "Expect:");
    }
    if (s->on_header) {
        curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, &t);
    }
    if (s->progress) {
        curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
        curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, &t);
        curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
    }
    r = perform(&t, url, headers, e);
out:
    curl_slist_free_all(headers);
    return r;
}

void http_response_free(struct http_response *r)
{
    buf_free(&r->body);
}
