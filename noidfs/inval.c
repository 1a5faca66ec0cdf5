/* inval.c — telling the kernel that something it cached changed because
 * of our own operation (a run ended, a clone appeared, a VM was restored,
 * a guest file we appended to).
 * The notifications go out from a thread of their own: sent from a
 * request's path they could wait for a lock that request's caller holds. */
#include <stdlib.h>
#include <string.h>

#include "fs-internal.h"
#include "macro.h"

static void inval_push(struct noidfs *fs, fuse_ino_t ino, const char *name, bool attr_only)
{
    struct inval *iv;

    if (ino == 0 || !fs->inval_started)
        return;
    iv = calloc(1, sizeof(*iv));
    if (!iv)
        return;
    iv->ino = ino;
    iv->attr_only = attr_only;
    if (name && !(iv->name = strdup(name))) {
        free(iv);
        return;
    }
    pthread_mutex_lock(&fs->inval_lock);
    iv->next = fs->inval_head;
    fs->inval_head = iv;
    pthread_cond_signal(&fs->inval_cond);
    pthread_mutex_unlock(&fs->inval_lock);
}

void fs_inval_inode(struct noidfs *fs, fuse_ino_t ino)
{
    inval_push(fs, ino, NULL, false);
}

void fs_inval_attr(struct noidfs *fs, fuse_ino_t ino)
{
    inval_push(fs, ino, NULL, true);
}

void fs_inval_attr_now(struct noidfs *fs, fuse_ino_t ino)
{
    /* only the attributes: the kernel takes no lock for it that a request
     * in progress could hold (no pages, no inode lock), so this may be
     * sent from a request's path, before its reply */
    if (fs->se && ino != 0)
        fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}

void fs_inval_entry(struct noidfs *fs, fuse_ino_t parent, const char *name)
{
    inval_push(fs, parent, name, false);
}

void fs_run_changed(struct noidfs *fs, const char *user, const char *vm, unsigned id, bool top)
{
    static const enum node_kind run_kinds[] = {NK_RUN_STDOUT, NK_RUN_STDERR, NK_RUN_STATUS,
                                               NK_RUN_COMMAND};
    static const enum node_kind top_kinds[] = {NK_VM_STDOUT, NK_VM_STDERR, NK_VM_STATUS};

    for (size_t i = 0; i < ARRAY_SIZE(run_kinds); i++)
        fs_inval_inode(fs, nodes_find(fs->nodes, run_kinds[i], user, vm, id, NULL));
    for (size_t i = 0; top && i < ARRAY_SIZE(top_kinds); i++)
        fs_inval_inode(fs, nodes_find(fs->nodes, top_kinds[i], user, vm, 0, NULL));
    fs_inval_inode(fs, nodes_find(fs->nodes, NK_RUNS, user, vm, 0, NULL));
    fs_inval_inode(fs, nodes_find(fs->nodes, NK_VM_LAST, user, vm, 0, NULL));
    fs_inval_entry(fs, nodes_find(fs->nodes, NK_VM, user, vm, 0, NULL), "last");
}

void *inval_main(void *arg)
{
    struct noidfs *fs = arg;

    pthread_mutex_lock(&fs->inval_lock);
    for (;;) {
        while (!fs->inval_head && !fs->inval_stop)
            pthread_cond_wait(&fs->inval_cond, &fs->inval_lock);
        if (!fs->inval_head)
            break;
        struct inval *iv = fs->inval_head;
        fs->inval_head = iv->next;
        pthread_mutex_unlock(&fs->inval_lock);
        /* -ENOENT (the kernel forgot it already) is fine; a negative
         * offset invalidates the attributes only */
        if (iv->name)
            fuse_lowlevel_notify_inval_entry(fs->se, iv->ino, iv->name, strlen(iv->name));
        else
            fuse_lowlevel_notify_inval_inode(fs->se, iv->ino, iv->attr_only ? -1 : 0, 0);
        free(iv->name);
        free(iv);
        pthread_mutex_lock(&fs->inval_lock);
    }
    pthread_mutex_unlock(&fs->inval_lock);
    return NULL;
}
