/* files_list.c — GET and HEAD on a guest directory: its entries as a JSON
 * array sorted by name (bytewise), each {"name","type","size","mode",
 * "mtime"} from the guest's lstat (a symlink is listed as a symlink).
 *
 * The entries come through a READDIR stream (batches under the agent's
 * flow control, so the guest never builds the whole listing); they are
 * held here only to be sorted, at most FILES_DIR_MAX_ENTRIES of them, and
 * the body is built as text, entry by entry, instead of as one big JSON
 * tree. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"

struct dir_entry {
    char *name;
    struct ap_fs_attr attr;
};

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct dir_entry *)a)->name, ((const struct dir_entry *)b)->name);
}

static void entries_free(struct dir_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

/* All entries of path into *ret (malloc'd), or -errno with e set. */
static int read_entries(struct api_request *rq, const char *vm, const char *path,
                        struct dir_entry **ret, size_t *ret_n, struct nerr *e)
{
    struct ap_fs_req req = {.op = APO_READDIR, .present = 1u << APF_PATH};
    struct engine_file_stream *s = NULL;
    struct dir_entry *v = NULL;
    size_t n = 0, cap = 0;
    char name[AP_FS_NAME_MAX + 1];
    struct ap_fs_attr a;
    int r;

    snprintf(req.path, sizeof(req.path), "%s", path);
    r = engine_file_stream_open(rq->srv->eng, &rq->user, vm, &req, &s, e);
    while (r >= 0) {
        r = engine_file_stream_next_dirent(s, name, &a, -1, e);
        if (r <= 0)
            break;
        if (n == FILES_DIR_MAX_ENTRIES) {
            r = nerr_set(e, -E2BIG,
                         "%s: more than %d entries, the most a listing returns; list it with "
                         "exec (ls) instead",
                         path, FILES_DIR_MAX_ENTRIES);
            break;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct dir_entry *nv = realloc(v, ncap * sizeof(*v));
            if (!nv) {
                r = -ENOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        v[n].name = strdup(name);
        if (!v[n].name) {
            r = -ENOMEM;
            break;
        }
        v[n++].attr = a;
    }
    engine_file_stream_free(s);
    if (r < 0) {
        entries_free(v, n);
        return r;
    }
    *ret = v;
    *ret_n = n;
    return 0;
}

void files_send_dir(struct api_request *rq, const char *vm, const char *path,
                    const struct ap_fs_attr *a)
{
    struct MHD_Response *resp;
    struct dir_entry *v = NULL;
    struct nerr e = {0};
    struct buf b;
    size_t n = 0, len;
    char *text;
    int r = 0;

    if (rq->response)
        return;
    /* HEAD too: its Content-Length is the listing's, and libmicrohttpd
     * (0.9.75) would end a HEAD answer of unknown length with a chunked
     * terminator, bytes a keep-alive client takes for the next answer */
    r = read_entries(rq, vm, path, &v, &n, &e);
    if (r < 0) {
        files_reply_error(rq, r, &e);
        return;
    }
    if (n > 1)
        qsort(v, n, sizeof(*v), entry_cmp);
    /* the guest picks the names: bound the text too, not only the count
     * (a name of control bytes is six times longer in JSON) */
    buf_init(&b, FILES_LIST_MAX_BYTES);
    r = buf_append(&b, "[", 1);
    for (size_t i = 0; i < n && r >= 0; i++) {
        if (i > 0)
            r = buf_append(&b, ",", 1);
        if (r >= 0)
            r = files_entry_append(&b, v[i].name, &v[i].attr);
    }
    if (r >= 0)
        r = buf_append(&b, "]", 1);
    entries_free(v, n);
    if (r == -E2BIG) {
        buf_free(&b);
        api_reply_error(rq, 413, "%s: the listing is larger than %u MiB", path,
                        FILES_LIST_MAX_BYTES >> 20);
        return;
    }
    if (r < 0) {
        buf_free(&b);
        api_reply_error(rq, 500, "out of memory");
        return;
    }
    text = buf_steal(&b, &len);
    resp = MHD_create_response_from_buffer_with_free_callback(len, text, free);
    if (!resp)
        free(text);
    if (!resp) {
        api_reply_error(rq, 500, "out of memory");
        return;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    files_add_entry_headers(resp, a);
    rq->response = resp;
    rq->status = 200;
}
