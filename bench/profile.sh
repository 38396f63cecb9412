#!/usr/bin/env bash
# What one proxied request costs Sluice: starts the mock backend and Sluice
# on 127.0.0.1, publishes one API with a key and a limit, loads it with wrk
# and prints requests/s, Sluice's and the mock's CPU time per request
# (utime + stime from /proc), and Sluice's system calls and context switches
# per request (perf stat). With --record, also a perf profile (call graphs)
# and its top entries; with --strace, the system calls of a few requests on
# one connection. With --instructions, Sluice runs under callgrind and the
# figure is instructions per request: deterministic, so it tells small
# changes apart where CPU time is too noisy.
#
# Usage: bench/profile.sh [--limit N] [--duration S] [--ai] [--body-bytes N]
#                         [--record] [--strace] [--instructions]
#   --limit N      the API's production limit per SECOND (default 10^9, which
#                  never triggers; 1000 makes most answers refusals)
#   --duration S   seconds of measured load (default 8), after 2 s of warm-up
#   --ai           an OpenAI AI API loaded with streamed chat completions
#                  (figures are then per stream of about 35 SSE events)
#   --body-bytes N the backend is NGINX serving a file of N bytes instead
#                  of the mock's echo of about 240 bytes: what large
#                  responses cost (the "mock backend" figure is then NGINX's)
#   --record       perf record -g of Sluice during the load; keeps perf.data
#   --strace       strace of Sluice under one wrk connection for one second
#   --instructions Sluice under valgrind's callgrind: instructions per
#                  request in all and inside Gateway::handle (wrk -t1 -c4
#                  for the duration; about 40 s more for the slow start)
#   SLUICE_BIN=path  use a built binary instead of `cargo build --release`
#   PERF_CALL_GRAPH="--call-graph dwarf"  for call graphs through code built
#                  without frame pointers (larger perf.data)
# Everything runs on 127.0.0.1; nothing is left running afterwards. The raw
# files stay in the directory printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

LIMIT=1000000000
DURATION=8
RECORD=
STRACE=
AI=
BODY_BYTES=
INSTRUCTIONS=
while [ $# -gt 0 ]; do
  case $1 in
    --limit) LIMIT=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --ai) AI=1; shift ;;
    --body-bytes) BODY_BYTES=$2; shift 2 ;;
    --record) RECORD=1; shift ;;
    --strace) STRACE=1; shift ;;
    --instructions) INSTRUCTIONS=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

install_missing wrk curl perf ${STRACE:+strace} ${INSTRUCTIONS:+valgrind} ${BODY_BYTES:+nginx}
if [ -z "${SLUICE_BIN:-}" ]; then
  cargo build --release --quiet --bin sluice
fi
BIN=${SLUICE_BIN:-target/release/sluice}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOCK_PORT=$(free_port); GATEWAY_PORT=$(free_port); ADMIN_PORT=$(free_port)
PASSWORD=profile-password
WORK=$(mktemp -d /tmp/sluice-profile.XXXXXX)
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT

if [ -n "$BODY_BYTES" ]; then
  mkdir -p "$WORK/static"; head -c "$BODY_BYTES" /dev/urandom > "$WORK/static/x"
  cat > "$WORK/nginx.conf" <<NGINX
daemon off; master_process off; worker_processes 1; pid $WORK/nginx.pid; error_log $WORK/nginx.log;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:$MOCK_PORT; root $WORK/static; } }
NGINX
  nginx -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/nginx.log" >"$WORK/mock.log" 2>&1 & PIDS+=($!)
else
  "$BIN" mock-backend --listen "127.0.0.1:$MOCK_PORT" >"$WORK/mock.log" 2>&1 & PIDS+=($!)
fi
MOCK_PID=$!
sluice_toml "$GATEWAY_PORT" "$ADMIN_PORT" "$WORK" > "$WORK/sluice.toml"
UNDER=()
[ -z "$INSTRUCTIONS" ] || UNDER=(valgrind --tool=callgrind --instr-atstart=no
  --callgrind-out-file="$WORK/callgrind.out")
SLUICE_ADMIN_PASSWORD=$PASSWORD "${UNDER[@]}" "$BIN" serve --config "$WORK/sluice.toml" >"$WORK/sluice.log" 2>&1 & PIDS+=($!)
SLUICE_PID=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null && break; sleep 0.1; done

admin() { # method path [json]
  curl -sf -u "admin:$PASSWORD" -H 'content-type: application/json' -X "$1" \
    "http://127.0.0.1:$ADMIN_PORT$2" ${3:+-d "$3"}
}
SUBTYPE= ; BACKEND_PATH= ; REQUEST_PATH=/x ; LOAD=()
if [ -n "$AI" ]; then
  SUBTYPE='"subtypeConfiguration": {"subtype": "AIAPI", "configuration": {"llmProviderName": "OpenAI"}},'
  BACKEND_PATH=/v1; REQUEST_PATH=/chat/completions
  cat > "$WORK/stream.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"model":"bench","stream":true,"max_tokens":32,"messages":[{"role":"user","content":"Write a short poem about sluices."}]}'
LUA
  LOAD=(-s "$WORK/stream.lua")
fi
API=$(admin POST /api/am/publisher/v4/apis "{\"name\": \"profiled\", \"context\": \"/profiled\",
  \"version\": \"v1\", \"endpointConfig\": {\"endpoint_type\": \"http\",
  \"production_endpoints\": {\"url\": \"http://127.0.0.1:$MOCK_PORT$BACKEND_PATH\"}}, $SUBTYPE
  \"maxTps\": {\"production\": $LIMIT, \"productionTimeUnit\": \"SECOND\"}}" | field id)
