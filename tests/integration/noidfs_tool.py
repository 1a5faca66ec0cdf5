#!/usr/bin/python3
"""noidfs_tool.py — the few things test_noidfs.sh cannot do with plain shell
tools on a noidfs mount: exact errnos, a read-write exec session and a
console typed into and polled.  Each subcommand prints one line on stdout
(a word or a JSON document) for the shell test to assert on.

  errno OP PATH [DATA]
      do one call and print OK or the errno's name (EINVAL, EACCES, ...):
      mkdir, rmdir, listdir, stat, read (open O_RDONLY, read to EOF),
      write (open O_WRONLY, write DATA, close: a FUSE flush may fail too),
      open-rw (open O_RDWR only)
  rwexec VMDIR
      open VMDIR/exec read-write, write a command that prints "a", waits for
      the guest file /tmp/rw-gate, prints "b" and "err" (stderr), exits 3;
      read until "a" arrived, then create the gate with a second exec taken
      through VMDIR/new (so "b" cannot be printed before "a" was read: no
      timing involved), read to EOF; prints {"before_gate", "after_gate",
      "run"}
  console VMDIR MARK_EXPR MARK
      open VMDIR/console read-write, poll(0) it (idle: no POLLIN expected),
      type "echo MARK_EXPR\\n", then poll() and read until MARK appears;
      prints {"idle_pollin", "polls", "pollin", "seen", "typed_echo_seen"}
Every blocking step is bounded by SIGALRM (STEP_SECS): a hang fails loudly. """

import errno
import json
import os
import select
import signal
import sys
import time

STEP_SECS = 120


def on_alarm(signum, frame):
    raise TimeoutError(f"noidfs_tool: no progress within {STEP_SECS} s")


def do_errno(op, path, data):
    try:
        if op == "mkdir":
            os.mkdir(path)
        elif op == "rmdir":
            os.rmdir(path)
        elif op == "listdir":
            os.listdir(path)
        elif op == "stat":
            os.stat(path)
        elif op == "read":
            fd = os.open(path, os.O_RDONLY)
            try:
                while os.read(fd, 65536):
                    pass
            finally:
                os.close(fd)
        elif op == "write":
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, data.encode())
            finally:
                os.close(fd)
        elif op == "open-rw":
            os.close(os.open(path, os.O_RDWR))
        else:
            sys.exit(f"noidfs_tool: unknown op {op}")
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
    return "OK"


def read_until(fd, want, buf=b""):
    """Read from fd until want is in buf; returns buf (EOF before it: error)."""
    while want not in buf:
        d = os.read(fd, 65536)
        if not d:
            raise RuntimeError(f"EOF before {want!r}; got {buf!r}")
        buf += d
    return buf


def run_through_new(vmdir, command):
    """One exec through VMDIR/new and runs/N/exec; returns N."""
    with open(os.path.join(vmdir, "new")) as f:
        run = f.read().strip()
    with open(os.path.join(vmdir, "runs", run, "exec"), "w") as f:
        f.write(command)
    return run


def do_rwexec(vmdir):
    fd = os.open(os.path.join(vmdir, "exec"), os.O_RDWR)
    os.write(fd, b"rm -f /tmp/rw-gate; echo a; while [ ! -e /tmp/rw-gate ]; do sleep 0.05; done; "
             b"echo b; echo err >&2; exit 3")
    before = read_until(fd, b"a\n")
    run = run_through_new(vmdir, "touch /tmp/rw-gate")
    after = b""
    while True:
        d = os.read(fd, 65536)
        if not d:
            break
        after += d
    os.close(fd)
    return {"before_gate": before.decode(), "after_gate": after.decode(), "run": run}


def do_console(vmdir, expr, mark):
    fd = os.open(os.path.join(vmdir, "console"), os.O_RDWR)
    p = select.poll()
    p.register(fd, select.POLLIN)
    # nothing typed yet and output counts from the moment of opening: an
    # idle console is not readable (a poll that always says POLLIN fails)
    idle = sum(1 for _, ev in p.poll(0) if ev & select.POLLIN)
    os.write(fd, f"echo {expr}\n".encode())
    buf, polls, pollin = b"", 0, 0
    deadline = time.monotonic() + STEP_SECS
    while mark.encode() not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{mark!r} not seen; got {buf[-400:]!r}")
        ev = p.poll(int(left * 1000))
        polls += 1
        if not ev:
            continue
        if ev[0][1] & select.POLLIN:
            pollin += 1
        d = os.read(fd, 65536)
        if not d:
            raise RuntimeError(f"console EOF before {mark!r}; got {buf[-400:]!r}")
        buf += d
    os.close(fd)
    return {"idle_pollin": idle, "polls": polls, "pollin": pollin, "seen": True,
            "typed_echo_seen": expr.encode() in buf}


def main():
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(STEP_SECS)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "errno":
        print(do_errno(args[0], args[1], args[2] if len(args) > 2 else "x\n"))
    elif cmd == "rwexec":
        print(json.dumps(do_rwexec(args[0])))
    elif cmd == "console":
        print(json.dumps(do_console(args[0], args[1], args[2])))
    else:
        sys.exit(f"noidfs_tool: unknown command {cmd}")


if __name__ == "__main__":
    main()
