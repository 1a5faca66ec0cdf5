#!/usr/bin/env bash
# test_openapi.sh — docs/openapi.yaml is valid and true (issue 12):
#   * a real OpenAPI 3.1 validator from npm (@seriousme/openapi-schema-
#     validator, pinned in tests/openapi; scripts/test.sh runs npm ci) says
#     the document is valid, and fails on a broken copy
#   * openapi_check.py lint: every schema valid JSON Schema 2020-12, every
#     $ref resolves, path parameters declared, 401/429/500 on every /v1
#     operation, and the document's operations are exactly the route table
#     of server/api/routes.c (a copy with one route more fails)
#   * the response checker fails on deliberately wrong responses (a body
#     off its schema, an undocumented status, a wrong Content-Type, a body
#     where none is documented) and on a real response checked against a
#     deliberately wrong copy of the document
#   * every operation once against a real server on the default path
#     (embedded defaults, golden snapshot, default guest), error cases
#     included: 400 bad JSON and bad fields, 401 bad and missing token, 404
#     unknown VM, endpoint and guest path, 405, 409, 413, 416, 429 (failed
#     logins), the WebSocket handshakes (101 and their plain HTTP errors);
#     every response validated, and every operation exercised
. "$(dirname "$0")/lib.sh"
it_setup

ROOT=$(cd "$IT_DIR/../.." && pwd)
DOC="$ROOT/docs/openapi.yaml"
VALIDATOR="$ROOT/tests/openapi/node_modules/@seriousme/openapi-schema-validator/bin/validate-api-cli.js"
CHECK=(/usr/bin/python3 "$IT_DIR/openapi_check.py")

# ---- the document, by the npm validator ----
command -v node > /dev/null || fail "node is missing: run scripts/deps.sh"
[ -f "$VALIDATOR" ] ||
    fail "the OpenAPI validator is not installed: run 'npm ci' in tests/openapi (scripts/test.sh does)"
grep -q '^openapi: 3\.1\.[0-9]*$' "$DOC" || fail "docs/openapi.yaml does not declare OpenAPI 3.1"
out=$(node "$VALIDATOR" "$DOC" 2>&1) || fail "docs/openapi.yaml is not valid OpenAPI: $out"
assert_contains "$out" '"valid": true' "validator verdict"
sed 's|#/components/schemas/Whoami|#/components/schemas/NoSuchSchema|' "$DOC" > "$T/broken.yaml"
if out=$(node "$VALIDATOR" "$T/broken.yaml" 2>&1); then
    fail "the validator accepts a document with a dangling \$ref: $out"
fi
assert_contains "$out" "NoSuchSchema" "the validator names the dangling \$ref"
ok "the npm validator finds docs/openapi.yaml valid OpenAPI 3.1 (and a broken copy not)"

# ---- lint: schemas, refs, parameters, shared answers, the route table ----
"${CHECK[@]}" lint "$DOC" "$ROOT/server/api/routes.c" 2> "$T/lint.err" ||
    fail "openapi lint: $(cat "$T/lint.err")"
sed 's|^\(    {"GET", "/v1/whoami",.*\)$|\1\n    {"PATCH", "/v1/vms/{name}/bogus", api_get_whoami, .blocking = false},|' \
    "$ROOT/server/api/routes.c" > "$T/routes.c"
grep -q bogus "$T/routes.c" || fail "could not make the routes.c copy"
if "${CHECK[@]}" lint "$DOC" "$T/routes.c" 2> "$T/lint.err"; then
    fail "lint accepts a route table with an undocumented route"
fi
assert_contains "$(cat "$T/lint.err")" "route PATCH /v1/vms/{name}/bogus is missing" "lint names the route"
sed 's|^  /v1/capabilities:|  /v1/capabilitiez:|' "$DOC" > "$T/renamed.yaml"
if "${CHECK[@]}" lint "$T/renamed.yaml" "$ROOT/server/api/routes.c" 2> "$T/lint.err"; then
    fail "lint accepts a document with a path the server does not have"
fi
assert_contains "$(cat "$T/lint.err")" "GET /v1/capabilitiez, which is not in" "lint names the path"
assert_contains "$(cat "$T/lint.err")" "route GET /v1/capabilities is missing" "lint names the route"
ok "lint: schemas and refs valid, every route of routes.c documented and nothing else"

