/* cmd_console.c — `noid console [NAME]`: attach to the VM's serial console
 * (a root shell in the guest) over GET /v1/vms/{name}/console.
 *
 * Our terminal goes raw, so every key (Ctrl-C included) reaches the guest;
 * Ctrl-] detaches and leaves the VM running.  With stdin not a terminal the
 * bytes of stdin are typed into the console and its end detaches. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"
#include "exec_stream.h"

static void usage(FILE *f)
{
    fprintf(f, "Usage: noid console [NAME]\n"
               "\n"
               "Attach to the serial console of the VM (default: the one of ./.noid-vm): a root\n"
               "shell in the guest.  Keys go to the guest as typed, Ctrl-C included; Ctrl-]\n"
               "detaches and leaves the VM running.  Several people may attach at once.\n"
               "When stdin is not a terminal, its bytes are typed into the console and its\n"
               "end detaches.\n");
}

int cmd_console(struct cli *c, int argc, char **argv)
{
    struct exec_stream_opts opts = {.console = true, .forward_stdin = true, .resize = true};
    struct ws_client *wc = NULL;
    char *name = NULL;
    char path[128];
    int r, status = CLI_EXIT_USAGE;

    if (cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        cli_print_error("usage: noid console [NAME]");
        return CLI_EXIT_USAGE;
    }
    name = cli_vm_name(argc == 2 ? argv[1] : NULL);
    if (!name)
        goto out;
    status = CLI_EXIT_FAIL;
    snprintf(path, sizeof(path), "/v1/vms/%s/console", name);
    r = exec_stream_connect(c, path, &wc);
    if (r == -EPROTONOSUPPORT) {
        cli_print_error("the server at %s has no console endpoint (it is older than this "
                        "client)",
                        c->url);
        goto out;
    }
    if (r < 0)
        goto out;
    opts.vm_name = name;
    opts.raw = isatty(STDIN_FILENO);
    fprintf(stderr, "Connected to %s's console; %s detaches.\n", name,
            opts.raw ? "Ctrl-]" : "the end of input");
    status = exec_stream_run(wc, NULL, &opts);
out:
    ws_client_free(wc);
    free(name);
    return status;
}
