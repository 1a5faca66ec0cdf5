#!/usr/bin/env bash
# test_vm.sh — issue 3 end to end on real VMs (QEMU; TCG on our machines):
# create, exec (argv, env, exit codes, stderr apart, binary-safe both ways,
# stdin, timeout, truncation, concurrency), destroy, kill -9 of the VMM,
# server restart with VMs running, two users, caps, remove-user, bad input.
. "$(dirname "$0")/lib.sh"
it_setup
require_guest

write_config vm 'max_vms_per_user = 3' 'max_cpus = 2' 'max_mem_mib = 512' 'golden = false'
A=$(add_user alice)
B=$(add_user bob)
start_server
cli_login "$A"

# ---- create, exec ----
out=$(noid create vm1)
assert_contains "$out" "Created VM vm1 (running" "create output"

[ -f "$T/data/storage/users/$(sqlite3 "$T/data/noid.db" "select id from users where name='alice'")/vms/vm1/rootfs.ext4" ] || fail "rootfs copy missing"
kver=$(noid exec vm1 -- uname -r)
assert_contains "$kver" "cloud-amd64" "uname -r in the guest"
assert_eq hello "$(noid exec vm1 -e GREETING=hello -- sh -c 'echo $GREETING')" "env"
rc=0; noid exec vm1 -- false || rc=$?
assert_eq 1 "$rc" "false -> 1"
rc=0; noid exec vm1 -- sh -c 'exit 7' || rc=$?
assert_eq 7 "$rc" "exit 7"
noid exec vm1 -- sh -c 'echo to-out; echo to-err >&2' > "$T/o" 2> "$T/e"
assert_eq to-out "$(cat "$T/o")" "stdout apart"
assert_eq to-err "$(cat "$T/e")" "stderr apart"
rc=0; out=$(noid exec vm1 -- /no/such/program 2>&1) || rc=$?
assert_eq 127 "$rc" "missing program -> 127"
assert_contains "$out" "cannot run '/no/such/program'" "missing program message"
ok "create; exec: argv, env, exit codes, stdout/stderr apart, 127"

assert_eq hi "$(echo hi | noid exec vm1 -- cat)" "stdin"
head -c $((4 * 1024 * 1024)) /dev/urandom > "$T/rand"
want=$(sha256sum < "$T/rand" | cut -d' ' -f1)
got=$(noid exec vm1 -- sh -c 'cat > /tmp/rand; sha256sum /tmp/rand' < "$T/rand" | cut -d' ' -f1)
assert_eq "$want" "$got" "4 MiB of random bytes in through stdin"
# back out in 1 MiB pieces (one exec returns at most max_exec_output_bytes)
for i in 0 1 2 3; do
    noid exec vm1 -- dd if=/tmp/rand bs=1M skip=$i count=1 status=none
done > "$T/back"
assert_eq "$want" "$(sha256sum < "$T/back" | cut -d' ' -f1)" "4 MiB of random bytes out through stdout"
# the API reports non-UTF-8 output exactly, in stdout_b64
http POST /v1/vms/vm1/exec "$A" '{"command":["printf","\\377\\376A"]}'
assert_eq 200 "$HTTP_STATUS" "binary exec"
assert_contains "$HTTP_BODY" '"stdout_b64":"//5B"' "binary stdout in base64"
ok "binary-safe in and out (4 MiB, sha256 equal), stdin"

