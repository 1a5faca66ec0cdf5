#!/usr/bin/env bash
# test_agent_net.sh — the agent configures a real NIC (agent/net.c), without
# a VM: the real noid-agent runs in a throwaway network and mount namespace
# (unshare) with a veth pair standing in for the guest's eth0, its own
# /sys, /run and an /etc of the test's, so nothing of the host is touched
# and no packet can leave (the namespace has no route out).  Checked with
# `ip` after each step:
#  - the snapshot's leftovers (two addresses, a default and a static route
#    via the old gateway, an ARP entry of the old gateway, the old MAC) are
#    all gone after the cold-boot ip= (--cmdline), which sets the address,
#    the default route and /etc/resolv.conf, keeping the MAC;
#  - an agent restarted in the same boot leaves the network alone (the
#    /run marker), as one in a restored clone must;
#  - SET_NETWORK (v4) gives a clone a new MAC, address, gateway and flushes
#    its ARP entries, also when the address stays the same (restore in
#    place); without dns, resolv.conf stays as it was;
#  - SET_NETWORK down leaves no IPv4 address or route and the link down;
#  - a gateway the kernel refuses comes back as ERROR with the kernel's
#    reason, and the agent serves on.
# Needs root (namespaces, sysfs): skipped (77) otherwise.
. "$(dirname "$0")/lib.sh"

