/* files_upload.c — PUT of a guest file: the request body, streamed into a
 * WRITE_FILE of the engine as it arrives, atomically (AP_WRITE_ATOMIC: the
 * guest writes a temporary file next to the target and renames it over
 * the target at the end, so the target holds the old or the whole new
 * content, never part of it; a failure, a cancel or a client that goes
 * away removes the temporary file).
 *
 * The handler runs on its worker thread from the moment the headers are
 * in (a streaming_body route, body_stream.c).  It checks what it can
 * before it lets the body come (the target is not a directory, its parent
 * exists unless ?parents=1, the VM runs and its agent has file access), so
 * those errors are answered without reading a byte of the body.  Then it
 * moves the body to the guest in FILES_UPLOAD_CHUNK pieces: memory stays
 * the body buffer plus one chunk, whatever the file's size, and a slow
 * guest slows the client down.  An error of the guest after that (a full
 * disk) is answered once the client has sent the rest, which is dropped.
 *
 * 201 when the path did not exist before, 200 when the file replaced one
 * (from an LSTAT before the upload: another writer in between may make
 * that one answer stale). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "files.h"

/* The parent of path ("/a/b" -> "/a", "/a" -> "/"), as bytes: "" when path
 * ends in '/' (no single parent to check). */
static void parent_of(const char *path, char out[AP_FS_PATH_MAX + 1])
{
    const char *slash = strrchr(path, '/');
    size_t n = (size_t)(slash - path);

    if (slash[1] == '\0') {
        out[0] = '\0';
        return;
    }
    snprintf(out, AP_FS_PATH_MAX + 1, "%.*s", (int)(n ? n : 1), path);
}

/* What can be known before the body: 0 and whether path exists; or -errno
 * after a reply. */
static int check_target(struct api_request *rq, const char *vm, const char *path, bool parents,
                        bool *ret_exists)
{
    struct agent_fs_reply rep;
    char parent[AP_FS_PATH_MAX + 1];
    struct nerr e = {0};
    int r;

    r = files_path_call(rq, vm, APO_LSTAT, path, &rep, &e);
    if (r == 0 && S_ISDIR(rep.attr.mode)) {
        api_reply_error(rq, 409, "%s: is a directory", path);
        return -EISDIR;
    }
    if (r == 0 || (r == -ENOENT && parents)) {
        *ret_exists = r == 0;
        return 0;
    }
    if (r != -ENOENT) {
        files_reply_error(rq, r, &e);
        return r;
    }
    *ret_exists = false;
    parent_of(path, parent);
    if (!parent[0])
        return 0;
    memset(&e, 0, sizeof(e));
    r = files_path_call(rq, vm, APO_STAT, parent, &rep, &e);
    if (r == 0 && !S_ISDIR(rep.attr.mode))
        r = nerr_set(&e, -ENOTDIR, "%s: not a directory", parent);
    if (r == -ENOENT || r == -ENOTDIR) {
        api_reply_error(rq, 404,
                        "%s: the parent directory does not exist (%s); add ?parents=1 "
                        "to create it",
                        path, e.msg);
        return r;
    }
    if (r < 0) {
        files_reply_error(rq, r, &e);
        return r;
    }
    return 0;
}

/* The body into the stream, then its end: 0 and the bytes written, or
 * -errno with e set; *ret_gone when the client left. */
static int pump(struct api_request *rq, struct engine_file_stream *s, uint64_t *ret_count,
                bool *ret_gone, struct nerr *e)
{
    uint8_t *chunk = malloc(FILES_UPLOAD_CHUNK);
    ssize_t n;
    int r = 0;

    if (!chunk)
        return -ENOMEM;
    while ((n = api_body_read(rq, chunk, FILES_UPLOAD_CHUNK)) > 0) {
        r = engine_file_stream_write(s, chunk, (size_t)n, e);
        if (r < 0)
            break;
    }
    free(chunk);
    if (r < 0)
        return r;
    if (n == -ESHUTDOWN)
        return nerr_set(e, -ECONNRESET, "the server is stopping: the upload was not finished");
    if (n == -ENOMEM)
        return n;
    if (n < 0) {
        *ret_gone = true;
        return nerr_set(e, (int)n, "the client went away before the end of the body");
    }
    return engine_file_stream_finish(s, ret_count, e);
}

void api_put_file(struct api_request *rq, char **params)
{
    static const char *const allowed[] = {"parents", "mode", NULL};
    struct ap_fs_req req = {.op = APO_WRITE_FILE, .present = 1u << APF_PATH | 1u << APF_FLAGS};
    struct engine_file_stream *s = NULL;
    struct agent_fs_reply rep;
    struct nerr e = {0};
    const char *path = files_path(rq, params);
    bool parents, exists = false, gone = false;
    uint64_t count = 0;
    uint32_t mode;
    int r, has_mode;

    if (!path || !files_query_check(rq, allowed) || files_query_bool(rq, "parents", &parents) < 0 ||
        (has_mode = files_query_mode(rq, "mode", &mode)) < 0)
        return;
    if (check_target(rq, params[0], path, parents, &exists) < 0)
        return;
    snprintf(req.path, sizeof(req.path), "%s", path);
    req.flags = AP_WRITE_ATOMIC | AP_WRITE_FSYNC | (parents ? AP_WRITE_PARENTS : 0);
    if (has_mode) {
        req.present |= 1u << APF_MODE;
        req.mode = mode;
    }
    r = engine_file_stream_open(rq->srv->eng, &rq->user, params[0], &req, &s, &e);
    if (r < 0) {
        files_reply_error(rq, r, &e);
        return;
    }
    api_body_begin(rq);
    r = pump(rq, s, &count, &gone, &e);
    /* on failure this cancels the write: the temporary file goes */
    engine_file_stream_free(s);
    if (gone) {
        api_reply_error(rq, 400, "%s", e.msg); /* for the log: nobody reads it */
        return;
    }
    if (r < 0) {
        files_reply_error(rq, r, &e);
        return;
    }
    memset(&e, 0, sizeof(e));
    r = files_path_call(rq, params[0], APO_LSTAT, path, &rep, &e);
    if (r < 0) {
        files_reply_error(rq, r, &e);
        return;
    }
    api_reply_json(rq, exists ? 200 : 201, files_entry_json("path", path, &rep.attr));
}
