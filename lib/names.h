/* names.h — validators for every name that crosses a trust boundary.
 *
 * VM names become path components (storage/users/<id>/vms/<name>), so they
 * are checked here, before any other use, against DESIGN.md §4:
 *   VM names   ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$
 *   user names ^[a-z_][a-z0-9_-]{0,31}$
 * Each validator returns 0 or -EINVAL and, on failure, says why in *e. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "nerr.h"

#define VM_NAME_MAX 64
#define USER_NAME_MAX 32
#define ENV_MAX_ENTRIES 64
#define ENV_NAME_MAX 256
#define ENV_VALUE_MAX (32 * 1024)
#define LABEL_MAX 128
#define CHECKPOINT_ID_LEN 16

int name_vm_check(const char *name, struct nerr *e);
int name_user_check(const char *name, struct nerr *e);

/* "K=V" with K matching [A-Za-z_][A-Za-z0-9_]* (≤ ENV_NAME_MAX) and V at most
 * ENV_VALUE_MAX bytes without NUL. */
int name_env_entry_check(const char *entry, size_t len, struct nerr *e);

/* Checkpoint labels: 1..LABEL_MAX bytes of valid UTF-8, no control chars. */
int name_label_check(const char *label, size_t len, struct nerr *e);

/* Checkpoint ids are 16 lowercase hex; a selector is any non-empty prefix. */
bool name_is_checkpoint_id(const char *s);
int name_checkpoint_prefix_check(const char *s, struct nerr *e);
