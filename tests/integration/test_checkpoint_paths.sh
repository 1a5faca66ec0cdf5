#!/usr/bin/env bash
# test_checkpoint_paths.sh — every checkpoint restores, however its VM was
# started (issue 7 §1), on the path users take: the default config (golden
# on), the golden snapshot waited for, the default guest.  For each kind of
# VM — created from golden, cold-booted, a clone, a clone of a clone, a VM
# restored in place — a file written before the checkpoint is back after a
# restore in place and in a clone, and one written after it is gone.  Also:
# across a server restart; checkpoints of the older (v2) format keep
# restoring, including the kind whose restore failed before; rows of an
# older server learn their RAM backing from the live VMM; a data_dir spelt
# with a trailing slash changes nothing; a restore QEMU refuses says why
# (QEMU's own words) and keeps the failed attempt's logs.
. "$(dirname "$0")/lib.sh"
it_setup
require_guest

write_config vm
# a trailing slash must not change where guest RAM lives (it once did, and
# checkpoints then "succeeded" without any RAM in them)
sed -i "s|^data_dir = .*|data_dir = \"$T/data/\"|" "$T/server.toml"
start_as_users_do

mark() { noid exec "$1" -- sh -c "echo $2 > /root/mark"; }
expect_mark() { # vm value what
    assert_eq "$2" "$(noid exec "$1" -- cat /root/mark)" "$3"
}
# cycle VM TAG: checkpoint VM between two marks, then restore it as a clone
# and in place; both must show the mark of before the checkpoint.  Sets CP.
cycle() {
    local vm=$1 tag=$2
    mark "$vm" "$tag-before"
    CP=$(noid checkpoint "$vm" 2>/dev/null)
    [[ "$CP" =~ ^[0-9a-f]{16}$ ]] || fail "$tag: checkpoint id '$CP'"
    assert_eq "file|1|mem" "$(q "select mem_format, ignore_shared, ram_block from checkpoints where id='$CP'")" \
        "$tag: how the checkpoint was saved (memory file, x-ignore-shared, block mem)"
    mark "$vm" "$tag-after"
    noid restore "$vm" "$CP" --as "$tag-clone" > /dev/null || fail "$tag: clone of the checkpoint"
    expect_mark "$tag-clone" "$tag-before" "$tag: clone has the state of the checkpoint"
    noid restore "$vm" "$CP" > /dev/null || fail "$tag: restore in place"
    expect_mark "$vm" "$tag-before" "$tag: restored in place to the checkpoint"
    assert_eq "$CP" "$(noid info "$vm" --json | json_get restored_from)" "$tag: restored_from"
}

# ---- a VM created from the golden snapshot (the most common flow) ----
noid create g > /dev/null
assert_eq golden "$(noid info g --json | json_get restored_from)" "g comes from golden"
assert_eq private "$(q "select ram_backing from vms where name='g'")" "golden VM maps the template privately"
mark g g-before
CPG=$(noid checkpoint g 2>/dev/null)
pause=$(noid checkpoints g --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["pause_ms"])')
[ "$pause" -gt 0 ] || fail "pause_ms of a golden VM's checkpoint: $pause"
grep -q "checkpoint $CPG (private, memory file)" "$T/server.log" || fail "golden VM checkpoint not saved with a memory file"
[ -s "$(ls -d "$T"/data/storage/users/*/checkpoints/g/"$CPG")/memory.snap" ] || fail "no memory.snap in the checkpoint"
mark g g-after
noid restore g "$CPG" --as copy > /dev/null
expect_mark copy g-before "clone of a golden VM's checkpoint"
noid restore g "$CPG" > /dev/null
expect_mark g g-before "golden VM restored in place"
assert_eq shared "$(q "select ram_backing from vms where name='g'")" "restored in place: a RAM file of its own"
assert_eq private "$(q "select ram_backing from vms where name='copy'")" "clone: the checkpoint's memory, copy-on-write"
ok "golden VM: checkpoint (memory file, pause ${pause} ms), clone and restore in place"

# ---- every other way a VM can have started ----
noid create cold --mem 320 > /dev/null # another size than the template: a cold boot
assert_eq "" "$(noid info cold --json | json_get restored_from)" "cold boot"
assert_eq shared "$(q "select ram_backing from vms where name='cold'")" "cold VM has a RAM file"
cycle cold cold
ok "cold-booted VM"
cycle copy clone          # a clone (of the golden VM's checkpoint)
ok "clone"
cycle clone-clone cc      # a clone of a clone
ok "clone of a clone"
cycle g inplace           # g was restored in place above
ok "VM restored in place"
[ "$(noid exec g -- sh -c 'echo alive')" = alive ] || fail "g after its cycles"

# ---- across a server restart ----
mark g restart-before
CPR=$(noid checkpoint g 2>/dev/null)
mark copy restart-before
CPC=$(noid checkpoint copy 2>/dev/null)
mark g restart-after
mark copy restart-after
stop_server
start_server
cli_login "$A"
noid restore g "$CPR" > /dev/null
expect_mark g restart-before "restore in place after a restart"
noid restore copy "$CPC" --as after-restart > /dev/null
expect_mark after-restart restart-before "clone after a restart"
ok "checkpoints restore across a server restart"

