/* cli.h — what the noid CLI's command files share.
 *
 * Every command is a function `int cmd_x(struct cli *c, int argc, char **argv)`
 * returning the process exit status.  Errors are printed once, by the layer
 * that knows the reason, as "noid: <sentence>". */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "http_client.h"
#include "nerr.h"

#define CLI_EXIT_FAIL    1
#define CLI_EXIT_USAGE   2
#define CLI_EXIT_TIMEOUT 124

struct cli {
    char *url;   /* server base URL */
    char *token; /* API token */
    char *config_path;
    struct http_client *http;
};

/* client_config.c */
/* Load url/token (lib/client_login.h): config file, then NOID_URL /
 * NOID_TOKEN.  Missing file is fine. */
int cli_config_load(struct cli *c, struct nerr *e);
/* The VM name to use: explicit, else the one in ./.noid-vm. Prints an error
 * and returns NULL if there is none. Result is malloc'd. */
char *cli_vm_name(const char *explicit_name);
int cli_use_write(const char *name, struct nerr *e);
char *cli_use_read(void);

/* api.c: one request; on success (2xx) *ret_json gets the parsed body (or
 * NULL for 204).  Any failure is printed ("noid: ...") and returns < 0. */
int cli_api(struct cli *c, const char *method, const char *path, json_object *body,
            json_object **ret_json);
/* Print the server's error msg for an HTTP status the way every command
 * does (with what to do about a 401, 429 or unknown endpoint); returns the
 * matching -errno. */
int cli_report_http_error(struct cli *c, long status, const char *msg);
/* Ensure url and token are configured (prints how to fix it). */
int cli_require_auth(struct cli *c);

void cli_print_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Whether argv has -h/--help before a "--". */
bool cli_wants_help(int argc, char **argv);

int cmd_auth(struct cli *c, int argc, char **argv);
int cmd_whoami(struct cli *c, int argc, char **argv);
int cmd_current(struct cli *c, int argc, char **argv);
int cmd_use(struct cli *c, int argc, char **argv);
int cmd_create(struct cli *c, int argc, char **argv);
int cmd_list(struct cli *c, int argc, char **argv);
int cmd_info(struct cli *c, int argc, char **argv);
int cmd_destroy(struct cli *c, int argc, char **argv);
int cmd_exec(struct cli *c, int argc, char **argv);
int cmd_cp(struct cli *c, int argc, char **argv);
int cmd_console(struct cli *c, int argc, char **argv);
int cmd_checkpoint(struct cli *c, int argc, char **argv);
int cmd_checkpoints(struct cli *c, int argc, char **argv);
int cmd_restore(struct cli *c, int argc, char **argv);
int cmd_checkpoint_rm(struct cli *c, int argc, char **argv);
int cmd_mount(struct cli *c, int argc, char **argv);
int cmd_umount(struct cli *c, int argc, char **argv);
