/* cmd_vm.c — create, list, info, destroy. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "names.h"
#include "wire.h"

static int parse_long(const char *s, const char *what, long long min, long long max,
                      long long *ret)
{
    char *end;
    long long v = strtoll(s, &end, 10);

    if (!*s || *end || v < min || v > max) {
        cli_print_error("%s must be a number between %lld and %lld, got '%s'", what, min, max, s);
        return -1;
    }
    *ret = v;
    return 0;
}

static void print_vm(const struct wire_vm_info *v)
{
    printf("name:       %s\n", v->name);
    printf("state:      %s\n", v->state);
    printf("cpus:       %lld\n", v->cpus);
    printf("memory:     %lld MiB\n", v->mem_mib);
    printf("created:    %s\n", v->created_at);
    if (v->vmm)
        printf("vmm:        %s\n", v->vmm);
    if (v->restored_from)
        printf("restored:   from %s\n", v->restored_from);
    printf("ip:         %s\n", v->ip ? v->ip : "-");
}

int cmd_create(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"cpus", required_argument, NULL, 'c'},
        {"mem", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct wire_create_req req = {0};
    struct wire_vm_info info = {0};
    struct nerr e = {0};
    json_object *o = NULL;
    int opt;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            if (parse_long(optarg, "--cpus", 1, 1024, &req.cpus) < 0)
                return CLI_EXIT_USAGE;
            req.has_cpus = true;
            break;
        case 'm':
            if (parse_long(optarg, "--mem", 1, INT_MAX, &req.mem_mib) < 0)
                return CLI_EXIT_USAGE;
            req.has_mem_mib = true;
            break;
        case 'h':
            printf("Usage: noid create NAME [--cpus N] [--mem MiB]\n\n"
                   "Create a VM and wait until it is ready for commands.  Defaults come from\n"
                   "the server (see its capabilities).\n");
            return 0;
        default:
            return CLI_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        cli_print_error("usage: noid create NAME [--cpus N] [--mem MiB]");
        return CLI_EXIT_USAGE;
    }
    if (name_vm_check(argv[optind], &e) < 0) {
        cli_print_error("%s", e.msg);
        return CLI_EXIT_USAGE;
    }
    req.name = argv[optind];
    if (cli_api(c, "POST", "/v1/vms", wire_create_req_encode(&req), &o) < 0)
        return CLI_EXIT_FAIL;
    if (wire_vm_info_decode(o, &info, &e) < 0) {
        cli_print_error("unexpected reply: %s", e.msg);
        json_object_put(o);
        return CLI_EXIT_FAIL;
    }
    printf("Created VM %s (%s, %lld cpu%s, %lld MiB%s%s)\n", info.name, info.state, info.cpus,
           info.cpus == 1 ? "" : "s", info.mem_mib, info.restored_from ? ", from " : "",
           info.restored_from ? info.restored_from : "");
    json_object_put(o);
    wire_vm_info_free(&info);
    return 0;
}

int cmd_list(struct cli *c, int argc, char **argv)
{
    json_object *arr = NULL;
    bool json = false;
    size_t n;

    if (cli_wants_help(argc, argv)) {
        printf("Usage: noid list [--json]\n\nList your VMs.\n");
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else {
            cli_print_error("unexpected argument '%s'", argv[i]);
            return CLI_EXIT_USAGE;
        }
    }
    if (cli_api(c, "GET", "/v1/vms", NULL, &arr) < 0)
        return CLI_EXIT_FAIL;
    if (!json_object_is_type(arr, json_type_array)) {
        cli_print_error("unexpected reply: not a list");
        json_object_put(arr);
        return CLI_EXIT_FAIL;
    }
    if (json) {
        printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PRETTY));
        json_object_put(arr);
        return 0;
    }
    n = json_object_array_length(arr);
    printf("%-24s %-9s %4s %8s  %-20s %-11s %s\n", "NAME", "STATE", "CPUS", "MEM(MiB)",
           "CREATED", "VMM", "IP");
    for (size_t i = 0; i < n; i++) {
        struct wire_vm_info v = {0};
        struct nerr e = {0};
        if (wire_vm_info_decode(json_object_array_get_idx(arr, i), &v, &e) < 0) {
            cli_print_error("unexpected entry in the list: %s", e.msg);
            continue;
        }
        printf("%-24s %-9s %4lld %8lld  %-20s %-11s %s\n", v.name, v.state, v.cpus, v.mem_mib,
               v.created_at, v.vmm ? v.vmm : "-", v.ip ? v.ip : "-");
        wire_vm_info_free(&v);
    }
    if (n == 0)
        printf("(no VMs: create one with 'noid create NAME')\n");
    json_object_put(arr);
    return 0;
}

/* `info [NAME] [--json]` and `destroy [NAME]` share the argument shape. */
static char *one_vm_arg(int argc, char **argv, bool *json)
{
    const char *name = NULL;

    for (int i = 1; i < argc; i++) {
        if (json && strcmp(argv[i], "--json") == 0) {
            *json = true;
        } else if (!name && argv[i][0] != '-') {
            name = argv[i];
        } else {
            cli_print_error("unexpected argument '%s'", argv[i]);
            return NULL;
        }
    }
    return cli_vm_name(name);
}

int cmd_info(struct cli *c, int argc, char **argv)
{
    struct wire_vm_info v = {0};
    struct nerr e = {0};
    json_object *o = NULL;
    bool json = false;
    char path[128];
    char *name;

    if (cli_wants_help(argc, argv)) {
        printf("Usage: noid info [NAME] [--json]\n\nShow a VM (default: the one of "
               "./.noid-vm).\n");
        return 0;
    }
    name = one_vm_arg(argc, argv, &json);
    if (!name)
        return CLI_EXIT_USAGE;
    snprintf(path, sizeof(path), "/v1/vms/%s", name);
    free(name);
    if (cli_api(c, "GET", path, NULL, &o) < 0)
        return CLI_EXIT_FAIL;
    if (json) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY));
    } else if (wire_vm_info_decode(o, &v, &e) < 0) {
        cli_print_error("unexpected reply: %s", e.msg);
        json_object_put(o);
        return CLI_EXIT_FAIL;
    } else {
        print_vm(&v);
    }
    json_object_put(o);
    wire_vm_info_free(&v);
    return 0;
}

int cmd_destroy(struct cli *c, int argc, char **argv)
{
    char path[128];
    char *name;
    int r;

    if (cli_wants_help(argc, argv)) {
        printf("Usage: noid destroy [NAME]\n\nStop a VM and delete it with its disk and "
               "checkpoints.\n");
        return 0;
    }
    name = one_vm_arg(argc, argv, NULL);
    if (!name)
        return CLI_EXIT_USAGE;
    snprintf(path, sizeof(path), "/v1/vms/%s", name);
    r = cli_api(c, "DELETE", path, NULL, NULL);
    if (r >= 0)
        printf("Destroyed VM %s\n", name);
    free(name);
    return r < 0 ? CLI_EXIT_FAIL : 0;
}
