/* golden_provision.c — `noid-server golden provision`: the provisioning flow
 * of the admin guide (a VM from the golden snapshot, what every VM should
 * have installed in it, a checkpoint of it promoted) as one operation that
 * leaves nothing of itself behind.
 *
 * The temporary VM (PROVISION_VM) belongs to a hidden owner: a users row
 * named PROVISION_USER, a name no user can have (name_user_check refuses
 * '(' and ')', so add-user cannot make it and no lookup by name finds it),
 * whose token hash is not hex (no token hashes to it, so nobody logs in as
 * it), and which engine_user_list leaves out.  Its storage is an ordinary
 * user's (storage/users/<id>/), removed with the row at the end.
 *
 * Sharing the data dir: like golden build and promote, provisioning runs
 * beside a running server (it opens the engine in ENGINE_GOLDEN mode and
 * does not take server.lock); the golden snapshot's own locks (golden.c)
 * keep the server's creates and the final swap apart, and the server's next
 * create uses the new snapshot.  <golden>.provision.lock lets one
 * provisioning run per data dir; whoever holds it owns the hidden user, so
 * a provisioning that finds one left (it was killed) removes it first, and
 * so does a server at start when it gets the lock (reconcile.c).  A server
 * that starts while a provisioning runs reconciles the temporary VM like
 * any VM: one still booting is removed (the provisioning then fails and
 * cleans up). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "engine-internal.h"
#include "fsutil.h"
#include "log.h"
#include "timeutil.h"
#include "vm-internal.h"
#include "vm_net.h"

#define PROVISION_VM    "provision"
#define PROVISION_LABEL "golden provision"
/* not hex: no token's SHA-256 is this, nor starts like it */
#define PROVISION_TOKEN_HASH "-"

struct engine_provision {
    struct engine *eng;
    int lock;                          /* <golden>.provision.lock, exclusive */
    struct db_user user;               /* the hidden owner; id "" until its row exists */
    char checkpoint_id[DB_ID_LEN + 1]; /* "" until taken */
};

/* The exclusive lock for one provisioning at a time; -EBUSY (naming the
 * holder) when another runs. */
static int provision_lock(struct engine *eng, struct nerr *e)
{
    _cleanup_free_ char *p = NULL;
    char pid[32];
    int fd;

    if (asprintf(&p, "%s.provision.lock", eng->golden_dir) < 0)
        return nerr_set(e, -ENOMEM, "out of memory");
    fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return nerr_set(e, -errno, "cannot open %s: %s", p, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int err = errno;
        ssize_t n;

        if (err != EWOULDBLOCK) { /* not held by another: a failure to say as it is */
            close(fd);
            return nerr_set(e, -err, "cannot lock %s: %s", p, strerror(err));
        }
        n = pread(fd, pid, sizeof(pid) - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        close(fd);
        return nerr_set(e, -EBUSY, "another golden provision (pid %s) runs on data dir %s",
                        pid[0] ? pid : "?", eng->data_dir);
    }
    snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, strlen(pid), 0) < 0)
        log_warn("cannot write %s: %s", p, strerror(errno));
    return fd;
}

/* Remove the hidden owner with its VMs (their VMMs, storage, checkpoints)
 * and storage; nothing to do when there is none.  Provision lock held. */
static int remove_owner(struct engine *eng, const char *user_id, struct nerr *e)
{
    _cleanup_free_ char *dir = engine_user_dir(eng, user_id);
    int r;

    if (!dir)
        return nerr_set(e, -ENOMEM, "out of memory");
    r = engine_vms_destroy_all_of_user(eng, user_id, e);
    if (r < 0)
        return r;
    r = storage_remove_tree(eng->storage, dir);
    if (r < 0 && r != -ENOENT)
        return nerr_set(e, r, "cannot remove %s: %s", dir, strerror(-r));
    r = db_user_delete(eng->db, user_id);
    if (r < 0 && r != -ENOENT)
        return nerr_set(e, r, "cannot delete the provisioning user: %s", db_errmsg(eng->db));
    return 0;
}

int provision_sweep_leftover(struct engine *eng, struct nerr *e)
{
    struct db_user old;
    int r = db_user_get_by_name(eng->db, ENGINE_PROVISION_USER, &old);

    if (r == -ENOENT)
        return 0;
    if (r < 0)
        return nerr_set(e, r, "cannot read the users table: %s", db_errmsg(eng->db));
    log_warn("golden provision: removing what an interrupted provisioning left (VM %s/%s)", old.id,
             PROVISION_VM);
    return remove_owner(eng, old.id, e);
}

static int add_owner(struct engine *eng, struct db_user *u, struct nerr *e)
{
    int r;

    memset(u, 0, sizeof(*u));
    r = random_hex_id(u->id, DB_ID_LEN / 2);
    if (r < 0)
        return nerr_set(e, r, "cannot draw a user id: %s", strerror(-r));
    snprintf(u->name, sizeof(u->name), "%s", ENGINE_PROVISION_USER);
    snprintf(u->token_hash, sizeof(u->token_hash), "%s", PROVISION_TOKEN_HASH);
    time_now_rfc3339(u->created_at);
    r = db_user_insert(eng->db, u);
    if (r < 0) {
        u->id[0] = '\0';
        return nerr_set(e, r, "cannot record the provisioning user: %s", db_errmsg(eng->db));
    }
    return 0;
}

