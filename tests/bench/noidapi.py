"""noidapi.py — the REST calls the benchmarks make (keep-alive client)."""
import http.client
import json
import urllib.parse


class Api:
    def __init__(self, url, token, timeout=600):
        u = urllib.parse.urlparse(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
        self.hdr = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        data = json.dumps(body) if body is not None else None
        try:
            self.conn.request(method, path, data, self.hdr)
            r = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # the server closes connections idle for http_idle_timeout_secs:
            # reconnect once, as any HTTP client would
            self.conn.close()
            self.conn.request(method, path, data, self.hdr)
            r = self.conn.getresponse()
        data = r.read()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {data!r}")
        return json.loads(data) if data else None

    def close(self):
        self.conn.close()


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def stop_server(pid):
    """SIGTERM noid-server and wait until it is gone (its VMs keep running)."""
    import os
    import time
    os.kill(pid, 15)
    while os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split()[2] != "Z":
        time.sleep(0.05)
