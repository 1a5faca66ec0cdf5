/* exec_file.c — the exec files: `echo CMD > vm/exec` (and runs/N/exec)
 * runs CMD with /bin/sh -c when the file is closed and returns when it
 * ended; a read-write handle is one session whose reads stream the output.
 *
 * Output is pushed by the binding (noidfs_exec_sink) from its thread and
 * stored in the run (stdout/stderr read back later, bounded by
 * RUN_OUTPUT_MAX).  The binding holds output back until we acknowledge it
 * (exec_output_done), which must come from another thread than the one
 * delivering it:
 *   - a close waits in slices of EXEC_WAIT_SLICE_MS and acknowledges what
 *     was stored in between (exec_wait returns at once when the command
 *     ends, so the slices cost no latency);
 *   - a streaming read acknowledges what it handed to the reader; a waiter
 *     thread of the session notices the end.
 * Ctrl-C on the waiting process: the kernel sends an interrupt, the
 * command is killed and the call fails with EINTR. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "fs-internal.h"
#include "log.h"
#include "macro.h"

/* Output of a streaming session not yet read (the binding's window keeps
 * it near 1 MiB; an agent without one could send more). */
#define EXEC_STREAM_MAX (64u * 1024 * 1024)

struct exec_session {
    struct noidfs *fs;
    const struct node *node;
    struct run *run;
    struct noidfs_exec *x;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool streaming;
    size_t unacked;    /* (lock) stored but not yet acknowledged */
    struct buf stream; /* (lock) streaming: output not yet read */
    bool overflow;     /* (lock) output beyond a bound: the command is stopped */
    bool record_cut;   /* (lock) streaming: the run's record reached its bound */
    bool interrupted;  /* (lock) a close's wait was interrupted */
    bool killed;       /* (lock) */
    bool ended;        /* (lock) */
    int end_r;         /* (lock) 1 ended with a status, < 0 failed */
    struct nerr err;   /* (lock) why it failed */
    pthread_t waiter;
    bool waiter_started;
};

static void on_output(void *user, bool is_stderr, const uint8_t *data, size_t len)
{
    struct exec_session *s = user;
    struct run *r = s->run;
    bool over = false;

    pthread_mutex_lock(&r->lock);
    struct buf *b = is_stderr ? &r->err : &r->out;
    bool recorded = buf_append_capped(b, data, len) == len;
    pthread_mutex_unlock(&r->lock);

    pthread_mutex_lock(&s->lock);
    if (s->streaming) {
        /* the reader gets every byte; only the run's record is bounded */
        if (!recorded && !s->record_cut) {
            s->record_cut = true;
            log_warn("noidfs: exec in %s: run %u keeps the first 16 MiB of its output; the "
                     "stream goes on",
                     s->node->vm, r->id);
        }
        if (buf_append_capped(&s->stream, data, len) < len)
            over = true;
    } else {
        over = !recorded;
        s->unacked += len;
    }
    if (over)
        s->overflow = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

/* Signals that interrupt a waiting process without asking it to stop: job
 * control and notifications a shell handles itself.  A script waiting in
 * `echo cmd > exec` gets SIGCHLD when a background job of its ends; that
 * must not kill the command it waits for. */
#define SIGBIT(n) (1ull << ((n)-1))
#define SIGNALS_NOT_STOP                                                                           \
    (SIGBIT(SIGCHLD) | SIGBIT(SIGWINCH) | SIGBIT(SIGCONT) | SIGBIT(SIGTSTP) | SIGBIT(SIGTTIN) |    \
     SIGBIT(SIGTTOU) | SIGBIT(SIGURG) | SIGBIT(SIGSTOP))

/* Whether the interrupt of req means "stop": the signals pending on the
 * caller (from /proc, while it waits in the kernel) include one that is
 * not in SIGNALS_NOT_STOP.  When that cannot be told, it does. */
static bool interrupt_means_stop(fuse_req_t req)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    unsigned long long pending = 0, m;
    char path[64], line[256];
    _cleanup_fclose_ FILE *f = NULL;

    if (!ctx || ctx->pid <= 0)
        return true;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)ctx->pid);
    f = fopen(path, "re");
    if (!f)
        return true;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "SigPnd: %llx", &m) == 1 || sscanf(line, "ShdPnd: %llx", &m) == 1)
            pending |= m;
    return pending == 0 || (pending & ~SIGNALS_NOT_STOP) != 0;
}

