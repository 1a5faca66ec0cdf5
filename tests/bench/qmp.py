"""qmp.py — a minimal QMP client for benchmark baselines (raw QEMU, no noid)."""
import array
import json
import socket


class QMP:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rwb", buffering=0)
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            msg = json.loads(self.file.readline())
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.file.write(json.dumps(req).encode() + b"\n")
        msg = self._read()
        if "error" in msg:
            raise RuntimeError(f"{name}: {msg['error']}")
        return msg.get("return")

    def cmd_fd(self, name, fd, **args):
        """Run a command with fd attached (SCM_RIGHTS), as getfd wants."""
        req = {"execute": name, "arguments": args}
        self.sock.sendmsg([json.dumps(req).encode() + b"\n"],
                          [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
        msg = self._read()
        if "error" in msg:
            raise RuntimeError(f"{name}: {msg['error']}")
        return msg.get("return")

    def close(self):
        self.sock.close()
