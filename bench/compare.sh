#!/usr/bin/env bash
# Sluice side by side with NGINX and HAProxy as rate-limiting reverse proxies
# (issue 6), all on 127.0.0.1 in front of one `sluice mock-backend`.
#
# Cases, each run with wrk for the same duration, in interleaved rounds (every
# round runs every case; the proxies' order rotates from round to round, and
# every other round runs the never-triggering limits before no limit):
#   direct                      wrk straight to the backend: the ceiling
#   {nginx,haproxy,sluice}_nolimit   proxy without a limit
#   {nginx,haproxy,sluice}_never     a global limit that never triggers
#   {nginx,haproxy,sluice}_cap       a global cap of 1000 requests/s
#   {nginx,haproxy}_cap_alike   the same cap, refusals answered the way
#                               Sluice answers them (same status, header
#                               fields and body), for answers of one size
#   {nginx,haproxy,sluice}_paced the never-triggering limit at about half
#                               load: each connection waits 2 ms after each
#                               answer, so latency is compared at one load
#                               (floor_paced: the floor passing on, so)
#   floor_nolimit, floor_refuse      the floor of Sluice's HTTP stack (hyper
#                               and tokio as Sluice runs them, nothing of
#                               Sluice's own: crates/sluice-gateway/examples/
#                               http_floor.rs) passing every request on, and
#                               answering every request with a copy of
#                               Sluice's throttled answer
#   redis_{exact,leased}_{never,cap} Sluice with counters in a private Redis
#   sluice_10k_apis             Sluice with 10 000 APIs, keys and limits
#                               published, through one of them
#   ai_direct, ai_stream_{plain,tokens}  streamed chat completions, straight
#                               to the mock and through an AI API without and
#                               with a (never-triggering) token limit
# Then Sluice's resident memory (idle, under load, 1000 open connections),
# the growth per API and per key, and a live change of one API under load.
#
# Usage: bench/compare.sh [--duration S] [--long] [--rounds N]
#                         [--connections N] [--threads N] [--apis N]
#                         [--rest-apis N] [--out DIR]
#   --duration S     seconds per case (default 5: the whole run takes 8 to 10
#                    minutes on 2 cores)
#   --long           30 s per case (about 35 minutes)
#   --rounds N       rounds (default 3); the table shows medians
#   --connections N  wrk connections (default 64), --threads N wrk threads (default 2)
#   --apis N         APIs of the scale case (default 10000; 0 skips it)
#   --rest-apis N    of which published through the REST API (default 1000;
#                    the rest are seeded into the store: see the scale case)
#   --out DIR        keep every raw wrk output and the results there
#   SLUICE_BIN=path  use a built binary instead of `cargo build --release`
#   FLOOR_BIN=path   the same for the floor (`--example http_floor`)
# Installs wrk, nginx-light (or nginx), haproxy and redis-server with apt-get
# when missing. Starts everything itself and leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
export PATH="$PATH:/usr/sbin:/sbin"

DURATION=5
ROUNDS=3
CONNECTIONS=64
THREADS=2
APIS=10000
REST_APIS=1000
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --long) DURATION=30; shift ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --apis) APIS="$2"; shift 2 ;;
    --rest-apis) REST_APIS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
CORES=$(nproc)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# The backend's rate is counted over whole seconds inside each run.
WINDOWS=$((DURATION - 2))
[ "$WINDOWS" -ge 1 ] || { echo "--duration must be at least 3 seconds" >&2; exit 2; }
# 1000 client connections plus as many upstream: raise the descriptor limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
PASSWORD=bench-password
HELPER="python3 bench/compare.py"

# ------------------------------------------------------------------ tools
install_missing wrk nginx haproxy redis-server curl
if [ -z "${SLUICE_BIN:-}" ]; then
  cargo build --release --quiet --bin sluice
fi
if [ -z "${FLOOR_BIN:-}" ]; then
  cargo build --release --quiet -p sluice-gateway --example http_floor
fi
BIN=${SLUICE_BIN:-target/release/sluice}
FLOOR=${FLOOR_BIN:-target/release/examples/http_floor}

