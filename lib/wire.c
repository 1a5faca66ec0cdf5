/* wire.c — see wire.h.
 *
 * Decoding is table-driven: each type lists its fields once (name, JSON type,
 * where it lands in the struct, limits), and one walker checks types, ranges,
 * required fields and unknown fields.  Encoders are written out by hand
 * because responses carry derived fields (e.g. stdout_b64). */
#include "wire.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "buf.h"
#include "encoding.h"
#include "names.h"

enum wire_type {
    WT_STR,       /* char *, no NUL inside, at most max bytes */
    WT_BYTES,     /* char * + size_t at aux, NUL allowed, at most max bytes */
    WT_INT,       /* long long in [min, max]; bool "present" flag at aux if HAS_AUX */
    WT_BOOL,      /* bool */
    WT_STR_ARRAY, /* char ** + size_t count at aux; at most max entries */
};

#define NO_AUX SIZE_MAX

struct wire_field {
    const char *name;
    enum wire_type type;
    size_t off;
    size_t aux;
    bool required;
    long long min, max;
};

#define FIELD(st, f) offsetof(struct st, f)

static int decode_string(json_object *v, const struct wire_field *f, void *out, bool allow_nul,
                         struct nerr *e)
{
    const char *s;
    size_t n;
    char *copy;

    if (!json_object_is_type(v, json_type_string))
        return nerr_set(e, -EINVAL, "field '%s' must be a string", f->name);
    s = json_object_get_string(v);
    n = (size_t)json_object_get_string_len(v);
    if (!allow_nul && memchr(s, '\0', n))
        return nerr_set(e, -EINVAL, "field '%s' contains a NUL character", f->name);
    if ((long long)n > f->max)
        return nerr_set(e, -EINVAL, "field '%s' is %zu bytes long; the limit is %lld", f->name, n,
                        f->max);
    copy = malloc(n + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, s, n);
    copy[n] = 0;
    free(*(char **)((char *)out + f->off));
    *(char **)((char *)out + f->off) = copy;
    if (f->aux != NO_AUX)
        *(size_t *)((char *)out + f->aux) = n;
    return 0;
}

static int decode_str_array(json_object *v, const struct wire_field *f, void *out, struct nerr *e)
{
    char ***arrp = (char ***)((char *)out + f->off);
    size_t *countp = (size_t *)((char *)out + f->aux);
    size_t n;

    if (!json_object_is_type(v, json_type_array))
        return nerr_set(e, -EINVAL, "field '%s' must be an array of strings", f->name);
    n = json_object_array_length(v);
    if ((long long)n > f->max)
        return nerr_set(e, -EINVAL, "field '%s' has %zu entries; the limit is %lld", f->name, n,
                        f->max);
    if (*arrp) {
        for (size_t i = 0; i < *countp; i++)
            free((*arrp)[i]);
        free(*arrp);
        *arrp = NULL;
        *countp = 0;
    }
    *arrp = calloc(n + 1, sizeof(char *));
    if (!*arrp)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(v, i);
        const char *s;
        size_t len;

        if (!json_object_is_type(item, json_type_string))
            return nerr_set(e, -EINVAL, "field '%s': entry %zu must be a string", f->name, i);
        s = json_object_get_string(item);
        len = (size_t)json_object_get_string_len(item);
        if (memchr(s, '\0', len))
            return nerr_set(e, -EINVAL, "field '%s': entry %zu contains a NUL character", f->name,
                            i);
        if (len > WIRE_MAX_ARG_BYTES)
            return nerr_set(e, -EINVAL, "field '%s': entry %zu is longer than %d bytes", f->name,
                            i, WIRE_MAX_ARG_BYTES);
        (*arrp)[i] = strndup(s, len);
        if (!(*arrp)[i])
            return -ENOMEM;
        *countp = i + 1;
    }
    return 0;
}

