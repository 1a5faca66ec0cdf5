#!/usr/bin/env bash
# test_install.sh — scripts/install-server.sh for real, in a throw-away
# Debian 12 root (install_root.sh builds and caches it; scripts/test.sh
# calls it), never on this machine's own root.  The root is booted with
# systemd-nspawn --boot in a network namespace of its own (--private-network:
# netd's iptables rules and the forwarding sysctl land there), over an
# overlay so the cached root stays pristine.  Inside, install_driver.sh runs
# the script with the prebuilt small guest image (--guest-dir) as an administrator
# would: a dry run, the install, the started services (a VM created and an
# exec in it), a dry run again, a second run.  Here we check what it made:
# the user and groups, the programs and man pages, server.toml, the units
# (installed, enabled, verified, running), the sysctl, the golden snapshot,
# that dry runs and the second run change nothing, that the second run
# says "up to date" for every step, and that a third run after changes puts
# back a missing program and an edited unit (restarting the services) but
# keeps an edited server.toml.
. "$(dirname "$0")/lib.sh"

SRC=$(cd "$IT_DIR/../.." && pwd)
require_root
command -v systemd-nspawn > /dev/null ||
    fail "systemd-nspawn missing (Debian: systemd-container; scripts/deps.sh installs it)"
LOWER=$(bash "$IT_DIR/install_root.sh" path) ||
    fail "the throw-away root is missing: run tests/integration/install_root.sh ensure (scripts/test.sh does)"
# the small busybox guest: what is installed does not depend on the guest,
# and its golden snapshot boots fastest under TCG
[ -f "$SMALL_GUEST_DIR/rootfs.ext4" ] ||
    fail "small guest missing in $SMALL_GUEST_DIR: run scripts/build-guest.sh --small (scripts/test.sh does)"
GUEST_DIR=$SMALL_GUEST_DIR
require_guest
it_setup

mkdir -p "$T/upper" "$T/work" "$T/root" "$T/out"
mount -t overlay overlay -o "lowerdir=$LOWER,upperdir=$T/upper,workdir=$T/work" "$T/root"
# shellcheck disable=SC2034 # lib.sh's it_cleanup runs it
IT_EXTRA_CLEANUP='umount -l "$T/root"'

# the driver runs once the container has booted, then powers it off
cat > "$T/root/etc/systemd/system/noid-install-test.service" <<'EOF'
[Unit]
Description=test_install.sh driver
After=multi-user.target
SuccessAction=poweroff-force
FailureAction=poweroff-force
[Service]
Type=oneshot
ExecStart=/bin/bash /src/tests/integration/install_driver.sh
[Install]
WantedBy=multi-user.target
EOF
ln -s /etc/systemd/system/noid-install-test.service \
    "$T/root/etc/systemd/system/multi-user.target.wants/noid-install-test.service"

nspawn=(systemd-nspawn --boot --private-network --register=no --keep-unit --quiet
    -D "$T/root" --bind-ro="$SRC:/src" --bind-ro="$GUEST_DIR:/guest" --bind="$T/out:/out")
# the driver makes a /dev/kvm of the container's own (as udev would: group
# kvm) when this machine has one
[ -c /dev/kvm ] && touch "$T/out/host-kvm"
log "booting the throw-away root (install, golden build, second run: a few minutes)"
rc=0
timeout 1500 "${nspawn[@]}" < /dev/null > "$T/nspawn.log" 2>&1 || rc=$?
[ -f "$T/out/done" ] || {
    tail -n 30 "$T/nspawn.log" >&2
    cat "$T/out/driver.log" >&2 2> /dev/null
    fail "the container's driver did not finish (nspawn status $rc)"
}
cat "$T/out/driver.log" >&2

# --help and the dry run on a fresh root
assert_contains "$(cat "$T/out/help.out")" "--dry-run" "--help lists --dry-run"
assert_eq 0 "$(cat "$T/out/dry1.rc")" "dry run on a fresh root: status"
assert_contains "$(cat "$T/out/dry1.out")" "would run: useradd --system" "the dry run names the user it would add"
assert_contains "$(cat "$T/out/dry1.out")" "would write: /etc/noid/server.toml" "the dry run names the config"
diff "$T/out/tree0" "$T/out/tree1" > "$T/diff01" || fail "the dry run changed the root: $(head -n 20 "$T/diff01")"
ok "dry run on a fresh root: prints its actions, changes nothing"

