/* fc_api.c — see fc_api.h.
 *
 * Firecracker's HTTP server answers 204 with no Content-Length on a
 * keep-alive connection, so a client that reads until EOF would hang; curl
 * knows a 204 has no body.  Environment proxies are switched off: an
 * http_proxy variable must never redirect a Unix-socket request. */
#include "fc_api.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "buf.h"
#include "macro.h"

struct fc_api {
    CURL *curl;
    int dirfd;       /* keeps /proc/self/fd/<dirfd> valid; -1 when not needed */
    char *sock_path; /* what goes into sun_path */
};

int fc_api_new(const char *dir, const char *sock_name, struct fc_api **ret)
{
    struct fc_api *a = calloc(1, sizeof(*a));
    struct sockaddr_un sun;
    int r;

    if (!a)
        return -ENOMEM;
    a->dirfd = -1;
    if (asprintf(&a->sock_path, "%s/%s", dir, sock_name) < 0) {
        a->sock_path = NULL;
        r = -ENOMEM;
        goto fail;
    }
    if (strlen(a->sock_path) >= sizeof(sun.sun_path)) {
        free(a->sock_path);
        a->sock_path = NULL;
        a->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (a->dirfd < 0) {
            r = -errno;
            goto fail;
        }
        if (asprintf(&a->sock_path, "/proc/self/fd/%d/%s", a->dirfd, sock_name) < 0) {
            a->sock_path = NULL;
            r = -ENOMEM;
            goto fail;
        }
        if (strlen(a->sock_path) >= sizeof(sun.sun_path)) {
            r = -ENAMETOOLONG;
            goto fail;
        }
    }
    a->curl = curl_easy_init();
    if (!a->curl) {
        r = -ENOMEM;
        goto fail;
    }
    *ret = a;
    return 0;
fail:
    fc_api_free(a);
    return r;
}

void fc_api_free(struct fc_api *a)
{
    if (!a)
        return;
    if (a->curl)
        curl_easy_cleanup(a->curl);
    if (a->dirfd >= 0)
        close(a->dirfd);
    free(a->sock_path);
    free(a);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user)
{
    struct buf *b = user;
    size_t n = size * nmemb;

    if (buf_append(b, data, n) < 0)
        return 0; /* makes curl fail with CURLE_WRITE_ERROR */
    return n;
}

int fc_api_request(struct fc_api *a, const char *method, const char *path, json_object *body,
                   long timeout_ms, long *ret_status, char **ret_body, struct nerr *e)
{
    _cleanup_free_ char *url = NULL;
    struct curl_slist *headers = NULL, *h;
    const char *text = NULL;
    struct buf reply;
    long status = 0;
    CURLcode cc;
    int r = 0;

    buf_init(&reply, FC_API_MAX_REPLY);
    if (asprintf(&url, "http://localhost%s", path) < 0) {
        url = NULL;
        return -ENOMEM;
    }
    if (body)
        text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
    curl_easy_reset(a->curl);
    curl_easy_setopt(a->curl, CURLOPT_UNIX_SOCKET_PATH, a->sock_path);
    curl_easy_setopt(a->curl, CURLOPT_URL, url);
    curl_easy_setopt(a->curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(a->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(a->curl, CURLOPT_PROXY, "");
    curl_easy_setopt(a->curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(a->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)FC_API_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(a->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(a->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(a->curl, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(a->curl, CURLOPT_USERAGENT, "noid-server");
    h = curl_slist_append(headers, "Accept: application/json");
    if (h)
        headers = h;
    if (text) {
        h = curl_slist_append(headers, "Content-Type: application/json");
        if (h)
            headers = h;
        /* Firecracker's server does not do "Expect: 100-continue" round trips */
        h = curl_slist_append(headers, "Expect:");
        if (h)
            headers = h;
        curl_easy_setopt(a->curl, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(a->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(text));
    }
    if (!headers) {
        r = -ENOMEM;
        goto out;
    }
    curl_easy_setopt(a->curl, CURLOPT_HTTPHEADER, headers);
    cc = curl_easy_perform(a->curl);
    if (cc != CURLE_OK) {
        if (cc == CURLE_WRITE_ERROR)
            r = nerr_set(e, -E2BIG, "Firecracker's reply to %s %s exceeds %u bytes", method, path,
                         FC_API_MAX_REPLY);
        else if (cc == CURLE_OPERATION_TIMEDOUT)
            r = nerr_set(e, -ETIMEDOUT, "Firecracker did not answer %s %s within %ld ms", method,
                         path, timeout_ms);
        else if (cc == CURLE_COULDNT_CONNECT)
            r = nerr_set(e, -ECONNREFUSED, "cannot connect to Firecracker's API socket");
        else
            r = nerr_set(e, -EIO, "%s %s to Firecracker failed: %s", method, path,
                         curl_easy_strerror(cc));
        goto out;
    }
    curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &status);
    *ret_status = status;
    if (ret_body) {
        size_t len;
        char *s = buf_steal(&reply, &len);
        if (!s) {
            r = -ENOMEM;
            goto out;
        }
        *ret_body = s;
    }
    r = 0;
out:
    curl_slist_free_all(headers);
    buf_free(&reply);
    return r;
}

/* The fault_message of an error body, or the body itself if it is not one. */
static void fault_message(const char *body, char *out, size_t size)
{
    json_object *j = body && *body ? json_tokener_parse(body) : NULL;
    json_object *m;

    if (j && json_object_object_get_ex(j, "fault_message", &m))
        snprintf(out, size, "%s", json_object_get_string(m));
    else if (body && *body)
        snprintf(out, size, "%s", body);
    else
        snprintf(out, size, "no fault_message");
    json_object_put(j);
}

int fc_api_call(struct fc_api *a, const char *method, const char *path, json_object *body,
                long timeout_ms, struct nerr *e)
{
    _cleanup_free_ char *reply = NULL;
    char why[200];
    long status = 0;
    int r;

    r = fc_api_request(a, method, path, body, timeout_ms, &status, &reply, e);
    json_object_put(body);
    if (r < 0)
        return r;
    if (status >= 200 && status < 300)
        return 0;
    fault_message(reply, why, sizeof(why));
    return nerr_set(e, -EIO, "Firecracker refused %s %s: %s (HTTP %ld)", method, path, why, status);
}
