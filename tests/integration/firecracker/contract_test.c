/* contract_test.c — noid's Firecracker backend against the Firecracker API
 * spec.
 *
 * Firecracker cannot run on our machines (it needs /dev/kvm, which they do
 * not have), so the backend (server/vmm/firecracker.c) is driven here
 * against fake_firecracker.py, a stand-in binary that validates every
 * request against the official spec (firecracker.yaml, next to it) and
 * models Firecracker's state machine, and logs each request and violation to
 * a report file.
 *
 * The scenario is the engine's life cycle of a VM: cold boot (kernel, initrd,
 * disk, vsock, entropy), pause, full snapshot, resume, the agent's vsock
 * handshake, SIGKILL; a restore of that snapshot into another VM directory
 * (as a clone would); a restart over the stale sockets of a killed process;
 * and a failing start, which must leave nothing running.  The VM
 * directories are longer than sun_path, so the /proc/self/fd socket
 * path is exercised too.  Then the report must hold no violation and every
 * request the scenario needs.  A self-test sends deliberately invalid
 * requests to a fresh fake and expects each to be answered 400 and reported,
 * which shows the validator can fail.
 *
 * Proves: every request we send is valid for the spec, in an order Firecracker
 * accepts, with the files it needs in place; we read its replies (204
 * without a body on a keep-alive connection, 400 with fault_message)
 * correctly.  Does not prove: that a real guest boots, that the kernel is a
 * vmlinux Firecracker can load, that the agent answers over real vsock, or
 * any behaviour of Firecracker the spec does not describe.
 *
 * Usage: firecracker-contract-test <path to fake_firecracker.py>.  Exits 77
 * (skip) when python3 or python3-yaml is missing. */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fc_api.h"
#include "firecracker.h"
#include "fsutil.h"
#include "spawn-util.h"
#include "timeutil.h"
#include "unixsock.h"
#include "vmm.h"

#define REPORT_MAX      (16u * 1024 * 1024)
#define KILL_TIMEOUT_MS 5000

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) {
        perror("vasprintf");
        exit(1);
    }
    va_end(ap);
    return s;
}

static void write_text(const char *path, const char *text)
{
    if (write_file_atomic(path, text, strlen(text), 0600) < 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

/* e, emptied: nerr keeps only the first error, and each call here is
 * checked on its own. */
static struct nerr *fresh(struct nerr *e)
{
    memset(e, 0, sizeof(*e));
    return e;
}

static bool is_fifo(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISFIFO(st.st_mode);
}

static bool file_contains(const char *path, const char *needle)
{
    _cleanup_free_ char *text = NULL;
    return read_file(path, REPORT_MAX, &text, NULL) == 0 && strstr(text, needle);
}

/* ------------------------------------------------------------ the report */

struct report {
    json_object **recs;
    size_t n;
};

static void report_load(const char *path, struct report *r)
{
    _cleanup_free_ char *text = NULL;
    char *save = NULL;

    memset(r, 0, sizeof(*r));
    if (read_file(path, REPORT_MAX, &text, NULL) < 0)
        return;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_object *j = json_tokener_parse(line);
        if (!j) {
            CHECK(false, "unparsable report line: %s", line);
            continue;
        }
        r->recs = realloc(r->recs, (r->n + 1) * sizeof(*r->recs));
        if (!r->recs)
            exit(1);
        r->recs[r->n++] = j;
    }
}

static void report_free(struct report *r)
{
    for (size_t i = 0; i < r->n; i++)
        json_object_put(r->recs[i]);
    free(r->recs);
}

static const char *jget(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

static bool jstreq(json_object *o, const char *key, const char *want)
{
    const char *v = jget(o, key);
    return v && strcmp(v, want) == 0;
}

static size_t report_count(const struct report *r, const char *kind)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++)
        n += jstreq(r->recs[i], "kind", kind);
    return n;
}

/* Whether an accepted request method+path arrived, whose body has
 * key == value (key NULL: any body). */
