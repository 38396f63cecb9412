#!/usr/bin/env bash
# The scale case of bench/compare.sh on its own (issue 6): one Sluice with
# APIS APIs, each with limits, an application, a subscription and a key; the
# first REST_APIS published through the REST API, the rest seeded into its
# SQLite store (bench/compare.py seed) and the gateway restarted. Prints the
# resident memory per API and per key, then changes one API's endpoint under
# load (wrk -t1 -c32 on it plus 4 probing clients) and prints how long the
# change took to be live and the longest gap between answers.
#
# Usage: bench/scale.sh [APIS [REST_APIS]]   (defaults 10000 and 1000)
#        SLUICE_BIN=path/to/sluice bench/scale.sh ...
# Everything runs on 127.0.0.1; nothing is left running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

APIS=${1:-10000}
REST=${2:-1000}
[ "$REST" -le "$APIS" ] || REST=$APIS
install_missing wrk curl
if [ -z "${SLUICE_BIN:-}" ]; then cargo build --release --quiet --bin sluice; fi
BIN=${SLUICE_BIN:-target/release/sluice}
HELPER="python3 bench/compare.py"
PASSWORD=bench-password
PEPPER=bench-pepper
WORK=$(mktemp -d /tmp/sluice-scale.XXXXXX)
PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
read -r MOCK GW ADMIN < <($HELPER free-ports 3 | tr '\n' ' '; echo)

"$BIN" mock-backend --listen "127.0.0.1:$MOCK" >/dev/null 2>&1 & PIDS+=($!)
sluice_toml "$GW" "$ADMIN" "$WORK" > "$WORK/sluice.toml"
start() { # sets PID and RSS (kB, 2 s after ready)
  SLUICE_ADMIN_PASSWORD=$PASSWORD SLUICE_KEY_PEPPER=$PEPPER "$BIN" serve --config "$WORK/sluice.toml" \
    >>"$WORK/sluice.log" 2>&1 & PID=$!; PIDS+=($PID)
  for _ in $(seq 1200); do curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null && break; sleep 0.1; done
  sleep 2; RSS=$(rss_kb "$PID")
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; }

start; RSS_EMPTY=$RSS
echo "publishing $REST APIs, applications, subscriptions and keys through the REST API"
$HELPER publish --admin "http://127.0.0.1:$ADMIN" --password "$PASSWORD" \
  --backend "http://127.0.0.1:$MOCK" --apis "$REST" --pid "$PID" > "$WORK/scale.json"
stop; start; RSS_REST=$RSS
if [ "$APIS" -gt "$REST" ]; then
  echo "seeding APIs $REST..$APIS, then their keys, into the store"
  stop
  $HELPER seed --db "$WORK/sluice.db" --what apis --first "$REST" --last "$APIS" >/dev/null
  start; RSS_APIS=$RSS; stop
  $HELPER seed --db "$WORK/sluice.db" --what keys --first "$REST" --last "$APIS" --pepper "$PEPPER" >/dev/null
  start; RSS_KEYS=$RSS
else
  RSS_APIS=$RSS_REST; RSS_KEYS=$RSS_REST
fi
KEY=$(field key < "$WORK/scale.json"); CONTEXT=$(field context < "$WORK/scale.json")
API_ID=$(field api_id < "$WORK/scale.json")
wrk -t1 -c32 -d7s -H "apikey: $KEY" "http://127.0.0.1:$GW$CONTEXT/x" > "$WORK/wrk.txt" &
WRK=$!
sleep 0.5
$HELPER live-change --admin "http://127.0.0.1:$ADMIN" --password "$PASSWORD" \
  --gateway "http://127.0.0.1:$GW" --api-id "$API_ID" --context "$CONTEXT" --key "$KEY" \
  --new-url "http://127.0.0.1:$MOCK/changed" --marker '"/changed/x"' --before 3 --after 2 > "$WORK/live.json"
wait "$WRK"
python3 - "$WORK/live.json" "$APIS" "$REST" "$RSS_EMPTY" "$RSS_REST" "$RSS_APIS" "$RSS_KEYS" <<'PY'
import json, sys
live = json.load(open(sys.argv[1]))
apis, rest, empty, r_rest, r_apis, r_keys = map(int, sys.argv[2:])
print(f"\nresident memory: empty {empty / 1024:.1f} MB; {rest} APIs with keys (REST) {r_rest / 1024:.1f} MB; "
      f"{apis} APIs {r_apis / 1024:.1f} MB; with their keys {r_keys / 1024:.1f} MB")
if apis > rest:
    print(f"  per API (seeded, without keys): {(r_apis - r_rest) * 1024 / (apis - rest):.0f} bytes; "
          f"per key and subscription: {(r_keys - r_apis) * 1024 / (apis - rest):.0f} bytes")
print(f"  per API with its key, application and subscription (from empty): "
      f"{(r_keys - empty) * 1024 / apis:.0f} bytes")
print(f"\nlive change of one API among {apis} under load: PUT answered in {live['put_ms']:.1f} ms, "
      f"first answer through the new definition {live['first_new_answer_ms']:.1f} ms after the PUT was sent; "
      f"longest gap between answers during the change {live['gap_any_during_ms']:.1f} ms "
      f"(before it {live['gap_any_before_ms']:.1f} ms); failures {live['failures']}")
PY
