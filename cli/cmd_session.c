/* cmd_session.c — who am I, where am I: whoami, current, use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "names.h"
#include "wire.h"

int cmd_whoami(struct cli *c, int argc, char **argv)
{
    struct wire_whoami who = {0};
    struct nerr e = {0};
    json_object *o = NULL;

    if (cli_wants_help(argc, argv)) {
        printf("Usage: noid whoami\n\nShow the user the saved token belongs to.\n");
        return 0;
    }
    if (argc > 1) {
        cli_print_error("whoami takes no arguments");
        return CLI_EXIT_USAGE;
    }
    if (cli_api(c, "GET", "/v1/whoami", NULL, &o) < 0)
        return CLI_EXIT_FAIL;
    if (wire_whoami_decode(o, &who, &e) < 0) {
        cli_print_error("unexpected reply: %s", e.msg);
        json_object_put(o);
        return CLI_EXIT_FAIL;
    }
    printf("%s (user id %s) on %s\n", who.name, who.user_id, c->url);
    json_object_put(o);
    wire_whoami_free(&who);
    return 0;
}

int cmd_current(struct cli *c, int argc, char **argv)
{
    char *vm;

    if (cli_wants_help(argc, argv)) {
        printf("Usage: noid current\n\nShow the server URL and the active VM of this "
               "directory (./.noid-vm).\n");
        return 0;
    }
    if (argc > 1) {
        cli_print_error("current takes no arguments");
        return CLI_EXIT_USAGE;
    }
    vm = cli_use_read();
    printf("server: %s\n", c->url ? c->url : "(not logged in: run 'noid auth setup')");
    printf("vm:     %s\n", vm ? vm : "(none: run 'noid use NAME')");
    free(vm);
    return 0;
}

int cmd_use(struct cli *c, int argc, char **argv)
{
    struct nerr e = {0};
    char path[128];

    if (cli_wants_help(argc, argv)) {
        printf("Usage: noid use NAME\n\nMake NAME the active VM of this directory: commands "
               "that take a VM name\nuse it when none is given.  Writes ./.noid-vm.\n");
        return 0;
    }
    if (argc != 2) {
        cli_print_error("usage: noid use NAME");
        return CLI_EXIT_USAGE;
    }
    if (name_vm_check(argv[1], &e) < 0) {
        cli_print_error("%s", e.msg);
        return CLI_EXIT_USAGE;
    }
    /* refuse a name the server does not know: a typo here would misdirect
     * every later command in this directory */
    snprintf(path, sizeof(path), "/v1/vms/%s", argv[1]);
    if (cli_api(c, "GET", path, NULL, NULL) < 0)
        return CLI_EXIT_FAIL;
    if (cli_use_write(argv[1], &e) < 0) {
        cli_print_error("%s", e.msg);
        return CLI_EXIT_FAIL;
    }
    printf("Using VM %s in this directory\n", argv[1]);
    return 0;
}
