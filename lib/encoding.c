/* encoding.c — see encoding.h. */
#include "encoding.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

size_t utf8_sequence(const uint8_t *p, size_t len, uint32_t *ret_cp)
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

bool utf8_is_valid(const char *str, size_t len)
{
    const uint8_t *s = (const uint8_t *)str;
    uint32_t cp;

    for (size_t i = 0, n; i < len; i += n) {
        n = s[i] < 0x80 ? 1 : utf8_sequence(s + i, len - i, &cp);
        if (n == 0)
            return false;
    }
    return true;
}

void hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * len] = '\0';
}

char *base64_encode(const void *in, size_t len)
{
    size_t outlen = 4 * ((len + 2) / 3) + 1;
    char *out;

    if (len > (size_t)INT32_MAX)
        return NULL;
    out = malloc(outlen);
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    return out;
}

static bool is_b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

int base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len)
{
    size_t pad = 0;
    uint8_t *out;
    int n;

    if (len % 4 != 0 || len > (size_t)INT32_MAX)
        return -EINVAL;
    if (len > 0 && in[len - 1] == '=')
        pad++;
    if (len > 1 && in[len - 2] == '=')
        pad++;
    for (size_t i = 0; i < len - pad; i++)
        if (!is_b64_char(in[i]))
            return -EINVAL;
    out = malloc(len / 4 * 3 + 1);
    if (!out)
        return -ENOMEM;
    n = len ? EVP_DecodeBlock(out, (const unsigned char *)in, (int)len) : 0;
    if (n < 0 || (size_t)n < pad) {
        free(out);
        return -EINVAL;
    }
    n -= (int)pad; /* EVP_DecodeBlock counts the padding as zero bytes */
    out[n] = 0;
    *ret = out;
    *ret_len = (size_t)n;
    return 0;
}
