/* rest_ops.c — see rest_ops.h.
 *
 * Three parts:
 *   - plain requests: a pool of idle http_clients (an http_client is not
 *     thread-safe, so each request takes one, or makes one, and gives it
 *     back); the pool's lock is held only to take and return, never across
 *     a request;
 *   - exec: GET /v1/vms/{name}/exec over WebSocket.  The connection and the
 *     request are made by the caller of exec_start (so "no such VM" and
 *     "not running" come back from it); then one thread per exec drives the
 *     socket, hands output to the sink and records the result.  Flow
 *     control: once REST_EXEC_WINDOW bytes are handed to on_output and not
 *     yet acknowledged, the thread stops reading the socket; TCP then holds
 *     back the server, whose output window holds back the command;
 *   - console: GET /v1/vms/{name}/console over WebSocket, one thread per
 *     attachment moving output into a bounded buffer (an eventfd says when
 *     it holds something) and typed input out.
 * A ws_client is used by its thread only (it is not thread-safe); other
 * threads talk to that thread through the object's lock and an eventfd.
 *
 * Locks: noidfs_rest.lock (the pool), rest_exec.lock, rest_console.lock;
 * all leaves, none held across I/O or a callback. */
#include "rest_ops.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "buf.h"
#include "http_client.h"
#include "macro.h"
#include "names.h"
#include "textutil.h"
#include "timeutil.h"
#include "wire.h"
#include "ws_client.h"

/* TCP connect to the server. */
#define REST_CONNECT_MS 3000
/* Whole requests: quick ones (lists, info, whoami), ones that move or
 * delete more (console.log, a checkpoint's deletion), and the ones that
 * take seconds by nature (create, destroy, checkpoint, restore). */
#define REST_TIMEOUT_MS      10000
#define REST_LONG_TIMEOUT_MS 120000
#define REST_SLOW_TIMEOUT_MS (10 * 60 * 1000)
/* Idle http_clients kept for reuse (each holds a keep-alive connection). */
#define REST_POOL_IDLE_MAX 16
/* A WebSocket's connect plus the upgrade (the server checks the VM first). */
#define REST_WS_CONNECT_MS 10000
/* A message from the server: exec output chunks and console frames are far
 * smaller. */
#define REST_WS_MAX_MESSAGE (4u * 1024 * 1024)
/* A silent WebSocket is pinged after REST_WS_PING_IDLE_MS; a server that
 * sends no byte within REST_WS_PONG_TIMEOUT_MS of the ping hangs. */
#define REST_WS_PING_IDLE_MS    5000
#define REST_WS_PONG_TIMEOUT_MS 10000
/* Sending the exec request, and waiting for the server's close reply. */
#define REST_WS_SEND_MS       10000
#define REST_WS_CLOSE_WAIT_MS 2000
/* Output handed to on_output and not yet acknowledged by exec_output_done;
 * past it the socket is not read. */
#define REST_EXEC_WINDOW (1u * 1024 * 1024)
/* The longest a running exec may leave the socket silent: the server's
 * exec timeout plus this margin (it ends every command by then); while the
 * timeout is unknown, REST_EXEC_IDLE_DEFAULT_MS. */
#define REST_EXEC_IDLE_MARGIN_MS  30000
#define REST_EXEC_IDLE_DEFAULT_MS (3600 * 1000)
/* exec_wait's status for a command ended by exec_kill: closing the
 * WebSocket makes the server kill it (SIGKILL, its process group). */
#define REST_EXEC_KILLED_STATUS (128 + SIGKILL)
/* Console output received and not yet read; past it the socket is not
 * read (the server then drops the oldest for us and says so). */
#define REST_CONSOLE_IN_MAX (256u * 1024)
/* Typed console bytes waiting to be sent. */
#define REST_CONSOLE_TX_MAX (256u * 1024)
/* One console input frame (docs/api.md: up to 64 KiB reach the guest whole). */
#define REST_CONSOLE_WRITE_MAX (64u * 1024)
/* Sending typed bytes: the server takes them while the guest reads them. */
#define REST_CONSOLE_SEND_MS 30000
/* What of a non-JSON error body goes into a message. */
#define REST_BODY_IN_MSG 200

enum { CH_STDOUT = 0x01, CH_STDERR = 0x02, CH_STDIN = 0x03 };

struct noidfs_rest {
    char *url;
    char *token;
    pthread_mutex_t lock;
    struct http_client *idle[REST_POOL_IDLE_MAX]; /* (lock) */
    size_t n_idle;                                /* (lock) */
    int64_t exec_idle_ms;                         /* (lock) 0 until known */
};

/* ---- pure helpers ---- */

int noidfs_rest_errno(long status, const char *msg)
{
    if (status >= 200 && status < 300)
        return 0;
    if (!msg)
        msg = "";
    switch (status) {
    case 400:
    case 413:
    case 414:
        return -EINVAL;
    case 401:
    case 403:
        return -EACCES;
    case 404:
        return strncmp(msg, "no such endpoint", 16) == 0 ? -EOPNOTSUPP : -ENOENT;
    case 409:
        if (strstr(msg, "not running"))
            return -ESRCH;
        if (strstr(msg, "exists") || strstr(msg, "taken"))
            return -EEXIST;
        return -EBUSY;
    case 429:
        return -EDQUOT;
    case 501:
        return -EOPNOTSUPP;
    case 503:
        return -EBUSY;
    case 504:
        return -ETIMEDOUT;
    case 507:
        return -ENOSPC;
    default:
        return -EIO;
    }
}

static bool parse_digits(const char **p, int n, int *ret)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *ret = v;
    return true;
}

