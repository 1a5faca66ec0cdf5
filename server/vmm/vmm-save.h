/* vmm-save.h — what the backends' checkpoint ops share: running the
 * engine's while_paused work on a second thread during the save, and the
 * checkpoint of backends without a faster way. */
#pragma once

#include <pthread.h>

#include "vmm.h"

struct pause_work {
    const struct vmm_save *s;
    uint64_t disk_writes;
    bool have_disk_writes;
    struct nerr err;
    int r;
    pthread_t th;
    bool threaded;
};

/* Start s->while_paused on a second thread (inline if none can start). */
void vmm_pause_work_start(struct pause_work *w, const struct vmm_save *s, uint64_t disk_writes,
                          bool have_disk_writes);
/* Wait for it; its error becomes the result unless r is one already. */
int vmm_pause_work_join(struct pause_work *w, int r, struct nerr *e);

/* vmm_ops.checkpoint for backends without a faster way: pause, save_state
 * beside while_paused, resume. */
int vmm_checkpoint_generic(struct vmm_backend *be, const char *vm_dir, struct vmm_save *s,
                           struct nerr *e);
