/* alog.h — the agent's logging: one line per notable event on stderr,
 * "noid-agent[pid]: level: text".  In the guest stderr is a log file chosen
 * on the command line (--log-file); on the host it is the terminal.  Debug
 * lines (every exec start/exit) only appear with --verbose. */
#pragma once

#include <stdbool.h>

#include "macro.h"

enum alog_level { ALOG_DEBUG, ALOG_INFO, ALOG_WARN, ALOG_ERROR };

void alog_set_verbose(bool verbose);
void alog(enum alog_level lvl, const char *fmt, ...) _printf_(2, 3);

#define alog_debug(...) alog(ALOG_DEBUG, __VA_ARGS__)
#define alog_info(...)  alog(ALOG_INFO, __VA_ARGS__)
#define alog_warn(...)  alog(ALOG_WARN, __VA_ARGS__)
#define alog_error(...) alog(ALOG_ERROR, __VA_ARGS__)
