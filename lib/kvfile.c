/* kvfile.c — see kvfile.h.
 *
 * inih keeps its options in process-wide globals; we set them once (multi-line
 * values and `;` inline comments off, heap line buffer) because the seed format
 * is TOML-like: `;` may appear inside a quoted value and `#` comments are ours
 * to strip.  Line numbers for handler errors are counted by our reader, which
 * inih calls once per line (or per piece of a long line). */
#include "kvfile.h"

#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"

struct kv_parse {
    const char *name;
    const char *cursor; /* next unread byte of the text */
    const char *end;
    int line;           /* number of the line being read (1-based) */
    bool at_line_start;
    kvfile_handler_t handler;
    void *user;
    struct nerr inner;
    int error_line;
    char **seen; /* keys already set, to refuse duplicates */
    size_t nseen;
};

static pthread_once_t ini_once = PTHREAD_ONCE_INIT;

static void ini_configure(void)
{
    ini_allow_multiline = false;
    ini_allow_inline_comments = false;
    ini_use_stack = false;
    ini_allow_realloc = true;
    ini_max_line = KVFILE_MAX_LINE + 3;
    ini_stop_on_first_error = true;
    ini_allow_no_value = false;
    ini_allow_bom = true;
}

/* fgets() over the in-memory text, counting lines as they start. */
static char *kv_reader(char *str, int num, void *stream)
{
    struct kv_parse *p = stream;
    size_t n = 0;

    if (p->cursor >= p->end || num < 2)
        return NULL;
    if (p->at_line_start) {
        p->line++;
        p->at_line_start = false;
    }
    while (p->cursor < p->end && n < (size_t)num - 1) {
        char c = *p->cursor++;
        str[n++] = c;
        if (c == '\n') {
            p->at_line_start = true;
            break;
        }
    }
    str[n] = '\0';
    return str;
}

static int kv_handler(void *user, const char *section, const char *name, const char *value)
{
    struct kv_parse *p = user;
    char **nseen;
    int r;

    for (size_t i = 0; i < p->nseen; i++)
        if (strcmp(p->seen[i], name) == 0) {
            nerr_set(&p->inner, -EINVAL, "duplicate key '%s'", name);
            goto fail;
        }
    r = p->handler(p->user, name, value, p->line, &p->inner);
    if (r < 0) {
        nerr_set(&p->inner, r, "invalid value for '%s'", name);
        goto fail;
    }
    nseen = realloc(p->seen, (p->nseen + 1) * sizeof(*p->seen));
    if (!nseen) {
        nerr_set(&p->inner, -ENOMEM, "out of memory");
        goto fail;
    }
    p->seen = nseen;
    p->seen[p->nseen] = strdup(name);
    if (!p->seen[p->nseen]) {
        nerr_set(&p->inner, -ENOMEM, "out of memory");
        goto fail;
    }
    p->nseen++;
    return 1;
fail:
    p->error_line = p->line;
    return 0;
}

int kvfile_parse_string(const char *name, const char *text, kvfile_handler_t handler, void *user,
                        struct nerr *e)
{
    struct kv_parse p = {
        .name = name,
        .cursor = text,
        .end = text + strlen(text),
        .at_line_start = true,
        .handler = handler,
        .user = user,
    };
    int r;

    /* Refuse over-long lines before inih sees (and cuts) them, and section
     * headers, which inih reports only when a key follows them. */
    for (const char *l = text; *l;) {
        size_t len = strcspn(l, "\n");
        size_t ws = strspn(l, " \t");
        p.line++;
        if (len > KVFILE_MAX_LINE)
            return nerr_set(e, -EINVAL, "%s:%d: line is longer than %d bytes", name, p.line,
                            KVFILE_MAX_LINE);
        if (ws < len && l[ws] == '[')
            return nerr_set(e, -EINVAL, "%s:%d: sections are not supported (%.*s)", name, p.line,
                            (int)MIN(len - ws, 40), l + ws);
        l += len;
        if (*l)
            l++;
    }
    p.line = 0;
    pthread_once(&ini_once, ini_configure);
    r = ini_parse_stream(kv_reader, &p, kv_handler, &p);
    for (size_t i = 0; i < p.nseen; i++)
        free(p.seen[i]);
    free(p.seen);

    if (p.inner.code != 0)
        return nerr_set(e, -EINVAL, "%s:%d: %s", name, p.error_line, p.inner.msg);
    if (r == -2)
        return nerr_set(e, -ENOMEM, "%s: out of memory", name);
    if (r != 0)
        return nerr_set(e, -EINVAL, "%s:%d: expected 'key = value'", name, r);
    return 0;
}

