#!/usr/bin/env bash
# test_hostile_clients.sh — issue 7 (part 3): the HTTP server against hostile
# clients.  Authentication from the headers before any body byte is read;
# chunked bodies bounded like Content-Length ones; failed-auth rate limiting
# by address and by token prefix that never locks out a valid token (and is
# not fooled by a spoofed X-Forwarded-For); the per-address connection limit
# and the idle timeout; the open-file limit.  Raw-socket clients are in
# hostile_http.py.  With the guest image present, a long exec outlives the
# idle timeout (its connection is suspended, which the timeout skips).
. "$(dirname "$0")/lib.sh"
it_setup

HOSTILE=(/usr/bin/python3 "$IT_DIR/hostile_http.py")
PER_IP=16
# Long enough that 200 connections and the requests of another address are
# done long before it under ASan/TCG; and above hostile_http.py's DEADLINE,
# so no connection there is closed for idleness unless the scenario wants
# that.  The idle close is checked on its own start, with IDLE_SHORT.
IDLE=120
IDLE_SHORT=5

# status of GET /v1/whoami from a source address: req SRC TOKEN [curl args...]
req() {
    local src=$1 token=$2
    shift 2
    curl -s -o /dev/null -w '%{http_code}' --interface "$src" \
        -H "Authorization: Bearer $token" "$@" "$URL/v1/whoami"
}

# a wrong token with a given 16-hex prefix: wrong_token PREFIX N
wrong_token() { printf 'noid_tok_%s%048x' "$1" "$2"; }
random_prefix() { od -An -N8 -tx1 /dev/urandom | tr -d ' \n'; }

write_config vm "max_connections_per_ip = $PER_IP" "http_idle_timeout_secs = $IDLE"
TOKEN=$(add_user alice)
# start the server with the usual low soft limit, which it must raise
if [ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -gt 1024 ]; then
    ulimit -Sn 1024
