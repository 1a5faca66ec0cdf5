#!/usr/bin/env bash
# test_noidfs_fs.sh — VM/fs/ (issue 10): the guest's root file system in the
# server-side noidfs mount (noidfs_mount in server.toml), on the default
# path (embedded defaults, golden snapshot, default guest).  Every change
# made through the mount is checked inside the guest with `noid exec`
# (the REST API, not the mount), and what the guest made is read through
# the mount:
#   * ls and cat of the guest's files (also /proc's, which say they are
#     empty); a change the guest makes shows at the next open, also when
#     the size stays the same or the file grows
#   * cp in and out of a 16 MiB random file (sha256 in the guest and back)
#   * mkdir, rm, rm -r (300 files), mv of a file and of a directory whose
#     files the kernel has cached, chmod (+x runs in the guest), ln -s +
#     readlink, ln (hard link), touch and touch -d of an old date,
#     truncate, >> (O_APPEND), rename with RENAME_NOREPLACE / EXCHANGE
#   * mmap: a shared writable mapping reaches the guest, a mapping after the
#     guest changed the file sees the change
#   * an editor's save (temporary file renamed over the old one: python's
#     os.replace); a reader of the old file keeps reading it
#   * owners: a local account named like a noid user may do in its VM's fs/
#     what the guest's root may; other guest owners' modes hold
#   * a restore in place (through the mount, through the API): files open
#     across it fail with EIO, new opens see the restored files
#   * tar -x of a small tree (modes, symlinks, mtimes, a name with a space)
#   * rsync -a into fs/ and back out (the same tree; a second run sends
#     nothing, so sizes and mtimes are exact), rsync --delete
#   * git clone of a local repository into fs/, git status, a commit made
#     through the mount (the guest sees the new ref)
#   * the guest's errnos pass through: ENOENT, EEXIST, ENOTEMPTY, ENOSPC
#     (a 64 KiB tmpfs in the guest); EXDEV between VMs; EPERM for special
#     files; no fs/ on the client mount (REST binding)
#   * a stopped VM's fs/ (its VMM killed) and a destroyed VM's (a directory
#     still open) answer EIO, not a hang (bounded with timeout)
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
    echo "SKIP: needs root and /dev/fuse (FUSE mounts); CI runs as root" >&2
    exit 77
fi
command -v rsync > /dev/null || fail "rsync is missing (scripts/deps.sh installs it)"
command -v git > /dev/null || fail "git is missing (scripts/deps.sh installs it)"
it_setup
require_guest

PY=/usr/bin/python3
SM="$T/smnt" # the server-side mount
CM="$T/cm"   # a client mount (REST binding: no fs/)
LOCAL_USER=""

is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }

# Mounts go before it_cleanup removes $T (rm -rf inside a live mount would
# reach into the guest, inside a dead one it fails).
fs_cleanup() {
    local rc=$? m
    trap - ERR
    set +e
    is_mounted "$CM" && fusermount3 -u -z "$CM"
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2> /dev/null
        wait "$SERVER_PID" 2> /dev/null
        SERVER_PID=""
    fi
    for m in "$CM" "$SM"; do
        is_mounted "$m" && { fusermount3 -u -z "$m" 2> /dev/null || umount -l "$m"; }
    done
    [ -n "$LOCAL_USER" ] && userdel "$LOCAL_USER"
    (exit "$rc")
    it_cleanup
}
trap fs_cleanup EXIT

