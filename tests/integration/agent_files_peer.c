/* agent_files_peer.c — the server's side of the agent's file operations
 * (server/engine/agent_files.c) against the real noid-agent, run on the
 * host by test_agent.sh (--unix-listen), where the agent's paths are the
 * host's, and against the agent of a real VM by test_agent_vm.sh, where
 * they are the guest's.  Everything goes through the protocol: DIR
 * (argv[2]) is made with MKDIR -p and checked with STAT, never looked at
 * on the host.
 *
 * Usage: agent-files-peer [--rate BYTES | --agent-pid PID] SOCKET DIR.  Prints one line per
 * check; exits 1 on the first failure. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
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
#include "macro.h"
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

/* One call on DIR/name (none for NULL: a handle op) and DIR/name2 as
 * APF_PATH2 when given (SYMLINK: name2 is the target, as is); the result
 * must be want (0 or -errno). */
static struct agent_fs_reply expect_call(const char *what, int want, struct ap_fs_req r,
                                         const char *name, const char *name2)
{
    struct agent_fs_reply rep = {0};
    struct nerr e = {0};
    int got;

    if (name)
        set_path(&r, name);
    if (name2 && r.op == APO_SYMLINK)
        snprintf(r.path2, sizeof(r.path2), "%s", name2); /* a target, stored as given */
    else if (name2)
        snprintf(r.path2, sizeof(r.path2), "%s/%s", dir, name2);
    if (name2)
        r.present |= 1u << APF_PATH2;
    got = agent_fs_call(conn, &r, deadline(), &rep, &e);
    if (got != want)
        die("%s: got %d (%s), want %d", what, got, e.msg, want);
    return rep;
}

#define REQ(...) ((struct ap_fs_req){__VA_ARGS__})
#define HAS(t)   (1u << (t))

