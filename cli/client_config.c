/* client_config.c — the CLI's saved login (lib/client_login.h) and the
 * per-directory active VM (./.noid-vm). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "client_login.h"
#include "fsutil.h"
#include "macro.h"
#include "names.h"

#define USE_FILE ".noid-vm"

int cli_config_load(struct cli *c, struct nerr *e)
{
    c->config_path = client_login_path();
    if (!c->config_path)
        return -ENOMEM;
    return client_login_load(c->config_path, &c->url, &c->token, e);
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
