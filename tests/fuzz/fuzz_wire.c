/* fuzz_wire.c — libFuzzer target: every JSON request decoder of the API
 * (the first byte picks the decoder, the rest is the HTTP body). */
#include <stdint.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_object *o = NULL;
    struct nerr e = {0};

    if (size < 1)
        return 0;
    if (wire_parse_value((const char *)data + 1, size - 1, &o, &e) < 0)
        return 0;
    switch (data[0] % 6) {
    case 0: {
        struct wire_create_req r = {0};
        wire_create_req_decode(o, &r, &e);
        wire_create_req_free(&r);
        break;
    }
    case 1: {
        struct wire_exec_req r = {0};
        wire_exec_req_decode(o, &r, &e);
        wire_exec_req_free(&r);
        break;
    }
    case 2: {
        struct wire_checkpoint_req r = {0};
        wire_checkpoint_req_decode(o, &r, &e);
        wire_checkpoint_req_free(&r);
        break;
    }
    case 3: {
        struct wire_restore_req r = {0};
        wire_restore_req_decode(o, &r, &e);
        wire_restore_req_free(&r);
        break;
    }
    case 4: {
        /* what clients decode from a server */
        struct wire_exec_result r = {0};
        wire_exec_result_decode(o, &r, &e);
        wire_exec_result_free(&r);
        break;
    }
    default: {
        struct wire_vm_info r = {0};
        wire_vm_info_decode(o, &r, &e);
        wire_vm_info_free(&r);
        break;
    }
    }
    json_object_put(o);
    return 0;
}