/* The interrupt of a close waiting for its command: kill it. */
static void on_interrupt(fuse_req_t req, void *data)
{
    struct exec_session *s = data;

    if (!interrupt_means_stop(req)) {
        /* keep waiting: the kernel still waits for our answer */
        log_info("noidfs: exec in %s: the waiting process got a signal that does not mean "
                 "stop (SIGCHLD, SIGWINCH, ...); the command goes on",
                 s->node->vm);
        return;
    }
    pthread_mutex_lock(&s->lock);
    s->interrupted = true;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    if (s->x)
        s->fs->ops->exec_kill(s->x);
}

static void session_free(struct exec_session *s)
{
    if (!s)
        return;
    if (s->x)
        s->fs->ops->exec_free(s->x);
    run_unref(s->run);
    buf_free(&s->stream);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static struct exec_session *session_new(struct handle *h, struct run *run, bool streaming)
{
    struct exec_session *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->fs = h->fs;
    s->node = h->node;
    s->run = run;
    s->streaming = streaming;
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->cond, NULL);
    buf_init(&s->stream, EXEC_STREAM_MAX);
    return s;
}

/* Record the end in the run and tell the kernel the files showing it changed. */
static void run_finish(struct exec_session *s, int end_r, int status)
{
    struct run *r = s->run;

    pthread_mutex_lock(&r->lock);
    r->ended = true;
    r->failed = end_r != 1;
    r->status = status;
    r->when = time(NULL);
    pthread_mutex_unlock(&r->lock);
    fs_run_changed(s->fs, s->node->user, s->node->vm, r->id, s->node->kind == NK_VM_EXEC);
}

/* The run the command goes into: a new one for vm/exec, runs/N's own
 * (once) for runs/N/exec.  Takes the command line. */
static int run_claim(struct handle *h, struct run **ret)
{
    const struct node *n = h->node;
    struct run *r;

    if (n->kind == NK_RUN_EXEC) {
        r = vmstate_run_get(h->fs, n->user, n->vm, n->run);
        if (!r)
            return -ENOENT;
        pthread_mutex_lock(&r->lock);
        if (r->started) {
            pthread_mutex_unlock(&r->lock);
            run_unref(r);
            return -EBUSY;
        }
        r->started = true;
        pthread_mutex_unlock(&r->lock);
    } else {
        r = vmstate_run_new(h->fs, n->user, n->vm, true);
        if (!r)
            return -ENOMEM;
        pthread_mutex_lock(&r->lock);
        r->started = true;
        pthread_mutex_unlock(&r->lock);
    }
    pthread_mutex_lock(&r->lock);
    buf_reset(&r->command);
    buf_append(&r->command, h->data.data, h->data.len);
    r->when = time(NULL);
    pthread_mutex_unlock(&r->lock);
    buf_reset(&h->data);
    fs_run_changed(h->fs, n->user, n->vm, r->id, n->kind == NK_VM_EXEC);
    *ret = r;
    return 0;
}

static int session_start(struct exec_session *s, struct nerr *e)
{
    struct noidfs_exec_sink sink = {.on_output = on_output, .user = s};
    _cleanup_free_ char *line = NULL;

    pthread_mutex_lock(&s->run->lock);
    line = strndup((const char *)s->run->command.data, s->run->command.len);
    pthread_mutex_unlock(&s->run->lock);
    if (!line)
        return -ENOMEM;
    return s->fs->ops->exec_start(s->fs->b, s->node->user, s->node->vm, line, &sink, &s->x, e);
}

static bool command_is_text(const struct buf *b)
{
    return memchr(b->data, '\0', b->len) == NULL;
}

