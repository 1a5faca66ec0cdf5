#!/usr/bin/env bash
# test_agent.sh — the real noid-agent on the host (--unix-listen), fed with
# malformed frames: each gets an ERROR on stream 0 and the agent keeps
# serving; a new HELLO starts a new session; reconnecting works.
. "$(dirname "$0")/lib.sh"
it_setup
AGENT="$NOID_BUILD/agent/noid-agent"
"$AGENT" --unix-listen "$T/agent.sock" --dry-run-control --log-file "$T/agent.log" &
APID=$!
for _ in $(seq 50); do [ -S "$T/agent.sock" ] && break; sleep 0.1; done
out=$(python3 "$IT_DIR/agent_peer.py" "$T/agent.sock" 2>&1) || fail "agent peer: $out"
printf '%s\n' "$out" | sed 's/^/  /' >&2
kill -0 "$APID" 2>/dev/null || fail "the agent exited"
kill "$APID"
ok "malformed frames get an ERROR and never stop the agent"
it_done
