#!/usr/bin/python3
"""ws_client.py — an independent WebSocket client (python3-websockets, not
our lib/ws.c) for the live-stream tests.  Each subcommand prints one JSON
document on stdout describing what it saw, so the shell test asserts on it.

  exec URL TOKEN VM JSON_REQ [STEP...]
      run a WebSocket exec, doing the steps (wait:TEXT, send:TEXT, eof,
      resize:COLS:ROWS, side:JSON) in order; prints {"frames":[[chan, t_ms,
      text]...], "stdout", "stderr", "result":{...}|null, "error":...|null,
      "close_code":N, "close_reason":..., "pending_steps":[...]}
  exec-disconnect URL TOKEN VM JSON_REQ WAIT_MARK
      start an exec, wait until stdout contains WAIT_MARK, drop the TCP
      connection without a close frame; prints {"ok":true}
  exec-stuck-stdin URL TOKEN VM JSON_REQ WAIT_MARK
      start an exec that does not read stdin, send 1 MiB stdin frames until
      sending stalls (at most 8), then drop the connection; prints
      {"ok":true,"frames_sent":N}
  console URL TOKEN VM [--type TEXT --until TEXT] [--wait-close SECS]
      attach; optionally type TEXT and read until UNTIL appears in the
      output; prints {"output":..., "close_code":..., "close_reason":...}
  console-stall URL TOKEN VM READY_FILE GO_FILE MARK
      attach with a 4 KiB receive buffer, create READY_FILE, read nothing
      until GO_FILE exists, then read until MARK; prints {"output_bytes",
      "skipped", "saw_mark"}
  upgrade URL TOKEN PATH
      just try the upgrade; prints {"status": N, "body": ...}
  raw URL TOKEN VM JSON_REQ HEX [--shut]
      exec handshake by hand, send the exec request frame then the raw bytes
      given in hex (--shut: then half-close); prints {"close_code":N, "close_reason":...} of the
      server's close (or null) """

import asyncio
import base64
import json
import os
import socket
import sys
import time

import websockets
import websockets.exceptions


def ws_url(url, path):
    return url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + path


def headers(token):
    return {"Authorization": "Bearer " + token} if token else {}


async def connect(url, token, path):
    kw = {"max_size": 64 * 1024 * 1024, "ping_interval": None}
    try:
        return await websockets.connect(ws_url(url, path), extra_headers=headers(token), **kw)
    except TypeError:
        return await websockets.connect(ws_url(url, path), additional_headers=headers(token), **kw)


async def run_side_exec(url, token, vm, req):
    ws = await connect(url, token, "/v1/vms/%s/exec" % vm)
    await ws.send(req)
    try:
        while True:
            await ws.recv()
    except websockets.exceptions.ConnectionClosed:
        pass


async def cmd_exec(url, token, vm, req, steps):
    """Steps, done in order while receiving: wait:TEXT (until the output so
    far holds TEXT), send:TEXT (stdin), eof, resize:COLS:ROWS, side:JSON (run
    another exec in the same VM to completion)."""
    ws = await connect(url, token, "/v1/vms/%s/exec" % vm)
    t0 = time.monotonic()
    await ws.send(req)
    frames, result, error, seen = [], None, None, ""
    steps = list(steps)
    while True:
        while steps and not steps[0].startswith("wait:"):
            step = steps.pop(0)
            if step.startswith("send:"):
                await ws.send(b"\x03" + step[5:].encode())
            elif step == "eof":
                await ws.send(b"\x03")
            elif step.startswith("resize:"):
                _, c, r = step.split(":")
                await ws.send(b"\x04" + json.dumps({"cols": int(c), "rows": int(r)}).encode())
            elif step.startswith("side:"):
                await run_side_exec(url, token, vm, step[5:])
        if steps and steps[0][5:] in seen:
            steps.pop(0)
            continue
        try:
            msg = await ws.recv()
        except websockets.exceptions.ConnectionClosed:
            break
        t = round((time.monotonic() - t0) * 1000)
        if isinstance(msg, bytes):
            text = msg[1:].decode("utf-8", "replace")
            frames.append([msg[0], t, text])
            seen += text
        else:
            doc = json.loads(msg)
            if "error" in doc:
                error = doc["error"]
            else:
                result = doc
    print(json.dumps({"frames": frames, "result": result, "error": error,
                      "stdout": "".join(f[2] for f in frames if f[0] == 1),
                      "stderr": "".join(f[2] for f in frames if f[0] == 2),
                      "close_code": ws.close_code, "close_reason": ws.close_reason,
                      "pending_steps": steps}))


