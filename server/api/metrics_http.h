/* metrics_http.h — the metrics listener: GET /metrics in the Prometheus
 * text format on its own address (metrics_listen), apart from the API.
 *
 * No authentication: the series say how busy the server is, never whose
 * VMs or what they run, and the default address is loopback.  An
 * administrator who binds it elsewhere puts a firewall in front. */
#pragma once

#include "config.h"
#include "engine.h"
#include "nerr.h"

struct metrics_http;

/* Bind listen_addr ("HOST:PORT"; port 0 = any free port) and serve. */
int metrics_http_start(struct engine *eng, const struct server_config *cfg, const char *listen_addr,
                       struct metrics_http **ret, struct nerr *e);
/* The address actually bound. */
const char *metrics_http_address(const struct metrics_http *m);
/* Stop serving and free (NULL is fine). */
void metrics_http_stop(struct metrics_http *m);
