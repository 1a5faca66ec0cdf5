/* cmd_exec.c — `noid exec [NAME] [OPTIONS] [-- CMD...]`: run a command in a
 * VM.  Its stdout and stderr go to ours as it produces them, its exit code
 * becomes ours (124 on a timeout, 128+N when killed by signal N).
 *
 * Streams over the WebSocket exec (GET /v1/vms/{name}/exec, exec_stream.h):
 * our stdin is forwarded as it comes when it is not a terminal (-i forces,
 * -n turns it off); Ctrl-C stops the remote command.  -t gives the command
 * a terminal (our terminal in raw mode, window size followed); no command
 * at all opens an interactive shell.  A server without the WebSocket exec
 * gets the plain POST exec: output at the end, stdin read whole first. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "encoding.h"
#include "exec_stream.h"
#include "names.h"
#include "term.h"
#include "unixsock.h"
#include "wire.h"

/* What fits in a POST request body once base64-encoded (the server takes
 * 16 MiB); streaming has no such bound. */
#define CLI_MAX_STDIN (11u * 1024 * 1024)
/* "TERM=" + a terminal name */
#define CLI_TERM_ENV_MAX 128

/* The interactive shell of `noid exec NAME`: a login shell, so the
 * guest's /etc/profile sets PATH and the prompt, as on its console. */
static char *shell_command[] = {"/bin/sh", "-l"};

enum stdin_mode {
    STDIN_AUTO,
    STDIN_FORCE,
    STDIN_OFF,
};

struct exec_args {
    struct wire_exec_req req; /* command, env, cwd, timeout; tty */
    const char *name_arg;
    enum stdin_mode stdin_mode;
    bool shell; /* no command given */
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: noid exec [NAME] [OPTIONS] [--] COMMAND [ARG...]\n"
               "       noid exec [NAME] [OPTIONS]          (an interactive shell)\n"
               "\n"
               "Run COMMAND in the VM (default: the one of ./.noid-vm).  Its output streams\n"
               "as it is produced, stdout and stderr stay apart, and the exit code is the\n"
               "command's (124 on timeout).  Ctrl-C stops the command.  Without COMMAND,\n"
               "open a shell in the VM (with a terminal when stdin is one).\n"
               "\n"
               "  -t, --tty             give the command a terminal (our terminal in raw\n"
               "                        mode; for full-screen programs and shells)\n"
               "  -e, --env NAME=VALUE  set an environment variable (repeatable)\n"
               "  -w, --cwd DIR         working directory in the guest\n"
               "      --timeout SECS    give up after SECS (at most the server's limit)\n"
               "  -i, --stdin           send our stdin even if it is a terminal\n"
               "  -n, --no-stdin        do not send our stdin\n"
               "  -h, --help            show this help\n"
               "\n"
               "stdin is sent when it is not a terminal (a pipe, a file), as it comes.\n");
}

static int add_env(struct exec_args *a, const char *kv)
{
    struct nerr e = {0};
    char **grown;

    if (name_env_entry_check(kv, strlen(kv), &e) < 0) {
        cli_print_error("%s", e.msg);
        return -EINVAL;
    }
    if (a->req.nenv >= ENV_MAX_ENTRIES) {
        cli_print_error("at most %d environment variables", ENV_MAX_ENTRIES);
        return -E2BIG;
    }
    grown = realloc(a->req.env, (a->req.nenv + 1) * sizeof(char *));
    if (!grown) {
        cli_print_error("out of memory");
        return -ENOMEM;
    }
    a->req.env = grown;
    a->req.env[a->req.nenv++] = (char *)kv;
    return 0;
}

