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

/* One user-management subcommand: its name, whether it takes NAME, its
 * help line, and what it does once the engine is open (prints its result). */
struct admin_cmd {
    const char *name;
    bool takes_name;
    const char *help;
    int (*action)(struct engine *eng, const char *name, struct nerr *e);
};

/* Parse, open the data dir, run the action, report its error once. */
static int run_admin(int argc, char **argv, const struct admin_cmd *c)
{
    struct admin_args a;
    struct server_config cfg;
    struct engine *eng;
    struct nerr e = {0};
    int r = parse(argc, argv, c->name, c->takes_name, c->help, &a);

    if (r >= 0)
        return r;
    r = open_admin(&a, &cfg, &eng);
    if (r != 0)
        return r;
    r = c->action(eng, a.name, &e);
    if (r < 0)
        fprintf(stderr, "noid-server %s: %s\n", c->name, nerr_msg(&e));
    engine_close(eng);
    server_config_free(&cfg);
    return r < 0 ? 1 : 0;
}

static int add_user(struct engine *eng, const char *name, struct nerr *e)
{
    char token[TOKEN_LEN + 1];
    int r = engine_user_add(eng, name, token, NULL, e);

    if (r >= 0)
        printf("%s\n", token);
    return r;
}

static int list_users(struct engine *eng, const char *name, struct nerr *e)
{
    struct db_user *users = NULL;
    size_t n = 0;
    int r = engine_user_list(eng, &users, &n, e);

    if (r < 0)
        return r;
    printf("%-16s  %-32s  %s\n", "ID", "NAME", "CREATED");
    for (size_t i = 0; i < n; i++)
        printf("%-16s  %-32s  %s\n", users[i].id, users[i].name, users[i].created_at);
    free(users);
    return 0;
}

static int rotate_token(struct engine *eng, const char *name, struct nerr *e)
{
    char token[TOKEN_LEN + 1];
    int r = engine_user_rotate_token(eng, name, token, e);

    if (r >= 0)
        printf("%s\n", token);
    return r;
}

static int remove_user(struct engine *eng, const char *name, struct nerr *e)
{
    int r = engine_user_remove(eng, name, e);

    if (r >= 0)
        printf("removed user '%s'\n", name);
    return r;
}

int cmd_add_user(int argc, char **argv)
{
    static const struct admin_cmd c = {
        "add-user", true, "Create a user and print their API token (shown only this once).",
        add_user};
    return run_admin(argc, argv, &c);
}

int cmd_list_users(int argc, char **argv)
{
    static const struct admin_cmd c = {"list-users", false,
                                       "List users: id, name, creation time.", list_users};
    return run_admin(argc, argv, &c);
}

int cmd_rotate_token(int argc, char **argv)
{
    static const struct admin_cmd c = {
        "rotate-token", true, "Give a user a new token; the old one stops working at once.",
        rotate_token};
    return run_admin(argc, argv, &c);
}

int cmd_remove_user(int argc, char **argv)
{
    static const struct admin_cmd c = {
        "remove-user", true, "Delete a user with all their VMs, checkpoints and storage.",
        remove_user};
    return run_admin(argc, argv, &c);
}
