/* users.c — user management on top of the users table: tokens are created
 * here, shown once, and only their SHA-256 is kept. */
#include <errno.h>
#include <openssl/crypto.h>
#include <string.h>

#include "engine-internal.h"
#include "fsutil.h"
#include "log.h"
#include "timeutil.h"

int engine_user_add(struct engine *eng, const char *name, char token_out[TOKEN_LEN + 1],
                    struct db_user *ret, struct nerr *e)
{
    struct db_user u = {0};
    char token[TOKEN_LEN + 1];
    int r;

    r = name_user_check(name, e);
    if (r < 0)
        return r;
    r = random_hex_id(u.id, DB_ID_LEN / 2);
    if (r >= 0)
        r = token_generate(token);
    if (r >= 0)
        r = token_hash(token, u.token_hash);
    if (r < 0)
        return nerr_set(e, r, "cannot generate a token: %s", strerror(-r));
    snprintf(u.name, sizeof(u.name), "%s", name);
    time_now_rfc3339(u.created_at);

    r = db_user_insert(eng->db, &u);
    if (r == -EEXIST)
        r = nerr_set(e, r, "user '%s' already exists", name);
    else if (r < 0)
        r = nerr_set(e, r, "cannot add user: %s", db_errmsg(eng->db));
    if (r >= 0) {
        memcpy(token_out, token, sizeof(token));
        if (ret)
            *ret = u;
    }
    OPENSSL_cleanse(token, sizeof(token));
    return r;
}

int engine_user_list(struct engine *eng, struct db_user **ret, size_t *ret_n, struct nerr *e)
{
    size_t kept = 0;
    int r = db_user_list(eng->db, ret, ret_n);

    if (r < 0)
        return nerr_set(e, r, "cannot list users: %s", db_errmsg(eng->db));
    /* the owner of a golden provisioning's temporary VM is nobody's to see */
    for (size_t i = 0; i < *ret_n; i++)
        if (strcmp((*ret)[i].name, ENGINE_PROVISION_USER) != 0)
            (*ret)[kept++] = (*ret)[i];
    *ret_n = kept;
    return 0;
}

int engine_user_find(struct engine *eng, const char *name, struct db_user *u, struct nerr *e)
{
    int r = name_user_check(name, e);

    if (r < 0)
        return r;
    r = db_user_get_by_name(eng->db, name, u);
    if (r == -ENOENT)
        return nerr_set(e, r, "no user named '%s'", name);
    if (r < 0)
        return nerr_set(e, r, "cannot read user '%s': %s", name, db_errmsg(eng->db));
    return 0;
}

int engine_user_rotate_token(struct engine *eng, const char *name,
                             char token_out[TOKEN_LEN + 1], struct nerr *e)
{
    struct db_user u;
    char token[TOKEN_LEN + 1], hash[TOKEN_HASH_HEX_LEN + 1];
    int r;

    r = engine_user_find(eng, name, &u, e);
    if (r < 0)
        return r;
    r = token_generate(token);
    if (r >= 0)
        r = token_hash(token, hash);
    if (r < 0)
        return nerr_set(e, r, "cannot generate a token: %s", strerror(-r));
    r = db_user_set_token_hash(eng->db, u.id, hash);
    if (r < 0)
        r = nerr_set(e, r, "cannot store the new token: %s", db_errmsg(eng->db));
    else
        memcpy(token_out, token, sizeof(token));
    OPENSSL_cleanse(token, sizeof(token));
    return r;
}

int engine_user_remove(struct engine *eng, const char *name, struct nerr *e)
{
    _cleanup_free_ char *dir = NULL;
    struct db_user u;
    int r;

    r = engine_user_find(eng, name, &u, e);
    if (r < 0)
        return r;
    /* VMs first: each destroy kills its VMM and removes its storage and row,
     * so a failure half-way leaves a consistent, retryable state. */
    r = engine_vms_destroy_all_of_user(eng, u.id, e);
    if (r < 0)
        return r;
    dir = engine_user_dir(eng, u.id);
    if (!dir)
        return -ENOMEM;
    r = storage_remove_tree(eng->storage, dir);
    if (r < 0)
        return nerr_set(e, r, "cannot remove %s: %s", dir, strerror(-r));
    r = db_user_delete(eng->db, u.id);
    if (r < 0 && r != -ENOENT)
        return nerr_set(e, r, "cannot delete user '%s': %s", name, db_errmsg(eng->db));
    return 0;
}

int engine_user_authenticate(struct engine *eng, const char *token, struct db_user *ret)
{
    char hash[TOKEN_HASH_HEX_LEN + 1], lookup[TOKEN_LOOKUP_LEN + 1];
    struct db_user u;

    if (!token_is_well_formed(token))
        return -EACCES;
    if (token_hash(token, hash) < 0)
        return -EACCES;
    snprintf(lookup, sizeof(lookup), "%s", hash);
    if (db_user_get_by_token_lookup(eng->db, lookup, &u) < 0)
        return -EACCES;
    if (!token_hash_equal(u.token_hash, hash))
        return -EACCES;
    *ret = u;
    return 0;
}