async def exec_until(url, token, vm, req, mark):
    """Start an exec and read its output until it holds mark."""
    ws = await connect(url, token, "/v1/vms/%s/exec" % vm)
    await ws.send(req)
    seen = ""
    while mark not in seen:
        msg = await ws.recv()
        if isinstance(msg, bytes):
            seen += msg[1:].decode("utf-8", "replace")
    return ws


async def cmd_exec_disconnect(url, token, vm, req, mark):
    ws = await exec_until(url, token, vm, req, mark)
    # no close frame: drop the TCP connection
    ws.transport.abort()
    print(json.dumps({"ok": True}))


async def cmd_exec_stuck_stdin(url, token, vm, req, mark):
    """Start an exec that never reads stdin, push stdin at it until sending
    stalls, then drop the TCP connection without a close frame."""
    ws = await exec_until(url, token, vm, req, mark)
    chunk = b"\x03" + b"x" * (1024 * 1024)
    sent = 0
    try:
        for _ in range(8):
            await asyncio.wait_for(ws.send(chunk), 5)
            sent += 1
    except asyncio.TimeoutError:
        pass
    ws.transport.abort()
    print(json.dumps({"ok": True, "frames_sent": sent}))


async def cmd_console(url, token, vm, args):
    path = "/v1/vms/%s/console" % vm + ("?replay=0" if "--no-replay" in args else "")
    ws = await connect(url, token, path)
    out = bytearray()  # not a str: += on a growing str is quadratic
    skipped = 0
    typed = args[args.index("--type") + 1] if "--type" in args else None
    until = args[args.index("--until") + 1] if "--until" in args else None
    wait_close = float(args[args.index("--wait-close") + 1]) if "--wait-close" in args else None
    if typed is not None:
        await ws.send(b"\x03" + typed.encode())
    deadline = time.monotonic() + (wait_close if wait_close is not None else 60)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            msg = await asyncio.wait_for(ws.recv(), left)
        except (asyncio.TimeoutError, websockets.exceptions.ConnectionClosed):
            break
        if isinstance(msg, bytes):
            out += msg[1:]
            # the mark may straddle frames: look at the tail only
            if until is not None and wait_close is None and \
                    until.encode() in out[-(len(msg) + len(until)):]:
                break
        else:
            skipped += json.loads(msg).get("skipped", 0)
    code, reason = ws.close_code, ws.close_reason
    if code is None:
        await ws.close()
    print(json.dumps({"output": out.decode("utf-8", "replace"), "skipped": skipped,
                      "close_code": code, "close_reason": reason}))


async def cmd_console_stall(url, token, vm, ready_file, go_file, mark):
    """Attach with a tiny receive buffer, say so in ready_file, read nothing
    until go_file exists, then read until mark; prints {"output_bytes",
    "skipped", "saw_mark"}."""
    host, port = url.replace("http://", "").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    ws = await websockets.connect(ws_url(url, "/v1/vms/%s/console" % vm), sock=sock,
                                  extra_headers=headers(token), max_queue=1,
                                  read_limit=4096, ping_interval=None)
    await ws.recv()  # the replay: attached
    open(ready_file, "w").close()
    while not os.path.exists(go_file):
        await asyncio.sleep(0.1)
    out, skipped, seen = bytearray(), 0, False
    deadline = time.monotonic() + 120
    while not seen:
        try:
            msg = await asyncio.wait_for(ws.recv(), max(deadline - time.monotonic(), 0.01))
        except asyncio.TimeoutError:
            break  # reported as saw_mark false, for the test to judge
        if isinstance(msg, bytes):
            out += msg[1:]
            seen = mark.encode() in out[-(len(msg) + len(mark)):]
        else:
            skipped += json.loads(msg).get("skipped", 0)
    await ws.close()
    print(json.dumps({"output_bytes": len(out), "skipped": skipped,
                      "saw_mark": seen}))


