/* cmd_checkpoint.c — checkpoint, checkpoints, restore, checkpoint-rm. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "names.h"
#include "wire.h"

/* Parse "[NAME] CHECKPOINT" plus, when as_opt is given, "--as NEW".  With
 * two positionals the first is the VM, with one the VM comes from
 * ./.noid-vm.  Returns -1 to go on (*ret_vm malloc'd, *ret_id set), else the
 * exit status (help printed, or a usage error reported). */
static int parse_vm_checkpoint(int argc, char **argv, const char *usage, const char *help,
                               const char **as_opt, char **ret_vm, const char **ret_id)
{
    struct nerr e = {0};
    char *pos[2];
    int npos = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("Usage: %s\n\n%s\n", usage, help);
            return 0;
        } else if (as_opt && strcmp(argv[i], "--as") == 0 && i + 1 < argc) {
            *as_opt = argv[++i];
            if (name_vm_check(*as_opt, &e) < 0) {
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
        cli_print_error("usage: %s", usage);
        return CLI_EXIT_USAGE;
    }
    *ret_id = pos[npos - 1];
    *ret_vm = cli_vm_name(npos == 2 ? pos[0] : NULL);
    return *ret_vm ? -1 : CLI_EXIT_USAGE;
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
    const char *new_name = NULL, *id = NULL;
    json_object *o = NULL;
    char path[128];
    char *vm = NULL;
    int status;

    status = parse_vm_checkpoint(argc, argv, "noid restore [NAME] CHECKPOINT [--as NEW]",
                                 "Put the VM back to a checkpoint (any unique id prefix), or "
                                 "with --as start a\nnew VM NEW from it (a clone: own disk, "
                                 "own identity).",
                                 &new_name, &vm, &id);
    if (status >= 0)
        return status;
    status = CLI_EXIT_FAIL;
    req.checkpoint_id = (char *)id;
    req.new_name = (char *)new_name;
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
    const char *id = NULL;
    char path[256];
    char *vm = NULL;
    int r;

    r = parse_vm_checkpoint(argc, argv, "noid checkpoint-rm [NAME] CHECKPOINT",
                            "Delete a checkpoint (any unique id prefix) and its storage.", NULL,
                            &vm, &id);
    if (r >= 0)
        return r;
    snprintf(path, sizeof(path), "/v1/vms/%s/checkpoints/%.64s", vm, id);
    r = cli_api(c, "DELETE", path, NULL, NULL);
    if (r >= 0)
        printf("Deleted checkpoint %s of %s\n", id, vm);
    free(vm);
    return r < 0 ? CLI_EXIT_FAIL : 0;
}
