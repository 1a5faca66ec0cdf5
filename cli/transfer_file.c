/* transfer_file.c — one file between here and a VM over the REST files API
 * (docs/api.md, "Files"): HEAD to learn what a guest path is, GET to
 * download, PUT to upload.
 *
 * Both directions stream through http_client_stream in TRANSFER_CHUNK
 * pieces, so memory stays constant whatever the file's size.  A download
 * goes to a temporary file in the target's directory, renamed over the
 * target only once every byte has come (a failure or an interruption
 * removes it: no partial file is ever left under the target's name).  An
 * upload is made atomic by the server: the guest file is replaced only
 * when the whole body arrived. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "macro.h"
#include "transfer.h"
#include "wire.h"

/* The temporary file of a download: ".<name>.noid-cp.XXXXXX", with at most
 * this much of the name so that it stays within NAME_MAX. */
#define TEMP_NAME_KEEP 128

/* The API path of r's files endpoint, "?query" appended when not NULL:
 * every byte of the guest path but the unreserved ones (RFC 3986) and '/'
 * percent-encoded, so spaces, UTF-8, '?', '#' and '%' reach the server as
 * they are.  malloc'd, NULL on ENOMEM. */
static char *files_url(const struct cp_remote *r, const char *query)
{
    static const char hex[] = "0123456789ABCDEF";
    struct buf b;

    buf_init(&b, 0);
    if (buf_printf(&b, "/v1/vms/%s/files", r->vm) < 0)
        goto nomem;
    for (const unsigned char *p = (const unsigned char *)r->path; *p; p++) {
        char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        bool keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= '0' && *p <= '9') || strchr("-._~/", *p);
        if (buf_append(&b, keep ? (const char *)p : enc, keep ? 1 : 3) < 0)
            goto nomem;
    }
    if (query && buf_printf(&b, "?%s", query) < 0)
        goto nomem;
    return buf_steal(&b, NULL); /* NUL-terminated */
nomem:
    buf_free(&b);
    return NULL;
}

/* The server's messages name the guest path first ("/x: stat: No such
 * file or directory"); label ("vm:/x") names it already. */
static const char *without_path(const char *msg, const char *label)
{
    const char *path = strchr(label, ':');
    size_t n;

    if (!path)
        return msg;
    path++;
    n = strlen(path);
    if (n > 0 && strncmp(msg, path, n) == 0 && msg[n] == ':' && msg[n + 1] == ' ')
        return msg + n + 2;
    return msg;
}

/* Print why the server refused a request on label: cp's form
 * ("noid cp: vm:/path: message") for what is about the file or the VM,
 * the CLI's usual advice for a bad token, a rate limit or an unknown
 * endpoint.  Returns the matching -errno. */
static int report_status(struct cli *c, const char *label, long status, const struct buf *body)
{
    json_object *o = NULL, *err;
    const char *msg = "no details";
    int r;

    if (body->len > 0 && wire_parse_object((char *)body->data, body->len, &o, NULL) == 0 &&
        json_object_object_get_ex(o, "error", &err) && json_object_is_type(err, json_type_string))
        msg = json_object_get_string(err);
    if (status == 401 || status == 429 ||
        (status == 404 && strncmp(msg, "no such endpoint", 16) == 0)) {
        r = cli_report_http_error(c, status, msg);
        goto out;
    }
    cp_error("%s: %s", label, without_path(msg, label));
    switch (status) {
    case 400:
        r = -EINVAL;
        break;
    case 403:
        r = -EACCES;
        break;
    case 404:
        r = -ENOENT;
        break;
    case 409:
        r = -EEXIST;
        break;
    case 413:
        r = -EFBIG;
        break;
    case 507:
        r = -ENOSPC;
        break;
    default:
        r = -EIO;
        break;
    }
out:
    json_object_put(o);
    return r;
}

static int refuse_body(void *user, const void *data, size_t len)
{
    (void)user, (void)data, (void)len;
    return -ECANCELED;
}

/* A HEAD answer has no body to say why it failed: ask again with GET,
 * whose error carries the server's {"error"}, and report that.  Should
 * the GET succeed after all (the file appeared), it is cut short. */
