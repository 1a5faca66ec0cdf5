#!/usr/bin/env bash
# test_cp.sh — `noid cp` (issue 10) on a real VM, on the default path
# (embedded defaults, golden snapshot, default guest), the way a person
# uses it:
#   * a 64 MiB random file up and down, compared by sha256 here and in the
#     guest; modes kept both ways; into a directory (existing, or DST/);
#     a file replaced; '-' as stdin and stdout
#   * names with spaces, UTF-8 and ? # % both ways
#   * -r: a tree with relative, absolute and dangling symlinks, modes 0700,
#     0600, 0755, a setgid directory, an empty directory and old mtimes, up
#     (as a new name, and into an existing directory) and back down,
#     compared entry by entry with an lstat walk (type, mode, size, mtime to
#     the second, link target); the guest's view checked too
#   * cp's errors: a missing local or guest source, a directory without -r,
#     a directory over a file, a file into a missing directory, another
#     user's VM; exit status 1
#   * a failed download (a full local file system) and an interrupted one
#     leave no partial file and no temporary file
#   * the progress line on a terminal (script(1)) for 16 MiB, none with -q
#     and none when stderr is not a terminal
. "$(dirname "$0")/lib.sh"
it_setup
require_guest
command -v script > /dev/null || fail "script(1) is missing (util-linux)"

PY=/usr/bin/python3
W="$T/w"
mkdir -p "$W"

write_config vm
B=$(add_user bob)
start_as_users_do
noid create box > /dev/null

gsha() { noid exec box -- sha256sum "$1" | cut -d' ' -f1; }
lsha() { sha256sum < "$1" | cut -d' ' -f1; }
gmode() { noid exec box -- stat -c %a "$1"; }

# ---- one big file, up and down ----

head -c $((64 * 1024 * 1024)) /dev/urandom > "$W/big.bin"
chmod 0754 "$W/big.bin"
want=$(lsha "$W/big.bin")
noid cp "$W/big.bin" box:/root/big.bin 2> "$T/err"
assert_eq "" "$(cat "$T/err")" "no progress when stderr is not a terminal"
assert_eq "$want" "$(gsha /root/big.bin)" "64 MiB upload: sha256 in the guest"
assert_eq 754 "$(gmode /root/big.bin)" "upload keeps the mode"
noid exec box -- chmod 0640 /root/big.bin
noid cp box:/root/big.bin "$W/down.bin" 2> "$T/err"
assert_eq "" "$(cat "$T/err")" "no progress on download when stderr is not a terminal"
assert_eq "$want" "$(lsha "$W/down.bin")" "64 MiB download: sha256"
assert_eq 640 "$(stat -c %a "$W/down.bin")" "download keeps the mode"
ls -A "$W" | grep -q noid-cp && fail "a temporary file was left: $(ls -A "$W")"
ok "64 MiB up and down, sha256 equal here and in the guest, modes kept"

# into directories: an existing one, with and without a trailing '/'
printf 'small\n' > "$W/small.txt"
noid cp "$W/small.txt" box:/tmp
noid cp "$W/small.txt" box:/root/
assert_eq small "$(noid exec box -- cat /tmp/small.txt)" "file into an existing guest dir"
assert_eq small "$(noid exec box -- cat /root/small.txt)" "file into guest dir/"
mkdir "$W/in"
noid cp box:/tmp/small.txt "$W/in"
noid cp box:/root/small.txt "$W/in/"
(cd "$W/in" && noid cp box:/root/big.bin .)
assert_eq small "$(cat "$W/in/small.txt")" "download into an existing local dir"
assert_eq "$want" "$(lsha "$W/in/big.bin")" "download into ."
# a file replaced, both ways
printf 'second version\n' > "$W/small.txt"
chmod 0600 "$W/small.txt"
noid cp "$W/small.txt" box:/tmp/small.txt
assert_eq "second version" "$(noid exec box -- cat /tmp/small.txt)" "upload replaces a guest file"
assert_eq 600 "$(gmode /tmp/small.txt)" "the replaced file takes the new mode"
noid cp box:/tmp/small.txt "$W/in/small.txt"
assert_eq "second version" "$(cat "$W/in/small.txt")" "download replaces a local file"
ok "into directories (existing, DST/, .), replacing files both ways"

