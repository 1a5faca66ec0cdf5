#!/usr/bin/env bash
# test_golden_provision.sh — `noid-server golden provision -- COMMAND...`:
# the provisioning flow in one command.  Output streamed after "==>" lines,
# the new golden snapshot used by creates (also of a server that ran all
# along), a failing or timed-out command leaving the snapshot as it was,
# Ctrl-C / SIGTERM stopping cleanly (also before the first command), one
# provisioning at a time, what a killed one left swept by the next
# provisioning or the server's next start, usage errors; never a temporary
# VM, checkpoint, user row or directory left behind.
. "$(dirname "$0")/lib.sh"
it_setup
require_guest

write_config vm 'golden = true'
PROVISION=("$SERVER_BIN" golden provision --config "$T/server.toml")
provision() { "${PROVISION[@]}" "$@"; }
# sha256 of every file of the golden snapshot
golden_sums() { (cd "$T/data/golden" && sha256sum -- *); }
# nothing of a provisioning left: no hidden user, no VM or checkpoint rows
# but the test's own, no storage but alice's, no build directory
assert_clean() { # what
    assert_eq 0 "$(q "SELECT count(*) FROM users WHERE name = '(golden-provision)'")" "$1: hidden user row"
    assert_eq 0 "$(q "SELECT count(*) FROM vms WHERE user_id NOT IN (SELECT id FROM users WHERE name = 'alice')")" "$1: temporary VM row"
    assert_eq 0 "$(q "SELECT count(*) FROM checkpoints")" "$1: checkpoint row"
    local d alice
    alice=$(q "SELECT id FROM users WHERE name = 'alice'")
    for d in $(cd "$T/data/storage/users" && ls -A); do
        assert_eq "$alice" "$d" "$1: user storage dirs"
    done
    [ -z "$(cd "$T/data" && ls -d golden.build-* 2> /dev/null)" ] || fail "$1: golden build dir left"
}
A=$(add_user alice)

# ---- usage ----
rc=0; out=$(provision 'echo x' 2>&1) || rc=$?
assert_eq 2 "$rc" "no '--'"
assert_contains "$out" "after '--'" "no '--' message"
rc=0; out=$(provision -- 2>&1) || rc=$?
assert_eq 2 "$rc" "no commands"
assert_contains "$out" "no commands" "no commands message"
rc=0; "$SERVER_BIN" golden build --config "$T/server.toml" -- true 2> /dev/null || rc=$?
assert_eq 2 "$rc" "commands given to golden build"
rc=0; provision --timeout 0 -- true 2> /dev/null || rc=$?
assert_eq 2 "$rc" "--timeout 0"
"$SERVER_BIN" golden --help | grep -q 'golden provision' || fail "golden --help lacks provision"
ok "usage errors exit 2"

# ---- provisioning without a server: the golden snapshot is built first ----
"${PROVISION[@]}" -- 'echo out-1; echo err-1 >&2; echo one > /root/marker1' \
    'echo early; sleep 8; echo late; echo two > /root/marker2' > "$T/p1.out" 2> "$T/p1.err" &
P=$!
for _ in $(seq 1 1800); do
    grep -q '^early$' "$T/p1.out" && break
    kill -0 "$P" 2> /dev/null || break
    sleep 0.1
done
grep -q '^early$' "$T/p1.out" || fail "no output of the second command while it ran: $(cat "$T/p1.out" "$T/p1.err")"
# the command sleeps between its two lines: its first line came as it was written
grep -q '^late$' "$T/p1.out" && fail "output came only at the end of the command"
rc=0; wait "$P" || rc=$?
assert_eq 0 "$rc" "provisioning exit status ($(cat "$T/p1.err"))"
expected=$(printf '%s\n' '==> echo out-1; echo err-1 >&2; echo one > /root/marker1' out-1 \
    '==> echo early; sleep 8; echo late; echo two > /root/marker2' early late 'golden snapshot ready')
assert_eq "$expected" "$(cat "$T/p1.out")" "stdout: ==> lines, each command's output, ready"
grep -qx 'err-1' "$T/p1.err" || fail "the command's stderr is not on stderr: $(cat "$T/p1.err")"
grep -q 'golden: building a snapshot (missing)' "$T/p1.err" || fail "the missing snapshot was not built first"
assert_contains "$(json_get source < "$T/data/golden/config.json")" "checkpoint:" "golden snapshot is the promoted checkpoint"
assert_clean "after a provisioning"
"$SERVER_BIN" list-users --config "$T/server.toml" > "$T/users.txt"
assert_not_contains "$(cat "$T/users.txt")" "golden-provision" "list-users"
ok "provision: output streamed after ==> lines, snapshot promoted, nothing left"

start_server
cli_login "$A"
wait_golden "$A"
noid create v1 > /dev/null
assert_eq golden "$(noid info v1 --json | json_get restored_from)" "VM from the provisioned snapshot"
assert_eq "one two" "$(noid exec v1 -- sh -c 'echo $(cat /root/marker1 /root/marker2)')" "markers in a new VM"
ok "a VM created afterwards starts from the provisioned snapshot"

