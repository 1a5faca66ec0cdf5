# netns.sh — network namespaces for the networking tests (DESIGN.md §8).
#
# Source after lib.sh and call `netns_setup` after `it_setup`.  It makes two
# namespaces that exist only for this test and never touches the root
# namespace's interfaces, routes or iptables:
#
#   <p>-out   "the outside": one veth end ($NETNS_OUT_IP, 192.0.2.1/24) and
#             lo; no other link and no route beyond its /24, so nothing
#             that reaches it can go further.  Test peers (an HTTP server,
#             a DNS answer) listen here.
#   <p>-host  "the host": the other veth end ($NETNS_UPLINK, 192.0.2.2/24)
#             with the default route through the outside end, IPv4
#             forwarding on.  noid-netd, noid-server and so every VM (their
#             TAPs) run here.
#
# 192.0.2.0/24 is TEST-NET-1 (RFC 5737): documentation only, never routed,
# so even a mistake could not address a real host.  The veth pair is
# created inside the namespaces (`ip -n`), never in the root namespace.
#
# After netns_setup the lib.sh helpers (start_server, http, noid) run inside
# the host namespace (IT_NS); in_host / in_out run anything else there.
# Namespaces and everything running in them go at exit, pass or fail.

NETNS_OUT_IP=192.0.2.1
NETNS_HOST_IP=192.0.2.2
NETNS_UPLINK=uplink0
NETNS_OUT=""
NETNS_HOST=""

in_host() { ip netns exec "$NETNS_HOST" "$@"; }
in_out() { ip netns exec "$NETNS_OUT" "$@"; }

# Kill every process in namespace $1 and delete it.
netns_delete() {
    local ns=$1 pids i
    ip netns list 2>/dev/null | grep -qw -- "$ns" || return 0
    for i in 1 2 3 4 5; do
        pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
        [ -z "$pids" ] && break
        # shellcheck disable=SC2086
        kill -KILL $pids 2>/dev/null
        sleep 0.2
    done
    ip netns delete "$ns" 2>/dev/null || true
}

netns_cleanup() {
    [ -n "$NETNS_HOST" ] && netns_delete "$NETNS_HOST"
    [ -n "$NETNS_OUT" ] && netns_delete "$NETNS_OUT"
    NETNS_HOST=""
    NETNS_OUT=""
}

netns_setup() {
    require_root
    command -v ip > /dev/null || fail "ip (iproute2) is missing"
    local p
    p="noidt$$"
    NETNS_OUT="$p-out"
    NETNS_HOST="$p-host"
    # lib.sh's it_cleanup runs this on EXIT, once the server is stopped
    IT_EXTRA_CLEANUP="${IT_EXTRA_CLEANUP:-} netns_cleanup;"
    ip netns add "$NETNS_OUT" || fail "cannot create network namespace $NETNS_OUT"
    ip netns add "$NETNS_HOST" || fail "cannot create network namespace $NETNS_HOST"
    ip -n "$NETNS_OUT" link set lo up
    ip -n "$NETNS_HOST" link set lo up
    ip -n "$NETNS_OUT" link add outside0 type veth peer name "$NETNS_UPLINK" netns "$NETNS_HOST"
    ip -n "$NETNS_OUT" addr add "$NETNS_OUT_IP/24" dev outside0
    ip -n "$NETNS_OUT" link set outside0 up
    ip -n "$NETNS_HOST" addr add "$NETNS_HOST_IP/24" dev "$NETNS_UPLINK"
    ip -n "$NETNS_HOST" link set "$NETNS_UPLINK" up
    ip -n "$NETNS_HOST" route add default via "$NETNS_OUT_IP"
    in_host sysctl -q -w net.ipv4.ip_forward=1
    # the outside namespace must have no way further than its own /24
    if ip -n "$NETNS_OUT" route show default | grep -q .; then
        fail "the outside namespace has a default route"
    fi
    IT_NS=(ip netns exec "$NETNS_HOST")
    log "namespaces $NETNS_OUT (outside, $NETNS_OUT_IP) and $NETNS_HOST (host, $NETNS_HOST_IP)"
}
