"""qmp_save.py VM_DIR OUT_FILE [--ignore-shared] — save a running QEMU VM's
state the way noid-server v2 did (QMP stop, optional x-ignore-shared,
migrate to a file, cont), to make checkpoints of the older format for the
upgrade tests.  Talks QMP directly to the VM's qmp.sock; nothing else of
noid is involved."""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from qmp import QMP  # noqa: E402  the benchmarks' minimal QMP client


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
        q.cmd_fd("getfd", fd, fdname="legacy")
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