# ---- negative control: the checker fails on wrong responses ----
record() { # METHOD PATH STATUS CONTENT-TYPE BODY -> appended to $T/fake.exchanges
    printf '%s' "$5" > "$T/fake.body"
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$3" "$4" "$(stat -c %s "$T/fake.body")" "$2" >> "$T/fake.exchanges"
    cat "$T/fake.body" >> "$T/fake.exchanges"
}
: > "$T/fake.exchanges"
record GET /v1/whoami 200 application/json '{"user_id":"XYZ","name":"alice"}'
record GET /healthz 418 application/json '{"error":"teapot"}'
record GET /v1/vms 200 text/html '<html></html>'
record DELETE /v1/vms/box 204 - 'surprise'
record GET /v1/vms/box 200 application/json '{"name":"box","state":"sleeping","cpus":1,"mem_mib":256,"created_at":"2026-01-01T00:00:00Z","vmm":"qemu","restored_from":null,"ip":null}'
record POST /v1/vms 201 application/json '{"name":"box"'
record GET /v1/nope 404 application/json '{"error":"no such endpoint: GET /v1/nope"}'
record GET /healthz 200 application/json '{"status":"ok"}'
if "${CHECK[@]}" check "$DOC" "$T/fake.exchanges" 2> "$T/check.err"; then
    fail "the checker accepts deliberately wrong responses"
fi
err=$(cat "$T/check.err")
assert_contains "$err" "GET /v1/whoami -> 200: the body does not match the schema: 'XYZ' does not match" "wrong body"
assert_contains "$err" "GET /healthz -> 418: status 418 is not documented for GET /healthz" "undocumented status"
assert_contains "$err" "GET /v1/vms -> 200: Content-Type text/html is not documented" "wrong Content-Type"
assert_contains "$err" "DELETE /v1/vms/box -> 204: DELETE /v1/vms/{name} documents no body" "unexpected body"
assert_contains "$err" "'sleeping' is not one of ['running', 'dead', 'creating']" "state enum"
assert_contains "$err" "POST /v1/vms -> 201: the body is not JSON" "not JSON"
assert_contains "$err" "6 problems in 8 responses" "only the wrong ones are reported"
ok "the checker fails on wrong bodies, statuses, content types and non-JSON (and passes the right ones)"

# ---- every endpoint on a real server, the default path ----
require_guest
write_config vm
start_as_users_do

http GET /healthz
assert_eq 200 "$HTTP_STATUS" "healthz"
http GET /version
assert_eq 200 "$HTTP_STATUS" "version"
http GET /v1/whoami "$A"
assert_eq 200 "$HTTP_STATUS" "whoami"
http GET /v1/capabilities "$A"
assert_eq 200 "$HTTP_STATUS" "capabilities"

# a real response held to a deliberately wrong copy of the document fails
sed 's|required: \[user_id, name\]|required: [user_id, name, email]|' "$DOC" > "$T/strict.yaml"
grep -q 'user_id, name, email' "$T/strict.yaml" || fail "could not make the strict copy"
if "${CHECK[@]}" check "$T/strict.yaml" "$T/http.exchanges" 2> "$T/check.err"; then
    fail "the checker accepts a real whoami without the 'email' a wrong document requires"
fi
assert_contains "$(cat "$T/check.err")" "GET /v1/whoami -> 200: the body does not match the schema: 'email' is a required property" "real response, wrong document"
ok "healthz, version, whoami, capabilities; a real response fails a wrong document"

# authentication: missing, bad, then blocked
http GET /v1/whoami
assert_eq 401 "$HTTP_STATUS" "no token"
http GET /v1/vms "noid_tok_$(printf '0%.0s' $(seq 64))"
assert_eq 401 "$HTTP_STATUS" "bad token"
prefix=$(printf 'e%.0s' $(seq 16))
for i in $(seq 1 10); do
    http GET /v1/capabilities "noid_tok_${prefix}$(printf '%048d' "$i")"
    assert_eq 401 "$HTTP_STATUS" "failure $i"
done
http GET /v1/capabilities "noid_tok_${prefix}$(printf '%048d' 99)"
assert_eq 429 "$HTTP_STATUS" "11th failure under one prefix"
http GET /v1/nope "$A"
assert_eq 404 "$HTTP_STATUS" "no such endpoint"
http DELETE /v1/whoami "$A"
assert_eq 405 "$HTTP_STATUS" "method not allowed"
ok "401 (missing, bad token), 429 (failed logins), 404 endpoint, 405"

