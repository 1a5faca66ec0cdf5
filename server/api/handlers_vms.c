/* handlers_vms.c — VM create, list, info, destroy, HTTP exec and the
 * console log. */
#include <stdlib.h>

#include "api.h"
#include "wire.h"

void api_post_vms(struct api_request *rq, char **params)
{
    struct wire_create_req req = {0};
    struct wire_vm_info info = {0};
    struct nerr e = {0};
    json_object *body;
    int r;

    if (api_body_json(rq, &body) < 0)
        return;
    r = wire_create_req_decode(body, &req, &e);
    json_object_put(body);
    if (r < 0) {
        api_reply_error(rq, 400, "%s", e.msg);
        goto out;
    }
    r = engine_vm_create(rq->srv->eng, &rq->user, &req, &info, &e);
    if (r < 0) {
        api_reply_engine_error(rq, r, &e);
        goto out;
    }
    api_reply_json(rq, 201, wire_vm_info_encode(&info));
out:
    wire_create_req_free(&req);
    wire_vm_info_free(&info);
}

void api_get_vms(struct api_request *rq, char **params)
{
    struct wire_vm_info *list = NULL;
    struct nerr e = {0};
    json_object *arr;
    size_t n = 0;
    int r;

    r = engine_vm_list(rq->srv->eng, &rq->user, &list, &n, &e);
    if (r < 0) {
        api_reply_engine_error(rq, r, &e);
        return;
    }
    arr = json_object_new_array_ext((int)n);
    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, wire_vm_info_encode(&list[i]));
    engine_vm_info_list_free(list, n);
    api_reply_json(rq, 200, arr);
}

void api_get_vm(struct api_request *rq, char **params)
{
    struct wire_vm_info info = {0};
    struct nerr e = {0};
    int r = engine_vm_info(rq->srv->eng, &rq->user, params[0], &info, &e);

    if (r < 0) {
        api_reply_engine_error(rq, r, &e);
        return;
    }
    api_reply_json(rq, 200, wire_vm_info_encode(&info));
    wire_vm_info_free(&info);
}

void api_delete_vm(struct api_request *rq, char **params)
{
    struct nerr e = {0};
    int r = engine_vm_destroy(rq->srv->eng, &rq->user, params[0], &e);

    if (r < 0) {
        api_reply_engine_error(rq, r, &e);
        return;
    }
    api_reply_empty(rq, 204);
}

void api_post_exec(struct api_request *rq, char **params)
{
    struct wire_exec_req req = {0};
    struct wire_exec_result res = {0};
    struct nerr e = {0};
    json_object *body;
    int r;

    if (api_body_json(rq, &body) < 0)
        return;
    r = wire_exec_req_decode(body, &req, &e);
    json_object_put(body);
    if (r < 0) {
        api_reply_error(rq, 400, "%s", e.msg);
        goto out;
    }
    r = engine_vm_exec(rq->srv->eng, &rq->user, params[0], &req, &res, &e);
    if (r < 0) {
        api_reply_engine_error(rq, r, &e);
        goto out;
    }
    api_reply_json(rq, 200, wire_exec_result_encode(&res));
out:
    wire_exec_req_free(&req);
    wire_exec_result_free(&res);
}

/* GET /v1/vms/{name}/console.log: the bytes of serial.log as they are (the
 * guest writes what it likes to its console, so no charset is claimed).
 * The body is handed to libmicrohttpd, not copied: it may be megabytes. */
void api_get_console_log(struct api_request *rq, char **params)
{
    struct MHD_Response *resp;
    struct nerr e = {0};
    char *data = NULL;
    size_t len = 0;
    int r = engine_vm_console_log(rq->srv->eng, &rq->user, params[0], &data, &len, &e);

    if (r < 0) {
        api_reply_engine_error(rq, r, &e);
        return;
    }
    if (rq->response) {
        free(data);
        return; /* one reply per request */
    }
    resp = MHD_create_response_from_buffer_with_free_callback(len, data, free);
    if (!resp) {
        free(data);
        api_reply_error(rq, 500, "out of memory");
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    rq->response = resp;
    rq->status = 200;
}
