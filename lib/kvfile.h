/* kvfile.h — "key = value" files in the seed's server.toml format.
 *
 * Top-level lines only: `key = "string"`, `key = 123`, `key = true`, `#`
 * comments (whole-line or after a value), blank lines.  Lines are split by
 * inih; values are typed by the kv_value_* helpers below.  Every error comes
 * back as one line "FILE:LINE: reason" in the nerr, code -EINVAL. */
#pragma once

#include <stdbool.h>

#include "nerr.h"

#define KVFILE_MAX_BYTES (1024 * 1024)
#define KVFILE_MAX_LINE 4096

/* Called once per key with its 1-based line.  Return 0, or -errno with a
 * reason in *e (no file:line prefix: the parser adds it). */
typedef int (*kvfile_handler_t)(void *user, const char *key, const char *raw_value, int line,
                                struct nerr *e);

int kvfile_parse_file(const char *path, kvfile_handler_t handler, void *user, struct nerr *e);
/* `name` only labels error messages. */
int kvfile_parse_string(const char *name, const char *text, kvfile_handler_t handler, void *user,
                        struct nerr *e);

/* "quoted" (basic, with \" \\ \n \t \r escapes) or 'literal'; malloc'd result. */
int kv_value_string(const char *raw, char **ret, struct nerr *e);
int kv_value_int(const char *raw, long long min, long long max, long long *ret, struct nerr *e);
int kv_value_bool(const char *raw, bool *ret, struct nerr *e);

/* Quote s as a basic string for writing a kvfile (malloc'd). */
char *kv_quote(const char *s);