static int explain_head(struct cli *c, const char *path, const char *label, long head_status)
{
    struct http_stream s = {.write_body = refuse_body};
    struct http_response resp = {0};
    struct nerr e = {0};
    int r;

    r = http_client_stream(c->http, "GET", path, &s, &resp, &e);
    if (r == -ECANCELED || (r == 0 && resp.status >= 200 && resp.status < 300)) {
        cp_error("%s: the server answered HTTP %ld, then not", label, head_status);
        r = -EIO;
    } else if (r < 0) {
        cli_print_error("%s", e.msg);
    } else {
        r = report_status(c, label, resp.status, &resp.body);
    }
    http_response_free(&resp);
    return r;
}

/* ---- HEAD ---- */

struct head_ctx {
    struct remote_stat st;
    bool have_type;
};

/* The file headers of a HEAD or GET answer, into *st. */
static void parse_file_header(struct remote_stat *st, bool *have_type, const char *name,
                              const char *value)
{
    if (strcasecmp(name, "X-Noid-Type") == 0) {
        *have_type = true;
        if (strcmp(value, "file") == 0)
            st->type = REMOTE_FILE;
        else if (strcmp(value, "dir") == 0)
            st->type = REMOTE_DIR;
        else
            st->type = REMOTE_OTHER;
    } else if (strcasecmp(name, "X-Noid-Mode") == 0) {
        char *end;
        unsigned long m = strtoul(value, &end, 8);
        if (end != value && !*end)
            st->mode = (mode_t)(m & 07777);
    } else if (strcasecmp(name, "Content-Length") == 0) {
        char *end;
        long long n = strtoll(value, &end, 10);
        if (end != value && !*end && n >= 0)
            st->size = n;
    }
}

static void on_head_header(void *user, const char *name, const char *value)
{
    struct head_ctx *h = user;

    parse_file_header(&h->st, &h->have_type, name, value);
}

int remote_stat(struct cli *c, const struct cp_remote *rm, struct remote_stat *ret)
{
    struct head_ctx h = {.st = {.type = REMOTE_OTHER, .size = -1}};
    struct http_stream s = {.on_header = on_head_header, .user = &h};
    struct http_response resp = {0};
    struct nerr e = {0};
    _cleanup_free_ char *path = files_url(rm, NULL);
    char vm_path[128];
    int r;

    if (!path)
        return -ENOMEM;
    r = cli_require_auth(c);
    if (r < 0)
        return r;
    r = http_client_stream(c->http, "HEAD", path, &s, &resp, &e);
    if (r < 0) {
        cli_print_error("%s", e.msg);
        return r;
    }
    http_response_free(&resp);
    if (resp.status >= 200 && resp.status < 300) {
        if (!h.have_type) {
            cp_error("%s: the server did not say what this is (is it older than this client?)",
                     rm->label);
            return -EPROTO;
        }
        *ret = h.st;
        return 0;
    }
    if (resp.status != 404)
        return explain_head(c, path, rm->label, resp.status);
    /* no such file, or no such VM: only the second is worth the server's
     * words; the first gets cp's */
    snprintf(vm_path, sizeof(vm_path), "/v1/vms/%s", rm->vm);
    r = http_client_request(c->http, "GET", vm_path, NULL, 0, &resp, &e);
    if (r < 0) {
        cli_print_error("%s", e.msg);
        return r;
    }
    if (resp.status >= 200 && resp.status < 300) {
        r = -ENOENT;
    } else {
        report_status(c, rm->label, resp.status, &resp.body);
        r = -ENXIO; /* printed; not -ENOENT, which means "no such file" */
    }
    http_response_free(&resp);
    return r;
}

/* ---- uploads ---- */

struct upload_ctx {
    int fd;
    int64_t size; /* -1: not a regular file, read to its end */
    int64_t sent;
    int read_err; /* -errno of a failed read */
    struct progress prog;
};

static ssize_t upload_read(void *user, void *buf, size_t len)
{
    struct upload_ctx *u = user;
    ssize_t n;

    /* a file that grows meanwhile is sent as it was when we looked: the
     * server was promised Content-Length bytes */
    if (u->size >= 0 && (int64_t)len > u->size - u->sent)
        len = (size_t)(u->size - u->sent);
    if (len == 0)
        return 0;
    for (;;) {
        if (transfer_interrupted)
            return -EINTR;
        n = read(u->fd, buf, len < TRANSFER_CHUNK ? len : TRANSFER_CHUNK);
        if (n >= 0)
            break;
        if (errno != EINTR) {
            u->read_err = -errno;
            return u->read_err;
        }
    }
    u->sent += n;
    return n;
}

