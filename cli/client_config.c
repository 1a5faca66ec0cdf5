/* client_config.c — the CLI's saved login (~/.noid/config.toml, mode 0600)
 * and the per-directory active VM (./.noid-vm). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "fsutil.h"
#include "kvfile.h"
#include "macro.h"
#include "names.h"

#define USE_FILE ".noid-vm"

char *cli_config_path(void)
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
    struct cli *c = user;
    char **slot;

    if (strcmp(key, "url") == 0)
        slot = &c->url;
    else if (strcmp(key, "token") == 0)
        slot = &c->token;
    else
        return nerr_set(e, -EINVAL, "unknown key '%s'", key);
    free(*slot);
    *slot = NULL;
    return kv_value_string(raw, slot, e);
}

int cli_config_load(struct cli *c, struct nerr *e)
{
    const char *env_url = getenv("NOID_URL"), *env_token = getenv("NOID_TOKEN");
    int r;

    c->config_path = cli_config_path();
    if (!c->config_path)
        return -ENOMEM;
    if (path_exists(c->config_path)) {
        r = kvfile_parse_file(c->config_path, set_key, c, e);
        if (r < 0)
            return r;
    }
    if (env_url && *env_url) {
        free(c->url);
        c->url = strdup(env_url);
    }
    if (env_token && *env_token) {
        free(c->token);
        c->token = strdup(env_token);
    }
    return 0;
}

int cli_config_save(const char *path, const char *url, const char *token, struct nerr *e)
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

char *cli_use_read(void)
{
    char *text = NULL;
    size_t len;

    if (read_file(USE_FILE, 4096, &text, &len) < 0)
        return NULL;
    text[strcspn(text, "\r\n")] = 0;
    if (name_vm_check(text, NULL) < 0) {
        free(text);
        return NULL;
    }
    return text;
}

int cli_use_write(const char *name, struct nerr *e)
{
    char line[VM_NAME_MAX + 2];
    int r;

    snprintf(line, sizeof(line), "%s\n", name);
    r = write_file_atomic(USE_FILE, line, strlen(line), 0644);
    if (r < 0)
        return nerr_set(e, r, "cannot write ./%s: %s", USE_FILE, strerror(-r));
    return 0;
}

char *cli_vm_name(const char *explicit_name)
{
    struct nerr e = {0};
    char *name;

    if (explicit_name) {
        if (name_vm_check(explicit_name, &e) < 0) {
            cli_print_error("%s", e.msg);
            return NULL;
        }
        return strdup(explicit_name);
    }
    name = cli_use_read();
    if (!name)
        cli_print_error("no VM name given and no ./%s here (run 'noid use NAME' or pass NAME)",
                        USE_FILE);
    return name;
}
