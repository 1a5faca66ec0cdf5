/* console_hub.c — one console hub per VM with readers: the engine's single
 * connection to the VM's serial console, shared by every attachment (REST
 * WebSocket sessions, noidfs's console file).
 *
 * One thread serves every hub with epoll: it reads the console socket as
 * soon as it is readable, keeps the newest CONSOLE_REPLAY_MAX bytes for
 * replays and appends the bytes to every attachment's queue, and writes the
 * typed bytes waiting in the hub's input queue when the socket takes them.
 * serial.log is not ours to write: the VMM's chardev logs every byte there
 * itself (QEMU's logfile), also while the server is down, and console_log.c
 * keeps it under its cap.
 *
 * Bounds: an attachment's queue holds CONSOLE_READER_BUF bytes; a reader
 * that falls further behind loses its oldest unread bytes and is told how
 * many (skipped), so neither the VM nor the other readers ever wait for
 * it.  Typed input waits in CONSOLE_INPUT_MAX bytes per VM; writers wait
 * for room (the guest's UART is slow), bounded by their timeout.
 *
 * Life of a hub: made by the first attach (the VM's lifecycle lock held, so
 * never two for one VM and never during a restore), freed by the thread once
 * the last reader left, the typed bytes were read by the guest and
 * CONSOLE_LINGER_MS passed (or CONSOLE_DRAIN_MS passed), or at once when the console closes (the VM
 * stopped) or the VM is destroyed or restored (console_hubs_end_vm).  Every attachment then ends
 * with a reason.
 *
 * Locking: one mutex (console_hubs.lock) guards every hub and attachment
 * field; nothing blocking happens under it (socket I/O is non-blocking). */
#include "console_hub.h"

#include <time.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine-internal.h"
#include "fsutil.h"
#include "log.h"
#include "macro.h"
#include "timeutil.h"
#include "vm-internal.h"

#define CONSOLE_READ_CHUNK (16u * 1024)
/* Reads per readable event before the other hubs get their turn. */
#define CONSOLE_READS_PER_EVENT 16
#define CONSOLE_MAX_EVENTS      64

/* A byte ring that keeps the newest bytes when it overflows. */
struct byte_ring {
    uint8_t *data;
    size_t cap, start, len;
};

struct console_hub {
    int64_t vm_id;
    char label[DB_ID_LEN + 80]; /* "user/name", for the log */
    int fd;                     /* the console socket, non-blocking */
    struct byte_ring replay;
    uint8_t *input; /* CONSOLE_INPUT_MAX bytes */
    size_t input_len;
    bool want_out;           /* EPOLLOUT is registered */
    bool dead;               /* readers ended; the thread frees it */
    int64_t drain_until_ms;  /* no readers: close once input is out or then */
    int64_t linger_until_ms; /* no readers: stay connected at least until then */
    struct engine_console *readers;
    struct console_hub *next;
};

struct engine_console {
    struct console_hubs *hubs;
    struct console_hub *hub; /* NULL once ended */
    int efd;                 /* eventfd: output, a skip or the end waits */
    struct byte_ring out;
    uint64_t skipped;
    bool ended;
    bool vm_gone;
    char reason[256];
    struct engine_console *next;
};

struct console_hubs {
    pthread_mutex_t lock;
    pthread_cond_t room; /* input room freed, or an attachment ended */
    int epfd;
    int wake_fd; /* eventfd: input queued, a hub to drop, stop */
    pthread_t thread;
    bool stopping;
    struct console_hub *list;
};

/* ---- byte ring ---- */

static int ring_init(struct byte_ring *r, size_t cap)
{
    r->data = malloc(cap);
    r->cap = cap;
    r->start = r->len = 0;
    return r->data ? 0 : -ENOMEM;
}

/* Append, dropping the oldest bytes beyond cap; returns how many were
 * dropped (old ones or the front of p). */
static size_t ring_push(struct byte_ring *r, const uint8_t *p, size_t n)
{
    size_t dropped = 0;

    if (n >= r->cap) {
        dropped = r->len + (n - r->cap);
        p += n - r->cap;
        n = r->cap;
        r->start = r->len = 0;
    } else if (r->len + n > r->cap) {
        size_t drop = r->len + n - r->cap;
        r->start = (r->start + drop) % r->cap;
        r->len -= drop;
        dropped = drop;
    }
    for (size_t done = 0; done < n;) {
        size_t pos = (r->start + r->len) % r->cap;
        size_t take = MIN(n - done, r->cap - pos);
        memcpy(r->data + pos, p + done, take);
        r->len += take;
        done += take;
    }
    return dropped;
}

