#!/usr/bin/env bash
# guest.sh — the Debian guest (the default) next to the small busybox guest
# (scripts/build-guest.sh --small), each through its own noid-server on the
# user's default path (golden snapshot on):
#   * golden create (POST /v1/vms -> 201), median of N (goal: Debian <= 1.3 x small)
#   * cold create of the same guest: a size the golden snapshot does not
#     have (--mem 384), so the server boots the kernel, median of N
#   * the first exec in a fresh VM (`true`): what a user waits for next
# Both servers run at once and the measurements alternate between them, one
# VM starting at a time: this machine's speed drifts by tens of percent
# over minutes, and alternating puts both guests under the same drift.
# Each VM is destroyed before the next create, and the next create waits
# until the disk pool has its copies again (a refill copies the root disk:
# 0.3 s of CPU for Debian's 200 MiB, which would otherwise land on the
# next create of a 2-core machine, not on the guest's start).
# N = NOID_BENCH_REPS (default 5).  Needs both images and root.
. "$(dirname "$0")/lib.sh"
SMALL=$SMALL_GUEST
for g in "$GUEST" "$SMALL"; do
    [ -f "$g/rootfs.ext4" ] || { echo "guest image missing in $g (scripts/build-guest.sh, and --small)" >&2; exit 1; }
done

# the Debian server: bench_start_server's ($T, $URL, $TOKEN, $PID)
bench_start_server vm 'max_vms_per_user = 100'
DEB_URL=$URL DEB_TOKEN=$TOKEN DEB_DATA=$T/data
# the small guest's server: a second data dir under $T, killed with it
S=$T/small
mkdir -p "$S"
printf 'kernel = "%s"\nrootfs = "%s"\ninitrd = "%s"\nlisten = "127.0.0.1:0"\ndata_dir = "%s"\nmetrics_listen = ""\nmax_vms_per_user = 100\n' \
    "$SMALL/vmlinux" "$SMALL/rootfs.ext4" "$SMALL/initrd.cpio" "$S/data" > "$S/server.toml"
SMALL_TOKEN=$("$BUILD/server/noid-server" add-user bench --config "$S/server.toml" 2> /dev/null)
"$BUILD/server/noid-server" serve --config "$S/server.toml" > "$S/out" 2> "$S/log" &
SMALL_PID=$!
trap 'kill $SMALL_PID 2>/dev/null; wait $SMALL_PID 2>/dev/null; rm -rf "/dev/shm/noid-$(printf "%s" "$S/data" | sha256sum | cut -c1-16)"; bench_cleanup' EXIT
for _ in $(seq 100); do grep -q listening "$S/out" && break; sleep 0.1; done
SMALL_URL="http://$(sed -n 's/^noid-server listening on //p' "$S/out")"

python3 - "$DEB_URL" "$DEB_TOKEN" "$DEB_DATA" "$SMALL_URL" "$SMALL_TOKEN" "$S/data" "$REPS" <<'PY'
import glob, os, statistics, sys, time
from noidapi import Api, ms

deb_url, deb_tok, deb_data, sm_url, sm_tok, sm_data, reps = sys.argv[1:8]
reps = int(reps)
servers = {"debian": (Api(deb_url, deb_tok), deb_data), "small": (Api(sm_url, sm_tok), sm_data)}
for name, (api, _) in servers.items():
    for _ in range(1800):
        if api.call("GET", "/v1/capabilities").get("golden_ready"):
            break
        time.sleep(0.1)
    else:
        sys.exit(f"{name}: golden snapshot not ready after 180 s")

def pool_settled(data):
    """Wait until no copy is being made in the disk pool (no .partial)."""
    for _ in range(300):
        if not glob.glob(os.path.join(data, "storage/pool/*/*.partial")):
            return
        time.sleep(0.05)

res = {n: {"golden": [], "cold": [], "exec": []} for n in servers}
for i in range(reps):
    for name, (api, data) in servers.items():
        pool_settled(data)
        t0 = time.monotonic()
        api.call("POST", "/v1/vms", {"name": f"g{i}"})
        res[name]["golden"].append(time.monotonic() - t0)
        t0 = time.monotonic()
        api.call("POST", f"/v1/vms/g{i}/exec", {"command": ["true"]})
        res[name]["exec"].append(time.monotonic() - t0)
        api.call("DELETE", f"/v1/vms/g{i}")
for i in range(reps):
    for name, (api, data) in servers.items():
        pool_settled(data)
        t0 = time.monotonic()
        api.call("POST", "/v1/vms", {"name": f"c{i}", "mem_mib": 384})
        res[name]["cold"].append(time.monotonic() - t0)
        api.call("DELETE", f"/v1/vms/c{i}")

med = {n: {k: statistics.median(v) for k, v in r.items()} for n, r in res.items()}
d, s = med["debian"], med["small"]
print(f"golden create, Debian guest: median {ms(d['golden'])} of {reps}")
print(f"golden create, small guest:  median {ms(s['golden'])} of {reps}")
print(f"ratio Debian/small (golden create): {d['golden'] / s['golden']:.2f} (goal <= 1.30)")
print(f"cold create, Debian guest:   median {ms(d['cold'])} of {reps}")
print(f"cold create, small guest:    median {ms(s['cold'])} of {reps}")
print(f"ratio Debian/small (cold create): {d['cold'] / s['cold']:.2f}")
print(f"first exec `true`, Debian: {ms(d['exec'])}, small: {ms(s['exec'])}, ratio {d['exec'] / s['exec']:.2f}")
PY
