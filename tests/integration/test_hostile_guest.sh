#!/usr/bin/env bash
# test_hostile_guest.sh — a guest whose agent attacks the server (issue 7).
#
# A real VM gets the hostile agent (hostile_agent.c) in place of noid-agent:
# it is uploaded through exec, written into the guest's inittab in place of
# the real agent, and takes the virtio-serial port once the real agent is
# gone.  Then, through the real server and CLI:
#  - execs against it end at their deadline (timed out, 124) or with a 5xx,
#    whether it floods output, grants huge stdin windows and reads at a
#    trickle, or stops reading its channel with megabytes of stdin pending;
#  - meanwhile /healthz answers and another VM's exec works;
#  - the server's memory stays bounded through the flood;
#  - one 4 GiB WINDOW grant opens one stdin window (AP_STDIN_WINDOW), no more;
#  - its ERROR texts reach clients and the log escaped: no forged log line;
#  - after the hostile VM is destroyed the server serves execs as before.
# Timeouts are not asserted as durations; a hang is caught by curl's -m
# (far above any deadline) or the harness timeout.
. "$(dirname "$0")/lib.sh"
it_setup
require_guest

HOSTILE_BIN="$NOID_BUILD/tests/integration/hostile-agent"
[ -x "$HOSTILE_BIN" ] || fail "hostile agent not built: $HOSTILE_BIN"
FORGED_TS='2026-01-01T00:00:00.000Z'
RSS_BOUND_KIB=$((64 * 1024))

write_config vm
start_as_users_do
TOKEN=$A

noid create evil > /dev/null
noid create good > /dev/null
assert_eq ok "$(noid exec good -- echo ok)" "exec on the normal VM"

# Wait up to $1 seconds for the hostile agent to answer a ping on VM evil.
wait_hostile_ping() { # seconds what
    local took=""
    for _ in $(seq "$1"); do
        took=$(noid exec evil --timeout 3 -- hostile-ping 2> /dev/null || true)
        [ "$took" = hostile-agent ] && break
        sleep 1
    done
    assert_eq hostile-agent "$took" "$2"
}

# ---- the hostile agent takes the channel of VM evil ----
noid exec evil -- sh -c 'cat > /tmp/h && chmod 0755 /tmp/h' < "$HOSTILE_BIN"
# busybox init respawns the agent: point its inittab entry at the hostile
# agent, reload (init starts /tmp/h, which waits for the port), then, once
# /tmp/h runs (busybox pidof matches its comm "h"), stop the real agent,
# which init no longer respawns.  Detached, so that this exec ends before its
# agent does.  Should /tmp/h not start within 30 s, the ping below fails.
noid exec evil -- sh -c '
    sed -i "s|^::respawn:/usr/sbin/noid-agent.*|::respawn:/tmp/h --log /tmp/h.log|" /etc/inittab
    grep -q "^::respawn:/tmp/h" /etc/inittab || exit 1
    setsid sh -c "sleep 1; kill -HUP 1
        i=0; while [ \$i -lt 300 ] && ! pidof h > /dev/null; do sleep 0.1; i=\$((i+1)); done
        kill \$(pidof noid-agent)" \
        < /dev/null > /dev/null 2>&1 &'
wait_hostile_ping 30 "the hostile agent answers on VM evil's channel"
ok "hostile agent installed in VM evil"

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$SERVER_PID/status"; }

# POST an exec body ($2.json) to VM $1; status in $2.status ("hang" if no
# answer within 180 s, far beyond any deadline here), body in $2.out
exec_file() { # vm name
    local rc=0
    : > "$T/$2.out"
    curl -s -m 180 -o "$T/$2.out" -w '%{http_code}' -X POST \
        -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
        --data-binary "@$T/$2.json" "$URL/v1/vms/$1/exec" > "$T/$2.status" || rc=$?
    [ "$rc" -eq 28 ] && echo hang > "$T/$2.status"
    return 0
}

# The result of a hostile exec: 200 with a timeout, or a 5xx error
assert_ended() { # name what
    local st
    st=$(cat "$T/$1.status")
    case "$st" in
    200)
        assert_contains "$(cat "$T/$1.out")" '"timed_out":true' "$2: timed out"
        assert_contains "$(cat "$T/$1.out")" '"exit_code":124' "$2: exit code"
        ;;
    5??) log "$2: ended with $st: $(head -c 300 "$T/$1.out")" ;;
    hang) fail "$2: no answer from the server within 180 s" ;;
    *) fail "$2: unexpected status $st: $(head -c 300 "$T/$1.out")" ;;
    esac
}

# While a hostile exec is in flight: the server answers, the other VM works
others_work() { # what
    http GET /healthz
    assert_eq 200 "$HTTP_STATUS" "healthz during $1"
    assert_eq ok "$(noid exec good -- echo ok)" "exec on the normal VM during $1"
}

# ---- flood: output at full speed, huge windows, ghost streams, no EXIT ----
rss_before=$(rss_kib)
echo '{"command":["flood","25"],"timeout_secs":3}' > "$T/flood.json"
exec_file evil flood &
fpid=$!
flood_end=$((SECONDS + 27))
sleep 1
others_work "the flood"
rss_peak=$rss_before
while [ $SECONDS -lt $flood_end ]; do
    r=$(rss_kib)
    [ "$r" -gt "$rss_peak" ] && rss_peak=$r
    sleep 0.5
done
wait "$fpid"
assert_ended flood "flooding exec"
python3 - "$T/flood.out" <<'EOF' || fail "flood result"
import json, sys
d = json.load(open(sys.argv[1]))
if "exit_code" in d:
    n = len(d.get("stdout") or "") + len(d.get("stdout_b64") or "") * 3 // 4
    assert n <= 1024 * 1024 + 16, "stdout of %d bytes is over max_exec_output_bytes" % n
