/* transfer_tree.c — a directory tree between here and a VM (`noid cp -r`),
 * as a tar stream through the WebSocket exec (exec_stream.h).
 *
 * Upload: a local `tar -c -f - -C PARENT ./NAME` feeds, through a pump
 * thread that counts bytes for the progress line, the stdin of a shell in
 * the guest that runs busybox `tar -x -p -o -f -` either in the target
 * directory (copy into it) or in a temporary directory next to the target,
 * then renames ./NAME to the target (copy as it): a failed copy leaves no
 * half tree under the target's name.  The temporary directory goes on any
 * exit; when the session ends early the agent SIGKILLs the shell's process
 * group, so a watcher in a session of its own removes it then.  busybox tar restores the mtimes of
 * files but not of symlinks, nor of directories that received entries
 * after their own, so a second exec runs a `touch -h` script generated
 * from a walk of the local tree (equal times batched into one command).
 *
 * Download: `tar -c -f - -C PARENT ./NAME` in the guest, its stdout pumped
 * into a local `tar -x -p -f - ./NAME` (GNU tar restores every mtime)
 * running in the target directory, or in a temporary directory renamed
 * over the target at the end.  Only ./NAME is extracted, so a guest cannot
 * write beside it.
 *
 * exec_stream_run relays our fds 0 and 1; for the session they are made
 * the ends of our pipes (dup2) and put back after.  Ownership is not
 * copied (cp's rule: files belong to whoever copies them); modes, symlinks,
 * mtimes and empty directories are.  SIGINT, SIGTERM, SIGHUP are blocked
 * in every thread here and read by the session loop; tar children get
 * them, and SIGPIPE, back at their default. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <fts.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_stream.h"
#include "fsutil.h"
#include "macro.h"
#include "transfer.h"
#include "unixsock.h"
#include "wire.h"

/* A batch of the mtime script: arguments of one touch command. */
#define FIXUP_BATCH_BYTES (32 * 1024)
/* Bytes per read of the pump. */
#define PUMP_CHUNK (64 * 1024)

/* The guest side of an upload.  $1 "into" or "as", $2 the target, $3 the
 * tree's name in the archive, $4 the target for messages. */
static const char upload_script[] =
    "mode=$1 dst=$2 name=$3 label=$4\n"
    "fail() { echo \"noid cp: $*\" >&2; exit 1; }\n"
    "if [ \"$mode\" = into ]; then\n"
    "    [ -d \"$dst\" ] || fail \"$label: Not a directory\"\n"
    "    exec tar -x -p -o -f - -C \"$dst\"\n"
    "fi\n"
    "if [ -e \"$dst\" ] || [ -L \"$dst\" ]; then\n"
    "    fail \"cannot create directory '$label': File exists\"\n"
    "fi\n"
    "parent=${dst%/*}\n"
    "[ -n \"$parent\" ] || parent=/\n"
    "[ -d \"$parent\" ] || fail \"cannot create directory '$label': No such file or directory\"\n"
    "tmp=$(mktemp -d \"$parent/.noid-cp.XXXXXX\") || exit 1\n"
    "trap 'rm -rf \"$tmp\"' EXIT\n"
    "setsid sh -c 'while kill -0 \"$1\"; do sleep 1; done; rm -rf \"$2\"' noid-cp $$ \"$tmp\" \\\n"
    "    < /dev/null > /dev/null 2>&1 &\n"
    "tar -x -p -o -f - -C \"$tmp\" || exit 1\n"
    "mv -T \"$tmp/$name\" \"$dst\" || exit 1\n";

/* The guest side of a download: $1 the parent, $2 the tree's name. */
static const char download_script[] = "exec tar -c -f - -C \"$1\" \"./$2\"\n";

/* The signals the session loop reads; blocked before any thread starts so
 * that none of ours takes them. */
static void block_session_signals(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGWINCH);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* a pipe whose reader is gone is an error to handle, not our death */
    signal(SIGPIPE, SIG_IGN);
}

/* The session ended by a signal we got (exec_stream_run's 128 + N): note
 * it as an interruption, for the exit status. */
static void note_interruption(int status)
{
    if (status == 128 + SIGINT || status == 128 + SIGTERM || status == 128 + SIGHUP)
        transfer_interrupted = status - 128;
}

