/* handlers_checkpoints.c — checkpoint create/list/delete and restore/clone. */
#include "api.h"
#include "wire.h"

void api_post_checkpoint(struct api_request *rq, char **params)
{
    struct wire_checkpoint_req req = {0};
    struct wire_checkpoint cp = {0};
    struct nerr e = {0};
    json_object *body = NULL;
    int r;

    /* the body is optional: no body means no label */
    if (rq->body.len > 0) {
        if (api_body_json(rq, &body) < 0)
            return;
        r = wire_checkpoint_req_decode(body, &req, &e);
        json_object_put(body);
        if (r < 0) {
            api_reply_error(rq, 400, "%s", e.msg);
            goto out;
        }
    }
    r = engine_checkpoint_create(rq->srv->eng, &rq->user, params[0], req.label, &cp, &e);
    if (r < 0) {
        api_reply_engine_error(rq, r, &e);
        goto out;
    }
    api_reply_json(rq, 201, wire_checkpoint_encode(&cp));
out:
    wire_checkpoint_req_free(&req);
    wire_checkpoint_free(&cp);
}

void api_get_checkpoints(struct api_request *rq, char **params)
{
    struct wire_checkpoint *list = NULL;
    struct nerr e = {0};
    json_object *arr;
    size_t n = 0;
    int r = engine_checkpoint_list(rq->srv->eng, &rq->user, params[0], &list, &n, &e);

    if (r < 0) {
        api_reply_engine_error(rq, r, &e);
        return;
    }
    arr = json_object_new_array_ext((int)n);
    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, wire_checkpoint_encode(&list[i]));
    engine_checkpoint_list_free(list, n);
    api_reply_json(rq, 200, arr);
}

void api_delete_checkpoint(struct api_request *rq, char **params)
{
    struct nerr e = {0};
    int r = engine_checkpoint_delete(rq->srv->eng, &rq->user, params[0], params[1], &e);

    if (r < 0) {
        api_reply_engine_error(rq, r, &e);
        return;
    }
    api_reply_empty(rq, 204);
}

void api_post_restore(struct api_request *rq, char **params)
{
    struct wire_restore_req req = {0};
    struct wire_vm_info info = {0};
    struct nerr e = {0};
    json_object *body;
    bool created = false;
    int r;

    if (api_body_json(rq, &body) < 0)
        return;
    r = wire_restore_req_decode(body, &req, &e);
    json_object_put(body);
    if (r < 0) {
        api_reply_error(rq, 400, "%s", e.msg);
        goto out;
    }
    r = engine_vm_restore(rq->srv->eng, &rq->user, params[0], req.checkpoint_id, req.new_name,
                          &info, &created, &e);
    if (r < 0) {
        api_reply_engine_error(rq, r, &e);
        goto out;
    }
    api_reply_json(rq, created ? 201 : 200, wire_vm_info_encode(&info));
out:
    wire_restore_req_free(&req);
    wire_vm_info_free(&info);
}
