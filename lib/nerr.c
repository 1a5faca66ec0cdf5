/* nerr.c — see nerr.h. */
#include "nerr.h"

#include <stdarg.h>
#include <string.h>

static int nerr_vfill(struct nerr *e, int code, const char *fmt, va_list ap)
{
    e->code = code;
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    return code;
}

int nerr_set(struct nerr *e, int code, const char *fmt, ...)
{
    va_list ap;

    if (!e || e->code != 0)
        return code;
    va_start(ap, fmt);
    nerr_vfill(e, code, fmt, ap);
    va_end(ap);
    return code;
}

int nerr_reset(struct nerr *e, int code, const char *fmt, ...)
{
    va_list ap;

    if (!e)
        return code;
    va_start(ap, fmt);
    nerr_vfill(e, code, fmt, ap);
    va_end(ap);
    return code;
}

void nerr_prefix(struct nerr *e, const char *prefix)
{
    char tmp[NERR_MSG_MAX];

    if (!e)
        return;
    snprintf(tmp, sizeof(tmp), "%s: %s", prefix, e->msg);
    memcpy(e->msg, tmp, sizeof(tmp));
}
