/* fuzz_http_range.c — libFuzzer target: the Range header of a file
 * download (server/api/http_range.c), a client's bytes.  The first 8 input
 * bytes are the file's size, the rest the header value.  Checks what the
 * download relies on: a partial range lies inside the file and is not
 * empty, so Content-Length and Content-Range can never promise bytes the
 * file does not have. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_range.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t file_size = 0, off = 0, len = 0;
    char *value;

    if (size < 8)
        return 0;
    memcpy(&file_size, data, 8);
    /* small sizes too, where the edge cases are */
    if (data[0] & 1)
        file_size %= 4096;
    value = malloc(size - 8 + 1);
    if (!value)
        return 0;
    memcpy(value, data + 8, size - 8);
    value[size - 8] = '\0'; /* a header value ends at its first NUL */
    switch (http_range_parse(value, file_size, &off, &len)) {
    case HTTP_RANGE_PARTIAL:
        if (len == 0 || off >= file_size || len > file_size - off)
            abort();
        break;
    case HTTP_RANGE_NONE:
    case HTTP_RANGE_UNSATISFIABLE:
        break;
    default:
        abort();
    }
    free(value);
    return 0;
}
