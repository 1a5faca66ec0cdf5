/* test_db.c — schema creation, the v1 -> current upgrade, scoping by user. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "db.h"
#include "fsutil.h"
#include "unit.h"

#ifndef FIXTURES_DIR
#error "FIXTURES_DIR must be defined by the build"
#endif

static char tmpdir[64];
static char dbpath[128];

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/noid-test-db-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(dbpath, sizeof(dbpath), "%s/noid.db", tmpdir);
}

static void teardown(void)
{
    rm_rf(tmpdir);
}

START_TEST(fresh_database)
{
    struct db *db = NULL;
    struct nerr e = {0};

    ck_assert_int_eq(db_open(dbpath, &db, &e), 0);
    ck_assert_int_eq(db_user_version(db), DB_SCHEMA_VERSION);
    db_close(db);
    /* reopening an up-to-date database changes nothing */
    ck_assert_int_eq(db_open(dbpath, &db, &e), 0);
    ck_assert_int_eq(db_user_version(db), DB_SCHEMA_VERSION);
    db_close(db);
}
END_TEST

START_TEST(upgrade_from_v1)
{
    sqlite3 *h;
    char *sql = NULL, *err = NULL;
    struct db *db = NULL;
    struct nerr e = {0};
    struct db_user u;
    struct db_vm vm;
    struct db_checkpoint *cps = NULL;
    size_t n = 0;

    ck_assert_int_eq(read_file(FIXTURES_DIR "/schema_v1.sql", 1 << 20, &sql, NULL), 0);
    ck_assert_int_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
    ck_assert_msg(sqlite3_exec(h, sql, NULL, NULL, &err) == SQLITE_OK, "%s", err);
    sqlite3_close(h);
    free(sql);

    ck_assert_int_eq(db_open(dbpath, &db, &e), 0);
    ck_assert_int_eq(db_user_version(db), DB_SCHEMA_VERSION);
    /* the old user can still log in: token_lookup was back-filled */
    ck_assert_int_eq(db_user_get_by_token_lookup(db, "91dcce81d8141150", &u), 0);
    ck_assert_str_eq(u.name, "alice");
    /* the old VM and checkpoint survived, with defaults for the new columns */
    ck_assert_int_eq(db_vm_get(db, "00000000000000a1", "old-vm", &vm), 0);
    ck_assert_int_eq(vm.cpus, 2);
    ck_assert_str_eq(vm.vmm, "firecracker");
    ck_assert_int_eq(db_checkpoint_list(db, "00000000000000a1", vm.id, &cps, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(cps[0].label, "before");
    ck_assert_str_eq(cps[0].vm_name, "old-vm");
    /* v3: how it was saved is unknown until the server reads its files,
     * and the VM's RAM backing until it sees the live process */
    ck_assert(!cps[0].has_format);
    ck_assert_str_eq(vm.ram_backing, "");
    ck_assert_str_eq(vm.pending_instance_id, "");
    free(cps);
    db_close(db);
}
END_TEST

START_TEST(runtime_and_checkpoint_format_round_trip)
{
    struct db *db = NULL;
    struct nerr e = {0};
    struct db_user u = {.id = "00000000000000b1", .name = "bob",
                        .token_hash = "ab", .created_at = "2026-01-01T00:00:00Z"};
    struct db_vm vm = {0}, got;
    struct db_checkpoint c = {0}, *list = NULL;
    size_t n = 0, of_user = 9, of_vm = 9;

    ck_assert_int_eq(db_open(dbpath, &db, &e), 0);
    ck_assert_int_eq(db_user_insert(db, &u), 0);
    snprintf(vm.user_id, sizeof(vm.user_id), "%s", u.id);
    snprintf(vm.name, sizeof(vm.name), "v");
    snprintf(vm.phase, sizeof(vm.phase), "%s", VM_PHASE_CREATING);
    snprintf(vm.vmm, sizeof(vm.vmm), "qemu");
    vm.cpus = 1;
    vm.mem_mib = 256;
    ck_assert_int_eq(db_vm_insert(db, &vm), 0);
    /* a VMM being started is recorded before it exists */
    snprintf(vm.pending_instance_id, sizeof(vm.pending_instance_id), "%032d", 7);
    ck_assert_int_eq(db_vm_save_runtime(db, &vm), 0);
    ck_assert_int_eq(db_vm_get(db, u.id, "v", &got), 0);
    ck_assert_str_eq(got.pending_instance_id, vm.pending_instance_id);
    vm.pid = 99;
    snprintf(vm.instance_id, sizeof(vm.instance_id), "%s", vm.pending_instance_id);
    vm.pending_instance_id[0] = 0;
    snprintf(vm.ram_backing, sizeof(vm.ram_backing), "%s", VM_RAM_PRIVATE);
    snprintf(vm.ram_path, sizeof(vm.ram_path), "/data/golden/memory.snap");
    snprintf(vm.phase, sizeof(vm.phase), "%s", VM_PHASE_READY);
    ck_assert_int_eq(db_vm_save_runtime(db, &vm), 0);
    ck_assert_int_eq(db_vm_get(db, u.id, "v", &got), 0);
    ck_assert_str_eq(got.ram_backing, VM_RAM_PRIVATE);
    ck_assert_str_eq(got.ram_path, "/data/golden/memory.snap");
    ck_assert_str_eq(got.pending_instance_id, "");
    ck_assert_int_eq(got.pid, 99);

    snprintf(c.id, sizeof(c.id), "0123456789abcdef");
    c.vm_id = vm.id;
    snprintf(c.user_id, sizeof(c.user_id), "%s", u.id);
    snprintf(c.created_at, sizeof(c.created_at), "2026-01-01T00:00:00Z");
    snprintf(c.vmm, sizeof(c.vmm), "qemu");
    snprintf(c.mem_format, sizeof(c.mem_format), "%s", CP_MEM_STREAM);
    c.ignore_shared = false;
    snprintf(c.ram_block, sizeof(c.ram_block), "%s", "");
    ck_assert_int_eq(db_checkpoint_insert(db, &c), 0);
    ck_assert_int_eq(db_checkpoint_list_all(db, &list, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert(list[0].has_format);
    ck_assert_str_eq(list[0].mem_format, CP_MEM_STREAM);
    ck_assert(!list[0].ignore_shared);
    ck_assert_str_eq(list[0].ram_block, "");
    free(list);
    ck_assert_int_eq(db_checkpoint_count(db, u.id, vm.id, &of_user, &of_vm), 0);
    ck_assert_uint_eq(of_user, 1);
    ck_assert_uint_eq(of_vm, 1);
    ck_assert_int_eq(db_checkpoint_count(db, u.id, vm.id + 1, &of_user, &of_vm), 0);
    ck_assert_uint_eq(of_user, 1);
    ck_assert_uint_eq(of_vm, 0);
    db_close(db);
}
END_TEST

START_TEST(newer_schema_is_refused)
{
    sqlite3 *h;
    struct db *db = NULL;
    struct nerr e = {0};

    ck_assert_int_eq(sqlite3_open(dbpath, &h), SQLITE_OK);
    sqlite3_exec(h, "PRAGMA user_version = 999", NULL, NULL, NULL);
    sqlite3_close(h);
    ck_assert_int_lt(db_open(dbpath, &db, &e), 0);
    ck_assert_ptr_nonnull(strstr(e.msg, "newer than this noid-server"));
}
END_TEST

START_TEST(users_and_scoping)
{
    struct db *db = NULL;
    struct db_user a = {.id = "aaaaaaaaaaaaaaaa", .name = "a", .created_at = "t"};
    struct db_user b = {.id = "bbbbbbbbbbbbbbbb", .name = "b", .created_at = "t"};
    struct db_vm va = {.user_id = "aaaaaaaaaaaaaaaa", .name = "same", .cpus = 1, .mem_mib = 256,
                       .phase = "ready", .created_at = "t", .vmm = "qemu"};
    struct db_vm vb = va, got;
    size_t count;

    memset(a.token_hash, '1', 64);
    memset(b.token_hash, '2', 64);
    memcpy(vb.user_id, "bbbbbbbbbbbbbbbb", 17);
    ck_assert_int_eq(db_open(dbpath, &db, NULL), 0);
    ck_assert_int_eq(db_user_insert(db, &a), 0);
    ck_assert_int_eq(db_user_insert(db, &b), 0);
    struct db_user dup = a;
    memcpy(dup.id, "cccccccccccccccc", 17);
    ck_assert_int_eq(db_user_insert(db, &dup), -EEXIST); /* same name */
    ck_assert_int_eq(db_vm_insert(db, &va), 0);
    ck_assert_int_eq(db_vm_insert(db, &vb), 0); /* same name, other user: fine */
    ck_assert_int_eq(db_vm_insert(db, &va), -EEXIST);
    ck_assert_int_eq(db_vm_get(db, "bbbbbbbbbbbbbbbb", "same", &got), 0);
    ck_assert_int_eq(got.id, vb.id);
    ck_assert_int_eq(db_vm_count(db, "aaaaaaaaaaaaaaaa", &count), 0);
    ck_assert_uint_eq(count, 1);
    /* deleting a user cascades to their VMs only */
    ck_assert_int_eq(db_user_delete(db, "aaaaaaaaaaaaaaaa"), 0);
    ck_assert_int_eq(db_vm_get(db, "aaaaaaaaaaaaaaaa", "same", &got), -ENOENT);
    ck_assert_int_eq(db_vm_get(db, "bbbbbbbbbbbbbbbb", "same", &got), 0);
    db_close(db);
}
END_TEST

Suite *suite_db(void)
{
    Suite *s = suite_create("db");
    TCase *t = tcase_create("core");

    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, fresh_database);
    tcase_add_test(t, upgrade_from_v1);
    tcase_add_test(t, runtime_and_checkpoint_format_round_trip);
    tcase_add_test(t, newer_schema_is_refused);
    tcase_add_test(t, users_and_scoping);
    suite_add_tcase(s, t);
    return s;
}