APP=$(admin POST /api/am/devportal/v3/applications '{"name": "profile"}' | field applicationId)
admin POST /api/am/devportal/v3/subscriptions \
  "{\"apiId\": \"$API\", \"applicationId\": \"$APP\", \"throttlingPolicy\": \"Unlimited\"}" >/dev/null
KEY=$(admin POST "/api/am/devportal/v3/applications/$APP/api-keys/PRODUCTION/generate" \
  '{"validityPeriod": -1}' | field apikey)
URL="http://127.0.0.1:$GATEWAY_PORT/profiled/v1$REQUEST_PATH"
for _ in $(seq 100); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H "apikey: $KEY" -H 'content-type: application/json' \
    ${AI:+-d '{"model":"bench","messages":[]}'} "$URL")" = 200 ] && break
  sleep 0.1
done

completed() { grep -oE '^ *[0-9]+ requests' "$1" | grep -oE '[0-9]+'; }   # FILE: wrk's count
wrk -t2 -c64 -d2s -H "apikey: $KEY" "${LOAD[@]}" "$URL" >/dev/null
if [ -n "$INSTRUCTIONS" ]; then
  callgrind_control -i on "$SLUICE_PID" >/dev/null
  wrk -t1 -c4 -d"${DURATION}s" -H "apikey: $KEY" "${LOAD[@]}" "$URL" >"$WORK/wrk.txt"
  callgrind_control -i off "$SLUICE_PID" >/dev/null
  callgrind_control -d "$SLUICE_PID" >/dev/null
  REQUESTS=$(completed "$WORK/wrk.txt")
  callgrind_annotate --inclusive=yes "$(ls "$WORK"/callgrind.out.* | head -1)" > "$WORK/callgrind.txt"
  python3 - "$REQUESTS" "$WORK/callgrind.txt" <<'PY'
import re, sys
requests = int(sys.argv[1])
text = open(sys.argv[2]).read()
ir = lambda line: int(re.match(r"\s*([\d,]+)", line).group(1).replace(",", ""))
total = ir(re.search(r"^.*PROGRAM TOTALS.*$", text, re.M).group(0))
handle = re.search(r"^.*sluice_gateway::Gateway::handle::\{\{closure\}\}.*$", text, re.M)
print(f"{requests} requests (wrk -t1 -c4 under callgrind); instructions per request: {total / requests:,.0f} in all, "
      f"{(ir(handle.group(0)) if handle else 0) / requests:,.0f} inside Gateway::handle")
PY
  exit 0
fi
cpu_total() { local user system; read -r user system <<< "$(cpu_ticks "$1")"; echo $((user + system)); }
# Sluice's figures are two words, user and system ticks, passed on unquoted.
sluice_before=$(cpu_ticks "$SLUICE_PID"); mock_before=$(cpu_total "$MOCK_PID")
if [ -n "$RECORD" ]; then
  perf record -F 1999 ${PERF_CALL_GRAPH:--g} -p "$SLUICE_PID" -o "$WORK/perf.data" -- sleep "$DURATION" >/dev/null 2>&1 &
else
  perf stat -e raw_syscalls:sys_enter,context-switches -p "$SLUICE_PID" -o "$WORK/stat.txt" \
    -- sleep "$DURATION" &
fi
PERF=$!
wrk -t2 -c64 -d"${DURATION}s" -H "apikey: $KEY" "${LOAD[@]}" "$URL" >"$WORK/wrk.txt"
sluice_after=$(cpu_ticks "$SLUICE_PID"); mock_after=$(cpu_total "$MOCK_PID")
wait "$PERF" || true

REQUESTS=$(completed "$WORK/wrk.txt")
TICK=$(getconf CLK_TCK)
echo "limit $LIMIT/SECOND, wrk -t2 -c64 -d${DURATION}s: $REQUESTS requests, $(grep -oE 'Requests/sec: +[0-9.]+' "$WORK/wrk.txt")"
python3 - "$REQUESTS" "$TICK" $sluice_before $sluice_after "$mock_before" "$mock_after" <<'PY'
import sys
requests, tick, sub, ssb, sua, ssa, mb, ma = (float(x) for x in sys.argv[1:])
per = lambda ticks: ticks / tick * 1e6 / requests
print(f"CPU time per request: Sluice {per(sua + ssa - sub - ssb):.1f} us "
      f"(user {per(sua - sub):.1f}, system {per(ssa - ssb):.1f}), mock backend {per(ma - mb):.1f} us")
PY
if [ -z "$RECORD" ]; then
  python3 - "$REQUESTS" "$WORK/stat.txt" <<'PY'
import re, sys
requests = float(sys.argv[1])
text = open(sys.argv[2]).read()
count = lambda event: float(re.search(r"([\d,]+)\s+" + event, text).group(1).replace(",", ""))
print(f"per request: {count('raw_syscalls:sys_enter') / requests:.2f} system calls, "
      f"{count('context-switches') / requests:.2f} context switches")
PY
else
  perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null \
    | grep '%' | head -30 | cut -c1-120
fi
if [ -n "$STRACE" ]; then
  timeout 2 strace -f -p "$SLUICE_PID" -o "$WORK/strace.txt" 2>/dev/null &
  STRACE_PID=$!
  sleep 0.5
  wrk -t1 -c1 -d1s -H "apikey: $KEY" "${LOAD[@]}" "$URL" >"$WORK/wrk-strace.txt"
  wait "$STRACE_PID" || true
  echo "system calls of one connection's $(completed "$WORK/wrk-strace.txt") requests (strace, 1 s):"
  awk '{print $2}' "$WORK/strace.txt" | cut -d'(' -f1 | sort | uniq -c | sort -rn | head -6
fi
echo "raw files: $WORK"
