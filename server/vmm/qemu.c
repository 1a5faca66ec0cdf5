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
#include <sys/statvfs.h>
#include <time.h>

#include "accel_probe.h"
#include "agent_proto.h"
#include "fsutil.h"
#include "log.h"
#include "qemu-internal.h"
#include "qemu-migrate.h"
#include "qmp.h"
#include "vmm-save.h"
#include "spawn-util.h"
#include "timeutil.h"
#include "unixsock.h"

/* seccomp filter: what works with -daemonize and -runas on QEMU 7.2
 * (spawn=deny forbids the daemonizing fork, elevateprivileges=deny the
 * setuid of -runas). */
#define QEMU_SANDBOX_OPTS "on,obsolete=deny,resourcecontrol=deny"

struct qemu {
    char *bin;
    bool kvm;
    bool sandbox; /* QEMU supports -sandbox (probed once) */
    char *run_as; /* -runas user, or NULL */
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

int qemu_argv_add(char ***argv, size_t *n, const char *fmt, ...)
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

void qemu_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
}

/* Whether bin accepts -sandbox QEMU_SANDBOX_OPTS (built with seccomp). */
static bool qemu_probe_sandbox(const char *bin)
{
    /* options are parsed in order: a QEMU without seccomp fails on -sandbox
     * before it gets to -version */
    char *argv[] = {(char *)bin, (char *)"-sandbox", (char *)QEMU_SANDBOX_OPTS,
                    (char *)"-version", NULL};

    return spawn_wait(argv, NULL) == 0;
}

/* -sandbox and -runas as configured. */
static int qemu_add_confinement(struct qemu *q, char ***argv, size_t *n)
{
    int r = 0;

    /* seccomp: no obsolete or resource-control system calls */
    if (q->sandbox) {
        r |= qemu_argv_add(argv, n, "-sandbox");
        r |= qemu_argv_add(argv, n, "%s", QEMU_SANDBOX_OPTS);
    }
    /* QEMU opens every file it needs (disk, RAM file, sockets, log) before
     * it drops to this user, so the VM's files stay readable by the server
     * alone and a compromised QEMU cannot open another VM's */
    if (q->run_as) {
        r |= qemu_argv_add(argv, n, "-runas");
        r |= qemu_argv_add(argv, n, "%s", q->run_as);
    }
    return r;
}

