/* agent_proto.c — see agent_proto.h.  Pure functions over byte buffers; no
 * I/O and no allocation except in the EXEC request codec. */
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

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

bool ap_type_is_known(uint8_t t)
{
    return (t >= AP_HELLO && t <= AP_OUT_ACK) || (t >= AP_HELLO_ACK && t <= AP_PONG);
}

const char *ap_type_name(uint8_t t)
{
    static const char *const host[] = {"?",      "HELLO",    "EXEC",        "STDIN", "KILL",
                                       "RESIZE", "SET_TIME", "ADD_ENTROPY", "PING",  "OUT_ACK"};
    static const char *const agent[] = {"HELLO_ACK", "STARTED", "STDOUT", "STDERR", "EXIT",
                                        "WINDOW",    "OK",      "ERROR",  "PONG"};

    if (t >= AP_HELLO && t <= AP_OUT_ACK)
        return host[t];
    if (t >= AP_HELLO_ACK && t <= AP_PONG)
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
