/* test_config.c — server.toml: the seed file, defaults, every kind of error. */
#include <string.h>

#include "config.h"
#include "unit.h"

/* The seed's server.toml (from the administrator's guide), verbatim. */
static const char seed[] = "# Required\n"
                           "kernel = \"/path/to/vmlinux.bin\"\n"
                           "rootfs = \"/path/to/rootfs.ext4\"\n"
                           "\n"
                           "# Optional (these are the defaults)\n"
                           "# listen = \"0.0.0.0:7654\"\n"
                           "# max_ws_sessions = 32\n"
                           "# trust_forwarded_for = false\n"
                           "# exec_timeout_secs = 30\n"
                           "# console_timeout_secs = 3600\n";

START_TEST(seed_file_and_defaults)
{
    struct server_config c;
    struct nerr e = {0};

    ck_assert_int_eq(server_config_init(&c), 0);
    ck_assert_int_eq(server_config_load_string(&c, "server.toml", seed, &e), 0);
    ck_assert_str_eq(c.kernel, "/path/to/vmlinux.bin");
    ck_assert_str_eq(c.rootfs, "/path/to/rootfs.ext4");
    ck_assert_str_eq(c.listen, "0.0.0.0:7654");
    ck_assert_int_eq(c.max_ws_sessions, 32);
    ck_assert(!c.trust_forwarded_for);
    ck_assert_int_eq(c.exec_timeout_secs, 30);
    ck_assert_int_eq(c.console_timeout_secs, 3600);
    ck_assert_int_eq(c.max_exec_output_bytes, 1024 * 1024);
    ck_assert_str_eq(c.vmm, "auto");
    ck_assert_ptr_nonnull(strstr(c.data_dir, "/.noid"));
    char where[128];
    server_config_where(&c, "rootfs", where, sizeof(where));
    ck_assert_str_eq(where, "server.toml:3");
    server_config_free(&c);
}
END_TEST

START_TEST(all_keys_set)
{
    struct server_config c;
    struct nerr e = {0};
    const char *text = "kernel = \"/k\"\nrootfs = \"/r\"\ninitrd = \"/i\"\n"
                       "listen = \"127.0.0.1:0\"\nmax_ws_sessions = 5\n"
                       "trust_forwarded_for = true\nexec_timeout_secs = 7\n"
                       "console_timeout_secs = 9\ndata_dir = \"/tmp/x\"\nvmm = \"qemu\"\n"
                       "accel = \"tcg\"\nmax_vms_per_user = 3\ngolden = false\n";

    server_config_init(&c);
    ck_assert_int_eq(server_config_load_string(&c, "f", text, &e), 0);
    ck_assert_str_eq(c.listen, "127.0.0.1:0");
    ck_assert(c.trust_forwarded_for);
    ck_assert_int_eq(c.exec_timeout_secs, 7);
    ck_assert_str_eq(c.data_dir, "/tmp/x");
    ck_assert_str_eq(c.vmm, "qemu");
    ck_assert_int_eq(c.max_vms_per_user, 3);
    ck_assert(!c.golden);
    server_config_free(&c);
}
END_TEST

static void expect_error(const char *text, const char *msg)
{
    struct server_config c;
    struct nerr e = {0};

    server_config_init(&c);
    ck_assert_msg(server_config_load_string(&c, "s.toml", text, &e) == -EINVAL,
                  "no error for <%s>", text);
    if (!strstr(e.msg, msg))
        ck_abort_msg("expected \"%s\" in \"%s\"", msg, e.msg);
    server_config_free(&c);
}

START_TEST(errors)
{
    expect_error("kernel = \"/k\"\nrootfs = \"/r\"\nbogus = 1\n", "s.toml:3: unknown key 'bogus'");
    expect_error("rootfs = \"/r\"\n", "s.toml:1: missing required key 'kernel'");
    expect_error("kernel = \"/k\"\n\n", "missing required key 'rootfs'");
    expect_error("kernel = \"/k\"\nrootfs = \"/r\"\nexec_timeout_secs = \"30\"\n",
                 "s.toml:3: exec_timeout_secs: expected an integer");
    expect_error("kernel = \"/k\"\nrootfs = \"/r\"\nexec_timeout_secs = 0\n",
                 "s.toml:3: exec_timeout_secs: 0 is out of range");
    expect_error("kernel = \"/k\"\nrootfs = \"/r\"\ntrust_forwarded_for = yes\n",
                 "s.toml:3: trust_forwarded_for: expected true or false");
    expect_error("kernel = /k\nrootfs = \"/r\"\n", "s.toml:1: kernel: expected a quoted string");
    expect_error("kernel = \"/k\"\nrootfs = \"/r\"\nvmm = \"kvmtool\"\n",
                 "s.toml:3: vmm: 'kvmtool' is not one of auto, qemu, firecracker");
    expect_error("kernel = \"\"\nrootfs = \"/r\"\n", "s.toml:1: kernel: path must not be empty");
    expect_error("kernel = \"/k\"\nrootfs = \"/r\"\n[server]\n", "sections are not supported");
    expect_error("kernel = \"/k\"\nkernel = \"/k2\"\nrootfs = \"/r\"\n",
                 "s.toml:2: duplicate key 'kernel'");
    expect_error("kernel = \"/k\"\nrootfs = \"/r\"\ndefault_cpus = 8\nmax_cpus = 4\n",
                 "default_cpus (8) is larger than max_cpus (4)");
}
END_TEST

