/* firewall.c — see firewall.h.
 *
 * Why the iptables command and not a library: libiptc is explicitly not a
 * stable API (its own headers say so, and distributions stopped shipping
 * its development files), and on Debian 12 `iptables` is the nf_tables
 * backend (iptables-nft), whose rules libiptc would not even see.  The
 * command speaks whichever backend the host uses, the same way the
 * admin's own `iptables -L` does, so what netd adds is what they see.
 *
 * The command is started with posix_spawnp and an argv of our own — never
 * through a shell — with an empty signal mask and default dispositions
 * (netd blocks SIGTERM for its signalfd), stdin from /dev/null and its
 * output captured for the error message.  `-w` waits for the xtables lock
 * instead of failing when another iptables runs. */
#include "firewall.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>

#include "alloc.h"
#include "macro.h"

extern char **environ;

/* What an iptables error may say in our log */
#define OUTPUT_MAX 512
/* Longest argv of a rule, command and options included */
#define ARGV_MAX 24
/* Seconds iptables waits for the xtables lock */
#define LOCK_WAIT "5"

struct rule {
    const char *table;
    const char *chain;
    bool insert_top; /* -I chain 1 instead of -A chain */
    const char *spec[12];
};

/* Run iptables with args; its exit status (>= 0), and its output (first
 * OUTPUT_MAX bytes, one line) in out.  -ENOENT when there is no iptables. */
static int run_iptables(const char *const *args, char out[OUTPUT_MAX])
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    char *argv[ARGV_MAX];
    int pipefd[2], status, r;
    size_t n = 0, len = 0;
    pid_t pid;

    argv[n++] = (char *)"iptables";
    for (; *args && n < ARGV_MAX - 1; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    out[0] = '\0';

    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
    r = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(pipefd[1]);
    if (r != 0) {
        close(pipefd[0]);
        return -r;
    }
    /* read all of it (so the child never blocks on a full pipe), keep the start */
    for (;;) {
        char buf[256];
        ssize_t k = read(pipefd[0], buf, sizeof(buf));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        size_t take = MIN((size_t)k, OUTPUT_MAX - 1 - len);
        memcpy(out + len, buf, take);
        len += take;
    }
    close(pipefd[0]);
    out[len] = '\0';
    for (char *p = out; *p; p++) {
        if (*p == '\n')
            *p = *(p + 1) ? ' ' : '\0';
    }
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -errno;
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}

/* args: -w N -t table <op> chain [1] spec... */
static void build_args(const struct rule *ru, const char *op, bool top, const char **args)
{
    size_t n = 0;

    args[n++] = "-w";
    args[n++] = LOCK_WAIT;
    args[n++] = "-t";
    args[n++] = ru->table;
    args[n++] = op;
    args[n++] = ru->chain;
    if (top)
        args[n++] = "1";
    for (size_t i = 0; ru->spec[i]; i++)
        args[n++] = ru->spec[i];
    args[n] = NULL;
}

/* 0 present, 1 added, -errno */
static int ensure_rule(const struct rule *ru, struct nerr *e)
{
    const char *args[ARGV_MAX];
    char out[OUTPUT_MAX];
    int r;

    build_args(ru, "-C", false, args);
    r = run_iptables(args, out);
    if (r == -ENOENT)
        return nerr_set(e, r, "iptables not found in PATH: install the iptables package");
    if (r < 0)
        return nerr_set(e, r, "cannot run iptables: %s", strerror(-r));
    if (r == 0)
        return 0;
    /* 1: no such rule; anything else is iptables failing at the check */
    if (r != 1)
        return nerr_set(e, -EIO, "iptables -t %s -C %s failed (status %d): %s", ru->table,
                        ru->chain, r, out);
    build_args(ru, ru->insert_top ? "-I" : "-A", ru->insert_top, args);
    r = run_iptables(args, out);
    if (r < 0)
        return nerr_set(e, r, "cannot run iptables: %s", strerror(-r));
    if (r != 0)
        return nerr_set(e, -EIO, "iptables -t %s %s %s failed (status %d): %s", ru->table,
                        ru->insert_top ? "-I" : "-A", ru->chain, r, out);
    return 1;
}

int firewall_ensure(const char *uplink, struct firewall_result *ret, struct nerr *e)
{
    const struct rule rules[] = {
        {"nat", "POSTROUTING", false, {"-s", NETD_SUBNET, "-o", uplink, "-j", "MASQUERADE"}},
        /* first, so no accept below can let one VM reach another */
        {"filter", "FORWARD", true, {"-i", "noid+", "-o", "noid+", "-j", "DROP"}},
        {"filter", "FORWARD", false, {"-i", "noid+", "-j", "ACCEPT"}},
        {"filter",
         "FORWARD",
         false,
         {"-o", "noid+", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"}},
        /* the clamp only for VM traffic: other forwarded traffic of the
         * host (containers, other VMs) is not ours to change */
        {"mangle",
         "FORWARD",
         false,
         {"-i", "noid+", "-p", "tcp", "--tcp-flags", "SYN,RST", "SYN", "-j", "TCPMSS",
          "--clamp-mss-to-pmtu"}},
        {"mangle",
         "FORWARD",
         false,
         {"-o", "noid+", "-p", "tcp", "--tcp-flags", "SYN,RST", "SYN", "-j", "TCPMSS",
          "--clamp-mss-to-pmtu"}},
        /* a guest sends only from its own /30: a strict reverse-path check
         * on every noid TAP, whatever rp_filter says (Debian's default is
         * loose), so no guest can pose as another VM, the host or anyone
         * outside */
        {"raw", "PREROUTING", true, {"-i", "noid+", "-m", "rpfilter", "--invert", "-j", "DROP"}},
    };
    struct firewall_result res = {0};
    int first = 0;

    for (size_t i = uplink ? 0 : 1; i < ARRAY_SIZE(rules); i++) {
        int r = ensure_rule(&rules[i], e);
        if (r == -ENOENT) {
            res.failed += (int)(ARRAY_SIZE(rules) - i);
            first = r;
            break;
        }
        if (r < 0) {
            res.failed++;
            first = first ? first : r;
        } else if (r == 0) {
            res.present++;
        } else {
            res.added++;
        }
    }
    *ret = res;
    return first;
}
