#!/usr/bin/env bash
# test_files_api.sh — the REST files API (issue 10, docs/api.md "Files")
# on a real VM, on the default path (embedded defaults, golden snapshot,
# default guest).  Every result is checked inside the guest with exec.
#   * a 64 MiB random file PUT then GET, by sha256 on both sides and in the
#     guest; the same file as a chunked upload (no body limit); parallel
#     downloads; an empty file; /proc/version (stat says 0 bytes)
#   * Range: a-b, a-, -n -> 206 with the right bytes and Content-Range;
#     past the end -> 416 with "bytes */SIZE"; several ranges -> 200 whole
#   * HEAD headers for a file and a directory; GET on a FIFO -> 409
#   * listings: sorted, types (file, dir, symlink, fifo), modes, an empty
#     directory, a name that is not UTF-8 (name_b64)
#   * PUT ?parents=1, ?mode=0600 (stat in the guest), 201 then 200 on
#     replace (mode kept); a missing parent -> 404 before any byte of the
#     body is read; a directory -> 409
#   * paths with spaces, UTF-8 and "..": resolved in the guest only; a %00
#     or an over-long path -> 400, nothing written
#   * DELETE: file, symlink (not its target), empty dir -> 204; non-empty
#     -> 409; ?recursive=1 -> 204; missing -> 404
#   * POST mkdir (201, 409, parents=1 on an existing one -> 200, mode) and
#     rename (200, the entry of the new path); bad op / relative to -> 400
#   * another user's VM -> 404 for every method
#   * a full guest disk -> 507, the old content intact, no temporary file
#   * a client that aborts a PUT half way: the old content stays, the
#     temporary file goes
#   * a guest frozen under a download: cut after the engine's timeout
#   * the VM killed under a download: the client sees a cut body; then 409
#   * the server stopped under a download: cut, and the stop completes
. "$(dirname "$0")/lib.sh"
it_setup
require_guest

write_config vm
B=$(add_user bob)
start_as_users_do
noid create box > /dev/null
F="$URL/v1/vms/box/files"

