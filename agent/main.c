/* main.c — noid-agent: runs inside every guest and serves the host over the
 * framed protocol of lib/agent_proto.h (DESIGN.md §6).
 *
 * One thread, one poll() loop over: a signalfd (SIGCHLD, SIGTERM, SIGINT,
 * SIGHUP), the channel to the host (channel.c), and the pipes of every
 * running exec (exec.c).  File downloads (files.c) read regular files,
 * which are always ready, so they are not polled: every loop round lets
 * them fill the outq as far as credit and the high water mark allow.  Nothing in the loop blocks:
 * the channel and all pipes are non-blocking, output waits in the session's outq, and a full outq
 * stops the reading of exec pipes and of the channel (backpressure) until the host has taken some
 * of it.
 *
 * Channel choice: --fd N, --unix-listen PATH, or by default the virtio-serial
 * port org.noid.agent, else a vsock listener on port 1024; if neither exists
 * yet the agent logs once and looks again every MAIN_DISCOVERY_RETRY_MS
 * (exiting instead would make busybox init respawn it in a tight loop).
 *
 * Cold-boot network: before the channel is opened, the ip= of the kernel
 * command line is applied (net.h), so the guest's network is up by the
 * time the host's first HELLO is answered.  Only in a guest, i.e. with the
 * default channel discovery, or when --cmdline names a file (tests, with
 * --dry-run-control): an agent run on a host for tests must never touch
 * the host's NIC because of the host's own command line.
 *
 * The agent exits only on SIGTERM/SIGINT (killing its execs) or when the
 * --fd stream ends; never because of what the host sent. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "agent_proto.h"
#include "alog.h"
#include "channel.h"
#include "control.h"
#include "exec.h"
#include "files.h"
#include "macro.h"
#include "net.h"
#include "session.h"
#include "util.h"

#ifndef NOID_AGENT_VERSION
#define NOID_AGENT_VERSION "0.0.0"
#endif

#define MAIN_DISCOVERY_RETRY_MS 100
#define MAIN_POLLFDS            (1 + 2 + EXEC_MAX * EXEC_POLLFDS)

struct options {
    const char *unix_path;
    int fd;
    const char *log_file;
    const char *cmdline; /* NULL: /proc/cmdline, in a guest only */
    bool verbose;
    bool dry_run_control;
};

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: noid-agent [OPTIONS]\n"
            "Serve the noid host inside a guest: run commands, move their bytes, set the\n"
            "clock, entropy and network (protocol versions %d to %d).\n"
            "\n"
            "By default the agent uses the virtio-serial port '%s' (QEMU),\n"
            "else listens on vsock port %d (Firecracker), and first applies the ip= of\n"
            "the kernel command line (/proc/cmdline) to the guest's NIC.\n"
            "\n"
            "  --unix-listen PATH  listen on a unix socket instead (testing on a host)\n"
            "  --fd N              use the already connected fd N; exit when it ends\n"
            "  --log-file PATH     append log lines to PATH instead of stderr\n"
            "  --cmdline PATH      take ip= from PATH instead of /proc/cmdline, also with\n"
            "                      --unix-listen or --fd (which skip ip= otherwise)\n"
            "  --dry-run-control   answer SET_TIME, ADD_ENTROPY and SET_NETWORK and parse\n"
            "                      ip= without changing the clock, the entropy pool or\n"
            "                      the network (tests on a host)\n"
            "  -v, --verbose       also log every exec start and exit\n"
            "  -h, --help          show this help\n"
            "  -V, --version       show the version\n",
            AP_VERSION_BASE, AP_VERSION, AP_SERIAL_PORT_NAME, AP_VSOCK_PORT);
}

/* Parse argv into o.  Returns 1 to run, 0 to exit successfully (help,
 * version), -EINVAL after printing what is wrong. */
