/* ws_session.h — WebSocket sessions of the REST front-end: the upgrade
 * handshake on a libmicrohttpd connection, the session slots
 * (max_ws_sessions in all, and the per-user load shared with long
 * requests), one thread per session running its body over lib/ws.h, and
 * their end when the server stops.
 *
 * A route handler calls api_ws_upgrade; everything it answers before the
 * upgrade is a plain HTTP error with a JSON body (400 bad handshake, 503 no
 * session slot, 429 the user's load).  After the 101 the body (exec,
 * console) owns the session until it returns; the socket is closed then. */
#pragma once

#include <stdbool.h>

#include "api.h"
#include "wire.h"
#include "ws.h"

/* Largest message a client may send (an exec request with env, stdin). */
#define API_WS_MAX_MESSAGE (4u * 1024 * 1024)
/* How long a send may wait for a slow client before the session ends, at
 * least (an exec allows its command's timeout on top, a console its idle
 * timeout). */
#define API_WS_SEND_TIMEOUT_MS 60000
/* After our close frame, how long we wait for the client's. */
#define API_WS_CLOSE_WAIT_MS 2000

struct api_ws_session;
typedef void (*api_ws_body_fn)(struct api_ws_session *s);

struct api_ws_session {
    struct api_server *srv;
    struct db_user user;
    char *vm_name;
    const char *kind; /* "exec", "console": for the log */
    api_ws_body_fn body;
    long long body_arg; /* what the route parsed for its body (console: replay bytes) */
    struct ws *ws; /* set once upgraded */
    int fd;        /* the upgraded socket (libmicrohttpd's) */
    int wake_fd;   /* eventfd: the server is stopping */
    struct MHD_UpgradeResponseHandle *urh;
    char client_ip[64];
    long long send_timeout_ms; /* a client reading nothing that long is cut */
    /* (srv->ws_lock) */
    bool stopping;
    bool claimed;   /* the upgrade happened: the session thread owns it */
    bool abandoned; /* the request ended without an upgrade */
    int refs;
    struct api_ws_session *next;
};

/* The checks every WebSocket route makes before upgrading: the VM exists
 * for this user (404) and runs (409).  true, or rq has the error reply. */
bool api_ws_vm_runs(struct api_request *rq, const char *vm_name, struct wire_vm_info *ret_info);
/* Check the handshake headers of rq, take a session slot and queue the 101
 * response whose upgrade runs body on a thread of its own.  On any failure
 * rq gets the error reply instead. */
void api_ws_upgrade(struct api_request *rq, const char *kind, const char *vm_name,
                    api_ws_body_fn body, long long body_arg);
/* The request is over (http.c's completion): drop its hold on a session
 * that may never have been upgraded. */
void api_ws_request_done(struct api_request *rq);
/* Whether the server asked the session to end. */
bool api_ws_stopping(struct api_ws_session *s);
/* The server stops: ask every session to end and wait until they have. */
void api_ws_stop_all(struct api_server *srv);
/* Send a text frame {"error": msg} then close with code (best effort). */
void api_ws_fail(struct api_ws_session *s, uint16_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Close with code and reason, then wait a moment for the client's close. */
void api_ws_finish(struct api_ws_session *s, uint16_t code, const char *reason);
/* Send a JSON object as a text frame (consumes o). */
int api_ws_send_json(struct api_ws_session *s, json_object *o);
