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

/* Length of the valid UTF-8 sequence at p (at most len bytes available) and
 * its code point, or 0 if the bytes there are not one (RFC 3629: no
 * overlongs, no surrogates, nothing above U+10FFFF). */
static size_t utf8_sequence(const uint8_t *p, size_t len, uint32_t *ret_cp)
{
    uint8_t b = p[0], lo = 0x80, hi = 0xBF;
    size_t n;
    uint32_t cp;

    if (b >= 0xC2 && b <= 0xDF) {
        n = 2;
        cp = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3;
        cp = b & 0x0F;
        if (b == 0xE0)
            lo = 0xA0; /* overlong */
        else if (b == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4;
        cp = b & 0x07;
        if (b == 0xF0)
            lo = 0x90; /* overlong */
        else if (b == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        uint8_t c = p[i];
        if (c < (i == 1 ? lo : 0x80) || c > (i == 1 ? hi : 0xBF))
            return 0;
        cp = (cp << 6) | (c & 0x3F);
    }
    *ret_cp = cp;
    return n;
}

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
