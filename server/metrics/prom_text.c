/* prom_text.c — see prom_text.h.  The grammar followed is the one of
 * Prometheus' "Exposition formats" page, text format 0.0.4: one sample per
 * line, '\n' line ends, label values escaped as \\, \" and \n, help texts
 * as \\ and \n. */
#include "prom_text.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_name_char(char c, bool first, bool colon_ok)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (colon_ok && c == ':')
        return true;
    return !first && c >= '0' && c <= '9';
}

static bool valid_name(const char *s, bool colon_ok)
{
    if (!s || !*s)
        return false;
    for (size_t i = 0; s[i]; i++)
        if (!is_name_char(s[i], i == 0, colon_ok))
            return false;
    return true;
}

static bool valid_metric_name(const char *s)
{
    return valid_name(s, true);
}

/* "le" is the histogram's own label and "__" names are Prometheus'. */
static bool valid_label_name(const char *s)
{
    return valid_name(s, false) && strncmp(s, "__", 2) != 0 && strcmp(s, "le") != 0;
}

/* Append s with '\\' and newlines escaped (help texts), and '"' too when
 * quote (label values). */
static int append_escaped(struct buf *b, const char *s, bool quote)
{
    for (const char *p = s; *p; p++) {
        int r;
        if (*p == '\\')
            r = buf_append(b, "\\\\", 2);
        else if (*p == '\n')
            r = buf_append(b, "\\n", 2);
        else if (quote && *p == '"')
            r = buf_append(b, "\\\"", 2);
        else
            r = buf_append(b, p, 1);
        if (r < 0)
            return r;
    }
    return 0;
}

int prom_text_value(struct buf *b, double v)
{
    char tmp[40];

    if (isnan(v))
        return buf_append(b, "NaN", 3);
    if (isinf(v))
        return v > 0 ? buf_append(b, "+Inf", 4) : buf_append(b, "-Inf", 4);
    /* the shortest precision that reads back exactly: 0.05 stays "0.05",
     * a count stays an integer */
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    return buf_append(b, tmp, strlen(tmp));
}

/* name suffix {labels, extra="extra_value"} value\n; extra may be NULL. */
static int write_sample(struct buf *b, const char *name, const char *suffix,
                        const struct prom_label *labels, size_t n_labels, const char *extra,
                        const char *extra_value, double value)
{
    int r;

    r = buf_printf(b, "%s%s", name, suffix);
    if (r >= 0 && (n_labels > 0 || extra)) {
        r = buf_append(b, "{", 1);
        for (size_t i = 0; r >= 0 && i < n_labels; i++) {
            r = buf_printf(b, "%s%s=\"", i ? "," : "", labels[i].name);
            if (r >= 0)
                r = append_escaped(b, labels[i].value, true);
            if (r >= 0)
                r = buf_append(b, "\"", 1);
        }
        if (r >= 0 && extra)
            r = buf_printf(b, "%s%s=\"%s\"", n_labels ? "," : "", extra, extra_value);
        if (r >= 0)
            r = buf_append(b, "}", 1);
    }
    if (r >= 0)
        r = buf_append(b, " ", 1);
    if (r >= 0)
        r = prom_text_value(b, value);
    if (r >= 0)
        r = buf_append(b, "\n", 1);
    return r < 0 ? r : 0;
}

static bool labels_valid(const struct prom_label *labels, size_t n_labels)
{
    for (size_t i = 0; i < n_labels; i++)
        if (!valid_label_name(labels[i].name) || !labels[i].value)
            return false;
    return true;
}

int prom_text_family(struct buf *b, const char *name, const char *type, const char *help)
{
    static const char *const types[] = {"counter", "gauge", "histogram", "summary", "untyped"};
    bool known = false;
    int r;

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        known = known || strcmp(types[i], type) == 0;
    if (!valid_metric_name(name) || !known || !help)
        return -EINVAL;
    r = buf_printf(b, "# HELP %s ", name);
    if (r >= 0)
        r = append_escaped(b, help, false);
    if (r >= 0)
        r = buf_printf(b, "\n# TYPE %s %s\n", name, type);
    return r < 0 ? r : 0;
}

int prom_text_sample(struct buf *b, const char *name, const struct prom_label *labels,
                     size_t n_labels, double value)
{
    if (!valid_metric_name(name) || !labels_valid(labels, n_labels))
        return -EINVAL;
    return write_sample(b, name, "", labels, n_labels, NULL, NULL, value);
}

int prom_text_histogram(struct buf *b, const char *name, const struct prom_label *labels,
                        size_t n_labels, const double *bounds, const uint64_t *counts,
                        size_t n_bounds, double sum)
{
    uint64_t cumulative = 0;
    int r = 0;

    if (!valid_metric_name(name) || !labels_valid(labels, n_labels) ||
        n_bounds > PROM_TEXT_MAX_BUCKETS)
        return -EINVAL;
    for (size_t i = 0; i < n_bounds; i++)
        if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
            return -EINVAL;
    for (size_t i = 0; r >= 0 && i <= n_bounds; i++) {
        struct buf le;
        cumulative += counts[i];
        buf_init(&le, 64);
        r = i < n_bounds ? prom_text_value(&le, bounds[i]) : buf_append(&le, "+Inf", 4);
        if (r >= 0)
            r = write_sample(b, name, "_bucket", labels, n_labels, "le", (const char *)le.data,
                             (double)cumulative);
        buf_free(&le);
    }
    if (r >= 0)
        r = write_sample(b, name, "_sum", labels, n_labels, NULL, NULL, sum);
    if (r >= 0)
        r = write_sample(b, name, "_count", labels, n_labels, NULL, NULL, (double)cumulative);
    return r;
}
