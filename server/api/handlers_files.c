/* handlers_files.c — the guest-files routes, /v1/vms/{name}/files{path}
 * (docs/api.md, "Files"): GET and HEAD (dispatched here to a directory
 * listing or a file download), DELETE and POST (mkdir, rename), and what
 * all of them share (files.h).  PUT is in files_upload.c.
 *
 * Every route runs on a worker thread (a file operation waits for the
 * guest's agent).  Errors keep the guest's errno meaning, with a mapping
 * of their own (files_status_for_errno): a full guest disk is 507 here,
 * where the engine's usual mapping would make EDQUOT a 429. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "encoding.h"
#include "files.h"
#include "http_range.h"
#include "log.h"
#include "timeutil.h"
#include "wire.h"

const char *files_path(struct api_request *rq, char **params)
{
    const char *path = params[1];
    size_t len = path ? strlen(path) : 0;

    if (rq->raw_nul) { /* http.c refuses these already */
        api_reply_error(rq, 400,
                        "the URL contains %%00: a guest path or a query value "
                        "cannot hold a NUL byte");
        return NULL;
    }
    if (len == 0 || path[0] != '/') {
        api_reply_error(rq, 400, "empty guest path");
        return NULL;
    }
    if (len > AP_FS_PATH_MAX) {
        api_reply_error(rq, 400, "the guest path is %zu bytes long; the limit is %d", len,
                        AP_FS_PATH_MAX);
        return NULL;
    }
    return path;
}

struct query_check {
    const char *const *allowed;
    const char *bad;
};

static enum MHD_Result check_key(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    struct query_check *q = cls;

    (void)kind, (void)value;
    for (size_t i = 0; q->allowed[i]; i++)
        if (strcmp(key, q->allowed[i]) == 0)
            return MHD_YES;
    q->bad = key;
    return MHD_NO;
}

bool files_query_check(struct api_request *rq, const char *const *allowed)
{
    struct query_check q = {allowed, NULL};
    char list[128] = "";

    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, check_key, &q);
    if (!q.bad)
        return true;
    for (size_t i = 0; allowed[i]; i++) {
        size_t n = strlen(list);
        snprintf(list + n, sizeof(list) - n, "%s%s", i ? ", " : "", allowed[i]);
    }
    api_reply_error(rq, 400, "unknown query parameter '%.64s' for %s (allowed: %s)", q.bad,
                    rq->method, list[0] ? list : "none");
    return false;
}

int files_query_bool(struct api_request *rq, const char *key, bool *ret)
{
    const char *v = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);

    *ret = false;
    if (!v)
        return 0;
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0) {
        *ret = true;
        return 0;
    }
    if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
        return 0;
    api_reply_error(rq, 400, "query parameter '%s' must be 1 or 0 (true or false)", key);
    return -EINVAL;
}

int files_query_mode(struct api_request *rq, const char *key, uint32_t *ret)
{
    const char *v = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
    uint32_t mode = 0;
    size_t i;

    if (!v)
        return 0;
    for (i = 0; v[i] >= '0' && v[i] <= '7' && mode <= 07777; i++)
        mode = mode * 8 + (uint32_t)(v[i] - '0');
    if (i == 0 || v[i] != '\0' || mode > 07777) {
        api_reply_error(rq, 400,
                        "query parameter '%s' must be octal permission bits, "
                        "0 to 07777 (like 0644)",
                        key);
        return -EINVAL;
    }
    *ret = mode;
    return 1;
}

unsigned files_status_for_errno(int r)
{
    switch (-r) {
    case ENOENT: /* also: no such VM (another user's VMs too) */
    case ENOTDIR:
        return 404;
    case EEXIST:
    case ENOTEMPTY:
    case EISDIR:
    case EBUSY: /* also: the VM is being created or restored */
    case ESRCH: /* the VM is not running */
        return 409;
    case EINVAL:
    case ENAMETOOLONG:
    case ELOOP:
    case EXDEV:
        return 400;
    case EACCES:
    case EPERM:
    case EROFS:
        return 403;
    case EFBIG:
    case E2BIG:
        return 413;
    case ENOSPC:
    case EDQUOT:
        return 507;
    case EPROTONOSUPPORT:
    case EOPNOTSUPP:
        return 501;
    case EPROTO:
        return 502;
    case ECONNRESET:
        return 503;
    case ETIMEDOUT:
        return 504;
    default:
        return 500;
    }
}

