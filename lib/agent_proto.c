/* agent_proto.c — see agent_proto.h.  Pure functions over byte buffers; no
 * I/O and no allocation except in the EXEC and FS request encoders and the
 * EXEC request decoder. */
#include "agent_proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return ((uint64_t)get32(p) << 32) | get32(p + 4);
}

bool ap_type_is_known(uint8_t t)
{
    return (t >= AP_HELLO && t <= AP_SET_NETWORK) || (t >= AP_HELLO_ACK && t <= AP_FS_DIRENTS);
}

const char *ap_type_name(uint8_t t)
{
    static const char *const host[] = {"?",      "HELLO",    "EXEC",        "STDIN",      "KILL",
                                       "RESIZE", "SET_TIME", "ADD_ENTROPY", "PING",       "OUT_ACK",
                                       "FS",     "FS_DATA",  "FS_CANCEL",   "SET_NETWORK"};
    static const char *const agent[] = {"HELLO_ACK", "STARTED",  "STDOUT",    "STDERR", "EXIT",
                                        "WINDOW",    "OK",       "ERROR",     "PONG",   "FS_REPLY",
                                        "FS_ERRNO",  "FS_RDATA", "FS_DIRENTS"};

    if (t >= AP_HELLO && t <= AP_SET_NETWORK)
        return host[t];
    if (t >= AP_HELLO_ACK && t <= AP_FS_DIRENTS)
        return agent[t - AP_HELLO_ACK];
    return "UNKNOWN";
}

void ap_header_encode(uint8_t out[AP_HEADER_LEN], uint8_t type, uint32_t stream, uint32_t len)
{
    put16(out, AP_MAGIC);
    out[2] = type;
    out[3] = 0;
    put32(out + 4, stream);
    put32(out + 8, len);
}

int ap_frame_parse(const uint8_t *buf, size_t len, struct ap_frame *ret)
{
    uint32_t plen;

    if (len < 2)
        return 0;
    if (get16(buf) != AP_MAGIC)
        return -EBADMSG;
    if (len < AP_HEADER_LEN)
        return 0;
    if (!ap_type_is_known(buf[2]) || buf[3] != 0)
        return -EBADMSG;
    plen = get32(buf + 8);
    if (plen > AP_MAX_PAYLOAD)
        return -EMSGSIZE;
    if (len - AP_HEADER_LEN < plen)
        return 0;
    ret->type = buf[2];
    ret->flags = buf[3];
    ret->stream = get32(buf + 4);
    ret->len = plen;
    ret->payload = buf + AP_HEADER_LEN;
    return (int)(AP_HEADER_LEN + plen);
}

size_t ap_resync(const uint8_t *buf, size_t len)
{
    for (size_t i = 1; i + 1 < len; i++)
        if (get16(buf + i) == AP_MAGIC)
            return i;
    /* a lone first magic byte at the end may start the next frame */
    if (len > 1 && buf[len - 1] == (AP_MAGIC >> 8))
        return len - 1;
    return len;
}

size_t ap_hello_encode(const struct ap_hello *h, bool with_version, uint8_t *out)
{
    size_t n = 12;

    put32(out, h->version);
    put32(out + 4, (uint32_t)(h->nonce >> 32));
    put32(out + 8, (uint32_t)h->nonce);
    if (with_version) {
        size_t vl = strnlen(h->agent_version, sizeof(h->agent_version) - 1);
        memcpy(out + 12, h->agent_version, vl);
        n += vl;
    }
    return n;
}

int ap_hello_decode(const uint8_t *p, size_t len, struct ap_hello *ret)
{
    size_t vl;

    if (len < 12 || len > AP_HELLO_MAX)
        return -EBADMSG;
    ret->version = get32(p);
    ret->nonce = ((uint64_t)get32(p + 4) << 32) | get32(p + 8);
    vl = len - 12;
    if (vl >= sizeof(ret->agent_version) || memchr(p + 12, '\0', vl))
        return -EBADMSG;
    memcpy(ret->agent_version, p + 12, vl);
    ret->agent_version[vl] = '\0';
    return 0;
}

void ap_exit_encode(const struct ap_exit *x, uint8_t out[AP_EXIT_LEN])
{
    put32(out, (uint32_t)x->code);
    put32(out + 4, x->signal);
    out[8] = x->timed_out ? 1 : 0;
}

int ap_exit_decode(const uint8_t *p, size_t len, struct ap_exit *ret)
{
    if (len != AP_EXIT_LEN || p[8] > 1)
        return -EBADMSG;
    ret->code = (int32_t)get32(p);
    ret->signal = get32(p + 4);
    ret->timed_out = p[8] == 1;
    if (ret->signal > 64)
        return -EBADMSG;
    return 0;
}

