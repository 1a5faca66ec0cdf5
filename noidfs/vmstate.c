/* vmstate.c — what the front-end remembers per user and per VM:
 *   - the user's VM list, cached for cache_secs so `ls -l` and the lookups
 *     after it cost one list call, not one per VM (our own create, destroy
 *     and clone mark it stale at once);
 *   - the runs made through this mount (runs/N, the VM's stdout/stderr/
 *     status), the newest RUNS_KEPT of them and at most RUNS_OUTPUT_BUDGET
 *     bytes of their output (older runs go first); they go with the VM
 *     when it is destroyed through the mount.
 * A VM's entry lives as long as the mount (requests of other threads may
 * hold it), so it is never freed before vmstate_free. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs-internal.h"
#include "macro.h"
#include "timeutil.h"

struct vm_list_cache {
    struct vm_list_cache *next;
    char *user; /* "" for a single-user mount */
    struct noidfs_vm *vms;
    size_t n;
    int64_t fetched_ms; /* 0: stale */
};

struct vm_runs {
    struct vm_runs *next;
    char *user, *vm;
    pthread_mutex_t lock;
    unsigned next_id;            /* (lock) */
    struct run *runs[RUNS_KEPT]; /* (lock) oldest first, NULL-padded at the end */
    struct run *top;             /* (lock) newest run started through vm/exec */
};

struct vmstate {
    pthread_mutex_t lock; /* guards both lists (not the runs inside) */
    double cache_secs;
    struct vm_list_cache *lists;
    struct vm_runs *vms;
};

struct vmstate *vmstate_new(double cache_secs)
{
    struct vmstate *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    pthread_mutex_init(&s->lock, NULL);
    s->cache_secs = cache_secs;
    return s;
}

static void vm_runs_free(struct vm_runs *v)
{
    for (size_t i = 0; i < RUNS_KEPT; i++)
        run_unref(v->runs[i]);
    run_unref(v->top);
    pthread_mutex_destroy(&v->lock);
    free(v->user);
    free(v->vm);
    free(v);
}

