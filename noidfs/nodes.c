/* nodes.c — the inode table: every file and directory the kernel knows is
 * a node, found by inode number (requests) or by identity (lookups).
 *
 * Identity is the kind plus the names on the way down (user, VM, run id,
 * checkpoint directory), so the same path always gets the same inode while
 * the kernel remembers it.  Lookup counting follows the FUSE rules: every
 * entry we reply adds one, forget subtracts, a node at zero is freed.
 * Inode numbers are never reused (64-bit counter).
 *
 * Guest nodes (NK_GUEST, under VM/fs/) are keyed by (user, VM, guest
 * path), not by the guest's inode number: the guest's inode numbers are
 * only unique per guest file system (/proc, /sys, /tmp have their own,
 * and the agent does not report st_dev), and a path is what every request
 * to the agent names anyway.  So a node's path must follow what the
 * kernel believes:
 *   - a rename through the mount moves the node and every node below it
 *     to the new path (the kernel keeps their inodes, d_move);
 *   - a node whose file is gone (unlinked, renamed over, or replaced
 *     behind our back: the guest inode at its path changed) is detached:
 *     out of the key table, without a path, so the next lookup of that
 *     path makes a new node (a new inode: no stale page cache, no type
 *     change of a live inode), while open handles on the old one go on
 *     working through their guest handle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs-internal.h"
#include "guestfs_path.h"
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
                      const char *ckpt, const char *gpath)
{
    char *k = NULL;

    /* '/' never occurs in a name, so it separates them unambiguously; the
     * guest path, which has them, comes last */
    if (asprintf(&k, "%d/%s/%s/%u/%s/%s", (int)kind, user ? user : "", vm ? vm : "", run,
                 ckpt ? ckpt : "", gpath ? gpath : "") < 0)
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
    free(n->gpath);
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

static void key_link_locked(struct nodes *t, struct node *n)
{
    size_t hk = hash_str(n->key);

    n->next_by_key = t->by_key[hk];
    t->by_key[hk] = n;
}

/* Take n out of the key table (a detached node is not in it). */
static void key_unlink_locked(struct nodes *t, struct node *n)
{
    if (!n->key)
        return;
    for (struct node **pp = &t->by_key[hash_str(n->key)]; *pp; pp = &(*pp)->next_by_key)
        if (*pp == n) {
            *pp = n->next_by_key;
            break;
        }
    n->next_by_key = NULL;
}