void ap_u32_encode(uint32_t v, uint8_t out[4])
{
    put32(out, v);
}

int ap_u32_decode(const uint8_t *p, size_t len, uint32_t *ret)
{
    if (len != 4)
        return -EBADMSG;
    *ret = get32(p);
    return 0;
}

void ap_u64_encode(uint64_t v, uint8_t out[8])
{
    put32(out, (uint32_t)(v >> 32));
    put32(out + 4, (uint32_t)v);
}

int ap_u64_decode(const uint8_t *p, size_t len, uint64_t *ret)
{
    if (len != 8)
        return -EBADMSG;
    *ret = ((uint64_t)get32(p) << 32) | get32(p + 4);
    return 0;
}

bool ap_net_in_subnet(const uint8_t a[4], const uint8_t b[4], uint8_t prefix)
{
    uint32_t mask = prefix == 0 ? 0 : prefix >= 32 ? UINT32_MAX : ~(UINT32_MAX >> prefix);

    return ((get32(a) ^ get32(b)) & mask) == 0;
}

void ap_net_encode(const struct ap_net *n, uint8_t out[AP_NET_LEN])
{
    memset(out, 0, AP_NET_LEN);
    if (!n->up)
        return;
    out[0] = AP_NET_FLAG_UP;
    memcpy(out + 1, n->mac, 6);
    memcpy(out + 7, n->addr, 4);
    out[11] = n->prefix;
    memcpy(out + 12, n->gateway, 4);
    memcpy(out + 16, n->dns, 4);
}

int ap_net_decode(const uint8_t *p, size_t len, struct ap_net *ret)
{
    static const uint8_t zero[AP_NET_LEN];
    struct ap_net n = {0};

    if (len != AP_NET_LEN || (p[0] & ~AP_NET_FLAG_UP) != 0)
        return -EINVAL;
    if (!(p[0] & AP_NET_FLAG_UP)) {
        /* nothing to configure: stray bytes are a host bug, not a hint */
        if (memcmp(p + 1, zero, AP_NET_LEN - 1) != 0)
            return -EINVAL;
        *ret = n;
        return 0;
    }
    n.up = true;
    memcpy(n.mac, p + 1, 6);
    memcpy(n.addr, p + 7, 4);
    n.prefix = p[11];
    memcpy(n.gateway, p + 12, 4);
    memcpy(n.dns, p + 16, 4);
    /* a multicast source MAC is invalid on Ethernet; the kernel would
     * refuse it too, but only after the addresses were flushed */
    if ((n.mac[0] & 1) || memcmp(n.mac, zero, 6) == 0)
        return -EINVAL;
    if (n.prefix == 0 || n.prefix > 32 || get32(n.addr) == 0)
        return -EINVAL;
    if (get32(n.gateway) != 0 &&
        (!ap_net_in_subnet(n.gateway, n.addr, n.prefix) || get32(n.gateway) == get32(n.addr)))
        return -EINVAL;
    *ret = n;
    return 0;
}

void ap_resize_encode(uint16_t rows, uint16_t cols, uint8_t out[4])
{
    put16(out, rows);
    put16(out + 2, cols);
}

int ap_resize_decode(const uint8_t *p, size_t len, uint16_t *rows, uint16_t *cols)
{
    if (len != 4)
        return -EBADMSG;
    *rows = get16(p);
    *cols = get16(p + 2);
    return 0;
}

/* ---- EXEC request TLVs ---- */

struct tlv_out {
    uint8_t *buf;
    size_t len, cap;
    int err;
};

static void tlv_put(struct tlv_out *w, uint16_t tag, const void *val, size_t vlen)
{
    size_t need;

    if (w->err)
        return;
    if (vlen > AP_MAX_STRING || w->len + 6 + vlen > AP_MAX_PAYLOAD) {
        w->err = -E2BIG;
        return;
    }
    need = w->len + 6 + vlen;
    if (need > w->cap) {
        size_t ncap = w->cap ? w->cap : 512;
        uint8_t *p;
        while (ncap < need)
            ncap *= 2;
        p = realloc(w->buf, ncap);
        if (!p) {
            w->err = -ENOMEM;
            return;
        }
        w->buf = p;
        w->cap = ncap;
    }
    put16(w->buf + w->len, tag);
    put32(w->buf + w->len + 2, (uint32_t)vlen);
    if (vlen)
        memcpy(w->buf + w->len + 6, val, vlen);
    w->len += 6 + vlen;
}

