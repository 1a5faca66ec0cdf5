/* http_range.c — see http_range.h. */
#include "http_range.h"

#include <stdbool.h>
#include <stdio.h>
#include <strings.h>

/* Decimal digits at *p into *ret, advancing *p; false if there are none
 * or the number does not fit in 63 bits. */
static bool parse_u63(const char **p, uint64_t *ret)
{
    uint64_t v = 0;
    const char *s = *p;

    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (v > (INT64_MAX - (uint64_t)(*s - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *p = s;
    *ret = v;
    return true;
}

static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

enum http_range_result http_range_parse(const char *value, uint64_t size, uint64_t *ret_off,
                                        uint64_t *ret_len)
{
    const char *p = skip_ows(value);
    uint64_t first = 0, last = 0, suffix = 0;
    bool has_first, has_last;

    if (strncasecmp(p, "bytes", 5) != 0)
        return HTTP_RANGE_NONE;
    p = skip_ows(p + 5);
    if (*p++ != '=')
        return HTTP_RANGE_NONE;
    p = skip_ows(p);
    has_first = parse_u63(&p, &first);
    if (*p++ != '-')
        return HTTP_RANGE_NONE;
    if (has_first)
        has_last = parse_u63(&p, &last);
    else if (!parse_u63(&p, &suffix))
        return HTTP_RANGE_NONE; /* "-" alone */
    else
        has_last = false;
    p = skip_ows(p);
    if (*p != '\0')
        return HTTP_RANGE_NONE; /* several ranges, or junk */
    if (has_first && has_last && last < first)
        return HTTP_RANGE_NONE; /* invalid: ignored like any malformed range */
    if (!has_first) {
        if (suffix == 0 || size == 0)
            return HTTP_RANGE_UNSATISFIABLE;
        *ret_off = suffix >= size ? 0 : size - suffix;
        *ret_len = size - *ret_off;
        return HTTP_RANGE_PARTIAL;
    }
    if (first >= size)
        return HTTP_RANGE_UNSATISFIABLE;
    if (!has_last || last >= size)
        last = size - 1;
    *ret_off = first;
    *ret_len = last - first + 1;
    return HTTP_RANGE_PARTIAL;
}

void http_date(time_t t, char out[HTTP_DATE_LEN])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;

    /* by hand: strftime's %a and %b follow the locale */
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, HTTP_DATE_LEN, "Thu, 01 Jan 1970 00:00:00 GMT");
        return;
    }
    snprintf(out, HTTP_DATE_LEN, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}
