/* api.h — what the REST front-end's files share: the per-request state,
 * reply helpers and the route table.  Handlers turn a request into engine
 * calls and exactly one reply; they never touch SQLite, QEMU or storage.
 *
 * Threading: libmicrohttpd serves all connections from a small pool of epoll
 * threads (one per core).  Quick handlers run there.  Routes marked
 * `blocking` (create, exec, destroy, ...) may take seconds: their connection
 * is suspended and the handler runs on a thread of its own, so a slow exec
 * never stalls anyone else; the reply is queued when the connection resumes.
 * Routes marked `streaming_body` (PUT of a guest file) start their worker
 * as soon as the headers are in and read the body as it arrives, through a
 * bounded buffer (body_stream.c), so no body is ever held whole. */
#pragma once

#include <json-c/json.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>

#include "buf.h"
#include "db.h"
#include "engine.h"
#include "nerr.h"
#include "ratelimit.h"

struct api_ws_session;
struct api_body_stream;

/* Request bodies above this are refused with 413 (exec stdin rides in the
 * body, hence the size). */
#define API_MAX_BODY (16u * 1024 * 1024)
#define API_MAX_PARAMS 3

/* At most this many blocking handlers run at once (503 beyond), and at most
 * API_MAX_WORKERS_PER_USER of them for one user (429 beyond), so one tenant
 * with many long execs cannot starve the others. */
#define API_MAX_WORKERS 256
#define API_MAX_WORKERS_PER_USER 32

struct api_user_load {
    char user_id[DB_ID_LEN + 1];
    unsigned workers;
};

struct api_server {
    struct MHD_Daemon *d;
    struct engine *eng;
    const struct server_config *cfg;
    /* failed authentications, one limiter per kind of key (auth.c) */
    struct ratelimit *rl_addr;  /* by client address (IPv6: per /64) */
    struct ratelimit *rl_token; /* by token prefix */
    int listen_fd;
    char bound[128]; /* "ADDR:PORT" actually bound */
    pthread_mutex_t workers_lock;
    pthread_cond_t workers_done;
    unsigned workers; /* (workers_lock) blocking handlers in flight */
    struct api_user_load loads[API_MAX_WORKERS]; /* (workers_lock) per user, workers > 0 */
    /* WebSocket sessions (ws_session.c); each also holds a worker slot */
    pthread_mutex_t ws_lock;
    pthread_cond_t ws_done;             /* a session gave its slot back */
    unsigned ws_sessions;               /* (ws_lock) slots taken, upgraded or not */
    bool ws_stopping;                   /* (ws_lock) no new sessions */
    struct api_ws_session *ws_list;     /* (ws_lock) */
    /* set once by api_server_stop (atomic access): transfers still running
     * end at their next step instead of holding the stop up */
    bool stopping;
};

struct api_request {
    struct api_server *srv;
    struct MHD_Connection *conn;
    char method[16];
    char *path;
    struct buf body;
    bool authed;
    struct db_user user;
    int64_t start_ns;
    unsigned status;                /* of the reply, for the access log */
    struct MHD_Response *response;  /* the reply, queued by http.c */
    bool suspended;                 /* a worker thread owns the request */
    char client_ip[64];             /* for the access log */
    char *params[API_MAX_PARAMS];
    const struct api_route *route;
    struct api_ws_session *ws_pending; /* a session waiting for its upgrade */
    /* The raw request line had a %00: the decoded path or a query value
     * was cut at that NUL, so it names something else (refused). */
    bool raw_nul;
    /* The handler handed its worker slot over to the response (a download
     * releases it when libmicrohttpd frees the response). */
    bool load_kept;
    struct api_body_stream *body_stream; /* streaming_body routes only */
};

/* Reply helpers: each sets the one response of the request (later calls are
 * ignored); http.c queues it. */