static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"unix-listen", required_argument, NULL, 'u'},
        {"fd", required_argument, NULL, 'f'},
        {"log-file", required_argument, NULL, 'l'},
        {"dry-run-control", no_argument, NULL, 'D'},
        {"cmdline", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {0},
    };
    int c;

    o->fd = -1;
    while ((c = getopt_long(argc, argv, "vhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'u':
            o->unix_path = optarg;
            break;
        case 'f': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || v < 0 || v > 65535) {
                fprintf(stderr, "noid-agent: --fd needs a file descriptor number\n");
                return -EINVAL;
            }
            o->fd = (int)v;
            break;
        }
        case 'l':
            o->log_file = optarg;
            break;
        case 'c':
            o->cmdline = optarg;
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'D':
            o->dry_run_control = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("noid-agent %s (protocol %d)\n", NOID_AGENT_VERSION, AP_VERSION);
            return 0;
        default:
            usage(stderr);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "noid-agent: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    if (o->unix_path && o->fd >= 0) {
        fprintf(stderr, "noid-agent: --unix-listen and --fd exclude each other\n");
        return -EINVAL;
    }
    return 1;
}

/* fds 0-2 must be taken, or a pipe could land there and a child's dup2()
 * onto itself would keep O_CLOEXEC. */
static void ensure_std_fds(void)
{
    for (;;) {
        int fd = open("/dev/null", O_RDWR);
        if (fd < 0)
            return;
        if (fd > 2) {
            close(fd);
            return;
        }
    }
}

static int open_log(const char *path)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);

    if (fd < 0)
        return -errno;
    if (dup2(fd, STDERR_FILENO) < 0)
        return -errno;
    return 0;
}

/* Block the signals the loop takes from a signalfd.  Returns the fd or -errno. */
static int setup_signals(void)
{
    sigset_t set;
    int fd;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -errno;
    fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

/* Drain the signalfd.  Returns the terminating signal received, or 0. */
static int handle_signals(int sfd, struct exec_table *execs)
{
    struct signalfd_siginfo si;
    int term = 0;

    while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGCHLD)
            exec_on_sigchld(execs);
        else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
            term = (int)si.ssi_signo;
        /* SIGHUP: ignored (the console may go away under us) */
    }
    return term;
}

/* Open the channel named by the options.  For the default discovery,
 * -ENOENT means "nothing there yet, try again later". */
static int open_channel(const struct options *o, struct channel *c)
{
    int r;

    if (o->fd >= 0)
        return channel_from_fd(c, o->fd);
    if (o->unix_path)
        return channel_listen_unix(c, o->unix_path);
    r = channel_open_virtio(c);
    if (r != -ENOENT)
        return r;
    r = channel_listen_vsock(c, AP_VSOCK_PORT);
    if (r == -EAFNOSUPPORT || r == -ENODEV || r == -EADDRNOTAVAIL)
        return -ENOENT;
    return r;
}

static int wait_for_channel(const struct options *o, struct channel *c, int sfd,
                            struct exec_table *execs)
{
    bool logged = false;

    for (;;) {
        struct pollfd p = {.fd = sfd, .events = POLLIN};
        int r = open_channel(o, c);

        if (r != -ENOENT)
            return r;
        if (!logged) {
            alog_warn("no virtio-serial port '%s' and no vsock; retrying every %d ms",
                      AP_SERIAL_PORT_NAME, MAIN_DISCOVERY_RETRY_MS);
            logged = true;
        }
        if (poll(&p, 1, MAIN_DISCOVERY_RETRY_MS) > 0 && handle_signals(sfd, execs))
            return -EINTR;
    }
}

/* The earlier of two deadlines, 0 meaning none. */
static uint64_t earlier(uint64_t a, uint64_t b)
{
    if (a == 0 || b == 0)
        return a | b;
    return MIN(a, b);
}

static int poll_timeout(uint64_t deadline, uint64_t now)
{
    if (deadline == 0)
        return -1;
    if (deadline <= now)
        return 0;
    return (int)MIN(deadline - now, (uint64_t)60000);
}

static void host_gone(struct channel *c, struct session *s, const char *why, bool *ret_eof)
{
    alog_info("host disconnected from %s%s%s", c->name, why ? ": " : "", why ? why : "");
    session_disconnected(s, c->kind != CHANNEL_VIRTIO);
    if (c->kind == CHANNEL_FD)
        *ret_eof = true;
}

/* Read what the channel has for us into the session's input buffer.
 * hup: poll() saw the (virtio) host hang up; what we held from it is void
 * even if a new host is already there. */