# A shell line run in the guest through the API (not the mount): stdout
gx() { noid exec "$1" -- sh -c "$2"; } # VM LINE
# The errno (or OK) of a python statement run with os imported and path p
py_errno() { # STATEMENT PATH [PATH2]
    "$PY" - "$@" << 'EOF'
import errno, os, sys
p = sys.argv[2]
p2 = sys.argv[3] if len(sys.argv) > 3 else None
try:
    exec(sys.argv[1])
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
EOF
}
# renameat2(a, b, flags) through libc: OK or the errno
rename2() { # FROM TO FLAGS
    "$PY" - "$@" << 'EOF'
import ctypes, errno, sys
libc = ctypes.CDLL(None, use_errno=True)
r = libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), int(sys.argv[3]))
print("OK" if r == 0 else errno.errorcode[ctypes.get_errno()])
EOF
}
# One line per entry below DIR: type, mode, size, mtime, sha256 of files,
# target of links.  The same script runs on the host and in the guest
# (busybox), so two trees compare as text.
TREE_SIG='cd "$1" && find . ! -name . | LC_ALL=C sort | while IFS= read -r p; do
  if [ -L "$p" ]; then echo "$p L $(readlink "$p")"
  elif [ -d "$p" ]; then echo "$p D $(stat -c "%a %Y" "$p")"
  else echo "$p F $(stat -c "%a %s %Y" "$p") $(sha256sum < "$p" | cut -c1-64)"; fi
done'
host_tree() { sh -c "$TREE_SIG" sh "$1"; }
guest_tree() { noid exec "$1" -- sh -c "$TREE_SIG" sh "$2"; } # VM DIR

write_config vm "noidfs_mount = \"$SM\""
start_as_users_do
is_mounted "$SM" || fail "the server did not mount noidfs at $SM"

V="$SM/alice/box"
F="$V/fs"
mkdir "$V"
assert_eq running "$(noid info box | awk '/^state:/ {print $2}')" "mkdir made VM box"

# ---- ls, cat ----
ls "$V" | grep -qxF fs || fail "no fs in the VM's directory: $(ls "$V" | tr '\n' ' ')"
[ -d "$F" ] || fail "$F is not a directory"
assert_eq "$(gx box 'ls -A / | sort' | tr '\n' ' ')" "$(ls -A "$F" | LC_ALL=C sort | tr '\n' ' ')" \
    "ls fs/ = ls -A / in the guest"
gx box 'printf "made in the guest\n" > /root/g.txt'
assert_eq "made in the guest" "$(cat "$F/root/g.txt")" "cat of a file the guest wrote"
assert_eq "$(gx box 'cat /proc/version')" "$(cat "$F/proc/version")" "cat of /proc/version (size 0)"
assert_eq "$(gx box 'cat /etc/hostname')" "$(cat "$F/etc/hostname")" "cat /etc/hostname"
ok "fs/ lists the guest's /; cat reads what the guest wrote, /proc files too"

# a change in the guest shows at the next open: same size (only the times
# tell), then grown (the cached size must not cut it short)
echo aaaa > "$F/root/chg.txt"
assert_eq aaaa "$(cat "$F/root/chg.txt")" "first read"
gx box 'printf "bbbb\n" > /root/chg.txt'
assert_eq bbbb "$(cat "$F/root/chg.txt")" "a same-size change in the guest"
gx box 'echo grown >> /root/chg.txt'
assert_eq "bbbb grown" "$(cat "$F/root/chg.txt" | tr '\n' ' ' | sed 's/ $//')" "growth in the guest"
ok "a file changed in the guest reads right at the next open (same size; grown)"

# ---- cp in and out: 16 MiB of random bytes ----
head -c 16M /dev/urandom > "$T/big.bin"
sum=$(sha256sum < "$T/big.bin" | cut -c1-64)
cp "$T/big.bin" "$F/root/big.bin"
assert_eq "$sum" "$(gx box 'sha256sum < /root/big.bin' | cut -c1-64)" "sha256 in the guest after cp in"
assert_eq 16777216 "$(stat -c %s "$F/root/big.bin")" "size through the mount"
cp "$F/root/big.bin" "$T/big.out"
assert_eq "$sum" "$(sha256sum < "$T/big.out" | cut -c1-64)" "sha256 after cp out"
gx box 'head -c 4194304 /dev/urandom > /root/guest.bin'
cp "$F/root/guest.bin" "$T/guest.out"
assert_eq "$(gx box 'sha256sum < /root/guest.bin' | cut -c1-64)" "$(sha256sum < "$T/guest.out" | cut -c1-64)" \
    "cp out of a file the guest made"
