/* qemu-convert.c — turning a state saved with the guest's RAM inside it
 * into a state without RAM plus a memory file, and reading which RAM block
 * such a state was saved from (qemu_state_ram_block).
 *
 * Why convert.  A VM whose RAM is a private copy-on-write view of a
 * template (made from the golden snapshot or cloned from a checkpoint) or
 * anonymous memory is saved the QEMU way: paused, all RAM streamed into the
 * state file.  Loading such a state costs a full copy of the RAM per
 * restore (~0.6 s for 256 MiB under TCG) and clones of it share nothing.
 * A state without RAM plus a memory file restores in ~0.2 s and clones map
 * the memory file copy-on-write, sharing every page they do not write.  So
 * once the VM runs again, a helper QEMU started from the VM's own command
 * line (same devices, same RAM block name) with its RAM a shared mapping of
 * the memory file and never running the guest (-S) loads the state, then
 * saves its devices with x-ignore-shared.  It reads the VM's disk
 * read-only, without image locking, and never runs the guest, so it never
 * touches it.  The helper is named noid-<instance id>, so a crash of the
 * server leaves a process the reconcile can find and stop.
 *
 * Why not save live (pre-copy while the guest runs, pausing it only for the
 * last dirty pages): under TCG, QEMU 7.2's dirty tracking misses guest
 * writes — guests restored from such saves crashed in about half of our
 * trials with a guest writing memory — so every save here pauses the VM
 * for the whole copy. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fsutil.h"
#include "qemu-internal.h"
#include "qemu-migrate.h"
#include "qmp.h"
#include "spawn-util.h"
#include "test_hook.h"
#include "timeutil.h"


/* The VM's running command line, one string per argument. */
static int read_vm_argv(const char *vm_dir, char **ret_buf, size_t *ret_len, struct nerr *e)
{
    int64_t pid;
    int r = qemu_read_pidfile(vm_dir, &pid);

    if (r < 0)
        return nerr_set(e, r, "cannot read the VM's QEMU pid: %s", strerror(-r));
    r = vmm_proc_cmdline(pid, ret_buf, ret_len);
    if (r < 0 || *ret_len == 0)
        return nerr_set(e, r < 0 ? r : -ESRCH, "cannot read the VM's QEMU command line");
    return 0;
}

/* "size=256M" out of a memory backend's options. */
static void option_value(const char *opts, const char *key, char *out, size_t size)
{
    size_t klen = strlen(key);

    out[0] = 0;
    for (const char *p = opts; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
            snprintf(out, size, "%.*s", (int)strcspn(p + klen + 1, ","), p + klen + 1);
            return;
        }
}

/* The helper's command line: the VM's own, with another name, RAM in a
 * shared mem_out, the disk read-only and unlocked, its log in work_dir,
 * never started (-S) and waiting for an incoming migration. */
static int helper_argv(const char *vm_dir, const struct vmm_convert *c, char ***ret,
                       struct nerr *e)
{
    _cleanup_free_ char *buf = NULL;
    char **argv = NULL;
    size_t len = 0, n = 0;
    bool has_backend = false;
    int r;

    r = read_vm_argv(vm_dir, &buf, &len, e);
    if (r < 0)
        return r;
    r = 0;
    for (const char *a = buf; a < buf + len; a += strlen(a) + 1) {
        const char *next = a + strlen(a) + 1 < buf + len ? a + strlen(a) + 1 : NULL;
        if (strcmp(a, "-name") == 0 && next) {
            r |= qemu_argv_add(&argv, &n, "-name");
            r |= qemu_argv_add(&argv, &n, "noid-%s", c->instance_id);
            a = next;
        } else if (strcmp(a, "-M") == 0 && next) {
            has_backend = strstr(next, "memory-backend=" QEMU_RAM_BACKEND_ID) != NULL;
            r |= qemu_argv_add(&argv, &n, "%s", a);
            r |= qemu_argv_add(&argv, &n, "%s", next);
            a = next;
        } else if (strcmp(a, "-object") == 0 && next && strncmp(next, "memory-backend-", 15) == 0 &&
                   strstr(next, "id=" QEMU_RAM_BACKEND_ID ",")) {
            char size[32];
            option_value(next, "size", size, sizeof(size));
            r |= qemu_argv_add(&argv, &n, "-object");
            r |= qemu_argv_add(&argv, &n,
                               "memory-backend-file,id=" QEMU_RAM_BACKEND_ID
                               ",size=%s,mem-path=%s,share=on",
                               size, c->mem_out);
            a = next;
        } else if (strcmp(a, "-drive") == 0 && next) {
            r |= qemu_argv_add(&argv, &n, "-drive");
            r |= qemu_argv_add(&argv, &n, "%s,readonly=on%s", next,
                               strstr(next, "file.locking=") ? "" : ",file.locking=off");
            a = next;
        } else if (strcmp(a, "-D") == 0 && next) {
            r |= qemu_argv_add(&argv, &n, "-D");
            r |= qemu_argv_add(&argv, &n, "%s/%s", c->work_dir, VM_FILE_VMM_LOG);
            a = next;
        } else if (strcmp(a, "-incoming") == 0 && next) {
            a = next; /* added below */
        } else if (strcmp(a, "-netdev") == 0 && next) {
            a = next; /* the VM holds its TAP: the helper's NIC has no peer */
        } else if (strcmp(a, "-device") == 0 && next &&
                   strncmp(next, "virtio-net-device,", 18) == 0) {
            const char *peer = strstr(next, ",netdev=" QEMU_NETDEV_ID);
            r |= qemu_argv_add(&argv, &n, "-device");
            r |= qemu_argv_add(&argv, &n, "%.*s", (int)(peer ? peer - next : (ptrdiff_t)strlen(next)),
                               next);
            a = next;
        } else {
            r |= qemu_argv_add(&argv, &n, "%s", a);
        }
    }
    r |= qemu_argv_add(&argv, &n, "-S");
    r |= qemu_argv_add(&argv, &n, "-incoming");
    r |= qemu_argv_add(&argv, &n, "defer");
    if (r) {
        qemu_argv_free(argv);
        return -ENOMEM;
    }
    if (!has_backend) {
        qemu_argv_free(argv);
        return nerr_set(e, -EOPNOTSUPP, "the VM's RAM has no named memory backend");
    }
    *ret = argv;
    return 0;
}