static int upload_progress(void *user, int64_t down_now, int64_t down_total, int64_t up_now,
                           int64_t up_total)
{
    struct upload_ctx *u = user;

    (void)down_now, (void)down_total, (void)up_total;
    if (transfer_interrupted)
        return 1;
    progress_update(&u->prog, up_now, -1);
    return 0;
}

/* The upload's answer: {"size"} must be what we sent. */
static int check_stored(const struct cp_remote *dst, const struct buf *body, int64_t sent)
{
    json_object *o = NULL, *v;
    int r = 0;

    if (wire_parse_object((char *)body->data, body->len, &o, NULL) == 0 &&
        json_object_object_get_ex(o, "size", &v) && json_object_get_int64(v) != sent) {
        cp_error("%s: the VM stored %lld bytes of the %lld sent", dst->label,
                 (long long)json_object_get_int64(v), (long long)sent);
        r = -EIO;
    }
    json_object_put(o);
    return r;
}

int remote_upload(struct cli *c, const char *src, const struct cp_remote *dst, int mode,
                  const struct cp_opts *o)
{
    struct upload_ctx u = {.fd = -1, .size = -1};
    struct http_stream s = {
        .read_body = upload_read,
        .progress = upload_progress,
        .user = &u,
    };
    struct http_response resp = {0};
    struct nerr e = {0};
    _cleanup_free_ char *path = NULL, *name = NULL;
    bool from_stdin = strcmp(src, "-") == 0;
    char query[32] = "";
    struct stat st;
    int r;

    r = cli_require_auth(c);
    if (r < 0)
        return r;
    if (from_stdin) {
        u.fd = STDIN_FILENO;
    } else {
        u.fd = open(src, O_RDONLY | O_CLOEXEC);
        if (u.fd < 0) {
            r = -errno;
            cp_error("cannot open '%s' for reading: %s", src, strerror(-r));
            return r;
        }
        if (fstat(u.fd, &st) == 0 && S_ISREG(st.st_mode))
            u.size = st.st_size;
    }
    s.body_size = u.size;
    if (mode >= 0)
        snprintf(query, sizeof(query), "mode=%04o", (unsigned)mode);
    path = files_url(dst, query[0] ? query : NULL);
    name = cp_basename(from_stdin ? dst->path : src);
    if (!path || !name) {
        r = -ENOMEM;
        cp_error("out of memory");
        goto out;
    }
    progress_start(&u.prog, o->progress, name, u.size);
    r = http_client_stream(c->http, "PUT", path, &s, &resp, &e);
    progress_end(&u.prog, r == 0 && resp.status >= 200 && resp.status < 300);
    if (r < 0) {
        if (transfer_interrupted)
            r = -EINTR;
        else if (u.read_err < 0)
            cp_error("cannot read '%s': %s", src, strerror(-u.read_err));
        else
            cli_print_error("%s", e.msg);
        goto out;
    }
    if (resp.status >= 200 && resp.status < 300)
        r = check_stored(dst, &resp.body, u.sent);
    else if (resp.status == 404 && resp.body.data &&
             strstr((const char *)resp.body.data, "parent directory")) {
        /* cp's words, not the API's advice (?parents=1) */
        cp_error("cannot create regular file '%s': No such file or directory", dst->label);
        r = -ENOENT;
    } else {
        r = report_status(c, dst->label, resp.status, &resp.body);
    }
out:
    http_response_free(&resp);
    if (!from_stdin && u.fd >= 0)
        close(u.fd);
    return r;
}

/* ---- downloads ---- */

struct download_ctx {
    int fd;
    int64_t got;
    int write_err; /* -errno of a failed write */
    struct remote_stat st;
    bool have_type;
    struct progress prog;
};

static void on_get_header(void *user, const char *name, const char *value)
{
    struct download_ctx *d = user;

    parse_file_header(&d->st, &d->have_type, name, value);
}

