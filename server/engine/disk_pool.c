/* disk_pool.c — see disk_pool.h.
 *
 * storage/pool/<key>/<random>.img are ready copies of one source image, key =
 * hash of (path, size, mtime), so a changed source never hands out a stale
 * copy.  Copies are written by storage_copy_file (as .partial, then renamed),
 * so a reader only ever sees complete files.  Taking is a rename within the
 * storage file system.  pool_lock protects the directory listing against two
 * takers picking the same file and the wanted-sources list; the copies
 * themselves are made without it. */
#include "disk_pool.h"

#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "encoding.h"
#include "engine-internal.h"
#include "fsutil.h"
#include "log.h"

static char *pool_dir_for(struct engine *eng, const char *src)
{
    struct stat s;
    char key[600], hex[17];
    unsigned char md[32];
    unsigned int mdlen;
    char *p;

    if (stat(src, &s) < 0)
        return NULL;
    snprintf(key, sizeof(key), "%s:%lld:%lld.%09ld", src, (long long)s.st_size,
             (long long)s.st_mtim.tv_sec, s.st_mtim.tv_nsec);
    EVP_Digest(key, strlen(key), md, &mdlen, EVP_sha256(), NULL);
    hex_encode(md, 8, hex);
    if (asprintf(&p, "%s/pool/%s", eng->storage_dir, hex) < 0)
        return NULL;
    return p;
}

/* Name of one ready copy in dir (malloc'd), or NULL; *count gets how many. */
static char *pool_pick(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char *pick = NULL;

    *count = 0;
    if (!d)
        return NULL;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".img") != 0)
            continue;
        (*count)++;
        if (!pick)
            pick = path_join(dir, de->d_name);
    }
    closedir(d);
    return pick;
}

static void *refill_main(void *arg)
{
    struct engine *eng = arg;

    /* A refill is work for later creates; it must not slow down the create
     * running now, whose VMM competes for the same cores (copying a Debian
     * root is ~0.3 s of CPU).  The lowest nice value for this thread only
     * (Linux keeps nice per thread); not SCHED_IDLE, which a busy host could
     * starve until creates fall back to copying synchronously. */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) < 0)
        log_debug("disk pool: cannot lower the refill thread's priority: %s", strerror(errno));

    for (;;) {
        char *src = NULL, *dir = NULL, *dst = NULL;
        char id[17];
        int count = 0;
        struct nerr e = {0};

        pthread_mutex_lock(&eng->pool_lock);
        for (size_t i = 0; i < ARRAY_SIZE(eng->pool_wanted) && !src; i++) {
            char *pick;
            if (!eng->pool_wanted[i])
                continue;
            dir = pool_dir_for(eng, eng->pool_wanted[i]);
            pick = dir ? pool_pick(dir, &count) : NULL;
            free(pick);
            if (dir && count < DISK_POOL_TARGET)
                src = strdup(eng->pool_wanted[i]);
            else
                free(dir), dir = NULL;
        }
        if (!src || eng->pool_stopping) {
            eng->pool_refilling = false;
            pthread_cond_broadcast(&eng->pool_idle);
            pthread_mutex_unlock(&eng->pool_lock);
            free(src);
            free(dir);
            return NULL;
        }
        pthread_mutex_unlock(&eng->pool_lock);

        int r = mkdir_p(dir, 0700);
        if (r >= 0)
            r = random_hex_id(id, 8);
        if (r >= 0 && asprintf(&dst, "%s/%s.img", dir, id) < 0) {
            dst = NULL;
            r = -ENOMEM;
        }
        if (r < 0)
            nerr_set(&e, r, "%s", strerror(-r));
        if (r < 0 || storage_copy_file(eng->storage, src, dst, &e) < 0) {
            /* give up until the next take asks again: no busy retry */
            log_warn("disk pool: cannot prepare a copy of %s: %s", src, nerr_msg(&e));
            free(dst);
            free(src);
            free(dir);
            pthread_mutex_lock(&eng->pool_lock);
            eng->pool_refilling = false;
            pthread_cond_broadcast(&eng->pool_idle);
            pthread_mutex_unlock(&eng->pool_lock);
            return NULL;
        }
        free(dst);
        free(src);
        free(dir);
    }
}

static void refill_async(struct engine *eng, const char *src)
{
    pthread_attr_t attr;
    pthread_t th;
    bool start;
    size_t free_slot = SIZE_MAX;

    pthread_mutex_lock(&eng->pool_lock);
    bool known = false;
    for (size_t i = 0; i < ARRAY_SIZE(eng->pool_wanted); i++) {
        if (eng->pool_wanted[i] && strcmp(eng->pool_wanted[i], src) == 0)
            known = true;
        else if (!eng->pool_wanted[i] && free_slot == SIZE_MAX)
            free_slot = i;
    }
    if (!known) {
        size_t slot = free_slot != SIZE_MAX ? free_slot : 0;
        free(eng->pool_wanted[slot]);
        eng->pool_wanted[slot] = strdup(src);
    }
    start = !eng->pool_refilling && !eng->pool_stopping;
    if (start)
        eng->pool_refilling = true;
    pthread_mutex_unlock(&eng->pool_lock);
    if (!start)
        return;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &attr, refill_main, eng) != 0) {
        pthread_mutex_lock(&eng->pool_lock);
        eng->pool_refilling = false;
        pthread_mutex_unlock(&eng->pool_lock);
    }
    pthread_attr_destroy(&attr);
}

int disk_pool_take(struct engine *eng, const char *src, const char *dst, struct nerr *e)
{
    _cleanup_free_ char *dir = NULL, *pick = NULL;
    int count = 0, r;

    if (storage_is_btrfs(eng->storage) || eng->mode != ENGINE_SERVE)
        return storage_copy_file(eng->storage, src, dst, e);
    dir = pool_dir_for(eng, src);
    pthread_mutex_lock(&eng->pool_lock);
    pick = dir ? pool_pick(dir, &count) : NULL;
    r = pick ? rename(pick, dst) : -1;
    pthread_mutex_unlock(&eng->pool_lock);
    if (r < 0)
        r = storage_copy_file(eng->storage, src, dst, e);
    refill_async(eng, src);
    return r;
}

void disk_pool_clear(struct engine *eng)
{
    _cleanup_free_ char *dir = path_join(eng->storage_dir, "pool");

    pthread_mutex_lock(&eng->pool_lock);
    if (dir)
        rm_rf(dir);
    pthread_mutex_unlock(&eng->pool_lock);
}

void disk_pool_shutdown(struct engine *eng)
{
    pthread_mutex_lock(&eng->pool_lock);
    eng->pool_stopping = true;
    while (eng->pool_refilling)
        pthread_cond_wait(&eng->pool_idle, &eng->pool_lock);
    for (size_t i = 0; i < ARRAY_SIZE(eng->pool_wanted); i++) {
        free(eng->pool_wanted[i]);
        eng->pool_wanted[i] = NULL;
    }
    pthread_mutex_unlock(&eng->pool_lock);
}
