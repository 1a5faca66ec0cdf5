/* db-internal.h — what the db_*.c files share: the connection struct, the
 * statement cache and small step helpers.  Not for use outside engine/db*. */
#pragma once

#include <pthread.h>
#include <sqlite3.h>

#include "db.h"

enum db_stmt_id {
    ST_USER_INSERT,
    ST_USER_BY_NAME,
    ST_USER_BY_LOOKUP,
    ST_USER_SET_TOKEN,
    ST_USER_DELETE,
    ST_USER_LIST,
    ST_VM_INSERT,
    ST_VM_GET,
    ST_VM_LIST,
    ST_VM_LIST_ALL,
    ST_VM_COUNT,
    ST_VM_SET_RUNTIME,
    ST_VM_DELETE,
    ST_CP_INSERT,
    ST_CP_LIST,
    ST_CP_GET,
    ST_CP_DELETE,
    ST_CP_PREFIX_ALL,
    ST_CP_COUNT,
    ST_CP_SET_FORMAT,
    ST_CP_LIST_ALL,
    ST__MAX
};

struct db {
    pthread_mutex_t lock; /* protects h and stmts; never held across calls out */
    sqlite3 *h;
    sqlite3_stmt *stmts[ST__MAX];
    /* Hot read paths (token lookup on every request) use a read-only
     * connection per thread instead of h, so request threads never queue
     * on lock: WAL lets readers run beside the writer. */
    char *path;
    pthread_key_t reader_key;
};

/* This thread's read-only connection (opened on first use; closed when the
 * thread exits).  NULL on failure; callers then fall back to h + lock. */
struct db_reader {
    sqlite3 *h;
    sqlite3_stmt *by_lookup;
};
struct db_reader *db_reader_get(struct db *db);

/* Cached prepared statement for id (compiled from sql on first use). Call
 * with db->lock held; finish with db_stmt_done(). */
sqlite3_stmt *db_stmt(struct db *db, enum db_stmt_id id, const char *sql);
void db_stmt_done(sqlite3_stmt *st);
/* Step a write: 0 if it changed a row, -ENOENT if none, -EEXIST on a
 * constraint violation, -EIO otherwise. */
int db_step_done(struct db *db, sqlite3_stmt *st);
void db_copy_text(sqlite3_stmt *st, int col, char *out, size_t size);

/* Step st to the end, converting each row with row_fn into a malloc'd array
 * of elem_size elements.  Call with db->lock held and st bound. */
typedef void (*db_row_fn)(sqlite3_stmt *st, void *out);
int db_collect(sqlite3_stmt *st, size_t elem_size, db_row_fn row_fn, void **ret, size_t *ret_n);
/* Step st once: 0 and *out filled by row_fn, -ENOENT without a row, -EIO. */
int db_fetch_one(sqlite3_stmt *st, db_row_fn row_fn, void *out);
