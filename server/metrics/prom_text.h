/* prom_text.h — a writer of the Prometheus text exposition format, version
 * 0.0.4 (what GET /metrics answers; metrics.c says what is in it).
 *
 * A family is its "# HELP" and "# TYPE" lines followed by its samples.
 * Names are checked against the format's grammar (-EINVAL otherwise: a
 * typo in a series name must fail a test, not a scrape); label values and
 * help texts are escaped.  Values are printed in their shortest form that
 * reads back as the same double ("+Inf", "-Inf", "NaN" as the format
 * spells them). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PROM_TEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Buckets of one histogram, at most (without +Inf). */
#define PROM_TEXT_MAX_BUCKETS 32

struct prom_label {
    const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not "le", not starting with "__" */
    const char *value; /* any UTF-8 */
};

/* "# HELP name help" and "# TYPE name type"; type is "counter", "gauge",
 * "histogram", "summary" or "untyped". */
int prom_text_family(struct buf *b, const char *name, const char *type, const char *help);

/* One sample line: name{labels} value. */
int prom_text_sample(struct buf *b, const char *name, const struct prom_label *labels,
                     size_t n_labels, double value);

/* The samples of one histogram: name_bucket for each bound and +Inf,
 * name_sum, name_count.  counts[i] is the number of observations in bucket
 * i alone (value <= bounds[i] and > bounds[i - 1]; counts[n_bounds]: above
 * the last bound); the lines carry the cumulative counts the format wants,
 * and _count is the +Inf bucket, so the two always agree.  bounds must
 * increase. */
int prom_text_histogram(struct buf *b, const char *name, const struct prom_label *labels,
                        size_t n_labels, const double *bounds, const uint64_t *counts,
                        size_t n_bounds, double sum);

/* Append a value as the format writes it (shortest round-trip form). */
int prom_text_value(struct buf *b, double v);
