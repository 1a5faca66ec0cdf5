#!/usr/bin/python3
"""hostile_http.py — raw-socket HTTP clients for test_hostile_clients.sh.

curl always sends the body it announces; these clients do what a hostile
one does: announce a body and never send it, send a chunked body without
end, hold many idle connections.  Each scenario asserts what it observes and
exits 1 with a 'FAIL: ...' line when the server misbehaves.  Every wait has a
deadline (DEADLINE) so a broken server fails the test instead of hanging it;
no assertion is about how long something took.

Usage:
  hostile_http.py early PORT [--token T] [--chunked] [--content-length N]
  hostile_http.py chunked PORT --token T
  hostile_http.py flood PORT --token T --src A --other B --count N --limit L
  hostile_http.py idle PORT --src A --limit L
"""
import argparse
import select
import socket
import sys
import time

DEADLINE = 60.0  # seconds any single wait may take before the scenario fails
CHUNK = 64 * 1024
CHUNKED_GIVE_UP = 1024 * 1024 * 1024  # a chunked body we are willing to send


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def connect(port, src=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if src:
        s.bind((src, 0))
    s.settimeout(DEADLINE)
    s.connect(("127.0.0.1", port))
    return s


def read_response(s):
    """Read one HTTP response; returns (status, headers, body).  Raises
    EOFError if the connection ends before a complete status line."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            got = s.recv(65536)
        except ConnectionResetError:
            got = b""
        if not got:
            raise EOFError("connection closed after %d bytes: %r" % (len(data), data[:200]))
        data += got
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    want = int(headers.get("content-length", "0"))
    while len(body) < want:
        got = s.recv(65536)
        if not got:
            break
        body += got
    return status, headers, body


def closed_by_peer(s, timeout):
    """Whether the server closes s (EOF or reset) within timeout seconds.
    Anything received first (a response) is skipped."""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([s], [], [], left)
        if not r:
            return False
        try:
            if not s.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True


def get(port, path, src=None, token=None):
    s = connect(port, src)
    req = "GET %s HTTP/1.1\r\nHost: noid\r\nConnection: close\r\n" % path
    if token:
        req += "Authorization: Bearer %s\r\n" % token
    s.sendall((req + "\r\n").encode())
    try:
        return read_response(s)[0]
    finally:
        s.close()


def cmd_early(a):
    """Send the headers of a POST with a large body and no byte of it; the
    server must answer (401/413) and close the connection."""
    s = connect(a.port)
    req = "POST /v1/vms HTTP/1.1\r\nHost: noid\r\nContent-Type: application/json\r\n"
    if a.chunked:
        req += "Transfer-Encoding: chunked\r\n"
    else:
        req += "Content-Length: %d\r\n" % a.content_length
    if a.token:
        req += "Authorization: Bearer %s\r\n" % a.token
    s.sendall((req + "\r\n").encode())
    try:
        status, _, body = read_response(s)
    except socket.timeout:
        fail("no response within %ds to headers alone (the server waits for the body)" % DEADLINE)
    except EOFError as e:
        fail("no response to headers alone: %s" % e)
    if not closed_by_peer(s, DEADLINE):
        fail("status %d, but the connection stayed open waiting for the body" % status)
    print("%d %s" % (status, body.decode(errors="replace")), flush=True)


def cmd_chunked(a):
    """Send a chunked body without end (up to CHUNKED_GIVE_UP); the server
    must answer 413 once API_MAX_BODY is passed, long before we give up."""
    s = connect(a.port)
    s.sendall(("POST /v1/vms HTTP/1.1\r\nHost: noid\r\nContent-Type: application/json\r\n"
               "Authorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n"
               % a.token).encode())
    chunk = b"%x\r\n" % CHUNK + b"x" * CHUNK + b"\r\n"
    sent = 0
    pending = b""
    s.setblocking(False)
    last_progress = time.monotonic()
    while sent < CHUNKED_GIVE_UP:
        r, w, _ = select.select([s], [s], [], 1.0)
        if r:
            break  # the server answered (or closed): stop sending
        if w:
            if not pending:
                pending = chunk
            try:
                n = s.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                break
            pending = pending[n:]
            sent += n
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > DEADLINE:
            fail("the server neither reads nor answers (sent %d bytes)" % sent)
    finished = sent >= CHUNKED_GIVE_UP
    s.setblocking(True)
    s.settimeout(DEADLINE)
    try:
        status, _, body = read_response(s)
    except (EOFError, socket.timeout) as e:
        fail("no response to an oversized chunked body (sent %d bytes): %s" % (sent, e))
    if finished:
        fail("status %d only after the client sent all %d bytes" % (status, sent))
    print("%d sent=%d %s" % (status, sent, body.decode(errors="replace")), flush=True)


def cmd_flood(a):
    """Hold `count` idle connections from `src`; check the per-address limit
    and that `other` is served meanwhile.  The server's idle timeout must be
    far longer than all this takes (the idle close is cmd_idle's)."""
    conns = []
    for _ in range(a.count):
        conns.append(connect(a.port, a.src))
    # the server accepts `limit` of them and closes the rest at once
    open_ = list(conns)
    end = time.monotonic() + DEADLINE
    while len(open_) > a.limit and time.monotonic() < end:
        r, _, _ = select.select(open_, [], [], 0.5)
        for s in r:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                data = b""
            if data:
                fail("an idle connection received data: %r" % data[:200])
            open_.remove(s)
            s.close()
    if len(open_) != a.limit:
        fail("%d of %d idle connections from %s kept open, expected the limit %d"
             % (len(open_), a.count, a.src, a.limit))
    print("per-address limit: %d of %d idle connections from %s kept, the rest closed"
          % (len(open_), a.count, a.src), flush=True)

    # over the limit, the same address is refused ...
    s = connect(a.port, a.src)
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: noid\r\n\r\n")
        status, _, _ = read_response(s)
        fail("connection %d from %s served (%d) past the limit" % (a.limit + 1, a.src, status))
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass
    s.close()
    # ... while another address is served
    st = get(a.port, "/healthz", src=a.other)
    if st != 200:
        fail("/healthz from %s: %d" % (a.other, st))
    st = get(a.port, "/v1/whoami", src=a.other, token=a.token)
    if st != 200:
        fail("/v1/whoami from %s: %d" % (a.other, st))
    # the check above ran while the flood was in place
    r, _, _ = select.select(open_, [], [], 0)
    if r:
        fail("idle connections closed before the other address was tried; raise the "
             "test's http_idle_timeout_secs")
    print("%s served (healthz, whoami) while %s holds %d idle connections"
          % (a.other, a.src, len(open_)), flush=True)
    for s in open_:
        s.close()
    # closed by us: the server frees the address's slots once it sees them go
    end = time.monotonic() + DEADLINE
    while True:
        try:
            if get(a.port, "/healthz", src=a.src) == 200:
                break
        except (EOFError, OSError):
            pass
        if time.monotonic() > end:
            fail("%s not served within %ds of closing its idle connections" % (a.src, DEADLINE))
        time.sleep(0.1)


def cmd_idle(a):
    """Hold `limit` idle connections from `src` (all the address may have);
    the server's idle timeout (well below DEADLINE) closes them, and `src`
    is served again."""
    open_ = [connect(a.port, a.src) for _ in range(a.limit)]
    # the idle ones are closed by the server's idle timeout
    for s in open_:
        if not closed_by_peer(s, DEADLINE):
            fail("an idle connection is still open after %ds" % DEADLINE)
        s.close()
    print("all %d idle connections closed by the server" % len(open_), flush=True)
    st = get(a.port, "/healthz", src=a.src)
    if st != 200:
        fail("/healthz from %s after its idle connections were closed: %d" % (a.src, st))
    print("%s served again once its idle connections were gone" % a.src, flush=True)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("early")
    e.add_argument("port", type=int)
    e.add_argument("--token")
    e.add_argument("--chunked", action="store_true")
    e.add_argument("--content-length", type=int, default=16000000)
    c = sub.add_parser("chunked")
    c.add_argument("port", type=int)
    c.add_argument("--token", required=True)
    f = sub.add_parser("flood")
    f.add_argument("port", type=int)
    f.add_argument("--token", required=True)
    f.add_argument("--src", required=True)
    f.add_argument("--other", required=True)
    f.add_argument("--count", type=int, required=True)
    f.add_argument("--limit", type=int, required=True)
    i = sub.add_parser("idle")
    i.add_argument("port", type=int)
    i.add_argument("--src", required=True)
    i.add_argument("--limit", type=int, required=True)
    a = p.parse_args()
    {"early": cmd_early, "chunked": cmd_chunked, "flood": cmd_flood, "idle": cmd_idle}[a.cmd](a)


if __name__ == "__main__":
    main()
