#!/usr/bin/env bash
# test_crash.sh — kill -9 of noid-server at any point loses nothing (issue 7
# §2).  The test build's hooks (server/test_hook.h: NOID_TEST_HOOK=POINT)
# freeze the server at a named point of an operation; the test then kills
# it -9, starts it again, and checks processes, files, rows and the VM:
#   checkpoint: paused (both save forms), resumed, converting — the VM runs
#     again, nothing is listed, no work files, no helper VMM;
#   create (cold and from golden), clone, restore: no VMM, RAM file, row or
#     directory is left of the cut operation (VMMs found by the instance id
#     recorded before they started);
#   restore staged (old VM not yet paused) and restore started (old VM
#     paused, directories swapped): the old VM runs on with its state;
#   golden build: the template VM is stopped, its directory removed, the
#     snapshot rebuilt;
#   a VM whose name looks like a temporary file survives restarts.
# Default config (golden on), golden snapshot waited for.
. "$(dirname "$0")/lib.sh"
it_setup
require_guest

write_config vm
start_as_users_do
uid=$(q "select id from users where name='alice'")
VMS="$T/data/storage/users/$uid/vms"
CPS="$T/data/storage/users/$uid/checkpoints"
memdir=$(default_mem_dir)

# crash_at POINT CMD...: run CMD in the background against a server that
# holds at POINT, kill -9 the server there, start it again (no hook).
crash_at() {
    local point=$1 before bg i
    shift
    stop_server
    before=$(grep -c "test hook: holding at $point" "$T/server.log" || true)
    NOID_TEST_HOOK=$point start_server
    cli_login "$A"
    "$@" > "$T/bg.out" 2>&1 &
    bg=$!
    for i in $(seq 1 1200); do
        [ "$(grep -c "test hook: holding at $point" "$T/server.log" || true)" -gt "$before" ] && break
        kill -0 "$bg" 2>/dev/null || fail "$point: the operation ended without reaching the hook: $(cat "$T/bg.out")"
        sleep 0.1
    done
    [ "$i" -lt 1200 ] || fail "$point: hook not reached in 120 s"
    HELD_PENDING=$(q "select group_concat(pending_instance_id, ' ') from vms where pending_instance_id != ''")
    kill -KILL "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
    wait "$bg" 2>/dev/null || true
    start_server
    cli_login "$A"
}

no_process_named() { # instance-id what
    [ -z "$1" ] && return 0
    if pgrep -f -- "$1" > /dev/null; then
        fail "$2: a process with instance id $1 is still running: $(pgrep -af -- "$1")"
    fi
}
no_work_files() { # what
    local left
    left=$(find "$T/data/storage" -name '.*' 2>/dev/null)
    [ -z "$left" ] || fail "$1: work files left: $left"
}
qemu_status() { # vm -> QMP run state, asked with the benchmarks' QMP client
    /usr/bin/python3 -c 'import sys; sys.path.insert(0, sys.argv[2]); from qmp import QMP
print(QMP(sys.argv[1]).cmd("query-status")["status"])' "$VMS/$1/qmp.sock" "$IT_DIR/../bench"
}
counter_runs() { # vm what
    local c1 c2 i
    c1=$(noid exec "$1" -- cat /root/counter)
    for i in $(seq 1 100); do
        c2=$(noid exec "$1" -- cat /root/counter)
        [ "$c2" -gt "$c1" ] && return 0
        sleep 0.1
    done
    fail "$2: the VM's counter loop does not advance ($c1 -> $c2)"
}
# the counter is renamed into place: a reader never sees it half-written
start_counter() {
    noid exec "$1" -- sh -c '(i=0; while :; do i=$((i+1)); echo $i > /root/counter.new; mv /root/counter.new /root/counter; sleep 0.05; done) > /dev/null 2>&1 &'
}

noid create g > /dev/null            # from golden: RAM inside the state, then converted
noid create cold --mem 320 > /dev/null # cold boot: RAM file copied
assert_eq golden "$(noid info g --json | json_get restored_from)" "g from golden"
start_counter g
start_counter cold

# ---- checkpoints ----
for vm in g cold; do
    crash_at checkpoint-paused noid checkpoint "$vm"
    assert_eq running "$(vm_state "$vm")" "$vm after a crash while paused for a checkpoint"
    assert_eq running "$(qemu_status "$vm")" "$vm: QEMU's run state after the reconcile"
    grep -q "reconcile: VM $uid/$vm was paused by a save cut short; resumed it" "$T/server.log" ||
        fail "$vm: the reconcile did not report resuming the VM"
    counter_runs "$vm" "$vm after a crash during a checkpoint"
    assert_eq "" "$(checkpoint_ids "$vm")" "$vm: no checkpoint listed"
    [ -z "$(ls -A "$CPS/$vm" 2>/dev/null)" ] || fail "$vm: checkpoint files left: $(ls -A "$CPS/$vm")"
    no_work_files "$vm checkpoint-paused"
done
ok "crash while a VM is paused for a checkpoint: resumed, nothing listed or left"

