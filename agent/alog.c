/* alog.c — see alog.h.  Each line is formatted into one buffer and written
 * with a single write(2), so lines from the agent and from a child that
 * inherited the same stderr do not interleave mid-line.  errno is preserved
 * so callers can log and then still inspect it. */
#include "alog.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool alog_verbose;

void alog_set_verbose(bool verbose)
{
    alog_verbose = verbose;
}

void alog(enum alog_level lvl, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warning", "error"};
    char line[1024];
    struct timespec ts;
    struct tm tm;
    int saved = errno;
    size_t n;
    va_list ap;

    if (lvl == ALOG_DEBUG && !alog_verbose)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n,
                          ".%03ldZ noid-agent[%d]: %s: ", ts.tv_nsec / 1000000, (int)getpid(),
                          names[lvl]);
    if (n < sizeof(line)) {
        va_start(ap, fmt);
        errno = saved;
        vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        va_end(ap);
    }
    n = strnlen(line, sizeof(line) - 2);
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, n) < 0) {
        /* nowhere left to report it */
    }
    errno = saved;
}