int exec_file_run(struct handle *h, fuse_req_t req)
{
    struct exec_session *s = NULL;
    struct run *run = NULL;
    struct nerr e = {0};
    int r, status = 0;

    if (!command_is_text(&h->data))
        return errmap_log("exec", h->node->vm, -EINVAL,
                          &(struct nerr){-EINVAL, "the command line holds a NUL byte"});
    r = run_claim(h, &run);
    if (r < 0)
        return errmap_log("exec", h->node->vm, r,
                          &(struct nerr){r, "this run's command was already written"});
    s = session_new(h, run, false);
    if (!s) {
        run_unref(run);
        return ENOMEM;
    }
    r = session_start(s, &e);
    if (r < 0) {
        run_finish(s, r, 0);
        r = errmap_log("exec in", h->node->vm, r, &e);
        goto out;
    }
    fuse_req_interrupt_func(req, on_interrupt, s);
    for (;;) {
        r = s->fs->ops->exec_wait(s->x, EXEC_WAIT_SLICE_MS, &status, &e);
        pthread_mutex_lock(&s->lock);
        size_t n = s->unacked;
        s->unacked = 0;
        bool kill = (s->overflow || s->interrupted || s->fs->exiting) && !s->killed;
        if (kill)
            s->killed = true;
        pthread_mutex_unlock(&s->lock);
        if (n)
            s->fs->ops->exec_output_done(s->x, n);
        if (kill)
            s->fs->ops->exec_kill(s->x);
        if (r != 0)
            break;
    }
    fuse_req_interrupt_func(req, NULL, NULL);
    run_finish(s, r, status);
    if (s->interrupted)
        r = errmap_log("exec in", h->node->vm, -EINTR,
                       &(struct nerr){-EINTR, "interrupted: the command was killed"});
    else if (s->overflow)
        r = errmap_log("exec in", h->node->vm, -EFBIG,
                       &(struct nerr){-EFBIG, "output beyond 16 MiB: the command was stopped"});
    else if (s->killed) /* neither of the above: the mount is going away */
        r = errmap_log("exec in", h->node->vm, -EIO,
                       &(struct nerr){-EIO, "the mount is going away (unmount or server "
                                            "shutdown): the command was killed"});
    else if (r < 0)
        r = errmap_log("exec in", h->node->vm, r, &e);
    else
        r = 0;
out:
    session_free(s);
    return r;
}

/* A streaming session's waiter: notices the end (the reader only waits for
 * output) and stops a command whose output went beyond the bound. */
