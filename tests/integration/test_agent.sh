#!/usr/bin/env bash
# test_agent.sh — the real noid-agent on the host (--unix-listen), driven by
# agent_peer.py:
#  - basic: malformed frames each get an ERROR on stream 0 and the agent
#    keeps serving; a new HELLO starts a new session; reconnecting works;
#  - flow: protocol v2 (agent_proto.h): HELLO v1 gets HELLO_ACK v3; an exec
#    with an output window sends no more than the window until OUT_ACKs
#    come, then all of its output and EXIT last; a held exec holds back no
#    other; timeouts fire while output waits; RESIZE reaches a tty exec;
#  - files: protocol v3 file operations in a scratch directory (the agent
#    runs on the host here; its paths are the host's, as a guest's would be
#    the guest's): each op and its errno cases, a 3 MiB upload and download
#    under flow control, cancel, atomic upload failure, a 2,000-entry
#    directory, 50 requests in flight, malformed FS frames;
#  - the server's own file client (agent-files-peer, agent_files.c) against
#    the same agent: flow control both ways, errnos, cancel, concurrency.
. "$(dirname "$0")/lib.sh"
it_setup
AGENT="$NOID_BUILD/agent/noid-agent"
"$AGENT" --unix-listen "$T/agent.sock" --dry-run-control --log-file "$T/agent.log" &
APID=$!
for _ in $(seq 50); do [ -S "$T/agent.sock" ] && break; sleep 0.1; done
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
kill "$APID"
ok "the server's file client (agent_files.c) against the real agent: streams, errnos, cancel, concurrency"
it_done
