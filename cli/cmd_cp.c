/* cmd_cp.c — `noid cp [-r] [-q] SRC DST`: copy a file or a directory tree
 * between this machine and a VM, the way cp(1) would between two
 * directories.
 *
 * This file decides what goes where: which side is the VM ("NAME:/path"),
 * whether the target is a directory to copy into (the local stat, or a
 * HEAD on the guest path), and the cp-like refusals (a missing source, a
 * directory without -r, a directory over a file).  The bytes move in
 * transfer_file.c (one file, REST) and transfer_tree.c (a tree, tar
 * through exec). */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "macro.h"
#include "names.h"
#include "transfer.h"

/* One of SRC and DST. */
struct side {
    const char *arg; /* as given */
    bool remote;
    bool dir_hint; /* ends in '/': meant as a directory */
    struct cp_remote rm;
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: noid cp [-r] [-q] SRC DST\n"
               "\n"
               "Copy a file or a directory tree between this machine and a VM.  One of SRC\n"
               "and DST is a path in a VM, NAME:/path (:/path is the VM of ./.noid-vm), the\n"
               "other a local path, or '-' for stdin (as SRC) or stdout (as DST), files only.\n"
               "\n"
               "As cp does: a file copied to a directory (one that exists, or a DST ending\n"
               "in '/') goes into it under its own name, and a file of that name is\n"
               "replaced; a directory needs -r and becomes DST, or goes into DST under its\n"
               "own name when DST is an existing directory.\n"
               "\n"
               "  -r, -R, --recursive  copy directories too (modes, symlinks, mtimes and\n"
               "                       empty directories are kept)\n"
               "  -q, --quiet          no progress line\n"
               "  -h, --help           show this help\n"
               "\n"
               "A file keeps its mode both ways.  A download goes to a temporary file next\n"
               "to the target, renamed when complete: a failed or interrupted copy leaves\n"
               "no partial file (an upload replaces the guest file only once complete).\n"
               "Copies stream in constant memory; on a terminal, those over 4 MiB show a\n"
               "progress line on stderr.  Directories travel as a tar stream through one\n"
               "exec in the VM, so the server's exec_timeout_secs bounds them.\n"
               "\n"
               "Examples:\n"
               "  noid cp notes.txt box:/root/          upload into /root\n"
               "  noid cp box:/etc/os-release .         download into this directory\n"
               "  noid cp -r src box:/srv/app           the tree src becomes /srv/app\n"
               "  noid cp -r box:/var/log ./saved/      the tree lands as ./saved/log\n"
               "  tar cz . | noid cp - box:/tmp/a.tgz   stdin into a guest file\n"
               "  noid cp :/root/out.json - | jq .      a guest file (VM of ./.noid-vm) to stdout\n"
               "\n"
               "Exit status: 0 when copied, 1 when not, 2 for bad usage, 128+N when\n"
               "interrupted by signal N.  A local name with ':' before any '/' reads as a\n"
               "VM path: write ./a:b for a local file a:b.\n");
}

