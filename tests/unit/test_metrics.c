/* test_metrics.c — the server's series: what recording an operation does
 * to the rendered text, and that the whole exposition is well formed (one
 * HELP and TYPE per family, before its samples; no sample twice;
 * histogram buckets that only grow and end at _count). */
#include <stdio.h>
#include <string.h>

#include "metrics.h"
#include "noid-config.h"
#include "timeutil.h"
#include "unit.h"

/* The value of the sample whose name and labels are exactly `series`
 * (e.g. noid_vms{state="running"}); fails the test when absent. */
static double value_of(const char *text, const char *series)
{
    size_t n = strlen(series);

    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    ck_abort_msg("no sample %s in the exposition", series);
    return -1;
}

static char *render(const struct metrics_scrape *s)
{
    struct buf b;
    size_t n;

    buf_init(&b, 0);
    ck_assert_int_eq(metrics_render(&b, s), 0);
    return buf_steal(&b, &n);
}

START_TEST(recorded_operations_show)
{
    struct metrics_scrape s = {.vms_running = 2, .vms_dead = 1, .golden_ready = true};
    int64_t now = time_mono_ns();
    char *t;

    /* one golden create of 0.3 s, one refused (name taken), one that timed out */
    metrics_create_done(0, true, now - 300 * 1000 * 1000);
    metrics_create_done(-EEXIST, true, now);
    metrics_create_done(-ETIMEDOUT, false, now);
    metrics_op_done(METRICS_OP_CHECKPOINT, 0, now);
    metrics_op_done(METRICS_OP_CLONE, 0, now);
    metrics_op_done(METRICS_OP_RESTORE, -ENOENT, now);
    metrics_exec_done(METRICS_EXEC_HTTP, 0, false, now);
    metrics_exec_done(METRICS_EXEC_HTTP, 0, true, now);
    metrics_exec_done(METRICS_EXEC_STREAM, -ESRCH, false, now);
    metrics_exec_cancelled(METRICS_EXEC_STREAM);
    metrics_ws_session_begin(METRICS_WS_EXEC);
    metrics_ws_session_begin(METRICS_WS_EXEC);
    metrics_ws_session_end(METRICS_WS_EXEC);
    metrics_auth_failure(METRICS_AUTH_INVALID_TOKEN);
    metrics_refusal(METRICS_LIMIT_AUTH);
    metrics_golden_build_done(0);
    t = render(&s);

    ck_assert_ptr_nonnull(strstr(t, "noid_build_info{version=\"" NOID_VERSION "\"} 1\n"));
    ck_assert_double_eq(value_of(t, "noid_vms{state=\"running\"}"), 2);
    ck_assert_double_eq(value_of(t, "noid_vms{state=\"dead\"}"), 1);
    ck_assert_double_eq(value_of(t, "noid_vms{state=\"creating\"}"), 0);
    ck_assert_double_eq(value_of(t, "noid_golden_ready"), 1);
    ck_assert_double_eq(value_of(t, "noid_golden_builds_total"), 1);
    ck_assert_double_eq(value_of(t, "noid_vm_creates_total{source=\"golden\"}"), 1);
    ck_assert_double_eq(value_of(t, "noid_vm_creates_total{source=\"cold\"}"), 0);
    ck_assert_double_eq(value_of(t, "noid_vm_create_failures_total{reason=\"rejected\"}"), 1);
    ck_assert_double_eq(value_of(t, "noid_vm_create_failures_total{reason=\"error\"}"), 1);
    /* 0.3 s: above the 0.25 bucket, inside 0.5; failures are not timed */
    ck_assert_double_eq(
        value_of(t, "noid_vm_create_duration_seconds_bucket{source=\"golden\",le=\"0.25\"}"), 0);
    ck_assert_double_eq(
        value_of(t, "noid_vm_create_duration_seconds_bucket{source=\"golden\",le=\"0.5\"}"), 1);
    ck_assert_double_eq(
        value_of(t, "noid_vm_create_duration_seconds_bucket{source=\"golden\",le=\"+Inf\"}"), 1);
    ck_assert_double_eq(value_of(t, "noid_vm_create_duration_seconds_count{source=\"golden\"}"), 1);
    ck_assert_double_eq(value_of(t, "noid_vm_create_duration_seconds_count{source=\"cold\"}"), 0);
    double sum = value_of(t, "noid_vm_create_duration_seconds_sum{source=\"golden\"}");
    ck_assert(sum >= 0.3 && sum < 30);
    ck_assert_double_eq(value_of(t, "noid_checkpoint_creates_total"), 1);
    ck_assert_double_eq(value_of(t, "noid_checkpoint_create_duration_seconds_count"), 1);
    ck_assert_double_eq(value_of(t, "noid_vm_clones_total"), 1);
    ck_assert_double_eq(value_of(t, "noid_vm_restores_total"), 0);
    ck_assert_double_eq(value_of(t, "noid_vm_restore_failures_total{reason=\"rejected\"}"), 1);
    ck_assert_double_eq(value_of(t, "noid_execs_total{mode=\"http\"}"), 2);
    ck_assert_double_eq(value_of(t, "noid_exec_timeouts_total{mode=\"http\"}"), 1);
    ck_assert_double_eq(value_of(t, "noid_exec_duration_seconds_count{mode=\"http\"}"), 2);
    ck_assert_double_eq(
        value_of(t, "noid_exec_failures_total{mode=\"stream\",reason=\"rejected\"}"), 1);
    ck_assert_double_eq(
        value_of(t, "noid_exec_failures_total{mode=\"stream\",reason=\"cancelled\"}"), 1);
    ck_assert_double_eq(value_of(t, "noid_exec_failures_total{mode=\"http\",reason=\"error\"}"), 0);
    ck_assert_double_eq(value_of(t, "noid_ws_sessions_active{kind=\"exec\"}"), 1);
    ck_assert_double_eq(value_of(t, "noid_ws_sessions_total{kind=\"exec\"}"), 2);
    ck_assert_double_eq(value_of(t, "noid_ws_sessions_total{kind=\"console\"}"), 0);
    ck_assert_double_eq(value_of(t, "noid_auth_failures_total{reason=\"invalid_token\"}"), 1);
    ck_assert_double_eq(value_of(t, "noid_auth_failures_total{reason=\"missing_token\"}"), 0);
    ck_assert_double_eq(value_of(t, "noid_rate_limit_refusals_total{limit=\"auth\"}"), 1);
    free(t);
}
END_TEST

