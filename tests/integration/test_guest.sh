#!/usr/bin/env bash
# test_guest.sh — the guest images of scripts/build-guest.sh, on the user's
# default path (golden snapshot, the default guest):
#   * the default guest is Debian 12: os-release, apt-get, dpkg with the
#     promised packages, bash, python3, curl, locales, LANG in exec;
#   * PID 1 is busybox init, noid-agent its child, started before the
#     console's login shell (bash on ttyS0);
#   * dpkg and apt really install: a .deb made here with dpkg-deb, copied
#     in with `noid cp`, installed with apt-get (no network needed), its
#     program runs, and it survives checkpoint + restore;
#   * the small busybox guest (--small) still boots from its own golden
#     snapshot and runs commands.
. "$(dirname "$0")/lib.sh"
it_setup
require_guest

write_config vm
start_as_users_do
noid create deb > /dev/null
assert_eq golden "$(noid info deb --json | json_get restored_from)" "the Debian VM comes from the golden snapshot"

osr=$(noid exec deb -- cat /etc/os-release)
assert_contains "$osr" 'ID=debian' "os-release ID"
assert_contains "$osr" 'VERSION_ID="12"' "os-release VERSION_ID"
assert_contains "$(noid exec deb -- apt-get --version)" "apt 2." "apt-get --version"
status=$(noid exec deb -- dpkg-query -W -f '${Package} ${db:Status-Abbrev}\n')
for p in apt dpkg bash coreutils ca-certificates curl procps iproute2 less locales python3; do
    assert_contains "$status" "$p ii " "dpkg says $p is installed"
done
assert_eq "C.UTF-8 5" "$(noid exec deb -- bash -c 'echo $LANG ${BASH_VERSINFO[0]}')" "bash 5 and LANG in exec"
assert_eq "3.11 é" "$(noid exec deb -- python3 -c 'import json, ssl, sys; print("%d.%d" % sys.version_info[:2], json.loads("\"\\u00e9\""))')" \
    "python3 with json and ssl, printing UTF-8"
locales=$(noid exec deb -- locale -a)
assert_contains "$locales" "C.utf8" "locale C.UTF-8"
assert_contains "$locales" "en_US.utf8" "locale en_US.UTF-8"
assert_contains "$(noid exec deb -- curl --version)" "curl 7." "curl"
ok "Debian 12 with apt, dpkg, bash, python3, curl, locales; LANG=C.UTF-8"

# PID 1, the agent under it, the console's shell after it
assert_eq "init" "$(noid exec deb -- cat /proc/1/comm)" "PID 1"
assert_contains "$(noid exec deb -- readlink -f /sbin/init)" "busybox" "/sbin/init is busybox"
agent=$(noid exec deb -- sh -c 'for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = noid-agent ] && echo ${p#/proc/} $(cut -d" " -f4 $p/stat); done; true')
read -r agent_pid agent_ppid <<< "$agent"
assert_eq 1 "$agent_ppid" "noid-agent's parent is init"
console=$(noid exec deb -- ps -t ttyS0 -o pid=,args=)
assert_contains "$console" "-/bin/bash" "a login bash on the serial console"
console_pid=$(awk '$2 == "-/bin/bash" {print $1; exit}' <<< "$console")
[ "$agent_pid" -lt "$console_pid" ] || fail "the agent ($agent_pid) started after the console shell ($console_pid)"
assert_eq /root "$(noid exec deb -- readlink "/proc/$console_pid/cwd")" "the console's shell starts in root's home"
ok "busybox init; the agent (pid $agent_pid) before the console's bash (pid $console_pid)"

# a real package install through dpkg/apt, without a network
mkdir -p "$T/pkg/DEBIAN" "$T/pkg/usr/bin"
cat > "$T/pkg/DEBIAN/control" <<CTL
Package: noid-hello
Version: 1.0
Architecture: all
Maintainer: noid tests <tests@noid.invalid>
Description: a package made by test_guest.sh
Depends: bash
CTL
printf '#!/bin/bash\necho "hello from a package"\n' > "$T/pkg/usr/bin/noid-hello"
chmod 0755 "$T/pkg/usr/bin/noid-hello"
dpkg-deb --root-owner-group -b "$T/pkg" "$T/noid-hello_1.0_all.deb" > /dev/null
noid cp -q "$T/noid-hello_1.0_all.deb" deb:/root/
out=$(noid exec deb -- apt-get install -y /root/noid-hello_1.0_all.deb 2>&1) ||
    fail "apt-get install of a local .deb failed: $out"
assert_eq "hello from a package" "$(noid exec deb -- noid-hello)" "the installed program runs"
assert_contains "$(noid exec deb -- dpkg -s noid-hello)" "Status: install ok installed" "dpkg knows the package"
noid checkpoint deb > /dev/null
noid exec deb -- dpkg -r noid-hello > /dev/null
rc=0; noid exec deb -- test -e /usr/bin/noid-hello || rc=$?
[ "$rc" -ne 0 ] || fail "dpkg -r left /usr/bin/noid-hello"
noid restore deb "$(checkpoint_ids deb | head -n 1)" > /dev/null
assert_eq "hello from a package" "$(noid exec deb -- noid-hello)" "the package is back after restore"
ok "apt-get installs a .deb copied in; checkpoint and restore keep it"
noid destroy deb > /dev/null
stop_server

# the small guest: its own golden snapshot, a shell, busybox
[ -f "$SMALL_GUEST_DIR/rootfs.ext4" ] ||
    fail "small guest missing in $SMALL_GUEST_DIR: run scripts/build-guest.sh --small (scripts/test.sh does)"
GUEST_DIR=$SMALL_GUEST_DIR
write_config vm
sed -i "s|^data_dir = .*|data_dir = \"$T/data-small\"|" "$T/server.toml"
start_as_users_do
noid create small > /dev/null
assert_eq golden "$(noid info small --json | json_get restored_from)" "the small VM comes from its golden snapshot"
assert_contains "$(noid exec small -- cat /etc/noid-guest-release)" "flavour=small" "the small guest's release file"
assert_contains "$(noid exec small -- readlink /bin/sh)" "busybox" "busybox userland"
rc=0; noid exec small -- test -e /etc/os-release || rc=$?
[ "$rc" -ne 0 ] || fail "the small guest has an os-release: is it the Debian image?"
ok "the small busybox guest boots from its own golden snapshot"
it_done
