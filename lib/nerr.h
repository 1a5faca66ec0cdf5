/* nerr.h — an error code plus a sentence a person can read.
 *
 * Functions return -errno; when the reason matters to the user (API replies,
 * CLI output, config errors) they also fill a struct nerr, which travels up
 * to the boundary and is printed or sent exactly once there.  A NULL nerr is
 * allowed everywhere: the message is then dropped. */
#pragma once

#include "macro.h"

#define NERR_MSG_MAX 512

struct nerr {
    int code;                 /* negative errno, 0 when unset */
    char msg[NERR_MSG_MAX];   /* human readable, no trailing newline */
};

/* Record the first error only: a later, vaguer failure on the way out must not
 * overwrite the precise reason.  Returns code (negative) for tail calls:
 *     return nerr_set(e, -EINVAL, "bad name '%s'", name);  */
int nerr_set(struct nerr *e, int code, const char *fmt, ...) _printf_(3, 4);

/* Like nerr_set but always overwrites (used when re-wording an inner error). */
int nerr_reset(struct nerr *e, int code, const char *fmt, ...) _printf_(3, 4);

/* Prepend "prefix: " to the message already in e (no-op for NULL). */
void nerr_prefix(struct nerr *e, const char *prefix);

static inline const char *nerr_msg(const struct nerr *e)
{
    return e && e->msg[0] ? e->msg : "unknown error";
}