# the real run
assert_eq 0 "$(cat "$T/out/run1.rc")" "install: status"
run1=$(cat "$T/out/run1.out")
assert_contains "$run1" "packages: up to date" "every package was in the root: no apt-get"
assert_contains "$run1" "install-server: done" "install: summary"

R=$T/root
grep -q '^noid:x:[0-9]*:[0-9]*:[^:]*:/var/lib/noid:/usr/sbin/nologin$' "$R/etc/passwd" ||
    fail "user noid: $(grep '^noid:' "$R/etc/passwd")"
noid_uid=$(awk -F: '$1 == "noid" {print $3}' "$R/etc/passwd")
[ "$noid_uid" -lt 1000 ] || fail "noid is not a system user (uid $noid_uid)"
grep -q '^noid:' "$R/etc/group" || fail "no group noid"
if [ -c /dev/kvm ]; then
    grep -Eq '^kvm:[^:]*:[0-9]+:(.*,)?noid(,.*)?$' "$R/etc/group" ||
        fail "noid not in kvm: $(grep '^kvm:' "$R/etc/group")"
fi
assert_eq "$noid_uid 700" "$(stat -c '%u %a' "$R/var/lib/noid")" "data dir owner and mode"
ok "system user noid (home /var/lib/noid, nologin)$([ -c /dev/kvm ] && echo ', in kvm')"

version=$(sed -n "s/^  version : '\(.*\)',/\1/p" "$SRC/meson.build")
versions=$(cat "$T/out/versions")
for b in noid noid-server noid-netd; do
    [ -x "$R/usr/local/bin/$b" ] || fail "/usr/local/bin/$b missing"
    assert_contains "$versions" "$b $version" "$b --version"
done
[ -x "$R/usr/local/sbin/noid-agent" ] || fail "/usr/local/sbin/noid-agent missing"
for m in man1/noid.1 man1/noid-server.1 man8/noid-netd.8; do
    [ -s "$R/usr/local/share/man/$m" ] || fail "man page $m missing"
done
ok "programs $version in /usr/local/bin, the agent, man pages"

conf=$R/etc/noid/server.toml
noid_gid=$(awk -F: '$1 == "noid" {print $3}' "$R/etc/group")
assert_eq "640 0 $noid_gid" "$(stat -c '%a %u %g' "$conf")" "server.toml mode and owner"
for line in 'data_dir = "/var/lib/noid"' 'kernel = "/usr/local/share/noid/guest/vmlinux"' \
    'rootfs = "/usr/local/share/noid/guest/rootfs.ext4"' 'initrd = "/usr/local/share/noid/guest/initrd.cpio"' \
    'listen = "0.0.0.0:7654"' 'netd_socket = "/run/noid/netd.sock"'; do
    grep -qxF "$line" "$conf" || fail "server.toml lacks '$line': $(cat "$conf")"
done
for f in vmlinux initrd.cpio rootfs.ext4; do
    cmp -s "$GUEST_DIR/$f" "$R/usr/local/share/noid/guest/$f" || fail "guest $f not copied"
done
ok "server.toml (0640 root:noid, data dir, guest image, listen, netd socket), guest image copied"

for u in noid-netd.service noid-server.service; do
    cmp -s "$SRC/scripts/$u" "$R/etc/systemd/system/$u" || fail "$u not installed as shipped"
    [ -L "$R/etc/systemd/system/multi-user.target.wants/$u" ] || fail "$u not enabled"
done
assert_eq "0" "$(cat "$T/out/verify.rc")" "systemd-analyze verify of both units: $(cat "$T/out/verify")"
assert_eq "noid-netd.service enabled active
noid-server.service enabled active" "$(cat "$T/out/units")" "units enabled and running"
ok "units installed, enabled, verified (systemd-analyze) and running"

assert_eq "net.ipv4.ip_forward = 1" "$(grep -v '^#' "$R/etc/sysctl.d/90-noid.conf")" "sysctl file"
assert_eq 1 "$(cat "$T/out/ip_forward")" "ip_forward applied (in the container's namespace)"
ok "sysctl file written and applied"

