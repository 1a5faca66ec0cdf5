#!/usr/bin/env bash
# test_foundation.sh — issue 2 end to end: config errors, user management,
# the unauthenticated and authenticated meta endpoints, auth failures and
# rate limiting, HTTP error shapes, the access log, graceful shutdown, and the
# CLI's login and error messages.  No VM is booted here.
. "$(dirname "$0")/lib.sh"
it_setup

# ---- config errors: one line naming file:line, exit 2 ----
write_config novm
echo 'bogus_key = 1' >> "$T/server.toml"
rc=0; out=$("$SERVER_BIN" serve --config "$T/server.toml" 2>&1) || rc=$?
assert_eq 2 "$rc" "unknown key exit status"
assert_contains "$out" "server.toml:6: unknown key 'bogus_key'" "unknown key message"
assert_eq 1 "$(printf '%s\n' "$out" | wc -l)" "one line"
printf 'rootfs = "/x"\n' > "$T/bad.toml"
rc=0; out=$("$SERVER_BIN" serve --config "$T/bad.toml" 2>&1) || rc=$?
assert_eq 2 "$rc" "missing kernel exit status"
assert_contains "$out" "bad.toml:1: missing required key 'kernel'" "missing kernel message"
printf 'kernel = "/k"\nrootfs = "/r"\nexec_timeout_secs = "soon"\n' > "$T/bad.toml"
rc=0; out=$("$SERVER_BIN" serve --config "$T/bad.toml" 2>&1) || rc=$?
assert_eq 2 "$rc" "bad value exit status"
assert_contains "$out" "bad.toml:3: exec_timeout_secs: expected an integer" "bad value message"
printf 'kernel = "/nonexistent/vmlinux"\nrootfs = "/r"\n' > "$T/bad.toml"
rc=0; out=$("$SERVER_BIN" serve --config "$T/bad.toml" 2>&1) || rc=$?
assert_eq 2 "$rc" "missing kernel file exit status"
assert_contains "$out" "bad.toml:1: kernel /nonexistent/vmlinux: No such file or directory" "kernel file"
ok "config errors name file:line and exit 2"

