/* qmp.c — see qmp.h. */
#include "qmp.h"

#include <errno.h>
#include <string.h>

#include "buf.h"
#include "textutil.h"
#include "timeutil.h"
#include "unixsock.h"
#include "vmm.h"

struct qmp {
    int fd;
    struct buf in;
};

/* Read one newline-terminated JSON message. */
static int qmp_read_message(struct qmp *q, int64_t deadline_ms, json_object **ret, struct nerr *e)
{
    for (;;) {
        uint8_t *nl = q->in.len ? memchr(q->in.data, '\n', q->in.len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - q->in.data);
            json_object *o;
            *nl = '\0'; /* parse exactly this line */
            o = json_tokener_parse((const char *)q->in.data);
            buf_consume(&q->in, n + 1);
            if (!o)
                return nerr_set(e, -EPROTO, "QMP: unparsable message from QEMU");
            *ret = o;
            return 0;
        }
        int64_t left = deadline_ms - time_mono_ms();
        if (left <= 0)
            return nerr_set(e, -ETIMEDOUT, "QMP: QEMU did not answer in time");
        int r = fd_wait_readable(q->fd, (int)left);
        if (r < 0)
            return nerr_set(e, r, "QMP: %s", strerror(-r));
        if (r == 0)
            continue;
        char chunk[8192];
        ssize_t n = read(q->fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return nerr_set(e, -errno, "QMP: read: %s", strerror(errno));
        if (n == 0)
            return nerr_set(e, -ECONNRESET, "QMP: QEMU closed the connection");
        if (buf_append(&q->in, chunk, (size_t)n) < 0)
            return nerr_set(e, -EPROTO, "QMP: message longer than %d bytes", QMP_MAX_LINE);
    }
}

int qmp_execute(struct qmp *q, const char *cmd, json_object *args, int passfd,
                json_object **ret_return, struct nerr *e)
{
    json_object *req = json_object_new_object();
    int64_t deadline = time_mono_ms() + QMP_TIMEOUT_MS;
    const char *text;
    size_t len;
    int r;

    json_object_object_add(req, "execute", json_object_new_string(cmd));
    if (args)
        json_object_object_add(req, "arguments", args);
    text = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &len);
    {
        char *line = malloc(len + 2);
        if (!line) {
            json_object_put(req);
            return -ENOMEM;
        }
        memcpy(line, text, len);
        line[len] = '\n';
        r = passfd >= 0 ? fd_send_with_fd(q->fd, line, len + 1, passfd)
                        : fd_write_all(q->fd, line, len + 1);
        free(line);
    }
    json_object_put(req);
    if (r < 0)
        return nerr_set(e, r, "QMP: cannot send '%s': %s", cmd, strerror(-r));

    for (;;) {
        json_object *msg = NULL, *v;
        r = qmp_read_message(q, deadline, &msg, e);
        if (r < 0)
            return r;
        if (json_object_object_get_ex(msg, "return", &v)) {
            if (ret_return)
                *ret_return = json_object_get(v);
            json_object_put(msg);
            return 0;
        }
        if (json_object_object_get_ex(msg, "error", &v)) {
            json_object *desc = NULL;
            const char *d = "unknown error";
            char safe[200];
            if (json_object_object_get_ex(v, "desc", &desc) && json_object_get_string(desc))
                d = json_object_get_string(desc);
            /* QEMU's text reaches API errors and logs: escaped */
            text_sanitize(d, strlen(d), safe, sizeof(safe));
            nerr_set(e, -EIO, "QEMU refused '%s': %s", cmd, safe);
            json_object_put(msg);
            return -EIO;
        }
        json_object_put(msg); /* an event: skip */
    }
}

int qmp_open(const char *vm_dir, struct qmp **ret, struct nerr *e)
{
    struct qmp *q = calloc(1, sizeof(*q));
    json_object *greeting = NULL;
    int r;

    if (!q)
        return -ENOMEM;
    q->fd = -1;
    buf_init(&q->in, QMP_MAX_LINE);
    r = unix_connect(vm_dir, VM_FILE_QMP_SOCK, &q->fd);
    if (r < 0) {
        nerr_set(e, r, "cannot connect to QEMU's QMP socket: %s", strerror(-r));
        goto fail;
    }
    r = qmp_read_message(q, time_mono_ms() + QMP_TIMEOUT_MS, &greeting, e);
    if (r < 0)
        goto fail;
    if (!json_object_object_get_ex(greeting, "QMP", NULL)) {
        json_object_put(greeting);
        r = nerr_set(e, -EPROTO, "QMP: unexpected greeting");
        goto fail;
    }
    json_object_put(greeting);
    r = qmp_execute(q, "qmp_capabilities", NULL, -1, NULL, e);
    if (r < 0)
        goto fail;
    *ret = q;
    return 0;
fail:
    qmp_close(q);
    return r;
}

void qmp_close(struct qmp *q)
{
    if (!q)
        return;
    if (q->fd >= 0)
        close(q->fd);
    buf_free(&q->in);
    free(q);
}