# ---- a failing command: the snapshot is unchanged (server running) ----
before=$(golden_sums)
rc=0
provision -- 'echo bad > /root/marker-bad' 'echo failing; exit 3' 'echo never' > "$T/p2.out" 2> "$T/p2.err" || rc=$?
assert_eq 1 "$rc" "exit status of a failed provisioning"
assert_contains "$(cat "$T/p2.err")" "command 2 of 3 failed with exit status 3: echo failing; exit 3" "the failing command is named"
assert_contains "$(cat "$T/p2.err")" "the golden snapshot is unchanged" "failure says the snapshot is unchanged"
assert_not_contains "$(cat "$T/p2.out")" "never" "commands after the failing one do not run"
assert_not_contains "$(cat "$T/p2.out")" "golden snapshot ready" "no ready line"
assert_eq "$before" "$(golden_sums)" "golden files after a failed provisioning"
noid create v2 > /dev/null
assert_eq golden "$(noid info v2 --json | json_get restored_from)" "VM after a failed provisioning"
rc=0; noid exec v2 -- test -e /root/marker-bad || rc=$?
assert_eq 1 "$rc" "the failed provisioning's first command left nothing in the snapshot"
assert_eq one "$(noid exec v2 -- cat /root/marker1)" "the earlier provisioning is still there"
assert_clean "after a failed provisioning"
ok "a failing command: exit 1 naming it, snapshot unchanged, nothing left"

rc=0; provision --timeout 2 -- 'sleep 60' > /dev/null 2> "$T/p3.err" || rc=$?
assert_eq 1 "$rc" "exit status of a timed-out command"
assert_contains "$(cat "$T/p3.err")" "command 1 of 1 timed out after 2 s: sleep 60" "timeout named"
assert_eq "$before" "$(golden_sums)" "golden files after a timeout"
assert_clean "after a timeout"
ok "--timeout: a command running longer fails the provisioning"

# ---- Ctrl-C and SIGTERM; one provisioning at a time; a killed one swept ----
for sig in INT TERM; do
    # run directly (not in a subshell): $P is the provisioning's own pid
    "${PROVISION[@]}" -- 'echo started; sleep 300' > "$T/p4.out" 2> "$T/p4.err" &
    P=$!
    for _ in $(seq 1 1800); do
        grep -q '^started$' "$T/p4.out" && break
        kill -0 "$P" 2> /dev/null || break
        sleep 0.1
    done
    grep -q '^started$' "$T/p4.out" || fail "provisioning did not start its command: $(cat "$T/p4.err")"
    if [ "$sig" = INT ]; then
        # meanwhile: the hidden owner exists, nobody sees it, a second run is refused
        assert_eq 1 "$(q "SELECT count(*) FROM users WHERE name = '(golden-provision)'")" "hidden user during the run"
        assert_not_contains "$("$SERVER_BIN" list-users --config "$T/server.toml")" "golden-provision" "list-users during a run"
        rc=0; out=$(provision -- true 2>&1) || rc=$?
        assert_eq 1 "$rc" "a second provisioning at once"
        assert_contains "$out" "another golden provision (pid $P) runs" "second provisioning message"
    fi
    kill -"$sig" "$P"
    rc=0; wait "$P" || rc=$?
    [ "$sig" = INT ] && want=130 || want=143
    assert_eq "$want" "$rc" "exit status on SIG$sig"
    assert_contains "$(cat "$T/p4.err")" "interrupted (SIG$sig); the golden snapshot is unchanged" "SIG$sig message"
    assert_contains "$(cat "$T/p4.err")" "golden provision: stopping after the current step" "SIG$sig noticed at once"
    assert_eq "$before" "$(golden_sums)" "golden files after SIG$sig"
    assert_clean "after SIG$sig"
done
ok "SIGINT/SIGTERM: 130/143, VM removed, snapshot unchanged; one provisioning at a time"

# A provisioning killed with -9 (a second Ctrl-C is the same) while its
# command runs: its VM stays, QEMU running, under the hidden owner.
# Sets LEFT_PID (that QEMU).
kill_provisioning() {
    "${PROVISION[@]}" -- 'echo started; sleep 300' > "$T/p5.out" 2> /dev/null &
    P=$!
    for _ in $(seq 1 1800); do
        grep -q '^started$' "$T/p5.out" && break
        kill -0 "$P" 2> /dev/null || break
        sleep 0.1
    done
    grep -q '^started$' "$T/p5.out" || fail "provisioning did not start its command"
    kill -KILL "$P"
    wait "$P" 2> /dev/null || true
    assert_eq 1 "$(q "SELECT count(*) FROM vms WHERE user_id IN (SELECT id FROM users WHERE name = '(golden-provision)')")" "a killed provisioning leaves its VM"
    LEFT_PID=$(q "SELECT pid FROM vms WHERE user_id IN (SELECT id FROM users WHERE name = '(golden-provision)')")
    proc_alive "$LEFT_PID" || fail "the killed provisioning's VMM (pid $LEFT_PID) does not run"
}