static int decode_field(json_object *v, const struct wire_field *f, void *out, struct nerr *e)
{
    switch (f->type) {
    case WT_STR:
        return decode_string(v, f, out, false, e);
    case WT_BYTES:
        return decode_string(v, f, out, true, e);
    case WT_INT: {
        long long x;
        if (!json_object_is_type(v, json_type_int))
            return nerr_set(e, -EINVAL, "field '%s' must be an integer", f->name);
        x = json_object_get_int64(v);
        /* json-c silently saturates numbers beyond 64 bits at INT64_MIN/MAX;
         * no field of ours has a use for those values, so they mean overflow. */
        if (x == INT64_MAX || x == INT64_MIN || x < f->min || x > f->max)
            return nerr_set(e, -EINVAL, "field '%s' must be between %lld and %lld", f->name,
                            f->min, f->max);
        *(long long *)((char *)out + f->off) = x;
        if (f->aux != NO_AUX)
            *(bool *)((char *)out + f->aux) = true;
        return 0;
    }
    case WT_BOOL:
        if (!json_object_is_type(v, json_type_boolean))
            return nerr_set(e, -EINVAL, "field '%s' must be true or false", f->name);
        *(bool *)((char *)out + f->off) = json_object_get_boolean(v);
        return 0;
    case WT_STR_ARRAY:
        return decode_str_array(v, f, out, e);
    default:
        return -EINVAL;
    }
}

static int wire_decode(json_object *o, const struct wire_field *fields, size_t nfields, void *out,
                       bool strict, struct nerr *e)
{
    bool seen[32] = {false};
    int r;

    if (!json_object_is_type(o, json_type_object))
        return nerr_set(e, -EINVAL, "expected a JSON object");
    json_object_object_foreach(o, key, val)
    {
        size_t i;
        for (i = 0; i < nfields; i++)
            if (strcmp(fields[i].name, key) == 0)
                break;
        if (i == nfields) {
            if (strict)
                return nerr_set(e, -EINVAL, "unknown field '%.64s'", key);
            continue;
        }
        /* null means "not given", as clients commonly send for optional fields */
        if (!val)
            continue;
        r = decode_field(val, &fields[i], out, e);
        if (r < 0)
            return r == -ENOMEM ? nerr_set(e, r, "out of memory") : r;
        seen[i] = true;
    }
    for (size_t i = 0; i < nfields; i++)
        if (fields[i].required && !seen[i])
            return nerr_set(e, -EINVAL, "missing required field '%s'", fields[i].name);
    return 0;
}

static int parse_document(const char *text, size_t len, bool object_only, json_object **ret,
                          struct nerr *e)
{
    json_tokener *tok;
    json_object *o;
    enum json_tokener_error jerr;
    size_t used;

    if (len == 0)
        return nerr_set(e, -EINVAL, "request body is empty; expected a JSON object");
    if (len > INT_MAX)
        return nerr_set(e, -E2BIG, "JSON document too large");
    tok = json_tokener_new_ex(WIRE_MAX_DEPTH);
    if (!tok)
        return -ENOMEM;
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    o = json_tokener_parse_ex(tok, text, (int)len);
    jerr = json_tokener_get_error(tok);
    used = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!o || jerr != json_tokener_success) {
        json_object_put(o);
        if (jerr == json_tokener_continue)
            return nerr_set(e, -EINVAL, "malformed JSON: unexpected end of input");
        return nerr_set(e, -EINVAL, "malformed JSON: %s", json_tokener_error_desc(jerr));
    }
    /* Only whitespace may follow the document. */
    for (; used < len; used++)
        if (!strchr(" \t\r\n", text[used])) {
            json_object_put(o);
            return nerr_set(e, -EINVAL, "malformed JSON: trailing data after the object");
        }
    if (object_only && !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        return nerr_set(e, -EINVAL, "expected a JSON object");
    }
    *ret = o;
    return 0;
}

int wire_parse_object(const char *text, size_t len, json_object **ret, struct nerr *e)
{
    return parse_document(text, len, true, ret, e);
}

int wire_parse_value(const char *text, size_t len, json_object **ret, struct nerr *e)
{
    return parse_document(text, len, false, ret, e);
}

/* ---- requests ---- */

static const struct wire_field create_req_fields[] = {
    {"name", WT_STR, FIELD(wire_create_req, name), NO_AUX, true, 0, 1024},
    {"cpus", WT_INT, FIELD(wire_create_req, cpus), FIELD(wire_create_req, has_cpus), false,
     LLONG_MIN, LLONG_MAX},
    {"mem_mib", WT_INT, FIELD(wire_create_req, mem_mib), FIELD(wire_create_req, has_mem_mib), false,
     LLONG_MIN, LLONG_MAX},
};

int wire_create_req_decode(json_object *o, struct wire_create_req *r, struct nerr *e)
{
    return wire_decode(o, create_req_fields, ARRAY_SIZE(create_req_fields), r, true, e);
}