/* ---- local tar ---- */

/* Start tar with argv, stdin from in_fd and stdout to out_fd when >= 0. */
static int spawn_tar(char *const argv[], int in_fd, int out_fd, pid_t *ret)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, dfl;
    int r;

    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGTERM);
    sigaddset(&dfl, SIGHUP);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (in_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, in_fd, STDIN_FILENO);
    if (out_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
    r = -posix_spawnp(ret, "tar", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (r < 0)
        cp_error("cannot run tar: %s", strerror(-r));
    return r;
}

/* Wait for the local tar: true when it succeeded.  Its own messages say
 * why it failed; one killed by SIGPIPE only saw the other side end first,
 * and that side said why. */
static bool tar_succeeded(pid_t pid)
{
    int st;

    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return false;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* ---- the pump: copies one fd to another, counting ---- */

struct pump {
    int in, out; /* owned: closed at the end, so the end reaches the reader */
    struct progress prog;
    int64_t bytes;
    pthread_t thread;
    bool started;
};

/* Close what is left open of a pipe (-1: taken or never made). */
static void close_pipe(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0)
            close(p[i]);
}

static void *pump_run(void *arg)
{
    struct pump *p = arg;
    char buf[PUMP_CHUNK];

    for (;;) {
        ssize_t n = read(p->in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        /* a failed read or write ends the stream early: the tar at the
         * other end reports the short archive, or was the one that failed */
        if (n <= 0 || fd_write_all(p->out, buf, (size_t)n) < 0)
            break;
        p->bytes += n;
        progress_update(&p->prog, p->bytes, -1);
    }
    close(p->in);
    close(p->out);
    p->in = p->out = -1;
    return NULL;
}

static int pump_start(struct pump *p, int in, int out, bool progress, const char *label)
{
    int r;

    *p = (struct pump){.in = in, .out = out};
    progress_start(&p->prog, progress, label, -1);
    r = -pthread_create(&p->thread, NULL, pump_run, p);
    if (r < 0) {
        close(in);
        close(out);
        cp_error("cannot start a thread: %s", strerror(-r));
        return r;
    }
    p->started = true;
    return 0;
}

static void pump_join(struct pump *p, bool ok)
{
    if (!p->started)
        return;
    pthread_join(p->thread, NULL);
    p->started = false;
    progress_end(&p->prog, ok);
}

/* ---- exec sessions ---- */

static int exec_connect(struct cli *c, const char *vm, struct ws_client **ret)
{
    char path[128];
    int r;

    snprintf(path, sizeof(path), "/v1/vms/%s/exec", vm);
    r = exec_stream_connect(c, path, ret);
    if (r == -EPROTONOSUPPORT)
        cp_error("the server at %s has no streaming exec: -r needs a newer server", c->url);
    return r;
}

/* Make fd target (0 or 1) the file of fd, which is closed; the old one is
 * kept in *saved (-1: target was closed). */
static int redirect(int target, int fd, int *saved)
{
    int r = 0;

    *saved = fcntl(target, F_DUPFD_CLOEXEC, 3);
    if (*saved < 0 && errno != EBADF)
        r = -errno;
    else if (dup2(fd, target) < 0)
        r = -errno;
    close(fd);
    if (r < 0) {
        if (*saved >= 0)
            close(*saved);
        cp_error("cannot redirect fd %d: %s", target, strerror(-r));
    }
    return r;
}

static void restore(int target, int saved)
{
    if (saved >= 0) {
        dup2(saved, target);
        close(saved);
    } else {
        close(target);
    }
}

/* Run argv in the VM on the connected wc (freed here), its stdin read
 * from in_fd (-1: none) and its stdout written to out_fd (-1: ours); both
 * fds are closed here.  The command's exit status (0 = success), or 1
 * when the session failed (printed). */
static int exec_run(struct ws_client *wc, const char *vm, char **argv, size_t argc, int in_fd,
                    int out_fd)
{
    struct wire_exec_req req = {.command = argv, .ncommand = argc};
    struct exec_stream_opts opts = {.vm_name = vm, .forward_stdin = in_fd >= 0};
    json_object *o = NULL;
    int saved_in = -1, saved_out = -1, status = CLI_EXIT_FAIL;
    bool in_redirected = false, out_redirected = false;
    size_t len;

    if (in_fd < 0) {
        req.has_stdin_open = true;
        req.stdin_open = false;
    }
    o = wire_exec_req_encode(&req);
    if (!o) {
        cp_error("out of memory");
        goto out;
    }
    fflush(stdout);
    if (in_fd >= 0) {
        if (redirect(STDIN_FILENO, TAKE_FD(in_fd), &saved_in) < 0)
            goto out;
        in_redirected = true;
    }
    if (out_fd >= 0) {
        if (redirect(STDOUT_FILENO, TAKE_FD(out_fd), &saved_out) < 0)
            goto out;
        out_redirected = true;
    }
    status = exec_stream_run(wc, wire_to_string(o, &len), &opts);
    note_interruption(status);
    if (status == CLI_EXIT_TIMEOUT)
        cp_error("the copy ran into the server's time limit for one exec (exec_timeout_secs): "
                 "copy the tree in parts");
out:
    if (in_redirected)
        restore(STDIN_FILENO, saved_in);
    if (out_redirected)
        restore(STDOUT_FILENO, saved_out);
    if (in_fd >= 0)
        close(in_fd);
    if (out_fd >= 0)
        close(out_fd);
    json_object_put(o);
    ws_client_free(wc);
    return status;
}

/* ---- upload ---- */

/* The mtime script: sh code that, in the copied tree's root ($1), gives
 * every directory and symlink the mtime it has here. */
struct fixup {
    char *root; /* the local tree */
    int fd;     /* the pipe it is written to (owned) */
    pthread_t thread;
};

/* Write s single-quoted for sh. */
static void put_quoted(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

static void *fixup_run(void *arg)
{
    struct fixup *x = arg;
    char *roots[] = {x->root, NULL};
    size_t root_len = strlen(x->root), batch = 0;
    FILE *f = fdopen(x->fd, "w");
    FTS *fts;
    FTSENT *ent;
    time_t batch_time = 0;

    if (!f) {
        close(x->fd);
        return NULL;
    }
    fputs("st=0\ncd \"$1\" || exit 1\n", f);
    fts = fts_open(roots, FTS_PHYSICAL | FTS_NOCHDIR, NULL);
    while (fts && !ferror(f) && (ent = fts_read(fts))) {
        if (ent->fts_info != FTS_DP && ent->fts_info != FTS_SL && ent->fts_info != FTS_SLNONE)
            continue;
        if (batch && (ent->fts_statp->st_mtime != batch_time || batch > FIXUP_BATCH_BYTES)) {
            fputs(" || st=1\n", f);
            batch = 0;
        }
        if (!batch) {
            batch_time = ent->fts_statp->st_mtime;
            fprintf(f, "touch -c -h -d @%lld", (long long)batch_time);
        }
        fputc(' ', f);
        if (ent->fts_level == 0) {
            fputs(".", f);
        } else {
            fputs("./", f);
            put_quoted(f, ent->fts_path + root_len + 1);
        }
        batch += strlen(ent->fts_path) + 4;
    }
    if (batch)
        fputs(" || st=1\n", f);
    fputs("exit $st\n", f);
    if (fts)
        fts_close(fts);
    fclose(f);
    return NULL;
}

/* Give the uploaded tree at root in the VM the local tree's directory and
 * symlink mtimes. */
static int fix_mtimes(struct cli *c, const char *vm, char *local, char *root)
{
    struct ws_client *wc;
    struct fixup x = {.root = local};
    char *argv[] = {"/bin/sh", "-s", root};
    int fds[2], r, status;

    r = exec_connect(c, vm, &wc);
    if (r < 0)
        return r;
    if (pipe2(fds, O_CLOEXEC) < 0) {
        r = -errno;
        cp_error("cannot make a pipe: %s", strerror(-r));
        ws_client_free(wc);
        return r;
    }
    x.fd = fds[1];
    r = -pthread_create(&x.thread, NULL, fixup_run, &x);
    if (r < 0) {
        cp_error("cannot start a thread: %s", strerror(-r));
        close(fds[0]);
        close(fds[1]);
        ws_client_free(wc);
        return r;
    }
    status = exec_run(wc, vm, argv, 3, fds[0], -1);
    pthread_join(x.thread, NULL);
    return status == 0 ? 0 : -EIO;
}

/* parent and name of the local tree src: "." and ".." stand for the
 * directory they name.  -errno printed. */
static int local_parts(const char *src, char **ret_parent, char **ret_name)
{
    _cleanup_free_ char *name = cp_basename(src), *real = NULL;
    const char *use = src;

    if (!name)
        goto nomem;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, "/") == 0) {
        real = realpath(src, NULL);
        if (!real) {
            int r = -errno;
            cp_error("cannot stat '%s': %s", src, strerror(-r));
            return r;
        }
        if (strcmp(real, "/") == 0) {
            cp_error("cannot copy the root directory '%s': copy what is in it", src);
            return -EINVAL;
        }
        use = real;
        free(name);
        name = cp_basename(use);
    }
    *ret_parent = cp_dirname(use);
    if (!name || !*ret_parent)
        goto nomem;
    *ret_name = TAKE_PTR(name);
    return 0;
nomem:
    cp_error("out of memory");
    return -ENOMEM;
}

int tree_upload(struct cli *c, const char *src, const struct cp_remote *dst, bool into_dir,
                const struct cp_opts *o)
{
    _cleanup_free_ char *parent = NULL, *name = NULL, *dotname = NULL, *local = NULL;
    _cleanup_free_ char *root = NULL;
    struct ws_client *wc = NULL;
    struct pump pump = {0};
    char *tar_argv[] = {"tar", "-c", "-f", "-", "-C", NULL, NULL, NULL};
    char *argv[] = {"/bin/sh",
                    "-c",
                    (char *)upload_script,
                    "noid-cp",
                    into_dir ? "into" : "as",
                    dst->path,
                    NULL,
                    dst->label,
                    NULL};
    int tar_out[2] = {-1, -1}, sess_in[2] = {-1, -1};
    pid_t tar = -1;
    bool ok = false;
    int r, status;

    r = local_parts(src, &parent, &name);
    if (r < 0)
        return r;
    if (asprintf(&dotname, "./%s", name) < 0 || !(local = path_join(parent, name)) ||
        asprintf(&root, "%s%s%s", dst->path, strcmp(dst->path, "/") ? "/" : "", name) < 0) {
        cp_error("out of memory");
        return -ENOMEM;
    }
    tar_argv[5] = parent;
    tar_argv[6] = dotname;
    argv[6] = name;
    block_session_signals();
    r = exec_connect(c, dst->vm, &wc);
    if (r < 0)
        return r;
    if (pipe2(tar_out, O_CLOEXEC) < 0 || pipe2(sess_in, O_CLOEXEC) < 0) {
        r = -errno;
        cp_error("cannot make a pipe: %s", strerror(-r));
        goto out;
    }
    r = spawn_tar(tar_argv, -1, tar_out[1], &tar);
    close(TAKE_FD(tar_out[1]));
    if (r < 0)
        goto out;
    r = pump_start(&pump, TAKE_FD(tar_out[0]), TAKE_FD(sess_in[1]), o->progress, name);
    if (r < 0)
        goto out;
    status = exec_run(TAKE_PTR(wc), dst->vm, argv, 8, TAKE_FD(sess_in[0]), -1);
    if (transfer_interrupted)
        kill(tar, SIGTERM); /* quietly: it would only complain of a closed pipe */
    pump_join(&pump, status == 0);
    ok = tar_succeeded(tar);
    tar = -1;
    if (status != 0 || !ok) {
        ok = false;
        r = -EIO;
        goto out;
    }
    r = fix_mtimes(c, dst->vm, local, into_dir ? root : dst->path);
    ok = r == 0;
out:
    pump_join(&pump, false);
    if (tar > 0)
        tar_succeeded(tar);
    close_pipe(tar_out);
    close_pipe(sess_in);
    ws_client_free(wc);
    return ok ? 0 : (r < 0 ? r : -EIO);
}

/* ---- download ---- */

/* A guest is not trusted: a setuid file of its tree must not become a
 * setuid program here (owned by whoever copies, root too).  Clear the
 * set-user-ID and set-group-ID bits of every regular file under root
 * (directories keep setgid: it only picks the group of new files). */
static int clear_setid(const char *fpath, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type == FTW_F && S_ISREG(st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID)))
        chmod(fpath, st->st_mode & 07777 & ~(mode_t)(S_ISUID | S_ISGID));
    return 0;
}

