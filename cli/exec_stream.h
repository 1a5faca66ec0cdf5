/* exec_stream.h — one WebSocket session of the CLI: a streamed `noid exec`
 * (GET /v1/vms/{name}/exec) or `noid console` (GET /v1/vms/{name}/console).
 *
 * The wire (docs/api.md): binary frames whose first byte is the channel,
 * 0x01 stdout / console output and 0x02 stderr from the server, 0x03 stdin
 * bytes ([0x03] alone = EOF) and 0x04 {"cols","rows"} resize from us; text
 * frames carry JSON (the exec request, the result, {"error"}, {"skipped"}).
 *
 * The loop is single-threaded: poll() over the socket, stdin and a signalfd
 * (term.h); output is written as received, stdin is read only when the
 * socket can take it, so neither direction can wedge the other. */
#pragma once

#include <stdbool.h>

#include "cli.h"
#include "ws_client.h"

/* Bounds of a session. */
#define EXEC_STREAM_MAX_MESSAGE   (4u * 1024 * 1024) /* one frame from the server */
#define EXEC_STREAM_STDIN_CHUNK   8192               /* stdin bytes per frame */
#define EXEC_STREAM_CONNECT_MS    10000              /* TCP + TLS + upgrade */
#define EXEC_STREAM_CLOSE_WAIT_MS 2000               /* for the server's close reply */

#define EXEC_STREAM_DETACH_KEY 0x1d /* Ctrl-] */

struct exec_stream_opts {
    const char *vm_name; /* for messages */
    bool console;        /* console rules: {"skipped"}, close codes, detach */
    bool forward_stdin;  /* read stdin, send it as 0x03 frames */
    bool raw;            /* stdin is a terminal: raw mode while the session runs */
    bool resize;         /* send 0x04 on SIGWINCH */
};

/* Connect to path on the server with the WebSocket upgrade.
 *   0 and *ret: connected;
 *   -EPROTONOSUPPORT: the server (or something on the way) answered as
 *     plain HTTP, without WebSocket there; nothing printed, the caller may
 *     fall back to a plain request;
 *   other -errno: printed ("noid: ..."), with the server's reason. */
int exec_stream_connect(struct cli *c, const char *path, struct ws_client **ret);

/* Run a session on wc: send request (a text frame) first when not NULL,
 * then relay until it ends.  Returns the exit status for the CLI: the
 * command's exit code (124 on timeout), 0 after a console detach or a
 * normal console close, 128+N after signal N (130 for Ctrl-C, 141 when our
 * stdout is a closed pipe), 1 on errors (printed once, after the terminal
 * is restored).  Ending early closes the socket, which makes the server
 * kill the remote command. */
int exec_stream_run(struct ws_client *wc, const char *request, const struct exec_stream_opts *o);