# '-': stdin as SRC, stdout as DST
printf 'from stdin\n' | noid cp - box:/root/stdin.txt
assert_eq "from stdin" "$(noid exec box -- cat /root/stdin.txt)" "stdin upload"
head -c $((5 * 1024 * 1024 + 7)) /dev/urandom > "$W/pipe.bin"
cat "$W/pipe.bin" | noid cp - box:/root/pipe.bin
assert_eq "$(lsha "$W/pipe.bin")" "$(gsha /root/pipe.bin)" "5 MiB through a pipe (chunked upload)"
assert_eq "from stdin" "$(noid cp box:/root/stdin.txt -)" "download to stdout"
assert_eq "$want" "$(noid cp box:/root/big.bin - | sha256sum | cut -d' ' -f1)" \
    "64 MiB to stdout through a pipe"
ok "'-' both ways"

# names with spaces, UTF-8 and the bytes a URL treats specially
odd='sp ace é ü?#%25&+.txt'
printf 'odd name\n' > "$W/$odd"
noid cp "$W/$odd" "box:/root/$odd"
assert_eq "odd name" "$(noid exec box -- cat "/root/$odd")" "upload of an odd name: the guest file"
mkdir "$W/odd"
noid cp "box:/root/$odd" "$W/odd/"
assert_eq "odd name" "$(cat "$W/odd/$odd")" "download of an odd name"
noid exec box -- mkdir "/root/dir é ?#"
noid cp "$W/small.txt" "box:/root/dir é ?#/"
assert_eq "second version" "$(noid exec box -- cat "/root/dir é ?#/small.txt")" \
    "into a directory with an odd name"
ok "paths with spaces, UTF-8, ? # % & +"

# ---- trees ----

# A tree with every kind of entry -r keeps; mtimes set last, deepest first,
# so that making the tree does not move them.
"$PY" - "$W/tree" << 'EOF'
import os, sys
root = sys.argv[1]
os.makedirs(root)
def f(rel, data, mode):
    p = os.path.join(root, rel)
    with open(p, "wb") as fh:
        fh.write(data)
    os.chmod(p, mode)
os.makedirs(os.path.join(root, "private"))
os.makedirs(os.path.join(root, "shared"))
os.makedirs(os.path.join(root, "empty"))
os.makedirs(os.path.join(root, "deep/er/est"))
os.makedirs(os.path.join(root, "dir é ?#"))
f("run.sh", b"#!/bin/sh\necho hi\n", 0o755)
f("secret", b"key\n", 0o600)
f("private/notes", os.urandom(100000), 0o644)
f("deep/er/est/leaf", b"", 0o644)
f("dir é ?#/ü.txt", b"utf-8\n", 0o640)
os.symlink("../run.sh", os.path.join(root, "deep/rel-link"))
os.symlink("/etc/hostname", os.path.join(root, "abs-link"))
os.symlink("nowhere/at/all", os.path.join(root, "dangling"))
os.chmod(os.path.join(root, "private"), 0o700)
os.chmod(os.path.join(root, "shared"), 0o2775)
t = 1000000000  # 2001-09-09
for dirpath, dirs, files in os.walk(root, topdown=False):
    for n in dirs + files:
        t += 3600
        os.utime(os.path.join(dirpath, n), (t, t), follow_symlinks=False)
os.utime(root, (t + 60, t + 60))
EOF

# What -r must keep, entry by entry: path, type, mode, size of files, mtime
# to the second, link target.
walk() {
    "$PY" - "$1" << 'EOF'
import os, stat, sys
root = sys.argv[1]
def show(rel):
    p = os.path.join(root, rel)
    s = os.lstat(p)
    kind = "l" if stat.S_ISLNK(s.st_mode) else "d" if stat.S_ISDIR(s.st_mode) else "f"
    size = s.st_size if kind == "f" else "-"
    link = os.readlink(p) if kind == "l" else ""
    print(repr(rel), kind, oct(stat.S_IMODE(s.st_mode)), size, int(s.st_mtime), repr(link))
show(".")
for dirpath, dirs, files in os.walk(root):
    for n in sorted(dirs + files):
        show(os.path.relpath(os.path.join(dirpath, n), root))
EOF
}
walk "$W/tree" > "$T/tree.want"
[ "$(wc -l < "$T/tree.want")" -ge 16 ] || fail "the tree walk saw too little: $(cat "$T/tree.want")"

