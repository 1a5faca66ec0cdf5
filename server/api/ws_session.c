/* ws_session.c — see ws_session.h.
 *
 * Ownership: a session is made by the route handler with two references,
 * one for the request (dropped by api_ws_request_done when libmicrohttpd
 * completes the request) and one for the upgrade (dropped by the session
 * thread, or by api_ws_request_done when the upgrade never happened: the
 * client went away before the 101 was sent).  Its slot (ws_sessions and a
 * worker load) is released exactly once, when the session ends or is
 * abandoned.  api_ws_stop_all waits for ws_sessions to reach 0; the worker
 * loads are waited for by api_server_stop. */
#include "ws_session.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "macro.h"
#include "timeutil.h"
#include "wire.h"

static void session_free(struct api_ws_session *s)
{
    ws_free(s->ws);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    free(s->vm_name);
    free(s);
}

static void session_unref(struct api_ws_session *s)
{
    struct api_server *srv = s->srv;
    bool last;

    pthread_mutex_lock(&srv->ws_lock);
    last = --s->refs == 0;
    pthread_mutex_unlock(&srv->ws_lock);
    if (last)
        session_free(s);
}

/* The session is over (or never began): take it off the list, give its
 * slot back and drop the upgrade's reference.  The worker load goes last,
 * and nothing of srv is touched after it: once every load is back,
 * api_server_stop may free srv. */
static void session_finish(struct api_ws_session *s)
{
    struct api_server *srv = s->srv;
    char user_id[sizeof(s->user.id)];
    bool last;

    snprintf(user_id, sizeof(user_id), "%s", s->user.id);
    pthread_mutex_lock(&srv->ws_lock);
    for (struct api_ws_session **pp = &srv->ws_list; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    srv->ws_sessions--;
    pthread_cond_broadcast(&srv->ws_done);
    last = --s->refs == 0;
    pthread_mutex_unlock(&srv->ws_lock);
    if (last)
        session_free(s);
    api_load_release(srv, user_id);
}

/* ---- the transport: the upgraded socket, plus the stop eventfd ---- */

static ssize_t io_send(void *user, const void *buf, size_t len)
{
    struct api_ws_session *s = user;
    ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);

    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -EAGAIN : -errno;
    return n;
}

static ssize_t io_recv(void *user, void *buf, size_t len)
{
    struct api_ws_session *s = user;
    ssize_t n = recv(s->fd, buf, len, MSG_DONTWAIT);

    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -EAGAIN : -errno;
    return n;
}

/* Waiting also ends when the server stops (-ESHUTDOWN). */
static int io_wait(void *user, bool for_write, int timeout_ms)
{
    struct api_ws_session *s = user;
    struct pollfd p[2] = {{.fd = s->fd, .events = for_write ? POLLOUT : POLLIN},
                          {.fd = s->wake_fd, .events = POLLIN}};
    int n = poll(p, 2, timeout_ms);

    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    if (p[1].revents)
        return -ESHUTDOWN;
    return n > 0 ? 1 : 0;
}

/* ---- handshake ---- */

/* Whether a comma-separated header value holds token (case-insensitive). */
static bool header_has_token(const char *value, const char *token)
{
    size_t tl = strlen(token);

    while (value && *value) {
        while (*value == ' ' || *value == '\t' || *value == ',')
            value++;
        size_t n = strcspn(value, ",");
        size_t m = n;
        while (m > 0 && (value[m - 1] == ' ' || value[m - 1] == '\t'))
            m--;
        if (m == tl && strncasecmp(value, token, tl) == 0)
            return true;
        value += n;
    }
    return false;
}

