/* engine_ops.c — the engine binding of noidfs: every op is one or two
 * engine calls for the user its `user` argument names.
 *
 * JSON: a VM's is what GET /v1/vms/{name} returns and a checkpoint's what
 * GET /v1/vms/{name}/checkpoints lists (the same wire encoders), so a
 * file and the REST answer never differ.
 *
 * Exec: engine_exec_stream_* running `/bin/sh -c LINE` with stdin closed.
 * Its output arrives on the agent's reader thread and goes straight to the
 * front-end's sink.  The guest's agent sends a command's output before its
 * end, and the reader hands both over in that order, so on a normal end
 * every on_output call has returned before engine_exec_stream_wait sees the
 * exit.  The host's own deadline (the agent never reported the end) and a
 * lost agent are different: the stream ends while output of the command
 * may still come in.  A gate (noidfs_exec.lock, held across each forwarded
 * on_output) therefore closes when exec_wait reports the end or an error:
 * once it has, nothing more reaches the sink, as noidfs.h promises.
 *
 * Errors keep the engine's codes, except a broken agent connection
 * (-ECONNRESET, -EPROTO): to the front-end that would read as "the server
 * is unreachable" (ENOTCONN), while here it is this VM failing: -EIO.
 *
 * Guest files (fs_*): engine_file_* with the request as it is.  Their
 * errors are the guest's errno, passed on unchanged, or the engine's own,
 * which noidfs.h wants as -EIO: the VM does not run (-ESRCH), the agent
 * was lost or gave no answer (-ECONNRESET, -ETIMEDOUT, -EPROTO), it has
 * no file operations (-EPROTONOSUPPORT).  -ENOENT is both "no such VM" and
 * the guest's "no such file": it is the VM's only when the VM is gone. */
#include "engine_ops.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "macro.h"
#include "timeutil.h"
#include "wire.h"

/* exec_wait waits in slices of this: between them the stream checks that
 * the agent still answers (engine_exec_stream_wait pings only when called)
 * and credit the agent could not take earlier is offered again. */
#define ENGINE_OPS_WAIT_SLICE_MS 1000

struct noidfs_exec {
    struct engine_exec_stream *s;
    struct noidfs_exec_sink sink;
    char label[USER_NAME_MAX + VM_NAME_MAX + 2]; /* "user/vm", for the log */
    /* Held across each forwarded on_output (quick, never blocks) and
     * briefly by exec_wait.  Lock order: the agent connection's lock (the
     * reader holds it around on_output) -> lock -> whatever the front-end's
     * on_output takes; so the front-end must not call exec_wait holding a
     * lock its on_output takes. */
    pthread_mutex_t lock;
    bool gate_closed;  /* (lock) the end was reported: output is dropped */
    int end_r;         /* (lock) once gate_closed: 1, or the -errno ... */
    int end_status;    /* (lock) ... the exit status ... */
    struct nerr end_e; /* (lock) ... or the reason of the error */
};

struct noidfs_console {
    struct engine_console *c;
    char label[USER_NAME_MAX + VM_NAME_MAX + 2];
    atomic_bool end_logged; /* reads after the end log it once */
};

static int ops_code(int r)
{
    return r == -ECONNRESET || r == -EPROTO ? -EIO : r;
}

/* 0 and the user named name; -ENOENT (or -EINVAL for a bad name). */
static int user_get(struct engine *eng, const char *name, struct db_user *ret, struct nerr *e)
{
    if (!name)
        return nerr_set(e, -EINVAL, "the engine binding needs a user");
    return engine_user_find(eng, name, ret, e);
}

/* created_at as a time_t; 0 if unreadable. */
static time_t parse_rfc3339(const char *s)
{
    time_t t = 0;

    return time_parse_rfc3339(s, &t) == 0 ? t : 0;
}

static void vm_from_info(const struct wire_vm_info *in, struct noidfs_vm *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", in->name ? in->name : "");
    snprintf(out->state, sizeof(out->state), "%s", in->state ? in->state : "");
    out->created = parse_rfc3339(in->created_at);
}

/* json's compact text, malloc'd; consumes json. */
static char *json_take_string(json_object *json)
{
    char *s = NULL;

    if (json)
        s = strdup(wire_to_string(json, NULL));
    json_object_put(json);
    return s;
}

