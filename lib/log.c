/* log.c — see log.h.  Each line is formatted into one buffer and written with
 * a single write(2), so lines from concurrent threads never interleave.
 *
 * The formatted message goes through text_sanitize() before it is written:
 * messages interpolate text from outside (guest agents, clients), and a
 * newline or escape sequence in it must not start a line that looks like
 * one of ours.  Whatever the message holds, one call is one line. */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "textutil.h"

/* Longest message before escaping; longer ones are cut. */
#define LOG_MSG_MAX 2048
/* Longest line written, escapes included (a message of control bytes grows
 * up to TEXT_ESCAPE_MAX times); longer lines are cut, never split. */
#define LOG_LINE_MAX (64 + 2 * LOG_MSG_MAX)

static enum log_level min_level = LOG_LVL_INFO;

void log_set_level(enum log_level lvl)
{
    min_level = lvl;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char msg[LOG_MSG_MAX], line[LOG_LINE_MAX];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    size_t n, mlen;
    int w;

    if (lvl < min_level)
        return;
    va_start(ap, fmt);
    w = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mlen = w < 0 ? 0 : MIN((size_t)w, sizeof(msg) - 1);

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s: ", (long)tv.tv_usec / 1000,
                          names[lvl]);
    /* room for the newline: sanitize into all but the last byte */
    text_sanitize(msg, mlen, line + n, sizeof(line) - n - 1);
    n += strlen(line + n);
    line[n++] = '\n';
    ssize_t _unused_ r = write(STDERR_FILENO, line, n);
}
