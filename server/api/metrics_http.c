/* metrics_http.c — see metrics_http.h.
 *
 * A libmicrohttpd daemon of its own with one thread: a scrape is a cheap
 * read (the counters, one query over the VM rows, a stat of the golden
 * snapshot), a scraper asks every few seconds, and keeping it off the API's
 * daemon means a flood of API clients cannot hide the server's state from
 * its monitoring (nor a scraper take the API's connection slots).  A
 * request body is never kept. */
#include "metrics_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "prom_text.h"

/* Scrapers are few; anything beyond is not one. */
#define METRICS_HTTP_MAX_CONNECTIONS 32
#define METRICS_HTTP_IDLE_SECS       30

struct metrics_http {
    struct MHD_Daemon *d;
    struct engine *eng;
    const struct server_config *cfg;
    int listen_fd;
    char bound[128];
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             char *body, size_t len, const char *allow)
{
    struct MHD_Response *resp;
    enum MHD_Result ok;

    resp = MHD_create_response_from_buffer_with_free_callback(len, body, free);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    ok = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *allow,
                                  const char *msg)
{
    char *body = NULL;
    int n = asprintf(&body, "%s\n", msg);

    if (n < 0)
        return MHD_NO;
    return reply(conn, status, "text/plain; charset=utf-8", body, (size_t)n, allow);
}

/* The whole exposition: counters from metrics.c, states read now. */
static int scrape(struct metrics_http *m, char **ret, size_t *ret_len)
{
    struct engine_vm_states vs;
    struct metrics_scrape s = {0};
    struct buf b;
    int r;

    r = engine_vm_state_counts(m->eng, &vs);
    if (r < 0)
        return r;
    s.vms_creating = vs.creating;
    s.vms_restoring = vs.restoring;
    s.vms_running = vs.running;
    s.vms_dead = vs.dead;
    s.golden_ready = m->cfg->golden && engine_golden_ready(m->eng);
    buf_init(&b, 0); /* our own text, bounded by the series table */
    r = metrics_render(&b, &s);
    if (r >= 0) {
        *ret = buf_steal(&b, ret_len);
        r = *ret ? 0 : -ENOMEM;
    }
    buf_free(&b);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct metrics_http *m = cls;
    char *text = NULL;
    size_t len = 0;
    int r;

    (void)version, (void)upload_data;
    /* a wrong path or method is answered with the headers: libmicrohttpd
     * then skips any body and closes the connection after the reply */
    if (strcmp(url, "/metrics") != 0)
        return reply_text(conn, 404, NULL, "not found: this address serves only GET /metrics");
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply_text(conn, 405, "GET, HEAD", "method not allowed: use GET /metrics");
    /* a scrape is answered once the request is complete, which keeps the
     * connection open for the next one */
    if (!*con_cls) {
        *con_cls = m;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0; /* a body on a GET: ignored */
        return MHD_YES;
    }
    r = scrape(m, &text, &len);
    if (r < 0) {
        log_warn("metrics: cannot read the VM states: %s", strerror(-r));
        return reply_text(conn, 500, NULL, "cannot read the server's state; see its log");
    }
    return reply(conn, 200, PROM_TEXT_CONTENT_TYPE, text, len, NULL);
}

int metrics_http_start(struct engine *eng, const struct server_config *cfg, const char *listen_addr,
                       struct metrics_http **ret, struct nerr *e)
{
    struct metrics_http *m = calloc(1, sizeof(*m));
    int r;

    if (!m)
        return -ENOMEM;
    m->eng = eng;
    m->cfg = cfg;
    m->listen_fd = -1;
    r = api_listen_bind("metrics_listen", listen_addr, &m->listen_fd, m->bound, sizeof(m->bound),
                        e);
    if (r < 0)
        goto fail;
    m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC, 0, NULL,
                            NULL, on_request, m, MHD_OPTION_LISTEN_SOCKET, m->listen_fd,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_HTTP_MAX_CONNECTIONS,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)METRICS_HTTP_IDLE_SECS,
                            MHD_OPTION_END);
    if (!m->d) {
        r = nerr_set(e, -EIO, "metrics_listen: cannot start the HTTP server on %s", m->bound);
        goto fail;
    }
    *ret = m;
    return 0;
fail:
    if (m->listen_fd >= 0)
        close(m->listen_fd);
    free(m);
    return r;
}

const char *metrics_http_address(const struct metrics_http *m)
{
    return m->bound;
}

void metrics_http_stop(struct metrics_http *m)
{
    if (!m)
        return;
    if (m->d) {
        /* as in http.c: quiesced, the listening socket is handed back to
         * us instead of being closed by the daemon */
        MHD_socket fd = MHD_quiesce_daemon(m->d);
        MHD_stop_daemon(m->d);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
    free(m);
}