fi
start_server
wait_golden "$TOKEN"
PORT=${URL##*:}

# ---- limits at start ----
lim=$(awk '/^Max open files/ {print $4 " " $5}' "/proc/$SERVER_PID/limits")
read -r soft hard <<< "$lim"
assert_eq "$hard" "$soft" "open-file soft limit raised to the hard limit"
line=$(grep 'HTTP limits:' "$T/server.log")
assert_contains "$line" "$PER_IP per client address" "per-address limit logged"
assert_contains "$line" "idle connections closed after $IDLE s" "idle timeout logged"
assert_contains "$line" "(open-file limit $soft)" "fd limit logged"
max_conns=$(sed -n 's/.*HTTP limits: \([0-9]*\) connections in all.*/\1/p' <<< "$line")
[ "$max_conns" -gt 0 ] && [ "$max_conns" -lt "$soft" ] || fail "connection limit $max_conns not below the fd limit $soft"
ok "fd soft limit = hard limit ($soft); $max_conns connections in all, $PER_IP per address, idle $IDLE s; logged once"

# ---- authentication before the body ----
out=$("${HOSTILE[@]}" early "$PORT" --content-length 16000000)
assert_contains "$out" '401 {"error":"missing bearer token' "no token, Content-Length 16000000"
out=$("${HOSTILE[@]}" early "$PORT" --content-length 16000000 --token "noid_tok_$(printf '0%.0s' $(seq 64))")
assert_contains "$out" '401 {"error":"invalid or revoked token"}' "bad token, Content-Length 16000000"
out=$("${HOSTILE[@]}" early "$PORT" --chunked)
assert_contains "$out" '401 ' "no token, chunked"
out=$("${HOSTILE[@]}" early "$PORT" --chunked --token "noid_tok_$(printf '1%.0s' $(seq 64))")
assert_contains "$out" '401 ' "bad token, chunked"
out=$("${HOSTILE[@]}" early "$PORT" --content-length $((17 * 1024 * 1024)) --token "$TOKEN")
assert_contains "$out" '413 {"error":"request body is larger than 16777216 bytes"}' "valid token, Content-Length above the bound"
ok "401 (no/bad token; Content-Length 16000000 or chunked) and 413 answered on the headers alone, connection closed"

out=$("${HOSTILE[@]}" chunked "$PORT" --token "$TOKEN")
assert_contains "$out" '413 sent=' "endless chunked body"
assert_contains "$out" 'request body is larger than 16777216 bytes' "chunked 413 body"
sent=$(sed -n 's/^413 sent=\([0-9]*\).*/\1/p' <<< "$out")
log "chunked 413 after the client had sent $sent bytes"
# the access line is written when the server closes the connection
for _ in $(seq 50); do
    grep -q 'access: 127.0.0.1 POST /v1/vms 413 user=alice' "$T/server.log" && break
    sleep 0.1
done
grep -q 'access: 127.0.0.1 POST /v1/vms 413 user=alice' "$T/server.log" || fail "no access log line for the chunked 413"
# the server still works, and an authenticated request keeps its routing
http GET /v1/whoami "$TOKEN"
assert_eq 200 "$HTTP_STATUS" "whoami after the hostile uploads"
http PUT /v1/vms "$TOKEN"
assert_eq 405 "$HTTP_STATUS" "405 with a token"
http GET /v1/nothing "$TOKEN"
assert_eq 404 "$HTTP_STATUS" "404 with a token"
http GET /healthz
assert_eq 200 "$HTTP_STATUS" "healthz without a token"
http GET /version
assert_eq 200 "$HTTP_STATUS" "version without a token"
ok "a chunked body past 16 MiB gets 413 before the client is done; routing, /healthz, /version unchanged"

# ---- connections: per-address limit, another address served, idle timeout ----
"${HOSTILE[@]}" flood "$PORT" --token "$TOKEN" --src 127.0.0.1 --other 127.0.0.2 \
    --count 200 --limit "$PER_IP" >&2 || fail "connection flood scenario"
ok "200 idle connections from 127.0.0.1: $PER_IP kept, rest closed; 127.0.0.2 served"

# ---- rate limiting by token prefix: never locks out the valid token ----
P=${TOKEN:9:16}
for i in 1 2 3 4 5; do
    assert_eq 401 "$(req 127.0.0.1 "$(wrong_token "$P" "$i")")" "wrong token $i from 127.0.0.1"
    assert_eq 401 "$(req 127.0.0.2 "$(wrong_token "$P" "$((i + 5))")")" "wrong token $((i + 5)) from 127.0.0.2"
done
assert_eq 200 "$(req 127.0.0.1 "$TOKEN")" "valid token of the prefix after 10 failures"
assert_eq 200 "$(req 127.0.0.2 "$TOKEN")" "valid token of the prefix from the other address"
assert_eq 429 "$(req 127.0.0.3 "$(wrong_token "$P" 11)")" "11th wrong token of the prefix (fresh address)"
retry=$(curl -s -o /dev/null -D - --interface 127.0.0.1 -H "Authorization: Bearer $(wrong_token "$P" 12)" \
    "$URL/v1/whoami" | tr -d '\r' | sed -n 's/^Retry-After: //p')
[ -n "$retry" ] && [ "$retry" -gt 0 ] && [ "$retry" -le 60 ] || fail "Retry-After: '$retry'"
assert_eq 200 "$(req 127.0.0.3 "$TOKEN")" "valid token while its prefix is blocked"
assert_eq 401 "$(req 127.0.0.3 "$(wrong_token "$(random_prefix)" 1)")" "another prefix is not blocked"
ok "10 failures under alice's prefix from two addresses: the 11th is 429 (Retry-After $retry), alice's token still 200"

# ---- rate limiting by address ----
for i in $(seq 1 50); do
    assert_eq 401 "$(req 127.0.0.4 "$(wrong_token "$(random_prefix)" "$i")")" "failure $i from 127.0.0.4"
done
assert_eq 429 "$(req 127.0.0.4 "$(wrong_token "$(random_prefix)" 51)")" "51st failure from 127.0.0.4"
assert_eq 200 "$(req 127.0.0.4 "$TOKEN")" "valid token from the blocked address"
assert_eq 401 "$(req 127.0.0.5 "$(wrong_token "$(random_prefix)" 1)")" "another address is not blocked"
# no token at all is no guess: never counted, never 429
for i in $(seq 1 60); do
    st=$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.6 "$URL/v1/whoami")
    assert_eq 401 "$st" "request $i without a token"