void api_reply_json(struct api_request *rq, unsigned status, json_object *o); /* consumes o */
void api_reply_error(struct api_request *rq, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An error reply with one extra header (Retry-After, Allow, ...). */
void api_reply_error_hdr(struct api_request *rq, unsigned status, const char *hdr,
                         const char *value, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void api_reply_empty(struct api_request *rq, unsigned status);
/* Reply with the HTTP status that an engine error code stands for. */
void api_reply_engine_error(struct api_request *rq, int r, const struct nerr *e);
unsigned api_status_for_errno(int r);

/* Parse the body as one JSON object; on failure replies 400 and returns < 0. */
int api_body_json(struct api_request *rq, json_object **ret);

/* Authenticate the bearer token; on failure replies 401 (or 429 when the
 * client's address or the token's prefix has too many recent failures) and
 * returns false.  A valid token is always accepted.  Needs only the headers:
 * http.c calls it before any byte of the body is read. */
bool api_authenticate(struct api_request *rq);
/* The failed-authentication limiters of srv (auth.c). */
int api_auth_init(struct api_server *srv);
void api_auth_free(struct api_server *srv);

/* One entry of an X-Forwarded-For value, blanks trimmed: the left-most (the
 * client as the first proxy saw it) or the right-most (added by our proxy). */
void api_forwarded_entry(const char *value, bool rightmost, const char **ret, size_t *ret_len);

/* The {"error": msg} body of every error reply, into out; its length.
 * Messages are cut at API_ERROR_MSG_MAX bytes; a body of API_ERROR_BODY_MAX
 * holds any such message however JSON escapes it (6 bytes a byte at most). */
#define API_ERROR_MSG_MAX 512
#define API_ERROR_BODY_MAX (API_ERROR_MSG_MAX * 6 + 32)
size_t api_error_body(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define API_BODY_TOO_LARGE_FMT "request body is larger than %u bytes"

/* A slot for a long-running thing of user_id (a blocking handler, a
 * WebSocket session): 0, or -EBUSY when API_MAX_WORKERS are taken (503),
 * -EDQUOT when the user has API_MAX_WORKERS_PER_USER (429).  Every 0 is
 * paired with api_load_release; api_server_stop waits for all of them. */
int api_load_take(struct api_server *srv, const char *user_id);
void api_load_release(struct api_server *srv, const char *user_id);

typedef void (*api_handler_fn)(struct api_request *rq, char **params);

struct api_route {
    const char *method;
    const char *pattern; /* segments; "{x}" captures one into params[], a
                            final "{+x}" the rest of the path (routes.c) */
    api_handler_fn fn;
    bool blocking;       /* may take long: run on a worker thread */
    bool streaming_body; /* (blocking too) no API_MAX_BODY: the handler
                            reads the body with api_body_read */
};

/* Find the route of method + path.  NULL if none; then *ret_path_known says
 * whether another method would match (405) and allow lists those methods. */
const struct api_route *api_route_find(const char *method, const char *path,
                                       char *params[API_MAX_PARAMS], bool *ret_path_known,
                                       char *allow, size_t allow_size);

/* ---- streaming request bodies (body_stream.c) ----
 *
 * A streaming_body route's handler runs on its worker thread from the
 * moment the headers are in, with the connection suspended: nothing of the
 * body is read (no "100 Continue" is sent) until it calls api_body_begin.
 * A reply set before that goes out at once and the body is never read
 * (libmicrohttpd then closes the connection).  After it, the body flows
 * through a buffer of API_BODY_STREAM_BUF bytes: when it is full the
 * connection is suspended until api_body_read makes room, so a slow
 * consumer slows the client down instead of growing server memory.  A
 * reply set after api_body_begin is sent once the whole body has arrived;
 * whatever the handler did not read is discarded. */
#define API_BODY_STREAM_BUF (1024u * 1024)

/* Let the body come. */
void api_body_begin(struct api_request *rq);
/* Up to len bytes of the body, waiting for them: > 0, 0 at its end,
 * -ECONNRESET when the client went away (the request is over: no reply
 * will be sent), -ESHUTDOWN when the server stops meanwhile, -ENOMEM. */
ssize_t api_body_read(struct api_request *rq, void *buf, size_t len);

/* For http.c: set up rq's body stream and run its route's handler on a
 * worker thread (the load slot is taken already); false if the thread
 * could not start (rq then holds a reply and the slot is given back). */
bool api_body_stream_start(struct api_request *rq);
/* For http.c's access handler: a later call of a streaming request.
 * upload_data_size as libmicrohttpd gives it; returns what the handler
 * returns, queueing the reply through queue_fn when it is due. */
enum MHD_Result api_body_stream_feed(struct api_request *rq, const char *data, size_t *size,
                                     enum MHD_Result (*queue_fn)(struct api_request *rq));
/* For http.c's completion callback: the request is over for
 * libmicrohttpd; *ret_done says whether the handler had returned (rq's
 * reply is final).  Then api_body_stream_unref: true if rq may be freed
 * now, false if the worker still uses it (it frees rq when it ends). */
void api_body_stream_gone(struct api_request *rq, bool *ret_done);
bool api_body_stream_unref(struct api_request *rq);
void api_body_stream_free(struct api_body_stream *bs);
/* Free everything a request holds (http.c; the worker of a streaming
 * request whose client left calls it too). */
void api_request_free(struct api_request *rq);

/* Handlers */
void api_get_healthz(struct api_request *rq, char **params);
void api_get_version(struct api_request *rq, char **params);
void api_get_whoami(struct api_request *rq, char **params);
void api_get_capabilities(struct api_request *rq, char **params);
void api_post_vms(struct api_request *rq, char **params);
void api_get_vms(struct api_request *rq, char **params);
void api_get_vm(struct api_request *rq, char **params);
void api_delete_vm(struct api_request *rq, char **params);
void api_post_exec(struct api_request *rq, char **params);
void api_post_checkpoint(struct api_request *rq, char **params);
void api_get_checkpoints(struct api_request *rq, char **params);
void api_delete_checkpoint(struct api_request *rq, char **params);
void api_post_restore(struct api_request *rq, char **params);
void api_get_exec_ws(struct api_request *rq, char **params);
void api_get_console_ws(struct api_request *rq, char **params);
void api_get_console_log(struct api_request *rq, char **params);
void api_get_file(struct api_request *rq, char **params); /* GET and HEAD */
void api_put_file(struct api_request *rq, char **params);
void api_delete_file(struct api_request *rq, char **params);
void api_post_file(struct api_request *rq, char **params);
