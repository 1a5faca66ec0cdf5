/* hostile_agent.c — a guest agent that attacks the host (test_hostile_guest.sh).
 *
 * It takes the agent's virtio-serial port (org.noid.agent) inside a real
 * guest and speaks the protocol of lib/agent_proto.h well enough to be
 * believed: it answers HELLO, PING and the control requests.  What an EXEC
 * does is chosen by the command's first word:
 *
 *   hostile-ping        prints "hostile-agent" and exits 0 (takeover check)
 *   flood [SECS]        STARTED, then for SECS seconds (default 20): huge
 *                       WINDOW grants, STDOUT/STDERR at full speed with
 *                       log-forging text, bursts of tiny frames, output,
 *                       EXIT and ERROR frames for streams that do not
 *                       exist; reads its channel slowly; never EXIT
 *   slow [SECS]         grants 4 GiB windows again and again but reads its
 *                       channel at a trickle (SLOW_RATE); never EXIT
 *   stall [SECS]        grants huge windows, then does not read its channel
 *                       at all for SECS seconds; never EXIT
 *   count-stdin         grants a 4 GiB window once, at the start, reads at
 *                       full speed and never grants more; once stdin has
 *                       been quiet for COUNT_QUIET_MS (or ended), prints
 *                       "stdin bytes: N" and exits 0: N shows whether the
 *                       host let one grant exceed AP_STDIN_WINDOW
 *   error               ERROR with log-forging text on the exec's stream
 *   session-error       ERROR with log-forging text on stream 0
 *
 * KILL is ignored.  The modes stop by themselves after SECS, or at the
 * next HELLO (a new session, as for the real agent), so that a test machine
 * is not flooded for ever.  Every 5 s it logs how much it has read (stderr,
 * or --log FILE).  libc only (built static like noid-agent); one thread,
 * one poll loop, non-blocking port. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent_proto.h"

#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define PORTS_DIR "/sys/class/virtio-ports"
#define FORGED    "\n2026-01-01T00:00:00.000Z error: FORGED by a hostile guest\n"
#define MAX_MODES 16
#define IN_MAX    (AP_HEADER_LEN + AP_MAX_PAYLOAD + 64 * 1024)
/* output waiting for the channel; a flood only adds while below FLOOD_LOW */
#define OUT_MAX        (8u * 1024 * 1024)
#define FLOOD_LOW      (256u * 1024)
#define TICK_MS        20
#define COUNT_QUIET_MS 2000
/* "flood": bytes read per round */
#define FLOOD_READ 512
/* "slow": bytes read per second.  Enough that a host blocked in a send
 * sees progress every few seconds (a per-call send timeout never fires),
 * little enough that one feeding this reader at its pace needs minutes for
 * the 10 MiB of the test, beyond the MiB buffered on the way (socket,
 * QEMU, the guest's virtqueue). */
#define SLOW_RATE (20 * 1024)

enum mode { M_NONE, M_FLOOD, M_SLOW, M_STALL, M_COUNT };

struct behaviour {
    enum mode mode;
    uint32_t stream;
    uint64_t until_ms;
    uint64_t count, last_rx_ms; /* M_COUNT: stdin bytes, when the last came */
};

static int port_fd = -1;
static uint8_t *in;
static size_t in_len;
static uint8_t *out;
static size_t out_len;
static struct behaviour modes[MAX_MODES];
static uint32_t next_pid = 4242;
static uint64_t bytes_read, rounds;
static uint64_t slow_since, slow_read;

static void say(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void push(uint8_t type, uint32_t stream, const void *payload, size_t len)
{
    if (out_len + AP_HEADER_LEN + len > OUT_MAX)
        return; /* the host is not reading; neither do we care */
    ap_header_encode(out + out_len, type, stream, (uint32_t)len);
    if (len)
        memcpy(out + out_len + AP_HEADER_LEN, payload, len);
    out_len += AP_HEADER_LEN + len;
}

static void push_u32(uint8_t type, uint32_t stream, uint32_t v)
{
    uint8_t b[4];

    ap_u32_encode(v, b);
    push(type, stream, b, sizeof(b));
}

static void push_text(uint8_t type, uint32_t stream, const char *s)
{
    push(type, stream, s, strlen(s));
}

/* Find /dev/vportNpM named org.noid.agent and open it; -errno if it is not
 * there or still held by the real agent (virtio ports open only once). */
static int open_port(void)
{
    DIR *d = opendir(PORTS_DIR);
    struct dirent *de;
    char path[512], name[64], dev[300];
    int fd = -ENOENT;

    if (!d)
        return -errno;
    while ((de = readdir(d))) {
        int nfd;
        ssize_t n;
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), PORTS_DIR "/%s/name", de->d_name);
        nfd = open(path, O_RDONLY);
        if (nfd < 0)
            continue;
        n = read(nfd, name, sizeof(name) - 1);
        close(nfd);
        if (n <= 0)
            continue;
        name[n] = 0;
        name[strcspn(name, "\n")] = 0;
        if (strcmp(name, AP_SERIAL_PORT_NAME) != 0)
            continue;
        snprintf(dev, sizeof(dev), "/dev/%s", de->d_name);
        fd = open(dev, O_RDWR | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0)
            fd = -errno;
        break;
    }
    closedir(d);
    return fd;
}

