/* console_file.c — vm/console: a live stream of the VM's serial console.
 *
 * Opening attaches (output from that moment on); reads block until output
 * arrives and return EOF once the attachment ends (the VM died, was
 * destroyed or restored); writes are typed into the console.  Every handle
 * has an eventfd besides the attachment's fd so an interrupt (Ctrl-C) or
 * the unmount wakes a blocked read at once.
 *
 * poll(2): FUSE asks once and expects a notification later.  One watcher
 * thread per mount holds the pending poll handles in an epoll set (one
 * shot per request) and sends fuse_lowlevel_notify_poll when the
 * attachment's fd becomes readable.  watch.lock guards the registrations;
 * an event is acted on only for a handle still registered, so one
 * released meanwhile is never touched. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "fs-internal.h"
#include "log.h"
#include "macro.h"
#include "unixsock.h"

/* The bound of one console_write (the engine's CONSOLE_INPUT_MAX). */
#define CONSOLE_WRITE_CHUNK (64u * 1024)

struct console_handle {
    struct noidfs_console *c;
    int wake_fd;
    bool interrupted;                /* set by the interrupt callback */
    struct fuse_pollhandle *ph;      /* (watch.lock) pending poll, or NULL */
    bool in_epoll;                   /* (watch.lock) */
    struct console_handle *reg_next; /* (watch.lock) registered handles */
};

struct console_watch {
    pthread_mutex_t lock;
    int epoll_fd;
    int stop_fd;
    pthread_t thread;
    struct console_handle *registered; /* (lock) handles in the epoll set */
};

static bool is_registered(struct console_watch *w, struct console_handle *ch)
{
    for (struct console_handle *c = w->registered; c; c = c->reg_next)
        if (c == ch)
            return true;
    return false;
}

int console_file_open(struct handle *h, struct nerr *e)
{
    struct console_handle *ch = calloc(1, sizeof(*ch));
    int r;

    if (!ch)
        return -ENOMEM;
    ch->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ch->wake_fd < 0) {
        r = -errno;
        free(ch);
        return r;
    }
    r = h->fs->ops->console_attach(h->fs->b, h->node->user, h->node->vm, &ch->c, e);
    if (r == -ESRCH) {
        /* the VM does not run: a console that has ended (reads give EOF) */
        ch->c = NULL;
        r = 0;
    }
    if (r < 0) {
        close(ch->wake_fd);
        free(ch);
        return r;
    }
    h->con = ch;
    return 0;
}