int noidfs_rest_parse_time(const char *s, time_t *ret)
{
    struct tm tm = {0};
    int year, mon, day, hour, min, sec, off_h, off_m, off = 0;
    const char *p = s;

    if (!s)
        return -EINVAL;
    if (!parse_digits(&p, 4, &year) || *p++ != '-' || !parse_digits(&p, 2, &mon) || *p++ != '-' ||
        !parse_digits(&p, 2, &day) || (*p != 'T' && *p != 't' && *p != ' '))
        return -EINVAL;
    p++;
    if (!parse_digits(&p, 2, &hour) || *p++ != ':' || !parse_digits(&p, 2, &min) || *p++ != ':' ||
        !parse_digits(&p, 2, &sec))
        return -EINVAL;
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
        return -EINVAL;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        if (!parse_digits(&p, 2, &off_h) || *p++ != ':' || !parse_digits(&p, 2, &off_m) ||
            off_h > 23 || off_m > 59)
            return -EINVAL;
        off = sign * (off_h * 3600 + off_m * 60);
    } else {
        return -EINVAL;
    }
    if (*p)
        return -EINVAL;
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    *ret = timegm(&tm) - off;
    return 0;
}

/* ---- plain requests ---- */

static int pool_take(struct noidfs_rest *b, struct http_client **ret)
{
    struct http_client *c = NULL;
    int r;

    pthread_mutex_lock(&b->lock);
    if (b->n_idle > 0)
        c = b->idle[--b->n_idle];
    pthread_mutex_unlock(&b->lock);
    if (!c) {
        r = http_client_new(b->url, b->token, &c);
        if (r < 0)
            return r;
    }
    *ret = c;
    return 0;
}

