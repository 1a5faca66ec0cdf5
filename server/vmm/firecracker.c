/* firecracker.c — the Firecracker backend: one detached firecracker process
 * per VM, configured over its API socket (fc_api.c) exactly as the official
 * spec (shared/firecracker/firecracker.yaml, v1.x) allows; the guest agent
 * is reached over vsock.
 *
 * Firecracker cannot run on our own machines (no /dev/kvm), so this file is
 * checked by tests/integration/firecracker/: a stand-in firecracker that
 * validates every request against the spec and models Firecracker's state
 * machine.  That proves we send what the API accepts, in an order it
 * accepts; it cannot prove that a real guest boots.
 *
 * Layout inside the VM directory (the process's cwd):
 *   firecracker.sock  API socket       serial.in   FIFO on its stdin
 *   v.sock            vsock host side  serial.log  its stdout (guest console)
 *   firecracker.log   its logger       vmm.log     its stderr
 * The disk and the vsock socket are given to Firecracker by *relative* paths
 * where possible.  Firecracker writes those paths into a snapshot and reopens
 * them on /snapshot/load; relative to the cwd, a checkpoint restored or cloned
 * into another VM directory then opens that directory's own disk and binds
 * its own v.sock, never the original VM's. */
#include "firecracker.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent_proto.h"
#include "fc_api.h"
#include "fsutil.h"
#include "spawn-util.h"
#include "timeutil.h"
#include "unixsock.h"
#include "vmm-save.h"

/* How long the API socket may take to appear after the spawn. */
#define FC_START_TIMEOUT_MS 5000
#define FC_KILL_TIMEOUT_MS  5000
/* Bound on the whole "CONNECT <port>\n" -> "OK <n>\n" exchange. */
#define FC_VSOCK_HANDSHAKE_TIMEOUT_MS 5000
#define FC_VSOCK_REPLY_MAX            64
/* CIDs 0-2 are reserved (hypervisor, local, host); the spec's minimum is 3. */
#define FC_GUEST_CID 3
#define FC_DRIVE_ID  "rootfs"
#define FC_IFACE_ID  "eth0"
/* Firecracker's --id: 1-64 characters, ASCII letters, digits and '-'. */
#define FC_ID_PREFIX "noid-"
#define FC_ID_MAX    64
/* Firecracker's documented default command line, quieter: the serial
 * console is for people.  reboot=k and panic=1 make a guest reboot or panic
 * end the firecracker process, which the engine sees as the VM stopping. */
#define FC_DEFAULT_BOOT_ARGS "console=ttyS0 reboot=k panic=1 pci=off quiet"

struct firecracker {
    char *bin;
    char *boot_args;
    char version[128];
};

static struct firecracker *F(struct vmm_backend *be)
{
    return be->data;
}

bool vmm_firecracker_available(const char *bin)
{
    struct stat st;
    _cleanup_close_ int fd = -1;

    if (!bin || stat(bin, &st) < 0 || !S_ISREG(st.st_mode) || access(bin, X_OK) < 0)
        return false;
    fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    return fd >= 0;
}

static bool instance_id_is_valid(const char *id)
{
    size_t n = strlen(id);

    if (n == 0 || n + strlen(FC_ID_PREFIX) > FC_ID_MAX)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-'))
            return false;
    return true;
}

/* path relative to dir when it lies inside dir (see the top of the file),
 * else path itself.  Returns a pointer into path. */
static const char *path_in_dir(const char *dir, const char *path)
{
    size_t n = strlen(dir);

    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (strncmp(path, dir, n) != 0 || path[n] != '/' || path[n + 1] == 0)
        return path;
    if (strstr(path + n, "/../") || strcmp(path + strlen(path) - 3, "/..") == 0)
        return path;
    return path + n + 1;
}


/* The files Firecracker expects before it starts: the serial FIFO, an
 * existing logger file (it opens log_path without O_CREAT), and no stale
 * sockets (it binds the API socket and uds_path and fails if they exist). */
