/* files.c — guest file access for front-ends (engine.h, "guest files").
 *
 * Everything goes through the VM's agent (agent_files.c): a running guest
 * owns its filesystem, so the host never opens the guest's disk.  Each call
 * finds the VM as exec does (ready, running, its agent connected) and holds
 * its runtime and connection only while it runs; a stream holds them until
 * it is freed, so a destroy or restore in place breaks the channel under it
 * and the stream ends with -ECONNRESET instead of hanging.
 *
 * Deadlines: every answer, and every step of a stream (the next bytes, room
 * for the next upload chunk), must come within ENGINE_FILE_TIMEOUT_MS. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine-internal.h"
#include "log.h"
#include "timeutil.h"
#include "vm-internal.h"

struct engine_file_stream {
    struct engine *eng;
    struct vm_rt *rt;
    struct agent_conn *conn;
    struct agent_fs_stream *s;
};

static int64_t file_deadline(int timeout_ms)
{
    return time_mono_ms() + (timeout_ms < 0 ? ENGINE_FILE_TIMEOUT_MS : timeout_ms);
}

int engine_file_call(struct engine *eng, const struct db_user *u, const char *name,
                     const struct ap_fs_req *req, struct agent_fs_reply *ret, struct nerr *e)
{
    struct vm_rt *rt = NULL;
    struct agent_conn *conn = NULL;
    int r;

    r = exec_vm_agent(eng, u, name, &rt, &conn, e);
    if (r < 0)
        return r;
    r = agent_fs_call(conn, req, file_deadline(-1), ret, e);
    agent_conn_unref(conn);
    engine_rt_put(eng, rt);
    return r;
}

int engine_file_stream_open(struct engine *eng, const struct db_user *u, const char *name,
                            const struct ap_fs_req *req, struct engine_file_stream **ret,
                            struct nerr *e)
{
    struct engine_file_stream *s = calloc(1, sizeof(*s));
    int r;

    if (!s)
        return -ENOMEM;
    s->eng = eng;
    r = exec_vm_agent(eng, u, name, &s->rt, &s->conn, e);
    if (r < 0)
        goto fail;
    r = agent_fs_stream_open(s->conn, req, file_deadline(-1), &s->s, e);
    if (r < 0)
        goto fail;
    *ret = s;
    return 0;
fail:
    engine_file_stream_free(s);
    return r;
}

void engine_file_stream_set_notify(struct engine_file_stream *s, void (*fn)(void *user), void *user)
{
    agent_fs_stream_set_notify(s->s, fn, user);
}

/* -EAGAIN from a wait that had time is a guest that stopped answering */
static int stream_stalled(int r, int timeout_ms, struct nerr *e)
{
    if (r == -EAGAIN && timeout_ms != 0)
        return nerr_set(e, -ETIMEDOUT, "the guest agent sent nothing for %d ms",
                        timeout_ms < 0 ? ENGINE_FILE_TIMEOUT_MS : timeout_ms);
    return r;
}

ssize_t engine_file_stream_read(struct engine_file_stream *s, void *buf, size_t len, int timeout_ms,
                                struct nerr *e)
{
    ssize_t n = agent_fs_stream_read(s->s, buf, len, file_deadline(timeout_ms), e);

    return n == -EAGAIN ? stream_stalled(-EAGAIN, timeout_ms, e) : n;
}

void engine_file_stream_poke(struct engine_file_stream *s)
{
    agent_fs_stream_poke(s->s);
}

int engine_file_stream_next_dirent(struct engine_file_stream *s, char name[AP_FS_NAME_MAX + 1],
                                   struct ap_fs_attr *attr, int timeout_ms, struct nerr *e)
{
    int r = agent_fs_stream_next_dirent(s->s, name, attr, file_deadline(timeout_ms), e);

    return stream_stalled(r, timeout_ms, e);
}

int engine_file_stream_write(struct engine_file_stream *s, const void *data, size_t len,
                             struct nerr *e)
{
    return agent_fs_stream_write(s->s, data, len, file_deadline(-1), e);
}

int engine_file_stream_finish(struct engine_file_stream *s, uint64_t *ret_count, struct nerr *e)
{
    return agent_fs_stream_finish(s->s, file_deadline(-1), ret_count, e);
}

void engine_file_stream_free(struct engine_file_stream *s)
{
    if (!s)
        return;
    agent_fs_stream_free(s->s);
    if (s->conn)
        agent_conn_unref(s->conn);
    if (s->rt)
        engine_rt_put(s->eng, s->rt);
    free(s);
}

/* ---- rm -rf ---- */