done
ok "50 failures from one address (new prefix each): 429 for it, its valid token 200, others 401; no token never counts"

# trust_forwarded_for = false: X-Forwarded-For is ignored, spoofing it changes nothing
for i in $(seq 1 50); do
    assert_eq 401 "$(req 127.0.0.7 "$(wrong_token "$(random_prefix)" "$i")" -H "X-Forwarded-For: 203.0.113.$i")" "spoofed failure $i"
done
assert_eq 429 "$(req 127.0.0.7 "$(wrong_token "$(random_prefix)" 51)" -H "X-Forwarded-For: 198.51.100.99")" "spoofed X-Forwarded-For ignored"
ok "trust_forwarded_for=false: a different X-Forwarded-For on each failure does not escape the address limit"
stop_server || fail "server exit status"

# trust_forwarded_for = true: keyed on the right-most entry (the proxy's)
write_config vm 'trust_forwarded_for = true'
start_server
wait_golden "$TOKEN"
for i in $(seq 1 50); do
    assert_eq 401 "$(req 127.0.0.1 "$(wrong_token "$(random_prefix)" "$i")" -H "X-Forwarded-For: 203.0.113.$i, 198.51.100.7")" "forwarded failure $i"
done
assert_eq 429 "$(req 127.0.0.1 "$(wrong_token "$(random_prefix)" 51)" -H "X-Forwarded-For: 192.0.2.1, 198.51.100.7")" "left-most entry is not the key"
assert_eq 401 "$(req 127.0.0.1 "$(wrong_token "$(random_prefix)" 52)" -H "X-Forwarded-For: 198.51.100.8")" "another forwarded client"
assert_eq 200 "$(req 127.0.0.1 "$TOKEN" -H "X-Forwarded-For: 198.51.100.7")" "valid token of the blocked forwarded client"
ok "trust_forwarded_for=true: failures counted per forwarded client (right-most entry), not per proxy"
stop_server || fail "server exit status"

# ---- the idle timeout closes idle connections ----
write_config vm "max_connections_per_ip = $PER_IP" "http_idle_timeout_secs = $IDLE_SHORT"
start_server
wait_golden "$TOKEN"
"${HOSTILE[@]}" idle "${URL##*:}" --src 127.0.0.1 --limit "$PER_IP" >&2 || fail "idle connection scenario"
ok "$PER_IP idle connections from 127.0.0.1 closed by http_idle_timeout_secs = $IDLE_SHORT; the address served again"
stop_server || fail "server exit status"

# ---- a long exec outlives the idle timeout (suspended connection) ----
# The default configuration (golden snapshot, default guest) but for the
# two timeouts under test.
write_config vm 'http_idle_timeout_secs = 5' 'exec_timeout_secs = 90'
start_server
wait_golden "$TOKEN"
http POST /v1/vms "$TOKEN" '{"name":"slow"}'
assert_eq 201 "$HTTP_STATUS" "create: $HTTP_BODY"
http POST /v1/vms/slow/exec "$TOKEN" '{"command":["sh","-c","sleep 40; echo done"]}'
assert_eq 200 "$HTTP_STATUS" "40 s exec with a 5 s idle timeout"
assert_contains "$HTTP_BODY" '"stdout":"done\n"' "exec output"
assert_contains "$HTTP_BODY" '"timed_out":false' "exec not timed out"
http DELETE /v1/vms/slow "$TOKEN"
ok "a 40 s exec completes with http_idle_timeout_secs = 5"
it_done