int ap_exec_req_encode(const struct ap_exec_req *r, uint8_t **ret, size_t *ret_len)
{
    struct tlv_out w = {0};
    uint8_t b4[4], b2[2], b1;

    if (r->argc == 0 || r->argc > AP_MAX_ARGS || r->nenv > AP_MAX_ENV)
        return -E2BIG;
    for (size_t i = 0; i < r->argc; i++)
        tlv_put(&w, APT_ARG, r->argv[i], strlen(r->argv[i]));
    for (size_t i = 0; i < r->nenv; i++)
        tlv_put(&w, APT_ENV, r->env[i], strlen(r->env[i]));
    if (r->cwd)
        tlv_put(&w, APT_CWD, r->cwd, strlen(r->cwd));
    b1 = r->tty;
    tlv_put(&w, APT_TTY, &b1, 1);
    b1 = r->stdin_open;
    tlv_put(&w, APT_STDIN, &b1, 1);
    put32(b4, r->timeout_ms);
    tlv_put(&w, APT_TIMEOUT_MS, b4, 4);
    if (r->rows) {
        put16(b2, r->rows);
        tlv_put(&w, APT_ROWS, b2, 2);
    }
    if (r->cols) {
        put16(b2, r->cols);
        tlv_put(&w, APT_COLS, b2, 2);
    }
    /* only when asked for: a v1 agent refuses the tag */
    if (r->out_window) {
        put32(b4, r->out_window);
        tlv_put(&w, APT_OUT_WINDOW, b4, 4);
    }
    if (w.err) {
        free(w.buf);
        return w.err;
    }
    *ret = w.buf;
    *ret_len = w.len;
    return 0;
}

static int str_push(char ***arr, size_t *n, size_t max, const uint8_t *v, uint32_t vlen)
{
    char **grown, *s;

    if (*n >= max)
        return -E2BIG;
    if (memchr(v, '\0', vlen))
        return -EBADMSG;
    s = malloc(vlen + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s, v, vlen);
    s[vlen] = '\0';
    grown = realloc(*arr, (*n + 2) * sizeof(char *));
    if (!grown) {
        free(s);
        return -ENOMEM;
    }
    *arr = grown;
    grown[(*n)++] = s;
    grown[*n] = NULL;
    return 0;
}

int ap_exec_req_decode(const uint8_t *p, size_t len, struct ap_exec_req *ret)
{
    struct ap_exec_req r = {0};
    int rc = 0;

    while (len > 0) {
        uint16_t tag;
        uint32_t vlen;
        const uint8_t *v;

        if (len < 6) {
            rc = -EBADMSG;
            goto fail;
        }
        tag = get16(p);
        vlen = get32(p + 2);
        if (vlen > len - 6 || vlen > AP_MAX_STRING) {
            rc = -EBADMSG;
            goto fail;
        }
        v = p + 6;
        switch (tag) {
        case APT_ARG:
            rc = str_push(&r.argv, &r.argc, AP_MAX_ARGS, v, vlen);
            break;
        case APT_ENV:
            if (!memchr(v, '=', vlen) || v[0] == '=') {
                rc = -EBADMSG;
                break;
            }
            rc = str_push(&r.env, &r.nenv, AP_MAX_ENV, v, vlen);
            break;
        case APT_CWD:
            if (r.cwd || vlen == 0 || memchr(v, '\0', vlen)) {
                rc = -EBADMSG;
                break;
            }
            r.cwd = malloc(vlen + 1);
            if (!r.cwd) {
                rc = -ENOMEM;
                break;
            }
            memcpy(r.cwd, v, vlen);
            r.cwd[vlen] = '\0';
            break;
        case APT_TTY:
        case APT_STDIN:
            if (vlen != 1 || v[0] > 1) {
                rc = -EBADMSG;
                break;
            }
            if (tag == APT_TTY)
                r.tty = v[0];
            else
                r.stdin_open = v[0];
            break;
        case APT_TIMEOUT_MS:
        case APT_OUT_WINDOW:
            if (vlen != 4) {
                rc = -EBADMSG;
                break;
            }
            if (tag == APT_TIMEOUT_MS)
                r.timeout_ms = get32(v);
            else
                r.out_window = get32(v);
            break;
        case APT_ROWS:
        case APT_COLS:
            if (vlen != 2) {
                rc = -EBADMSG;
                break;
            }
            if (tag == APT_ROWS)
                r.rows = get16(v);
            else
                r.cols = get16(v);
            break;
        default:
            rc = -EBADMSG;
            break;
        }
        if (rc < 0)
            goto fail;
        p += 6 + vlen;
        len -= 6 + vlen;
    }
    if (r.argc == 0 || r.argv[0][0] == '\0') {
        rc = -EBADMSG;
        goto fail;
    }
    if (!r.env) {
        r.env = calloc(1, sizeof(char *));
        if (!r.env) {
            rc = -ENOMEM;
            goto fail;
        }
    }
    *ret = r;
    return 0;
fail:
    ap_exec_req_free(&r);
    return rc;
}

