/* cmd_mount.c — `noid mount DIR` and `noid umount DIR`: the client mount
 * (noidfs/client_mount.h), every VM of the logged-in user a directory. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "client_mount.h"

static void mount_usage(FILE *f)
{
    fprintf(f, "Usage: noid mount [-f] [--log FILE] DIR\n"
               "\n"
               "Mount your VMs at DIR: one directory per VM (mkdir creates one, rmdir\n"
               "destroys it), with info, state, exec, stdout, stderr, status, console,\n"
               "checkpoints/ ... (docs/noidfs.md).  It runs in the background once the\n"
               "mount is ready; 'noid umount DIR' unmounts.\n"
               "\n"
               "  -f, --foreground  stay in the foreground, logging to stderr\n"
               "  --log FILE        log here (default ~/.noid/logs/noidfs-<DIR>.log)\n");
}

int cmd_mount(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"foreground", no_argument, NULL, 'f'},
        {"log", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *log_path = NULL;
    bool foreground = false;
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
        switch (opt) {
        case 'f':
            foreground = true;
            break;
        case 'l':
            log_path = optarg;
            break;
        case 'h':
            mount_usage(stdout);
            return 0;
        default:
            mount_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        cli_print_error("usage: noid mount [-f] [--log FILE] DIR");
        return CLI_EXIT_USAGE;
    }
    if (cli_require_auth(c) < 0)
        return CLI_EXIT_FAIL;
    return noidfs_client_main(c->url, c->token, argv[optind], foreground, log_path) == 0
               ? 0
               : CLI_EXIT_FAIL;
}

int cmd_umount(struct cli *c, int argc, char **argv)
{
    if (cli_wants_help(argc, argv)) {
        printf("Usage: noid umount DIR\n\nUnmount the noidfs mount at DIR (fusermount3 -u).\n");
        return 0;
    }
    if (argc != 2 || argv[1][0] == '-') {
        cli_print_error("usage: noid umount DIR");
        return CLI_EXIT_USAGE;
    }
    return noidfs_client_umount(argv[1], "noid") == 0 ? 0 : CLI_EXIT_FAIL;
}