/* 0: run; 1: help printed; < 0: a usage error, printed. */
static int parse_args(int argc, char **argv, struct exec_args *a)
{
    int i;

    for (i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(o, "-h") == 0 || strcmp(o, "--help") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(o, "-t") == 0 && i + 1 < argc && argv[i + 1][0] &&
                   strspn(argv[i + 1], "0123456789") == strlen(argv[i + 1])) {
            /* -t SECS was the timeout before -t meant a terminal: a script
             * written then must not run its command with a stray "SECS" */
            cli_print_error("-t is --tty now; give a timeout with --timeout %s", argv[i + 1]);
            return -EINVAL;
        } else if (strcmp(o, "-t") == 0 || strcmp(o, "--tty") == 0 || strcmp(o, "-it") == 0 ||
                   strcmp(o, "-ti") == 0) {
            a->req.tty = true;
        } else if ((strcmp(o, "-e") == 0 || strcmp(o, "--env") == 0) && i + 1 < argc) {
            if (add_env(a, argv[++i]) < 0)
                return -EINVAL;
        } else if ((strcmp(o, "-w") == 0 || strcmp(o, "--cwd") == 0) && i + 1 < argc) {
            a->req.cwd = argv[++i];
        } else if (strcmp(o, "--timeout") == 0 && i + 1 < argc) {
            char *end;
            a->req.timeout_secs = strtoll(argv[++i], &end, 10);
            if (*end || a->req.timeout_secs < 1) {
                cli_print_error("--timeout needs a whole number of seconds >= 1");
                return -EINVAL;
            }
            a->req.has_timeout_secs = true;
        } else if (strcmp(o, "-i") == 0 || strcmp(o, "--stdin") == 0) {
            a->stdin_mode = STDIN_FORCE;
        } else if (strcmp(o, "-n") == 0 || strcmp(o, "--no-stdin") == 0) {
            a->stdin_mode = STDIN_OFF;
        } else if (o[0] == '-') {
            cli_print_error("unknown option '%s' (put the command after --)", o);
            return -EINVAL;
        } else if (!a->name_arg) {
            a->name_arg = o;
        } else {
            /* no "--": NAME then the command */
            break;
        }
    }
    if (i < argc) {
        a->req.command = argv + i;
        a->req.ncommand = (size_t)(argc - i);
    } else {
        a->shell = true;
        a->req.command = shell_command;
        a->req.ncommand = sizeof(shell_command) / sizeof(shell_command[0]);
        if (isatty(STDIN_FILENO))
            a->req.tty = true;
    }
    return 0;
}

static bool stdin_is_open(void)
{
    return fcntl(STDIN_FILENO, F_GETFL) >= 0;
}

/* ---- the plain POST exec, for servers without the WebSocket one ---- */

static int read_all_stdin(struct buf *b)
{
    char chunk[65536];

    for (;;) {
        ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return 0;
        if (buf_append(b, chunk, (size_t)n) < 0)
            return -E2BIG;
    }
}

static int exec_post(struct cli *c, const char *path, struct wire_exec_req *req, bool forward_stdin)
{
    struct wire_exec_result res = {0};
    struct nerr e = {0};
    json_object *o = NULL;
    struct buf in;
    int status = CLI_EXIT_FAIL;

    buf_init(&in, CLI_MAX_STDIN);
    if (forward_stdin) {
        int r = read_all_stdin(&in);
        if (r == -E2BIG) {
            cli_print_error("stdin is larger than %u bytes, the limit of this server's "
                            "non-streaming exec; copy big files another way",
                            CLI_MAX_STDIN);
            goto out;
        }
        if (r < 0) {
            cli_print_error("cannot read stdin: %s", strerror(-r));
            goto out;
        }
        req->stdin_b64 = base64_encode(in.data ? in.data : (uint8_t *)"", in.len);
        if (!req->stdin_b64)
            goto out;
        req->stdin_b64_len = strlen(req->stdin_b64);
    }
    if (cli_api(c, "POST", path, wire_exec_req_encode(req), &o) < 0)
        goto out;
    if (wire_exec_result_decode(o, &res, &e) < 0) {
        cli_print_error("unexpected reply: %s", e.msg);
        goto out;
    }
    fd_write_all(STDOUT_FILENO, res.out, res.out_len);
    fd_write_all(STDERR_FILENO, res.err, res.err_len);
    if (res.truncated)
        cli_print_error("output was truncated at the server's limit (max_exec_output_bytes)");
    if (res.timed_out) {
        cli_print_error("command timed out");
        status = CLI_EXIT_TIMEOUT;
    } else {
        status = (int)(res.exit_code & 0xff);
    }
out:
    free(req->stdin_b64);
    req->stdin_b64 = NULL;
    buf_free(&in);
    json_object_put(o);
    wire_exec_result_free(&res);
    return status;
}

