#!/usr/bin/env bash
# test_checkpoint.sh MODE — issue 4 on real VMs, with storage on a
# loop-mounted btrfs image (MODE=btrfs: subvolumes, snapshots, reflinks) or a
# plain directory (MODE=plain: copies).  A counter loop survives a
# checkpoint; restore in place rewinds files; clones are independent and get
# their own randomness; the clock is right after a restore; ids by prefix;
# bad input; destroy and remove-user clean up.
. "$(dirname "$0")/lib.sh"
MODE=${1:?usage: test_checkpoint.sh btrfs|plain}
it_setup
require_guest

extra=('golden = false')
if [ "$MODE" = btrfs ]; then
    require_root
    extra+=('btrfs_image = "storage.img"' 'btrfs_image_size_mib = 4096')
fi
write_config vm "${extra[@]}"
A=$(add_user alice)
start_server
cli_login "$A"
fstype=$(stat -f -c %T "$T/data/storage")
if [ "$MODE" = btrfs ]; then
    assert_eq btrfs "$fstype" "storage file system"
    grep -q 'storage: mounted btrfs image' "$T/server.log" || fail "no mount message in the log"
else
    [ "$fstype" != btrfs ] || fail "plain mode on btrfs"
fi
uid=$(sqlite3 "$T/data/noid.db" "select id from users where name='alice'")
CPS="$T/data/storage/users/$uid/checkpoints"

noid create vm1 > /dev/null
[ "$MODE" != btrfs ] || btrfs subvolume show "$T/data/storage/users/$uid/vms/vm1" > /dev/null ||
    fail "VM dir is not a subvolume"
# the counter is renamed into place: a reader never sees it half-written
noid exec vm1 -- sh -c '(i=0; while :; do i=$((i+1)); echo $i > /root/counter.new; mv /root/counter.new /root/counter; sleep 0.05; done) > /dev/null 2>&1 &'
noid exec vm1 -- sh -c 'echo one > /root/a'
CP1=$(noid checkpoint vm1 --label first 2>/dev/null)
CP1_HOST_TIME=$(date +%s)
[[ "$CP1" =~ ^[0-9a-f]{16}$ ]] || fail "checkpoint id: $CP1"
json=$(noid checkpoints vm1 --json)
assert_eq first "$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["label"])')" "label listed"
pause=$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["pause_ms"])')
[ "$pause" -gt 0 ] || fail "pause_ms: $pause"
[ -f "$CPS/vm1/$CP1/rootfs.ext4" ] && [ -f "$CPS/vm1/$CP1/vmstate.snap" ] || fail "checkpoint files"
[ "$MODE" != btrfs ] || [ "$(btrfs property get -ts "$CPS/vm1/$CP1" ro)" = "ro=true" ] ||
    fail "checkpoint is not a read-only snapshot"
c1=$(noid exec vm1 -- cat /root/counter)
sleep 0.5
c2=$(noid exec vm1 -- cat /root/counter)
[ "$c2" -gt "$c1" ] || fail "counter loop stopped after the checkpoint ($c1 -> $c2)"
ok "checkpoint: files, label, pause_ms; a counter loop keeps running across it"

# ---- restore in place rewinds ----
noid exec vm1 -- sh -c 'echo two > /root/b; rm /root/a'
CP2=$(noid checkpoint vm1 --label second 2>/dev/null)
noid exec vm1 -- sh -c 'echo three > /root/c'
noid restore vm1 "${CP1:0:8}" > /dev/null
assert_eq one "$(noid exec vm1 -- cat /root/a)" "file of before the checkpoint is back"
rc=0; noid exec vm1 -- test -e /root/b || rc=$?
assert_eq 1 "$rc" "file written after the checkpoint is gone"
c3=$(noid exec vm1 -- cat /root/counter)
sleep 0.5
c4=$(noid exec vm1 -- cat /root/counter)
[ "$c4" -gt "$c3" ] || fail "counter loop not running after restore ($c3 -> $c4)"
assert_eq "$CP1" "$(noid info vm1 --json | json_get restored_from)" "restored_from"
noid restore vm1 "$CP2" > /dev/null
assert_eq two "$(noid exec vm1 -- cat /root/b)" "restore to the second checkpoint"
rc=0; noid exec vm1 -- test -e /root/c || rc=$?
assert_eq 1 "$rc" "later file gone after restoring the second checkpoint"
ok "restore in place rewinds files; the restored VM runs on"

# ---- clones ----
noid restore vm1 "$CP2" --as clone1 > /dev/null
noid restore vm1 "$CP2" --as clone2 > /dev/null
assert_eq two "$(noid exec clone1 -- cat /root/b)" "clone has the checkpoint's files"
noid exec clone1 -- sh -c 'echo mine > /root/only-clone1'
noid exec vm1 -- sh -c 'echo mine > /root/only-vm1'
for vm in vm1 clone2; do
    rc=0; noid exec $vm -- test -e /root/only-clone1 || rc=$?
    assert_eq 1 "$rc" "clone1's write seen in $vm"
done
rc=0; noid exec clone1 -- test -e /root/only-vm1 || rc=$?
assert_eq 1 "$rc" "vm1's write seen in clone1"
r1=$(noid exec clone1 -- sh -c 'head -c 32 /dev/urandom | od -An -tx1')
r2=$(noid exec clone2 -- sh -c 'head -c 32 /dev/urandom | od -An -tx1')
[ -n "$r1" ] && [ "$r1" != "$r2" ] || fail "two clones read the same random bytes: $r1"
assert_eq "$CP2" "$(noid info clone1 --json | json_get restored_from)" "clone restored_from"
[ "$(sqlite3 "$T/data/noid.db" "select count(*) from vms where name like 'clone%'")" = 2 ] ||
    fail "clone rows"