static int ops_list_users(void *b, char ***ret, size_t *ret_n, struct nerr *e)
{
    struct engine *eng = b;
    struct db_user *users = NULL;
    char **names = NULL;
    size_t n = 0;
    int r;

    r = engine_user_list(eng, &users, &n, e);
    if (r < 0)
        return r;
    names = calloc(MAX(n, 1), sizeof(*names));
    if (!names) {
        r = -ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        names[i] = strdup(users[i].name);
        if (!names[i]) {
            noidfs_strv_free(names, i);
            r = -ENOMEM;
            goto out;
        }
    }
    *ret = names;
    *ret_n = n;
out:
    free(users);
    return r;
}

static int ops_list_vms(void *b, const char *user, struct noidfs_vm **ret, size_t *ret_n,
                        struct nerr *e)
{
    struct engine *eng = b;
    struct wire_vm_info *list = NULL;
    struct noidfs_vm *vms = NULL;
    struct db_user u;
    size_t n = 0;
    int r;

    r = user_get(eng, user, &u, e);
    if (r < 0)
        return r;
    r = engine_vm_list(eng, &u, &list, &n, e);
    if (r < 0)
        return ops_code(r);
    if (n > 0) {
        vms = calloc(n, sizeof(*vms));
        if (!vms) {
            engine_vm_info_list_free(list, n);
            return -ENOMEM;
        }
    }
    for (size_t i = 0; i < n; i++)
        vm_from_info(&list[i], &vms[i]);
    engine_vm_info_list_free(list, n);
    *ret = vms;
    *ret_n = n;
    return 0;
}

static int ops_vm_info(void *b, const char *user, const char *vm, struct noidfs_vm *ret,
                       char **ret_json, struct nerr *e)
{
    struct engine *eng = b;
    struct wire_vm_info info = {0};
    struct db_user u;
    char *json = NULL;
    int r;

    r = user_get(eng, user, &u, e);
    if (r < 0)
        return r;
    r = engine_vm_info(eng, &u, vm, &info, e);
    if (r < 0)
        return ops_code(r);
    if (ret_json) {
        json = json_take_string(wire_vm_info_encode(&info));
        if (!json) {
            wire_vm_info_free(&info);
            return -ENOMEM;
        }
        *ret_json = json;
    }
    if (ret)
        vm_from_info(&info, ret);
    wire_vm_info_free(&info);
    return 0;
}

static int ops_vm_create(void *b, const char *user, const char *vm, struct nerr *e)
{
    struct engine *eng = b;
    struct wire_create_req req = {.name = (char *)vm};
    struct wire_vm_info info = {0};
    struct db_user u;
    int r;

    r = user_get(eng, user, &u, e);
    if (r < 0)
        return r;
    r = engine_vm_create(eng, &u, &req, &info, e);
    wire_vm_info_free(&info);
    return ops_code(r);
}

static int ops_vm_destroy(void *b, const char *user, const char *vm, struct nerr *e)
{
    struct engine *eng = b;
    struct db_user u;
    int r;

    r = user_get(eng, user, &u, e);
    if (r < 0)
        return r;
    return ops_code(engine_vm_destroy(eng, &u, vm, e));
}

static int ops_console_log(void *b, const char *user, const char *vm, char **ret, size_t *ret_len,
                           struct nerr *e)
{
    struct engine *eng = b;
    struct db_user u;
    int r;

    r = user_get(eng, user, &u, e);
    if (r < 0)
        return r;
    return ops_code(engine_vm_console_log(eng, &u, vm, ret, ret_len, e));
}

/* ---- exec ---- */

/* From the agent's reader thread (its connection lock held). */
static void exec_on_output(void *user, bool is_stderr, const uint8_t *data, size_t len)
{
    struct noidfs_exec *x = user;

    pthread_mutex_lock(&x->lock);
    if (!x->gate_closed)
        x->sink.on_output(x->sink.user, is_stderr, data, len);
    pthread_mutex_unlock(&x->lock);
}

static void exec_destroy(struct noidfs_exec *x)
{
    pthread_mutex_destroy(&x->lock);
    free(x);
}

static int ops_exec_start(void *b, const char *user, const char *vm, const char *command_line,
                          const struct noidfs_exec_sink *sink, struct noidfs_exec **ret,
                          struct nerr *e)
{
    struct engine *eng = b;
    char *argv[] = {"/bin/sh", "-c", (char *)command_line};
    struct wire_exec_req req = {
        .command = argv,
        .ncommand = ARRAY_SIZE(argv),
        .has_stdin_open = true,
        .stdin_open = false,
    };
    struct engine_exec_events ev;
    struct noidfs_exec *x;
    struct db_user u;
    int r;

