#!/usr/bin/env bash
# Load benchmark of the data plane with wrk: the mock backend directly (the
# ceiling) and through Sluice with no limit, with a limit that never triggers,
# and with a cap of 1000 requests per second. Prints requests/s, p50/p99
# latency, what the backend received per second, and Sluice's resident memory.
#
# Usage: bench/gateway.sh [DURATION_SECONDS] [CONNECTIONS] [THREADS]
#        SLUICE_BIN=path/to/sluice bench/gateway.sh ...
# Everything runs on 127.0.0.1; nothing is left running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

DURATION="${1:-10}"
CONNECTIONS="${2:-64}"
THREADS="${3:-2}"
MOCK_PORT=19100
GATEWAY_PORT=19280
ADMIN_PORT=19443
PASSWORD=bench-password

install_missing wrk curl
# SLUICE_BIN runs an already built binary instead of building one.
if [ -z "${SLUICE_BIN:-}" ]; then
  cargo build --release --quiet --bin sluice
fi
BIN=${SLUICE_BIN:-target/release/sluice}

WORK=$(mktemp -d)
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
PIDS=()
trap cleanup EXIT

sluice_toml "$GATEWAY_PORT" "$ADMIN_PORT" "$WORK" > "$WORK/sluice.toml"

"$BIN" mock-backend --listen "127.0.0.1:$MOCK_PORT" >"$WORK/mock.log" 2>&1 & PIDS+=($!)
SLUICE_ADMIN_PASSWORD=$PASSWORD "$BIN" serve --config "$WORK/sluice.toml" >"$WORK/sluice.log" 2>&1 & PIDS+=($!)
SLUICE_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ADMIN_PORT/healthz" >/dev/null && break; sleep 0.1; done

admin() { curl -sf -u "admin:$PASSWORD" -H 'content-type: application/json' "$@"; }
api() { # name maxTps-json
  admin -X POST "http://127.0.0.1:$ADMIN_PORT/api/am/publisher/v4/apis" -d "{
    \"name\": \"$1\", \"context\": \"/$1\", \"version\": \"v1\",
    \"endpointConfig\": {\"endpoint_type\": \"http\",
      \"production_endpoints\": {\"url\": \"http://127.0.0.1:$MOCK_PORT\"}},
    \"maxTps\": $2 }" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}
NOLIMIT=$(api nolimit null)
NEVER=$(api never '{"production": 1000000000, "productionTimeUnit": "SECOND"}')
CAPPED=$(api capped '{"production": 1000, "productionTimeUnit": "SECOND"}')
APP=$(admin -X POST "http://127.0.0.1:$ADMIN_PORT/api/am/devportal/v3/applications" -d '{"name":"bench"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["applicationId"])')
for id in $NOLIMIT $NEVER $CAPPED; do
  admin -X POST "http://127.0.0.1:$ADMIN_PORT/api/am/devportal/v3/subscriptions" \
    -d "{\"apiId\":\"$id\",\"applicationId\":\"$APP\",\"throttlingPolicy\":\"Unlimited\"}" >/dev/null
done
KEY=$(admin -X POST "http://127.0.0.1:$ADMIN_PORT/api/am/devportal/v3/applications/$APP/api-keys/PRODUCTION/generate" \
  -d '{"validityPeriod":-1}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["apikey"])')

backend_count() { curl -s "http://127.0.0.1:$MOCK_PORT/__mock/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])'; }

IDLE_RSS=$(rss_kb "$SLUICE_PID")
RESULTS="$WORK/results.tsv"
: > "$RESULTS"
run_case() { # name url
  local before after
  before=$(backend_count)
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "apikey: $KEY" "$2" > "$WORK/$1.txt"
  after=$(backend_count)
  python3 - "$1" "$WORK/$1.txt" "$((after - before))" "$DURATION" >> "$RESULTS" <<'PY'
import re, sys
name, path, received, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
text = open(path).read()
def latency(p):
    m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    return float(m.group(1)) * scale[m.group(2)] if m else float("nan")
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
print(f"{name}\t{rps:.0f}\t{latency(50):.3f}\t{latency(99):.3f}\t{received / duration:.0f}\t{int(non2xx.group(1)) if non2xx else 0}")
PY
}

run_case direct "http://127.0.0.1:$MOCK_PORT/x"
run_case sluice_no_limit "http://127.0.0.1:$GATEWAY_PORT/nolimit/v1/x"
LOAD_RSS=$(rss_kb "$SLUICE_PID")
run_case sluice_never_triggering "http://127.0.0.1:$GATEWAY_PORT/never/v1/x"
run_case sluice_cap_1000 "http://127.0.0.1:$GATEWAY_PORT/capped/v1/x"

echo
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s, all on 127.0.0.1 ($(nproc) cores shared by wrk, Sluice and the mock)"
python3 - "$RESULTS" <<'PY'
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
direct = float(rows[0][1])
print(f"{'case':<26}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'backend/s':>11}{'refused':>10}{'vs direct':>11}")
for name, rps, p50, p99, backend, refused in rows:
    print(f"{name:<26}{float(rps):>10.0f}{float(p50):>9.3f}{float(p99):>9.3f}{float(backend):>11.0f}{int(refused):>10}{float(rps)/direct:>11.2f}")
never = next(float(r[1]) for r in rows if r[0] == "sluice_never_triggering")
nolimit = next(float(r[1]) for r in rows if r[0] == "sluice_no_limit")
print(f"\nlimiter cost: never-triggering / no-limit = {never / nolimit:.3f}")
PY
echo "Sluice resident memory: idle $((IDLE_RSS / 1024)) MiB, after load $(( $(rss_kb "$SLUICE_PID") / 1024 )) MiB (during no-limit case end: $((LOAD_RSS / 1024)) MiB)"