static bool report_has_request(const struct report *r, const char *method, const char *path,
                               const char *key, const char *value)
{
    for (size_t i = 0; i < r->n; i++) {
        json_object *rec = r->recs[i], *body;
        if (!jstreq(rec, "kind", "request") || !jstreq(rec, "outcome", "ok") ||
            !jstreq(rec, "method", method) || !jstreq(rec, "path", path))
            continue;
        if (!key)
            return true;
        if (json_object_object_get_ex(rec, "body", &body) && jstreq(body, key, value))
            return true;
    }
    return false;
}

/* The body of the last accepted request method path, as JSON text ("" if
 * none). */
static const char *report_request_body(const struct report *r, const char *method,
                                       const char *path)
{
    for (size_t i = r->n; i-- > 0;) {
        json_object *rec = r->recs[i], *body;
        if (jstreq(rec, "kind", "request") && jstreq(rec, "outcome", "ok") &&
            jstreq(rec, "method", method) && jstreq(rec, "path", path) &&
            json_object_object_get_ex(rec, "body", &body))
            return json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN);
    }
    return "";
}

/* The last record of a kind from process id (NULL: any). */
static json_object *report_last(const struct report *r, const char *kind, const char *id)
{
    for (size_t i = r->n; i-- > 0;)
        if (jstreq(r->recs[i], "kind", kind) && (!id || jstreq(r->recs[i], "id", id)))
            return r->recs[i];
    return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = s ? strlen(s) : 0, b = strlen(suffix);
    return s && a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ------------------------------------------------------------ scenario */

struct env {
    char *root;   /* temporary directory, removed at the end if all passed */
    char *deep;   /* a directory whose children's socket paths exceed sun_path */
    char *kernel; /* dummy images: the fake only checks that they open */
    char *initrd;
    char *fake;
};

static char *make_vm_dir(struct env *env, const char *name)
{
    char *dir = path_join(env->deep, name);
    _cleanup_free_ char *disk = path_join(dir, VM_FILE_ROOTFS);

    if (!dir || !disk || mkdir_p(dir, 0700) < 0) {
        fprintf(stderr, "cannot create %s\n", dir);
        exit(1);
    }
    write_text(disk, "not really ext4\n");
    return dir;
}

static void check_agent(struct vmm_backend *be, const char *vm_dir)
{
    struct nerr e = {0};
    int fd = -1;
    int r = be->ops->agent_connect(be, vm_dir, &fd, fresh(&e));

    CHECK(r == 0 && fd >= 0, "agent_connect(%s): %s", vm_dir, nerr_msg(&e));
    if (fd >= 0) {
        /* the stream is ours after the OK line: the guest side swallows it */
        CHECK(fd_write_all(fd, "\x4e\x41", 2) == 0, "cannot write to the agent stream");
        close(fd);
    }
}

static void check_start_record(const struct report *rep, const char *vm_dir, const char *id)
{
    _cleanup_free_ char *full_id = xasprintf("noid-%s", id);
    json_object *start = report_last(rep, "start", full_id), *argv;
    char real[PATH_MAX];
    bool has_id = false;

    CHECK(start, "no start record for %s", full_id);
    if (!start)
        return;
    if (realpath(vm_dir, real))
        CHECK(jstreq(start, "cwd", real), "cwd is %s, want %s", jget(start, "cwd"), real);
    CHECK(jstreq(start, "stdin_is_fifo", "true"), "stdin is not a FIFO");
    CHECK(jstreq(start, "stdin_rdwr", "true"), "stdin is not open read-write");
    CHECK(ends_with(jget(start, "stdin"), "/" VM_FILE_SERIAL_IN), "stdin is %s",
          jget(start, "stdin"));
    CHECK(ends_with(jget(start, "stdout"), "/" VM_FILE_SERIAL_LOG), "stdout is %s",
          jget(start, "stdout"));
    CHECK(ends_with(jget(start, "stderr"), "/" VM_FILE_VMM_LOG), "stderr is %s",
          jget(start, "stderr"));
    if (json_object_object_get_ex(start, "argv", &argv))
        for (size_t i = 0; i < json_object_array_length(argv); i++)
            has_id |=
                strcmp(json_object_get_string(json_object_array_get_idx(argv, i)), full_id) == 0;
    CHECK(has_id, "the instance id is not in argv");
}

/* Cold boot, pause, snapshot, resume, agent, kill; then a restore of the
 * snapshot into a second VM directory; then a restart over stale sockets. */
static void scenario(struct env *env, struct vmm_backend *be, const char *report_path)
{
    _cleanup_free_ char *vm1 = make_vm_dir(env, "vm1");
    _cleanup_free_ char *vm2 = make_vm_dir(env, "vm2");
    _cleanup_free_ char *snap = path_join(env->deep, "checkpoint");
    _cleanup_free_ char *vm1_disk = path_join(vm1, VM_FILE_ROOTFS);
    _cleanup_free_ char *vm2_disk = path_join(vm2, VM_FILE_ROOTFS);
    _cleanup_free_ char *state = path_join(snap, VM_FILE_VMSTATE);
    _cleanup_free_ char *mem = path_join(snap, VM_FILE_MEMORY);
    _cleanup_free_ char *fifo = path_join(vm1, VM_FILE_SERIAL_IN);
    _cleanup_free_ char *serial = path_join(vm1, VM_FILE_SERIAL_LOG);
    struct vmm_boot cold = {
        .vm_dir = vm1,
        .instance_id = "c0ffee01",
        .kernel = env->kernel,
        .initrd = env->initrd,
        .rootfs = vm1_disk,
        .cpus = 2,
        .mem_mib = 256,
        .ram = VMM_RAM_ANON,
        /* a network leased from noid-netd (the fake never opens the TAP) */
        .nic = true,
        .tap = "noid7",
        .mac = "AA:FC:00:00:00:07",
        .cmdline_extra = "ip=172.16.0.30::172.16.0.29:255.255.255.252::eth0:off",
    };
    struct vmm_boot warm = {
        .vm_dir = vm2,
        .instance_id = "c0ffee02",
        .rootfs = vm2_disk,
        .cpus = 2,
        .mem_mib = 256,
        .ram = VMM_RAM_PRIVATE_FILE,
        .mem_file = mem,
        .restore_state = state,
        /* a clone gets its own TAP behind the saved NIC */
        .nic = true,
        .tap = "noid8",
        .mac = "AA:FC:00:00:00:08",
    };
    struct vmm_proc p1 = {0}, p2 = {0}, p3 = {0};
    struct nerr e = {0};
    struct report rep;
    bool mem_saved = false, resumed = false;
    json_object *restored, *drives;
    char real[PATH_MAX];
    int r;

    CHECK(strlen(vm1) + 1 + strlen(VM_FILE_FC_SOCK) > 108, "VM dir is too short to test "
                                                           "long socket paths");
    CHECK(mkdir_p(snap, 0700) == 0, "mkdir %s", snap);
    setenv("FC_CONTRACT_REPORT", report_path, 1);

    r = be->ops->start(be, &cold, &p1, fresh(&e));
    CHECK(r == 0, "cold start: %s", nerr_msg(&e));
    if (r < 0)
        goto check_report; /* which shows what was wrong */
    CHECK(p1.pid > 0 && vmm_proc_is_alive(p1.pid, cold.instance_id),
          "the started process is not recognised by its instance id");
    CHECK(is_fifo(fifo), "%s is not a FIFO", fifo);
    CHECK(file_contains(serial, "InstanceStart"), "nothing reached %s", serial);

    r = be->ops->pause(be, vm1, fresh(&e));
    CHECK(r == 0, "pause: %s", nerr_msg(&e));
    r = be->ops->save_state(be, vm1, snap, false, &mem_saved, fresh(&e));
    CHECK(r == 0, "save_state: %s", nerr_msg(&e));
    CHECK(mem_saved, "save_state did not report the memory file");
    CHECK(path_exists(state) && path_exists(mem), "snapshot files missing in %s", snap);
    r = be->ops->resume(be, vm1, fresh(&e));
    CHECK(r == 0, "resume: %s", nerr_msg(&e));
    check_agent(be, vm1);
    CHECK(vmm_proc_kill(p1.pid, cold.instance_id, KILL_TIMEOUT_MS) == 0, "kill vm1");
    CHECK(!vmm_proc_is_alive(p1.pid, cold.instance_id), "vm1 still alive after kill");

    /* restore into another directory, like a clone of a checkpoint */
    r = be->ops->start(be, &warm, &p2, fresh(&e));
    CHECK(r == 0, "restore: %s", nerr_msg(&e));
    if (r == 0) {
        check_agent(be, vm2);
        CHECK(be->ops->pause(be, vm2, fresh(&e)) == 0, "pause restored VM: %s", nerr_msg(&e));
        CHECK(be->ops->resume(be, vm2, fresh(&e)) == 0, "resume restored VM: %s", nerr_msg(&e));
        /* the reconcile after a crash during a checkpoint: paused -> resumed */
        CHECK(be->ops->pause(be, vm2, fresh(&e)) == 0, "pause restored VM: %s", nerr_msg(&e));
        CHECK(be->ops->recover(be, vm2, &resumed, fresh(&e)) == 0, "recover: %s", nerr_msg(&e));
        CHECK(resumed, "recover did not resume a paused VM");
        CHECK(be->ops->recover(be, vm2, &resumed, fresh(&e)) == 0, "recover: %s", nerr_msg(&e));
        CHECK(!resumed, "recover resumed a running VM");
        CHECK(vmm_proc_kill(p2.pid, warm.instance_id, KILL_TIMEOUT_MS) == 0, "kill vm2");
    }

    /* the killed vm1 left its sockets behind; a new start must cope */
    cold.instance_id = "c0ffee03";
    r = be->ops->start(be, &cold, &p3, fresh(&e));
    CHECK(r == 0, "restart over stale sockets: %s", nerr_msg(&e));
    if (r == 0)
        CHECK(vmm_proc_kill(p3.pid, cold.instance_id, KILL_TIMEOUT_MS) == 0, "kill vm1 again");

check_report:
    report_load(report_path, &rep);
    for (size_t i = 0; i < rep.n; i++) {
        const char *kind = jget(rep.recs[i], "kind");
        if (strcmp(kind, "violation") == 0 || strcmp(kind, "refused") == 0 ||
            strcmp(kind, "fake-error") == 0)
            CHECK(false, "%s: %s %s: %s", kind, jget(rep.recs[i], "method"),
                  jget(rep.recs[i], "path"), jget(rep.recs[i], "reason"));
    }
    static const char *const need[][4] = {
        {"PUT", "/logger", "log_path", VM_FILE_FC_LOG},
        {"PUT", "/machine-config", "vcpu_count", "2"},
        {"PUT", "/boot-source", NULL, NULL},
        {"PUT", "/drives/rootfs", "path_on_host", VM_FILE_ROOTFS},
        {"PUT", "/vsock", "uds_path", VM_FILE_VSOCK},
        {"PUT", "/entropy", NULL, NULL},
        {"PUT", "/network-interfaces/eth0", "host_dev_name", "noid7"},
        {"PUT", "/network-interfaces/eth0", "guest_mac", "AA:FC:00:00:00:07"},
        {"PUT", "/actions", "action_type", "InstanceStart"},
        {"PATCH", "/vm", "state", "Paused"},
        {"PUT", "/snapshot/create", "snapshot_type", "Full"},
        {"PATCH", "/vm", "state", "Resumed"},
        {"PUT", "/snapshot/load", "resume_vm", "true"},
    };
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        CHECK(report_has_request(&rep, need[i][0], need[i][1], need[i][2], need[i][3]),
              "expected request never arrived (or was refused): %s %s %s=%s", need[i][0],
              need[i][1], need[i][2] ? need[i][2] : "", need[i][3] ? need[i][3] : "");
    /* the guest's address reaches its kernel command line; the clone's
     * saved NIC is put on the clone's own TAP */
    CHECK(strstr(report_request_body(&rep, "PUT", "/boot-source"),
                 "ip=172.16.0.30::172.16.0.29:255.255.255.252::eth0:off"),
          "boot_args lack the guest's ip=: %s", report_request_body(&rep, "PUT", "/boot-source"));
    CHECK(strstr(report_request_body(&rep, "PUT", "/snapshot/load"), "\"network_overrides\":[{") &&
              strstr(report_request_body(&rep, "PUT", "/snapshot/load"), "\"iface_id\":\"eth0\"") &&
              strstr(report_request_body(&rep, "PUT", "/snapshot/load"),
                     "\"host_dev_name\":\"noid8\""),
          "the restore did not move the NIC to its own TAP: %s",
          report_request_body(&rep, "PUT", "/snapshot/load"));
    CHECK(report_count(&rep, "vsock") >= 2, "expected 2 vsock handshakes, saw %zu",
          report_count(&rep, "vsock"));
    for (size_t i = 0; i < rep.n; i++)
        if (jstreq(rep.recs[i], "kind", "vsock"))
            CHECK(jstreq(rep.recs[i], "port", "1024"), "vsock CONNECT to port %s",
                  jget(rep.recs[i], "port"));
    check_start_record(&rep, vm1, "c0ffee01");
    check_start_record(&rep, vm2, "c0ffee02");
    /* the restored VM opened its own disk and socket, not vm1's */
    restored = report_last(&rep, "restored", "noid-c0ffee02");
    CHECK(restored, "no snapshot load recorded for the restore");
    if (restored && realpath(vm2, real)) {
        _cleanup_free_ char *want_disk = path_join(real, VM_FILE_ROOTFS);
        _cleanup_free_ char *want_vsock = path_join(real, VM_FILE_VSOCK);
        CHECK(json_object_object_get_ex(restored, "drives", &drives) &&
                  json_object_array_length(drives) == 1 &&
                  strcmp(json_object_get_string(json_object_array_get_idx(drives, 0)), want_disk) ==
                      0,
              "the restore reopened %s, want %s", jget(restored, "drives"), want_disk);
        CHECK(jstreq(restored, "vsock", want_vsock), "the restore bound %s, want %s",
              jget(restored, "vsock"), want_vsock);
    }
    report_free(&rep);
}

/* A start that Firecracker refuses must fail with its fault_message and
 * leave no process behind. */
static void scenario_refused(struct env *env, struct vmm_backend *be, const char *report_path)
{
    _cleanup_free_ char *vm = make_vm_dir(env, "vm-refused");
    _cleanup_free_ char *disk = path_join(vm, VM_FILE_ROOTFS);
    _cleanup_free_ char *missing = path_join(env->root, "no-such-vmlinux");
    struct vmm_boot b = {
        .vm_dir = vm,
        .instance_id = "badc0de1",
        .kernel = missing,
        .rootfs = disk,
        .cpus = 1,
        .mem_mib = 128,
    };
    struct vmm_proc p = {0};
    struct nerr e = {0};
    struct report rep;
    json_object *start;
    int r;

    setenv("FC_CONTRACT_REPORT", report_path, 1);
    r = be->ops->start(be, &b, &p, fresh(&e));
    CHECK(r < 0, "a start with a missing kernel succeeded");
    CHECK(strstr(nerr_msg(&e), "Firecracker refused PUT /boot-source: ") != NULL,
          "unexpected error message: %s", nerr_msg(&e));
    report_load(report_path, &rep);
    start = report_last(&rep, "start", "noid-badc0de1");
    CHECK(start, "no start record for the refused VM");
    if (start) {
        json_object *pid;
        json_object_object_get_ex(start, "pid", &pid);
        CHECK(!vmm_proc_is_alive(json_object_get_int64(pid), b.instance_id),
              "a failed start left the process running");
    }
    CHECK(report_count(&rep, "refused") == 1, "expected exactly one refusal");
    CHECK(report_count(&rep, "violation") == 0, "violation in the refused scenario");
    report_free(&rep);
}

/* ------------------------------------------------------------ self-test */

struct bad_request {
    const char *why;
    const char *method;
    const char *path;
    const char *body; /* NULL: none */
};

/* Each must be answered 400 and reported as a violation. */
static const struct bad_request bad_requests[] = {
    {"integer as a string", "PUT", "/machine-config",
     "{\"vcpu_count\":\"2\",\"mem_size_mib\":128}"},
    {"unknown field", "PUT", "/machine-config",
     "{\"vcpu_count\":2,\"mem_size_mib\":128,\"vcpus\":2}"},
    {"missing required field", "PUT", "/boot-source", "{\"boot_args\":\"console=ttyS0\"}"},
    {"above maximum", "PUT", "/machine-config", "{\"vcpu_count\":64,\"mem_size_mib\":128}"},
    {"not in enum", "PUT", "/actions", "{\"action_type\":\"Reboot\"}"},
    {"deprecated field", "PUT", "/vsock",
     "{\"guest_cid\":3,\"uds_path\":\"self.sock\",\"vsock_id\":\"vsock0\"}"},
    {"path id differs from body", "PUT", "/drives/rootfs",
     "{\"drive_id\":\"data\",\"path_on_host\":\"x\",\"is_root_device\":false,"
     "\"is_read_only\":false}"},
    {"nested schema", "PUT", "/snapshot/load",
     "{\"snapshot_path\":\"s\",\"mem_backend\":{\"backend_type\":\"Disk\",\"backend_path\":\"m\"}"
     "}"},
    {"no such path", "PUT", "/machine", "{\"vcpu_count\":2}"},
    {"method not allowed", "DELETE", "/vm", NULL},
    {"post-boot call before boot", "PATCH", "/vm", "{\"state\":\"Paused\"}"},
    {"snapshot create before boot", "PUT", "/snapshot/create",
     "{\"snapshot_path\":\"s\",\"mem_file_path\":\"m\"}"},
};

static int send_raw(struct fc_api *api, const char *method, const char *path, const char *body,
                    long *status)
{
    json_object *j = NULL;
    struct nerr e = {0};
    int r;

    if (body) {
        j = json_tokener_parse(body);
        if (!j) {
            fprintf(stderr, "bad test JSON: %s\n", body);
            exit(1);
        }
    }
    r = fc_api_request(api, method, path, j, FC_API_TIMEOUT_MS, status, NULL, &e);
    json_object_put(j);
    if (r < 0)
        fprintf(stderr, "  %s %s: %s\n", method, path, nerr_msg(&e));
    return r;
}

static void self_test(struct env *env, const char *report_path)
{
    _cleanup_free_ char *dir = make_vm_dir(env, "selftest");
    char *argv[] = {env->fake,      (char *)"--api-sock",    (char *)VM_FILE_FC_SOCK,
                    (char *)"--id", (char *)"noid-selftest", NULL};
    struct spawn_opts so = {.cwd = dir, .new_session = true};
    struct fc_api *api = NULL;
    int64_t deadline = time_mono_ms() + 10000;
    struct report rep;
    size_t before, after;
    long status = 0;
    pid_t pid;
    int r;

    setenv("FC_CONTRACT_REPORT", report_path, 1);
    r = spawn_detached(argv, &so, &pid);
    CHECK(r == 0, "cannot start the fake: %s", strerror(-r));
    if (r < 0)
        return;
    for (;;) {
        _cleanup_close_ int fd = -1;
        if (unix_connect(dir, VM_FILE_FC_SOCK, &fd) == 0)
            break;
        if (time_mono_ms() > deadline) {
            CHECK(false, "the fake's API socket never appeared");
            goto out;
        }
        usleep(10000);
    }
    CHECK(fc_api_new(dir, VM_FILE_FC_SOCK, &api) == 0, "fc_api_new");
    if (!api)
        goto out;

    for (size_t i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
        const struct bad_request *b = &bad_requests[i];
        report_load(report_path, &rep);
        before = report_count(&rep, "violation");
        report_free(&rep);
        r = send_raw(api, b->method, b->path, b->body, &status);
        report_load(report_path, &rep);
        after = report_count(&rep, "violation");
        report_free(&rep);
        CHECK(r == 0 && status == 400, "self-test '%s': HTTP %ld, want 400", b->why, status);
        CHECK(after == before + 1, "self-test '%s': the fake reported no violation", b->why);
    }

    /* state machine: a snapshot load after configuring is refused ... */
    r = send_raw(api, "PUT", "/machine-config", "{\"vcpu_count\":1,\"mem_size_mib\":128}", &status);
    CHECK(r == 0 && status == 204, "a valid PUT /machine-config got HTTP %ld", status);
    report_load(report_path, &rep);
    before = report_count(&rep, "violation");
    report_free(&rep);
    r = send_raw(api, "PUT", "/snapshot/load",
                 "{\"snapshot_path\":\"s\",\"mem_backend\":{\"backend_type\":\"File\","
                 "\"backend_path\":\"m\"}}",
                 &status);
    report_load(report_path, &rep);
    after = report_count(&rep, "violation");
    CHECK(r == 0 && status == 400 && after == before + 1,
          "self-test: /snapshot/load after configuration was not flagged (HTTP %ld)", status);
    /* ... and every violation was also logged with its request */
    for (size_t i = 0; i < rep.n; i++)
        if (jstreq(rep.recs[i], "kind", "violation"))
            printf("  self-test violation (expected): %s %s: %s\n", jget(rep.recs[i], "method"),
                   jget(rep.recs[i], "path"), jget(rep.recs[i], "reason"));
    report_free(&rep);
out:
    fc_api_free(api);
    vmm_proc_kill(pid, "noid-selftest", KILL_TIMEOUT_MS);
}

/* ------------------------------------------------------------ main */

static int fake_usable(const char *fake)
{
    char *argv[] = {(char *)fake, (char *)"--version", NULL};
    char line[256];
    int r = spawn_wait(argv, NULL);

    /* 3: python3-yaml missing (the fake says so); 127: no interpreter */
    if (r == 3 || r == 127 || r == -ENOENT)
        return 77;
    if (r != 0) {
        fprintf(stderr, "%s --version failed (%d)\n", fake, r);
        return 1;
    }
    if (spawn_capture_line(argv, line, sizeof(line)) == 0)
        printf("validator: %s\n", line);
    return 0;
}

int main(int argc, char **argv)
{
    struct env env = {0};
    struct firecracker_options o = {0};
    struct vmm_backend *be = NULL;
    struct nerr e = {0};
    char tmpl[] = "/tmp/noid-fc-contract-XXXXXX";
    char fake[PATH_MAX], long_name[101];
    _cleanup_free_ char *main_report = NULL, *refused_report = NULL, *self_report = NULL;
    int r;

    if (argc != 2) {
        fprintf(stderr, "usage: %s <fake_firecracker.py>\n", argv[0]);
        return 2;
    }
    if (!realpath(argv[1], fake)) {
        fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    r = fake_usable(fake);
    if (r == 77)
        printf("SKIP: python3 with python3-yaml is needed (apt-get install python3-yaml)\n");
    if (r != 0)
        return r;

    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        return 1;
    }
    memset(long_name, 'd', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = 0;
    env.root = tmpl;
    env.fake = fake;
    env.deep = xasprintf("%s/%s", tmpl, long_name);
    env.kernel = path_join(tmpl, "vmlinux");
    env.initrd = path_join(tmpl, "initrd.img");
    main_report = path_join(tmpl, "report-main.jsonl");
    refused_report = path_join(tmpl, "report-refused.jsonl");
    self_report = path_join(tmpl, "report-selftest.jsonl");
    if (mkdir_p(env.deep, 0700) < 0)
        return 1;
    write_text(env.kernel, "not really an ELF vmlinux\n");
    write_text(env.initrd, "not really an initramfs\n");

    /* vmm_firecracker_available() would say no here (no /dev/kvm): the
     * backend itself does not need it */
    o.firecracker_bin = fake;
    r = vmm_firecracker_new(&o, &be, &e);
    CHECK(r == 0, "vmm_firecracker_new: %s", nerr_msg(&e));
    if (r < 0)
        return 1;
    CHECK(strstr(be->ops->version(be), "contract validator") != NULL, "version() = '%s'",
          be->ops->version(be));
    CHECK(!be->ops->supports_shared_memory_file(be), "Firecracker cannot share a memory file");

    printf("scenario: boot, pause, snapshot, resume, vsock, kill, restore, restart\n");
    scenario(&env, be, main_report);
    printf("scenario: a start Firecracker refuses\n");
    scenario_refused(&env, be, refused_report);
    printf("self-test: invalid requests must be caught\n");
    self_test(&env, self_report);
    vmm_firecracker_free(be);

    if (failures) {
        printf("FAILED: %d check(s); reports kept in %s\n", failures, tmpl);
        return 1;
    }
    rm_rf(tmpl);
    printf("PASS: every request matched the Firecracker API spec\n");
    free(env.deep);
    free(env.kernel);
    free(env.initrd);
    return 0;
}