int kvfile_parse_file(const char *path, kvfile_handler_t handler, void *user, struct nerr *e)
{
    _cleanup_close_ int fd = -1;
    struct buf b;
    struct stat st;
    char chunk[8192];
    int r;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return nerr_set(e, -errno, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0)
        return nerr_set(e, -errno, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return nerr_set(e, -EINVAL, "%s: not a regular file", path);

    buf_init(&b, KVFILE_MAX_BYTES);
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = nerr_set(e, -errno, "%s: read error: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        if (buf_append(&b, chunk, (size_t)n) < 0) {
            r = nerr_set(e, -EFBIG, "%s: file is larger than %d bytes", path, KVFILE_MAX_BYTES);
            goto out;
        }
    }
    if (b.len && memchr(b.data, '\0', b.len)) {
        r = nerr_set(e, -EINVAL, "%s: file contains a NUL byte", path);
        goto out;
    }
    r = kvfile_parse_string(path, b.data ? (char *)b.data : "", handler, user, e);
out:
    buf_free(&b);
    return r;
}

/* Remove a trailing "# comment" and the whitespace before it from an
 * unquoted scalar; returns the cleaned length. */
static size_t scalar_len(const char *raw)
{
    const char *hash = strchr(raw, '#');
    size_t n = hash ? (size_t)(hash - raw) : strlen(raw);

    while (n > 0 && (raw[n - 1] == ' ' || raw[n - 1] == '\t'))
        n--;
    return n;
}

/* After a closing quote only whitespace and an optional comment may follow. */
static bool only_comment_follows(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return *s == '\0' || *s == '#';
}

int kv_value_string(const char *raw, char **ret, struct nerr *e)
{
    struct buf b;
    char quote = raw[0];
    const char *s = raw + 1;
    int r;

    if (quote != '"' && quote != '\'')
        return nerr_set(e, -EINVAL, "expected a quoted string, got %.40s", raw);
    buf_init(&b, KVFILE_MAX_LINE);
    for (;; s++) {
        char c = *s;
        if (c == '\0') {
            r = nerr_set(e, -EINVAL, "unterminated string");
            goto fail;
        }
        if (c == quote)
            break;
        if ((unsigned char)c < 0x20 && c != '\t') {
            r = nerr_set(e, -EINVAL, "control character in string");
            goto fail;
        }
        if (c == '\\' && quote == '"') {
            char esc = *++s;
            switch (esc) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            default:
                r = nerr_set(e, -EINVAL, "unsupported escape sequence '\\%c' in string",
                             esc ? esc : '0');
                goto fail;
            }
        }
        r = buf_append(&b, &c, 1);
        if (r < 0)
            goto fail;
    }
    if (!only_comment_follows(s + 1)) {
        r = nerr_set(e, -EINVAL, "unexpected text after the closing quote");
        goto fail;
    }
    *ret = buf_steal(&b, NULL);
    return *ret ? 0 : -ENOMEM;
fail:
    buf_free(&b);
    return r;
}

int kv_value_int(const char *raw, long long min, long long max, long long *ret, struct nerr *e)
{
    char tmp[64];
    size_t n = scalar_len(raw);
    char *end;
    long long v;

    if (n == 0 || n >= sizeof(tmp))
        return nerr_set(e, -EINVAL, "expected an integer");
    memcpy(tmp, raw, n);
    tmp[n] = 0;
    errno = 0;
    v = strtoll(tmp, &end, 10);
    if (errno != 0 || *end != '\0' || !((tmp[0] >= '0' && tmp[0] <= '9') || tmp[0] == '-'))
        return nerr_set(e, -EINVAL, "expected an integer, got '%s'", tmp);
    if (v < min || v > max)
        return nerr_set(e, -ERANGE, "%lld is out of range (%lld..%lld)", v, min, max);
    *ret = v;
    return 0;
}

int kv_value_bool(const char *raw, bool *ret, struct nerr *e)
{
    size_t n = scalar_len(raw);

    if (n == 4 && strncmp(raw, "true", 4) == 0)
        *ret = true;
    else if (n == 5 && strncmp(raw, "false", 5) == 0)
        *ret = false;
    else
        return nerr_set(e, -EINVAL, "expected true or false, got '%.*s'", (int)MIN(n, 40), raw);
    return 0;
}

char *kv_quote(const char *s)
{
    struct buf b;

    buf_init(&b, 0);
    if (buf_append(&b, "\"", 1) < 0)
        goto fail;
    for (; *s; s++) {
        const char *rep = NULL;
        switch (*s) {
        case '"': rep = "\\\""; break;
        case '\\': rep = "\\\\"; break;
        case '\n': rep = "\\n"; break;
        case '\t': rep = "\\t"; break;
        case '\r': rep = "\\r"; break;
        default: break;
        }
        if (rep ? buf_append(&b, rep, 2) < 0 : buf_append(&b, s, 1) < 0)
            goto fail;
    }
    if (buf_append(&b, "\"", 1) < 0)
        goto fail;
    return buf_steal(&b, NULL);
fail:
    buf_free(&b);
    return NULL;
}
