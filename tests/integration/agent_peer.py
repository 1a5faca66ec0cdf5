"""agent_peer.py — drives a real noid-agent (on the host, --unix-listen); used
by test_agent.sh.  Exits non-zero with a message on the first unexpected
answer.

  agent_peer.py SOCK basic   well-formed and malformed frames, reconnects
  agent_peer.py SOCK flow    protocol v2: version negotiation, per-exec
                             output flow control (APT_OUT_WINDOW, OUT_ACK),
                             RESIZE on a tty exec

No check depends on timing: "the agent holds output back" is shown by the
child being blocked in write() (its /proc/PID/syscall) while the host has
received exactly the window, and by a PING answered after that with no
more output in between (the agent reads pipes before it answers)."""
import os
import struct
import sys
import time
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
from agentproto import (  # noqa: E402
    Agent, frame, tlv, EXEC, ERROR, EXIT, HELLO_ACK, PING, PONG, STARTED, STDERR, STDIN, STDOUT)

HELLO, RESIZE, OUT_ACK = 1, 5, 9
APT_OUT_WINDOW = 9
OUT_ACK_RELEASE = 0xFFFFFFFF


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


def basic(path):
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


def hello_version(ag, version, timeout=10):
    """Send HELLO{version}; the version of the matching HELLO_ACK, or None
    if the agent refused it with ERROR on stream 0."""
    nonce = time.monotonic_ns() & 0xFFFFFFFFFFFF
    ag.sock.sendall(frame(HELLO, 0, struct.pack(">IQ", version, nonce)))
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        f = ag._frame(end - time.monotonic())
        if f is None:
            break
        ftype, stream, p = f
        if ftype == HELLO_ACK and struct.unpack(">Q", p[4:12])[0] == nonce:
            return struct.unpack(">I", p[:4])[0]
        if ftype == ERROR and stream == 0:
            return None
    expect(False, f"no answer to HELLO v{version}")


def blocked_in_write(pid):
    """Whether pid sleeps in write(2) (its pipe or pty is full)."""
    try:
        with open(f"/proc/{pid}/syscall") as f:
            call = f.read().split()
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state == "S" and bool(call) and call[0] == "1"


class Peer:
    """One connection to the agent.  Frames are sorted by stream as they
    come, and the flow-control invariants are checked on every one: no
    output after EXIT; never more than the window unacknowledged."""

    def __init__(self, path):
        self.ag = Agent(path)
        self.ag.hello(timeout=10)
        self.out = defaultdict(bytearray)
        self.err = defaultdict(bytearray)
        self.pid = {}
        self.exit = {}
        self.window = {}
        self.acked = defaultdict(int)
        self.pongs = set()

    def exec(self, argv, window=0, tty=False, stdin=False, timeout_ms=120000, rows=0, cols=0):
        self.ag.stream += 1
        st = self.ag.stream
        p = b"".join(tlv(1, a.encode()) for a in argv)
        p += tlv(4, bytes([tty])) + tlv(8, bytes([stdin])) + tlv(5, struct.pack(">I", timeout_ms))
        if rows:
            p += tlv(6, struct.pack(">H", rows)) + tlv(7, struct.pack(">H", cols))
        if window:
            p += tlv(APT_OUT_WINDOW, struct.pack(">I", window))
        self.window[st] = window
        self.ag.sock.sendall(frame(EXEC, st, p))
        return st

    def received(self, st):
        return len(self.out[st]) + len(self.err[st])

    def pump(self, timeout):
        f = self.ag._frame(timeout)
        if f is None:
            return
        ftype, st, p = f
        if ftype == STARTED:
            self.pid[st] = struct.unpack(">I", p)[0]
        elif ftype in (STDOUT, STDERR):
            expect(st not in self.exit, f"stream {st}: output after EXIT")
            (self.out if ftype == STDOUT else self.err)[st] += p
            w = self.window.get(st, 0)
            owed = self.received(st) - self.acked[st]
            expect(not w or owed <= w, f"stream {st}: {owed} bytes unacknowledged, window {w}")
        elif ftype == EXIT:
            self.exit[st] = struct.unpack(">iIB", p)
        elif ftype == PONG:
            self.pongs.add(st)
        elif ftype == ERROR:
            expect(False, f"ERROR on stream {st}: {p.decode(errors='replace')}")

    def until(self, cond, what, timeout=120):
        end = time.monotonic() + timeout
        while not cond():
            left = end - time.monotonic()
            expect(left > 0, f"no {what} within {timeout} s")
            self.pump(min(left, 0.05))

    def barrier(self):
        """A PING round trip.  The agent reads exec pipes before it serves
        input in the same loop round, so output it was free to send
        arrives before the PONG."""
        self.ag.stream += 1
        st = self.ag.stream
        self.ag.sock.sendall(frame(PING, st, b"barrier"))
        self.until(lambda: st in self.pongs, "PONG")

    def ack(self, st, n):
        # counted before it goes out: the agent may answer with output at once
        self.acked[st] += n
        self.ag.sock.sendall(frame(OUT_ACK, st, struct.pack(">I", n)))

    def release(self, st):
        self.window[st] = 0
        self.ag.sock.sendall(frame(OUT_ACK, st, struct.pack(">I", OUT_ACK_RELEASE)))

    def held_at(self, st, n, what):
        """st has sent exactly n bytes (its window is used up), its child is
        blocked writing, and nothing more comes: the agent holds it back."""
        self.until(lambda: self.received(st) == n, f"{what}: {n} bytes")
        self.until(lambda: blocked_in_write(self.pid[st]), f"{what}: child blocked in write()")
        self.barrier()
        expect(self.received(st) == n, f"{what}: {self.received(st)} bytes arrived, window {n}")
        expect(st not in self.exit, f"{what}: EXIT while output was held back")

    def drain(self, st, step):
        """Consume st until EXIT, giving credit back step bytes at a time."""
        def done():
            while self.received(st) - self.acked[st] >= step:
                self.ack(st, step)
            return st in self.exit
        self.until(done, f"EXIT on stream {st}")


