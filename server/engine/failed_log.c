/* failed_log.c — see failed_log.h. */
#include "failed_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"

/* The last FAILED_LOG_FILE_MAX bytes of from into to. */
static int copy_tail(const char *from, const char *to)
{
    _cleanup_close_ int in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    _cleanup_close_ int out = -1;
    struct stat st;
    off_t pos;

    if (in < 0)
        return errno == ENOENT ? 0 : -errno;
    if (fstat(in, &st) < 0)
        return -errno;
    out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0)
        return -errno;
    pos = st.st_size > FAILED_LOG_FILE_MAX ? st.st_size - FAILED_LOG_FILE_MAX : 0;
    return fd_copy_range(in, pos, out, 0, st.st_size - pos);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keep the newest FAILED_LOG_KEEP entries (names start with a UTC time, so
 * they sort by age). */
static void prune(const char *root)
{
    DIR *d = opendir(root);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0, cap = 0;

    if (!d)
        return;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **g = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*names));
            if (!g)
                break;
            names = g;
        }
        if (!(names[n] = strdup(de->d_name)))
            break;
        n++;
    }
    closedir(d);
    if (names)
        qsort(names, n, sizeof(*names), cmp_names);
    for (size_t i = 0; i < n; i++) {
        if (i + FAILED_LOG_KEEP < n) {
            _cleanup_free_ char *p = path_join(root, names[i]);
            if (p)
                rm_rf(p);
        }
        free(names[i]);
    }
    free(names);
}

char *failed_log_keep(struct engine *eng, const struct db_vm *vm, const char *dir, const char *what,
                      const char *reason)
{
    _cleanup_free_ char *root = path_join(eng->data_dir, "failed");
    char *kept = NULL;
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    int r;

    if (!root)
        return NULL;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%S", &tm);
    if (asprintf(&kept, "%s/%s.%03ldZ-%s-%s-%s", root, stamp, ts.tv_nsec / 1000000, vm->user_id,
                 vm->name, what) < 0)
        return NULL;
    r = mkdir_p(kept, 0700);
    const char *files[] = {VM_FILE_VMM_LOG, VM_FILE_SERIAL_LOG};
    for (size_t i = 0; i < ARRAY_SIZE(files) && r >= 0; i++) {
        _cleanup_free_ char *from = path_join(dir, files[i]);
        _cleanup_free_ char *to = path_join(kept, files[i]);
        r = from && to ? copy_tail(from, to) : -ENOMEM;
    }
    if (r >= 0) {
        _cleanup_free_ char *why = path_join(kept, "error.txt");
        _cleanup_free_ char *text = NULL;
        if (!why || asprintf(&text, "%s\n", reason) < 0)
            r = -ENOMEM;
        else
            r = write_file_atomic(why, text, strlen(text), 0600);
    }
    if (r < 0) {
        log_warn("cannot keep the logs of a failed start in %s: %s", kept, strerror(-r));
        rm_rf(kept);
        free(kept);
        return NULL;
    }
    prune(root);
    return kept;
}
