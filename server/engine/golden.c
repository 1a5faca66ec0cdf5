/* golden.c — creating VMs from a pre-booted golden snapshot.  Until the
 * snapshot machinery exists there is no golden image, and create cold-boots. */
#include <errno.h>

#include "vm-internal.h"

int vm_create_from_golden(struct engine *eng, struct db_vm *vm, struct vm_rt *rt,
                          struct nerr *e)
{
    return -ENOENT;
}