MIB = 1024 * 1024


def flow(path):
    ag = Agent(path)
    # a PING outside a session is refused: that is how a host notices that
    # the agent it talked to was replaced (a new connection has no session)
    ag.sock.sendall(frame(PING, 77, b"x"))
    f = frames_until(ag, 77, ERROR)[-1]
    expect(b"no session" in f[2], f"PING before HELLO: {f[2]!r}")
    ag.hello(timeout=10)
    ag.ping()
    print("ok: PING outside a session gets ERROR, inside one PONG")
    expect(hello_version(ag, 1) == 3, "HELLO v1 is answered with HELLO_ACK v3")
    expect(hello_version(ag, 2) == 3, "HELLO v2 is answered with HELLO_ACK v3")
    expect(hello_version(ag, 3) == 3, "HELLO v3 is answered with HELLO_ACK v3")
    expect(hello_version(ag, 4) is None, "HELLO v4 is refused")
    expect(hello_version(ag, 1) == 3, "a session after a refused HELLO")
    code, out = ag.run(["echo", "v1 exec"])
    expect(code == 0 and out == b"v1 exec\n", f"exec without a window: {code} {out!r}")
    ag.sock.close()
    print("ok: versions: HELLO v1, v2 and v3 get HELLO_ACK v3; v4 refused; windowless exec")

    pr = Peer(path)
    big = pr.exec(["head", "-c", str(8 * MIB), "/dev/zero"], window=64 * 1024)
    pr.held_at(big, 64 * 1024, "unacknowledged 8 MiB exec")
    print("ok: 8 MiB of output, window 64 KiB, no OUT_ACK: exactly 64 KiB arrive, the child blocks")

    # other execs on the channel are not held back, with or without a window
    other = pr.exec(["sh", "-c", "echo second; echo to-stderr >&2"])
    small = pr.exec(["echo", "windowed"], window=64 * 1024)
    pr.until(lambda: other in pr.exit and small in pr.exit, "EXIT of the other execs")
    expect(bytes(pr.out[other]) == b"second\n" and bytes(pr.err[other]) == b"to-stderr\n",
           f"second exec output {bytes(pr.out[other])!r} {bytes(pr.err[other])!r}")
    expect(bytes(pr.out[small]) == b"windowed\n", "windowed small exec output")
    # OUT_ACK for an exec without a window, or for no exec at all: ignored
    pr.ag.sock.sendall(frame(OUT_ACK, other, struct.pack(">I", 4096)))
    pr.ag.sock.sendall(frame(OUT_ACK, 999999, struct.pack(">I", 4096)))
    pr.barrier()
    expect(pr.received(big) == 64 * 1024 and big not in pr.exit, "the held exec is still held")
    print("ok: a held exec does not hold back other execs on the channel")

    pr.drain(big, 10000)
    expect(len(pr.out[big]) == 8 * MIB and not any(pr.out[big]), "all 8 MiB of zeros arrive")
    expect(pr.exit[big] == (0, 0, 0), f"EXIT {pr.exit[big]}")
    pr.barrier()  # and nothing after the EXIT (pump checks)
    print("ok: with OUT_ACKs all 8 MiB arrive, EXIT after the last byte")

    # stdout and stderr spend one credit
    both = pr.exec(["sh", "-c", "head -c 300000 /dev/zero >&2 & head -c 300000 /dev/zero; wait"],
                   window=32 * 1024)
    pr.until(lambda: pr.received(both) == 32 * 1024, "32 KiB of stdout+stderr")
    pr.barrier()
    expect(pr.received(both) == 32 * 1024, "stdout+stderr held at the window")
    pr.drain(both, 7000)
    expect(len(pr.out[both]) == 300000 and len(pr.err[both]) == 300000,
           f"stdout {len(pr.out[both])} stderr {len(pr.err[both])}")
    print("ok: stdout and stderr share one window")

    # output that ends exactly at the window: EXIT without any OUT_ACK
    exact = pr.exec(["head", "-c", "65536", "/dev/zero"], window=65536)
    empty = pr.exec(["true"], window=65536)
    pr.until(lambda: exact in pr.exit and empty in pr.exit, "EXIT at a full window")
    expect(pr.received(exact) == 65536 and pr.exit[exact] == (0, 0, 0), "exact-window exec")
    expect(pr.received(empty) == 0 and pr.exit[empty] == (0, 0, 0), "silent exec")
    print("ok: output that fills the window exactly still ends with EXIT")

    # an OUT_ACK for more than is outstanding is clamped: the window holds
    clamp = pr.exec(["head", "-c", str(MIB), "/dev/zero"], window=16 * 1024)
    pr.ag.sock.sendall(frame(OUT_ACK, clamp, struct.pack(">I", 4 * MIB)))
    pr.held_at(clamp, 16 * 1024, "over-acknowledged exec")
    # releasing flow control lets the rest flow without OUT_ACKs
    pr.release(clamp)
    pr.until(lambda: clamp in pr.exit, "EXIT after release")
    expect(len(pr.out[clamp]) == MIB, f"released exec sent {len(pr.out[clamp])} bytes")
    print("ok: an excessive OUT_ACK is clamped; OUT_ACK release ends flow control")

    # the timeout fires while output waits for credit; EXIT follows the rest
    slow = pr.exec(["head", "-c", str(8 * MIB), "/dev/zero"], window=16 * 1024, timeout_ms=3000)
    pr.until(lambda: pr.received(slow) == 16 * 1024, "16 KiB before the timeout")
    pid = pr.pid[slow]
    blocked = False

    def gone():
        nonlocal blocked
        blocked = blocked or blocked_in_write(pid)
        return not os.path.exists(f"/proc/{pid}")
    pr.until(gone, "the timed-out child reaped")
    if blocked:
        # it died with a full pipe: EXIT must wait for that output's credit
        pr.barrier()
        expect(slow not in pr.exit, "EXIT before the output left in the pipe")
    pr.drain(slow, 16 * 1024)
    code, sig, timed_out = pr.exit[slow]
    expect(timed_out == 1 and sig == 9, f"timed-out EXIT {pr.exit[slow]}")
    expect(pr.received(slow) < 8 * MIB, "a killed child did not write everything")
    print(f"ok: timeout fires while held; EXIT (timed out) after {pr.received(slow)} bytes")

    # a tty exec: flow control on the pty master, and RESIZE
    tty = pr.exec(["head", "-c", str(MIB), "/dev/zero"], window=16 * 1024, tty=True)
    pr.held_at(tty, 16 * 1024, "tty exec")
    pr.drain(tty, 4096)
    expect(pr.received(tty) == MIB, f"tty exec sent {pr.received(tty)} bytes")
    sz = pr.exec(["sh", "-c", "stty size; read x; stty size"], window=64 * 1024, tty=True,
                 stdin=True, rows=24, cols=80)
    pr.until(lambda: b"24 80" in pr.out[sz], "the first stty size")
    pr.ag.sock.sendall(frame(RESIZE, sz, struct.pack(">HH", 50, 132)))
    pr.ag.sock.sendall(frame(STDIN, sz, b"x\n"))
    pr.until(lambda: sz in pr.exit, "EXIT of stty size")
    expect(b"50 132" in pr.out[sz], f"stty size after RESIZE: {bytes(pr.out[sz])!r}")
    print("ok: tty exec held at its window; RESIZE changes stty size")

    # a malformed OUT_ACK is a session error
    pr.ag.sock.sendall(frame(OUT_ACK, 5, b"abc"))
    frames_until(pr.ag, 0, ERROR)
    print("ok: malformed OUT_ACK refused")


{"basic": basic, "flow": flow}[sys.argv[2] if len(sys.argv) > 2 else "basic"](sys.argv[1])
