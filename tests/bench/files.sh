#!/usr/bin/env bash
# files.sh — guest file benchmarks of issue 10 on the default path (golden
# snapshot, default guest, the server's defaults, the server-side noidfs
# mount), from one run:
#   * 256 MiB up and down through the files API (PUT / GET on a keep-alive
#     connection), through `noid cp`, and through `fs/` in the mount (cp
#     into it, cat out of it), each next to the raw agent channel's bulk
#     rate on the same VM with noid-server stopped: READ_FILE / WRITE_FILE
#     spoken straight to the agent's socket by the server's own C client
#     (agent-files-peer --rate; the ratios are to it) and by a Python one
#     (printed too) (ratio; goal >= 0.5 each);
#   * extracting a 2,000-file source tree into `fs/` with the host's
#     `tar -x` vs `tar -x` of the same archive run inside the guest through
#     exec (ratio; goal <= 3).
# Every transfer is checked (size, and sha256 once per path).  Medians of
# N = NOID_BENCH_REPS rounds (default 3 here: 256 MiB each way per figure).
# Needs root and /dev/fuse.
. "$(dirname "$0")/lib.sh"
REPS=${NOID_BENCH_REPS:-3}
[ "$(id -u)" -eq 0 ] && [ -c /dev/fuse ] || { echo "files.sh needs root and /dev/fuse" >&2; exit 1; }

MNT="$T/mnt"
mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }
files_bench_cleanup() {
    set +e
    if [ -n "$PID" ]; then
        kill "$PID" 2> /dev/null && wait "$PID" 2> /dev/null
        PID=""
    fi
    mounted "$MNT" && fusermount3 -u -z "$MNT"
    bench_cleanup
}
trap files_bench_cleanup EXIT

bench_start_server vm "noidfs_mount = \"$MNT\""
mounted "$MNT" || { echo "the server did not mount $MNT" >&2; exit 1; }
export HOME="$T/home"
mkdir -p "$HOME"
"$BUILD/cli/noid" auth setup --url "$URL" --token "$TOKEN" > /dev/null

/usr/bin/python3 - "$URL" "$TOKEN" "$REPS" "$T" "$PID" "$BUILD/cli/noid" "$MNT/bench" <<'PY'
import hashlib, http.client, os, random, statistics, subprocess, sys, tarfile, time
import urllib.parse
from agentproto import Agent
from noidapi import Api, stop_server

url, token, reps, tmp, server_pid, noid, userdir = sys.argv[1:8]
reps, server_pid = int(reps), int(server_pid)
SIZE = 256 * 1024 * 1024
CHUNK = 64 * 1024
VM = "f"
api = Api(url, token)
for _ in range(1200):
    if api.call("GET", "/v1/capabilities").get("golden_ready"):
        break
    time.sleep(0.1)
api.call("POST", "/v1/vms", {"name": VM})


def guest(cmd):
    r = api.call("POST", f"/v1/vms/{VM}/exec", {"command": ["sh", "-c", cmd]})
    assert r["exit_code"] == 0, (cmd, r)
    return r["stdout"]