if [ "${1:-}" = "--inner" ]; then
    # inside the namespaces: $2 is the test's directory.  Never in the
    # machine's own: what follows mounts over /sys, /run and /etc and adds
    # interfaces and routes.
    for ns in net mnt; do
        [ "$(readlink "/proc/self/ns/$ns")" != "$(readlink "/proc/1/ns/$ns")" ] ||
            fail "--inner runs only in the namespaces the test makes (same $ns namespace as init)"
    done
    T=$2
    AGENT="$NOID_BUILD/agent/noid-agent"
    PEER=(/usr/bin/python3 "$IT_DIR/agent_peer.py" "$T/agent.sock" set-network)
    mount -t sysfs sysfs /sys
    mount -t tmpfs tmpfs /run
    mkdir "$T/etc"
    printf 'nameserver 198.51.100.99\n' > "$T/etc/resolv.conf"
    mount --bind "$T/etc" /etc
    ip link set lo up
    ip link add veth0 type veth peer name veth1
    ip link set veth1 up
    # what a snapshot leaves behind
    ip link set veth0 address 02:11:22:33:44:55
    ip addr add 10.9.9.2/24 dev veth0
    ip addr add 10.9.9.3/24 dev veth0
    ip link set veth0 up
    ip route add default via 10.9.9.1
    ip route add 192.168.7.0/24 via 10.9.9.1
    ip neigh add 10.9.9.1 lladdr 02:00:00:00:00:01 dev veth0 nud reachable

    addrs() { # the IPv4 addresses, space-separated
        local _n _s rest=
        read -r _n _s rest < <(ip -4 -br addr show dev veth0) || true
        # shellcheck disable=SC2086 # unquoted on purpose: one space between
        echo $rest
    }
    routes() { ip -4 route show dev veth0 | sed 's/ *$//' | tr '\n' ';'; }
    neighs() { ip -4 neigh show dev veth0 | tr '\n' ';'; }
    mac() { cat /sys/class/net/veth0/address; }
    start_agent() {
        "$AGENT" --unix-listen "$T/agent.sock" --cmdline "$T/cmdline" -v \
            --log-file "$T/agent.log" &
        APID=$!
        for _ in $(seq 50); do [ -S "$T/agent.sock" ] && break; sleep 0.1; done
        [ -S "$T/agent.sock" ] || fail "the agent did not start: $(cat "$T/agent.log")"
    }
    stop_agent() { kill "$APID"; wait "$APID" 2>/dev/null || true; rm -f "$T/agent.sock"; }

    printf 'console=ttyS0 ip=172.16.0.2::172.16.0.1:255.255.255.252::veth0:off:192.0.2.1\n' \
        > "$T/cmdline"
    start_agent
    assert_eq "172.16.0.2/30" "$(addrs)" "addresses after ip="
    assert_eq "default via 172.16.0.1;172.16.0.0/30 proto kernel scope link src 172.16.0.2;" \
        "$(routes)" "routes after ip="
    assert_eq "" "$(neighs)" "ARP entries after ip="
    assert_eq "02:11:22:33:44:55" "$(mac)" "a cold boot keeps the device's MAC"
    assert_eq "nameserver 192.0.2.1" "$(cat /etc/resolv.conf)" "resolv.conf after ip="
    assert_contains "$(ip link show veth0)" "state UP" "link after ip="
    # the agent's own flush took them, not a side effect of the kernel's
    assert_contains "$(cat "$T/agent.log")" \
        "veth0: flushed 3 route(s), 1 neighbour(s), 2 address(es)" "the agent's flush"
    ok "cold-boot ip=: the snapshot's addresses, routes and ARP entries are gone, the new ones set"

    # a respawned agent (same boot, or a clone's) leaves the network alone
    stop_agent
    ip addr add 10.8.8.8/24 dev veth0
    start_agent
    assert_eq "172.16.0.2/30 10.8.8.8/24" "$(addrs)" "addresses after a restarted agent"
    assert_contains "$(cat "$T/agent.log")" "ip= was applied earlier in this boot" \
        "the restarted agent's log"
    ok "an agent restarted in the same boot does not apply ip= again"

    # a clone: new MAC, address and gateway; the original's ARP entry goes
    ip neigh add 172.16.0.1 lladdr 02:00:00:00:00:02 dev veth0 nud reachable
    out=$("${PEER[@]}" up aa:fc:00:00:00:05 172.16.0.6/30 172.16.0.5 0.0.0.0) ||
        fail "SET_NETWORK for a clone: $out"
    assert_eq "172.16.0.6/30" "$(addrs)" "addresses after SET_NETWORK"
    assert_eq "default via 172.16.0.5;172.16.0.4/30 proto kernel scope link src 172.16.0.6;" \
        "$(routes)" "routes after SET_NETWORK"
    assert_eq "" "$(neighs)" "ARP entries after SET_NETWORK"
    assert_eq "aa:fc:00:00:00:05" "$(mac)" "MAC after SET_NETWORK"
    assert_eq "nameserver 192.0.2.1" "$(cat /etc/resolv.conf)" "resolv.conf without dns"
    ok "SET_NETWORK (clone): new MAC, address and gateway; ARP flushed; resolv.conf untouched"

    # restore in place: the same settings; the snapshot's ARP entry still goes
    ip neigh add 172.16.0.5 lladdr 02:00:00:00:00:03 dev veth0 nud reachable
    out=$("${PEER[@]}" up aa:fc:00:00:00:05 172.16.0.6/30 172.16.0.5 192.0.2.53) ||
        fail "SET_NETWORK with the same address: $out"
    assert_eq "172.16.0.6/30" "$(addrs)" "addresses after the same SET_NETWORK"
    assert_eq "" "$(neighs)" "ARP entries after the same SET_NETWORK"
    assert_contains "$(cat "$T/agent.log")" \
        "veth0: flushed 2 route(s), 1 neighbour(s), 1 address(es)" "the agent's second flush"
    assert_eq "nameserver 192.0.2.53" "$(cat /etc/resolv.conf)" "resolv.conf with dns"
    [ ! -e /etc/.resolv.conf.noid-agent ] || fail "the temporary resolv.conf was left behind"
    ok "SET_NETWORK with unchanged settings still flushes ARP; dns rewrites resolv.conf"

    # the noid guest's /etc/resolv.conf is a symlink into /run: the file
    # it names is written, the link stays
    rm /etc/resolv.conf
    ln -s /run/resolv.conf /etc/resolv.conf
    out=$("${PEER[@]}" up aa:fc:00:00:00:05 172.16.0.6/30 172.16.0.5 192.0.2.54) ||
        fail "SET_NETWORK with a symlinked resolv.conf: $out"
    [ -L /etc/resolv.conf ] || fail "the resolv.conf symlink was replaced by a file"
    assert_eq "nameserver 192.0.2.54" "$(cat /run/resolv.conf)" "resolv.conf's target"
    [ ! -e /run/.resolv.conf.noid-agent ] || fail "the temporary resolv.conf was left behind"
    ok "a symlinked resolv.conf: its target is written, the link kept"

    # a gateway the kernel refuses (the subnet's broadcast address): ERROR
    # with the step and the kernel's reason, the agent serves on
    out=$("${PEER[@]}" up aa:fc:00:00:00:05 172.16.0.6/30 172.16.0.7 0.0.0.0) &&
        fail "a gateway at the broadcast address was accepted: $out"
    log "refused: $out"
    assert_contains "$out" "ERROR: set network: set the default route via veth0: Invalid argument (kernel: " \
        "the refused route's error"
    out=$("${PEER[@]}" up aa:fc:00:00:00:05 172.16.0.6/30 172.16.0.5 0.0.0.0) ||
        fail "SET_NETWORK after a refused one: $out"
    assert_eq "172.16.0.6/30" "$(addrs)" "addresses after a refused SET_NETWORK"
    ok "a setting the kernel refuses is an ERROR naming the step; the next one works"

    out=$("${PEER[@]}" down) || fail "SET_NETWORK down: $out"
    assert_eq "" "$(addrs)" "addresses after down"
    assert_eq "" "$(routes)" "routes after down"
    assert_not_contains "$(ip link show veth0)" "UP," "link after down"
    ok "SET_NETWORK down: no address, no route, link down"
    stop_agent
    echo "$PASSED" > "$T/passed"
    exit 0
fi

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
if ! command -v unshare > /dev/null || ! command -v ip > /dev/null; then
    echo "SKIP: needs unshare and ip"
    exit 77
fi
it_setup
unshare -n -m --propagation private bash "$IT_DIR/test_agent_net.sh" --inner "$T" ||
    fail "the namespace part failed; agent log:"$'\n'"$(cat "$T/agent.log" 2>/dev/null || true)"
PASSED=$(cat "$T/passed")
it_done
