"""agent_peer.py — drives a real noid-agent (on the host, --unix-listen); used
by test_agent.sh.  Exits non-zero with a message on the first unexpected
answer.

  agent_peer.py SOCK basic   well-formed and malformed frames, reconnects
  agent_peer.py SOCK flow    protocol v2: version negotiation, per-exec
                             output flow control (APT_OUT_WINDOW, OUT_ACK),
                             RESIZE on a tty exec
  agent_peer.py SOCK files DIR  protocol v3: every file operation and its
                             errno cases under DIR, streaming both ways with
                             flow control, malformed file frames
  agent_peer.py SOCK net     protocol v4: SET_NETWORK against an agent with
                             --dry-run-control: valid settings get OK,
                             malformed ones ERROR, the session goes on
  agent_peer.py SOCK set-network up MAC ADDR/PREFIX GW DNS | down
                             send one SET_NETWORK (GW, DNS: 0.0.0.0 = none);
                             prints "ok" or the ERROR, exits 0 / 1

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
    Agent, frame, tlv, EXEC, ERROR, EXIT, HELLO_ACK, OK, PING, PONG, STARTED, STDERR, STDIN,
    STDOUT)

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
    for v in (1, 2, 3, 4):
        expect(hello_version(ag, v) == 4, f"HELLO v{v} is answered with HELLO_ACK v4")
    expect(hello_version(ag, 5) is None, "HELLO v5 is refused")
    expect(hello_version(ag, 1) == 4, "a session after a refused HELLO")
    code, out = ag.run(["echo", "v1 exec"])
    expect(code == 0 and out == b"v1 exec\n", f"exec without a window: {code} {out!r}")
    ag.sock.close()
    print("ok: versions: HELLO v1 to v4 get HELLO_ACK v4; v5 refused; windowless exec")

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


# ---- file operations (protocol v3, agent_proto.h) ----
FS, FS_DATA, FS_CANCEL = 10, 11, 12
FS_REPLY, FS_ERRNO, FS_RDATA, FS_DIRENTS, WINDOW = 41, 42, 43, 44, 37
(O_STAT, O_LSTAT, O_FSTAT, O_READDIR, O_OPEN, O_CLOSE, O_PREAD, O_PWRITE, O_READ_FILE,
 O_WRITE_FILE, O_TRUNCATE, O_UNLINK, O_MKDIR, O_RMDIR, O_RENAME, O_SYMLINK, O_LINK,
 O_READLINK, O_CHMOD, O_CHOWN, O_UTIMENS, O_STATFS, O_FSYNC) = range(1, 24)
(F_PATH, F_PATH2, F_HANDLE, F_OFFSET, F_LENGTH, F_MODE, F_FLAGS, F_UID, F_GID, F_ATIME,
 F_MTIME, F_WINDOW, F_DATA) = range(1, 14)
ATTR_LEN = 88


def u32(v):
    return struct.pack(">I", v)


def u64(v):
    return struct.pack(">Q", v)


def attr(p):
    mode, nlink, uid, gid, _, ino, size = struct.unpack(">5I2Q", p[:36])
    msec, mnsec = struct.unpack(">qI", p[64:76])
    return {"mode": mode, "nlink": nlink, "uid": uid, "size": size, "mtime": (msec, mnsec)}


class Files:
    """File requests on one session: req() sends, answer() collects the
    frames of one stream up to its FS_REPLY / FS_ERRNO, acknowledging data
    as it comes (OUT_ACK) and checking the window."""

    def __init__(self, path):
        self.ag = Agent(path)
        self.ag.hello(timeout=10)
        self.other = []

    def send(self, op, fields, stream=None):
        if stream is None:
            self.ag.stream += 1
            stream = self.ag.stream
        p = bytes([op]) + b"".join(tlv(t, v) for t, v in fields)
        self.ag.sock.sendall(frame(FS, stream, p))
        return stream

    def answer(self, st, window=0, ack=True):
        data, ents = bytearray(), []
        owed = 0
        while True:
            mine = [f for f in self.other if f[1] == st]
            if mine:
                f = mine[0]
                self.other.remove(f)
            else:
                f = self.ag._frame(10)
            expect(f is not None, f"no answer on stream {st}")
            t, s, p = f
            if s != st:
                self.other.append(f)  # another request's: kept for its answer()
                continue
            if t in (FS_RDATA, FS_DIRENTS):
                owed += len(p)
                expect(not window or owed <= window, f"{owed} bytes over window {window}")
                if t == FS_RDATA:
                    data += p
                else:
                    off = 0
                    while off < len(p):
                        n = struct.unpack(">H", p[off:off + 2])[0]
                        ents.append((p[off + 2:off + 2 + n].decode(),
                                     attr(p[off + 2 + n:off + 2 + n + ATTR_LEN])))
                        off += 2 + n + ATTR_LEN
                if window and ack:
                    self.ag.sock.sendall(frame(OUT_ACK, st, u32(owed)))
                    owed = 0
            elif t == FS_REPLY:
                return "ok", p, bytes(data), ents
            elif t == FS_ERRNO:
                return "err", struct.unpack(">I", p[:4])[0], p[4:].decode(), ents
            elif t == ERROR:
                return "error", p.decode(errors="replace"), None, None

    def do(self, op, *fields):
        return self.answer(self.send(op, list(fields)))

    def ok(self, what, op, *fields):
        r = self.do(op, *fields)
        expect(r[0] == "ok", f"{what}: {r[:3]}")
        return r

    def errno(self, what, want, op, *fields):
        r = self.do(op, *fields)
        expect(r[0] == "err" and r[1] == want, f"{what}: want errno {want}, got {r[:3]}")
        return r

    def upload(self, path, data, flags=0, mode=None, chunk=65536):
        fields = [(F_PATH, path.encode())]
        if flags:
            fields.append((F_FLAGS, u32(flags)))
        if mode is not None:
            fields.append((F_MODE, u32(mode)))
        st = self.send(O_WRITE_FILE, fields)
        unacked, acked = 0, 0
        for i in range(0, len(data), chunk):
            part = data[i:i + chunk]
            while unacked + len(part) > 1024 * 1024:  # AP_FS_WRITE_WINDOW
                f = self.ag._frame(10)
                expect(f is not None, "no WINDOW for the upload")
                if f[1] == st and f[0] == WINDOW:
                    unacked -= struct.unpack(">I", f[2])[0]
                elif f[1] == st:
                    return ("err", struct.unpack(">I", f[2][:4])[0], f[2][4:].decode(), None)
            self.ag.sock.sendall(frame(FS_DATA, st, part))
            unacked += len(part)
        self.ag.sock.sendall(frame(FS_DATA, st))
        while True:
            f = self.ag._frame(10)
            expect(f is not None, "no answer to the upload")
            t, s, p = f
            if s != st or t == WINDOW:
                continue
            if t == FS_REPLY:
                return ("ok", struct.unpack(">Q", p)[0], None, None)
            return ("err", struct.unpack(">I", p[:4])[0], p[4:].decode(), None)


def refuse_bad_values(fs, P):
    """Well-formed requests with bad values: FS_ERRNO each (P("/keep")
    must exist)."""
    import errno as E
    fs.errno("relative path", E.EINVAL, O_STAT, (F_PATH, b"relative"))
    fs.errno("path over AP_FS_PATH_MAX", E.ENAMETOOLONG, O_STAT, (F_PATH, b"/" + b"a" * 4095))
    fs.errno("window under the minimum", E.EINVAL, O_READ_FILE, P("/keep"), (F_WINDOW, u32(1)))
    fs.errno("PREAD over AP_FS_IO_MAX", E.E2BIG, O_PREAD, (F_HANDLE, u32(1)),
             (F_OFFSET, u64(0)), (F_LENGTH, u64(2 * 1024 * 1024)))


def refuse_malformed(fs, P):
    """Malformed FS payloads: ERROR on stream 0 and a dropped session each;
    after a new HELLO the agent serves again."""
    for bad in (b"", bytes([99]), bytes([O_STAT]) + tlv(F_PATH, b"/a\0b"),
                bytes([O_STAT]) + tlv(F_PATH, b"/a") + tlv(F_PATH, b"/b"),
                bytes([O_FSTAT]) + tlv(F_HANDLE, b"abc")):
        fs.ag.sock.sendall(frame(FS, 4242, bad))
        r = fs.answer(0)
        expect(r[0] == "error" and "malformed" in r[1], f"malformed FS {bad!r}: {r}")
        fs.ag.hello(timeout=10)
        fs.ok("after a malformed frame", O_STAT, P("/keep"))


def files(path):
    import errno as E
    import stat as S
    root = sys.argv[3]
    P = lambda rel: (F_PATH, (root + rel).encode())  # noqa: E731
    P2 = lambda rel: (F_PATH2, (root + rel).encode())  # noqa: E731
    fs = Files(path)

    # mkdir -p, and EEXIST without it
    r = fs.ok("mkdir -p", O_MKDIR, P("/a b/ü/c"), (F_FLAGS, u32(1)), (F_MODE, u32(0o750)))
    expect(S.S_ISDIR(attr(r[1])["mode"]) and attr(r[1])["mode"] & 0o7777 == 0o750, "mkdir attr")
    fs.ok("mkdir -p of an existing directory", O_MKDIR, P("/a b"), (F_FLAGS, u32(1)))
    fs.errno("mkdir of an existing directory", E.EEXIST, O_MKDIR, P("/a b"))
    fs.errno("mkdir without its parent", E.ENOENT, O_MKDIR, P("/none/x"))
    print("ok: MKDIR (parents, modes, EEXIST, ENOENT)")

    # a 3 MiB streamed upload, atomic, with parents; then a streamed download
    data = os.urandom(3 * 1024 * 1024 + 17)
    r = fs.upload(root + "/up/deep/big", data, flags=4 | 8 | 16, mode=0o640)
    expect(r[0] == "ok" and r[1] == len(data), f"upload: {r}")
    with open(root + "/up/deep/big", "rb") as f:
        expect(f.read() == data, "uploaded bytes differ")
    expect(os.stat(root + "/up/deep/big").st_mode & 0o7777 == 0o640, "upload mode")
    expect([n for n in os.listdir(root + "/up/deep") if "noid-" in n] == [], "temporary left")
    st = fs.send(O_READ_FILE, [P("/up/deep/big"), (F_WINDOW, u32(64 * 1024))])
    r = fs.answer(st, window=64 * 1024)
    expect(r[0] == "ok" and r[2] == data and struct.unpack(">Q", r[1])[0] == len(data),
           "streamed download")
    st = fs.send(O_READ_FILE, [P("/up/deep/big"), (F_OFFSET, u64(100)), (F_LENGTH, u64(5000)),
                               (F_WINDOW, u32(4096))])
    r = fs.answer(st, window=4096)
    expect(r[0] == "ok" and r[2] == data[100:5100], "ranged download")
    print("ok: WRITE_FILE 3 MiB atomic + parents + mode; READ_FILE whole and ranged, windowed")

    # without OUT_ACK the agent stops at the window; FS_CANCEL ends it
    st = fs.send(O_READ_FILE, [P("/up/deep/big"), (F_WINDOW, u32(8192))])
    got = 0
    while got < 8192:
        f = fs.ag._frame(10)
        expect(f is not None and f[0] == FS_RDATA and f[1] == st, f"held download: {f and f[:2]}")
        got += len(f[2])
    fs.ag.stream += 1
    fs.ag.sock.sendall(frame(PING, fs.ag.stream, b"x"))
    f = fs.ag._frame(10)
    expect(f[0] == PONG, f"more than the window arrived: {f[:2]}")
    fs.ag.sock.sendall(frame(FS_CANCEL, st))
    r = fs.answer(st)
    expect(r[0] == "err" and r[1] == E.ECANCELED, f"cancel: {r[:3]}")
    print("ok: a download holds at its window; FS_CANCEL ends it with ECANCELED")

    # an atomic upload that fails leaves the old content; EXCL; not a file
    with open(root + "/keep", "wb") as f:
        f.write(b"old")
    st = fs.send(O_WRITE_FILE, [P("/keep"), (F_FLAGS, u32(4))])
    fs.ag.sock.sendall(frame(FS_DATA, st, b"n" * 70000))  # over AP_FS_CHUNK_MAX
    r = fs.answer(st)
    expect(r[0] == "err" and r[1] == E.E2BIG, f"oversized FS_DATA: {r[:3]}")
    fs.ag.sock.sendall(frame(FS_DATA, st))  # ignored now
    expect(open(root + "/keep", "rb").read() == b"old", "a failed atomic upload changed the file")
    expect(sorted(os.listdir(root)) == ["a b", "keep", "up"], f"left over: {os.listdir(root)}")
    r = fs.upload(root + "/keep", b"x", flags=1)
    expect(r[0] == "err" and r[1] == E.EEXIST, f"EXCL: {r}")
    r = fs.upload(root + "/keep", b"x", flags=1 | 4)
    expect(r[0] == "err" and r[1] == E.EEXIST, f"EXCL atomic: {r}")
    r = fs.upload(root + "/a b", b"x")
    expect(r[0] == "err" and r[1] == E.EISDIR, f"upload onto a directory: {r}")
    print("ok: failed atomic upload leaves the old file and no temporary; EXCL; EISDIR")

    # stat / lstat / symlink / readlink / link
    r = fs.ok("symlink", O_SYMLINK, P("/ln"), (F_PATH2, b"up/deep/big"))
    expect(S.S_ISLNK(attr(r[1])["mode"]), "symlink attr")
    expect(fs.ok("readlink", O_READLINK, P("/ln"))[1] == b"up/deep/big", "readlink")
    expect(attr(fs.ok("stat", O_STAT, P("/ln"))[1])["size"] == len(data), "stat follows")
    expect(S.S_ISLNK(attr(fs.ok("lstat", O_LSTAT, P("/ln"))[1])["mode"]), "lstat does not")
    fs.errno("readlink of a file", E.EINVAL, O_READLINK, P("/keep"))
    fs.errno("stat of nothing", E.ENOENT, O_STAT, P("/nothing"))
    fs.errno("stat through a file", E.ENOTDIR, O_STAT, P("/keep/x"))
    r = fs.ok("link", O_LINK, P("/keep"), P2("/hard"))
    expect(attr(r[1])["nlink"] == 2, "link count")
    fs.errno("link onto an existing name", E.EEXIST, O_LINK, P("/keep"), P2("/hard"))
    print("ok: STAT, LSTAT, SYMLINK, READLINK, LINK and their errnos")

    # handles: open/create, pwrite, pread, fstat, truncate, fsync, close
    r = fs.ok("create", O_OPEN, P("/h"), (F_FLAGS, u32(2 | 4 | 8)), (F_MODE, u32(0o600)))
    h = struct.unpack(">I", r[1][:4])[0]
    expect(attr(r[1][4:])["mode"] & 0o7777 == 0o600, "created mode")
    fs.errno("create EXCL again", E.EEXIST, O_OPEN, P("/h"), (F_FLAGS, u32(2 | 4 | 8)))
    r = fs.ok("pwrite", O_PWRITE, (F_HANDLE, u32(h)), (F_OFFSET, u64(3)), (F_DATA, b"hello"))
    expect(struct.unpack(">Q", r[1])[0] == 5, "pwrite count")
    r = fs.ok("pread", O_PREAD, (F_HANDLE, u32(h)), (F_OFFSET, u64(0)), (F_LENGTH, u64(100)))
    expect(r[2] == b"\0\0\0hello", f"pread {r[2]!r}")
    r = fs.ok("ftruncate", O_TRUNCATE, (F_HANDLE, u32(h)), (F_LENGTH, u64(4)))
    expect(attr(r[1])["size"] == 4, "ftruncate")
    expect(attr(fs.ok("fstat", O_FSTAT, (F_HANDLE, u32(h)))[1])["size"] == 4, "fstat")
    fs.ok("fsync", O_FSYNC, (F_HANDLE, u32(h)))
    fs.ok("fdatasync", O_FSYNC, (F_HANDLE, u32(h)), (F_FLAGS, u32(1)))
    fs.ok("close", O_CLOSE, (F_HANDLE, u32(h)))
    fs.errno("close again", E.EBADF, O_CLOSE, (F_HANDLE, u32(h)))
    fs.errno("pread of a closed handle", E.EBADF, O_PREAD, (F_HANDLE, u32(h)),
             (F_OFFSET, u64(0)), (F_LENGTH, u64(1)))
    fs.errno("open a directory for writing", E.EISDIR, O_OPEN, P("/a b"), (F_FLAGS, u32(1)))
    os.mkfifo(root + "/fifo")
    fs.errno("open a FIFO", E.EINVAL, O_OPEN, P("/fifo"), (F_FLAGS, u32(0)))
    fs.errno("READ_FILE of a FIFO", E.EINVAL, O_READ_FILE, P("/fifo"), (F_WINDOW, u32(4096)))
    r = fs.ok("truncate a path", O_TRUNCATE, P("/h"), (F_LENGTH, u64(10)))
    expect(attr(r[1])["size"] == 10, "truncate")
    print("ok: OPEN/create, PWRITE, PREAD, FSTAT, TRUNCATE, FSYNC, CLOSE; EBADF, EISDIR, FIFO")

    # chmod / chown / utimens / statfs / rename / unlink / rmdir
    expect(attr(fs.ok("chmod", O_CHMOD, P("/h"), (F_MODE, u32(0o4711)))[1])["mode"] & 0o7777
           == 0o4711, "chmod")
    fs.ok("chown to ourselves", O_CHOWN, P("/h"), (F_UID, u32(os.getuid())),
          (F_GID, u32(os.getgid())))
    fs.ok("lchown", O_CHOWN, P("/ln"), (F_UID, u32(os.getuid())), (F_FLAGS, u32(1)))
    r = fs.ok("utimens", O_UTIMENS, P("/h"), (F_ATIME, struct.pack(">qI", 5, 0x3ffffffe)),
              (F_MTIME, struct.pack(">qI", 1000000000, 123)))
    expect(attr(r[1])["mtime"] == (1000000000, 123), f"utimens {attr(r[1])}")
    expect(os.stat(root + "/h").st_mtime_ns == 1000000000 * 10**9 + 123, "mtime on disk")
    # (without any time, Linux's utimensat() succeeds without looking)
    fs.errno("utimens of nothing", E.ENOENT, O_UTIMENS, P("/nothing"),
             (F_MTIME, struct.pack(">qI", 0, 0x3fffffff)))
    r = fs.ok("statfs", O_STATFS, P("/"))
    expect(len(r[1]) == 52 and struct.unpack(">I", r[1][:4])[0] > 0, "statfs")
    fs.ok("rename", O_RENAME, P("/h"), P2("/a b/h2"))
    fs.errno("rename NOREPLACE onto a file", E.EEXIST, O_RENAME, P("/keep"), P2("/hard"),
             (F_FLAGS, u32(1)))
    fs.ok("rename EXCHANGE", O_RENAME, P("/keep"), P2("/a b/h2"), (F_FLAGS, u32(2)))
    expect(os.path.getsize(root + "/keep") == 10, "exchanged")
    fs.errno("rmdir of a non-empty directory", E.ENOTEMPTY, O_RMDIR, P("/a b"))
    fs.errno("unlink of a directory", E.EISDIR, O_UNLINK, P("/a b"))
    fs.ok("unlink", O_UNLINK, P("/hard"))
    fs.errno("unlink again", E.ENOENT, O_UNLINK, P("/hard"))
    fs.ok("rmdir", O_RMDIR, P("/a b/ü/c"))
    print("ok: CHMOD, CHOWN, UTIMENS, STATFS, RENAME (+NOREPLACE, EXCHANGE), UNLINK, RMDIR")

    # a large directory comes in several bounded FS_DIRENTS frames
    os.mkdir(root + "/many")
    for i in range(2000):
        open(f"{root}/many/file-{i:05d}-{'x' * 60}", "w").close()
    st = fs.send(O_READDIR, [P("/many"), (F_WINDOW, u32(4096))])
    r = fs.answer(st, window=4096)
    names = sorted(n for n, _ in r[3])
    expect(r[0] == "ok" and len(names) == 2000 and struct.unpack(">Q", r[1])[0] == 2000,
           f"readdir: {r[0]} {len(names)}")
    expect(names == sorted(os.listdir(root + "/many")), "readdir names")
    fs.errno("readdir of a file", E.ENOTDIR, O_READDIR, P("/keep"), (F_WINDOW, u32(4096)))
    print("ok: READDIR of 2,000 entries under a 4 KiB window; ENOTDIR")

    # many requests in flight at once: answers by stream
    sts = [fs.send(O_STAT, [P("/keep")]) for _ in range(50)]
    for st in reversed(sts):
        expect(fs.answer(st)[0] == "ok", "concurrent stat")
    print("ok: 50 requests in flight")

    # bad values: FS_ERRNO, the session goes on
    refuse_bad_values(fs, P)
    fs.ok("still serving", O_STAT, P("/keep"))
    print("ok: bad values get FS_ERRNO and the session goes on")

    # a malformed FS payload is a session error; the agent keeps serving
    refuse_malformed(fs, P)
    print("ok: malformed FS payloads refused (ERROR, session dropped); the agent keeps serving")


def fs_refusals(path):
    """Bad and malformed file frames, checked through the protocol only (no
    look at the agent's file system): usable against the agent of a real VM,
    where ROOT (argv[3]) is a guest path."""
    import errno as E
    root = sys.argv[3]
    P = lambda rel: (F_PATH, (root + rel).encode())  # noqa: E731
    fs = Files(path)
    fs.ok("mkdir -p", O_MKDIR, P(""), (F_FLAGS, u32(1)))
    r = fs.upload(root + "/keep", b"kept")
    expect(r[0] == "ok", f"upload: {r}")

    refuse_bad_values(fs, P)
    # an FS_DATA chunk over AP_FS_CHUNK_MAX ends its upload with E2BIG
    st = fs.send(O_WRITE_FILE, [P("/over"), (F_FLAGS, u32(4))])  # AP_WRITE_ATOMIC
    fs.ag.sock.sendall(frame(FS_DATA, st, b"x" * (64 * 1024 + 1)))
    while True:
        f = fs.ag._frame(10)
        expect(f is not None, "no answer to an oversized FS_DATA")
        if f[1] == st and f[0] != WINDOW:
            break
    expect(f[0] == FS_ERRNO and struct.unpack(">I", f[2][:4])[0] == E.E2BIG,
           f"oversized FS_DATA: {f}")
    fs.errno("nothing left by the refused atomic upload", E.ENOENT, O_STAT, P("/over"))
    print("ok: bad values and an oversized FS_DATA get FS_ERRNO; the session goes on")

    refuse_malformed(fs, P)
    print("ok: malformed FS payloads refused (ERROR, session dropped); the agent keeps serving")


# ---- SET_NETWORK (protocol v4, agent_proto.h struct ap_net) ----

SET_NETWORK = 13


def net_payload(up=True, mac="aa:fc:00:00:00:01", addr="172.16.0.2", prefix=30,
                gw="172.16.0.1", dns="192.0.2.1", flags=None):
    """The AP_NET_LEN (20) bytes of a SET_NETWORK; flags overrides bit 0."""
    if not up and flags is None:
        return bytes(20)
    quad = lambda a: bytes(int(x) for x in a.split("."))  # noqa: E731
    return (bytes([1 if flags is None else flags]) + bytes.fromhex(mac.replace(":", ""))
            + quad(addr) + bytes([prefix]) + quad(gw) + quad(dns))


def set_network(ag, payload, timeout=15):
    """Send SET_NETWORK; ("ok", b"") or ("error", message)."""
    ag.stream += 1
    st = ag.stream
    ag.sock.sendall(frame(SET_NETWORK, st, payload))
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        f = ag._frame(end - time.monotonic())
        if f is None:
            break
        ftype, stream, p = f
        if stream == st and ftype == OK:
            return "ok", b""
        if stream == st and ftype == ERROR:
            return "error", p
        expect(not (ftype == ERROR and stream == 0), f"session error: {p!r}")
    expect(False, f"no answer to SET_NETWORK on stream {st}")


def net(path):
    ag = Agent(path)
    r = set_network(ag, net_payload())
    expect(r[0] == "error" and b"no session" in r[1], f"SET_NETWORK before HELLO: {r}")
    print("ok: SET_NETWORK outside a session gets ERROR (no session)")
    ag.hello(timeout=10)
    for what, p in [("up, gateway and dns", net_payload()),
                    ("up, no gateway, no dns", net_payload(gw="0.0.0.0", dns="0.0.0.0")),
                    ("up, /32 without gateway", net_payload(prefix=32, gw="0.0.0.0")),
                    ("up, /24", net_payload(addr="10.1.2.3", prefix=24, gw="10.1.2.254")),
                    ("down", net_payload(up=False))]:
        r = set_network(ag, p)
        expect(r == ("ok", b""), f"SET_NETWORK {what}: {r}")
    print("ok: valid SET_NETWORK payloads (up with and without gateway and dns, down) get OK")

    bad = [("19 bytes", net_payload()[:19]),
           ("21 bytes", net_payload() + b"\0"),
           ("empty", b""),
           ("unknown flag bit", net_payload(flags=0x03)),
           ("flag bits without up", net_payload(flags=0x80)),
           ("prefix 33", net_payload(prefix=33)),
           ("prefix 0", net_payload(prefix=0, gw="0.0.0.0")),
           ("gateway outside the subnet", net_payload(gw="172.16.0.5")),
           ("gateway = address", net_payload(gw="172.16.0.2")),
           ("/32 with a gateway", net_payload(prefix=32, gw="172.16.0.1")),
           ("multicast MAC", net_payload(mac="01:00:5e:00:00:01")),
           ("zero MAC", net_payload(mac="00:00:00:00:00:00")),
           ("address 0.0.0.0", net_payload(addr="0.0.0.0", gw="0.0.0.0")),
           ("down with settings", bytes(11) + b"\x18" + bytes(8))]
    for what, p in bad:
        r = set_network(ag, p)
        expect(r[0] == "error" and b"set network" in r[1], f"SET_NETWORK {what}: {r}")
        ag.ping()
    code, out = ag.run(["echo", "still"])
    expect(code == 0 and out == b"still\n", f"exec after refused SET_NETWORKs: {code} {out!r}")
    print(f"ok: {len(bad)} malformed SET_NETWORK payloads get ERROR on their stream; "
          "the session goes on")


def set_network_cmd(path):
    args = sys.argv[3:]
    if args == ["down"]:
        p = net_payload(up=False)
    else:
        expect(len(args) == 5 and args[0] == "up", "usage: set-network up MAC ADDR/PREFIX GW DNS")
        addr, prefix = args[2].split("/")
        p = net_payload(mac=args[1], addr=addr, prefix=int(prefix), gw=args[3], dns=args[4])
    ag = Agent(path)
    ag.hello(timeout=30)
    r = set_network(ag, p)
    print("ok" if r[0] == "ok" else f"ERROR: {r[1].decode(errors='replace')}")
    sys.exit(0 if r[0] == "ok" else 1)


{"basic": basic, "flow": flow, "files": files, "fs-refusals": fs_refusals, "net": net,
 "set-network": set_network_cmd}[sys.argv[2] if len(sys.argv) > 2 else "basic"](sys.argv[1])
