/* token.h — API tokens: "noid_tok_" + 64 lowercase hex (32 random bytes).
 *
 * Only the SHA-256 of a token is ever stored.  The server finds the candidate
 * row by the first TOKEN_LOOKUP_LEN hex digits of that hash (which reveal
 * nothing usable about the token) and then compares the full hash with
 * CRYPTO_memcmp, so the comparison time does not depend on the secret. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define TOKEN_PREFIX "noid_tok_"
#define TOKEN_PREFIX_LEN 9
#define TOKEN_HEX_LEN 64
#define TOKEN_LEN (TOKEN_PREFIX_LEN + TOKEN_HEX_LEN)
#define TOKEN_HASH_HEX_LEN 64
#define TOKEN_LOOKUP_LEN 16
/* Failed-auth rate limiting is keyed by this many characters after the prefix. */
#define TOKEN_RATE_KEY_LEN 16

/* Fill out (TOKEN_LEN+1 bytes) with a fresh token from OpenSSL's CSPRNG. */
int token_generate(char out[TOKEN_LEN + 1]);

/* Whether s is exactly "noid_tok_" followed by 64 lowercase hex digits. */
bool token_is_well_formed(const char *s);

/* SHA-256 of the token bytes, as 64 lowercase hex digits. */
int token_hash(const char *token, char out[TOKEN_HASH_HEX_LEN + 1]);

/* Constant-time equality of two hex hashes of TOKEN_HASH_HEX_LEN digits. */
bool token_hash_equal(const char *a, const char *b);

/* The rate-limit key: up to TOKEN_RATE_KEY_LEN chars after "noid_tok_" (or
 * from the start when the prefix is missing), NUL-terminated. */
void token_rate_key(const char *token, char out[TOKEN_RATE_KEY_LEN + 1]);

/* Random lowercase hex identifiers (user ids, checkpoint ids, instance ids). */
int random_hex_id(char *out, size_t nbytes);
