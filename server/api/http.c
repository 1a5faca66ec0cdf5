/* http.c — see http.h.
 *
 * We create and bind the listening socket ourselves (so "127.0.0.1:0" picks a
 * free port we can print) and hand it to libmicrohttpd, which serves it from
 * one epoll thread per core.  Each request gets a struct api_request.  For
 * paths under /v1 the token is checked as soon as the headers are in, before
 * any body byte is read; then the body is accumulated up to API_MAX_BODY and
 * routing runs on the epoll thread; quick handlers run there too, blocking
 * ones on a worker thread while the connection is suspended (see api.h).  The
 * handler leaves exactly one response in the request, queued here; the
 * completion callback writes the access-log line and frees the request.
 * Routes with a streaming body are routed with the headers instead and
 * get their body through body_stream.c, without API_MAX_BODY.
 *
 * The request is allocated by the URI log callback, which libmicrohttpd
 * calls with the raw request line before it percent-decodes it: the only
 * place to see a %00, which decoding turns into a NUL that silently cuts
 * the path (a PUT to /a%00b must not write /a, a DELETE of /v1/vms/a%00b
 * must not destroy VM a): such requests are refused.
 *
 * Against hostile clients (the guide's "Connections" and "Rate limiting"):
 * libmicrohttpd caps connections per client address
 * (max_connections_per_ip) and in all (below the open-file limit), and
 * closes connections idle for http_idle_timeout_secs; suspended connections
 * (a long exec) are exempt from that timeout and their timer restarts when
 * they resume. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "ws_session.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"
#include "wire.h"

/* File descriptors kept for everything that is not an HTTP connection: the
 * database, the agent socket of every running VM, QMP and serial logs,
 * worker pipes, libmicrohttpd's own epoll and wake-up descriptors. */
#define HTTP_FD_RESERVE 1024
/* Concurrent HTTP connections in all, whatever the open-file limit: each
 * costs libmicrohttpd a memory pool (32 KiB by default). */
#define HTTP_MAX_CONNECTIONS 4096

/* Copy s into out, replacing bytes that do not belong in a log line. */
static void log_safe(const char *s, char *out, size_t size)
{
    size_t i;

    for (i = 0; s && s[i] && i + 1 < size; i++)
        out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[i] = 0;
}

void api_forwarded_entry(const char *value, bool rightmost, const char **ret, size_t *ret_len)
{
    const char *start = value, *end;

    if (rightmost) {
        start = strrchr(value, ',');
        start = start ? start + 1 : value;
        end = start + strlen(start);
    } else {
        end = start + strcspn(start, ",");
    }
    while (start < end && (*start == ' ' || *start == '\t'))
        start++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *ret = start;
    *ret_len = (size_t)(end - start);
}

/* rq->client_ip, the access log's: the peer, or with trust_forwarded_for
 * the left-most X-Forwarded-For entry (the client the proxy saw). */
static void client_address(struct api_request *rq)
{
    const union MHD_ConnectionInfo *ci;
    const char *fwd, *entry;
    size_t n;

    if (rq->srv->cfg->trust_forwarded_for &&
        (fwd = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, "X-Forwarded-For"))) {
        char tmp[64];
        api_forwarded_entry(fwd, false, &entry, &n);
        snprintf(tmp, sizeof(tmp), "%.*s", (int)MIN(n, sizeof(tmp) - 1), entry);
        log_safe(tmp, rq->client_ip, sizeof(rq->client_ip));
        return;
    }
    ci = MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) {
        snprintf(rq->client_ip, sizeof(rq->client_ip), "-");
        return;
    }
    if (getnameinfo(ci->client_addr,
                    ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                            : sizeof(struct sockaddr_in),
                    rq->client_ip, sizeof(rq->client_ip), NULL, 0, NI_NUMERICHOST) != 0)
        snprintf(rq->client_ip, sizeof(rq->client_ip), "-");
}

/* The load slot of a user (workers_lock held); NULL when all are taken. */
static struct api_user_load *user_load(struct api_server *srv, const char *user_id, bool create)
{
    struct api_user_load *free_slot = NULL;