static size_t ring_pop(struct byte_ring *r, uint8_t *out, size_t n)
{
    size_t done = 0;

    while (done < n && r->len > 0) {
        size_t take = MIN(MIN(n - done, r->len), r->cap - r->start);
        memcpy(out + done, r->data + r->start, take);
        r->start = (r->start + take) % r->cap;
        r->len -= take;
        done += take;
    }
    if (r->len == 0)
        r->start = 0;
    return done;
}

/* Copy the newest n bytes (at most len) into dst's ring. */
static void ring_copy_tail(const struct byte_ring *src, size_t n, struct byte_ring *dst)
{
    n = MIN(n, src->len);
    for (size_t off = src->len - n; off < src->len;) {
        size_t pos = (src->start + off) % src->cap;
        size_t take = MIN(src->len - off, src->cap - pos);
        ring_push(dst, src->data + pos, take);
        off += take;
    }
}

/* ---- attachments ---- */

static void signal_fd(int fd)
{
    uint64_t one = 1;
    (void)!write(fd, &one, sizeof(one));
}

static void drain_fd(int fd)
{
    uint64_t v;
    (void)!read(fd, &v, sizeof(v));
}

/* (lock) End one attachment; it stays allocated until detached. */
static void reader_end(struct console_hubs *hs, struct engine_console *c, const char *reason,
                       bool vm_gone)
{
    if (c->ended)
        return;
    c->ended = true;
    c->vm_gone = vm_gone;
    c->hub = NULL;
    snprintf(c->reason, sizeof(c->reason), "%s", reason);
    signal_fd(c->efd);
    pthread_cond_broadcast(&hs->room);
}

/* (lock) End every reader of h and mark it for the thread to free. */
static void hub_kill(struct console_hubs *hs, struct console_hub *h, const char *reason,
                     bool vm_gone)
{
    while (h->readers) {
        struct engine_console *c = h->readers;
        h->readers = c->next;
        c->next = NULL;
        reader_end(hs, c, reason, vm_gone);
    }
    h->dead = true;
    signal_fd(hs->wake_fd);
}

static void hub_free(struct console_hubs *hs, struct console_hub *h)
{
    if (h->fd >= 0) {
        epoll_ctl(hs->epfd, EPOLL_CTL_DEL, h->fd, NULL);
        close(h->fd);
    }
    free(h->replay.data);
    free(h->input);
    free(h);
}

/* (lock) Bytes from the console: to the replay ring and every reader. */
static void hub_fan_out(struct console_hub *h, const uint8_t *p, size_t n)
{
    ring_push(&h->replay, p, n);
    for (struct engine_console *c = h->readers; c; c = c->next) {
        c->skipped += ring_push(&c->out, p, n);
        signal_fd(c->efd);
    }
}

/* (lock) Write what the socket takes of the input queue. */
static int hub_flush_input(struct console_hubs *hs, struct console_hub *h)
{
    size_t before = h->input_len;

    while (h->input_len > 0) {
        ssize_t n = write(h->fd, h->input, h->input_len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0)
            return -EPIPE;
        memmove(h->input, h->input + n, h->input_len - (size_t)n);
        h->input_len -= (size_t)n;
    }
    if (h->input_len < before)
        pthread_cond_broadcast(&hs->room);
    bool want = h->input_len > 0;
    if (want != h->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = h};
        epoll_ctl(hs->epfd, EPOLL_CTL_MOD, h->fd, &ev);
        h->want_out = want;
    }
    return 0;
}

/* (lock) The socket is readable (or hung up): read what it has. */
static void hub_read(struct console_hubs *hs, struct console_hub *h)
{
    uint8_t buf[CONSOLE_READ_CHUNK];

    for (int i = 0; i < CONSOLE_READS_PER_EVENT; i++) {
        ssize_t n = read(h->fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            log_info("vm %s: console closed (the VM stopped)", h->label);
            hub_kill(hs, h, "the VM stopped: its console closed", true);
            return;
        }
        hub_fan_out(h, buf, (size_t)n);
    }
}

/* Bytes written to the console socket that QEMU has not read yet (on a
 * unix socket they stay charged to the sender until the peer reads them). */
static int socket_unread(int fd)
{
    int n = 0;

    if (ioctl(fd, SIOCOUTQ, &n) < 0)
        return 0;
    return n;
}

/* (lock) Free hubs that are dead, or idle with everything delivered (the
 * guest read it: what is unread when we disconnect is lost) and their
 * linger over; an idle hub whose guest does not read goes at its drain
 * deadline.  Returns the epoll timeout until the next check (-1: none). */