/* The family a sample line belongs to: its name, less a histogram suffix
 * when the family is a histogram. */
static void family_of(const char *line, const char *types, char *out, size_t size)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    size_t n = strcspn(line, "{ ");

    snprintf(out, size, "%.*s", (int)n, line);
    for (size_t i = 0; i < 3; i++) {
        size_t sl = strlen(suffixes[i]);
        char hist[160];
        if (n <= sl || strcmp(out + n - sl, suffixes[i]) != 0)
            continue;
        snprintf(hist, sizeof(hist), "\n# TYPE %.*s histogram\n", (int)(n - sl), line);
        if (strstr(types, hist)) {
            out[n - sl] = 0;
            return;
        }
    }
}

START_TEST(exposition_is_well_formed)
{
    struct metrics_scrape s = {0};
    char *t = render(&s), *copy, *save = NULL;
    char family[160] = "", last_help[160] = "";
    char seen[300][200];
    size_t nseen = 0, nfamilies = 0;
    double last_bucket = -1;
    char *types;

    /* "\n" + text, so every TYPE line is found as "\n# TYPE ..." */
    ck_assert_int_ge(asprintf(&types, "\n%s", t), 0);
    copy = strdup(t);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[160];
        if (strncmp(line, "# HELP ", 7) == 0) {
            snprintf(last_help, sizeof(last_help), "%.*s", (int)strcspn(line + 7, " "), line + 7);
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            snprintf(family, sizeof(family), "%.*s", (int)strcspn(line + 7, " "), line + 7);
            ck_assert_str_eq(family, last_help); /* HELP right before TYPE */
            for (size_t i = 0; i < nseen; i++)   /* each family once */
                ck_assert_str_ne(seen[i], family);
            nfamilies++;
            continue;
        }
        ck_assert_msg(line[0] != '#', "stray comment: %s", line);
        family_of(line, types, name, sizeof(name));
        ck_assert_msg(strcmp(name, family) == 0, "sample %s outside its family (%s)", line, family);
        /* no sample twice: name and labels */
        ck_assert_uint_lt(nseen, 300);
        snprintf(seen[nseen], sizeof(seen[0]), "%.*s", (int)strcspn(line, " "), line);
        for (size_t i = 0; i < nseen; i++)
            ck_assert_str_ne(seen[i], seen[nseen]);
        nseen++;
        /* buckets only grow, and +Inf is _count */
        if (strstr(line, "_bucket{")) {
            double v = strtod(strrchr(line, ' ') + 1, NULL);
            bool first = strstr(line, "le=\"0.01\"") || strstr(line, "le=\"0.05\"");
            ck_assert(first || v >= last_bucket);
            last_bucket = v;
        }
    }
    ck_assert_uint_ge(nfamilies, 25);
    free(copy);
    free(types);
    free(t);
}
END_TEST

Suite *suite_metrics(void)
{
    Suite *s = suite_create("metrics");
    TCase *t = tcase_create("core");

    tcase_add_test(t, recorded_operations_show);
    tcase_add_test(t, exposition_is_well_formed);
    suite_add_tcase(s, t);
    return s;
}
