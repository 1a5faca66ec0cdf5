#!/usr/bin/env bash
# test_stream.sh — live streams (issue 8) on the default path (embedded
# defaults, golden snapshot, default guest), driven by an independent client
# (python3-websockets, tests/integration/ws_client.py): WebSocket exec
# (streaming without timing assumptions, stderr apart, stdin and EOF, tty and
# resize, result frame and close codes, client disconnect kills the command,
# VM killed mid-stream), WebSocket console (prompt, typing, two attachments,
# destroy ends it), the pre-upgrade errors (400/401/404/409/503), frame-level
# bad input (the right close code, the server unaffected) and the console
# idle timeout.
. "$(dirname "$0")/lib.sh"
it_setup
require_guest

WS=(/usr/bin/python3 "$(dirname "$0")/ws_client.py")
# pyj EXPR: evaluate EXPR on the JSON document d read from stdin
pyj() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
wsx() { "${WS[@]}" exec "$URL" "$A" "$@"; }

write_config vm
start_as_users_do
B=$(add_user bob)
noid create box > /dev/null

# ---- exec: streaming, proven without timing: "b" is only printed once the
# client, having seen "a", creates the gate file with a second exec ----
out=$(wsx box '{"command":["sh","-c","echo a; while [ ! -e /tmp/gate ]; do sleep 0.05; done; echo b; echo err >&2; exit 3"],"stdin":false}' \
    'wait:a' 'side:{"command":["touch","/tmp/gate"],"stdin":false}')
assert_eq "[]" "$(pyj 'd["pending_steps"]' <<< "$out")" "the client saw 'a' while the command still ran"
assert_eq "a
b" "$(pyj 'd["stdout"].strip()' <<< "$out")" "stdout order"
assert_eq "err" "$(pyj 'd["stderr"].strip()' <<< "$out")" "stderr on channel 2"
assert_eq "1 1 2" "$(pyj '" ".join(str(f[0]) for f in d["frames"])' <<< "$out")" "a and b arrive in frames of their own"
assert_eq 3 "$(pyj 'd["result"]["exit_code"]' <<< "$out")" "result frame exit code"
assert_eq False "$(pyj 'd["result"]["timed_out"]' <<< "$out")" "not timed out"
assert_eq 1000 "$(pyj 'd["close_code"]' <<< "$out")" "normal close after the result"
ok "exec streams as produced; stdout/stderr apart; result frame; close 1000"

out=$(wsx box '{"command":["sh","-c","cat; echo done"]}' 'send:hello ' 'send:world' 'eof')
assert_eq "hello worlddone" "$(pyj 'd["stdout"].strip()' <<< "$out")" "stdin frames then EOF"
out=$(wsx box '{"command":["sh","-c","cat; echo rc=$?"],"stdin":false}')
assert_eq "rc=0" "$(pyj 'd["stdout"].strip()' <<< "$out")" "\"stdin\": false means /dev/null"
ok "stdin frames, empty frame = EOF, stdin:false"