ok "cp of 16 MiB in (sha256 in the guest) and out, and of the guest's own 4 MiB file"

# ---- names ----
mkdir "$F/root/d1"
mkdir -p "$F/root/d1/a/b/c"
gx box 'test -d /root/d1/a/b/c' || fail "mkdir -p: no /root/d1/a/b/c in the guest"
echo data > "$F/root/d1/f"
rm "$F/root/d1/f"
gx box 'test ! -e /root/d1/f' || fail "rm: /root/d1/f still in the guest"
rmdir "$F/root/d1/a/b/c"
gx box 'test ! -e /root/d1/a/b/c && test -d /root/d1/a/b' || fail "rmdir: wrong in the guest"
for i in $(seq 1 300); do echo "$i" > "$F/root/d1/a/n$i"; done
assert_eq 300 "$(gx box 'ls /root/d1/a | grep -c "^n"')" "300 files made through the mount"
assert_eq 301 "$(ls "$F/root/d1/a" | wc -l)" "ls of 301 entries"
rm -r "$F/root/d1"
gx box 'test ! -e /root/d1' || fail "rm -r: /root/d1 still in the guest"
ok "mkdir, mkdir -p, rm, rmdir, 300 files, rm -r: as the guest sees it"

echo moved > "$F/root/m1"
mv "$F/root/m1" "$F/root/m2"
assert_eq moved "$(gx box 'cat /root/m2')" "mv of a file"
gx box 'test ! -e /root/m1' || fail "mv left /root/m1"
# a directory whose files the kernel knows (their inodes cached) moves with them
mkdir -p "$F/root/md/sub"
echo one > "$F/root/md/sub/f"
cat "$F/root/md/sub/f" > /dev/null
stat "$F/root/md/sub" > /dev/null
mv "$F/root/md" "$F/root/md2"
echo two >> "$F/root/md2/sub/f"
echo three > "$F/root/md2/sub/new"
assert_eq "one two" "$(gx box 'cat /root/md2/sub/f' | tr '\n' ' ' | sed 's/ $//')" "a file under a moved directory"
assert_eq three "$(gx box 'cat /root/md2/sub/new')" "a new file under a moved directory"
gx box 'test ! -e /root/md' || fail "mv of a directory left /root/md"
mkdir "$F/root/md"
echo fresh > "$F/root/md/x"
assert_eq fresh "$(gx box 'cat /root/md/x')" "a new directory at the old name"
ok "mv of a file, and of a directory whose files were cached: writes go to the new paths"

echo 'echo ran-$((6*7))' > "$F/root/s.sh"
chmod 755 "$F/root/s.sh"
assert_eq 755 "$(gx box 'stat -c %a /root/s.sh')" "chmod 755 in the guest"
assert_eq ran-42 "$(gx box '/root/s.sh')" "the guest runs the script made executable"
chmod 640 "$F/root/s.sh"
assert_eq "640 640" "$(gx box 'stat -c %a /root/s.sh') $(stat -c %a "$F/root/s.sh")" "chmod 640"
chown 12:34 "$F/root/s.sh"
assert_eq "12 34" "$(gx box 'stat -c "%u %g" /root/s.sh')" "chown 12:34 in the guest"
ok "chmod (+x runs in the guest), chown"

ln -s s.sh "$F/root/lnk"
ln -s /etc/hostname "$F/root/abslnk"
assert_eq s.sh "$(readlink "$F/root/lnk")" "readlink through the mount"
assert_eq "s.sh /etc/hostname" "$(gx box 'readlink /root/lnk; readlink /root/abslnk' | tr '\n' ' ' | sed 's/ $//')" \
    "ln -s in the guest (targets as given)"