# ---- users ----
write_config novm
TOKEN=$(add_user alice)
[[ "$TOKEN" =~ ^noid_tok_[0-9a-f]{64}$ ]] || fail "token format: $TOKEN"
rc=0; out=$("$SERVER_BIN" add-user alice --config "$T/server.toml" 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "duplicate add-user succeeded"
assert_contains "$out" "user 'alice' already exists" "duplicate user"
rc=0; out=$("$SERVER_BIN" rotate-token nobody --config "$T/server.toml" 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "rotate-token of unknown user succeeded"
assert_contains "$out" "no user named 'nobody'" "unknown user"
rc=0; out=$("$SERVER_BIN" add-user 'Bad/Name' --config "$T/server.toml" 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "invalid user name accepted"
BOB=$(add_user bob)
list=$("$SERVER_BIN" list-users --config "$T/server.toml")
assert_contains "$list" "alice" "list-users shows alice"
assert_contains "$list" "bob" "list-users shows bob"
[[ "$(printf '%s\n' "$list" | sed -n 2p)" =~ ^[0-9a-f]{16}\ +alice\ +[0-9]{4}-[0-9]{2}-[0-9]{2}T ]] || fail "list-users row: $list"
# only hashes at rest
sqlite3 "$T/data/noid.db" 'select token_hash from users' | grep -q "${TOKEN#noid_tok_}" && fail "token stored in clear"
ok "add-user, list-users, duplicates, unknown users; only hashes stored"

# ---- server ----
start_server
http GET /healthz
assert_eq 200 "$HTTP_STATUS" "healthz"
assert_eq '{"status":"ok"}' "$HTTP_BODY" "healthz body"
http GET /version
assert_eq 200 "$HTTP_STATUS" "version"
assert_contains "$HTTP_BODY" '"api_version":1' "version body"
http GET /v1/whoami "$TOKEN"
assert_eq 200 "$HTTP_STATUS" "whoami"
assert_contains "$HTTP_BODY" '"name":"alice"' "whoami name"
assert_contains "$HTTP_BODY" '"user_id":"' "whoami id"
http GET /v1/capabilities "$TOKEN"
assert_eq 200 "$HTTP_STATUS" "capabilities"
for f in api_version max_exec_output_bytes exec_timeout_secs console_timeout_secs max_vm_name_length default_cpus default_mem_mib; do
    assert_contains "$HTTP_BODY" "\"$f\":" "capabilities field $f"
done
ok "healthz, version, whoami, capabilities"

http GET /v1/whoami
assert_eq 401 "$HTTP_STATUS" "no token"
assert_contains "$HTTP_BODY" '"error":' "401 body"
http GET /v1/whoami "noid_tok_$(printf '0%.0s' $(seq 64))"
assert_eq 401 "$HTTP_STATUS" "bad token"
http GET /v1/no-such-thing "$TOKEN"
assert_eq 404 "$HTTP_STATUS" "unknown route"
assert_contains "$HTTP_BODY" '"error":"no such endpoint' "404 body"
http GET /v1/no-such-thing
assert_eq 401 "$HTTP_STATUS" "unknown route without auth is 401, not 404"
http GET /nothing
assert_eq 404 "$HTTP_STATUS" "unknown unauthenticated route"
http PUT /v1/vms "$TOKEN"
assert_eq 405 "$HTTP_STATUS" "wrong method"
allow=$(curl -s -o /dev/null -D - -X PUT -H "Authorization: Bearer $TOKEN" "$URL/v1/vms" | tr -d '\r' | sed -n 's/^Allow: //p')
assert_eq "POST, GET" "$allow" "Allow header"
http POST /v1/vms "$TOKEN" '{"name": '
assert_eq 400 "$HTTP_STATUS" "malformed JSON"
assert_contains "$HTTP_BODY" 'malformed JSON' "400 body"
head -c $((17 * 1024 * 1024)) /dev/zero > "$T/big"
status=$(curl -s -o "$T/http.body" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" --data-binary @"$T/big" "$URL/v1/vms")
assert_eq 413 "$status" "oversized body"
assert_contains "$(cat "$T/http.body")" 'larger than' "413 body"
ok "401, 404, 405 (+Allow), 400, 413 with JSON error bodies"

# ---- rate limiting: 10 failures under one prefix -> 429 for that prefix only ----
prefix=$(printf 'f%.0s' $(seq 16))
for i in $(seq 1 10); do
    http GET /v1/whoami "noid_tok_${prefix}$(printf '%048d' "$i")"
    assert_eq 401 "$HTTP_STATUS" "failure $i"
done
http GET /v1/whoami "noid_tok_${prefix}$(printf '%048d' 99)"
assert_eq 429 "$HTTP_STATUS" "11th failure under the prefix"
assert_contains "$HTTP_BODY" "too many failed authentication attempts" "429 body"
retry=$(curl -s -o /dev/null -D - -H "Authorization: Bearer noid_tok_${prefix}$(printf '%048d' 5)" "$URL/v1/whoami" | tr -d '\r' | sed -n 's/^Retry-After: //p')
[ -n "$retry" ] && [ "$retry" -gt 0 ] && [ "$retry" -le 60 ] || fail "Retry-After: '$retry'"
http GET /v1/whoami "$TOKEN"
assert_eq 200 "$HTTP_STATUS" "good token still works while another prefix is blocked"
ok "429 after 10 failures for that prefix; good token unaffected"

# ---- CLI ----
rc=0; out=$(noid whoami 2>&1) || rc=$?
assert_eq 1 "$rc" "whoami before login"
assert_contains "$out" "noid auth setup" "not logged in advice"
out=$(noid auth setup --url "$URL" --token "$TOKEN")
assert_contains "$out" "as alice" "auth setup"
assert_eq 600 "$(stat -c %a "$HOME/.noid/config.toml")" "config mode"
assert_contains "$(noid whoami)" "alice" "cli whoami"
cur=$(noid current)
assert_contains "$cur" "$URL" "current url"
assert_contains "$cur" "(none" "current vm"
rc=0; out=$(noid use ghost 2>&1) || rc=$?
assert_eq 1 "$rc" "use of a missing VM"
assert_contains "$out" "no VM named 'ghost'" "use message"
[ ! -e .noid-vm ] || fail ".noid-vm written for a missing VM"
rc=0; out=$(noid use '../x' 2>&1) || rc=$?
assert_eq 2 "$rc" "use with an invalid name"
rc=0; out=$(noid auth setup --url "$URL" --token "noid_tok_$(printf '1%.0s' $(seq 64))" 2>&1) || rc=$?
assert_eq 1 "$rc" "auth setup with a bad token"
assert_contains "$out" "invalid or revoked token" "bad token message"
assert_contains "$(noid whoami)" "alice" "failed setup left the saved login alone"
rc=0; out=$(noid auth setup --url "http://127.0.0.1:1" --token "$TOKEN" 2>&1) || rc=$?
assert_eq 1 "$rc" "connection refused"
assert_contains "$out" "cannot connect to http://127.0.0.1:1" "refused names the URL"
assert_contains "$out" "Connection refused" "refused reason"
rc=0; out=$(NOID_TOKEN="noid_tok_${prefix}$(printf '%048d' 7)" noid whoami 2>&1) || rc=$?
assert_eq 1 "$rc" "blocked prefix via CLI"
assert_contains "$out" "Wait before trying again" "429 advice"
for cmd in auth whoami current use create list info destroy exec; do
    noid "$cmd" --help > "$T/help.txt" || fail "noid $cmd --help failed"
    assert_contains "$(cat "$T/help.txt")" "Usage: noid" "help of $cmd"
done
assert_contains "$(noid --version)" "noid " "cli version"
for cmd in serve add-user list-users rotate-token remove-user; do
    "$SERVER_BIN" "$cmd" --help | grep -q "Usage: noid-server $cmd" || fail "noid-server $cmd --help"
done
ok "CLI: auth setup, whoami, current, use, errors, --help everywhere"

# system proxies are ignored unless asked for
HTTP_PROXY=http://127.0.0.1:1 http_proxy=http://127.0.0.1:1 noid whoami > /dev/null || fail "proxy not ignored"
rc=0; NOID_USE_SYSTEM_PROXY=1 HTTP_PROXY=http://127.0.0.1:1 http_proxy=http://127.0.0.1:1 noid whoami > /dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "NOID_USE_SYSTEM_PROXY=1 did not use the proxy"
ok "HTTP_PROXY ignored unless NOID_USE_SYSTEM_PROXY=1"

# an incompatible server (another API version) is named as such
python3 - "$T/fake.port" <<'PY' &
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == "/version":
            body = json.dumps({"version": "0.0.1", "api_version": 0}).encode(); code = 200
        else:
            body = json.dumps({"error": "no such endpoint: GET " + self.path}).encode(); code = 404
        self.send_response(code); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
s = http.server.HTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()
PY
FAKE_PID=$!
for i in $(seq 50); do [ -s "$T/fake.port" ] && break; sleep 0.1; done
rc=0; out=$(noid auth setup --url "http://127.0.0.1:$(cat "$T/fake.port")" --token "$TOKEN" 2>&1) || rc=$?
kill "$FAKE_PID" 2>/dev/null || true
assert_eq 1 "$rc" "old server"
assert_contains "$out" "speaks API version 0, this client needs 1" "api version mismatch message"
ok "server too old is reported as an API version mismatch"

# ---- rotate-token, remove-user ----
NEW=$("$SERVER_BIN" rotate-token alice --config "$T/server.toml")
[ "$NEW" != "$TOKEN" ] || fail "rotate-token returned the same token"
http GET /v1/whoami "$TOKEN"
assert_eq 401 "$HTTP_STATUS" "old token after rotate"
http GET /v1/whoami "$NEW"
assert_eq 200 "$HTTP_STATUS" "new token after rotate"
rc=0; out=$(noid whoami 2>&1) || rc=$?
assert_eq 1 "$rc" "CLI with the rotated token"
assert_contains "$out" "Run 'noid auth setup" "rotated token advice"
"$SERVER_BIN" remove-user bob --config "$T/server.toml" > /dev/null
http GET /v1/whoami "$BOB"
assert_eq 401 "$HTTP_STATUS" "removed user"
"$SERVER_BIN" list-users --config "$T/server.toml" | grep -q ' bob ' && fail "bob still listed"
ok "rotate-token kills the old token; remove-user makes it 401"

# ---- access log, trust_forwarded_for, graceful shutdown ----
curl -s -H "X-Forwarded-For: 203.0.113.7" -H "Authorization: Bearer $NEW" "$URL/v1/whoami" > /dev/null
sleep 0.2
line=$(grep 'access: .* GET /v1/whoami 200 user=alice' "$T/server.log" | tail -n 1)
[ -n "$line" ] || fail "no access log line"
assert_contains "$line" "access: 127.0.0.1 GET" "client ip from the socket"
[[ "$line" =~ [0-9]+\.[0-9]{3}ms$ ]] || fail "access log duration: $line"
stop_server || fail "server exit status after SIGTERM"
grep -q 'shutting down' "$T/server.log" || fail "no shutdown message"
write_config novm 'trust_forwarded_for = true'
start_server
curl -s -H "X-Forwarded-For: 203.0.113.7, 10.0.0.1" -H "Authorization: Bearer $NEW" "$URL/v1/whoami" > /dev/null
sleep 0.2
grep -q 'access: 203.0.113.7 GET /v1/whoami 200 user=alice' "$T/server.log" || fail "X-Forwarded-For not used"
stop_server || fail "second shutdown"
ok "access log line per request; trust_forwarded_for; SIGTERM exits 0"
it_done
