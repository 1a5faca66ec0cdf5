"""qmp_save.py VM_DIR OUT_FILE [--ignore-shared] — save a running QEMU VM's
state the way noid-server v2 did (QMP stop, optional x-ignore-shared,
migrate to a file, cont), to make checkpoints of the older format for the
upgrade tests.  Talks QMP directly to the VM's qmp.sock; nothing else of
noid is involved."""
import array
import json
import os
import socket
import sys
import time


class QMP:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb", buffering=0)
        self._read()
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            msg = json.loads(self.file.readline())
            if "event" not in msg:
                return msg

    def cmd(self, name, fd=None, **args):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        data = json.dumps(req).encode() + b"\n"
        if fd is None:
            self.sock.sendall(data)
        else:
            self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                        array.array("i", [fd]))])
        msg = self._read()
        if "error" in msg:
            raise RuntimeError(f"{name}: {msg['error']}")
        return msg.get("return")


def main():
    vm_dir, out = sys.argv[1], sys.argv[2]
    ignore_shared = "--ignore-shared" in sys.argv[3:]
    q = QMP(os.path.join(vm_dir, "qmp.sock"))
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    q.cmd("stop")
    try:
        q.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "x-ignore-shared", "state": ignore_shared},
            {"capability": "pause-before-switchover", "state": False}])
        q.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 40})
        q.cmd("getfd", fd=fd, fdname="legacy")
        q.cmd("migrate", uri="fd:legacy")
        while True:
            st = q.cmd("query-migrate")["status"]
            if st in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.005)
        if st != "completed":
            sys.exit(f"migration {st}")
    finally:
        q.cmd("cont")
    os.fsync(fd)


if __name__ == "__main__":
    main()