void ap_exec_req_free(struct ap_exec_req *r)
{
    if (r->argv)
        for (size_t i = 0; i < r->argc; i++)
            free(r->argv[i]);
    if (r->env)
        for (size_t i = 0; i < r->nenv; i++)
            free(r->env[i]);
    free(r->argv);
    free(r->env);
    free(r->cwd);
    memset(r, 0, sizeof(*r));
}

/* ---- file operations (v3) ---- */

#define B(tag)       (1u << (tag))
#define NSEC_PER_SEC 1000000000u

/* What each op requires and accepts (agent_proto.h, "Ops and their
 * answers").  TRUNCATE takes exactly one of PATH and HANDLE, checked apart. */
struct fs_rule {
    const char *name;
    uint32_t need;     /* tags that must be present */
    uint32_t allow;    /* tags that may be present (need included) */
    uint32_t flags_ok; /* APF_FLAGS bits the op knows */
};

static const struct fs_rule fs_rules[APO_MAX + 1] = {
    [APO_STAT] = {"STAT", B(APF_PATH), B(APF_PATH), 0},
    [APO_LSTAT] = {"LSTAT", B(APF_PATH), B(APF_PATH), 0},
    [APO_FSTAT] = {"FSTAT", B(APF_HANDLE), B(APF_HANDLE), 0},
    [APO_READDIR] = {"READDIR", B(APF_PATH) | B(APF_WINDOW), B(APF_PATH) | B(APF_WINDOW), 0},
    [APO_OPEN] = {"OPEN", B(APF_PATH) | B(APF_FLAGS), B(APF_PATH) | B(APF_FLAGS) | B(APF_MODE),
                  AP_OPEN_ACCMODE | AP_OPEN_CREAT | AP_OPEN_EXCL | AP_OPEN_TRUNC | AP_OPEN_APPEND |
                      AP_OPEN_NOFOLLOW},
    [APO_CLOSE] = {"CLOSE", B(APF_HANDLE), B(APF_HANDLE), 0},
    [APO_PREAD] = {"PREAD", B(APF_HANDLE) | B(APF_OFFSET) | B(APF_LENGTH),
                   B(APF_HANDLE) | B(APF_OFFSET) | B(APF_LENGTH), 0},
    [APO_PWRITE] = {"PWRITE", B(APF_HANDLE) | B(APF_OFFSET) | B(APF_DATA),
                    B(APF_HANDLE) | B(APF_OFFSET) | B(APF_DATA), 0},
    [APO_READ_FILE] = {"READ_FILE", B(APF_PATH) | B(APF_WINDOW),
                       B(APF_PATH) | B(APF_WINDOW) | B(APF_OFFSET) | B(APF_LENGTH), 0},
    [APO_WRITE_FILE] = {"WRITE_FILE", B(APF_PATH), B(APF_PATH) | B(APF_FLAGS) | B(APF_MODE),
                        AP_WRITE_EXCL | AP_WRITE_APPEND | AP_WRITE_ATOMIC | AP_WRITE_PARENTS |
                            AP_WRITE_FSYNC},
    [APO_TRUNCATE] = {"TRUNCATE", B(APF_LENGTH), B(APF_LENGTH) | B(APF_PATH) | B(APF_HANDLE), 0},
    [APO_UNLINK] = {"UNLINK", B(APF_PATH), B(APF_PATH), 0},
    [APO_MKDIR] = {"MKDIR", B(APF_PATH), B(APF_PATH) | B(APF_MODE) | B(APF_FLAGS),
                   AP_MKDIR_PARENTS},
    [APO_RMDIR] = {"RMDIR", B(APF_PATH), B(APF_PATH), 0},
    [APO_RENAME] = {"RENAME", B(APF_PATH) | B(APF_PATH2), B(APF_PATH) | B(APF_PATH2) | B(APF_FLAGS),
                    AP_RENAME_NOREPLACE | AP_RENAME_EXCHANGE},
    [APO_SYMLINK] = {"SYMLINK", B(APF_PATH) | B(APF_PATH2), B(APF_PATH) | B(APF_PATH2), 0},
    [APO_LINK] = {"LINK", B(APF_PATH) | B(APF_PATH2), B(APF_PATH) | B(APF_PATH2), 0},
    [APO_READLINK] = {"READLINK", B(APF_PATH), B(APF_PATH), 0},
    [APO_CHMOD] = {"CHMOD", B(APF_PATH) | B(APF_MODE), B(APF_PATH) | B(APF_MODE), 0},
    [APO_CHOWN] = {"CHOWN", B(APF_PATH), B(APF_PATH) | B(APF_UID) | B(APF_GID) | B(APF_FLAGS),
                   AP_NOFOLLOW},
    [APO_UTIMENS] = {"UTIMENS", B(APF_PATH),
                     B(APF_PATH) | B(APF_ATIME) | B(APF_MTIME) | B(APF_FLAGS), AP_NOFOLLOW},
    [APO_STATFS] = {"STATFS", B(APF_PATH), B(APF_PATH), 0},
    [APO_FSYNC] = {"FSYNC", B(APF_HANDLE), B(APF_HANDLE) | B(APF_FLAGS), AP_FSYNC_DATA},
};

