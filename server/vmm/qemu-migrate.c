/* qemu-migrate.c — see qemu-migrate.h. */
#include "qemu-migrate.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "textutil.h"
#include "timeutil.h"

int qemu_mig_set_cap(struct qmp *m, const char *cap, bool on, struct nerr *e)
{
    json_object *args = json_object_new_object();
    json_object *caps = json_object_new_array();
    json_object *c = json_object_new_object();

    json_object_object_add(c, "capability", json_object_new_string(cap));
    json_object_object_add(c, "state", json_object_new_boolean(on));
    json_object_array_add(caps, c);
    json_object_object_add(args, "capabilities", caps);
    return qmp_execute(m, "migrate-set-capabilities", args, -1, NULL, e);
}

int qemu_mig_set_params(struct qmp *m, struct nerr *e)
{
    json_object *params = json_object_new_object();

    json_object_object_add(params, "max-bandwidth", json_object_new_int64(QEMU_MIGRATE_BANDWIDTH));
    return qmp_execute(m, "migrate-set-parameters", params, -1, NULL, e);
}

int qemu_mig_start_fd(struct qmp *m, int fd, const char *fdname, bool incoming, struct nerr *e)
{
    json_object *args = json_object_new_object();
    char uri[64];
    int r;

    json_object_object_add(args, "fdname", json_object_new_string(fdname));
    r = qmp_execute(m, "getfd", args, fd, NULL, e);
    if (r < 0)
        return r;
    snprintf(uri, sizeof(uri), "fd:%s", fdname);
    args = json_object_new_object();
    json_object_object_add(args, "uri", json_object_new_string(uri));
    return qmp_execute(m, incoming ? "migrate-incoming" : "migrate", args, -1, NULL, e);
}

int qemu_mig_query(struct qmp *m, struct qemu_mig_info *ret, struct nerr *e)
{
    json_object *o = NULL, *v;
    int r = qmp_execute(m, "query-migrate", NULL, -1, &o, e);

    if (r < 0)
        return r;
    memset(ret, 0, sizeof(*ret));
    /* before the first migration QEMU answers {} */
    if (json_object_object_get_ex(o, "status", &v))
        text_sanitize(json_object_get_string(v), strlen(json_object_get_string(v)), ret->status,
                      sizeof(ret->status));
    /* QEMU's words go into API errors and logs: escaped (a guest may have
     * a say in what a compromised QEMU writes) */
    if (json_object_object_get_ex(o, "error-desc", &v)) {
        const char *t = json_object_get_string(v);
        text_sanitize(t, strlen(t), ret->error, sizeof(ret->error));
    }
    json_object_put(o);
    return 0;
}

/* Poll query-migrate until the outgoing migration completed, failed or
 * was cancelled, or deadline_ms passes (then it is cancelled). */
static int qemu_mig_wait(struct qmp *m, int64_t deadline_ms, struct nerr *e)
{
    struct qemu_mig_info mi;

    for (;;) {
        int r = qemu_mig_query(m, &mi, e);
        if (r < 0)
            return r;
        if (strcmp(mi.status, "completed") == 0)
            return 0;
        if (strcmp(mi.status, "failed") == 0 || strcmp(mi.status, "cancelled") == 0)
            return nerr_set(e, -EIO, "QEMU's migration %s%s%s", mi.status, mi.error[0] ? ": " : "",
                            mi.error);
        if (time_mono_ms() > deadline_ms) {
            qmp_execute(m, "migrate_cancel", NULL, -1, NULL, NULL);
            return nerr_set(e, -ETIMEDOUT, "QEMU's migration did not finish in time (status %s)",
                            mi.status);
        }
        time_sleep_ms(1);
    }
}

int qemu_mig_save_prepare(struct qmp *m, int fd, bool ignore_shared, struct nerr *e)
{
    json_object *args;
    int r = qemu_mig_set_cap(m, "x-ignore-shared", ignore_shared, e);

    if (r >= 0)
        r = qemu_mig_set_params(m, e);
    if (r < 0)
        return r;
    args = json_object_new_object();
    json_object_object_add(args, "fdname", json_object_new_string(QEMU_MIG_SAVE_FD));
    return qmp_execute(m, "getfd", args, fd, NULL, e);
}

int qemu_query_status(struct qmp *m, char *out, size_t size, struct nerr *e)
{
    json_object *o = NULL, *v;
    int r = qmp_execute(m, "query-status", NULL, -1, &o, e);

    if (r < 0)
        return r;
    out[0] = 0;
    if (json_object_object_get_ex(o, "status", &v))
        snprintf(out, size, "%s", json_object_get_string(v));
    json_object_put(o);
    return 0;
}

/* Poll query-status until the run state is no longer `transient`: 0 and
 * the new state in status; -ETIMEDOUT with "<what>" after deadline_ms. */
static int wait_run_state_leaves(struct qmp *m, const char *transient, const char *what,
                                 int64_t deadline_ms, char *status, size_t size, struct nerr *e)
{
    for (;;) {
        int r = qemu_query_status(m, status, size, e);
        if (r < 0)
            return r;
        if (strcmp(status, transient) != 0)
            return 0;
        if (time_mono_ms() > deadline_ms)
            return nerr_set(e, -ETIMEDOUT, "%s", what);
        time_sleep_ms(1);
    }
}

int qemu_wait_loaded(struct qmp *m, const char *who, int64_t deadline_ms, char *status, size_t size,
                     struct nerr *e)
{
    char what[128];

    snprintf(what, sizeof(what), "%s did not finish loading the saved state", who);
    return wait_run_state_leaves(m, "inmigrate", what, deadline_ms, status, size, e);
}

int qemu_mig_save_run(struct qmp *m, int64_t deadline_ms, struct nerr *e)
{
    json_object *args = json_object_new_object();
    char status[32];
    int r;

    json_object_object_add(args, "uri", json_object_new_string("fd:" QEMU_MIG_SAVE_FD));
    r = qmp_execute(m, "migrate", args, -1, NULL, e);
    if (r >= 0)
        r = qemu_mig_wait(m, deadline_ms, e);
    /* query-migrate says "completed" a moment before the migration thread
     * leaves the "finish-migrate" run state, and QEMU refuses a 'cont' in
     * it ("Migration is not finalized yet"): wait for that too */
    if (r >= 0)
        r = wait_run_state_leaves(m, "finish-migrate", "QEMU did not finish the save", deadline_ms,
                                  status, sizeof(status), e);
    return r;
}

/* A save the server could not finish: cancel it (QEMU then resumes a VM it
 * had stopped for it) and make sure the VM runs. */
void qemu_mig_abort_and_resume(struct qmp *src)
{
    struct qemu_mig_info mi;
    char status[32];

    qmp_execute(src, "migrate_cancel", NULL, -1, NULL, NULL);
    for (int i = 0; i < 5000; i++) {
        if (qemu_mig_query(src, &mi, NULL) < 0 || strcmp(mi.status, "cancelling") != 0)
            break;
        time_sleep_ms(1);
    }
    if (qemu_query_status(src, status, sizeof(status), NULL) == 0 && strcmp(status, "running") != 0)
        qmp_execute(src, "cont", NULL, -1, NULL, NULL);
}
