/* accel_probe.c — see accel_probe.h. */
#include "accel_probe.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "spawn-util.h"
#include "timeutil.h"

static int probe_key(const struct qemu_options *o, char *out, size_t size)
{
    char version[128] = "";
    char *vargv[] = {(char *)o->qemu_bin, (char *)"--version", NULL};
    struct stat st;

    if (stat(o->kernel, &st) < 0)
        return -errno;
    spawn_capture_line(vargv, version, sizeof(version));
    snprintf(out, size, "kernel=%s size=%lld mtime=%lld qemu=%s", o->kernel,
             (long long)st.st_size, (long long)st.st_mtime, version);
    return 0;
}

/* Boot under KVM and watch the serial log for the initramfs marker. */
static bool probe_kvm_boots(const struct qemu_options *o)
{
    char tmpdir[] = "/tmp/noid-kvm-probe-XXXXXX";
    _cleanup_free_ char *serial = NULL;
    _cleanup_free_ char *serial_arg = NULL;
    bool ok = false;
    pid_t pid;

    if (!mkdtemp(tmpdir))
        return false;
    serial = path_join(tmpdir, "serial.log");
    if (!serial || asprintf(&serial_arg, "file:%s", serial) < 0) {
        serial_arg = NULL;
        goto out;
    }
    char *argv[] = {(char *)o->qemu_bin,
                    (char *)"-M", (char *)"microvm",
                    (char *)"-accel", (char *)"kvm",
                    (char *)"-cpu", (char *)"host",
                    (char *)"-m", (char *)"256M",
                    (char *)"-kernel", (char *)o->kernel,
                    (char *)"-initrd", (char *)(o->initrd ? o->initrd : "/dev/null"),
                    (char *)"-append",
                    (char *)"console=ttyS0 panic=-1 8250.nr_uarts=1 noid.probe=1",
                    (char *)"-nodefaults", (char *)"-no-user-config", (char *)"-nographic",
                    (char *)"-serial", serial_arg,
                    NULL};
    if (spawn_process(argv, NULL, &pid) < 0)
        goto out;
    for (int64_t deadline = time_mono_ms() + ACCEL_PROBE_TIMEOUT_MS; time_mono_ms() < deadline;) {
        _cleanup_free_ char *text = NULL;
        if (read_file(serial, 4 * 1024 * 1024, &text, NULL) == 0 &&
            strstr(text, ACCEL_PROBE_MARKER)) {
            ok = true;
            break;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            pid = -1;
            break;
        }
        time_sleep_ms(50);
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
out:
    rm_rf(tmpdir);
    return ok;
}

int accel_choose(const struct qemu_options *o, bool *ret_kvm, struct nerr *e)
{
    char key[512], cached[600];
    _cleanup_free_ char *text = NULL;
    int fd;

    if (strcmp(o->accel, "tcg") == 0) {
        *ret_kvm = false;
        return 0;
    }
    fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        if (strcmp(o->accel, "kvm") == 0)
            return nerr_set(e, -errno, "accel = \"kvm\" but /dev/kvm cannot be opened: %s",
                            strerror(errno));
        log_info("accel: /dev/kvm unavailable (%s); using TCG", strerror(errno));
        *ret_kvm = false;
        return 0;
    }
    close(fd);
    if (strcmp(o->accel, "kvm") == 0) {
        *ret_kvm = true;
        return 0;
    }
    if (probe_key(o, key, sizeof(key)) < 0) {
        log_warn("accel: cannot stat the kernel %s; using TCG", o->kernel);
        *ret_kvm = false;
        return 0;
    }
    if (o->probe_cache && read_file(o->probe_cache, 4096, &text, NULL) == 0) {
        size_t kl = strlen(key);
        if (strncmp(text, key, kl) == 0 && text[kl] == '\n') {
            *ret_kvm = strncmp(text + kl + 1, "kvm", 3) == 0;
            log_info("accel: %s (remembered from an earlier probe)", *ret_kvm ? "KVM" : "TCG");
            return 0;
        }
    }
    log_info("accel: /dev/kvm exists; probing whether KVM really boots the guest (up to %d ms)",
             ACCEL_PROBE_TIMEOUT_MS);
    *ret_kvm = probe_kvm_boots(o);
    log_info("accel: KVM %s; using %s", *ret_kvm ? "boots the guest" : "does not boot the guest",
             *ret_kvm ? "KVM" : "TCG");
    if (o->probe_cache) {
        snprintf(cached, sizeof(cached), "%s\n%s\n", key, *ret_kvm ? "kvm" : "tcg");
        write_file_atomic(o->probe_cache, cached, strlen(cached), 0600);
    }
    return 0;
}
