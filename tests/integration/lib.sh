# lib.sh — helpers for integration tests: real noid-server and noid binaries,
# a temporary data dir per test, real VMs when the guest image is present.
#
# Every test script sources this file, calls `it_setup`, and uses the
# helpers; everything it started (server, VMMs) is killed and its temp dir
# removed on exit, pass or fail.
set -euo pipefail

: "${NOID_BUILD:?NOID_BUILD must point at the meson build dir}"
IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SERVER_BIN="$NOID_BUILD/server/noid-server"
CLI_BIN="$NOID_BUILD/cli/noid"
GUEST_DIR="${NOID_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/noid/guest}"
# the small busybox guest (scripts/build-guest.sh --small), for the tests
# that ask for it; the default guest above is Debian
SMALL_GUEST_DIR="${NOID_SMALL_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/noid/guest-small}"

T=""
SERVER_PID=""
# A command prefix that runs the server and its clients in a network
# namespace (netns.sh sets it); empty: the current namespace.
IT_NS=()
# Shell code it_cleanup runs once the server is stopped (netns.sh: delete
# its namespaces, with whatever still runs in them).
IT_EXTRA_CLEANUP=""
URL=""
# http://ADDR of the server's metrics listener; empty when it has none
METRICS_URL=""
PASSED=0
IT_DONE=

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

fail() {
    printf 'FAIL: %s\n' "$*" >&2
    if [ -n "$T" ] && [ -f "$T/server.log" ]; then
        echo "--- last lines of the server log ---" >&2
        tail -n 40 "$T/server.log" >&2 || true
    fi
    exit 1
}

ok() { PASSED=$((PASSED + 1)); log "ok: $*"; }

assert_eq() { # expected actual what
    [ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

assert_contains() { # haystack needle what
    case "$1" in *"$2"*) ;; *) fail "$3: '$2' not found in: $1" ;; esac
}

assert_not_contains() {
    case "$1" in *"$2"*) fail "$3: '$2' unexpectedly found in: $1" ;; *) ;; esac
}

it_cleanup() {
    local rc=$?
    trap - ERR
    set +e
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    [ -n "$IT_EXTRA_CLEANUP" ] && eval "$IT_EXTRA_CLEANUP"
    if [ -n "$T" ] && ! openapi_check_exchanges; then
        printf 'FAIL: responses above do not match docs/openapi.yaml\n' >&2
        [ "$rc" -eq 0 ] && rc=1
    fi
    if [ -n "$T" ]; then
        # VMs outlive the server by design: kill every VMM started for this test
        pkill -KILL -f -- "$T/" 2>/dev/null
        sleep 0.2
        # storage on a loop-mounted image (btrfs_image, fault tests)
        local m
        for m in "$T/data/storage" "$T/mnt"; do
            mountpoint -q "$m" 2>/dev/null && umount -l "$m"
        done
        if [ -d "$T/data" ]; then
            rm -rf "$(default_mem_dir)"
        fi
        # btrfs images are unmounted by the tests that mount them
        if [ -n "${NOID_TEST_KEEP:-}" ]; then
            log "kept $T (NOID_TEST_KEEP)"
        else
            rm -rf "$T"
        fi
    fi
    if [ "$rc" -eq 0 ] && [ -n "$IT_DONE" ]; then
        log "PASS ($PASSED checks)"
    elif [ "$rc" -eq 0 ]; then
        rc=1
    fi
    exit "$rc"
}

# Called by each test script as its last line.
it_done() { IT_DONE=1; }

it_setup() {
    T=$(mktemp -d /tmp/noid-it.XXXXXX)
    trap it_cleanup EXIT
    trap 'exit 143' TERM INT
    # a command failing outside an assertion says where, instead of a silent exit
    set -E
    trap 'fail "unexpected failure (status $?) at line $LINENO: $BASH_COMMAND"' ERR
    mkdir -p "$T/home"
    export HOME="$T/home"
    unset NOID_URL NOID_TOKEN
    cd "$T"
}

have_guest() {
    [ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.ext4" ] && [ -f "$GUEST_DIR/initrd.cpio" ]
}

require_guest() {
    have_guest || fail "guest image missing in $GUEST_DIR: run scripts/build-guest.sh (scripts/test.sh does)"
}

# Write $T/server.toml.  With "vm", point at the real guest image; otherwise
# at empty placeholder files (enough for tests that never boot a VM).
write_config() { # vm|novm [extra toml lines...]
    local mode=$1
    shift
    if [ "$mode" = vm ]; then
        require_guest
        {
            echo "kernel = \"$GUEST_DIR/vmlinux\""
            echo "rootfs = \"$GUEST_DIR/rootfs.ext4\""
            echo "initrd = \"$GUEST_DIR/initrd.cpio\""
        } > "$T/server.toml"
    else
        : > "$T/kernel.placeholder"
        : > "$T/rootfs.placeholder"
        {
            echo "kernel = \"$T/kernel.placeholder\""
            echo "rootfs = \"$T/rootfs.placeholder\""
            echo "golden = false"
        } > "$T/server.toml"
    fi
    {
        echo "listen = \"127.0.0.1:0\""
        echo "data_dir = \"$T/data\""
        for line in "$@"; do echo "$line"; done
    } >> "$T/server.toml"
}

# Start the server on the current config; sets URL (and METRICS_URL).
# Unless the config says where, metrics go to a free port, not to the
# default 127.0.0.1:7655 that other servers on this machine may hold.
start_server() {
    local metrics=()
    grep -q '^metrics_listen' "$T/server.toml" || metrics=(--metrics-listen 127.0.0.1:0)
    : > "$T/server.out"
    "${IT_NS[@]}" "$SERVER_BIN" serve --config "$T/server.toml" "${metrics[@]}" "$@" > "$T/server.out" 2>> "$T/server.log" &
    SERVER_PID=$!
    local i
    for i in $(seq 1 600); do
        if grep -q '^noid-server listening on ' "$T/server.out"; then
            URL="http://$(sed -n 's/^noid-server listening on //p' "$T/server.out")"
            METRICS_URL=$(sed -n 's|^noid-server metrics on |http://|p' "$T/server.out")
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited during start"
        sleep 0.1
    done
    fail "server did not start within 60 s"
}

stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID"
    local rc=0
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=""
    return $rc
}

