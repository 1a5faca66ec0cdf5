#!/usr/bin/env bash
# netd.sh — noid-netd's cost per VM (issue 11): a setup and a teardown, as
# the server asks for them (one connection each, JSON lines), median and
# p90 of N pairs; next to the same work done in the same run by the ip
# command (ip tuntap add + ip addr add + ip link set up + ip link del),
# with the ratio netd/ip.  Also netd's start-up time (orphan sweep and the
# iptables rules).  Everything runs in a network namespace made for the
# run and deleted after it: no interface or rule of the host is touched.
# N = NOID_BENCH_NETD_REPS (default 50).  Needs root.
. "$(dirname "$0")/lib.sh"
N=${NOID_BENCH_NETD_REPS:-50}
NS="noidb$$"
NETD_PID=""

[ "$(id -u)" -eq 0 ] || { echo "netd.sh needs root (network namespaces, TAPs)" >&2; exit 1; }
command -v ip > /dev/null || { echo "ip (iproute2) missing: run scripts/deps.sh" >&2; exit 1; }
[ -x "$BUILD/netd/noid-netd" ] || { echo "$BUILD/netd/noid-netd not built" >&2; exit 1; }

netd_bench_cleanup() {
    [ -n "$NETD_PID" ] && kill "$NETD_PID" 2>/dev/null && wait "$NETD_PID" 2>/dev/null
    local pids
    pids=$(ip netns pids "$NS" 2>/dev/null | tr '\n' ' ')
    # shellcheck disable=SC2086
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    ip netns delete "$NS" 2>/dev/null
    bench_cleanup
}
trap netd_bench_cleanup EXIT

# a namespace like the tests' host one: an uplink (a veth whose other end
# stays in the namespace too) with a default route through it, nothing else
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add uplink0 type veth peer name outside0
ip -n "$NS" addr add 192.0.2.2/24 dev uplink0
ip -n "$NS" link set uplink0 up
ip -n "$NS" link set outside0 up
ip -n "$NS" route add default via 192.0.2.1
ip netns exec "$NS" sysctl -q -w net.ipv4.ip_forward=1

start=$(date +%s%N)
ip netns exec "$NS" "$BUILD/netd/noid-netd" --socket "$T/netd.sock" --server-uid 0 2> "$T/netd.log" &
NETD_PID=$!
for _ in $(seq 200); do grep -q 'serving ' "$T/netd.log" && break; sleep 0.01; done
grep -q 'serving ' "$T/netd.log" || { cat "$T/netd.log" >&2; exit 1; }
started=$(date +%s%N)
awk -v a="$start" -v b="$started" \
    'BEGIN { printf "netd start-up (orphan sweep, 7 iptables rules checked and added): %.0f ms\n", (b - a) / 1e6 }'

ip netns exec "$NS" /usr/bin/python3 - "$T/netd.sock" "$N" <<'PY'
import json, socket, statistics, subprocess, sys, time

sock, n = sys.argv[1], int(sys.argv[2])

def call(req):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock)
    s.sendall(json.dumps(req).encode() + b"\n")
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    r = json.loads(data)
    if not r.get("ok"):
        sys.exit(f"netd refused {req}: {r}")
    return r

def netd_pair(i):
    t0 = time.perf_counter()
    r = call({"op": "setup", "owner": f"bench-{i}"})
    t1 = time.perf_counter()
    call({"op": "teardown", "tap": r["tap"], "owner": f"bench-{i}"})
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1

def ip_pair(i):
    # the same work by hand: a persistent TAP owned by uid 0, its /30, up, gone
    dev = "noidb0"
    t0 = time.perf_counter()
    subprocess.run(["ip", "tuntap", "add", "dev", dev, "mode", "tap", "user", "0"], check=True)
    subprocess.run(["ip", "addr", "add", "172.16.0.1/30", "dev", dev], check=True)
    subprocess.run(["ip", "link", "set", dev, "up"], check=True)
    t1 = time.perf_counter()
    subprocess.run(["ip", "link", "del", dev], check=True)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1

def p90(v):
    return sorted(v)[max(0, int(round(0.9 * len(v))) - 1)]

def run(f):
    f(-1)  # warm-up, not counted
    up, down = [], []
    for i in range(n):
        a, b = f(i)
        up.append(a)
        down.append(b)
    total = [a + b for a, b in zip(up, down)]
    return up, down, total

ms = lambda s: f"{s * 1000:.2f} ms"
results = {}
for name, f in (("netd", netd_pair), ("ip", ip_pair)):
    up, down, total = run(f)
    results[name] = statistics.median(total)
    print(f"{name:4s} setup+teardown per VM: median {ms(statistics.median(total))}, "
          f"p90 {ms(p90(total))} (setup median {ms(statistics.median(up))}, "
          f"teardown median {ms(statistics.median(down))}; {n} VMs)")
print(f"ratio netd/ip (median setup+teardown): {results['netd'] / results['ip']:.2f}")
PY