assert_eq "$(cat "$F/root/s.sh")" "$(cat "$F/root/lnk")" "cat through a relative link"
gx box 'ln -s /root/g.txt /root/glnk'
assert_eq /root/g.txt "$(readlink "$F/root/glnk")" "readlink of the guest's link"
ln "$F/root/s.sh" "$F/root/hard"
assert_eq 2 "$(gx box 'stat -c %h /root/s.sh')" "ln: two links in the guest"
echo more >> "$F/root/hard"
assert_eq more "$(gx box 'tail -n 1 /root/s.sh')" "a write through the hard link"
ok "ln -s + readlink (both ways), ln (hard link)"

touch "$F/root/t1"
gx box 'test -f /root/t1 && test ! -s /root/t1' || fail "touch: no empty /root/t1 in the guest"
touch -d '2001-02-03 04:05:06 UTC' "$F/root/t1"
assert_eq 981173106 "$(gx box 'stat -c %Y /root/t1')" "touch -d 2001-02-03: mtime in the guest"
assert_eq 981173106 "$(stat -c %Y "$F/root/t1")" "mtime through the mount"
before=$(gx box 'date +%s')
touch "$F/root/t1"
[ "$(gx box 'stat -c %Y /root/t1')" -ge "$before" ] || fail "touch (now): mtime not moved to the guest's now"
touch -m -d '2002-01-01 00:00:00 UTC' "$F/root/t1"
assert_eq 1009843200 "$(gx box 'stat -c %Y /root/t1')" "touch -m (atime omitted)"
printf '0123456789' > "$F/root/tr"
truncate -s 4 "$F/root/tr"
assert_eq 0123 "$(gx box 'cat /root/tr')" "truncate -s 4"
truncate -s 8 "$F/root/tr"
assert_eq 8 "$(gx box 'stat -c %s /root/tr')" "truncate -s 8 (grown)"
echo first > "$F/root/ap"
echo second >> "$F/root/ap"
gx box 'echo third >> /root/ap'
echo fourth >> "$F/root/ap"
assert_eq "first second third fourth" "$(gx box 'cat /root/ap' | tr '\n' ' ' | sed 's/ $//')" ">> appends"
assert_eq "first second third fourth" "$(cat "$F/root/ap" | tr '\n' ' ' | sed 's/ $//')" ">> appends, read back"
ok "touch, touch -d (old date) and -m, truncate, >> (the guest appending too)"

echo A > "$F/root/xa"
echo B > "$F/root/xb"
assert_eq EEXIST "$(rename2 "$F/root/xa" "$F/root/xb" 1)" "RENAME_NOREPLACE onto an existing file"
assert_eq OK "$(rename2 "$F/root/xa" "$F/root/xb" 2)" "RENAME_EXCHANGE"
assert_eq "B A" "$(gx box 'cat /root/xa /root/xb' | tr '\n' ' ' | sed 's/ $//')" "exchanged in the guest"
assert_eq "B A" "$(cat "$F/root/xa" "$F/root/xb" | tr '\n' ' ' | sed 's/ $//')" "exchanged through the mount"
assert_eq OK "$(rename2 "$F/root/xa" "$F/root/xc" 1)" "RENAME_NOREPLACE to a free name"
gx box 'test ! -e /root/xa && test -f /root/xc' || fail "NOREPLACE rename not done in the guest"
ok "rename: RENAME_NOREPLACE refused with EEXIST, RENAME_EXCHANGE swaps"

# ---- mmap: a shared writable mapping reaches the guest; a mapping made
# after the guest changed the file shows the change ----
head -c 1000000 /dev/urandom > "$F/root/mm.bin"
"$PY" - "$F/root/mm.bin" << 'EOF'
import mmap, sys
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    m[4096:4101] = b"HELLO"
    m.flush()
    m.close()