void vmstate_free(struct vmstate *s)
{
    if (!s)
        return;
    while (s->lists) {
        struct vm_list_cache *c = s->lists;
        s->lists = c->next;
        free(c->user);
        free(c->vms);
        free(c);
    }
    while (s->vms) {
        struct vm_runs *v = s->vms;
        s->vms = v->next;
        vm_runs_free(v);
    }
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ---- the VM list cache ---- */

static struct vm_list_cache *cache_find_locked(struct vmstate *s, const char *user, bool create)
{
    const char *u = user ? user : "";
    struct vm_list_cache *c;

    for (c = s->lists; c; c = c->next)
        if (strcmp(c->user, u) == 0)
            return c;
    if (!create)
        return NULL;
    c = calloc(1, sizeof(*c));
    if (!c || !(c->user = strdup(u))) {
        free(c);
        return NULL;
    }
    c->next = s->lists;
    s->lists = c;
    return c;
}

/* Copy of the cached list when it is fresh; 1 when served, 0 when stale. */
static int cache_copy(struct vmstate *s, const char *user, struct noidfs_vm **ret, size_t *ret_n)
{
    struct vm_list_cache *c;
    int r = 0;

    pthread_mutex_lock(&s->lock);
    c = cache_find_locked(s, user, false);
    if (c && c->fetched_ms && time_mono_ms() - c->fetched_ms < (int64_t)(s->cache_secs * 1000)) {
        *ret = c->n ? malloc(c->n * sizeof(**ret)) : NULL;
        if (c->n && !*ret) {
            r = -ENOMEM;
        } else {
            if (c->n)
                memcpy(*ret, c->vms, c->n * sizeof(**ret));
            *ret_n = c->n;
            r = 1;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return r;
}

int vmstate_vm_list(struct noidfs *fs, const char *user, struct noidfs_vm **ret, size_t *ret_n,
                    struct nerr *e)
{
    struct noidfs_vm *vms = NULL;
    struct vm_list_cache *c;
    size_t n = 0;
    int r;

    r = cache_copy(fs->vms, user, ret, ret_n);
    if (r != 0)
        return r < 0 ? r : 0;
    r = fs->ops->list_vms(fs->b, user, &vms, &n, e);
    if (r < 0)
        return r;
    pthread_mutex_lock(&fs->vms->lock);
    c = cache_find_locked(fs->vms, user, true);
    if (c) {
        struct noidfs_vm *copy = n ? malloc(n * sizeof(*copy)) : NULL;
        if (!n || copy) {
            if (n)
                memcpy(copy, vms, n * sizeof(*copy));
            free(c->vms);
            c->vms = copy;
            c->n = n;
            c->fetched_ms = time_mono_ms();
        }
    }
    pthread_mutex_unlock(&fs->vms->lock);
    *ret = vms;
    *ret_n = n;
    return 0;
}

int vmstate_vm_find(struct noidfs *fs, const char *user, const char *vm, struct noidfs_vm *ret,
                    struct nerr *e)
{
    _cleanup_free_ struct noidfs_vm *vms = NULL;
    size_t n = 0;
    int r;

    r = vmstate_vm_list(fs, user, &vms, &n, e);
    if (r < 0)
        return r;
    for (size_t i = 0; i < n; i++)
        if (strcmp(vms[i].name, vm) == 0) {
            *ret = vms[i];
            return 0;
        }
    return nerr_set(e, -ENOENT, "no VM named '%s'", vm);
}

void vmstate_vm_list_dirty(struct noidfs *fs, const char *user)
{
    struct vm_list_cache *c;

    pthread_mutex_lock(&fs->vms->lock);
    c = cache_find_locked(fs->vms, user, false);
    if (c)
        c->fetched_ms = 0;
    pthread_mutex_unlock(&fs->vms->lock);
}

/* ---- runs ---- */

void run_ref(struct run *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    r->refs++;
    pthread_mutex_unlock(&r->lock);
}

void run_unref(struct run *r)
{
    int left;

    if (!r)
        return;
    pthread_mutex_lock(&r->lock);
    left = --r->refs;
    pthread_mutex_unlock(&r->lock);
    if (left > 0)
        return;
    buf_free(&r->command);
    buf_free(&r->out);
    buf_free(&r->err);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

static bool same(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static struct vm_runs *runs_find(struct vmstate *s, const char *user, const char *vm, bool create)
{
    struct vm_runs *v;

    pthread_mutex_lock(&s->lock);
    for (v = s->vms; v; v = v->next)
        if (same(v->user, user) && strcmp(v->vm, vm) == 0)
            goto out;
    if (!create)
        goto out;
    v = calloc(1, sizeof(*v));
    if (!v)
        goto out;
    v->user = strdup(user ? user : "");
    v->vm = strdup(vm);
    if (!v->user || !v->vm) {
        free(v->user);
        free(v->vm);
        free(v);
        v = NULL;
        goto out;
    }
    pthread_mutex_init(&v->lock, NULL);
    v->next_id = 1;
    v->next = s->vms;
    s->vms = v;
out:
    pthread_mutex_unlock(&s->lock);
    return v;
}

void vmstate_vm_gone(struct noidfs *fs, const char *user, const char *vm)
{
    struct vm_runs *v = runs_find(fs->vms, user, vm, false);

    /* the entry itself stays (other requests may hold it; entries are
     * freed with the mount): only its runs go, and ids keep counting so a
     * runs/N seen before never names a later run */
    if (!v)
        return;
    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < RUNS_KEPT; i++) {
        run_unref(v->runs[i]);
        v->runs[i] = NULL;
    }
    run_unref(v->top);
    v->top = NULL;
    pthread_mutex_unlock(&v->lock);
}

/* (v->lock) Bytes of output the kept runs hold now. */
static size_t runs_output_bytes(struct vm_runs *v)
{
    size_t total = 0;

    for (size_t i = 0; i < RUNS_KEPT && v->runs[i]; i++) {
        pthread_mutex_lock(&v->runs[i]->lock);
        total += v->runs[i]->out.len + v->runs[i]->err.len;
        pthread_mutex_unlock(&v->runs[i]->lock);
    }
    return total;
}

/* (v->lock) Forget the oldest kept run. */
static void runs_drop_oldest(struct vm_runs *v)
{
    run_unref(v->runs[0]);
    memmove(&v->runs[0], &v->runs[1], (RUNS_KEPT - 1) * sizeof(v->runs[0]));
    v->runs[RUNS_KEPT - 1] = NULL;
}

struct run *vmstate_run_new(struct noidfs *fs, const char *user, const char *vm, bool top)
{
    struct vm_runs *v = runs_find(fs->vms, user, vm, true);
    struct run *r;

    if (!v)
        return NULL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    pthread_mutex_init(&r->lock, NULL);
    buf_init(&r->command, EXEC_COMMAND_MAX);
    buf_init(&r->out, RUN_OUTPUT_MAX);
    buf_init(&r->err, RUN_OUTPUT_MAX);
    r->when = time(NULL);
    r->refs = 2; /* the history's and the caller's */
    pthread_mutex_lock(&v->lock);
    r->id = v->next_id++;
    /* room: at most RUNS_KEPT runs, and their output within the budget */
    while (v->runs[0] && (v->runs[RUNS_KEPT - 1] || runs_output_bytes(v) > RUNS_OUTPUT_BUDGET))
        runs_drop_oldest(v);
    for (size_t i = 0; i < RUNS_KEPT; i++)
        if (!v->runs[i]) {
            v->runs[i] = r;
            break;
        }
    if (top) {
        run_unref(v->top);
        run_ref(r);
        v->top = r;
    }
    pthread_mutex_unlock(&v->lock);
    return r;
}

struct run *vmstate_run_get(struct noidfs *fs, const char *user, const char *vm, unsigned id)
{
    struct vm_runs *v = runs_find(fs->vms, user, vm, false);
    struct run *r = NULL;

    if (!v)
        return NULL;
    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < RUNS_KEPT && v->runs[i]; i++)
        if (v->runs[i]->id == id) {
            r = v->runs[i];
            run_ref(r);
            break;
        }
    pthread_mutex_unlock(&v->lock);
    return r;
}

struct run *vmstate_run_top(struct noidfs *fs, const char *user, const char *vm)
{
    struct vm_runs *v = runs_find(fs->vms, user, vm, false);
    struct run *r = NULL;

    if (!v)
        return NULL;
    pthread_mutex_lock(&v->lock);
    r = v->top;
    run_ref(r);
    pthread_mutex_unlock(&v->lock);
    return r;
}

int vmstate_run_ids(struct noidfs *fs, const char *user, const char *vm, unsigned **ret,
                    size_t *ret_n)
{
    struct vm_runs *v = runs_find(fs->vms, user, vm, false);
    unsigned *ids;
    size_t n = 0;

    *ret = NULL;
    *ret_n = 0;
    if (!v)
        return 0;
    ids = calloc(RUNS_KEPT, sizeof(*ids));
    if (!ids)
        return -ENOMEM;
    pthread_mutex_lock(&v->lock);
    for (size_t i = 0; i < RUNS_KEPT && v->runs[i]; i++)
        ids[n++] = v->runs[i]->id;
    pthread_mutex_unlock(&v->lock);
    *ret = ids;
    *ret_n = n;
    return 0;
}