ok "clones: own disk (writes not shared), own random state"

# ---- a restore that fails leaves the VM as it was ----
if [ "$MODE" = plain ]; then
    CPX=$(noid checkpoint vm1 --label broken 2>/dev/null)
    noid exec vm1 -- sh -c 'echo survivor > /root/after-broken'
    : > "$CPS/vm1/$CPX/vmstate.snap" # a checkpoint whose saved state is gone
    http POST /v1/vms/vm1/restore "$A" "{\"checkpoint_id\":\"$CPX\"}"
    [ "$HTTP_STATUS" -ge 500 ] || fail "restore of a broken checkpoint gave HTTP $HTTP_STATUS"
    assert_eq running "$(vm_state vm1)" "VM after a failed restore"
    assert_eq survivor "$(noid exec vm1 -- cat /root/after-broken)" "the VM kept its state"
    c5=$(noid exec vm1 -- cat /root/counter)
    sleep 0.3
    [ "$(noid exec vm1 -- cat /root/counter)" -gt "$c5" ] || fail "VM paused after a failed restore"
    find "$T/data/storage" -name '.restoring-*' -o -name '.replaced-*' | grep -q . &&
        fail "restore left its work directories"
    noid checkpoint-rm vm1 "$CPX" > /dev/null
    ok "a failed restore changes nothing: the VM runs on with its state"
fi

# ---- the clock after restoring an old checkpoint ----
while [ $(( $(date +%s) - CP1_HOST_TIME )) -lt 5 ]; do sleep 1; done # the checkpoint must be stale
noid restore vm1 "$CP1" > /dev/null
guest=$(noid exec vm1 -- date +%s)
host=$(date +%s)
skew=$(( host - guest ))
[ "${skew#-}" -le 2 ] || fail "guest clock off by $skew s after restoring a checkpoint taken $((host - CP1_HOST_TIME)) s earlier"
ok "guest clock within 2 s of the host after restoring a $((host - CP1_HOST_TIME)) s old checkpoint"

# ---- ids, prefixes, bad input ----
http POST /v1/vms/vm1/restore "$A" '{"checkpoint_id":"ffffffffffffffff"}'
[ "$HTTP_STATUS" = 404 ] || { [[ "$CP1$CP2" == *ffffffffffffffff* ]] || fail "unknown id: $HTTP_STATUS"; }
http POST /v1/vms/vm1/restore "$A" '{"checkpoint_id":"XYZ"}'
assert_eq 400 "$HTTP_STATUS" "non-hex id"
http POST /v1/vms/vm1/restore "$A" "{\"checkpoint_id\":\"$CP1\",\"new_name\":\"clone1\"}"
assert_eq 409 "$HTTP_STATUS" "restore onto an existing new_name"
http POST /v1/vms/vm1/restore "$A" "{\"checkpoint_id\":\"$CP1\",\"new_name\":\"../x\"}"
assert_eq 400 "$HTTP_STATUS" "invalid new_name"
http POST /v1/vms/vm1/checkpoints "$A" '{"label":"bell\u0007"}'
assert_eq 400 "$HTTP_STATUS" "label with a control character"
assert_contains "$HTTP_BODY" "control character" "label message"
http POST /v1/vms/vm1/checkpoints "$A" '{"label":"x","bogus":1}'
assert_eq 400 "$HTTP_STATUS" "unknown field"
http POST /v1/vms/ghost/checkpoints "$A" '{}'
assert_eq 404 "$HTTP_STATUS" "checkpoint of a missing VM"
# make two ids share a first digit, then use that digit as a prefix
for _ in $(seq 1 17); do
    dup=$(checkpoint_ids vm1 | cut -c1 | sort | uniq -d | head -n1)
    [ -n "$dup" ] && break
    noid checkpoint vm1 > /dev/null 2>&1
done
[ -n "$dup" ] || fail "no shared prefix after 17 checkpoints"
http POST /v1/vms/vm1/restore "$A" "{\"checkpoint_id\":\"$dup\"}"
assert_eq 409 "$HTTP_STATUS" "ambiguous prefix"
assert_contains "$HTTP_BODY" "ambiguous" "ambiguous message"
for id in $(checkpoint_ids vm1 | grep "^$dup"); do
    assert_contains "$HTTP_BODY" "$id" "candidate $id named"
done
victim=$(checkpoint_ids vm1 | grep "^$dup" | head -n1)
noid checkpoint-rm vm1 "${victim:0:10}" > /dev/null
checkpoint_ids vm1 | grep -q "$victim" && fail "deleted checkpoint still listed"
[ ! -e "$CPS/vm1/$victim" ] || fail "deleted checkpoint left files"
ok "ids by unique prefix; unknown 404, ambiguous 409 with candidates, bad labels/names 400"

# ---- nothing half-written anywhere; destroy and remove-user clean up ----
find "$T/data/storage" -name '.tmp-*' | grep -q . && fail "temporary checkpoint left behind"
noid destroy vm1 > /dev/null
[ ! -e "$CPS/vm1" ] || fail "destroy left checkpoints"
assert_eq 0 "$(sqlite3 "$T/data/noid.db" "select count(*) from checkpoints where user_id='$uid' and vm_id not in (select id from vms)")" "orphan checkpoint rows"
assert_eq running "$(vm_state clone1)" "clone outlives its source VM"
noid checkpoint clone1 --label c > /dev/null 2>&1
"$SERVER_BIN" remove-user alice --config "$T/server.toml" > /dev/null
[ ! -e "$T/data/storage/users/$uid" ] || fail "remove-user left storage"
assert_eq 0 "$(sqlite3 "$T/data/noid.db" "select count(*) from checkpoints")" "checkpoint rows after remove-user"
ok "destroy and remove-user remove checkpoints and their storage"
it_done