EOF
assert_eq HELLO "$(gx box 'tail -c +4097 /root/mm.bin | head -c 5')" "a write through a shared mapping"
gx box 'printf GUEST >> /root/mm.bin'
out=$("$PY" - "$F/root/mm.bin" << 'EOF'
import mmap, sys
with open(sys.argv[1], "r+b") as f:
    m = mmap.mmap(f.fileno(), 0)
    print(len(m), m[-5:].decode())
EOF
)
assert_eq "1000005 GUEST" "$out" "a mapping after the guest appended"
ok "mmap: shared writable mappings reach the guest; a new mapping sees the guest's change"

# ---- an editor's save: write a temporary file, rename it over ----
printf 'version 1\n' > "$F/root/doc.txt"
out=$("$PY" - "$F/root/doc.txt" << 'EOF'
import os, sys
p = sys.argv[1]
old = open(p)
tmp = p + ".swp"
with open(tmp, "w") as f:
    f.write("version 2\n")
    f.flush()
    os.fsync(f.fileno())
os.replace(tmp, p)
print(old.read().strip(), "|", open(p).read().strip())
EOF
)
assert_eq "version 1 | version 2" "$out" "a reader of the old file, then the new one"
assert_eq "version 2" "$(gx box 'cat /root/doc.txt')" "the saved file in the guest"
gx box 'test ! -e /root/doc.txt.swp' || fail "the temporary file is left in the guest"
ok "editor save by rename (python os.replace): the guest has the new file; an open reader keeps the old"

# ---- tar -x ----
src="$T/src"
mkdir -p "$src/sub/deeper" "$src/empty dir"
echo one > "$src/a.txt"
head -c 300000 /dev/urandom > "$src/sub/b.bin"
printf '#!/bin/sh\necho tarred\n' > "$src/sub/run.sh"
echo spaced > "$src/with space.txt"
ln -s ../a.txt "$src/sub/rel-link"
ln -s /etc/hostname "$src/abs-link"
chmod 640 "$src/a.txt"
chmod 755 "$src/sub/run.sh"
chmod 750 "$src/sub"
chmod 700 "$src/empty dir"
touch -d '2003-04-05 06:07:08 UTC' "$src/a.txt" "$src/sub/b.bin" "$src/with space.txt"
touch -d '2004-01-01 00:00:00 UTC' "$src/sub/run.sh"
touch -h -d '2005-01-01 00:00:00 UTC' "$src/sub/rel-link"
touch -d '2002-02-02 00:00:00 UTC' "$src/sub/deeper" "$src/sub" "$src/empty dir"
tar -C "$src" -cf "$T/t.tar" .
mkdir "$F/root/tarx"
tar -C "$F/root/tarx" -xf "$T/t.tar"
want=$(host_tree "$src")
got=$(guest_tree box /root/tarx)
[ "$want" = "$got" ] || fail "tar -x: the guest's tree differs:
--- host
$want
--- guest
$got"
assert_eq tarred "$(gx box '/root/tarx/sub/run.sh')" "the extracted script runs in the guest"
ok "tar -x into fs/: modes, sizes, contents, mtimes, symlinks as in the archive (checked in the guest)"

# ---- rsync -a in and out ----
rsync -a "$src/" "$F/root/rs/"
got=$(guest_tree box /root/rs)
[ "$want" = "$got" ] || fail "rsync -a in: the guest's tree differs:
--- host
$want
--- guest
$got"
out=$(rsync -ai "$src/" "$F/root/rs/")
assert_eq "" "$out" "a second rsync -a in sends nothing (sizes, mtimes, modes exact)"
rsync -a "$F/root/rs/" "$T/back/"
assert_eq "$want" "$(host_tree "$T/back")" "rsync -a out: the same tree back"
rm "$src/with space.txt"
echo changed > "$src/a.txt"
touch -d '2006-06-06 06:06:06 UTC' "$src/a.txt"
rsync -a --delete "$src/" "$F/root/rs/"
want=$(host_tree "$src")
assert_eq "$want" "$(guest_tree box /root/rs)" "rsync -a --delete: the guest's tree follows"
ok "rsync -a into fs/ (the guest has the tree; a second run sends nothing), out (the same tree), --delete"

