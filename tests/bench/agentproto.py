"""agentproto.py — a minimal client of the noid agent protocol
(lib/agent_proto.h), for benchmarks that talk to a guest agent directly,
without noid-server in between: the raw baseline."""
import select
import socket
import struct
import time

MAGIC = 0x4E41
HELLO, EXEC, STDIN, PING = 1, 2, 3, 8
HELLO_ACK, STARTED, STDOUT, STDERR, EXIT, WINDOW, OK, ERROR, PONG = range(32, 41)


def frame(ftype, stream, payload=b""):
    return struct.pack(">HBBII", MAGIC, ftype, 0, stream, len(payload)) + payload


def tlv(tag, value):
    return struct.pack(">HI", tag, len(value)) + value


class Agent:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = bytearray()
        self.stream = 1000

    def _frame(self, timeout):
        end = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 12:
                magic, ftype, _, stream, length = struct.unpack(">HBBII", self.buf[:12])
                if magic != MAGIC:  # bytes of an earlier session: resync
                    i = self.buf.find(b"NA", 1)
                    del self.buf[: i if i > 0 else len(self.buf)]
                    continue
                if len(self.buf) >= 12 + length:
                    payload = bytes(self.buf[12 : 12 + length])
                    del self.buf[: 12 + length]
                    return ftype, stream, payload
            left = end - time.monotonic()
            if left <= 0:
                return None
            if select.select([self.sock], [], [], left)[0]:
                data = self.sock.recv(1 << 20)
                if not data:
                    raise EOFError("agent closed the channel")
                self.buf += data

    def hello(self, timeout=120.0, every=0.02):
        """Repeat HELLO until the matching HELLO_ACK (the guest may be booting)."""
        nonce = int(time.monotonic_ns()) & 0xFFFFFFFFFFFF
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.sock.sendall(frame(HELLO, 0, struct.pack(">IQ", 1, nonce)))
            f = self._frame(every)
            while f:
                if f[0] == HELLO_ACK and struct.unpack(">Q", f[2][4:12])[0] == nonce:
                    return
                f = self._frame(0.0005)
        raise TimeoutError("no HELLO_ACK")

    def ping(self):
        self.stream += 1
        self.sock.sendall(frame(PING, self.stream, b"x"))
        while True:
            f = self._frame(10)
            if f is None:
                raise TimeoutError("no PONG")
            if f[0] == PONG and f[1] == self.stream:
                return

    def run(self, argv):
        """Run argv to completion; returns (exit code, stdout bytes)."""
        self.stream += 1
        payload = b"".join(tlv(1, a.encode()) for a in argv)
        payload += tlv(4, b"\0") + tlv(8, b"\0") + tlv(5, struct.pack(">I", 30000))
        self.sock.sendall(frame(EXEC, self.stream, payload))
        out = bytearray()
        while True:
            f = self._frame(60)
            if f is None:
                raise TimeoutError("no EXIT")
            ftype, stream, p = f
            if stream != self.stream:
                continue
            if ftype == STDOUT:
                out += p
            elif ftype == EXIT:
                return struct.unpack(">i", p[:4])[0], bytes(out)
            elif ftype == ERROR:
                raise RuntimeError(p.decode(errors="replace"))

    # ---- file operations (protocol v3) ----
    FS, FS_DATA, FS_REPLY, FS_ERRNO, FS_RDATA, OUT_ACK = 10, 11, 41, 42, 43, 9
    READ_FILE, WRITE_FILE = 9, 10
    F_PATH, F_FLAGS, F_WINDOW = 1, 7, 12

    def _fs_answer(self, stream, on_data=None):
        while True:
            f = self._frame(120)
            if f is None:
                raise TimeoutError("no answer to a file request")
            ftype, st, p = f
            if st != stream:
                continue
            if ftype == self.FS_RDATA and on_data:
                on_data(p)
            elif ftype == WINDOW:
                continue
            elif ftype == self.FS_REPLY:
                return struct.unpack(">Q", p)[0]
            elif ftype == self.FS_ERRNO:
                raise OSError(struct.unpack(">I", p[:4])[0], p[4:].decode(errors="replace"))

    def read_file(self, path, sink, window=16 << 20):
        """READ_FILE path into sink(bytes), giving credit back every quarter
        window, as the server does; returns the byte count."""
        self.stream += 1
        st = self.stream
        self.sock.sendall(frame(self.FS, st, bytes([self.READ_FILE]) + tlv(self.F_PATH, path.encode())
                                + tlv(self.F_WINDOW, struct.pack(">I", window))))
        owed = [0]

        def on_data(p):
            sink(p)
            owed[0] += len(p)
            if owed[0] >= window // 4:
                self.sock.sendall(frame(self.OUT_ACK, st, struct.pack(">I", owed[0])))
                owed[0] = 0
        return self._fs_answer(st, on_data)

    def write_file(self, path, chunks, window=1 << 20):
        """WRITE_FILE (atomic) from an iterable of chunks of at most 64 KiB,
        keeping at most window bytes unacknowledged; returns the count."""
        self.stream += 1
        st = self.stream
        self.sock.sendall(frame(self.FS, st, bytes([self.WRITE_FILE]) + tlv(self.F_PATH, path.encode())
                                + tlv(self.F_FLAGS, struct.pack(">I", 4))))
        unacked = 0
        for c in chunks:
            while unacked + len(c) > window:
                f = self._frame(120)
                if f is None:
                    raise TimeoutError("no WINDOW")
                if f[1] == st and f[0] == WINDOW:
                    unacked -= struct.unpack(">I", f[2])[0]
                elif f[1] == st and f[0] == self.FS_ERRNO:
                    raise OSError(struct.unpack(">I", f[2][:4])[0], f[2][4:].decode(errors="replace"))
            self.sock.sendall(frame(self.FS_DATA, st, c))
            unacked += len(c)
        self.sock.sendall(frame(self.FS_DATA, st))
        return self._fs_answer(st)
