/* client_login.h — the client's saved login: the server URL and API token
 * in ~/.noid/config.toml (mode 0600), overridden by NOID_URL / NOID_TOKEN.
 *
 * Shared by the noid CLI (which writes it with `noid auth setup`) and the
 * noidfs client mount, so both always agree on where a login lives and how
 * the environment overrides it. */
#pragma once

#include "nerr.h"

/* $HOME/.noid/config.toml ("/" when HOME is unset), malloc'd; NULL on ENOMEM. */
char *client_login_path(void);

/* Load the URL and token: the file at path when it exists, then NOID_URL and
 * NOID_TOKEN (non-empty ones win).  *url and *token are replaced (the old
 * values freed) only by what is found; either may stay NULL.  -EINVAL with
 * "FILE:LINE: reason" in e for a malformed file. */
int client_login_load(const char *path, char **url, char **token, struct nerr *e);

/* Write url and token to path atomically, mode 0600, creating its
 * directory (0700). */
int client_login_save(const char *path, const char *url, const char *token, struct nerr *e);
