/* cmd_auth.c — `noid auth setup`: check a URL + token against the server
 * (version, then whoami) before saving them; nothing is written on failure. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "client_login.h"
#include "noid-config.h"
#include "token.h"
#include "wire.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: noid auth setup --url URL --token TOKEN\n"
               "\n"
               "Check the token against the server and save both in ~/.noid/config.toml\n"
               "(mode 0600).  Nothing is saved if the server cannot be reached or refuses\n"
               "the token.\n"
               "\n"
               "  --url URL      the server, e.g. http://127.0.0.1:7654\n"
               "  --token TOKEN  the token printed by 'noid-server add-user'\n");
}

static int check_version(struct cli *c)
{
    struct http_response resp;
    struct nerr e = {0};
    json_object *o = NULL;
    struct wire_version v = {0};
    int r;

    r = http_client_request(c->http, "GET", "/version", NULL, 0, &resp, &e);
    if (r < 0) {
        cli_print_error("%s", e.msg);
        return r;
    }
    if (resp.status != 200 ||
        wire_parse_object((char *)resp.body.data, resp.body.len, &o, &e) < 0 ||
        wire_version_decode(o, &v, &e) < 0) {
        cli_print_error("%s does not look like a noid server (GET /version gave HTTP %ld)",
                        c->url, resp.status);
        r = -EPROTO;
    } else if (v.api_version != NOID_API_VERSION) {
        cli_print_error("the server at %s speaks API version %lld, this client needs %d "
                        "(upgrade the %s)",
                        c->url, v.api_version, NOID_API_VERSION,
                        v.api_version < NOID_API_VERSION ? "server" : "client");
        r = -EPROTO;
    }
    json_object_put(o);
    wire_version_free(&v);
    http_response_free(&resp);
    return r;
}

int cmd_auth(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"token", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *url = NULL, *token = NULL;
    struct wire_whoami who = {0};
    struct nerr e = {0};
    json_object *o = NULL;
    int opt, r;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : 0;
    }
    if (strcmp(argv[1], "setup") != 0) {
        cli_print_error("unknown auth command '%s'", argv[1]);
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    argc--;
    argv++;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'u': url = optarg; break;
        case 't': token = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return CLI_EXIT_USAGE;
        }
    }
    if (!url || !token) {
        cli_print_error("both --url and --token are required");
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        cli_print_error("--url must start with http:// or https://");
        return CLI_EXIT_USAGE;
    }
    if (!token_is_well_formed(token)) {
        cli_print_error("--token does not look like a noid token (noid_tok_ + 64 hex digits)");
        return CLI_EXIT_USAGE;
    }
    free(c->url);
    free(c->token);
    c->url = strdup(url);
    c->token = strdup(token);
    http_client_free(c->http);
    c->http = NULL;
    if (cli_require_auth(c) < 0 || check_version(c) < 0)
        return CLI_EXIT_FAIL;
    r = cli_api(c, "GET", "/v1/whoami", NULL, &o);
    if (r < 0)
        return CLI_EXIT_FAIL;
    r = wire_whoami_decode(o, &who, &e);
    json_object_put(o);
    if (r < 0) {
        cli_print_error("unexpected whoami reply: %s", e.msg);
        return CLI_EXIT_FAIL;
    }
    r = client_login_save(c->config_path, url, token, &e);
    if (r < 0) {
        cli_print_error("%s", e.msg);
        wire_whoami_free(&who);
        return CLI_EXIT_FAIL;
    }
    printf("Logged in to %s as %s (user id %s); saved in %s\n", url, who.name, who.user_id,
           c->config_path);
    wire_whoami_free(&who);
    return 0;
}