# curl on the files API as alice: fcurl [curl args...] URL -> status in
# $S, body in $T/f.body, headers in $T/f.hdr
fcurl() {
    local out method=GET url= a b
    rm -f "$T/f.body" # curl writes no file for an empty body
    out=$(curl -s -o "$T/f.body" -D "$T/f.hdr" -w '%{http_code}\t%{content_type}' -H "Authorization: Bearer $A" "$@")
    S=${out%%$'\t'*}
    # what curl sent, for the OpenAPI check of lib.sh (http_record)
    for a in "$@"; do
        case "$a" in
        -T) [ "$method" = GET ] && method=PUT ;;
        -I | --head) method=HEAD ;;
        -d | --data | --data-binary) [ "$method" = GET ] && method=POST ;;
        http://*) url=$a ;;
        esac
    done
    for ((a = 1; a < $#; a++)); do
        [ "${!a}" = -X ] && { b=$((a + 1)); method=${!b}; }
    done
    # (bodies over 1 MiB are file contents, not JSON: not worth copying)
    if [ -n "$url" ] && [ "$(stat -c %s "$T/f.body" 2> /dev/null || echo 0)" -le 1048576 ]; then
        [ -f "$T/f.body" ] || : > "$T/f.body"
        http_record "$method" "${url#"$URL"}" "$S" "${out#*$'\t'}" "$T/f.body"
    fi
    return 0
}
body() { cat "$T/f.body"; }
hdr() { # NAME -> the value of a response header (last one), CR stripped
    tr -d '\r' < "$T/f.hdr" | awk -v n="$(tr 'A-Z' 'a-z' <<< "$1")" \
        'BEGIN { FS = ": " } tolower($1) == n { v = substr($0, length($1) + 3) } END { print v }'
}
gexec() { noid exec box -- sh -c "$1"; } # shell line in the guest -> stdout
jq_py() { /usr/bin/python3 -c "import json,sys; d=json.load(open('$T/f.body')); $1"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---- a 64 MiB file both ways ----
head -c $((64 * 1024 * 1024)) /dev/urandom > "$T/big"
want=$(sha "$T/big")
fcurl -T "$T/big" "$F/root/big.bin"
assert_eq 201 "$S" "PUT of a new 64 MiB file"
jq_py 'assert d["path"] == "/root/big.bin" and d["type"] == "file" and d["size"] == 64 << 20 and d["mode"] == "0644", d; assert d["mtime"].endswith("Z") and "." in d["mtime"], d'
assert_eq "$want" "$(gexec 'sha256sum /root/big.bin' | cut -d' ' -f1)" "sha256 of the upload in the guest"
fcurl "$F/root/big.bin"
assert_eq 200 "$S" "GET of the 64 MiB file"
assert_eq "$want" "$(sha "$T/f.body")" "sha256 of the download"
assert_eq $((64 * 1024 * 1024)) "$(hdr Content-Length)" "Content-Length"
assert_eq application/octet-stream "$(hdr Content-Type)" "Content-Type"
ok "64 MiB PUT (201) and GET: same sha256 on the client, the server's download and in the guest"

# the same bytes as a chunked body (no Content-Length, larger than the
# 16 MiB body limit of the other routes), replacing the file: 200
fcurl -H 'Transfer-Encoding: chunked' -T - "$F/root/big.bin" < "$T/big"
assert_eq 200 "$S" "chunked PUT replacing the file"
assert_eq "$want" "$(gexec 'sha256sum /root/big.bin' | cut -d' ' -f1)" "sha256 after the chunked upload"
pids=()
for i in 1 2 3; do
    curl -s -H "Authorization: Bearer $A" -o "$T/par$i" "$F/root/big.bin" &
    pids+=($!)
done
wait "${pids[@]}"
for i in 1 2 3; do assert_eq "$want" "$(sha "$T/par$i")" "parallel download $i"; done
fcurl -X PUT --data-binary '' "$F/root/empty"
assert_eq 201 "$S" "PUT of an empty file"
fcurl "$F/root/empty"
assert_eq "200 0" "$S $(stat -c %s "$T/f.body")" "GET of an empty file"
# a file whose stat says 0 bytes may hold more (/proc, /sys): all of it
fcurl "$F/proc/version"
assert_eq 200 "$S" "GET of /proc/version"
assert_eq "$(gexec 'cat /proc/version')" "$(body)" "/proc/version as the guest reads it"
ok "chunked 64 MiB PUT replaces (200); three parallel downloads; an empty file; /proc/version"

# ---- Range ----
fcurl -H 'Range: bytes=1000-1999' "$F/root/big.bin"
assert_eq 206 "$S" "Range a-b"
assert_eq "bytes 1000-1999/67108864" "$(hdr Content-Range)" "Content-Range a-b"
cmp -s "$T/f.body" <(tail -c +1001 "$T/big" | head -c 1000) || fail "bytes of the range a-b"
fcurl -H 'Range: bytes=67108000-' "$F/root/big.bin"
assert_eq "206 bytes 67108000-67108863/67108864 864" "$S $(hdr Content-Range) $(hdr Content-Length)" "Range a-"
cmp -s "$T/f.body" <(tail -c 864 "$T/big") || fail "bytes of the range a-"
fcurl -H 'Range: bytes=-70000' "$F/root/big.bin"
assert_eq "206 bytes 67038864-67108863/67108864" "$S $(hdr Content-Range)" "Range -n"
cmp -s "$T/f.body" <(tail -c 70000 "$T/big") || fail "bytes of the range -n"
fcurl -H 'Range: bytes=67108864-' "$F/root/big.bin"
assert_eq "416 bytes */67108864" "$S $(hdr Content-Range)" "Range past the end"
assert_contains "$(body)" '"error"' "416 body"
fcurl -H 'Range: bytes=0-1,10-20' "$F/root/big.bin"
assert_eq "200 67108864" "$S $(stat -c %s "$T/f.body")" "several ranges: the whole file"
fcurl -H 'Range: lines=1-2' "$F/root/big.bin"
assert_eq "200" "$S" "another unit: the whole file"
ok "Range a-b, a-, -n -> 206 with the right bytes; past the end -> 416 bytes */SIZE; multi-range ignored"

# ---- HEAD, types ----
gexec 'mkdir -p /srv/l/emptydir /srv/l/sub && printf 12345 > /srv/l/f && chmod 0640 /srv/l/f &&
       chmod 0711 /srv/l/sub && ln -s /srv/l/f /srv/l/link && mkfifo /srv/l/fifo &&
       touch -d "2020-01-02 03:04:05" /srv/l/f && touch "$(printf "/srv/l/bad\377name")"'
fcurl -I "$F/srv/l/f"
assert_eq "200 5 file 0640 bytes" "$S $(hdr Content-Length) $(hdr X-Noid-Type) $(hdr X-Noid-Mode) $(hdr Accept-Ranges)" "HEAD of a file"
assert_eq "Thu, 02 Jan 2020 03:04:05 GMT" "$(hdr Last-Modified)" "Last-Modified"
assert_eq 0 "$(curl -s -I -o /dev/null -w '%{size_download}' -H "Authorization: Bearer $A" "$F/srv/l/f")" "HEAD has no body"
fcurl -I "$F/srv/l"
assert_eq "200 dir 0755" "$S $(hdr X-Noid-Type) $(hdr X-Noid-Mode)" "HEAD of a directory"
# a HEAD answer carries no body bytes: the next answer on the same
# keep-alive connection starts clean
out=$(/usr/bin/python3 - "$URL" "$A" << 'EOF'
import http.client, sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
h = {"Authorization": "Bearer " + sys.argv[2]}
for _ in range(3):
    c.request("HEAD", "/v1/vms/box/files/srv/l", headers=h)
    r = c.getresponse()
    r.read()
    c.request("GET", "/v1/vms/box/files/srv/l/f", headers=h)
    r2 = c.getresponse()
    print(r.status, r2.status, r2.read().decode())
EOF
)
assert_eq "200 200 12345
200 200 12345
200 200 12345" "$out" "HEAD of a directory, then GET on the same connection"
fcurl "$F/srv/l/link"
assert_eq "200 12345 file" "$S $(body) $(hdr X-Noid-Type)" "GET follows a symlink"
fcurl "$F/srv/l/fifo"
assert_eq 409 "$S" "GET of a FIFO"
assert_contains "$(body)" "not a regular file or directory" "FIFO message"
fcurl "$F/no/such/file"
assert_eq 404 "$S" "GET of a missing path"
ok "HEAD of a file (size, type, mode, Last-Modified, no body) and a directory; symlinks followed; FIFO 409; missing 404"

# ---- listings ----
fcurl "$F/srv/l"
assert_eq 200 "$S" "listing"
jq_py '
names = [e["name"] for e in d]
assert names == sorted(names, key=lambda n: n.encode("utf-8", "surrogateescape")), names
by = {e["name"]: e for e in d}
assert by["f"]["type"] == "file" and by["f"]["size"] == 5 and by["f"]["mode"] == "0640", by["f"]
assert by["f"]["mtime"].startswith("2020-01-02T03:04:05."), by["f"]
assert by["sub"]["type"] == "dir" and by["sub"]["mode"] == "0711", by["sub"]
assert by["emptydir"]["type"] == "dir", by
assert by["link"]["type"] == "symlink", by["link"]
assert by["fifo"]["type"] == "fifo", by["fifo"]
bad = [e for e in d if "name_b64" in e]
import base64
assert len(bad) == 1 and base64.b64decode(bad[0]["name_b64"]) == b"bad\xffname", bad
assert all(set(e) >= {"name", "type", "size", "mode", "mtime"} for e in d), d
'
fcurl "$F/srv/l/emptydir"
assert_eq "200 []" "$S $(body)" "empty directory"
fcurl "$F/srv/l/"
assert_eq 200 "$S" "listing with a trailing slash"
fcurl "$F"
assert_eq 200 "$S" "the guest's root"
jq_py 'assert "etc" in [e["name"] for e in d]'
fcurl "$F/"
jq_py 'assert "etc" in [e["name"] for e in d]'
ok "listings: sorted, file/dir/symlink/fifo with modes and mtimes, [] for an empty dir, name_b64 for a non-UTF-8 name, /files and /files/ are /"

# ---- PUT options ----
fcurl -X PUT --data-binary 'deep' "$F/srv/p/a/b/c.txt"
assert_eq 404 "$S" "PUT without the parent"
assert_contains "$(body)" "parents=1" "the 404 says how"
fcurl -X PUT --data-binary 'deep' "$F/srv/p/a/b/c.txt?parents=1&mode=0600"
assert_eq 201 "$S" "PUT ?parents=1&mode=0600"
assert_eq "600 4 deep" "$(gexec 'stat -c "%a %s" /srv/p/a/b/c.txt; cat /srv/p/a/b/c.txt' | tr '\n' ' ' | sed 's/ $//')" "file made with parents and mode"
fcurl -X PUT --data-binary 'deeper' "$F/srv/p/a/b/c.txt"
assert_eq 200 "$S" "PUT replacing a file"
assert_eq "600 deeper" "$(gexec 'echo $(stat -c %a /srv/p/a/b/c.txt) $(cat /srv/p/a/b/c.txt)')" "a replacement keeps the mode"
fcurl -X PUT --data-binary 'x' "$F/srv/p/a/b/c.txt?mode=0755"
assert_eq "200 755" "$S $(gexec 'stat -c %a /srv/p/a/b/c.txt')" "an explicit mode on replace"
for bad in 'mode=0800' 'mode=10000' 'mode=' 'parents=2' 'recursive=1'; do
    fcurl -X PUT --data-binary 'x' "$F/srv/p/bad?$bad"
    assert_eq 400 "$S" "PUT ?$bad"
done
assert_eq no "$(gexec '[ -e /srv/p/bad ] && echo yes || echo no')" "a refused PUT wrote nothing"
fcurl -X PUT --data-binary 'x' "$F/srv/p/a"
assert_eq 409 "$S" "PUT on a directory"
# a missing parent is found before the body is read: no byte of a 64 MiB
# body goes out (curl waits for "100 Continue", which never comes)
S=$(curl -s -o "$T/f.body" -w '%{http_code} %{size_upload}' --expect100-timeout 120 \
    -H "Authorization: Bearer $A" -T "$T/big" "$F/srv/nowhere/big")
assert_eq "404 0" "$S" "early 404: status and body bytes sent"
ok "PUT: parents, mode (stat in the guest), 201 then 200 keeping the mode, bad options 400, a directory 409, a missing parent 404 before the body"

# ---- spaces, UTF-8, "..": guest paths, resolved in the guest ----
fcurl -X PUT --data-binary 'spaced' "$F/srv/with%20space/%C3%A9t%C3%A9%20%E2%9C%93.txt?parents=1"
assert_eq 201 "$S" "PUT with spaces and UTF-8"
assert_contains "$(body)" '"path":"/srv/with space/été ✓.txt"' "the answer's path"
assert_eq spaced "$(gexec 'cat "/srv/with space/été ✓.txt"')" "the guest has the file under its UTF-8 name"
fcurl "$F/srv/with%20space"
jq_py 'assert [e["name"] for e in d] == ["été ✓.txt"], d'
dd_name="noid-files-dotdot-$$"
[ ! -e "/tmp/$dd_name" ] || fail "/tmp/$dd_name exists on the host before the test"
gexec "mkdir -p /tmp/a && rm -f /tmp/$dd_name"
fcurl --path-as-is -X PUT --data-binary 'dotdot' "$F/tmp/a/../$dd_name"
assert_eq 201 "$S" "PUT /tmp/a/../NAME"
assert_contains "$(body)" "\"path\":\"/tmp/a/../$dd_name\"" "the path is passed as it is"
assert_eq dotdot "$(gexec "cat /tmp/$dd_name")" "the guest resolved .. itself"
[ ! -e "/tmp/$dd_name" ] || fail "a file named by the guest path appeared on the host"
[ -z "$(find "$T" /tmp -maxdepth 3 -name "$dd_name" 2> /dev/null)" ] || fail "the guest path named a host file"
fcurl --path-as-is "$F/tmp/a/../$dd_name"
assert_eq "200 dotdot" "$S $(body)" "GET through .."
fcurl -X PUT --data-binary 'nul' "$F/tmp/cut%00here"
assert_eq 400 "$S" "a %00 in the path"
assert_eq no "$(gexec '[ -e /tmp/cut ] && echo yes || echo no')" "a %00 path wrote nothing"
fcurl -X POST "$F/tmp/x?op=rename&to=/tmp/y%00z"
assert_eq 400 "$S" "a %00 in a query value"
fcurl -X DELETE "$URL/v1/vms/box%00junk"
assert_eq 400 "$S" "a %00 in a VM name"
fcurl "$URL/v1/vms/box"
assert_eq 200 "$S" "the VM named before the %00 is still there"
long=$(printf 'a%.0s' $(seq 1 4100))
fcurl "$F/$long"
assert_eq 400 "$S" "a path over 4095 bytes"
ok "spaces, UTF-8 and .. go to the guest as they are (nothing named on the host); %00 and over-long paths 400"

# ---- DELETE ----
gexec 'mkdir -p /srv/d/full/sub /srv/d/empty && echo 1 > /srv/d/full/sub/f && echo t > /srv/d/target &&
       ln -s /srv/d/target /srv/d/link && echo f > /srv/d/file'
fcurl -X DELETE "$F/srv/d/file"
assert_eq 204 "$S" "DELETE a file"
fcurl -X DELETE "$F/srv/d/link"
assert_eq 204 "$S" "DELETE a symlink"
assert_eq "gone t" "$(gexec '[ -e /srv/d/file ] || [ -L /srv/d/link ] || printf gone; echo " $(cat /srv/d/target)"')" "the symlink went, its target stayed"
fcurl -X DELETE "$F/srv/d/empty"
assert_eq 204 "$S" "DELETE an empty directory"
fcurl -X DELETE "$F/srv/d/full"
assert_eq 409 "$S" "DELETE a non-empty directory"
assert_contains "$(body)" "recursive=1" "the 409 says how"
assert_eq 1 "$(gexec 'cat /srv/d/full/sub/f')" "nothing removed by the 409"
fcurl -X DELETE "$F/srv/d/full?recursive=1"
assert_eq 204 "$S" "DELETE ?recursive=1"
# a tree 1,500 levels deep (a path of about 3,000 bytes): one level of the
# server's walk per level of the tree must not run its thread out of stack
gexec 'p=/srv/deep; i=0; while [ $i -lt 1500 ]; do p=$p/a; i=$((i+1)); done; mkdir -p $p && touch $p/f'
fcurl -X DELETE "$F/srv/deep?recursive=1"
assert_eq 204 "$S" "DELETE ?recursive=1 of a tree 1,500 levels deep"
assert_eq gone "$(gexec '[ -e /srv/deep ] && echo there || echo gone')" "the deep tree is gone"
assert_eq "target" "$(gexec 'ls /srv/d')" "what is left"
fcurl -X DELETE "$F/srv/d/full"
assert_eq 404 "$S" "DELETE a missing path"
for root in "/" "//" "/./.." "/..//."; do
    fcurl --path-as-is -X DELETE "$F$root?recursive=1"
    assert_eq 400 "$S" "DELETE ?recursive=1 of the root as '$root'"
done
assert_contains "$(gexec 'ls /')" "etc" "the root is intact"
ok "DELETE: file, symlink (not its target), empty dir 204; non-empty 409; recursive 204; missing 404; / and its aliases refused"

# ---- POST mkdir, rename ----
fcurl -X POST "$F/srv/m/one?op=mkdir"
assert_eq 404 "$S" "mkdir without the parent"
fcurl -X POST "$F/srv/m?op=mkdir&mode=0750"
assert_eq 201 "$S" "mkdir"
jq_py 'assert d["path"] == "/srv/m" and d["type"] == "dir" and d["mode"] == "0750", d'
fcurl -X POST "$F/srv/m?op=mkdir"
assert_eq 409 "$S" "mkdir of an existing directory"
fcurl -X POST "$F/srv/m?op=mkdir&parents=1"
assert_eq 200 "$S" "mkdir ?parents=1 of an existing directory"
fcurl -X POST "$F/srv/m/x/y/z?op=mkdir&parents=1"
assert_eq 201 "$S" "mkdir ?parents=1"
fcurl -X POST "$F/srv/l/f?op=mkdir&parents=1"
assert_eq 409 "$S" "mkdir ?parents=1 on a file"
assert_eq "750 dir" "$(gexec 'stat -c %a /srv/m; [ -d /srv/m/x/y/z ] && echo dir' | tr '\n' ' ' | sed 's/ $//')" "mkdir in the guest"
fcurl -X POST "$F/srv/m/x?op=rename&to=/srv/m/renamed"
assert_eq 200 "$S" "rename"
jq_py 'assert d["path"] == "/srv/m/renamed" and d["type"] == "dir", d'
assert_eq "renamed" "$(gexec 'ls /srv/m')" "rename in the guest"
fcurl -X POST "$F/srv/m/renamed?op=rename&to=relative"
assert_eq 400 "$S" "rename to a relative path"
fcurl -X POST "$F/srv/m/renamed?op=rename"
assert_eq 400 "$S" "rename without to"
fcurl -X POST "$F/srv/m/renamed?op=chmod"
assert_eq 400 "$S" "unknown op"
assert_contains "$(body)" "mkdir" "the 400 names the ops"
fcurl -X POST "$F/srv/m/renamed"
assert_eq 400 "$S" "no op"
fcurl -X POST "$F/srv/m/nothere?op=rename&to=/srv/m/x"
assert_eq 404 "$S" "rename of a missing path"
ok "POST mkdir (201, 409, parents 200/201, mode) and rename (200 + new entry); bad or missing op and relative to 400"

# ---- another user's VM ----
for m in GET HEAD DELETE POST PUT; do
    args=(-X "$m")
    q=""
    [ "$m" = HEAD ] && args=(-I)
    [ "$m" = PUT ] && args+=(--data-binary x)
    [ "$m" = POST ] && q="?op=mkdir"
    S=$(curl -s -o "$T/f.body" -w '%{http_code}' -H "Authorization: Bearer $B" "${args[@]}" "$F/etc/hostname$q")
    assert_eq 404 "$S" "bob's $m on alice's VM"
done
S=$(curl -s -o /dev/null -w '%{http_code}' "$F/etc/hostname")
assert_eq 401 "$S" "no token"
fcurl "$URL/v1/vms/nosuchvm/files/etc/hostname"
assert_eq 404 "$S" "no such VM"
assert_eq noid "$(gexec 'cat /etc/hostname')" "alice's file untouched"
ok "another user's VM is 404 for every method; no token 401; no such VM 404"

# ---- a full guest disk ----
gexec 'mkdir -p /mnt/small && mount -t tmpfs -o size=1m tmpfs /mnt/small && echo old-content > /mnt/small/target'
head -c $((4 * 1024 * 1024)) /dev/urandom > "$T/four"
fcurl -T "$T/four" "$F/mnt/small/target"
assert_eq 507 "$S" "PUT over a full disk"
assert_contains "$(body)" "/mnt/small/target" "the 507 names the path"
assert_eq "old-content|target" "$(gexec 'cat /mnt/small/target; ls -A /mnt/small' | tr '\n' '|' | sed 's/|$//')" "old content kept, no temporary file"
fcurl -T "$T/four" "$F/mnt/small/new"
assert_eq 507 "$S" "PUT of a new file over a full disk"
assert_eq "target" "$(gexec 'ls -A /mnt/small')" "no partial new file"
fcurl -X PUT --data-binary 'fits' "$F/mnt/small/target"
assert_eq "200 fits" "$S $(gexec 'cat /mnt/small/target')" "a PUT that fits still works"
ok "full guest disk: 507, the old content intact, nothing left behind"

# ---- a client that aborts a PUT half way ----
gexec 'echo old > /root/abort'
/usr/bin/python3 - "$URL" "$A" /v1/vms/box/files/root/abort > "$T/abort.out" << 'EOF' &
import http.client, os, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port)
c.putrequest("PUT", sys.argv[3])
c.putheader("Authorization", "Bearer " + sys.argv[2])
c.putheader("Content-Length", str(16 << 20))
c.endheaders()
chunk = os.urandom(1 << 16)
for _ in range(128):  # 8 of the 16 MiB announced
    c.send(chunk)
print("half sent", flush=True)
time.sleep(3600)
EOF
abort_pid=$!
for _ in $(seq 600); do grep -q 'half sent' "$T/abort.out" && break; sleep 0.1; done
grep -q 'half sent' "$T/abort.out" || fail "the aborting client did not send its half"
# the upload is under way in the guest: its temporary file is there
for _ in $(seq 300); do
    [ -n "$(gexec 'ls -A /root | grep "^\.abort\." || true')" ] && break
    sleep 0.1
done
[ -n "$(gexec 'ls -A /root | grep "^\.abort\." || true')" ] || fail "no temporary file while the upload runs"
kill "$abort_pid"
wait "$abort_pid" 2> /dev/null || true
for _ in $(seq 300); do
    [ -z "$(gexec 'ls -A /root | grep "^\.abort\." || true')" ] && break
    sleep 0.1
done
assert_eq "old" "$(gexec 'cat /root/abort')" "the aborted PUT left the old content"
assert_eq "" "$(gexec 'ls -A /root | grep "^\.abort\." || true')" "the aborted PUT left no temporary file"
fcurl "$F/etc/hostname"
assert_eq 200 "$S" "the server still serves"
ok "a PUT aborted half way: old content kept, temporary file removed"

# ---- a guest that stops answering under a download ----
# The client takes 1 MiB, the VM is frozen (SIGSTOP), then the client reads
# on: it gets what the server had buffered, then the server waits for the
# guest with the connection suspended until ENGINE_FILE_TIMEOUT_MS, and
# cuts the download (instead of holding it for ever).
uid=$(q "select id from users where name='alice'")
qpid=$(q "select pid from vms where user_id='$uid' and name='box'")
/usr/bin/python3 - "$URL" "$A" /v1/vms/box/files/root/big.bin "$T/frozen" > "$T/stall.out" << 'EOF' &
import http.client, os, sys, time, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
c.request("GET", sys.argv[3], headers={"Authorization": "Bearer " + sys.argv[2]})
r = c.getresponse()
got = len(r.read(1 << 20))
print("started", flush=True)
while not os.path.exists(sys.argv[4]):
    time.sleep(0.05)
try:
    while True:
        b = r.read1(1 << 16)
        if not b:
            break
        got += len(b)
    print("complete" if got == int(r.getheader("Content-Length")) else "short", got, flush=True)
except http.client.IncompleteRead as e:
    print("short", got + len(e.partial), flush=True)
except (ConnectionError, OSError) as e:
    print("short", got, type(e).__name__, flush=True)
EOF
stall_pid=$!
for _ in $(seq 600); do grep -q started "$T/stall.out" && break; sleep 0.1; done
grep -q started "$T/stall.out" || fail "the download did not start"
kill -STOP "$qpid"
touch "$T/frozen"
wait "$stall_pid" || true
kill -CONT "$qpid"
assert_contains "$(cat "$T/stall.out")" "short" "a download from a frozen guest is cut"
grep -q "download of /root/big.bin cut: the guest sent nothing in time" "$T/server.log" ||
    fail "the server log does not say why the download was cut"
fcurl "$F/etc/hostname"
assert_eq "200 noid" "$S $(body)" "the guest serves again once it runs"
ok "a guest frozen under a download: cut after the engine's timeout, not held for ever; served again after"

# ---- the VM dies under a download ----
curl -s -H "Authorization: Bearer $A" --limit-rate 1M -o "$T/cut" "$F/root/big.bin" &
dl_pid=$!
for _ in $(seq 300); do [ -s "$T/cut" ] && break; sleep 0.1; done
[ -s "$T/cut" ] || fail "the slow download did not start"
kill -9 "$qpid"
rc=0
wait "$dl_pid" || rc=$?
assert_eq 18 "$rc" "curl's exit for a body cut short (partial file)"
[ "$(stat -c %s "$T/cut")" -lt $((64 * 1024 * 1024)) ] || fail "the cut download is whole"
fcurl "$F/etc/hostname"
assert_eq 409 "$S" "files of a VM that is not running"
ok "the VM killed under a download: the client sees a cut body (curl 18); then 409"

# ---- the server stops under a download ----
noid create box2 > /dev/null
fcurl -T "$T/big" "$URL/v1/vms/box2/files/root/big.bin"
assert_eq 201 "$S" "PUT on a second VM"
curl -s -H "Authorization: Bearer $A" --limit-rate 1M -o "$T/stopcut" "$URL/v1/vms/box2/files/root/big.bin" &
dl_pid=$!
for _ in $(seq 300); do [ -s "$T/stopcut" ] && break; sleep 0.1; done
[ -s "$T/stopcut" ] || fail "the slow download did not start"
stop_server || fail "the server did not stop cleanly under a download"
rc=0
wait "$dl_pid" || rc=$?
assert_eq 18 "$rc" "curl's exit for the download the stop cut"
grep -q "download of /root/big.bin cut: the server is stopping" "$T/server.log" ||
    fail "the server log does not say the stop cut the download"
ok "the server stops under a running download: the download is cut, the stop completes"

it_done
