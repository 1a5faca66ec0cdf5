/* log.h — one line per event on stderr: "2026-11-26T15:55:21.123Z level: text".
 * Library modules do not log; the caller that decides what to do logs once.
 * The text is escaped (textutil.h): control characters, backslashes and
 * malformed UTF-8 in it are written as \n, \\, \xNN..., so interpolating
 * untrusted strings can never split an event over lines or forge one. */
#pragma once

#include "macro.h"

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

void log_set_level(enum log_level lvl);
void log_msg(enum log_level lvl, const char *fmt, ...) _printf_(2, 3);

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
