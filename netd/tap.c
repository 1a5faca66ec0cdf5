/* tap.c — see tap.h.
 *
 * IFF_TAP | IFF_NO_PI only: the VMM that attaches later sets the flags it
 * wants for its queue (QEMU adds IFF_VNET_HDR itself), so nothing here
 * fixes them.  TUNSETPERSIST comes last: until then the device lives only
 * as long as our descriptor, so any failure before it leaves nothing. */
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>

#include "macro.h"

int tap_create(const char *name, uid_t owner)
{
    _cleanup_close_ int fd = -1;
    struct ifreq ifr = {0};

    if (strlen(name) >= IFNAMSIZ)
        return -EINVAL;
    fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    memcpy(ifr.ifr_name, name, strlen(name));
    /* IFF_TUN_EXCL: fail with EBUSY instead of attaching to an existing one */
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_TUN_EXCL;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0)
        return -errno;
    if (ioctl(fd, TUNSETOWNER, (unsigned long)owner) < 0)
        return -errno;
    if (ioctl(fd, TUNSETPERSIST, 1UL) < 0)
        return -errno;
    return 0;
}