static int build_argv(struct qemu *q, const struct vmm_boot *b, char ***ret)
{
    char **argv = NULL;
    size_t n = 0;
    int r = 0;

    r |= qemu_argv_add(&argv, &n, "%s", q->bin);
    /* the instance id in argv lets vmm_proc_is_alive() recognise the process */
    r |= qemu_argv_add(&argv, &n, "-name");
    r |= qemu_argv_add(&argv, &n, "noid-%s", b->instance_id);
    r |= qemu_argv_add(&argv, &n, "-M");
    r |= qemu_argv_add(&argv, &n, "microvm,pit=on,rtc=on%s",
             b->ram != VMM_RAM_NONE ? ",memory-backend=" QEMU_RAM_BACKEND_ID : "");
    r |= qemu_argv_add(&argv, &n, "-accel");
    r |= qemu_argv_add(&argv, &n, "%s", q->kvm ? "kvm" : "tcg");
    if (q->kvm) {
        r |= qemu_argv_add(&argv, &n, "-cpu");
        r |= qemu_argv_add(&argv, &n, "host");
    }
    r |= qemu_argv_add(&argv, &n, "-smp");
    r |= qemu_argv_add(&argv, &n, "%d", b->cpus);
    r |= qemu_argv_add(&argv, &n, "-m");
    r |= qemu_argv_add(&argv, &n, "%dM", b->mem_mib);
    switch (b->ram) {
    case VMM_RAM_ANON:
        r |= qemu_argv_add(&argv, &n, "-object");
        r |= qemu_argv_add(&argv, &n, "memory-backend-ram,id=" QEMU_RAM_BACKEND_ID ",size=%dM", b->mem_mib);
        break;
    case VMM_RAM_SHARED_FILE:
    case VMM_RAM_PRIVATE_FILE:
        r |= qemu_argv_add(&argv, &n, "-object");
        r |= qemu_argv_add(&argv, &n, "memory-backend-file,id=" QEMU_RAM_BACKEND_ID ",size=%dM,mem-path=%s,share=%s",
                 b->mem_mib, b->mem_file, b->ram == VMM_RAM_SHARED_FILE ? "on" : "off");
        break;
    case VMM_RAM_NONE:
    default:
        break;
    }
    r |= qemu_argv_add(&argv, &n, "-kernel");
    r |= qemu_argv_add(&argv, &n, "%s", b->kernel);
    if (b->initrd) {
        r |= qemu_argv_add(&argv, &n, "-initrd");
        r |= qemu_argv_add(&argv, &n, "%s", b->initrd);
    }
    r |= qemu_argv_add(&argv, &n, "-append");
    r |= qemu_argv_add(&argv, &n, "%s%s%s", q->cmdline, b->cmdline_extra ? " " : "",
                       b->cmdline_extra ? b->cmdline_extra : "");
    r |= qemu_argv_add(&argv, &n, "-nodefaults");
    r |= qemu_argv_add(&argv, &n, "-no-user-config");
    r |= qemu_argv_add(&argv, &n, "-nographic");
    /* auto-read-only=off: the disk stays open read-write as QEMU opened
     * it (as root, before -runas).  With the -drive default, QEMU reopens
     * its disk read-only when a save deactivates it and read-write when the
     * VM resumes, by path, as vmm_user, who cannot open anything under the
     * data dir. */
    r |= qemu_argv_add(&argv, &n, "-drive");
    r |= qemu_argv_add(&argv, &n,
                       "id=root,file=%s,format=raw,if=none,cache=writeback,discard=unmap,"
                       "auto-read-only=off",
                       b->rootfs);
    r |= qemu_argv_add(&argv, &n, "-device");
    r |= qemu_argv_add(&argv, &n, "virtio-blk-device,drive=root");
    r |= qemu_argv_add(&argv, &n, "-object");
    r |= qemu_argv_add(&argv, &n, "rng-random,id=rng,filename=/dev/urandom");
    r |= qemu_argv_add(&argv, &n, "-device");
    r |= qemu_argv_add(&argv, &n, "virtio-rng-device,rng=rng");
    /* agent channel: virtio-serial port behind a unix socket we connect to */
    r |= qemu_argv_add(&argv, &n, "-device");
    r |= qemu_argv_add(&argv, &n, "virtio-serial-device,max_ports=2");
    r |= qemu_argv_add(&argv, &n, "-chardev");
    r |= qemu_argv_add(&argv, &n, "socket,id=agent,path=%s,server=on,wait=off", VM_FILE_AGENT_SOCK);
    r |= qemu_argv_add(&argv, &n, "-device");
    r |= qemu_argv_add(&argv, &n, "virtserialport,chardev=agent,name=%s", AP_SERIAL_PORT_NAME);
    /* the NIC comes after the devices VMs had before networking, so their
     * saved states still line up with the devices a restore creates */
    if (b->nic && b->tap) {
        r |= qemu_argv_add(&argv, &n, "-netdev");
        r |= qemu_argv_add(&argv, &n, "tap,id=" QEMU_NETDEV_ID ",ifname=%s,script=no,downscript=no",
                           b->tap);
        r |= qemu_argv_add(&argv, &n, "-device");
        r |= qemu_argv_add(&argv, &n, "virtio-net-device,id=nic0,mac=%s,netdev=" QEMU_NETDEV_ID,
                           b->mac);
    } else if (b->nic) {
        r |= qemu_argv_add(&argv, &n, "-device");
        r |= qemu_argv_add(&argv, &n, "virtio-net-device,id=nic0,mac=%s", b->mac);
    }
    /* serial console: output always lands in serial.log; input via the socket */
    r |= qemu_argv_add(&argv, &n, "-chardev");
    r |= qemu_argv_add(&argv, &n, "socket,id=con,path=%s,server=on,wait=off,logfile=%s,logappend=on",
             VM_FILE_CONSOLE_SOCK, VM_FILE_SERIAL_LOG);
    r |= qemu_argv_add(&argv, &n, "-serial");
    r |= qemu_argv_add(&argv, &n, "chardev:con");
    r |= qemu_argv_add(&argv, &n, "-qmp");
    r |= qemu_argv_add(&argv, &n, "unix:%s,server=on,wait=off", VM_FILE_QMP_SOCK);
    if (b->restore_state) {
        r |= qemu_argv_add(&argv, &n, "-incoming");
        r |= qemu_argv_add(&argv, &n, "defer");
    }
    r |= qemu_add_confinement(q, &argv, &n);
    /* after -daemonize QEMU's stderr goes to /dev/null unless -D names a
     * log file: the reasons it gives for failing later (a state it cannot
     * load, say) must land in vmm.log */
    r |= qemu_argv_add(&argv, &n, "-D");
    r |= qemu_argv_add(&argv, &n, "%s/%s", b->vm_dir, VM_FILE_VMM_LOG);
    r |= qemu_argv_add(&argv, &n, "-daemonize");
    r |= qemu_argv_add(&argv, &n, "-pidfile");
    r |= qemu_argv_add(&argv, &n, "%s", VM_FILE_QEMU_PID);
    if (r) {
        qemu_argv_free(argv);
        return -ENOMEM;
    }
    *ret = argv;
    return 0;
}

