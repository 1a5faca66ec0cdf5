/* rest_console.c — the REST binding's console: GET /v1/vms/{name}/console
 * over WebSocket (docs/api.md), one thread per attachment.
 *
 * The thread owns the ws_client: it moves output into a bounded buffer
 * (the eventfd console_fd returns is readable while something waits there
 * or the attachment ended) and sends what console_write queued, one frame
 * per write.  While the buffer is full it stops reading the socket; the
 * server then drops the oldest output for us (and says so with
 * {"skipped":N}, which we pass over). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "buf.h"
#include "macro.h"
#include "rest-internal.h"
#include "timeutil.h"

/* Console output received and not yet read; past it the socket is not
 * read. */
#define REST_CONSOLE_IN_MAX (256u * 1024)
/* Typed console bytes waiting to be sent. */
#define REST_CONSOLE_TX_MAX (256u * 1024)
/* One console input frame (docs/api.md: up to 64 KiB reach the guest whole). */
#define REST_CONSOLE_WRITE_MAX (64u * 1024)
/* Sending typed bytes: the server takes them while the guest reads them. */
#define REST_CONSOLE_SEND_MS 30000

/* One typed write, sent as one frame. */
struct console_tx {
    struct console_tx *next;
    size_t len; /* frame bytes: the channel byte and the data */
    uint8_t frame[];
};

struct noidfs_console {
    struct ws_client *wc; /* the thread's */
    int ready_fd;         /* eventfd: output or the end waits (console_fd) */
    int wake_fd;          /* eventfd: input queued, room to read, detach */
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;                  /* room in the tx queue, the end */
    struct buf in;                        /* (lock) output not read yet */
    struct console_tx *tx_head, *tx_tail; /* (lock) */
    size_t tx_bytes;                      /* (lock) */
    bool stalled;                         /* (lock) in is full: the socket is not read */
    bool ended;                           /* (lock) the attachment is over */
    bool detach;                          /* (lock) */
};