static int prepare_vm_dir(const struct vmm_boot *b, struct nerr *e)
{
    _cleanup_free_ char *fifo = path_join(b->vm_dir, VM_FILE_SERIAL_IN);
    _cleanup_free_ char *api = path_join(b->vm_dir, VM_FILE_FC_SOCK);
    _cleanup_free_ char *vsock = path_join(b->vm_dir, VM_FILE_VSOCK);
    _cleanup_free_ char *log = path_join(b->vm_dir, VM_FILE_FC_LOG);
    _cleanup_close_ int fd = -1;
    struct stat st;

    if (!fifo || !api || !vsock || !log)
        return -ENOMEM;
    if (mkfifo(fifo, 0600) < 0) {
        if (errno != EEXIST)
            return nerr_set(e, -errno, "cannot create %s: %s", fifo, strerror(errno));
        if (lstat(fifo, &st) < 0 || !S_ISFIFO(st.st_mode))
            return nerr_set(e, -EEXIST, "%s exists and is not a FIFO", fifo);
    }
    /* a live process still answering on the API socket owns this directory */
    if (unix_connect(b->vm_dir, VM_FILE_FC_SOCK, &fd) == 0)
        return nerr_set(e, -EBUSY, "a Firecracker process already serves %s", b->vm_dir);
    if (unlink(api) < 0 && errno != ENOENT)
        return nerr_set(e, -errno, "cannot remove stale %s: %s", api, strerror(errno));
    if (unlink(vsock) < 0 && errno != ENOENT)
        return nerr_set(e, -errno, "cannot remove stale %s: %s", vsock, strerror(errno));
    fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return nerr_set(e, -errno, "cannot create %s: %s", log, strerror(errno));
    return 0;
}

static int spawn_firecracker(struct firecracker *fc, const struct vmm_boot *b, pid_t *ret_pid,
                             struct nerr *e)
{
    _cleanup_free_ char *fifo = path_join(b->vm_dir, VM_FILE_SERIAL_IN);
    _cleanup_free_ char *serial = path_join(b->vm_dir, VM_FILE_SERIAL_LOG);
    _cleanup_free_ char *vmm_log = path_join(b->vm_dir, VM_FILE_VMM_LOG);
    _cleanup_free_ char *id = NULL;
    struct spawn_opts so = {
        .cwd = b->vm_dir,
        .stdin_path = fifo, /* opened read-write: the FIFO never reports EOF */
        .stdout_path = serial,
        .stderr_path = vmm_log,
        .new_session = true,
    };
    int r;

    if (!fifo || !serial || !vmm_log || asprintf(&id, FC_ID_PREFIX "%s", b->instance_id) < 0)
        return -ENOMEM;
    /* the instance id in argv lets vmm_proc_is_alive() recognise the process */
    char *argv[] = {fc->bin, (char *)"--api-sock", (char *)VM_FILE_FC_SOCK, (char *)"--id", id,
                    NULL};
    r = spawn_detached(argv, &so, ret_pid);
    if (r < 0)
        return nerr_set(e, r, "cannot run %s: %s", fc->bin, strerror(-r));
    return 0;
}

/* Wait until the API socket accepts, or the process died, or the bound. */
static int wait_api_socket(const struct vmm_boot *b, pid_t pid, struct nerr *e)
{
    int64_t deadline = time_mono_ms() + FC_START_TIMEOUT_MS;
    char tail[200];

    for (;;) {
        _cleanup_close_ int fd = -1;

        if (unix_connect(b->vm_dir, VM_FILE_FC_SOCK, &fd) == 0)
            return 0;
        if (vmm_proc_has_exited(pid)) {
            vmm_log_tail(b->vm_dir, tail, sizeof(tail));
            return nerr_set(e, -EIO, "Firecracker exited at start: %s",
                            tail[0] ? tail : "no message in " VM_FILE_VMM_LOG);
        }
        if (time_mono_ms() > deadline)
            return nerr_set(e, -ETIMEDOUT, "Firecracker's API socket did not appear within %d ms",
                            FC_START_TIMEOUT_MS);
        time_sleep_ms(5);
    }
}

static json_object *jstr(const char *s)
{
    return json_object_new_string(s);
}

static int put_logger(struct fc_api *api, struct nerr *e)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "log_path", jstr(VM_FILE_FC_LOG));
    json_object_object_add(o, "level", jstr("Warning"));
    return fc_api_call(api, "PUT", "/logger", o, FC_API_TIMEOUT_MS, e);
}

static int cold_boot(struct firecracker *fc, struct fc_api *api, const struct vmm_boot *b,
                     struct nerr *e)
{
    json_object *o;
    int r;

