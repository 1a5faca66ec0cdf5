/* client_login.c — see client_login.h. */
#include "client_login.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "kvfile.h"
#include "macro.h"

struct login {
    char **url, **token;
};

char *client_login_path(void)
{
    const char *home = getenv("HOME");
    char *p;

    if (!home || !*home)
        home = "/";
    if (asprintf(&p, "%s/.noid/config.toml", home) < 0)
        return NULL;
    return p;
}

static int set_key(void *user, const char *key, const char *raw, int line, struct nerr *e)
{
    struct login *l = user;
    char **slot;

    if (strcmp(key, "url") == 0)
        slot = l->url;
    else if (strcmp(key, "token") == 0)
        slot = l->token;
    else
        return nerr_set(e, -EINVAL, "unknown key '%s'", key);
    free(*slot);
    *slot = NULL;
    return kv_value_string(raw, slot, e);
}

/* Replace *slot by a copy of the environment variable name when it is set
 * and not empty. */
static int override_from_env(const char *name, char **slot)
{
    const char *v = getenv(name);
    char *copy;

    if (!v || !*v)
        return 0;
    copy = strdup(v);
    if (!copy)
        return -ENOMEM;
    free(*slot);
    *slot = copy;
    return 0;
}

int client_login_load(const char *path, char **url, char **token, struct nerr *e)
{
    struct login l = {url, token};
    int r;

    if (path_exists(path)) {
        r = kvfile_parse_file(path, set_key, &l, e);
        if (r < 0)
            return r;
    }
    r = override_from_env("NOID_URL", url);
    if (r < 0)
        return r;
    return override_from_env("NOID_TOKEN", token);
}

int client_login_save(const char *path, const char *url, const char *token, struct nerr *e)
{
    _cleanup_free_ char *dir = strdup(path);
    _cleanup_free_ char *qurl = kv_quote(url), *qtok = kv_quote(token);
    _cleanup_free_ char *text = NULL;
    char *slash;
    int r;

    if (!dir || !qurl || !qtok)
        return -ENOMEM;
    slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        r = mkdir_p(dir, 0700);
        if (r < 0)
            return nerr_set(e, r, "cannot create %s: %s", dir, strerror(-r));
    }
    if (asprintf(&text, "# written by 'noid auth setup'\nurl = %s\ntoken = %s\n", qurl, qtok) < 0) {
        text = NULL;
        return -ENOMEM;
    }
    r = write_file_atomic(path, text, strlen(text), 0600);
    if (r < 0)
        return nerr_set(e, r, "cannot write %s: %s", path, strerror(-r));
    return 0;
}
