#!/usr/bin/python3
"""outside_peer.py — "the outside" for the networking tests (netns.sh).

Runs in the outside namespace and plays the rest of the world to the VMs
behind noid-netd's NAT:

  HTTP  ADDR:80    GET /hello    -> HELLO_BODY
                   GET /bytes?n=N -> N bytes (zeros), N <= MAX_BYTES
                   anything else -> 404
  DNS   ADDR:53    UDP; an A query for outside.noid.test (any case) ->
                   ADDR; another type for that name -> no answer
                   (NOERROR); any other name -> NXDOMAIN.  Hand-written
                   wire parsing: every length is checked; garbage with a
                   query header gets FORMERR (another opcode NOTIMP),
                   anything else (short, a response) is dropped.
  sink  ADDR:5001  TCP; reads until the client's EOF, then writes back
                   "BYTES SECONDS\\n" (from accept to EOF) and closes.

Every request is logged to --log, one line each, with the client address
the peer saw (the tests check that guests arrive MASQUERADEd as the host):
  http CLIENT_IP CLIENT_PORT METHOD PATH STATUS
  http-bytes CLIENT_IP CLIENT_PORT BYTES SECONDS   (a /bytes body sent)
  dns CLIENT_IP CLIENT_PORT NAME QTYPE A|NODATA|NXDOMAIN
  dns-bad CLIENT_IP CLIENT_PORT REASON
  sink CLIENT_IP CLIENT_PORT BYTES SECONDS
Prints "ready" on stdout once all three listen.  Standard library only;
nothing here ever sends to an address it was not contacted from.
"""
import argparse
import http.server
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

HELLO_BODY = b"hello from outside\n"
DNS_NAME = "outside.noid.test"
MAX_BYTES = 1 << 32
CHUNK = 1 << 16

QTYPE_A = 1
QTYPE_ANY = 255
QCLASS_IN = 1
RCODE_OK, RCODE_FORMERR, RCODE_NXDOMAIN, RCODE_NOTIMP = 0, 1, 3, 4

_log_lock = threading.Lock()
_log_file = None


def clean(field):
    """A log field without spaces or control characters (a request path or
    a query name comes from the client)."""
    return "".join(c if 0x21 <= ord(c) < 0x7F else "\\x%02x" % ord(c) for c in str(field))


def log(*fields):
    line = " ".join(str(f) for f in fields) + "\n"
    with _log_lock:
        _log_file.write(line)
        _log_file.flush()


# ---------------------------------------------------------------- HTTP --

class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "outside-peer"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass  # our own log line per request, in send_response

    def send_response(self, code, message=None):
        # a bad request line fails before command and path are set
        log("http", self.client_address[0], self.client_address[1],
            clean(getattr(self, "command", None) or "-"), clean(getattr(self, "path", "-")), code)
        super().send_response(code, message)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/hello":
            self.reply(HELLO_BODY)
            return
        if url.path == "/bytes":
            try:
                n = int(urllib.parse.parse_qs(url.query)["n"][0])
            except (KeyError, ValueError, IndexError):
                n = -1
            if not 0 <= n <= MAX_BYTES:
                self.reply(b"n must be 0..%d\n" % MAX_BYTES, 400)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            zeros = bytes(CHUNK)
            t0 = time.monotonic()
            left = n
            while left > 0:
                k = min(left, CHUNK)
                self.wfile.write(zeros[:k])
                left -= k
            log("http-bytes", self.client_address[0], self.client_address[1], n,
                "%.6f" % (time.monotonic() - t0))
            return
        self.reply(b"not found\n", 404)

    def reply(self, body, code=200):
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# ----------------------------------------------------------------- DNS --

class BadQuery(Exception):
    pass


def parse_question(msg):
    """The one question of a query: (name, qtype, qclass, end offset).
    Raises BadQuery on anything malformed."""
    labels = []
    off = 12
    total = 0
    while True:
        if off >= len(msg):
            raise BadQuery("name runs past the end")
        n = msg[off]
        off += 1
        if n == 0:
            break
        if n & 0xC0:
            # compression pointers cannot occur in the first name
            raise BadQuery("label type 0x%02x in the question" % (n & 0xC0))
        if off + n > len(msg):
            raise BadQuery("label runs past the end")
        total += n + 1
        if total > 255:
            raise BadQuery("name longer than 255 bytes")
        labels.append(msg[off:off + n])
        off += n
    if off + 4 > len(msg):
        raise BadQuery("no room for type and class")
    qtype, qclass = struct.unpack_from("!HH", msg, off)
    # printable and without spaces, so a log line stays one line of fields;
    # a dot inside a label is escaped too, so only real labels match
    name = ".".join("".join(chr(c) if 0x21 <= c < 0x7F and c not in b".\\" else "\\x%02x" % c
                            for c in label) for label in labels).lower()
    return name, qtype, qclass, off + 4


