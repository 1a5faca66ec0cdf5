#!/usr/bin/env bash
# snapshot.sh — checkpoint/golden/clone benchmarks of issues 4 and 7, each
# next to a baseline measured in the same run:
#   * checkpoint pause and total time of a VM created from the golden
#     snapshot (the default path) vs raw QEMU doing stop -> migrate to a file
#     -> completed on the same guest (raw QEMU restored from the same golden
#     snapshot the same way), goal: pause <= 1.0 x raw; then restore in place
#     and clone of that checkpoint
#   * checkpoint pause and total time, cold-booted 256 MiB and 1 GiB guests
#     (median of N) vs raw QEMU on the same command line with ordinary RAM:
#     QMP stop -> migrate to a file -> completed (goal: pause <= 1.0 x raw)
#   * create from the golden snapshot vs raw QEMU restoring that same
#     snapshot by hand to the agent's first answer (goal <= 1.2 x raw),
#     and vs a cold create (goal >= 10 x faster)
#   * clone (restore --as) latency
#   * memory (sum of PSS) of 10 VMs created from golden vs 10 cold-booted VMs
#     (goal <= 0.4)
# N = NOID_BENCH_REPS (default 5).  Needs the guest image.
. "$(dirname "$0")/lib.sh"
bench_start_server vm 'golden = true' 'max_vms_per_user = 100' 'max_mem_mib = 2048' \
    'boot_timeout_secs = 300'

python3 - "$URL" "$TOKEN" "$REPS" "$T" <<'PY'
import glob, os, statistics, subprocess, sys, time
from agentproto import Agent
from noidapi import Api, ms
from qmp import QMP
from rawqemu import raw_argv

url, token, reps, tmp = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
api = Api(url, token)
call = api.call
med = statistics.median

def vm_dir(name):
    return glob.glob(f"{tmp}/data/storage/users/*/vms/{name}")[0]

def qemu_argv(name):
    pid = int(open(os.path.join(vm_dir(name), "qemu.pid")).read())
    return [a.decode() for a in open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:-1]], pid

def pss_kib(pid):
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0

def raw_copy(name, tag, keep_ram_file):
    """Start the VM's own QEMU command line by hand in a fresh dir; plain RAM
    unless keep_ram_file. Returns (dir, argv)."""
    argv, _ = qemu_argv(name)
    src = vm_dir(name)
    d = os.path.join(tmp, tag)
    os.makedirs(d)
    subprocess.check_call(["cp", "--sparse=always", os.path.join(src, "rootfs.ext4"), d])
    return d, raw_argv(argv, src, d, keep_ram_file)


def raw_stop_migrate(q, d, reps):
    """Raw QEMU: stop -> migrate to a file (an fd, as noid does) -> completed,
    then cont; the durations of stop..completed."""
    q.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-ignore-shared", "state": False}])
    q.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 40})
    raw = []
    for i in range(reps):
        f = os.path.join(d, f"state{i}")
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        q.cmd_fd("getfd", fd, fdname="raw")
        os.close(fd)
        t0 = time.monotonic()
        q.cmd("stop")
        q.cmd("migrate", uri="fd:raw")
        while q.cmd("query-migrate")["status"] not in ("completed", "failed"):
            time.sleep(0.001)
        raw.append(time.monotonic() - t0)
        q.cmd("cont")
        os.unlink(f)
    return raw


def checkpoint_series(name, reps):
    pauses, totals = [], []
    for i in range(reps):
        t0 = time.monotonic()
        cp = call("POST", f"/v1/vms/{name}/checkpoints", {"label": f"b{i}"})
        totals.append(time.monotonic() - t0)
        pauses.append(cp["pause_ms"] / 1000)
        call("DELETE", f"/v1/vms/{name}/checkpoints/{cp['id']}")
    return pauses, totals


def raw_from_golden(argv, src, d):
    """Raw QEMU restored from the golden snapshot exactly as noid does it
    (template memory mapped privately, x-ignore-shared); returns its QMP
    once its agent answered, and the seconds from QEMU's start to then."""
    os.makedirs(d)
    subprocess.check_call(["cp", "--sparse=always", os.path.join(golden, "rootfs.ext4"), d])
    t0 = time.monotonic()
    subprocess.check_call(raw_argv(argv, src, d), cwd=d)
    q = QMP(os.path.join(d, "qmp.sock"))
    q.cmd("migrate-set-capabilities", capabilities=[{"capability": "x-ignore-shared", "state": True}])
    q.cmd("migrate-incoming", uri=f"exec:cat {golden}/vmstate.snap")
    while q.cmd("query-status")["status"] == "inmigrate":
        time.sleep(0.001)
    q.cmd("cont")
    Agent(os.path.join(d, "agent.sock")).hello()
    return q, time.monotonic() - t0


golden = os.path.join(tmp, "data", "golden")
wait_golden = time.monotonic() + 300
while not call("GET", "/v1/capabilities")["golden_ready"] and time.monotonic() < wait_golden:
    time.sleep(0.2)

