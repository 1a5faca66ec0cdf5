/* fc_api.c — see fc_api.h.  A thin layer over lib/http_client.c (libcurl on
 * the unix socket): Firecracker's timeouts and reply cap, and its error
 * bodies turned into one sentence.  curl also knows that Firecracker's 204
 * on a keep-alive connection has no body, so nothing waits for an EOF. */
#include "fc_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.h"
#include "macro.h"

struct fc_api {
    struct http_client *http;
};

int fc_api_new(const char *dir, const char *sock_name, struct fc_api **ret)
{
    struct fc_api *a = calloc(1, sizeof(*a));
    int r;

    if (!a)
        return -ENOMEM;
    r = http_client_new_unix(dir, sock_name, &a->http);
    if (r < 0) {
        free(a);
        return r;
    }
    http_client_set_max_response(a->http, FC_API_MAX_REPLY);
    *ret = a;
    return 0;
}

void fc_api_free(struct fc_api *a)
{
    if (!a)
        return;
    http_client_free(a->http);
    free(a);
}

int fc_api_request(struct fc_api *a, const char *method, const char *path, json_object *body,
                   long timeout_ms, long *ret_status, char **ret_body, struct nerr *e)
{
    struct http_response resp = {0};
    struct nerr inner = {0};
    const char *text = NULL;
    size_t len = 0;
    int r;

    if (body)
        text = json_object_to_json_string_length(body, JSON_C_TO_STRING_PLAIN, &len);
    http_client_set_timeouts(a->http, FC_API_CONNECT_TIMEOUT_MS, timeout_ms);
    r = http_client_request(a->http, method, path, text, len, &resp, &inner);
    if (r < 0) {
        switch (-r) {
        case EFBIG:
            return nerr_set(e, -E2BIG, "Firecracker's reply to %s %s exceeds %u bytes", method,
                            path, FC_API_MAX_REPLY);
        case ETIMEDOUT:
            return nerr_set(e, r, "Firecracker did not answer %s %s within %ld ms", method,
                            path, timeout_ms);
        case ECONNREFUSED:
            return nerr_set(e, r, "cannot connect to Firecracker's API socket");
        default:
            return nerr_set(e, r, "%s %s to Firecracker failed: %s", method, path, inner.msg);
        }
    }
    *ret_status = resp.status;
    if (ret_body) {
        *ret_body = buf_steal(&resp.body, NULL);
        if (!*ret_body)
            return -ENOMEM;
    }
    http_response_free(&resp);
    return 0;
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