# ---- git clone ----
repo="$T/repo"
mkdir -p "$repo/lib"
git -C "$repo" init -q
git -C "$repo" config user.email t@example.invalid
git -C "$repo" config user.name test
echo 'print("hi")' > "$repo/main.py"
printf '#!/bin/sh\necho built\n' > "$repo/build.sh"
chmod 755 "$repo/build.sh"
echo 'int x;' > "$repo/lib/x.c"
ln -s lib/x.c "$repo/link.c"
git -C "$repo" add -A
git -C "$repo" commit -qm first
echo 'int y;' >> "$repo/lib/x.c"
git -C "$repo" commit -qam second
git clone -q "$repo" "$F/root/clone"
assert_eq "" "$(git -C "$F/root/clone" status --porcelain)" "git status of the clone: clean"
assert_eq 2 "$(git -C "$F/root/clone" rev-list --count HEAD)" "two commits"
assert_eq "$(cat "$repo/lib/x.c")" "$(gx box 'cat /root/clone/lib/x.c')" "a file of the clone in the guest"
assert_eq built "$(gx box 'cd /root/clone && ./build.sh')" "the clone's script runs in the guest"
assert_eq lib/x.c "$(gx box 'readlink /root/clone/link.c')" "the clone's symlink in the guest"
echo 'print("changed")' > "$F/root/clone/main.py"
assert_eq "M main.py" "$(git -C "$F/root/clone" status --porcelain | sed 's/^ *//')" "git sees the change"
git -C "$F/root/clone" -c user.email=t@example.invalid -c user.name=test commit -qam third
branch=$(git -C "$F/root/clone" symbolic-ref --short HEAD)
assert_eq "$(git -C "$F/root/clone" rev-parse HEAD)" "$(gx box "cat /root/clone/.git/refs/heads/$branch")" \
    "the commit's ref in the guest"
assert_eq "" "$(git -C "$F/root/clone" status --porcelain)" "clean after the commit"
ok "git clone into fs/: clean status, files/modes/links in the guest; a commit through the mount"

# ---- errnos ----
assert_eq ENOENT "$(py_errno 'open(p)' "$F/root/nosuch")" "open of a missing file"
assert_eq EEXIST "$(py_errno 'os.mkdir(p)' "$F/root/clone")" "mkdir of an existing directory"
assert_eq EEXIST "$(py_errno 'os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)' "$F/root/ap")" "O_EXCL"
assert_eq ENOTEMPTY "$(py_errno 'os.rmdir(p)' "$F/root/clone")" "rmdir of a non-empty directory"
assert_eq ENOTDIR "$(py_errno 'os.listdir(p)' "$F/root/ap")" "listdir of a file"
assert_eq EPERM "$(py_errno 'os.mkfifo(p)' "$F/root/fifo")" "mkfifo (no special files)"
gx box 'mkdir -p /mnt/tiny && mount -t tmpfs -o size=64k tmpfs /mnt/tiny'
assert_eq ENOSPC "$(py_errno 'f = open(p, "wb"); f.write(b"x" * 1048576); f.close()' "$F/mnt/tiny/full")" \
    "a write beyond a 64 KiB tmpfs in the guest"
mkdir "$SM/alice/other"
assert_eq EXDEV "$(py_errno 'os.rename(p, p2)' "$F/root/ap" "$SM/alice/other/fs/root/ap")" "rename to another VM"
ok "the guest's errnos: ENOENT, EEXIST (mkdir, O_EXCL), ENOTEMPTY, ENOTDIR, ENOSPC; EPERM mkfifo; EXDEV across VMs"

