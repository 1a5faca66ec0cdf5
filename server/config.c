/* config.c — see config.h.  One table lists every key: adding a key is one
 * line here plus its field in struct server_config. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "kvfile.h"

enum key_type { K_PATH, K_ABS_PATH, K_STRING, K_INT, K_BOOL, K_IPV4 };

struct config_key {
    const char *name;
    enum key_type type;
    size_t off;
    long long min, max;           /* K_INT bounds */
    const char *const *choices;   /* K_STRING allowed values (NULL-terminated) */
};

static const char *const vmm_choices[] = {"auto", "qemu", "firecracker", NULL};
static const char *const accel_choices[] = {"auto", "kvm", "tcg", NULL};

#define OFF(f) offsetof(struct server_config, f)
static const struct config_key keys[] = {
    {"kernel", K_PATH, OFF(kernel), 0, 0, NULL},
    {"rootfs", K_PATH, OFF(rootfs), 0, 0, NULL},
    {"initrd", K_PATH, OFF(initrd), 0, 0, NULL},
    {"listen", K_STRING, OFF(listen), 0, 0, NULL},
    {"metrics_listen", K_STRING, OFF(metrics_listen), 0, 0, NULL},
    {"max_ws_sessions", K_INT, OFF(max_ws_sessions), 1, 100000, NULL},
    {"trust_forwarded_for", K_BOOL, OFF(trust_forwarded_for), 0, 0, NULL},
    {"exec_timeout_secs", K_INT, OFF(exec_timeout_secs), 1, 86400, NULL},
    {"console_timeout_secs", K_INT, OFF(console_timeout_secs), 1, 7 * 86400, NULL},
    {"data_dir", K_PATH, OFF(data_dir), 0, 0, NULL},
    {"vmm", K_STRING, OFF(vmm), 0, 0, vmm_choices},
    {"accel", K_STRING, OFF(accel), 0, 0, accel_choices},
    {"qemu_bin", K_PATH, OFF(qemu_bin), 0, 0, NULL},
    {"firecracker_bin", K_PATH, OFF(firecracker_bin), 0, 0, NULL},
    {"default_cpus", K_INT, OFF(default_cpus), 1, 64, NULL},
    {"default_mem_mib", K_INT, OFF(default_mem_mib), 64, 1024 * 1024, NULL},
    {"max_cpus", K_INT, OFF(max_cpus), 1, 64, NULL},
    {"max_mem_mib", K_INT, OFF(max_mem_mib), 64, 1024 * 1024, NULL},
    {"max_vms_per_user", K_INT, OFF(max_vms_per_user), 0, 100000, NULL},
    {"max_exec_output_bytes", K_INT, OFF(max_exec_output_bytes), 1024, 256LL * 1024 * 1024, NULL},
    {"boot_timeout_secs", K_INT, OFF(boot_timeout_secs), 1, 3600, NULL},
    {"btrfs_image", K_PATH, OFF(btrfs_image), 0, 0, NULL},
    {"btrfs_image_size_mib", K_INT, OFF(btrfs_image_size_mib), 256, 16LL * 1024 * 1024, NULL},
    {"golden", K_BOOL, OFF(golden), 0, 0, NULL},
    {"mem_dir", K_PATH, OFF(mem_dir), 0, 0, NULL},
    {"vmm_user", K_STRING, OFF(vmm_user), 0, 0, NULL},
    {"max_connections_per_ip", K_INT, OFF(max_connections_per_ip), 1, 100000, NULL},
    {"http_idle_timeout_secs", K_INT, OFF(http_idle_timeout_secs), 1, 86400, NULL},
    {"max_console_log_bytes", K_INT, OFF(max_console_log_bytes), 4096, 1LL << 40, NULL},
    {"max_checkpoints_per_vm", K_INT, OFF(max_checkpoints_per_vm), 0, 100000, NULL},
    {"max_checkpoints_per_user", K_INT, OFF(max_checkpoints_per_user), 0, 1000000, NULL},
    {"noidfs_mount", K_ABS_PATH, OFF(noidfs_mount), 0, 0, NULL},
    {"netd_socket", K_ABS_PATH, OFF(netd_socket), 0, 0, NULL},
    {"guest_dns", K_IPV4, OFF(guest_dns), 0, 0, NULL},
};
_Static_assert(ARRAY_SIZE(keys) <= ARRAY_SIZE(((struct server_config *)0)->lines),
               "lines[] too small for the key table");

