/* proc.c — finding and stopping VMM processes that may have been started by
 * an earlier noid-server: /proc is the source of truth, the instance id in
 * the VMM's argv guards against a recycled pid.  Also what every backend
 * reads from a VMM that failed: the last lines of its log. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fsutil.h"
#include "macro.h"
#include "timeutil.h"
#include "vmm.h"

static bool proc_is_zombie(int64_t pid)
{
    char path[64], buf[512];
    _cleanup_close_ int fd = -1;
    ssize_t n;
    char *rp;

    snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    n = read(fd, buf, sizeof(buf) - 1);
    if (n <= 0)
        return true;
    buf[n] = 0;
    /* state follows the last ')' (the command name may contain parentheses) */
    rp = strrchr(buf, ')');
    return !rp || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X';
}

bool vmm_proc_has_exited(int64_t pid)
{
    if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
        return true;
    return proc_is_zombie(pid);
}

bool vmm_proc_is_alive(int64_t pid, const char *instance_id)
{
    char path[64], buf[8192];
    _cleanup_close_ int fd = -1;
    ssize_t n;
    size_t idlen = strlen(instance_id);

    if (pid <= 0 || idlen == 0)
        return false;
    snprintf(path, sizeof(path), "/proc/%lld/cmdline", (long long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    n = read(fd, buf, sizeof(buf));
    if (n <= 0)
        return false;
    if (!memmem(buf, (size_t)n, instance_id, idlen))
        return false;
    return !proc_is_zombie(pid);
}

int vmm_proc_kill(int64_t pid, const char *instance_id, int timeout_ms)
{

    if (!vmm_proc_is_alive(pid, instance_id))
        return 0;
    if (kill((pid_t)pid, SIGKILL) < 0 && errno != ESRCH)
        return -errno;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (!vmm_proc_is_alive(pid, instance_id))
            return 0;
        time_sleep_ms(10);
    }
    return vmm_proc_is_alive(pid, instance_id) ? -ETIMEDOUT : 0;
}

int vmm_proc_foreach(int (*cb)(int64_t pid, const char *cmdline, size_t len, void *ud),
                     void *ud)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int r = 0;

    if (!d)
        return -errno;
    while (r == 0 && (de = readdir(d))) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        char *end;
        long pid = strtol(de->d_name, &end, 10);

        /* a process may exit between readdir and the read: skip it */
        if (*end || pid <= 0 || pid == getpid() || vmm_proc_cmdline(pid, &buf, &len) < 0)
            continue;
        r = cb(pid, buf, len, ud);
    }
    closedir(d);
    return r;
}

struct kill_matching {
    const char *needle;
    size_t nlen;
    int timeout_ms;
    int killed;
};

static int kill_if_matching(int64_t pid, const char *cmdline, size_t len, void *ud)
{
    struct kill_matching *k = ud;

    if (!memmem(cmdline, len, k->needle, k->nlen))
        return 0;
    if (kill((pid_t)pid, SIGKILL) == 0)
        k->killed++;
    for (int waited = 0; waited < k->timeout_ms && !vmm_proc_has_exited(pid); waited += 10)
        time_sleep_ms(10);
    return 0;
}

int vmm_proc_kill_matching(const char *needle, int timeout_ms)
{
    struct kill_matching k = {.needle = needle, .nlen = strlen(needle), .timeout_ms = timeout_ms};

    if (k.nlen == 0)
        return 0;
    vmm_proc_foreach(kill_if_matching, &k);
    return k.killed;
}

int vmm_proc_cmdline(int64_t pid, char **ret, size_t *ret_len)
{
    char path[64];

    snprintf(path, sizeof(path), "/proc/%lld/cmdline", (long long)pid);
    return read_file(path, VMM_CMDLINE_MAX, ret, ret_len);
}

const char *vmm_cmdline_arg(const char *buf, size_t len, const char *flag)
{
    for (const char *a = buf; a < buf + len; a += strlen(a) + 1)
        if (strcmp(a, flag) == 0 && a + strlen(a) + 1 < buf + len)
            return a + strlen(a) + 1;
    return NULL;
}

bool vmm_cmdline_mentions_dir(const char *buf, size_t len, const char *dir)
{
    size_t dlen = strlen(dir);

    /* a path argument, or the value of one of its key=value options */
    for (const char *a = buf; a < buf + len; a += strlen(a) + 1)
        for (const char *v = a; v; v = strpbrk(v, ",=") ? strpbrk(v, ",=") + 1 : NULL)
            if (strncmp(v, dir, dlen) == 0 && (v[dlen] == '/' || v[dlen] == '\0' || v[dlen] == ','))
                return true;
    return false;
}

bool vmm_cmdline_instance(const char *buf, size_t len, char out[33])
{
    /* QEMU: -name noid-<id>; Firecracker: --id noid-<id> */
    const char *flags[] = {"-name", "--id"};

    for (size_t i = 0; i < ARRAY_SIZE(flags); i++) {
        const char *v = vmm_cmdline_arg(buf, len, flags[i]);
        if (v && strncmp(v, "noid-", 5) == 0 && strlen(v + 5) == 32 &&
            strspn(v + 5, "0123456789abcdef") == 32) {
            memcpy(out, v + 5, 33);
            return true;
        }
    }
    return false;
}

int vmm_proc_kill_instance(const char *instance_id, int timeout_ms)
{
    /* ids are 32 random hex digits: no other process has one by chance */
    if (strlen(instance_id) < 16)
        return 0;
    return vmm_proc_kill_matching(instance_id, timeout_ms);
}

void vmm_log_tail(const char *vm_dir, char *out, size_t size)
{
    _cleanup_free_ char *path = path_join(vm_dir, VM_FILE_VMM_LOG);

    out[0] = 0;
    if (path)
        file_tail_lines(path, 3, out, size);
}

void vmm_log_cap(const char *vm_dir)
{
    _cleanup_free_ char *p = path_join(vm_dir, VM_FILE_VMM_LOG);
    _cleanup_close_ int fd = -1;
    struct stat st;
    off_t end;

    if (!p || (fd = open(p, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0 ||
        fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (int64_t)st.st_blocks * 512 <= VMM_LOG_MAX)
        return;
    end = (st.st_size - VMM_LOG_KEEP) & ~(off_t)4095;
    if (end > 0)
        fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, end);
}