# ---------- a golden-created VM: checkpoint pause vs raw stop->migrate; restore, clone ----------
call("POST", "/v1/vms", {"name": "gk"})
assert call("GET", "/v1/vms/gk")["restored_from"] == "golden"
call("POST", "/v1/vms/gk/exec", {"command": ["sh", "-c", "echo warm > /root/w"]})
gkp, gkt = checkpoint_series("gk", reps)
argv, _ = qemu_argv("gk")
d = os.path.join(tmp, "rawgk")
q, _ = raw_from_golden(argv, vm_dir("gk"), d)
graw = raw_stop_migrate(q, d, reps)
q.close()
subprocess.call(["pkill", "-KILL", "-f", d + "/"])
print(f"checkpoint of a golden-created VM: pause median {ms(med(gkp))}, total {ms(med(gkt))} (of {reps})")
print(f"raw QEMU stop->migrate-completed of the same guest: median {ms(med(graw))}")
print(f"ratio pause/raw golden-created VM: {med(gkp) / med(graw):.2f} (goal <= 1.0)")
cp = call("POST", "/v1/vms/gk/checkpoints", {"label": "restore-src"})
grest, gclone = [], []
for i in range(reps):
    t0 = time.monotonic()
    call("POST", "/v1/vms/gk/restore", {"checkpoint_id": cp["id"]})
    grest.append(time.monotonic() - t0)
for i in range(reps):
    t0 = time.monotonic()
    call("POST", "/v1/vms/gk/restore", {"checkpoint_id": cp["id"], "new_name": f"gkc{i}"})
    gclone.append(time.monotonic() - t0)
for i in range(reps):
    call("DELETE", f"/v1/vms/gkc{i}")
call("DELETE", "/v1/vms/gk")
print(f"restore in place of a golden-created VM's checkpoint: median {ms(med(grest))} (of {reps})")
print(f"clone of a golden-created VM's checkpoint: median {ms(med(gclone))} (of {reps})")

# ---------- cold-booted VMs: checkpoint pause/total vs raw stop->migrate ----------
for mem in (256, 1024):
    name = f"ck{mem}"
    call("POST", "/v1/vms", {"name": name, "mem_mib": mem, "cpus": 2})  # another size: cold boot
    pauses, totals = checkpoint_series(name, reps)
    # raw: same command line, ordinary RAM, booted by hand, stop -> migrate -> completed
    d, argv = raw_copy(name, f"rawck{mem}", keep_ram_file=False)
    subprocess.check_call(argv, cwd=d)
    Agent(os.path.join(d, "agent.sock")).hello()
    q = QMP(os.path.join(d, "qmp.sock"))
    raw = raw_stop_migrate(q, d, reps)
    q.close()
    subprocess.call(["pkill", "-KILL", "-f", d + "/"])
    print(f"checkpoint {mem} MiB (cold boot): pause median {ms(med(pauses))}, total {ms(med(totals))} (of {reps})")
    print(f"raw QEMU stop->migrate-completed {mem} MiB: median {ms(med(raw))}")
    print(f"ratio pause/raw {mem} MiB: {med(pauses) / med(raw):.2f} (goal <= 1.0; stretch: pause < 100 ms)")

# ---------- golden create vs raw restore of the same snapshot; vs cold ----------
gcreate = []
for i in range(reps):
    t0 = time.monotonic()
    v = call("POST", "/v1/vms", {"name": f"g{i}"})
    gcreate.append(time.monotonic() - t0)
    assert v["restored_from"] == "golden", v
argv, _ = qemu_argv("g0")
rawg = []
for i in range(reps):
    d = os.path.join(tmp, f"rawg{i}")
    q, secs = raw_from_golden(argv, vm_dir("g0"), d)
    rawg.append(secs)
    q.close()
    subprocess.call(["pkill", "-KILL", "-f", d + "/"])
cold = []
for i in range(reps):
    t0 = time.monotonic()
    call("POST", "/v1/vms", {"name": f"cold{i}", "cpus": 2})  # another size: cold boot
    cold.append(time.monotonic() - t0)
    call("DELETE", f"/v1/vms/cold{i}")
print(f"create from golden: median {ms(med(gcreate))} (of {reps})")
print(f"raw QEMU restore of the golden snapshot -> agent: median {ms(med(rawg))}")
print(f"ratio golden create/raw restore: {med(gcreate) / med(rawg):.2f} (goal <= 1.2)")
print(f"cold create: median {ms(med(cold))}; cold/golden: {med(cold) / med(gcreate):.1f}x (goal >= 10x)")

# ---------- clone latency ----------
cp = call("POST", "/v1/vms/ck256/checkpoints", {"label": "clone-src"})
clone = []
for i in range(reps):
    t0 = time.monotonic()
    call("POST", "/v1/vms/ck256/restore", {"checkpoint_id": cp["id"], "new_name": f"cl{i}"})
    clone.append(time.monotonic() - t0)
print(f"clone (restore --as): median {ms(med(clone))} (of {reps})")

# ---------- memory: 10 VMs from golden vs 10 cold VMs (one set at a time) ----------
for name in ["ck256", "ck1024"] + [f"cl{i}" for i in range(reps)]:
    call("DELETE", f"/v1/vms/{name}")
for i in range(reps, 10):
    call("POST", "/v1/vms", {"name": f"g{i}"})
for i in range(10):
    call("POST", f"/v1/vms/g{i}/exec", {"command": ["true"]})
time.sleep(2)
gp = sum(pss_kib(qemu_argv(f"g{i}")[1]) for i in range(10))
for i in range(10):
    call("DELETE", f"/v1/vms/g{i}")
for i in range(10):
    call("POST", "/v1/vms", {"name": f"m{i}", "cpus": 2})  # another size: cold boots
    call("POST", f"/v1/vms/m{i}/exec", {"command": ["true"]})
time.sleep(2)
cp_ = sum(pss_kib(qemu_argv(f"m{i}")[1]) for i in range(10))
print(f"memory of 10 golden VMs: {gp / 1024:.0f} MiB PSS; of 10 cold VMs: {cp_ / 1024:.0f} MiB PSS")
print(f"ratio golden/cold memory: {gp / cp_:.2f} (goal <= 0.4)")
PY
