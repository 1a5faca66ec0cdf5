/* log.c — see log.h.  Each line is formatted into one buffer and written with
 * a single write(2), so lines from concurrent threads never interleave. */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static enum log_level min_level = LOG_LVL_INFO;

void log_set_level(enum log_level lvl)
{
    min_level = lvl;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char line[2048];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    size_t n;

    if (lvl < min_level)
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - n, ".%03ldZ %s: ", (long)tv.tv_usec / 1000, names[lvl]);
    va_start(ap, fmt);
    int w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (w < 0)
        w = 0;
    n += (size_t)w;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2; /* long lines are cut, never split */
    line[n++] = '\n';
    ssize_t _unused_ r = write(STDERR_FILENO, line, n);
}
