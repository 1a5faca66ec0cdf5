/* qemu.c — the QEMU backend: command line, start (cold or from a saved
 * state), pause/resume and state saving through QMP, the agent socket.
 *
 * QEMU runs with -daemonize: its first process exits only once the VM is set
 * up (status 0) or failed (non-zero, reason in vmm.log), which gives start()
 * a clean synchronous answer, and the VM itself is reparented to init so it
 * survives noid-server. */
#include "qemu.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "accel_probe.h"
#include "agent_proto.h"
#include "fsutil.h"
#include "log.h"
#include "qmp.h"
#include "spawn-util.h"
#include "timeutil.h"
#include "unixsock.h"

#define QEMU_MIGRATE_TIMEOUT_MS 120000
#define QEMU_START_TIMEOUT_MS 30000

struct qemu {
    char *bin;
    bool kvm;
    char version[128];
    char cmdline[512];
};

static struct qemu *Q(struct vmm_backend *be)
{
    return be->data;
}

/* Host TSC frequency in kHz: under TCG the guest reads the host TSC, and the
 * guest kernel's early calibration fails about 1 in 4 boots unless told. */
static long host_tsc_khz(void)
{
    _cleanup_fclose_ FILE *f = fopen("/proc/cpuinfo", "re");
    char line[256];
    double mhz;

    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "cpu MHz : %lf", &mhz) == 1 && mhz > 0)
            return (long)(mhz * 1000.0 + 0.5);
    return 0;
}

static int add(char ***argv, size_t *n, const char *fmt, ...) _printf_(3, 4);
static int add(char ***argv, size_t *n, const char *fmt, ...)
{
    va_list ap;
    char *s, **grown;
    int r;

    va_start(ap, fmt);
    r = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (r < 0)
        return -ENOMEM;
    grown = realloc(*argv, (*n + 2) * sizeof(char *));
    if (!grown) {
        free(s);
        return -ENOMEM;
    }
    *argv = grown;
    grown[(*n)++] = s;
    grown[*n] = NULL;
    return 0;
}

static void argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
}

static int build_argv(struct qemu *q, const struct vmm_boot *b, char ***ret)
{
    char **argv = NULL;
    size_t n = 0;
    int r = 0;

    r |= add(&argv, &n, "%s", q->bin);
    /* the instance id in argv lets vmm_proc_is_alive() recognise the process */
    r |= add(&argv, &n, "-name");
    r |= add(&argv, &n, "noid-%s", b->instance_id);
    r |= add(&argv, &n, "-M");
    r |= add(&argv, &n, "microvm,pit=on,rtc=on%s", b->mem_file ? ",memory-backend=mem" : "");
    r |= add(&argv, &n, "-accel");
    r |= add(&argv, &n, "%s", q->kvm ? "kvm" : "tcg");
    if (q->kvm) {
        r |= add(&argv, &n, "-cpu");
        r |= add(&argv, &n, "host");
    }
    r |= add(&argv, &n, "-smp");
    r |= add(&argv, &n, "%d", b->cpus);
    r |= add(&argv, &n, "-m");
    r |= add(&argv, &n, "%dM", b->mem_mib);
    if (b->mem_file) {
        r |= add(&argv, &n, "-object");
        r |= add(&argv, &n, "memory-backend-file,id=mem,size=%dM,mem-path=%s,share=%s",
                 b->mem_mib, b->mem_file, b->mem_shared ? "on" : "off");
    }
    r |= add(&argv, &n, "-kernel");
    r |= add(&argv, &n, "%s", b->kernel);
    if (b->initrd) {
        r |= add(&argv, &n, "-initrd");
        r |= add(&argv, &n, "%s", b->initrd);
    }
    r |= add(&argv, &n, "-append");
    r |= add(&argv, &n, "%s", q->cmdline);
    r |= add(&argv, &n, "-nodefaults");
    r |= add(&argv, &n, "-no-user-config");
    r |= add(&argv, &n, "-nographic");
    r |= add(&argv, &n, "-drive");
    r |= add(&argv, &n, "id=root,file=%s,format=raw,if=none,cache=writeback,discard=unmap",
             b->rootfs);
    r |= add(&argv, &n, "-device");
    r |= add(&argv, &n, "virtio-blk-device,drive=root");
    r |= add(&argv, &n, "-object");
    r |= add(&argv, &n, "rng-random,id=rng,filename=/dev/urandom");
    r |= add(&argv, &n, "-device");
    r |= add(&argv, &n, "virtio-rng-device,rng=rng");
    /* agent channel: virtio-serial port behind a unix socket we connect to */
    r |= add(&argv, &n, "-device");
    r |= add(&argv, &n, "virtio-serial-device,max_ports=2");
    r |= add(&argv, &n, "-chardev");
    r |= add(&argv, &n, "socket,id=agent,path=%s,server=on,wait=off", VM_FILE_AGENT_SOCK);
    r |= add(&argv, &n, "-device");
    r |= add(&argv, &n, "virtserialport,chardev=agent,name=%s", AP_SERIAL_PORT_NAME);
    /* serial console: output always lands in serial.log; input via the socket */
    r |= add(&argv, &n, "-chardev");
    r |= add(&argv, &n, "socket,id=con,path=%s,server=on,wait=off,logfile=%s,logappend=on",
             VM_FILE_CONSOLE_SOCK, VM_FILE_SERIAL_LOG);
    r |= add(&argv, &n, "-serial");
    r |= add(&argv, &n, "chardev:con");
    r |= add(&argv, &n, "-qmp");
    r |= add(&argv, &n, "unix:%s,server=on,wait=off", VM_FILE_QMP_SOCK);
    if (b->restore_state) {
        r |= add(&argv, &n, "-incoming");
        r |= add(&argv, &n, "defer");
    }
    r |= add(&argv, &n, "-daemonize");
    r |= add(&argv, &n, "-pidfile");
    r |= add(&argv, &n, "%s", VM_FILE_QEMU_PID);
    if (r) {
        argv_free(argv);
        return -ENOMEM;
    }
    *ret = argv;
    return 0;
}