int tree_download(struct cli *c, const struct cp_remote *src, const char *dst, bool into_dir,
                  const struct cp_opts *o)
{
    _cleanup_free_ char *parent = cp_dirname(src->path), *name = cp_basename(src->path);
    _cleanup_free_ char *dotname = NULL, *temp = NULL, *extracted = NULL, *dst_parent = NULL;
    struct ws_client *wc = NULL;
    struct pump pump = {0};
    char *argv[] = {"/bin/sh", "-c", (char *)download_script, "noid-cp", parent, name, NULL};
    char *tar_argv[] = {"tar", "-x", "-p", "-f", "-", "--no-same-owner", "-C", NULL, NULL, NULL};
    int sess_out[2] = {-1, -1}, tar_in[2] = {-1, -1};
    pid_t tar = -1;
    bool ok = false;
    int r, status;

    if (!parent || !name || asprintf(&dotname, "./%s", name) < 0) {
        cp_error("out of memory");
        return -ENOMEM;
    }
    if (strcmp(name, "/") == 0 || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        cp_error("cannot copy '%s': name the directory itself (not /, . or ..)", src->label);
        return -EINVAL;
    }
    if (!into_dir) {
        dst_parent = cp_dirname(dst);
        if (!dst_parent || asprintf(&temp, "%s/.noid-cp.XXXXXX", dst_parent) < 0) {
            temp = NULL;
            cp_error("out of memory");
            return -ENOMEM;
        }
        if (!mkdtemp(temp)) {
            r = -errno;
            cp_error("cannot create directory '%s': %s", dst, strerror(-r));
            free(TAKE_PTR(temp));
            return r;
        }
        extracted = path_join(temp, name);
        if (!extracted) {
            r = -ENOMEM;
            cp_error("out of memory");
            goto out;
        }
    }
    tar_argv[7] = into_dir ? (char *)dst : temp;
    tar_argv[8] = dotname;
    block_session_signals();
    r = exec_connect(c, src->vm, &wc);
    if (r < 0)
        goto out;
    if (pipe2(sess_out, O_CLOEXEC) < 0 || pipe2(tar_in, O_CLOEXEC) < 0) {
        r = -errno;
        cp_error("cannot make a pipe: %s", strerror(-r));
        goto out;
    }
    r = spawn_tar(tar_argv, tar_in[0], -1, &tar);
    close(TAKE_FD(tar_in[0]));
    if (r < 0)
        goto out;
    r = pump_start(&pump, TAKE_FD(sess_out[0]), TAKE_FD(tar_in[1]), o->progress, name);
    if (r < 0)
        goto out;
    status = exec_run(TAKE_PTR(wc), src->vm, argv, 6, -1, TAKE_FD(sess_out[1]));
    if (transfer_interrupted)
        kill(tar, SIGTERM); /* quietly: it would only complain of a short archive */
    /* our end of the session's stdout is closed now: the pump sees the
     * end, and closes the tar's stdin */
    pump_join(&pump, status == 0);
    ok = tar_succeeded(tar);
    tar = -1;
    if (status != 0 || !ok) {
        ok = false;
        r = -EIO;
        goto out;
    }
    {
        _cleanup_free_ char *top = into_dir ? path_join(dst, name) : NULL;
        nftw(into_dir ? (top ? top : dst) : extracted, clear_setid, 16, FTW_PHYS);
    }
    if (!into_dir && rename(extracted, dst) < 0) {
        r = -errno;
        cp_error("cannot create directory '%s': %s", dst, strerror(-r));
        ok = false;
    }
out:
    pump_join(&pump, false);
    if (tar > 0)
        tar_succeeded(tar);
    close_pipe(sess_out);
    close_pipe(tar_in);
    ws_client_free(wc);
    if (temp)
        rm_rf(temp);
    return ok ? 0 : (r < 0 ? r : -EIO);
}
