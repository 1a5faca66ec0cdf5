/* test_ratelimit.c — the failed-auth limiter, with a clock the test moves. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ratelimit.h"
#include "unit.h"

static int64_t fake_now;

static int64_t fake_clock(void *data)
{
    return fake_now;
}

START_TEST(blocks_after_ten_failures_until_window_ends)
{
    struct ratelimit *rl = ratelimit_new(10, 60000, fake_clock, NULL);
    int64_t retry = 0;

    fake_now = 1000;
    for (int i = 0; i < 9; i++) {
        ratelimit_record_failure(rl, "aaaa");
        fake_now += 100;
    }
    ck_assert(!ratelimit_is_blocked(rl, "aaaa", NULL));
    ratelimit_record_failure(rl, "aaaa");
    ck_assert(ratelimit_is_blocked(rl, "aaaa", &retry));
    ck_assert_int_eq(retry, 1000 + 60000 - fake_now);
    fake_now = 1000 + 60000 - 1;
    ck_assert(ratelimit_is_blocked(rl, "aaaa", NULL));
    fake_now = 1000 + 60000;
    ck_assert(!ratelimit_is_blocked(rl, "aaaa", NULL));
    ratelimit_free(rl);
}
END_TEST

START_TEST(keys_are_independent)
{
    struct ratelimit *rl = ratelimit_new(10, 60000, fake_clock, NULL);

    fake_now = 0;
    for (int i = 0; i < 50; i++)
        ratelimit_record_failure(rl, "attacker");
    ck_assert(ratelimit_is_blocked(rl, "attacker", NULL));
    ck_assert(!ratelimit_is_blocked(rl, "gooduser", NULL));
    ratelimit_free(rl);
}
END_TEST

START_TEST(failures_spread_over_windows_do_not_block)
{
    struct ratelimit *rl = ratelimit_new(10, 60000, fake_clock, NULL);

    fake_now = 0;
    for (int i = 0; i < 30; i++) {
        ratelimit_record_failure(rl, "slow");
        ck_assert(!ratelimit_is_blocked(rl, "slow", NULL));
        fake_now += 7000; /* 9 failures per 60 s window at most */
    }
    ck_assert(!ratelimit_is_blocked(rl, "slow", NULL));
    ratelimit_free(rl);
}
END_TEST

START_TEST(memory_is_bounded)
{
    struct ratelimit *rl = ratelimit_new(10, 60000, fake_clock, NULL);
    char key[32];

    fake_now = 0;
    for (int i = 0; i < RATELIMIT_MAX_KEYS + 500; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ratelimit_record_failure(rl, key);
    }
    ck_assert_uint_le(ratelimit_size(rl), RATELIMIT_MAX_KEYS);
    ratelimit_free(rl);
}
END_TEST

START_TEST(expired_windows_are_pruned)
{
    struct ratelimit *rl = ratelimit_new(10, 60000, fake_clock, NULL);
    char key[32];

    fake_now = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ratelimit_record_failure(rl, key);
    }
    ck_assert_uint_eq(ratelimit_size(rl), 100);
    fake_now = 60000;
    ratelimit_record_failure(rl, "late");
    ck_assert_uint_eq(ratelimit_size(rl), 1);
    ratelimit_free(rl);
}
END_TEST

/* A full table evicts the oldest *window*: a key whose window restarted is
 * young again, so a flood of new keys evicts stale entries before it. */
