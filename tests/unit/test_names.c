/* test_names.c — the validators that guard every name becoming a path. */
#include <string.h>

#include "names.h"
#include "unit.h"

START_TEST(vm_names_valid)
{
    const char *ok[] = {"a", "vm1", "A.b_c-d", "0", "x.y.z", "a--b"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_int_eq(name_vm_check(ok[i], NULL), 0);
    char max[VM_NAME_MAX + 1];
    memset(max, 'a', VM_NAME_MAX);
    max[VM_NAME_MAX] = 0;
    ck_assert_int_eq(name_vm_check(max, NULL), 0);
}
END_TEST

START_TEST(vm_names_invalid)
{
    const char *bad[] = {"", "../x", "a/b", ".", "..", ".hidden", "-x", "_x", "a b", "a\nb",
                         "é", "a\\b", "a:b", "a*"};
    struct nerr e = {0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&e, 0, sizeof(e));
        ck_assert_int_eq(name_vm_check(bad[i], &e), -EINVAL);
        ck_assert(e.msg[0] != '\0');
    }
    char long65[VM_NAME_MAX + 2];
    memset(long65, 'a', VM_NAME_MAX + 1);
    long65[VM_NAME_MAX + 1] = 0;
    memset(&e, 0, sizeof(e));
    ck_assert_int_eq(name_vm_check(long65, &e), -EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "limit is 64"));
    ck_assert_int_eq(name_vm_check(NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(user_names)
{
    ck_assert_int_eq(name_user_check("alice", NULL), 0);
    ck_assert_int_eq(name_user_check("_svc-1", NULL), 0);
    ck_assert_int_eq(name_user_check("Alice", NULL), -EINVAL);
    ck_assert_int_eq(name_user_check("1abc", NULL), -EINVAL);
    ck_assert_int_eq(name_user_check("a.b", NULL), -EINVAL);
    ck_assert_int_eq(name_user_check("", NULL), -EINVAL);
    ck_assert_int_eq(name_user_check("abcdefghijklmnopqrstuvwxyzabcdefg", NULL), -EINVAL);
}
END_TEST

static int env_check(const char *s)
{
    return name_env_entry_check(s, strlen(s), NULL);
}

START_TEST(env_entries)
{
    ck_assert_int_eq(env_check("GREETING=hello"), 0);
    ck_assert_int_eq(env_check("_X1="), 0);
    ck_assert_int_eq(env_check("A=b=c"), 0);
    ck_assert_int_eq(env_check("NOEQUALS"), -EINVAL);
    ck_assert_int_eq(env_check("=value"), -EINVAL);
    ck_assert_int_eq(env_check("1A=x"), -EINVAL);
    ck_assert_int_eq(env_check("A B=x"), -EINVAL);
    ck_assert_int_eq(env_check("A-B=x"), -EINVAL);
    ck_assert_int_eq(name_env_entry_check("A=x\0y", 5, NULL), -EINVAL);
    static char big[ENV_VALUE_MAX + 16];
    memset(big, 'v', sizeof(big) - 1);
    memcpy(big, "BIG=", 4);
    big[4 + ENV_VALUE_MAX] = 0;
    ck_assert_int_eq(env_check(big), 0);
    big[4 + ENV_VALUE_MAX] = 'v';
    big[5 + ENV_VALUE_MAX] = 0;
    ck_assert_int_eq(env_check(big), -EINVAL);
}
END_TEST

START_TEST(labels_and_ids)
{
    ck_assert_int_eq(name_label_check("before upgrade", 14, NULL), 0);
    ck_assert_int_eq(name_label_check("ünïcode", strlen("ünïcode"), NULL), 0);
    ck_assert_int_eq(name_label_check("a\tb", 3, NULL), -EINVAL);
    ck_assert_int_eq(name_label_check("a\x7f", 2, NULL), -EINVAL);
    ck_assert_int_eq(name_label_check("\xff", 1, NULL), -EINVAL);
    ck_assert_int_eq(name_label_check("", 0, NULL), -EINVAL);
    ck_assert(name_is_checkpoint_id("0123456789abcdef"));
    ck_assert(!name_is_checkpoint_id("0123456789ABCDEF"));
    ck_assert(!name_is_checkpoint_id("0123456789abcde"));
    ck_assert_int_eq(name_checkpoint_prefix_check("01a", NULL), 0);
    ck_assert_int_eq(name_checkpoint_prefix_check("", NULL), -EINVAL);
    ck_assert_int_eq(name_checkpoint_prefix_check("xyz", NULL), -EINVAL);
    ck_assert_int_eq(name_checkpoint_prefix_check("0123456789abcdef0", NULL), -EINVAL);
}
END_TEST

Suite *suite_names(void)
{
    Suite *s = suite_create("names");
    TCase *t = tcase_create("core");

    tcase_add_test(t, vm_names_valid);
    tcase_add_test(t, vm_names_invalid);
    tcase_add_test(t, user_names);
    tcase_add_test(t, env_entries);
    tcase_add_test(t, labels_and_ids);
    suite_add_tcase(s, t);
    return s;
}
