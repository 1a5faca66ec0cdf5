/* main.c — noidfs, the client mount as an executable of its own: the same
 * as `noid mount`, with the login the CLI saved (lib/client_login.h). */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_login.h"
#include "client_mount.h"
#include "macro.h"
#include "noid-config.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: noidfs [-f] [--log FILE] [--url URL] DIR\n"
               "\n"
               "Mount your noid VMs at DIR: one directory per VM, with info, state,\n"
               "exec, stdout, stderr, status, console, checkpoints/ ... (docs/noidfs.md).\n"
               "It runs in the background once the mount is ready; 'noid umount DIR'\n"
               "or 'fusermount3 -u DIR' unmounts.\n"
               "\n"
               "  -f, --foreground  stay in the foreground, logging to stderr\n"
               "  --log FILE        log here (default ~/.noid/logs/noidfs-<DIR>.log)\n"
               "  --url URL         the server (default: the saved login's)\n"
               "  -h, --help        this help\n"
               "  --version         the version\n"
               "\n"
               "The token is the one saved by 'noid auth setup' (~/.noid/config.toml);\n"
               "NOID_URL and NOID_TOKEN override the saved login.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"foreground", no_argument, NULL, 'f'}, {"log", required_argument, NULL, 'l'},
        {"url", required_argument, NULL, 'u'},  {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},    {0},
    };
    _cleanup_free_ char *config = NULL;
    _cleanup_free_ char *url = NULL;
    _cleanup_free_ char *token = NULL;
    const char *url_opt = NULL, *log_path = NULL;
    bool foreground = false;
    struct nerr e = {0};
    int opt;

    while ((opt = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
        switch (opt) {
        case 'f':
            foreground = true;
            break;
        case 'l':
            log_path = optarg;
            break;
        case 'u':
            url_opt = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("noidfs %s (api %d)\n", NOID_VERSION, NOID_API_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "noidfs: %s\n", optind >= argc ? "no DIR given" : "one DIR only");
        usage(stderr);
        return 2;
    }
    config = client_login_path();
    if (!config || client_login_load(config, &url, &token, &e) < 0) {
        fprintf(stderr, "noidfs: %s\n", config ? nerr_msg(&e) : "out of memory");
        return 1;
    }
    return noidfs_client_main(url_opt ? url_opt : url, token, argv[optind], foreground, log_path);
}