out=$(wsx box '{"command":["sh","-c","stty size; read x; stty size"],"tty":true,"cols":100,"rows":30}' \
    'wait:30 100' 'resize:132:43' 'send:go
')
assert_contains "$(pyj 'd["stdout"]' <<< "$out")" "30 100" "tty size from the request"
assert_contains "$(pyj 'd["stdout"]' <<< "$out")" "43 132" "tty size after resize"
assert_eq 0 "$(pyj 'd["result"]["exit_code"]' <<< "$out")" "tty exec exit"
ok "tty: size from the request, resize frame reaches the PTY"

out=$(wsx box '{"command":["sleep","30"],"stdin":false,"timeout_secs":1}')
assert_eq "124 True" "$(pyj 'str(d["result"]["exit_code"]) + " " + str(d["result"]["timed_out"])' <<< "$out")" "timeout -> 124"
ok "timeout_secs applies: 124, timed_out"

# a client that vanishes without a close frame: its command is killed
"${WS[@]}" exec-disconnect "$URL" "$A" box '{"command":["sh","-c","echo started; exec sleep 4242"],"stdin":false}' started > /dev/null
gone=no
for _ in $(seq 1 100); do
    n=$(noid exec box -- sh -c 'ps -eo args | grep -c "[s]leep 4242" || true' 2>/dev/null || echo error)
    [ "$n" = 0 ] && { gone=yes; break; }
    sleep 0.2
done
assert_eq yes "$gone" "the command of a disconnected client is killed"
ok "client disconnect kills the guest process"

# the agent dies mid-stream (the VM lives on; init starts a new agent):
# the client gets an error frame and a close, not a hang
out=$(wsx box '{"command":["sh","-c","echo started; exec sleep 4343"],"stdin":false}' 'wait:started' \
    'side:{"command":["sh","-c","kill -9 $(pidof noid-agent)"],"stdin":false}')
assert_contains "$(pyj 'd["error"]' <<< "$out")" "agent" "an error frame names the agent"
assert_eq 1011 "$(pyj 'd["close_code"]' <<< "$out")" "then close 1011"
back=no
for _ in $(seq 1 100); do
    [ "$(noid exec box -- echo back 2>/dev/null)" = back ] && { back=yes; break; }
    sleep 0.2
done
assert_eq yes "$back" "exec works again with the new agent"
ok "agent killed mid-stream: error frame + close; the next exec reconnects"

# ---- pre-upgrade errors: plain HTTP with a JSON body ----
st=$("${WS[@]}" upgrade "$URL" "" /v1/vms/box/exec | pyj 'd["status"]')
assert_eq 401 "$st" "no token -> 401"
st=$("${WS[@]}" upgrade "$URL" "$B" /v1/vms/box/exec | pyj 'd["status"]')
assert_eq 404 "$st" "another user's VM -> 404"
st=$("${WS[@]}" upgrade "$URL" "$A" /v1/vms/nope/console | pyj 'd["status"]')
assert_eq 404 "$st" "no such VM (console) -> 404"
http GET /v1/vms/box/exec "$A"
assert_eq 400 "$HTTP_STATUS" "GET exec without Upgrade -> 400"
assert_contains "$HTTP_BODY" '"error":' "400 has a JSON error"
HTTP_STATUS=$(curl -s -o "$T/http.body" -w '%{http_code}' -H "Authorization: Bearer $A" \
    -H 'Upgrade: websocket' -H 'Connection: Upgrade' -H 'Sec-WebSocket-Version: 13' "$URL/v1/vms/box/exec")
assert_eq 400 "$HTTP_STATUS" "missing Sec-WebSocket-Key -> 400"
assert_contains "$(cat "$T/http.body")" "Sec-WebSocket-Key" "says which header"
HTTP_STATUS=$(curl -s -o "$T/http.body" -w '%{http_code}' -H "Authorization: Bearer $A" \
    -H 'Upgrade: websocket' -H 'Connection: Upgrade' -H 'Sec-WebSocket-Version: 8' \
    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "$URL/v1/vms/box/exec")
assert_eq 400 "$HTTP_STATUS" "wrong version -> 400"
ok "401 without token, 404 for another user's VM, 400 for bad handshakes"

# ---- frame-level bad input: the right close code, nothing else changes ----
REQ='{"command":["sleep","20"],"stdin":false}'
raw_close() { "${WS[@]}" raw "$URL" "$A" box "$REQ" "$@" | pyj 'd["close_code"]'; }
assert_eq 1002 "$(raw_close 820141)" "unmasked client frame -> 1002"
assert_eq 1002 "$(raw_close 838000000000)" "reserved opcode -> 1002"
assert_eq 1009 "$(raw_close 82ff000000000050000000000000)" "5 MiB frame over the 4 MiB limit -> 1009"
assert_eq 1007 "$(raw_close 818200000000c328)" "bad UTF-8 in a text frame -> 1007"
assert_eq 1002 "$(raw_close 89ff0000000000a0000000000000)" "10 MB ping -> 1002"
assert_eq 1002 "$(raw_close 82 --shut)" "truncated header, then EOF -> 1002"
http GET /healthz
assert_eq 200 "$HTTP_STATUS" "server alive after bad frames"
assert_eq ok "$(noid exec box -- echo ok)" "exec works after bad frames"
left=x
for _ in $(seq 1 100); do
    left=$(noid exec box -- sh -c 'ps -eo args | grep -c "[s]leep 20$" || true')
    [ "$left" = 0 ] && break
    sleep 0.2
done
assert_eq 0 "$left" "the execs of the bad sessions were killed"
ok "bad frames get 1002/1007/1009; the server is unaffected"

# ---- console ----
out=$("${WS[@]}" console "$URL" "$A" box --type $'echo hi-$((6*7))\n' --until hi-42)
assert_contains "$(pyj 'd["output"]' <<< "$out")" "root@noid" "the replay shows the shell prompt"
assert_contains "$(pyj 'd["output"]' <<< "$out")" "hi-42" "a typed command's output"
ok "console: prompt, typing, output"

# ?replay=0: output from the moment of attaching only (noidfs's console file)
out=$("${WS[@]}" console "$URL" "$A" box --no-replay --type $'echo nr-$((6*7))\n' --until nr-42)
assert_contains "$(pyj 'd["output"]' <<< "$out")" "nr-42" "no replay: the typed command's output"
assert_not_contains "$(pyj 'd["output"].split("echo nr-")[0]' <<< "$out")" "root@noid" \
    "no replay: nothing from before the attachment"
st=$("${WS[@]}" upgrade "$URL" "$A" '/v1/vms/box/console?replay=5' | pyj 'd["status"]')
assert_eq 400 "$st" "replay=5 (only 0 is accepted) -> 400"
ok "console ?replay=0: no replay; other values 400"

# two attachments: both see what one types
"${WS[@]}" console "$URL" "$A" box --until both-see-7 > "$T/c1" &
C1=$!
for _ in $(seq 1 100); do grep -q 'ws console alice/box.*open' "$T/server.log" 2>/dev/null && \
    [ "$(grep -c 'ws console alice/box.*open' "$T/server.log")" -ge 2 ] && break; sleep 0.1; done
out=$("${WS[@]}" console "$URL" "$A" box --type $'echo both-see-$((3+4))\n' --until both-see-7)
wait $C1
assert_contains "$(pyj 'd["output"]' < "$T/c1")" "both-see-7" "the first attachment saw the second one's typing"
ok "several attachments see the same output"

# a reader that stops reading never holds the VM or the other readers: it
# loses its oldest bytes, is told how many, and goes on with the newest
"${WS[@]}" console-stall "$URL" "$A" box "$T/stall.ready" "$T/stall.go" STALL-END > "$T/stall" &
S1=$!
for _ in $(seq 1 300); do [ -e "$T/stall.ready" ] && break; sleep 0.1; done
[ -e "$T/stall.ready" ] || fail "the stalling reader did not attach"
"${WS[@]}" console "$URL" "$A" box --until STALL-END > "$T/brisk" &
S2=$!
# 800 KB through the UART while one reader reads nothing (it can leave
# about 400 KB unread: its 256 KiB ring, the socket's 128 KiB, its own
# small buffers): the command still ends
noid exec box -- sh -c 'head -c 800000 /dev/zero | tr "\0" x > /dev/ttyS0; echo STALL-END > /dev/ttyS0'
wait $S2
assert_contains "$(pyj 'd["output"]' < "$T/brisk")" "STALL-END" "the reading attachment saw everything up to the end"
assert_eq ok "$(noid exec box -- echo ok)" "the VM answers while a reader stalls"
touch "$T/stall.go"
wait $S1
assert_eq True "$(pyj 'd["saw_mark"]' < "$T/stall")" "the stalled reader gets the newest output"
skipped=$(pyj 'd["skipped"]' < "$T/stall")
[ "$skipped" -gt 0 ] || fail "the stalled reader was not told it skipped bytes ($(cat "$T/stall"))"
ok "a stalled console reader skips ahead ($skipped bytes, and is told); the VM and the others go on"

# destroy ends an attachment with a reason
opened=$(grep -c 'ws console alice/box.*open' "$T/server.log" || true)
"${WS[@]}" console "$URL" "$A" box --wait-close 60 > "$T/c2" &
C2=$!
# it is attached once its "open" is logged
for _ in $(seq 1 100); do [ "$(grep -c 'ws console alice/box.*open' "$T/server.log")" -gt "$opened" ] && break; sleep 0.1; done
noid destroy box > /dev/null
wait $C2
assert_eq 1001 "$(pyj 'd["close_code"]' < "$T/c2")" "destroy -> close 1001"
assert_contains "$(pyj 'd["close_reason"]' < "$T/c2")" "destroyed" "with the reason"
ok "destroying the VM ends its console attachments with a reason"

# ---- VM killed mid-stream: error frame and close, not a hang ----
noid create box2 > /dev/null
"${WS[@]}" exec "$URL" "$A" box2 '{"command":["sh","-c","echo started; sleep 1000"],"stdin":false}' \
    'wait:started' > "$T/x" &
X=$!
pid=$(q "select pid from vms where name='box2'")
for _ in $(seq 1 200); do grep -q 'ws exec alice/box2.*open' "$T/server.log" && break; sleep 0.1; done
# the command runs once its output came; kill the VMM under it
for _ in $(seq 1 200); do noid exec box2 -- sh -c 'ps -eo args | grep -q "[s]leep 1000"' 2>/dev/null && break; sleep 0.1; done
kill -9 "$pid"
wait $X
assert_contains "$(pyj 'd["error"]' < "$T/x")" "agent" "an error frame names what went away"
assert_eq 1011 "$(pyj 'd["close_code"]' < "$T/x")" "then close 1011"
ok "VM killed mid-stream: error frame + close"

# ---- limits: max_ws_sessions (503) and the console idle timeout ----
stop_server
write_config vm 'max_ws_sessions = 2' 'console_timeout_secs = 2' 'exec_timeout_secs = 3600'
start_server
cli_login "$A"
wait_golden "$A"
noid create box3 > /dev/null
"${WS[@]}" console "$URL" "$A" box3 --wait-close 60 > "$T/i1" &
I1=$!
"${WS[@]}" console "$URL" "$A" box3 --wait-close 60 > "$T/i2" &
I2=$!
for _ in $(seq 1 100); do [ "$(grep -c 'ws console alice/box3.*open' "$T/server.log")" -ge 2 ] && break; sleep 0.1; done
st=$("${WS[@]}" upgrade "$URL" "$A" /v1/vms/box3/exec | pyj 'd["status"]')
assert_eq 503 "$st" "over max_ws_sessions -> 503"
wait $I1 $I2
assert_eq 1000 "$(pyj 'd["close_code"]' < "$T/i1")" "idle console -> close 1000"
assert_contains "$(pyj 'd["close_reason"]' < "$T/i1")" "idle for 2 s" "idle reason"
st=$("${WS[@]}" upgrade "$URL" "$A" /v1/vms/box3/exec | pyj 'd["status"]')
assert_eq 101 "$st" "slots free again after the idle closes"
ok "max_ws_sessions -> 503; idle console closed after console_timeout_secs"

# A session whose command does not read its stdin while the client keeps
# sending, then vanishes: its close waits behind the stdin the server has
# not read, but a shutdown still ends the session at once (with
# exec_timeout_secs = 3600 a hang would outlast this test's own timeout),
# and the command dies with it.
# Whether the command runs is asked on the guest's serial console, not
# through the agent: a new agent session (the restarted server's HELLO)
# kills the execs of the old one, which would hide a shutdown that did not.
uid=$(q "select id from users where name='alice'")
CONSOLE_SOCK="$T/data/storage/users/$uid/vms/box3/console.sock"
sleepers_on_console() {
    python3 - "$CONSOLE_SOCK" << 'EOF'
import re, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"\x15echo \"N=$(ps -eo args | grep -c '[s]leep 4545')\"\n")
out, end = b"", time.monotonic() + 30
s.settimeout(1)
while time.monotonic() < end:
    try:
        out += s.recv(4096)
    except socket.timeout:
        pass
    m = re.search(rb"N=(\d+)", out)
    if m:
        print(m.group(1).decode())
        break
EOF
}
closed_before=$(grep -c 'ws exec alice/box3: closed' "$T/server.log" || true)
"${WS[@]}" exec-stuck-stdin "$URL" "$A" box3 '{"command":["sh","-c","echo started; exec sleep 4545"]}' started > /dev/null
sleep 2.5 # the console hub lets go of the console socket (it holds it while attached)
if [ "$(grep -c 'ws exec alice/box3: closed' "$T/server.log" || true)" -gt "$closed_before" ]; then
    # the server took all the stdin the client sent before it dropped, saw
    # the drop and ended the session itself: its command must be gone
    log "the session was not left stuck on stdin this time (it ended at the client's drop)"
    assert_eq 0 "$(sleepers_on_console)" "a dropped session's command was killed"
    stop_server
else
    assert_eq 1 "$(sleepers_on_console)" "the stuck session's command runs (seen on the serial console)"
    stop_server
    assert_eq 0 "$(sleepers_on_console)" "the stuck session's command was killed at shutdown (server down)"
fi
ok "shutdown ends a session stuck on stdin and kills its command"

it_done