int qemu_read_pidfile(const char *vm_dir, int64_t *ret)
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

/* Feed the saved state into a QEMU started with -incoming defer, wait until
 * it is loaded, and let the guest run. */
static int qemu_load_state(const struct vmm_boot *b, struct nerr *e)
{
    _cleanup_close_ int fd = -1;
    struct qmp *m = NULL;
    char status[64];
    int64_t deadline = time_mono_ms() + QEMU_MIGRATE_TIMEOUT_MS;
    int r;

    fd = open(b->restore_state, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return nerr_set(e, -errno, "cannot open saved state: %s", strerror(errno));
    r = qmp_open(b->vm_dir, &m, e);
    if (r < 0)
        return r;
    /* exactly the capability the state was saved with: QEMU refuses a
     * stream whose x-ignore-shared differs */
    r = qemu_mig_set_cap(m, "x-ignore-shared", b->restore_ignore_shared, e);
    if (r < 0)
        goto out;
    r = qemu_mig_start_fd(m, fd, "noidstate", true, e);
    if (r < 0)
        goto out;
    r = qemu_wait_loaded(m, "QEMU", deadline, status, sizeof(status), e);
    if (r < 0)
        goto out;
    if (strcmp(status, "paused") == 0 || strcmp(status, "postmigrate") == 0 ||
        strcmp(status, "prelaunch") == 0) {
        r = qmp_execute(m, "cont", NULL, -1, NULL, e);
        if (r < 0)
            goto out;
    } else if (strcmp(status, "running") != 0) {
        r = nerr_set(e, -EIO, "QEMU is in an unexpected state after loading the saved state");
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
    char tail[300];
    int64_t pid = 0;
    int r;

    if (!log_path)
        return -ENOMEM;
    r = build_argv(q, b, &argv);
    if (r < 0)
        return r;
    r = spawn_wait(argv, &so);
    qemu_argv_free(argv);
    if (r != 0) {
        vmm_log_tail(b->vm_dir, tail, sizeof(tail));
        if (r < 0)
            return nerr_set(e, r, "cannot run %s: %s", q->bin, strerror(-r));
        return nerr_set(e, -EIO, "QEMU failed to start (exit %d): %s", r,
                        tail[0] ? tail : "no message");
    }
    r = qemu_read_pidfile(b->vm_dir, &pid);
    if (r < 0) {
        /* it runs, but we cannot track it: find it by its instance id and stop it */
        vmm_proc_kill_instance(b->instance_id, 5000);
        return nerr_set(e, r, "QEMU started but its pid file is unreadable: %s", strerror(-r));
    }
    if (b->restore_state) {
        r = qemu_load_state(b, e);
        if (r < 0) {
            vmm_proc_kill(pid, b->instance_id, 5000);
            /* QEMU's own reason (in vmm.log) says far more than a broken
             * QMP connection */
            vmm_log_tail(b->vm_dir, tail, sizeof(tail));
            if (tail[0])
                return nerr_reset(e, r, "QEMU could not load the saved state: %s", tail);
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
                           bool ignore_shared, bool *ret_mem_saved, struct nerr *e)
{
    _cleanup_free_ char *state_path = path_join(snap_dir, VM_FILE_VMSTATE);
    _cleanup_close_ int fd = -1;
    struct qmp *m = NULL;
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
    r = qemu_mig_save_prepare(m, fd, ignore_shared, e);
    if (r >= 0)
        r = qemu_mig_save_run(m, time_mono_ms() + QEMU_MIGRATE_TIMEOUT_MS, e);
    qmp_close(m);
    return r;
}

/* Completed writes, discards and failed attempts of both (a failed write
 * may have written part of its data) of the VM's disk. */
static int query_disk_writes(struct qmp *m, uint64_t *ret, struct nerr *e)
{
    static const char *const keys[] = {"wr_operations", "unmap_operations",
                                       "failed_wr_operations", "failed_unmap_operations"};
    json_object *list = NULL, *stats;
    uint64_t sum = 0;
    int r;

    r = qmp_execute(m, "query-blockstats", NULL, -1, &list, e);
    if (r < 0)
        return r;
    r = -EPROTO;
    for (size_t i = 0; json_object_is_type(list, json_type_array) &&
                       i < json_object_array_length(list);
         i++) {
        json_object *dev = json_object_array_get_idx(list, i), *v;
        if (!json_object_object_get_ex(dev, "device", &v) ||
            strcmp(json_object_get_string(v), "root") != 0 ||
            !json_object_object_get_ex(dev, "stats", &stats))
            continue;
        for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
            if (json_object_object_get_ex(stats, keys[k], &v))
                sum += (uint64_t)json_object_get_int64(v);
        *ret = sum;
        r = 0;
        break;
    }
    json_object_put(list);
    if (r < 0)
        return nerr_set(e, r, "query-blockstats: no statistics for the VM's disk");
    return 0;
}

static int qemu_disk_write_count(struct vmm_backend *be, const char *vm_dir, uint64_t *ret,
                                 struct nerr *e)
{
    struct qmp *m = NULL;
    int r = qmp_open(vm_dir, &m, e);

    if (r >= 0)
        r = query_disk_writes(m, ret, e);
    qmp_close(m);
    return r;
}

/* QEMU reports a save into a full file system as a failed migration:
 * say what it is (the API maps -ENOSPC to 507). */
static int explain_full_disk(int fd, int r, struct nerr *e)
{
    struct statvfs sv;

    if (fstatvfs(fd, &sv) == 0 && sv.f_bavail == 0)
        return nerr_reset(e, -ENOSPC, "cannot save the VM state: No space left on device");
    return r;
}

/* After a failed checkpoint pause: the VM must run again.  A fresh QMP
 * session, since the failure may have been the session itself (QMP replies
 * carry no ids: after a timeout the old one cannot be trusted). */
static void resume_after_failure(const char *vm_dir)
{
    struct qmp *m = NULL;

    if (qmp_open(vm_dir, &m, NULL) < 0) {
        log_warn("cannot reach QEMU in %s to resume it after a failed checkpoint", vm_dir);
        return;
    }
    qemu_mig_abort_and_resume(m);
    qmp_close(m);
}

/* The run states a VM stopped by us (or by a save) can be in. */
static bool is_stopped(const char *status)
{
    static const char *const stopped[] = {"paused",    "postmigrate", "finish-migrate",
                                          "prelaunch", "suspended",   NULL};

    for (size_t i = 0; stopped[i]; i++)
        if (strcmp(status, stopped[i]) == 0)
            return true;
    return false;
}

/* vmm_ops.recover.  The run state is read before a save is aborted: the
 * abort resumes the VM, and afterwards it would look as if it had never
 * been paused. */
static int qemu_recover(struct vmm_backend *be, const char *vm_dir, bool *ret_resumed,
                        struct nerr *e)
{
    struct qemu_mig_info mi;
    struct qmp *m = NULL;
    char status[32];
    int r;

    *ret_resumed = false;
    r = qmp_open(vm_dir, &m, e);
    if (r < 0)
        return r;
    r = qemu_mig_query(m, &mi, e);
    if (r >= 0)
        r = qemu_query_status(m, status, sizeof(status), e);
    if (r >= 0 && mi.status[0] && strcmp(mi.status, "completed") != 0 &&
        strcmp(mi.status, "failed") != 0 && strcmp(mi.status, "cancelled") != 0) {
        /* a save whose server died: its writer is gone.  The abort resumes
         * the VM if it is not running */
        qemu_mig_abort_and_resume(m);
        *ret_resumed = strcmp(status, "running") != 0;
        r = qemu_query_status(m, status, sizeof(status), e);
    }
    /* still (or simply) stopped: resume it ourselves */
    if (r >= 0 && is_stopped(status)) {
        r = qmp_execute(m, "cont", NULL, -1, NULL, e);
        *ret_resumed = r >= 0;
    }
    qmp_close(m);
    return r;
}

/* The pause of a checkpoint in one QMP session, with everything that does
 * not need the VM stopped (capabilities, the file's descriptor) done before
 * the stop: the pause is the stop, the save and the resume. */
static int qemu_checkpoint(struct vmm_backend *be, const char *vm_dir, struct vmm_save *s,
                           struct nerr *e)
{
    struct qmp *m = NULL;
    struct pause_work w;
    uint64_t writes = 0;
    bool stop_sent = false, fd_given = false, have;
    int64_t t0 = 0, t_saved;
    int r;

    if (s->state_fd < 0)
        return vmm_checkpoint_generic(be, vm_dir, s, e);
    s->mem_saved = false;
    r = qmp_open(vm_dir, &m, e);
    if (r < 0)
        return r;
    r = qemu_mig_save_prepare(m, s->state_fd, s->ignore_shared, e);
    fd_given = r >= 0;
    if (r < 0)
        goto out;
    t0 = time_mono_ns();
    stop_sent = true; /* whatever the answer: it may have stopped */
    r = qmp_execute(m, "stop", NULL, -1, NULL, e);
    if (r < 0)
        goto out;
    have = query_disk_writes(m, &writes, NULL) >= 0;
    vmm_pause_work_start(&w, s, writes, have);
    r = qemu_mig_save_run(m, time_mono_ms() + QEMU_MIGRATE_TIMEOUT_MS, e);
    fd_given = false; /* a started migration owns and closes it */
    if (r < 0)
        r = explain_full_disk(s->state_fd, r, e);
    t_saved = time_mono_ns();
    r = vmm_pause_work_join(&w, r, e);
    log_debug("checkpoint pause: state saved after %.1f ms, side work done %.1f ms later",
              (double)(t_saved - t0) / 1e6, (double)(time_mono_ns() - t_saved) / 1e6);
    if (r >= 0)
        r = qmp_execute(m, "cont", NULL, -1, NULL, e);
out:
    if (r < 0 && fd_given) {
        /* QEMU keeps a descriptor it was given until told: it would hold
         * the (preallocated) stage file */
        json_object *args = json_object_new_object();
        json_object_object_add(args, "fdname", json_object_new_string(QEMU_MIG_SAVE_FD));
        qmp_execute(m, "closefd", args, -1, NULL, NULL);
    }
    qmp_close(m);
    if (r < 0 && stop_sent)
        resume_after_failure(vm_dir);
    if (t0)
        s->pause_ns = time_mono_ns() - t0;
    return r;
}

/* The inverse of build_argv's RAM options. */
static int qemu_ram_of(struct vmm_backend *be, int64_t pid, enum vmm_ram *ret, char *path,
                       size_t path_size)
{
    _cleanup_free_ char *buf = NULL;
    size_t len = 0;
    const char *m;
    int r = vmm_proc_cmdline(pid, &buf, &len);

    if (r < 0)
        return r;
    *ret = VMM_RAM_NONE;
    path[0] = '\0';
    m = vmm_cmdline_arg(buf, len, "-M");
    if (!m || !strstr(m, "memory-backend=" QEMU_RAM_BACKEND_ID))
        return 0;
    for (const char *a = buf; a < buf + len; a += strlen(a) + 1) {
        const char *p;
        if (strncmp(a, "memory-backend-", 15) != 0 || !strstr(a, "id=" QEMU_RAM_BACKEND_ID))
            continue;
        p = strstr(a, "mem-path=");
        if (!p) {
            *ret = VMM_RAM_ANON;
            return 0;
        }
        p += 9;
        snprintf(path, path_size, "%.*s", (int)strcspn(p, ","), p);
        *ret = strstr(a, "share=on") ? VMM_RAM_SHARED_FILE : VMM_RAM_PRIVATE_FILE;
        return 0;
    }
    return 0;
}

static int qemu_agent_connect(struct vmm_backend *be, const char *vm_dir, int *ret_fd,
                              struct nerr *e)
{
    int r = unix_connect(vm_dir, VM_FILE_AGENT_SOCK, ret_fd);

    if (r < 0)
        return nerr_set(e, r, "cannot connect to the agent socket: %s", strerror(-r));
    return 0;
}

/* QEMU's console socket takes one client at a time; the engine's console
 * hub is that client.  Output reaches serial.log whether or not anyone is
 * connected (the chardev's logfile). */
static int qemu_console_connect(struct vmm_backend *be, const char *vm_dir, int *ret_fd,
                                struct nerr *e)
{
    int r = unix_connect(vm_dir, VM_FILE_CONSOLE_SOCK, ret_fd);

    if (r < 0)
        return nerr_set(e, r, "cannot connect to the console socket: %s", strerror(-r));
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
    .convert_state = qemu_convert_state,
    .recover = qemu_recover,
    .checkpoint = qemu_checkpoint,
    .disk_write_count = qemu_disk_write_count,
    .ram_of = qemu_ram_of,
    .state_ram_block = qemu_state_ram_block,
    .agent_connect = qemu_agent_connect,
    .console_connect = qemu_console_connect,
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
    if (o->run_as && o->run_as[0]) {
        q->run_as = strdup(o->run_as);
        if (!q->run_as) {
            r = -ENOMEM;
            goto fail;
        }
    }
    q->sandbox = qemu_probe_sandbox(q->bin);
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
    if (q) {
        free(q->bin);
        free(q->run_as);
    }
    free(q);
    free(be);
    return r;
}

void vmm_qemu_free(struct vmm_backend *be)
{
    if (!be)
        return;
    free(Q(be)->bin);
    free(Q(be)->run_as);
    free(be->data);
    free(be);
}

bool vmm_qemu_uses_kvm(struct vmm_backend *be)
{
    return Q(be)->kvm;
}

bool vmm_qemu_sandboxed(struct vmm_backend *be)
{
    return Q(be)->sandbox;
}
