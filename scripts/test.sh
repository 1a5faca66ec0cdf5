#!/usr/bin/env bash
# test.sh — the whole test run, as CI does it on a fresh Debian 12 machine:
#   1. install missing Debian packages (scripts/deps.sh)
#   2. build with warnings as errors (build/)
#   3. build the guest images (scripts/build-guest.sh: the default Debian
#      guest and the small busybox one; cached between runs), the
#      Debian root test_install.sh installs into (cached too), and install
#      the OpenAPI validator (npm ci in tests/openapi, from the npm
#      registry, at the versions package-lock.json pins)
#   4. meson test: unit, fuzz-corpus replay, integration (real VMs)
#   5. the same unit/fuzz/API tests in an ASan+UBSan build (build-asan/)
#   6. a short bounded libFuzzer run of every fuzz target (build-fuzz/, clang)
# Exits non-zero on any failure.  Set NOID_TEST_QUICK=1 to skip 5 and 6.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
FUZZ_SECONDS=${NOID_FUZZ_SECONDS:-10}

step() { printf '\n==> %s\n' "$*"; }

# meson setup, or reconfigure with the same options if the dir exists
setup_dir() {
    local dir=$1
    shift
    if [ -d "$dir" ]; then
        meson setup --reconfigure "$dir" "$@" > /dev/null
    else
        meson setup "$dir" "$@" > /dev/null
    fi
}

step "dependencies"
scripts/deps.sh

step "build (warnings are errors)"
setup_dir build -Dwerror=true
ninja -C build

step "guest images"
scripts/build-guest.sh --agent "$ROOT/build/agent/noid-agent"
scripts/build-guest.sh --small --agent "$ROOT/build/agent/noid-agent"

step "throw-away Debian root for test_install.sh (cached)"
tests/integration/install_root.sh ensure

step "OpenAPI validator (tests/openapi)"
(cd tests/openapi && npm ci --no-audit --no-fund --loglevel=error)

step "tests"
meson test -C build --print-errorlogs --num-processes 2

if [ "${NOID_TEST_QUICK:-0}" != 1 ]; then
    step "ASan + UBSan build"
    setup_dir build-asan -Dwerror=true -Db_sanitize=address,undefined \
        -Dc_args=-fno-sanitize-recover=all -Dbuildtype=debug
    ninja -C build-asan
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1
    meson test -C build-asan --print-errorlogs --num-processes 2 --suite unit --suite fuzz
    # the server's code under the sanitizers (integration tests run one at
    # a time, is_parallel false).  The guest does not matter here, so the
    # small busybox guest (faster boots and execs); and crash,
    # checkpoint-paths and noidfs-fs, which mostly repeat these paths, run
    # only in the main step: together they keep CI within its 30 minutes.
    NOID_GUEST_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/noid/guest-small" \
        meson test -C build-asan --print-errorlogs foundation vm checkpoint-plain \
        hostile-clients hostile-guest console-log stream noidfs files-api \
        agent-vm firecracker-contract netd agent-net
    unset ASAN_OPTIONS UBSAN_OPTIONS

    step "libFuzzer (${FUZZ_SECONDS}s per target)"
    CC=clang setup_dir build-fuzz -Dfuzz=true -Db_sanitize=address,undefined \
        -Db_lundef=false -Dbuildtype=debug
    ninja -C build-fuzz
    for target in config wire agent_proto textutil ws http_range netd_request agent_net_cmdline; do
        work=$(mktemp -d)
        cp -r "tests/fuzz/corpus/$target/." "$work/"
        "build-fuzz/tests/fuzz/fuzz-$target" -max_total_time="$FUZZ_SECONDS" \
            -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=0 \
            -artifact_prefix="$ROOT/tests/fuzz/" "$work" 2>&1 | tail -n 2
        rm -rf "$work"
    done
fi

step "all tests passed"
