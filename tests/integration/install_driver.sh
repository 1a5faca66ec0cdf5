#!/usr/bin/env bash
# install_driver.sh — the inside half of test_install.sh: runs at boot of
# the throw-away Debian root (systemd-nspawn --boot, its own network
# namespace) as a oneshot service, with the source tree at /src (read-only),
# the guest image at /guest (read-only) and /out shared with the test.
# It runs scripts/install-server.sh as an administrator would and records
# what it sees in /out; test_install.sh makes the assertions.  Then it
# powers the container off (SuccessAction/FailureAction of its unit).
set -uo pipefail
OUT=/out
SCRIPT=/src/scripts/install-server.sh
exec > "$OUT/driver.log" 2>&1

step() { printf '[%s] %s\n' "$(date +%T)" "$*"; }

# Everything install-server.sh may touch, with what tells a change: type,
# mode, owner, size, mtime and inode (a write through temp + rename gives a
# new inode).  Left out: the kernel's file systems, runtime state
# (/run, /tmp, logs, systemd's own state), meson's log of each 'meson
# install' in the build dir (a cache, rewritten by every run) and what the
# running server itself writes in its data dir (its database, VM storage).
tree() { # out-file
    find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \
        -o -path /var/tmp -o -path /var/log -o -path /var/lib/systemd \
        -o -path /var/cache/noid/build/meson-logs -o -path /out -o -path /src -o -path /guest \
        -o -path '/var/lib/noid/noid.db*' -o -path /var/lib/noid/storage \
        -o -path /var/lib/noid/server.lock -o -path /var/lib/noid/failed \) -prune \
        -o -printf '%p %y %m %u %g %s %T@ %i\n' | sort > "$1"
}

run_script() { # name args...: output in $OUT/name.out, status in $OUT/name.rc
    local name=$1
    shift
    step "install-server.sh $*"
    "$SCRIPT" "$@" > "$OUT/$name.out" 2>&1
    echo $? > "$OUT/$name.rc"
    cat "$OUT/$name.out"
}

step "container up: $(systemctl is-system-running 2>&1)"
# The device nodes as udev makes them on a Debian host (a container has no
# udev, and nspawn copies this machine's nodes, which may be 0600): TAPs
# are opened by the server's QEMU as user noid, /dev/kvm belongs to group
# kvm (the udev package creates it).  A node of our own, never the host's.
chmod 0666 /dev/net/tun
if [ -f "$OUT/host-kvm" ]; then
    getent group kvm > /dev/null || groupadd --system kvm
    rm -f /dev/kvm
    mknod -m 0660 /dev/kvm c 10 232 && chgrp kvm /dev/kvm
fi
ls -l /dev/net/tun /dev/kvm > "$OUT/devices" 2>&1
"$SCRIPT" --help > "$OUT/help.out" 2>&1

# a dry run on the pristine root changes nothing
tree "$OUT/tree0"
run_script dry1 --dry-run --guest-dir /guest
tree "$OUT/tree1"

# the real install
run_script run1 --guest-dir /guest

# what it made, as the services see it
for u in noid-netd.service noid-server.service; do
    echo "$u $(systemctl is-enabled "$u" 2>&1) $(systemctl is-active "$u" 2>&1)"
done > "$OUT/units"
systemd-analyze verify --man=no /etc/systemd/system/noid-netd.service \
    /etc/systemd/system/noid-server.service > "$OUT/verify" 2>&1
echo $? > "$OUT/verify.rc"
for b in noid noid-server noid-netd; do "/usr/local/bin/$b" --version; done > "$OUT/versions" 2>&1
id noid > "$OUT/id" 2>&1
getent passwd noid > "$OUT/passwd" 2>&1
sysctl -n net.ipv4.ip_forward > "$OUT/ip_forward" 2>&1
iptables -t nat -S POSTROUTING > "$OUT/iptables" 2>&1
iptables -S FORWARD >> "$OUT/iptables" 2>&1

# the running service: a user, its capabilities, a VM and an exec in it
listen=""
for _ in $(seq 1 300); do
    listen=$(journalctl -u noid-server -o cat --no-pager 2> /dev/null |
        sed -n 's/^noid-server listening on //p' | tail -n 1)
    [ -n "$listen" ] && break
    sleep 0.2
done
step "noid-server listening on ${listen:-nothing}"
url="http://127.0.0.1:${listen##*:}"
token=$(runuser -u noid -- /usr/local/bin/noid-server add-user tester --config /etc/noid/server.toml)
api() { # method path [body]
    curl -s -H "Authorization: Bearer $token" -X "$1" ${3:+-H 'Content-Type: application/json' --data-binary "$3"} "$url$2"
}
for _ in $(seq 1 600); do
    api GET /v1/capabilities > "$OUT/capabilities"
    grep -q '"golden_ready":true' "$OUT/capabilities" && break
    sleep 0.2
done
api POST /v1/vms '{"name":"box"}' > "$OUT/vm"
api POST /v1/vms/box/exec '{"command":["sh","-c","echo hello from $(uname -s)"]}' > "$OUT/exec"
api DELETE /v1/vms/box > /dev/null
journalctl -u noid-server -u noid-netd -o cat --no-pager > "$OUT/journal" 2>&1
# the hardening in effect on each daemon: no new privileges, its capability
# bounding set, /usr and /etc read-only in its mount namespace, the data
# dir writable for the server
for u in noid-server noid-netd; do
    pid=$(systemctl show -p MainPID --value "$u")
    printf '%s %s\n' "$u" "$(awk '$1 == "NoNewPrivs:" || $1 == "CapBnd:" {printf "%s %s ", $1, $2}' "/proc/$pid/status")"
    for d in /usr /etc /var/lib/noid; do
        if nsenter -t "$pid" -m -- touch "$d/.hardening-probe" 2> /dev/null; then
            nsenter -t "$pid" -m -- rm -f "$d/.hardening-probe"
            echo "$u $d writable"
        else
            echo "$u $d read-only"
        fi
    done
done > "$OUT/hardening" 2>&1
step "service checks done"

# again: a dry run after the install, then a second real run; both change nothing
tree "$OUT/tree2"
run_script dry2 --dry-run --guest-dir /guest
tree "$OUT/tree3"
run_script run2 --guest-dir /guest
tree "$OUT/tree4"
for u in noid-netd.service noid-server.service; do
    echo "$u $(systemctl is-enabled "$u" 2>&1) $(systemctl is-active "$u" 2>&1)"
done > "$OUT/units2"

# an upgrade of sorts: a program gone, a unit edited, the config edited by
# the administrator; the third run puts back the program and the unit,
# keeps the config, and restarts both services (which answer again)
rm /usr/local/bin/noid
echo "# edited" >> /etc/systemd/system/noid-netd.service
echo "# the administrator's edit" >> /etc/noid/server.toml
run_script run3 --guest-dir /guest
for u in noid-netd.service noid-server.service; do
    echo "$u $(systemctl is-enabled "$u" 2>&1) $(systemctl is-active "$u" 2>&1)"
done > "$OUT/units3"
api GET /v1/capabilities > "$OUT/capabilities3"

step "done"
touch "$OUT/done"
