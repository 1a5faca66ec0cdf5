/* test_ratelimit.c — the failed-auth limiter, with a clock the test moves. */
#include <stdio.h>

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

Suite *suite_ratelimit(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *t = tcase_create("core");

    tcase_add_test(t, blocks_after_ten_failures_until_window_ends);
    tcase_add_test(t, keys_are_independent);
    tcase_add_test(t, failures_spread_over_windows_do_not_block);
    tcase_add_test(t, memory_is_bounded);
    suite_add_tcase(s, t);
    return s;
}
