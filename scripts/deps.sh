#!/usr/bin/env bash
# deps.sh — install every Debian package noid needs to build, run and test,
# and the unprivileged user VMMs run as when the server runs as root
# (vmm_user, default noid-vmm).
# Idempotent: installs only what is missing (apt-get update only then).
# Only Debian's archive is used; nothing is downloaded from anywhere else.
# Sourced (`. scripts/deps.sh`), it only defines the lists: BUILD and RUN
# are what scripts/install-server.sh installs on a server.
set -euo pipefail

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
VMM_USER=${NOID_VMM_USER:-noid-vmm}

ensure_vmm_user() {
    getent passwd "$VMM_USER" > /dev/null && return 0
    echo "deps: creating system user $VMM_USER (QEMU drops to it)"
    $SUDO useradd --system --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$VMM_USER"
}

# to build the programs (-Dtests=false)
BUILD=(
    meson ninja-build pkg-config gcc musl-tools help2man
    libmicrohttpd-dev libsqlite3-dev libssl-dev libcurl4-openssl-dev libjson-c-dev
    libbtrfsutil-dev libinih-dev libfuse3-dev
)
# to run the server and netd, and to build the guest image
RUN=(
    qemu-system-x86 btrfs-progs e2fsprogs busybox-static iproute2 iptables fuse3
    lz4 cpio xz-utils zstd mmdebstrap procps
)
# unit tests, fuzzing, integration tests (systemd-container: test_install.sh
# boots its throw-away Debian root, made with mmdebstrap, with systemd-nspawn)
TEST=(
    check libsubunit-dev clang libclang-rt-14-dev
    curl sqlite3 python3 python3-yaml python3-jsonschema python3-websockets wrk tmux
    file rsync git prometheus systemd-container
)
# node and npm run the OpenAPI validator (tests/openapi, installed by
# scripts/test.sh with npm ci): Debian's only when none is installed
command -v node > /dev/null || TEST+=(nodejs)
command -v npm > /dev/null || TEST+=(npm)
[ "${BASH_SOURCE[0]}" = "$0" ] || return 0

missing=()
for p in "${BUILD[@]}" "${RUN[@]}" "${TEST[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "deps: all ${#BUILD[@]}+${#RUN[@]}+${#TEST[@]} packages present"
    ensure_vmm_user
    exit 0
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
ensure_vmm_user
