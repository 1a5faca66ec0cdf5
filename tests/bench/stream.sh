#!/usr/bin/env bash
# stream.sh — live-stream benchmarks of issue 8 on the default path (golden
# snapshot, default guest), each next to a baseline from the same run:
#   * first-byte latency of a WebSocket exec of `echo x` (connect, upgrade,
#     request, first stdout frame) vs an HTTP exec of the same (connect,
#     POST, whole reply); both open a new connection each time, as a CLI
#     does (ratio; goal <= 1.0)
#   * WebSocket throughput streaming 64 MiB of stdout vs the raw agent
#     channel's on the same VM with noid-server stopped (ratio; goal >= 0.5)
#   * console echo round trip (type a character, see it echoed) over the
#     WebSocket console vs over the raw console socket, server stopped
#   * console output throughput (400 KB written to the guest's serial line)
#     seen through the WebSocket console vs read from the raw console
#     socket, server stopped
# N = NOID_BENCH_REPS (default 5) rounds of each measurement; medians.
. "$(dirname "$0")/lib.sh"
bench_start_server vm

/usr/bin/python3 - "$URL" "$TOKEN" "$REPS" "$T" "$PID" <<'PY'
import asyncio, http.client, json, os, socket, statistics, subprocess, sys, time
import websockets
from agentproto import Agent
from noidapi import Api, ms, stop_server

url, token, reps, tmp, server_pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
host, port = url.replace("http://", "").split(":")
api = Api(url, token)
for _ in range(1200):
    if api.call("GET", "/v1/capabilities").get("golden_ready"):
        break
    time.sleep(0.1)
api.call("POST", "/v1/vms", {"name": "s"})
api.close()
H = {"Authorization": "Bearer " + token}
wsurl = url.replace("http://", "ws://") + "/v1/vms/s"
MiB64 = 64 * 1024 * 1024


async def ws_first_byte():
    t0 = time.monotonic()
    async with websockets.connect(wsurl + "/exec", extra_headers=H, ping_interval=None,
                                  max_size=None) as ws:
        await ws.send(json.dumps({"command": ["echo", "x"], "stdin": False}))
        while True:
            m = await ws.recv()
            if isinstance(m, bytes) and m[0] == 1:
                t = time.monotonic() - t0
                break
        async for _ in ws:
            pass
    return t


def http_exec():
    t0 = time.monotonic()
    c = http.client.HTTPConnection(host, int(port))
    c.request("POST", "/v1/vms/s/exec", json.dumps({"command": ["echo", "x"]}),
              {**H, "Content-Type": "application/json"})
    r = c.getresponse()
    body = json.loads(r.read())
    t = time.monotonic() - t0
    c.close()
    assert body["stdout"] == "x\n", body
    return t


async def ws_throughput():
    got = 0
    t0 = time.monotonic()
    async with websockets.connect(wsurl + "/exec", extra_headers=H, ping_interval=None,
                                  max_size=None) as ws:
        await ws.send(json.dumps({"command": ["head", "-c", str(MiB64), "/dev/zero"],
                                  "stdin": False}))
        async for m in ws:
            if isinstance(m, bytes) and m[0] == 1:
                got += len(m) - 1
    t = time.monotonic() - t0
    assert got == MiB64, got
    return MiB64 / t / 1e6


async def ws_console_echo(n):
    rts = []
    async with websockets.connect(wsurl + "/console", extra_headers=H, ping_interval=None) as ws:
        await ws.send(b"\x03\x15")  # ^U: an empty line to type on
        await asyncio.sleep(0.5)
        while True:  # drop the replay and what ^U printed
            try:
                await asyncio.wait_for(ws.recv(), 0.2)
            except asyncio.TimeoutError:
                break
        for i in range(n):
            ch = "abcdefghij"[i % 10].encode()
            t0 = time.monotonic()
            await ws.send(b"\x03" + ch)
            seen = b""
            while ch not in seen:
                m = await ws.recv()
                if isinstance(m, bytes):
                    seen += m[1:]
            rts.append(time.monotonic() - t0)
        await ws.send(b"\x03\x15")
    return rts


CONSOLE_BULK = 400000
BULK_CMD = ["sh", "-c", f"head -c {CONSOLE_BULK} /dev/zero | tr '\\0' x > /dev/ttyS0; "
            "echo BULK-END > /dev/ttyS0"]


