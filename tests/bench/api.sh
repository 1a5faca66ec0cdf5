#!/usr/bin/env bash
# api.sh — REST throughput: authenticated GET /v1/whoami against the
# unauthenticated GET /healthz baseline, in the same run, same server.
# wrk, 64 connections, 10 s each (NOID_BENCH_SECONDS to change).
# Prints req/s and p99 latency of both and the ratio whoami/healthz.
# Goal (issue 2): whoami >= 0.5 x healthz and >= 15,000 req/s, p99 < 10 ms.
. "$(dirname "$0")/lib.sh"
SECS=${NOID_BENCH_SECONDS:-10}
CONNS=64
THREADS=2

command -v wrk > /dev/null || { echo "wrk missing: run scripts/deps.sh" >&2; exit 1; }
bench_start_server novm

# wrk prints "Requests/sec: N" and, with --latency, a "99% X" line
run() { # path [header]
    local out
    if [ -n "${2:-}" ]; then
        out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency -H "$2" "$URL$1")
    else
        out=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "$URL$1")
    fi
    local rps p99 non2xx
    rps=$(printf '%s\n' "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(printf '%s\n' "$out" | awk '$1 == "99%" {print $2}')
    non2xx=$(printf '%s\n' "$out" | awk '/Non-2xx/ {print $5}')
    echo "$rps $p99 ${non2xx:-0}"
}

read -r H_RPS H_P99 H_BAD < <(run /healthz)
read -r W_RPS W_P99 W_BAD < <(run /v1/whoami "Authorization: Bearer $TOKEN")
[ "$W_BAD" = 0 ] || { echo "whoami returned $W_BAD non-2xx responses" >&2; exit 1; }
printf 'healthz: %s req/s, p99 %s (%d connections, %ss)\n' "$H_RPS" "$H_P99" "$CONNS" "$SECS"
printf 'whoami:  %s req/s, p99 %s (authenticated)\n' "$W_RPS" "$W_P99"
awk -v w="$W_RPS" -v h="$H_RPS" 'BEGIN { printf "ratio whoami/healthz: %.2f\n", w / h }'
