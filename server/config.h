/* config.h — noid-server configuration (server.toml, DESIGN.md §5).
 *
 * Keys of the administrator's guide keep their names and defaults; keys we
 * added have safe defaults.  Every key is listed once, in config.c's table,
 * with its type and bounds.  Unknown keys and bad values are errors that name
 * the file and line. */
#pragma once

#include <stdbool.h>

#include "nerr.h"

struct server_config {
    char *source;           /* file the values came from, or "(embedded defaults)" */

    char *kernel;           /* required: guest kernel (vmlinux ELF or bzImage) */
    char *rootfs;           /* required: pristine root filesystem image */
    char *initrd;           /* optional initramfs (our guest image needs it) */
    char *listen;           /* "HOST:PORT" */
    char *metrics_listen;   /* "HOST:PORT" of GET /metrics; "" = no metrics listener */
    long long max_ws_sessions;
    bool trust_forwarded_for;
    long long exec_timeout_secs;    /* default and ceiling for one exec */
    long long console_timeout_secs;

    char *data_dir;         /* noid.db, storage/, golden/ */
    char *vmm;              /* "auto", "qemu", "firecracker" */
    char *accel;            /* "auto", "kvm", "tcg" (QEMU only) */
    char *qemu_bin;
    char *firecracker_bin;
    long long default_cpus;
    long long default_mem_mib;
    long long max_cpus;
    long long max_mem_mib;
    long long max_vms_per_user;
    long long max_exec_output_bytes;
    long long boot_timeout_secs;
    char *btrfs_image;      /* optional loop-mounted btrfs image for storage/ */
    long long btrfs_image_size_mib;
    bool golden;            /* keep a golden snapshot and create VMs from it */
    char *mem_dir;          /* guest RAM files (tmpfs); NULL: a per-data-dir dir in /dev/shm */
    char *vmm_user;         /* when run as root, VMMs run as this user ("" = as root) */

    /* Bounds against hostile clients and guests (issue 7) */
    long long max_connections_per_ip;  /* open HTTP connections per client address */
    long long http_idle_timeout_secs;  /* an idle HTTP connection is closed after this */
    long long max_console_log_bytes;   /* serial.log is rotated to serial.log.1 above this */
    long long max_checkpoints_per_vm;
    long long max_checkpoints_per_user;

    /* noidfs (DESIGN.md §9): where serve mounts every user's VMs as
     * directories; NULL = no mount.  An absolute path. */
    char *noidfs_mount;

    /* Networking (DESIGN.md §8): noid-netd's socket, and the resolver
     * guests are given; NULL guest_dns = the host's first nameserver that a
     * guest can reach (none: guests get no resolver). */
    char *netd_socket;
    char *guest_dns;

    /* Line of each key in the file (0 when defaulted), for later errors such
     * as "kernel does not exist". Indexed like the key table. */
    int lines[48];
};

/* Fill defaults.  data_dir becomes $HOME/.noid; kernel/rootfs/initrd stay NULL. */
int server_config_init(struct server_config *c);

/* The embedded defaults used without --config: the locally built guest image
 * in the guest cache dir ($NOID_GUEST_DIR, else $XDG_CACHE_HOME/noid/guest,
 * else ~/.cache/noid/guest). */
int server_config_load_embedded(struct server_config *c, struct nerr *e);

/* Parse path on top of defaults; requires kernel and rootfs. */
int server_config_load_file(struct server_config *c, const char *path, struct nerr *e);
/* Same, from text (labelled `name` in errors); used by tests and the fuzzer. */
int server_config_load_string(struct server_config *c, const char *name, const char *text,
                              struct nerr *e);

/* "FILE:LINE" of a key for error messages ("FILE" when defaulted). */
void server_config_where(const struct server_config *c, const char *key, char *out, size_t size);

/* The guest image directory the embedded defaults point to (malloc'd). */
char *server_config_guest_dir(void);

void server_config_free(struct server_config *c);