static void pool_return(struct noidfs_rest *b, struct http_client *c)
{
    pthread_mutex_lock(&b->lock);
    if (b->n_idle < REST_POOL_IDLE_MAX) {
        b->idle[b->n_idle++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&b->lock);
    http_client_free(c);
}

/* The server's error sentence: the body's {"error"}, else the body itself
 * (sanitised and cut), else the status. */
static void error_sentence(long status, const uint8_t *body, size_t len, char *out, size_t size)
{
    json_object *o = NULL, *err;

    if (len > 0 && wire_parse_object((const char *)body, len, &o, NULL) == 0 &&
        json_object_object_get_ex(o, "error", &err) && json_object_is_type(err, json_type_string))
        snprintf(out, size, "%s", json_object_get_string(err));
    else if (len > 0)
        text_sanitize(body, MIN(len, (size_t)REST_BODY_IN_MSG), out, size);
    else
        snprintf(out, size, "HTTP %ld with no details", status);
    json_object_put(o);
}

/* The code and reason for a refused request (status not 2xx). */
static int http_failure(const char *method, const char *path, long status, const uint8_t *body,
                        size_t len, struct nerr *e)
{
    char msg[NERR_MSG_MAX];
    int r;

    error_sentence(status, body, len, msg, sizeof(msg));
    r = noidfs_rest_errno(status, msg);
    if (r == -EOPNOTSUPP && status == 404)
        return nerr_set(e, r, "the server has no %s %s (is it older than this client?): %s", method,
                        path, msg);
    return nerr_set(e, r, "%s (HTTP %ld)", msg, status);
}

/* One request: body (JSON text or NULL) to method path, waiting at most
 * timeout_ms.  0 and *ret (free with http_response_free) for a 2xx answer;
 * otherwise -errno and e: the mapped status, or -ENOTCONN when no HTTP
 * answer came. */
static int rest_call(struct noidfs_rest *b, const char *method, const char *path, json_object *body,
                     long timeout_ms, struct http_response *ret, struct nerr *e)
{
    struct http_client *c;
    struct http_response resp = {0};
    struct nerr inner = {0};
    const char *text = NULL;
    size_t text_len = 0;
    int r;

    r = pool_take(b, &c);
    if (r < 0)
        return nerr_set(e, r, "cannot make an HTTP client: %s", strerror(-r));
    if (body)
        text = wire_to_string(body, &text_len);
    http_client_set_timeouts(c, REST_CONNECT_MS, timeout_ms);
    r = http_client_request(c, method, path, text, text_len, &resp, &inner);
    if (r < 0) {
        /* the connection may be in any state: do not reuse it */
        http_client_free(c);
        if (r == -ENOMEM)
            return nerr_set(e, r, "out of memory");
        return nerr_set(e, -ENOTCONN, "%s %s: %s", method, path, nerr_msg(&inner));
    }
    pool_return(b, c);
    if (resp.status < 200 || resp.status >= 300) {
        r = http_failure(method, path, resp.status, resp.body.data, resp.body.len, e);
        http_response_free(&resp);
        return r;
    }
    *ret = resp;
    return 0;
}

/* rest_call whose answer must be JSON of type want (object or array):
 * *ret is the parsed value. */
static int rest_call_json(struct noidfs_rest *b, const char *method, const char *path,
                          json_object *body, long timeout_ms, json_type want, json_object **ret,
                          struct nerr *e)
{
    struct http_response resp;
    json_object *o = NULL;
    int r;

    r = rest_call(b, method, path, body, timeout_ms, &resp, e);
    if (r < 0)
        return r;
    r = wire_parse_value((const char *)resp.body.data, resp.body.len, &o, NULL);
    http_response_free(&resp);
    if (r < 0 || !json_object_is_type(o, want)) {
        json_object_put(o);
        return nerr_set(e, -EIO, "%s %s: the server's answer is not a JSON %s", method, path,
                        want == json_type_array ? "array" : "object");
    }
    *ret = o;
    return 0;
}

static int check_vm(const char *vm, struct nerr *e)
{
    return name_vm_check(vm, e);
}

/* Fill *ret from a VmInfo; -EIO when it is not one. */
static int vm_from_json(json_object *o, struct noidfs_vm *ret)
{
    struct wire_vm_info info = {0};
    int r = wire_vm_info_decode(o, &info, NULL);

    if (r < 0 || !info.name || name_vm_check(info.name, NULL) < 0) {
        wire_vm_info_free(&info);
        return -EIO;
    }
    *ret = (struct noidfs_vm){0};
    snprintf(ret->name, sizeof(ret->name), "%s", info.name);
    snprintf(ret->state, sizeof(ret->state), "%s", info.state ? info.state : "unknown");
    if (!info.created_at || noidfs_rest_parse_time(info.created_at, &ret->created) < 0)
        ret->created = 0;
    wire_vm_info_free(&info);
    return 0;
}

/* ---- the ops: VMs ---- */

static int rest_list_vms(void *bp, const char *user, struct noidfs_vm **ret, size_t *ret_n,
                         struct nerr *e)
{
    struct noidfs_rest *b = bp;
    json_object *arr = NULL;
    struct noidfs_vm *vms = NULL;
    size_t n, kept = 0;
    int r;

    r = rest_call_json(b, "GET", "/v1/vms", NULL, REST_TIMEOUT_MS, json_type_array, &arr, e);
    if (r < 0)
        return r;
    n = json_object_array_length(arr);
    if (n > 0) {
        vms = calloc(n, sizeof(*vms));
        if (!vms) {
            json_object_put(arr);
            return nerr_set(e, -ENOMEM, "out of memory");
        }
    }
    for (size_t i = 0; i < n; i++)
        /* a name that could not be a path component is never shown */
        if (vm_from_json(json_object_array_get_idx(arr, i), &vms[kept]) == 0)
            kept++;
    json_object_put(arr);
    if (kept == 0) {
        free(vms);
        vms = NULL;
    }
    *ret = vms;
    *ret_n = kept;
    return 0;
}

static int rest_vm_info(void *bp, const char *user, const char *vm, struct noidfs_vm *ret,
                        char **ret_json, struct nerr *e)
{
    struct noidfs_rest *b = bp;
    _cleanup_free_ char *path = NULL;
    struct http_response resp;
    json_object *o = NULL;
    struct noidfs_vm info;
    size_t len;
    int r;

    r = check_vm(vm, e);
    if (r < 0)
        return r;
    if (asprintf(&path, "/v1/vms/%s", vm) < 0) {
        path = NULL;
        return -ENOMEM;
    }
    r = rest_call(b, "GET", path, NULL, REST_TIMEOUT_MS, &resp, e);
    if (r < 0)
        return r;
    r = wire_parse_object((const char *)resp.body.data, resp.body.len, &o, NULL);
    if (r >= 0)
        r = vm_from_json(o, &info);
    json_object_put(o);
    if (r < 0) {
        http_response_free(&resp);
        return nerr_set(e, -EIO, "GET %s: the server's answer is not a VM", path);
    }
    if (ret)
        *ret = info;
    if (ret_json) {
        /* the body as the server sent it, without trailing whitespace */
        len = resp.body.len;
        while (len > 0 && (resp.body.data[len - 1] == '\n' || resp.body.data[len - 1] == '\r' ||
                           resp.body.data[len - 1] == ' '))
            len--;
        resp.body.data[len] = '\0';
        *ret_json = buf_steal(&resp.body, NULL);
        if (!*ret_json)
            return nerr_set(e, -ENOMEM, "out of memory");
    }
    http_response_free(&resp);
    return 0;
}

static int rest_vm_create(void *bp, const char *user, const char *vm, struct nerr *e)
{
    struct noidfs_rest *b = bp;
    struct http_response resp;
    json_object *body;
    int r;

    r = check_vm(vm, e);
    if (r < 0)
        return r;
    body = json_object_new_object();
    if (!body || json_object_object_add(body, "name", json_object_new_string(vm)) < 0) {
        json_object_put(body);
        return -ENOMEM;
    }
    r = rest_call(b, "POST", "/v1/vms", body, REST_SLOW_TIMEOUT_MS, &resp, e);
    json_object_put(body);
    if (r < 0)
        return r;
    http_response_free(&resp);
    return 0;
}

/* A request whose answer carries nothing we need. */
static int rest_simple(struct noidfs_rest *b, const char *method, const char *path,
                       json_object *body, long timeout_ms, struct nerr *e)
{
    struct http_response resp;
    int r = rest_call(b, method, path, body, timeout_ms, &resp, e);

    json_object_put(body);
    if (r < 0)
        return r;
    http_response_free(&resp);
    return 0;
}

static int rest_vm_destroy(void *bp, const char *user, const char *vm, struct nerr *e)
{
    _cleanup_free_ char *path = NULL;
    int r;

    r = check_vm(vm, e);
    if (r < 0)
        return r;
    if (asprintf(&path, "/v1/vms/%s", vm) < 0) {
        path = NULL;
        return -ENOMEM;
    }
    return rest_simple(bp, "DELETE", path, NULL, REST_SLOW_TIMEOUT_MS, e);
}

static int rest_console_log(void *bp, const char *user, const char *vm, char **ret, size_t *ret_len,
                            struct nerr *e)
{
    _cleanup_free_ char *path = NULL;
    struct http_response resp;
    int r;

    r = check_vm(vm, e);
    if (r < 0)
        return r;
    if (asprintf(&path, "/v1/vms/%s/console.log", vm) < 0) {
        path = NULL;
        return -ENOMEM;
    }
    r = rest_call(bp, "GET", path, NULL, REST_LONG_TIMEOUT_MS, &resp, e);
    if (r < 0)
        return r;
    *ret = buf_steal(&resp.body, ret_len); /* a string even when empty */
    http_response_free(&resp);
    return *ret ? 0 : -ENOMEM;
}

/* ---- the ops: checkpoints ---- */

static int rest_checkpoint_list(void *bp, const char *user, const char *vm,
                                struct noidfs_checkpoint **ret, size_t *ret_n, struct nerr *e)
{
    _cleanup_free_ char *path = NULL;
    struct noidfs_checkpoint *list = NULL;
    json_object *arr = NULL;
    size_t n, kept = 0;
    int r;

    r = check_vm(vm, e);
    if (r < 0)
        return r;
    if (asprintf(&path, "/v1/vms/%s/checkpoints", vm) < 0) {
        path = NULL;
        return -ENOMEM;
    }
    r = rest_call_json(bp, "GET", path, NULL, REST_TIMEOUT_MS, json_type_array, &arr, e);
    if (r < 0)
        return r;
    n = json_object_array_length(arr);
    if (n > 0) {
        list = calloc(n, sizeof(*list));
        if (!list) {
            json_object_put(arr);
            return nerr_set(e, -ENOMEM, "out of memory");
        }
    }
    for (size_t i = 0; i < n; i++) {
        json_object *o = json_object_array_get_idx(arr, i);
        struct wire_checkpoint cp = {0};
        struct noidfs_checkpoint *c = &list[kept];
        const char *text;

        /* an id that is not one is never shown (it becomes a path) */
        if (wire_checkpoint_decode(o, &cp, NULL) < 0 || !name_is_checkpoint_id(cp.id)) {
            wire_checkpoint_free(&cp);
            continue;
        }
        snprintf(c->id, sizeof(c->id), "%s", cp.id);
        if (cp.label && strlen(cp.label) <= LABEL_MAX)
            snprintf(c->label, sizeof(c->label), "%s", cp.label);
        if (noidfs_rest_parse_time(cp.created_at, &c->created) < 0)
            c->created = 0;
        text = wire_to_string(o, NULL);
        c->json = text ? strdup(text) : NULL;
        wire_checkpoint_free(&cp);
        if (!c->json) {
            json_object_put(arr);
            noidfs_checkpoints_free(list, kept);
            return nerr_set(e, -ENOMEM, "out of memory");
        }
        kept++;
    }
    json_object_put(arr);
    if (kept == 0) {
        free(list);
        list = NULL;
    }
    *ret = list;
    *ret_n = kept;
    return 0;
}

static int rest_checkpoint_create(void *bp, const char *user, const char *vm, const char *label,
                                  struct nerr *e)
{
    _cleanup_free_ char *path = NULL;
    json_object *body;
    int r;

    r = check_vm(vm, e);
    if (r < 0)
        return r;
    r = name_label_check(label, strlen(label), e);
    if (r < 0)
        return r;
    if (asprintf(&path, "/v1/vms/%s/checkpoints", vm) < 0) {
        path = NULL;
        return -ENOMEM;
    }
    body = json_object_new_object();
    if (!body || json_object_object_add(body, "label", json_object_new_string(label)) < 0) {
        json_object_put(body);
        return -ENOMEM;
    }
    return rest_simple(bp, "POST", path, body, REST_SLOW_TIMEOUT_MS, e);
}

static int rest_checkpoint_delete(void *bp, const char *user, const char *vm, const char *id,
                                  struct nerr *e)
{
    _cleanup_free_ char *path = NULL;
    int r;

    r = check_vm(vm, e);
    if (r < 0)
        return r;
    r = name_checkpoint_prefix_check(id, e);
    if (r < 0)
        return r;
    if (asprintf(&path, "/v1/vms/%s/checkpoints/%s", vm, id) < 0) {
        path = NULL;
        return -ENOMEM;
    }
    return rest_simple(bp, "DELETE", path, NULL, REST_LONG_TIMEOUT_MS, e);
}

static int rest_restore(void *bp, const char *user, const char *vm, const char *checkpoint_id,
                        const char *new_name, struct nerr *e)
{
    _cleanup_free_ char *path = NULL;
    json_object *body;
    int r;

    r = check_vm(vm, e);
    if (r < 0)
        return r;
    r = name_checkpoint_prefix_check(checkpoint_id, e);
    if (r < 0)
        return r;
    if (new_name) {
        r = check_vm(new_name, e);
        if (r < 0)
            return r;
    }
    if (asprintf(&path, "/v1/vms/%s/restore", vm) < 0) {
        path = NULL;
        return -ENOMEM;
    }
    body = json_object_new_object();
    if (!body ||
        json_object_object_add(body, "checkpoint_id", json_object_new_string(checkpoint_id)) < 0 ||
        (new_name &&
         json_object_object_add(body, "new_name", json_object_new_string(new_name)) < 0)) {
        json_object_put(body);
        return -ENOMEM;
    }
    return rest_simple(bp, "POST", path, body, REST_SLOW_TIMEOUT_MS, e);
}

/* ---- WebSockets ---- */

/* Open the WebSocket at path.  A refused upgrade is mapped as a refused
 * request is; no HTTP answer at all is -ENOTCONN. */
static int ws_open(struct noidfs_rest *b, const char *path, struct ws_client **ret, struct nerr *e)
{
    struct ws_refusal refusal = {0};
    struct nerr inner = {0};
    int r;

    r = ws_client_connect(b->url, b->token, path, REST_WS_MAX_MESSAGE, REST_WS_CONNECT_MS, ret,
                          &refusal, &inner);
    if (r == 0)
        goto out;
    if (r == -EPROTO && refusal.status != 0 && refusal.status != 101)
        r = http_failure("GET", path, refusal.status, refusal.body.data, refusal.body.len, e);
    else if (r == -EPROTO || r == -EBADMSG)
        r = nerr_set(e, -EIO, "GET %s: %s", path, nerr_msg(&inner));
    else if (r == -ENOMEM || r == -EINVAL)
        r = nerr_set(e, r, "GET %s: %s", path, nerr_msg(&inner));
    else
        r = nerr_set(e, -ENOTCONN, "GET %s: %s", path, nerr_msg(&inner));
out:
    ws_refusal_free(&refusal);
    return r;
}

static void efd_signal(int fd)
{
    uint64_t one = 1;

    (void)!write(fd, &one, sizeof(one));
}

static void efd_drain(int fd)
{
    uint64_t v;

    (void)!read(fd, &v, sizeof(v));
}

static int left_ms(int64_t deadline)
{
    int64_t left = deadline - time_mono_ms();

    return left > 0 ? (int)MIN(left, (int64_t)INT_MAX) : 0;
}

/* Close our side and wait a moment for the server's close, dropping what
 * arrives meanwhile. */
static void ws_close_politely(struct ws *ws, const char *reason)
{
    int64_t deadline = time_mono_ms() + REST_WS_CLOSE_WAIT_MS;
    struct ws_message m;

    if (!ws_close_sent(ws) && ws_close(ws, WS_CLOSE_NORMAL, reason, REST_WS_CLOSE_WAIT_MS) < 0)
        return;
    while (left_ms(deadline) > 0)
        if (ws_receive_wait(ws, &m, left_ms(deadline)) <= 0)
            return;
}

static int cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    int r;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    r = -pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
    return r;
}

