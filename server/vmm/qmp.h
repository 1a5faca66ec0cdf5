/* qmp.h — a minimal synchronous QMP client (QEMU Machine Protocol).
 *
 * One connection per operation: open (greeting + qmp_capabilities), a few
 * commands, close.  QEMU serves one QMP client at a time, and the engine's
 * per-VM lock already serialises operations on a VM.  Asynchronous events
 * interleaved with replies are skipped. */
#pragma once

#include <json-c/json.h>

#include "nerr.h"

#define QMP_TIMEOUT_MS 10000
#define QMP_MAX_LINE (1024 * 1024)

struct qmp;

int qmp_open(const char *vm_dir, struct qmp **ret, struct nerr *e);
void qmp_close(struct qmp *q);

/* Run cmd with args (consumed; may be NULL).  passfd >= 0 is sent along with
 * the command (SCM_RIGHTS), as "getfd" and "add-fd" require.  On success
 * *ret_return (if non-NULL) gets the "return" value (caller puts it). */
int qmp_execute(struct qmp *q, const char *cmd, json_object *args, int passfd,
                json_object **ret_return, struct nerr *e);