static char *home_path(const char *suffix)
{
    const char *home = getenv("HOME");
    char *p;

    if (!home || !*home)
        home = "/root";
    if (asprintf(&p, "%s/%s", home, suffix) < 0)
        return NULL;
    return p;
}

int server_config_init(struct server_config *c)
{
    memset(c, 0, sizeof(*c));
    c->source = strdup("(embedded defaults)");
    c->listen = strdup("0.0.0.0:7654");
    /* loopback: the metrics have no authentication (api/metrics_http.h) */
    c->metrics_listen = strdup("127.0.0.1:7655");
    c->max_ws_sessions = 32;
    c->trust_forwarded_for = false;
    c->exec_timeout_secs = 30;
    c->console_timeout_secs = 3600;
    c->data_dir = home_path(".noid");
    c->vmm = strdup("auto");
    c->accel = strdup("auto");
    c->qemu_bin = strdup("qemu-system-x86_64");
    c->firecracker_bin = strdup("/usr/local/bin/firecracker");
    c->default_cpus = 1;
    c->default_mem_mib = 256;
    c->max_cpus = 4;
    c->max_mem_mib = 4096;
    c->max_vms_per_user = 20;
    c->max_exec_output_bytes = 1024 * 1024;
    c->boot_timeout_secs = 60;
    c->btrfs_image_size_mib = 4096;
    c->golden = true;
    c->vmm_user = strdup("noid-vmm");
    c->max_connections_per_ip = 64;
    c->http_idle_timeout_secs = 30;
    c->max_console_log_bytes = 16LL * 1024 * 1024;
    c->max_checkpoints_per_vm = 64;
    c->max_checkpoints_per_user = 512;
    c->netd_socket = strdup("/run/noid/netd.sock");
    if (!c->source || !c->listen || !c->metrics_listen || !c->data_dir || !c->vmm || !c->accel ||
        !c->qemu_bin || !c->firecracker_bin || !c->vmm_user || !c->netd_socket)
        return -ENOMEM;
    return 0;
}

