/* names.c — see names.h.  Hand-written character classes rather than regex(3):
 * the rules are tiny, and locale-independent byte tests cannot be surprised
 * by LC_COLLATE ranges. */
#include "names.h"

#include <errno.h>
#include <string.h>

#include "encoding.h"

static bool is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int name_vm_check(const char *name, struct nerr *e)
{
    size_t n;

    if (!name || !*name)
        return nerr_set(e, -EINVAL, "VM name must not be empty");
    n = strlen(name);
    if (n > VM_NAME_MAX)
        return nerr_set(e, -EINVAL, "VM name is %zu characters long; the limit is %d", n,
                        VM_NAME_MAX);
    if (!is_alnum(name[0]))
        return nerr_set(e, -EINVAL,
                        "invalid VM name: it must start with a letter or digit "
                        "(allowed: A-Z a-z 0-9 . _ -)");
    for (size_t i = 1; i < n; i++) {
        char c = name[i];
        if (!is_alnum(c) && c != '.' && c != '_' && c != '-')
            return nerr_set(e, -EINVAL,
                            "invalid VM name: character %zu is not allowed "
                            "(allowed: A-Z a-z 0-9 . _ -)",
                            i + 1);
    }
    return 0;
}

int name_user_check(const char *name, struct nerr *e)
{
    size_t n;

    if (!name || !*name)
        return nerr_set(e, -EINVAL, "user name must not be empty");
    n = strlen(name);
    if (n > USER_NAME_MAX)
        return nerr_set(e, -EINVAL, "user name is %zu characters long; the limit is %d", n,
                        USER_NAME_MAX);
    if (!((name[0] >= 'a' && name[0] <= 'z') || name[0] == '_'))
        return nerr_set(e, -EINVAL,
                        "invalid user name '%s': it must start with a-z or _ "
                        "(allowed: a-z 0-9 _ -)",
                        name);
    for (size_t i = 1; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return nerr_set(e, -EINVAL, "invalid user name '%s' (allowed: a-z 0-9 _ -)", name);
    }
    return 0;
}

int name_env_entry_check(const char *entry, size_t len, struct nerr *e)
{
    const char *eq = memchr(entry, '=', len);
    size_t klen;

    if (!eq)
        return nerr_set(e, -EINVAL, "env entry must have the form NAME=VALUE");
    klen = (size_t)(eq - entry);
    if (klen == 0)
        return nerr_set(e, -EINVAL, "env entry has an empty name");
    if (klen > ENV_NAME_MAX)
        return nerr_set(e, -EINVAL, "env name is longer than %d characters", ENV_NAME_MAX);
    if (!((entry[0] >= 'a' && entry[0] <= 'z') || (entry[0] >= 'A' && entry[0] <= 'Z') ||
          entry[0] == '_'))
        return nerr_set(e, -EINVAL, "invalid env name '%.*s': must match [A-Za-z_][A-Za-z0-9_]*",
                        (int)MIN(klen, 64), entry);
    for (size_t i = 1; i < klen; i++)
        if (!is_alnum(entry[i]) && entry[i] != '_')
            return nerr_set(e, -EINVAL,
                            "invalid env name '%.*s': must match [A-Za-z_][A-Za-z0-9_]*",
                            (int)MIN(klen, 64), entry);
    if (len - klen - 1 > ENV_VALUE_MAX)
        return nerr_set(e, -EINVAL, "env value of %.*s is longer than %d bytes",
                        (int)MIN(klen, 64), entry, ENV_VALUE_MAX);
    if (memchr(entry, '\0', len))
        return nerr_set(e, -EINVAL, "env entry contains a NUL byte");
    return 0;
}

int name_label_check(const char *label, size_t len, struct nerr *e)
{
    if (len == 0)
        return nerr_set(e, -EINVAL, "label must not be empty");
    if (len > LABEL_MAX)
        return nerr_set(e, -EINVAL, "label is %zu bytes long; the limit is %d", len, LABEL_MAX);
    if (!utf8_is_valid(label, len))
        return nerr_set(e, -EINVAL, "label is not valid UTF-8");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)label[i];
        if (c < 0x20 || c == 0x7f)
            return nerr_set(e, -EINVAL, "label contains a control character at byte %zu", i + 1);
    }
    return 0;
}

bool name_is_checkpoint_id(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (!is_lower_hex(s[i]))
            return false;
    return i == CHECKPOINT_ID_LEN;
}

int name_checkpoint_prefix_check(const char *s, struct nerr *e)
{
    size_t i;

    if (!s || !*s)
        return nerr_set(e, -EINVAL, "checkpoint id must not be empty");
    for (i = 0; s[i]; i++)
        if (!is_lower_hex(s[i]))
            return nerr_set(e, -EINVAL,
                            "invalid checkpoint id '%.20s': ids are lowercase hex digits", s);
    if (i > CHECKPOINT_ID_LEN)
        return nerr_set(e, -EINVAL, "checkpoint id is longer than %d hex digits",
                        CHECKPOINT_ID_LEN);
    return 0;
}
