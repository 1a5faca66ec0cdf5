/* rest-internal.h — what the REST binding's files share: rest_ops.c
 * (plain requests, the VM and checkpoint ops, the table, the WebSocket
 * helpers), rest_exec.c (exec) and rest_console.c (console).
 *
 * Locks: noidfs_rest.lock, noidfs_exec.lock, noidfs_console.lock are all
 * leaves; none is held across I/O or a callback. */
#pragma once

#include <json-c/json.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "http_client.h"
#include "nerr.h"
#include "noidfs.h"
#include "rest_ops.h"
#include "ws_client.h"

/* Quick whole requests (lists, info, whoami, capabilities). */
#define REST_TIMEOUT_MS 10000
/* Idle http_clients kept for reuse (each holds a keep-alive connection). */
#define REST_POOL_IDLE_MAX 16
/* A WebSocket's connect plus the upgrade (the server checks the VM first). */
#define REST_WS_CONNECT_MS 10000
/* A message from the server: exec output chunks and console frames are far
 * smaller. */
#define REST_WS_MAX_MESSAGE (4u * 1024 * 1024)
/* Sending a message (the exec request), and waiting for the server's
 * close reply. */
#define REST_WS_SEND_MS       10000
#define REST_WS_CLOSE_WAIT_MS 2000

/* The first byte of a binary frame (docs/api.md). */
enum { REST_CH_STDOUT = 0x01, REST_CH_STDERR = 0x02, REST_CH_STDIN = 0x03 };

struct noidfs_rest {
    char *url;
    char *token;
    pthread_mutex_t lock;
    struct http_client *idle[REST_POOL_IDLE_MAX]; /* (lock) */
    size_t n_idle;                                /* (lock) */
    int64_t exec_idle_ms;                         /* (lock) 0 until known */
};

/* ---- rest_ops.c ---- */

/* One request whose 2xx answer must be JSON of type want (object or
 * array): *ret is the parsed value.  Otherwise -errno and e: the mapped
 * status (noidfs_rest_errno), or -ENOTCONN when no HTTP answer came. */
int rest_call_json(struct noidfs_rest *b, const char *method, const char *path, json_object *body,
                   long timeout_ms, json_type want, json_object **ret, struct nerr *e);
/* name_vm_check: a VM name is a URL path component here. */
int rest_check_vm(const char *vm, struct nerr *e);
/* Open the WebSocket at path: a refused upgrade is mapped as a refused
 * request is; no HTTP answer at all is -ENOTCONN. */
int rest_ws_open(struct noidfs_rest *b, const char *path, struct ws_client **ret, struct nerr *e);
/* Close our side and wait up to REST_WS_CLOSE_WAIT_MS for the server's
 * close, dropping what arrives meanwhile. */
void rest_ws_close_politely(struct ws *ws, const char *reason);
void rest_efd_signal(int fd);
void rest_efd_drain(int fd);
/* A condition variable on CLOCK_MONOTONIC (for pthread_cond_clockwait). */
int rest_cond_init_mono(pthread_cond_t *c);

/* ---- rest_exec.c: the exec ops ---- */

int rest_exec_start(void *b, const char *user, const char *vm, const char *command_line,
                    const struct noidfs_exec_sink *sink, struct noidfs_exec **ret, struct nerr *e);
void rest_exec_output_done(struct noidfs_exec *x, size_t n);
int rest_exec_wait(struct noidfs_exec *x, int timeout_ms, int *ret_status, struct nerr *e);
void rest_exec_kill(struct noidfs_exec *x);
void rest_exec_free(struct noidfs_exec *x);

/* ---- rest_console.c: the console ops ---- */

int rest_console_attach(void *b, const char *user, const char *vm, struct noidfs_console **ret,
                        struct nerr *e);
int rest_console_fd(struct noidfs_console *c);
ssize_t rest_console_read(struct noidfs_console *c, void *buf, size_t len);
int rest_console_write(struct noidfs_console *c, const void *data, size_t len, int timeout_ms);
void rest_console_detach(struct noidfs_console *c);