# ---- owners: a local account named like a noid user works in its VM's fs/
# as the guest's root may (the guest's 0 is shown as that account), and
# the guest's modes still hold for other owners ----
for i in $(seq 1 20); do
    LU="nfsf$(od -An -N3 -tu4 /dev/urandom | tr -d ' ')"
    getent passwd "$LU" > /dev/null || getent group "$LU" > /dev/null || break
done
useradd --no-create-home --shell /usr/sbin/nologin --user-group "$LU"
LOCAL_USER=$LU
add_user "$LU" > /dev/null
chmod 0711 "$T" # the account reaches $SM through the test dir
as_lu() { runuser -u "$LU" -- "$@"; }
for i in $(seq 1 50); do [ -d "$SM/$LU" ] && break; sleep 0.2; done
as_lu mkdir "$SM/$LU/own"
OF="$SM/$LU/own/fs"
assert_eq "$LU $LU 700" "$(stat -c '%U %G %a' "$OF/root")" "the guest's /root (root's, 0700) as the account sees it"
as_lu sh -c "echo mine > '$OF/root/mine'"
echo 'stat -c "%u %g %a" /root/mine; cat /root/mine' > "$SM/$LU/own/exec"
assert_eq "0 0 644 mine" "$(tr '\n' ' ' < "$SM/$LU/own/stdout" | sed 's/ $//')" \
    "a file the account wrote into the guest's /root: the guest root's"
echo 'echo s > /root/secret; chown 1234:1234 /root/secret; chmod 600 /root/secret' > "$SM/$LU/own/exec"
assert_eq "1234 1234" "$(stat -c '%u %g' "$OF/root/secret")" "another guest owner shown as its number"
rc=0
as_lu cat "$OF/root/secret" > /dev/null 2> "$T/err" || rc=$?
[ "$rc" -ne 0 ] || fail "$LU read a guest file of uid 1234, mode 0600"
assert_contains "$(cat "$T/err")" "Permission denied" "$LU: cat of another guest owner's 0600 file"
chown "$LU:$LU" "$OF/root/secret"
echo 'stat -c "%u %g" /root/secret' > "$SM/$LU/own/exec"
assert_eq "0 0" "$(cat "$SM/$LU/own/stdout")" "chown to the account: the guest's root"
assert_eq s "$(as_lu cat "$OF/root/secret")" "$LU reads it now"
rc=0
as_lu ls "$F" > /dev/null 2> "$T/err" || rc=$?
[ "$rc" -ne 0 ] || fail "$LU listed alice's VM's fs/"
ok "owners: the guest's root is the local account's (it writes /root), other owners keep their modes, chown maps back; alice's fs/ closed to it"

# ---- a restore in place: files open across it fail with EIO (the guest
# forgot them), new opens see the restored files ----
echo before > "$F/root/rst"
mkdir "$V/checkpoints/c1"
cid=$(json_get id < "$V/checkpoints/c1/info")
out=$("$PY" - "$F/root/rst" "$V/checkpoints/c1/restore" "$CLI_BIN" "$cid" << 'EOF'
import errno, os, subprocess, sys
p, restore, cli, cid = sys.argv[1:5]
def attempt(what, fn):
    try:
        fn()
        return what + ":OK"
    except OSError as e:
        return what + ":" + errno.errorcode[e.errno]
res = []
fd = os.open(p, os.O_RDWR)
os.pwrite(fd, b"after!\n", 0)
with open(restore, "w") as f:  # through the mount
    f.write("\n")
res.append(attempt("write", lambda: os.pwrite(fd, b"x", 0)))
os.close(fd)
res.append(open(p).read().strip())
fd = os.open(p, os.O_RDWR)
os.pwrite(fd, b"again!\n", 0)
subprocess.run([cli, "restore", "box", cid], check=True, stdout=subprocess.DEVNULL)  # the API
res.append(attempt("write", lambda: os.pwrite(fd, b"x", 0)))
os.close(fd)
print(" ".join(res))
EOF
)
assert_eq "write:EIO before write:EIO" "$out" "writes to files open across restores (mount, then API)"
assert_eq before "$(gx box 'cat /root/rst')" "the restored file in the guest"
assert_eq before "$(cat "$F/root/rst")" "the restored file through the mount"
ok "restore in place (through the mount, through the API): open files fail with EIO, new opens see the restored files"

