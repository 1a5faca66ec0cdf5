/* timeutil.h — clocks and timestamps. */
#pragma once

#include <stdint.h>
#include <time.h>

#define RFC3339_LEN 32

/* "2026-11-26T15:55:21Z" for t (UTC). */
void time_rfc3339(time_t t, char out[RFC3339_LEN]);
void time_now_rfc3339(char out[RFC3339_LEN]);
/* The inverse, for any RFC 3339 time ("…Z", fractions, "+01:30"):
 * 0 and *ret, or -EINVAL (*ret untouched). */
int time_parse_rfc3339(const char *s, time_t *ret);

/* Monotonic clock in milliseconds / nanoseconds (for timeouts and durations). */
int64_t time_mono_ms(void);
int64_t time_mono_ns(void);
void time_sleep_ms(long ms);
/* A time_mono_ms value as a timespec, for the *_clocklock and
 * *_clockwait calls on CLOCK_MONOTONIC. */
struct timespec time_mono_timespec(int64_t ms);
/* Milliseconds from now to a time_mono_ms deadline, for poll(): 0 once
 * it passed, at most INT_MAX. */
int time_left_ms(int64_t deadline);

/* Wall clock in nanoseconds since the epoch. */
int64_t time_real_ns(void);