[ -f "$R/var/lib/noid/golden/config.json" ] || fail "no golden snapshot in /var/lib/noid/golden"
journal=$(cat "$T/out/journal")
assert_contains "$(cat "$T/out/capabilities")" '"golden_ready":true' "the service sees the golden snapshot"
assert_contains "$(cat "$T/out/vm")" '"restored_from":"golden"' "a VM of the hardened service starts from the golden snapshot: $(cat "$T/out/vm")"
assert_contains "$(cat "$T/out/exec")" '"stdout":"hello from Linux\n"' "exec in that VM"
assert_contains "$journal" "noid-netd $version serving /run/noid/netd.sock" "netd runs under its unit"
assert_contains "$(cat "$T/out/iptables")" "-A FORWARD -i noid+ -o noid+ -j DROP" "netd's rules (in the container's namespace)"
assert_contains "$(cat "$T/out/vm")" '"ip":"172.16.' "the VM got a network from netd under the hardened units"
ok "the hardened services: golden ready, a VM with a network from netd, exec in it"

hardening=$(cat "$T/out/hardening")
# noid-server: no capabilities at all; noid-netd: CHOWN, NET_ADMIN, NET_RAW, SYS_MODULE
assert_contains "$hardening" "noid-server CapBnd: 0000000000000000 NoNewPrivs: 1" "noid-server's privileges"
assert_contains "$hardening" "noid-netd CapBnd: " "noid-netd's capabilities"
# CAP_SYS_MODULE (0x10000) only where the container itself has it (nspawn drops it)
netd_caps=$((16#$(sed -n 's/^noid-netd CapBnd: \([0-9a-f]*\) .*/\1/p' <<< "$hardening")))
assert_eq $((0x3001)) $((netd_caps & ~0x10000)) "noid-netd's capability bounding set (CHOWN, NET_ADMIN, NET_RAW)"
assert_contains "$hardening" "noid-netd CapBnd: $(printf '%016x' "$netd_caps") NoNewPrivs: 1" "noid-netd: no new privileges"
for line in "noid-server /usr read-only" "noid-server /etc read-only" "noid-server /var/lib/noid writable" \
    "noid-netd /usr read-only" "noid-netd /etc read-only"; do
    assert_contains "$hardening" "$line" "hardening"
done
ok "hardening in effect: no new privileges, capability sets, read-only system for both daemons"

# the second time: nothing changes
assert_eq 0 "$(cat "$T/out/dry2.rc")" "dry run after the install: status"
diff "$T/out/tree2" "$T/out/tree3" > "$T/diff23" || fail "the second dry run changed the root: $(head -n 20 "$T/diff23")"
assert_eq 0 "$(cat "$T/out/run2.rc")" "second run: status"
diff "$T/out/tree3" "$T/out/tree4" > "$T/diff34" || fail "the second run changed the root: $(head -n 20 "$T/diff34")"
run2=$(cat "$T/out/run2.out")
for s in packages user build install config guest golden units sysctl services; do
    grep -q "^$s: *up to date" <<< "$run2" || fail "second run: step $s is not up to date: $run2"
done
assert_contains "$run2" "install-server: everything up to date, nothing changed" "second run: summary"
assert_eq "$(cat "$T/out/units")" "$(cat "$T/out/units2")" "units after the second run"
ok "a dry run and a second run change nothing; every step says up to date"

assert_eq 0 "$(cat "$T/out/run3.rc")" "third run: status"
run3=$(cat "$T/out/run3.out")
assert_contains "$run3" "install:  install /usr/local/bin/noid" "third run puts the missing program back"
assert_contains "$run3" "units:    install noid-netd.service" "third run puts the edited unit back"
assert_contains "$run3" "config:   up to date" "third run leaves the config alone"
assert_contains "$run3" "services: restart noid-netd.service restart noid-server.service (listening on" "third run restarts both"
[ -x "$R/usr/local/bin/noid" ] || fail "/usr/local/bin/noid not put back"
cmp -s "$SRC/scripts/noid-netd.service" "$R/etc/systemd/system/noid-netd.service" || fail "noid-netd.service not put back"
assert_eq "# the administrator's edit" "$(tail -n 1 "$conf")" "server.toml keeps the administrator's edit"
assert_eq "$(cat "$T/out/units")" "$(cat "$T/out/units3")" "units after the third run"
assert_contains "$(cat "$T/out/capabilities3")" '"golden_ready":true' "the restarted server answers"
ok "a third run after changes: puts back what differs, keeps server.toml, restarts the services"
it_done