/* ---- exec ---- */

struct noidfs_exec {
    struct ws_client *wc; /* the thread's, once it runs */
    struct noidfs_exec_sink sink;
    int64_t idle_ms;
    int wake_fd; /* eventfd: kill, or the window reopened */
    pthread_t thread;
    bool have_thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* done */
    size_t unacked;      /* (lock) handed to on_output, not acknowledged */
    bool stalled;        /* (lock) the thread waits for acknowledgements */
    bool kill;           /* (lock) */
    bool done;           /* (lock) the outcome is known */
    int end_r;           /* (lock) 1 ended with status, < 0 failed */
    int status;          /* (lock) */
    struct nerr err;     /* (lock) */
};

/* The server's exec timeout tells how long a command may stay silent. */
static int64_t exec_idle_ms(struct noidfs_rest *b)
{
    struct wire_capabilities caps = {0};
    json_object *o = NULL;
    int64_t ms;

    pthread_mutex_lock(&b->lock);
    ms = b->exec_idle_ms;
    pthread_mutex_unlock(&b->lock);
    if (ms > 0)
        return ms;
    if (rest_call_json(b, "GET", "/v1/capabilities", NULL, REST_TIMEOUT_MS, json_type_object, &o,
                       NULL) < 0 ||
        wire_capabilities_decode(o, &caps, NULL) < 0 || caps.exec_timeout_secs <= 0) {
        json_object_put(o);
        return REST_EXEC_IDLE_DEFAULT_MS;
    }
    json_object_put(o);
    ms = (int64_t)MIN(caps.exec_timeout_secs, 7LL * 24 * 3600) * 1000 + REST_EXEC_IDLE_MARGIN_MS;
    pthread_mutex_lock(&b->lock);
    b->exec_idle_ms = ms;
    pthread_mutex_unlock(&b->lock);
    return ms;
}