static void wake(struct console_handle *ch)
{
    uint64_t one = 1;

    if (write(ch->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        log_warn("noidfs: console wake: %s", strerror(errno));
}

static void on_interrupt(fuse_req_t req, void *data)
{
    struct console_handle *ch = data;

    __atomic_store_n(&ch->interrupted, true, __ATOMIC_SEQ_CST);
    wake(ch);
}

ssize_t console_file_read(struct handle *h, fuse_req_t req, char *buf, size_t size, bool nonblock)
{
    struct console_handle *ch = h->con;
    const struct noidfs_ops *ops = h->fs->ops;
    ssize_t r;

    if (!ch->c)
        return 0;
    fuse_req_interrupt_func(req, on_interrupt, ch);
    for (;;) {
        r = ops->console_read(ch->c, buf, size);
        if (r > 0)
            break;
        if (r == -EPIPE) {
            r = 0; /* the VM went away: end of the stream */
            break;
        }
        if (r < 0) {
            r = -errmap_log("console read", h->node->vm, (int)r, NULL);
            break;
        }
        if (nonblock) {
            r = -EAGAIN;
            break;
        }
        if (__atomic_load_n(&ch->interrupted, __ATOMIC_SEQ_CST)) {
            r = -EINTR;
            break;
        }
        if (h->fs->exiting) {
            r = 0;
            break;
        }
        struct pollfd p[3] = {{.fd = ops->console_fd(ch->c), .events = POLLIN},
                              {.fd = ch->wake_fd, .events = POLLIN},
                              {.fd = h->fs->exit_fd, .events = POLLIN}};
        if (poll(p, 3, -1) < 0 && errno != EINTR) {
            r = -errno;
            break;
        }
        if (p[1].revents & POLLIN) {
            uint64_t v;
            if (read(ch->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                log_warn("noidfs: console wake: %s", strerror(errno));
        }
    }
    fuse_req_interrupt_func(req, NULL, NULL);
    /* an interrupt that came after the data was taken must not stick */
    __atomic_store_n(&ch->interrupted, false, __ATOMIC_SEQ_CST);
    return r;
}

ssize_t console_file_write(struct handle *h, const char *buf, size_t size)
{
    struct console_handle *ch = h->con;
    size_t done = 0;

    if (!ch->c)
        return -errmap_log("console write", h->node->vm, -ESRCH,
                           &(struct nerr){-ESRCH, "the VM does not run"});
    while (done < size) {
        size_t n = size - done < CONSOLE_WRITE_CHUNK ? size - done : CONSOLE_WRITE_CHUNK;
        int r = h->fs->ops->console_write(ch->c, buf + done, n, CONSOLE_WRITE_TIMEOUT_MS);
        if (r < 0) {
            struct nerr e = {0};
            nerr_set(&e, r,
                     r == -EPIPE ? "the console ended (the VM is gone)"
                                 : "the console did not take the input in time");
            r = -errmap_log("console write", h->node->vm, r == -EPIPE ? -EIO : r, &e);
            /* what went in is typed: say so, or a retry types it twice */
            return done > 0 ? (ssize_t)done : r;
        }
        done += n;
    }
    return (ssize_t)done;
}

unsigned console_file_poll(struct handle *h, struct fuse_pollhandle *ph)
{
    struct console_watch *w = h->fs->watch;
    struct console_handle *ch = h->con;
    unsigned revents = POLLOUT;
    int fd;

    if (!ch->c) { /* ended: EOF is there to read */
        fuse_pollhandle_destroy(ph);
        return revents | POLLIN;
    }
    fd = h->fs->ops->console_fd(ch->c);
    if (fd_wait_readable(fd, 0) > 0) {
        fuse_pollhandle_destroy(ph);
        return revents | POLLIN;
    }
    if (!ph)
        return revents;
    pthread_mutex_lock(&w->lock);
    if (ch->ph)
        fuse_pollhandle_destroy(ch->ph);
    ch->ph = ph;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = ch};
    if (epoll_ctl(w->epoll_fd, ch->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) == 0) {
        if (!ch->in_epoll) {
            ch->reg_next = w->registered;
            w->registered = ch;
        }
        ch->in_epoll = true;
    } else
        log_warn("noidfs: console poll: %s", strerror(errno));
    pthread_mutex_unlock(&w->lock);
    /* it may have become readable before the registration */
    if (fd_wait_readable(fd, 0) > 0)
        revents |= POLLIN;
    return revents;
}

void console_file_wake(struct handle *h)
{
    if (h->con)
        wake(h->con);
}

void console_file_release(struct handle *h)
{
    struct console_watch *w = h->fs->watch;
    struct console_handle *ch = h->con;

    if (!ch)
        return;
    pthread_mutex_lock(&w->lock);
    if (ch->in_epoll) {
        epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, h->fs->ops->console_fd(ch->c), NULL);
        for (struct console_handle **pp = &w->registered; *pp; pp = &(*pp)->reg_next)
            if (*pp == ch) {
                *pp = ch->reg_next;
                break;
            }
    }
    if (ch->ph)
        fuse_pollhandle_destroy(ch->ph);
    ch->ph = NULL;
    pthread_mutex_unlock(&w->lock);
    if (ch->c)
        h->fs->ops->console_detach(ch->c);
    close(ch->wake_fd);
    free(ch);
    h->con = NULL;
}

static void *watch_main(void *arg)
{
    struct noidfs *fs = arg;
    struct console_watch *w = fs->watch;
    struct epoll_event evs[32];

    for (;;) {
        int n = epoll_wait(w->epoll_fd, evs, 32, -1);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL)
                return NULL; /* the stop eventfd */
            pthread_mutex_lock(&w->lock);
            struct console_handle *ch = evs[i].data.ptr;
            /* the event may be for a handle released since epoll_wait
             * returned: only a registered one is still alive */
            if (is_registered(w, ch) && ch->ph) {
                fuse_lowlevel_notify_poll(ch->ph);
                fuse_pollhandle_destroy(ch->ph);
                ch->ph = NULL;
            }
            pthread_mutex_unlock(&w->lock);
        }
    }
    return NULL;
}

int console_watch_start(struct noidfs *fs)
{
    struct console_watch *w = calloc(1, sizeof(*w));
    sigset_t all, old;
    int r;

    if (!w)
        return -ENOMEM;
    pthread_mutex_init(&w->lock, NULL);
    w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    w->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (w->epoll_fd < 0 || w->stop_fd < 0) {
        r = -errno;
        goto fail;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->stop_fd, &ev) < 0) {
        r = -errno;
        goto fail;
    }
    fs->watch = w;
    /* signals are for the threads that serve requests, not this one */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    r = -pthread_create(&w->thread, NULL, watch_main, fs);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r < 0) {
        fs->watch = NULL;
        goto fail;
    }
    return 0;
fail:
    if (w->epoll_fd >= 0)
        close(w->epoll_fd);
    if (w->stop_fd >= 0)
        close(w->stop_fd);
    pthread_mutex_destroy(&w->lock);
    free(w);
    return r;
}

void console_watch_stop(struct noidfs *fs)
{
    struct console_watch *w = fs->watch;
    uint64_t one = 1;

    if (!w)
        return;
    if (write(w->stop_fd, &one, sizeof(one)) < 0)
        log_warn("noidfs: console watch stop: %s", strerror(errno));
    pthread_join(w->thread, NULL);
    close(w->epoll_fd);
    close(w->stop_fd);
    pthread_mutex_destroy(&w->lock);
    free(w);
    fs->watch = NULL;
}
