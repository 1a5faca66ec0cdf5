#!/usr/bin/env bash
# test_netd.sh — noid-netd on its own (issue 11, docs/netd-protocol.md):
# setup and teardown of TAPs, refusals (foreign interfaces, bad requests,
# another uid through SO_PEERCRED), orphan removal and survival of held
# TAPs across restarts, iptables rules present exactly once, exhaustion,
# and the start-up warnings (ip_forward off, no default route, no
# iptables).  Everything runs in the host namespace of netns.sh: the root
# namespace's interfaces and iptables are never touched.  No VM is booted.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"
it_setup
netns_setup

NETD_BIN="$NOID_BUILD/netd/noid-netd"
PY=/usr/bin/python3
NS=$NETNS_HOST
# netd's log goes where lib.sh's fail() shows it from
NETD_LOG="$T/server.log"
: > "$NETD_LOG"
NETD_PID=""
NETD_SOCK=""
NETD_LOG_AT=0
# uid 65534 (nobody) runs clients and TAP holders below: it must reach $T
chmod 0711 "$T"

# A client as the server would be: one request line, one reply line.
# Prints the reply ("" when netd closed without one).  --raw sends the
# argument without a newline (for over-long lines and stalls).
cat > "$T/netd_client.py" <<'EOF'
import socket, sys, time
path, req = sys.argv[1], sys.argv[2].encode()
mode = sys.argv[3] if len(sys.argv) > 3 else "line"
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(path)
try:
    if mode == "line":
        s.sendall(req + b"\n")
    elif mode == "stall":
        s.sendall(req)  # and then nothing: netd must give up on its own
    elif mode == "long":
        s.sendall(b"x" * int(sys.argv[2]))
except (BrokenPipeError, ConnectionResetError):
    pass
data = b""
while not data.endswith(b"\n"):
    try:
        chunk = s.recv(4096)
    except ConnectionResetError:
        break
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode())
EOF

# Attach to a TAP like a VMM does and hold it until killed: open
# /dev/net/tun as root, become uid (when not 0), TUNSETIFF on the name.
cat > "$T/tap_holder.py" <<'EOF'
import fcntl, os, struct, sys, time
TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x0002, 0x1000
name, uid = sys.argv[1], int(sys.argv[2])
fd = os.open("/dev/net/tun", os.O_RDWR)
if uid:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
try:
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
except OSError as e:
    print("refused errno %d" % e.errno, flush=True)
    sys.exit(3)
print("attached", flush=True)
while True:
    time.sleep(3600)
EOF

# ---- helpers ----

# start_netd SOCKET [args...]: netd in the host namespace, ready
start_netd() {
    NETD_SOCK=$1
    shift
    NETD_LOG_AT=$(wc -l < "$NETD_LOG" 2>/dev/null || echo 0)
    # not through in_host: a function in the background is a subshell, and
    # $! must be netd itself (ip netns exec execs it)
    ip netns exec "$NS" "$NETD_BIN" --socket "$NETD_SOCK" "$@" 2>> "$NETD_LOG" &
    NETD_PID=$!
    local i
    for i in $(seq 1 100); do
        netd_log | grep -q 'serving ' && return 0
        proc_alive "$NETD_PID" || fail "noid-netd exited during start"
        sleep 0.1
    done
    fail "noid-netd did not start within 10 s"
}

# stop_netd: SIGTERM, exit 0, its socket gone
stop_netd() {
    local rc=0
    kill -TERM "$NETD_PID"
    wait "$NETD_PID" || rc=$?
    NETD_PID=""
    assert_eq 0 "$rc" "noid-netd exit status at SIGTERM"
    [ ! -e "$NETD_SOCK" ] || fail "socket $NETD_SOCK left behind at SIGTERM"
}

# The log of the current netd run
netd_log() { tail -n "+$((NETD_LOG_AT + 1))" "$NETD_LOG" 2>/dev/null; }

# req JSON [mode]: the reply of netd (as root)
req() { $PY "$T/netd_client.py" "$NETD_SOCK" "$@"; }
# req_as UID JSON: the reply, the client running as uid
req_as() {
    local uid=$1
    shift
    setpriv --reuid="$uid" --regid="$uid" --clear-groups $PY "$T/netd_client.py" "$NETD_SOCK" "$@"
}

# jget REPLY KEY: a field of a reply, JSON-spelled unless a string ("" when absent)
jget() {
    printf '%s' "$1" | $PY -c 'import json,sys
v = json.load(sys.stdin).get(sys.argv[1])
print("" if v is None else v if isinstance(v, str) else json.dumps(v))' "$2"
}