static int read_pidfile(const char *vm_dir, int64_t *ret)
{
    _cleanup_free_ char *path = path_join(vm_dir, VM_FILE_QEMU_PID);
    _cleanup_free_ char *text = NULL;
    long long pid;
    int r;

    if (!path)
        return -ENOMEM;
    r = read_file(path, 64, &text, NULL);
    if (r < 0)
        return r;
    if (sscanf(text, "%lld", &pid) != 1 || pid <= 0)
        return -EINVAL;
    *ret = pid;
    return 0;
}

static int set_capability(struct qmp *m, const char *cap, bool on, struct nerr *e)
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

static int query_string(struct qmp *m, const char *cmd, const char *key, char *out, size_t size,
                        struct nerr *e)
{
    json_object *ret = NULL, *v;
    int r = qmp_execute(m, cmd, NULL, -1, &ret, e);

    if (r < 0)
        return r;
    out[0] = 0;
    if (json_object_object_get_ex(ret, key, &v))
        snprintf(out, size, "%s", json_object_get_string(v));
    json_object_put(ret);
    return 0;
}

/* Feed the saved state into a QEMU started with -incoming defer, wait until
 * it is loaded, and let the guest run. */
static int qemu_load_state(const struct vmm_boot *b, struct nerr *e)
{
    _cleanup_close_ int fd = -1;
    struct qmp *m = NULL;
    char status[64];
    int64_t deadline = time_mono_ms() + QEMU_MIGRATE_TIMEOUT_MS;
    json_object *args;
    int r;

    fd = open(b->restore_state, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return nerr_set(e, -errno, "cannot open saved state: %s", strerror(errno));
    r = qmp_open(b->vm_dir, &m, e);
    if (r < 0)
        return r;
    if (b->restore_ignore_shared) {
        r = set_capability(m, "x-ignore-shared", true, e);
        if (r < 0)
            goto out;
    }
    args = json_object_new_object();
    json_object_object_add(args, "fdname", json_object_new_string("noidstate"));
    r = qmp_execute(m, "getfd", args, fd, NULL, e);
    if (r < 0)
        goto out;
    args = json_object_new_object();
    json_object_object_add(args, "uri", json_object_new_string("fd:noidstate"));
    r = qmp_execute(m, "migrate-incoming", args, -1, NULL, e);
    if (r < 0)
        goto out;
    for (;;) {
        r = query_string(m, "query-status", "status", status, sizeof(status), e);
        if (r < 0)
            goto out;
        if (strcmp(status, "inmigrate") != 0)
            break;
        if (time_mono_ms() > deadline) {
            r = nerr_set(e, -ETIMEDOUT, "QEMU did not finish loading the saved state");
            goto out;
        }
        time_sleep_ms(2);
    }
    if (strcmp(status, "paused") == 0 || strcmp(status, "postmigrate") == 0 ||
        strcmp(status, "prelaunch") == 0) {
        r = qmp_execute(m, "cont", NULL, -1, NULL, e);
        if (r < 0)
            goto out;
    } else if (strcmp(status, "running") != 0) {
        r = nerr_set(e, -EIO, "QEMU is in state '%s' after loading the saved state", status);
        goto out;
    }
    r = 0;
out:
    qmp_close(m);
    return r;
}

static int qemu_start(struct vmm_backend *be, const struct vmm_boot *b, struct vmm_proc *ret,
                      struct nerr *e)
{
    struct qemu *q = Q(be);
    _cleanup_free_ char *log_path = path_join(b->vm_dir, VM_FILE_VMM_LOG);
    struct spawn_opts so = {.cwd = b->vm_dir, .stdout_path = log_path, .new_session = true};
    char **argv = NULL;
    char tail[256];
    int64_t pid = 0;
    int r;

    if (!log_path)
        return -ENOMEM;
    r = build_argv(q, b, &argv);
    if (r < 0)
        return r;
    r = spawn_wait(argv, &so);
    argv_free(argv);
    if (r != 0) {
        vmm_log_tail(b->vm_dir, tail, sizeof(tail));
        if (r < 0)
            return nerr_set(e, r, "cannot run %s: %s", q->bin, strerror(-r));
        return nerr_set(e, -EIO, "QEMU failed to start (exit %d): %s", r,
                        tail[0] ? tail : "no message");
    }
    r = read_pidfile(b->vm_dir, &pid);
    if (r < 0) {
        /* it runs, but we cannot track it: find it by its instance id and stop it */
        char needle[64];
        snprintf(needle, sizeof(needle), "noid-%s", b->instance_id);
        vmm_proc_kill_matching(needle, 5000);
        return nerr_set(e, r, "QEMU started but its pid file is unreadable: %s", strerror(-r));
    }
    if (b->restore_state) {
        r = qemu_load_state(b, e);
        if (r < 0) {
            vmm_proc_kill(pid, b->instance_id, 5000);
            return r;
        }
    }
    ret->pid = pid;
    return 0;
}

static int simple_command(const char *vm_dir, const char *cmd, struct nerr *e)
{
    struct qmp *m = NULL;
    int r = qmp_open(vm_dir, &m, e);

    if (r < 0)
        return r;
    r = qmp_execute(m, cmd, NULL, -1, NULL, e);
    qmp_close(m);
    return r;
}

static int qemu_pause(struct vmm_backend *be, const char *vm_dir, struct nerr *e)
{
    return simple_command(vm_dir, "stop", e);
}

static int qemu_resume(struct vmm_backend *be, const char *vm_dir, struct nerr *e)
{
    return simple_command(vm_dir, "cont", e);
}

static int qemu_save_state(struct vmm_backend *be, const char *vm_dir, const char *snap_dir,
                           bool *ret_mem_saved, struct nerr *e)
{
    _cleanup_free_ char *state_path = path_join(snap_dir, VM_FILE_VMSTATE);
    _cleanup_close_ int fd = -1;
    struct qmp *m = NULL;
    int64_t deadline = time_mono_ms() + QEMU_MIGRATE_TIMEOUT_MS;
    json_object *args, *params;
    char status[64];
    int r;

    if (!state_path)
        return -ENOMEM;
    *ret_mem_saved = false;
    fd = open(state_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return nerr_set(e, -errno, "cannot create %s: %s", state_path, strerror(errno));
    r = qmp_open(vm_dir, &m, e);
    if (r < 0)
        return r;
    /* RAM in a shared memory file is the caller's to copy; private or
     * anonymous RAM is not "shared" and still goes into the stream. */
    r = set_capability(m, "x-ignore-shared", true, e);
    if (r < 0)
        goto out;
    /* the default bandwidth cap would throttle a save to a local file */
    params = json_object_new_object();
    json_object_object_add(params, "max-bandwidth", json_object_new_int64(INT64_MAX / 2));
    r = qmp_execute(m, "migrate-set-parameters", params, -1, NULL, e);
    if (r < 0)
        goto out;
    args = json_object_new_object();
    json_object_object_add(args, "fdname", json_object_new_string("noidsave"));
    r = qmp_execute(m, "getfd", args, fd, NULL, e);
    if (r < 0)
        goto out;
    args = json_object_new_object();
    json_object_object_add(args, "uri", json_object_new_string("fd:noidsave"));
    r = qmp_execute(m, "migrate", args, -1, NULL, e);
    if (r < 0)
        goto out;
    for (;;) {
        r = query_string(m, "query-migrate", "status", status, sizeof(status), e);
        if (r < 0)
            goto out;
        if (strcmp(status, "completed") == 0)
            break;
        if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
            json_object *ret = NULL, *v;
            char why[160] = "";
            if (qmp_execute(m, "query-migrate", NULL, -1, &ret, NULL) == 0 &&
                json_object_object_get_ex(ret, "error-desc", &v))
                snprintf(why, sizeof(why), ": %s", json_object_get_string(v));
            json_object_put(ret);
            r = nerr_set(e, -EIO, "saving the VM state failed%s", why);
            goto out;
        }
        if (time_mono_ms() > deadline) {
            qmp_execute(m, "migrate_cancel", NULL, -1, NULL, NULL);
            r = nerr_set(e, -ETIMEDOUT, "saving the VM state timed out");
            goto out;
        }
        time_sleep_ms(1);
    }
    if (fsync(fd) < 0 && errno != EINVAL) {
        r = nerr_set(e, -errno, "cannot flush the saved state: %s", strerror(errno));
        goto out;
    }
    r = 0;
out:
    qmp_close(m);
    return r;
}

static int qemu_agent_connect(struct vmm_backend *be, const char *vm_dir, int *ret_fd,
                              struct nerr *e)
{
    int r = unix_connect(vm_dir, VM_FILE_AGENT_SOCK, ret_fd);

    if (r < 0)
        return nerr_set(e, r, "cannot connect to the agent socket: %s", strerror(-r));
    return 0;
}

static bool qemu_supports_shared_file(struct vmm_backend *be)
{
    return true;
}

static const char *qemu_version(struct vmm_backend *be)
{
    return Q(be)->version;
}

static const struct vmm_ops qemu_ops = {
    .name = "qemu",
    .start = qemu_start,
    .pause = qemu_pause,
    .resume = qemu_resume,
    .save_state = qemu_save_state,
    .agent_connect = qemu_agent_connect,
    .supports_shared_memory_file = qemu_supports_shared_file,
    .version = qemu_version,
};

int vmm_qemu_new(const struct qemu_options *o, struct vmm_backend **ret, struct nerr *e)
{
    struct vmm_backend *be = calloc(1, sizeof(*be));
    struct qemu *q = calloc(1, sizeof(*q));
    char *vargv[] = {(char *)o->qemu_bin, (char *)"--version", NULL};
    long khz;
    int r;

    if (!be || !q) {
        r = -ENOMEM;
        goto fail;
    }
    be->ops = &qemu_ops;
    be->data = q;
    q->bin = strdup(o->qemu_bin);
    if (!q->bin) {
        r = -ENOMEM;
        goto fail;
    }
    r = spawn_capture_line(vargv, q->version, sizeof(q->version));
    if (r < 0) {
        r = nerr_set(e, -ENOENT, "cannot run '%s --version': is qemu-system-x86 installed?",
                     o->qemu_bin);
        goto fail;
    }
    r = accel_choose(o, &q->kvm, e);
    if (r < 0)
        goto fail;
    khz = host_tsc_khz();
    snprintf(q->cmdline, sizeof(q->cmdline),
             "console=ttyS0 quiet panic=-1 8250.nr_uarts=1 cryptomgr.notests mitigations=off "
             "audit=0 nokaslr random.trust_cpu=on");
    if (!q->kvm && khz > 0) {
        size_t n = strlen(q->cmdline);
        snprintf(q->cmdline + n, sizeof(q->cmdline) - n, " tsc_early_khz=%ld", khz);
    }
    *ret = be;
    return 0;
fail:
    if (q)
        free(q->bin);
    free(q);
    free(be);
    return r;
}

void vmm_qemu_free(struct vmm_backend *be)
{
    if (!be)
        return;
    free(Q(be)->bin);
    free(be->data);
    free(be);
}

bool vmm_qemu_uses_kvm(struct vmm_backend *be)
{
    return Q(be)->kvm;
}