static int hubs_reap(struct console_hubs *hs)
{
    int64_t now = time_mono_ms(), next = -1;

    for (struct console_hub **pp = &hs->list; *pp;) {
        struct console_hub *h = *pp;
        bool delivered = !h->readers && h->input_len == 0 && socket_unread(h->fd) == 0;
        bool idle_done =
            !h->readers && ((delivered && now >= h->linger_until_ms) || now >= h->drain_until_ms);
        if (h->dead || idle_done) {
            *pp = h->next;
            hub_free(hs, h);
            continue;
        }
        if (!h->readers) {
            int64_t left = delivered ? h->linger_until_ms - now
                                     : MIN(h->drain_until_ms - now, CONSOLE_DRAIN_POLL_MS);
            if (next < 0 || left < next)
                next = left;
        }
        pp = &h->next;
    }
    return next < 0 ? -1 : (int)MAX(next, 1);
}

static void *hubs_thread(void *arg)
{
    struct console_hubs *hs = arg;
    struct epoll_event evs[CONSOLE_MAX_EVENTS];
    int timeout = -1;

    for (;;) {
        int n = epoll_wait(hs->epfd, evs, CONSOLE_MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR) {
            log_error("console hubs: epoll_wait: %s", strerror(errno));
            break;
        }
        pthread_mutex_lock(&hs->lock);
        if (hs->stopping) {
            pthread_mutex_unlock(&hs->lock);
            break;
        }
        for (int i = 0; i < n; i++) {
            struct console_hub *h = evs[i].data.ptr;
            if (!h) {
                drain_fd(hs->wake_fd);
                continue;
            }
            if (h->dead)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                hub_read(hs, h);
        }
        /* typed input may have arrived for any hub (the wake-up) */
        for (struct console_hub *h = hs->list; h; h = h->next)
            if (!h->dead && hub_flush_input(hs, h) < 0)
                hub_kill(hs, h, "the VM stopped: its console closed", true);
        timeout = hubs_reap(hs);
        pthread_mutex_unlock(&hs->lock);
    }
    return NULL;
}

int console_hubs_start(struct engine *eng)
{
    struct console_hubs *hs = calloc(1, sizeof(*hs));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    int r;

    if (!hs)
        return -ENOMEM;
    pthread_mutex_init(&hs->lock, NULL);
    pthread_cond_init(&hs->room, NULL);
    hs->epfd = epoll_create1(EPOLL_CLOEXEC);
    hs->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (hs->epfd < 0 || hs->wake_fd < 0 ||
        epoll_ctl(hs->epfd, EPOLL_CTL_ADD, hs->wake_fd, &ev) < 0) {
        r = -errno;
        goto fail;
    }
    r = -pthread_create(&hs->thread, NULL, hubs_thread, hs);
    if (r < 0)
        goto fail;
    eng->consoles = hs;
    return 0;
fail:
    if (hs->epfd >= 0)
        close(hs->epfd);
    if (hs->wake_fd >= 0)
        close(hs->wake_fd);
    free(hs);
    return r;
}

void console_hubs_stop(struct engine *eng)
{
    struct console_hubs *hs = eng->consoles;

    if (!hs)
        return;
    pthread_mutex_lock(&hs->lock);
    for (struct console_hub *h = hs->list; h; h = h->next)
        hub_kill(hs, h, "the server is shutting down", true);
    hs->stopping = true;
    signal_fd(hs->wake_fd);
    pthread_mutex_unlock(&hs->lock);
    pthread_join(hs->thread, NULL);
    while (hs->list) {
        struct console_hub *h = hs->list;
        hs->list = h->next;
        hub_free(hs, h);
    }
    close(hs->epfd);
    close(hs->wake_fd);
    pthread_cond_destroy(&hs->room);
    pthread_mutex_destroy(&hs->lock);
    free(hs);
    eng->consoles = NULL;
}

void console_hubs_end_vm(struct engine *eng, int64_t vm_id, const char *reason)
{
    struct console_hubs *hs = eng->consoles;

    if (!hs)
        return;
    pthread_mutex_lock(&hs->lock);
    for (struct console_hub *h = hs->list; h; h = h->next)
        if (h->vm_id == vm_id && !h->dead)
            hub_kill(hs, h, reason, true);
    pthread_mutex_unlock(&hs->lock);
}

/* The newest CONSOLE_REPLAY_MAX bytes of the VM's serial.log into r: what
 * a first reader's replay shows (a VM made from the golden snapshot or a
 * checkpoint has the log of the machine it came from). */
