/* serve.c — `noid-server serve`: load the config, open the engine, serve the
 * REST API (and the noidfs mount, when configured) until SIGTERM/SIGINT.
 * VMs are left running on exit on purpose: they outlive the server and are
 * picked up again at the next start. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "engine.h"
#include "engine_ops.h"
#include "fsutil.h"
#include "http.h"
#include "log.h"
#include "metrics_http.h"
#include "noidfs.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: noid-server serve [--config FILE] [--data-dir DIR] [--listen ADDR:PORT]\n"
            "                         [--metrics-listen ADDR:PORT] [--mount DIR]\n"
            "\n"
            "Run the noid API server.  Without --config the embedded defaults are used:\n"
            "QEMU, SQLite in ~/.noid, and the guest image built by scripts/build-guest.sh.\n"
            "\n"
            "  --config FILE      server.toml to read\n"
            "  --data-dir DIR     data directory (default: data_dir from the config, ~/.noid)\n"
            "  --listen ADDR:PORT override the listen address (\"127.0.0.1:0\" = any free port)\n"
            "  --metrics-listen ADDR:PORT\n"
            "                     override metrics_listen, where GET /metrics (Prometheus)\n"
            "                     is served (\"\" = none; default 127.0.0.1:7655)\n"
            "  --mount DIR        mount every user's VMs as directories at DIR (noidfs;\n"
            "                     overrides noidfs_mount from the config)\n"
            "  -h, --help         show this help\n");
}

/* HTTP connections, VM agent sockets and the database all take file
 * descriptors, and the usual soft limit (1024, kept low for select(), which
 * we do not use) would cap them far below what the hard limit allows.  Raise
 * it; http.c sizes its connection limit from the result. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        log_warn("cannot raise the open-file limit to %llu: %s", (unsigned long long)rl.rlim_max,
                 strerror(errno));
}

/* dir as an absolute path in *ret (malloc'd; replaces what was there),
 * without resolving it: a stale mount there cannot be stat'ed. */
static int mount_dir_absolute(const char *dir, char **ret)
{
    _cleanup_free_ char *cwd = NULL;
    char *p;

    if (dir[0] == '\0')
        return -EINVAL;
    if (dir[0] == '/') {
        p = strdup(dir);
    } else {
        cwd = getcwd(NULL, 0);
        if (!cwd)
            return -errno;
        p = path_join(cwd, dir);
    }
    if (!p)
        return -ENOMEM;
    free(*ret);
    *ret = p;
    return 0;
}

/* The server-side noidfs mount (DESIGN.md §9) at dir, created 0755 if
 * missing (a stale mount left by a crash is cleared by noidfs_mount), its
 * requests served on threads of its own.  Everything not given to a local
 * account belongs to the server's user; each user's directory to the local
 * account of the same name, if any. */
