#!/usr/bin/env bash
# install_root.sh — the throw-away Debian 12 root test_install.sh runs
# scripts/install-server.sh in: a tarball made by mmdebstrap with every
# package the install script would install (scripts/deps.sh's BUILD and RUN)
# plus systemd, so that the test itself fetches nothing.  test_install.sh
# mounts an overlay on it, so the cached root itself is never written.
#
#   install_root.sh ensure   build the tarball unless it is cached (scripts/test.sh)
#   install_root.sh path     print the cached root's path; exit 1 if missing
#
# Cached as the directory ${XDG_CACHE_HOME:-~/.cache}/noid/install-root-<key>, the key
# a hash of the suite and the package list: a package added to deps.sh makes
# a new root (older ones are removed).  Only Debian's archive is used.
set -euo pipefail

SRC=$(cd "$(dirname "$0")/../.." && pwd)
SUITE=bookworm
# what the test needs beyond the script's packages: systemctl and
# systemd-analyze (systemd), a bootable init for systemd-nspawn --boot
EXTRA=(systemd systemd-sysv dbus curl)

# shellcheck source=../../scripts/deps.sh
. "$SRC/scripts/deps.sh"
PACKAGES=$(printf '%s\n' "${BUILD[@]}" "${RUN[@]}" "${EXTRA[@]}" | sort -u)
KEY=$(printf 'v1 %s\n%s\n' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-16)
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/noid"
DIR="$CACHE/install-root-$KEY"

usage() {
    cat <<EOF
Usage: tests/integration/install_root.sh ensure|path

ensure  build the Debian $SUITE root for test_install.sh with mmdebstrap
        unless it is cached ($CACHE/install-root-<key>)
path    print the cached root's path (exit 1 when it has not been built)
EOF
}

case "${1:-}" in
path)
    if [ -f "$DIR/etc/os-release" ]; then
        echo "$DIR"
    else
        echo "install_root.sh: no cached root $DIR: run tests/integration/install_root.sh ensure" >&2
        exit 1
    fi
    ;;
ensure)
    if [ -f "$DIR/etc/os-release" ]; then
        echo "install root: cached ($DIR)"
        exit 0
    fi
    command -v mmdebstrap > /dev/null ||
        { echo "install_root.sh: mmdebstrap missing (scripts/deps.sh installs it)" >&2; exit 1; }
    mkdir -p "$CACHE"
    rm -rf "$CACHE"/install-root-* "$CACHE"/.install-root-*
    tmp="$CACHE/.install-root-$KEY.$$"
    trap 'rm -rf "$tmp"' EXIT
    echo "install root: building $DIR with mmdebstrap (Debian $SUITE, $(wc -l <<< "$PACKAGES") packages)"
    mmdebstrap --quiet --variant=minbase --include="$(tr '\n' ',' <<< "$PACKAGES")" \
        "$SUITE" "$tmp" http://deb.debian.org/debian
    mv "$tmp" "$DIR"
    trap - EXIT
    echo "install root: $DIR ($(du -sh "$DIR" | cut -f1))"
    ;;
-h | --help) usage ;;
*)
    usage >&2
    exit 2
    ;;
esac
