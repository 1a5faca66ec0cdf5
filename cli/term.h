/* term.h — the local terminal of an interactive session (`noid exec -t`,
 * `noid console`): raw mode, restored on every way out, the window size,
 * and the signals a session loop waits for.
 *
 * Invariant: once term_raw_enter succeeded, the saved settings are put back
 * by term_restore, which the session calls before printing anything of its
 * own, and which atexit also calls, so an exit() from anywhere restores the
 * terminal.  SIGINT/SIGTERM/SIGHUP/SIGWINCH are blocked and read from a
 * signalfd by the session loop, so they end the session through its normal
 * path (which restores) instead of killing the process in raw mode. */
#pragma once

#include <stdbool.h>

#define TERM_DEFAULT_COLS 80
#define TERM_DEFAULT_ROWS 24

/* Save fd's terminal settings and switch it to raw mode (cfmakeraw: no
 * echo, no line editing, no signals from keys, no output processing).
 * -ENOTTY when fd is not a terminal; -EBUSY when already raw. */
int term_raw_enter(int fd);
/* Put the saved settings back; does nothing when not raw.  Async-signal-safe
 * and idempotent. */
void term_restore(void);
bool term_is_raw(void);

/* The window size of the terminal fd: 0, or -ENOTTY (or the ioctl's -errno). */
int term_size(int fd, unsigned *ret_cols, unsigned *ret_rows);
/* The window size to announce: stdin's, else stdout's, else 80x24. */
void term_size_guess(unsigned *ret_cols, unsigned *ret_rows);

/* Block SIGINT, SIGTERM, SIGHUP and SIGWINCH and return a signalfd (close
 * on exec, non-blocking) that reports them; SIGPIPE is ignored from then on,
 * so a write to a closed pipe fails with EPIPE instead of killing us.
 * Returns the fd or -errno. */
int term_signals_open(void);
/* The next pending signal of a term_signals_open fd, 0 when none. */
int term_signal_next(int sigfd);