static void *waiter_main(void *arg)
{
    struct exec_session *s = arg;
    struct nerr e = {0};
    int r, status = 0;

    for (;;) {
        r = s->fs->ops->exec_wait(s->x, 1000, &status, &e);
        pthread_mutex_lock(&s->lock);
        bool kill = (s->overflow || s->fs->exiting) && !s->killed;
        if (kill)
            s->killed = true;
        pthread_mutex_unlock(&s->lock);
        if (kill)
            s->fs->ops->exec_kill(s->x);
        if (r != 0)
            break;
    }
    run_finish(s, r, status);
    pthread_mutex_lock(&s->lock);
    s->ended = true;
    s->end_r = r;
    s->err = e;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static int stream_start(struct handle *h)
{
    struct exec_session *s;
    struct run *run = NULL;
    struct nerr e = {0};
    int r;

    if (!command_is_text(&h->data))
        return -errmap_log("exec", h->node->vm, -EINVAL,
                           &(struct nerr){-EINVAL, "the command line holds a NUL byte"});
    r = run_claim(h, &run);
    if (r < 0)
        return -errmap_log("exec", h->node->vm, r, NULL);
    s = session_new(h, run, true);
    if (!s) {
        run_unref(run);
        return -ENOMEM;
    }
    r = session_start(s, &e);
    if (r < 0) {
        run_finish(s, r, 0);
        session_free(s);
        return -errmap_log("exec in", h->node->vm, r, &e);
    }
    r = pthread_create(&s->waiter, NULL, waiter_main, s);
    if (r != 0) {
        session_free(s);
        return -r;
    }
    s->waiter_started = true;
    h->exec = s;
    return 0;
}

/* One streaming read's interrupt: it ends that read (and the command);
 * the next read of the session is not affected. */
struct read_interrupt {
    struct exec_session *s;
    bool hit; /* (s->lock) */
};

static void on_read_interrupt(fuse_req_t req, void *data)
{
    struct read_interrupt *ri = data;

    if (!interrupt_means_stop(req)) {
        log_info("noidfs: exec in %s: the reading process got a signal that does not mean "
                 "stop (SIGCHLD, SIGWINCH, ...); the command goes on",
                 ri->s->node->vm);
        return;
    }
    pthread_mutex_lock(&ri->s->lock);
    ri->hit = true;
    pthread_cond_broadcast(&ri->s->cond);
    pthread_mutex_unlock(&ri->s->lock);
}

ssize_t exec_file_read(struct handle *h, fuse_req_t req, char *buf, size_t size)
{
    struct read_interrupt ri = {0};
    struct exec_session *s;
    size_t n = 0;
    ssize_t r = 0;

    /* starting is serialised with writes; the wait below holds no handle
     * lock, so a close or write of the same handle never waits for it */
    pthread_mutex_lock(&h->lock);
    if (!h->exec) {
        if (h->data.len > 0)
            r = stream_start(h);
        else
            r = 1; /* nothing written: nothing to run, nothing to read */
    }
    s = h->exec;
    pthread_mutex_unlock(&h->lock);
    if (r != 0)
        return r < 0 ? r : 0;
    ri.s = s;
    fuse_req_interrupt_func(req, on_read_interrupt, &ri);
    pthread_mutex_lock(&s->lock);
    while (s->stream.len == 0 && !s->ended && !ri.hit && !h->fs->exiting)
        pthread_cond_wait(&s->cond, &s->lock);
    if (s->stream.len > 0) {
        n = s->stream.len < size ? s->stream.len : size;
        memcpy(buf, s->stream.data, n);
        buf_consume(&s->stream, n);
        r = (ssize_t)n;
    } else if (ri.hit) {
        r = -EINTR;
    } else if (s->overflow) {
        r = -errmap_log("exec in", h->node->vm, -EFBIG,
                        &(struct nerr){-EFBIG, "64 MiB of output waited unread (an agent "
                                               "without flow control): the command was stopped"});
    } else if (s->killed && s->fs->exiting) {
        r = -errmap_log("exec in", h->node->vm, -EIO,
                        &(struct nerr){-EIO, "the mount is going away (unmount or server "
                                             "shutdown): the command was killed"});
    } else if (s->ended && s->end_r < 0) {
        r = -errmap_log("exec in", h->node->vm, s->end_r, &s->err);
    } else if (s->fs->exiting) {
        r = -EIO;
    }
    pthread_mutex_unlock(&s->lock);
    fuse_req_interrupt_func(req, NULL, NULL);
    if (n)
        s->fs->ops->exec_output_done(s->x, n);
    if (r == -EINTR)
        s->fs->ops->exec_kill(s->x);
    return r;
}

void exec_file_wake(struct handle *h)
{
    struct exec_session *s = h->exec;

    if (!s)
        return;
    s->fs->ops->exec_kill(s->x);
    pthread_mutex_lock(&s->lock);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void exec_file_release(struct handle *h)
{
    struct exec_session *s = h->exec;

    if (!s) {
        if (h->writable && h->readable && h->data.len > 0)
            log_warn("noidfs: exec in %s: closed before reading; the command was not run",
                     h->node->vm);
        return;
    }
    pthread_mutex_lock(&s->lock);
    bool running = !s->ended;
    pthread_mutex_unlock(&s->lock);
    if (running)
        s->fs->ops->exec_kill(s->x);
    if (s->waiter_started)
        pthread_join(s->waiter, NULL);
    h->exec = NULL;
    session_free(s);
}