void cp_error(const char *fmt, ...)
{
    va_list ap;

    fputs("noid cp: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Length of path without its trailing slashes ("/" keeps its one). */
static size_t trimmed_len(const char *path)
{
    size_t n = strlen(path);

    while (n > 1 && path[n - 1] == '/')
        n--;
    return n;
}

char *cp_basename(const char *path)
{
    size_t n = trimmed_len(path), start = n;

    if (n == 1 && path[0] == '/')
        return strdup("/");
    while (start > 0 && path[start - 1] != '/')
        start--;
    return strndup(path + start, n - start);
}

char *cp_dirname(const char *path)
{
    size_t n = trimmed_len(path);

    while (n > 0 && path[n - 1] != '/')
        n--;
    if (n == 0)
        return strdup(".");
    while (n > 1 && path[n - 1] == '/')
        n--;
    return strndup(path, n);
}

int cp_remote_set(struct cp_remote *r, const char *vm, const char *path)
{
    *r = (struct cp_remote){0};
    r->vm = strdup(vm);
    r->path = strndup(path, trimmed_len(path));
    if (!r->vm || !r->path || asprintf(&r->label, "%s:%s", r->vm, r->path) < 0) {
        r->label = NULL;
        cp_remote_free(r);
        return -ENOMEM;
    }
    return 0;
}

void cp_remote_free(struct cp_remote *r)
{
    free(r->vm);
    free(r->path);
    free(r->label);
    *r = (struct cp_remote){0};
}

/* Read arg as a side: a VM path when a ':' comes before any '/' and what
 * precedes it is empty (the active VM) or a VM name.  0, or -errno
 * printed. */
static int parse_side(const char *arg, struct side *s)
{
    const char *colon = strchr(arg, ':');
    const char *slash = strchr(arg, '/');
    _cleanup_free_ char *prefix = NULL, *vm = NULL;
    struct nerr e = {0};

    *s = (struct side){.arg = arg};
    s->dir_hint = arg[0] && arg[strlen(arg) - 1] == '/';
    if (!colon || (slash && slash < colon))
        return 0;
    prefix = strndup(arg, (size_t)(colon - arg));
    if (!prefix)
        return -ENOMEM;
    if (colon[1] != '/') {
        if (!prefix[0] || name_vm_check(prefix, NULL) == 0) {
            cli_print_error("'%s': a path in a VM is absolute (NAME:/path); write ./%s for a "
                            "local file",
                            arg, arg);
            return -EINVAL;
        }
        return 0; /* no VM name before the ':': a local name */
    }
    if (prefix[0] && name_vm_check(prefix, &e) < 0) {
        cli_print_error("'%s': %s", arg, e.msg);
        return -EINVAL;
    }
    vm = cli_vm_name(prefix[0] ? prefix : NULL);
    if (!vm)
        return -EINVAL;
    s->remote = true;
    return cp_remote_set(&s->rm, vm, colon + 1);
}

/* A remote that is dir/name. */
static int remote_child(const struct cp_remote *dir, const char *name, struct cp_remote *ret)
{
    _cleanup_free_ char *path = NULL;

    if (asprintf(&path, "%s%s%s", dir->path, strcmp(dir->path, "/") ? "/" : "", name) < 0)
        return -ENOMEM;
    return cp_remote_set(ret, dir->vm, path);
}

static int stdin_upload(struct cli *c, struct side *dst, const struct cp_opts *o)
{
    struct remote_stat st;
    int r = dst->dir_hint ? 0 : remote_stat(c, &dst->rm, &st);

    if (r < 0 && r != -ENOENT)
        return r;
    if (dst->dir_hint || (r == 0 && st.type == REMOTE_DIR)) {
        cp_error("'%s' is a directory: give stdin a file name (%s/NAME)", dst->rm.label,
                 dst->rm.label);
        return -EISDIR;
    }
    return remote_upload(c, "-", &dst->rm, -1, o);
}

static int upload(struct cli *c, const char *src, struct side *dst, const struct cp_opts *o)
{
    struct cp_remote target = {0};
    _cleanup_free_ char *name = NULL;
    struct remote_stat rst;
    struct stat st;
    int r;

    if (strcmp(src, "-") == 0)
        return stdin_upload(c, dst, o);
    if (stat(src, &st) < 0) {
        r = -errno;
        cp_error("cannot stat '%s': %s", src, strerror(-r));
        return r;
    }
    if (S_ISDIR(st.st_mode) && !o->recursive) {
        cp_error("-r not specified; omitting directory '%s'", src);
        return -EISDIR;
    }
    r = remote_stat(c, &dst->rm, &rst);
    if (transfer_interrupted)
        return -EINTR;
    if (r < 0 && r != -ENOENT)
        return r;
    bool dst_is_dir = r == 0 && rst.type == REMOTE_DIR;
    if (S_ISDIR(st.st_mode)) {
        if (r == 0 && !dst_is_dir) {
            cp_error("cannot overwrite non-directory '%s' with directory '%s'", dst->rm.label, src);
            return -ENOTDIR;
        }
        return tree_upload(c, src, &dst->rm, dst_is_dir, o);
    }
    if (r == -ENOENT && dst->dir_hint) {
        cp_error("cannot create regular file '%s/': Not a directory", dst->rm.label);
        return -ENOTDIR;
    }
    if (!dst_is_dir)
        return remote_upload(c, src, &dst->rm, (int)(st.st_mode & 07777), o);
    name = cp_basename(src);
    if (!name || remote_child(&dst->rm, name, &target) < 0) {
        cp_error("out of memory");
        return -ENOMEM;
    }
    r = remote_upload(c, src, &target, (int)(st.st_mode & 07777), o);
    cp_remote_free(&target);
    return r;
}

/* The local file a download of src to dst writes: dst, or dst/NAME when
 * dst is a directory; through a symlink to its file, as cp writes through
 * it.  malloc'd, or NULL (printed). */
static char *local_target(const struct cp_remote *src, const char *dst, bool dir_hint)
{
    _cleanup_free_ char *name = NULL;
    char *target = NULL, *real;
    struct stat st;

    if (dir_hint || (stat(dst, &st) == 0 && S_ISDIR(st.st_mode))) {
        name = cp_basename(src->path);
        target = name ? path_join(dst, name) : NULL;
    } else {
        target = strdup(dst);
    }
    if (!target) {
        cp_error("out of memory");
        return NULL;
    }
    if (stat(target, &st) == 0 && S_ISDIR(st.st_mode)) {
        cp_error("cannot overwrite directory '%s' with non-directory", target);
        free(target);
        return NULL;
    }
    if (lstat(target, &st) == 0 && S_ISLNK(st.st_mode) && (real = realpath(target, NULL))) {
        free(target);
        target = real;
    }
    return target;
}

static int download(struct cli *c, struct side *src, const char *dst, bool dst_dir_hint,
                    const struct cp_opts *o)
{
    _cleanup_free_ char *target = NULL;
    struct remote_stat rst;
    struct stat st;
    int r;

    r = remote_stat(c, &src->rm, &rst);
    if (transfer_interrupted)
        return -EINTR;
    if (r == -ENOENT) {
        cp_error("cannot stat '%s': No such file or directory", src->rm.label);
        return r;
    }
    if (r < 0)
        return r;
    if (rst.type == REMOTE_DIR) {
        if (!o->recursive) {
            cp_error("-r not specified; omitting directory '%s'", src->rm.label);
            return -EISDIR;
        }
        if (strcmp(dst, "-") == 0) {
            cp_error("cannot write the directory '%s' to stdout ('-' is for files)", src->rm.label);
            return -EISDIR;
        }
        if (lstat(dst, &st) < 0)
            return tree_download(c, &src->rm, dst, false, o);
        if (stat(dst, &st) < 0 || !S_ISDIR(st.st_mode)) {
            cp_error("cannot overwrite non-directory '%s' with directory '%s'", dst, src->rm.label);
            return -ENOTDIR;
        }
        return tree_download(c, &src->rm, dst, true, o);
    }
    if (strcmp(dst, "-") == 0)
        return remote_download(c, &src->rm, "-", o);
    target = local_target(&src->rm, dst, dst_dir_hint);
    if (!target)
        return -EINVAL;
    return remote_download(c, &src->rm, target, o);
}

/* 0: copy; 1: help printed; < 0: a usage error, printed. */
static int parse_args(int argc, char **argv, struct cp_opts *o, const char **ret_src,
                      const char **ret_dst)
{
    const char *pos[2];
    bool quiet = false, options = true;
    int npos = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options && strcmp(a, "--") == 0) {
            options = false;
        } else if (options && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            usage(stdout);
            return 1;
        } else if (options && strcmp(a, "--recursive") == 0) {
            o->recursive = true;
        } else if (options && strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (options && a[0] == '-' && a[1] && a[1] != '-' &&
                   strspn(a + 1, "rRq") == strlen(a + 1)) {
            /* -r, -q, -rq, ... */
            o->recursive |= strpbrk(a + 1, "rR") != NULL;
            quiet |= strchr(a + 1, 'q') != NULL;
        } else if (options && a[0] == '-' && a[1]) {
            cli_print_error("cp: unknown option '%s' (see noid cp --help)", a);
            return -EINVAL;
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            cli_print_error("cp: one SRC and one DST (see noid cp --help)");
            return -EINVAL;
        }
    }
    if (npos < 2) {
        cli_print_error("cp: %s (see noid cp --help)",
                        npos ? "DST is missing" : "SRC and DST are missing");
        return -EINVAL;
    }
    o->progress =
        !quiet && isatty(STDERR_FILENO) && !(strcmp(pos[1], "-") == 0 && isatty(STDOUT_FILENO));
    *ret_src = pos[0];
    *ret_dst = pos[1];
    return 0;
}

int cmd_cp(struct cli *c, int argc, char **argv)
{
    struct cp_opts o = {0};
    struct side src = {0}, dst = {0};
    const char *src_arg, *dst_arg;
    int r, status = CLI_EXIT_USAGE;

    r = parse_args(argc, argv, &o, &src_arg, &dst_arg);
    if (r != 0)
        return r > 0 ? 0 : CLI_EXIT_USAGE;
    if (parse_side(src_arg, &src) < 0 || parse_side(dst_arg, &dst) < 0)
        goto out;
    if (src.remote == dst.remote) {
        cli_print_error("cp: %s", src.remote ? "both SRC and DST are in a VM: copy through a "
                                               "local file"
                                             : "neither SRC nor DST is in a VM (NAME:/path)");
        goto out;
    }
    transfer_catch_signals();
    if (src.remote)
        r = download(c, &src, dst_arg, dst.dir_hint, &o);
    else
        r = upload(c, src_arg, &dst, &o);
    if (transfer_interrupted)
        status = 128 + transfer_interrupted;
    else
        status = r < 0 ? CLI_EXIT_FAIL : 0;
out:
    cp_remote_free(&src.rm);
    cp_remote_free(&dst.rm);
    return status;
}