    o = json_object_new_object();
    json_object_object_add(o, "vcpu_count", json_object_new_int(b->cpus));
    json_object_object_add(o, "mem_size_mib", json_object_new_int(b->mem_mib));
    json_object_object_add(o, "smt", json_object_new_boolean(false));
    r = fc_api_call(api, "PUT", "/machine-config", o, FC_API_TIMEOUT_MS, e);
    if (r < 0)
        return r;

    o = json_object_new_object();
    json_object_object_add(o, "kernel_image_path", jstr(b->kernel));
    if (b->initrd)
        json_object_object_add(o, "initrd_path", jstr(b->initrd));
    if (b->cmdline_extra) {
        _cleanup_free_ char *args = NULL;
        if (asprintf(&args, "%s %s", fc->boot_args, b->cmdline_extra) < 0) {
            json_object_put(o);
            return -ENOMEM;
        }
        json_object_object_add(o, "boot_args", jstr(args));
    } else {
        json_object_object_add(o, "boot_args", jstr(fc->boot_args));
    }
    r = fc_api_call(api, "PUT", "/boot-source", o, FC_API_TIMEOUT_MS, e);
    if (r < 0)
        return r;

    /* With an initrd, our initramfs mounts /dev/vda itself, so the disk is
     * not Firecracker's "root device" (which would add root=/dev/vda to the
     * command line).  Without one, the kernel must be told. */
    o = json_object_new_object();
    json_object_object_add(o, "drive_id", jstr(FC_DRIVE_ID));
    json_object_object_add(o, "path_on_host", jstr(path_in_dir(b->vm_dir, b->rootfs)));
    json_object_object_add(o, "is_root_device", json_object_new_boolean(b->initrd == NULL));
    json_object_object_add(o, "is_read_only", json_object_new_boolean(false));
    /* honour the guest's flushes, like QEMU's cache=writeback ("Unsafe",
     * the default, drops them) */
    json_object_object_add(o, "cache_type", jstr("Writeback"));
    r = fc_api_call(api, "PUT", "/drives/" FC_DRIVE_ID, o, FC_API_TIMEOUT_MS, e);
    if (r < 0)
        return r;

    /* vsock_id is deprecated in the spec: left out */
    o = json_object_new_object();
    json_object_object_add(o, "guest_cid", json_object_new_int(FC_GUEST_CID));
    json_object_object_add(o, "uds_path", jstr(VM_FILE_VSOCK));
    r = fc_api_call(api, "PUT", "/vsock", o, FC_API_TIMEOUT_MS, e);
    if (r < 0)
        return r;

    /* Firecracker has no NIC without a host device (ops.nic_needs_tap) */
    if (b->nic && b->tap) {
        o = json_object_new_object();
        json_object_object_add(o, "iface_id", jstr(FC_IFACE_ID));
        json_object_object_add(o, "host_dev_name", jstr(b->tap));
        json_object_object_add(o, "guest_mac", jstr(b->mac));
        r = fc_api_call(api, "PUT", "/network-interfaces/" FC_IFACE_ID, o, FC_API_TIMEOUT_MS, e);
        if (r < 0)
            return r;
    }

    /* virtio-rng: the guest's entropy does not depend on the agent */
    r = fc_api_call(api, "PUT", "/entropy", json_object_new_object(), FC_API_TIMEOUT_MS, e);
    if (r < 0)
        return r;

    o = json_object_new_object();
    json_object_object_add(o, "action_type", jstr("InstanceStart"));
    return fc_api_call(api, "PUT", "/actions", o, FC_API_TIMEOUT_MS, e);
}

/* mem_backend "File" (not the deprecated mem_file_path): Firecracker maps
 * the file MAP_PRIVATE, so clones of one checkpoint share its unchanged
 * pages through the page cache and never write to it.  MAP_PRIVATE does not
 * shield them from others' writes, though: the file must never be rewritten
 * in place while a VM restored from it runs. */
static int load_snapshot(struct fc_api *api, const struct vmm_boot *b, const char *mem_path,
                         struct nerr *e)
{
    json_object *o = json_object_new_object();
    json_object *mem = json_object_new_object();

