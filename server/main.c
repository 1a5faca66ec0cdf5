/* main.c — noid-server: dispatch to a subcommand (server/cmd/). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "log.h"
#include "noid-config.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"serve", cmd_serve, "run the API server"},
    {"add-user", cmd_add_user, "create a user and print their token"},
    {"list-users", cmd_list_users, "list users (id, name, created)"},
    {"rotate-token", cmd_rotate_token, "replace a user's token"},
    {"remove-user", cmd_remove_user, "delete a user with all their VMs and storage"},
    {"golden", cmd_golden, "build or promote the golden snapshot VMs start from"},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: noid-server COMMAND [OPTIONS]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-14s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nRun 'noid-server COMMAND --help' for the options of a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (getenv("NOID_DEBUG"))
        log_set_level(LOG_LVL_DEBUG);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("noid-server %s (api %d)\n", NOID_VERSION, NOID_API_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "noid-server: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return EXIT_USAGE;
}
