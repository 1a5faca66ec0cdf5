#!/usr/bin/env bash
# test_network.sh — every VM has a network (issue 11, DESIGN.md §8), on the
# user's default path: default server config plus netd_socket and
# guest_dns, the golden snapshot, the default guest, the CLI.  noid-netd,
# noid-server and so every VM run in the test's host namespace, the
# outside (outside_peer.py: HTTP, DNS, a TCP sink) in its outside namespace
# (netns.sh); nothing can leave the machine.
#   * a VM created from golden has a network at once: `ip` in VmInfo and
#     `noid info` (172.16.0.0/16, the guest end of a /30), the same address
#     on eth0 in the guest (and only it) with the MAC of its TAP number
#     (as for every VM below), default route via the host end, the TAP
#     noid<N> with the host end in the host namespace, resolv.conf from
#     guest_dns; `curl http://outside.noid.test/hello` by name works, and
#     the outside sees only 192.0.2.2 (MASQUERADE), for HTTP and DNS
#   * the host reaches a listener in the guest (nc -ll, left running)
#   * two VMs get different /30s; traffic between them is dropped both ways
#     (the listener answers the host meanwhile)
#   * a cold-booted VM (another size) gets its address from the kernel
#     command line (ip=)
#   * destroy removes the TAP
#   * checkpoint + clone: the clone has its own address (and only that on
#     eth0), reaches the outside, its copy of the listener answers the host
#     on the new address; the original keeps its address and works
#   * restore in place (a new VMM, so a new lease): VmInfo's ip is eth0's,
#     outside and listener work
#   * server restarted: running VMs keep address, TAP and traffic; a VM whose
#     VMM was killed while the server was down has its TAP removed at start
#   * netd stopped: create still works, ip null / `ip: -`, one warning in
#     the server log for two creates, no 172.16 address in the guest; netd
#     started again: new VMs are networked, the running ones were not cut
#     off, and a checkpoint taken without network restores with one
#   * at the end exactly the TAPs of the running networked VMs exist (none
#     left by the golden build, clone, restore, destroy), and the outside
#     never saw a guest address
. "$(dirname "$0")/lib.sh"
. "$IT_DIR/netns.sh"
it_setup
require_root
require_guest
NETD_BIN="$NOID_BUILD/netd/noid-netd"
[ -x "$NETD_BIN" ] || fail "$NETD_BIN not built"
netns_setup

PEER_LOG="$T/peer.log"
HELLO="hello from outside"
NETD_PID=""

# ---- helpers ----
start_netd() {
    local _
    rm -f "$T/netd.sock"
    # not through in_host: $! must be noid-netd itself (ip netns exec
    # execs it), not a subshell running a function
    ip netns exec "$NETNS_HOST" "$NETD_BIN" --socket "$T/netd.sock" --server-uid 0 2>> "$T/netd.log" &
    NETD_PID=$!
    for _ in $(seq 1 100); do
        [ -S "$T/netd.sock" ] && return 0
        kill -0 "$NETD_PID" 2> /dev/null || fail "noid-netd exited at start: $(tail -n 5 "$T/netd.log")"
        sleep 0.1
    done
    fail "noid-netd did not create $T/netd.sock in 10 s"
}

stop_netd() {
    kill -TERM "$NETD_PID"
    wait "$NETD_PID" 2> /dev/null || true
    NETD_PID=""
}

start_peer() {
    local _
    in_out /usr/bin/python3 "$IT_DIR/outside_peer.py" --log "$PEER_LOG" > "$T/peer.out" 2>&1 &
    for _ in $(seq 1 100); do
        grep -qx ready "$T/peer.out" && return 0
        sleep 0.1
    done
    fail "outside_peer.py did not start: $(cat "$T/peer.out")"
}

# A command in a VM, stdin closed, at most 30 s (the default exec ceiling)
vx() {
    local vm=$1
    shift
    noid exec "$vm" -n --timeout 30 -- "$@"
}

vm_ip() { noid info "$1" --json | json_get ip; }

# The value of the "ip:" line of `noid info` (its fields are aligned)
info_ip() { noid info "$1" | awk '$1 == "ip:" { print $2 }'; }

