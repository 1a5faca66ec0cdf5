/* textutil.h — showing untrusted text safely.
 *
 * Text from outside (a guest agent above all) ends up in log lines and in
 * error messages people read in a terminal.  text_sanitize() rewrites it so
 * that it cannot end a line, move the cursor or pass for something the
 * server wrote:
 *
 *   printable ASCII and well-formed UTF-8      kept as is
 *   backslash                                  "\\"
 *   newline, carriage return, tab              "\n", "\r", "\t"
 *   every other C0 control, DEL, C1 controls,
 *   U+2028/U+2029 (line/paragraph separators),
 *   bidi overrides and isolates (U+200E/F,
 *   U+202A-U+202E, U+2066-U+2069)              "\xNN" for each byte
 *   every byte of malformed UTF-8 (overlong,
 *   surrogate, above U+10FFFF, cut short)      "\xNN"
 *
 * Escaping the backslash keeps the result unambiguous: a guest cannot send
 * the two characters '\' 'n' and have them read as an escaped newline.
 * No allocation. */
#pragma once

#include <stddef.h>

/* Longest output for one input byte ("\xNN"). */
#define TEXT_ESCAPE_MAX 4

/* Write the escaped form of s[0..len) into out (size bytes), always
 * NUL-terminated when size > 0.  When it does not fit, the output stops
 * before the first character or escape that would not fit whole, never in
 * the middle of one.  NUL bytes in s are escaped like any control.
 * Returns the number of input bytes written out (len when all of it fit). */
size_t text_sanitize(const void *s, size_t len, char *out, size_t size);