/* n's file is gone: nothing finds it by path any more. */
static void detach_locked(struct nodes *t, struct node *n)
{
    key_unlink_locked(t, n);
    free(n->key);
    n->key = NULL;
    free(n->gpath);
    n->gpath = NULL;
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

/* A new node with this identity (key consumed), counted once. */
static struct node *node_new_locked(struct nodes *t, enum node_kind kind, const char *user,
                                    const char *vm, unsigned run, const char *ckpt,
                                    const char *gpath, char **key)
{
    struct node *n = calloc(1, sizeof(*n));
    bool failed = false;

    if (!n)
        return NULL;
    n->kind = kind;
    n->run = run;
    n->user = dup_or_null(user, &failed);
    n->vm = dup_or_null(vm, &failed);
    n->ckpt = dup_or_null(ckpt, &failed);
    n->gpath = dup_or_null(gpath, &failed);
    if (failed) {
        node_free(n);
        return NULL;
    }
    n->key = *key;
    *key = NULL;
    n->ino = t->next_ino++;
    n->nlookup = 1;
    key_link_locked(t, n);
    size_t hi = n->ino % NODES_BUCKETS;
    n->next_by_ino = t->by_ino[hi];
    t->by_ino[hi] = n;
    return n;
}

const struct node *nodes_ref(struct nodes *t, enum node_kind kind, const char *user, const char *vm,
                             unsigned run, const char *ckpt)
{
    _cleanup_free_ char *key = NULL;
    struct node *n;

    if ((kind == NK_ROOT || (kind == NK_USER && !t->multi_user)))
        return &t->root;
    key = make_key(kind, user, vm, run, ckpt, NULL);
    if (!key)
        return NULL;
    pthread_mutex_lock(&t->lock);
    n = find_key_locked(t, key);
    if (n)
        n->nlookup++;
    else
        n = node_new_locked(t, kind, user, vm, run, ckpt, NULL, &key);
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* The inode of the node with key (consumed), 0 if none (or key NULL). */
static fuse_ino_t find_ino(struct nodes *t, char *key)
{
    struct node *n;
    fuse_ino_t ino = 0;

    if (!key)
        return 0;
    pthread_mutex_lock(&t->lock);
    n = find_key_locked(t, key);
    if (n)
        ino = n->ino;
    pthread_mutex_unlock(&t->lock);
    free(key);
    return ino;
}

fuse_ino_t nodes_find(struct nodes *t, enum node_kind kind, const char *user, const char *vm,
                      unsigned run, const char *ckpt)
{
    if (kind == NK_ROOT || (kind == NK_USER && !t->multi_user))
        return FUSE_ROOT_ID;
    return find_ino(t, make_key(kind, user, vm, run, ckpt, NULL));
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
    key_unlink_locked(t, n);
    node_free(n);
out:
    pthread_mutex_unlock(&t->lock);
}

/* ---- guest nodes ---- */

static bool guest_of_locked(const struct node *n, const char *user, const char *vm)
{
    return n->kind == NK_GUEST && n->gpath && strcmp(n->vm, vm) == 0 &&
           (user ? n->user && strcmp(n->user, user) == 0 : !n->user);
}

static void sig_set_locked(struct node *n, const struct ap_fs_attr *a)
{
    n->sig_valid = true;
    n->sig_size = a->size;
    n->sig_mtime = a->mtime;
    n->sig_ctime = a->ctime;
}

const struct node *nodes_ref_guest(struct nodes *t, const char *user, const char *vm,
                                   const char *gpath, const struct ap_fs_attr *a)
{
    _cleanup_free_ char *key = make_key(NK_GUEST, user, vm, 0, NULL, gpath);
    struct node *n;

    if (!key)
        return NULL;
    pthread_mutex_lock(&t->lock);
    n = find_key_locked(t, key);
    /* another file at that path now (replaced in the guest): a new node */
    if (n && (n->gino != a->ino || ((n->gmode ^ a->mode) & S_IFMT))) {
        detach_locked(t, n);
        n = NULL;
    }
    if (n)
        n->nlookup++;
    else
        n = node_new_locked(t, NK_GUEST, user, vm, 0, NULL, gpath, &key);
    if (n) {
        n->gino = a->ino;
        n->gmode = a->mode;
        sig_set_locked(n, a); /* the caller tells the kernel a */
    }
    pthread_mutex_unlock(&t->lock);
    return n;
}

fuse_ino_t nodes_find_guest(struct nodes *t, const char *user, const char *vm, const char *gpath)
{
    return find_ino(t, make_key(NK_GUEST, user, vm, 0, NULL, gpath));
}

int nodes_guest_path(struct nodes *t, const struct node *n, char out[GPATH_SIZE])
{
    int r = 0;

    pthread_mutex_lock(&t->lock);
    if (n->gpath)
        snprintf(out, GPATH_SIZE, "%s", n->gpath);
    else
        r = -ESTALE;
    pthread_mutex_unlock(&t->lock);
    return r;
}

bool nodes_guest_same(struct nodes *t, const struct node *cn, const struct ap_fs_attr *a)
{
    struct node *n = (struct node *)cn;
    bool same;

    pthread_mutex_lock(&t->lock);
    same = n->gino == a->ino && !((n->gmode ^ a->mode) & S_IFMT);
    if (!same)
        detach_locked(t, n);
    pthread_mutex_unlock(&t->lock);
    return same;
}

void nodes_guest_told(struct nodes *t, const struct node *cn, const struct ap_fs_attr *a)
{
    pthread_mutex_lock(&t->lock);
    sig_set_locked((struct node *)cn, a);
    pthread_mutex_unlock(&t->lock);
}

bool nodes_guest_unchanged(struct nodes *t, const struct node *cn, const struct ap_fs_attr *a)
{
    struct node *n = (struct node *)cn;
    bool same;

    pthread_mutex_lock(&t->lock);
    /* ctime moves with every change of content (and no one can set it) */
    same = n->sig_valid && n->sig_size == a->size && n->sig_mtime.sec == a->mtime.sec &&
           n->sig_mtime.nsec == a->mtime.nsec && n->sig_ctime.sec == a->ctime.sec &&
           n->sig_ctime.nsec == a->ctime.nsec;
    sig_set_locked(n, a);
    pthread_mutex_unlock(&t->lock);
    return same;
}

/* Put n at gpath (NULL: detach it).  A node whose new key cannot be made
 * (out of memory) is detached: a later lookup makes it again. */
static void move_locked(struct nodes *t, struct node *n, const char *gpath)
{
    char *key = gpath ? make_key(NK_GUEST, n->user, n->vm, 0, NULL, gpath) : NULL;
    char *p = gpath ? strdup(gpath) : NULL;

    detach_locked(t, n);
    if (!key || !p) {
        free(key);
        free(p);
        return;
    }
    n->key = key;
    n->gpath = p;
    key_link_locked(t, n);
}

/* Every guest node of (user, vm) within from moves to to; with exchange,
 * those within to move to from, else they are detached (replaced).  A
 * rename the guest accepted never has one of from and to within the
 * other (but for from == to, handled by the caller), so each node's fate
 * follows from its path before the change, and every node is visited once
 * (the walk is over the inode lists; moving changes the key lists only). */
static void guest_change(struct nodes *t, const char *user, const char *vm, const char *from,
                         const char *to, bool exchange)
{
    pthread_mutex_lock(&t->lock);
    for (size_t b = 0; b < NODES_BUCKETS; b++)
        for (struct node *n = t->by_ino[b]; n; n = n->next_by_ino) {
            char buf[GPATH_SIZE];

            if (!guest_of_locked(n, user, vm))
                continue;
            if (from && gpath_within(n->gpath, from))
                move_locked(t, n, gpath_rebase(n->gpath, from, to, buf) == 0 ? buf : NULL);
            else if (gpath_within(n->gpath, to))
                move_locked(t, n,
                            exchange && gpath_rebase(n->gpath, to, from, buf) == 0 ? buf : NULL);
        }
    pthread_mutex_unlock(&t->lock);
}

void nodes_guest_detach(struct nodes *t, const char *user, const char *vm, const char *gpath)
{
    guest_change(t, user, vm, NULL, gpath, false);
}

void nodes_guest_move(struct nodes *t, const char *user, const char *vm, const char *from,
                      const char *to, bool exchange)
{
    if (strcmp(from, to) == 0)
        return; /* renaming a name to itself changes nothing */
    guest_change(t, user, vm, from, to, exchange);
}