void wire_create_req_free(struct wire_create_req *r)
{
    free(r->name);
    memset(r, 0, sizeof(*r));
}

json_object *wire_create_req_encode(const struct wire_create_req *r)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "name", json_object_new_string(r->name));
    if (r->has_cpus)
        json_object_object_add(o, "cpus", json_object_new_int64(r->cpus));
    if (r->has_mem_mib)
        json_object_object_add(o, "mem_mib", json_object_new_int64(r->mem_mib));
    return o;
}

/* stdin may be as large as the request body allows; the body cap bounds it. */
#define STDIN_FIELD_MAX ((long long)64 * 1024 * 1024)

static const struct wire_field exec_req_fields[] = {
    {"command", WT_STR_ARRAY, FIELD(wire_exec_req, command), FIELD(wire_exec_req, ncommand), true,
     0, WIRE_MAX_ARGV},
    {"tty", WT_BOOL, FIELD(wire_exec_req, tty), NO_AUX, false, 0, 0},
    {"env", WT_STR_ARRAY, FIELD(wire_exec_req, env), FIELD(wire_exec_req, nenv), false, 0,
     ENV_MAX_ENTRIES},
    {"cwd", WT_STR, FIELD(wire_exec_req, cwd), NO_AUX, false, 0, 4096},
    {"timeout_secs", WT_INT, FIELD(wire_exec_req, timeout_secs),
     FIELD(wire_exec_req, has_timeout_secs), false, 1, 365LL * 24 * 3600},
    {"stdin", WT_BYTES, FIELD(wire_exec_req, stdin_text), FIELD(wire_exec_req, stdin_text_len),
     false, 0, STDIN_FIELD_MAX},
    {"stdin_b64", WT_STR, FIELD(wire_exec_req, stdin_b64), FIELD(wire_exec_req, stdin_b64_len),
     false, 0, STDIN_FIELD_MAX},
    {"cols", WT_INT, FIELD(wire_exec_req, cols), FIELD(wire_exec_req, has_cols), false, 1,
     WIRE_MAX_TTY_SIDE},
    {"rows", WT_INT, FIELD(wire_exec_req, rows), FIELD(wire_exec_req, has_rows), false, 1,
     WIRE_MAX_TTY_SIDE},
};

/* "stdin" is the stdin text (a string) or, for a WebSocket exec, whether
 * stdin stays open (a boolean): the boolean is taken out here and the rest
 * decoded from a copy of o without it. */
static json_object *exec_req_take_stdin_flag(json_object *o, struct wire_exec_req *r)
{
    json_object *v, *copy;

    if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "stdin", &v) ||
        !json_object_is_type(v, json_type_boolean))
        return json_object_get(o);
    r->has_stdin_open = true;
    r->stdin_open = json_object_get_boolean(v);
    copy = json_object_new_object();
    if (!copy)
        return NULL;
    json_object_object_foreach(o, key, val)
    {
        if (strcmp(key, "stdin") != 0)
            json_object_object_add(copy, key, json_object_get(val));
    }
    return copy;
}

int wire_exec_req_decode(json_object *o, struct wire_exec_req *r, struct nerr *e)
{
    json_object *fields = exec_req_take_stdin_flag(o, r);
    int rc;

    if (!fields)
        return nerr_set(e, -ENOMEM, "out of memory");
    rc = wire_decode(fields, exec_req_fields, ARRAY_SIZE(exec_req_fields), r, true, e);
    json_object_put(fields);
    if (rc < 0)
        return rc;
    if (r->ncommand == 0)
        return nerr_set(e, -EINVAL, "field 'command' must hold at least one string");
    if (r->command[0][0] == '\0')
        return nerr_set(e, -EINVAL, "field 'command': the program name is empty");
    if (r->stdin_text && r->stdin_b64)
        return nerr_set(e, -EINVAL, "give either 'stdin' or 'stdin_b64', not both");
    return 0;
}

static void str_array_free(char **a, size_t n)
{
    if (!a)
        return;
    for (size_t i = 0; i < n; i++)
        free(a[i]);
    free(a);
}

void wire_exec_req_free(struct wire_exec_req *r)
{
    str_array_free(r->command, r->ncommand);
    str_array_free(r->env, r->nenv);
    free(r->cwd);
    free(r->stdin_text);
    free(r->stdin_b64);
    memset(r, 0, sizeof(*r));
}

