/* ratelimit.h — failed-authentication limiter: counts failures per key in
 * fixed windows.
 *
 * `max_failures` failures for one key within `window_ms` block that key until
 * the window that started with its first failure expires.  Keys are
 * independent: failures under one never block another.  What a key is (a
 * client address, a token prefix) and what "blocked" means for a request is
 * the caller's policy (auth.c, the guide's "Rate limiting"); the server runs
 * one limiter per kind of key, so a flood of one kind cannot evict the other.
 *
 * Memory is bounded by RATELIMIT_MAX_KEYS: when full, expired windows go
 * first, then the oldest window (which is also the one closest to expiring),
 * so under a flood of new keys the limiter fails open for the oldest key
 * rather than growing.  Thread-safe.  The clock is injectable so tests can
 * move time. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_MAX_KEYS 16384
/* Longer keys are truncated; an IPv6 /64 written out fits. */
#define RATELIMIT_KEY_MAX 64

typedef int64_t (*ratelimit_clock_fn)(void *data);

struct ratelimit;

struct ratelimit *ratelimit_new(int max_failures, int64_t window_ms, ratelimit_clock_fn clock,
                                void *clock_data);
void ratelimit_free(struct ratelimit *rl);

/* Whether key is blocked now; if so, *ret_retry_ms (if given) says for how long. */
bool ratelimit_is_blocked(struct ratelimit *rl, const char *key, int64_t *ret_retry_ms);
/* Count one failure under key (starting a new window if its last one expired). */
void ratelimit_record_failure(struct ratelimit *rl, const char *key);
/* Number of keys held (expired windows may still be counted until pruned). */
size_t ratelimit_size(struct ratelimit *rl);
