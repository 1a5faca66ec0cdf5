/* spawn-util.h — start helper processes from the (multi-threaded) server safely:
 * posix_spawn with an empty signal mask, default signal actions, a new
 * session and explicit stdio, so the child never inherits our blocked
 * SIGTERM or a stray descriptor. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct spawn_opts {
    const char *cwd;         /* NULL: inherit */
    const char *stdin_path;  /* opened read-write (a FIFO never sees EOF); NULL: /dev/null */
    const char *stdout_path; /* appended to; NULL: /dev/null */
    const char *stderr_path; /* appended to; NULL: same as stdout */
    bool new_session;
};

/* Spawn argv[0] (PATH search) and return its pid. */
int spawn_process(char *const argv[], const struct spawn_opts *o, pid_t *ret_pid);
/* Spawn and wait: returns the exit status (>= 0) or -errno; killed by a
 * signal gives 128+N. */
int spawn_wait(char *const argv[], const struct spawn_opts *o);
/* Run argv and capture its first line of stdout (for `--version`). */
int spawn_capture_line(char *const argv[], char *out, size_t size);
/* Start argv fully detached (double fork: reparented to init, so it never
 * becomes our zombie).  Returns the pid of the detached process. */
int spawn_detached(char *const argv[], const struct spawn_opts *o, pid_t *ret_pid);