src = os.path.join(tmp, "big")
with open(src, "wb") as f:
    for _ in range(SIZE // CHUNK):
        f.write(random.randbytes(CHUNK))
want = hashlib.sha256(open(src, "rb").read()).hexdigest()


def check(path_in_guest, full):
    if full:
        got = guest(f"sha256sum {path_in_guest}").split()[0]
        assert got == want, f"{path_in_guest}: sha256 {got} != {want}"
    else:
        assert guest(f"stat -c %s {path_in_guest}").strip() == str(SIZE), path_in_guest


def check_local(path, full):
    assert os.path.getsize(path) == SIZE, path
    if full:
        assert hashlib.sha256(open(path, "rb").read()).hexdigest() == want, path
    os.unlink(path)


def rate(seconds):
    return SIZE / seconds / 1e6


u = urllib.parse.urlparse(url)
H = {"Authorization": "Bearer " + token}


def api_up(gpath):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    t0 = time.monotonic()
    with open(src, "rb") as f:
        c.request("PUT", f"/v1/vms/{VM}/files{gpath}", f, {**H, "Content-Length": str(SIZE)})
        r = c.getresponse()
        body = r.read()
    t = time.monotonic() - t0
    assert r.status in (200, 201), (r.status, body)
    c.close()
    return t


def api_down(gpath, dst):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    t0 = time.monotonic()
    c.request("GET", f"/v1/vms/{VM}/files{gpath}", headers=H)
    r = c.getresponse()
    assert r.status == 200, r.status
    with open(dst, "wb") as f:
        while True:
            b = r.read(1 << 20)
            if not b:
                break
            f.write(b)
    t = time.monotonic() - t0
    c.close()
    return t


def timed_cmd(argv):
    t0 = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


fsroot = os.path.join(userdir, VM, "fs")
results = {k: [] for k in ("api up", "api down", "cp up", "cp down", "fs up", "fs down")}
for i in range(reps):
    full = i == 0
    results["api up"].append(rate(api_up("/root/b-api")))
    check("/root/b-api", full)
    results["api down"].append(rate(api_down("/root/b-api", tmp + "/d-api")))
    check_local(tmp + "/d-api", full)
    guest("rm -f /root/b-api")

    results["cp up"].append(rate(timed_cmd([noid, "cp", "-q", src, f"{VM}:/root/b-cp"])))
    check("/root/b-cp", full)
    results["cp down"].append(rate(timed_cmd([noid, "cp", "-q", f"{VM}:/root/b-cp", tmp + "/d-cp"])))
    check_local(tmp + "/d-cp", full)
    guest("rm -f /root/b-cp")

    results["fs up"].append(rate(timed_cmd(["cp", src, fsroot + "/root/b-fs"])))
    check("/root/b-fs", full)
    # through the page cache: drop it so the bytes come from the guest
    subprocess.run(["sh", "-c", "echo 1 > /proc/sys/vm/drop_caches"], check=True)
    results["fs down"].append(rate(timed_cmd(["cp", fsroot + "/root/b-fs", tmp + "/d-fs"])))
    check_local(tmp + "/d-fs", full)
    guest("rm -f /root/b-fs")

# a 2,000-file source tree: 100 directories of 20 files, 200 B .. 24 KiB
rnd = random.Random(10)
tree = os.path.join(tmp, "tree")
for d in range(100):
    os.makedirs(f"{tree}/src/mod{d:03d}")
    for n in range(20):
        with open(f"{tree}/src/mod{d:03d}/file{n:02d}.c", "wb") as f:
            f.write(rnd.randbytes(rnd.randint(200, 24 * 1024)))
archive = os.path.join(tmp, "tree.tar")
with tarfile.open(archive, "w") as t:
    t.add(f"{tree}/src", arcname="src")
c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
with open(archive, "rb") as f:
    c.request("PUT", f"/v1/vms/{VM}/files/root/tree.tar", f,
              {**H, "Content-Length": str(os.path.getsize(archive))})
    r = c.getresponse()
    r.read()
    assert r.status in (200, 201), r.status
c.close()
tar_fs, tar_guest = [], []
for i in range(reps):
    guest(f"rm -rf /root/tg{i} /root/tf{i} && mkdir /root/tg{i} /root/tf{i}")
    t0 = time.monotonic()
    guest(f"tar -xf /root/tree.tar -C /root/tg{i}")
    tar_guest.append(time.monotonic() - t0)
    tar_fs.append(timed_cmd(["tar", "-xf", archive, "-C", f"{fsroot}/root/tf{i}"]))
    counts = guest(f"find /root/tg{i} -type f | wc -l; find /root/tf{i} -type f | wc -l").split()
    assert counts == ["2000", "2000"], counts
    same = guest(f"cd /root/tg{i} && find . -type f | sort | xargs cat | md5sum; "
                 f"cd /root/tf{i} && find . -type f | sort | xargs cat | md5sum").split()
    assert same[0] == same[2], "the trees differ"
    guest(f"rm -rf /root/tg{i} /root/tf{i}")
api.close()

# the raw channel: the same VM, noid-server stopped (the VM keeps running)
vmdir = subprocess.check_output(
    ["sh", "-c", f"ls -d {tmp}/data/storage/users/*/vms/{VM}"]).decode().strip()
stop_server(server_pid)
ag = Agent(os.path.join(vmdir, "agent.sock"))
ag.hello()


def chunks():
    with open(src, "rb") as f:
        while True:
            b = f.read(CHUNK)
            if not b:
                return
            yield b


py_up, py_down, raw_up, raw_down = [], [], [], []
for _ in range(reps):
    t0 = time.monotonic()
    assert ag.write_file("/root/b-raw", chunks()) == SIZE
    py_up.append(rate(time.monotonic() - t0))
    got = [0]
    t0 = time.monotonic()
    assert ag.read_file("/root/b-raw", lambda p: got.__setitem__(0, got[0] + len(p))) == SIZE
    py_down.append(rate(time.monotonic() - t0))
ag.run(["rm", "-f", "/root/b-raw"])
ag.sock.close()
# the same with the server's own C client (agent_files.c), no HTTP or FUSE
peer = os.path.join(os.path.dirname(noid), "..", "tests", "integration", "agent-files-peer")
for _ in range(reps):
    out = subprocess.check_output([peer, "--rate", str(SIZE), os.path.join(vmdir, "agent.sock"),
                                   "/root"]).decode().split()
    raw_up.append(float(out[1]))
    raw_down.append(float(out[3]))

ru, rd = statistics.median(raw_up), statistics.median(raw_down)
print(f"raw agent channel, C client (agent_files.c, no HTTP/FUSE): up {ru:.1f} MB/s, "
      f"down {rd:.1f} MB/s (256 MiB, median of {reps})")
print(f"raw agent channel, Python client (agentproto.py): up {statistics.median(py_up):.1f} MB/s, "
      f"down {statistics.median(py_down):.1f} MB/s")
for way, raw in (("up", ru), ("down", rd)):
    for path in ("api", "cp", "fs"):
        v = statistics.median(results[f"{path} {way}"])
        name = {"api": "files API", "cp": "noid cp", "fs": "fs/ in the mount"}[path]
        print(f"{name} {way}: {v:.1f} MB/s, ratio to raw {v / raw:.2f} (goal >= 0.5)")
g, fsx = statistics.median(tar_guest), statistics.median(tar_fs)
print(f"2,000-file tree: tar -x in the guest via exec {g * 1000:.0f} ms, "
      f"into fs/ {fsx * 1000:.0f} ms, ratio {fsx / g:.2f} (goal <= 3)")
PY
