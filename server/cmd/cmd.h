/* cmd.h — the noid-server subcommands (one file each or per small family).
 * Each returns the process exit status: 0 success, 1 failure, 2 usage or
 * configuration error. */
#pragma once

#include "config.h"

#define EXIT_USAGE 2

int cmd_serve(int argc, char **argv);
int cmd_add_user(int argc, char **argv);
int cmd_list_users(int argc, char **argv);
int cmd_rotate_token(int argc, char **argv);
int cmd_remove_user(int argc, char **argv);
int cmd_golden(int argc, char **argv);
/* golden provision (cmd/golden_provision.c), once cmd_golden parsed it:
 * commands run with sh -c in order; timeout_secs 0 = none. */
int cmd_golden_provision(struct server_config *cfg, char **commands, int count,
                         long long timeout_secs);

/* Load the configuration: config_path (or the embedded defaults when NULL),
 * then --data-dir.  With need_vm_files, kernel/rootfs must exist.  Prints the
 * one-line error itself and returns EXIT_USAGE on failure, 0 on success. */
int cmd_load_config(const char *config_path, const char *data_dir, bool need_vm_files,
                    struct server_config *c);
