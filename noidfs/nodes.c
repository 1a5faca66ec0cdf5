/* nodes.c — the inode table: every file and directory the kernel knows is
 * a node, found by inode number (requests) or by identity (lookups).
 *
 * Identity is the kind plus the names on the way down (user, VM, run id,
 * checkpoint directory), so the same path always gets the same inode while
 * the kernel remembers it.  Lookup counting follows the FUSE rules: every
 * entry we reply adds one, forget subtracts, a node at zero is freed.
 * Inode numbers are never reused (64-bit counter). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs-internal.h"
#include "macro.h"

#define NODES_BUCKETS 4096

struct nodes {
    pthread_mutex_t lock;
    bool multi_user;
    fuse_ino_t next_ino;                /* (lock) */
    struct node *by_ino[NODES_BUCKETS]; /* (lock) */
    struct node *by_key[NODES_BUCKETS]; /* (lock) */
    struct node root;
};

static size_t hash_str(const char *s)
{
    size_t h = 5381;

    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h % NODES_BUCKETS;
}

static char *make_key(enum node_kind kind, const char *user, const char *vm, unsigned run,
                      const char *ckpt)
{
    char *k = NULL;

    /* '/' never occurs in a name, so it separates them unambiguously */
    if (asprintf(&k, "%d/%s/%s/%u/%s", (int)kind, user ? user : "", vm ? vm : "", run,
                 ckpt ? ckpt : "") < 0)
        return NULL;
    return k;
}

struct nodes *nodes_new(bool multi_user)
{
    struct nodes *t = calloc(1, sizeof(*t));

    if (!t)
        return NULL;
    pthread_mutex_init(&t->lock, NULL);
    t->multi_user = multi_user;
    t->next_ino = FUSE_ROOT_ID + 1;
    t->root.ino = FUSE_ROOT_ID;
    t->root.kind = multi_user ? NK_ROOT : NK_USER;
    t->root.nlookup = 1;
    return t;
}

static void node_free(struct node *n)
{
    free(n->user);
    free(n->vm);
    free(n->ckpt);
    free(n->key);
    free(n);
}

void nodes_free(struct nodes *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < NODES_BUCKETS; i++) {
        struct node *n = t->by_ino[i];
        while (n) {
            struct node *next = n->next_by_ino;
            node_free(n);
            n = next;
        }
    }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

static struct node *find_ino_locked(struct nodes *t, fuse_ino_t ino)
{
    for (struct node *n = t->by_ino[ino % NODES_BUCKETS]; n; n = n->next_by_ino)
        if (n->ino == ino)
            return n;
    return NULL;
}

static struct node *find_key_locked(struct nodes *t, const char *key)
{
    for (struct node *n = t->by_key[hash_str(key)]; n; n = n->next_by_key)
        if (strcmp(n->key, key) == 0)
            return n;
    return NULL;
}

const struct node *nodes_get(struct nodes *t, fuse_ino_t ino)
{
    struct node *n;

    if (ino == FUSE_ROOT_ID)
        return &t->root;
    pthread_mutex_lock(&t->lock);
    n = find_ino_locked(t, ino);
    pthread_mutex_unlock(&t->lock);
    return n;
}

static char *dup_or_null(const char *s, bool *failed)
{
    char *d;

    if (!s)
        return NULL;
    d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

const struct node *nodes_ref(struct nodes *t, enum node_kind kind, const char *user, const char *vm,
                             unsigned run, const char *ckpt)
{
    _cleanup_free_ char *key = NULL;
    struct node *n;
    bool failed = false;

    if ((kind == NK_ROOT || (kind == NK_USER && !t->multi_user)))
        return &t->root;
    key = make_key(kind, user, vm, run, ckpt);
    if (!key)
        return NULL;
    pthread_mutex_lock(&t->lock);
    n = find_key_locked(t, key);
    if (n) {
        n->nlookup++;
        goto out;
    }
    n = calloc(1, sizeof(*n));
    if (!n)
        goto out;
    n->kind = kind;
    n->run = run;
    n->user = dup_or_null(user, &failed);
    n->vm = dup_or_null(vm, &failed);
    n->ckpt = dup_or_null(ckpt, &failed);
    if (failed) {
        node_free(n);
        n = NULL;
        goto out;
    }
    n->key = TAKE_PTR(key);
    n->ino = t->next_ino++;
    n->nlookup = 1;
    size_t hk = hash_str(n->key), hi = n->ino % NODES_BUCKETS;
    n->next_by_key = t->by_key[hk];
    t->by_key[hk] = n;
    n->next_by_ino = t->by_ino[hi];
    t->by_ino[hi] = n;
out:
    pthread_mutex_unlock(&t->lock);
    return n;
}

fuse_ino_t nodes_find(struct nodes *t, enum node_kind kind, const char *user, const char *vm,
                      unsigned run, const char *ckpt)
{
    _cleanup_free_ char *key = NULL;
    struct node *n;
    fuse_ino_t ino = 0;

    if (kind == NK_ROOT || (kind == NK_USER && !t->multi_user))
        return FUSE_ROOT_ID;
    key = make_key(kind, user, vm, run, ckpt);
    if (!key)
        return 0;
    pthread_mutex_lock(&t->lock);
    n = find_key_locked(t, key);
    if (n)
        ino = n->ino;
    pthread_mutex_unlock(&t->lock);
    return ino;
}

void nodes_forget(struct nodes *t, fuse_ino_t ino, uint64_t count)
{
    struct node *n, **pp;

    if (ino == FUSE_ROOT_ID)
        return;
    pthread_mutex_lock(&t->lock);
    n = find_ino_locked(t, ino);
    if (!n)
        goto out;
    n->nlookup = count >= n->nlookup ? 0 : n->nlookup - count;
    if (n->nlookup > 0)
        goto out;
    for (pp = &t->by_ino[ino % NODES_BUCKETS]; *pp != n; pp = &(*pp)->next_by_ino)
        ;
    *pp = n->next_by_ino;
    for (pp = &t->by_key[hash_str(n->key)]; *pp != n; pp = &(*pp)->next_by_key)
        ;
    *pp = n->next_by_key;
    node_free(n);
out:
    pthread_mutex_unlock(&t->lock);
}
