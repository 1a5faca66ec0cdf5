/* agent_files_peer.c — the server's side of the agent's file operations
 * (server/engine/agent_files.c) against the real noid-agent, run on the
 * host by test_agent.sh (--unix-listen), where the agent's paths are the
 * host's, and against the agent of a real VM by test_agent_vm.sh, where
 * they are the guest's.  Everything goes through the protocol: DIR
 * (argv[2]) is made with MKDIR -p and checked with STAT, never looked at
 * on the host.
 *
 * Usage: agent-files-peer SOCKET DIR.  Prints one line per check; exits 1
 * on the first failure. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent_files.h"
#include "timeutil.h"

#define BIG_LEN   (8u * 1024 * 1024 + 12345) /* not a multiple of any chunk */
#define DIR_FILES 3000
#define THREADS   8
#define CALLS     200

static struct agent_conn *conn;
static const char *dir;

static void die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static int64_t deadline(void)
{
    return time_mono_ms() + 20000;
}

static void set_path(struct ap_fs_req *r, const char *name)
{
    snprintf(r->path, sizeof(r->path), "%s/%s", dir, name);
    r->present |= 1u << APF_PATH;
}

static int call(uint8_t op, const char *name, struct agent_fs_reply *rep, struct nerr *e)
{
    struct ap_fs_req r = {.op = op};

    set_path(&r, name);
    return agent_fs_call(conn, &r, deadline(), rep, e);
}

static uint8_t pattern(uint64_t i)
{
    return (uint8_t)(i * 2654435761u >> 13);
}

static void check_errno(void)
{
    struct agent_fs_reply rep;
    struct nerr e = {0};
    int r;

    struct ap_fs_req m = {
        .op = APO_MKDIR, .flags = AP_MKDIR_PARENTS, .present = 1u << APF_PATH | 1u << APF_FLAGS};

    /* DIR may be a guest path: made through the protocol, like everything */
    snprintf(m.path, sizeof(m.path), "%s", dir);
    if (agent_fs_call(conn, &m, deadline(), &rep, &e) < 0)
        die("MKDIR -p %s: %s", dir, e.msg);
    if (call(APO_STAT, "", &rep, &e) < 0 || !S_ISDIR(rep.attr.mode))
        die("STAT of the scratch directory: %s", e.msg);
    r = call(APO_STAT, "missing", &rep, &e);
    if (r != -ENOENT || !strstr(e.msg, "/missing"))
        die("STAT of a missing file gave %d (%s), not -ENOENT naming the path", r, e.msg);
    printf("ok: STAT answers attributes, a missing path is -ENOENT with its name\n");
}