static struct behaviour *add_mode(enum mode m, uint32_t stream, uint64_t secs)
{
    for (int i = 0; i < MAX_MODES; i++)
        if (modes[i].mode == M_NONE) {
            modes[i] =
                (struct behaviour){.mode = m, .stream = stream, .until_ms = now_ms() + secs * 1000};
            return &modes[i];
        }
    return NULL;
}

static bool mode_active(enum mode m)
{
    for (int i = 0; i < MAX_MODES; i++)
        if (modes[i].mode == m)
            return true;
    return false;
}

static void on_exec(uint32_t stream, const struct ap_exec_req *r)
{
    const char *what = r->argv[0];
    uint64_t secs = r->argc > 1 ? strtoull(r->argv[1], NULL, 10) : 20;

    say("EXEC %s on stream %u", what, stream);
    if (strcmp(what, "error") == 0) {
        push_text(AP_ERROR, stream, "cannot run it" FORGED "\x1b[31mred\x1b[0m");
        return;
    }
    if (strcmp(what, "session-error") == 0) {
        push_text(AP_ERROR, 0, "session broken" FORGED);
        return;
    }
    push_u32(AP_STARTED, stream, next_pid++);
    if (strcmp(what, "hostile-ping") == 0) {
        struct ap_exit x = {0};
        uint8_t b[AP_EXIT_LEN];
        push_text(AP_STDOUT, stream, "hostile-agent\n");
        ap_exit_encode(&x, b);
        push(AP_EXIT, stream, b, sizeof(b));
    } else if (strcmp(what, "flood") == 0) {
        add_mode(M_FLOOD, stream, secs);
    } else if (strcmp(what, "slow") == 0) {
        add_mode(M_SLOW, stream, secs);
    } else if (strcmp(what, "count-stdin") == 0) {
        push_u32(AP_WINDOW, stream, UINT32_MAX);
        struct behaviour *b = add_mode(M_COUNT, stream, secs);
        if (b)
            b->last_rx_ms = now_ms();
    } else if (strcmp(what, "stall") == 0) {
        for (int i = 0; i < 64; i++)
            push_u32(AP_WINDOW, stream, UINT32_MAX);
        add_mode(M_STALL, stream, secs);
    } else {
        push_text(AP_ERROR, stream, "hostile agent: unknown mode");
    }
}

static void on_frame(const struct ap_frame *f)
{
    struct ap_hello h;
    struct ap_exec_req r;

    switch (f->type) {
    case AP_HELLO:
        if (ap_hello_decode(f->payload, f->len, &h) == 0) {
            uint8_t b[AP_HELLO_MAX];
            h.version = AP_VERSION;
            snprintf(h.agent_version, sizeof(h.agent_version), "hostile\n2026-01-01 FORGED");
            push(AP_HELLO_ACK, 0, b, ap_hello_encode(&h, true, b));
            memset(modes, 0, sizeof(modes));
            say("HELLO answered; a new session");
        }
        break;
    case AP_EXEC:
        if (ap_exec_req_decode(f->payload, f->len, &r) == 0) {
            on_exec(f->stream, &r);
            ap_exec_req_free(&r);
        }
        break;
    case AP_SET_TIME:
    case AP_ADD_ENTROPY:
        push(AP_OK, f->stream, NULL, 0);
        break;
    case AP_PING:
        push(AP_PONG, f->stream, NULL, 0);
        break;
    case AP_STDIN:
        for (int i = 0; i < MAX_MODES; i++)
            if (modes[i].mode == M_COUNT && modes[i].stream == f->stream) {
                modes[i].count += f->len;
                modes[i].last_rx_ms = now_ms();
                if (f->len == 0)
                    modes[i].last_rx_ms = 0; /* EOF: report now */
            }
        break; /* the bytes are thrown away */
    default:
        break; /* KILL, RESIZE and OUT_ACK ignored: output windows too */
    }
}

/* Take every whole frame from in[], resynchronising after garbage (a host
 * that reconnected leaves half frames behind). */
static void parse_input(void)
{
    size_t off = 0;

    while (off < in_len) {
        struct ap_frame f;
        int used = ap_frame_parse(in + off, in_len - off, &f);
        if (used == 0)
            break;
        if (used < 0) {
            size_t skip = ap_resync(in + off, in_len - off);
            off += skip ? skip : 1;
            continue;
        }
        on_frame(&f);
        off += (size_t)used;
    }
    memmove(in, in + off, in_len - off);
    in_len -= off;
}

