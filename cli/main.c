/* main.c — noid, the command-line client: global options, then one
 * subcommand (cmd_*.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "noid-config.h"

static const struct {
    const char *name;
    int (*fn)(struct cli *, int, char **);
    const char *help;
} commands[] = {
    {"auth", cmd_auth, "auth setup --url URL --token TOKEN: log in"},
    {"whoami", cmd_whoami, "show who the saved token belongs to"},
    {"current", cmd_current, "show the server and the active VM of this directory"},
    {"use", cmd_use, "make a VM the active one of this directory"},
    {"create", cmd_create, "create a VM"},
    {"list", cmd_list, "list your VMs"},
    {"info", cmd_info, "show a VM"},
    {"destroy", cmd_destroy, "destroy a VM"},
    {"cp", cmd_cp, "copy files and trees between here and a VM (NAME:/path; -r: directories)"},
    {"exec", cmd_exec, "run a command in a VM (-t: with a terminal; no command: a shell)"},
    {"console", cmd_console, "attach to a VM's serial console (Ctrl-] detaches)"},
    {"checkpoint", cmd_checkpoint, "save a VM's whole state without stopping it"},
    {"checkpoints", cmd_checkpoints, "list a VM's checkpoints"},
    {"restore", cmd_restore, "restore a VM to a checkpoint, or clone it (--as NEW)"},
    {"checkpoint-rm", cmd_checkpoint_rm, "delete a checkpoint"},
    {"mount", cmd_mount, "mount your VMs as directories (-f: in the foreground)"},
    {"umount", cmd_umount, "unmount a 'noid mount'"},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: noid COMMAND [ARGS]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nNAME defaults to the VM of ./.noid-vm (see 'noid use').\n"
               "Environment: NOID_URL, NOID_TOKEN override the saved login;\n"
               "HTTP proxies are ignored unless NOID_USE_SYSTEM_PROXY=1.\n"
               "Run 'noid COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
    struct cli c = {0};
    struct nerr e = {0};
    int status = CLI_EXIT_USAGE;

    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("noid %s (api %d)\n", NOID_VERSION, NOID_API_VERSION);
        return 0;
    }
    http_global_init();
    if (cli_config_load(&c, &e) < 0) {
        cli_print_error("%s", e.msg);
        return CLI_EXIT_FAIL;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            status = commands[i].fn(&c, argc - 1, argv + 1);
            goto out;
        }
    cli_print_error("unknown command '%s'", argv[1]);
    usage(stderr);
out:
    http_client_free(c.http);
    free(c.url);
    free(c.token);
    free(c.config_path);
    return status;
}
