#!/usr/bin/env bash
# test_metrics.sh — GET /metrics (issue 12) on the default path (golden
# snapshot, default guest), read two independent ways:
#   * metrics_tool.py parses every scrape strictly (families, escapes,
#     cumulative buckets, _count = +Inf) and promtool checks it; the values
#     move as the work done says: golden build, create from golden, a
#     refused create, HTTP exec, streamed (WebSocket) exec and its session,
#     an exec timeout, a checkpoint, a clone, an in-place restore, VMs by
#     state after a destroy, wrong and missing tokens, the failed-auth rate
#     limit
#   * Debian's real Prometheus scrapes the listener and answers queries
#     through its HTTP API
#   * the listener answers only GET /metrics (404, 405); a taken
#     metrics_listen stops the server with a clear message, exit 1;
#     metrics_listen = "" serves nothing and prints no metrics line
. "$(dirname "$0")/lib.sh"
it_setup
require_guest
command -v prometheus > /dev/null || fail "prometheus is missing (scripts/deps.sh installs it)"
command -v promtool > /dev/null || fail "promtool is missing (package prometheus)"

TOOL=(/usr/bin/python3 "$IT_DIR/metrics_tool.py")
PROM_PID=""
IT_EXTRA_CLEANUP='[ -n "$PROM_PID" ] && kill "$PROM_PID" 2>/dev/null && wait "$PROM_PID" 2>/dev/null'

# Scrape into $T/m.json (checked by metrics_tool.py and promtool).
scrape() {
    "${TOOL[@]}" scrape "$METRICS_URL/metrics" "$T/m.json" || fail "the exposition does not parse"
    curl -s "$METRICS_URL/metrics" > "$T/m.txt"
    promtool check metrics < "$T/m.txt" > "$T/promtool.out" 2>&1 ||
        fail "promtool check metrics: $(cat "$T/promtool.out")"
}
# The value of a series in the last scrape: metric 'noid_vms{state="running"}'
metric() { "${TOOL[@]}" get "$T/m.json" "$1" || fail "series $1 missing"; }
assert_metric() { # series expected
    assert_eq "$2" "$(metric "$1")" "$1"
}

write_config vm
start_as_users_do
[ -n "$METRICS_URL" ] || fail "no 'noid-server metrics on' line: $(cat "$T/server.out")"
assert_contains "$METRICS_URL" "http://127.0.0.1:" "metrics on loopback"

# ---- what the server did at start: a golden build, no VM yet ----
scrape
assert_metric "noid_build_info{version=\"$("$SERVER_BIN" --version | awk '{print $2}')\"}" 1
assert_metric noid_golden_ready 1
assert_metric noid_golden_builds_total 1
assert_metric noid_golden_build_failures_total 0
assert_metric 'noid_vms{state="running"}' 0
assert_metric 'noid_vm_creates_total{source="golden"}' 0
ok "scrape parses (metrics_tool, promtool); golden built and ready, no VM"

# ---- create from golden; a refused create ----
noid create vm1 > /dev/null
rc=0; noid create vm1 > /dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "a second vm1 was created"
scrape
assert_metric 'noid_vm_creates_total{source="golden"}' 1
assert_metric 'noid_vm_creates_total{source="cold"}' 0
assert_metric 'noid_vm_create_failures_total{reason="rejected"}' 1
assert_metric 'noid_vm_create_failures_total{reason="error"}' 0
assert_metric 'noid_vm_create_duration_seconds_count{source="golden"}' 1
assert_metric 'noid_vm_create_duration_seconds_bucket{source="golden",le="+Inf"}' 1
assert_metric 'noid_vms{state="running"}' 1
ok "create from golden counted with its latency; the refused one as rejected"

# ---- exec: HTTP, streamed (WebSocket), a timeout ----
http POST /v1/vms/vm1/exec "$A" '{"command":["echo","over-http"]}'
assert_eq 200 "$HTTP_STATUS" "HTTP exec"
http POST /v1/vms/vm1/exec "$A" '{"command":["sleep","30"],"timeout_secs":1}'
assert_contains "$HTTP_BODY" '"timed_out":true' "exec timeout"
assert_eq streamed "$(noid exec vm1 -- echo streamed)" "CLI (WebSocket) exec"
# the session ends on the server just after the client has its result
for _ in $(seq 1 100); do
    scrape
    [ "$(metric 'noid_ws_sessions_active{kind="exec"}')" = 0 ] && break
    sleep 0.1
done
assert_metric 'noid_execs_total{mode="http"}' 2
assert_metric 'noid_exec_timeouts_total{mode="http"}' 1
assert_metric 'noid_exec_duration_seconds_count{mode="http"}' 2
assert_metric 'noid_execs_total{mode="stream"}' 1
assert_metric 'noid_ws_sessions_total{kind="exec"}' 1
assert_metric 'noid_ws_sessions_active{kind="exec"}' 0
assert_metric 'noid_ws_sessions_total{kind="console"}' 0
# the timed-out one ran 1 s or more: not in the 0.5 s bucket
le05=$(metric 'noid_exec_duration_seconds_bucket{mode="http",le="0.5"}')
[ "$le05" -le 1 ] || fail "the timed-out exec is in the 0.5 s bucket ($le05)"
ok "HTTP exec, exec timeout and WebSocket exec counted; the session gauge back to 0"