START_TEST(eviction_drops_the_oldest_window)
{
    struct ratelimit *rl = ratelimit_new(10, 60000, fake_clock, NULL);
    char key[32];

    fake_now = 0;
    for (int i = 0; i < 10; i++)
        ratelimit_record_failure(rl, "renewed");
    fake_now = 1;
    for (int i = 0; i < 10; i++)
        ratelimit_record_failure(rl, "stale");
    fake_now = 60000; /* "renewed" expired, "stale" not yet */
    for (int i = 0; i < 10; i++)
        ratelimit_record_failure(rl, "renewed");
    for (int i = 0; ratelimit_size(rl) < RATELIMIT_MAX_KEYS; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        ratelimit_record_failure(rl, key);
    }
    ck_assert(ratelimit_is_blocked(rl, "stale", NULL));
    ratelimit_record_failure(rl, "one-more");
    ck_assert_uint_eq(ratelimit_size(rl), RATELIMIT_MAX_KEYS);
    ck_assert(!ratelimit_is_blocked(rl, "stale", NULL));
    ck_assert(ratelimit_is_blocked(rl, "renewed", NULL));
    ratelimit_free(rl);
}
END_TEST

START_TEST(long_keys_are_truncated_consistently)
{
    struct ratelimit *rl = ratelimit_new(10, 60000, fake_clock, NULL);
    char key[RATELIMIT_KEY_MAX * 2 + 1];

    memset(key, 'x', sizeof(key) - 1);
    key[sizeof(key) - 1] = 0;
    fake_now = 0;
    for (int i = 0; i < 10; i++)
        ratelimit_record_failure(rl, key);
    ck_assert_uint_eq(ratelimit_size(rl), 1);
    ck_assert(ratelimit_is_blocked(rl, key, NULL));
    ratelimit_free(rl);
}
END_TEST

#define THREADS             4
#define FAILURES_PER_THREAD 5000

struct worker_arg {
    struct ratelimit *rl;
    int id;
};

static void *hammer(void *p)
{
    struct worker_arg *a = p;
    char key[32];

    for (int i = 0; i < FAILURES_PER_THREAD; i++) {
        ratelimit_record_failure(a->rl, "shared");
        /* few enough distinct keys that "shared" is never evicted */
        snprintf(key, sizeof(key), "t%d-%d", a->id, i % 1000);
        ratelimit_record_failure(a->rl, key);
        ratelimit_is_blocked(a->rl, key, NULL);
    }
    return NULL;
}

/* Concurrent failures are all counted, and the bound holds under contention. */
START_TEST(concurrent_failures_are_counted)
{
    struct ratelimit *rl = ratelimit_new(THREADS * FAILURES_PER_THREAD, 60000, fake_clock, NULL);
    struct worker_arg args[THREADS];
    pthread_t th[THREADS];

    fake_now = 0;
    for (int i = 0; i < THREADS - 1; i++) {
        args[i] = (struct worker_arg){rl, i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, hammer, &args[i]), 0);
    }
    /* one thread short of the threshold: not blocked yet */
    for (int i = 0; i < THREADS - 1; i++)
        pthread_join(th[i], NULL);
    ck_assert(!ratelimit_is_blocked(rl, "shared", NULL));
    args[THREADS - 1] = (struct worker_arg){rl, THREADS - 1};
    ck_assert_int_eq(pthread_create(&th[THREADS - 1], NULL, hammer, &args[THREADS - 1]), 0);
    pthread_join(th[THREADS - 1], NULL);
    ck_assert(ratelimit_is_blocked(rl, "shared", NULL));
    ck_assert_uint_le(ratelimit_size(rl), RATELIMIT_MAX_KEYS);
    ratelimit_free(rl);
}
END_TEST

Suite *suite_ratelimit(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *t = tcase_create("core");

    tcase_add_test(t, blocks_after_ten_failures_until_window_ends);
    tcase_add_test(t, keys_are_independent);
    tcase_add_test(t, failures_spread_over_windows_do_not_block);
    tcase_add_test(t, memory_is_bounded);
    tcase_add_test(t, expired_windows_are_pruned);
    tcase_add_test(t, eviction_drops_the_oldest_window);
    tcase_add_test(t, long_keys_are_truncated_consistently);
    tcase_add_test(t, concurrent_failures_are_counted);
    suite_add_tcase(s, t);
    return s;
}