/* Record the outcome (the first one wins) and wake exec_wait. */
static void exec_finish(struct noidfs_exec *x, int r, int status, const struct nerr *err)
{
    pthread_mutex_lock(&x->lock);
    if (!x->done) {
        x->done = true;
        x->end_r = r;
        x->status = status;
        if (err)
            x->err = *err;
        pthread_cond_broadcast(&x->cond);
    }
    pthread_mutex_unlock(&x->lock);
}

/* The result message: 1 and *status, or -EIO and err for anything else. */
static int exec_parse_result(const struct ws_message *m, int *status, char *error, size_t size)
{
    struct wire_exec_result res = {0};
    json_object *o = NULL, *v;
    int r = 0;

    if (wire_parse_object((const char *)m->data, m->len, &o, NULL) < 0)
        return 0; /* not ours to understand (a newer server) */
    if (json_object_object_get_ex(o, "error", &v)) {
        snprintf(error, size, "%s", json_object_get_string(v));
        r = -EIO;
    } else if (json_object_object_get_ex(o, "exit_code", &v) &&
               wire_exec_result_decode(o, &res, NULL) == 0) {
        *status = res.timed_out ? 124 : (int)(res.exit_code & 0xff);
        r = 1;
    }
    wire_exec_result_free(&res);
    json_object_put(o);
    return r;
}

/* The connection ended (ws_receive's r < 0) before the result: why. */
static void exec_lost(struct noidfs_exec *x, struct ws *ws, int r, const char *error)
{
    struct nerr e = {0};
    const char *reason = "";
    uint16_t code;

    switch (r) {
    case -ECONNRESET:
        code = ws_peer_close(ws, &reason);
        if (code == WS_CLOSE_GOING_AWAY)
            nerr_set(&e, -ENOTCONN, "the server went away: %s",
                     error[0] ? error : (*reason ? reason : "no reason given"));
        else if (error[0])
            nerr_set(&e, strstr(error, "not running") ? -ESRCH : -EIO, "%s", error);
        else
            nerr_set(&e, -EIO,
                     "the server ended the session before the command finished (close code "
                     "%u%s%s)",
                     code, *reason ? ": " : "", reason);
        break;
    case -EPROTO:
        nerr_set(&e, -EIO, "the server broke the WebSocket protocol (we closed with %u)",
                 ws_sent_close_code(ws));
        break;
    default:
        nerr_set(&e, -ENOTCONN, "the connection to the server was lost%s%s: %s",
                 error[0] ? " after: " : "", error, strerror(-r));
        break;
    }
    exec_finish(x, e.code, 0, &e);
}

/* Whether a server that sends nothing is still there: after
 * REST_WS_PING_IDLE_MS of silence we ping; the server's receiver answers at
 * once, so when no byte at all arrives within REST_WS_PONG_TIMEOUT_MS it is
 * hung (a stopped one closes the socket, which ws_receive reports). */
struct liveness {
    int64_t ping_due;      /* when to ping, while pong_deadline is 0 */
    int64_t pong_deadline; /* 0 when no ping is unanswered */
};

static void liveness_alive(struct liveness *l)
{
    l->ping_due = time_mono_ms() + REST_WS_PING_IDLE_MS;
    l->pong_deadline = 0;
}

static int64_t liveness_next(const struct liveness *l)
{
    return l->pong_deadline ? l->pong_deadline : l->ping_due;
}

/* Ping when due; -ETIMEDOUT when the last ping went unanswered. */
static int liveness_check(struct liveness *l, struct ws *ws)
{
    int64_t now = time_mono_ms();

    if (l->pong_deadline)
        return now >= l->pong_deadline ? -ETIMEDOUT : 0;
    if (now < l->ping_due)
        return 0;
    l->pong_deadline = now + REST_WS_PONG_TIMEOUT_MS;
    /* a failed send is seen by the next receive */
    (void)ws_send(ws, WS_OP_PING, "", 0, REST_WS_SEND_MS);
    return 0;
}

