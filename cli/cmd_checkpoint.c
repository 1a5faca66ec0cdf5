/* cmd_checkpoint.c — checkpoint, checkpoints, restore, checkpoint-rm. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "names.h"
#include "wire.h"

/* Split positional args [NAME] X: with two, the first is the VM; with one,
 * the VM comes from ./.noid-vm. Returns the VM name (malloc'd) or NULL. */
static char *vm_and_arg(int npos, char **pos, const char **ret_arg)
{
    if (npos == 2) {
        *ret_arg = pos[1];
        return cli_vm_name(pos[0]);
    }
    *ret_arg = pos[0];
    return cli_vm_name(NULL);
}

static void print_checkpoint_row(const struct wire_checkpoint *c)
{
    printf("%-16s  %-24s  %-20s  %6lld ms  %8.1f MiB\n", c->id, c->label ? c->label : "-",
           c->created_at, c->pause_ms, (double)c->size_bytes / (1024.0 * 1024.0));
}

int cmd_checkpoint(struct cli *c, int argc, char **argv)
{
    struct wire_checkpoint_req req = {0};
    struct wire_checkpoint cp = {0};
    struct nerr e = {0};
    const char *name = NULL;
    json_object *o = NULL;
    char path[128];
    char *vm;
    int status = CLI_EXIT_FAIL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("Usage: noid checkpoint [NAME] [--label LABEL]\n\n"
                   "Save the VM's memory, CPU state, disk and console log without stopping it\n"
                   "(it pauses for a moment).  Prints the checkpoint id.\n");
            return 0;
        } else if ((strcmp(argv[i], "--label") == 0 || strcmp(argv[i], "-l") == 0) &&
                   i + 1 < argc) {
            req.label = argv[++i];
            if (name_label_check(req.label, strlen(req.label), &e) < 0) {
                cli_print_error("%s", e.msg);
                return CLI_EXIT_USAGE;
            }
        } else if (argv[i][0] != '-' && !name) {
            name = argv[i];
        } else {
            cli_print_error("unexpected argument '%s'", argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    vm = cli_vm_name(name);
    if (!vm)
        return CLI_EXIT_USAGE;
    snprintf(path, sizeof(path), "/v1/vms/%s/checkpoints", vm);
    if (cli_api(c, "POST", path, wire_checkpoint_req_encode(&req), &o) < 0)
        goto out;
    if (wire_checkpoint_decode(o, &cp, &e) < 0) {
        cli_print_error("unexpected reply: %s", e.msg);
        goto out;
    }
    printf("%s\n", cp.id);
    fprintf(stderr, "Checkpoint %s of %s%s%s (paused %lld ms)\n", cp.id, vm,
            cp.label ? ", label " : "", cp.label ? cp.label : "", cp.pause_ms);
    status = 0;
out:
    json_object_put(o);
    wire_checkpoint_free(&cp);
    free(vm);
    return status;
}

int cmd_checkpoints(struct cli *c, int argc, char **argv)
{
    json_object *arr = NULL;
    const char *name = NULL;
    bool json = false;
    char path[128];
    char *vm;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("Usage: noid checkpoints [NAME] [--json]\n\nList a VM's checkpoints.\n");
            return 0;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (argv[i][0] != '-' && !name) {
            name = argv[i];
        } else {
            cli_print_error("unexpected argument '%s'", argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    vm = cli_vm_name(name);
    if (!vm)
        return CLI_EXIT_USAGE;
    snprintf(path, sizeof(path), "/v1/vms/%s/checkpoints", vm);
    free(vm);
    if (cli_api(c, "GET", path, NULL, &arr) < 0)
        return CLI_EXIT_FAIL;
    if (json) {
        printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY));
        json_object_put(arr);
        return 0;
    }
    printf("%-16s  %-24s  %-20s  %9s  %12s\n", "ID", "LABEL", "CREATED", "PAUSE", "SIZE");
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        struct wire_checkpoint cp = {0};
        if (wire_checkpoint_decode(json_object_array_get_idx(arr, i), &cp, NULL) == 0)
            print_checkpoint_row(&cp);
        wire_checkpoint_free(&cp);
    }
    json_object_put(arr);
    return 0;
}

int cmd_restore(struct cli *c, int argc, char **argv)
{
    struct wire_restore_req req = {0};
    struct wire_vm_info info = {0};
    struct nerr e = {0};
    char *pos[2];
    int npos = 0;
    json_object *o = NULL;
    char path[128];
    char *vm;
    const char *id;
    int status = CLI_EXIT_FAIL;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("Usage: noid restore [NAME] CHECKPOINT [--as NEW]\n\n"
                   "Put the VM back to a checkpoint (any unique id prefix), or with --as start a\n"
                   "new VM NEW from it (a clone: own disk, own identity).\n");
            return 0;
        } else if (strcmp(argv[i], "--as") == 0 && i + 1 < argc) {
            req.new_name = argv[++i];
            if (name_vm_check(req.new_name, &e) < 0) {
                cli_print_error("%s", e.msg);
                return CLI_EXIT_USAGE;
            }
        } else if (argv[i][0] != '-' && npos < 2) {
            pos[npos++] = argv[i];
        } else {
            cli_print_error("unexpected argument '%s'", argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    if (npos == 0) {
        cli_print_error("usage: noid restore [NAME] CHECKPOINT [--as NEW]");
        return CLI_EXIT_USAGE;
    }
    vm = vm_and_arg(npos, pos, &id);
    if (!vm)
        return CLI_EXIT_USAGE;
    req.checkpoint_id = (char *)id;
    snprintf(path, sizeof(path), "/v1/vms/%s/restore", vm);
    if (cli_api(c, "POST", path, wire_restore_req_encode(&req), &o) < 0)
        goto out;
    if (wire_vm_info_decode(o, &info, &e) < 0) {
        cli_print_error("unexpected reply: %s", e.msg);
        goto out;
    }
    if (req.new_name)
        printf("Created VM %s from checkpoint %s of %s\n", info.name, info.restored_from, vm);
    else
        printf("Restored VM %s to checkpoint %s\n", info.name, info.restored_from);
    status = 0;
out:
    json_object_put(o);
    wire_vm_info_free(&info);
    free(vm);
    return status;
}

int cmd_checkpoint_rm(struct cli *c, int argc, char **argv)
{
    char *pos[2];
    int npos = 0;
    char path[256];
    const char *id;
    char *vm;
    int r;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("Usage: noid checkpoint-rm [NAME] CHECKPOINT\n\n"
                   "Delete a checkpoint (any unique id prefix) and its storage.\n");
            return 0;
        } else if (argv[i][0] != '-' && npos < 2) {
            pos[npos++] = argv[i];
        } else {
            cli_print_error("unexpected argument '%s'", argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    if (npos == 0) {
        cli_print_error("usage: noid checkpoint-rm [NAME] CHECKPOINT");
        return CLI_EXIT_USAGE;
    }
    vm = vm_and_arg(npos, pos, &id);
    if (!vm)
        return CLI_EXIT_USAGE;
    snprintf(path, sizeof(path), "/v1/vms/%s/checkpoints/%.64s", vm, id);
    r = cli_api(c, "DELETE", path, NULL, NULL);
    if (r >= 0)
        printf("Deleted checkpoint %s of %s\n", id, vm);
    free(vm);
    return r < 0 ? CLI_EXIT_FAIL : 0;
}