def dns_answer(msg, addr_bytes):
    """The reply to one datagram, or None to drop it.  Returns (reply,
    log fields)."""
    if len(msg) < 12:
        return None, ("dns-bad", "short header (%d bytes)" % len(msg))
    qid, flags, qd, _an, _ns, _ar = struct.unpack_from("!HHHHHH", msg)
    if flags & 0x8000:
        return None, ("dns-bad", "a response, not a query")
    opcode = (flags >> 11) & 0xF
    rd = flags & 0x0100

    def header(rcode, an_count, with_question):
        # QR, opcode echoed, AA, RD echoed; no recursion available
        f = 0x8000 | (opcode << 11) | 0x0400 | rd | rcode
        return struct.pack("!HHHHHH", qid, f, 1 if with_question else 0, an_count, 0, 0)

    if opcode != 0:
        return header(RCODE_NOTIMP, 0, False), ("dns-bad", "opcode %d" % opcode)
    if qd != 1:
        return header(RCODE_FORMERR, 0, False), ("dns-bad", "%d questions" % qd)
    try:
        name, qtype, qclass, end = parse_question(msg)
    except BadQuery as e:
        return header(RCODE_FORMERR, 0, False), ("dns-bad", str(e))
    question = msg[12:end]
    if name != DNS_NAME:
        return header(RCODE_NXDOMAIN, 0, True) + question, ("dns", name, qtype, "NXDOMAIN")
    if qclass == QCLASS_IN and qtype in (QTYPE_A, QTYPE_ANY):
        # the name as a pointer to the question (offset 12), A IN, TTL 60
        rr = struct.pack("!HHHIH", 0xC00C, QTYPE_A, QCLASS_IN, 60, 4) + addr_bytes
        return header(RCODE_OK, 1, True) + question + rr, ("dns", name, qtype, "A")
    return header(RCODE_OK, 0, True) + question, ("dns", name, qtype, "NODATA")


def serve_dns(sock, addr_bytes):
    while True:
        try:
            msg, peer = sock.recvfrom(4096)
        except OSError:
            continue
        try:
            reply, fields = dns_answer(msg, addr_bytes)
            log(fields[0], peer[0], peer[1], *fields[1:])
            if reply is not None:
                sock.sendto(reply, peer)
        except Exception as e:  # a bug here must not end the DNS service
            try:
                log("dns-bad", peer[0], peer[1], "internal error: %r" % e)
            except Exception:
                pass


# ---------------------------------------------------------------- sink --

class SinkHandler(socketserver.BaseRequestHandler):
    def handle(self):
        t0 = time.monotonic()
        n = 0
        sock = self.request
        buf = bytearray(1 << 18)
        while True:
            k = sock.recv_into(buf)
            if k == 0:
                break
            n += k
        secs = time.monotonic() - t0
        log("sink", self.client_address[0], self.client_address[1], n, "%.6f" % secs)
        try:
            sock.sendall(b"%d %.6f\n" % (n, secs))
        except OSError:
            pass


class SinkServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


# ---------------------------------------------------------------- main --

def main():
    global _log_file
    ap = argparse.ArgumentParser(description="HTTP, DNS and a TCP sink for the networking tests")
    ap.add_argument("--addr", default="192.0.2.1", help="address to listen on")
    ap.add_argument("--http-port", type=int, default=80)
    ap.add_argument("--dns-port", type=int, default=53)
    ap.add_argument("--sink-port", type=int, default=5001)
    ap.add_argument("--log", required=True, help="file the requests are logged to")
    a = ap.parse_args()
    _log_file = open(a.log, "a", buffering=1)
    addr_bytes = socket.inet_aton(a.addr)

    httpd = HTTPServer((a.addr, a.http_port), Handler)
    sink = SinkServer((a.addr, a.sink_port), SinkHandler)
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.bind((a.addr, a.dns_port))
    threads = [
        threading.Thread(target=httpd.serve_forever, daemon=True),
        threading.Thread(target=sink.serve_forever, daemon=True),
        threading.Thread(target=serve_dns, args=(dns, addr_bytes), daemon=True),
    ]
    for t in threads:
        t.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