static void exec_fail(struct noidfs_exec *x, int code, const char *fmt, ...) _printf_(3, 4);

static void exec_fail(struct noidfs_exec *x, int code, const char *fmt, ...)
{
    struct nerr e = {.code = code};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof(e.msg), fmt, ap);
    va_end(ap);
    exec_finish(x, code, 0, &e);
}

static void *exec_main(void *arg)
{
    struct noidfs_exec *x = arg;
    struct ws *ws = ws_client_ws(x->wc);
    int wsfd = ws_client_fd(x->wc);
    int64_t idle_deadline = time_mono_ms() + x->idle_ms;
    char error[NERR_MSG_MAX] = "";
    struct liveness live;
    int status = 0;

    liveness_alive(&live);
    for (;;) {
        struct ws_message m;
        bool kill, stalled;
        int r;

        pthread_mutex_lock(&x->lock);
        kill = x->kill;
        stalled = x->stalled = x->unacked >= REST_EXEC_WINDOW;
        pthread_mutex_unlock(&x->lock);
        if (kill) {
            /* the server kills the command when the socket closes */
            ws_close_politely(ws, "killed");
            exec_finish(x, 1, REST_EXEC_KILLED_STATUS, NULL);
            break;
        }
        if (stalled) {
            /* time spent waiting for the reader is not the server's */
            idle_deadline = time_mono_ms() + x->idle_ms;
            liveness_alive(&live);
        } else {
            r = ws_receive(ws, &m);
            if (r < 0) {
                exec_lost(x, ws, r, error);
                break;
            }
            if (r > 0) {
                idle_deadline = time_mono_ms() + x->idle_ms;
                if (m.opcode == WS_OP_BINARY && m.len > 1 &&
                    (m.data[0] == CH_STDOUT || m.data[0] == CH_STDERR)) {
                    /* counted first: on_output may acknowledge at once */
                    pthread_mutex_lock(&x->lock);
                    x->unacked += m.len - 1;
                    pthread_mutex_unlock(&x->lock);
                    x->sink.on_output(x->sink.user, m.data[0] == CH_STDERR, m.data + 1, m.len - 1);
                } else if (m.opcode == WS_OP_TEXT &&
                           exec_parse_result(&m, &status, error, sizeof(error)) > 0) {
                    /* all output came before the result */
                    exec_finish(x, 1, status, NULL);
                    ws_close_politely(ws, "");
                    break;
                }
                continue;
            }
            if (liveness_check(&live, ws) < 0) {
                exec_fail(x, -ETIMEDOUT, "the server does not answer (no reply to a ping in %d s)",
                          REST_WS_PONG_TIMEOUT_MS / 1000);
                break;
            }
            if (time_mono_ms() >= idle_deadline) {
                exec_fail(x, -ETIMEDOUT,
                          "the server sent nothing for %lld s, past its exec timeout",
                          (long long)(x->idle_ms / 1000));
                break;
            }
        }

        struct pollfd p[2] = {{.fd = x->wake_fd, .events = POLLIN},
                              {.fd = stalled ? -1 : wsfd, .events = POLLIN}};
        r = poll(p, 2, stalled ? -1 : left_ms(MIN(idle_deadline, liveness_next(&live))));
        if (r < 0 && errno != EINTR) {
            exec_fail(x, -errno, "poll failed: %s", strerror(errno));
            break;
        }
        if (r > 0 && p[0].revents)
            efd_drain(x->wake_fd);
        if (r > 0 && p[1].revents)
            liveness_alive(&live); /* any byte (a pong too) shows it is there */
    }
    return NULL;
}

static void exec_destroy(struct noidfs_exec *x)
{
    ws_client_free(x->wc);
    if (x->wake_fd >= 0)
        close(x->wake_fd);
    pthread_cond_destroy(&x->cond);
    pthread_mutex_destroy(&x->lock);
    free(x);
}

static int rest_exec_start(void *bp, const char *user, const char *vm, const char *command_line,
                           const struct noidfs_exec_sink *sink, struct noidfs_exec **ret,
                           struct nerr *e)
{
    struct noidfs_rest *b = bp;
    _cleanup_free_ char *path = NULL;
    const char *argv[] = {"/bin/sh", "-c", command_line};
    struct wire_exec_req req = {
        .command = (char **)argv,
        .ncommand = ARRAY_SIZE(argv),
        .has_stdin_open = true,
        .stdin_open = false,
    };
    struct noidfs_exec *x;
    json_object *o;
    const char *text;
    size_t len;
    int r;

    r = check_vm(vm, e);
    if (r < 0)
        return r;
    if (asprintf(&path, "/v1/vms/%s/exec", vm) < 0) {
        path = NULL;
        return -ENOMEM;
    }
    x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    x->wake_fd = -1;
    x->sink = *sink;
    pthread_mutex_init(&x->lock, NULL);
    r = cond_init_mono(&x->cond);
    if (r < 0) {
        pthread_mutex_destroy(&x->lock);
        free(x);
        return r;
    }
    x->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (x->wake_fd < 0) {
        r = nerr_set(e, -errno, "eventfd: %m");
        goto fail;
    }
    r = ws_open(b, path, &x->wc, e);
    if (r < 0)
        goto fail;
    x->idle_ms = exec_idle_ms(b);
    o = wire_exec_req_encode(&req);
    text = o ? wire_to_string(o, &len) : NULL;
    r = text ? ws_send(ws_client_ws(x->wc), WS_OP_TEXT, text, len, REST_WS_SEND_MS) : -ENOMEM;
    json_object_put(o);
    if (r < 0) {
        r = nerr_set(e, r == -ENOMEM ? r : -ENOTCONN, "cannot send the exec request: %s",
                     strerror(-r));
        goto fail;
    }
    r = -pthread_create(&x->thread, NULL, exec_main, x);
    if (r < 0) {
        nerr_set(e, r, "cannot start the exec's thread: %s", strerror(-r));
        goto fail;
    }
    x->have_thread = true;
    *ret = x;
    return 0;
fail:
    exec_destroy(x);
    return r;
}

