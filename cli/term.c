/* term.c — raw mode with one saved copy of the settings, window sizes, and
 * the signalfd of session loops (term.h). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include "term.h"

/* Written once by term_raw_enter before raw_fd is set, read by
 * term_restore (also from atexit): no lock, one thread. */
static struct termios saved;
static volatile sig_atomic_t raw_fd = -1;
static bool atexit_done;

void term_restore(void)
{
    int fd = raw_fd;

    if (fd < 0)
        return;
    /* TCSAFLUSH would drop keys typed after the session ended; TCSADRAIN
     * only waits for our output to reach the terminal first. */
    while (tcsetattr(fd, TCSADRAIN, &saved) < 0 && errno == EINTR)
        ;
    raw_fd = -1;
}

int term_raw_enter(int fd)
{
    struct termios raw;

    if (raw_fd >= 0)
        return -EBUSY;
    if (tcgetattr(fd, &saved) < 0)
        return -errno;
    raw = saved;
    cfmakeraw(&raw);
    /* read() returns as soon as one byte is there */
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (!atexit_done) {
        if (atexit(term_restore) != 0)
            return -ENOMEM;
        atexit_done = true;
    }
    /* set before switching, so that an exit right after finds it */
    raw_fd = fd;
    if (tcsetattr(fd, TCSADRAIN, &raw) < 0) {
        int r = -errno;
        raw_fd = -1;
        return r;
    }
    return 0;
}

bool term_is_raw(void)
{
    return raw_fd >= 0;
}

int term_size(int fd, unsigned *ret_cols, unsigned *ret_rows)
{
    struct winsize ws;

    if (ioctl(fd, TIOCGWINSZ, &ws) < 0)
        return -errno;
    if (ws.ws_col == 0 || ws.ws_row == 0)
        return -ENOTTY; /* a terminal that does not know its size */
    *ret_cols = ws.ws_col;
    *ret_rows = ws.ws_row;
    return 0;
}

void term_size_guess(unsigned *ret_cols, unsigned *ret_rows)
{
    if (term_size(STDIN_FILENO, ret_cols, ret_rows) == 0 ||
        term_size(STDOUT_FILENO, ret_cols, ret_rows) == 0)
        return;
    *ret_cols = TERM_DEFAULT_COLS;
    *ret_rows = TERM_DEFAULT_ROWS;
}

int term_signals_open(void)
{
    sigset_t set;
    int fd;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGWINCH);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -errno;
    fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd < 0)
        return -errno;
    signal(SIGPIPE, SIG_IGN);
    return fd;
}

int term_signal_next(int sigfd)
{
    struct signalfd_siginfo si;
    ssize_t n;

    do
        n = read(sigfd, &si, sizeof(si));
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(si))
        return 0;
    return (int)si.ssi_signo;
}