    json_object_object_add(mem, "backend_type", jstr("File"));
    json_object_object_add(mem, "backend_path", jstr(mem_path));
    json_object_object_add(o, "snapshot_path", jstr(b->restore_state));
    json_object_object_add(o, "mem_backend", mem);
    json_object_object_add(o, "resume_vm", json_object_new_boolean(true));
    /* the saved NIC's TAP belonged to the VMM that was saved: this one has
     * its own (the agent then gives the guest the new address) */
    if (b->nic && b->tap) {
        json_object *list = json_object_new_array(), *ov = json_object_new_object();
        json_object_object_add(ov, "iface_id", jstr(FC_IFACE_ID));
        json_object_object_add(ov, "host_dev_name", jstr(b->tap));
        json_object_array_add(list, ov);
        json_object_object_add(o, "network_overrides", list);
    }
    return fc_api_call(api, "PUT", "/snapshot/load", o, FC_API_SNAPSHOT_TIMEOUT_MS, e);
}

/* The snapshot's memory file: b->mem_file, else VM_FILE_MEMORY next to the
 * state file (where save_state put it).  Malloc'd. */
static char *restore_mem_path(const struct vmm_boot *b)
{
    _cleanup_free_ char *dir = NULL;
    char *slash;

    if (b->mem_file)
        return strdup(b->mem_file);
    dir = strdup(b->restore_state);
    if (!dir)
        return NULL;
    slash = strrchr(dir, '/');
    if (!slash)
        return strdup(VM_FILE_MEMORY);
    *slash = 0;
    return path_join(dir[0] ? dir : "/", VM_FILE_MEMORY);
}

static int check_boot(const struct vmm_boot *b, struct nerr *e)
{
    if (!b->vm_dir || b->vm_dir[0] != '/' || !b->instance_id)
        return nerr_set(e, -EINVAL, "Firecracker needs an absolute VM directory and an id");
    if (!instance_id_is_valid(b->instance_id))
        return nerr_set(e, -EINVAL,
                        "instance id '%s' is not valid for Firecracker's --id "
                        "(letters, digits and '-', at most %zu characters)",
                        b->instance_id, FC_ID_MAX - strlen(FC_ID_PREFIX));
    if (b->ram == VMM_RAM_SHARED_FILE)
        return nerr_set(e, -EOPNOTSUPP, "Firecracker cannot keep guest RAM in a shared file");
    if (b->restore_state)
        return 0;
    if (!b->kernel || !b->rootfs)
        return nerr_set(e, -EINVAL, "Firecracker needs a kernel and a root disk to boot");
    if (b->mem_file)
        return nerr_set(e, -EOPNOTSUPP,
                        "Firecracker cannot boot with guest RAM in a file (only restores can)");
    return 0;
}

/* Start (cold boot or restore).  On any failure after the spawn the
 * process is killed, so nothing is left running. */
static int fc_start(struct vmm_backend *be, const struct vmm_boot *b, struct vmm_proc *ret,
                    struct nerr *e)
{
    struct firecracker *fc = F(be);
    struct fc_api *api = NULL;
    _cleanup_free_ char *mem_path = NULL;
    pid_t pid = 0;
    int r;

    r = check_boot(b, e);
    if (r < 0)
        return r;
    if (b->restore_state) {
        mem_path = restore_mem_path(b);
        if (!mem_path)
            return -ENOMEM;
    }
    r = prepare_vm_dir(b, e);
    if (r < 0)
        return r;
    r = spawn_firecracker(fc, b, &pid, e);
    if (r < 0)
        return r;
    r = wait_api_socket(b, pid, e);
    if (r < 0)
        goto fail;
    r = fc_api_new(b->vm_dir, VM_FILE_FC_SOCK, &api);
    if (r < 0)
        goto fail;
    /* the logger first: it is allowed on a fresh process before a snapshot
     * load, and it records why a later request fails */
    r = put_logger(api, e);
    if (r < 0)
        goto fail;
    if (b->restore_state)
        r = load_snapshot(api, b, mem_path, e);
    else
        r = cold_boot(fc, api, b, e);
    if (r < 0)
        goto fail;
    fc_api_free(api);
    ret->pid = pid;
    return 0;
fail:
    fc_api_free(api);
    vmm_proc_kill(pid, b->instance_id, FC_KILL_TIMEOUT_MS);
    return nerr_set(e, r, "Firecracker failed to start: %s", strerror(-r));
}

