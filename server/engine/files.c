/* files.c — guest file access for front-ends (engine.h, "guest files").
 * Placeholder until the implementation lands: everything is -EOPNOTSUPP. */
#include <errno.h>

#include "engine-internal.h"

int engine_file_call(struct engine *eng, const struct db_user *u, const char *name,
                     const struct ap_fs_req *req, struct agent_fs_reply *ret, struct nerr *e)
{
    (void)eng, (void)u, (void)name, (void)req, (void)ret;
    return nerr_set(e, -EOPNOTSUPP, "guest files are not implemented yet");
}

int engine_file_stream_open(struct engine *eng, const struct db_user *u, const char *name,
                            const struct ap_fs_req *req, struct engine_file_stream **ret,
                            struct nerr *e)
{
    (void)eng, (void)u, (void)name, (void)req, (void)ret;
    return nerr_set(e, -EOPNOTSUPP, "guest files are not implemented yet");
}

void engine_file_stream_set_notify(struct engine_file_stream *s, void (*fn)(void *user), void *user)
{
    (void)s, (void)fn, (void)user;
}

ssize_t engine_file_stream_read(struct engine_file_stream *s, void *buf, size_t len,
                                int timeout_ms, struct nerr *e)
{
    (void)s, (void)buf, (void)len, (void)timeout_ms;
    return nerr_set(e, -EOPNOTSUPP, "guest files are not implemented yet");
}

int engine_file_stream_next_dirent(struct engine_file_stream *s, char name[AP_FS_NAME_MAX + 1],
                                   struct ap_fs_attr *attr, int timeout_ms, struct nerr *e)
{
    (void)s, (void)name, (void)attr, (void)timeout_ms;
    return nerr_set(e, -EOPNOTSUPP, "guest files are not implemented yet");
}

int engine_file_stream_write(struct engine_file_stream *s, const void *data, size_t len,
                             struct nerr *e)
{
    (void)s, (void)data, (void)len;
    return nerr_set(e, -EOPNOTSUPP, "guest files are not implemented yet");
}

int engine_file_stream_finish(struct engine_file_stream *s, uint64_t *ret_count, struct nerr *e)
{
    (void)s, (void)ret_count;
    return nerr_set(e, -EOPNOTSUPP, "guest files are not implemented yet");
}

void engine_file_stream_free(struct engine_file_stream *s)
{
    (void)s;
}

int engine_file_remove_tree(struct engine *eng, const struct db_user *u, const char *name,
                            const char *path, struct nerr *e)
{
    (void)eng, (void)u, (void)name, (void)path;
    return nerr_set(e, -EOPNOTSUPP, "guest files are not implemented yet");
}