static json_object *str_array_encode(char *const *a, size_t n)
{
    json_object *arr = json_object_new_array_ext((int)n);

    for (size_t i = 0; i < n; i++)
        json_object_array_add(arr, json_object_new_string(a[i]));
    return arr;
}

json_object *wire_exec_req_encode(const struct wire_exec_req *r)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "command", str_array_encode(r->command, r->ncommand));
    json_object_object_add(o, "tty", json_object_new_boolean(r->tty));
    if (r->nenv)
        json_object_object_add(o, "env", str_array_encode(r->env, r->nenv));
    if (r->cwd)
        json_object_object_add(o, "cwd", json_object_new_string(r->cwd));
    if (r->has_timeout_secs)
        json_object_object_add(o, "timeout_secs", json_object_new_int64(r->timeout_secs));
    if (r->stdin_text)
        json_object_object_add(o, "stdin",
                               json_object_new_string_len(r->stdin_text, (int)r->stdin_text_len));
    if (r->stdin_b64)
        json_object_object_add(o, "stdin_b64",
                               json_object_new_string_len(r->stdin_b64, (int)r->stdin_b64_len));
    if (r->has_stdin_open && !r->stdin_text && !r->stdin_b64)
        json_object_object_add(o, "stdin", json_object_new_boolean(r->stdin_open));
    if (r->has_cols)
        json_object_object_add(o, "cols", json_object_new_int64(r->cols));
    if (r->has_rows)
        json_object_object_add(o, "rows", json_object_new_int64(r->rows));
    return o;
}

static const struct wire_field checkpoint_req_fields[] = {
    {"label", WT_BYTES, FIELD(wire_checkpoint_req, label), FIELD(wire_checkpoint_req, label_len),
     false, 0, 4096},
};

int wire_checkpoint_req_decode(json_object *o, struct wire_checkpoint_req *r, struct nerr *e)
{
    int rc = wire_decode(o, checkpoint_req_fields, ARRAY_SIZE(checkpoint_req_fields), r, true, e);
    if (rc < 0)
        return rc;
    if (r->label)
        return name_label_check(r->label, r->label_len, e);
    return 0;
}

void wire_checkpoint_req_free(struct wire_checkpoint_req *r)
{
    free(r->label);
    memset(r, 0, sizeof(*r));
}

json_object *wire_checkpoint_req_encode(const struct wire_checkpoint_req *r)
{
    json_object *o = json_object_new_object();

    if (r->label)
        json_object_object_add(o, "label", json_object_new_string(r->label));
    return o;
}

static const struct wire_field restore_req_fields[] = {
    {"checkpoint_id", WT_STR, FIELD(wire_restore_req, checkpoint_id), NO_AUX, true, 0, 64},
    {"new_name", WT_STR, FIELD(wire_restore_req, new_name), NO_AUX, false, 0, 1024},
};

int wire_restore_req_decode(json_object *o, struct wire_restore_req *r, struct nerr *e)
{
    return wire_decode(o, restore_req_fields, ARRAY_SIZE(restore_req_fields), r, true, e);
}

void wire_restore_req_free(struct wire_restore_req *r)
{
    free(r->checkpoint_id);
    free(r->new_name);
    memset(r, 0, sizeof(*r));
}

json_object *wire_restore_req_encode(const struct wire_restore_req *r)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "checkpoint_id", json_object_new_string(r->checkpoint_id));
    if (r->new_name)
        json_object_object_add(o, "new_name", json_object_new_string(r->new_name));
    return o;
}

/* ---- responses ---- */

#define ANY_INT LLONG_MIN, LLONG_MAX

static const struct wire_field vm_info_fields[] = {
    {"name", WT_STR, FIELD(wire_vm_info, name), NO_AUX, true, 0, 1024},
    {"state", WT_STR, FIELD(wire_vm_info, state), NO_AUX, true, 0, 64},
    {"cpus", WT_INT, FIELD(wire_vm_info, cpus), NO_AUX, true, ANY_INT},
    {"mem_mib", WT_INT, FIELD(wire_vm_info, mem_mib), NO_AUX, true, ANY_INT},
    {"created_at", WT_STR, FIELD(wire_vm_info, created_at), NO_AUX, true, 0, 64},
    {"vmm", WT_STR, FIELD(wire_vm_info, vmm), NO_AUX, false, 0, 64},
    {"restored_from", WT_STR, FIELD(wire_vm_info, restored_from), NO_AUX, false, 0, 64},
    {"ip", WT_STR, FIELD(wire_vm_info, ip), NO_AUX, false, 0, 64},
};