link_exists() { ip -n "$NS" link show dev "$1" > /dev/null 2>&1; }
ns_cat() { in_host cat "$1"; }

# rules of the namespace's iptables, one per line
rules() { in_host iptables-save; }
count_rule() { rules | grep -cxF -- "$1" || true; }

# hold_tap TAP UID: a process attached to TAP (sets HOLDER_PID)
hold_tap() {
    : > "$T/holder.out"
    ip netns exec "$NS" $PY "$T/tap_holder.py" "$1" "$2" > "$T/holder.out" 2>&1 &
    HOLDER_PID=$!
    local i
    for i in $(seq 1 100); do
        grep -q . "$T/holder.out" && break
        sleep 0.1
    done
    assert_eq attached "$(cat "$T/holder.out")" "holder attaching to $1 as uid $2"
}

# ---- 1. start: socket, rules, log line ----
[ -x "$NETD_BIN" ] || fail "$NETD_BIN not built"
out=$("$NETD_BIN" --help)
assert_contains "$out" "--server-uid" "--help"
rc=0; out=$("$NETD_BIN" --max-taps 0 2>&1) || rc=$?
assert_eq 2 "$rc" "--max-taps 0 exit status"
assert_contains "$out" "--max-taps: '0' is not a number from 1 to 16384" "--max-taps 0 message"
rc=0; out=$("$NETD_BIN" --server-uid abc 2>&1) || rc=$?
assert_eq 2 "$rc" "--server-uid abc exit status"

SOCK="$T/run/noid/netd.sock"
start_netd "$SOCK" --server-uid 0
assert_eq "755 root" "$(stat -c '%a %U' "$T/run/noid")" "socket directory created 0755"
assert_eq "600 root socket" "$(stat -c '%a %U %F' "$SOCK")" "socket mode and owner"
assert_contains "$(netd_log)" "iptables: NAT 172.16.0.0/16 via uplink0" "NAT log line"
ok "netd starts: socket 0600 in a new 0755 directory, NAT via uplink0 logged"

# ---- 2. setup ----
r=$(req '{"op":"setup","owner":"vm-a"}')
assert_eq '{"ok":true,"tap":"noid0","index":0,"host_ip":"172.16.0.1","guest_ip":"172.16.0.2","prefix":30,"netmask":"255.255.255.252","mac":"AA:FC:00:00:00:00"}' "$r" "first setup reply"
link_exists noid0 || fail "noid0 not created"
d=$(ip -n "$NS" -d link show dev noid0)
assert_contains "$d" "tun type tap" "noid0 is a TAP"
assert_contains "$d" "persist on" "noid0 is persistent"
assert_contains "$d" "alias noid:vm-a" "noid0's alias names its owner"
assert_contains "$(ip -n "$NS" link show dev noid0 | head -1)" ",UP" "noid0 is up"
assert_eq "172.16.0.1/30" "$(ip -n "$NS" -o -4 addr show dev noid0 | awk '{print $4}')" "noid0 address"
assert_eq 0 "$(ns_cat /sys/class/net/noid0/owner)" "noid0 owner uid"
assert_eq 1 "$(ns_cat /proc/sys/net/ipv6/conf/noid0/disable_ipv6)" "noid0 has no IPv6"
assert_contains "$(netd_log)" "setup for vm-a" "setup logged"

r=$(req '{"op":"setup","owner":"vm-b"}')
assert_eq noid1 "$(jget "$r" tap)" "second setup tap"
assert_eq 172.16.0.5 "$(jget "$r" host_ip)" "second setup host ip"
assert_eq 172.16.0.6 "$(jget "$r" guest_ip)" "second setup guest ip"
assert_eq AA:FC:00:00:00:01 "$(jget "$r" mac)" "second setup mac"
assert_eq "172.16.0.5/30" "$(ip -n "$NS" -o -4 addr show dev noid1 | awk '{print $4}')" "noid1 address"

r2=$(req '{"op":"setup","owner":"vm-a"}')
assert_eq '{"ok":true,"tap":"noid0","index":0,"host_ip":"172.16.0.1","guest_ip":"172.16.0.2","prefix":30,"netmask":"255.255.255.252","mac":"AA:FC:00:00:00:00"}' "$r2" "setup retried by the same owner"
assert_eq 2 "$(ip -n "$NS" -o link show | grep -c ': noid[0-9]*:')" "TAPs after a retried setup"
ok "setup: TAP, /30, alias, owner uid, up; two owners two /30s; a retry gets the same TAP"

