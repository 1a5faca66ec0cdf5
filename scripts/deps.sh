#!/usr/bin/env bash
# deps.sh — install every Debian package noid needs to build, run and test.
# Idempotent: installs only what is missing (apt-get update only then).
# Only Debian's archive is used; nothing is downloaded from anywhere else.
set -euo pipefail

BUILD=(
    meson ninja-build pkg-config gcc clang musl-tools
    libmicrohttpd-dev libsqlite3-dev libssl-dev libcurl4-openssl-dev libjson-c-dev
    libbtrfsutil-dev libinih-dev libfuse3-dev check libsubunit-dev libclang-rt-14-dev
)
RUN=(
    qemu-system-x86 btrfs-progs e2fsprogs busybox-static iproute2 iptables fuse3
    lz4 cpio xz-utils zstd
)
TEST=(
    curl sqlite3 python3 python3-yaml python3-websockets wrk tmux procps file
)

missing=()
for p in "${BUILD[@]}" "${RUN[@]}" "${TEST[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "deps: all ${#BUILD[@]}+${#RUN[@]}+${#TEST[@]} packages present"
    exit 0
fi

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
