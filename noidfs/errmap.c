/* errmap.c — from an op's -errno (the engine's codes, engine.h) to what a
 * file system call returns (DESIGN.md §9), and the log line that says why.
 * A shell only prints "Input/output error"; the reason is in the log. */
#include <errno.h>
#include <string.h>

#include "fs-internal.h"
#include "log.h"

int errmap_op(int r)
{
    switch (-r) {
    case EINVAL:
    case ENOENT:
    case EEXIST:
    case EBUSY:
    case EDQUOT:
    case ETIMEDOUT:
    case EINTR:
    case EFBIG:
    case ENAMETOOLONG:
    case ENOTEMPTY:
    case EAGAIN:
    case ENOSPC:
    case EOPNOTSUPP:
        return -r;
    case EACCES:
    case EPERM:
        return EACCES;
    case ENOTCONN:
    case ECONNREFUSED:
    case ECONNRESET:
    case EHOSTUNREACH:
        return ENOTCONN;
    case ESRCH: /* the VM does not run */
    default:
        return EIO;
    }
}

/* Guest files (fs/) answer with the guest's own errno, which is exactly
 * what the same call inside the guest returns (ENOTDIR, EISDIR, ELOOP,
 * EXDEV, EROFS, EMLINK... mean what they say), so none is rewritten; the
 * binding already turned its own failures (VM gone or stopped, agent lost
 * or silent) into EIO. */
int errmap_guest(int r)
{
    return r < 0 && r > -4096 ? -r : EIO;
}

int errmap_log(const char *what, const char *path_hint, int r, const struct nerr *e)
{
    int err = errmap_op(r);

    /* a missing name is the everyday answer to lookups, not worth a line */
    if (err != ENOENT || (e && e->msg[0] && strcmp(what, "lookup") != 0))
        log_warn("noidfs: %s %s: %s (%s)", what, path_hint ? path_hint : "",
                 e && e->msg[0] ? e->msg : strerror(-r), strerror(err));
    return err;
}