static int patch_vm_state(const char *vm_dir, const char *state, struct nerr *e)
{
    struct fc_api *api = NULL;
    json_object *o;
    int r;

    r = fc_api_new(vm_dir, VM_FILE_FC_SOCK, &api);
    if (r < 0)
        return r;
    o = json_object_new_object();
    json_object_object_add(o, "state", jstr(state));
    r = fc_api_call(api, "PATCH", "/vm", o, FC_API_TIMEOUT_MS, e);
    fc_api_free(api);
    return r;
}

static int fc_pause(struct vmm_backend *be, const char *vm_dir, struct nerr *e)
{
    return patch_vm_state(vm_dir, "Paused", e);
}

static int fc_resume(struct vmm_backend *be, const char *vm_dir, struct nerr *e)
{
    return patch_vm_state(vm_dir, "Resumed", e);
}

/* After a crash of the server in the middle of a checkpoint: a Firecracker
 * found paused (GET / says so) is resumed.  A snapshot request of the dead
 * server has ended with its connection. */
static int fc_recover(struct vmm_backend *be, const char *vm_dir, bool *ret_resumed,
                      struct nerr *e)
{
    struct fc_api *api = NULL;
    _cleanup_free_ char *body = NULL;
    json_object *o = NULL, *state = NULL;
    long status = 0;
    int r;

    *ret_resumed = false;
    r = fc_api_new(vm_dir, VM_FILE_FC_SOCK, &api);
    if (r < 0)
        return r;
    r = fc_api_request(api, "GET", "/", NULL, FC_API_TIMEOUT_MS, &status, &body, e);
    fc_api_free(api);
    if (r < 0)
        return r;
    o = body && status / 100 == 2 ? json_tokener_parse(body) : NULL;
    if (o && json_object_object_get_ex(o, "state", &state) &&
        strcmp(json_object_get_string(state), "Paused") == 0) {
        r = patch_vm_state(vm_dir, "Resumed", e);
        *ret_resumed = r >= 0;
    }
    json_object_put(o);
    return r;
}

/* A full snapshot of the paused VM: CPU and device state into
 * VM_FILE_VMSTATE, all of guest RAM into VM_FILE_MEMORY.  ignore_shared is
 * QEMU's business: Firecracker always writes guest memory to a file of its
 * own. */
static int fc_save_state(struct vmm_backend *be, const char *vm_dir, const char *snap_dir,
                         bool ignore_shared, bool *ret_mem_saved, struct nerr *e)
{
    _cleanup_free_ char *state_path = path_join(snap_dir, VM_FILE_VMSTATE);
    _cleanup_free_ char *mem_path = path_join(snap_dir, VM_FILE_MEMORY);
    struct fc_api *api = NULL;
    json_object *o;
    int r;

    *ret_mem_saved = false;
    if (!state_path || !mem_path)
        return -ENOMEM;
    r = fc_api_new(vm_dir, VM_FILE_FC_SOCK, &api);
    if (r < 0)
        return r;
    o = json_object_new_object();
    json_object_object_add(o, "snapshot_type", jstr("Full"));
    json_object_object_add(o, "snapshot_path", jstr(state_path));
    json_object_object_add(o, "mem_file_path", jstr(mem_path));
    r = fc_api_call(api, "PUT", "/snapshot/create", o, FC_API_SNAPSHOT_TIMEOUT_MS, e);
    fc_api_free(api);
    if (r < 0)
        return r;
    *ret_mem_saved = true;
    return 0;
}

/* Read the one-line answer to CONNECT byte by byte, so that not a byte of
 * the agent protocol that follows it is consumed. */
static int read_reply_line(int fd, char *out, size_t size, int64_t deadline, struct nerr *e)
{
    size_t n = 0;

    for (;;) {
        int64_t left = deadline - time_mono_ms();
        ssize_t k;
        char c;
        int r;

        if (left <= 0)
            return nerr_set(e, -ETIMEDOUT, "no answer from Firecracker's vsock within %d ms",
                            FC_VSOCK_HANDSHAKE_TIMEOUT_MS);
        r = fd_wait_readable(fd, (int)left);
        if (r < 0)
            return nerr_set(e, r, "cannot read from Firecracker's vsock: %s", strerror(-r));
        if (r == 0)
            continue;
        k = read(fd, &c, 1);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k < 0)
            return nerr_set(e, -errno, "cannot read from Firecracker's vsock: %s", strerror(errno));
        if (k == 0)
            return nerr_set(e, -ECONNREFUSED,
                            "the guest agent is not listening on vsock port %d (yet)",
                            AP_VSOCK_PORT);
        if (c == '\n') {
            out[n] = 0;
            return 0;
        }
        if (n + 1 >= size)
            return nerr_set(e, -EPROTO, "Firecracker's vsock answer is longer than %zu bytes",
                            size - 1);
        out[n++] = c;
    }
}