char *server_config_guest_dir(void)
{
    const char *env = getenv("NOID_GUEST_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    char *p;

    if (env && *env)
        return strdup(env);
    if (xdg && *xdg) {
        if (asprintf(&p, "%s/noid/guest", xdg) < 0)
            return NULL;
        return p;
    }
    return home_path(".cache/noid/guest");
}

int server_config_load_embedded(struct server_config *c, struct nerr *e)
{
    _cleanup_free_ char *dir = server_config_guest_dir();

    if (!dir)
        return -ENOMEM;
    if (asprintf(&c->kernel, "%s/vmlinux", dir) < 0 || asprintf(&c->rootfs, "%s/rootfs.ext4", dir) < 0 ||
        asprintf(&c->initrd, "%s/initrd.cpio", dir) < 0)
        return nerr_set(e, -ENOMEM, "out of memory");
    return 0;
}

static const struct config_key *key_find(const char *name, size_t *ret_index)
{
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (strcmp(keys[i].name, name) == 0) {
            *ret_index = i;
            return &keys[i];
        }
    return NULL;
}

static int config_set(void *user, const char *name, const char *raw, int line, struct nerr *e)
{
    struct server_config *c = user;
    const struct config_key *k;
    size_t idx;
    char *s = NULL;
    int r;

    k = key_find(name, &idx);
    if (!k)
        return nerr_set(e, -EINVAL, "unknown key '%s'", name);
    switch (k->type) {
    case K_PATH:
    case K_ABS_PATH:
    case K_STRING:
    case K_IPV4:
        r = kv_value_string(raw, &s, e);
        if (r < 0) {
            nerr_prefix(e, name);
            return r;
        }
        if ((k->type == K_PATH || k->type == K_ABS_PATH) && (s[0] == '\0')) {
            free(s);
            return nerr_set(e, -EINVAL, "%s: path must not be empty", name);
        }
        /* a mount point is used from a server whose working directory
         * nobody thinks about: relative would mean "wherever it started" */
        if (k->type == K_ABS_PATH && s[0] != '/') {
            nerr_set(e, -EINVAL, "%s: '%s' is not an absolute path", name, s);
            free(s);
            return -EINVAL;
        }
        if (k->type == K_IPV4) {
            struct in_addr a;
            if (inet_pton(AF_INET, s, &a) != 1) {
                nerr_set(e, -EINVAL, "%s: '%s' is not an IPv4 address", name, s);
                free(s);
                return -EINVAL;
            }
        }
        if (k->choices) {
            bool ok = false;
            for (const char *const *ch = k->choices; *ch; ch++)
                ok = ok || strcmp(*ch, s) == 0;
            if (!ok) {
                nerr_set(e, -EINVAL, "%s: '%s' is not one of", name, s);
                for (const char *const *ch = k->choices; *ch; ch++) {
                    size_t n = strlen(e->msg);
                    snprintf(e->msg + n, sizeof(e->msg) - n, " %s%s", *ch, ch[1] ? "," : "");
                }
                free(s);
                return -EINVAL;
            }
        }
        free(*(char **)((char *)c + k->off));
        *(char **)((char *)c + k->off) = s;
        break;
    case K_INT:
        r = kv_value_int(raw, k->min, k->max, (long long *)((char *)c + k->off), e);
        if (r < 0) {
            nerr_prefix(e, name);
            return r;
        }
        break;
    case K_BOOL:
        r = kv_value_bool(raw, (bool *)((char *)c + k->off), e);
        if (r < 0) {
            nerr_prefix(e, name);
            return r;
        }
        break;
    default:
        return -EINVAL;
    }
    c->lines[idx] = line;
    return 0;
}

static int count_lines(const char *text)
{
    int n = 1;

    for (; *text; text++)
        if (*text == '\n' && text[1])
            n++;
    return n;
}

int server_config_load_string(struct server_config *c, const char *name, const char *text,
                              struct nerr *e)
{
    int r;

    r = kvfile_parse_string(name, text, config_set, c, e);
    if (r < 0)
        return r;
    free(c->source);
    c->source = strdup(name);
    if (!c->source)
        return -ENOMEM;
    if (!c->kernel)
        return nerr_set(e, -EINVAL, "%s:%d: missing required key 'kernel' (path to the guest kernel)",
                        name, count_lines(text));
    if (!c->rootfs)
        return nerr_set(e, -EINVAL,
                        "%s:%d: missing required key 'rootfs' (path to the guest root filesystem)",
                        name, count_lines(text));
    if (c->default_cpus > c->max_cpus)
        return nerr_set(e, -EINVAL, "%s: default_cpus (%lld) is larger than max_cpus (%lld)", name,
                        c->default_cpus, c->max_cpus);
    if (c->default_mem_mib > c->max_mem_mib)
        return nerr_set(e, -EINVAL, "%s: default_mem_mib (%lld) is larger than max_mem_mib (%lld)",
                        name, c->default_mem_mib, c->max_mem_mib);
    return 0;
}

int server_config_load_file(struct server_config *c, const char *path, struct nerr *e)
{
    _cleanup_fclose_ FILE *f = NULL;
    _cleanup_free_ char *text = NULL;
    size_t n;

    f = fopen(path, "re");
    if (!f)
        return nerr_set(e, -errno, "%s: cannot open: %s", path, strerror(errno));
    text = malloc(KVFILE_MAX_BYTES + 1);
    if (!text)
        return -ENOMEM;
    n = fread(text, 1, KVFILE_MAX_BYTES + 1, f);
    if (ferror(f))
        return nerr_set(e, -EIO, "%s: read error", path);
    if (n > KVFILE_MAX_BYTES)
        return nerr_set(e, -EFBIG, "%s: file is larger than %d bytes", path, KVFILE_MAX_BYTES);
    text[n] = 0;
    if (memchr(text, '\0', n))
        return nerr_set(e, -EINVAL, "%s: file contains a NUL byte", path);
    return server_config_load_string(c, path, text, e);
}

void server_config_where(const struct server_config *c, const char *key, char *out, size_t size)
{
    size_t idx;

    if (key_find(key, &idx) && c->lines[idx] > 0)
        snprintf(out, size, "%s:%d", c->source, c->lines[idx]);
    else
        snprintf(out, size, "%s", c->source);
}

void server_config_free(struct server_config *c)
{
    free(c->source);
    for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
        if (keys[i].type == K_PATH || keys[i].type == K_ABS_PATH || keys[i].type == K_STRING ||
            keys[i].type == K_IPV4)
            free(*(char **)((char *)c + keys[i].off));
    memset(c, 0, sizeof(*c));
}