# ---- checkpoints and VMs of an older server (schema v2) ----
uid=$(q "select id from users where name='alice'")
cps="$T/data/storage/users/$uid/checkpoints"
# (1) the kind v2 took of a golden VM: RAM inside the state, saved with
# x-ignore-shared on — the one whose restore failed with "QMP: read:
# Connection reset by peer".  Made by hand the way v2 made it.
noid create old > /dev/null
assert_eq golden "$(noid info old --json | json_get restored_from)" "old comes from golden"
mark old legacy-before
vmdir="$T/data/storage/users/$uid/vms/old"
LEG=0123456789abcdef
mkdir -p "$cps/old/$LEG"
/usr/bin/python3 "$IT_DIR/qmp_save.py" "$vmdir" "$cps/old/$LEG/vmstate.snap" --ignore-shared
cp --sparse=always "$vmdir/rootfs.ext4" "$cps/old/$LEG/rootfs.ext4"
old_id=$(q "select id from vms where name='old'")
# (the state comes from a VM of this server, which has a NIC: the row says
# so, as a v4 server would have written it; a real v2 state has none)
q "insert into checkpoints (id, vm_id, user_id, label, created_at, pause_ms, size_bytes, cpus, mem_mib, vmm, nic)
   values ('$LEG', $old_id, '$uid', 'v2', '2026-01-01T00:00:00Z', 700, 0, 1, 256, 'qemu', 1)"
# (2) a v2 checkpoint with a memory file: take one now and forget its format
mark g legacy-file-before
CPF=$(noid checkpoint g 2>/dev/null)
q "update checkpoints set mem_format = NULL where id='$CPF'"
# (3) a VM row of v2: no RAM backing recorded
q "update vms set ram_backing = '', ram_path = '' where name='g'"
mark old legacy-after
mark g legacy-after
stop_server
start_server
cli_login "$A"
assert_eq "stream|1|mem" "$(q "select mem_format, ignore_shared, ram_block from checkpoints where id='$LEG'")" \
    "v2 checkpoint with RAM in its state: format filled in at start"
assert_eq "file|1|mem" "$(q "select mem_format, ignore_shared, ram_block from checkpoints where id='$CPF'")" \
    "v2 checkpoint with a memory file: format filled in at start"
[ "$(q "select ram_backing from vms where name='g'")" = shared ] || fail "v2 VM row did not learn its RAM backing"
[ -n "$(q "select ram_path from vms where name='g'")" ] || fail "v2 VM row: no RAM path learnt"
noid restore old "$LEG" --as legacy-clone > /dev/null
expect_mark legacy-clone legacy-before "clone of a v2 checkpoint with RAM in its state"
noid restore old "$LEG" > /dev/null
expect_mark old legacy-before "restore in place of a v2 checkpoint with RAM in its state"
assert_eq anon "$(q "select ram_backing from vms where name='old'")" "RAM from the state: anonymous memory"
noid restore g "$CPF" > /dev/null
expect_mark g legacy-file-before "restore of a v2 checkpoint with a memory file"
cycle old fromstream # a VM restored from RAM-in-state checkpoints a memory file again
ok "v2 checkpoints (both kinds) and v2 VM rows work after the upgrade"

# ---- a restore QEMU refuses says why, and its logs are kept ----
mark g broken-before
CPX=$(noid checkpoint g 2>/dev/null)
state="$cps/g/$CPX/vmstate.snap"
chmod u+w "$state" 2>/dev/null || true
size=$(stat -c %s "$state")
truncate -s $((size / 2)) "$state"
http POST /v1/vms/g/restore "$A" "{\"checkpoint_id\":\"$CPX\",\"new_name\":\"broken\"}"
[ "$HTTP_STATUS" -ge 500 ] || fail "restore of a truncated state: HTTP $HTTP_STATUS"
assert_contains "$HTTP_BODY" "QEMU could not load the saved state" "error names the load"
assert_contains "$HTTP_BODY" "qemu-system-x86_64:" "error quotes QEMU's own log"
assert_not_contains "$HTTP_BODY" "Connection reset by peer" "not just a broken QMP connection"
grep -q "QEMU could not load the saved state" "$T/server.log" || fail "the reason is not in the server log"
kept=$(ls -d "$T"/data/failed/*-broken-restore 2>/dev/null | head -n1)
[ -n "$kept" ] && [ -s "$kept/vmm.log" ] && [ -s "$kept/error.txt" ] || fail "failed attempt's logs not kept in data/failed"
grep -q "qemu-system-x86_64" "$kept/vmm.log" || fail "kept vmm.log lacks QEMU's message"
http GET /v1/vms/broken "$A"
assert_eq 404 "$HTTP_STATUS" "no VM left by the failed clone"
expect_mark g broken-before "source VM unaffected"
ok "a refused restore reports QEMU's reason and keeps the attempt's logs in data/failed/"

# ---- nothing left behind ----
find "$T/data/storage" -name '.*' | grep -q . && fail "dot-named work files left: $(find "$T/data/storage" -name '.*')"
it_done
