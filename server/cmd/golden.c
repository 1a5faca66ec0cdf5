/* golden.c — `noid-server golden build|promote`: the golden snapshot from
 * the command line (the server also builds it by itself when missing). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "engine.h"
#include "log.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: noid-server golden build [--force] [--config FILE] [--data-dir DIR]\n"
            "       noid-server golden promote CHECKPOINT_ID [--config FILE] [--data-dir DIR]\n"
            "\n"
            "build    boot a template VM and save it as <data>/golden, from which 'create'\n"
            "         starts VMs; does nothing if the snapshot matches the current kernel,\n"
            "         rootfs, initrd, default size and VMM (--force rebuilds anyway)\n"
            "promote  make a checkpoint (any unique id prefix) the golden snapshot: VMs of\n"
            "         its size then start from it (the provisioning flow)\n");
}

int cmd_golden(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"data-dir", required_argument, NULL, 'd'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *config = NULL, *data_dir = NULL, *action, *id = NULL;
    struct server_config cfg;
    struct engine *eng = NULL;
    struct nerr e = {0};
    bool force = false;
    int c, r;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config = optarg; break;
        case 'd': data_dir = optarg; break;
        case 'f': force = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    action = argv[optind++];
    if (strcmp(action, "promote") == 0) {
        if (optind >= argc) {
            fprintf(stderr, "noid-server golden promote: missing CHECKPOINT_ID\n");
            return EXIT_USAGE;
        }
        id = argv[optind++];
    } else if (strcmp(action, "build") != 0) {
        fprintf(stderr, "noid-server golden: unknown action '%s'\n", action);
        usage(stderr);
        return EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "noid-server golden: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    r = cmd_load_config(config, data_dir, true, &cfg);
    if (r != 0)
        return r;
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
