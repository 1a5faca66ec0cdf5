/* cmd_exec.c — `noid exec [NAME] [-e K=V]... -- CMD...`: run a command in a
 * VM; its stdout and stderr go to ours, its exit code becomes ours (124 on a
 * timeout, 128+N when killed by signal N).
 *
 * stdin is forwarded when it is a pipe or a file (`echo hi | noid exec vm --
 * cat`), not when it is a terminal; -i forces it, -n turns it off. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "cli.h"
#include "encoding.h"
#include "names.h"
#include "wire.h"

/* What fits in a request body once base64-encoded (the server takes 16 MiB). */
#define CLI_MAX_STDIN (11u * 1024 * 1024)

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: noid exec [NAME] [OPTIONS] -- COMMAND [ARG...]\n"
            "\n"
            "Run COMMAND in the VM (default: the one of ./.noid-vm) and wait for it.\n"
            "stdout and stderr stay apart; the exit code is the command's (124 on timeout).\n"
            "\n"
            "  -e, --env NAME=VALUE  set an environment variable (repeatable)\n"
            "  -w, --cwd DIR         working directory in the guest\n"
            "  -t, --timeout SECS    give up after SECS (at most the server's limit)\n"
            "  -i, --stdin           send our stdin even if it is a terminal\n"
            "  -n, --no-stdin        do not send our stdin\n"
            "  -h, --help            show this help\n");
}

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

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static bool stdin_is_data(void)
{
    struct stat st;

    return fstat(STDIN_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode));
}

int cmd_exec(struct cli *c, int argc, char **argv)
{
    struct wire_exec_req req = {0};
    struct wire_exec_result res = {0};
    struct nerr e = {0};
    const char *name_arg = NULL;
    char **env = NULL;
    size_t nenv = 0;
    int stdin_mode = 0; /* 0 auto, 1 force, -1 off */
    struct buf in;
    json_object *o = NULL;
    char *name = NULL;
    char path[128];
    int i, status = CLI_EXIT_FAIL;

    buf_init(&in, CLI_MAX_STDIN);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            status = 0;
            goto out;
        } else if ((strcmp(a, "-e") == 0 || strcmp(a, "--env") == 0) && i + 1 < argc) {
            const char *kv = argv[++i];
            char **grown;
            if (name_env_entry_check(kv, strlen(kv), &e) < 0) {
                cli_print_error("%s", e.msg);
                status = CLI_EXIT_USAGE;
                goto out;
            }
            if (nenv >= ENV_MAX_ENTRIES) {
                cli_print_error("at most %d environment variables", ENV_MAX_ENTRIES);
                status = CLI_EXIT_USAGE;
                goto out;
            }
            grown = realloc(env, (nenv + 1) * sizeof(char *));
            if (!grown)
                goto out;
            env = grown;
            env[nenv++] = (char *)kv;
        } else if ((strcmp(a, "-w") == 0 || strcmp(a, "--cwd") == 0) && i + 1 < argc) {
            req.cwd = argv[++i];
        } else if ((strcmp(a, "-t") == 0 || strcmp(a, "--timeout") == 0) && i + 1 < argc) {
            char *end;
            req.timeout_secs = strtoll(argv[++i], &end, 10);
            if (*end || req.timeout_secs < 1) {
                cli_print_error("--timeout needs a whole number of seconds >= 1");
                status = CLI_EXIT_USAGE;
                goto out;
            }
            req.has_timeout_secs = true;
        } else if (strcmp(a, "-i") == 0 || strcmp(a, "--stdin") == 0) {
            stdin_mode = 1;
        } else if (strcmp(a, "-n") == 0 || strcmp(a, "--no-stdin") == 0) {
            stdin_mode = -1;
        } else if (a[0] == '-') {
            cli_print_error("unknown option '%s' (put the command after --)", a);
            status = CLI_EXIT_USAGE;
            goto out;
        } else if (!name_arg) {
            name_arg = a;
        } else {
            /* no "--": NAME then the command */
            break;
        }
    }
    if (i >= argc) {
        cli_print_error("no command given: noid exec [NAME] -- COMMAND [ARG...]");
        status = CLI_EXIT_USAGE;
        goto out;
    }
    name = cli_vm_name(name_arg);
    if (!name) {
        status = CLI_EXIT_USAGE;
        goto out;
    }
    req.command = argv + i;
    req.ncommand = (size_t)(argc - i);
    req.env = env;
    req.nenv = nenv;
    if (stdin_mode == 1 || (stdin_mode == 0 && stdin_is_data())) {
        int r = read_all_stdin(&in);
        if (r == -E2BIG) {
            cli_print_error("stdin is larger than %u bytes; copy big files another way",
                            CLI_MAX_STDIN);
            goto out;
        }
        if (r < 0) {
            cli_print_error("cannot read stdin: %s", strerror(-r));
            goto out;
        }
        req.stdin_b64 = base64_encode(in.data ? in.data : (uint8_t *)"", in.len);
        if (!req.stdin_b64)
            goto out;
        req.stdin_b64_len = strlen(req.stdin_b64);
    }
    snprintf(path, sizeof(path), "/v1/vms/%s/exec", name);
    if (cli_api(c, "POST", path, wire_exec_req_encode(&req), &o) < 0)
        goto out;
    if (wire_exec_result_decode(o, &res, &e) < 0) {
        cli_print_error("unexpected reply: %s", e.msg);
        goto out;
    }
    write_all(STDOUT_FILENO, res.out, res.out_len);
    write_all(STDERR_FILENO, res.err, res.err_len);
    if (res.truncated)
        cli_print_error("output was truncated at the server's limit (max_exec_output_bytes)");
    if (res.timed_out) {
        cli_print_error("command timed out");
        status = CLI_EXIT_TIMEOUT;
    } else {
        status = (int)(res.exit_code & 0xff);
    }
out:
    free(req.stdin_b64);
    free(env);
    free(name);
    buf_free(&in);
    json_object_put(o);
    wire_exec_result_free(&res);
    return status;
}
