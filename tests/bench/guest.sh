#!/usr/bin/env bash
# guest.sh — the Debian guest (the default) next to the small busybox guest
# (scripts/build-guest.sh --small), both through noid-server on the user's
# default path (golden snapshot on):
#   * golden create (POST /v1/vms -> 201), median of N (goal: Debian <= 1.3 x small)
#   * cold create of the same guest: a size the golden snapshot does not
#     have (--mem 384), so the server boots the kernel, median of N
#   * the first exec in a fresh VM (`true`): what a user waits for next
# One server per guest, one after the other (2 cores: never both at once).
# N = NOID_BENCH_REPS (default 5).  Needs both images and root.
. "$(dirname "$0")/lib.sh"
SMALL=${NOID_SMALL_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/noid/guest-small}
for g in "$GUEST" "$SMALL"; do
    [ -f "$g/rootfs.ext4" ] || { echo "guest image missing in $g (scripts/build-guest.sh, and --small)" >&2; exit 1; }
done

measure() { # label guest-dir -> "golden cold exec" medians in seconds on stdout
    GUEST=$2
    bench_start_server vm 'max_vms_per_user = 100'
    python3 - "$URL" "$TOKEN" "$REPS" <<'PY'
import statistics, sys, time
from noidapi import Api

url, token, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
api = Api(url, token)
for _ in range(1200):
    if api.call("GET", "/v1/capabilities").get("golden_ready"):
        break
    time.sleep(0.1)
else:
    sys.exit("golden snapshot not ready after 120 s")

def timed(body):
    t0 = time.monotonic()
    api.call("POST", "/v1/vms", body)
    return time.monotonic() - t0

golden, cold, first_exec = [], [], []
for i in range(reps):
    golden.append(timed({"name": f"g{i}"}))
    t0 = time.monotonic()
    api.call("POST", f"/v1/vms/g{i}/exec", {"command": ["true"]})
    first_exec.append(time.monotonic() - t0)
    api.call("DELETE", f"/v1/vms/g{i}")
for i in range(reps):
    cold.append(timed({"name": f"c{i}", "mem_mib": 384}))
    api.call("DELETE", f"/v1/vms/c{i}")
print(statistics.median(golden), statistics.median(cold), statistics.median(first_exec))
PY
    kill "$PID"
    wait "$PID" 2>/dev/null || true
    PID=""
}

read -r dg dc de < <(measure debian "$GUEST")
# a fresh data dir (and RAM directory) for the second server
rm -rf "$T/data" "/dev/shm/noid-$(printf '%s' "$T/data" | sha256sum | cut -c1-16)"
read -r sg sc se < <(measure small "$SMALL")

python3 - "$dg" "$dc" "$de" "$sg" "$sc" "$se" "$REPS" <<'PY'
import sys
dg, dc, de, sg, sc, se = map(float, sys.argv[1:7])
reps = sys.argv[7]
ms = lambda s: f"{s * 1000:.1f} ms"
print(f"golden create, Debian guest: median {ms(dg)} of {reps}")
print(f"golden create, small guest:  median {ms(sg)} of {reps}")
print(f"ratio Debian/small (golden create): {dg / sg:.2f} (goal <= 1.30)")
print(f"cold create, Debian guest:   median {ms(dc)} of {reps}")
print(f"cold create, small guest:    median {ms(sc)} of {reps}")
print(f"ratio Debian/small (cold create): {dc / sc:.2f}")
print(f"first exec `true`, Debian: {ms(de)}, small: {ms(se)}, ratio {de / se:.2f}")
PY