static void rest_exec_output_done(struct noidfs_exec *x, size_t n)
{
    bool wake;

    pthread_mutex_lock(&x->lock);
    x->unacked -= MIN(n, x->unacked);
    wake = x->stalled && x->unacked < REST_EXEC_WINDOW;
    if (wake)
        x->stalled = false;
    pthread_mutex_unlock(&x->lock);
    if (wake)
        efd_signal(x->wake_fd);
}

static int rest_exec_wait(struct noidfs_exec *x, int timeout_ms, int *ret_status, struct nerr *e)
{
    struct timespec until = time_mono_timespec(time_mono_ms() + MAX(timeout_ms, 0));
    int r = 0;

    pthread_mutex_lock(&x->lock);
    while (!x->done) {
        if (timeout_ms < 0)
            pthread_cond_wait(&x->cond, &x->lock);
        else if (pthread_cond_clockwait(&x->cond, &x->lock, CLOCK_MONOTONIC, &until) == ETIMEDOUT)
            break;
    }
    if (x->done) {
        r = x->end_r;
        if (r > 0 && ret_status)
            *ret_status = x->status;
        else if (r < 0)
            nerr_set(e, r, "%s", nerr_msg(&x->err));
    }
    pthread_mutex_unlock(&x->lock);
    return r;
}

static void rest_exec_kill(struct noidfs_exec *x)
{
    pthread_mutex_lock(&x->lock);
    x->kill = true;
    pthread_mutex_unlock(&x->lock);
    efd_signal(x->wake_fd);
}

static void rest_exec_free(struct noidfs_exec *x)
{
    if (!x)
        return;
    if (x->have_thread) {
        rest_exec_kill(x);
        pthread_join(x->thread, NULL);
    }
    exec_destroy(x);
}

/* ---- console ---- */

/* One typed write, sent as one frame. */
struct console_tx {
    struct console_tx *next;
    size_t len; /* frame bytes: the channel byte and the data */
    uint8_t frame[];
};

struct noidfs_console {
    struct ws_client *wc; /* the thread's */
    int ready_fd;         /* eventfd: output or the end waits (console_fd) */
    int wake_fd;          /* eventfd: input queued, room to read, detach */
    pthread_t thread;
    bool have_thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;                  /* room in the tx queue, the end */
    struct buf in;                        /* (lock) output not read yet */
    struct console_tx *tx_head, *tx_tail; /* (lock) */
    size_t tx_bytes;                      /* (lock) */
    bool stalled;                         /* (lock) in is full: the socket is not read */
    bool ended;                           /* (lock) the attachment is over */
    bool detach;                          /* (lock) */
};

