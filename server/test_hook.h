/* test_hook.h — named points where a test can freeze the server, to kill it
 * -9 at exactly that moment and check what a restart makes of it (crash
 * consistency tests, issue 7).
 *
 * Only test builds have them (meson option `tests`, on by default; builds
 * for production use -Dtests=false).  In a test build, when the environment
 * variable NOID_TEST_HOOK names a point (a comma-separated list may name
 * several), the thread that reaches it logs "test hook: holding at POINT"
 * and sleeps until the process is killed.  Without the variable a hook is a
 * string comparison; in other builds it compiles to nothing. */
#pragma once

#ifdef NOID_TEST_HOOKS
void test_hook(const char *point);
#else
static inline void test_hook(const char *point)
{
    (void)point;
}
#endif
