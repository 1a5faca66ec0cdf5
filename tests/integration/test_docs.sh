#!/usr/bin/env bash
# test_docs.sh — the docs say what the code does: every command in a marked
# block (```sh doc-test, see doc_commands.py) of the README, the user guide
# and the admin guide runs, in order, against a real server started the way
# the quick start starts it: `noid-server serve` with the embedded defaults
# (data in ~/.noid, listening on 0.0.0.0:7654, metrics on 127.0.0.1:7655),
# the golden snapshot, the default guest.  HOME is a fresh directory; the
# programs are the build's, on PATH as an installed noid's would be; the
# guest image is found through NOID_GUEST_DIR (the documented override).
# Each command must exit as the docs say (0, or the `exit status N` of its
# comment).
. "$(dirname "$0")/lib.sh"
it_setup
require_guest
REPO=$(cd "$IT_DIR/../.." && pwd)
export NOID_GUEST_DIR=$GUEST_DIR
mkdir -p "$T/bin"
ln -s "$SERVER_BIN" "$T/bin/noid-server"
ln -s "$CLI_BIN" "$T/bin/noid"
export PATH="$T/bin:$PATH"

# the fixed ports of the embedded defaults must be free (nothing else in
# the test suite uses them: every other test server asks for port 0)
for port in 7654 7655; do
    if (exec 3<> "/dev/tcp/127.0.0.1/$port") 2> /dev/null; then
        fail "port $port is in use: the docs test runs the server on its default ports"
    fi
done

# the runner can fail: a command that exits otherwise than documented, and
# a document without a marked block
printf '# x\n\n```sh doc-test\ntrue\nfalse   # exit status 0\n```\n' > "$T/bad.md"
/usr/bin/python3 "$IT_DIR/doc_commands.py" "$T/bad.md" > "$T/bad.sh"
rc=0; bash "$T/bad.sh" < /dev/null > "$T/bad.log" 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "doc-test runner passed a command that exits 1 where the docs say 0"
assert_contains "$(cat "$T/bad.log")" "bad.md:5: \`false   # exit status 0\` exited 1, the docs say 0" "the runner names the failing line"
printf '# x\n\n```sh\ntrue\n```\n' > "$T/none.md"
rc=0; /usr/bin/python3 "$IT_DIR/doc_commands.py" "$T/none.md" > /dev/null 2>&1 || rc=$?
assert_eq 2 "$rc" "a document without doc-test blocks is an error"
ok "the doc-test runner fails on a wrong exit status and on a document without marked blocks"

# the embedded defaults keep VM memory in /dev/shm/noid-<hash of ~/.noid>
IT_EXTRA_CLEANUP='rm -rf "/dev/shm/noid-$(printf "%s" "$HOME/.noid" | sha256sum | cut -c1-16)"'

# the quick start: a first user, the server on the defaults, the golden snapshot
TOKEN=$(noid-server add-user admin 2>> "$T/server.log")
noid-server serve > "$T/server.out" 2>> "$T/server.log" &
SERVER_PID=$!
for _ in $(seq 1 600); do
    grep -q '^noid-server listening on ' "$T/server.out" && break
    kill -0 "$SERVER_PID" 2> /dev/null || fail "the server exited during start"
    sleep 0.1
done
URL=http://127.0.0.1:7654
noid auth setup --url "$URL" --token "$TOKEN" > /dev/null
wait_golden "$TOKEN"

# the README's commands run in a copy of the repository (they use build/
# paths and copy docs/ into a VM), the guides' in an empty directory
mkdir -p "$T/repo/build/cli" "$T/work"
cp -r "$REPO/docs" "$T/repo/docs"
ln -s "$CLI_BIN" "$T/repo/build/cli/noid"
total=0
for doc in README.md:repo docs/user-guide.md:work docs/admin-guide.md:work; do
    file=${doc%%:*}
    /usr/bin/python3 "$IT_DIR/doc_commands.py" "$REPO/$file" > "$T/doc-commands.sh" ||
        fail "doc_commands.py $file failed"
    n=$(grep -c '^doc_rc=' "$T/doc-commands.sh")
    (cd "$T/${doc#*:}" && bash "$T/doc-commands.sh" < /dev/null > "$T/doc-test.log" 2>&1) || {
        tail -n 30 "$T/doc-test.log" >&2
        fail "$file: a documented command did not do what the docs say (above)"
    }
    ok "$file: $n documented commands ran as written"
    total=$((total + n))
done
log "$total commands in all"
it_done
