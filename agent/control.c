/* control.c — see control.h.
 *
 * The RNDADDENTROPY / RNDRESEEDCRNG ioctl numbers and struct rand_pool_info
 * are written out here because musl-gcc has no <linux/random.h>; they are
 * part of the kernel ABI and do not change.  RNDRESEEDCRNG only exists since
 * Linux 4.17: older kernels answer ENOTTY/EINVAL, which is not an error for
 * us (the entropy was still added). */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "agent_proto.h"
#include "alog.h"
#include "macro.h"
#include "net.h"

#define CONTROL_RNDADDENTROPY _IOW('R', 0x03, int[2])
#define CONTROL_RNDRESEEDCRNG _IO('R', 0x07)

struct control_rand_pool_info {
    int entropy_count; /* bits */
    int buf_size;      /* bytes */
    uint8_t buf[];
};

static bool control_dry_run;

void control_set_dry_run(bool dry_run)
{
    control_dry_run = dry_run;
}

int control_set_time(uint64_t ns)
{
    struct timespec ts = {
        .tv_sec = (time_t)(ns / 1000000000u),
        .tv_nsec = (long)(ns % 1000000000u),
    };

    if (control_dry_run)
        return 0;
    if (clock_settime(CLOCK_REALTIME, &ts) < 0)
        return -errno;
    return 0;
}

int control_add_entropy(const uint8_t *bytes, size_t len)
{
    _cleanup_free_ struct control_rand_pool_info *info = NULL;
    _cleanup_close_ int fd = -1;
    int r;

    if (len == 0 || len > AP_MAX_ENTROPY)
        return -EINVAL;
    if (control_dry_run)
        return 0;
    info = malloc(sizeof(*info) + len);
    if (!info)
        return -ENOMEM;
    info->entropy_count = (int)(len * 8);
    info->buf_size = (int)len;
    memcpy(info->buf, bytes, len);

    fd = open("/dev/urandom", O_WRONLY | O_CLOEXEC);
    r = fd < 0 ? -errno : ioctl(fd, CONTROL_RNDADDENTROPY, info) < 0 ? -errno : 0;
    /* don't leave the seed lying around in freed heap memory */
    explicit_bzero(info->buf, len);
    if (r < 0)
        return r;
    if (ioctl(fd, CONTROL_RNDRESEEDCRNG) < 0 && errno != ENOTTY && errno != EINVAL)
        return -errno;
    return 0;
}

int control_set_network(const struct ap_net *n, char *msg, size_t msg_size)
{
    if (control_dry_run) {
        char desc[160];

        net_describe(n, true, desc, sizeof(desc));
        alog_info("network: dry run: SET_NETWORK %s", desc);
        return 0;
    }
    return net_apply(n, true, msg, msg_size);
}