void files_reply_error(struct api_request *rq, int r, const struct nerr *e)
{
    unsigned status = files_status_for_errno(r);
    const char *msg = e && e->msg[0] ? e->msg : strerror(-r);

    if (status >= 500 && status != 507)
        log_warn("%s %s failed (%u): %s", rq->method, rq->path, status, msg);
    if (r == -EPROTONOSUPPORT)
        api_reply_error(rq, status, "the guest agent is too old for file access: %s", msg);
    else
        api_reply_error(rq, status, "%s", msg);
}

int files_path_call(struct api_request *rq, const char *vm, uint8_t op, const char *path,
                    struct agent_fs_reply *ret, struct nerr *e)
{
    struct ap_fs_req req = {.op = op, .present = 1u << APF_PATH};

    /* files_path checked the length */
    snprintf(req.path, sizeof(req.path), "%s", path);
    return engine_file_call(rq->srv->eng, &rq->user, vm, &req, ret, e);
}

const char *files_type_name(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG:
        return "file";
    case S_IFDIR:
        return "dir";
    case S_IFLNK:
        return "symlink";
    case S_IFIFO:
        return "fifo";
    case S_IFSOCK:
        return "socket";
    case S_IFCHR:
        return "char";
    case S_IFBLK:
        return "block";
    default:
        return "unknown";
    }
}

/* RFC 3339, UTC, nanoseconds: "2026-11-26T15:55:21.123456789Z". */
static void rfc3339_ns(const struct ap_fs_time *t, char out[RFC3339_LEN + 10])
{
    char base[RFC3339_LEN];
    size_t n;

    time_rfc3339((time_t)t->sec, base);
    n = strlen(base);
    if (n > 0 && base[n - 1] == 'Z')
        base[n - 1] = '\0';
    snprintf(out, RFC3339_LEN + 10, "%s.%09uZ", base, t->nsec < 1000000000u ? t->nsec : 0);
}

/* s as a JSON string: itself when UTF-8, else with U+FFFD for each byte
 * that is not (the exact bytes then go in a _b64 field). */
static json_object *lossy_json_string(const char *s, size_t n)
{
    struct buf b;
    json_object *o;
    size_t i = 0;

    buf_init(&b, 0);
    while (i < n) {
        uint32_t cp;
        size_t l = (uint8_t)s[i] < 0x80 ? 1 : utf8_sequence((const uint8_t *)s + i, n - i, &cp);
        if (l == 0) {
            buf_append(&b, "\xef\xbf\xbd", 3);
            i++;
        } else {
            buf_append(&b, s + i, l);
            i += l;
        }
    }
    o = json_object_new_string_len(b.data ? (const char *)b.data : "", (int)b.len);
    buf_free(&b);
    return o;
}

json_object *files_entry_json(const char *key, const char *name, const struct ap_fs_attr *a)
{
    json_object *o = json_object_new_object();
    size_t len = strlen(name);
    char mode[8], mtime[RFC3339_LEN + 10];

    if (!o)
        return NULL;
    if (utf8_is_valid(name, len)) {
        json_object_object_add(o, key, json_object_new_string_len(name, (int)len));
    } else {
        char b64key[16];
        char *b64 = base64_encode(name, len);
        snprintf(b64key, sizeof(b64key), "%s_b64", key);
        json_object_object_add(o, key, lossy_json_string(name, len));
        if (b64)
            json_object_object_add(o, b64key, json_object_new_string(b64));
        free(b64);
    }
    snprintf(mode, sizeof(mode), "%04o", a->mode & 07777);
    rfc3339_ns(&a->mtime, mtime);
    json_object_object_add(o, "type", json_object_new_string(files_type_name(a->mode)));
    json_object_object_add(o, "size", json_object_new_int64((int64_t)a->size));
    json_object_object_add(o, "mode", json_object_new_string(mode));
    json_object_object_add(o, "mtime", json_object_new_string(mtime));
    return o;
}