START_TEST(noidfs_mount)
{
    struct server_config c;
    struct nerr e = {0};
    char where[128];

    /* no key: no mount */
    server_config_init(&c);
    ck_assert_int_eq(server_config_load_string(&c, "f", "kernel = \"/k\"\nrootfs = \"/r\"\n", &e),
                     0);
    ck_assert_ptr_null(c.noidfs_mount);
    server_config_free(&c);

    server_config_init(&c);
    ck_assert_int_eq(
        server_config_load_string(
            &c, "f", "kernel = \"/k\"\nrootfs = \"/r\"\nnoidfs_mount = \"/srv/noid fs\"\n", &e),
        0);
    ck_assert_str_eq(c.noidfs_mount, "/srv/noid fs");
    server_config_where(&c, "noidfs_mount", where, sizeof(where));
    ck_assert_str_eq(where, "f:3");
    server_config_free(&c);

    expect_error("kernel = \"/k\"\nrootfs = \"/r\"\nnoidfs_mount = \"mnt/noid\"\n",
                 "s.toml:3: noidfs_mount: 'mnt/noid' is not an absolute path");
    expect_error("kernel = \"/k\"\nrootfs = \"/r\"\nnoidfs_mount = \"./noid\"\n",
                 "noidfs_mount: './noid' is not an absolute path");
    expect_error("kernel = \"/k\"\nrootfs = \"/r\"\nnoidfs_mount = \"\"\n",
                 "s.toml:3: noidfs_mount: path must not be empty");
    expect_error("kernel = \"/k\"\nrootfs = \"/r\"\nnoidfs_mount = 1\n",
                 "s.toml:3: noidfs_mount: expected a quoted string");
}
END_TEST

START_TEST(metrics_listen)
{
    struct server_config c;
    struct nerr e = {0};
    char where[128];

    /* default: loopback, the port after the API's */
    server_config_init(&c);
    ck_assert_int_eq(server_config_load_string(&c, "f", "kernel = \"/k\"\nrootfs = \"/r\"\n", &e),
                     0);
    ck_assert_str_eq(c.metrics_listen, "127.0.0.1:7655");
    server_config_free(&c);

    server_config_init(&c);
    ck_assert_int_eq(
        server_config_load_string(
            &c, "f", "kernel = \"/k\"\nrootfs = \"/r\"\nmetrics_listen = \"[::1]:0\"\n", &e),
        0);
    ck_assert_str_eq(c.metrics_listen, "[::1]:0");
    server_config_where(&c, "metrics_listen", where, sizeof(where));
    ck_assert_str_eq(where, "f:3");
    server_config_free(&c);

    /* "" turns the listener off */
    server_config_init(&c);
    ck_assert_int_eq(server_config_load_string(
                         &c, "f", "kernel = \"/k\"\nrootfs = \"/r\"\nmetrics_listen = \"\"\n", &e),
                     0);
    ck_assert_str_eq(c.metrics_listen, "");
    server_config_free(&c);

    expect_error("kernel = \"/k\"\nrootfs = \"/r\"\nmetrics_listen = 7655\n",
                 "s.toml:3: metrics_listen: expected a quoted string");
    expect_error(
        "kernel = \"/k\"\nrootfs = \"/r\"\nmetrics_listen = \"a\"\nmetrics_listen = \"b\"\n",
        "s.toml:4: duplicate key 'metrics_listen'");
}
END_TEST

START_TEST(missing_file)
{
    struct server_config c;
    struct nerr e = {0};

    server_config_init(&c);
    ck_assert_int_lt(server_config_load_file(&c, "/nonexistent/server.toml", &e), 0);
    ck_assert_ptr_nonnull(strstr(e.msg, "/nonexistent/server.toml: cannot open"));
    server_config_free(&c);
}
END_TEST

Suite *suite_config(void)
{
    Suite *s = suite_create("config");
    TCase *t = tcase_create("core");

    tcase_add_test(t, seed_file_and_defaults);
    tcase_add_test(t, all_keys_set);
    tcase_add_test(t, errors);
    tcase_add_test(t, noidfs_mount);
    tcase_add_test(t, metrics_listen);
    tcase_add_test(t, missing_file);
    suite_add_tcase(s, t);
    return s;
}
