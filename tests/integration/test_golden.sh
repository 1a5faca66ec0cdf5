#!/usr/bin/env bash
# test_golden.sh — the golden snapshot: built at start, used by create
# (restored_from: golden), invalidated and rebuilt when its inputs change,
# the admin commands, and promoting a checkpoint (the provisioning flow).
. "$(dirname "$0")/lib.sh"
it_setup
require_guest

# our own copy of the rootfs, so touching it affects nobody else
cp --sparse=always "$GUEST_DIR/rootfs.ext4" "$T/rootfs.ext4"
write_config vm 'golden = true' 'max_mem_mib = 1024'
sed -i "s|^rootfs = .*|rootfs = \"$T/rootfs.ext4\"|" "$T/server.toml"
A=$(add_user alice)
start_server
cli_login "$A"
wait_golden "$A"
cfg="$T/data/golden/config.json"
[ -f "$cfg" ] || fail "no golden/config.json"
for k in kernel rootfs initrd; do
    python3 -c "import json,sys; d=json.load(open(sys.argv[1]))[sys.argv[2]]; assert d['size'] > 0 and len(d['sha256']) == 64 and d['mtime_ns'] > 0" "$cfg" "$k" ||
        fail "config.json: $k lacks size/mtime/sha256"
done
for k in cpus mem_mib vmm vmm_version; do
    [ -n "$(json_get "$k" < "$cfg")" ] || fail "config.json: no $k"
done
ok "golden snapshot built at start, config.json records its inputs"

noid create g1 > /dev/null
assert_eq golden "$(noid info g1 --json | json_get restored_from)" "create uses the golden snapshot"
noid create g2 > /dev/null
assert_eq golden "$(noid info g2 --json | json_get restored_from)" "second VM from golden"
assert_contains "$(noid exec g1 -- uname -r)" cloud-amd64 "exec in a golden VM"
r1=$(noid exec g1 -- sh -c 'head -c 32 /dev/urandom | od -An -tx1')
r2=$(noid exec g2 -- sh -c 'head -c 32 /dev/urandom | od -An -tx1')
[ "$r1" != "$r2" ] || fail "two golden VMs read the same random bytes"
guest=$(noid exec g1 -- date +%s)
skew=$(( $(date +%s) - guest ))
[ "${skew#-}" -le 2 ] || fail "golden VM clock off by $skew s"
noid exec g1 -- sh -c 'echo g1 > /root/mine'
rc=0; noid exec g2 -- test -e /root/mine || rc=$?
assert_eq 1 "$rc" "golden VMs have their own disks"
noid create big --mem 512 > /dev/null
assert_eq "" "$(noid info big --json | json_get restored_from)" "another size cold-boots"
ok "create from golden: restored_from golden, own disk, own randomness, right clock"

# ---- inputs change: invalidated, cold boot meanwhile, rebuilt ----
touch "$T/rootfs.ext4"
noid create after-touch > /dev/null
assert_eq "" "$(noid info after-touch --json | json_get restored_from)" "stale golden not used"
grep -q 'golden: not usable (rootfs changed)' "$T/server.log" || fail "invalidation not logged"
wait_golden "$A"
grep -q 'golden: rebuilding the snapshot (rootfs changed)' "$T/server.log" || fail "rebuild not logged"
noid create rebuilt > /dev/null
assert_eq golden "$(noid info rebuilt --json | json_get restored_from)" "rebuilt golden used"
assert_eq running "$(vm_state g1)" "VMs of the old golden snapshot still run"
assert_contains "$(noid exec g1 -- cat /root/mine)" g1 "old golden VM intact"
ok "touching the rootfs invalidates the snapshot; it is rebuilt and used again"

# ---- admin commands ----
out=$("$SERVER_BIN" golden build --config "$T/server.toml" 2>&1)
assert_contains "$out" "golden snapshot ready" "golden build when up to date"
"$SERVER_BIN" golden --help | grep -q 'promote' || fail "golden --help"
rc=0; out=$("$SERVER_BIN" golden promote 0123 --config "$T/server.toml" 2>&1) || rc=$?
assert_eq 1 "$rc" "promote of an unknown checkpoint"
assert_contains "$out" "no checkpoint '0123'" "unknown checkpoint message"

# provisioning: set up a VM, checkpoint it, promote it, VMs of its size start from it
noid exec big -- sh -c 'echo installed > /root/provisioned'
CP=$(noid checkpoint big --label provisioned 2>/dev/null)
"$SERVER_BIN" golden promote "${CP:0:8}" --config "$T/server.toml" > /dev/null
noid create from-promoted --mem 512 > /dev/null
assert_eq golden "$(noid info from-promoted --json | json_get restored_from)" "promoted golden used"
assert_eq installed "$(noid exec from-promoted -- cat /root/provisioned)" "provisioned state in the new VM"
noid create default-size > /dev/null
assert_eq "" "$(noid info default-size --json | json_get restored_from)" "default size no longer matches the golden"
# the provisioning flow from the golden snapshot itself: a VM created from
# golden (RAM mapped privately from the template) is set up, checkpointed
# and promoted; new VMs of the default size start from it
noid exec g1 -- sh -c 'echo from-golden-vm > /root/provisioned'
CPG=$(noid checkpoint g1 2>/dev/null)
"$SERVER_BIN" golden promote "$CPG" --config "$T/server.toml" > /dev/null
noid create from-golden-promoted > /dev/null
assert_eq golden "$(noid info from-golden-promoted --json | json_get restored_from)" "promoted golden VM checkpoint used"
assert_eq from-golden-vm "$(noid exec from-golden-promoted -- cat /root/provisioned)" "provisioned state of a golden VM"
ok "golden build/promote: the provisioning flow works"
it_done