const char *ap_fs_op_name(uint8_t op)
{
    if (op == 0 || op > APO_MAX)
        return "UNKNOWN";
    return fs_rules[op].name;
}

static int why_fail(const char **ret_why, const char *why, int err)
{
    if (ret_why)
        *ret_why = why;
    return err;
}

static bool time_ok(const struct ap_fs_time *t)
{
    return t->nsec < NSEC_PER_SEC || t->nsec == AP_TIME_NOW || t->nsec == AP_TIME_OMIT;
}

int ap_fs_req_check(const struct ap_fs_req *r, const char **ret_why)
{
    const struct fs_rule *rule;
    size_t pl;

    if (r->op == 0 || r->op > APO_MAX)
        return why_fail(ret_why, "unknown file operation", -EBADMSG);
    rule = &fs_rules[r->op];
    if ((r->present & rule->need) != rule->need)
        return why_fail(ret_why, "a required field is missing", -EBADMSG);
    if (r->present & ~rule->allow)
        return why_fail(ret_why, "a field the operation does not take", -EBADMSG);
    if (r->op == APO_TRUNCATE && ap_fs_req_has(r, APF_PATH) == ap_fs_req_has(r, APF_HANDLE))
        return why_fail(ret_why, "TRUNCATE takes a path or a handle", -EBADMSG);

    if (ap_fs_req_has(r, APF_PATH)) {
        pl = strnlen(r->path, sizeof(r->path));
        if (pl > AP_FS_PATH_MAX)
            return why_fail(ret_why, "path over AP_FS_PATH_MAX bytes", -ENAMETOOLONG);
        if (r->path[0] != '/')
            return why_fail(ret_why, "path is not absolute", -EINVAL);
    }
    if (ap_fs_req_has(r, APF_PATH2)) {
        pl = strnlen(r->path2, sizeof(r->path2));
        if (pl > AP_FS_PATH_MAX)
            return why_fail(ret_why, "second path over AP_FS_PATH_MAX bytes", -ENAMETOOLONG);
        if (pl == 0)
            return why_fail(ret_why, "second path is empty", -EINVAL);
        /* a symlink's target is stored, not resolved: it may be relative */
        if (r->op != APO_SYMLINK && r->path2[0] != '/')
            return why_fail(ret_why, "second path is not absolute", -EINVAL);
    }
    if (ap_fs_req_has(r, APF_MODE) && r->mode > 07777)
        return why_fail(ret_why, "mode has bits above 07777", -EINVAL);
    if (ap_fs_req_has(r, APF_FLAGS)) {
        if (r->flags & ~rule->flags_ok)
            return why_fail(ret_why, "unknown flag bits", -EINVAL);
        if (r->op == APO_OPEN && (r->flags & AP_OPEN_ACCMODE) == AP_OPEN_ACCMODE)
            return why_fail(ret_why, "bad access mode", -EINVAL);
        if (r->op == APO_WRITE_FILE && (r->flags & AP_WRITE_ATOMIC) && (r->flags & AP_WRITE_APPEND))
            return why_fail(ret_why, "AP_WRITE_ATOMIC excludes AP_WRITE_APPEND", -EINVAL);
        if (r->op == APO_RENAME && (r->flags & AP_RENAME_NOREPLACE) &&
            (r->flags & AP_RENAME_EXCHANGE))
            return why_fail(ret_why, "RENAME: NOREPLACE excludes EXCHANGE", -EINVAL);
    }
    if (ap_fs_req_has(r, APF_WINDOW) &&
        (r->window < AP_FS_WINDOW_MIN || r->window > AP_FS_WINDOW_MAX))
        return why_fail(ret_why, "window outside AP_FS_WINDOW_MIN..AP_FS_WINDOW_MAX", -EINVAL);
    if (r->op == APO_PREAD && r->length > AP_FS_IO_MAX)
        return why_fail(ret_why, "PREAD length over AP_FS_IO_MAX", -E2BIG);
    if (ap_fs_req_has(r, APF_DATA) && r->data_len > AP_FS_IO_MAX)
        return why_fail(ret_why, "data over AP_FS_IO_MAX", -E2BIG);
    if (ap_fs_req_has(r, APF_OFFSET) && r->offset > INT64_MAX)
        return why_fail(ret_why, "offset over 2^63-1", -EINVAL);
    if (r->op == APO_TRUNCATE && r->length > INT64_MAX)
        return why_fail(ret_why, "length over 2^63-1", -EINVAL);
    if ((ap_fs_req_has(r, APF_ATIME) && !time_ok(&r->atime)) ||
        (ap_fs_req_has(r, APF_MTIME) && !time_ok(&r->mtime)))
        return why_fail(ret_why, "nanoseconds out of range", -EINVAL);
    return 0;
}

