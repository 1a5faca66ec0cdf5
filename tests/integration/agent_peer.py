"""agent_peer.py — drives a real noid-agent (on the host, --unix-listen) with
well-formed and malformed frames; used by test_agent.sh.  Exits non-zero with
a message on the first unexpected answer."""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
from agentproto import Agent, frame, tlv, EXEC, ERROR, EXIT, HELLO_ACK, STDOUT  # noqa: E402


def expect(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)


def frames_until(ag, stream, ftype, timeout=10):
    """Collect frames until one of ftype on stream arrives."""
    got = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        f = ag._frame(end - time.monotonic())
        if f is None:
            break
        got.append(f)
        if f[0] == ftype and f[1] == stream:
            return got
    expect(False, f"no frame {ftype} on stream {stream} (got {[(t, s) for t, s, _ in got]})")


path = sys.argv[1]

# a normal session
ag = Agent(path)
ag.hello(timeout=10)
code, out = ag.run(["sh", "-c", "echo hello"])
expect(code == 0 and out == b"hello\n", f"exec: {code} {out!r}")
print("ok: handshake and exec")

# garbage instead of a frame: an ERROR on stream 0, and the agent lives on
ag.sock.sendall(b"this is not a frame at all" * 4)
f = frames_until(ag, 0, ERROR)[-1]
print(f"ok: garbage answered with ERROR: {f[2].decode(errors='replace')}")
ag.hello(timeout=10)
code, out = ag.run(["echo", "again"])
expect(code == 0 and out == b"again\n", "exec after garbage")
print("ok: a new HELLO starts a working session")

# a header announcing more than AP_MAX_PAYLOAD
ag.sock.sendall(struct.pack(">HBBII", 0x4E41, EXEC, 0, 5, 0xFFFFFFF0))
frames_until(ag, 0, ERROR)
ag.hello(timeout=10)
print("ok: oversized frame refused")

# an EXEC whose TLVs are broken, and an EXEC without a program
ag.sock.sendall(frame(EXEC, 7, b"\x00\x01\x00\x00\x10\x00ab"))
frames_until(ag, 0, ERROR)
ag.hello(timeout=10)
ag.sock.sendall(frame(EXEC, 8, tlv(4, b"\0")))
frames_until(ag, 0, ERROR)
ag.hello(timeout=10)
print("ok: malformed EXEC payloads refused")

# a second client while the first is connected waits; when the first goes,
# the second gets a session (host reconnects, e.g. after a server restart)
ag.sock.close()
ag2 = Agent(path)
ag2.hello(timeout=10)
code, out = ag2.run(["echo", "reconnected"])
expect(out == b"reconnected\n", "exec after reconnecting")
print("ok: reconnect")

# a program that does not exist
code, out = ag2.run(["/no/such/thing"])
expect(code == 127, f"missing program exit code {code}")
print("ok: missing program -> 127")
