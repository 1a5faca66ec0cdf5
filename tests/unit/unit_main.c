/* unit_main.c — runs the Check suites named on the command line (all if none). */
#include <stdio.h>
#include <string.h>

#include "unit.h"

static const struct {
    const char *name;
    Suite *(*make)(void);
} suites[] = {
    {"agent_net", suite_agent_net},
    {"agent_proto", suite_agent_proto},
    {"buf", suite_buf},
    {"client_login", suite_client_login},
    {"config", suite_config},
    {"console_log", suite_console_log},
    {"db", suite_db},
    {"encoding", suite_encoding},
    {"fsutil", suite_fsutil},
    {"guestfs_path", suite_guestfs_path},
    {"http_range", suite_http_range},
    {"kvfile", suite_kvfile},
    {"metrics", suite_metrics},
    {"names", suite_names},
    {"netd_client", suite_netd_client},
    {"netd_request", suite_netd_request},
    {"noidfs_rest", suite_noidfs_rest},
    {"prom_text", suite_prom_text},
    {"timeutil", suite_timeutil},
    {"ratelimit", suite_ratelimit},
    {"routes", suite_routes},
    {"rtnl", suite_rtnl},
    {"textutil", suite_textutil},
    {"token", suite_token},
    {"wire", suite_wire},
    {"ws", suite_ws},
};

int main(int argc, char **argv)
{
    SRunner *sr = NULL;
    int failed;

    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
        bool wanted = argc < 2;
        for (int a = 1; a < argc; a++)
            wanted = wanted || strcmp(argv[a], suites[i].name) == 0;
        if (!wanted)
            continue;
        if (!sr)
            sr = srunner_create(suites[i].make());
        else
            srunner_add_suite(sr, suites[i].make());
    }
    if (!sr) {
        fprintf(stderr, "unknown suite\n");
        return 2;
    }
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