static int start_helper(const char *vm_dir, const struct vmm_convert *c, int64_t *ret_pid,
                        struct nerr *e)
{
    _cleanup_free_ char *log = path_join(c->work_dir, VM_FILE_VMM_LOG);
    struct spawn_opts so = {.cwd = c->work_dir, .stdout_path = log, .new_session = true};
    char **argv = NULL;
    char tail[300];
    int r;

    if (!log)
        return -ENOMEM;
    r = helper_argv(vm_dir, c, &argv, e);
    if (r < 0)
        return r;
    r = spawn_wait(argv, &so);
    qemu_argv_free(argv);
    if (r != 0) {
        vmm_log_tail(c->work_dir, tail, sizeof(tail));
        return nerr_set(e, r < 0 ? r : -EIO, "the helper QEMU did not start: %s",
                        tail[0] ? tail : "no message");
    }
    r = qemu_read_pidfile(c->work_dir, ret_pid);
    if (r < 0) {
        vmm_proc_kill_instance(c->instance_id, 10000); /* it runs, but we cannot track it */
        return nerr_set(e, r, "the helper QEMU's pid file is unreadable");
    }
    return 0;
}

/* The helper, loaded and paused, saves its devices without RAM. */
static int save_without_ram(struct qmp *sh, const char *state_out, struct nerr *e)
{
    _cleanup_close_ int fd = -1;
    int64_t deadline = time_mono_ms() + QEMU_MIGRATE_TIMEOUT_MS;
    char status[32];
    int r;

    r = qemu_wait_loaded(sh, "the helper QEMU", deadline, status, sizeof(status), e);
    if (r < 0)
        return r;
    fd = open(state_out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return nerr_set(e, -errno, "cannot create %s: %s", state_out, strerror(errno));
    r = qemu_mig_save_prepare(sh, fd, true, e);
    if (r >= 0)
        r = qemu_mig_save_run(sh, deadline, e);
    return r;
}

int qemu_convert_state(struct vmm_backend *be, const char *vm_dir, const struct vmm_convert *c,
                       struct nerr *e)
{
    _cleanup_close_ int in = -1;
    struct qmp *sh = NULL;
    int64_t pid = 0;
    char tail[300];
    int r;

    in = open(c->state_in, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return nerr_set(e, -errno, "cannot open %s: %s", c->state_in, strerror(errno));
    r = start_helper(vm_dir, c, &pid, e);
    if (r >= 0)
        test_hook("convert-helper-started");
    if (r >= 0)
        r = qmp_open(c->work_dir, &sh, e);
    /* the capability the state was saved with: off */
    if (r >= 0)
        r = qemu_mig_set_cap(sh, "x-ignore-shared", false, e);
    if (r >= 0)
        r = qemu_mig_start_fd(sh, in, "noidin", true, e);
    if (r >= 0)
        r = save_without_ram(sh, c->state_out, e);
    if (r < 0 && pid > 0 && vmm_proc_has_exited(pid)) {
        /* the helper's own words say why (a state it refused, say) */
        vmm_log_tail(c->work_dir, tail, sizeof(tail));
        if (tail[0])
            nerr_reset(e, r, "the helper QEMU exited: %s", tail);
    }
    qmp_close(sh);
    if (pid > 0)
        vmm_proc_kill(pid, c->instance_id, 10000);
    return r;
}

/* QEMU's RAM section, at the start of the stream, names every block: a VM
 * without a named backend has the machine's own block, "microvm.ram". */
const char *qemu_state_ram_block(struct vmm_backend *be, const char *state_path)
{
    _cleanup_close_ int fd = open(state_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    char head[64 * 1024];
    ssize_t n = fd >= 0 ? read(fd, head, sizeof(head)) : -1;

    return n > 0 && memmem(head, (size_t)n, "microvm.ram", 11) ? "" : VMM_RAM_BLOCK;
}
