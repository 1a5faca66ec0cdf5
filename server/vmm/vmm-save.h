/* vmm-save.h — what the backends' checkpoint ops share: running the
 * engine's while_paused work on a second thread during the save. */
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
void pause_work_start(struct pause_work *w, const struct vmm_save *s, uint64_t disk_writes,
                      bool have_disk_writes);
/* Wait for it; its error becomes the result unless r is one already. */
int pause_work_join(struct pause_work *w, int r, struct nerr *e);
