#!/usr/bin/env bash
# network.sh — networking benchmarks of issue 11, each next to a baseline
# from the same run.  Everything runs in two network namespaces made for the
# run (tests/integration/netns.sh): noid-netd, noid-server and the VMs in
# the "host" one, outside_peer.py (HTTP, DNS, a TCP sink) in the "outside"
# one; nothing leaves the machine.
#   * create from the golden snapshot with netd vs without it (the same
#     server, netd stopped), medians of N, ratio; and the share of the
#     netd lease in it (the server's debug line
#     `network: noidN (ADDR) for noid-INSTANCE in N ms`)
#   * TCP throughput guest -> outside (busybox dd on a busybox nc
#     connection into the sink, through TAP, forwarding and NAT) vs host
#     namespace -> outside with the same programs over the same veth,
#     ratio; and the other direction (busybox wget of /bytes) the same way
# N = NOID_BENCH_REPS (default 5); NOID_BENCH_NET_MIB MiB per transfer
# (default 32).  Needs root, the guest image and noid-netd.
. "$(dirname "$0")/lib.sh"
MIB=${NOID_BENCH_NET_MIB:-32}
NETD_BIN="$BUILD/netd/noid-netd"
[ "$(id -u)" -eq 0 ] || { echo "network.sh: needs root (network namespaces)" >&2; exit 1; }
[ -x "$NETD_BIN" ] || { echo "network.sh: $NETD_BIN not built" >&2; exit 1; }

# netns.sh is written for the integration tests' lib.sh: give it the three
# helpers it uses
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
fail() { echo "network.sh: $*" >&2; exit 1; }
require_root() { :; }
IT_EXTRA_CLEANUP=""
IT_NS=()
. "$ROOT/tests/integration/netns.sh"
# the server stops before its namespace goes (and with it netd and the peer)
trap 'bench_cleanup; netns_cleanup' EXIT
netns_setup > /dev/null 2>&1

# the peer and netd are never waited for (the cleanup kills them): out of
# the job table, so their end prints nothing
in_out /usr/bin/python3 "$ROOT/tests/integration/outside_peer.py" --log "$T/peer.log" > "$T/peer.out" 2>&1 &
disown
for _ in $(seq 100); do grep -qx ready "$T/peer.out" && break; sleep 0.1; done
grep -qx ready "$T/peer.out" || fail "outside_peer.py did not start: $(cat "$T/peer.out")"

# started without a shell function in between: $! is noid-netd (ip netns
# exec execs it) and can be signalled
ip netns exec "$NETNS_HOST" "$NETD_BIN" --socket "$T/netd.sock" --server-uid 0 2>> "$T/netd.log" &
NETD=$!
disown
for _ in $(seq 100); do [ -S "$T/netd.sock" ] && break; sleep 0.1; done
[ -S "$T/netd.sock" ] || fail "noid-netd did not start: $(tail -n 5 "$T/netd.log")"

# bench_start_server, in the host namespace, with the server's debug log
printf 'kernel = "%s"\nrootfs = "%s"\ninitrd = "%s"\n' \
    "$GUEST/vmlinux" "$GUEST/rootfs.ext4" "$GUEST/initrd.cpio" > "$T/server.toml"
printf 'listen = "127.0.0.1:0"\nmetrics_listen = "127.0.0.1:0"\ndata_dir = "%s"\n' "$T/data" >> "$T/server.toml"
printf 'netd_socket = "%s"\nguest_dns = "192.0.2.1"\nmax_vms_per_user = 100\n' "$T/netd.sock" >> "$T/server.toml"
TOKEN=$("$BUILD/server/noid-server" add-user bench --config "$T/server.toml" 2> /dev/null)
NOID_DEBUG=1 ip netns exec "$NETNS_HOST" "$BUILD/server/noid-server" serve --config "$T/server.toml" \
    > "$T/out" 2> "$T/log" &
# shellcheck disable=SC2034 # bench_cleanup (lib.sh) stops it
PID=$!
for _ in $(seq 100); do grep -q listening "$T/out" && break; sleep 0.1; done
URL="http://$(sed -n 's/^noid-server listening on //p' "$T/out")"

# the host-namespace baseline uses the same busybox applets as the guest
BUSYBOX=$(command -v busybox || true)
[ -n "$BUSYBOX" ] || fail "busybox is missing on the host (the baseline runs its nc and wget)"

in_host /usr/bin/python3 - "$URL" "$TOKEN" "$REPS" "$T" "$NETD" "$MIB" "$BUSYBOX" "$NETD_BIN" << 'PY'
import os, re, signal, statistics, subprocess, sys, time
from noidapi import Api, ms

url, token, reps, tmp, netd, mib, busybox, netd_bin = sys.argv[1:9]
reps, netd, mib = int(reps), int(netd), int(mib)
api = Api(url, token)
call = api.call
med = statistics.median
nbytes = mib << 20
sock = os.path.join(tmp, "netd.sock")

for _ in range(3000):
    if call("GET", "/v1/capabilities").get("golden_ready"):
        break
    time.sleep(0.1)
else:
    sys.exit("golden snapshot not ready after 300 s")


def guest(vm, cmd):
    r = call("POST", f"/v1/vms/{vm}/exec", {"command": ["sh", "-c", cmd], "timeout_secs": 30})
    assert r["exit_code"] == 0, (cmd, r)
    return r["stdout"]


