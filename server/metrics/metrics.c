/* metrics.c — see metrics.h.
 *
 * Every counter is a uint64_t (an int64_t for the gauges that go up and
 * down) touched only with relaxed __atomic operations: a scrape may see an
 * observation's bucket without its sum, which the format tolerates, and the
 * histogram's _count is derived from its buckets, so those two always
 * agree.  Every label value is written even at zero, so a rate() over a
 * series that has not happened yet is 0, not absent.
 *
 * Failures are classed like the REST front-end's status codes
 * (api/reply.c, api_status_for_errno): the 4xx errnos are "rejected" (bad
 * name, name taken, quota, not running, no such VM...), anything else
 * "error" (the guest did not answer, storage, the VMM); a streamed exec
 * whose client left is "cancelled".  Latency is observed for successes
 * only: a refusal in microseconds says nothing about how long the work
 * takes. */
#include "metrics.h"

#include <errno.h>

#include "macro.h"
#include "noid-config.h"
#include "prom_text.h"
#include "timeutil.h"

enum { REASON_REJECTED, REASON_ERROR, REASON_CANCELLED, REASON_COUNT };
static const char *const reason_names[REASON_COUNT] = {"rejected", "error", "cancelled"};

/* VM operations take from a tenth of a second (a restore on KVM) to a
 * minute (a cold boot under TCG). */
static const double op_bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60};
/* Commands: from an `echo` to exec_timeout_secs. */
static const double exec_bounds[] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

#define MAX_VALUES 2 /* label values of an operation family */

struct histogram {
    uint64_t counts[PROM_TEXT_MAX_BUCKETS + 1]; /* per bucket, not cumulative */
    uint64_t sum_ns;
};

/* An operation: successes and their latency, split by one label (or
 * none), and failures by reason (and by the label when fail_by_label). */
struct op_family {
    const char *ok_name, *ok_help;
    const char *fail_name, *fail_help;
    const char *dur_name, *dur_help;
    const char *label; /* NULL: no label, one value */
    const char *const *values;
    size_t nvalues;
    bool fail_by_label;
    size_t nreasons;
    const double *bounds;
    size_t nbounds;
    /* counters, per label value (atomic) */
    uint64_t ok[MAX_VALUES];
    uint64_t failed[MAX_VALUES][REASON_COUNT];
    struct histogram dur[MAX_VALUES];
};

enum { F_CREATE, F_CHECKPOINT, F_RESTORE, F_CLONE, F_EXEC, F_COUNT };

static const char *const source_values[] = {"golden", "cold"};
static const char *const mode_values[] = {"http", "stream"};
static const char *const no_values[] = {""};

#define OP_BOUNDS .bounds = op_bounds, .nbounds = ARRAY_SIZE(op_bounds)

static struct op_family families[F_COUNT] = {
    [F_CREATE] = {"noid_vm_creates_total",
                  "VMs created, by where they came from "
                  "(golden: restored from the golden snapshot; cold: booted).",
                  "noid_vm_create_failures_total", "VM creates that failed, by reason.",
                  "noid_vm_create_duration_seconds", "Time to create a VM (successful creates).",
                  "source", source_values, 2, false, 2, OP_BOUNDS},
    [F_CHECKPOINT] = {"noid_checkpoint_creates_total", "Checkpoints taken.",
                      "noid_checkpoint_create_failures_total",
                      "Checkpoints that failed, by reason.",
                      "noid_checkpoint_create_duration_seconds",
                      "Time to take a checkpoint (successful ones).", NULL, no_values, 1, false, 2,
                      OP_BOUNDS},
    [F_RESTORE] = {"noid_vm_restores_total", "VMs restored from a checkpoint in place.",
                   "noid_vm_restore_failures_total", "In-place restores that failed, by reason.",
                   "noid_vm_restore_duration_seconds",
                   "Time to restore a VM in place (successful restores).", NULL, no_values, 1,
                   false, 2, OP_BOUNDS},
    [F_CLONE] = {"noid_vm_clones_total", "VMs cloned from a checkpoint (restore with a new name).",
                 "noid_vm_clone_failures_total", "Clones that failed, by reason.",
                 "noid_vm_clone_duration_seconds", "Time to clone a VM (successful clones).", NULL,
                 no_values, 1, false, 2, OP_BOUNDS},
    [F_EXEC] = {"noid_execs_total",
                "Commands run to their end (exit, signal or timeout), by mode "
                "(http: POST .../exec; stream: WebSocket exec and noidfs).",
                "noid_exec_failures_total",
                "Commands that could not run or lost their VM, or whose client left, by mode "
                "and reason.",
                "noid_exec_duration_seconds", "Time from the exec request to the command's end.",
                "mode", mode_values, 2, true, 3, .bounds = exec_bounds,
                .nbounds = ARRAY_SIZE(exec_bounds)},
};
_Static_assert(ARRAY_SIZE(op_bounds) <= PROM_TEXT_MAX_BUCKETS, "too many buckets");
_Static_assert(ARRAY_SIZE(exec_bounds) <= PROM_TEXT_MAX_BUCKETS, "too many buckets");

