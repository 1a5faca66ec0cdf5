/* user_admin.c — add-user, list-users, rotate-token, remove-user: the
 * guide's user management, run against the data dir while the server may be
 * running (SQLite WAL lets both use the database). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "engine.h"
#include "macro.h"

struct admin_args {
    const char *name;
    const char *config;
    const char *data_dir;
};

static void usage(FILE *f, const char *cmd, bool takes_name, const char *what)
{
    fprintf(f,
            "Usage: noid-server %s%s [--config FILE] [--data-dir DIR]\n"
            "\n"
            "%s\n"
            "\n"
            "  --config FILE   server.toml (for its data_dir)\n"
            "  --data-dir DIR  data directory (default ~/.noid)\n"
            "  -h, --help      show this help\n",
            cmd, takes_name ? " NAME" : "", what);
}

/* Returns -1 to go on, else an exit status. */
static int parse(int argc, char **argv, const char *cmd, bool takes_name, const char *what,
                 struct admin_args *a)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"data-dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int c;

    memset(a, 0, sizeof(*a));
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': a->config = optarg; break;
        case 'd': a->data_dir = optarg; break;
        case 'h': usage(stdout, cmd, takes_name, what); return 0;
        default: usage(stderr, cmd, takes_name, what); return EXIT_USAGE;
        }
    }
    if (takes_name) {
        if (optind >= argc) {
            fprintf(stderr, "noid-server %s: missing NAME\n", cmd);
            usage(stderr, cmd, takes_name, what);
            return EXIT_USAGE;
        }
        a->name = argv[optind++];
    }
    if (optind < argc) {
        fprintf(stderr, "noid-server %s: unexpected argument '%s'\n", cmd, argv[optind]);
        return EXIT_USAGE;
    }
    return -1;
}

static int open_admin(const struct admin_args *a, struct server_config *cfg, struct engine **eng)
{
    struct nerr e = {0};
    int r = cmd_load_config(a->config, a->data_dir, false, cfg);

    if (r != 0)
        return r;
    if (engine_open(cfg, ENGINE_ADMIN, eng, &e) < 0) {
        fprintf(stderr, "noid-server: %s\n", nerr_msg(&e));
        server_config_free(cfg);
        return 1;
    }
    return 0;
}

static void close_admin(struct server_config *cfg, struct engine *eng)
{
    engine_close(eng);
    server_config_free(cfg);
}

int cmd_add_user(int argc, char **argv)
{
    struct admin_args a;
    struct server_config cfg;
    struct engine *eng;
    struct nerr e = {0};
    char token[TOKEN_LEN + 1];
    int r = parse(argc, argv, "add-user", true,
                  "Create a user and print their API token (shown only this once).", &a);

    if (r >= 0)
        return r;
    r = open_admin(&a, &cfg, &eng);
    if (r != 0)
        return r;
    r = engine_user_add(eng, a.name, token, NULL, &e);
    if (r < 0)
        fprintf(stderr, "noid-server add-user: %s\n", nerr_msg(&e));
    else
        printf("%s\n", token);
    close_admin(&cfg, eng);
    return r < 0 ? 1 : 0;
}

int cmd_list_users(int argc, char **argv)
{
    struct admin_args a;
    struct server_config cfg;
    struct engine *eng;
    struct nerr e = {0};
    struct db_user *users = NULL;
    size_t n = 0;
    int r = parse(argc, argv, "list-users", false, "List users: id, name, creation time.", &a);

    if (r >= 0)
        return r;
    r = open_admin(&a, &cfg, &eng);
    if (r != 0)
        return r;
    r = engine_user_list(eng, &users, &n, &e);
    if (r < 0) {
        fprintf(stderr, "noid-server list-users: %s\n", nerr_msg(&e));
    } else {
        printf("%-16s  %-32s  %s\n", "ID", "NAME", "CREATED");
        for (size_t i = 0; i < n; i++)
            printf("%-16s  %-32s  %s\n", users[i].id, users[i].name, users[i].created_at);
    }
    free(users);
    close_admin(&cfg, eng);
    return r < 0 ? 1 : 0;
}

int cmd_rotate_token(int argc, char **argv)
{
    struct admin_args a;
    struct server_config cfg;
    struct engine *eng;
    struct nerr e = {0};
    char token[TOKEN_LEN + 1];
    int r = parse(argc, argv, "rotate-token", true,
                  "Give a user a new token; the old one stops working at once.", &a);

    if (r >= 0)
        return r;
    r = open_admin(&a, &cfg, &eng);
    if (r != 0)
        return r;
    r = engine_user_rotate_token(eng, a.name, token, &e);
    if (r < 0)
        fprintf(stderr, "noid-server rotate-token: %s\n", nerr_msg(&e));
    else
        printf("%s\n", token);
    close_admin(&cfg, eng);
    return r < 0 ? 1 : 0;
}

int cmd_remove_user(int argc, char **argv)
{
    struct admin_args a;
    struct server_config cfg;
    struct engine *eng;
    struct nerr e = {0};
    int r = parse(argc, argv, "remove-user", true,
                  "Delete a user with all their VMs, checkpoints and storage.", &a);

    if (r >= 0)
        return r;
    r = open_admin(&a, &cfg, &eng);
    if (r != 0)
        return r;
    r = engine_user_remove(eng, a.name, &e);
    if (r < 0)
        fprintf(stderr, "noid-server remove-user: %s\n", nerr_msg(&e));
    else
        printf("removed user '%s'\n", a.name);
    close_admin(&cfg, eng);
    return r < 0 ? 1 : 0;
}