# ---- 3. teardown ----
r=$(req '{"op":"teardown","tap":"noid1","owner":"vm-b"}')
assert_eq '{"ok":true,"tap":"noid1","gone":false}' "$r" "teardown reply"
link_exists noid1 && fail "noid1 still there after teardown"
r=$(req '{"op":"teardown","tap":"noid1","owner":"vm-b"}')
assert_eq '{"ok":true,"tap":"noid1","gone":true}' "$r" "teardown repeated"
r=$(req '{"op":"teardown","owner":"vm-nobody"}')
assert_eq '{"ok":true,"gone":true}' "$r" "teardown of an owner without TAP"
r=$(req '{"op":"teardown","tap":"noid0","owner":"vm-b"}')
assert_contains "$(jget "$r" error)" "refused: noid0 does not belong to owner vm-b" "teardown of another owner's TAP"
link_exists noid0 || fail "noid0 removed by another owner's teardown"
ok "teardown removes, is idempotent, refuses another owner's TAP"

# ---- 4. never anything but a noid TAP ----
for dev in eth0 uplink0 lo noid99999; do
    r=$(req "{\"op\":\"teardown\",\"tap\":\"$dev\"}")
    assert_eq "{\"ok\":false,\"error\":\"refused: '$dev' is not a noid TAP\"}" "$r" "teardown of $dev"
    assert_contains "$(netd_log)" "refused request from pid" "refusal of $dev logged"
    assert_contains "$(netd_log)" "'$dev' is not a noid TAP" "refusal of $dev logged"
done
link_exists uplink0 || fail "uplink0 gone"
link_exists lo || fail "lo gone"
assert_eq "192.0.2.2/24" "$(ip -n "$NS" -o -4 addr show dev uplink0 | awk '{print $4}')" "uplink0 untouched"
# a link with a noid name that is no TAP: refused, and its index is skipped
ip -n "$NS" link add noid1 type veth peer name noidpeer1
r=$(req '{"op":"teardown","tap":"noid1"}')
assert_eq '{"ok":false,"error":"refused: noid1 is not a TUN/TAP device"}' "$r" "teardown of a veth named noid1"
link_exists noid1 || fail "the veth noid1 was deleted"
r=$(req '{"op":"setup","owner":"vm-c"}')
assert_eq noid2 "$(jget "$r" tap)" "setup skips an index whose name is taken"
ip -n "$NS" link del noid1
ok "teardown of eth0, uplink0, lo, noid99999 and a non-TAP noid1 refused and logged, all untouched"

# ---- 5. bad requests: refused, logged, netd keeps serving ----
check_bad() { # request expected-error-part [mode]
    local before r
    before=$(netd_log | grep -c 'refused request' || true)
    r=$(req "$1" "${3:-line}")
    assert_eq false "$(jget "$r" ok)" "reply to $1"
    assert_contains "$(jget "$r" error)" "$2" "error for $1"
    [ "$(netd_log | grep -c 'refused request' || true)" -gt "$before" ] || fail "refusal of $1 not logged"
}
check_bad 'this is not json' 'bad JSON'
check_bad '{"op":"setup","owner":"vm-x"' 'bad JSON'
check_bad '[1,2]' 'must be a JSON object'
check_bad '{"op":"reboot","owner":"vm-x"}' "unknown op 'reboot'"
check_bad '{"op":"setup","owner":"vm-x","ip":"10.0.0.1"}' "unknown field 'ip'"
check_bad '{"op":"setup","owner":7}' "'owner' must be a string"
check_bad '{"op":"setup","owner":"../etc"}' 'owner must be'
check_bad '{"op":"teardown"}' 'needs a tap or an owner'
check_bad 5000 'request longer than 4095 bytes' long
check_bad '{"op":"setup",' 'no complete request line within 5000 ms' stall
r=$(req '{"op":"setup","owner":"vm-a"}')
assert_eq noid0 "$(jget "$r" tap)" "netd still serves after bad requests"
assert_eq 2 "$(ip -n "$NS" -o link show | grep -c ': noid[0-9]*:')" "no TAP made by a bad request"
ok "bad JSON, non-object, unknown op, extra field, wrong type, bad owner, over-long line, stall: refused and logged"

# ---- 6. SIGTERM: socket gone, TAPs stay ----
stop_netd
link_exists noid0 || fail "noid0 removed at SIGTERM"
link_exists noid2 || fail "noid2 removed at SIGTERM"
ok "SIGTERM exits 0 and removes the socket; TAPs stay"