add_user() { # name -> token on stdout
    "$SERVER_BIN" add-user "$1" --config "$T/server.toml" 2>> "$T/server.log"
}

# curl helpers: http METHOD PATH [TOKEN] [BODY] -> sets HTTP_STATUS, HTTP_BODY
# (HTTP_ARGS: more curl arguments, e.g. a header).  Every exchange is
# recorded for the check against docs/openapi.yaml when the test ends.
# The files are per process: tests run http in the background too.
HTTP_ARGS=()
http() {
    local method=$1 path=$2 token=${3:-} body=${4:-} out f="$T/http.body.$BASHPID"
    local args=(-s -o "$f" -w '%{http_code}\t%{content_type}' -X "$method")
    [ -n "$token" ] && args+=(-H "Authorization: Bearer $token")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
    : > "$f"
    out=$("${IT_NS[@]}" curl "${args[@]}" "${HTTP_ARGS[@]}" "$URL$path")
    HTTP_STATUS=${out%%$'\t'*}
    HTTP_BODY=$(cat "$f")
    http_record "$method" "$path" "$HTTP_STATUS" "${out#*$'\t'}" "$f"
    rm -f "$f"
}

# Record an exchange for openapi_check.py: http_record METHOD PATH STATUS
# CONTENT-TYPE BODY-FILE (the format is in openapi_check.py).  Appended
# whole under a lock, so concurrent calls do not mix their records.
IT_OPENAPI_CHECK=${IT_OPENAPI_CHECK:-1}
OPENAPI_DOC="$IT_DIR/../../docs/openapi.yaml"
http_record() {
    [ "$IT_OPENAPI_CHECK" = 1 ] || return 0
    local rec="$T/http.record.$BASHPID"
    {
        printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$3" "${4:--}" "$(stat -c %s "$5")" "$2"
        cat "$5"
    } > "$rec"
    # one record at a time: cat writes a large record in several chunks,
    # which a concurrent append could split
    flock "$T/http.exchanges.lock" sh -c 'cat "$1" >> "$2"' sh "$rec" "$T/http.exchanges"
    rm -f "$rec"
}

# Hold the responses recorded by http() to docs/openapi.yaml (one python
# run per test); non-zero and the reasons on stderr for any violation.
openapi_check_exchanges() {
    [ "$IT_OPENAPI_CHECK" = 1 ] && [ -s "$T/http.exchanges" ] || return 0
    /usr/bin/python3 "$IT_DIR/openapi_check.py" check "$OPENAPI_DOC" "$T/http.exchanges" >&2
}

# The CLI, logged in as the user whose token is given
cli_login() { # token
    "${IT_NS[@]}" "$CLI_BIN" auth setup --url "$URL" --token "$1" > /dev/null
}

noid() { "${IT_NS[@]}" "$CLI_BIN" "$@"; }

# State of a VM as the CLI shows it (running, dead, creating)
vm_state() { noid info "$1" | awk '/^state:/ {print $2}'; }

# A field of a JSON document on stdin: json_get KEY
json_get() { python3 -c 'import json,sys; v=json.load(sys.stdin)[sys.argv[1]]; print("" if v is None else v)' "$1"; }

# Whether a process is alive (a zombie is not: on machines whose init does
# not reap, a killed daemon stays a zombie)
proc_alive() {
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: needs root (loop mounts); CI runs as root" >&2
        exit 77
    fi
}

# Wait until the server reports a usable golden snapshot (it builds one in
# the background at start and after its inputs change).
wait_golden() { # token
    local i
    for i in $(seq 1 600); do
        http GET /v1/capabilities "$1"
        case "$HTTP_BODY" in *'"golden_ready":true'*) return 0 ;; esac
        sleep 0.2
    done
    fail "golden snapshot not ready after 120 s"
}

# The path users take: user alice, the server, the CLI logged in as alice,
# the golden snapshot ready.  Sets A (alice's token).
start_as_users_do() {
    A=$(add_user alice)
    start_server
    cli_login "$A"
    wait_golden "$A"
}

# The server's default RAM directory (mem_dir) for the data dir $T/data
default_mem_dir() { printf '/dev/shm/noid-%s\n' "$(printf '%s' "$T/data" | sha256sum | cut -c1-16)"; }

# A query on the server's database: q SQL
q() { sqlite3 "$T/data/noid.db" "$1"; }

# Checkpoint ids of a VM, one per line
checkpoint_ids() { noid checkpoints "$1" --json | python3 -c 'import json,sys; [print(c["id"]) for c in json.load(sys.stdin)]'; }
