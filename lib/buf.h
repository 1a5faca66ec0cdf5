/* buf.h — a growable byte buffer with a hard cap.
 *
 * Every buffer that holds untrusted bytes has a bound; buf_append returns
 * -E2BIG when the cap would be exceeded and leaves the buffer unchanged, so
 * the caller can decide whether that means 413, truncation or an error. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *data; /* always NUL-terminated past len, for string use */
    size_t len;
    size_t cap;
    size_t max; /* 0 = unbounded (only for trusted, self-produced data) */
};

void buf_init(struct buf *b, size_t max);
int buf_append(struct buf *b, const void *p, size_t n);
/* Append as much as fits under the cap; returns the number of bytes kept. */
size_t buf_append_capped(struct buf *b, const void *p, size_t n);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_consume(struct buf *b, size_t n); /* drop n bytes from the front */
void buf_reset(struct buf *b);
void buf_free(struct buf *b);
/* Hand the bytes over (NUL-terminated, caller frees); the buffer is empty after. */
char *buf_steal(struct buf *b, size_t *ret_len);
