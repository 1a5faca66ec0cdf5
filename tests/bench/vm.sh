#!/usr/bin/env bash
# vm.sh — VM benchmarks of issue 3, each next to a baseline from the same run:
#   * cold create (POST /v1/vms -> 201, i.e. agent ready), median of N
#     vs raw QEMU: the same command line noid used, started by hand, until
#     the agent answers a HELLO (ratio; goal <= 1.10)
#   * HTTP exec round trip of `true` (median of 100, keep-alive client)
#     vs the agent of the same VM running `true` over its raw channel, with
#     noid-server stopped (the VM keeps running) (ratio; goal <= 1.5)
#   * the raw channel's tiny-message round trip (PING), for reference
# N = NOID_BENCH_REPS (default 5).  Needs the guest image and root.
. "$(dirname "$0")/lib.sh"
bench_start_server vm 'golden = false' 'max_vms_per_user = 100'

python3 - "$URL" "$TOKEN" "$REPS" "$T" "$PID" <<'PY'
import os, shutil, statistics, subprocess, sys, time
from agentproto import Agent
from noidapi import Api, ms, stop_server
from rawqemu import raw_argv

url, token, reps, tmp, server_pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
api = Api(url, token)
call = api.call

# -- cold create through noid --
create = []
for i in range(reps):
    t0 = time.monotonic()
    call("POST", "/v1/vms", {"name": f"c{i}"})
    create.append(time.monotonic() - t0)
    if i < reps - 1:
        call("DELETE", f"/v1/vms/c{i}")
last = f"c{reps - 1}"

# -- the same QEMU command line by hand (raw baseline) --
vmdir = subprocess.check_output(
    ["sh", "-c", f"ls -d {tmp}/data/storage/users/*/vms/{last}"]).decode().strip()
pid = int(open(os.path.join(vmdir, "qemu.pid")).read())
argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1]
argv = [a.decode() for a in argv]
raw = []
for i in range(reps):
    d = os.path.join(tmp, f"raw{i}")
    os.makedirs(d)
    shutil.copy(os.path.join(vmdir, "rootfs.ext4"), d)  # not timed: noid's copy is a reflink or sparse copy
    # its own RAM file, on tmpfs like noid's
    a = raw_argv(argv, vmdir, d, ram_path=f"/dev/shm/{os.path.basename(tmp)}-raw{i}.ram")
    t0 = time.monotonic()
    subprocess.check_call(a, cwd=d)
    ag = Agent(os.path.join(d, "agent.sock"))
    ag.hello()
    raw.append(time.monotonic() - t0)
    subprocess.call(["pkill", "-KILL", "-f", d + "/"])
    try:
        os.unlink(f"/dev/shm/{os.path.basename(tmp)}-raw{i}.ram")
    except FileNotFoundError:
        pass

cm, rm = statistics.median(create), statistics.median(raw)
print(f"cold create (request -> agent ready): median {ms(cm)} of {reps}")
print(f"raw QEMU boot -> agent HELLO_ACK:     median {ms(rm)} of {reps}")
print(f"ratio create/raw: {cm / rm:.2f} (goal <= 1.10)")

# -- exec round trip vs raw agent exec --
call("POST", f"/v1/vms/{last}/exec", {"command": ["true"]})  # warm
http_rt = []
for _ in range(100):
    t0 = time.monotonic()
    r = call("POST", f"/v1/vms/{last}/exec", {"command": ["true"]})
    http_rt.append(time.monotonic() - t0)
    assert r["exit_code"] == 0
# the same VM without the server: stop noid-server (the VM keeps running)
api.close()
stop_server(server_pid)
ag = Agent(os.path.join(vmdir, "agent.sock"))
ag.hello()
raw_rt = []
ag.run(["true"])
for _ in range(100):
    t0 = time.monotonic()
    code, _ = ag.run(["true"])
    raw_rt.append(time.monotonic() - t0)
    assert code == 0
ping = []
for _ in range(100):
    t0 = time.monotonic()
    ag.ping()
    ping.append(time.monotonic() - t0)
hm, am = statistics.median(http_rt), statistics.median(raw_rt)
print(f"HTTP exec of true: median {ms(hm)} of 100")
print(f"raw agent exec of true: median {ms(am)} of 100")
print(f"ratio http/raw: {hm / am:.2f} (goal <= 1.5)")
print(f"raw channel PING round trip: median {statistics.median(ping) * 1e3:.3f} ms of 100")
PY