# VMs
http POST /v1/vms "$A" '{"name":'
assert_eq 400 "$HTTP_STATUS" "malformed JSON"
http POST /v1/vms "$A" '{"name":"box","colour":"red"}'
assert_eq 400 "$HTTP_STATUS" "unknown field"
http POST /v1/vms "$A" '{"name":"-bad"}'
assert_eq 400 "$HTTP_STATUS" "invalid name"
truncate -s 17M "$T/big.json"
HTTP_ARGS=(--data-binary @"$T/big.json")
http POST /v1/vms "$A"
HTTP_ARGS=()
assert_eq 413 "$HTTP_STATUS" "a 17 MiB body"
http POST /v1/vms "$A" '{"name":"box","cpus":1,"mem_mib":null}'
assert_eq 201 "$HTTP_STATUS" "create"
assert_eq golden "$(json_get restored_from <<< "$HTTP_BODY")" "created from the golden snapshot"
http POST /v1/vms "$A" '{"name":"box"}'
assert_eq 409 "$HTTP_STATUS" "name taken"
http GET /v1/vms "$A"
assert_eq 200 "$HTTP_STATUS" "list"
http GET /v1/vms/box "$A"
assert_eq 200 "$HTTP_STATUS" "info"
http GET /v1/vms/ghost "$A"
assert_eq 404 "$HTTP_STATUS" "unknown VM"
ok "create (400 x3, 413, 201 from golden, 409), list, info, 404"

# exec over HTTP
http POST /v1/vms/box/exec "$A" '{"command":["sh","-c","echo hi; echo oops >&2; exit 3"]}'
assert_eq 200 "$HTTP_STATUS" "exec"
assert_eq 3 "$(json_get exit_code <<< "$HTTP_BODY")" "exit code"
http POST /v1/vms/box/exec "$A" '{"command":["sh","-c","printf \"\\377\\n\""]}'
assert_eq 200 "$HTTP_STATUS" "exec with bytes that are not UTF-8"
assert_contains "$HTTP_BODY" '"stdout_b64":' "stdout_b64"
http POST /v1/vms/box/exec "$A" '{"command":["sh","-c","kill -9 $$"],"env":["A=1"],"cwd":"/","tty":false}'
assert_eq 200 "$HTTP_STATUS" "exec killed by a signal"
assert_eq 9 "$(json_get signal <<< "$HTTP_BODY")" "signal"
http POST /v1/vms/box/exec "$A" '{"command":["sleep","30"],"timeout_secs":1}'
assert_eq 200 "$HTTP_STATUS" "exec that times out"
assert_eq True "$(json_get timed_out <<< "$HTTP_BODY")" "timed_out"
http POST /v1/vms/box/exec "$A" '{"command":[]}'
assert_eq 400 "$HTTP_STATUS" "empty command"
http POST /v1/vms/box/exec "$A" 'not json'
assert_eq 400 "$HTTP_STATUS" "exec: bad JSON"
http POST /v1/vms/ghost/exec "$A" '{"command":["true"]}'
assert_eq 404 "$HTTP_STATUS" "exec: unknown VM"
ok "exec: 200 (exit code, stdout_b64, signal, timed_out), 400, 404"

