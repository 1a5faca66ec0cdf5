#!/usr/bin/env bash
# test_agent.sh — the real noid-agent on the host (--unix-listen), driven by
# agent_peer.py:
#  - basic: malformed frames each get an ERROR on stream 0 and the agent
#    keeps serving; a new HELLO starts a new session; reconnecting works;
#  - flow: protocol v2 (agent_proto.h): HELLO v1 to v4 get HELLO_ACK v4; an exec
#    with an output window sends no more than the window until OUT_ACKs
#    come, then all of its output and EXIT last; a held exec holds back no
#    other; timeouts fire while output waits; RESIZE reaches a tty exec;
#  - files: protocol v3 file operations in a scratch directory (the agent
#    runs on the host here; its paths are the host's, as a guest's would be
#    the guest's): each op and its errno cases, a 3 MiB upload and download
#    under flow control, cancel, atomic upload failure, a 2,000-entry
#    directory, 50 requests in flight, malformed FS frames;
#  - the server's own file client (agent-files-peer, agent_files.c) against
#    the same agent: flow control both ways, errnos, cancel, concurrency;
#  - net: protocol v4 SET_NETWORK (dry run: checked, answered, nothing
#    changed): valid settings get OK, malformed ones ERROR on their stream
#    and the session goes on; the cold-boot ip= of a kernel command line
#    (--cmdline) is parsed before the channel opens, and one the agent does
#    not understand (ip=dhcp) is logged and ignored.
#    test_agent_net.sh applies both for real, in a network namespace.
. "$(dirname "$0")/lib.sh"
it_setup
AGENT="$NOID_BUILD/agent/noid-agent"
# the host's form of ip= (server/engine/vm_net.c), quoted among other
# parameters, after an earlier ip= that the last one overrides
printf '%s\n' 'console=ttyS0 ip=off quiet "ip=172.16.0.2::172.16.0.1:255.255.255.252::eth0:off:192.0.2.1" panic=-1 -- ip=10.0.0.1::::::' \
    > "$T/cmdline"
"$AGENT" --unix-listen "$T/agent.sock" --dry-run-control --cmdline "$T/cmdline" \
    --log-file "$T/agent.log" &
APID=$!
for _ in $(seq 50); do [ -S "$T/agent.sock" ] && break; sleep 0.1; done
assert_contains "$(cat "$T/agent.log")" \
    "dry run: ip= would configure 172.16.0.2/30 via 172.16.0.1, dns 192.0.2.1 on eth0" \
    "the agent's log of the cold-boot ip="
ok "ip= of the kernel command line is parsed before the channel opens (the last one, quoted; none after --)"
out=$(/usr/bin/python3 "$IT_DIR/agent_peer.py" "$T/agent.sock" basic 2>&1) ||
    fail "agent peer: $out"
printf '%s\n' "$out" | sed 's/^/  /' >&2
kill -0 "$APID" 2>/dev/null || fail "the agent exited"
ok "malformed frames get an ERROR and never stop the agent"

out=$(/usr/bin/python3 "$IT_DIR/agent_peer.py" "$T/agent.sock" flow 2>&1) ||
    fail "agent peer (flow control): $out"$'\n'"$(tail -n 20 "$T/agent.log")"
printf '%s\n' "$out" | sed 's/^/  /' >&2
kill -0 "$APID" 2>/dev/null || fail "the agent exited"
ok "per-exec output flow control holds output back, then delivers all of it"

mkdir "$T/files"
out=$(/usr/bin/python3 "$IT_DIR/agent_peer.py" "$T/agent.sock" files "$T/files" 2>&1) ||
    fail "agent peer (files): $out"$'\n'"$(tail -n 20 "$T/agent.log")"
printf '%s\n' "$out" | sed 's/^/  /' >&2
kill -0 "$APID" 2>/dev/null || fail "the agent exited"
ok "file operations (v3): every op and its errnos, streaming both ways, malformed frames"

mkdir "$T/files-host"
out=$("$NOID_BUILD/tests/integration/agent-files-peer" --agent-pid "$APID" "$T/agent.sock" \
    "$T/files-host" 2>&1) ||
    fail "the server's file client: $out"$'\n'"$(tail -n 20 "$T/agent.log")"
printf '%s\n' "$out" | sed 's/^/  /' >&2
kill -0 "$APID" 2>/dev/null || fail "the agent exited"
ok "the server's file client (agent_files.c) against the real agent: streams, errnos, cancel, concurrency"

out=$(/usr/bin/python3 "$IT_DIR/agent_peer.py" "$T/agent.sock" net 2>&1) ||
    fail "agent peer (net): $out"$'\n'"$(tail -n 20 "$T/agent.log")"
printf '%s\n' "$out" | sed 's/^/  /' >&2
kill -0 "$APID" 2>/dev/null || fail "the agent exited"
assert_contains "$(cat "$T/agent.log")" \
    "dry run: SET_NETWORK 172.16.0.2/30 via 172.16.0.1, dns 192.0.2.1, mac aa:fc:00:00:00:01" \
    "the agent's log of a dry-run SET_NETWORK"
kill "$APID"
wait "$APID" 2>/dev/null || true
ok "SET_NETWORK (v4): valid settings OK, malformed ones ERROR, the session goes on"

# an ip= the agent does not do (DHCP) is logged and left alone; the agent serves
printf 'console=ttyS0 ip=dhcp\n' > "$T/cmdline-dhcp"
"$AGENT" --unix-listen "$T/agent2.sock" --dry-run-control --cmdline "$T/cmdline-dhcp" \
    --log-file "$T/agent2.log" &
APID=$!
for _ in $(seq 50); do [ -S "$T/agent2.sock" ] && break; sleep 0.1; done
out=$(/usr/bin/python3 "$IT_DIR/agent_peer.py" "$T/agent2.sock" set-network down 2>&1) ||
    fail "SET_NETWORK down after ip=dhcp: $out"
assert_contains "$(cat "$T/agent2.log")" "ip= on the kernel command line not understood (autoconfiguration" \
    "the agent's log of ip=dhcp"
kill "$APID"
wait "$APID" 2>/dev/null || true
ok "ip=dhcp is logged as not understood and ignored; the agent serves"
it_done
