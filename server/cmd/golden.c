/* golden.c — `noid-server golden build|promote|provision`: the golden
 * snapshot from the command line (the server also builds it by itself when
 * missing).  Provisioning is cmd/golden_provision.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "engine.h"
#include "log.h"

/* --timeout: the agent counts milliseconds in 32 bits */
#define PROVISION_TIMEOUT_MAX (30LL * 24 * 3600)

static void usage(FILE *f)
{
    fprintf(f, "Usage: noid-server golden build [--force] [--config FILE] [--data-dir DIR]\n"
               "       noid-server golden promote CHECKPOINT_ID [--config FILE] [--data-dir DIR]\n"
               "       noid-server golden provision [--timeout SECS] [--config FILE]\n"
               "                                    [--data-dir DIR] -- COMMAND...\n"
               "\n"
               "build      boot a template VM and save it as <data>/golden, from which 'create'\n"
               "           starts VMs; does nothing if the snapshot matches the current kernel,\n"
               "           rootfs, initrd, default size and VMM (--force rebuilds anyway)\n"
               "promote    make a checkpoint (any unique id prefix) the golden snapshot: VMs of\n"
               "           its size then start from it (the provisioning flow)\n"
               "provision  the provisioning flow in one command: start a temporary VM from the\n"
               "           golden snapshot (built first if missing or stale), run each COMMAND\n"
               "           in it in order as 'sh -c COMMAND' (stdin /dev/null), its output\n"
               "           shown as it comes after a line '==> COMMAND', then checkpoint the\n"
               "           VM and promote the checkpoint; prints 'golden snapshot ready'.\n"
               "           The first command that exits non-zero, or runs longer than\n"
               "           --timeout SECS (default: no limit), stops it: exit status 1, the\n"
               "           golden snapshot unchanged.  The temporary VM and its checkpoint\n"
               "           are removed in every case; Ctrl-C or SIGTERM stops cleanly (exit\n"
               "           130 or 143).  A running server may stay up: its next create uses\n"
               "           the new snapshot.  Example:\n"
               "             noid-server golden provision -- 'apt-get update' \\\n"
               "                 'apt-get install -y git'\n");
}

int cmd_golden(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"data-dir", required_argument, NULL, 'd'},
        {"force", no_argument, NULL, 'f'},        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {0},
    };
    const char *config = NULL, *data_dir = NULL, *action, *id = NULL;
    struct server_config cfg;
    struct engine *eng = NULL;
    struct nerr e = {0};
    bool force = false, provision = false;
    long long timeout = 0;
    char **commands = NULL, *end;
    int c, r, nopts = argc, ncommands = -1;

    /* provision's commands follow "--": getopt never sees them */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--") == 0) {
            nopts = i;
            commands = argv + i + 1;
            ncommands = argc - i - 1;
            break;
        }
    while ((c = getopt_long(nopts, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'd':
            data_dir = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 't':
            timeout = strtoll(optarg, &end, 10);
            if (!*optarg || *end || timeout < 1 || timeout > PROVISION_TIMEOUT_MAX) {
                fprintf(stderr, "noid-server golden: --timeout takes seconds, 1 to %lld\n",
                        PROVISION_TIMEOUT_MAX);
                return EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= nopts) {
        usage(stderr);
        return EXIT_USAGE;
    }
    action = argv[optind++];
    if (strcmp(action, "promote") == 0) {
        if (optind >= nopts) {
            fprintf(stderr, "noid-server golden promote: missing CHECKPOINT_ID\n");
            return EXIT_USAGE;
        }
        id = argv[optind++];
    } else if (strcmp(action, "provision") == 0) {
        provision = true;
        if (ncommands <= 0) {
            fprintf(stderr, "noid-server golden provision: %s\n",
                    ncommands < 0 ? "give the commands after '--': golden provision -- "
                                    "COMMAND..."
                                  : "no commands after '--'");
            return EXIT_USAGE;
        }
    } else if (strcmp(action, "build") != 0) {
        fprintf(stderr, "noid-server golden: unknown action '%s'\n", action);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (optind < nopts) {
        fprintf(stderr, "noid-server golden: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!provision && (ncommands >= 0 || timeout)) {
        fprintf(stderr, "noid-server golden %s: %s is for 'golden provision'\n", action,
                timeout ? "--timeout" : "'--' with commands");
        return EXIT_USAGE;
    }
    r = cmd_load_config(config, data_dir, true, &cfg);
    if (r != 0)
        return r;
    if (provision) {
        r = cmd_golden_provision(&cfg, commands, ncommands, timeout);
        server_config_free(&cfg);
        return r;
    }
    r = engine_open(&cfg, ENGINE_GOLDEN, &eng, &e);
    if (r >= 0)
        r = id ? engine_golden_promote(eng, id, &e) : engine_golden_ensure(eng, force, &e);
    if (r < 0)
        fprintf(stderr, "noid-server golden %s: %s\n", action, nerr_msg(&e));
    else
        printf("golden snapshot ready\n");
    engine_close(eng);
    server_config_free(&cfg);
    return r < 0 ? 1 : 0;
}