static void check_upload_download(void)
{
    struct ap_fs_req w = {
        .op = APO_WRITE_FILE, .flags = AP_WRITE_ATOMIC, .present = 1u << APF_FLAGS};
    struct ap_fs_req rd = {.op = APO_READ_FILE};
    struct agent_fs_stream *s;
    struct nerr e = {0};
    uint8_t *chunk = malloc(100000);
    uint64_t count = 0, got = 0;
    ssize_t n;

    set_path(&w, "big");
    if (agent_fs_stream_open(conn, &w, deadline(), &s, &e) < 0)
        die("WRITE_FILE open: %s", e.msg);
    for (uint64_t off = 0; off < BIG_LEN;) {
        size_t len = off + 100000 > BIG_LEN ? BIG_LEN - off : 100000;
        for (size_t i = 0; i < len; i++)
            chunk[i] = pattern(off + i);
        if (agent_fs_stream_write(s, chunk, len, deadline(), &e) < 0)
            die("WRITE_FILE write at %llu: %s", (unsigned long long)off, e.msg);
        off += len;
    }
    if (agent_fs_stream_finish(s, deadline(), &count, &e) < 0 || count != BIG_LEN)
        die("WRITE_FILE finish: %s (count %llu)", e.msg, (unsigned long long)count);
    agent_fs_stream_free(s);

    set_path(&rd, "big");
    if (agent_fs_stream_open(conn, &rd, deadline(), &s, &e) < 0)
        die("READ_FILE open: %s", e.msg);
    /* small reads: many OUT_ACKs; a wrong count of credit would stall or overrun */
    while ((n = agent_fs_stream_read(s, chunk, 7777, deadline(), &e)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            if (chunk[i] != pattern(got + (uint64_t)i))
                die("READ_FILE byte %llu differs", (unsigned long long)(got + (uint64_t)i));
        got += (uint64_t)n;
    }
    if (n < 0 || got != BIG_LEN)
        die("READ_FILE ended with %zd after %llu bytes: %s", n, (unsigned long long)got, e.msg);
    agent_fs_stream_free(s);
    free(chunk);
    printf("ok: %u bytes up (atomic) and down under flow control, byte for byte\n", BIG_LEN);
}

static void check_pread_handles(void)
{
    struct ap_fs_req o = {.op = APO_OPEN, .flags = AP_OPEN_RDWR, .present = 1u << APF_FLAGS};
    struct ap_fs_req p = {.op = APO_PREAD,
                          .offset = BIG_LEN - 1000,
                          .length = 4096,
                          .present = 1u << APF_HANDLE | 1u << APF_OFFSET | 1u << APF_LENGTH};
    struct ap_fs_req c = {.op = APO_CLOSE, .present = 1u << APF_HANDLE};
    struct agent_fs_reply rep = {0};
    uint8_t buf[4096];
    struct nerr e = {0};

    set_path(&o, "big");
    if (agent_fs_call(conn, &o, deadline(), &rep, &e) < 0 || rep.attr.size != BIG_LEN)
        die("OPEN: %s", e.msg);
    p.handle = c.handle = rep.handle;
    rep.read_buf = buf;
    if (agent_fs_call(conn, &p, deadline(), &rep, &e) < 0 || rep.count != 1000)
        die("PREAD at the end: %s (count %llu)", e.msg, (unsigned long long)rep.count);
    for (size_t i = 0; i < 1000; i++)
        if (buf[i] != pattern(BIG_LEN - 1000 + i))
            die("PREAD byte %zu differs", i);
    rep.read_buf = NULL;
    if (agent_fs_call(conn, &c, deadline(), &rep, &e) < 0)
        die("CLOSE: %s", e.msg);
    if (agent_fs_call(conn, &c, deadline(), &rep, &e) != -EBADF)
        die("CLOSE of a closed handle is not -EBADF: %s", e.msg);
    printf("ok: OPEN, PREAD past the end gives the short tail, CLOSE twice is -EBADF\n");
}

static void check_failed_upload(void)
{
    struct ap_fs_req w = {
        .op = APO_WRITE_FILE, .flags = AP_WRITE_ATOMIC, .present = 1u << APF_FLAGS};
    struct agent_fs_stream *s;
    struct agent_fs_reply rep;
    struct nerr e = {0};
    uint8_t data[4096] = {0};
    uint64_t count;
    int r = 0;

    set_path(&w, "no/such/dir/file");
    if (agent_fs_stream_open(conn, &w, deadline(), &s, &e) < 0)
        die("WRITE_FILE open: %s", e.msg);
    /* the agent answers FS_ERRNO at once; writes stop on it, or finish reports it */
    for (int i = 0; i < 1000 && r == 0; i++)
        r = agent_fs_stream_write(s, data, sizeof(data), deadline(), &e);
    if (r == 0)
        r = agent_fs_stream_finish(s, deadline(), &count, &e);
    if (r != -ENOENT)
        die("an upload into a missing directory gave %d (%s), not -ENOENT", r, e.msg);
    agent_fs_stream_free(s);

    /* cancelled half way: nothing at the name */
    set_path(&w, "half");
    if (agent_fs_stream_open(conn, &w, deadline(), &s, &e) < 0 ||
        agent_fs_stream_write(s, data, sizeof(data), deadline(), &e) < 0)
        die("WRITE_FILE: %s", e.msg);
    agent_fs_stream_free(s);
    r = call(APO_STAT, "half", &rep, &e);
    if (r != -ENOENT)
        die("a cancelled atomic upload left something at its name (%d)", r);
    printf("ok: a failed upload reports the guest's errno; a cancelled one leaves nothing\n");
}

static void check_readdir(void)
{
    struct ap_fs_req m = {.op = APO_MKDIR, .present = 1u << APF_PATH};
    struct ap_fs_req o = {
        .op = APO_OPEN, .flags = AP_OPEN_WRONLY | AP_OPEN_CREAT, .present = 1u << APF_FLAGS};
    struct ap_fs_req c = {.op = APO_CLOSE, .present = 1u << APF_HANDLE};
    struct ap_fs_req l = {.op = APO_READDIR};
    struct agent_fs_stream *s;
    struct agent_fs_reply rep;
    struct ap_fs_attr a;
    char name[AP_FS_NAME_MAX + 1], want[64];
    static bool seen[DIR_FILES];
    struct nerr e = {0};
    int n = 0, r;

    snprintf(m.path, sizeof(m.path), "%s/many", dir);
    if (agent_fs_call(conn, &m, deadline(), &rep, &e) < 0)
        die("MKDIR: %s", e.msg);
    for (int i = 0; i < DIR_FILES; i++) {
        snprintf(want, sizeof(want), "many/entry-%04d-with-a-longer-name", i);
        set_path(&o, want);
        if (agent_fs_call(conn, &o, deadline(), &rep, &e) < 0)
            die("OPEN CREAT: %s", e.msg);
        c.handle = rep.handle;
        if (agent_fs_call(conn, &c, deadline(), &rep, &e) < 0)
            die("CLOSE: %s", e.msg);
    }
    set_path(&l, "many");
    if (agent_fs_stream_open(conn, &l, deadline(), &s, &e) < 0)
        die("READDIR: %s", e.msg);
    while ((r = agent_fs_stream_next_dirent(s, name, &a, deadline(), &e)) == 1) {
        int i;
        if (sscanf(name, "entry-%d-", &i) != 1 || i < 0 || i >= DIR_FILES || seen[i] ||
            !S_ISREG(a.mode))
            die("READDIR gave an unexpected entry '%s'", name);
        seen[i] = true;
        n++;
    }
    if (r < 0 || n != DIR_FILES)
        die("READDIR ended with %d after %d entries: %s", r, n, e.msg);
    agent_fs_stream_free(s);
    printf("ok: READDIR streams %d entries, each once, with attributes\n", n);
}

static atomic_int calls_failed;

static void *stat_loop(void *arg)
{
    (void)arg;
    for (int i = 0; i < CALLS; i++) {
        struct agent_fs_reply rep;
        struct nerr e = {0};
        if (call(APO_STAT, "big", &rep, &e) < 0 || rep.attr.size != BIG_LEN)
            atomic_fetch_add(&calls_failed, 1);
    }
    return NULL;
}

static void check_concurrency_and_cancel(void)
{
    struct ap_fs_req rd = {.op = APO_READ_FILE};
    struct agent_fs_stream *s;
    pthread_t th[THREADS];
    uint8_t buf[1000];
    struct nerr e = {0};

    /* a download left unread holds its window in the guest, not the channel */
    set_path(&rd, "big");
    if (agent_fs_stream_open(conn, &rd, deadline(), &s, &e) < 0 ||
        agent_fs_stream_read(s, buf, sizeof(buf), deadline(), &e) <= 0)
        die("READ_FILE: %s", e.msg);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, stat_loop, NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    if (calls_failed)
        die("%d of %d concurrent STATs failed", (int)calls_failed, THREADS * CALLS);
    agent_fs_stream_free(s); /* FS_CANCEL */
    stat_loop(NULL);
    if (calls_failed || agent_conn_is_broken(conn))
        die("the channel is not usable after a cancel");
    printf("ok: %d STATs from %d threads next to a stalled download; cancel keeps the channel\n",
           THREADS * CALLS, THREADS);
}

static void notified(void *user)
{
    atomic_fetch_add((atomic_int *)user, 1);
}

static void check_polling(void)
{
    struct ap_fs_req rd = {.op = APO_READ_FILE};
    struct agent_fs_stream *s;
    atomic_int notes = 0;
    uint8_t buf[65536];
    uint64_t got = 0;
    struct nerr e = {0};
    ssize_t n;

    set_path(&rd, "big");
    if (agent_fs_stream_open(conn, &rd, deadline(), &s, &e) < 0)
        die("READ_FILE: %s", e.msg);
    agent_fs_stream_set_notify(s, notified, &notes);
    /* never waits: -EAGAIN until the notify says something came */
    for (;;) {
        int before = atomic_load(&notes);
        n = agent_fs_stream_read(s, buf, sizeof(buf), 0, &e);
        if (n == -EAGAIN) {
            for (int i = 0; i < 20000 && atomic_load(&notes) == before; i++)
                usleep(100);
            if (atomic_load(&notes) == before)
                die("-EAGAIN and no notification for 2 s");
            continue;
        }
        if (n <= 0)
            break;
        got += (uint64_t)n;
    }
    if (n < 0 || got != BIG_LEN)
        die("polled READ_FILE ended with %zd after %llu bytes: %s", n, (unsigned long long)got,
            e.msg);
    agent_fs_stream_free(s);
    printf("ok: a polled download (no waiting, woken by notify: %d notifications) is complete\n",
           (int)notes);
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct nerr e = {0};
    int fd;

    if (argc != 3)
        die("usage: agent-files-peer SOCKET DIR");
    dir = argv[2];
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("connect %s: %s", argv[1], strerror(errno));
    if (agent_conn_open(fd, 10000, &conn, &e) < 0)
        die("handshake: %s", e.msg);
    if (agent_conn_version(conn) != 3)
        die("protocol v%d, want 3", agent_conn_version(conn));
    check_errno();
    check_upload_download();
    check_pread_handles();
    check_failed_upload();
    check_readdir();
    check_concurrency_and_cancel();
    check_polling();
    agent_conn_shutdown(conn);
    agent_conn_unref(conn);
    return 0;
}