static void fs_put_time(uint8_t *p, const struct ap_fs_time *t)
{
    put64(p, (uint64_t)t->sec);
    put32(p + 8, t->nsec);
}

static void fs_get_time(const uint8_t *p, struct ap_fs_time *t)
{
    t->sec = (int64_t)get64(p);
    t->nsec = get32(p + 8);
}

/* Append TLV {tag, vlen, val} at out + *off (the caller sized out). */
static void fs_tlv(uint8_t *out, size_t *off, uint16_t tag, const void *val, size_t vlen)
{
    put16(out + *off, tag);
    put32(out + *off + 2, (uint32_t)vlen);
    if (vlen)
        memcpy(out + *off + 6, val, vlen);
    *off += 6 + vlen;
}

int ap_fs_req_encode(const struct ap_fs_req *r, uint8_t **ret, size_t *ret_len)
{
    uint8_t *out, v[12];
    size_t off = 1, cap;
    int rc;

    rc = ap_fs_req_check(r, NULL);
    if (rc < 0)
        return rc;
    /* every tag at its largest, data apart */
    cap = 1 + (APF_MAX * 6) + 2 * AP_FS_PATH_MAX + 8 * 12 + r->data_len;
    out = malloc(cap);
    if (!out)
        return -ENOMEM;
    out[0] = r->op;
    if (ap_fs_req_has(r, APF_PATH))
        fs_tlv(out, &off, APF_PATH, r->path, strlen(r->path));
    if (ap_fs_req_has(r, APF_PATH2))
        fs_tlv(out, &off, APF_PATH2, r->path2, strlen(r->path2));
    if (ap_fs_req_has(r, APF_HANDLE)) {
        put32(v, r->handle);
        fs_tlv(out, &off, APF_HANDLE, v, 4);
    }
    if (ap_fs_req_has(r, APF_OFFSET)) {
        put64(v, r->offset);
        fs_tlv(out, &off, APF_OFFSET, v, 8);
    }
    if (ap_fs_req_has(r, APF_LENGTH)) {
        put64(v, r->length);
        fs_tlv(out, &off, APF_LENGTH, v, 8);
    }
    {
        static const uint8_t u32_tags[] = {APF_MODE, APF_FLAGS, APF_UID, APF_GID, APF_WINDOW};
        const uint32_t vals[] = {r->mode, r->flags, r->uid, r->gid, r->window};

        for (size_t i = 0; i < sizeof(u32_tags); i++) {
            if (!ap_fs_req_has(r, u32_tags[i]))
                continue;
            put32(v, vals[i]);
            fs_tlv(out, &off, u32_tags[i], v, 4);
        }
    }
    if (ap_fs_req_has(r, APF_ATIME)) {
        fs_put_time(v, &r->atime);
        fs_tlv(out, &off, APF_ATIME, v, 12);
    }
    if (ap_fs_req_has(r, APF_MTIME)) {
        fs_put_time(v, &r->mtime);
        fs_tlv(out, &off, APF_MTIME, v, 12);
    }
    if (ap_fs_req_has(r, APF_DATA))
        fs_tlv(out, &off, APF_DATA, r->data, r->data_len);
    *ret = out;
    *ret_len = off;
    return 0;
}

/* The fixed value length of tag, or 0 for a variable one. */
static uint32_t fs_tag_len(uint16_t tag)
{
    switch (tag) {
    case APF_HANDLE:
    case APF_MODE:
    case APF_FLAGS:
    case APF_UID:
    case APF_GID:
    case APF_WINDOW:
        return 4;
    case APF_OFFSET:
    case APF_LENGTH:
        return 8;
    case APF_ATIME:
    case APF_MTIME:
        return 12;
    default:
        return 0;
    }
}