int wire_vm_info_decode(json_object *o, struct wire_vm_info *r, struct nerr *e)
{
    return wire_decode(o, vm_info_fields, ARRAY_SIZE(vm_info_fields), r, false, e);
}

void wire_vm_info_free(struct wire_vm_info *r)
{
    free(r->name);
    free(r->state);
    free(r->created_at);
    free(r->vmm);
    free(r->restored_from);
    free(r->ip);
    memset(r, 0, sizeof(*r));
}

static void add_opt_string(json_object *o, const char *key, const char *v)
{
    json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

json_object *wire_vm_info_encode(const struct wire_vm_info *r)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "name", json_object_new_string(r->name));
    json_object_object_add(o, "state", json_object_new_string(r->state));
    json_object_object_add(o, "cpus", json_object_new_int64(r->cpus));
    json_object_object_add(o, "mem_mib", json_object_new_int64(r->mem_mib));
    json_object_object_add(o, "created_at", json_object_new_string(r->created_at));
    add_opt_string(o, "vmm", r->vmm);
    add_opt_string(o, "restored_from", r->restored_from);
    add_opt_string(o, "ip", r->ip);
    return o;
}

/* Invalid UTF-8 sequences become U+FFFD, byte by byte. */
static json_object *lossy_string(const uint8_t *p, size_t n)
{
    struct buf b;
    json_object *o;
    size_t i = 0;

    buf_init(&b, 0);
    while (i < n) {
        size_t run = i;
        /* extend over the longest valid prefix, one code point at a time */
        while (run < n) {
            size_t cl = p[run] < 0x80 ? 1 : p[run] >= 0xf0 ? 4 : p[run] >= 0xe0 ? 3 : 2;
            if (run + cl > n || !utf8_is_valid((const char *)p + run, cl))
                break;
            run += cl;
        }
        if (run > i && buf_append(&b, p + i, run - i) < 0)
            goto fail;
        i = run;
        if (i < n) {
            if (buf_append(&b, "\xef\xbf\xbd", 3) < 0)
                goto fail;
            i++;
        }
    }
    o = json_object_new_string_len(b.data ? (char *)b.data : "", (int)b.len);
    buf_free(&b);
    return o;
fail:
    buf_free(&b);
    return NULL;
}

static void add_output(json_object *o, const char *key, const char *b64key, const uint8_t *p,
                       size_t n)
{
    if (utf8_is_valid((const char *)p, n)) {
        json_object_object_add(o, key, json_object_new_string_len(n ? (const char *)p : "", (int)n));
        return;
    }
    json_object_object_add(o, key, lossy_string(p, n));
    char *b64 = base64_encode(p, n);
    if (b64) {
        json_object_object_add(o, b64key, json_object_new_string(b64));
        free(b64);
    }
}

json_object *wire_exec_result_encode(const struct wire_exec_result *r)
{
    json_object *o = json_object_new_object();

    add_output(o, "stdout", "stdout_b64", r->out, r->out_len);
    add_output(o, "stderr", "stderr_b64", r->err, r->err_len);
    json_object_object_add(o, "exit_code", json_object_new_int64(r->exit_code));
    if (r->signal)
        json_object_object_add(o, "signal", json_object_new_int64(r->signal));
    json_object_object_add(o, "timed_out", json_object_new_boolean(r->timed_out));
    json_object_object_add(o, "truncated", json_object_new_boolean(r->truncated));
    return o;
}

struct exec_result_raw {
    char *out, *err, *out_b64, *err_b64;
    size_t out_len, err_len, out_b64_len, err_b64_len;
    long long exit_code, signal;
    bool timed_out, truncated;
};

static const struct wire_field exec_result_fields[] = {
    {"stdout", WT_BYTES, FIELD(exec_result_raw, out), FIELD(exec_result_raw, out_len), false, 0,
     LLONG_MAX},
    {"stderr", WT_BYTES, FIELD(exec_result_raw, err), FIELD(exec_result_raw, err_len), false, 0,
     LLONG_MAX},
    {"stdout_b64", WT_STR, FIELD(exec_result_raw, out_b64), FIELD(exec_result_raw, out_b64_len),
     false, 0, LLONG_MAX},
    {"stderr_b64", WT_STR, FIELD(exec_result_raw, err_b64), FIELD(exec_result_raw, err_b64_len),
     false, 0, LLONG_MAX},
    {"exit_code", WT_INT, FIELD(exec_result_raw, exit_code), NO_AUX, true, ANY_INT},
    {"signal", WT_INT, FIELD(exec_result_raw, signal), NO_AUX, false, ANY_INT},
    {"timed_out", WT_BOOL, FIELD(exec_result_raw, timed_out), NO_AUX, false, 0, 0},
    {"truncated", WT_BOOL, FIELD(exec_result_raw, truncated), NO_AUX, false, 0, 0},
};

