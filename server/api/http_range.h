/* http_range.h — the pieces of HTTP a file download needs and libmicrohttpd
 * does not do: one byte range of a Range header (RFC 9110 §14) and the
 * HTTP date of Last-Modified (RFC 9110 §5.6.7).  Pure functions, no I/O. */
#pragma once

#include <stdint.h>
#include <time.h>

enum http_range_result {
    HTTP_RANGE_NONE,          /* no usable range: send the whole file (200) */
    HTTP_RANGE_PARTIAL,       /* send *ret_off, *ret_len (206) */
    HTTP_RANGE_UNSATISFIABLE, /* 416, "Content-Range: bytes * /size" */
};

/* Parse a Range header value against a resource of size bytes.  One range
 * of unit "bytes" only: "a-b" (b clamped to the last byte), "a-" and "-n"
 * (the last n bytes).  A malformed value, another unit or several ranges
 * give HTTP_RANGE_NONE (RFC 9110: a server may ignore Range).  A range
 * starting at or past the end, "-0", or any range of an empty resource is
 * unsatisfiable. */
enum http_range_result http_range_parse(const char *value, uint64_t size, uint64_t *ret_off,
                                        uint64_t *ret_len);

/* "Sun, 06 Nov 1994 08:49:37 GMT" for t. */
#define HTTP_DATE_LEN 32
void http_date(time_t t, char out[HTTP_DATE_LEN]);