# ---- 7. orphans go at start; one netd per socket; rules exactly once ----
# noid0 (vm-a) and noid2 (vm-c) are held by nothing: orphans
start_netd "$SOCK" --server-uid 0
assert_contains "$(netd_log)" "removed orphaned TAP noid0 (owner vm-a)" "orphan noid0 logged"
assert_contains "$(netd_log)" "removed orphaned TAP noid2 (owner vm-c)" "orphan noid2 logged"
link_exists noid0 && fail "orphan noid0 survived the start"
link_exists noid2 && fail "orphan noid2 survived the start"
rc=0; out=$(in_host "$NETD_BIN" --socket "$SOCK" --server-uid 0 2>&1) || rc=$?
assert_eq 1 "$rc" "second netd on a live socket"
assert_contains "$out" "another noid-netd is serving $SOCK" "second netd message"
# a netd that died without cleaning up leaves a stale socket the next replaces
kill -KILL "$NETD_PID"
wait "$NETD_PID" 2>/dev/null || true
[ -S "$SOCK" ] || fail "no stale socket after SIGKILL"
start_netd "$SOCK" --server-uid 0
assert_eq true "$(jget "$(req '{"op":"teardown","owner":"none"}')" ok)" "netd on a replaced stale socket"
# three starts now
assert_contains "$(netd_log)" "iptables: 0 rule(s) added, 7 already present" "rules found at a restart"
for rule in \
    "-A POSTROUTING -s 172.16.0.0/16 -o uplink0 -j MASQUERADE" \
    "-A FORWARD -i noid+ -o noid+ -j DROP" \
    "-A FORWARD -i noid+ -j ACCEPT" \
    "-A FORWARD -o noid+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" \
    "-A FORWARD -i noid+ -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu" \
    "-A FORWARD -o noid+ -p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu" \
    "-A PREROUTING -i noid+ -m rpfilter --invert -j DROP"; do
    assert_eq 1 "$(count_rule "$rule")" "count of rule '$rule' after 3 starts"
done
assert_eq "-A FORWARD -i noid+ -o noid+ -j DROP" "$(in_host iptables -S FORWARD | sed -n 2p)" \
    "VM-to-VM DROP is the first FORWARD rule"
assert_contains "$(in_host iptables -t nat -S POSTROUTING)" "-o uplink0 -j MASQUERADE" "MASQUERADE via uplink0"
stop_netd
ok "orphan TAPs removed and logged at start; a live socket is not taken over, a stale one is; each rule exactly once after two restarts, DROP first"

# ---- 8. SO_PEERCRED; TAPs owned by the server uid; held TAPs survive ----
mkdir -p "$T/run65534"
chmod 0755 "$T/run65534"
SOCK2="$T/run65534/netd.sock"
start_netd "$SOCK2" --server-uid 65534
assert_eq "600 65534" "$(stat -c '%a %u' "$SOCK2")" "socket owned by the server uid"
r=$(req '{"op":"setup","owner":"vm-root"}')
assert_eq "" "$r" "root's request answered"
assert_contains "$(netd_log)" "refused connection from uid 0 pid " "refused uid logged"
assert_contains "$(netd_log)" "(not the server uid 65534)" "refused uid logged"
ip -n "$NS" -o link show | grep -q ': noid' && fail "a TAP appeared for a refused uid"
r=$(req_as 65534 '{"op":"setup","owner":"vm-held"}')
assert_eq noid0 "$(jget "$r" tap)" "server uid served"
assert_eq 65534 "$(ns_cat /sys/class/net/noid0/owner)" "TAP owned by the server uid"
r=$(req_as 65534 '{"op":"setup","owner":"vm-free"}')
assert_eq noid1 "$(jget "$r" tap)" "second TAP"
# the owner attaches like a VMM; another unprivileged uid may not
rc=0; out=$(in_host $PY "$T/tap_holder.py" noid1 65533 2>&1) || rc=$?
assert_eq 3 "$rc" "uid 65533 attaching to a TAP of uid 65534"
assert_eq "refused errno 1" "$out" "another uid's attach refused (EPERM)"
hold_tap noid0 65534
HELD=$HOLDER_PID
assert_eq 1 "$(ns_cat /sys/class/net/noid0/carrier)" "carrier of a held TAP"
stop_netd
start_netd "$SOCK2" --server-uid 65534
link_exists noid0 || fail "held noid0 removed at restart"
assert_eq "172.16.0.1/30" "$(ip -n "$NS" -o -4 addr show dev noid0 | awk '{print $4}')" "held TAP keeps its address"
assert_not_contains "$(netd_log)" "orphaned TAP noid0" "held TAP called an orphan"
assert_contains "$(netd_log)" "removed orphaned TAP noid1 (owner vm-free)" "unheld TAP removed"
# the index of the held TAP stays taken across the restart
r=$(req_as 65534 '{"op":"setup","owner":"vm-next"}')
assert_eq noid1 "$(jget "$r" tap)" "allocation after a restart skips the held TAP"
r=$(req_as 65534 '{"op":"setup","owner":"vm-held"}')
assert_eq noid0 "$(jget "$r" tap)" "a held TAP's owner gets it again after a restart"
kill -KILL "$HELD"
wait "$HELD" 2>/dev/null || true
stop_netd
start_netd "$SOCK2" --server-uid 65534
assert_contains "$(netd_log)" "removed orphaned TAP noid0 (owner vm-held)" "TAP removed once its holder died"
stop_netd
ok "SO_PEERCRED refuses root for server uid 65534 and logs it; uid 65534 served, owns its TAPs; a held TAP survives restarts"

