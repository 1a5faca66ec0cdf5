/* util.h — tiny helpers shared by the agent's modules: a monotonic clock in
 * milliseconds and fd flag setters.  Header-only so each module stays
 * self-contained; nothing here allocates or logs. */
#pragma once

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on CLOCK_MONOTONIC.  Never jumps with SET_TIME, so exec
 * deadlines stay right when the host corrects the wall clock. */
static inline uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Set O_NONBLOCK on fd.  Returns 0 or -errno. */
static inline int fd_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}
