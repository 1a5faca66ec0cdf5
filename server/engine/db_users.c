/* db_users.c — the users table (see db.h). */
#include <errno.h>
#include <string.h>

#include "db-internal.h"

#define USER_COLS "id, name, token_hash, created_at"

static void row_to_user(sqlite3_stmt *st, void *out)
{
    struct db_user *u = out;

    db_copy_text(st, 0, u->id, sizeof(u->id));
    db_copy_text(st, 1, u->name, sizeof(u->name));
    db_copy_text(st, 2, u->token_hash, sizeof(u->token_hash));
    db_copy_text(st, 3, u->created_at, sizeof(u->created_at));
}

int db_user_insert(struct db *db, const struct db_user *u)
{
    sqlite3_stmt *st;
    char lookup[TOKEN_LOOKUP_LEN + 1];
    int r = -EIO;

    snprintf(lookup, sizeof(lookup), "%s", u->token_hash);
    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, ST_USER_INSERT,
                 "INSERT INTO users (id, name, token_hash, token_lookup, created_at) "
                 "VALUES (?, ?, ?, ?, ?)");
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, u->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, u->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, u->token_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, lookup, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, u->created_at, -1, SQLITE_STATIC);
    r = db_step_done(db, st);
out:
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}

static int get_one(struct db *db, enum db_stmt_id id, const char *sql, const char *arg,
                   struct db_user *ret)
{
    sqlite3_stmt *st;
    int r = -EIO;

    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, id, sql);
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
    r = db_fetch_one(st, row_to_user, ret);
out:
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}

int db_user_get_by_name(struct db *db, const char *name, struct db_user *ret)
{
    return get_one(db, ST_USER_BY_NAME, "SELECT " USER_COLS " FROM users WHERE name = ?", name,
                   ret);
}

int db_user_get_by_token_lookup(struct db *db, const char *lookup, struct db_user *ret)
{
    static const char sql[] = "SELECT " USER_COLS " FROM users WHERE token_lookup = ?";
    struct db_reader *rd = db_reader_get(db);
    int r = -EIO;

    if (!rd)
        return get_one(db, ST_USER_BY_LOOKUP, sql, lookup, ret);
    if (!rd->by_lookup &&
        sqlite3_prepare_v3(rd->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &rd->by_lookup, NULL) !=
            SQLITE_OK)
        return -EIO;
    sqlite3_bind_text(rd->by_lookup, 1, lookup, -1, SQLITE_STATIC);
    r = db_fetch_one(rd->by_lookup, row_to_user, ret);
    sqlite3_reset(rd->by_lookup);
    sqlite3_clear_bindings(rd->by_lookup);
    return r;
}

int db_user_set_token_hash(struct db *db, const char *user_id, const char *token_hash)
{
    sqlite3_stmt *st;
    char lookup[TOKEN_LOOKUP_LEN + 1];
    int r = -EIO;

    snprintf(lookup, sizeof(lookup), "%s", token_hash);
    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, ST_USER_SET_TOKEN,
                 "UPDATE users SET token_hash = ?, token_lookup = ? WHERE id = ?");
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, token_hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, lookup, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, user_id, -1, SQLITE_STATIC);
    r = db_step_done(db, st);
out:
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}

int db_user_delete(struct db *db, const char *user_id)
{
    sqlite3_stmt *st;
    int r = -EIO;

    pthread_mutex_lock(&db->lock);
    /* vms and checkpoints go with the user through ON DELETE CASCADE */
    st = db_stmt(db, ST_USER_DELETE, "DELETE FROM users WHERE id = ?");
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    r = db_step_done(db, st);
out:
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}

int db_user_list(struct db *db, struct db_user **ret, size_t *ret_n)
{
    sqlite3_stmt *st;
    int r = -EIO;

    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, ST_USER_LIST, "SELECT " USER_COLS " FROM users ORDER BY created_at, name");
    if (st)
        r = db_collect(st, sizeof(**ret), row_to_user, (void **)ret, ret_n);
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}