static void pump_input(struct channel *c, struct session *s, bool hup, uint64_t now, bool *ret_eof)
{
    uint8_t *buf;
    size_t room;
    ssize_t n;

    if (hup)
        host_gone(c, s, NULL, ret_eof);
    if (session_input_space(s, &buf, &room) < 0) {
        alog_error("out of memory for input");
        return;
    }
    if (room == 0)
        return;
    n = channel_read(c, buf, room, now);
    if (n > 0)
        session_input_commit(s, (size_t)n);
    else if (n == -EPIPE && !hup)
        host_gone(c, s, NULL, ret_eof);
    else if (n < 0 && n != -EPIPE)
        alog_warn("read from %s: %s", c->name, strerror((int)-n));
}

static void pump_output(struct channel *c, struct session *s, uint64_t now, bool *ret_eof)
{
    int r;

    if (c->fd < 0 || c->host_down || outq_is_empty(&s->out))
        return;
    r = outq_flush(&s->out, c->fd);
    if (r < 0 && channel_write_failed(c, -r, now) == -EPIPE)
        host_gone(c, s, strerror(-r), ret_eof);
}

static int run(const struct options *o)
{
    static struct pollfd pfds[MAIN_POLLFDS];
    static struct session s;
    struct channel c;
    _cleanup_close_ int sfd = -1;
    uint64_t exec_deadline = 0;
    bool eof = false;
    int r, term = 0;

    sfd = setup_signals();
    if (sfd < 0) {
        alog_error("cannot set up signals: %s", strerror(-sfd));
        return -sfd;
    }
    r = session_init(&s);
    if (r < 0) {
        alog_error("cannot allocate the session: %s", strerror(-r));
        return 1;
    }
    if (o->cmdline)
        net_boot_from_cmdline(o->cmdline, o->dry_run_control);
    else if (!o->unix_path && o->fd < 0)
        net_boot_from_cmdline("/proc/cmdline", o->dry_run_control);
    r = wait_for_channel(o, &c, sfd, &s.execs);
    if (r == -EINTR)
        return 0;
    if (r < 0) {
        alog_error("cannot open the host channel: %s", strerror(-r));
        return 1;
    }
    alog_info("noid-agent %s serving on %s", NOID_AGENT_VERSION, c.name);

    while (!term && !eof) {
        bool full = outq_is_full(&s.out);
        uint64_t now = now_ms(), deadline;
        size_t n = 0;

        deadline = earlier(exec_deadline, channel_deadline(&c));
        pfds[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
        channel_poll_fill(&c, pfds, &n, !full, !outq_is_empty(&s.out));
        exec_poll_fill(&s.execs, pfds, &n, full);

        if (poll(pfds, (nfds_t)n, poll_timeout(deadline, now)) < 0 && errno != EINTR) {
            alog_error("poll: %s", strerror(errno));
            return 1;
        }
        now = now_ms();
        if (pfds[0].revents)
            term = handle_signals(sfd, &s.execs);
        if (channel_accept(&c, pfds)) {
            alog_info("host connected to %s", c.name);
            session_disconnected(&s, true);
        }
        if (channel_writable(&c, pfds))
            pump_output(&c, &s, now, &eof);
        if (channel_readable(&c, pfds, now))
            pump_input(&c, &s, channel_hung_up(&c, pfds), now, &eof);
        exec_poll_handle(&s.execs, pfds, full);
        session_process(&s);
        /* timeouts, and EXIT for execs that just ended */
        exec_deadline = exec_tick(&s.execs, outq_is_full(&s.out));
        /* downloads fill the outq up to its high water mark; a flush or
         * new credit wakes the loop up for more */
        files_pump(&s.files);
        /* most answers fit the channel at once: save a poll round trip */
        pump_output(&c, &s, now, &eof);
    }
    if (term)
        alog_info("terminating on signal %d", term);
    session_done(&s);
    channel_close(&c);
    return 0;
}

int main(int argc, char **argv)
{
    struct options o = {0};
    int r;

    r = parse_args(argc, argv, &o);
    if (r <= 0)
        return r < 0 ? 2 : 0;
    ensure_std_fds();
    if (o.log_file) {
        r = open_log(o.log_file);
        if (r < 0)
            fprintf(stderr, "noid-agent: cannot open log file '%s': %s\n", o.log_file,
                    strerror(-r));
    }
    alog_set_verbose(o.verbose);
    control_set_dry_run(o.dry_run_control);
    return run(&o);
}