EOF
others_work "the end of the flood"
rss_after=$(rss_kib)
log "server VmRSS: before $rss_before KiB, peak $rss_peak KiB, after $rss_after KiB"
[ $((rss_peak - rss_before)) -lt $RSS_BOUND_KIB ] ||
    fail "server memory grew by $((rss_peak - rss_before)) KiB during the flood"
[ $((rss_after - rss_before)) -lt $RSS_BOUND_KIB ] ||
    fail "server memory grew by $((rss_after - rss_before)) KiB after the flood"
ok "flood: the exec times out, server memory bounded, healthz and other VMs unaffected"

# ---- guest-supplied error texts: escaped for the client and the log ----
http POST /v1/vms/evil/exec "$TOKEN" '{"command":["error"],"timeout_secs":3}'
case "$HTTP_STATUS" in 5??) ;; *) fail "exec ERROR: status $HTTP_STATUS: $HTTP_BODY" ;; esac
msg=$(printf '%s' "$HTTP_BODY" | json_get error)
assert_contains "$msg" "\\n$FORGED_TS error: FORGED" "the error text, escaped"
assert_contains "$msg" '\x1b[31m' "the escape sequence, escaped"
assert_not_contains "$msg" $'\n' "a newline in the error"
assert_not_contains "$msg" $'\x1b' "an ESC in the error"
rc=0
noid exec evil -- error > /dev/null 2> "$T/cli.err" || rc=$?
[ "$rc" -ne 0 ] || fail "CLI exec of a refused command succeeded"
assert_eq 1 "$(wc -l < "$T/cli.err")" "the CLI prints the guest's error on one line"
ok "an agent's ERROR text reaches the client escaped"

http POST /v1/vms/evil/exec "$TOKEN" '{"command":["session-error"],"timeout_secs":3}'
case "$HTTP_STATUS" in 5??) ;; *) fail "session ERROR: status $HTTP_STATUS: $HTTP_BODY" ;; esac
grep -qF "session broken\\n$FORGED_TS error: FORGED" "$T/server.log" ||
    fail "the session error is not in the server log, escaped"
# the server reconnects (a new HELLO) on the next exec
wait_hostile_ping 5 "reconnected after the session error"
ok "a session ERROR drops the channel and is logged escaped; the server reconnects"

# ---- stdin credit: one WINDOW grant of 4 GiB, sent before any stdin came,
# acknowledges at most what the server had sent when it arrived (<= one
# window, AP_STDIN_WINDOW), and opens one window more, not 4 GiB ----
kib=$(sed -n 's/^#define AP_STDIN_WINDOW (\([0-9]*\)u \* 1024)$/\1/p' "$IT_DIR/../../lib/agent_proto.h")
[ -n "$kib" ] || fail "cannot read AP_STDIN_WINDOW from lib/agent_proto.h"
window=$((kib * 1024))
got=$(head -c $((2 * 1024 * 1024)) /dev/urandom | noid exec evil --timeout 10 -- count-stdin 30)
n=${got#stdin bytes: }
case "$n" in '' | *[!0-9]*) fail "count-stdin answered: $got" ;; esac
[ "$n" -gt 0 ] && [ "$n" -le $((2 * window)) ] ||
    fail "one 4 GiB grant let the server send $n bytes of stdin (window $window)"
ok "stdin credit capped: $n bytes of 2 MiB sent on one 4 GiB grant (window $window)"

# ---- stdin: 6 MiB against an agent that does not read its channel at all ----
mkbody() { # mode seconds MiB
    python3 - "$1" "$2" "$3" <<'EOF'
import base64, json, os, sys
data = os.urandom(int(sys.argv[3]) * 1024 * 1024)
print(json.dumps({"command": [sys.argv[1], sys.argv[2]], "timeout_secs": 3,
                  "stdin_b64": base64.b64encode(data).decode()}))
EOF
}
mkbody stall 20 6 > "$T/stall.json"
exec_file evil stall &
spid=$!
sleep 1
others_work "the stalled stdin exec"
wait "$spid"
assert_ended stall "stdin to an agent that stopped reading"
ok "stdin to an agent that stopped reading ends at the deadline"

# once it reads again, the server's next exec gets through (reconnecting if
# the stdin frame was cut)
wait_hostile_ping 60 "the hostile agent answers again"

# ---- stdin: 10 MiB against an agent that grants 4 GiB windows, reads a trickle ----
# It reads some 20 KiB/s for 600 s (or until a new session): a server that
# fed it at its pace would not answer before curl gives up.  Last: its
# channel stays clogged with what the server managed to send.
mkbody slow 600 10 > "$T/slow.json"
exec_file evil slow &
spid=$!
sleep 1
others_work "the slow stdin exec"
wait "$spid"
assert_ended slow "stdin to a slow reader with huge windows"
ok "stdin to an agent that reads a trickle ends at the deadline"

rss_end=$(rss_kib)
log "server VmRSS after the stdin tests: $rss_end KiB"

# ---- the hostile VM goes away cleanly; no forged line in the log ----
noid destroy evil > /dev/null
http GET /healthz
assert_eq 200 "$HTTP_STATUS" "healthz after destroying the hostile VM"
assert_eq ok "$(noid exec good -- echo ok)" "exec on the normal VM after the hostile one is gone"
assert_eq hi "$(echo hi | noid exec good -- cat)" "stdin on the normal VM"
if grep -nE "^($FORGED_TS|FORGED)" "$T/server.log" >&2; then
    fail "a forged line in the server log"
fi
ok "no forged log line; the server serves normally after the hostile VM is destroyed"
it_done
