/* ratelimit.c — see ratelimit.h.
 *
 * A chained hash table of fixed windows.  Lookups happen on every
 * authenticated request, so they are O(1); pruning of expired windows happens
 * only when the table is full, i.e. on the failure path. */
#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

#define NBUCKETS 4096

struct rl_entry {
    struct rl_entry *next;
    char key[RATELIMIT_KEY_MAX + 1];
    int64_t window_start;
    int failures;
};

struct ratelimit {
    pthread_mutex_t lock; /* protects buckets and count */
    struct rl_entry *buckets[NBUCKETS];
    size_t count;
    int max_failures;
    int64_t window_ms;
    ratelimit_clock_fn clock;
    void *clock_data;
};

static uint32_t key_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */

    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h % NBUCKETS;
}

struct ratelimit *ratelimit_new(int max_failures, int64_t window_ms, ratelimit_clock_fn clock,
                                void *clock_data)
{
    struct ratelimit *rl = calloc(1, sizeof(*rl));

    if (!rl)
        return NULL;
    pthread_mutex_init(&rl->lock, NULL);
    rl->max_failures = max_failures;
    rl->window_ms = window_ms;
    rl->clock = clock;
    rl->clock_data = clock_data;
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    for (size_t i = 0; i < NBUCKETS; i++)
        while (rl->buckets[i]) {
            struct rl_entry *n = rl->buckets[i]->next;
            free(rl->buckets[i]);
            rl->buckets[i] = n;
        }
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

static struct rl_entry *find(struct ratelimit *rl, const char *key)
{
    for (struct rl_entry *e = rl->buckets[key_hash(key)]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static bool expired(const struct ratelimit *rl, const struct rl_entry *e, int64_t now)
{
    return now >= e->window_start + rl->window_ms;
}

/* Drop expired windows; if none expired, drop the oldest one.  Caller holds lock. */
static void make_room(struct ratelimit *rl, int64_t now)
{
    struct rl_entry **oldest = NULL;

    for (size_t i = 0; i < NBUCKETS; i++) {
        struct rl_entry **pp = &rl->buckets[i];
        while (*pp) {
            if (expired(rl, *pp, now)) {
                struct rl_entry *dead = *pp;
                *pp = dead->next;
                free(dead);
                rl->count--;
                continue;
            }
            if (!oldest || (*pp)->window_start < (*oldest)->window_start)
                oldest = pp;
            pp = &(*pp)->next;
        }
    }
    if (rl->count >= RATELIMIT_MAX_KEYS && oldest) {
        struct rl_entry *dead = *oldest;
        *oldest = dead->next;
        free(dead);
        rl->count--;
    }
}

bool ratelimit_is_blocked(struct ratelimit *rl, const char *key, int64_t *ret_retry_ms)
{
    int64_t now = rl->clock(rl->clock_data);
    struct rl_entry *e;
    bool blocked = false;

    pthread_mutex_lock(&rl->lock);
    e = find(rl, key);
    if (e && e->failures >= rl->max_failures && !expired(rl, e, now)) {
        blocked = true;
        if (ret_retry_ms)
            *ret_retry_ms = e->window_start + rl->window_ms - now;
    }
    pthread_mutex_unlock(&rl->lock);
    return blocked;
}

void ratelimit_record_failure(struct ratelimit *rl, const char *key)
{
    int64_t now = rl->clock(rl->clock_data);
    struct rl_entry *e;

    pthread_mutex_lock(&rl->lock);
    e = find(rl, key);
    if (e && expired(rl, e, now)) {
        e->window_start = now;
        e->failures = 0;
    }
    if (!e) {
        if (rl->count >= RATELIMIT_MAX_KEYS)
            make_room(rl, now);
        e = calloc(1, sizeof(*e));
        if (!e)
            goto out; /* out of memory: fail open for limiting, auth still fails */
        snprintf(e->key, sizeof(e->key), "%s", key);
        e->window_start = now;
        uint32_t h = key_hash(e->key);
        e->next = rl->buckets[h];
        rl->buckets[h] = e;
        rl->count++;
    }
    e->failures++;
out:
    pthread_mutex_unlock(&rl->lock);
}

size_t ratelimit_size(struct ratelimit *rl)
{
    size_t n;

    pthread_mutex_lock(&rl->lock);
    n = rl->count;
    pthread_mutex_unlock(&rl->lock);
    return n;
}