int files_entry_append(struct buf *b, const char *name, const struct ap_fs_attr *a)
{
    json_object *o = files_entry_json("name", name, a);
    const char *text;
    size_t len;
    int r;

    if (!o)
        return -ENOMEM;
    text = wire_to_string(o, &len);
    r = text ? buf_append(b, text, len) : -ENOMEM;
    json_object_put(o);
    return r;
}

void files_add_entry_headers(struct MHD_Response *resp, const struct ap_fs_attr *a)
{
    char mode[8], date[HTTP_DATE_LEN];

    snprintf(mode, sizeof(mode), "%04o", a->mode & 07777);
    http_date((time_t)a->mtime.sec, date);
    MHD_add_response_header(resp, "X-Noid-Type", files_type_name(a->mode));
    MHD_add_response_header(resp, "X-Noid-Mode", mode);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, date);
}

/* GET and HEAD: a directory's listing or a file's bytes (stat follows
 * symlinks); anything else is 409. */
void api_get_file(struct api_request *rq, char **params)
{
    static const char *const allowed[] = {NULL};
    bool head = strcmp(rq->method, "HEAD") == 0;
    struct agent_fs_reply rep;
    struct nerr e = {0};
    const char *path = files_path(rq, params);
    int r;

    if (!path || !files_query_check(rq, allowed))
        return;
    r = files_path_call(rq, params[0], APO_STAT, path, &rep, &e);
    if (r < 0) {
        files_reply_error(rq, r, &e);
        return;
    }
    if (S_ISDIR(rep.attr.mode))
        files_send_dir(rq, params[0], path, &rep.attr); /* HEAD: libmicrohttpd drops the body */
    else if (S_ISREG(rep.attr.mode))
        files_send_file(rq, params[0], path, &rep.attr, head);
    else
        api_reply_error(rq, 409, "%s: not a regular file or directory (a %s)", path,
                        files_type_name(rep.attr.mode));
}

/* Whether path names the root whatever the guest's tree: only "." and ".."
 * components ("/", "//", "/./..", ...).  Not a normalisation: just a guard
 * against rm -rf / through an alias. */
static bool is_root_alias(const char *path)
{
    for (const char *p = path; *p;) {
        size_t n = strcspn(p, "/");
        if (n > 2 || (n > 0 && strspn(p, ".") != n))
            return false;
        p += n;
        p += strspn(p, "/");
    }
    return true;
}

/* DELETE: a file, a symlink (not what it points to) or an empty directory;
 * with ?recursive=1 a whole tree (rm -rf, symlinks not followed). */
void api_delete_file(struct api_request *rq, char **params)
{
    static const char *const allowed[] = {"recursive", NULL};
    struct agent_fs_reply rep;
    struct nerr e = {0};
    const char *path = files_path(rq, params);
    bool recursive;
    int r;

    if (!path || !files_query_check(rq, allowed) ||
        files_query_bool(rq, "recursive", &recursive) < 0)
        return;
    if (is_root_alias(path)) {
        api_reply_error(rq, 400, "refusing to remove the guest's root directory");
        return;
    }
    if (recursive) {
        r = engine_file_remove_tree(rq->srv->eng, &rq->user, params[0], path, &e);
    } else {
        /* unlink(2) refuses a directory with EISDIR on Linux: one round
         * trip for the common case, two for a directory */
        r = files_path_call(rq, params[0], APO_UNLINK, path, &rep, &e);
        if (r == -EISDIR) {
            memset(&e, 0, sizeof(e));
            r = files_path_call(rq, params[0], APO_RMDIR, path, &rep, &e);
            if (r == -ENOTEMPTY) {
                api_reply_error(rq, 409,
                                "%s: directory not empty (add ?recursive=1 to remove "
                                "it with everything in it)",
                                path);
                return;
            }
        }
    }
    if (r < 0) {
        files_reply_error(rq, r, &e);
        return;
    }
    api_reply_empty(rq, 204);
}

/* Reply status with the entry of path (an LSTAT: a rename may move a
 * symlink); attr if the operation's answer carried it already. */