/* Names taken from one READDIR before they are removed: a directory with
 * more is listed again until it is empty, so memory stays bounded. */
#define REMOVE_BATCH 4096

struct remove_ctx {
    struct engine *eng;
    const struct db_user *u;
    const char *vm;
};

/* The requests live on the heap: remove_at() recurses once per level of
 * the tree (up to AP_FS_PATH_MAX / 2 levels), so its frames stay small. */
static int path_op(struct remove_ctx *x, uint8_t op, const char *path, struct agent_fs_reply *rep,
                   struct nerr *e)
{
    struct ap_fs_req *req;
    int r;

    if (strlen(path) > AP_FS_PATH_MAX)
        return nerr_set(e, -ENAMETOOLONG, "%.64s...: path too long", path);
    req = calloc(1, sizeof(*req));
    if (!req)
        return -ENOMEM;
    req->op = op;
    req->present = 1u << APF_PATH;
    strcpy(req->path, path);
    r = engine_file_call(x->eng, x->u, x->vm, req, rep, e);
    free(req);
    return r;
}

static char *child_path(const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    char *p = malloc(dl + strlen(name) + 2);

    if (p)
        sprintf(p, "%s%s%s", dir, dl > 0 && dir[dl - 1] == '/' ? "" : "/", name);
    return p;
}

/* Up to REMOVE_BATCH names of dir's entries into *ret (malloc'd). */
static int list_batch(struct remove_ctx *x, const char *dir, char ***ret, size_t *ret_n,
                      struct nerr *e)
{
    struct ap_fs_req *req = calloc(1, sizeof(*req));
    struct engine_file_stream *s = NULL;
    char name[AP_FS_NAME_MAX + 1];
    struct ap_fs_attr a;
    char **names = NULL;
    size_t n = 0;
    int r;

    names = calloc(REMOVE_BATCH, sizeof(*names));
    if (!names || !req) {
        free(names);
        free(req);
        return -ENOMEM;
    }
    req->op = APO_READDIR;
    req->present = 1u << APF_PATH;
    strcpy(req->path, dir); /* checked by the caller's LSTAT */
    r = engine_file_stream_open(x->eng, x->u, x->vm, req, &s, e);
    free(req);
    while (r >= 0 && n < REMOVE_BATCH) {
        r = engine_file_stream_next_dirent(s, name, &a, -1, e);
        if (r <= 0)
            break;
        names[n] = strdup(name);
        if (!names[n]) {
            r = -ENOMEM;
            break;
        }
        n++;
    }
    engine_file_stream_free(s); /* cancels the rest of a long listing */
    if (r < 0) {
        for (size_t i = 0; i < n; i++)
            free(names[i]);
        free(names);
        return r;
    }
    *ret = names;
    *ret_n = n;
    return 0;
}

static int remove_at(struct remove_ctx *x, const char *path, struct nerr *e);

/* path is a directory: everything in it, then itself. */
static int remove_dir(struct remove_ctx *x, const char *path, struct agent_fs_reply *rep,
                      struct nerr *e)
{
    int r;

    for (;;) {
        char **names = NULL;
        size_t n = 0;

        r = list_batch(x, path, &names, &n, e);
        if (r < 0)
            return r;
        for (size_t i = 0; i < n; i++) {
            char *child = r < 0 ? NULL : child_path(path, names[i]);
            if (r >= 0 && !child)
                r = -ENOMEM;
            if (r >= 0) {
                r = remove_at(x, child, e);
                if (r == -ENOENT)
                    r = 0; /* removed under us: that is the goal */
            }
            free(child);
            free(names[i]);
        }
        free(names);
        if (r < 0)
            return r;
        if (n < REMOVE_BATCH)
            break;
    }
    return path_op(x, APO_RMDIR, path, rep, e);
}

static int remove_at(struct remove_ctx *x, const char *path, struct nerr *e)
{
    struct agent_fs_reply *rep = calloc(1, sizeof(*rep)); /* 4 KiB: not per frame */
    int r;

    if (!rep)
        return -ENOMEM;
    r = path_op(x, APO_LSTAT, path, rep, e);
    if (r >= 0 && !S_ISDIR(rep->attr.mode))
        r = path_op(x, APO_UNLINK, path, rep, e);
    else if (r >= 0)
        r = remove_dir(x, path, rep, e);
    free(rep);
    return r;
}

int engine_file_remove_tree(struct engine *eng, const struct db_user *u, const char *name,
                            const char *path, struct nerr *e)
{
    struct remove_ctx x = {eng, u, name};

    return remove_at(&x, path, e);
}