/* Pick the exact bytes: base64 when present, else the string. */
static int take_output(char **text, size_t text_len, char *b64, size_t b64_len, uint8_t **ret,
                       size_t *ret_len, const char *name, struct nerr *e)
{
    if (b64) {
        int r = base64_decode(b64, b64_len, ret, ret_len);
        if (r < 0)
            return nerr_set(e, r, "field '%s_b64' is not valid base64", name);
        return 0;
    }
    *ret = (uint8_t *)TAKE_PTR(*text);
    *ret_len = text_len;
    if (!*ret) {
        *ret = (uint8_t *)strdup("");
        *ret_len = 0;
    }
    return *ret ? 0 : -ENOMEM;
}

int wire_exec_result_decode(json_object *o, struct wire_exec_result *r, struct nerr *e)
{
    struct exec_result_raw raw = {0};
    int rc;

    rc = wire_decode(o, exec_result_fields, ARRAY_SIZE(exec_result_fields), &raw, false, e);
    if (rc < 0)
        goto out;
    rc = take_output(&raw.out, raw.out_len, raw.out_b64, raw.out_b64_len, &r->out, &r->out_len,
                     "stdout", e);
    if (rc < 0)
        goto out;
    rc = take_output(&raw.err, raw.err_len, raw.err_b64, raw.err_b64_len, &r->err, &r->err_len,
                     "stderr", e);
    if (rc < 0)
        goto out;
    r->exit_code = raw.exit_code;
    r->signal = raw.signal;
    r->timed_out = raw.timed_out;
    r->truncated = raw.truncated;
out:
    free(raw.out);
    free(raw.err);
    free(raw.out_b64);
    free(raw.err_b64);
    return rc;
}

void wire_exec_result_free(struct wire_exec_result *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

static const struct wire_field checkpoint_fields[] = {
    {"id", WT_STR, FIELD(wire_checkpoint, id), NO_AUX, true, 0, 64},
    {"vm_name", WT_STR, FIELD(wire_checkpoint, vm_name), NO_AUX, true, 0, 1024},
    {"label", WT_STR, FIELD(wire_checkpoint, label), NO_AUX, false, 0, 4096},
    {"created_at", WT_STR, FIELD(wire_checkpoint, created_at), NO_AUX, true, 0, 64},
    {"pause_ms", WT_INT, FIELD(wire_checkpoint, pause_ms), NO_AUX, false, ANY_INT},
    {"size_bytes", WT_INT, FIELD(wire_checkpoint, size_bytes), NO_AUX, false, ANY_INT},
};

int wire_checkpoint_decode(json_object *o, struct wire_checkpoint *r, struct nerr *e)
{
    return wire_decode(o, checkpoint_fields, ARRAY_SIZE(checkpoint_fields), r, false, e);
}

void wire_checkpoint_free(struct wire_checkpoint *r)
{
    free(r->id);
    free(r->vm_name);
    free(r->label);
    free(r->created_at);
    memset(r, 0, sizeof(*r));
}

json_object *wire_checkpoint_encode(const struct wire_checkpoint *r)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_string(r->id));
    json_object_object_add(o, "vm_name", json_object_new_string(r->vm_name));
    add_opt_string(o, "label", r->label);
    json_object_object_add(o, "created_at", json_object_new_string(r->created_at));
    json_object_object_add(o, "pause_ms", json_object_new_int64(r->pause_ms));
    json_object_object_add(o, "size_bytes", json_object_new_int64(r->size_bytes));
    return o;
}

static const struct wire_field whoami_fields[] = {
    {"user_id", WT_STR, FIELD(wire_whoami, user_id), NO_AUX, true, 0, 64},
    {"name", WT_STR, FIELD(wire_whoami, name), NO_AUX, true, 0, 64},
};

int wire_whoami_decode(json_object *o, struct wire_whoami *r, struct nerr *e)
{
    return wire_decode(o, whoami_fields, ARRAY_SIZE(whoami_fields), r, false, e);
}

