/* handlers_meta.c — health, version, identity and capabilities. */
#include "api.h"
#include "noid-config.h"
#include "wire.h"

void api_get_healthz(struct api_request *rq, char **params)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "status", json_object_new_string("ok"));
    api_reply_json(rq, 200, o);
}

void api_get_version(struct api_request *rq, char **params)
{
    struct wire_version v = {.version = (char *)NOID_VERSION, .api_version = NOID_API_VERSION};

    api_reply_json(rq, 200, wire_version_encode(&v));
}

void api_get_whoami(struct api_request *rq, char **params)
{
    struct wire_whoami w = {.user_id = rq->user.id, .name = rq->user.name};

    api_reply_json(rq, 200, wire_whoami_encode(&w));
}

void api_get_capabilities(struct api_request *rq, char **params)
{
    struct wire_capabilities c;

    engine_capabilities(rq->srv->eng, &c);
    api_reply_json(rq, 200, wire_capabilities_encode(&c));
}