static int download_write(void *user, const void *data, size_t len)
{
    struct download_ctx *d = user;
    const char *p = data;

    /* it became a directory since our HEAD: its listing is no file content */
    if (d->have_type && d->st.type == REMOTE_DIR)
        return -EISDIR;
    while (len > 0) {
        ssize_t n;
        if (transfer_interrupted)
            return -EINTR;
        n = write(d->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            d->write_err = -errno;
            return d->write_err;
        }
        p += n;
        len -= (size_t)n;
        d->got += n;
    }
    return 0;
}

static int download_progress(void *user, int64_t down_now, int64_t down_total, int64_t up_now,
                             int64_t up_total)
{
    struct download_ctx *d = user;

    (void)up_now, (void)up_total;
    if (transfer_interrupted)
        return 1;
    progress_update(&d->prog, down_now, down_total > 0 ? down_total : -1);
    return 0;
}

/* A temporary file next to dst, for it to be renamed over dst: 0 and the
 * open fd and its name, or -errno (printed). */
static int temp_next_to(const char *dst, int *ret_fd, char **ret_name)
{
    _cleanup_free_ char *dir = cp_dirname(dst), *base = cp_basename(dst);
    char *name = NULL;
    int fd;

    if (!dir || !base ||
        asprintf(&name, "%s/.%.*s.noid-cp.XXXXXX", dir, TEMP_NAME_KEEP, base) < 0) {
        cp_error("out of memory");
        return -ENOMEM;
    }
    fd = mkostemp(name, O_CLOEXEC);
    if (fd < 0) {
        int r = -errno;
        cp_error("cannot create regular file '%s': %s", dst, strerror(-r));
        free(name);
        return r;
    }
    *ret_fd = fd;
    *ret_name = name;
    return 0;
}

int remote_download(struct cli *c, const struct cp_remote *src, const char *dst,
                    const struct cp_opts *o)
{
    struct download_ctx d = {.fd = -1, .st = {.type = REMOTE_OTHER, .size = -1}};
    struct http_stream s = {
        .on_header = on_get_header,
        .write_body = download_write,
        .progress = download_progress,
        .user = &d,
    };
    struct http_response resp = {0};
    struct nerr e = {0};
    _cleanup_free_ char *path = files_url(src, NULL), *name = cp_basename(src->path);
    _cleanup_free_ char *temp = NULL;
    bool to_stdout = strcmp(dst, "-") == 0;
    bool ok = false;
    int r;

    if (!path || !name) {
        cp_error("out of memory");
        return -ENOMEM;
    }
    r = cli_require_auth(c);
    if (r < 0)
        return r;
    if (to_stdout)
        d.fd = STDOUT_FILENO;
    else if ((r = temp_next_to(dst, &d.fd, &temp)) < 0)
        return r;
    progress_start(&d.prog, o->progress, name, -1);
    r = http_client_stream(c->http, "GET", path, &s, &resp, &e);
    ok = r == 0 && resp.status >= 200 && resp.status < 300;
    progress_end(&d.prog, ok);
    if (r < 0) {
        if (transfer_interrupted)
            r = -EINTR;
        else if (r == -EISDIR)
            cp_error("%s: became a directory while being copied", src->label);
        else if (d.write_err < 0)
            cp_error("cannot write '%s': %s", dst, strerror(-d.write_err));
        else
            cli_print_error("%s", e.msg);
        goto out;
    }
    if (!ok) {
        r = report_status(c, src->label, resp.status, &resp.body);
        goto out;
    }
    if (to_stdout)
        goto out;
    ok = false;
    /* the guest's permission bits, not its set-user/group-ID ones: an
     * untrusted guest must not make a setuid program here */
    if (d.st.mode && fchmod(d.fd, d.st.mode & 0777) < 0) {
        r = -errno;
        cp_error("cannot set the mode of '%s': %s", dst, strerror(-r));
        goto out;
    }
    r = close(d.fd) < 0 ? -errno : 0;
    d.fd = -1;
    if (r < 0) {
        cp_error("cannot write '%s': %s", dst, strerror(-r));
        goto out;
    }
    if (rename(temp, dst) < 0) {
        r = -errno;
        cp_error("cannot create regular file '%s': %s", dst, strerror(-r));
        goto out;
    }
    ok = true;
out:
    http_response_free(&resp);
    if (!to_stdout && d.fd >= 0)
        close(d.fd);
    if (temp && !ok)
        unlink(temp);
    return r;
}
