/* ratelimit.c — see ratelimit.h.
 *
 * A chained hash table of fixed windows, plus one list of all entries in the
 * order their windows started (a window starts when an entry is created or
 * when an expired one is reused, and the clock never goes back, so appending
 * at the tail keeps the list sorted).  Expired windows therefore sit at the
 * head: pruning them, and evicting the oldest when the table is full, is O(1)
 * per entry removed — a flood of failures from many addresses costs no scan
 * of the table under the lock.
 *
 * Lock: `lock` protects everything below it in struct ratelimit and every
 * entry; no other lock is taken while holding it. */
#include "ratelimit.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

#define NBUCKETS 4096

struct rl_entry {
    struct rl_entry *next;          /* in its hash bucket */
    struct rl_entry *older, *newer; /* in the window-start order */
    char key[RATELIMIT_KEY_MAX + 1];
    int64_t window_start;
    int failures;
};

struct ratelimit {
    pthread_mutex_t lock;
    struct rl_entry *buckets[NBUCKETS]; /* (lock) */
    struct rl_entry *oldest, *newest;   /* (lock) all entries by window start */
    size_t count;                       /* (lock) */
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
    while (rl->oldest) {
        struct rl_entry *n = rl->oldest->newer;
        free(rl->oldest);
        rl->oldest = n;
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

/* Take e out of the window-start list (lock held). */
static void order_unlink(struct ratelimit *rl, struct rl_entry *e)
{
    if (e->older)
        e->older->newer = e->newer;
    else
        rl->oldest = e->newer;
    if (e->newer)
        e->newer->older = e->older;
    else
        rl->newest = e->older;
    e->older = e->newer = NULL;
}

/* Put e at the young end of the window-start list (lock held). */
static void order_append(struct ratelimit *rl, struct rl_entry *e)
{
    e->older = rl->newest;
    e->newer = NULL;
    if (rl->newest)
        rl->newest->newer = e;
    else
        rl->oldest = e;
    rl->newest = e;
}

/* Unlink e from its bucket and the list, and free it (lock held). */
static void drop(struct ratelimit *rl, struct rl_entry *e)
{
    struct rl_entry **pp = &rl->buckets[key_hash(e->key)];

    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    order_unlink(rl, e);
    free(e);
    rl->count--;
}

/* Drop expired windows, then (if still full) the oldest ones until there is
 * room for one more key (lock held). */
static void prune(struct ratelimit *rl, int64_t now)
{
    while (rl->oldest && expired(rl, rl->oldest, now))
        drop(rl, rl->oldest);
    while (rl->oldest && rl->count >= RATELIMIT_MAX_KEYS)
        drop(rl, rl->oldest);
}

bool ratelimit_is_blocked(struct ratelimit *rl, const char *key_in, int64_t *ret_retry_ms)
{
    int64_t now = rl->clock(rl->clock_data);
    char key[RATELIMIT_KEY_MAX + 1];
    struct rl_entry *e;
    bool blocked = false;

    /* truncated the same way as when it was stored */
    snprintf(key, sizeof(key), "%s", key_in);
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

void ratelimit_record_failure(struct ratelimit *rl, const char *key_in)
{
    int64_t now = rl->clock(rl->clock_data);
    char key[RATELIMIT_KEY_MAX + 1];
    struct rl_entry *e;

    snprintf(key, sizeof(key), "%s", key_in);
    pthread_mutex_lock(&rl->lock);
    e = find(rl, key);
    if (e && expired(rl, e, now)) {
        /* a new window: it is now the youngest */
        e->window_start = now;
        e->failures = 0;
        order_unlink(rl, e);
        order_append(rl, e);
    }
    if (!e) {
        prune(rl, now);
        e = calloc(1, sizeof(*e));
        if (!e)
            goto out; /* out of memory: fail open for limiting, auth still fails */
        snprintf(e->key, sizeof(e->key), "%s", key);
        e->window_start = now;
        uint32_t h = key_hash(e->key);
        e->next = rl->buckets[h];
        rl->buckets[h] = e;
        order_append(rl, e);
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