static uint64_t exec_timeouts[2]; /* by mode */
static int64_t ws_active[2];      /* by kind */
static uint64_t ws_total[2];      /* by kind */
static uint64_t auth_failures[2]; /* by reason */
static uint64_t refusals[4];      /* by limit */
static uint64_t golden_builds, golden_build_failures;

static const char *const ws_kind_values[] = {"console", "exec"};
static const char *const auth_reason_values[] = {"missing_token", "invalid_token"};
static const char *const limit_values[] = {"auth", "user_requests", "server_requests",
                                           "ws_sessions"};

static void add(uint64_t *c)
{
    __atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

static uint64_t get(const uint64_t *c)
{
    return __atomic_load_n(c, __ATOMIC_RELAXED);
}

static int reason_of(int r)
{
    switch (-r) {
    case EINVAL:
    case E2BIG:
    case EPERM:
    case ENOENT:
    case EEXIST:
    case EBUSY:
    case ESRCH:
    case EDQUOT:
        return REASON_REJECTED;
    default:
        return REASON_ERROR;
    }
}

static void observe(struct op_family *f, size_t value, int64_t start_ns)
{
    int64_t ns = time_mono_ns() - start_ns;
    double secs;
    size_t i = 0;

    if (ns < 0)
        ns = 0;
    secs = (double)ns / 1e9;
    while (i < f->nbounds && secs > f->bounds[i])
        i++;
    add(&f->dur[value].counts[i]);
    __atomic_fetch_add(&f->dur[value].sum_ns, (uint64_t)ns, __ATOMIC_RELAXED);
}

static void family_done(struct op_family *f, size_t value, int r, int64_t start_ns)
{
    if (r < 0) {
        add(&f->failed[f->fail_by_label ? value : 0][reason_of(r)]);
        return;
    }
    add(&f->ok[value]);
    observe(f, value, start_ns);
}

void metrics_create_done(int r, bool from_golden, int64_t start_ns)
{
    family_done(&families[F_CREATE], from_golden ? 0 : 1, r, start_ns);
}

void metrics_op_done(enum metrics_op op, int r, int64_t start_ns)
{
    static const int which[] = {[METRICS_OP_CHECKPOINT] = F_CHECKPOINT,
                                [METRICS_OP_RESTORE] = F_RESTORE,
                                [METRICS_OP_CLONE] = F_CLONE};

    if ((size_t)op < ARRAY_SIZE(which))
        family_done(&families[which[op]], 0, r, start_ns);
}

void metrics_exec_done(enum metrics_exec_mode mode, int r, bool timed_out, int64_t start_ns)
{
    if ((size_t)mode >= ARRAY_SIZE(mode_values))
        return;
    family_done(&families[F_EXEC], mode, r, start_ns);
    if (r >= 0 && timed_out)
        add(&exec_timeouts[mode]);
}

void metrics_exec_cancelled(enum metrics_exec_mode mode)
{
    if ((size_t)mode < ARRAY_SIZE(mode_values))
        add(&families[F_EXEC].failed[mode][REASON_CANCELLED]);
}

void metrics_ws_session_begin(enum metrics_ws_kind kind)
{
    if ((size_t)kind >= ARRAY_SIZE(ws_kind_values))
        return;
    __atomic_fetch_add(&ws_active[kind], 1, __ATOMIC_RELAXED);
    add(&ws_total[kind]);
}

void metrics_ws_session_end(enum metrics_ws_kind kind)
{
    if ((size_t)kind < ARRAY_SIZE(ws_kind_values))
        __atomic_fetch_sub(&ws_active[kind], 1, __ATOMIC_RELAXED);
}

void metrics_auth_failure(enum metrics_auth_reason reason)
{
    if ((size_t)reason < ARRAY_SIZE(auth_reason_values))
        add(&auth_failures[reason]);
}

void metrics_refusal(enum metrics_limit limit)
{
    if ((size_t)limit < ARRAY_SIZE(limit_values))
        add(&refusals[limit]);
}

void metrics_golden_build_done(int r)
{
    add(r < 0 ? &golden_build_failures : &golden_builds);
}

/* ---- rendering ---- */

/* A family whose samples differ by one label (label NULL: one sample). */
static int render_by_label(struct buf *b, const char *name, const char *type, const char *help,
                           const char *label, const char *const *values, size_t n, const double *v)
{
    int r = prom_text_family(b, name, type, help);

    for (size_t i = 0; r >= 0 && i < n; i++) {
        struct prom_label l = {label, values[i]};
        r = prom_text_sample(b, name, &l, label ? 1 : 0, v[i]);
    }
    return r;
}

static int render_counters(struct buf *b, const char *name, const char *help, const char *label,
                           const char *const *values, size_t n, const uint64_t *c)
{
    double v[8];

    for (size_t i = 0; i < n && i < ARRAY_SIZE(v); i++)
        v[i] = (double)get(&c[i]);
    return render_by_label(b, name, "counter", help, label, values, MIN(n, ARRAY_SIZE(v)), v);
}

static int render_family(struct buf *b, struct op_family *f)
{
    size_t nfail_values = f->fail_by_label ? f->nvalues : 1;
    int r;

    r = render_counters(b, f->ok_name, f->ok_help, f->label, f->values, f->nvalues, f->ok);
    if (r >= 0)
        r = prom_text_family(b, f->fail_name, "counter", f->fail_help);
    for (size_t i = 0; r >= 0 && i < nfail_values; i++)
        for (size_t k = 0; r >= 0 && k < f->nreasons; k++) {
            struct prom_label l[2] = {{f->label, f->values[i]}, {"reason", reason_names[k]}};
            bool by_label = f->fail_by_label && f->label;
            r = prom_text_sample(b, f->fail_name, by_label ? l : l + 1, by_label ? 2 : 1,
                                 (double)get(&f->failed[i][k]));
        }
    if (r >= 0)
        r = prom_text_family(b, f->dur_name, "histogram", f->dur_help);
    for (size_t i = 0; r >= 0 && i < f->nvalues; i++) {
        struct prom_label l = {f->label, f->values[i]};
        uint64_t counts[PROM_TEXT_MAX_BUCKETS + 1];
        for (size_t k = 0; k <= f->nbounds; k++)
            counts[k] = get(&f->dur[i].counts[k]);
        r = prom_text_histogram(b, f->dur_name, &l, f->label ? 1 : 0, f->bounds, counts, f->nbounds,
                                (double)get(&f->dur[i].sum_ns) / 1e9);
    }
    return r;
}

int metrics_render(struct buf *out, const struct metrics_scrape *s)
{
    static const char *const states[] = {"creating", "restoring", "running", "dead"};
    const double vms[] = {(double)s->vms_creating, (double)s->vms_restoring, (double)s->vms_running,
                          (double)s->vms_dead};
    const double ready = s->golden_ready ? 1 : 0;
    const char *const version[] = {NOID_VERSION};
    const double one = 1;
    double active[2];
    int r;

    r = render_by_label(out, "noid_build_info", "gauge",
                        "Always 1; the label says which noid-server this is.", "version", version,
                        1, &one);
    if (r >= 0)
        r = render_by_label(out, "noid_vms", "gauge", "VMs of every user, by state.", "state",
                            states, ARRAY_SIZE(states), vms);
    if (r >= 0)
        r = render_by_label(out, "noid_golden_ready", "gauge",
                            "1 when a golden snapshot matching the current guest image and "
                            "settings is in place (creates restore it), else 0.",
                            NULL, no_values, 1, &ready);
    if (r >= 0)
        r = render_counters(out, "noid_golden_builds_total", "Golden snapshots built.", NULL,
                            no_values, 1, &golden_builds);
    if (r >= 0)
        r = render_counters(out, "noid_golden_build_failures_total",
                            "Golden snapshot builds that failed.", NULL, no_values, 1,
                            &golden_build_failures);
    for (size_t i = 0; r >= 0 && i < F_COUNT; i++)
        r = render_family(out, &families[i]);
    if (r >= 0)
        r = render_counters(out, "noid_exec_timeouts_total",
                            "Commands killed at their timeout (also in noid_execs_total).", "mode",
                            mode_values, 2, exec_timeouts);
    for (size_t i = 0; i < 2; i++)
        active[i] = (double)__atomic_load_n(&ws_active[i], __ATOMIC_RELAXED);
    if (r >= 0)
        r = render_by_label(out, "noid_ws_sessions_active", "gauge",
                            "WebSocket sessions open now, by kind.", "kind", ws_kind_values, 2,
                            active);
    if (r >= 0)
        r = render_counters(out, "noid_ws_sessions_total", "WebSocket sessions opened, by kind.",
                            "kind", ws_kind_values, 2, ws_total);
    if (r >= 0)
        r = render_counters(out, "noid_auth_failures_total",
                            "API requests refused for their token (401, or 429 once rate "
                            "limited), by reason.",
                            "reason", auth_reason_values, 2, auth_failures);
    if (r >= 0)
        r = render_counters(out, "noid_rate_limit_refusals_total",
                            "Requests refused by a limit (429 or 503), by limit.", "limit",
                            limit_values, ARRAY_SIZE(limit_values), refusals);
    return r < 0 ? r : 0;
}
