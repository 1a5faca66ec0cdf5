/* http.h — the REST server: listening socket, libmicrohttpd daemon, request
 * dispatch and the access log. */
#pragma once

#include "config.h"
#include "engine.h"
#include "nerr.h"

struct api_server;

/* Bind cfg->listen and start serving.  The address actually bound (useful
 * with port 0) is returned by api_server_address(). */
int api_server_start(struct engine *eng, const struct server_config *cfg,
                     struct api_server **ret, struct nerr *e);
const char *api_server_address(const struct api_server *s);
/* Stop accepting, let running requests finish, free. */
void api_server_stop(struct api_server *s);