# WebSocket handshakes, by hand: ws_handshake PATH [TOKEN] records the
# answer like http() does and sets HTTP_STATUS
ws_handshake() {
    local out
    out=$(/usr/bin/python3 - "$URL" "$1" "${2:-}" "$T/ws.body" << 'EOF'
import base64, os, socket, sys, urllib.parse
url, path, token, body_file = sys.argv[1:5]
u = urllib.parse.urlsplit(url)
s = socket.create_connection((u.hostname, u.port), timeout=30)
req = (f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\nUpgrade: websocket\r\n"
       "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
       f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n")
if token:
    req += f"Authorization: Bearer {token}\r\n"
s.sendall((req + "\r\n").encode())
data = b""
while b"\r\n\r\n" not in data:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
head, _, rest = data.partition(b"\r\n\r\n")
lines = head.decode("latin-1").split("\r\n")
status = lines[0].split()[1]
hdrs = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
body = b""
if status != "101":
    n = int(hdrs.get("content-length", "0"))
    body = rest
    while len(body) < n:
        chunk = s.recv(4096)
        if not chunk:
            break
        body += chunk
elif ("websocket" not in hdrs.get("upgrade", "").lower()
      or "upgrade" not in hdrs.get("connection", "").lower() or "sec-websocket-accept" not in hdrs):
    sys.exit(f"a 101 without the WebSocket headers: {hdrs}")
s.close()
open(body_file, "wb").write(body)
print(status + "\t" + hdrs.get("content-type", ""))
EOF
    ) || fail "WebSocket handshake on $1 failed"
    HTTP_STATUS=${out%%$'\t'*}
    http_record GET "$1" "$HTTP_STATUS" "${out#*$'\t'}" "$T/ws.body"
}
ws_handshake /v1/vms/box/exec "$A"
assert_eq 101 "$HTTP_STATUS" "exec WebSocket"
ws_handshake /v1/vms/box/console "$A"
assert_eq 101 "$HTTP_STATUS" "console WebSocket"
ws_handshake '/v1/vms/box/console?replay=0' "$A"
assert_eq 101 "$HTTP_STATUS" "console WebSocket without replay"
ws_handshake '/v1/vms/box/console?replay=7' "$A"
assert_eq 400 "$HTTP_STATUS" "console: bad replay"
ws_handshake /v1/vms/ghost/exec "$A"
assert_eq 404 "$HTTP_STATUS" "exec WebSocket: unknown VM"
ws_handshake /v1/vms/box/console
assert_eq 401 "$HTTP_STATUS" "console WebSocket without a token"
http GET /v1/vms/box/exec "$A"
assert_eq 400 "$HTTP_STATUS" "exec WebSocket: not a handshake"
http GET /v1/vms/box/console "$A"
assert_eq 400 "$HTTP_STATUS" "console WebSocket: not a handshake"
assert_not_contains "$HTTP_BODY" "plain HTTP exec" "the console's 400 points to no exec"
http GET /v1/vms/box/console.log "$A"
assert_eq 200 "$HTTP_STATUS" "console log"
http GET /v1/vms/ghost/console.log "$A"
assert_eq 404 "$HTTP_STATUS" "console log: unknown VM"
ok "WebSocket exec and console: 101, 400, 401, 404; console.log 200, 404"

# checkpoints, restore, clone
http POST /v1/vms/box/checkpoints "$A" '{"label":"first"}'
assert_eq 201 "$HTTP_STATUS" "checkpoint"
cp=$(json_get id <<< "$HTTP_BODY")
http POST /v1/vms/box/checkpoints "$A" '{"label":"bad\u0001label"}'
assert_eq 400 "$HTTP_STATUS" "checkpoint: control character in the label"
http POST /v1/vms/ghost/checkpoints "$A"
assert_eq 404 "$HTTP_STATUS" "checkpoint: unknown VM"
http GET /v1/vms/box/checkpoints "$A"
assert_eq 200 "$HTTP_STATUS" "checkpoint list"
http POST /v1/vms/box/restore "$A" "{\"checkpoint_id\":\"${cp:0:6}\"}"
assert_eq 200 "$HTTP_STATUS" "restore in place"
http POST /v1/vms/box/restore "$A" "{\"checkpoint_id\":\"$cp\",\"new_name\":\"box2\"}"
assert_eq 201 "$HTTP_STATUS" "clone"
assert_eq "$cp" "$(json_get restored_from <<< "$HTTP_BODY")" "the clone's restored_from"
http POST /v1/vms/box/restore "$A" '{"checkpoint_id":"ffffffffffffffff"}'
assert_eq 404 "$HTTP_STATUS" "restore: unknown checkpoint"
http POST /v1/vms/box/restore "$A" '{}'
assert_eq 400 "$HTTP_STATUS" "restore: no checkpoint_id"
http DELETE "/v1/vms/box/checkpoints/$cp" "$A"
assert_eq 204 "$HTTP_STATUS" "checkpoint delete"
http DELETE "/v1/vms/box/checkpoints/$cp" "$A"
assert_eq 404 "$HTTP_STATUS" "checkpoint delete again"
ok "checkpoints: 201, 400, 404, list; restore 200, clone 201, 404, 400; delete 204, 404"

# guest files
printf 'hello, guest\n' > "$T/hello.txt"
HTTP_ARGS=(--data-binary @"$T/hello.txt" -H 'Content-Type: application/octet-stream')
http PUT '/v1/vms/box/files/srv/hello.txt?parents=1&mode=0640' "$A"
assert_eq 201 "$HTTP_STATUS" "upload of a new file"
http PUT /v1/vms/box/files/srv/hello.txt "$A"
assert_eq 200 "$HTTP_STATUS" "upload over the file"
http PUT /v1/vms/box/files/no/such/dir/f "$A"
assert_eq 404 "$HTTP_STATUS" "upload: no parent"
http PUT /v1/vms/box/files/srv "$A"
assert_eq 409 "$HTTP_STATUS" "upload onto a directory"
http PUT '/v1/vms/box/files/srv/x?mode=9' "$A"
assert_eq 400 "$HTTP_STATUS" "upload: bad mode"
HTTP_ARGS=()
http GET /v1/vms/box/files/srv/hello.txt "$A"
assert_eq 200 "$HTTP_STATUS" "download"
assert_eq 'hello, guest' "$HTTP_BODY" "downloaded bytes"
HTTP_ARGS=(-H 'Range: bytes=0-4')
http GET /v1/vms/box/files/srv/hello.txt "$A"
assert_eq 206 "$HTTP_STATUS" "a range"
assert_eq hello "$HTTP_BODY" "the range's bytes"
HTTP_ARGS=(-H 'Range: bytes=1000-')
http GET /v1/vms/box/files/srv/hello.txt "$A"
assert_eq 416 "$HTTP_STATUS" "a range past the end"
HTTP_ARGS=(-I)
http HEAD /v1/vms/box/files/srv/hello.txt "$A"
assert_eq 200 "$HTTP_STATUS" "HEAD"
HTTP_ARGS=()
http GET /v1/vms/box/files/srv "$A"
assert_eq 200 "$HTTP_STATUS" "listing"
assert_contains "$HTTP_BODY" '"name":"hello.txt"' "the listing"
http GET /v1/vms/box/files "$A"
assert_eq 200 "$HTTP_STATUS" "listing of /"
http GET /v1/vms/box/files/no/such "$A"
assert_eq 404 "$HTTP_STATUS" "download: no such path"
http GET '/v1/vms/box/files/srv?x=1' "$A"
assert_eq 400 "$HTTP_STATUS" "unknown query parameter"
http POST '/v1/vms/box/files/srv/d/e?op=mkdir&parents=1&mode=0750' "$A"
assert_eq 201 "$HTTP_STATUS" "mkdir"
http POST '/v1/vms/box/files/srv/d/e?op=mkdir&parents=1' "$A"
assert_eq 200 "$HTTP_STATUS" "mkdir -p of an existing directory"
http POST '/v1/vms/box/files/srv/d/e?op=mkdir' "$A"
assert_eq 409 "$HTTP_STATUS" "mkdir of an existing directory"
http POST '/v1/vms/box/files/srv/hello.txt?op=rename&to=/srv/d/hello.txt' "$A"
assert_eq 200 "$HTTP_STATUS" "rename"
http POST '/v1/vms/box/files/srv/d?op=chmod' "$A"
assert_eq 400 "$HTTP_STATUS" "bad op"
http DELETE /v1/vms/box/files/srv/d "$A"
assert_eq 409 "$HTTP_STATUS" "delete of a non-empty directory"
http DELETE /v1/vms/box/files/srv/d/hello.txt "$A"
assert_eq 204 "$HTTP_STATUS" "delete of a file"
http DELETE '/v1/vms/box/files/srv/d?recursive=1' "$A"
assert_eq 204 "$HTTP_STATUS" "recursive delete"
http DELETE /v1/vms/box/files/srv/d "$A"
assert_eq 404 "$HTTP_STATUS" "delete of a missing path"
http DELETE /v1/vms/box/files/ "$A"
assert_eq 400 "$HTTP_STATUS" "delete of /"
http GET /v1/vms/ghost/files/etc "$A"
assert_eq 404 "$HTTP_STATUS" "files: unknown VM"
ok "files: PUT 201/200/404/409/400, GET 200 file and listing/206/416/404/400, HEAD, POST 201/200/409/400, DELETE 204/409/404/400"

# destroy
http DELETE /v1/vms/box2 "$A"
assert_eq 204 "$HTTP_STATUS" "destroy the clone"
http DELETE /v1/vms/box "$A"
assert_eq 204 "$HTTP_STATUS" "destroy"
http DELETE /v1/vms/box "$A"
assert_eq 404 "$HTTP_STATUS" "destroy again"
http GET /v1/vms/box/exec "$A"
assert_eq 404 "$HTTP_STATUS" "exec WebSocket on a destroyed VM"
ok "destroy: 204, 404"

# every response above against the document, and every operation used
"${CHECK[@]}" check "$DOC" "$T/http.exchanges" --require-all 2> "$T/check.err" > "$T/check.out" ||
    fail "responses that do not match docs/openapi.yaml:"$'\n'"$(cat "$T/check.err")"
ok "$(cat "$T/check.out")"

it_done