# ---- 9. exhaustion ----
start_netd "$SOCK" --server-uid 0 --max-taps 2
req '{"op":"setup","owner":"x1"}' > /dev/null
req '{"op":"setup","owner":"x2"}' > /dev/null
r=$(req '{"op":"setup","owner":"x3"}')
assert_eq false "$(jget "$r" ok)" "setup beyond --max-taps"
assert_contains "$(jget "$r" error)" "no free network: all 2 /30 subnets netd may use (--max-taps) of 172.16.0.0/16 are in use" "exhaustion message"
assert_eq "false" "$(jget "$(req '{"op":"teardown","tap":"noid2"}')" ok)" "noid2 refused under --max-taps 2"
req '{"op":"teardown","owner":"x1"}' > /dev/null
assert_eq noid0 "$(jget "$(req '{"op":"setup","owner":"x3"}')" tap)" "freed index reused"
stop_netd
ok "exhaustion under --max-taps 2 is a clear error; a freed index is reused"

# ---- 10. start-up warnings: ip_forward off, no default route, no iptables ----
in_host sysctl -q -w net.ipv4.ip_forward=0
start_netd "$SOCK" --server-uid 0
assert_contains "$(netd_log)" "net.ipv4.ip_forward is 0" "ip_forward warning"
assert_contains "$(netd_log)" "sysctl -w net.ipv4.ip_forward=1" "ip_forward fix"
stop_netd
in_host sysctl -q -w net.ipv4.ip_forward=1
start_netd "$SOCK" --server-uid 0
assert_not_contains "$(netd_log)" "ip_forward" "no ip_forward warning when on"
stop_netd

ip -n "$NS" route del default
start_netd "$SOCK" --server-uid 0
assert_contains "$(netd_log)" "no default route: no MASQUERADE rule" "no default route warning"
assert_not_contains "$(netd_log)" "iptables: NAT" "NAT line without a default route"
assert_eq true "$(jget "$(req '{"op":"setup","owner":"y1"}')" ok)" "serving without a default route"
stop_netd
ip -n "$NS" route add default via "$NETNS_OUT_IP"

NETD_LOG_AT=$(wc -l < "$NETD_LOG")
ip netns exec "$NS" env PATH=/nonexistent "$NETD_BIN" --socket "$SOCK" --server-uid 0 2>> "$NETD_LOG" &
NETD_PID=$!
NETD_SOCK=$SOCK
for i in $(seq 1 100); do netd_log | grep -q 'serving ' && break; sleep 0.1; done
assert_contains "$(netd_log)" "iptables not found in PATH: install the iptables package" "iptables missing"
assert_eq true "$(jget "$(req '{"op":"setup","owner":"y2"}')" ok)" "serving without iptables"
stop_netd
# Type=notify: READY=1 to $NOTIFY_SOCKET once serving
$PY -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
print(s.recv(256).decode(), flush=True)' "$T/notify.sock" > "$T/notify.out" &
NOTIFY_PID=$!
for i in $(seq 1 50); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done
NETD_LOG_AT=$(wc -l < "$NETD_LOG")
ip netns exec "$NS" env NOTIFY_SOCKET="$T/notify.sock" "$NETD_BIN" --socket "$SOCK" --server-uid 0 2>> "$NETD_LOG" &
NETD_PID=$!
wait "$NOTIFY_PID" || fail "no notification from netd"
assert_eq READY=1 "$(cat "$T/notify.out")" "systemd notification"
netd_log | grep -q 'serving ' || fail "READY=1 before netd serves"
stop_netd
ok "warnings: ip_forward off (with the fix), no default route, no iptables; netd serves in each case; READY=1 for systemd"

it_done
