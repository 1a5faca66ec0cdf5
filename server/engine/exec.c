/* exec.c — run one command in a VM and collect its result (HTTP exec).
 *
 * The agent enforces the timeout inside the guest (it kills the process
 * group and reports timed_out); the host waits a grace period longer and, if
 * the agent stays silent, kills the command itself and reports a timeout.
 * Output is kept per stream up to max_exec_output_bytes; what is beyond is
 * counted as truncation and dropped while the command keeps running, so a
 * chatty command never blocks on a full pipe.
 *
 * The guest is untrusted: once connected, everything (sending the command
 * and its stdin, waiting for the end) shares one deadline, timeout_secs +
 * EXEC_GRACE_MS; past it only a KILL goes out, itself bounded
 * (agent_exec_kill), and the caller gets a timeout (124) with the output
 * captured so far. */
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "buf.h"
#include "encoding.h"
#include "engine-internal.h"
#include "log.h"
#include "metrics.h"
#include "timeutil.h"
#include "vm-internal.h"

#define AGENT_CONNECT_TIMEOUT_MS 10000

struct capture {
    struct buf out, err;
    bool truncated;
};

static void capture_output(void *user, bool is_stderr, const uint8_t *data, size_t len)
{
    struct capture *c = user;
    struct buf *b = is_stderr ? &c->err : &c->out;

    if (buf_append_capped(b, data, len) < len)
        c->truncated = true;
}

int exec_request_check(const struct server_config *cfg, const struct wire_exec_req *req,
                       long long *timeout_secs, struct nerr *e)
{
    int r;

    for (size_t i = 0; i < req->nenv; i++) {
        r = name_env_entry_check(req->env[i], strlen(req->env[i]), e);
        if (r < 0)
            return r;
    }
    if (req->cwd && req->cwd[0] != '/')
        return nerr_set(e, -EINVAL, "cwd must be an absolute path");
    *timeout_secs = cfg->exec_timeout_secs;
    if (req->has_timeout_secs) {
        if (req->timeout_secs > cfg->exec_timeout_secs)
            return nerr_set(e, -EINVAL,
                            "timeout_secs %lld is above this server's limit of %lld s "
                            "(exec_timeout_secs)",
                            req->timeout_secs, cfg->exec_timeout_secs);
        *timeout_secs = req->timeout_secs;
    }
    return 0;
}

void exec_agent_request(const struct wire_exec_req *req, long long timeout_secs,
                        struct ap_exec_req *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->argv = req->command;
    ret->argc = req->ncommand;
    ret->env = req->env;
    ret->nenv = req->nenv;
    ret->cwd = req->cwd;
    ret->tty = req->tty;
    ret->timeout_ms = (uint32_t)(timeout_secs * 1000);
    if (req->has_rows)
        ret->rows = (uint16_t)req->rows;
    if (req->has_cols)
        ret->cols = (uint16_t)req->cols;
}

void exec_result_from_exit(const struct ap_exit *ex, bool host_timed_out,
                           struct wire_exec_result *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->timed_out = host_timed_out || ex->timed_out;
    ret->signal = ex->signal;
    if (ret->timed_out)
        ret->exit_code = 124;
    else if (ex->signal)
        ret->exit_code = 128 + ex->signal;
    else
        ret->exit_code = ex->code;
}

/* The VM of an exec: ready, running, its runtime and agent connection. */
int exec_vm_agent(struct engine *eng, const struct db_user *u, const char *name,
                  struct vm_rt **ret_rt, struct agent_conn **ret_conn, struct nerr *e)
{
    struct db_vm vm;
    struct vm_rt *rt;
    int r;

    r = vm_lookup(eng, u, name, &vm, e);
    if (r < 0)
        return r;
    if (strcmp(vm.phase, VM_PHASE_READY) != 0)
        return nerr_set(e, -EBUSY, "VM '%s' is being %s; try again in a moment", name,
                        strcmp(vm.phase, VM_PHASE_CREATING) == 0 ? "created" : "restored");
    if (!engine_vm_row_is_running(&vm))
        return nerr_set(e, -ESRCH, "VM '%s' is not running (state: dead)", name);
    rt = engine_rt_get(eng, vm.id);
    if (!rt)
        return -ENOMEM;
    r = engine_vm_agent(eng, &vm, rt, AGENT_CONNECT_TIMEOUT_MS, ret_conn, e);
    if (r < 0) {
        engine_rt_put(eng, rt);
        return r;
    }
    *ret_rt = rt;
    return 0;
}

