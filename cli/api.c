/* api.c — one REST call with the CLI's error reporting: the server's
 * {"error"} message, plus what to do for the statuses a person can act on. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "noid-config.h"
#include "wire.h"

void cli_print_error(const char *fmt, ...)
{
    va_list ap;

    fputs("noid: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

bool cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return true;
    }
    return false;
}

int cli_require_auth(struct cli *c)
{
    if (!c->url || !c->token) {
        cli_print_error("not logged in: run 'noid auth setup --url URL --token TOKEN' first "
                        "(or set NOID_URL and NOID_TOKEN)");
        return -EACCES;
    }
    if (!c->http && http_client_new(c->url, c->token, &c->http) < 0) {
        cli_print_error("out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* A 404 for an endpoint the server does not know: tell whether the server
 * speaks another API version. */
static void explain_unknown_endpoint(struct cli *c, const char *msg)
{
    struct http_response resp;
    struct nerr e = {0};
    json_object *o = NULL;
    struct wire_version v = {0};

    if (http_client_request(c->http, "GET", "/version", NULL, 0, &resp, &e) == 0 &&
        resp.status == 200 &&
        wire_parse_object((char *)resp.body.data, resp.body.len, &o, &e) == 0 &&
        wire_version_decode(o, &v, &e) == 0 && v.api_version != NOID_API_VERSION) {
        cli_print_error("the server at %s speaks API version %lld, this client needs %d "
                        "(server %s too old or too new)",
                        c->url, v.api_version, NOID_API_VERSION, v.version);
    } else {
        cli_print_error("%s (is the server older than this client?)", msg);
    }
    json_object_put(o);
    wire_version_free(&v);
    if (resp.body.data)
        http_response_free(&resp);
}

int cli_report_http_error(struct cli *c, long status, const char *msg)
{
    switch (status) {
    case 401:
        cli_print_error("%s. Run 'noid auth setup --url %s --token TOKEN' with a valid token.", msg,
                        c->url);
        return -EACCES;
    case 429:
        cli_print_error("%s. Wait before trying again.", msg);
        return -EAGAIN;
    case 404:
        if (strncmp(msg, "no such endpoint", 16) == 0)
            explain_unknown_endpoint(c, msg);
        else
            cli_print_error("%s", msg);
        return -ENOENT;
    case 409:
        cli_print_error("%s", msg);
        return -EBUSY;
    default:
        cli_print_error("%s (HTTP %ld)", msg, status);
        return -EIO;
    }
}

int cli_api(struct cli *c, const char *method, const char *path, json_object *body,
            json_object **ret_json)
{
    struct http_response resp = {0};
    struct nerr e = {0};
    const char *text = NULL;
    size_t len = 0;
    json_object *o = NULL, *err;
    int r;

    r = cli_require_auth(c);
    if (r < 0) {
        json_object_put(body);
        return r;
    }
    if (body)
        text = wire_to_string(body, &len);
    r = http_client_request(c->http, method, path, text, len, &resp, &e);
    json_object_put(body);
    if (r < 0) {
        cli_print_error("%s", e.msg);
        return r;
    }
    if (resp.body.len > 0)
        wire_parse_value((char *)resp.body.data, resp.body.len, &o, NULL);
    if (resp.status >= 200 && resp.status < 300) {
        if (ret_json)
            *ret_json = o;
        else
            json_object_put(o);
        http_response_free(&resp);
        return 0;
    }
    const char *msg = o && json_object_object_get_ex(o, "error", &err)
                          ? json_object_get_string(err)
                          : (resp.body.len ? (char *)resp.body.data : "no details");
    r = cli_report_http_error(c, resp.status, msg);
    json_object_put(o);
    http_response_free(&resp);
    return r;
}
