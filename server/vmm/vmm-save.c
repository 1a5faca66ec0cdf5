/* vmm-save.c — see vmm-save.h. */
#include "vmm-save.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "timeutil.h"

static void *pause_work_main(void *p)
{
    struct pause_work *w = p;

    w->r = w->s->while_paused(w->s->ud, w->disk_writes, w->have_disk_writes, &w->err);
    return NULL;
}

void vmm_pause_work_start(struct pause_work *w, const struct vmm_save *s, uint64_t disk_writes,
                          bool have_disk_writes)
{
    memset(w, 0, sizeof(*w));
    w->s = s;
    w->disk_writes = disk_writes;
    w->have_disk_writes = have_disk_writes;
    w->threaded = pthread_create(&w->th, NULL, pause_work_main, w) == 0;
    if (!w->threaded)
        pause_work_main(w);
}

static bool is_full_disk(int r)
{
    return r == -ENOSPC || r == -EDQUOT;
}

int vmm_pause_work_join(struct pause_work *w, int r, struct nerr *e)
{
    if (w->threaded)
        pthread_join(w->th, NULL);
    /* a full disk is what the user can act on: it wins over the other
     * side's vaguer failure, which is likely its consequence */
    if (w->r < 0 && (r >= 0 || (is_full_disk(w->r) && !is_full_disk(r))))
        r = nerr_reset(e, w->r, "%s", w->err.msg);
    return r;
}

int vmm_checkpoint_generic(struct vmm_backend *be, const char *vm_dir, struct vmm_save *s,
                           struct nerr *e)
{
    struct pause_work w;
    uint64_t writes = 0;
    bool have;
    int64_t t0 = time_mono_ns();
    int r, r2;

    r = be->ops->pause(be, vm_dir, e);
    if (r < 0)
        return r;
    have = be->ops->disk_write_count && be->ops->disk_write_count(be, vm_dir, &writes, NULL) >= 0;
    vmm_pause_work_start(&w, s, writes, have);
    r = be->ops->save_state(be, vm_dir, s->snap_dir, s->ignore_shared, &s->mem_saved, e);
    r = vmm_pause_work_join(&w, r, e);
    r2 = be->ops->resume(be, vm_dir, r >= 0 ? e : NULL);
    if (r2 < 0) {
        /* once more: a checkpoint must not leave the VM paused */
        struct nerr again = {0};
        if (be->ops->resume(be, vm_dir, &again) < 0)
            log_warn("cannot resume the VM in %s after a checkpoint: %s", vm_dir, again.msg);
        if (r >= 0)
            r = r2;
    }
    s->pause_ns = time_mono_ns() - t0;
    return r;
}