    r = user_get(eng, user, &u, e);
    if (r < 0)
        return r;
    x = calloc(1, sizeof(*x));
    if (!x)
        return -ENOMEM;
    pthread_mutex_init(&x->lock, NULL);
    x->sink = *sink;
    snprintf(x->label, sizeof(x->label), "%s/%s", user, vm);
    ev.on_output = exec_on_output;
    ev.user = x;
    /* output may reach exec_on_output before this returns: x is ready */
    r = engine_exec_stream_start(eng, &u, vm, &req, &ev, &x->s, e);
    if (r < 0) {
        exec_destroy(x);
        return ops_code(r);
    }
    *ret = x;
    return 0;
}

static void ops_exec_output_done(struct noidfs_exec *x, size_t n)
{
    engine_exec_stream_output_done(x->s, n);
}

/* Record the end (r 1 with status, or the error) and close the gate; the
 * lock waits for an on_output in progress to return. */
static void exec_close_gate(struct noidfs_exec *x, int r, int status, const struct nerr *err)
{
    pthread_mutex_lock(&x->lock);
    x->gate_closed = true;
    x->end_r = r;
    x->end_status = status;
    if (err)
        x->end_e = *err;
    pthread_mutex_unlock(&x->lock);
}

static int ops_exec_wait(struct noidfs_exec *x, int timeout_ms, int *ret_status, struct nerr *e)
{
    int64_t until = timeout_ms < 0 ? INT64_MAX : time_mono_ms() + timeout_ms;
    struct wire_exec_result res = {0};
    struct nerr we = {0};
    int r;

    pthread_mutex_lock(&x->lock);
    if (x->gate_closed) {
        /* asked again after the end: the same answer */
        r = x->end_r;
        if (r > 0)
            *ret_status = x->end_status;
        else
            nerr_set(e, r, "%s", x->end_e.msg);
        pthread_mutex_unlock(&x->lock);
        return r;
    }
    pthread_mutex_unlock(&x->lock);

    for (;;) {
        int64_t left = until - time_mono_ms();
        int slice = (int)MAX(MIN(left, (int64_t)ENGINE_OPS_WAIT_SLICE_MS), (int64_t)0);

        r = engine_exec_stream_wait(x->s, slice, &res, &we);
        if (r != 0)
            break;
        if (time_mono_ms() >= until)
            return 0;
    }
    if (r > 0) {
        int status = (int)res.exit_code;
        if (res.timed_out)
            log_info("noidfs exec %s: timed out (status %d)", x->label, status);
        wire_exec_result_free(&res);
        exec_close_gate(x, 1, status, NULL);
        *ret_status = status;
        return 1;
    }
    r = ops_code(r);
    exec_close_gate(x, r, 0, &we);
    return nerr_set(e, r, "%s", nerr_msg(&we));
}

static void ops_exec_kill(struct noidfs_exec *x)
{
    engine_exec_stream_kill(x->s);
}

static void ops_exec_free(struct noidfs_exec *x)
{
    if (!x)
        return;
    /* unregisters the stream from the agent connection: no on_output
     * call is in progress or made once it returns */
    engine_exec_stream_free(x->s);
    exec_destroy(x);
}

/* ---- console ---- */

static int ops_console_attach(void *b, const char *user, const char *vm,
                              struct noidfs_console **ret, struct nerr *e)
{
    struct engine *eng = b;
    struct noidfs_console *c;
    struct db_user u;
    int r;

    r = user_get(eng, user, &u, e);
    if (r < 0)
        return r;
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    snprintf(c->label, sizeof(c->label), "%s/%s", user, vm);
    /* no replay: the file shows output from the moment it is opened */
    r = engine_console_attach(eng, &u, vm, 0, &c->c, e);
    if (r < 0) {
        free(c);
        return ops_code(r);
    }
    *ret = c;
    return 0;
}

static int ops_console_fd(struct noidfs_console *c)
{
    return engine_console_fd(c->c);
}