static int fs_get_string(char *dst, const uint8_t *v, uint32_t vlen, const char **ret_why)
{
    if (vlen > AP_FS_PATH_MAX)
        return why_fail(ret_why, "path over AP_FS_PATH_MAX bytes", -ENAMETOOLONG);
    if (memchr(v, '\0', vlen))
        return why_fail(ret_why, "NUL inside a path", -EBADMSG);
    memcpy(dst, v, vlen);
    dst[vlen] = '\0';
    return 0;
}

int ap_fs_req_decode(const uint8_t *p, size_t len, struct ap_fs_req *ret, const char **ret_why)
{
    int rc;

    ret->op = 0;
    ret->present = 0;
    ret->path[0] = ret->path2[0] = '\0';
    ret->handle = ret->mode = ret->flags = ret->uid = ret->gid = ret->window = 0;
    ret->offset = ret->length = 0;
    ret->atime = ret->mtime = (struct ap_fs_time){0, AP_TIME_OMIT};
    ret->data = NULL;
    ret->data_len = 0;
    if (len < 1)
        return why_fail(ret_why, "empty payload", -EBADMSG);
    ret->op = p[0];
    if (ret->op == 0 || ret->op > APO_MAX)
        return why_fail(ret_why, "unknown file operation", -EBADMSG);
    p++;
    len--;
    while (len > 0) {
        uint16_t tag;
        uint32_t vlen, want;
        const uint8_t *v;

        if (len < 6)
            return why_fail(ret_why, "truncated field header", -EBADMSG);
        tag = get16(p);
        vlen = get32(p + 2);
        if (vlen > len - 6)
            return why_fail(ret_why, "field longer than the payload", -EBADMSG);
        if (tag == 0 || tag > APF_MAX)
            return why_fail(ret_why, "unknown field", -EBADMSG);
        if (ret->present & B(tag))
            return why_fail(ret_why, "duplicate field", -EBADMSG);
        want = fs_tag_len(tag);
        if (want && vlen != want)
            return why_fail(ret_why, "field of the wrong length", -EBADMSG);
        v = p + 6;
        switch (tag) {
        case APF_PATH:
            rc = fs_get_string(ret->path, v, vlen, ret_why);
            if (rc < 0)
                return rc;
            break;
        case APF_PATH2:
            rc = fs_get_string(ret->path2, v, vlen, ret_why);
            if (rc < 0)
                return rc;
            break;
        case APF_HANDLE:
            ret->handle = get32(v);
            break;
        case APF_OFFSET:
            ret->offset = get64(v);
            break;
        case APF_LENGTH:
            ret->length = get64(v);
            break;
        case APF_MODE:
            ret->mode = get32(v);
            break;
        case APF_FLAGS:
            ret->flags = get32(v);
            break;
        case APF_UID:
            ret->uid = get32(v);
            break;
        case APF_GID:
            ret->gid = get32(v);
            break;
        case APF_WINDOW:
            ret->window = get32(v);
            break;
        case APF_ATIME:
            fs_get_time(v, &ret->atime);
            break;
        case APF_MTIME:
            fs_get_time(v, &ret->mtime);
            break;
        case APF_DATA:
            if (vlen > AP_FS_IO_MAX)
                return why_fail(ret_why, "data over AP_FS_IO_MAX", -E2BIG);
            ret->data = v;
            ret->data_len = vlen;
            break;
        default:
            return why_fail(ret_why, "unknown field", -EBADMSG);
        }
        ret->present |= B(tag);
        p += 6 + vlen;
        len -= 6 + vlen;
    }
    return ap_fs_req_check(ret, ret_why);
}

void ap_fs_attr_encode(const struct ap_fs_attr *a, uint8_t out[AP_FS_ATTR_LEN])
{
    put32(out, a->mode);
    put32(out + 4, a->nlink);
    put32(out + 8, a->uid);
    put32(out + 12, a->gid);
    put32(out + 16, a->blksize);
    put64(out + 20, a->ino);
    put64(out + 28, a->size);
    put64(out + 36, a->blocks);
    put64(out + 44, a->rdev);
    fs_put_time(out + 52, &a->atime);
    fs_put_time(out + 64, &a->mtime);
    fs_put_time(out + 76, &a->ctime);
}

int ap_fs_attr_decode(const uint8_t *p, size_t len, struct ap_fs_attr *ret)
{
    if (len != AP_FS_ATTR_LEN)
        return -EBADMSG;
    ret->mode = get32(p);
    ret->nlink = get32(p + 4);
    ret->uid = get32(p + 8);
    ret->gid = get32(p + 12);
    ret->blksize = get32(p + 16);
    ret->ino = get64(p + 20);
    ret->size = get64(p + 28);
    ret->blocks = get64(p + 36);
    ret->rdev = get64(p + 44);
    fs_get_time(p + 52, &ret->atime);
    fs_get_time(p + 64, &ret->mtime);
    fs_get_time(p + 76, &ret->ctime);
    if (ret->atime.nsec >= NSEC_PER_SEC || ret->mtime.nsec >= NSEC_PER_SEC ||
        ret->ctime.nsec >= NSEC_PER_SEC)
        return -EBADMSG;
    return 0;
}

