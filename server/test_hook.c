/* test_hook.c — see test_hook.h. */
#include "test_hook.h"

#ifdef NOID_TEST_HOOKS
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static bool named(const char *list, const char *point)
{
    size_t n = strlen(point);

    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, point, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

void test_hook(const char *point)
{
    const char *list = getenv("NOID_TEST_HOOK");

    if (!list || !named(list, point))
        return;
    log_warn("test hook: holding at %s", point);
    for (;;)
        pause();
}
#endif