# ---- authentication failures and the failed-auth limit ----
http GET /v1/vms ""
assert_eq 401 "$HTTP_STATUS" "no token"
BAD="noid_tok_$(printf '0%.0s' $(seq 64))"
http GET /v1/vms "$BAD"
assert_eq 401 "$HTTP_STATUS" "wrong token"
scrape
assert_metric 'noid_auth_failures_total{reason="missing_token"}' 1
assert_metric 'noid_auth_failures_total{reason="invalid_token"}' 1
assert_metric 'noid_rate_limit_refusals_total{limit="auth"}' 0
# 10 failures per token prefix a minute: the 11th is refused with 429
for _ in $(seq 1 10); do http GET /v1/vms "$BAD"; done
assert_eq 429 "$HTTP_STATUS" "rate-limited token"
scrape
assert_metric 'noid_auth_failures_total{reason="invalid_token"}' 11
assert_metric 'noid_rate_limit_refusals_total{limit="auth"}' 1
ok "missing and wrong tokens counted; the 429 of the failed-auth limit too"

# ---- checkpoint, clone, restore in place, destroy ----
CP=$(noid checkpoint vm1 2> /dev/null)
noid restore vm1 "$CP" --as vm2 > /dev/null
noid restore vm1 "$CP" > /dev/null
rc=0; noid restore vm1 ffffffffffffffff > /dev/null 2>&1 || rc=$?
[ "$rc" -ne 0 ] || fail "restore of an unknown checkpoint succeeded"
scrape
assert_metric noid_checkpoint_creates_total 1
assert_metric noid_checkpoint_create_duration_seconds_count 1
assert_metric noid_vm_clones_total 1
assert_metric noid_vm_clone_duration_seconds_count 1
assert_metric noid_vm_restores_total 1
assert_metric 'noid_vm_restore_failures_total{reason="rejected"}' 1
assert_metric 'noid_vms{state="running"}' 2
noid destroy vm2 > /dev/null
scrape
assert_metric 'noid_vms{state="running"}' 1
assert_metric 'noid_vms{state="dead"}' 0
ok "checkpoint, clone, restore (and a failed one) counted; VMs by state follow a destroy"

# ---- only GET /metrics ----
code=$(curl -s -o /dev/null -w '%{http_code}' "$METRICS_URL/")
assert_eq 404 "$code" "GET /"
code=$(curl -s -o /dev/null -w '%{http_code}' "$METRICS_URL/v1/vms")
assert_eq 404 "$code" "the API is not on the metrics listener"
allow=$(curl -s -o /dev/null -X POST -d x -w '%{http_code} %header{allow}' "$METRICS_URL/metrics")
assert_eq "405 GET, HEAD" "$allow" "POST /metrics"
ok "the metrics listener answers only GET /metrics (404, 405 with Allow)"

# ---- a real Prometheus scrapes it ----
PROM_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$T/prometheus.yml" << EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: noid
    static_configs:
      - targets: ['${METRICS_URL#http://}']
EOF
prometheus --config.file="$T/prometheus.yml" --storage.tsdb.path="$T/prometheus" \
    --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn > "$T/prometheus.log" 2>&1 &
PROM_PID=$!
PROM="http://127.0.0.1:$PROM_PORT"
got=""
for _ in $(seq 1 300); do
    got=$("${TOOL[@]}" prom-query "$PROM" 'noid_vms{state="running"}' 2> /dev/null || true)
    [ -n "$got" ] && break
    kill -0 "$PROM_PID" 2> /dev/null || fail "prometheus exited: $(tail -n 5 "$T/prometheus.log")"
    sleep 0.2
done
assert_eq 1 "$got" "noid_vms{state=\"running\"} as Prometheus scraped it"
assert_eq 1 "$("${TOOL[@]}" prom-query "$PROM" 'up{job="noid"}')" "Prometheus' up for the target"
assert_eq 1 "$("${TOOL[@]}" prom-query "$PROM" 'noid_vm_creates_total{source="golden"}')" \
    "creates through Prometheus"
assert_eq 1 "$("${TOOL[@]}" prom-query "$PROM" 'sum(noid_vm_create_duration_seconds_count)')" \
    "the create histogram through Prometheus"
kill "$PROM_PID"
wait "$PROM_PID" 2> /dev/null || true
PROM_PID=""
ok "Debian's Prometheus scrapes the listener; its HTTP API returns our values"

# ---- a taken metrics address: clear error, exit 1 ----
rc=0
"$SERVER_BIN" serve --config "$T/server.toml" --data-dir "$T/data2" --listen 127.0.0.1:0 \
    --metrics-listen "${METRICS_URL#http://}" > "$T/taken.out" 2>&1 || rc=$?
assert_eq 1 "$rc" "exit status with metrics_listen taken"
assert_contains "$(cat "$T/taken.out")" \
    "metrics_listen: cannot listen on ${METRICS_URL#http://}: Address already in use" \
    "metrics_listen taken message"
rm -rf "/dev/shm/noid-$(printf '%s' "$T/data2" | sha256sum | cut -c1-16)"
ok "a taken metrics_listen stops the server with a clear message, exit 1"

# ---- metrics_listen = "": no listener ----
OLD_METRICS=$METRICS_URL
stop_server
echo 'metrics_listen = ""' >> "$T/server.toml"
start_server
assert_eq "" "$METRICS_URL" "no metrics URL"
assert_not_contains "$(cat "$T/server.out")" "metrics on" "metrics line"
rc=0; curl -s -o /dev/null "$OLD_METRICS/metrics" || rc=$?
assert_eq 7 "$rc" "connecting to the old metrics port (curl: 7 = refused)"
# the server listens on the API's address only
listeners=$(ss -Htlnp | grep -c "pid=$SERVER_PID," || true)
assert_eq 1 "$listeners" "listening sockets of the server"
ok "metrics_listen = \"\": no metrics listener, no metrics line"
it_done