int engine_vm_exec(struct engine *eng, const struct db_user *u, const char *name,
                   const struct wire_exec_req *req, struct wire_exec_result *ret, struct nerr *e)
{
    struct capture cap;
    struct vm_rt *rt = NULL;
    struct agent_conn *conn = NULL;
    struct agent_exec *x = NULL;
    struct ap_exec_req areq = {0};
    struct agent_exec_sink sink = {capture_output, &cap, 0}; /* no window: capped, never blocks */
    struct ap_exit ex = {0};
    uint8_t *stdin_bytes = NULL;
    size_t stdin_len = 0;
    long long timeout_secs = 0;
    int64_t deadline;
    bool timed_out = false;
    int r;

    int64_t t_begin = time_mono_ns();

    buf_init(&cap.out, (size_t)eng->cfg->max_exec_output_bytes);
    buf_init(&cap.err, (size_t)eng->cfg->max_exec_output_bytes);
    cap.truncated = false;

    r = exec_request_check(eng->cfg, req, &timeout_secs, e);
    if (r < 0)
        goto out;
    if (req->stdin_b64) {
        r = base64_decode(req->stdin_b64, req->stdin_b64_len, &stdin_bytes, &stdin_len);
        if (r < 0) {
            r = nerr_set(e, -EINVAL, "field 'stdin_b64' is not valid base64");
            goto out;
        }
    }
    r = exec_vm_agent(eng, u, name, &rt, &conn, e);
    if (r < 0)
        goto out;

    exec_agent_request(req, timeout_secs, &areq);
    areq.stdin_open = req->stdin_text || req->stdin_b64;
    deadline = time_mono_ms() + timeout_secs * 1000 + EXEC_GRACE_MS;
    r = agent_exec_start(conn, &areq, &sink, deadline, &x, e);
    if (r < 0)
        goto out;
    if (areq.stdin_open) {
        r = agent_exec_write_stdin(x,
                                   req->stdin_text ? (const uint8_t *)req->stdin_text : stdin_bytes,
                                   req->stdin_text ? req->stdin_text_len : stdin_len, deadline, e);
        if (r >= 0)
            r = agent_exec_close_stdin(x, deadline, e);
    }
    int64_t t_started = time_mono_ns();
    if (r >= 0)
        r = agent_exec_wait(x, deadline, &ex, e);
    log_debug("exec %s/%s: setup %.3f ms, run %.3f ms", u->id, name,
              (double)(t_started - t_begin) / 1e6, (double)(time_mono_ns() - t_started) / 1e6);
    if (r == -ETIMEDOUT) {
        /* the deadline passed with the command still running, or its stdin
         * not taken (it did not read it, or the guest does not read its
         * channel): the agent should have killed it; make sure, and report
         * a timeout */
        log_warn("vm %s/%s: the command did not end by the deadline; killing it", u->id, name);
        agent_exec_kill(x, SIGKILL);
        timed_out = true;
        r = 0;
    }
    if (r < 0)
        goto out;
    /* The reader thread appends to cap for as long as x is registered, and
     * an agent may send output after EXIT or past the deadline: unregister
     * x before taking the buffers. */
    agent_exec_free(x);
    x = NULL;

    exec_result_from_exit(&ex, timed_out, ret);
    timed_out = ret->timed_out; /* the agent's own kill at the timeout, too */
    ret->truncated = cap.truncated;
    ret->out = (uint8_t *)buf_steal(&cap.out, &ret->out_len);
    ret->err = (uint8_t *)buf_steal(&cap.err, &ret->err_len);
    if (!ret->out || !ret->err) {
        wire_exec_result_free(ret);
        r = -ENOMEM;
    }
out:
    agent_exec_free(x);
    if (conn)
        agent_conn_unref(conn);
    engine_rt_put(eng, rt);
    buf_free(&cap.out);
    buf_free(&cap.err);
    free(stdin_bytes);
    metrics_exec_done(METRICS_EXEC_HTTP, r, timed_out, t_begin);
    return r;
}
