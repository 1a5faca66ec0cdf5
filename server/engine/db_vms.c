/* db_vms.c — the vms table (see db.h).  Every query is scoped by user_id
 * except the *_all helper used by reconcile at start. */
#include <errno.h>
#include <string.h>

#include "db-internal.h"

#define VM_COLS                                                                                    \
    "id, user_id, name, pid, cpus, mem_mib, state, created_at, vmm, instance_id, restored_from, "     \
    "ram_backing, ram_path, pending_instance_id, nic, net_tap, net_ip, net_gateway, net_mac, "      \
    "net_prefix"

static void row_to_vm(sqlite3_stmt *st, void *out)
{
    struct db_vm *v = out;

    v->id = sqlite3_column_int64(st, 0);
    db_copy_text(st, 1, v->user_id, sizeof(v->user_id));
    db_copy_text(st, 2, v->name, sizeof(v->name));
    v->pid = sqlite3_column_int64(st, 3);
    v->cpus = sqlite3_column_int64(st, 4);
    v->mem_mib = sqlite3_column_int64(st, 5);
    db_copy_text(st, 6, v->phase, sizeof(v->phase));
    db_copy_text(st, 7, v->created_at, sizeof(v->created_at));
    db_copy_text(st, 8, v->vmm, sizeof(v->vmm));
    db_copy_text(st, 9, v->instance_id, sizeof(v->instance_id));
    db_copy_text(st, 10, v->restored_from, sizeof(v->restored_from));
    db_copy_text(st, 11, v->ram_backing, sizeof(v->ram_backing));
    db_copy_text(st, 12, v->ram_path, sizeof(v->ram_path));
    db_copy_text(st, 13, v->pending_instance_id, sizeof(v->pending_instance_id));
    v->nic = sqlite3_column_int(st, 14) != 0;
    db_copy_text(st, 15, v->net.tap, sizeof(v->net.tap));
    db_copy_text(st, 16, v->net.ip, sizeof(v->net.ip));
    db_copy_text(st, 17, v->net.gateway, sizeof(v->net.gateway));
    db_copy_text(st, 18, v->net.mac, sizeof(v->net.mac));
    v->net.prefix = sqlite3_column_int(st, 19);
}

int db_vm_insert(struct db *db, struct db_vm *vm)
{
    sqlite3_stmt *st;
    int r = -EIO;

    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, ST_VM_INSERT,
                 "INSERT INTO vms (user_id, name, pid, cpus, mem_mib, state, created_at, vmm, "
                 "instance_id, restored_from, ram_backing, ram_path, pending_instance_id, nic) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, vm->user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, vm->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, vm->pid);
    sqlite3_bind_int64(st, 4, vm->cpus);
    sqlite3_bind_int64(st, 5, vm->mem_mib);
    sqlite3_bind_text(st, 6, vm->phase, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, vm->created_at, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, vm->vmm, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, vm->instance_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, vm->restored_from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, vm->ram_backing, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, vm->ram_path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 13, vm->pending_instance_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 14, vm->nic);
    r = db_step_done(db, st);
    if (r == 0)
        vm->id = sqlite3_last_insert_rowid(db->h);
out:
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}

int db_vm_get(struct db *db, const char *user_id, const char *name, struct db_vm *ret)
{
    sqlite3_stmt *st;
    int r = -EIO;

    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, ST_VM_GET, "SELECT " VM_COLS " FROM vms WHERE user_id = ? AND name = ?");
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    r = db_fetch_one(st, row_to_vm, ret);
out:
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}

static int list_rows(struct db *db, enum db_stmt_id id, const char *sql, const char *user_id,
                     struct db_vm **ret, size_t *ret_n)
{
    sqlite3_stmt *st;
    int r = -EIO;

    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, id, sql);
    if (st) {
        if (user_id)
            sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
        r = db_collect(st, sizeof(**ret), row_to_vm, (void **)ret, ret_n);
    }
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}

int db_vm_list(struct db *db, const char *user_id, struct db_vm **ret, size_t *ret_n)
{
    return list_rows(db, ST_VM_LIST, "SELECT " VM_COLS " FROM vms WHERE user_id = ? ORDER BY name",
                     user_id, ret, ret_n);
}

int db_vm_list_all(struct db *db, struct db_vm **ret, size_t *ret_n)
{
    return list_rows(db, ST_VM_LIST_ALL, "SELECT " VM_COLS " FROM vms ORDER BY id", NULL, ret,
                     ret_n);
}

int db_vm_count(struct db *db, const char *user_id, size_t *ret)
{
    sqlite3_stmt *st;
    int r = -EIO;

    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, ST_VM_COUNT, "SELECT count(*) FROM vms WHERE user_id = ?");
    if (!st)
        goto out;
    sqlite3_bind_text(st, 1, user_id, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *ret = (size_t)sqlite3_column_int64(st, 0);
        r = 0;
    }
out:
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}

int db_vm_save_runtime(struct db *db, const struct db_vm *vm)
{
    sqlite3_stmt *st;
    int r = -EIO;

    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, ST_VM_SET_RUNTIME,
                 "UPDATE vms SET pid = ?, instance_id = ?, state = ?, restored_from = ?, "
                 "ram_backing = ?, ram_path = ?, pending_instance_id = ?, nic = ?, net_tap = ?, "
                 "net_ip = ?, net_gateway = ?, net_mac = ?, net_prefix = ? WHERE id = ?");
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, vm->pid);
    sqlite3_bind_text(st, 2, vm->instance_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, vm->phase, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, vm->restored_from, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, vm->ram_backing, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, vm->ram_path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, vm->pending_instance_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, vm->nic);
    sqlite3_bind_text(st, 9, vm->net.tap, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 10, vm->net.ip, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 11, vm->net.gateway, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, vm->net.mac, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 13, vm->net.prefix);
    sqlite3_bind_int64(st, 14, vm->id);
    r = db_step_done(db, st);
out:
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}

int db_vm_delete(struct db *db, int64_t vm_id)
{
    sqlite3_stmt *st;
    int r = -EIO;

    pthread_mutex_lock(&db->lock);
    st = db_stmt(db, ST_VM_DELETE, "DELETE FROM vms WHERE id = ?");
    if (!st)
        goto out;
    sqlite3_bind_int64(st, 1, vm_id);
    r = db_step_done(db, st);
out:
    db_stmt_done(st);
    pthread_mutex_unlock(&db->lock);
    return r;
}
