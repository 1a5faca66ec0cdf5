/* files.h — what the guest-files handlers share: handlers_files.c (the
 * routes, GET/HEAD dispatch, DELETE, POST), files_list.c (directory
 * listings), files_download.c (file bodies) and files_upload.c (PUT).
 *
 * A guest path is the rest of the URL after /v1/vms/{name}/files, decoded
 * by libmicrohttpd and handed to the guest's agent as it is: "..", spaces
 * and any bytes but NUL are just path bytes, resolved inside the guest.
 * Nothing here resolves, normalises or opens a path on the host. */
#pragma once

#include "api.h"

/* Directory listings hold every entry to sort them: at most this many. */
#define FILES_DIR_MAX_ENTRIES 100000
/* ... and at most this much JSON text (413 beyond). */
#define FILES_LIST_MAX_BYTES (32u * 1024 * 1024)
/* Bytes an upload hands the engine at once. */
#define FILES_UPLOAD_CHUNK (256u * 1024)
/* The content reader's block and the first bytes a download waits for
 * before it answers (so that an unreadable file is an error status, not a
 * cut body). */
#define FILES_DOWNLOAD_BLOCK (64u * 1024)

/* The guest path of the request (params[1]); on a bad one replies 400 and
 * returns NULL.  Also refuses requests whose line had a %00. */
const char *files_path(struct api_request *rq, char **params);

/* Every query parameter must be one of allowed (NULL-terminated); else
 * replies 400 naming them and returns false. */
bool files_query_check(struct api_request *rq, const char *const *allowed);
/* ?key=1|true|0|false; absent = false.  -EINVAL after a 400 reply. */
int files_query_bool(struct api_request *rq, const char *key, bool *ret);
/* ?key=<octal permission bits, at most 07777>: 1 and *ret, 0 when absent,
 * -EINVAL after a 400 reply. */
int files_query_mode(struct api_request *rq, const char *key, uint32_t *ret);

/* The status of a file operation's error (guest's or engine's), and the
 * reply with it: {"error": "<the message, which names the path>"}. */
unsigned files_status_for_errno(int r);
void files_reply_error(struct api_request *rq, int r, const struct nerr *e);

/* One request on one path (op with APF_PATH only), via engine_file_call. */
int files_path_call(struct api_request *rq, const char *vm, uint8_t op, const char *path,
                    struct agent_fs_reply *ret, struct nerr *e);

/* "file", "dir", "symlink", "fifo", "socket", "char", "block" or "unknown". */
const char *files_type_name(uint32_t mode);
/* An entry as JSON: {key, "type", "size", "mode", "mtime"} where key is
 * "name" (listings) or "path" (the answer of PUT, mkdir, rename); a name
 * that is not UTF-8 also gets key_b64 with its exact bytes. */
json_object *files_entry_json(const char *key, const char *name, const struct ap_fs_attr *a);
/* Serialise files_entry_json into b (listings are built as text). */
int files_entry_append(struct buf *b, const char *name, const struct ap_fs_attr *a);
/* The headers every answer about an existing entry carries:
 * X-Noid-Type, X-Noid-Mode, Last-Modified. */
void files_add_entry_headers(struct MHD_Response *resp, const struct ap_fs_attr *a);

/* Answer GET/HEAD for a directory (files_list.c) or a regular file
 * (files_download.c); a is its stat. */
void files_send_dir(struct api_request *rq, const char *vm, const char *path,
                    const struct ap_fs_attr *a);
void files_send_file(struct api_request *rq, const char *vm, const char *path,
                     const struct ap_fs_attr *a, bool head);
