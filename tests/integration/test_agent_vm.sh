#!/usr/bin/env bash
# test_agent_vm.sh — the agent's file operations (protocol v3) against the
# agent of a real VM on the default path (golden snapshot, default guest),
# driven straight through the VM's agent socket while noid-server is down
# (VMs outlive the server, DESIGN.md §6):
#  - agent-files-peer: the server's own file client (agent_files.c) —
#    errnos, an 8 MiB upload and download under flow control, PREAD and
#    handles, failed and cancelled uploads, a 3,000-entry READDIR, 1,600
#    requests from 8 threads next to a stalled download, a polled download,
#    and every other op (PWRITE, FSYNC, FSTAT, TRUNCATE, CHMOD, CHOWN,
#    UTIMENS, SYMLINK, READLINK, LSTAT, LINK, RENAME, UNLINK, RMDIR, STATFS)
#    with its errno cases;
#  - agent_peer.py fs-refusals: bad values and an oversized FS_DATA get
#    FS_ERRNO; malformed FS payloads get ERROR and the agent keeps serving.
# Then the server comes back, reconnects to the same agent, and exec inside
# the guest sees what the file operations wrote.
. "$(dirname "$0")/lib.sh"
it_setup
require_guest

write_config vm
start_as_users_do
noid create vm > /dev/null
uid=$(q "select id from users where name='alice'")
SOCK="$T/data/storage/users/$uid/vms/vm/agent.sock"
[ -S "$SOCK" ] || fail "no agent socket at $SOCK"
stop_server || fail "the server did not stop cleanly"

out=$("$NOID_BUILD/tests/integration/agent-files-peer" "$SOCK" "/root/peer test/ü" 2>&1) ||
    fail "the server's file client against the VM's agent: $out"
printf '%s\n' "$out" | sed 's/^/  /' >&2
ok "the server's file client against a real VM's agent: streams, errnos, cancel, concurrency"

out=$(/usr/bin/python3 "$IT_DIR/agent_peer.py" "$SOCK" fs-refusals /root/refusals 2>&1) ||
    fail "bad and malformed file frames: $out"
printf '%s\n' "$out" | sed 's/^/  /' >&2
ok "bad and malformed file frames are refused inside a real VM; its agent keeps serving"

start_server
cli_login "$A" # a new port
out=$(noid exec vm -- sh -c 'stat -c "%s %a" "/root/peer test/ü/big"; ls "/root/peer test/ü/many" | wc -l; cat /root/refusals/keep; ls /root/refusals')
assert_eq "8400953 644
3000
keptkeep" "$out" "what the file operations left in the guest, seen by exec"
ok "after the server restarts, exec in the guest sees the files the operations wrote"
it_done
