/* textutil.c — see textutil.h.
 *
 * One pass over the input: each step takes one whole character (1 byte of
 * ASCII or a complete, valid UTF-8 sequence) or one stray byte, and writes
 * it only if its whole output fits, so a cut never leaves half an escape or
 * half a UTF-8 sequence behind. */
#include "textutil.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "encoding.h"

/* Code points that are valid but must not reach a terminal or a log as is. */
static bool codepoint_is_unsafe(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9F) ||     /* C1 controls (CSI, NEL, ...) */
           cp == 0x2028 || cp == 0x2029 ||   /* line and paragraph separators */
           cp == 0x200E || cp == 0x200F ||   /* bidi marks */
           (cp >= 0x202A && cp <= 0x202E) || /* bidi embeddings and overrides */
           (cp >= 0x2066 && cp <= 0x2069);   /* bidi isolates */
}

static size_t escape_byte(uint8_t b, char out[TEXT_ESCAPE_MAX])
{
    static const char hex[] = "0123456789abcdef";

    switch (b) {
    case '\\':
        memcpy(out, "\\\\", 2);
        return 2;
    case '\n':
        memcpy(out, "\\n", 2);
        return 2;
    case '\r':
        memcpy(out, "\\r", 2);
        return 2;
    case '\t':
        memcpy(out, "\\t", 2);
        return 2;
    default:
        out[0] = '\\';
        out[1] = 'x';
        out[2] = hex[b >> 4];
        out[3] = hex[b & 0xF];
        return 4;
    }
}

size_t text_sanitize(const void *s, size_t len, char *out, size_t size)
{
    const uint8_t *p = s;
    size_t i = 0, o = 0;

    if (size == 0)
        return 0;
    while (i < len) {
        char esc[4 * TEXT_ESCAPE_MAX];
        const char *piece = esc;
        size_t in_n = 1, out_n = 0, seq = 0;
        uint32_t cp = 0;

        if (p[i] >= 0x80)
            seq = utf8_sequence(p + i, len - i, &cp);
        if (p[i] >= 0x20 && p[i] < 0x7F && p[i] != '\\') {
            piece = (const char *)p + i;
            out_n = 1;
        } else if (seq > 0 && !codepoint_is_unsafe(cp)) {
            piece = (const char *)p + i;
            in_n = out_n = seq;
        } else if (seq > 0) {
            /* a valid but unsafe character: every byte of it escaped */
            in_n = seq;
            for (size_t k = 0; k < seq; k++)
                out_n += escape_byte(p[i + k], esc + out_n);
        } else {
            out_n = escape_byte(p[i], esc);
        }
        if (out_n > size - 1 - o)
            break;
        memcpy(out + o, piece, out_n);
        o += out_n;
        i += in_n;
    }
    out[o] = '\0';
    return i;
}
