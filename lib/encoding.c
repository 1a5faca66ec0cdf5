/* encoding.c — see encoding.h. */
#include "encoding.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

bool utf8_is_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;

    while (i < len) {
        unsigned char c = s[i];
        size_t need;
        uint32_t cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= need)
            return false;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are invalid. */
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += need + 1;
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
