/* ratelimit.h — failed-authentication limiter, keyed by token prefix.
 *
 * Policy (the guide's "Rate limiting"): `max_failures` failures for one key
 * within `window_ms` block that key until the window that started with its
 * first failure expires.  Keys are independent: failures under one prefix
 * never block another.  The clock is injectable so tests can move time.
 * Thread-safe; memory is bounded by RATELIMIT_MAX_KEYS. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_MAX_KEYS 16384
#define RATELIMIT_KEY_MAX 32

typedef int64_t (*ratelimit_clock_fn)(void *data);

struct ratelimit;

struct ratelimit *ratelimit_new(int max_failures, int64_t window_ms, ratelimit_clock_fn clock,
                                void *clock_data);
void ratelimit_free(struct ratelimit *rl);

/* Whether key is blocked now; if so, *ret_retry_ms (if given) says for how long. */
bool ratelimit_is_blocked(struct ratelimit *rl, const char *key, int64_t *ret_retry_ms);
void ratelimit_record_failure(struct ratelimit *rl, const char *key);
size_t ratelimit_size(struct ratelimit *rl);