static void replay_seed(const char *vm_dir, struct byte_ring *r)
{
    _cleanup_free_ char *path = path_join(vm_dir, VM_FILE_SERIAL_LOG);
    _cleanup_close_ int fd = path ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1;
    uint8_t buf[CONSOLE_READ_CHUNK];
    struct stat st;
    off_t off;

    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return;
    off = st.st_size > (off_t)r->cap ? st.st_size - (off_t)r->cap : 0;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof(buf), off);
        if (n <= 0)
            break;
        ring_push(r, buf, (size_t)n);
        off += n;
    }
}

/* (lifecycle lock of the VM) A new hub for vm, connected to its console. */
static int hub_new(struct engine *eng, const struct db_vm *vm, struct console_hub **ret,
                   struct nerr *e)
{
    struct vmm_backend *be = engine_backend(eng, vm->vmm);
    _cleanup_free_ char *dir = engine_vm_dir(eng, vm->user_id, vm->name);
    struct console_hub *h;
    int r;

    if (!be || !be->ops->console_connect)
        return nerr_set(e, -EOPNOTSUPP,
                        "VM '%s' runs under %s, whose serial console cannot be attached to "
                        "(its output is in serial.log)",
                        vm->name, vm->vmm);
    if (!dir)
        return -ENOMEM;
    h = calloc(1, sizeof(*h));
    if (!h)
        return -ENOMEM;
    h->fd = -1;
    h->vm_id = vm->id;
    snprintf(h->label, sizeof(h->label), "%s/%s", vm->user_id, vm->name);
    h->input = malloc(CONSOLE_INPUT_MAX);
    if (!h->input || ring_init(&h->replay, CONSOLE_REPLAY_MAX) < 0) {
        r = -ENOMEM;
        goto fail;
    }
    /* the log first, then connect: a byte written in between is missing
     * from the replay rather than shown twice */
    replay_seed(dir, &h->replay);
    /* QEMU takes one client at a time: the socket is busy (EAGAIN) for a
     * moment after another hub of this VM left */
    for (int64_t until = time_mono_ms() + CONSOLE_CONNECT_RETRY_MS;;) {
        struct nerr ce = {0};
        r = be->ops->console_connect(be, dir, &h->fd, &ce);
        if (r != -EAGAIN || time_mono_ms() >= until) {
            if (r < 0)
                nerr_set(e, r, "%s", nerr_msg(&ce));
            break;
        }
        time_sleep_ms(20);
    }
    if (r < 0)
        goto fail;
    if (fcntl(h->fd, F_SETFL, fcntl(h->fd, F_GETFL) | O_NONBLOCK) < 0) {
        r = nerr_set(e, -errno, "console socket: %s", strerror(errno));
        goto fail;
    }
    *ret = h;
    return 0;
fail:
    free(h->input);
    free(h->replay.data);
    if (h->fd >= 0)
        close(h->fd);
    free(h);
    return r;
}

int engine_console_attach(struct engine *eng, const struct db_user *u, const char *name,
                          size_t replay, struct engine_console **ret, struct nerr *e)
{
    struct console_hubs *hs = eng->consoles;
    struct console_hub *h = NULL, *made = NULL;
    struct engine_console *c = NULL;
    struct vm_rt *rt = NULL;
    struct db_vm vm;
    int r;

    if (!hs)
        return nerr_set(e, -EOPNOTSUPP, "consoles are served by the running server only");
    r = vm_acquire(eng, u, name, &vm, &rt, e);
    if (r < 0)
        return r;
    if (strcmp(vm.phase, VM_PHASE_READY) != 0) {
        r = nerr_set(e, -EBUSY, "VM '%s' is being restored; try again in a moment", name);
        goto out;
    }
    if (!engine_vm_row_is_running(&vm)) {
        r = nerr_set(e, -ESRCH, "VM '%s' is not running (state: dead)", name);
        goto out;
    }
    c = calloc(1, sizeof(*c));
    if (!c || ring_init(&c->out, CONSOLE_READER_BUF) < 0) {
        r = -ENOMEM;
        goto out;
    }
    c->hubs = hs;
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (c->efd < 0) {
        r = nerr_set(e, -errno, "eventfd: %s", strerror(errno));
        goto out;
    }
    /* Find the VM's hub and join it in one critical section: the hub
     * thread frees idle or dead hubs under this lock, without the VM's
     * lifecycle lock, so h must not be used after letting go of it. */
    pthread_mutex_lock(&hs->lock);
    for (h = hs->list; h; h = h->next)
        if (h->vm_id == vm.id && !h->dead)
            break;
    if (!h) {
        pthread_mutex_unlock(&hs->lock);
        /* connecting may take a moment: outside the hubs' lock (the VM's
         * lifecycle lock keeps a second hub for it from being made) */
        r = hub_new(eng, &vm, &made, e);
        if (r < 0)
            goto out;
        pthread_mutex_lock(&hs->lock);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = made};
        if (hs->stopping || epoll_ctl(hs->epfd, EPOLL_CTL_ADD, made->fd, &ev) < 0) {
            pthread_mutex_unlock(&hs->lock);
            hub_free(hs, made);
            r = nerr_set(e, -ESHUTDOWN, "the server is shutting down");
            goto out;
        }
        made->next = hs->list;
        hs->list = made;
        h = made;
        log_info("vm %s: console hub connected", h->label);
    }
    c->hub = h;
    c->next = h->readers;
    h->readers = c;
    ring_copy_tail(&h->replay, replay, &c->out);
    if (c->out.len)
        signal_fd(c->efd);
    pthread_mutex_unlock(&hs->lock);
    *ret = c;
    c = NULL;