    for (size_t i = 0; i < API_MAX_WORKERS; i++) {
        struct api_user_load *l = &srv->loads[i];
        if (l->workers > 0 && strcmp(l->user_id, user_id) == 0)
            return l;
        if (l->workers == 0 && !free_slot)
            free_slot = l;
    }
    if (create && free_slot)
        snprintf(free_slot->user_id, sizeof(free_slot->user_id), "%s", user_id);
    return create ? free_slot : NULL;
}

int api_load_take(struct api_server *srv, const char *user_id)
{
    struct api_user_load *load;
    int r = 0;

    pthread_mutex_lock(&srv->workers_lock);
    load = srv->workers >= API_MAX_WORKERS ? NULL : user_load(srv, user_id, true);
    if (!load)
        r = -EBUSY;
    else if (load->workers >= API_MAX_WORKERS_PER_USER)
        r = -EDQUOT;
    if (r == 0) {
        srv->workers++;
        load->workers++;
    }
    pthread_mutex_unlock(&srv->workers_lock);
    return r;
}

void api_load_release(struct api_server *srv, const char *user_id)
{
    struct api_user_load *l;

    pthread_mutex_lock(&srv->workers_lock);
    l = user_load(srv, user_id, false);
    if (l)
        l->workers--;
    if (--srv->workers == 0)
        pthread_cond_broadcast(&srv->workers_done);
    pthread_mutex_unlock(&srv->workers_lock);
}

static void *worker_main(void *arg)
{
    struct api_request *rq = arg;
    struct api_server *srv = rq->srv;
    char user_id[DB_ID_LEN + 1];
    bool keep;

    snprintf(user_id, sizeof(user_id), "%s", rq->user.id);
    rq->route->fn(rq, rq->params);
    if (!rq->response)
        api_reply_error(rq, 500, "internal error: no reply");
    keep = rq->load_kept;
    /* from here on the request belongs to libmicrohttpd again: no rq access */
    MHD_resume_connection(rq->conn);
    if (!keep)
        api_load_release(srv, user_id);
    return NULL;
}

/* A worker slot for rq's user; false (and a 429/503 reply) if none. */
static bool take_load(struct api_request *rq)
{
    int r = api_load_take(rq->srv, rq->user.id);

    if (r == -EDQUOT) {
        metrics_refusal(METRICS_LIMIT_USER_REQUESTS);
        api_reply_error(rq, 429,
                        "you have %d long requests (exec, create, console, file transfers, "
                        "...) running; wait for one to finish",
                        API_MAX_WORKERS_PER_USER);
        return false;
    }
    if (r < 0) {
        metrics_refusal(METRICS_LIMIT_SERVER_REQUESTS);
        api_reply_error(rq, 503, "server busy: %d long requests already running",
                        API_MAX_WORKERS);
        return false;
    }
    return true;
}

/* Run a blocking route on its own thread with the connection suspended. */
static void run_in_worker(struct api_request *rq)
{
    struct api_server *srv = rq->srv;
    pthread_attr_t attr;
    pthread_t th;

    if (!take_load(rq))
        return;
    rq->suspended = true;
    MHD_suspend_connection(rq->conn);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, worker_main, rq) != 0) {
        rq->suspended = false;
        MHD_resume_connection(rq->conn);
        api_load_release(srv, rq->user.id);
        api_reply_error(rq, 503, "server busy: cannot start a worker thread");
    }
    pthread_attr_destroy(&attr);
}

static bool path_needs_token(const char *path)
{
    return strncmp(path, "/v1/", 4) == 0 || strcmp(path, "/v1") == 0;
}

/* Route a complete request (authenticated already when under /v1; routed
 * already if its route was found with the headers). */
