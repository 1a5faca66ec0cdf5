#!/usr/bin/env bash
# test_checkpoint_faults.sh — a checkpoint that fails leaves nothing behind:
# the disk filling up during a checkpoint (storage on a small ext4 loop
# image), and the VMM killed in the middle of one.  Both end with a clear
# error, no listed checkpoint and no temporary files; after a full disk the
# VM still runs.  Needs root for the loop mount.
. "$(dirname "$0")/lib.sh"
it_setup
require_guest
require_root

# ---- disk full: storage on a 1.5 GiB ext4 image (the VM's disk, the
# pool's two ready copies and a checkpoint fit; the filler takes the rest) ----
mkdir -p "$T/data/storage"
truncate -s 1500M "$T/small.img"
mkfs.ext4 -q "$T/small.img"
mount -o loop "$T/small.img" "$T/data/storage"
write_config vm 'golden = false'
A=$(add_user alice)
start_server
cli_login "$A"
uid=$(sqlite3 "$T/data/noid.db" "select id from users where name='alice'")
CPS="$T/data/storage/users/$uid/checkpoints"
noid create vm1 > /dev/null
noid exec vm1 -- dd if=/dev/zero of=/tmp/ram-in-use bs=1M count=64 status=none # guest RAM that a checkpoint must copy
avail=$(df --output=avail -B1 "$T/data/storage" | tail -n1)
fallocate -l $((avail - 24 * 1024 * 1024)) "$T/data/storage/filler"
http POST /v1/vms/vm1/checkpoints "$A" '{"label":"full"}'
assert_eq 507 "$HTTP_STATUS" "checkpoint on a full disk"
assert_contains "$HTTP_BODY" "No space left on device" "ENOSPC message"
assert_eq running "$(vm_state vm1)" "VM still running after the failed checkpoint"
assert_eq ok "$(noid exec vm1 -- echo ok)" "VM still answers"
assert_eq "" "$(checkpoint_ids vm1)" "nothing listed"
find "$T/data/storage" -name '.tmp-*' | grep -q . && fail "temporary checkpoint left behind"
find "$T/data/storage" -name '*.partial' | grep -q . && fail "partial file left behind"
assert_eq 0 "$(sqlite3 "$T/data/noid.db" 'select count(*) from checkpoints')" "no row"
rm "$T/data/storage/filler"
http POST /v1/vms/vm1/checkpoints "$A" '{"label":"room"}'
assert_eq 201 "$HTTP_STATUS" "checkpoint once there is room again"
ok "disk full during a checkpoint: 507, VM running, nothing listed, no temp files"
noid destroy vm1 > /dev/null
stop_server
umount -l "$T/data/storage" # lazy: a just-killed VMM may still be closing its files
rm -rf "$T/data"

# ---- the VMM killed during a checkpoint ----
write_config vm 'golden = false' 'max_mem_mib = 2048'
A=$(add_user alice)
start_server
cli_login "$A"
uid=$(sqlite3 "$T/data/noid.db" "select id from users where name='alice'")
CPS="$T/data/storage/users/$uid/checkpoints"
killed=""
for attempt in 1 2 3 4 5; do
    noid create "big$attempt" --mem 1024 > /dev/null
    # 400 MiB of guest RAM in use, so the checkpoint takes a while to copy it
    noid exec "big$attempt" -- dd if=/dev/zero of=/tmp/ram-in-use bs=1M count=400 status=none
    pid=$(sqlite3 "$T/data/noid.db" "select pid from vms where name='big$attempt'")
    curl -s -o "$T/cp.body" -w '%{http_code}' -X POST -H "Authorization: Bearer $A" \
        "$URL/v1/vms/big$attempt/checkpoints" > "$T/cp.status" &
    cpid=$!
    for _ in $(seq 1 2000); do
        if ls -d "$CPS/big$attempt/.tmp-"* > /dev/null 2>&1; then
            kill -9 "$pid"
            killed=$attempt
            break
        fi
        kill -0 "$cpid" 2>/dev/null || break
        sleep 0.005
    done
    wait "$cpid" || true
    [ -n "$killed" ] && break
    log "attempt $attempt: the checkpoint finished before it could be interrupted; again"
done
[ -n "$killed" ] || fail "could not catch a checkpoint in progress in 5 attempts"
status=$(cat "$T/cp.status")
[ "$status" -ge 500 ] || fail "checkpoint interrupted by kill -9 gave HTTP $status"
assert_contains "$(cat "$T/cp.body")" '"error":' "error body"
assert_eq dead "$(vm_state "big$killed")" "killed VM is dead"
assert_eq "" "$(checkpoint_ids "big$killed")" "nothing listed"
find "$T/data/storage" -name '.tmp-*' | grep -q . && fail "temporary checkpoint left behind"
find "$T/data/storage" -name '*.partial' | grep -q . && fail "partial file left behind"
assert_eq 0 "$(sqlite3 "$T/data/noid.db" "select count(*) from checkpoints c join vms v on v.id = c.vm_id where v.name = 'big$killed'")" "no row"
ok "VMM killed during a checkpoint (HTTP $status): nothing listed, no temp files"
it_done
