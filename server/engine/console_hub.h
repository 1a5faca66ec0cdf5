/* console_hub.h — the engine's side of the console hubs (console_hub.c):
 * starting and stopping the hub thread, and ending the attachments of a VM
 * whose VMM goes away.  The attachment API front-ends use is in engine.h
 * (engine_console_*). */
#pragma once

#include <stdint.h>

struct engine;

/* Output kept per VM for replays (the newest bytes). */
#define CONSOLE_REPLAY_MAX (16u * 1024)
/* Output an attachment may have unread; beyond it its oldest unread bytes
 * are dropped and counted as skipped, so a slow reader never holds the VM
 * or the other readers. */
#define CONSOLE_READER_BUF (256u * 1024)
/* Typed bytes waiting for the guest, per VM; writers wait beyond it. */
#define CONSOLE_INPUT_MAX (64u * 1024)
/* How long a hub stays connected after its last reader left while typed
 * bytes are still on their way (the UART takes a few bytes at a time, and
 * what is unread when we disconnect is lost). */
#define CONSOLE_DRAIN_MS 2000
/* How long a hub without readers stays connected even when everything was
 * delivered: QEMU serves one console client at a time and takes a moment
 * to listen again after one leaves, so a quick re-attach (`echo … >
 * console` twice) reuses the hub instead of finding the socket busy. */
#define CONSOLE_LINGER_MS 1000
/* While the guest has not read the typed bytes out of the socket yet, the
 * hub checks again this often. */
#define CONSOLE_DRAIN_POLL_MS 20
/* A console socket found busy (EAGAIN) is retried this long. */
#define CONSOLE_CONNECT_RETRY_MS 1000

/* Start the hub thread (server mode). */
int console_hubs_start(struct engine *eng);
/* End every attachment ("the server is shutting down") and stop the thread. */
void console_hubs_stop(struct engine *eng);
/* End every attachment of VM vm_id with reason (its VMM is about to be
 * killed or replaced: destroy, restore).  The hub disconnects. */
void console_hubs_end_vm(struct engine *eng, int64_t vm_id, const char *reason);