# ---- a stopped VM, a destroyed one: EIO, not a hang ----
echo keep > "$SM/alice/other/fs/root/keep"
# names never looked up, so the kernel has to ask (nothing cached answers)
out=$(timeout 60 "$PY" - "$SM/alice/other/fs/root" "$T" << 'EOF'
import errno, glob, os, sys, time
d, t = sys.argv[1], sys.argv[2]
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
f = os.open(d + "/keep", os.O_WRONLY)
pid = int(open(glob.glob(t + "/data/storage/users/*/vms/other/qemu.pid")[0]).read())
os.kill(pid, 9)
def dead():
    try:
        return open("/proc/%d/stat" % pid).read().split()[2] in "ZX"
    except OSError:
        return True
while not dead():
    time.sleep(0.05)
res = []
for what, fn in [("listdir", lambda: os.listdir(fd)),
                 ("stat", lambda: os.stat("nosuch", dir_fd=fd)),
                 ("mkdir", lambda: os.mkdir("new", dir_fd=fd)),
                 ("write", lambda: os.pwrite(f, b"x", 0))]:
    try:
        fn()
        res.append(what + ":OK")
    except OSError as e:
        res.append(what + ":" + errno.errorcode[e.errno])
print(" ".join(res))
EOF
) || fail "operations on a stopped VM's fs/ did not end within 60 s (status $?)"
assert_eq "listdir:EIO stat:EIO mkdir:EIO write:EIO" "$out" "a stopped VM's fs/ through open descriptors"
rc=0
timeout 20 ls "$SM/alice/other/fs/root" > /dev/null 2> "$T/err" || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "ls of a stopped VM's fs/: status $rc (124: hung)"
assert_contains "$(cat "$T/err")" "Input/output error" "ls of a stopped VM's fs/"
ok "a stopped VM's fs/: EIO for listing, stat, mkdir, write, ls (no hang)"

mkdir "$SM/alice/gone"
echo x > "$SM/alice/gone/fs/root/x"
out=$(timeout 60 "$PY" - "$SM/alice/gone/fs/root" "$CLI_BIN" << 'EOF'
import errno, os, subprocess, sys
d, cli = sys.argv[1], sys.argv[2]
fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
subprocess.run([cli, "destroy", "gone"], check=True, stdout=subprocess.DEVNULL)
res = []
for what, fn in [("listdir", lambda: os.listdir(fd)),
                 ("stat", lambda: os.stat("nosuch", dir_fd=fd)),
                 ("create", lambda: os.open("y", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))]:
    try:
        fn()
        res.append(what + ":OK")
    except OSError as e:
        res.append(what + ":" + errno.errorcode[e.errno])
print(" ".join(res))
EOF
) || fail "operations on a destroyed VM's fs/ did not end within 60 s (status $?)"
assert_eq "listdir:EIO stat:EIO create:EIO" "$out" "a destroyed VM's fs/ through an open directory"
ok "a destroyed VM's fs/ (a directory still open): EIO"

# ---- the client mount (REST binding) has no fs/ ----
mkdir "$CM"
noid mount "$CM" > /dev/null
ls "$CM" | grep -qxF box || fail "box missing in the client mount"
! ls "$CM/box" | grep -qxF fs || fail "the client mount shows fs/"
assert_eq ENOENT "$(py_errno 'os.stat(p)' "$CM/box/fs")" "fs in the client mount"
noid umount "$CM"
ok "the client mount (REST binding) has no fs/"

rmdir "$V"
it_done
