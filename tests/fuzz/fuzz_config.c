/* fuzz_config.c — libFuzzer target: server.toml parsing (kvfile + config). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct server_config c;
    struct nerr e = {0};
    char *text;

    if (size > 64 * 1024)
        return 0;
    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0; /* files with NUL bytes are refused before parsing */
    if (server_config_init(&c) == 0) {
        server_config_load_string(&c, "fuzz.toml", text, &e);
        server_config_free(&c);
    }
    free(text);
    return 0;
}