void wire_whoami_free(struct wire_whoami *r)
{
    free(r->user_id);
    free(r->name);
    memset(r, 0, sizeof(*r));
}

json_object *wire_whoami_encode(const struct wire_whoami *r)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "user_id", json_object_new_string(r->user_id));
    json_object_object_add(o, "name", json_object_new_string(r->name));
    return o;
}

static const struct wire_field capabilities_fields[] = {
    {"api_version", WT_INT, FIELD(wire_capabilities, api_version), NO_AUX, true, ANY_INT},
    {"max_exec_output_bytes", WT_INT, FIELD(wire_capabilities, max_exec_output_bytes), NO_AUX,
     true, ANY_INT},
    {"exec_timeout_secs", WT_INT, FIELD(wire_capabilities, exec_timeout_secs), NO_AUX, true,
     ANY_INT},
    {"console_timeout_secs", WT_INT, FIELD(wire_capabilities, console_timeout_secs), NO_AUX, true,
     ANY_INT},
    {"max_vm_name_length", WT_INT, FIELD(wire_capabilities, max_vm_name_length), NO_AUX, true,
     ANY_INT},
    {"default_cpus", WT_INT, FIELD(wire_capabilities, default_cpus), NO_AUX, true, ANY_INT},
    {"default_mem_mib", WT_INT, FIELD(wire_capabilities, default_mem_mib), NO_AUX, true, ANY_INT},
    {"max_cpus", WT_INT, FIELD(wire_capabilities, max_cpus), NO_AUX, false, ANY_INT},
    {"max_mem_mib", WT_INT, FIELD(wire_capabilities, max_mem_mib), NO_AUX, false, ANY_INT},
    {"max_vms_per_user", WT_INT, FIELD(wire_capabilities, max_vms_per_user), NO_AUX, false,
     ANY_INT},
    {"golden_ready", WT_BOOL, FIELD(wire_capabilities, golden_ready), NO_AUX, false, 0, 0},
};

int wire_capabilities_decode(json_object *o, struct wire_capabilities *r, struct nerr *e)
{
    return wire_decode(o, capabilities_fields, ARRAY_SIZE(capabilities_fields), r, false, e);
}

json_object *wire_capabilities_encode(const struct wire_capabilities *r)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "api_version", json_object_new_int64(r->api_version));
    json_object_object_add(o, "max_exec_output_bytes",
                           json_object_new_int64(r->max_exec_output_bytes));
    json_object_object_add(o, "exec_timeout_secs", json_object_new_int64(r->exec_timeout_secs));
    json_object_object_add(o, "console_timeout_secs",
                           json_object_new_int64(r->console_timeout_secs));
    json_object_object_add(o, "max_vm_name_length", json_object_new_int64(r->max_vm_name_length));
    json_object_object_add(o, "default_cpus", json_object_new_int64(r->default_cpus));
    json_object_object_add(o, "default_mem_mib", json_object_new_int64(r->default_mem_mib));
    json_object_object_add(o, "max_cpus", json_object_new_int64(r->max_cpus));
    json_object_object_add(o, "max_mem_mib", json_object_new_int64(r->max_mem_mib));
    json_object_object_add(o, "max_vms_per_user", json_object_new_int64(r->max_vms_per_user));
    json_object_object_add(o, "golden_ready", json_object_new_boolean(r->golden_ready));
    return o;
}

static const struct wire_field version_fields[] = {
    {"version", WT_STR, FIELD(wire_version, version), NO_AUX, true, 0, 256},
    {"api_version", WT_INT, FIELD(wire_version, api_version), NO_AUX, true, ANY_INT},
};

int wire_version_decode(json_object *o, struct wire_version *r, struct nerr *e)
{
    return wire_decode(o, version_fields, ARRAY_SIZE(version_fields), r, false, e);
}

void wire_version_free(struct wire_version *r)
{
    free(r->version);
    memset(r, 0, sizeof(*r));
}

json_object *wire_version_encode(const struct wire_version *r)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "version", json_object_new_string(r->version));
    json_object_object_add(o, "api_version", json_object_new_int64(r->api_version));
    return o;
}

json_object *wire_error_encode(const char *msg)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "error", json_object_new_string(msg));
    return o;
}

const char *wire_to_string(json_object *o, size_t *ret_len)
{
    return json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                             ret_len);
}
