# lib.sh — what the benchmark scripts share: a temporary data dir, a real
# noid-server on a free loopback port, and cleanup of everything started.
# After bench_start_server: $T (temp dir), $URL, $TOKEN (a user "bench").
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${NOID_BUILD:-$ROOT/build}
REPS=${NOID_BENCH_REPS:-5}
GUEST=${NOID_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/noid/guest}
# the small busybox guest (build-guest.sh --small), as tests/integration/lib.sh finds it
SMALL_GUEST=${NOID_SMALL_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/noid/guest-small}
export PYTHONPATH="$ROOT/tests/bench"
T=$(mktemp -d /tmp/noid-bench.XXXXXX)
PID=""

bench_cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    # NOID_BENCH_LOG=FILE keeps the server's log (run with NOID_DEBUG=1 for detail)
    [ -n "${NOID_BENCH_LOG:-}" ] && [ -f "$T/log" ] && cp "$T/log" "$NOID_BENCH_LOG"
    pkill -KILL -f -- "$T/" 2>/dev/null || true
    rm -rf "$T" "/dev/shm/noid-$(printf '%s' "$T/data" | sha256sum | cut -c1-16)" \
        /dev/shm/"$(basename "$T")"-*
}
trap bench_cleanup EXIT

# bench_start_server vm|novm [extra server.toml lines...]
bench_start_server() {
    local mode=$1
    shift
    if [ "$mode" = vm ]; then
        printf 'kernel = "%s"\nrootfs = "%s"\ninitrd = "%s"\n' \
            "$GUEST/vmlinux" "$GUEST/rootfs.ext4" "$GUEST/initrd.cpio" > "$T/server.toml"
    else
        : > "$T/k"
        : > "$T/r"
        printf 'kernel = "%s"\nrootfs = "%s"\ngolden = false\n' "$T/k" "$T/r" > "$T/server.toml"
    fi
    printf 'listen = "127.0.0.1:0"\nmetrics_listen = "127.0.0.1:0"\ndata_dir = "%s"\n' "$T/data" >> "$T/server.toml"
    local line
    for line in "$@"; do echo "$line" >> "$T/server.toml"; done
    TOKEN=$("$BUILD/server/noid-server" add-user bench --config "$T/server.toml" 2> /dev/null)
    "$BUILD/server/noid-server" serve --config "$T/server.toml" > "$T/out" 2> "$T/log" &
    PID=$!
    for _ in $(seq 100); do grep -q listening "$T/out" && break; sleep 0.1; done
    URL="http://$(sed -n 's/^noid-server listening on //p' "$T/out")"
}
