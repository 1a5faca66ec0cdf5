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
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "api.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"
#include "token.h"

/* Failed authentications tolerated per window.  An address gets more than
 * a token prefix: several users may share one (NAT, a proxy). */
#define RATE_TOKEN_MAX_FAILURES 10
#define RATE_ADDR_MAX_FAILURES  50
#define RATE_WINDOW_MS          (60 * 1000)

static int64_t real_clock_ms(void *data)
{
    return time_mono_ms();
}

int api_auth_init(struct api_server *srv)
{
    srv->rl_addr = ratelimit_new(RATE_ADDR_MAX_FAILURES, RATE_WINDOW_MS, real_clock_ms, NULL);
    srv->rl_token = ratelimit_new(RATE_TOKEN_MAX_FAILURES, RATE_WINDOW_MS, real_clock_ms, NULL);
    return srv->rl_addr && srv->rl_token ? 0 : -ENOMEM;
}

void api_auth_free(struct api_server *srv)
{
    ratelimit_free(srv->rl_addr);
    ratelimit_free(srv->rl_token);
}

/* The limiter key of an address: IPv4 as is, IPv6 per /64 (what one host or
 * site typically gets, so hopping addresses inside it does not help). */
static void rate_key_of(int family, const void *addr, char *out, size_t size)
{
    char text[INET6_ADDRSTRLEN];
    struct in6_addr a6;

    if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr)) {
        family = AF_INET;
        addr = (const uint8_t *)addr + 12;
    }
    if (family == AF_INET) {
        if (!inet_ntop(AF_INET, addr, out, size))
            snprintf(out, size, "-");
        return;
    }
    memcpy(&a6, addr, sizeof(a6));
    memset(&a6.s6_addr[8], 0, 8);
    if (!inet_ntop(AF_INET6, &a6, text, sizeof(text)))
        snprintf(out, size, "-");
    else
        snprintf(out, size, "%s/64", text);
}

/* The limiter key of an address written in text (n bytes); false when it is
 * no plain IP address. */
static bool rate_key_of_text(const char *s, size_t n, char *out, size_t size)
{
    char tmp[INET6_ADDRSTRLEN];
    uint8_t a[sizeof(struct in6_addr)];

    if (n == 0 || n >= sizeof(tmp))
        return false;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    if (inet_pton(AF_INET, tmp, a) == 1)
        rate_key_of(AF_INET, a, out, size);
    else if (inet_pton(AF_INET6, tmp, a) == 1)
        rate_key_of(AF_INET6, a, out, size);
    else
        return false;
    return true;
}

static enum MHD_Result last_forwarded_for(void *cls, enum MHD_ValueKind kind, const char *key,
                                          const char *value)
{
    if (key && value && strcasecmp(key, "X-Forwarded-For") == 0)
        *(const char **)cls = value;
    return MHD_YES;
}

/* The key failures of this client count under: the socket's peer, or with
 * trust_forwarded_for the right-most X-Forwarded-For entry (of the last
 * such header), the one our proxy added.  Everything left of it is
 * whatever the client sent: keying on it would let a client pick its own
 * key. */
static void client_rate_key(struct api_request *rq, char *out, size_t size)
{
    const union MHD_ConnectionInfo *ci;
    const char *v = NULL, *entry;
    size_t n;

    if (rq->srv->cfg->trust_forwarded_for) {
        MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, last_forwarded_for, &v);
        if (v) {
            api_forwarded_entry(v, true, &entry, &n);
            if (rate_key_of_text(entry, n, out, size))
                return;
        }
    }
    ci = MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        rate_key_of(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, out, size);
    else if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET6)
        rate_key_of(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, out,
                    size);
    else
        snprintf(out, size, "-");
}

/* Whether a wrong token from this client must get 429; *ret_retry_ms is how
 * long until both of its keys are free again. */
static bool is_blocked(struct api_request *rq, const char *addr_key, const char *prefix,
                       int64_t *ret_retry_ms)
{
    int64_t addr_ms = 0, token_ms = 0;
    bool addr = ratelimit_is_blocked(rq->srv->rl_addr, addr_key, &addr_ms);
    bool token = ratelimit_is_blocked(rq->srv->rl_token, prefix, &token_ms);

    *ret_retry_ms = MAX(addr ? addr_ms : 0, token ? token_ms : 0);
    return addr || token;
}

bool api_authenticate(struct api_request *rq)
{
    const char *h =
        MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    char prefix[TOKEN_RATE_KEY_LEN + 1];
    char addr_key[RATELIMIT_KEY_MAX + 1];
    char token[TOKEN_LEN + 2];
    int64_t retry_ms = 0;
    size_t n;

    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        metrics_auth_failure(METRICS_AUTH_MISSING_TOKEN);
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
    metrics_auth_failure(METRICS_AUTH_INVALID_TOKEN);
    token_rate_key(token, prefix);
    client_rate_key(rq, addr_key, sizeof(addr_key));
    if (is_blocked(rq, addr_key, prefix, &retry_ms)) {
        char secs[16];
        long long wait_s = (retry_ms + 999) / 1000;
        snprintf(secs, sizeof(secs), "%lld", wait_s);
        metrics_refusal(METRICS_LIMIT_AUTH);
        api_reply_error_hdr(rq, 429, MHD_HTTP_HEADER_RETRY_AFTER, secs,
                            "too many failed authentication attempts with this token "
                            "or from this address; retry in %lld s",
                            wait_s);
        return false;
    }
    ratelimit_record_failure(rq->srv->rl_addr, addr_key);
    ratelimit_record_failure(rq->srv->rl_token, prefix);
    api_reply_error(rq, 401, "invalid or revoked token");
    return false;
}
