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

/* Bind and listen on "HOST:PORT" or "[V6]:PORT" (port 0: any free one);
 * the address actually bound goes to bound.  key names the setting in
 * errors ("listen", "metrics_listen").  Also used by metrics_http.c. */
int api_listen_bind(const char *key, const char *listen_addr, int *ret_fd, char *bound,
                    size_t bound_size, struct nerr *e);
/* Stop accepting, let running requests finish, free. */
void api_server_stop(struct api_server *s);