# the next provisioning sweeps it first; a Ctrl-C then (before its VM
# started: right after the sweep) stops it before any command runs
kill_provisioning
"${PROVISION[@]}" -- 'echo never' > "$T/p7.out" 2> "$T/p7.err" &
P=$!
for _ in $(seq 1 1800); do
    grep -q 'removing what an interrupted provisioning left' "$T/p7.err" && break
    kill -0 "$P" 2> /dev/null || break
    sleep 0.1
done
grep -q 'removing what an interrupted provisioning left' "$T/p7.err" || fail "the killed provisioning was not swept: $(cat "$T/p7.err")"
kill -INT "$P"
rc=0; wait "$P" || rc=$?
assert_eq 130 "$rc" "exit status on SIGINT before the first command"
assert_contains "$(cat "$T/p7.err")" "golden provision: stopping after the current step (Ctrl-C again" "SIGINT noticed at once"
assert_contains "$(cat "$T/p7.err")" "interrupted (SIGINT); the golden snapshot is unchanged" "SIGINT message before the first command"
assert_not_contains "$(cat "$T/p7.out")" "==>" "no command started after SIGINT during the start"
proc_alive "$LEFT_PID" && fail "the swept provisioning's VMM (pid $LEFT_PID) still runs"
assert_eq "$before" "$(golden_sums)" "golden files after SIGINT during the start"
assert_clean "after sweeping a killed provisioning and a SIGINT during the start"
ok "a killed provisioning is swept by the next; SIGINT during its start stops it before any command"

# the server's start sweeps it when no provisioning runs
kill_provisioning
stop_server
start_server
cli_login "$A" # a new port
proc_alive "$LEFT_PID" && fail "the killed provisioning's VMM (pid $LEFT_PID) still runs after the server's start"
grep -q 'removing what an interrupted provisioning left' "$T/server.log" || fail "the server's start did not say it swept the killed provisioning"
assert_clean "after a server start swept a killed provisioning"
assert_eq running "$(vm_state v1)" "the users' VMs run on across the server's restart"
ok "a killed provisioning is swept by the server's next start"

# ---- provisioning while the server runs: its next create uses the result ----
provision -- 'echo three > /root/marker3' > "$T/p6.out" 2> "$T/p6.err"
assert_contains "$(cat "$T/p6.out")" "golden snapshot ready" "provisioning beside the server"
assert_clean "after a provisioning beside the server"
[ -z "$(pgrep -f -- "$T/data/storage/users/[0-9a-f]*/vms/provision")" ] || fail "a provisioning's VMM still runs"
noid create v3 > /dev/null
assert_eq golden "$(noid info v3 --json | json_get restored_from)" "VM of the running server after provisioning"
assert_eq "one two three" "$(noid exec v3 -- sh -c 'echo $(cat /root/marker1 /root/marker2 /root/marker3)')" \
    "the running server's next create has the new provisioning (on top of the earlier one)"
assert_eq running "$(vm_state v1)" "VMs of the older snapshot run on"
ok "the running server uses the new snapshot at its next create"

# ---- Ctrl-C during the golden build that comes first: it stops there ----
# (an initrd at another path: the snapshot is stale, the provisioning
# rebuilds it, which takes long enough for the signal to land in the build)
cp "$GUEST_DIR/initrd.cpio" "$T/initrd-moved.cpio"
sed "s|^initrd = .*|initrd = \"$T/initrd-moved.cpio\"|" "$T/server.toml" > "$T/moved.toml"
"$SERVER_BIN" golden provision --config "$T/moved.toml" -- 'echo never' > "$T/p8.out" 2> "$T/p8.err" &
P=$!
for _ in $(seq 1 1800); do
    grep -q 'golden: rebuilding the snapshot' "$T/p8.err" && break
    kill -0 "$P" 2> /dev/null || break
    sleep 0.1
done
grep -q 'golden: rebuilding the snapshot (initrd changed)' "$T/p8.err" || fail "no rebuild of the stale snapshot: $(cat "$T/p8.err")"
kill -INT "$P"
rc=0; wait "$P" || rc=$?
assert_eq 130 "$rc" "exit status on SIGINT during the build"
assert_contains "$(cat "$T/p8.err")" "interrupted (SIGINT); the golden snapshot is unchanged" "SIGINT message during the build"
assert_not_contains "$(cat "$T/p8.err")" "started from the golden snapshot" "no VM started after SIGINT during the build"
assert_not_contains "$(cat "$T/p8.out")" "==>" "no command run after SIGINT during the build"
[ -z "$(pgrep -f -- "$T/data/golden.build-")" ] || fail "the build's template VM still runs"
assert_clean "after SIGINT during the build"
ok "SIGINT during the golden build: no VM started, nothing left"
it_done
