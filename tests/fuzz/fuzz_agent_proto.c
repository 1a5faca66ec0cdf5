/* fuzz_agent_proto.c — libFuzzer target: the agent protocol.  The input is a
 * byte stream as it arrives on the channel; it is framed with the same loop
 * the host and the agent use (parse, resync on error) and every payload is
 * handed to its decoder (file requests are encoded again once decoded:
 * what the decoder accepts, the encoder must accept; a SET_NETWORK payload
 * the decoder accepts encodes back to the same bytes). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* FS_DIRENTS: walk every entry; FS_REPLY: every reply shape it could be */
static void decode_fs(const struct ap_frame *f)
{
    static struct ap_fs_req req;
    struct ap_fs_attr a;
    struct ap_fs_statfs st;
    char name[AP_FS_NAME_MAX + 1], msg[AP_FS_MSG_MAX + 1];
    static char path[AP_FS_PATH_MAX + 1];
    const char *why;
    size_t off = 0;
    int err;

    switch (f->type) {
    case AP_FS:
        if (ap_fs_req_decode(f->payload, f->len, &req, &why) == 0) {
            uint8_t *p;
            size_t n;
            /* a decoded request encodes again */
            if (ap_fs_req_encode(&req, &p, &n) == 0)
                free(p);
            else
                __builtin_trap();
        }
        break;
    case AP_FS_REPLY:
        ap_fs_attr_decode(f->payload, f->len, &a);
        if (f->len == AP_FS_OPEN_REPLY_LEN)
            ap_fs_attr_decode(f->payload + 4, AP_FS_ATTR_LEN, &a);
        ap_fs_statfs_decode(f->payload, f->len, &st);
        ap_fs_path_decode(f->payload, f->len, path);
        break;
    case AP_FS_ERRNO:
        ap_fs_errno_decode(f->payload, f->len, &err, msg);
        break;
    case AP_FS_DIRENTS:
        while (ap_fs_dirent_next(f->payload, f->len, &off, name, &a) > 0)
            ;
        break;
    default:
        break;
    }
}

/* SET_NETWORK: decode, and an accepted payload is canonical */
static void decode_net(const struct ap_frame *f)
{
    struct ap_net n;
    uint8_t again[AP_NET_LEN];

    if (ap_net_decode(f->payload, f->len, &n) < 0)
        return;
    ap_net_encode(&n, again);
    if (f->len != AP_NET_LEN || memcmp(again, f->payload, AP_NET_LEN) != 0)
        __builtin_trap();
}

static void decode_payload(const struct ap_frame *f)
{
    struct ap_hello h;
    struct ap_exit x;
    struct ap_exec_req r;
    uint32_t v32;
    uint64_t v64;
    uint16_t rows, cols;

    switch (f->type) {
    case AP_HELLO:
    case AP_HELLO_ACK:
        ap_hello_decode(f->payload, f->len, &h);
        break;
    case AP_EXEC:
        if (ap_exec_req_decode(f->payload, f->len, &r) == 0)
            ap_exec_req_free(&r);
        break;
    case AP_EXIT:
        ap_exit_decode(f->payload, f->len, &x);
        break;
    case AP_STARTED:
    case AP_KILL:
    case AP_WINDOW:
    case AP_OUT_ACK:
        ap_u32_decode(f->payload, f->len, &v32);
        break;
    case AP_SET_TIME:
        ap_u64_decode(f->payload, f->len, &v64);
        break;
    case AP_RESIZE:
        ap_resize_decode(f->payload, f->len, &rows, &cols);
        break;
    case AP_SET_NETWORK:
        decode_net(f);
        break;
    default:
        decode_fs(f);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;

    while (off < size) {
        struct ap_frame f;
        int used = ap_frame_parse(data + off, size - off, &f);
        if (used == 0)
            break;
        if (used < 0) {
            size_t skip = ap_resync(data + off, size - off);
            off += skip ? skip : 1;
            continue;
        }
        decode_payload(&f);
        off += (size_t)used;
    }
    return 0;
}