static void dispatch(struct api_request *rq)
{
    char allow[64];
    bool path_known = false;

    if (!rq->route)
        rq->route =
            api_route_find(rq->method, rq->path, rq->params, &path_known, allow, sizeof(allow));
    if (!rq->route) {
        if (path_known) {
            api_reply_error(rq, 405, "method %s is not allowed on %s (allowed: %s)", rq->method,
                            rq->path, allow);
        } else {
            char safe[128];
            log_safe(rq->path, safe, sizeof(safe));
            api_reply_error(rq, 404, "no such endpoint: %s %s", rq->method, safe);
        }
        return;
    }
    if (rq->route->blocking)
        run_in_worker(rq);
    else
        rq->route->fn(rq, rq->params);
}

static enum MHD_Result queue_reply(struct api_request *rq)
{
    enum MHD_Result ok;

    if (!rq->response)
        api_reply_error(rq, 500, "internal error: no reply");
    if (!rq->response)
        return MHD_NO;
    ok = MHD_queue_response(rq->conn, rq->status, rq->response);
    MHD_destroy_response(rq->response);
    rq->response = NULL;
    return ok;
}

/* Refuse, at once, a chunked body that has grown past API_MAX_BODY.
 *
 * libmicrohttpd (0.9.75, and still 1.0) accepts a response only before the
 * body is read or after all of it: for a chunked upload, waiting for the end
 * means reading a body that may never end.  So we write a minimal 413 on the
 * socket ourselves and the caller returns MHD_NO, which closes the
 * connection.  This is safe because libmicrohttpd has written nothing for
 * this request but perhaps a complete "100 Continue" (which a final response
 * may follow), and nothing of an earlier one (it reads the next request on a
 * keep-alive connection only once the previous response is sent).  Best
 * effort: the socket is non-blocking and its send buffer empty, so the few
 * hundred bytes go out at once or the client just sees the connection close.
 * Plain HTTP only, as we never start the daemon with TLS. */