rc=0; noid exec vm1 --timeout 2 -- sh -c 'sleep 300 & sleep 301' || rc=$?
assert_eq 124 "$rc" "timeout -> 124"
left=$(noid exec vm1 -- sh -c 'ps -eo args | grep -c "sleep 30[01]" || true')
assert_eq 0 "$left" "timed-out process group is gone"
# the CLI streams (no cap: every byte arrives); the HTTP exec caps at 1 MiB
rc=0; noid exec vm1 -- head -c 3000000 /dev/zero > "$T/big" 2> "$T/err" || rc=$?
assert_eq 0 "$rc" "streamed exec exit"
assert_eq 3000000 "$(stat -c %s "$T/big")" "a streamed exec delivers all its output"
http POST /v1/vms/vm1/exec "$A" '{"command":["head","-c","1100000","/dev/zero"]}'
assert_contains "$HTTP_BODY" '"truncated":true' "truncated flag"
assert_eq 1048576 "$(json_get stdout <<< "$HTTP_BODY" | tr -d '\n' | wc -c)" "HTTP exec output capped at 1 MiB"
http POST /v1/vms/vm1/exec "$A" '{"command":["sleep","5"],"timeout_secs":31}'
assert_eq 400 "$HTTP_STATUS" "timeout above the ceiling"
ok "timeout kills the process group (124); HTTP exec output over 1 MiB is truncated, streamed is not"

pids=()
for i in $(seq 1 8); do
    ( rc=0; noid exec vm1 -- sh -c "sleep 0.$i; echo job-$i; echo err-$i >&2; exit $i" \
        > "$T/c$i.out" 2> "$T/c$i.err" || rc=$?; echo $rc > "$T/c$i.rc" ) &
    pids+=($!)
done
wait "${pids[@]}" # not a bare wait: the server is a background job too
for i in $(seq 1 8); do
    assert_eq "job-$i" "$(cat "$T/c$i.out")" "concurrent exec $i stdout"
    assert_eq "err-$i" "$(cat "$T/c$i.err")" "concurrent exec $i stderr"
    assert_eq "$i" "$(cat "$T/c$i.rc")" "concurrent exec $i exit code"
done
ok "8 concurrent execs on one VM"

# ---- server restart: the VM keeps running, exec works again ----
noid exec vm1 -- sh -c 'echo marker > /root/marker'
stop_server
start_server
cli_login "$A"
assert_eq running "$(vm_state vm1)" "state after restart"
assert_eq marker "$(noid exec vm1 -- cat /root/marker)" "exec after restart, same guest"
ok "server restart: VM still running, exec works"

# ---- two users ----
cli_login "$B"
http GET /v1/vms/vm1 "$B"
assert_eq 404 "$HTTP_STATUS" "bob cannot see alice's VM"
http POST /v1/vms/vm1/exec "$B" '{"command":["true"]}'
assert_eq 404 "$HTTP_STATUS" "bob cannot exec in alice's VM"
http DELETE /v1/vms/vm1 "$B"
assert_eq 404 "$HTTP_STATUS" "bob cannot destroy alice's VM"
noid create vm1 > /dev/null
assert_eq bob "$(noid exec vm1 -- sh -c 'echo bob > /root/who; cat /root/who')" "bob's own vm1"
assert_eq 1 "$(noid list | grep -c '^vm1 ')" "bob lists only his vm1"
ok "two users: same name allowed, other's VM is 404"

# ---- caps and bad input ----
cli_login "$A"
http POST /v1/vms "$A" '{"name":"big","cpus":3}'
assert_eq 400 "$HTTP_STATUS" "cpus over max_cpus"
assert_contains "$HTTP_BODY" "max_cpus" "cpus message names the bound"
http POST /v1/vms "$A" '{"name":"big","mem_mib":1024}'
assert_eq 400 "$HTTP_STATUS" "mem over max_mem_mib"
http POST /v1/vms "$A" '{"name":"vm1"}'
assert_eq 409 "$HTTP_STATUS" "duplicate name"
long=$(printf 'a%.0s' $(seq 65))
for body in '{"name":"../x"}' '{"name":"a/b"}' "{\"name\":\"$long\"}" '{"name":""}' \
    '{"name":"x","cpus":"2"}' '{"name":"x","memory":1}' '{"name":' '[]' '{"name":"x","cpus":1.5}'; do
    http POST /v1/vms "$A" "$body"
    assert_eq 400 "$HTTP_STATUS" "bad create body $body"
    assert_contains "$HTTP_BODY" '"error":' "error body for $body"