static int mount_noidfs(struct engine *eng, const char *dir, struct noidfs **ret, struct nerr *e)
{
    struct noidfs_options o = {
        .mountpoint = dir,
        .fsname = "noid",
        .uid = getuid(),
        .gid = getgid(),
        .per_user_owners = true,
    };
    struct noidfs *fs = NULL;
    struct stat st;
    int r;

    r = mkdir_p(dir, 0755);
    if (r < 0)
        return nerr_set(e, r, "cannot create the mount point: %s", strerror(-r));
    /* the kernel mounts a FUSE root on a file too; a dead mount there
     * (ENOTCONN) is for noidfs_mount to clear */
    if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
        return nerr_set(e, -ENOTDIR, "the mount point is not a directory");
    r = noidfs_mount(&noidfs_engine_ops, eng, &o, &fs, e);
    if (r < 0)
        return r;
    r = noidfs_start(fs, e);
    if (r < 0) {
        noidfs_free(fs);
        return r;
    }
    *ret = fs;
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"data-dir", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"metrics-listen", required_argument, NULL, 'M'},
        {"mount", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *config_path = NULL, *data_dir = NULL, *listen_addr = NULL, *mount_dir = NULL;
    const char *metrics_addr = NULL;
    struct server_config cfg;
    struct engine *eng = NULL;
    struct api_server *api = NULL;
    struct metrics_http *metrics = NULL;
    struct noidfs *fs = NULL;
    struct nerr e = {0};
    sigset_t set;
    int c, sig, r, status = 1;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'd': data_dir = optarg; break;
        case 'l': listen_addr = optarg; break;
        case 'M': metrics_addr = optarg; break;
        case 'm': mount_dir = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "noid-server serve: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    r = cmd_load_config(config_path, data_dir, true, &cfg);
    if (r != 0)
        return r;
    if (listen_addr) {
        free(cfg.listen);
        cfg.listen = strdup(listen_addr);
    }
    if (metrics_addr) {
        free(cfg.metrics_listen);
        cfg.metrics_listen = strdup(metrics_addr);
    }
    if (!cfg.listen || !cfg.metrics_listen) {
        fprintf(stderr, "noid-server: out of memory\n");
        server_config_free(&cfg);
        return 1;
    }
    if (mount_dir) {
        r = mount_dir_absolute(mount_dir, &cfg.noidfs_mount);
        if (r < 0) {
            fprintf(stderr, "noid-server: --mount %s: %s\n", mount_dir, strerror(-r));
            server_config_free(&cfg);
            return EXIT_USAGE;
        }
    }

    /* Signals are taken synchronously by this thread; every thread started
     * from here on inherits the blocked mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    r = engine_open(&cfg, ENGINE_SERVE, &eng, &e);
    if (r < 0) {
        fprintf(stderr, "noid-server: %s\n", nerr_msg(&e));
        goto out;
    }
    r = api_server_start(eng, &cfg, &api, &e);
    if (r < 0) {
        fprintf(stderr, "noid-server: %s\n", nerr_msg(&e));
        goto out;
    }
    if (cfg.metrics_listen[0]) {
        r = metrics_http_start(eng, &cfg, cfg.metrics_listen, &metrics, &e);
        if (r < 0) {
            fprintf(stderr, "noid-server: %s\n", nerr_msg(&e));
            goto out;
        }
    }
    if (cfg.noidfs_mount) {
        r = mount_noidfs(eng, cfg.noidfs_mount, &fs, &e);
        if (r < 0) {
            fprintf(stderr, "noid-server: cannot mount noidfs at %s: %s\n", cfg.noidfs_mount,
                    nerr_msg(&e));
            goto out;
        }
        log_info("noidfs mounted at %s", cfg.noidfs_mount);
    }
    if (cfg.golden)
        engine_golden_ensure_async(eng);
    /* before the "listening" line: a test that saw that one finds this */
    if (metrics) {
        printf("noid-server metrics on %s\n", metrics_http_address(metrics));
        log_info("metrics served on http://%s/metrics", metrics_http_address(metrics));
    }
    printf("noid-server listening on %s\n", api_server_address(api));
    fflush(stdout);
    log_info("noid-server listening on %s (data dir %s, config %s)", api_server_address(api),
             cfg.data_dir, cfg.source);

    do
        r = sigwait(&set, &sig);
    while (r == EINTR);
    log_info("received %s; shutting down (VMs keep running)", strsignal(sig));
    status = 0;
out:
    /* first: the mount's threads and the scrapes call into the engine */
    noidfs_free(fs);
    metrics_http_stop(metrics);
    api_server_stop(api);
    engine_close(eng);
    server_config_free(&cfg);
    return status;
}

int cmd_load_config(const char *config_path, const char *data_dir, bool need_vm_files,
                    struct server_config *c)
{
    struct nerr e = {0};
    int r;

    r = server_config_init(c);
    if (r < 0) {
        fprintf(stderr, "noid-server: out of memory\n");
        return 1;
    }
    if (config_path)
        r = server_config_load_file(c, config_path, &e);
    else if (need_vm_files)
        r = server_config_load_embedded(c, &e);
    if (r < 0) {
        fprintf(stderr, "noid-server: %s\n", nerr_msg(&e));
        server_config_free(c);
        return EXIT_USAGE;
    }
    if (data_dir) {
        free(c->data_dir);
        c->data_dir = strdup(data_dir);
    }
    if (need_vm_files) {
        const char *keys[] = {"kernel", "rootfs", "initrd"};
        const char *vals[] = {c->kernel, c->rootfs, c->initrd};
        for (size_t i = 0; i < 3; i++) {
            char where[300];
            if (!vals[i] || access(vals[i], R_OK) == 0)
                continue;
            server_config_where(c, keys[i], where, sizeof(where));
            fprintf(stderr, "noid-server: %s: %s %s: %s%s\n", where, keys[i], vals[i],
                    strerror(errno),
                    config_path ? "" : " (build the guest image with scripts/build-guest.sh)");
            server_config_free(c);
            return EXIT_USAGE;
        }
    }
    return 0;
}