# The TAP of a guest address: noid<N> for 172.16.0.0 + 4N + 2
tap_of() {
    /usr/bin/python3 -c 'import ipaddress, sys
print("noid%d" % ((int(ipaddress.ip_address(sys.argv[1])) - int(ipaddress.ip_address("172.16.0.0"))) // 4))' "$1"
}

# The host end of a guest address (guest - 1)
host_end_of() {
    /usr/bin/python3 -c 'import ipaddress, sys; print(ipaddress.ip_address(sys.argv[1]) - 1)' "$1"
}

# The guest MAC of a TAP: aa:fc:00:00:<N high byte>:<N low byte>
mac_of() {
    local n=${1#noid}
    printf 'aa:fc:00:00:%02x:%02x\n' $((n >> 8)) $((n & 255))
}

tap_exists() { in_host ip link show dev "$1" > /dev/null 2>&1; }

# IPv4 addresses on the guest's eth0, "ADDR/LEN" one per line
guest_addrs() { vx "$1" ip -o -4 addr show dev eth0 | awk '{print $4}'; }

# The VM has its network: VmInfo ip (shape), `noid info` line, the TAP with
# the host end, the address (and only it) on eth0, the default route.
# Sets IP.  check_net VM WHAT
check_net() {
    local vm=$1 what=$2 tap hostend addrs
    IP=$(vm_ip "$vm")
    /usr/bin/python3 -c 'import ipaddress, sys
a = ipaddress.ip_address(sys.argv[1])
sys.exit(0 if a in ipaddress.ip_network("172.16.0.0/16") and int(a) % 4 == 2 else 1)' "$IP" ||
        fail "$what: VmInfo ip of $vm is '$IP', not a guest end in 172.16.0.0/16"
    assert_eq "$IP" "$(info_ip "$vm")" "$what: the ip line of noid info $vm"
    tap=$(tap_of "$IP")
    hostend=$(host_end_of "$IP")
    assert_contains "$(in_host ip -o -4 addr show dev "$tap" 2>&1)" "inet $hostend/30" \
        "$what: host end of $vm on its TAP $tap"
    addrs=$(guest_addrs "$vm")
    assert_eq "$IP/30" "$addrs" "$what: addresses on eth0 in $vm"
    assert_eq "$(mac_of "$tap")" "$(vx "$vm" cat /sys/class/net/eth0/address)" "$what: MAC of $vm"
    assert_contains "$(vx "$vm" ip -4 route show default)" "default via $hostend" \
        "$what: default route in $vm"
}

# The VM fetches /hello from the outside by name; the outside saw the
# request come from the host's uplink address.  check_outside VM WHAT
check_outside() {
    local vm=$1 what=$2 before after out rc=0
    before=$(grep -c '^http 192\.0\.2\.2 [0-9]* GET /hello 200$' "$PEER_LOG" || true)
    out=$(vx "$vm" curl -fsS --max-time 20 http://outside.noid.test/hello) || rc=$?
    [ "$rc" -eq 0 ] || fail "$what: curl http://outside.noid.test/hello in $vm failed (status $rc)"
    assert_eq "$HELLO" "$out" "$what: body fetched by $vm"
    after=$(grep -c '^http 192\.0\.2\.2 [0-9]* GET /hello 200$' "$PEER_LOG" || true)
    [ "$after" -gt "$before" ] || fail "$what: the outside did not log a request from 192.0.2.2: $(tail -n 3 "$PEER_LOG")"
}

# A listener on port 8080 that answers every connection with TEXT, left
# running in the guest (fds closed, so the exec ends at once)
start_listener() { # vm text
    vx "$1" sh -c "busybox nc -ll -p 8080 -e echo $2 < /dev/null > /dev/null 2>&1 &"
}

# What a listener at IP:PORT sends, read from the host namespace (retried
# while the port is not open yet)
host_read() { # ip port
    in_host /usr/bin/python3 - "$1" "$2" << 'PY'
import socket, sys, time
addr = (sys.argv[1], int(sys.argv[2]))
for attempt in range(100):
    try:
        s = socket.create_connection(addr, timeout=10)
        break
    except OSError as e:
        err = e
        time.sleep(0.2)
else:
    sys.exit(f"connect to {addr}: {err}")
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
sys.stdout.write(data.decode(errors="replace"))
PY
}

check_listener() { # vm ip text what
    local out rc=0
    out=$(host_read "$2" 8080) || rc=$?
    [ "$rc" -eq 0 ] || fail "$4: the host cannot reach the listener of $1 at $2:8080"
    assert_eq "$3" "$out" "$4: listener of $1 read from the host"
}

# ---- the default path, networked ----
write_config vm "netd_socket = \"$T/netd.sock\"" 'guest_dns = "192.0.2.1"'
start_netd
start_peer
start_as_users_do

noid create a > /dev/null
assert_eq golden "$(noid info a --json | json_get restored_from)" "a from golden"
check_net a "golden create"
IP_A=$IP
TAP_A=$(tap_of "$IP_A")
assert_contains "$(vx a cat /etc/resolv.conf)" "nameserver 192.0.2.1" "resolv.conf from guest_dns"
check_outside a "golden create"
grep -q '^dns 192\.0\.2\.2 [0-9]* outside\.noid\.test 1 A$' "$PEER_LOG" ||
    fail "the outside answered no A query for outside.noid.test from 192.0.2.2: $(grep '^dns' "$PEER_LOG" | tail -n 3)"
vx a ping -c 1 -W 5 192.0.2.1 > /dev/null || fail "a cannot ping the outside"
ok "a golden-created VM has a network at once ($IP_A on $TAP_A); curl by name through NAT"

start_listener a hi-from-a
check_listener a "$IP_A" hi-from-a "host to guest"
check_listener a "$IP_A" hi-from-a "host to guest, second connection"
ok "the host reaches a listener in the guest"

# ---- two VMs: own subnets, no traffic between them ----
noid create b > /dev/null
check_net b "second VM"
IP_B=$IP
TAP_B=$(tap_of "$IP_B")
[ "$TAP_A" != "$TAP_B" ] || fail "a and b share the TAP $TAP_A"
[ "$(host_end_of "$IP_A")" != "$(host_end_of "$IP_B")" ] || fail "a and b share a subnet"
start_listener b hi-from-b
check_listener b "$IP_B" hi-from-b "b's listener up"
# the same nc line reaches the outside (the sink answers "0 SECONDS" to a
# connection that sends nothing): its failure below is the drop
out=$(vx a busybox nc -w 3 192.0.2.1 5001)
[[ "$out" == "0 "* ]] || fail "nc from a to the outside's sink: got '$out'"
rc=0
out=$(vx a busybox nc -w 2 "$IP_B" 8080 2>&1) || rc=$?
assert_not_contains "$out" hi-from-b "a connecting to b's listener"
[ "$rc" -ne 0 ] || fail "nc from a to b's listener succeeded: $out"
rc=0
vx a ping -c 1 -W 1 "$IP_B" > /dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a can ping b"
rc=0
vx b ping -c 1 -W 1 "$IP_A" > /dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "b can ping a"
check_listener b "$IP_B" hi-from-b "b's listener still up"
check_outside b "second VM"
ok "two VMs: subnets $IP_A and $IP_B; VM-to-VM traffic dropped both ways"

# ---- a guest sends only from its own address ----
# root in a takes b's address and one from nowhere: the host drops both
# (strict reverse-path check on the TAPs); its own still works.  A failed
# ping proves nothing (the reply to a forged source goes astray anyway):
# the outside counts the echo requests that reach it (a counting rule in
# the test's own outside namespace).
in_out iptables -I INPUT -p icmp --icmp-type echo-request
echo_requests() { in_out iptables -L INPUT -v -x -n | awk 'NR == 3 {print $1}'; }
vx a ip addr add "$IP_B/32" dev eth0
vx a ip addr add 10.77.0.1/32 dev eth0
for spoofed in "$IP_B" 10.77.0.1; do
    before=$(echo_requests)
    vx a ping -c 1 -W 2 -I "$spoofed" 192.0.2.1 > /dev/null 2>&1 || true
    assert_eq "$before" "$(echo_requests)" "echo requests at the outside after a ping from $spoofed"
done
before=$(echo_requests)
vx a ping -c 1 -W 5 -I "$IP_A" 192.0.2.1 > /dev/null || fail "a cannot ping from its own address"
assert_eq $((before + 1)) "$(echo_requests)" "echo requests at the outside after a ping from $IP_A"
vx a ip addr del "$IP_B/32" dev eth0
vx a ip addr del 10.77.0.1/32 dev eth0
check_listener b "$IP_B" hi-from-b "b's listener after a posed as b"
ok "a guest posing as another VM or as an outside address is dropped"

# ---- a cold boot (another size: the golden snapshot does not fit) ----
noid create cold --mem 384 > /dev/null
assert_eq "" "$(noid info cold --json | json_get restored_from)" "a 384 MiB VM cold-boots"
check_net cold "cold boot"
IP_C=$IP
TAP_C=$(tap_of "$IP_C")
assert_contains "$(vx cold cat /proc/cmdline)" " ip=$IP_C::$(host_end_of "$IP_C"):255.255.255.252:" \
    "the cold boot's kernel command line"
check_outside cold "cold boot"
ok "a cold-booted VM gets its address from the kernel ($IP_C, MAC $(mac_of "$TAP_C"))"

noid destroy cold > /dev/null
! tap_exists "$TAP_C" || fail "destroy left the TAP $TAP_C"
ok "destroy removes the TAP"

# ---- checkpoint, clone, restore in place ----
CP=$(noid checkpoint a 2> /dev/null)
noid restore a "$CP" --as a2 > /dev/null
check_net a2 "clone"
IP_A2=$IP
[ "$IP_A2" != "$IP_A" ] || fail "the clone got the address of its origin ($IP_A)"
check_outside a2 "clone"
check_listener a2 "$IP_A2" hi-from-a "the clone's copy of a's listener"
check_net a "origin of the clone"
assert_eq "$IP_A" "$IP" "a keeps its address after the clone"
check_outside a "origin of the clone"
check_listener a "$IP_A" hi-from-a "a's own listener after the clone"
ok "clone: own address $IP_A2, reaches the outside, reached from the host; a keeps $IP_A"

noid restore a "$CP" > /dev/null
check_net a "restore in place"
IP_A=$IP
TAP_A=$(tap_of "$IP_A")
check_outside a "restore in place"
check_listener a "$IP_A" hi-from-a "a's listener after restore in place"
ok "restore in place: ip matches eth0 ($IP_A), traffic works"

# ---- the server restarts; a VM dies while it is down ----
pid_b=$(q "select pid from vms where name='b'")
stop_server
kill -KILL "$pid_b"
for _ in $(seq 50); do proc_alive "$pid_b" || break; sleep 0.1; done
start_server
cli_login "$A"
assert_eq dead "$(vm_state b)" "b after its VMM was killed"
for _ in $(seq 100); do tap_exists "$TAP_B" || break; sleep 0.1; done
! tap_exists "$TAP_B" || fail "the TAP $TAP_B of dead b is still there after the server start"
check_net a "after restart"
assert_eq "$IP_A" "$IP" "a's address after restart"
check_net a2 "clone after restart"
assert_eq "$IP_A2" "$IP" "a2's address after restart"
check_outside a "after restart"
check_listener a2 "$IP_A2" hi-from-a "a2's listener after restart"
noid destroy b > /dev/null
ok "server restart: running VMs keep their network; the dead VM's TAP is removed"

# ---- netd absent ----
stop_netd
log_from=$(($(stat -c %s "$T/server.log") + 1))
noid create lonely > /dev/null
noid create lonely2 > /dev/null
for vm in lonely lonely2; do
    assert_eq running "$(vm_state "$vm")" "$vm created without netd runs"
    noid info "$vm" --json | /usr/bin/python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["ip"] is None else 1)' ||
        fail "VmInfo ip of $vm, created without netd, is not null: $(noid info "$vm" --json)"
    assert_eq - "$(info_ip "$vm")" "the ip line of noid info for $vm, without network"
done
netd_lines=$(tail -c "+$log_from" "$T/server.log" | grep -i netd || true)
assert_eq 1 "$(printf '%s\n' "$netd_lines" | grep -c .)" \
    "server log lines about netd for two creates without it: $netd_lines"
assert_contains "$netd_lines" warn "the line about netd's absence"
assert_not_contains "$(vx lonely ip -o -4 addr)" "172.16." "addresses in a VM without network"
assert_eq hi "$(vx lonely echo hi)" "exec in a VM without network"
CP_L=$(noid checkpoint lonely 2> /dev/null)
noid destroy lonely2 > /dev/null
ok "netd absent: create works, ip null / 'ip: -', one warning for two creates"

start_netd
noid create later > /dev/null
check_net later "netd back"
check_outside later "netd back"
check_outside a "running VM after netd restarted"
check_listener a2 "$IP_A2" hi-from-a "a2's listener after netd restarted"
ok "netd started again: new VMs networked, running VMs not cut off"

noid restore lonely "$CP_L" > /dev/null
check_net lonely "restored with netd back"
check_outside lonely "restored with netd back"
ok "a VM checkpointed without network gets one when restored with netd running"

# no TAP is left over from the golden build, clones, restores, destroys:
# exactly those of the running networked VMs remain
want=$(for vm in a a2 later lonely; do tap_of "$(vm_ip "$vm")"; done | sort | paste -sd' ')
have=$(in_host ip -o link show | awk -F': ' '$2 ~ /^noid[0-9]+(@|$)/ { sub(/@.*/, "", $2); print $2 }' |
    sort | paste -sd' ')
assert_eq "$want" "$have" "TAPs in the host namespace"
ok "no TAP left over: $have"

# every packet from a guest reached the outside MASQUERADEd
if grep -q ' 172\.16\.' "$PEER_LOG"; then
    fail "the outside saw guest addresses: $(grep ' 172\.16\.' "$PEER_LOG" | head -n 3)"
fi
ok "the outside never saw a guest address"
stop_netd
it_done