static void reply_413_and_close(struct api_request *rq)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    char body[256], out[512];
    size_t len;
    int n;

    rq->status = 413; /* for the access log */
    if (!ci)
        return;
    len = api_error_body(body, sizeof(body), API_BODY_TOO_LARGE_FMT, API_MAX_BODY);
    n = snprintf(out, sizeof(out),
                 "HTTP/1.1 413 Content Too Large\r\n"
                 "Connection: close\r\n"
                 "Content-Type: application/json\r\n"
                 "Content-Length: %zu\r\n"
                 "\r\n"
                 "%s",
                 len, body);
    if (n > 0 && (size_t)n < sizeof(out))
        (void)!send(ci->connect_fd, out, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* libmicrohttpd's URI log callback: the request begins, its line not yet
 * decoded (see the top of this file).  Returns the request's context. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct api_request *rq = calloc(1, sizeof(*rq));

    (void)cls, (void)conn;
    if (rq)
        rq->raw_nul = strstr(uri, "%00") != NULL;
    return rq;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct api_server *srv = cls;
    struct api_request *rq = *con_cls;

    if (!rq || !rq->path) {
        const char *cl;
        char allow[64];
        bool path_known;
        if (!rq)
            rq = calloc(1, sizeof(*rq));
        if (!rq)
            return MHD_NO;
        rq->srv = srv;
        rq->conn = conn;
        rq->start_ns = time_mono_ns();
        snprintf(rq->method, sizeof(rq->method), "%s", method);
        rq->path = strdup(url);
        buf_init(&rq->body, API_MAX_BODY);
        *con_cls = rq;
        if (!rq->path)
            return MHD_NO;
        client_address(rq);
        /* First call, headers only.  Everything under /v1 needs a valid
         * token, even to learn that a route is wrong; checking it now means
         * a client without one cannot make us read a body.  A reply queued
         * now makes libmicrohttpd skip the body (no 100 Continue is sent)
         * and close the connection after the reply. */
        if (path_needs_token(rq->path) && !api_authenticate(rq))
            return queue_reply(rq);
        if (rq->raw_nul) {
            api_reply_error(rq, 400,
                            "the URL contains %%00: a path or a query value cannot "
                            "hold a NUL byte");
            return queue_reply(rq);
        }
        rq->route =
            api_route_find(rq->method, rq->path, rq->params, &path_known, allow, sizeof(allow));
        if (rq->route && rq->route->streaming_body) {
            /* no body bound: the handler takes it as it comes */
            if (!take_load(rq) || !api_body_stream_start(rq))
                return queue_reply(rq);
            return MHD_YES;
        }
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > API_MAX_BODY) {
            api_reply_error(rq, 413, API_BODY_TOO_LARGE_FMT, API_MAX_BODY);
            return queue_reply(rq);
        }
        return MHD_YES;
    }
    if (rq->body_stream)
        return api_body_stream_feed(rq, upload_data, upload_data_size, queue_reply);
    if (rq->suspended) {
        /* resumed: the worker left its reply */
        rq->suspended = false;
        return queue_reply(rq);
    }
    if (rq->status)
        return MHD_YES; /* answered early: libmicrohttpd discards the body */
    if (*upload_data_size > 0) {
        /* Only a chunked body can pass the bound here: a Content-Length
         * above it was refused with the headers. */
        if (buf_append(&rq->body, upload_data, *upload_data_size) < 0) {
            reply_413_and_close(rq);
            return MHD_NO;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    dispatch(rq);
    if (rq->suspended)
        return MHD_YES;
    return queue_reply(rq);
}

void api_request_free(struct api_request *rq)
{
    if (!rq)
        return;
    if (rq->response)
        MHD_destroy_response(rq->response);
    for (size_t i = 0; i < API_MAX_PARAMS; i++)
        free(rq->params[i]);
    api_body_stream_free(rq->body_stream);
    buf_free(&rq->body);
    free(rq->path);
    free(rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct api_request *rq = *con_cls;
    char path[256];
    bool replied = true;

    if (!rq)
        return;
    *con_cls = NULL;
    /* a streaming request whose client left mid-body: its worker may be
     * writing the reply right now (status 0 in the log) */
    if (rq->body_stream)
        api_body_stream_gone(rq, &replied);
    api_ws_request_done(rq);
    if (rq->path) { /* else the request line was all that came */
        log_safe(rq->path, path, sizeof(path));
        log_info("access: %s %s %s %u user=%s %.3fms", rq->client_ip, rq->method, path,
                 replied ? rq->status : 0, rq->authed ? rq->user.name : "-",
                 (double)(time_mono_ns() - rq->start_ns) / 1e6);
    }
    if (rq->body_stream && !api_body_stream_unref(rq))
        return; /* the worker frees it */
    api_request_free(rq);
}

int api_listen_bind(const char *key, const char *listen_addr, int *ret_fd, char *bound,
                    size_t bound_size, struct nerr *e)
{
    char host[256], port[16];
    const char *colon;
    struct addrinfo hints = {0}, *ai = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char hbuf[NI_MAXHOST], pbuf[NI_MAXSERV];
    int fd = -1, one = 1, rc;

    if (listen_addr[0] == '[') {
        const char *end = strchr(listen_addr, ']');
        if (!end || end[1] != ':')
            return nerr_set(e, -EINVAL, "%s: cannot parse '%s' (expected [ADDR]:PORT)", key,
                            listen_addr);
        snprintf(host, sizeof(host), "%.*s", (int)(end - listen_addr - 1), listen_addr + 1);
        colon = end + 1;
    } else {
        colon = strrchr(listen_addr, ':');
        if (!colon)
            return nerr_set(e, -EINVAL, "%s: cannot parse '%s' (expected HOST:PORT)", key,
                            listen_addr);
        snprintf(host, sizeof(host), "%.*s", (int)(colon - listen_addr), listen_addr);
    }
    snprintf(port, sizeof(port), "%s", colon + 1);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (rc != 0)
        return nerr_set(e, -EINVAL, "%s: cannot resolve '%s': %s", key, listen_addr,
                        gai_strerror(rc));
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        rc = -errno;
        goto fail;
    }
    freeaddrinfo(ai);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
        getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof(hbuf), pbuf, sizeof(pbuf),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        close(fd);
        return nerr_set(e, -EIO, "%s: cannot read the bound address", key);
    }
    snprintf(bound, bound_size, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", hbuf, pbuf);
    *ret_fd = fd;
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return nerr_set(e, rc, "%s: cannot listen on %s: %s", key, listen_addr, strerror(-rc));
}

/* How many HTTP connections we can afford in all: below the open-file limit
 * (serve.c raised the soft limit to the hard one) with HTTP_FD_RESERVE left
 * for the rest, or half of a limit too small for that; at most
 * HTTP_MAX_CONNECTIONS. */
static unsigned connection_limit(unsigned long long *ret_nofile)
{
    struct rlimit rl;
    unsigned long long nofile = 1024, limit;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        nofile = rl.rlim_cur == RLIM_INFINITY ? ~0ULL : (unsigned long long)rl.rlim_cur;
    limit = nofile > 2 * HTTP_FD_RESERVE ? nofile - HTTP_FD_RESERVE : nofile / 2;
    *ret_nofile = nofile;
    return (unsigned)MIN(limit, (unsigned long long)HTTP_MAX_CONNECTIONS);
}

int api_server_start(struct engine *eng, const struct server_config *cfg,
                     struct api_server **ret, struct nerr *e)
{
    struct api_server *s = calloc(1, sizeof(*s));
    unsigned long long nofile;
    unsigned max_conns;
    long nthreads;
    int r;

    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->workers_lock, NULL);
    pthread_mutex_init(&s->ws_lock, NULL);
    pthread_cond_init(&s->ws_done, NULL);
    pthread_cond_init(&s->workers_done, NULL);
    s->eng = eng;
    s->cfg = cfg;
    s->listen_fd = -1;
    r = api_auth_init(s);
    if (r < 0) {
        nerr_set(e, r, "out of memory");
        goto fail;
    }
    r = api_listen_bind("listen", cfg->listen, &s->listen_fd, s->bound, sizeof(s->bound), e);
    if (r < 0)
        goto fail;
    nthreads = sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads < 1)
        nthreads = 1;
    max_conns = connection_limit(&nofile);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                                MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_ITC,
                            0, NULL, NULL, on_request, s,
                            MHD_OPTION_LISTEN_SOCKET, s->listen_fd,
                            MHD_OPTION_THREAD_POOL_SIZE, (unsigned)nthreads,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
                            MHD_OPTION_CONNECTION_LIMIT, max_conns,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                            (unsigned)cfg->max_connections_per_ip,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->http_idle_timeout_secs,
                            MHD_OPTION_END);
    if (!s->d) {
        r = nerr_set(e, -EIO, "cannot start the HTTP server on %s", s->bound);
        goto fail;
    }
    log_info("HTTP limits: %u connections in all (open-file limit %llu), %lld per client "
             "address, idle connections closed after %lld s",
             max_conns, nofile, cfg->max_connections_per_ip, cfg->http_idle_timeout_secs);
    *ret = s;
    return 0;
fail:
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    api_auth_free(s);
    free(s);
    return r;
}

const char *api_server_address(const struct api_server *s)
{
    return s->bound;
}

void api_server_stop(struct api_server *s)
{
    if (!s)
        return;
    if (s->d) {
        MHD_socket fd = MHD_quiesce_daemon(s->d);
        __atomic_store_n(&s->stopping, true, __ATOMIC_RELEASE);
        /* WebSocket sessions end first (close 1001); their sockets must be
         * closed before the daemon stops */
        api_ws_stop_all(s);
        /* suspended connections must be resumed before the daemon stops:
         * let running long requests (an exec, a create) finish first */
        pthread_mutex_lock(&s->workers_lock);
        while (s->workers > 0)
            pthread_cond_wait(&s->workers_done, &s->workers_lock);
        pthread_mutex_unlock(&s->workers_lock);
        MHD_stop_daemon(s->d);
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
    api_auth_free(s);
    free(s);
}