static const char *header(struct api_request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

/* 0 and the accept key, or the reply already given (400, 426).  kind:
 * "exec" or "console" (only exec has a plain HTTP twin to point to). */
static int check_handshake(struct api_request *rq, const char *kind, char accept[WS_ACCEPT_LEN + 1])
{
    const char *upgrade = header(rq, "Upgrade"), *conn = header(rq, "Connection");
    const char *version = header(rq, "Sec-WebSocket-Version"),
               *key = header(rq, "Sec-WebSocket-Key");

    if (!upgrade || !header_has_token(upgrade, "websocket")) {
        api_reply_error(rq, 400, "this endpoint speaks WebSocket: send 'Upgrade: websocket'%s",
                        strcmp(kind, "exec") == 0
                            ? " (or POST /v1/vms/{name}/exec for a plain HTTP exec)"
                            : "");
        return -EINVAL;
    }
    if (!conn || !header_has_token(conn, "upgrade")) {
        api_reply_error(rq, 400, "WebSocket handshake: 'Connection: Upgrade' is missing");
        return -EINVAL;
    }
    if (!version || strcmp(version, "13") != 0) {
        api_reply_error_hdr(rq, 400, "Sec-WebSocket-Version", "13",
                            "WebSocket handshake: Sec-WebSocket-Version must be 13");
        return -EINVAL;
    }
    if (!key || ws_accept_key(key, accept) < 0) {
        api_reply_error(rq, 400,
                        "WebSocket handshake: Sec-WebSocket-Key is missing or not "
                        "the base64 of 16 bytes");
        return -EINVAL;
    }
    return 0;
}

/* ---- the session thread ---- */

static void *session_main(void *arg)
{
    struct api_ws_session *s = arg;
    int64_t t0 = time_mono_ns();
    enum metrics_ws_kind kind =
        strcmp(s->kind, "console") == 0 ? METRICS_WS_CONSOLE : METRICS_WS_EXEC;

    log_info("ws %s %s/%s from %s: open", s->kind, s->user.name, s->vm_name, s->client_ip);
    metrics_ws_session_begin(kind);
    s->body(s);
    metrics_ws_session_end(kind);
    log_info("ws %s %s/%s: closed (sent %u) after %.3f s", s->kind, s->user.name, s->vm_name,
             ws_sent_close_code(s->ws), (double)(time_mono_ns() - t0) / 1e9);
    MHD_upgrade_action(s->urh, MHD_UPGRADE_ACTION_CLOSE);
    session_finish(s);
    return NULL;
}

static void on_upgrade(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                       size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    struct api_ws_session *s = cls;
    struct api_server *srv = s->srv;
    struct ws_io io = {io_send, io_recv, io_wait, s};
    pthread_attr_t attr;
    pthread_t th;
    bool abandoned;
    int r;

    (void)conn;
    (void)con_cls;
    pthread_mutex_lock(&srv->ws_lock);
    abandoned = s->abandoned;
    s->claimed = !abandoned;
    pthread_mutex_unlock(&srv->ws_lock);
    if (abandoned) {
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        return;
    }
    s->fd = sock;
    s->urh = urh;
    r = ws_new(WS_SERVER, &io, API_WS_MAX_MESSAGE, &s->ws);
    if (r >= 0 && extra_in_size > 0)
        r = ws_push_input(s->ws, extra_in, extra_in_size);
    if (r >= 0) {
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        r = -pthread_create(&th, &attr, session_main, s);
        pthread_attr_destroy(&attr);
    }
    if (r < 0) {
        log_error("ws %s %s/%s: cannot start the session: %s", s->kind, s->user.name, s->vm_name,
                  strerror(-r));
        MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        session_finish(s);
    }
}

bool api_ws_vm_runs(struct api_request *rq, const char *vm_name, struct wire_vm_info *ret_info)
{
    struct nerr e = {0};
    int r = engine_vm_info(rq->srv->eng, &rq->user, vm_name, ret_info, &e);

    if (r < 0) {
        api_reply_engine_error(rq, r, &e);
        return false;
    }
    if (strcmp(ret_info->state, "running") != 0) {
        api_reply_error(rq, 409, "VM '%s' is not running (state: %s)", vm_name, ret_info->state);
        return false;
    }
    return true;
}

void api_ws_upgrade(struct api_request *rq, const char *kind, const char *vm_name,
                    api_ws_body_fn body, long long body_arg)
{
    struct api_server *srv = rq->srv;
    char accept[WS_ACCEPT_LEN + 1];
    struct api_ws_session *s;
    struct MHD_Response *resp;
    bool full, stopping;
    int r;

    if (check_handshake(rq, kind, accept) < 0)
        return;
    pthread_mutex_lock(&srv->ws_lock);
    stopping = srv->ws_stopping;
    full = srv->ws_sessions >= (unsigned)srv->cfg->max_ws_sessions;
    if (!full && !stopping)
        srv->ws_sessions++;
    pthread_mutex_unlock(&srv->ws_lock);
    if (stopping) {
        /* a keep-alive connection that outlived the quiesce: no new sessions */
        api_reply_error(rq, 503, "the server is shutting down");
        return;
    }
    if (full) {
        metrics_refusal(METRICS_LIMIT_WS_SESSIONS);
        api_reply_error(rq, 503,
                        "too many WebSocket sessions (max_ws_sessions = %lld); try "
                        "again later",
                        srv->cfg->max_ws_sessions);
        return;
    }
    r = api_load_take(srv, rq->user.id);
    if (r < 0) {
        pthread_mutex_lock(&srv->ws_lock);
        srv->ws_sessions--;
        pthread_mutex_unlock(&srv->ws_lock);
        metrics_refusal(r == -EDQUOT ? METRICS_LIMIT_USER_REQUESTS : METRICS_LIMIT_SERVER_REQUESTS);
        if (r == -EDQUOT)
            api_reply_error(rq, 429,
                            "you have %d long requests (exec, create, console, ...) "
                            "running; wait for one to finish",
                            API_MAX_WORKERS_PER_USER);
        else
            api_reply_error(rq, 503, "server busy: %d long requests already running",
                            API_MAX_WORKERS);
        return;
    }
    s = calloc(1, sizeof(*s));
    if (s) {
        s->srv = srv;
        s->user = rq->user;
        s->kind = kind;
        s->body = body;
        s->body_arg = body_arg;
        s->fd = -1;
        s->refs = 2;
        s->send_timeout_ms = API_WS_SEND_TIMEOUT_MS;
        s->vm_name = strdup(vm_name);
        s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        snprintf(s->client_ip, sizeof(s->client_ip), "%s", rq->client_ip);
    }
    resp =
        s && s->vm_name && s->wake_fd >= 0 ? MHD_create_response_for_upgrade(on_upgrade, s) : NULL;
    if (!resp || MHD_add_response_header(resp, "Upgrade", "websocket") != MHD_YES ||
        MHD_add_response_header(resp, "Sec-WebSocket-Accept", accept) != MHD_YES) {
        if (resp)
            MHD_destroy_response(resp);
        pthread_mutex_lock(&srv->ws_lock);
        srv->ws_sessions--;
        pthread_mutex_unlock(&srv->ws_lock);
        api_load_release(srv, rq->user.id);
        if (s) {
            s->refs = 1;
            session_unref(s);
        }
        api_reply_error(rq, 500, "out of memory");
        return;
    }
    pthread_mutex_lock(&srv->ws_lock);
    s->next = srv->ws_list;
    srv->ws_list = s;
    pthread_mutex_unlock(&srv->ws_lock);
    rq->ws_pending = s;
    rq->status = 101;
    rq->response = resp;
}

void api_ws_request_done(struct api_request *rq)
{
    struct api_ws_session *s = rq->ws_pending;
    struct api_server *srv;
    bool abandoned;

    if (!s)
        return;
    rq->ws_pending = NULL;
    srv = s->srv;
    pthread_mutex_lock(&srv->ws_lock);
    abandoned = !s->claimed;
    s->abandoned = abandoned;
    pthread_mutex_unlock(&srv->ws_lock);
    if (abandoned) {
        /* never upgraded: the upgrade's reference and slot go here; if
         * the 101 is still sent later, on_upgrade closes at once */
        session_finish(s);
    }
    session_unref(s);
}

bool api_ws_stopping(struct api_ws_session *s)
{
    bool r;

    pthread_mutex_lock(&s->srv->ws_lock);
    r = s->stopping;
    pthread_mutex_unlock(&s->srv->ws_lock);
    return r;
}

void api_ws_stop_all(struct api_server *srv)
{
    pthread_mutex_lock(&srv->ws_lock);
    srv->ws_stopping = true;
    for (struct api_ws_session *s = srv->ws_list; s; s = s->next) {
        uint64_t one = 1;
        s->stopping = true;
        (void)!write(s->wake_fd, &one, sizeof(one));
    }
    while (srv->ws_sessions > 0)
        pthread_cond_wait(&srv->ws_done, &srv->ws_lock);
    pthread_mutex_unlock(&srv->ws_lock);
}

int api_ws_send_json(struct api_ws_session *s, json_object *o)
{
    size_t len;
    const char *text;
    int r;

    if (!o)
        return -ENOMEM;
    text = wire_to_string(o, &len);
    r = ws_send(s->ws, WS_OP_TEXT, text, len, (int)MIN(s->send_timeout_ms, INT_MAX));
    json_object_put(o);
    return r;
}

void api_ws_finish(struct api_ws_session *s, uint16_t code, const char *reason)
{
    struct ws_message m;
    int64_t until = time_mono_ms() + API_WS_CLOSE_WAIT_MS;

    if (!ws_close_sent(s->ws) && ws_close(s->ws, code, reason, API_WS_CLOSE_WAIT_MS) < 0)
        return;
    /* the client's close (or anything else) until it comes or time runs out */
    for (;;) {
        int64_t left = until - time_mono_ms();
        if (left <= 0)
            break;
        int r = ws_receive_wait(s->ws, &m, (int)left);
        if (r < 0 || r == 0)
            break;
    }
    shutdown(s->fd, SHUT_RDWR);
}

void api_ws_fail(struct api_ws_session *s, uint16_t code, const char *fmt, ...)
{
    char msg[API_ERROR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_info("ws %s %s/%s: %s", s->kind, s->user.name, s->vm_name, msg);
    if (!ws_close_sent(s->ws))
        api_ws_send_json(s, wire_error_encode(msg));
    api_ws_finish(s, code, code == WS_CLOSE_INTERNAL ? "error" : "bad request");
}