/* The attachment is over: readers get -EPIPE once they read what is left. */
static void console_end(struct noidfs_console *c)
{
    pthread_mutex_lock(&c->lock);
    c->ended = true;
    rest_efd_signal(c->ready_fd);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

static void *console_main(void *arg)
{
    struct noidfs_console *c = arg;
    struct ws *ws = ws_client_ws(c->wc);
    int wsfd = ws_client_fd(c->wc);

    for (;;) {
        struct console_tx *tx;
        struct ws_message m;
        bool stalled, detach;
        int r;

        pthread_mutex_lock(&c->lock);
        detach = c->detach;
        tx = c->tx_head;
        /* typed bytes still queued go out before a detach closes: `echo
         * cmd > console` writes and closes at once */
        if (tx) {
            c->tx_head = tx->next;
            if (!c->tx_head)
                c->tx_tail = NULL;
            c->tx_bytes -= tx->len - 1;
            pthread_cond_broadcast(&c->cond);
        }
        stalled = c->stalled = c->in.len >= REST_CONSOLE_IN_MAX;
        pthread_mutex_unlock(&c->lock);
        if (detach && !tx) {
            rest_ws_close_politely(ws, "detached");
            break;
        }
        if (tx) {
            r = ws_send(ws, WS_OP_BINARY, tx->frame, tx->len, REST_CONSOLE_SEND_MS);
            free(tx);
            if (r < 0)
                break;
        }
        if (!stalled) {
            r = ws_receive(ws, &m);
            if (r > 0) {
                /* text frames ({"skipped":N}) and other channels: nothing to do */
                if (m.opcode == WS_OP_BINARY && m.len > 1 && m.data[0] == REST_CH_STDOUT) {
                    pthread_mutex_lock(&c->lock);
                    r = buf_append(&c->in, m.data + 1, m.len - 1);
                    rest_efd_signal(c->ready_fd);
                    pthread_mutex_unlock(&c->lock);
                    if (r < 0)
                        break;
                }
                continue;
            }
            if (r < 0)
                break; /* closed (the VM went away, idle, shutdown) or lost */
        }
        if (tx)
            continue; /* more may be queued: a busy typist does not starve the output */

        struct pollfd p[2] = {{.fd = c->wake_fd, .events = POLLIN},
                              {.fd = stalled ? -1 : wsfd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents)
            rest_efd_drain(c->wake_fd);
    }
    console_end(c);
    return NULL;
}

static void console_destroy(struct noidfs_console *c)
{
    while (c->tx_head) {
        struct console_tx *tx = c->tx_head;
        c->tx_head = tx->next;
        free(tx);
    }
    ws_client_free(c->wc);
    if (c->ready_fd >= 0)
        close(c->ready_fd);
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    buf_free(&c->in);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int rest_console_attach(void *bp, const char *user, const char *vm, struct noidfs_console **ret,
                        struct nerr *e)
{
    _cleanup_free_ char *path = NULL;
    struct noidfs_console *c;
    int r;

    r = rest_check_vm(vm, e);
    if (r < 0)
        return r;
    /* output from the moment of opening: no replay of older output */
    if (asprintf(&path, "/v1/vms/%s/console?replay=0", vm) < 0) {
        path = NULL;
        return -ENOMEM;
    }
    c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->ready_fd = c->wake_fd = -1;
    buf_init(&c->in, 0); /* bounded by the thread: it stops reading at REST_CONSOLE_IN_MAX */
    pthread_mutex_init(&c->lock, NULL);
    r = rest_cond_init_mono(&c->cond);
    if (r < 0) {
        pthread_mutex_destroy(&c->lock);
        free(c);
        return r;
    }
    c->ready_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->ready_fd < 0 || c->wake_fd < 0) {
        r = nerr_set(e, -errno, "eventfd: %m");
        goto fail;
    }
    r = rest_ws_open(bp, path, &c->wc, e);
    if (r < 0)
        goto fail;
    r = -pthread_create(&c->thread, NULL, console_main, c);
    if (r < 0) {
        nerr_set(e, r, "cannot start the console's thread: %s", strerror(-r));
        goto fail;
    }
    *ret = c;
    return 0;
fail:
    console_destroy(c);
    return r;
}

int rest_console_fd(struct noidfs_console *c)
{
    return c->ready_fd;
}

ssize_t rest_console_read(struct noidfs_console *c, void *buf, size_t len)
{
    ssize_t n = 0;
    bool wake = false;

    pthread_mutex_lock(&c->lock);
    if (c->in.len > 0) {
        n = (ssize_t)MIN(len, c->in.len);
        memcpy(buf, c->in.data, (size_t)n);
        buf_consume(&c->in, (size_t)n);
    } else if (c->ended) {
        n = -EPIPE;
    }
    /* the eventfd stays readable exactly while something waits */
    if (c->in.len == 0 && !c->ended)
        rest_efd_drain(c->ready_fd);
    if (c->stalled && c->in.len < REST_CONSOLE_IN_MAX) {
        c->stalled = false;
        wake = true;
    }
    pthread_mutex_unlock(&c->lock);
    if (wake)
        rest_efd_signal(c->wake_fd);
    return n;
}

int rest_console_write(struct noidfs_console *c, const void *data, size_t len, int timeout_ms)
{
    struct timespec until = time_mono_timespec(time_mono_ms() + MAX(timeout_ms, 0));
    struct console_tx *tx;
    int r = 0;

    if (len == 0)
        return 0;
    if (len > REST_CONSOLE_WRITE_MAX)
        return -EINVAL;
    tx = malloc(sizeof(*tx) + 1 + len);
    if (!tx)
        return -ENOMEM;
    tx->next = NULL;
    tx->len = 1 + len;
    tx->frame[0] = REST_CH_STDIN;
    memcpy(tx->frame + 1, data, len);

    pthread_mutex_lock(&c->lock);
    while (!c->ended && c->tx_bytes > 0 && c->tx_bytes + len > REST_CONSOLE_TX_MAX) {
        if (timeout_ms < 0)
            pthread_cond_wait(&c->cond, &c->lock);
        else if (pthread_cond_clockwait(&c->cond, &c->lock, CLOCK_MONOTONIC, &until) == ETIMEDOUT) {
            r = -ETIMEDOUT;
            break;
        }
    }
    if (r == 0 && c->ended)
        r = -EPIPE;
    if (r == 0) {
        if (c->tx_tail)
            c->tx_tail->next = tx;
        else
            c->tx_head = tx;
        c->tx_tail = tx;
        c->tx_bytes += len;
        tx = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    free(tx);
    if (r == 0)
        rest_efd_signal(c->wake_fd);
    return r;
}

void rest_console_detach(struct noidfs_console *c)
{
    if (!c)
        return;
    /* an attachment handed out always has its thread */
    pthread_mutex_lock(&c->lock);
    c->detach = true;
    pthread_mutex_unlock(&c->lock);
    rest_efd_signal(c->wake_fd);
    pthread_join(c->thread, NULL);
    console_destroy(c);
}
