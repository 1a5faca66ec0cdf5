#!/usr/bin/env bash
# quickstart.sh — set up and run noid-server with the embedded defaults on
# this machine: Debian packages, build, guest image, a first user, serve.
#   QEMU (KVM when it really works, TCG otherwise), SQLite in ~/.noid,
#   the guest image in ~/.cache/noid/guest, listening on 0.0.0.0:7654.
# Run as root (or with sudo rights for apt-get).  Ctrl-C stops the server;
# VMs keep running and are picked up at the next start.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

scripts/deps.sh
if [ -d build ]; then meson setup --reconfigure build > /dev/null; else meson setup build > /dev/null; fi
ninja -C build
scripts/build-guest.sh --agent "$ROOT/build/agent/noid-agent"

SERVER="$ROOT/build/server/noid-server"
if ! "$SERVER" list-users | grep -q ' admin '; then
    TOKEN=$("$SERVER" add-user admin)
    cat <<MSG

A first user 'admin' was created.  Its token (shown only now):
    $TOKEN
Log in from any machine that can reach this one:
    $ROOT/build/cli/noid auth setup --url http://127.0.0.1:7654 --token $TOKEN
Then:  noid create box && noid exec box -- uname -a
More users: $SERVER add-user NAME

MSG
else
    echo "User 'admin' exists; new users: $SERVER add-user NAME (tokens are shown once)."
fi
exec "$SERVER" serve