crash_at checkpoint-resumed noid checkpoint g
counter_runs g "g after a crash after the checkpoint's pause"
assert_eq "" "$(checkpoint_ids g)" "no checkpoint listed"
[ -z "$(ls -A "$CPS/g" 2>/dev/null)" ] || fail "checkpoint files left: $(ls -A "$CPS/g")"
crash_at convert-helper-started noid checkpoint g
helper=$(grep -o 'stopping VMM pid [0-9]* (noid-[0-9a-f]*)' "$T/server.log" | tail -n1)
[ -n "$helper" ] || fail "the reconcile did not stop the conversion's helper VMM"
no_process_named "$(printf '%s' "$helper" | grep -o '[0-9a-f]\{32\}')" "conversion helper"
counter_runs g "g after a crash during the conversion"
assert_eq "" "$(checkpoint_ids g)" "no checkpoint listed after a crash during the conversion"
no_work_files "convert-helper-started"
ok "crash after the pause and during the conversion: nothing listed or left, helper VMM stopped"

# ---- creates and clones ----
# Each cut operation recorded the pending instance id of its VMM before
# starting it (vm_start_and_wait), and the row keeps it until the operation
# ends (vm_new_end), after every hook below: an empty list is a bug, not a
# reason to check less.
check_no_trace() { # name what
    [ -n "$HELD_PENDING" ] || fail "$2: no pending instance id recorded during a create"
    assert_eq 0 "$(q "select count(*) from vms where name='$1'")" "$2: row"
    [ ! -e "$VMS/$1" ] || fail "$2: VM directory left"
    for id in $HELD_PENDING; do
        no_process_named "$id" "$2"
        [ ! -e "$memdir/$id.ram" ] || fail "$2: RAM file $id.ram left"
    done
    no_work_files "$2"
}
crash_at vmm-started noid create c1 --mem 320
check_no_trace c1 "cold create cut short"
crash_at vmm-started noid create c2
check_no_trace c2 "golden create cut short"
crash_at create-started noid create c3
check_no_trace c3 "create cut short after the agent answered"
noid exec g -- sh -c 'echo snap > /root/mark'
CP=$(noid checkpoint g 2>/dev/null)
crash_at clone-started noid restore g "$CP" --as c4
check_no_trace c4 "clone cut short"
for f in "$memdir"/*.ram; do
    [ -e "$f" ] || continue
    id=$(basename "$f" .ram)
    [ "$(q "select count(*) from vms where instance_id='$id' or ram_path='$f'")" = 1 ] ||
        fail "RAM file $f belongs to no VM"
done
ok "create (cold, golden) and clone cut short: no VMM, RAM file, row or directory left"

# ---- restores ----
noid exec g -- sh -c 'echo newer > /root/mark'
crash_at restore-staged noid restore g "$CP"
assert_eq newer "$(noid exec g -- cat /root/mark)" "restore cut short before the pause: VM untouched"
counter_runs g "g after a restore cut short while staging"
no_work_files "restore-staged"
pid_before=$(q "select pid from vms where name='g'")
crash_at restore-started noid restore g "$CP"
[ -n "$HELD_PENDING" ] || fail "no pending instance id recorded during a restore"
for id in $HELD_PENDING; do no_process_named "$id" "restore rolled back"; done
assert_eq "$pid_before" "$(q "select pid from vms where name='g'")" "the old VMM is still the VM's"
assert_eq ready "$(q "select state from vms where name='g'")" "phase after the roll back"
assert_eq newer "$(noid exec g -- cat /root/mark)" "restore cut short after the swap: rolled back to the running VM"
counter_runs g "g after a restore rolled back"
no_work_files "restore-started"
noid restore g "$CP" > /dev/null
assert_eq snap "$(noid exec g -- cat /root/mark)" "a restore after the roll back works"
ok "restore cut short (staging, after the swap): the old VM runs on with its state"

# ---- golden build ----
# `noid-server golden build` killed -9 while its template VM runs
stop_server
NOID_TEST_HOOK=golden-template-started "$SERVER_BIN" golden build --force --config "$T/server.toml" \
    > "$T/gb.out" 2>&1 &
gb=$!
for i in $(seq 1 1200); do
    grep -q 'test hook: holding at golden-template-started' "$T/gb.out" && break
    sleep 0.1
done
grep -q 'test hook: holding at golden-template-started' "$T/gb.out" || fail "golden build hook not reached"
kill -KILL "$gb"
wait "$gb" 2>/dev/null || true
pgrep -f -- "$T/data/golden.build-" > /dev/null || fail "no template VM to clean up (test setup)"
start_server
cli_login "$A"
pgrep -f -- "$T/data/golden.build-" > /dev/null && fail "template VM of the cut golden build still runs"
ls -d "$T"/data/golden.build-* 2>/dev/null && fail "golden build directory left"
wait_golden "$A"
noid create after-golden > /dev/null
assert_eq golden "$(noid info after-golden --json | json_get restored_from)" "golden usable after the cut build"
ok "golden build cut short: template VM stopped, directory removed, snapshot usable"

# ---- temporary names never collide with VM names ----
for name in db.partial x.tmp-1 old.replaced; do
    noid create "$name" --mem 320 > /dev/null
done
stop_server
start_server
cli_login "$A"
stop_server
start_server
cli_login "$A"
for name in db.partial x.tmp-1 old.replaced; do
    assert_eq running "$(vm_state "$name")" "VM $name after two restarts"
    [ -f "$VMS/$name/rootfs.ext4" ] || fail "VM $name lost its disk"
done
ok "VMs named like temporary files survive restarts"
it_done
