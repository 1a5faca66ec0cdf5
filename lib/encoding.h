/* encoding.h — byte encodings used on the wire: hex, base64, UTF-8 checks.
 * Base64 goes through OpenSSL (no hand-written codec); the checks around it
 * are ours so that malformed input is refused instead of half-decoded. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

bool utf8_is_valid(const char *s, size_t len);
/* Length of the valid multi-byte UTF-8 sequence at p (at most len bytes
 * available) and its code point, or 0 if the bytes there are not one
 * (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
size_t utf8_sequence(const uint8_t *p, size_t len, uint32_t *ret_cp);

/* Lowercase hex of len bytes into out (2*len+1 bytes, NUL-terminated). */
void hex_encode(const uint8_t *in, size_t len, char *out);

/* Encode: returns a malloc'd NUL-terminated string or NULL on ENOMEM. */
char *base64_encode(const void *in, size_t len);

/* Decode standard base64 (with padding).  Returns 0 and a malloc'd buffer in
 * *ret (NUL-terminated for convenience, length in *ret_len), or -EINVAL for
 * anything that is not canonical base64, -ENOMEM. */
int base64_decode(const char *in, size_t len, uint8_t **ret, size_t *ret_len);
