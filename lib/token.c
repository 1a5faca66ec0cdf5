/* token.c — see token.h. */
#include "token.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "encoding.h"

int random_hex_id(char *out, size_t nbytes)
{
    unsigned char raw[64];

    if (nbytes > sizeof(raw))
        return -EINVAL;
    if (RAND_bytes(raw, (int)nbytes) != 1)
        return -EIO;
    hex_encode(raw, nbytes, out);
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

int token_generate(char out[TOKEN_LEN + 1])
{
    memcpy(out, TOKEN_PREFIX, TOKEN_PREFIX_LEN);
    return random_hex_id(out + TOKEN_PREFIX_LEN, TOKEN_HEX_LEN / 2);
}

bool token_is_well_formed(const char *s)
{
    if (strncmp(s, TOKEN_PREFIX, TOKEN_PREFIX_LEN) != 0)
        return false;
    s += TOKEN_PREFIX_LEN;
    for (int i = 0; i < TOKEN_HEX_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return s[TOKEN_HEX_LEN] == '\0';
}

int token_hash(const char *token, char out[TOKEN_HASH_HEX_LEN + 1])
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return -EIO;
    hex_encode(md, 32, out);
    return 0;
}

bool token_hash_equal(const char *a, const char *b)
{
    return CRYPTO_memcmp(a, b, TOKEN_HASH_HEX_LEN) == 0;
}

void token_rate_key(const char *token, char out[TOKEN_RATE_KEY_LEN + 1])
{
    if (strncmp(token, TOKEN_PREFIX, TOKEN_PREFIX_LEN) == 0)
        token += TOKEN_PREFIX_LEN;
    size_t n = strnlen(token, TOKEN_RATE_KEY_LEN);
    memcpy(out, token, n);
    out[n] = '\0';
}