/* The attachment is over: readers get -EPIPE once they read what is left. */
static void console_end(struct noidfs_console *c)
{
    pthread_mutex_lock(&c->lock);
    c->ended = true;
    efd_signal(c->ready_fd);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void *console_main(void *arg)
{
    struct noidfs_console *c = arg;
    struct ws *ws = ws_client_ws(c->wc);
    int wsfd = ws_client_fd(c->wc);

    for (;;) {
        struct console_tx *tx;
        struct ws_message m;
        bool stalled, detach;
        int r;

        pthread_mutex_lock(&c->lock);
        detach = c->detach;
        tx = c->tx_head;
        if (tx && !detach) {
            c->tx_head = tx->next;
            if (!c->tx_head)
                c->tx_tail = NULL;
            c->tx_bytes -= tx->len - 1;
            pthread_cond_broadcast(&c->cond);
        }
        stalled = c->stalled = c->in.len >= REST_CONSOLE_IN_MAX;
        pthread_mutex_unlock(&c->lock);
        if (detach) {
            ws_close_politely(ws, "detached");
            break;
        }
        if (tx) {
            r = ws_send(ws, WS_OP_BINARY, tx->frame, tx->len, REST_CONSOLE_SEND_MS);
            free(tx);
            if (r < 0)
                break;
            continue;
        }
        if (!stalled) {
            r = ws_receive(ws, &m);
            if (r > 0) {
                /* text frames ({"skipped":N}) and other channels: nothing to do */
                if (m.opcode == WS_OP_BINARY && m.len > 1 && m.data[0] == CH_STDOUT) {
                    pthread_mutex_lock(&c->lock);
                    r = buf_append(&c->in, m.data + 1, m.len - 1);
                    efd_signal(c->ready_fd);
                    pthread_mutex_unlock(&c->lock);
                    if (r < 0)
                        break;
                }
                continue;
            }
            if (r < 0)
                break; /* closed (the VM went away, idle, shutdown) or lost */
        }

        struct pollfd p[2] = {{.fd = c->wake_fd, .events = POLLIN},
                              {.fd = stalled ? -1 : wsfd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            efd_drain(c->wake_fd);
    }
    console_end(c);
    return NULL;
}

static void console_destroy(struct noidfs_console *c)
{
    while (c->tx_head) {
        struct console_tx *tx = c->tx_head;
        c->tx_head = tx->next;
        free(tx);
    }
    ws_client_free(c->wc);
    if (c->ready_fd >= 0)
        close(c->ready_fd);
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    buf_free(&c->in);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static int rest_console_attach(void *bp, const char *user, const char *vm,
                               struct noidfs_console **ret, struct nerr *e)
{
    _cleanup_free_ char *path = NULL;
    struct noidfs_console *c;
    int r;

    r = check_vm(vm, e);
    if (r < 0)
        return r;
    /* the server replays the last few KiB first; it has no way to ask for
     * none (see the report in issue 9) */
    if (asprintf(&path, "/v1/vms/%s/console", vm) < 0) {
        path = NULL;
        return -ENOMEM;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->ready_fd = c->wake_fd = -1;
    buf_init(&c->in, 0); /* bounded by the thread: it stops reading at REST_CONSOLE_IN_MAX */
    pthread_mutex_init(&c->lock, NULL);
    r = cond_init_mono(&c->cond);
    if (r < 0) {
        pthread_mutex_destroy(&c->lock);
        free(c);
        return r;
    }
    c->ready_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->ready_fd < 0 || c->wake_fd < 0) {
        r = nerr_set(e, -errno, "eventfd: %m");
        goto fail;
    }
    r = ws_open(bp, path, &c->wc, e);
    if (r < 0)
        goto fail;
    r = -pthread_create(&c->thread, NULL, console_main, c);
    if (r < 0) {
        nerr_set(e, r, "cannot start the console's thread: %s", strerror(-r));
        goto fail;
    }
    c->have_thread = true;
    *ret = c;
    return 0;
fail:
    console_destroy(c);
    return r;
}

static int rest_console_fd(struct noidfs_console *c)
{
    return c->ready_fd;
}

static ssize_t rest_console_read(struct noidfs_console *c, void *buf, size_t len)
{
    ssize_t n = 0;
    bool wake = false;

    pthread_mutex_lock(&c->lock);
    if (c->in.len > 0) {
        n = (ssize_t)MIN(len, c->in.len);
        memcpy(buf, c->in.data, (size_t)n);
        buf_consume(&c->in, (size_t)n);
    } else if (c->ended) {
        n = -EPIPE;
    }
    /* the eventfd stays readable exactly while something waits */
    if (c->in.len == 0 && !c->ended)
        efd_drain(c->ready_fd);
    if (c->stalled && c->in.len < REST_CONSOLE_IN_MAX) {
        c->stalled = false;
        wake = true;
    }
    pthread_mutex_unlock(&c->lock);
    if (wake)
        efd_signal(c->wake_fd);
    return n;
}

static int rest_console_write(struct noidfs_console *c, const void *data, size_t len,
                              int timeout_ms)
{
    struct timespec until = time_mono_timespec(time_mono_ms() + MAX(timeout_ms, 0));
    struct console_tx *tx;
    int r = 0;

    if (len == 0)
        return 0;
    if (len > REST_CONSOLE_WRITE_MAX)
        return -EINVAL;
    tx = malloc(sizeof(*tx) + 1 + len);
    if (!tx)
        return -ENOMEM;
    tx->next = NULL;
    tx->len = 1 + len;
    tx->frame[0] = CH_STDIN;
    memcpy(tx->frame + 1, data, len);

    pthread_mutex_lock(&c->lock);
    while (!c->ended && c->tx_bytes > 0 && c->tx_bytes + len > REST_CONSOLE_TX_MAX) {
        if (timeout_ms < 0)
            pthread_cond_wait(&c->cond, &c->lock);
        else if (pthread_cond_clockwait(&c->cond, &c->lock, CLOCK_MONOTONIC, &until) == ETIMEDOUT) {
            r = -ETIMEDOUT;
            break;
        }
    }
    if (r == 0 && c->ended)
        r = -EPIPE;
    if (r == 0) {
        if (c->tx_tail)
            c->tx_tail->next = tx;
        else
            c->tx_head = tx;
        c->tx_tail = tx;
        c->tx_bytes += len;
        tx = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    free(tx);
    if (r == 0)
        efd_signal(c->wake_fd);
    return r;
}

static void rest_console_detach(struct noidfs_console *c)
{
    if (!c)
        return;
    if (c->have_thread) {
        pthread_mutex_lock(&c->lock);
        c->detach = true;
        pthread_mutex_unlock(&c->lock);
        efd_signal(c->wake_fd);
        pthread_join(c->thread, NULL);
    }
    console_destroy(c);
}

/* ---- the binding ---- */

int noidfs_rest_new(const char *url, const char *token, struct noidfs_rest **ret)
{
    struct noidfs_rest *b = calloc(1, sizeof(*b));

    if (!b)
        return -ENOMEM;
    b->url = strdup(url);
    b->token = token ? strdup(token) : NULL;
    if (!b->url || (token && !b->token)) {
        free(b->url);
        free(b->token);
        free(b);
        return -ENOMEM;
    }
    pthread_mutex_init(&b->lock, NULL);
    *ret = b;
    return 0;
}

void noidfs_rest_free(struct noidfs_rest *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_idle; i++)
        http_client_free(b->idle[i]);
    pthread_mutex_destroy(&b->lock);
    free(b->url);
    free(b->token);
    free(b);
}

int noidfs_rest_whoami(struct noidfs_rest *b, char **ret_name, struct nerr *e)
{
    struct wire_whoami who = {0};
    json_object *o = NULL;
    int r;

    r = rest_call_json(b, "GET", "/v1/whoami", NULL, REST_TIMEOUT_MS, json_type_object, &o, e);
    if (r < 0)
        return r;
    r = wire_whoami_decode(o, &who, NULL);
    json_object_put(o);
    if (r < 0) {
        wire_whoami_free(&who);
        return nerr_set(e, -EIO, "GET /v1/whoami: the answer is not a user");
    }
    *ret_name = TAKE_PTR(who.name);
    wire_whoami_free(&who);
    return 0;
}

const struct noidfs_ops noidfs_rest_ops = {
    .list_users = NULL,
    .list_vms = rest_list_vms,
    .vm_info = rest_vm_info,
    .vm_create = rest_vm_create,
    .vm_destroy = rest_vm_destroy,
    .console_log = rest_console_log,
    .exec_start = rest_exec_start,
    .exec_output_done = rest_exec_output_done,
    .exec_wait = rest_exec_wait,
    .exec_kill = rest_exec_kill,
    .exec_free = rest_exec_free,
    .console_attach = rest_console_attach,
    .console_fd = rest_console_fd,
    .console_read = rest_console_read,
    .console_write = rest_console_write,
    .console_detach = rest_console_detach,
    .checkpoint_list = rest_checkpoint_list,
    .checkpoint_create = rest_checkpoint_create,
    .checkpoint_delete = rest_checkpoint_delete,
    .restore = rest_restore,
};
