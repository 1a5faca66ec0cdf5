/* db_checkpoints.c — the checkpoints table (see db.h).  A row is inserted
 * only once the checkpoint's files are complete, so a listed checkpoint is
 * always restorable. */
#include <errno.h>
#include <string.h>

#include "db-internal.h"

#define CP_COLS                                                                                    \
    "c.id, c.vm_id, c.user_id, v.name, c.label, c.created_at, c.pause_ms, c.size_bytes, c.cpus, "  \
    "c.mem_mib, c.vmm, c.mem_format, c.ignore_shared, c.ram_block, c.nic"

static void row_to_cp(sqlite3_stmt *st, void *out)
{
    struct db_checkpoint *c = out;

    db_copy_text(st, 0, c->id, sizeof(c->id));
    c->vm_id = sqlite3_column_int64(st, 1);
    db_copy_text(st, 2, c->user_id, sizeof(c->user_id));
    db_copy_text(st, 3, c->vm_name, sizeof(c->vm_name));
    c->has_label = sqlite3_column_type(st, 4) != SQLITE_NULL;
    db_copy_text(st, 4, c->label, sizeof(c->label));
    db_copy_text(st, 5, c->created_at, sizeof(c->created_at));
    c->pause_ms = sqlite3_column_int64(st, 6);
    c->size_bytes = sqlite3_column_int64(st, 7);
    c->cpus = sqlite3_column_int64(st, 8);
    c->mem_mib = sqlite3_column_int64(st, 9);
    db_copy_text(st, 10, c->vmm, sizeof(c->vmm));
    c->has_format = sqlite3_column_type(st, 11) != SQLITE_NULL;
    db_copy_text(st, 11, c->mem_format, sizeof(c->mem_format));
    c->ignore_shared = sqlite3_column_int(st, 12) != 0;
    db_copy_text(st, 13, c->ram_block, sizeof(c->ram_block));
    c->nic = sqlite3_column_int(st, 14) != 0;
}

int db_checkpoint_insert(struct db *db, const struct db_checkpoint *c)
{
    sqlite3_stmt *st;
    int r = -EIO;

    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, ST_CP_INSERT,
                 "INSERT INTO checkpoints (id, vm_id, user_id, label, created_at, pause_ms, "
                 "size_bytes, cpus, mem_mib, vmm, mem_format, ignore_shared, ram_block, nic) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, c->vm_id);
    sqlite3_bind_text(st, 3, c->user_id, -1, SQLITE_STATIC);
    if (c->has_label)
        sqlite3_bind_text(st, 4, c->label, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_text(st, 5, c->created_at, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, c->pause_ms);
    sqlite3_bind_int64(st, 7, c->size_bytes);
    sqlite3_bind_int64(st, 8, c->cpus);
    sqlite3_bind_int64(st, 9, c->mem_mib);
    sqlite3_bind_text(st, 10, c->vmm, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, c->mem_format, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 12, c->ignore_shared);
    sqlite3_bind_text(st, 13, c->ram_block, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 14, c->nic);
    r = db_step_done(db, st);
out:
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}

/* A list query with a text parameter and an optional integer one. */
static int list_query(struct db *db, enum db_stmt_id id, const char *sql, const char *text_arg,
                      int64_t int_arg, bool has_int, struct db_checkpoint **ret, size_t *ret_n)
{
    sqlite3_stmt *st;
    int r = -EIO;

    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, id, sql);
    if (st) {
        sqlite3_bind_text(st, 1, text_arg, -1, SQLITE_STATIC);
        if (has_int)
            sqlite3_bind_int64(st, 2, int_arg);
        r = db_collect(st, sizeof(**ret), row_to_cp, (void **)ret, ret_n);
    }
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}

int db_checkpoint_list(struct db *db, const char *user_id, int64_t vm_id,
                       struct db_checkpoint **ret, size_t *ret_n)
{
    return list_query(db, ST_CP_LIST,
                      "SELECT " CP_COLS " FROM checkpoints c JOIN vms v ON v.id = c.vm_id "
                      "WHERE c.user_id = ? AND c.vm_id = ? ORDER BY c.created_at, c.rowid",
                      user_id, vm_id, true, ret, ret_n);
}

int db_checkpoint_find_prefix_all(struct db *db, const char *prefix, struct db_checkpoint **ret,
                                  size_t *ret_n)
{
    /* prefix is validated lowercase hex, so it holds no LIKE wildcards */
    return list_query(db, ST_CP_PREFIX_ALL,
                      "SELECT " CP_COLS " FROM checkpoints c JOIN vms v ON v.id = c.vm_id "
                      "WHERE c.id LIKE ? || '%' ORDER BY c.id",
                      prefix, 0, false, ret, ret_n);
}

int db_checkpoint_get(struct db *db, const char *user_id, const char *id,
                      struct db_checkpoint *ret)
{
    sqlite3_stmt *st;
    int r = -EIO;

    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, ST_CP_GET,
                 "SELECT " CP_COLS " FROM checkpoints c JOIN vms v ON v.id = c.vm_id "
                 "WHERE c.user_id = ? AND c.id = ?");
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    r = db_fetch_one(st, row_to_cp, ret);
out:
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}

int db_checkpoint_delete(struct db *db, const char *user_id, const char *id)
{
    sqlite3_stmt *st;
    int r = -EIO;

    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, ST_CP_DELETE, "DELETE FROM checkpoints WHERE user_id = ? AND id = ?");
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
    r = db_step_done(db, st);
out:
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}

int db_checkpoint_count(struct db *db, const char *user_id, int64_t vm_id, size_t *ret_user,
                        size_t *ret_vm)
{
    sqlite3_stmt *st;
    int r = -EIO;

    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, ST_CP_COUNT,
                 "SELECT count(*), coalesce(sum(vm_id = ?), 0) FROM checkpoints WHERE user_id = ?");
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, vm_id);
    sqlite3_bind_text(st, 2, user_id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *ret_user = (size_t)sqlite3_column_int64(st, 0);
        *ret_vm = (size_t)sqlite3_column_int64(st, 1);
        r = 0;
    }
out:
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}

int db_checkpoint_set_format(struct db *db, const struct db_checkpoint *c)
{
    sqlite3_stmt *st;
    int r = -EIO;

    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, ST_CP_SET_FORMAT,
                 "UPDATE checkpoints SET mem_format = ?, ignore_shared = ?, ram_block = ? "
                 "WHERE id = ?");
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, c->mem_format, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, c->ignore_shared);
    sqlite3_bind_text(st, 3, c->ram_block, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, c->id, -1, SQLITE_STATIC);
    r = db_step_done(db, st);
out:
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}

int db_checkpoint_list_all(struct db *db, struct db_checkpoint **ret, size_t *ret_n)
{
    sqlite3_stmt *st;
    int r = -EIO;

    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, ST_CP_LIST_ALL,
                 "SELECT " CP_COLS " FROM checkpoints c JOIN vms v ON v.id = c.vm_id ORDER BY c.id");
    if (st)
        r = db_collect(st, sizeof(**ret), row_to_cp, (void **)ret, ret_n);
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}
