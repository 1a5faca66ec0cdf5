/* reply.c — building responses: JSON bodies, the {"error": "..."} shape of
 * every 4xx/5xx, and the mapping from engine error codes to HTTP statuses. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "wire.h"

/* Build the response; http.c queues it on the connection (from the thread
 * that serves the connection, as libmicrohttpd requires). */
static void queue(struct api_request *rq, unsigned status, const char *body, size_t len,
                  const char *extra_header, const char *extra_value)
{
    struct MHD_Response *resp;

    if (rq->response)
        return; /* one reply per request */
    resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return;
    if (len)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (extra_header)
        MHD_add_response_header(resp, extra_header, extra_value);
    rq->response = resp;
    rq->status = status;
}

void api_reply_json(struct api_request *rq, unsigned status, json_object *o)
{
    size_t len;
    const char *text;

    if (!o) {
        api_reply_error(rq, 500, "out of memory");
        return;
    }
    text = wire_to_string(o, &len);
    queue(rq, status, text, len, NULL, NULL);
    json_object_put(o);
}

size_t api_error_body(char *out, size_t size, const char *fmt, ...)
{
    char msg[API_ERROR_MSG_MAX];
    json_object *o;
    const char *text;
    size_t len = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    out[0] = 0;
    o = wire_error_encode(msg);
    if (o && (text = wire_to_string(o, &len)))
        snprintf(out, size, "%s", text);
    json_object_put(o);
    return strlen(out);
}

static void reply_error_msg(struct api_request *rq, unsigned status, const char *hdr,
                            const char *val, const char *msg)
{
    char body[API_ERROR_BODY_MAX];
    size_t len = api_error_body(body, sizeof(body), "%s", msg);

    queue(rq, status, body, len, hdr, val);
}

void api_reply_error(struct api_request *rq, unsigned status, const char *fmt, ...)
{
    char msg[API_ERROR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (status == 405) {
        /* "... (allowed: GET, POST)" → Allow header */
        const char *allowed = strstr(msg, "(allowed: ");
        char allow[64] = "";
        if (allowed)
            snprintf(allow, sizeof(allow), "%.*s", (int)strcspn(allowed + 10, ")"), allowed + 10);
        reply_error_msg(rq, status, MHD_HTTP_HEADER_ALLOW, allow, msg);
        return;
    }
    reply_error_msg(rq, status, NULL, NULL, msg);
}

void api_reply_error_hdr(struct api_request *rq, unsigned status, const char *hdr,
                         const char *value, const char *fmt, ...)
{
    char msg[API_ERROR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_error_msg(rq, status, hdr, value, msg);
}

void api_reply_empty(struct api_request *rq, unsigned status)
{
    queue(rq, status, "", 0, NULL, NULL);
}

unsigned api_status_for_errno(int r)
{
    switch (-r) {
    case EINVAL:
    case E2BIG:
        return 400;
    case EPERM:
        return 403;
    case ENOENT:
        return 404;
    case EEXIST:
    case EBUSY:
    case ESRCH:
        return 409;
    case EDQUOT:
        return 429;
    case ECONNRESET:
    case EPROTO:
        return 502;
    case EOPNOTSUPP:
        return 501;
    case ENODEV:
    case EADDRNOTAVAIL: /* noid-netd gave the VM no network */
        return 503;
    case ETIMEDOUT:
        return 504;
    case ENOSPC:
        return 507;
    default:
        return 500;
    }
}

void api_reply_engine_error(struct api_request *rq, int r, const struct nerr *e)
{
    unsigned status = api_status_for_errno(r);

    /* a server-side failure: the administrator reads why in the log (the
     * access line only has the status) */
    if (status >= 500)
        log_warn("%s %s failed (%u): %s", rq->method, rq->path, status,
                 e && e->msg[0] ? e->msg : strerror(-r));
    if (e && e->msg[0])
        api_reply_error(rq, status, "%s", e->msg);
    else
        api_reply_error(rq, status, "%s", strerror(-r));
}

int api_body_json(struct api_request *rq, json_object **ret)
{
    struct nerr e = {0};
    int r = wire_parse_object(rq->body.data ? (const char *)rq->body.data : "", rq->body.len, ret,
                              &e);

    if (r < 0)
        api_reply_error(rq, 400, "%s", e.msg);
    return r;
}
