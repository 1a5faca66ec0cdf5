/* fuzz_textutil.c — libFuzzer target: text_sanitize() over arbitrary bytes
 * (it decodes guest-supplied UTF-8).  Checks what callers rely on: the
 * output is NUL-terminated within the buffer, holds no control byte (so it
 * cannot break a log line), and every input byte is accounted for. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "textutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the first byte picks the output size: small ones exercise the cuts */
    size_t out_size = size > 0 ? (size_t)data[0] % 64 + 1 : 1;
    char small[64], *big;
    size_t used, big_size = size * TEXT_ESCAPE_MAX + 1;

    used = text_sanitize(data, size, small, out_size);
    if (used > size || strlen(small) >= out_size)
        abort();
    big = malloc(big_size);
    if (!big)
        return 0;
    /* with room for the worst case, all of the input goes through */
    if (text_sanitize(data, size, big, big_size) != size)
        abort();
    for (const unsigned char *p = (const unsigned char *)big; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            abort();
    /* the cut output is a prefix of the whole one */
    if (strncmp(small, big, strlen(small)) != 0)
        abort();
    free(big);
    return 0;
}