done
for body in '{"command":["env"],"env":["A=B=C","BAD NAME=1"]}' '{"command":["env"],"env":["X"]}' \
    '{"command":["env"],"env":["=1"]}' '{"command":"ls"}' '{"command":[]}' '{"command":["ls"],"tty":1}'; do
    http POST /v1/vms/vm1/exec "$A" "$body"
    assert_eq 400 "$HTTP_STATUS" "bad exec body $body"
done
env10k=$(python3 -c 'import json; print(json.dumps({"command":["true"],"env":["V%d=x" % i for i in range(10000)]}))')
http POST /v1/vms/vm1/exec "$A" "$env10k"
assert_eq 400 "$HTTP_STATUS" "10,000-entry env"
assert_contains "$HTTP_BODY" "limit is 64" "env bound named"
rc=0; out=$(noid exec vm1 -e 'BAD NAME=1' -- true 2>&1) || rc=$?
assert_eq 2 "$rc" "CLI refuses a bad env name"
assert_contains "$out" "invalid env name" "CLI env message"
http GET /v1/vms/..%2Fx "$A"
assert_eq 404 "$HTTP_STATUS" "encoded ../x in the path splits into segments: no such endpoint"
http GET "/v1/vms/bad%20name" "$A"
assert_eq 400 "$HTTP_STATUS" "invalid name in the path"
http DELETE "/v1/vms/.hidden" "$A"
assert_eq 400 "$HTTP_STATUS" "invalid name in the path (destroy)"
assert_eq 1 "$(noid list | grep -c running)" "nothing was created by bad input"
noid create vm2 > /dev/null
noid create vm3 > /dev/null
http POST /v1/vms "$A" '{"name":"vm4"}'
assert_eq 429 "$HTTP_STATUS" "max_vms_per_user"
assert_contains "$HTTP_BODY" "max_vms_per_user" "quota message"
ok "caps (cpus, mem, VMs per user) and bad input: clear 400/409/429, nothing created"

# ---- kill -9 of the VMM -> dead; exec on it -> 409; destroy cleans up ----
pid=$(sqlite3 "$T/data/noid.db" "select pid from vms where name='vm3'")
kill -9 "$pid"
for _ in $(seq 50); do proc_alive "$pid" || break; sleep 0.1; done
assert_eq dead "$(vm_state vm3)" "state after kill -9"
http POST /v1/vms/vm3/exec "$A" '{"command":["true"]}'
assert_eq 409 "$HTTP_STATUS" "exec on a dead VM"
assert_contains "$HTTP_BODY" "not running" "dead VM message"
uid=$(sqlite3 "$T/data/noid.db" "select id from users where name='alice'")
noid destroy vm3 > /dev/null
[ ! -e "$T/data/storage/users/$uid/vms/vm3" ] || fail "destroy left storage"
assert_eq 0 "$(sqlite3 "$T/data/noid.db" "select count(*) from vms where name='vm3' and user_id='$uid'")" "destroy left the row"
pid2=$(sqlite3 "$T/data/noid.db" "select pid from vms where name='vm2'")
noid destroy vm2 > /dev/null
sleep 0.3
proc_alive "$pid2" && fail "destroy left the VMM running"
ok "kill -9 -> dead, exec -> 409; destroy removes process, storage and row"

# ---- remove-user stops and removes the user's VMs ----
bobuid=$(sqlite3 "$T/data/noid.db" "select id from users where name='bob'")
bobpid=$(sqlite3 "$T/data/noid.db" "select pid from vms where user_id='$bobuid'")
"$SERVER_BIN" remove-user bob --config "$T/server.toml" > /dev/null
sleep 0.3
proc_alive "$bobpid" && fail "remove-user left bob's VM running"
[ ! -e "$T/data/storage/users/$bobuid" ] || fail "remove-user left bob's storage"
assert_eq 0 "$(sqlite3 "$T/data/noid.db" "select count(*) from vms where user_id='$bobuid'")" "bob's rows"
assert_eq running "$(vm_state vm1)" "alice's VM untouched"
ok "remove-user stops and removes the user's VMs and storage"
it_done
