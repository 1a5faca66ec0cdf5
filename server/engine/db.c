/* db.c — connection, pragmas and schema migrations (see db.h).
 *
 * Schema history lives in `migrations[]`: entry N-1 upgrades a database from
 * user_version N-1 to N, inside one transaction together with the version
 * bump, so an upgrade is all-or-nothing.  Entries are never edited once
 * released; new needs get a new entry.  Version 1 is the schema of the
 * original noid, so its databases upgrade in place and nobody has to delete
 * noid.db again. */
#include "db-internal.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

static const char *const migrations[] = {
    /* v1: the original noid schema */
    "CREATE TABLE users ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  token_hash TEXT NOT NULL,"
    "  created_at TEXT NOT NULL);"
    "CREATE TABLE vms ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  pid INTEGER,"
    "  socket_path TEXT,"
    "  cpus INTEGER NOT NULL,"
    "  mem_mib INTEGER NOT NULL,"
    "  state TEXT NOT NULL DEFAULT 'running',"
    "  created_at TEXT NOT NULL,"
    "  UNIQUE(user_id, name));"
    "CREATE TABLE checkpoints ("
    "  id TEXT PRIMARY KEY,"
    "  vm_id INTEGER NOT NULL REFERENCES vms(id) ON DELETE CASCADE,"
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  label TEXT,"
    "  snapshot_path TEXT,"
    "  created_at TEXT NOT NULL);",

    /* v2: token lookup prefix (constant-time auth), VMM identity of each VM,
     * checkpoint metadata needed to restore without guessing. */
    "ALTER TABLE users ADD COLUMN token_lookup TEXT NOT NULL DEFAULT '';"
    "UPDATE users SET token_lookup = substr(token_hash, 1, 16);"
    "CREATE INDEX users_by_token_lookup ON users(token_lookup);"
    "ALTER TABLE vms ADD COLUMN vmm TEXT NOT NULL DEFAULT 'firecracker';"
    "ALTER TABLE vms ADD COLUMN instance_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE vms ADD COLUMN restored_from TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE checkpoints ADD COLUMN pause_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE checkpoints ADD COLUMN size_bytes INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE checkpoints ADD COLUMN cpus INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE checkpoints ADD COLUMN mem_mib INTEGER NOT NULL DEFAULT 256;"
    "ALTER TABLE checkpoints ADD COLUMN vmm TEXT NOT NULL DEFAULT 'firecracker';"
    "CREATE INDEX checkpoints_by_vm ON checkpoints(user_id, vm_id);",

    /* v3: how a VM's RAM is backed (never guessed from which files exist),
     * the instance id of a VMM being started (so a crash in the middle of a
     * start can find and stop it), and what a checkpoint's save used, so a
     * restore replays it exactly.  Checkpoints of v2 have mem_format NULL
     * until the server fills it in from their files at start. */
    "ALTER TABLE vms ADD COLUMN ram_backing TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE vms ADD COLUMN ram_path TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE vms ADD COLUMN pending_instance_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE checkpoints ADD COLUMN mem_format TEXT;"
    "ALTER TABLE checkpoints ADD COLUMN ignore_shared INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE checkpoints ADD COLUMN ram_block TEXT NOT NULL DEFAULT 'mem';",

    /* v4: networking.  Whether a VM's VMM (and a checkpoint's saved state)
     * has a NIC, since a restore must recreate the devices it was saved
     * with; and the network noid-netd leased to the VM's current VMM. */
    "ALTER TABLE vms ADD COLUMN nic INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE vms ADD COLUMN net_tap TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE vms ADD COLUMN net_ip TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE vms ADD COLUMN net_gateway TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE vms ADD COLUMN net_mac TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE vms ADD COLUMN net_prefix INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE checkpoints ADD COLUMN nic INTEGER NOT NULL DEFAULT 0;",
};
_Static_assert(ARRAY_SIZE(migrations) == DB_SCHEMA_VERSION, "one migration per schema version");

static int exec_sql(sqlite3 *h, const char *sql, struct nerr *e)
{
    char *msg = NULL;

    if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK) {
        nerr_set(e, -EIO, "database error: %s", msg ? msg : sqlite3_errmsg(h));
        sqlite3_free(msg);
        return -EIO;
    }
    return 0;
}

static int read_user_version(sqlite3 *h, int *ret)
{
    sqlite3_stmt *st = NULL;
    int r = -EIO;

    if (sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -EIO;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *ret = sqlite3_column_int(st, 0);
        r = 0;
    }
    sqlite3_finalize(st);
    return r;
}

