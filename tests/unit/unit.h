/* unit.h — the Check suites, one per module (test_<module>.c), run by
 * unit_main.c: `unit-tests SUITE` runs one, without argument all. */
#pragma once

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>

Suite *suite_agent_net(void);
Suite *suite_agent_proto(void);
Suite *suite_buf(void);
Suite *suite_client_login(void);
Suite *suite_config(void);
Suite *suite_console_log(void);
Suite *suite_db(void);
Suite *suite_encoding(void);
Suite *suite_fsutil(void);
Suite *suite_guestfs_path(void);
Suite *suite_http_range(void);
Suite *suite_kvfile(void);
Suite *suite_metrics(void);
Suite *suite_names(void);
Suite *suite_netd_client(void);
Suite *suite_netd_request(void);
Suite *suite_noidfs_rest(void);
Suite *suite_prom_text(void);
Suite *suite_timeutil(void);
Suite *suite_ratelimit(void);
Suite *suite_routes(void);
Suite *suite_rtnl(void);
Suite *suite_textutil(void);
Suite *suite_token(void);
Suite *suite_wire(void);
Suite *suite_ws(void);
