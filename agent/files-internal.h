/* files-internal.h — what files.c (requests) and files_xfer.c
 * (transfers) share.  Nothing else includes it. */
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "files.h"

#define FILES_OPEN_FLAGS (O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
#define FILES_FILE_MODE  0644
#define FILES_DIR_MODE   0755
#define FILES_TMP_SUFFIX ".noid-XXXXXX"

enum xfer_kind { XFER_READ, XFER_READDIR, XFER_WRITE };

struct files_xfer {
    uint32_t stream;
    enum xfer_kind kind;
    int fd;           /* READ: the file (a dup for PREAD); WRITE: the file */
    DIR *dir;         /* READDIR */
    uint64_t offset;  /* READ: where the next chunk starts */
    uint64_t left;    /* READ: bytes still wanted, UINT64_MAX = to the end */
    uint64_t total;   /* bytes sent or written; READDIR: entries sent */
    uint64_t credit;  /* READ, READDIR: payload bytes that may still go out */
    uint32_t window;  /* READ_FILE, READDIR: the cap of credit; 0 = PREAD */
    bool released;    /* OUT_ACK{AP_OUT_ACK_RELEASE}: credit no longer counts */
    uint32_t wflags;  /* WRITE: AP_WRITE_* */
    char *tmp;        /* WRITE with AP_WRITE_ATOMIC: the temporary name */
    char *target;     /* WRITE with AP_WRITE_ATOMIC: the final name */
    bool has_pending; /* READDIR: an entry that did not fit the last frame */
    uint8_t pending[AP_FS_DIRENT_MAX];
    size_t pending_len;
};

/* Answers (files.c) */
void files_reply(struct files *f, uint32_t stream, const void *p, size_t len);
void files_reply_u64(struct files *f, uint32_t stream, uint64_t v);
void files_attr_from_stat(const struct stat *st, struct ap_fs_attr *a);

/* Close every handle; the next session's numbers start at a new random
 * value (files.c). */
void files_handles_reset(struct files *f);
/* The fd of handle id, or -EBADF (files.c). */
int files_handle_fd(const struct files *f, uint32_t id);

/* Open path as a regular file with flags (plus FILES_OPEN_FLAGS) and mode.
 * Returns the fd or -errno (-EISDIR for a directory, -EINVAL for another
 * non-regular file). */
int files_open_regular(const char *path, int flags, mode_t mode);
/* mkdir path; with parents, also every missing ancestor (FILES_DIR_MODE),
 * and an existing directory at path is success.  Returns 0 or -errno. */
int files_mkdir_parents(const char *path, mode_t mode, bool parents);
/* The parent directory of path into ret ("/" for a top-level name). */
void files_parent_of(const char *path, char ret[AP_FS_PATH_MAX + 1]);

/* Start READ_FILE, PREAD or READDIR; WRITE_FILE (files_xfer.c).  Each
 * answers at once on failure. */
void files_download_start(struct files *f, uint32_t stream, const struct ap_fs_req *req);
void files_upload_start(struct files *f, uint32_t stream, const struct ap_fs_req *req);
