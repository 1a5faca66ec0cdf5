/* auth.c — bearer-token authentication with failed-attempt rate limiting.
 *
 * The limiter is consulted before the token is checked, so a blocked prefix
 * costs no database lookup; only failures are recorded, so a valid token is
 * never slowed by other prefixes' failures. */
#include <string.h>

#include "api.h"
#include "log.h"
#include "token.h"

bool api_authenticate(struct api_request *rq)
{
    const char *h = MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    char key[TOKEN_RATE_KEY_LEN + 1];
    char token[TOKEN_LEN + 2];
    int64_t retry_ms = 0;
    size_t n;

    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        api_reply_error(rq, 401,
                        "missing bearer token: send 'Authorization: Bearer noid_tok_...'");
        return false;
    }
    h += 7;
    while (*h == ' ')
        h++;
    n = strcspn(h, " \t");
    snprintf(token, sizeof(token), "%.*s", (int)MIN(n, sizeof(token) - 1), h);
    token_rate_key(token, key);
    if (ratelimit_is_blocked(rq->srv->rl, key, &retry_ms)) {
        char secs[16];
        long long wait_s = (retry_ms + 999) / 1000;
        snprintf(secs, sizeof(secs), "%lld", wait_s);
        api_reply_error_hdr(rq, 429, MHD_HTTP_HEADER_RETRY_AFTER, secs,
                            "too many failed authentication attempts with this token; "
                            "retry in %lld s",
                            wait_s);
        return false;
    }
    if (n != TOKEN_LEN || engine_user_authenticate(rq->srv->eng, token, &rq->user) < 0) {
        ratelimit_record_failure(rq->srv->rl, key);
        api_reply_error(rq, 401, "invalid or revoked token");
        return false;
    }
    rq->authed = true;
    return true;
}