static ssize_t ops_console_read(struct noidfs_console *c, void *buf, size_t len)
{
    uint64_t skipped = 0;
    ssize_t n = engine_console_read(c->c, buf, len, &skipped);

    /* a file has no way to say it; the log does */
    if (skipped > 0)
        log_info("noidfs console %s: the reader fell behind; %llu bytes skipped", c->label,
                 (unsigned long long)skipped);
    if (n == -EPIPE && !atomic_exchange(&c->end_logged, true)) {
        bool vm_gone = false;
        const char *why = engine_console_end_reason(c->c, &vm_gone);
        if (!vm_gone)
            log_info("noidfs console %s: ended: %s", c->label, why ? why : "unknown reason");
    }
    return n;
}

static int ops_console_write(struct noidfs_console *c, const void *data, size_t len, int timeout_ms)
{
    return engine_console_write(c->c, data, len, timeout_ms);
}

static void ops_console_detach(struct noidfs_console *c)
{
    if (!c)
        return;
    engine_console_detach(c->c);
    free(c);
}

/* ---- checkpoints ---- */

static int checkpoint_from_wire(const struct wire_checkpoint *in, struct noidfs_checkpoint *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "%s", in->id ? in->id : "");
    snprintf(out->label, sizeof(out->label), "%s", in->label ? in->label : "");
    out->created = parse_rfc3339(in->created_at);
    out->json = json_take_string(wire_checkpoint_encode(in));
    return out->json ? 0 : -ENOMEM;
}

static int ops_checkpoint_list(void *b, const char *user, const char *vm,
                               struct noidfs_checkpoint **ret, size_t *ret_n, struct nerr *e)
{
    struct engine *eng = b;
    struct wire_checkpoint *list = NULL;
    struct noidfs_checkpoint *cps = NULL;
    struct db_user u;
    size_t n = 0;
    int r;

    r = user_get(eng, user, &u, e);
    if (r < 0)
        return r;
    r = engine_checkpoint_list(eng, &u, vm, &list, &n, e);
    if (r < 0)
        return ops_code(r);
    if (n > 0) {
        cps = calloc(n, sizeof(*cps));
        if (!cps) {
            r = -ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        r = checkpoint_from_wire(&list[i], &cps[i]);
        if (r < 0) {
            noidfs_checkpoints_free(cps, i + 1);
            goto out;
        }
    }
    *ret = cps;
    *ret_n = n;
out:
    engine_checkpoint_list_free(list, n);
    return r;
}

static int ops_checkpoint_create(void *b, const char *user, const char *vm, const char *label,
                                 struct nerr *e)
{
    struct engine *eng = b;
    struct wire_checkpoint cp = {0};
    struct db_user u;
    int r;

    r = user_get(eng, user, &u, e);
    if (r < 0)
        return r;
    r = engine_checkpoint_create(eng, &u, vm, label, &cp, e);
    wire_checkpoint_free(&cp);
    return ops_code(r);
}

static int ops_checkpoint_delete(void *b, const char *user, const char *vm, const char *id,
                                 struct nerr *e)
{
    struct engine *eng = b;
    struct db_user u;
    int r;

    r = user_get(eng, user, &u, e);
    if (r < 0)
        return r;
    return ops_code(engine_checkpoint_delete(eng, &u, vm, id, e));
}

static int ops_restore(void *b, const char *user, const char *vm, const char *checkpoint_id,
                       const char *new_name, struct nerr *e)
{
    struct engine *eng = b;
    struct wire_vm_info info = {0};
    struct db_user u;
    bool created = false;
    int r;

    r = user_get(eng, user, &u, e);
    if (r < 0)
        return r;
    r = engine_vm_restore(eng, &u, vm, checkpoint_id, new_name, &info, &created, e);
    wire_vm_info_free(&info);
    return ops_code(r);
}

/* ---- guest files ---- */

struct noidfs_fs_dir {
    struct engine *eng;
    struct db_user u;
    char vm[VM_NAME_MAX + 1];
    struct engine_file_stream *s;
};

/* The binding's code for an engine_file_* error (see the top). */
static int fs_code(struct engine *eng, const struct db_user *u, const char *vm, int r,
                   struct nerr *e)
{
    struct wire_vm_info info = {0};