out:
    if (c) {
        if (c->efd > 0)
            close(c->efd);
        free(c->out.data);
        free(c);
    }
    vm_release(eng, rt, false);
    return r;
}

int engine_console_fd(const struct engine_console *c)
{
    return c->efd;
}

ssize_t engine_console_read(struct engine_console *c, void *buf, size_t len, uint64_t *ret_skipped)
{
    struct console_hubs *hs = c->hubs;
    size_t n;

    pthread_mutex_lock(&hs->lock);
    drain_fd(c->efd);
    *ret_skipped = c->skipped;
    c->skipped = 0;
    n = ring_pop(&c->out, buf, len);
    if (c->out.len > 0 || c->ended)
        signal_fd(c->efd); /* more than len, or the end, waits: stay readable */
    if (n == 0 && *ret_skipped == 0 && c->ended) {
        signal_fd(c->efd);
        pthread_mutex_unlock(&hs->lock);
        return -EPIPE;
    }
    pthread_mutex_unlock(&hs->lock);
    return (ssize_t)n;
}

const char *engine_console_end_reason(struct engine_console *c, bool *ret_vm_gone)
{
    const char *reason;

    pthread_mutex_lock(&c->hubs->lock);
    reason = c->ended ? c->reason : "";
    if (ret_vm_gone)
        *ret_vm_gone = c->vm_gone;
    pthread_mutex_unlock(&c->hubs->lock);
    return reason;
}

int engine_console_write(struct engine_console *c, const void *data, size_t len, int timeout_ms)
{
    struct console_hubs *hs = c->hubs;
    const uint8_t *p = data;
    struct timespec until = time_mono_timespec(time_mono_ms() + timeout_ms);
    int r = 0;

    pthread_mutex_lock(&hs->lock);
    while (len > 0) {
        struct console_hub *h = c->hub;
        if (c->ended || !h) {
            r = -EPIPE;
            break;
        }
        /* a piece of up to CONSOLE_INPUT_MAX bytes goes in whole, so two
         * writers' bytes never mix within it */
        size_t piece = MIN(len, (size_t)CONSOLE_INPUT_MAX);
        if (CONSOLE_INPUT_MAX - h->input_len < piece) {
            if (pthread_cond_clockwait(&hs->room, &hs->lock, CLOCK_MONOTONIC, &until) ==
                ETIMEDOUT) {
                r = -ETIMEDOUT;
                break;
            }
            continue;
        }
        memcpy(h->input + h->input_len, p, piece);
        h->input_len += piece;
        p += piece;
        len -= piece;
        signal_fd(hs->wake_fd);
    }
    pthread_mutex_unlock(&hs->lock);
    return r;
}

void engine_console_detach(struct engine_console *c)
{
    struct console_hubs *hs;

    if (!c)
        return;
    hs = c->hubs;
    pthread_mutex_lock(&hs->lock);
    if (c->hub) {
        struct console_hub *h = c->hub;
        for (struct engine_console **pp = &h->readers; *pp; pp = &(*pp)->next)
            if (*pp == c) {
                *pp = c->next;
                break;
            }
        if (!h->readers) {
            h->drain_until_ms = time_mono_ms() + CONSOLE_DRAIN_MS;
            h->linger_until_ms = time_mono_ms() + CONSOLE_LINGER_MS;
            signal_fd(hs->wake_fd);
        }
    }
    pthread_mutex_unlock(&hs->lock);
    close(c->efd);
    free(c->out.data);
    free(c);
}