/* Every op not covered above, with its errno cases. */
static void check_every_op(void)
{
    struct agent_fs_reply rep;
    struct ap_fs_time old = {.sec = 1000000000, .nsec = 123};
    uint8_t data[5] = "hello", buf[16];

    rep = expect_call("OPEN CREAT EXCL", 0,
                      REQ(.op = APO_OPEN, .flags = AP_OPEN_RDWR | AP_OPEN_CREAT | AP_OPEN_EXCL,
                          .mode = 0600, .present = HAS(APF_FLAGS) | HAS(APF_MODE)),
                      "ops", NULL);
    uint32_t h = rep.handle;
    if ((rep.attr.mode & 07777) != 0600)
        die("OPEN mode %o", rep.attr.mode & 07777);
    expect_call("OPEN CREAT EXCL of an existing file", -EEXIST,
                REQ(.op = APO_OPEN, .flags = AP_OPEN_RDWR | AP_OPEN_CREAT | AP_OPEN_EXCL,
                    .present = HAS(APF_FLAGS)),
                "ops", NULL);
    rep = expect_call("PWRITE", 0,
                      REQ(.op = APO_PWRITE, .handle = h, .offset = 3, .data = data,
                          .data_len = sizeof(data),
                          .present = HAS(APF_HANDLE) | HAS(APF_OFFSET) | HAS(APF_DATA)),
                      NULL, NULL);
    if (rep.count != sizeof(data))
        die("PWRITE wrote %llu", (unsigned long long)rep.count);
    expect_call("FSYNC", 0, REQ(.op = APO_FSYNC, .handle = h, .present = HAS(APF_HANDLE)), NULL,
                NULL);
    rep = expect_call("FSTAT", 0, REQ(.op = APO_FSTAT, .handle = h, .present = HAS(APF_HANDLE)),
                      NULL, NULL);
    if (rep.attr.size != 8)
        die("FSTAT size %llu after a PWRITE at 3", (unsigned long long)rep.attr.size);
    rep = expect_call("TRUNCATE by handle", 0,
                      REQ(.op = APO_TRUNCATE, .handle = h, .length = 4,
                          .present = HAS(APF_HANDLE) | HAS(APF_LENGTH)),
                      NULL, NULL);
    rep.read_buf = buf;
    {
        struct ap_fs_req pr = {.op = APO_PREAD,
                               .handle = h,
                               .offset = 0,
                               .length = sizeof(buf),
                               .present = HAS(APF_HANDLE) | HAS(APF_OFFSET) | HAS(APF_LENGTH)};
        struct nerr e = {0};
        if (agent_fs_call(conn, &pr, deadline(), &rep, &e) < 0 || rep.count != 4 ||
            memcmp(buf, "\0\0\0h", 4) != 0)
            die("PREAD after TRUNCATE: %s (count %llu)", e.msg, (unsigned long long)rep.count);
    }
    expect_call("CLOSE", 0, REQ(.op = APO_CLOSE, .handle = h, .present = HAS(APF_HANDLE)), NULL,
                NULL);
    expect_call("FSTAT of a closed handle", -EBADF,
                REQ(.op = APO_FSTAT, .handle = h, .present = HAS(APF_HANDLE)), NULL, NULL);
    rep = expect_call("TRUNCATE by path", 0,
                      REQ(.op = APO_TRUNCATE, .length = 100, .present = HAS(APF_LENGTH)), "ops",
                      NULL);
    if (rep.attr.size != 100)
        die("TRUNCATE answered size %llu", (unsigned long long)rep.attr.size);
    expect_call("TRUNCATE of a directory", -EISDIR,
                REQ(.op = APO_TRUNCATE, .length = 0, .present = HAS(APF_LENGTH)), "many", NULL);

    rep = expect_call("CHMOD", 0, REQ(.op = APO_CHMOD, .mode = 04751, .present = HAS(APF_MODE)),
                      "ops", NULL);
    if ((rep.attr.mode & 07777) != 04751)
        die("CHMOD answered mode %o", rep.attr.mode & 07777);
    expect_call("CHMOD of a missing file", -ENOENT,
                REQ(.op = APO_CHMOD, .mode = 0644, .present = HAS(APF_MODE)), "none", NULL);
    rep = expect_call(
        "CHOWN", 0,
        REQ(.op = APO_CHOWN, .uid = 1234, .gid = 5678, .present = HAS(APF_UID) | HAS(APF_GID)),
        "ops", NULL);
    if (geteuid() == 0 && (rep.attr.uid != 1234 || rep.attr.gid != 5678))
        die("CHOWN answered %u:%u", rep.attr.uid, rep.attr.gid);
    rep = expect_call("UTIMENS", 0,
                      REQ(.op = APO_UTIMENS, .mtime = old, .atime = {.nsec = AP_TIME_OMIT},
                          .present = HAS(APF_MTIME) | HAS(APF_ATIME)),
                      "ops", NULL);
    if (rep.attr.mtime.sec != old.sec || rep.attr.mtime.nsec != old.nsec)
        die("UTIMENS answered mtime %lld.%u", (long long)rep.attr.mtime.sec, rep.attr.mtime.nsec);

    rep = expect_call("SYMLINK", 0, REQ(.op = APO_SYMLINK), "ln", "../target with space");
    if (!S_ISLNK(rep.attr.mode))
        die("SYMLINK answered mode %o", rep.attr.mode);
    rep = expect_call("READLINK", 0, REQ(.op = APO_READLINK), "ln", NULL);
    if (strcmp(rep.link, "../target with space") != 0)
        die("READLINK gave '%s'", rep.link);
    expect_call("READLINK of a file", -EINVAL, REQ(.op = APO_READLINK), "ops", NULL);
    expect_call("STAT of a dangling symlink", -ENOENT, REQ(.op = APO_STAT), "ln", NULL);
    rep = expect_call("LSTAT of it", 0, REQ(.op = APO_LSTAT), "ln", NULL);
    if (!S_ISLNK(rep.attr.mode))
        die("LSTAT of a symlink: mode %o", rep.attr.mode);
    rep = expect_call("LINK", 0, REQ(.op = APO_LINK), "ops", "hard");
    if (rep.attr.nlink != 2)
        die("LINK answered nlink %u", rep.attr.nlink);
    expect_call("LINK onto an existing name", -EEXIST, REQ(.op = APO_LINK), "ops", "hard");

    expect_call("RENAME", 0, REQ(.op = APO_RENAME), "hard", "moved");
    expect_call("RENAME NOREPLACE onto an existing name", -EEXIST,
                REQ(.op = APO_RENAME, .flags = AP_RENAME_NOREPLACE, .present = HAS(APF_FLAGS)),
                "moved", "ops");
    expect_call("RENAME of a missing file", -ENOENT, REQ(.op = APO_RENAME), "none", "x");
    expect_call("RENAME a directory into itself", -EINVAL, REQ(.op = APO_RENAME), "many",
                "many/inside");
    expect_call("UNLINK", 0, REQ(.op = APO_UNLINK), "moved", NULL);
    expect_call("UNLINK again", -ENOENT, REQ(.op = APO_UNLINK), "moved", NULL);
    expect_call("UNLINK of a directory", -EISDIR, REQ(.op = APO_UNLINK), "many", NULL);
    expect_call("RMDIR of a non-empty directory", -ENOTEMPTY, REQ(.op = APO_RMDIR), "many", NULL);
    expect_call("RMDIR of a file", -ENOTDIR, REQ(.op = APO_RMDIR), "ops", NULL);
    expect_call("MKDIR", 0, REQ(.op = APO_MKDIR, .mode = 0700, .present = HAS(APF_MODE)), "empty",
                NULL);
    expect_call("MKDIR again", -EEXIST, REQ(.op = APO_MKDIR), "empty", NULL);
    expect_call("RMDIR", 0, REQ(.op = APO_RMDIR), "empty", NULL);
    expect_call("STAT through a file", -ENOTDIR, REQ(.op = APO_STAT), "ops/x", NULL);
    rep = expect_call("STATFS", 0, REQ(.op = APO_STATFS), "", NULL);
    if (rep.statfs.bsize == 0 || rep.statfs.blocks == 0)
        die("STATFS answered bsize %u blocks %llu", rep.statfs.bsize,
            (unsigned long long)rep.statfs.blocks);
    printf("ok: OPEN/PWRITE/FSYNC/FSTAT/TRUNCATE/PREAD/CLOSE, CHMOD, CHOWN, UTIMENS, SYMLINK, "
           "READLINK, LSTAT, LINK, RENAME, UNLINK, RMDIR, MKDIR, STATFS and their errnos\n");
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

/* --agent-pid PID (the agent runs on this host): a cancel the channel was
 * too busy for goes out with a later frame.  A download holds its window
 * in the agent unread; the agent is stopped and an upload fills the
 * channel (its sender holds it, waiting for room); freeing the download
 * then cannot send FS_CANCEL within its second.  Once the agent runs
 * again, every one of its FILES_MAX_XFERS (64) transfer slots must be
 * free: a cancel left unsent would keep one for the session's life. */
#define AGENT_MAX_XFERS 64

static void *upload_4m(void *arg)
{
    struct ap_fs_req w = {
        .op = APO_WRITE_FILE, .flags = AP_WRITE_ATOMIC, .present = 1u << APF_FLAGS};
    static uint8_t chunk[1 << 20];
    struct agent_fs_stream *s;
    struct nerr e = {0};
    uint64_t count;

    (void)arg;
    set_path(&w, "busy");
    if (agent_fs_stream_open(conn, &w, deadline(), &s, &e) < 0)
        die("upload: %s", e.msg);
    for (int i = 0; i < 4; i++)
        if (agent_fs_stream_write(s, chunk, sizeof(chunk), deadline(), &e) < 0)
            die("upload: %s", e.msg);
    if (agent_fs_stream_finish(s, deadline(), &count, &e) < 0)
        die("upload finish: %s", e.msg);
    agent_fs_stream_free(s);
    return NULL;
}

static void check_deferred_cancel(pid_t agent)
{
    struct ap_fs_req rd = {.op = APO_READ_FILE};
    struct agent_fs_stream *held, *all[AGENT_MAX_XFERS];
    struct nerr e = {0};
    uint8_t b;
    pthread_t th;

    set_path(&rd, "big");
    if (agent_fs_stream_open(conn, &rd, deadline(), &held, &e) < 0 ||
        agent_fs_stream_read(held, &b, 1, deadline(), &e) != 1)
        die("READ_FILE: %s", e.msg);
    kill(agent, SIGSTOP);
    pthread_create(&th, NULL, upload_4m, NULL);
    sleep(1); /* the uploader fills the socket and waits for room, holding the channel */
    agent_fs_stream_free(held); /* FS_CANCEL cannot go out now */
    kill(agent, SIGCONT);
    pthread_join(th, NULL);
    for (int i = 0; i < AGENT_MAX_XFERS; i++)
        if (agent_fs_stream_open(conn, &rd, deadline(), &all[i], &e) < 0 ||
            agent_fs_stream_read(all[i], &b, 1, deadline(), &e) != 1)
            die("transfer %d of %d: %s (a cancel never reached the agent?)", i + 1, AGENT_MAX_XFERS,
                e.msg);
    for (int i = 0; i < AGENT_MAX_XFERS; i++)
        agent_fs_stream_free(all[i]);
    printf("ok: a cancel the busy channel held back reached the agent with a later frame\n");
}

/* --rate BYTES: the channel's bulk rate for tests/bench/files.sh, with the
 * server's own client and no HTTP or FUSE in between: WRITE_FILE (atomic)
 * of BYTES to DIR/rate, then READ_FILE of it; prints "up MB/s down MB/s". */
static void measure_rate(uint64_t bytes)
{
    struct ap_fs_req w = {
        .op = APO_WRITE_FILE, .flags = AP_WRITE_ATOMIC, .present = 1u << APF_FLAGS};
    struct ap_fs_req rd = {.op = APO_READ_FILE};
    static uint8_t chunk[1 << 20];
    struct agent_fs_stream *s;
    struct nerr e = {0};
    uint64_t count = 0, got = 0;
    int64_t t0;
    double up, down;
    ssize_t n;

    for (size_t i = 0; i < sizeof(chunk); i++)
        chunk[i] = pattern(i);
    set_path(&w, "rate");
    t0 = time_mono_ns();
    if (agent_fs_stream_open(conn, &w, deadline(), &s, &e) < 0)
        die("WRITE_FILE: %s", e.msg);
    for (uint64_t off = 0; off < bytes; off += sizeof(chunk))
        if (agent_fs_stream_write(s, chunk, MIN(sizeof(chunk), bytes - off), deadline(), &e) < 0)
            die("WRITE_FILE: %s", e.msg);
    if (agent_fs_stream_finish(s, deadline(), &count, &e) < 0 || count != bytes)
        die("WRITE_FILE finish: %s", e.msg);
    agent_fs_stream_free(s);
    up = (double)bytes / ((double)(time_mono_ns() - t0) / 1e9) / 1e6;
    set_path(&rd, "rate");
    t0 = time_mono_ns();
    if (agent_fs_stream_open(conn, &rd, deadline(), &s, &e) < 0)
        die("READ_FILE: %s", e.msg);
    while ((n = agent_fs_stream_read(s, chunk, sizeof(chunk), deadline(), &e)) > 0)
        got += (uint64_t)n;
    if (n < 0 || got != bytes)
        die("READ_FILE: %s (%llu bytes)", e.msg, (unsigned long long)got);
    agent_fs_stream_free(s);
    down = (double)bytes / ((double)(time_mono_ns() - t0) / 1e9) / 1e6;
    printf("up %.1f down %.1f\n", up, down);
}

int main(int argc, char **argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct nerr e = {0};
    uint64_t rate_bytes = 0;
    pid_t agent_pid = 0;
    int fd;

    if (argc == 5 && strcmp(argv[1], "--rate") == 0) {
        rate_bytes = strtoull(argv[2], NULL, 10);
        argv += 2;
        argc -= 2;
    }
    if (argc == 5 && strcmp(argv[1], "--agent-pid") == 0) {
        agent_pid = (pid_t)atoi(argv[2]);
        argv += 2;
        argc -= 2;
    }
    if (argc != 3)
        die("usage: agent-files-peer [--rate BYTES | --agent-pid PID] SOCKET DIR");
    dir = argv[2];
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", argv[1]);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
        die("connect %s: %s", argv[1], strerror(errno));
    if (agent_conn_open(fd, 10000, &conn, &e) < 0)
        die("handshake: %s", e.msg);
    if (agent_conn_version(conn) != AP_VERSION)
        die("protocol v%d, want %d", agent_conn_version(conn), AP_VERSION);
    if (rate_bytes) {
        measure_rate(rate_bytes);
        return 0;
    }
    check_errno();
    check_upload_download();
    check_pread_handles();
    check_failed_upload();
    check_readdir();
    check_every_op();
    check_concurrency_and_cancel();
    check_polling();
    if (agent_pid > 0)
        check_deferred_cancel(agent_pid);
    agent_conn_shutdown(conn);
    agent_conn_unref(conn);
    return 0;
}