/* The temporary VM, from the golden snapshot and nothing else: a cold boot
 * would lose what earlier provisionings put into the snapshot. */
static int start_vm(struct engine *eng, const struct db_user *u, struct nerr *e)
{
    struct db_vm vm;
    struct vm_rt *rt;
    long long cpus, mem;
    int r;

    r = golden_size(eng, &cpus, &mem, e);
    if (r < 0)
        return r;
    r = vm_new_begin(eng, u, PROVISION_VM, cpus, mem, eng->default_vmm, &vm, &rt, e);
    if (r < 0)
        return r;
    r = vm_create_from_golden(eng, &vm, rt, e);
    if (r == -ENOENT)
        r = nerr_set(e, -EIO,
                     "the temporary VM did not start from the golden snapshot (the "
                     "log above says why)");
    r = vm_new_end(eng, &vm, rt, r, e);
    if (r >= 0)
        log_info("golden provision: VM %s/%s started from the golden snapshot (%lld cpus, "
                 "%lld MiB)",
                 u->id, PROVISION_VM, cpus, mem);
    return r;
}

/* -ECANCELED once the caller asked to stop. */
static int check_stop(const volatile sig_atomic_t *stop, struct nerr *e)
{
    if (stop && *stop)
        return nerr_set(e, -ECANCELED, "interrupted");
    return 0;
}

int engine_provision_begin(struct engine *eng, const volatile sig_atomic_t *stop,
                           struct engine_provision **ret, struct nerr *e)
{
    struct engine_provision *p;
    int r;

    if (eng->mode != ENGINE_GOLDEN)
        return nerr_set(e, -EPERM, "provisioning runs from `noid-server golden provision`");
    if (!eng->cfg->golden)
        return nerr_set(e, -EINVAL,
                        "golden = false in the configuration: VMs do not start "
                        "from a golden snapshot, so provisioning it changes nothing");
    p = calloc(1, sizeof(*p));
    if (!p)
        return nerr_set(e, -ENOMEM, "out of memory");
    p->eng = eng;
    p->lock = provision_lock(eng, e);
    if (p->lock < 0) {
        r = p->lock;
        free(p);
        return r;
    }
    /* the limits of users do not apply to the hidden owner, which has one
     * VM and one checkpoint (this engine serves nothing else) */
    eng->cfg->max_vms_per_user = MAX(eng->cfg->max_vms_per_user, 1);
    eng->cfg->max_checkpoints_per_vm = MAX(eng->cfg->max_checkpoints_per_vm, 1);
    eng->cfg->max_checkpoints_per_user = MAX(eng->cfg->max_checkpoints_per_user, 1);
    r = check_stop(stop, e);
    if (r >= 0)
        r = provision_sweep_leftover(eng, e);
    if (r >= 0)
        r = check_stop(stop, e);
    if (r >= 0)
        r = engine_golden_ensure(eng, false, e);
    if (r >= 0)
        r = check_stop(stop, e);
    if (r >= 0) {
        vm_net_init(eng); /* the guest's resolver, when noid-netd gives it a network */
        r = add_owner(eng, &p->user, e);
    }
    if (r >= 0)
        r = start_vm(eng, &p->user, e);
    if (r < 0) {
        engine_provision_end(p);
        return r;
    }
    *ret = p;
    return 0;
}

int engine_provision_exec_start(struct engine_provision *p, const char *shell_command,
                                long long timeout_secs, const struct engine_exec_events *ev,
                                struct engine_exec_stream **ret, struct nerr *e)
{
    char *argv[] = {(char *)"sh", (char *)"-c", (char *)shell_command, NULL};
    struct wire_exec_req req = {
        .command = argv,
        .ncommand = 3,
        .has_stdin_open = true,
        .stdin_open = false, /* /dev/null: nobody types into a provisioning */
    };

    return exec_stream_start(p->eng, &p->user, PROVISION_VM, &req, timeout_secs, ev, ret, e);
}

int engine_provision_checkpoint(struct engine_provision *p, struct nerr *e)
{
    struct wire_checkpoint cp = {0};
    int r;

    r = engine_checkpoint_create(p->eng, &p->user, PROVISION_VM, PROVISION_LABEL, &cp, e);
    if (r < 0) {
        nerr_prefix(e, "checkpoint of the provisioned VM");
        return r;
    }
    snprintf(p->checkpoint_id, sizeof(p->checkpoint_id), "%s", cp.id);
    wire_checkpoint_free(&cp);
    return 0;
}

int engine_provision_promote(struct engine_provision *p, struct nerr *e)
{
    if (!p->checkpoint_id[0])
        return nerr_set(e, -EINVAL, "no checkpoint to promote");
    /* promote copies (reflinks) the files it needs: the checkpoint goes
     * with the VM at the end */
    return engine_golden_promote(p->eng, p->checkpoint_id, e);
}

void engine_provision_end(struct engine_provision *p)
{
    struct nerr e = {0};

    if (!p)
        return;
    if (p->user.id[0] && remove_owner(p->eng, p->user.id, &e) < 0)
        log_warn("golden provision: cleaning up: %s (the next provisioning removes it)",
                 nerr_msg(&e));
    else if (p->user.id[0])
        log_info("golden provision: temporary VM and its checkpoint removed");
    close(p->lock);
    free(p);
}
