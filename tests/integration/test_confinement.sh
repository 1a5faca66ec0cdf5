#!/usr/bin/env bash
# test_confinement.sh — what a VM may cost and reach (issue 7 §4), on the
# default config (golden on) with the golden snapshot waited for:
#   checkpoint caps per VM and per user: 429 with a clear error, nothing made;
#   QEMU runs under its seccomp sandbox and, the server being root, as the
#   unprivileged vmm_user, which can open none of the VM's files by path
#   (QEMU got them as descriptors), nor can any other local user;
#   checkpoints and restores still work under that confinement;
#   a vmm_user that does not exist stops the server with a clear message.
. "$(dirname "$0")/lib.sh"
it_setup
require_guest
require_root

write_config vm 'max_checkpoints_per_vm = 2' 'max_checkpoints_per_user = 3'
start_as_users_do
uid=$(q "select id from users where name='alice'")
vmm_user=noid-vmm

noid create v1 > /dev/null
noid create v2 > /dev/null
c1=$(noid checkpoint v1 2>/dev/null)
noid checkpoint v1 > /dev/null 2>&1
http POST /v1/vms/v1/checkpoints "$A" '{}'
assert_eq 429 "$HTTP_STATUS" "third checkpoint of one VM"
assert_contains "$HTTP_BODY" "max_checkpoints_per_vm = 2" "per-VM cap named in the error"
assert_eq 2 "$(noid checkpoints v1 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" "nothing made over the cap"
noid checkpoint v2 > /dev/null 2>&1
http POST /v1/vms/v2/checkpoints "$A" '{}'
assert_eq 429 "$HTTP_STATUS" "fourth checkpoint of the user"
assert_contains "$HTTP_BODY" "max_checkpoints_per_user = 3" "per-user cap named in the error"
noid checkpoint-rm v1 "$c1" > /dev/null
noid checkpoint v2 > /dev/null 2>&1 || fail "a checkpoint once one was deleted"
[ -z "$(find "$T/data/storage" -name '.*')" ] || fail "work files left by refused checkpoints"
ok "checkpoint caps per VM and per user: 429 naming the limit, nothing made"

# two checkpoints at once with room for one: both pass the count made
# before the save; the one recorded second is refused and removed
noid checkpoint-rm v2 "$(checkpoint_ids v2 | head -n1)" > /dev/null
(http POST /v1/vms/v1/checkpoints "$A" '{}' && echo "$HTTP_STATUS" > "$T/race.v1") &
p1=$!
(http POST /v1/vms/v2/checkpoints "$A" '{}' && echo "$HTTP_STATUS" > "$T/race.v2") &
p2=$!
wait "$p1" "$p2"
assert_eq "201 429" "$(cat "$T/race.v1" "$T/race.v2" | sort | xargs)" "statuses of two checkpoints racing for the last place"
assert_eq 3 "$(q "select count(*) from checkpoints")" "checkpoints after the race"
assert_eq 3 "$(find "$T/data/storage/users/$uid/checkpoints" -mindepth 2 -maxdepth 2 -type d | wc -l)" "checkpoint directories after the race"
[ -z "$(find "$T/data/storage" -name '.*')" ] || fail "work files left by the refused checkpoint"
ok "two checkpoints racing for the user's last place: one made, one refused, nothing left"

pid=$(q "select pid from vms where name='v1'")
assert_eq "$vmm_user" "$(ps -o user= -p "$pid")" "QEMU's user"
assert_eq 2 "$(awk '/^Seccomp:/ {print $2}' "/proc/$pid/status")" "QEMU runs under a seccomp filter"
grep -q 'vmm: qemu (.*seccomp sandbox, noid-vmm)' "$T/server.log" || fail "confinement not logged at start"
vmdir="$T/data/storage/users/$uid/vms/v1"
for f in rootfs.ext4 serial.log vmm.log; do
    [ -e "$vmdir/$f" ] || fail "$f missing"
    for who in "$vmm_user" nobody; do
        if runuser -u "$who" -- cat "$vmdir/$f" > /dev/null 2>&1; then
            fail "user $who can read $f of a VM"
        fi
    done
done
ram=$(q "select ram_path from vms where name='v1'")
[ -n "$ram" ] && ! runuser -u "$vmm_user" -- cat "$ram" > /dev/null 2>&1 || fail "vmm_user can read a RAM file"
ok "QEMU runs as $vmm_user under seccomp; neither it nor nobody can read a VM's files"

# everything that reopens the disk (a checkpoint's save, a restore) works
# with QEMU unprivileged: the disk is passed as descriptors
noid exec v2 -- sh -c 'echo kept > /root/mark'
# the user is at max_checkpoints_per_user (3 in all, v2 has 1 or 2): make room first
noid checkpoint-rm v2 "$(checkpoint_ids v2 | head -n1)" > /dev/null
cp=$(noid checkpoint v2 2>/dev/null) || fail "checkpoint with QEMU unprivileged"
noid exec v2 -- sh -c 'echo changed > /root/mark'
noid restore v2 "$cp" > /dev/null
assert_eq kept "$(noid exec v2 -- cat /root/mark)" "restore with QEMU unprivileged"
assert_eq "$vmm_user" "$(ps -o user= -p "$(q "select pid from vms where name='v2'")")" "restored QEMU's user"
ok "checkpoint and restore work with QEMU unprivileged"

# a RAM directory that is not ours (here: a symlink planted where the
# default one goes) is neither used nor swept
stop_server
memdir=$(default_mem_dir)
mkdir -p "$T/decoy"
decoy="$T/decoy/0123456789abcdef0123456789abcdef.ram"
echo precious > "$decoy"
mv "$memdir" "$memdir.real"
ln -s "$T/decoy" "$memdir"
start_server
cli_login "$A"
assert_eq precious "$(cat "$decoy")" "a file behind a planted RAM directory"
noid create v3 --mem 320 > /dev/null # a cold boot: it would want a RAM file
assert_eq running "$(vm_state v3)" "a VM is created without the planted RAM directory"
# without a RAM directory a checkpoint is staged on disk and converted there
noid exec v3 -- sh -c 'echo staged-on-disk > /root/mark'
noid checkpoint-rm v2 "$(checkpoint_ids v2 | head -n1)" > /dev/null # room under the caps
cp3=$(noid checkpoint v3 2>/dev/null) || fail "checkpoint without a RAM directory"
noid restore v3 "$cp3" --as v3c > /dev/null
assert_eq staged-on-disk "$(noid exec v3c -- cat /root/mark)" "clone of a checkpoint staged on disk"
grep -q "mem_dir $memdir is not a private directory of ours" "$T/server.log" || fail "no warning about the planted RAM directory"
stop_server
rm "$memdir"
mv "$memdir.real" "$memdir"
ok "a planted RAM directory is neither used nor swept"

echo 'vmm_user = "no-such-user-xyz"' >> "$T/server.toml"
rc=0
"$SERVER_BIN" serve --config "$T/server.toml" > "$T/bad.out" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "server started with a missing vmm_user"
assert_contains "$(cat "$T/bad.out")" "vmm_user 'no-such-user-xyz' does not exist" "missing vmm_user message"
ok "a missing vmm_user stops the server with a clear message"
it_done