# ------------------------------------------------------------------ processes
WORK=$(mktemp -d /tmp/sluice-compare.XXXXXX)
PIDS=()
SAMPLER=""
cleanup() {
  local status=$? log
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null
  if [ "$status" -ne 0 ]; then
    for log in "$WORK"/*.log "$WORK"/*/sluice.log; do
      [ -s "$log" ] && { echo "== $log" >&2; tail -5 "$log" >&2; }
    done
  fi
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "$OUT" ] && [ -d "$WORK" ]; then mkdir -p "$OUT" && cp -r "$WORK/wrk" "$WORK/results.jsonl" "$WORK"/*.json "$OUT"/ 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r MOCK_PORT NGINX_PORT HAPROXY_PORT REDIS_PORT \
  GW_PORT ADMIN_PORT EXACT_GW EXACT_ADMIN LEASED_GW LEASED_ADMIN SCALE_GW SCALE_ADMIN \
  FLOOR_PROXY_PORT FLOOR_REFUSE_PORT \
  <<< "$($HELPER free-ports 14)"

wait_port() { # port [seconds]
  local i
  for i in $(seq $((${2:-10} * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}
rss_sum_kb() { # pid,pid,...
  local total=0 pid
  for pid in ${1//,/ }; do total=$((total + $(rss_kb "$pid"))); done
  echo "$total"
}
mb() { awk -v kb="$1" 'BEGIN {printf "%.1f MB", kb / 1024}'; }

mkdir -p "$WORK/wrk" "$WORK/nginx-tmp" "$WORK/redis"

"$BIN" mock-backend --listen "127.0.0.1:$MOCK_PORT" >"$WORK/mock.log" 2>&1 & PIDS+=($!)
MOCK_PID=$!
wait_port "$MOCK_PORT"

sed -e "s|@WORK@|$WORK|g" -e "s|@PORT@|$NGINX_PORT|g" -e "s|@MOCK_PORT@|$MOCK_PORT|g" \
  -e "s|@WORKERS@|$CORES|g" bench/conf/nginx.conf.template > "$WORK/nginx.conf"
nginx -c "$WORK/nginx.conf" -p "$WORK" -e "$WORK/nginx-error.log" >"$WORK/nginx.out" 2>&1 & PIDS+=($!)
NGINX_PID=$!
wait_port "$NGINX_PORT"

sed -e "s|@PORT@|$HAPROXY_PORT|g" -e "s|@MOCK_PORT@|$MOCK_PORT|g" -e "s|@THREADS@|$CORES|g" \
  bench/conf/haproxy.cfg.template > "$WORK/haproxy.cfg"
haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 & PIDS+=($!)
HAPROXY_PID=$!
wait_port "$HAPROXY_PORT"

"$FLOOR" --listen "127.0.0.1:$FLOOR_PROXY_PORT" --backend "127.0.0.1:$MOCK_PORT" \
  --workers "$CORES" >"$WORK/floor-proxy.log" 2>&1 & PIDS+=($!)
FLOOR_PROXY_PID=$!
"$FLOOR" --listen "127.0.0.1:$FLOOR_REFUSE_PORT" --answer --workers "$CORES" >"$WORK/floor-refuse.log" 2>&1 & PIDS+=($!)
FLOOR_REFUSE_PID=$!
wait_port "$FLOOR_PROXY_PORT"; wait_port "$FLOOR_REFUSE_PORT"

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$WORK/redis" >"$WORK/redis.log" 2>&1 & PIDS+=($!)
wait_port "$REDIS_PORT"

start_sluice() { # name gateway-port admin-port [counters-toml]; sets SLUICE_PID
  mkdir -p "$WORK/$1"
  sluice_toml "$2" "$3" "$WORK/$1" "${4:-}" > "$WORK/$1/sluice.toml"
  SLUICE_ADMIN_PASSWORD=$PASSWORD "$BIN" serve --config "$WORK/$1/sluice.toml" >"$WORK/$1/sluice.log" 2>&1 & PIDS+=($!)
  SLUICE_PID=$!
  wait_port "$3" 120
  for _ in $(seq 1200); do curl -sf "http://127.0.0.1:$3/readyz" >/dev/null && return 0; sleep 0.1; done
  echo "Sluice ($1) did not become ready:" >&2; cat "$WORK/$1/sluice.log" >&2; return 1
}
redis_counters() { # strategy
  printf '[counters]\nbackend = "redis"\n[counters.redis]\nurl = "redis://127.0.0.1:%s"\nstrategy = "%s"\nkey_prefix = "bench-%s"\n' \
    "$REDIS_PORT" "$1" "$1"
}

start_sluice local "$GW_PORT" "$ADMIN_PORT"; LOCAL_PID=$SLUICE_PID
sleep 1
RSS_FRESH=$(rss_kb "$LOCAL_PID")
start_sluice exact "$EXACT_GW" "$EXACT_ADMIN" "$(redis_counters exact)"; EXACT_PID=$SLUICE_PID
start_sluice leased "$LEASED_GW" "$LEASED_ADMIN" "$(redis_counters leased)"; LEASED_PID=$SLUICE_PID

# ------------------------------------------------------------------ definitions
admin() { # admin-port method path [json]
  curl -sf -u "admin:$PASSWORD" -H 'content-type: application/json' -X "$2" \
    "http://127.0.0.1:$1$3" ${4:+-d "$4"}
}
publish_bench_apis() { # admin-port: prints the key that opens all of them
  local port=$1 ids=() id app
  api() { # name maxTps [subtypeConfiguration]
    admin "$port" POST /api/am/publisher/v4/apis "{
      \"name\": \"$1\", \"context\": \"/$1\", \"version\": \"v1\",
      \"endpointConfig\": {\"endpoint_type\": \"http\",
        \"production_endpoints\": {\"url\": \"http://127.0.0.1:$MOCK_PORT${4:-}\"}},
      ${3:+\"subtypeConfiguration\": $3,}
      \"maxTps\": $2 }" | field id
  }
  local ai='{"subtype": "AIAPI", "configuration": {"llmProviderName": "OpenAI"}}'
  ids+=("$(api nolimit null)")
  ids+=("$(api never '{"production": 1000000000, "productionTimeUnit": "SECOND"}')")
  ids+=("$(api capped '{"production": 1000, "productionTimeUnit": "SECOND"}')")
  ids+=("$(api aiplain null "$ai" /v1)")
  ids+=("$(api aitokens '{"productionTimeUnit": "MINUTE", "tokenBasedThrottlingConfiguration": {
      "isTokenBasedThrottlingEnabled": true, "productionMaxPromptTokenCount": 1000000000000,
      "productionMaxCompletionTokenCount": 1000000000000, "productionMaxTotalTokenCount": 1000000000000}}' "$ai" /v1)")
  app=$(admin "$port" POST /api/am/devportal/v3/applications '{"name":"bench"}' | field applicationId)
  for id in "${ids[@]}"; do
    admin "$port" POST /api/am/devportal/v3/subscriptions \
      "{\"apiId\":\"$id\",\"applicationId\":\"$app\",\"throttlingPolicy\":\"Unlimited\"}" >/dev/null
  done
  admin "$port" POST "/api/am/devportal/v3/applications/$app/api-keys/PRODUCTION/generate" \
    '{"validityPeriod":-1}' | field apikey
}
KEY_LOCAL=$(publish_bench_apis "$ADMIN_PORT")
KEY_EXACT=$(publish_bench_apis "$EXACT_ADMIN")
KEY_LEASED=$(publish_bench_apis "$LEASED_ADMIN")
sleep 1
RSS_IDLE=$(rss_kb "$LOCAL_PID")
NGINX_PIDS=$($HELPER children "$NGINX_PID")
RSS_NGINX_IDLE=$(rss_sum_kb "$NGINX_PIDS")
RSS_HAPROXY_IDLE=$(rss_kb "$HAPROXY_PID")

# The scale case: a separate Sluice with APIS APIs, each with limits and its
# own application, subscription and key. The first REST_APIS go through the
# REST API (timed, with the memory growth they cause); every write rebuilds
# the whole routing snapshot, so the rest are seeded into its SQLite store
# (clones of the first API, keys digested with the pepper it runs with) and
# the gateway restarted: then the steady-state memory per API and per key.
SCALE_PID=""
SCALE_PEPPER=bench-pepper
stop_pid() { # pid: stop one process this script started
  local pid=$1 kept=() p
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  PIDS=("${kept[@]}")
}
start_scale() { # sets SCALE_PID, READY (seconds to ready) and RSS_NOW (kB, 2 s after)
  local started; started=$(date +%s.%N)
  SLUICE_KEY_PEPPER=$SCALE_PEPPER start_sluice scale "$SCALE_GW" "$SCALE_ADMIN"
  SCALE_PID=$SLUICE_PID
  READY=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  sleep 2
  RSS_NOW=$(rss_kb "$SCALE_PID")
}
if [ "$APIS" -gt 0 ]; then
  REST=$(( APIS < REST_APIS ? APIS : REST_APIS ))
  start_scale
  echo "scale case: publishing $REST APIs, then $REST applications + subscriptions + keys through the REST API"
  $HELPER publish --admin "http://127.0.0.1:$SCALE_ADMIN" --password "$PASSWORD" \
    --backend "http://127.0.0.1:$MOCK_PORT" --apis "$REST" --pid "$SCALE_PID" > "$WORK/scale.json"
  SCALE_KEY=$(field key < "$WORK/scale.json")
  SCALE_CONTEXT=$(field context < "$WORK/scale.json")
  stop_pid "$SCALE_PID"; start_scale
  READY0=$READY; RSS_R0=$RSS_NOW; READY1=$READY; RSS_R1=$RSS_NOW; READY2=$READY; RSS_R2=$RSS_NOW
  if [ "$APIS" -gt "$REST" ]; then
    echo "scale case: seeding APIs $REST..$APIS into the store, restarting, then their keys, restarting"
    stop_pid "$SCALE_PID"
    $HELPER seed --db "$WORK/scale/sluice.db" --what apis --first "$REST" --last "$APIS" >/dev/null
    start_scale; READY1=$READY; RSS_R1=$RSS_NOW
    stop_pid "$SCALE_PID"
    $HELPER seed --db "$WORK/scale/sluice.db" --what keys --first "$REST" --last "$APIS" \
      --pepper "$SCALE_PEPPER" > "$WORK/seed.json"
    start_scale; READY2=$READY; RSS_R2=$RSS_NOW
  fi
fi

# ------------------------------------------------------------------ cases
AI_LUA="$WORK/ai-stream.lua"
cat > "$AI_LUA" <<'LUA'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.body = '{"model":"bench","stream":true,"max_tokens":32,"messages":[{"role":"user","content":"Write a short poem about sluices."}]}'
LUA
# Each connection waits this long after an answer before its next request:
# about half of what the proxies serve flat out, so that latency is compared
# at one load rather than at each proxy's own saturation.
PACED_LUA="$WORK/paced.lua"
echo 'function delay() return 2 end' > "$PACED_LUA"
declare -A URL KEY LUA RSS_OF CPU_OF
URL[direct]="http://127.0.0.1:$MOCK_PORT/x"
for group in nolimit never cap; do
  path=$group; [ "$group" = cap ] && path=capped
  URL[nginx_$group]="http://127.0.0.1:$NGINX_PORT/$path/v1/x"
  URL[haproxy_$group]="http://127.0.0.1:$HAPROXY_PORT/$path/v1/x"
  URL[sluice_$group]="http://127.0.0.1:$GW_PORT/$path/v1/x"; KEY[sluice_$group]=$KEY_LOCAL; RSS_OF[sluice_$group]=$LOCAL_PID
  URL[redis_exact_$group]="http://127.0.0.1:$EXACT_GW/$path/v1/x"; KEY[redis_exact_$group]=$KEY_EXACT
  URL[redis_leased_$group]="http://127.0.0.1:$LEASED_GW/$path/v1/x"; KEY[redis_leased_$group]=$KEY_LEASED
  CPU_OF[nginx_$group]=$NGINX_PIDS; CPU_OF[haproxy_$group]=$HAPROXY_PID; CPU_OF[sluice_$group]=$LOCAL_PID
  CPU_OF[redis_exact_$group]=$EXACT_PID; CPU_OF[redis_leased_$group]=$LEASED_PID
done
URL[nginx_cap_alike]="http://127.0.0.1:$NGINX_PORT/alike/v1/x"; CPU_OF[nginx_cap_alike]=$NGINX_PIDS
URL[haproxy_cap_alike]="http://127.0.0.1:$HAPROXY_PORT/alike/v1/x"; CPU_OF[haproxy_cap_alike]=$HAPROXY_PID
for proxy in nginx haproxy sluice; do
  URL[${proxy}_paced]=${URL[${proxy}_never]}; KEY[${proxy}_paced]=${KEY[${proxy}_never]:-}
  CPU_OF[${proxy}_paced]=${CPU_OF[${proxy}_never]}; LUA[${proxy}_paced]=$PACED_LUA
done
URL[floor_nolimit]="http://127.0.0.1:$FLOOR_PROXY_PORT/x"; CPU_OF[floor_nolimit]=$FLOOR_PROXY_PID
URL[floor_refuse]="http://127.0.0.1:$FLOOR_REFUSE_PORT/x"; CPU_OF[floor_refuse]=$FLOOR_REFUSE_PID
URL[floor_paced]=${URL[floor_nolimit]}; CPU_OF[floor_paced]=$FLOOR_PROXY_PID; LUA[floor_paced]=$PACED_LUA
CPU_OF[ai_stream_plain]=$LOCAL_PID; CPU_OF[ai_stream_tokens]=$LOCAL_PID
URL[ai_direct]="http://127.0.0.1:$MOCK_PORT/v1/chat/completions"; LUA[ai_direct]=$AI_LUA
URL[ai_stream_plain]="http://127.0.0.1:$GW_PORT/aiplain/v1/chat/completions"; LUA[ai_stream_plain]=$AI_LUA
URL[ai_stream_tokens]="http://127.0.0.1:$GW_PORT/aitokens/v1/chat/completions"; LUA[ai_stream_tokens]=$AI_LUA
KEY[ai_stream_plain]=$KEY_LOCAL; KEY[ai_stream_tokens]=$KEY_LOCAL
if [ -n "$SCALE_PID" ]; then
  URL[sluice_10k_apis]="http://127.0.0.1:$SCALE_GW$SCALE_CONTEXT/x"; KEY[sluice_10k_apis]=$SCALE_KEY
  RSS_OF[sluice_10k_apis]=$SCALE_PID; CPU_OF[sluice_10k_apis]=$SCALE_PID
fi

round_cases() { # round: the cases of one round, proxies rotated
  local r=$1 groups=(nolimit never cap paced) group i cases
  # Every other round runs the never-triggering limits before no limit, so
  # that the limiter-cost ratio is not biased by the order within a round.
  [ $((r % 2)) -eq 0 ] || groups=(never nolimit cap paced)
  echo direct
  for group in "${groups[@]}"; do
    cases=(nginx_$group haproxy_$group sluice_$group)
    case $group in
      nolimit) cases+=(floor_nolimit) ;;
      cap) cases+=(floor_refuse nginx_cap_alike haproxy_cap_alike) ;;
      paced) cases+=(floor_paced) ;;
    esac
    for i in "${!cases[@]}"; do echo "${cases[$(((i + r) % ${#cases[@]}))]}"; done
  done
  if [ $((r % 2)) -eq 0 ]; then echo redis_exact_never redis_leased_never redis_exact_cap redis_leased_cap
  else echo redis_leased_never redis_exact_never redis_leased_cap redis_exact_cap; fi
  [ -n "$SCALE_PID" ] && echo sluice_10k_apis
  echo ai_direct
  if [ $((r % 2)) -eq 0 ]; then echo ai_stream_plain ai_stream_tokens; else echo ai_stream_tokens ai_stream_plain; fi
}
ORDER="direct nginx_nolimit haproxy_nolimit sluice_nolimit floor_nolimit nginx_never haproxy_never sluice_never
  nginx_cap haproxy_cap sluice_cap floor_refuse nginx_cap_alike haproxy_cap_alike
  nginx_paced haproxy_paced sluice_paced floor_paced redis_exact_never redis_leased_never redis_exact_cap redis_leased_cap
  sluice_10k_apis ai_direct ai_stream_plain ai_stream_tokens"

backend_count() { curl -sf "http://127.0.0.1:$MOCK_PORT/__mock/stats" | field requests; }
forwarded_metric() { # admin-port api-name: Sluice's own count of forwarded requests
  curl -sf -u "admin:$PASSWORD" "http://127.0.0.1:$1/metrics" \
    | awk -v api="api=\"$2\"" '/^sluice_backend_forwarded_total\{/ && index($0, api) {sum += $NF} END {printf "%d\n", sum}'
}
sample_rss() { # pid file: the peak VmRSS (kB), written as it grows
  local max=0 v
  while :; do
    v=$(awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
    # Renamed into place: the sampler is killed at the end of a case, and a
    # kill between truncating and writing the file would leave it empty.
    if [ "$v" -gt "$max" ]; then max=$v; echo "$max" > "$2.new" && mv "$2.new" "$2"; fi
    sleep 0.2
  done
}
wrk_run() { # case duration connections output
  local lua=()
  [ -n "${LUA[$1]:-}" ] && lua=(-s "${LUA[$1]}")
  wrk -t"$THREADS" -c"$3" -d"$2s" --latency -H "apikey: ${KEY[$1]:-none}" "${lua[@]}" "${URL[$1]}" > "$4"
}
RESULTS="$WORK/results.jsonl"
: > "$RESULTS"
: > "$WORK/counted.txt"
run_case() { # round case
  local before after rss_file="$WORK/rss-$2" metric_before="" window_count window_seconds
  echo 0 > "$rss_file"
  if [ -n "${RSS_OF[$2]:-}" ]; then sample_rss "${RSS_OF[$2]}" "$rss_file" & SAMPLER=$!; fi
  [ "$2" = sluice_never ] && metric_before=$(forwarded_metric "$ADMIN_PORT" /never/v1)
  before=$(backend_count)
  local cpu_before mock_before cpu_after mock_after
  cpu_before=$(cpu_ticks "${CPU_OF[$2]:-}"); mock_before=$(cpu_ticks "$MOCK_PID")
  wrk_run "$2" "$DURATION" "$CONNECTIONS" "$WORK/wrk/$1-$2.txt" &
  local wrk_pid=$!
  read -r window_count window_seconds <<< "$($HELPER window-count --port "$MOCK_PORT" --seconds "$WINDOWS")"
  wait "$wrk_pid"
  cpu_after=$(cpu_ticks "${CPU_OF[$2]:-}"); mock_after=$(cpu_ticks "$MOCK_PID")
  after=$(backend_count)
  if [ -n "$SAMPLER" ]; then kill "$SAMPLER"; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=""; fi
  if [ -n "$metric_before" ]; then
    echo "round $1: wrk completed $(grep -oE '^ +[0-9]+ requests in' "$WORK/wrk/$1-$2.txt" | grep -oE '[0-9]+'), backend received $((after - before)), /metrics forwarded +$(( $(forwarded_metric "$ADMIN_PORT" /never/v1) - metric_before ))" >> "$WORK/counted.txt"
  fi
  $HELPER wrk-result --round "$1" --case "$2" --file "$WORK/wrk/$1-$2.txt" \
    --backend "$((after - before))" --duration "$DURATION" --rss "$(cat "$rss_file")" \
    --window-count "$window_count" --window-seconds "$window_seconds" \
    --cpu $cpu_before $cpu_after --mock-cpu $mock_before $mock_after --tick "$(getconf CLK_TCK)" \
    $([ -n "${CPU_OF[$2]:-}" ] || echo --no-proxy) >> "$RESULTS"
  tail -1 "$RESULTS" | python3 -c 'import json, sys; r = json.load(sys.stdin)
print("  %-22s %9.0f req/s  p99 %s ms  backend %.0f/s  (load %s)" % (r["case"], r["rps"], r["p99"], r["backend_rps"], sys.argv[1]))' \
    "$(cut -d' ' -f1 /proc/loadavg)"
  sleep 0.5
}

echo
echo "machine: $CORES cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/ {print $2}') GiB; load average at the start: $LOAD_START, before the rounds (this script's own setup included): $(cut -d' ' -f1-3 /proc/loadavg)"
SLUICE_VERSION="$BIN"
[ -z "${SLUICE_BIN:-}" ] && SLUICE_VERSION="$BIN built from $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' with local changes')"
echo "versions: $(nginx -v 2>&1 | sed 's/.*: //'), $(haproxy -v | head -1 | cut -d' ' -f1-3), $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2), redis $(redis-server --version | grep -oE 'v=[^ ]+' | cut -d= -f2), sluice: $SLUICE_VERSION"
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s per case, $ROUNDS rounds; nginx $CORES workers, haproxy $CORES threads, Sluice $CORES gateway workers"
if awk -v l="${LOAD_START%% *}" -v c="$CORES" 'BEGIN {exit !(l > c / 2)}'; then
  echo "warning: load average ${LOAD_START%% *} when the script started: other work competes for the $CORES cores, figures will be noisy"
fi
echo "warming up every target (1 s each)"
for c in $ORDER; do
  [ -n "${URL[$c]:-}" ] && wrk_run "$c" 1 "$CONNECTIONS" /dev/null
done
for r in $(seq "$ROUNDS"); do
  echo "round $r/$ROUNDS (load $(cut -d' ' -f1 /proc/loadavg))"
  for c in $(round_cases "$r"); do run_case "$r" "$c"; done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------------ memory
echo
echo "memory with 1000 open idle keep-alive client connections (one request each)"
hold_rss() { # url key pids
  $HELPER hold --url "$1" --key "$2" --connections 1000 --pids "$3" > "$WORK/hold.json"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["rss_kb"], r["statuses"])' "$WORK/hold.json"
}
read -r HOLD_SLUICE HOLD_SLUICE_ST <<< "$(hold_rss "http://127.0.0.1:$GW_PORT/never/v1/x" "$KEY_LOCAL" "$LOCAL_PID")"
read -r HOLD_NGINX _ <<< "$(hold_rss "http://127.0.0.1:$NGINX_PORT/never/v1/x" "" "$NGINX_PIDS")"
read -r HOLD_HAPROXY _ <<< "$(hold_rss "http://127.0.0.1:$HAPROXY_PORT/never/v1/x" "" "$HAPROXY_PID")"
echo "peak under wrk -c1000 for ${DURATION}s (never-triggering limit)"
echo 0 > "$WORK/rss-c1000"
sample_rss "$LOCAL_PID" "$WORK/rss-c1000" & SAMPLER=$!
wrk_run sluice_never "$DURATION" 1000 "$WORK/wrk/c1000-sluice_never.txt"
kill "$SAMPLER"; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=""
RSS_C1000=$(cat "$WORK/rss-c1000")
C1000_RPS=$(grep -oE 'Requests/sec: +[0-9.]+' "$WORK/wrk/c1000-sluice_never.txt" | grep -oE '[0-9.]+$')
RSS_PEAK=$(python3 -c 'import json,sys; print(max((json.loads(l)["rss_peak_kb"] or 0) for l in open(sys.argv[1]) if json.loads(l)["case"].startswith("sluice_") and json.loads(l)["case"] != "sluice_10k_apis"))' "$RESULTS")
RSS_AFTER=$(rss_kb "$LOCAL_PID")

# ------------------------------------------------------------------ live change
if [ -n "$SCALE_PID" ]; then
  echo
  echo "live change of one API among $APIS, under load (wrk -t1 -c32 on it, plus 4 probing clients)"
  SCALE_API_ID=$(field api_id < "$WORK/scale.json")
  wrk -t1 -c32 -d7s -H "apikey: $SCALE_KEY" "http://127.0.0.1:$SCALE_GW$SCALE_CONTEXT/x" > "$WORK/wrk/live-change-load.txt" &
  WRK_BG=$!
  sleep 0.5
  $HELPER live-change --admin "http://127.0.0.1:$SCALE_ADMIN" --password "$PASSWORD" \
    --gateway "http://127.0.0.1:$SCALE_GW" --api-id "$SCALE_API_ID" --context "$SCALE_CONTEXT" \
    --key "$SCALE_KEY" --new-url "http://127.0.0.1:$MOCK_PORT/changed" --marker '"/changed/x"' \
    --before 3 --after 2 > "$WORK/live-change.json"
  wait "$WRK_BG"
  METRICS_SECONDS=$(curl -s -o "$WORK/metrics.txt" -w '%{time_total}' -u "admin:$PASSWORD" "http://127.0.0.1:$SCALE_ADMIN/metrics")
  METRICS_BYTES=$(wc -c < "$WORK/metrics.txt"); rm -f "$WORK/metrics.txt"
  sleep 1
  METRICS_RSS=$(rss_kb "$SCALE_PID")
fi

# ------------------------------------------------------------------ report
echo
echo "================================================================================"
echo "bench/compare.sh --duration $DURATION --rounds $ROUNDS --connections $CONNECTIONS --threads $THREADS --apis $APIS"
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency per case, medians of $ROUNDS interleaved rounds; all on 127.0.0.1,"
echo "$CORES cores shared by wrk, the proxy under test, the mock backend (and the idle others)."
echo "load average at the start: $LOAD_START; after the rounds: $LOAD_AFTER (wrk, the proxy and the mock alone make about 4)"
echo "req/s: all answers (for the caps mostly refusals, 503); p50/p99: wrk's latency of all answers;"
echo "backend/s: requests the mock received per second, counted over the $WINDOWS whole seconds inside each run;"
echo "refused/s: non-2xx answers per second; x direct, x nginx, x haproxy: median over the rounds of req/s"
echo "divided by that round's direct (ai_direct for ai_*) case and by the same group's NGINX and HAProxy case."
echo
$HELPER table "$RESULTS" --order "$ORDER" --json "$WORK/summary.json" --cores "$CORES"
echo
echo "never-triggering limit: every request counted by Sluice (wrk's completed requests, the mock's count, /metrics)"
sed 's/^/  /' "$WORK/counted.txt"
echo
echo "resident memory (VmRSS; NGINX: master + workers)"
echo "  Sluice fresh start, before any admin call $(mb "$RSS_FRESH")"
echo "  Sluice idle, bench APIs published         $(mb "$RSS_IDLE")  (after admin calls: one argon2 verification)"
echo "  Sluice peak under load (wrk -c$CONNECTIONS)        $(mb "$RSS_PEAK")"
echo "  Sluice after all the runs                 $(mb "$RSS_AFTER")"
echo "  Sluice, 1000 idle client connections      $(mb "$HOLD_SLUICE")  (answers: $HOLD_SLUICE_ST)"
echo "  Sluice peak under wrk -c1000              $(mb "$RSS_C1000")  ($C1000_RPS req/s)"
echo "  NGINX idle / 1000 idle client connections    $(mb "$RSS_NGINX_IDLE") / $(mb "$HOLD_NGINX")"
echo "  HAProxy idle / 1000 idle client connections  $(mb "$RSS_HAPROXY_IDLE") / $(mb "$HOLD_HAPROXY")"
if [ -n "$SCALE_PID" ]; then
  echo
  python3 - "$WORK/scale.json" "$WORK/live-change.json" "$APIS" "$RSS_R0" "$RSS_R1" "$RSS_R2" \
    "$READY0" "$READY1" "$READY2" "$METRICS_BYTES" "$METRICS_SECONDS" "$METRICS_RSS" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); l = json.load(open(sys.argv[2]))
apis = int(sys.argv[3]); r0, r1, r2 = (int(v) for v in sys.argv[4:7]); ready = sys.argv[7:10]
metrics_bytes, metrics_seconds, metrics_rss = int(sys.argv[10]), float(sys.argv[11]), int(sys.argv[12])
n = s["apis"]
mb = lambda kb: f"{kb / 1024:.1f} MB"
print(f"scale: {apis} APIs, each with limits and one application + subscription + key")
print(f"  through the REST API (4 admin clients): {n} APIs in {s['publish_seconds']:.1f} s ({n / s['publish_seconds']:.0f}/s),"
      f" {n} applications + subscriptions + keys in {s['keys_seconds']:.1f} s ({n / s['keys_seconds']:.1f}/s, 3 calls each);"
      f" one API write at {n} APIs and {n} keys: {s['write_ms_at_size']:.0f} ms")
print(f"  VmRSS while publishing live: fresh {mb(s['rss_before_kb'])}, after {s['tenth']} APIs {mb(s['rss_after_tenth_kb'])},"
      f" after {n} APIs {mb(s['rss_after_apis_kb'])}, after {n} keys {mb(s['rss_after_keys_kb'])}")
print(f"    growth per API {(s['rss_after_apis_kb'] - s['rss_before_kb']) * 1024 / n:,.0f} bytes"
      f" (from API {s['tenth']} to {n}: {(s['rss_after_apis_kb'] - s['rss_after_tenth_kb']) * 1024 / (n - s['tenth']):,.0f});"
      f" per key {(s['rss_after_keys_kb'] - s['rss_after_apis_kb']) * 1024 / n:,.0f} bytes")
print(f"  VmRSS after a restart: {n} APIs + keys {mb(r0)} (ready in {ready[0]} s)", end="")
if apis > n:
    print(f"; {apis} APIs + {n} keys {mb(r1)} (ready in {ready[1]} s); {apis} APIs + {apis} keys {mb(r2)} (ready in {ready[2]} s)")
    print(f"    steady-state growth per API {(r1 - r0) * 1024 / (apis - n):,.0f} bytes (goal < 2048), per key {(r2 - r1) * 1024 / (apis - n):,.0f} bytes")
else:
    print()
print(f"  one /metrics scrape with {apis} APIs: {metrics_bytes / 1e6:.1f} MB of text in {metrics_seconds:.2f} s; VmRSS after it {mb(metrics_rss)}")
print(f"live change: PUT of one API's endpoint among {apis}, under load:")
first = l['first_new_answer_ms']
print(f"  PUT answered in {l['put_ms']:.0f} ms; first answer through the new definition"
      f" {'-' if first is None else f'{first:.0f}'} ms after the PUT was sent;"
      f" requests sent after the PUT was answered that still went through the old one: {l['old_answers_sent_after_put_returned']}")
print(f"  longest gap between answers, any client: {l['gap_any_during_ms']:.1f} ms during the change vs {l['gap_any_before_ms']:.1f} ms in the 2.5 s before")
print(f"  longest gap on one connection:           {l['gap_one_during_ms']:.1f} ms during the change vs {l['gap_one_before_ms']:.1f} ms before")
print(f"  probe answers {l['responses']} ({l['rate_per_s']:.0f}/s), failures {l['failures']} {l['failure_kinds']}")
PY
fi
if [ -n "$OUT" ]; then echo; echo "raw outputs kept in $OUT"; fi