async def ws_console_bulk():
    """Seconds from starting the command to seeing its last byte."""
    async with websockets.connect(wsurl + "/console", extra_headers=H, ping_interval=None) as ws:
        await ws.recv()  # the replay: attached
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        run = loop.run_in_executor(None, lambda: Api(url, token).call(
            "POST", "/v1/vms/s/exec", {"command": BULK_CMD}))
        tail = b""
        while b"BULK-END" not in tail:
            m = await ws.recv()
            if isinstance(m, bytes):
                tail = (tail + m[1:])[-64:]
        t = time.monotonic() - t0
        await run
    return t


def raw_console_bulk(vmdir, ag):
    import threading
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.path.join(vmdir, "console.sock"))
    t0 = time.monotonic()
    th = threading.Thread(target=ag.run, args=(BULK_CMD,))
    th.start()
    tail = b""
    while b"BULK-END" not in tail:
        tail = (tail + s.recv(65536))[-64:]
    t = time.monotonic() - t0
    th.join()
    s.close()
    return t


def raw_console_echo(vmdir, n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.path.join(vmdir, "console.sock"))
    s.sendall(b"\x15")
    s.settimeout(0.3)
    try:
        while s.recv(65536):
            pass
    except socket.timeout:
        pass
    s.settimeout(30)
    rts = []
    for i in range(n):
        ch = "abcdefghij"[i % 10].encode()
        t0 = time.monotonic()
        s.sendall(ch)
        seen = b""
        while ch not in seen:
            seen += s.recv(65536)
        rts.append(time.monotonic() - t0)
    s.sendall(b"\x15")
    time.sleep(0.2)  # the UART takes typed bytes a few at a time
    s.close()
    return rts


rounds = max(reps, 5) * 4
asyncio.run(ws_first_byte())
http_exec()
ws_fb = [asyncio.run(ws_first_byte()) for _ in range(rounds)]
http_fb = [http_exec() for _ in range(rounds)]
ws_tp = [asyncio.run(ws_throughput()) for _ in range(reps)]
ws_echo = asyncio.run(ws_console_echo(rounds))
ws_bulk = [asyncio.run(ws_console_bulk()) for _ in range(reps)]

# the same VM without the server: stop noid-server (the VM keeps running)
vmdir = subprocess.check_output(
    ["sh", "-c", f"ls -d {tmp}/data/storage/users/*/vms/s"]).decode().strip()
time.sleep(2.5)  # the console hub lets go of the socket (CONSOLE_DRAIN_MS)
stop_server(server_pid)
ag = Agent(os.path.join(vmdir, "agent.sock"))
ag.hello()
raw_tp = []
for _ in range(reps):
    t0 = time.monotonic()
    code, out = ag.run(["head", "-c", str(MiB64), "/dev/zero"])
    raw_tp.append(MiB64 / (time.monotonic() - t0) / 1e6)
    assert code == 0 and len(out) == MiB64
raw_echo = raw_console_echo(vmdir, rounds)
raw_bulk = [raw_console_bulk(vmdir, ag) for _ in range(reps)]

wf, hf = statistics.median(ws_fb), statistics.median(http_fb)
print(f"first byte, WebSocket exec of echo x: median {ms(wf)} of {rounds}")
print(f"whole reply, HTTP exec of echo x:     median {ms(hf)} of {rounds}")
print(f"ratio ws/http: {wf / hf:.2f} (goal <= 1.0)")
wt, rt = statistics.median(ws_tp), statistics.median(raw_tp)
print(f"WebSocket exec streaming 64 MiB of stdout: median {wt:.1f} MB/s of {reps}")
print(f"raw agent channel, same command:           median {rt:.1f} MB/s of {reps}")
print(f"ratio ws/raw: {wt / rt:.2f} (goal >= 0.5)")
we, re_ = statistics.median(ws_echo), statistics.median(raw_echo)
print(f"console echo round trip, WebSocket: median {we * 1e3:.2f} ms of {rounds}")
print(f"console echo round trip, raw socket: median {re_ * 1e3:.2f} ms of {rounds}")
print(f"ratio ws/raw: {we / re_:.2f}")
wb, rb = statistics.median(ws_bulk), statistics.median(raw_bulk)
print(f"console output, 400 KB, WebSocket console: median {CONSOLE_BULK / wb / 1e3:.0f} KB/s of {reps}")
print(f"console output, 400 KB, raw socket:        median {CONSOLE_BULK / rb / 1e3:.0f} KB/s of {reps}")
print(f"ratio ws/raw: {rb / wb:.2f}")
PY