static int fc_agent_connect(struct vmm_backend *be, const char *vm_dir, int *ret_fd, struct nerr *e)
{
    int64_t deadline = time_mono_ms() + FC_VSOCK_HANDSHAKE_TIMEOUT_MS;
    _cleanup_close_ int fd = -1;
    char req[32], reply[FC_VSOCK_REPLY_MAX];
    const char *p;
    int r;

    r = unix_connect(vm_dir, VM_FILE_VSOCK, &fd);
    if (r < 0)
        return nerr_set(e, r, "cannot connect to the vsock socket: %s", strerror(-r));
    snprintf(req, sizeof(req), "CONNECT %d\n", AP_VSOCK_PORT);
    r = fd_write_all(fd, req, strlen(req));
    if (r < 0)
        return nerr_set(e, r, "cannot write to Firecracker's vsock: %s", strerror(-r));
    r = read_reply_line(fd, reply, sizeof(reply), deadline, e);
    if (r < 0)
        return r;
    /* "OK <host-side port>" */
    p = reply + 3;
    if (strncmp(reply, "OK ", 3) != 0 || *p == 0 || strspn(p, "0123456789") != strlen(p))
        return nerr_set(e, -EPROTO, "unexpected answer from Firecracker's vsock: '%s'", reply);
    *ret_fd = TAKE_FD(fd);
    return 0;
}

static bool fc_supports_shared_file(struct vmm_backend *be)
{
    return false;
}

static const char *fc_version(struct vmm_backend *be)
{
    return F(be)->version;
}

static const struct vmm_ops firecracker_ops = {
    .name = "firecracker",
    .nic_needs_tap = true,
    .start = fc_start,
    .pause = fc_pause,
    .resume = fc_resume,
    .save_state = fc_save_state,
    .convert_state = NULL, /* its snapshots always keep memory in a file */
    .recover = fc_recover,
    .checkpoint = vmm_checkpoint_generic,
    .disk_write_count = NULL, /* Firecracker's metrics are not read here */
    .ram_of = NULL,           /* RAM is anonymous, or a snapshot's file it maps privately */
    .state_ram_block = NULL,  /* memory is never inside its state files */
    .agent_connect = fc_agent_connect,
    .supports_shared_memory_file = fc_supports_shared_file,
    .version = fc_version,
};

/* Does not look at /dev/kvm (vmm_firecracker_available does): the contract
 * test builds this backend on machines without KVM. */
int vmm_firecracker_new(const struct firecracker_options *o, struct vmm_backend **ret,
                        struct nerr *e)
{
    struct vmm_backend *be = calloc(1, sizeof(*be));
    struct firecracker *fc = calloc(1, sizeof(*fc));
    int r;

    if (!be || !fc || !o->firecracker_bin) {
        r = !o->firecracker_bin ? nerr_set(e, -EINVAL, "no firecracker binary configured")
                                : -ENOMEM;
        goto fail;
    }
    be->ops = &firecracker_ops;
    be->data = fc;
    fc->bin = strdup(o->firecracker_bin);
    fc->boot_args = strdup(o->boot_args ? o->boot_args : FC_DEFAULT_BOOT_ARGS);
    if (!fc->bin || !fc->boot_args) {
        r = -ENOMEM;
        goto fail;
    }
    /* libcurl's global state, before any thread uses the API client */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        r = nerr_set(e, -EIO, "cannot initialise libcurl");
        goto fail;
    }
    char *vargv[] = {fc->bin, (char *)"--version", NULL};
    if (spawn_capture_line(vargv, fc->version, sizeof(fc->version)) < 0 || !fc->version[0])
        snprintf(fc->version, sizeof(fc->version), "unknown");
    *ret = be;
    return 0;
fail:
    if (fc) {
        free(fc->bin);
        free(fc->boot_args);
    }
    free(fc);
    free(be);
    return r;
}

void vmm_firecracker_free(struct vmm_backend *be)
{
    if (!be)
        return;
    free(F(be)->bin);
    free(F(be)->boot_args);
    free(be->data);
    free(be);
    curl_global_cleanup();
}
