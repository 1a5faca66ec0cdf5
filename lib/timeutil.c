/* timeutil.c — see timeutil.h. */
#include "timeutil.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>

void time_rfc3339(time_t t, char out[RFC3339_LEN])
{
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(out, RFC3339_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void time_now_rfc3339(char out[RFC3339_LEN])
{
    time_rfc3339(time(NULL), out);
}

int64_t time_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t time_mono_ms(void)
{
    return time_mono_ns() / 1000000;
}

int64_t time_real_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct timespec time_mono_timespec(int64_t ms)
{
    return (struct timespec){.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
}

void time_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static bool parse_digits(const char **p, int n, int *ret)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *ret = v;
    return true;
}

int time_parse_rfc3339(const char *s, time_t *ret)
{
    struct tm tm = {0};
    int year, mon, day, hour, min, sec, off_h, off_m, off = 0;
    const char *p = s;

    if (!s)
        return -EINVAL;
    if (!parse_digits(&p, 4, &year) || *p++ != '-' || !parse_digits(&p, 2, &mon) || *p++ != '-' ||
        !parse_digits(&p, 2, &day) || (*p != 'T' && *p != 't' && *p != ' '))
        return -EINVAL;
    p++;
    if (!parse_digits(&p, 2, &hour) || *p++ != ':' || !parse_digits(&p, 2, &min) || *p++ != ':' ||
        !parse_digits(&p, 2, &sec))
        return -EINVAL;
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 || min > 59 || sec > 60)
        return -EINVAL;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return -EINVAL;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        if (!parse_digits(&p, 2, &off_h) || *p++ != ':' || !parse_digits(&p, 2, &off_m) ||
            off_h > 23 || off_m > 59)
            return -EINVAL;
        off = sign * (off_h * 3600 + off_m * 60);
    } else {
        return -EINVAL;
    }
    if (*p)
        return -EINVAL;
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hour;
    tm.tm_min = min;
    tm.tm_sec = sec;
    *ret = timegm(&tm) - off;
    return 0;
}

int time_left_ms(int64_t deadline)
{
    int64_t left = deadline - time_mono_ms();

    return left > 0 ? (int)(left < INT_MAX ? left : INT_MAX) : 0;
}