static void reply_entry(struct api_request *rq, unsigned status, const char *vm, const char *path,
                        const struct agent_fs_reply *done)
{
    struct agent_fs_reply rep;
    struct nerr e = {0};
    int r;

    if (done && done->has_attr) {
        rep = *done;
    } else {
        r = files_path_call(rq, vm, APO_LSTAT, path, &rep, &e);
        if (r < 0) {
            files_reply_error(rq, r, &e);
            return;
        }
    }
    api_reply_json(rq, status, files_entry_json("path", path, &rep.attr));
}

static void post_mkdir(struct api_request *rq, const char *vm, const char *path)
{
    struct ap_fs_req req = {.op = APO_MKDIR, .present = 1u << APF_PATH};
    struct agent_fs_reply rep;
    struct nerr e = {0};
    bool parents;
    uint32_t mode;
    int r, has_mode;

    if (files_query_bool(rq, "parents", &parents) < 0 ||
        (has_mode = files_query_mode(rq, "mode", &mode)) < 0)
        return;
    if (parents) {
        /* mkdir -p: an existing directory is success (200, not created) */
        r = files_path_call(rq, vm, APO_STAT, path, &rep, &e);
        if (r == 0 && S_ISDIR(rep.attr.mode)) {
            api_reply_json(rq, 200, files_entry_json("path", path, &rep.attr));
            return;
        }
        if (r == 0) {
            api_reply_error(rq, 409, "%s: exists and is not a directory (a %s)", path,
                            files_type_name(rep.attr.mode));
            return;
        }
        if (r != -ENOENT) {
            files_reply_error(rq, r, &e);
            return;
        }
        memset(&e, 0, sizeof(e));
        req.present |= 1u << APF_FLAGS;
        req.flags = AP_MKDIR_PARENTS;
    }
    if (has_mode) {
        req.present |= 1u << APF_MODE;
        req.mode = mode;
    }
    snprintf(req.path, sizeof(req.path), "%s", path);
    r = engine_file_call(rq->srv->eng, &rq->user, vm, &req, &rep, &e);
    if (r < 0) {
        files_reply_error(rq, r, &e);
        return;
    }
    reply_entry(rq, 201, vm, path, &rep);
}

static void post_rename(struct api_request *rq, const char *vm, const char *path)
{
    struct ap_fs_req req = {.op = APO_RENAME, .present = 1u << APF_PATH | 1u << APF_PATH2};
    const char *to = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "to");
    struct agent_fs_reply rep;
    struct nerr e = {0};
    int r;

    if (!to || to[0] != '/') {
        api_reply_error(rq, 400, "rename needs ?to=<the new absolute guest path>");
        return;
    }
    if (strlen(to) > AP_FS_PATH_MAX) {
        api_reply_error(rq, 400, "the new guest path is %zu bytes long; the limit is %d",
                        strlen(to), AP_FS_PATH_MAX);
        return;
    }
    snprintf(req.path, sizeof(req.path), "%s", path);
    snprintf(req.path2, sizeof(req.path2), "%s", to);
    r = engine_file_call(rq->srv->eng, &rq->user, vm, &req, &rep, &e);
    if (r < 0) {
        files_reply_error(rq, r, &e);
        return;
    }
    reply_entry(rq, 200, vm, to, NULL);
}

/* POST ?op=mkdir[&parents=1][&mode=0755] or ?op=rename&to=/new/path */
void api_post_file(struct api_request *rq, char **params)
{
    static const char *const mkdir_allowed[] = {"op", "parents", "mode", NULL};
    static const char *const rename_allowed[] = {"op", "to", NULL};
    const char *path = files_path(rq, params);
    const char *op;

    if (!path)
        return;
    op = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "op");
    if (op && strcmp(op, "mkdir") == 0) {
        if (files_query_check(rq, mkdir_allowed))
            post_mkdir(rq, params[0], path);
    } else if (op && strcmp(op, "rename") == 0) {
        if (files_query_check(rq, rename_allowed))
            post_rename(rq, params[0], path);
    } else {
        api_reply_error(rq, 400, "POST on a guest path needs ?op=mkdir or ?op=rename");
    }
}