/* ---- streaming ---- */

/* The exec request of the WebSocket exec: the POST one, plus "stdin":false
 * when we send none (else the command would wait for our EOF) and the
 * window size for a terminal.  NULL on ENOMEM. */
static json_object *stream_request(struct wire_exec_req *req, bool forward_stdin)
{
    unsigned cols, rows;

    if (!forward_stdin) {
        req->has_stdin_open = true;
        req->stdin_open = false;
    }
    if (req->tty) {
        term_size_guess(&cols, &rows);
        req->has_cols = req->has_rows = true;
        req->cols = cols < WIRE_MAX_TTY_SIDE ? cols : WIRE_MAX_TTY_SIDE;
        req->rows = rows < WIRE_MAX_TTY_SIDE ? rows : WIRE_MAX_TTY_SIDE;
    }
    return wire_exec_req_encode(req);
}

/* A terminal in the guest should be driven as ours is: pass $TERM unless
 * the user set TERM with -e. */
static void add_term_env(struct exec_args *a, char *buf, size_t size)
{
    const char *term = getenv("TERM");

    if (!term || !*term)
        return;
    for (size_t i = 0; i < a->req.nenv; i++)
        if (strncmp(a->req.env[i], "TERM=", 5) == 0)
            return;
    if ((size_t)snprintf(buf, size, "TERM=%s", term) >= size)
        return;
    if (name_env_entry_check(buf, strlen(buf), NULL) < 0 || a->req.nenv >= ENV_MAX_ENTRIES)
        return;
    add_env(a, buf);
}

int cmd_exec(struct cli *c, int argc, char **argv)
{
    struct exec_args a = {0};
    struct exec_stream_opts opts;
    struct ws_client *wc = NULL;
    json_object *request = NULL;
    char term_env[CLI_TERM_ENV_MAX];
    char *name = NULL;
    char path[128];
    size_t request_len;
    bool forward_stdin;
    int r, status = CLI_EXIT_USAGE;

    r = parse_args(argc, argv, &a);
    if (r != 0) {
        status = r > 0 ? 0 : CLI_EXIT_USAGE;
        goto out;
    }
    name = cli_vm_name(a.name_arg);
    if (!name)
        goto out;
    status = CLI_EXIT_FAIL;
    switch (a.stdin_mode) {
    case STDIN_FORCE:
        forward_stdin = stdin_is_open();
        break;
    case STDIN_OFF:
        forward_stdin = false;
        break;
    default:
        forward_stdin = stdin_is_open() && (a.req.tty || !isatty(STDIN_FILENO));
        break;
    }
    if (a.req.tty)
        add_term_env(&a, term_env, sizeof(term_env));
    snprintf(path, sizeof(path), "/v1/vms/%s/exec", name);

    r = exec_stream_connect(c, path, &wc);
    if (r == -EPROTONOSUPPORT) {
        if (a.req.tty) {
            cli_print_error("the server at %s has no streaming exec: %s needs a newer "
                            "server",
                            c->url, a.shell ? "an interactive shell" : "-t");
            goto out;
        }
        status = exec_post(c, path, &a.req, forward_stdin);
        goto out;
    }
    if (r < 0)
        goto out;
    request = stream_request(&a.req, forward_stdin);
    if (!request) {
        cli_print_error("out of memory");
        goto out;
    }
    opts = (struct exec_stream_opts){
        .vm_name = name,
        .forward_stdin = forward_stdin,
        .raw = a.req.tty && forward_stdin && isatty(STDIN_FILENO),
        .resize = a.req.tty,
    };
    status = exec_stream_run(wc, wire_to_string(request, &request_len), &opts);
out:
    ws_client_free(wc);
    json_object_put(request);
    free(a.req.env);
    free(name);
    return status;
}
