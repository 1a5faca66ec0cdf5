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
    free(cps);
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
    tcase_add_test(t, newer_schema_is_refused);
    tcase_add_test(t, users_and_scoping);
    suite_add_tcase(s, t);
    return s;
}