async def cmd_upgrade(url, token, path):
    try:
        ws = await connect(url, token, path)
    except websockets.exceptions.InvalidStatusCode as e:
        body = getattr(getattr(e, "response", None), "body", b"") or b""
        print(json.dumps({"status": e.status_code, "body": body.decode("utf-8", "replace")}))
        return
    except Exception as e:  # newer websockets: InvalidStatus
        resp = getattr(e, "response", None)
        if resp is None:
            raise
        print(json.dumps({"status": resp.status_code,
                          "body": bytes(resp.body or b"").decode("utf-8", "replace")}))
        return
    await ws.close()
    print(json.dumps({"status": 101, "body": ""}))


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b


def cmd_raw(url, token, vm, req, hexbytes, shut=False):
    """A client written by hand, for frames python3-websockets would never
    send: the exec request goes out properly masked, then the raw bytes."""
    host, port = url.replace("http://", "").split(":")
    s = socket.create_connection((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /v1/vms/%s/exec HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Authorization: Bearer %s\r\n\r\n" % (vm, key, token)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        c = s.recv(1)
        if not c:
            print(json.dumps({"close_code": None, "close_reason": "no 101"}))
            return
        head += c
    if b" 101 " not in head.split(b"\r\n")[0]:
        print(json.dumps({"close_code": None, "close_reason": head.decode()}))
        return
    payload = req.encode()
    mask = os.urandom(4)
    frame = bytes([0x81, 0x80 | len(payload)]) if len(payload) < 126 else \
        bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big")
    frame += mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    s.sendall(frame + bytes.fromhex(hexbytes))
    if shut:
        s.shutdown(socket.SHUT_WR)
    s.settimeout(30)
    code, reason = None, None
    try:
        while True:
            h = recv_exact(s, 2)
            if h is None:
                break
            op, n = h[0] & 0x0F, h[1] & 0x7F
            if n == 126:
                n = int.from_bytes(recv_exact(s, 2), "big")
            elif n == 127:
                n = int.from_bytes(recv_exact(s, 8), "big")
            body = recv_exact(s, n) if n else b""
            if op == 8:
                code = int.from_bytes(body[:2], "big") if len(body) >= 2 else 1005
                reason = body[2:].decode("utf-8", "replace")
                break
    except socket.timeout:
        pass
    print(json.dumps({"close_code": code, "close_reason": reason}))


def main():
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "exec":
        asyncio.run(cmd_exec(rest[0], rest[1], rest[2], rest[3], rest[4:]))
    elif cmd == "exec-disconnect":
        asyncio.run(cmd_exec_disconnect(*rest[:5]))
    elif cmd == "exec-stuck-stdin":
        asyncio.run(cmd_exec_stuck_stdin(*rest[:5]))
    elif cmd == "console":
        asyncio.run(cmd_console(rest[0], rest[1], rest[2], rest[3:]))
    elif cmd == "console-stall":
        asyncio.run(cmd_console_stall(*rest[:6]))
    elif cmd == "upgrade":
        asyncio.run(cmd_upgrade(*rest[:3]))
    elif cmd == "raw":
        cmd_raw(*rest[:5], shut="--shut" in rest)
    else:
        sys.exit("unknown subcommand " + cmd)


if __name__ == "__main__":
    main()