# up as a new name, back down as a new name
noid cp -r "$W/tree" box:/root/copy
noid cp -r box:/root/copy "$W/back"
walk "$W/back" > "$T/tree.got"
diff -u "$T/tree.want" "$T/tree.got" > "$T/tree.diff" || fail "tree round trip differs:
$(cat "$T/tree.diff")"
ls -A "$W" | grep -q noid-cp && fail "a temporary directory was left here: $(ls -A "$W")"
noid exec box -- ls -A /root | grep -q noid-cp && fail "a temporary directory was left in the guest"
ok "-r round trip as new names: types, modes, sizes, mtimes, link targets equal"

# the guest's own view of the upload
got=$(noid exec box -- stat -c '%a %Y' /root/copy/private /root/copy/shared /root/copy/secret)
assert_eq "$(stat -c '%a %Y' "$W/tree/private" "$W/tree/shared" "$W/tree/secret")" "$got" \
    "modes and mtimes in the guest (0700, setgid 2775, 0600)"
assert_eq /etc/hostname "$(noid exec box -- readlink /root/copy/abs-link)" "absolute link in the guest"
assert_eq "$(stat -c %Y "$W/tree/deep")" "$(noid exec box -- stat -c %Y /root/copy/deep)" \
    "a directory's mtime in the guest, after its entries were written"
assert_eq "$(stat -c %Y "$W/tree/dangling")" "$(noid exec box -- stat -c %Y /root/copy/dangling)" \
    "a symlink's own mtime in the guest"
noid exec box -- test -d /root/copy/empty || fail "the empty directory is missing in the guest"
ok "-r upload checked in the guest"

# into existing directories, both ways: the tree lands under its own name
noid exec box -- mkdir -p /tmp/into
noid cp -r "$W/tree" box:/tmp/into
noid exec box -- test -d /tmp/into/tree/private || fail "-r into an existing guest dir"
mkdir "$W/into"
noid cp -r box:/tmp/into/tree "$W/into/"
walk "$W/into/tree" > "$T/tree.got2"
diff -u "$T/tree.want" "$T/tree.got2" > "$T/tree.diff" || fail "tree via existing dirs differs:
$(cat "$T/tree.diff")"
ok "-r into existing directories both ways"

# The guest is not trusted: its set-user/group-ID files land here as plain
# executables, whoever copies them (root here), one by one or in a tree
noid exec box -- sh -c 'printf x > /root/suid && chmod 4755 /root/suid &&
    mkdir -p /root/st && printf y > /root/st/sgid && chmod 6750 /root/st/sgid'
noid cp box:/root/suid "$W/suid"
assert_eq 755 "$(stat -c %a "$W/suid")" "a setuid guest file downloaded"
noid cp -r box:/root/st "$W/st"
assert_eq 750 "$(stat -c %a "$W/st/sgid")" "a setuid+setgid guest file in a tree"
ok "set-user/group-ID bits of guest files are not carried here"

# ---- errors, as cp words them ----

expect_fail() { # what expected-message command...
    local what=$1 msg=$2 rc=0 out
    shift 2
    out=$("$@" 2>&1) || rc=$?
    assert_eq 1 "$rc" "$what: exit status"
    assert_contains "$out" "$msg" "$what: message"
}
expect_fail "missing local source" \
    "noid cp: cannot stat '$W/nope': No such file or directory" noid cp "$W/nope" box:/root/x
expect_fail "missing guest source" \
    "noid cp: cannot stat 'box:/root/nope': No such file or directory" noid cp box:/root/nope "$W/x"
[ -e "$W/x" ] && fail "a missing guest source created a local file"
expect_fail "local directory without -r" \
    "noid cp: -r not specified; omitting directory '$W/tree'" noid cp "$W/tree" box:/root/t
expect_fail "guest directory without -r" \
    "noid cp: -r not specified; omitting directory 'box:/root/copy'" noid cp box:/root/copy "$W/t"
expect_fail "directory over a guest file" \
    "cannot overwrite non-directory 'box:/root/big.bin' with directory" \
    noid cp -r "$W/tree" box:/root/big.bin
# refused from the request's headers: the message must come through
# whole, not a broken connection under a 64 MiB body still being sent
for _ in 1 2 3; do
    expect_fail "a big file into a missing guest directory" \
        "noid cp: cannot create regular file 'box:/nodir/big.bin': No such file or directory" \
        noid cp "$W/big.bin" box:/nodir/big.bin
done
expect_fail "tree into a missing guest directory" "No such file or directory" \
    noid cp -r "$W/tree" box:/nodir/tree