    switch (-r) {
    case ESRCH:
    case ECONNRESET:
    case ECONNREFUSED:
    case ETIMEDOUT:
    case EPROTO:
    case EPROTONOSUPPORT:
    case EPIPE:
        if (e)
            e->code = -EIO;
        return -EIO;
    case ENOENT:
        if (engine_vm_info(eng, u, vm, &info, NULL) == -ENOENT) {
            nerr_reset(e, -EIO, "VM '%s' no longer exists", vm);
            return -EIO;
        }
        wire_vm_info_free(&info);
        return r;
    default:
        return r;
    }
}

static int ops_fs_call(void *b, const char *user, const char *vm, const struct ap_fs_req *req,
                       struct noidfs_fs_reply *ret, struct nerr *e)
{
    struct engine *eng = b;
    struct agent_fs_reply *rep;
    struct db_user u;
    int r;

    r = user_get(eng, user, &u, e);
    if (r < 0)
        return r == -ENOENT ? nerr_reset(e, -EIO, "no user '%s' any more", user) : r;
    /* a reply holds a whole path: not on the worker's stack twice */
    rep = calloc(1, sizeof(*rep));
    if (!rep)
        return -ENOMEM;
    rep->read_buf = ret->read_buf;
    r = engine_file_call(eng, &u, vm, req, rep, e);
    if (r < 0) {
        r = fs_code(eng, &u, vm, r, e);
        goto out;
    }
    ret->has_attr = rep->has_attr;
    ret->attr = rep->attr;
    ret->handle = rep->handle;
    ret->count = rep->count;
    ret->statfs = rep->statfs;
    memcpy(ret->link, rep->link, sizeof(ret->link));
out:
    free(rep);
    return r;
}

static int ops_fs_dir_open(void *b, const char *user, const char *vm, const char *path,
                           struct noidfs_fs_dir **ret, struct nerr *e)
{
    struct engine *eng = b;
    struct noidfs_fs_dir *d;
    struct ap_fs_req *req;
    int r;

    d = calloc(1, sizeof(*d));
    req = calloc(1, sizeof(*req));
    if (!d || !req) {
        r = -ENOMEM;
        goto fail;
    }
    d->eng = eng;
    snprintf(d->vm, sizeof(d->vm), "%s", vm);
    r = user_get(eng, user, &d->u, e);
    if (r < 0) {
        if (r == -ENOENT)
            r = nerr_reset(e, -EIO, "no user '%s' any more", user);
        goto fail;
    }
    if (strlen(path) > AP_FS_PATH_MAX) {
        r = nerr_set(e, -ENAMETOOLONG, "path too long");
        goto fail;
    }
    req->op = APO_READDIR;
    req->present = 1u << APF_PATH;
    strcpy(req->path, path);
    r = engine_file_stream_open(eng, &d->u, vm, req, &d->s, e);
    if (r < 0) {
        r = fs_code(eng, &d->u, vm, r, e);
        goto fail;
    }
    free(req);
    *ret = d;
    return 0;
fail:
    free(req);
    free(d);
    return r;
}

static int ops_fs_dir_next(struct noidfs_fs_dir *d, char name[AP_FS_NAME_MAX + 1],
                           struct ap_fs_attr *attr, struct nerr *e)
{
    int r = engine_file_stream_next_dirent(d->s, name, attr, -1, e);

    return r < 0 ? fs_code(d->eng, &d->u, d->vm, r, e) : r;
}

static void ops_fs_dir_close(struct noidfs_fs_dir *d)
{
    if (!d)
        return;
    engine_file_stream_free(d->s); /* cancels a listing not read to its end */
    free(d);
}

const struct noidfs_ops noidfs_engine_ops = {
    .list_users = ops_list_users,
    .list_vms = ops_list_vms,
    .vm_info = ops_vm_info,
    .vm_create = ops_vm_create,
    .vm_destroy = ops_vm_destroy,
    .console_log = ops_console_log,
    .exec_start = ops_exec_start,
    .exec_output_done = ops_exec_output_done,
    .exec_wait = ops_exec_wait,
    .exec_kill = ops_exec_kill,
    .exec_free = ops_exec_free,
    .console_attach = ops_console_attach,
    .console_fd = ops_console_fd,
    .console_read = ops_console_read,
    .console_write = ops_console_write,
    .console_detach = ops_console_detach,
    .checkpoint_list = ops_checkpoint_list,
    .checkpoint_create = ops_checkpoint_create,
    .checkpoint_delete = ops_checkpoint_delete,
    .restore = ops_restore,
    .fs_call = ops_fs_call,
    .fs_dir_open = ops_fs_dir_open,
    .fs_dir_next = ops_fs_dir_next,
    .fs_dir_close = ops_fs_dir_close,
};
