/* auth.c — bearer-token authentication with failed-attempt rate limiting.
 *
 * Policy (the guide's "Rate limiting"):
 *  - a valid token is always served, whatever failures others caused: the
 *    token is checked even when its address or prefix is blocked, so knowing
 *    a victim's token prefix (or sharing its NAT address) cannot lock it out.
 *    This costs one indexed database lookup per blocked request, and gives a
 *    guesser nothing: tokens are 256-bit random.
 *  - a wrong token counts one failure under the client's address and one
 *    under the token's first TOKEN_RATE_KEY_LEN hex digits;
 *  - a wrong token from a blocked address or with a blocked prefix gets 429
 *    with Retry-After (and is not counted again, so a blocked client cannot
 *    churn the limiter's table); otherwise 401.
 * A request without a bearer token is not a guess: 401, nothing counted. */
#include <string.h>

#include "api.h"
#include "log.h"
#include "token.h"

/* Whether a wrong token from this client must get 429; *ret_retry_ms is how
 * long until both of its keys are free again. */
static bool is_blocked(struct api_request *rq, const char *prefix, int64_t *ret_retry_ms)
{
    int64_t addr_ms = 0, token_ms = 0;
    bool addr = ratelimit_is_blocked(rq->srv->rl_addr, rq->rate_addr, &addr_ms);
    bool token = ratelimit_is_blocked(rq->srv->rl_token, prefix, &token_ms);

    *ret_retry_ms = MAX(addr ? addr_ms : 0, token ? token_ms : 0);
    return addr || token;
}

bool api_authenticate(struct api_request *rq)
{
    const char *h =
        MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    char prefix[TOKEN_RATE_KEY_LEN + 1];
    char token[TOKEN_LEN + 2];
    int64_t retry_ms = 0;
    size_t n;

    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        api_reply_error(rq, 401, "missing bearer token: send 'Authorization: Bearer noid_tok_...'");
        return false;
    }
    h += 7;
    while (*h == ' ')
        h++;
    n = strcspn(h, " \t");
    snprintf(token, sizeof(token), "%.*s", (int)MIN(n, sizeof(token) - 1), h);
    if (n == TOKEN_LEN && engine_user_authenticate(rq->srv->eng, token, &rq->user) == 0) {
        rq->authed = true;
        return true;
    }
    token_rate_key(token, prefix);
    if (is_blocked(rq, prefix, &retry_ms)) {
        char secs[16];
        long long wait_s = (retry_ms + 999) / 1000;
        snprintf(secs, sizeof(secs), "%lld", wait_s);
        api_reply_error_hdr(rq, 429, MHD_HTTP_HEADER_RETRY_AFTER, secs,
                            "too many failed authentication attempts with this token "
                            "or from this address; retry in %lld s",
                            wait_s);
        return false;
    }
    ratelimit_record_failure(rq->srv->rl_addr, rq->rate_addr);
    ratelimit_record_failure(rq->srv->rl_token, prefix);
    api_reply_error(rq, 401, "invalid or revoked token");
    return false;
}
