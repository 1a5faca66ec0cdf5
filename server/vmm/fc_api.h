/* fc_api.h — requests to one Firecracker process's API socket.
 *
 * Firecracker serves HTTP/1.1 with JSON bodies on a Unix socket
 * (shared/firecracker/firecracker.yaml).  We talk to it with lib/http_client
 * (libcurl, CURLOPT_UNIX_SOCKET_PATH): no hand-written HTTP parsing.  A
 * struct fc_api holds one client, so consecutive requests of one operation
 * (the whole boot sequence, say) share one keep-alive connection; socket
 * paths longer than sun_path work (lib/unixsock.h).
 *
 * Every request has a timeout; reply bodies are bounded by
 * FC_API_MAX_REPLY.  Not thread-safe: one struct fc_api per operation. */
#pragma once

#include <json-c/json.h>

#include "nerr.h"

/* Configuration requests answer at once; InstanceStart and snapshots can
 * take longer (snapshots write or map all of guest RAM). */
#define FC_API_TIMEOUT_MS          10000
#define FC_API_SNAPSHOT_TIMEOUT_MS 120000
#define FC_API_CONNECT_TIMEOUT_MS  2000
/* Firecracker's answers are small JSON objects (errors, GET /vm/config). */
#define FC_API_MAX_REPLY (256u * 1024)

struct fc_api;

/* Prepare a client for dir/sock_name (nothing is connected yet). */
int fc_api_new(const char *dir, const char *sock_name, struct fc_api **ret);
void fc_api_free(struct fc_api *a);

/* Perform one request.  body (NULL for none) is not consumed.  Returns 0 once
 * any HTTP response arrived, whatever its status: *ret_status gets it and
 * *ret_body (if non-NULL; caller frees) the NUL-terminated reply body.
 * -errno with a reason in e when no response arrived (refused, timeout,
 * reply over FC_API_MAX_REPLY). */
int fc_api_request(struct fc_api *a, const char *method, const char *path, json_object *body,
                   long timeout_ms, long *ret_status, char **ret_body, struct nerr *e);

/* fc_api_request for calls that must succeed: a 2xx status is 0; any other
 * is -EIO with "Firecracker refused <METHOD> <path>: <fault_message>" in e.
 * body is consumed (put) in every case, so callers can build it inline. */
int fc_api_call(struct fc_api *a, const char *method, const char *path, json_object *body,
                long timeout_ms, struct nerr *e);
