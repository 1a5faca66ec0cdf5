/* wire.h — the JSON types of the REST contract (DESIGN.md §4), in one place.
 *
 * Field names here are the contract: they stay compatible with the original
 * noid client, so they are never renamed or dropped.  Requests are decoded
 * strictly (unknown fields, wrong types, out-of-range values are refused with
 * a sentence naming the field); responses are decoded leniently by clients so
 * that a newer server may add fields.
 *
 * Each struct is owned by its caller and released with its *_free function,
 * which accepts a zeroed struct. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nerr.h"

/* JSON documents nest at most this deep; deeper input is refused. */
#define WIRE_MAX_DEPTH 16
#define WIRE_MAX_ARGV 4096
/* Largest terminal side (cols or rows) an exec request may ask for. */
#define WIRE_MAX_TTY_SIDE 4096
#define WIRE_MAX_ARG_BYTES (128 * 1024)

/* ---- requests (decoded by the server, encoded by clients) ---- */

struct wire_create_req {
    char *name;
    bool has_cpus, has_mem_mib;
    long long cpus;
    long long mem_mib;
};

/* stdin travels as "stdin" (UTF-8 text) or "stdin_b64" (exact bytes). */
struct wire_exec_req {
    char **command;
    size_t ncommand;
    bool tty;
    char **env;
    size_t nenv;
    char *cwd;
    bool has_timeout_secs;
    long long timeout_secs;
    char *stdin_text;
    size_t stdin_text_len;
    char *stdin_b64;
    size_t stdin_b64_len;
    /* WebSocket exec: "stdin": false closes stdin at once (/dev/null);
     * true or absent keeps it open for 0x03 frames. */
    bool has_stdin_open;
    bool stdin_open;
    /* tty: the terminal's size at the start ("cols", "rows") */
    bool has_cols, has_rows;
    long long cols, rows;
};

struct wire_checkpoint_req {
    char *label;
    size_t label_len;
};

struct wire_restore_req {
    char *checkpoint_id;
    char *new_name;
};

/* ---- responses ---- */

struct wire_vm_info {
    char *name;
    char *state;
    long long cpus;
    long long mem_mib;
    char *created_at;
    char *vmm;           /* "qemu" or "firecracker" */
    char *restored_from; /* "golden", a checkpoint id, or NULL for a cold boot */
    char *ip;            /* NULL without networking */
};

/* stdout/stderr are always strings (invalid UTF-8 replaced by U+FFFD, for
 * old clients); when the bytes are not valid UTF-8 the exact bytes are also
 * sent as base64 in stdout_b64/stderr_b64, which new clients prefer. */
struct wire_exec_result {
    uint8_t *out;
    size_t out_len;
    uint8_t *err;
    size_t err_len;
    long long exit_code; /* 124 on timeout; 128+N when killed by signal N */
    long long signal;    /* 0 unless killed by a signal */
    bool timed_out;
    bool truncated;
};

struct wire_checkpoint {
    char *id;
    char *vm_name;
    char *label; /* may be NULL */
    char *created_at;
    long long pause_ms;
    long long size_bytes;
};

struct wire_whoami {
    char *user_id;
    char *name;
};

struct wire_capabilities {
    long long api_version;
    long long max_exec_output_bytes;
    long long exec_timeout_secs;
    long long console_timeout_secs;
    long long max_vm_name_length;
    long long default_cpus;
    long long default_mem_mib;
    long long max_cpus;
    long long max_mem_mib;
    long long max_vms_per_user;
    bool golden_ready; /* create starts VMs from a golden snapshot right now */
};

struct wire_version {
    char *version;
    long long api_version;
};

/* Parse text as one JSON object (no trailing bytes, depth ≤ WIRE_MAX_DEPTH). */
int wire_parse_object(const char *text, size_t len, json_object **ret, struct nerr *e);
/* Same, for any JSON value (responses such as the VM list are arrays). */
int wire_parse_value(const char *text, size_t len, json_object **ret, struct nerr *e);

/* Decoders: 0 or -EINVAL with the reason. `strict` refuses unknown fields. */
int wire_create_req_decode(json_object *o, struct wire_create_req *r, struct nerr *e);
int wire_exec_req_decode(json_object *o, struct wire_exec_req *r, struct nerr *e);
int wire_checkpoint_req_decode(json_object *o, struct wire_checkpoint_req *r, struct nerr *e);
int wire_restore_req_decode(json_object *o, struct wire_restore_req *r, struct nerr *e);
int wire_vm_info_decode(json_object *o, struct wire_vm_info *r, struct nerr *e);
int wire_exec_result_decode(json_object *o, struct wire_exec_result *r, struct nerr *e);
int wire_checkpoint_decode(json_object *o, struct wire_checkpoint *r, struct nerr *e);
int wire_whoami_decode(json_object *o, struct wire_whoami *r, struct nerr *e);
int wire_capabilities_decode(json_object *o, struct wire_capabilities *r, struct nerr *e);
int wire_version_decode(json_object *o, struct wire_version *r, struct nerr *e);

/* Encoders return a new json_object (NULL on ENOMEM). */
json_object *wire_create_req_encode(const struct wire_create_req *r);
json_object *wire_exec_req_encode(const struct wire_exec_req *r);
json_object *wire_checkpoint_req_encode(const struct wire_checkpoint_req *r);
json_object *wire_restore_req_encode(const struct wire_restore_req *r);
json_object *wire_vm_info_encode(const struct wire_vm_info *r);
json_object *wire_exec_result_encode(const struct wire_exec_result *r);
json_object *wire_checkpoint_encode(const struct wire_checkpoint *r);
json_object *wire_whoami_encode(const struct wire_whoami *r);
json_object *wire_capabilities_encode(const struct wire_capabilities *r);
json_object *wire_version_encode(const struct wire_version *r);
json_object *wire_error_encode(const char *msg);

void wire_create_req_free(struct wire_create_req *r);
void wire_exec_req_free(struct wire_exec_req *r);
void wire_checkpoint_req_free(struct wire_checkpoint_req *r);
void wire_restore_req_free(struct wire_restore_req *r);
void wire_vm_info_free(struct wire_vm_info *r);
void wire_exec_result_free(struct wire_exec_result *r);
void wire_checkpoint_free(struct wire_checkpoint *r);
void wire_whoami_free(struct wire_whoami *r);
void wire_version_free(struct wire_version *r);

/* Serialise compactly; the string belongs to o. */
const char *wire_to_string(json_object *o, size_t *ret_len);