/* One round of a flood on stream s. */
static void flood(uint32_t s)
{
    static uint8_t chunk[AP_DATA_CHUNK];
    static bool ready;
    uint32_t ghost = s ^ 0x5a5a5a5a;
    struct ap_exit x = {.code = 0};
    uint8_t b[AP_EXIT_LEN];

    if (!ready) {
        size_t fl = strlen(FORGED);
        for (size_t i = 0; i < sizeof(chunk); i++)
            chunk[i] = (uint8_t)FORGED[i % fl];
        ready = true;
    }
    push_u32(AP_WINDOW, s, UINT32_MAX);
    push(AP_STDOUT, s, chunk, sizeof(chunk));
    push(AP_STDERR, s, chunk, sizeof(chunk));
    /* frames for a stream that does not exist */
    push(AP_STDOUT, ghost, chunk, sizeof(chunk));
    push_u32(AP_WINDOW, ghost, UINT32_MAX);
    push_text(AP_ERROR, ghost, "ghost" FORGED);
    ap_exit_encode(&x, b);
    push(AP_EXIT, ghost, b, sizeof(b));
    /* many tiny frames: the host must not spend quadratic time on them */
    for (int i = 0; i < 2000; i++)
        push(AP_STDOUT, s, "x", 1);
}

static void flush_output(void)
{
    while (out_len > 0) {
        ssize_t n = write(port_fd, out, out_len);
        if (n <= 0)
            return; /* EAGAIN, or the host is not connected: later */
        memmove(out, out + n, out_len - (size_t)n);
        out_len -= (size_t)n;
    }
}

/* Read at most max bytes (0: as much as fits).  Returns false when the
 * host is not connected (read 0 on a virtio port). */
static bool read_input(size_t max)
{
    size_t room = IN_MAX - in_len;
    ssize_t n;

    if (max && max < room)
        room = max;
    if (room == 0) {
        in_len = 0; /* garbage that never became a frame */
        return true;
    }
    n = read(port_fd, in + in_len, room);
    if (n > 0) {
        in_len += (size_t)n;
        bytes_read += (uint64_t)n;
    }
    return n != 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--log") == 0) {
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0)
            dup2(fd, STDERR_FILENO);
    }
    in = malloc(IN_MAX);
    out = malloc(OUT_MAX);
    if (!in || !out)
        return 1;
    for (;;) {
        port_fd = open_port();
        if (port_fd >= 0)
            break;
        usleep(50 * 1000); /* the real agent still holds it */
    }
    say("hostile agent on the port");
    uint64_t next_stats = now_ms() + 5000;
    for (;;) {
        struct pollfd p = {.fd = port_fd, .events = POLLIN | (out_len ? POLLOUT : 0)};
        uint64_t now = now_ms();
        bool stalled = false, slow = false, connected = true;

        rounds++;
        if (now >= next_stats) {
            say("hostile agent: %llu bytes read in %llu rounds", (unsigned long long)bytes_read,
                (unsigned long long)rounds);
            next_stats = now + 5000;
        }

        for (int i = 0; i < MAX_MODES; i++) {
            struct behaviour *b = &modes[i];
            if (b->mode == M_NONE)
                continue;
            if (now >= b->until_ms) {
                say("mode %d on stream %u over", b->mode, b->stream);
                b->mode = M_NONE;
                continue;
            }
            if (b->mode == M_FLOOD && out_len < FLOOD_LOW)
                flood(b->stream);
            if (b->mode == M_SLOW)
                push_u32(AP_WINDOW, b->stream, UINT32_MAX);
            if (b->mode == M_COUNT && now >= b->last_rx_ms + COUNT_QUIET_MS) {
                char line[64];
                struct ap_exit x = {0};
                uint8_t e[AP_EXIT_LEN];
                snprintf(line, sizeof(line), "stdin bytes: %llu\n", (unsigned long long)b->count);
                push_text(AP_STDOUT, b->stream, line);
                ap_exit_encode(&x, e);
                push(AP_EXIT, b->stream, e, sizeof(e));
                say("count-stdin on stream %u: %s", b->stream, line);
                b->mode = M_NONE;
            }
        }
        stalled = mode_active(M_STALL);
        slow = mode_active(M_SLOW);
        if (!slow)
            slow_since = now, slow_read = 0;
        if (stalled)
            p.events &= (short)~POLLIN;
        poll(&p, 1, TICK_MS);
        if (slow) {
            /* read only what SLOW_RATE allows since the mode began */
            uint64_t allowed = (now_ms() - slow_since) * SLOW_RATE / 1000;
            if (allowed > slow_read) {
                uint64_t before = bytes_read;
                connected = read_input((size_t)MIN(allowed - slow_read, 4096));
                slow_read += bytes_read - before;
                parse_input();
            }
        } else if (!stalled) {
            connected = read_input(mode_active(M_FLOOD) ? FLOOD_READ : 0);
            parse_input();
        }
        flush_output();
        /* no host (do not spin), or pacing the trickle */
        if (!connected || (p.revents & POLLHUP) || slow)
            usleep(TICK_MS * 1000);
    }
}