static int migrate(sqlite3 *h, const char *path, struct nerr *e)
{
    int version, initial, r;

    r = read_user_version(h, &version);
    initial = version;
    if (r < 0)
        return nerr_set(e, r, "%s: cannot read schema version: %s", path, sqlite3_errmsg(h));
    if (version > DB_SCHEMA_VERSION)
        return nerr_set(e, -EPROTO,
                        "%s: schema version %d is newer than this noid-server understands (%d); "
                        "upgrade noid-server",
                        path, version, DB_SCHEMA_VERSION);
    while (version < DB_SCHEMA_VERSION) {
        char bump[64];

        r = exec_sql(h, "BEGIN IMMEDIATE", e);
        if (r < 0)
            return r;
        snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", version + 1);
        r = exec_sql(h, migrations[version], e);
        if (r >= 0)
            r = exec_sql(h, bump, e);
        if (r < 0) {
            exec_sql(h, "ROLLBACK", NULL);
            nerr_prefix(e, "schema migration failed");
            return r;
        }
        r = exec_sql(h, "COMMIT", e);
        if (r < 0)
            return r;
        if (initial > 0)
            log_info("database %s upgraded from schema v%d to v%d", path, version, version + 1);
        version++;
    }
    return 0;
}

static void reader_free(void *p)
{
    struct db_reader *rd = p;

    sqlite3_finalize(rd->by_lookup);
    sqlite3_close(rd->h);
    free(rd);
}

struct db_reader *db_reader_get(struct db *db)
{
    struct db_reader *rd = pthread_getspecific(db->reader_key);

    if (rd)
        return rd;
    rd = calloc(1, sizeof(*rd));
    if (!rd)
        return NULL;
    if (sqlite3_open_v2(db->path, &rd->h, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        sqlite3_close(rd->h);
        free(rd);
        return NULL;
    }
    sqlite3_busy_timeout(rd->h, 5000);
    pthread_setspecific(db->reader_key, rd);
    return rd;
}

int db_open(const char *path, struct db **ret, struct nerr *e)
{
    struct db *db;
    int r;

    db = calloc(1, sizeof(*db));
    if (!db)
        return -ENOMEM;
    pthread_mutex_init(&db->lock, NULL);
    pthread_key_create(&db->reader_key, reader_free);
    db->path = strdup(path);
    if (!db->path) {
        r = -ENOMEM;
        goto fail;
    }
    if (sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                          SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        r = nerr_set(e, -EIO, "cannot open database %s: %s", path,
                     db->h ? sqlite3_errmsg(db->h) : "out of memory");
        goto fail;
    }
    chmod(path, 0600); /* token hashes live here */
    sqlite3_busy_timeout(db->h, 5000);
    sqlite3_extended_result_codes(db->h, 1);
    r = exec_sql(db->h,
                 "PRAGMA journal_mode = WAL;"
                 "PRAGMA synchronous = NORMAL;"
                 "PRAGMA foreign_keys = ON;",
                 e);
    if (r < 0)
        goto fail;
    r = migrate(db->h, path, e);
    if (r < 0)
        goto fail;
    *ret = db;
    return 0;
fail:
    db_close(db);
    return r;
}

void db_close(struct db *db)
{
    if (!db)
        return;
    for (size_t i = 0; i < ARRAY_SIZE(db->stmts); i++)
        sqlite3_finalize(db->stmts[i]);
    sqlite3_close(db->h);
    /* this thread's reader; other threads' readers go at their exit */
    struct db_reader *rd = pthread_getspecific(db->reader_key);
    if (rd) {
        pthread_setspecific(db->reader_key, NULL);
        reader_free(rd);
    }
    pthread_key_delete(db->reader_key);
    pthread_mutex_destroy(&db->lock);
    free(db->path);
    free(db);
}

int db_user_version(struct db *db)
{
    int v = -1;

    pthread_mutex_lock(&db->lock);
    read_user_version(db->h, &v);
    pthread_mutex_unlock(&db->lock);
    return v;
}

const char *db_errmsg(struct db *db)
{
    return sqlite3_errmsg(db->h);
}

sqlite3_stmt *db_stmt(struct db *db, enum db_stmt_id id, const char *sql)
{
    if (!db->stmts[id] &&
        sqlite3_prepare_v3(db->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &db->stmts[id], NULL) !=
            SQLITE_OK)
        return NULL;
    return db->stmts[id];
}

void db_stmt_done(sqlite3_stmt *st)
{
    if (st) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
}

int db_step_done(struct db *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    if (rc == SQLITE_DONE)
        return sqlite3_changes(db->h) > 0 ? 0 : -ENOENT;
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return -EEXIST;
    return -EIO;
}

void db_copy_text(sqlite3_stmt *st, int col, char *out, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, col);

    snprintf(out, size, "%s", t ? (const char *)t : "");
}

int db_collect(sqlite3_stmt *st, size_t elem_size, db_row_fn row_fn, void **ret, size_t *ret_n)
{
    char *list = NULL, *grown;
    size_t n = 0;
    int rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        grown = realloc(list, (n + 1) * elem_size);
        if (!grown) {
            free(list);
            return -ENOMEM;
        }
        list = grown;
        row_fn(st, list + n * elem_size);
        n++;
    }
    if (rc != SQLITE_DONE) {
        free(list);
        return -EIO;
    }
    *ret = list;
    *ret_n = n;
    return 0;
}

int db_fetch_one(sqlite3_stmt *st, db_row_fn row_fn, void *out)
{
    int rc = sqlite3_step(st);

    if (rc == SQLITE_ROW) {
        row_fn(st, out);
        return 0;
    }
    return rc == SQLITE_DONE ? -ENOENT : -EIO;
}