void ap_fs_statfs_encode(const struct ap_fs_statfs *s, uint8_t out[AP_FS_STATFS_LEN])
{
    put32(out, s->bsize);
    put32(out + 4, s->frsize);
    put32(out + 8, s->namemax);
    put64(out + 12, s->blocks);
    put64(out + 20, s->bfree);
    put64(out + 28, s->bavail);
    put64(out + 36, s->files);
    put64(out + 44, s->ffree);
}

int ap_fs_statfs_decode(const uint8_t *p, size_t len, struct ap_fs_statfs *ret)
{
    if (len != AP_FS_STATFS_LEN)
        return -EBADMSG;
    ret->bsize = get32(p);
    ret->frsize = get32(p + 4);
    ret->namemax = get32(p + 8);
    ret->blocks = get64(p + 12);
    ret->bfree = get64(p + 20);
    ret->bavail = get64(p + 28);
    ret->files = get64(p + 36);
    ret->ffree = get64(p + 44);
    return 0;
}

size_t ap_fs_errno_encode(int err, const char *msg, uint8_t out[AP_FS_ERRNO_MAX])
{
    size_t ml = msg ? strnlen(msg, AP_FS_MSG_MAX) : 0;

    /* out of range is a bug on our side; EIO says "something failed" */
    if (err <= 0 || err >= AP_FS_ERRNO_LIMIT)
        err = EIO;
    put32(out, (uint32_t)err);
    if (ml)
        memcpy(out + 4, msg, ml);
    return 4 + ml;
}

int ap_fs_errno_decode(const uint8_t *p, size_t len, int *ret_err, char ret_msg[AP_FS_MSG_MAX + 1])
{
    uint32_t e;

    if (len < 4 || len > AP_FS_ERRNO_MAX)
        return -EBADMSG;
    e = get32(p);
    if (e == 0 || e >= AP_FS_ERRNO_LIMIT || memchr(p + 4, '\0', len - 4))
        return -EBADMSG;
    *ret_err = (int)e;
    memcpy(ret_msg, p + 4, len - 4);
    ret_msg[len - 4] = '\0';
    return 0;
}

static bool fs_name_ok(const uint8_t *n, size_t len)
{
    if (len == 0 || len > AP_FS_NAME_MAX)
        return false;
    if ((len == 1 && n[0] == '.') || (len == 2 && n[0] == '.' && n[1] == '.'))
        return false;
    return !memchr(n, '/', len) && !memchr(n, '\0', len);
}

int ap_fs_dirent_encode(const char *name, const struct ap_fs_attr *a, uint8_t out[AP_FS_DIRENT_MAX])
{
    size_t nl = strnlen(name, AP_FS_NAME_MAX + 1);

    if (!fs_name_ok((const uint8_t *)name, nl))
        return -EINVAL;
    put16(out, (uint16_t)nl);
    memcpy(out + 2, name, nl);
    ap_fs_attr_encode(a, out + 2 + nl);
    return (int)(2 + nl + AP_FS_ATTR_LEN);
}

int ap_fs_dirent_next(const uint8_t *p, size_t len, size_t *off, char ret_name[AP_FS_NAME_MAX + 1],
                      struct ap_fs_attr *ret_attr)
{
    size_t nl;

    if (*off >= len)
        return 0;
    if (len - *off < 2)
        return -EBADMSG;
    nl = get16(p + *off);
    if (len - *off - 2 < nl + AP_FS_ATTR_LEN || !fs_name_ok(p + *off + 2, nl))
        return -EBADMSG;
    if (ap_fs_attr_decode(p + *off + 2 + nl, AP_FS_ATTR_LEN, ret_attr) < 0)
        return -EBADMSG;
    memcpy(ret_name, p + *off + 2, nl);
    ret_name[nl] = '\0';
    *off += 2 + nl + AP_FS_ATTR_LEN;
    return 1;
}

int ap_fs_path_decode(const uint8_t *p, size_t len, char ret[AP_FS_PATH_MAX + 1])
{
    if (len == 0 || len > AP_FS_PATH_MAX || memchr(p, '\0', len))
        return -EBADMSG;
    memcpy(ret, p, len);
    ret[len] = '\0';
    return 0;
}