noid exec box -- ls -A / | grep -q noid-cp && fail "a temporary directory was left in the guest /"
expect_fail "a guest directory over a local file" "cannot overwrite non-directory" \
    noid cp -r box:/root/copy "$W/small.txt"

# another user's VM: bob's exists, alice cannot see it
http POST /v1/vms "$B" '{"name":"bobvm"}'
case "$HTTP_STATUS" in 20?) ;; *) fail "bob's VM: HTTP $HTTP_STATUS $HTTP_BODY" ;; esac
info_err=$(noid info bobvm 2>&1) && fail "alice sees bob's VM"
rc=0
out=$(noid cp bobvm:/etc/hostname "$W/h" 2>&1) || rc=$?
assert_eq 1 "$rc" "another user's VM: exit status"
assert_contains "$out" "bobvm" "another user's VM: message names it"
assert_contains "$out" "${info_err#noid: }" "another user's VM: not found, as for noid info"
[ -e "$W/h" ] && fail "a copy from another user's VM created a local file"
rc=0
noid cp "$W/small.txt" bobvm:/tmp/x 2> /dev/null || rc=$?
assert_eq 1 "$rc" "upload to another user's VM"
http GET /v1/vms/bobvm "$B"
assert_eq 200 "$HTTP_STATUS" "bob's VM is still there"
ok "cp-like errors, exit status 1; another user's VM is not found"

# ---- a failed download leaves nothing ----

# a local file system too small: the write fails part-way (a tmpfs: root)
if [ "$(id -u)" -eq 0 ]; then
    mkdir -p "$T/mnt"
    mount -t tmpfs -o size=1m tmpfs "$T/mnt"
    echo "old content" > "$T/mnt/big.bin"
    expect_fail "download onto a full file system" "cannot write" \
        noid cp box:/root/big.bin "$T/mnt/big.bin"
    assert_eq "old content" "$(cat "$T/mnt/big.bin")" "the old file survives a failed download"
    assert_eq "big.bin" "$(ls -A "$T/mnt")" "no temporary file after a failed download"
    umount "$T/mnt"
else
    log "not root: the full-file-system download is skipped"
fi

# interrupted: SIGINT as soon as the temporary file has bytes
noid cp box:/root/big.bin "$W/int.bin" &
pid=$!
for _ in $(seq 1 2000); do
    tmp=$(find "$W" -maxdepth 1 -name '.int.bin.noid-cp.*' -size +0 2> /dev/null | head -1)
    [ -n "$tmp" ] && break
    proc_alive "$pid" || break
    sleep 0.01
done
kill -INT "$pid" 2> /dev/null || true
rc=0
wait "$pid" || rc=$?
if [ "$rc" -eq 0 ]; then
    # it finished before the signal: then it must be whole
    assert_eq "$want" "$(lsha "$W/int.bin")" "a download that beat the signal is whole"
else
    assert_eq 130 "$rc" "interrupted download: exit status"
    [ -e "$W/int.bin" ] && fail "an interrupted download left $W/int.bin"
fi
ls -A "$W" | grep -q noid-cp && fail "an interrupted download left its temporary file"
ok "a failed or interrupted download leaves no partial file (old file kept)"

# ---- progress on a terminal ----

head -c $((16 * 1024 * 1024)) /dev/urandom > "$W/p16.bin"
in_tty() { script -qefc "$1" "$2" > /dev/null; }
in_tty "'$CLI_BIN' cp '$W/p16.bin' box:/root/p16.bin" "$T/tty.up"
in_tty "'$CLI_BIN' cp box:/root/p16.bin '$W/p16.down'" "$T/tty.down"
in_tty "'$CLI_BIN' cp -q '$W/p16.bin' box:/root/p16q.bin" "$T/tty.upq"
in_tty "'$CLI_BIN' cp -r '$W/tree' box:/root/treeq" "$T/tty.tree"
for f in up down; do
    text=$(tr '\r' '\n' < "$T/tty.$f")
    assert_contains "$text" "p16.bin  16.0 MiB / 16.0 MiB  100%" "progress line ($f)"
    assert_contains "$text" "/s" "progress rate ($f)"
done
assert_not_contains "$(cat "$T/tty.upq")" "MiB" "-q: no progress"
assert_not_contains "$(cat "$T/tty.tree")" "MiB" "no progress for a small tree"
assert_eq "$(lsha "$W/p16.bin")" "$(lsha "$W/p16.down")" "16 MiB through the terminal runs"
ok "progress line on a terminal; none with -q or for small copies"

it_done
