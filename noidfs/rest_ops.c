/* rest_ops.c — see rest_ops.h: plain requests, the VM and checkpoint ops,
 * the helpers the WebSocket files share, and the table.
 *
 * Plain requests go through a pool of idle http_clients: an http_client is
 * not thread-safe, so each request takes one (or makes one) and gives it
 * back; the pool's lock is held only to take and return, never across a
 * request.  Exec and console live in rest_exec.c and rest_console.c. */
#include "rest_ops.h"

#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "http_client.h"
#include "macro.h"
#include "names.h"
#include "rest-internal.h"
#include "textutil.h"
#include "timeutil.h"
#include "wire.h"
#include "ws_client.h"

/* TCP connect to the server. */
#define REST_CONNECT_MS 3000
/* Whole requests besides the quick ones (REST_TIMEOUT_MS): ones that move
 * or delete more (console.log, a checkpoint's deletion), and the ones that
 * take seconds by nature (create, destroy, checkpoint, restore). */
#define REST_LONG_TIMEOUT_MS 120000
#define REST_SLOW_TIMEOUT_MS (10 * 60 * 1000)
/* What of a non-JSON error body goes into a message. */
#define REST_BODY_IN_MSG 200

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
        /* a per-user cap names its config key (max_vms_per_user, ...);
         * the others are load and login limits: try again later */
        return strstr(msg, "max_") ? -EDQUOT : -EAGAIN;
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
int rest_call_json(struct noidfs_rest *b, const char *method, const char *path, json_object *body,
                   long timeout_ms, json_type want, json_object **ret, struct nerr *e)
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

int rest_check_vm(const char *vm, struct nerr *e)
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
    if (!info.created_at || time_parse_rfc3339(info.created_at, &ret->created) < 0)
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

    r = rest_check_vm(vm, e);
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

static int rest_vm_create(void *bp, const char *user, const char *vm, struct nerr *e)
{
    json_object *body;
    int r;

    r = rest_check_vm(vm, e);
    if (r < 0)
        return r;
    body = json_object_new_object();
    if (!body || json_object_object_add(body, "name", json_object_new_string(vm)) < 0) {
        json_object_put(body);
        return -ENOMEM;
    }
    return rest_simple(bp, "POST", "/v1/vms", body, REST_SLOW_TIMEOUT_MS, e);
}

static int rest_vm_destroy(void *bp, const char *user, const char *vm, struct nerr *e)
{
    _cleanup_free_ char *path = NULL;
    int r;

    r = rest_check_vm(vm, e);
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

    r = rest_check_vm(vm, e);
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

    r = rest_check_vm(vm, e);
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
        if (time_parse_rfc3339(cp.created_at, &c->created) < 0)
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

    r = rest_check_vm(vm, e);
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

    r = rest_check_vm(vm, e);
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

    r = rest_check_vm(vm, e);
    if (r < 0)
        return r;
    r = name_checkpoint_prefix_check(checkpoint_id, e);
    if (r < 0)
        return r;
    if (new_name) {
        r = rest_check_vm(new_name, e);
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

/* ---- helpers of rest_exec.c and rest_console.c ---- */

/* Open the WebSocket at path.  A refused upgrade is mapped as a refused
 * request is; no HTTP answer at all is -ENOTCONN. */
int rest_ws_open(struct noidfs_rest *b, const char *path, struct ws_client **ret, struct nerr *e)
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

void rest_efd_signal(int fd)
{
    uint64_t one = 1;

    (void)!write(fd, &one, sizeof(one));
}

void rest_efd_drain(int fd)
{
    uint64_t v;

    (void)!read(fd, &v, sizeof(v));
}

/* Close our side and wait a moment for the server's close, dropping what
 * arrives meanwhile. */
void rest_ws_close_politely(struct ws *ws, const char *reason)
{
    int64_t deadline = time_mono_ms() + REST_WS_CLOSE_WAIT_MS;
    struct ws_message m;

    if (!ws_close_sent(ws) && ws_close(ws, WS_CLOSE_NORMAL, reason, REST_WS_CLOSE_WAIT_MS) < 0)
        return;
    while (time_left_ms(deadline) > 0)
        if (ws_receive_wait(ws, &m, time_left_ms(deadline)) <= 0)
            return;
}

int rest_cond_init_mono(pthread_cond_t *c)
{
    pthread_condattr_t ca;
    int r;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    r = -pthread_cond_init(c, &ca);
    pthread_condattr_destroy(&ca);
    return r;
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