def host(cmd):
    return subprocess.run(["sh", "-c", cmd], check=True, capture_output=True, text=True).stdout


def mbps(n, secs):
    return n / secs / 1e6


# The same shell lines run in the guest and in the host namespace (there
# with the host's busybox applets; the guest runs busybox's too, which both
# guests have).  Upload: nc connects to the outside's
# sink and runs dd on the connection (dd writes 64 KiB at a time; `dd | nc`
# would measure nc's 1 KiB writes), the sink logs the bytes and the
# seconds from accept to EOF.  Download: wget of /bytes, timed by the
# client with the kernel's clock ("now at N nsecs" of /proc/timer_list).
def upload(bb):
    return f"{bb}nc 192.0.2.1 5001 -e {bb}dd if=/dev/zero bs=64k count={nbytes >> 16}"


NOW = "sed -n '3{s/^now at //;s/ nsecs$//;p;q}' /proc/timer_list"


def download(bb):
    return (f"a=$({NOW}); {bb}wget -q -O /dev/null 'http://192.0.2.1/bytes?n={nbytes}'"
            f" && b=$({NOW}) && echo $a $b")


def sink_lines():
    with open(os.path.join(tmp, "peer.log")) as f:
        return [line.split() for line in f if line.startswith("sink ")]


def series(run, line, is_upload):
    """Median MB/s over reps runs of an upload or download line."""
    rates = []
    for _ in range(reps):
        before = len(sink_lines())
        out = run(line).split()
        if is_upload:
            for _ in range(100):  # the sink logs once it has seen EOF
                lines = sink_lines()
                if len(lines) > before:
                    break
                time.sleep(0.05)
            _, _, _, n, secs = lines[-1]
            n, secs = int(n), float(secs)
            assert n == nbytes, (n, nbytes)
        else:
            n, secs = nbytes, (int(out[1]) - int(out[0])) / 1e9
        rates.append(mbps(n, secs))
    return med(rates)


# ---------- throughput: guest -> outside vs host namespace -> outside ----------
vm = call("POST", "/v1/vms", {"name": "tp"})
assert vm.get("ip"), f"the VM has no network: {vm}"
gu = series(lambda c: guest("tp", c), upload("busybox "), True)
hu = series(host, upload(busybox + " "), True)
gd = series(lambda c: guest("tp", c), download("busybox "), False)
hd = series(host, download(busybox + " "), False)
call("DELETE", "/v1/vms/tp")
print(f"TCP guest -> outside (dd into a sink, {mib} MiB):     median {gu:.1f} MB/s of {reps}")
print(f"TCP host namespace -> outside (same dd, same veth): median {hu:.1f} MB/s of {reps}")
print(f"ratio guest/host upload: {gu / hu:.2f}")
print(f"TCP outside -> guest (wget /bytes, {mib} MiB):        median {gd:.1f} MB/s of {reps}")
print(f"TCP outside -> host namespace (same wget):          median {hd:.1f} MB/s of {reps}")
print(f"ratio guest/host download: {gd / hd:.2f}")


# ---------- create from golden with netd vs without (interleaved) ----------
def start_netd():
    if os.path.exists(sock):
        os.unlink(sock)
    p = subprocess.Popen([netd_bin, "--socket", sock, "--server-uid", "0"],
                         stderr=open(os.path.join(tmp, "netd.log"), "a"))
    for _ in range(100):
        if os.path.exists(sock):
            return p.pid
        time.sleep(0.1)
    sys.exit("noid-netd did not start again")


def stop_netd(pid):
    os.kill(pid, signal.SIGTERM)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:  # the first one was started by the shell
        while os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z":
            time.sleep(0.05)


def timed_create(name, networked):
    t0 = time.monotonic()
    info = call("POST", "/v1/vms", {"name": name})
    secs = time.monotonic() - t0
    assert info["restored_from"] == "golden", info
    assert bool(info.get("ip")) == networked, info
    call("DELETE", f"/v1/vms/{name}")
    return secs


log_path = os.path.join(tmp, "log")
log_from = os.path.getsize(log_path)
with_netd, without = [], []
for i in range(reps):
    with_netd.append(timed_create(f"n{i}", True))
    stop_netd(netd)
    without.append(timed_create(f"x{i}", False))
    netd = start_netd()
# the server's debug line of each lease (only the creates with netd lease)
with open(log_path) as f:
    f.seek(log_from)
    net_ms = [float(m) for m in re.findall(r"network: noid\d+ \([0-9.]+\) for noid-\w+ in (\d+) ms", f.read())]
wm, xm = med(with_netd), med(without)
print(f"create from golden with netd:    median {ms(wm)} of {reps}")
print(f"create from golden without netd: median {ms(xm)} of {reps}")
print(f"ratio with/without netd: {wm / xm:.2f}")
if net_ms:
    nm = med(net_ms)
    print(f"netd lease in a create (server debug log): median {nm:.1f} ms of {len(net_ms)},"
          f" {nm / 1e3 / wm * 100:.0f}% of the create")
else:
    print("netd lease in a create: the server logged no 'network: noidN (ADDR) for noid-ID in N ms' line")
PY
