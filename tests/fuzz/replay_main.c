/* replay_main.c — runs a fuzz target over files (its corpus) without
 * libFuzzer, so every normal build replays the corpus as a regression test. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    char *data = NULL;
    size_t len = 0;

    if (read_file(path, 16 * 1024 * 1024, &data, &len) < 0) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    LLVMFuzzerTestOneInput((const uint8_t *)data, len);
    free(data);
    return 0;
}

int main(int argc, char **argv)
{
    int failures = 0, n = 0;

    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        struct dirent *de;
        if (!d) {
            failures += run_file(argv[i]);
            n++;
            continue;
        }
        while ((de = readdir(d))) {
            char *p;
            if (de->d_name[0] == '.')
                continue;
            p = path_join(argv[i], de->d_name);
            failures += run_file(p);
            free(p);
            n++;
        }
        closedir(d);
    }
    printf("replayed %d inputs\n", n);
    return failures ? 1 : 0;
}
