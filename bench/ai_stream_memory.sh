#!/usr/bin/env bash
# Memory of the gateway while a ~50 MB streamed AI response passes through it
# (issue 3: "a 50 MB streamed response passes through while the gateway's
# memory stays flat"). The release binary and its mock backend; an OpenAI AI
# API with a token limit (so the reservation, the usage extractor and the
# hidden usage chunk are all in play); one streamed chat completion of
# TOKENS tokens (about 176 bytes of SSE each), read by curl at full speed and
# then at RATE (so the stream lasts seconds and backpressure reaches the
# backend). Prints the gateway's VmRSS before, its peak during, and after each
# stream, the bytes received against the mock's own answer, and the tokens
# counted.
#
# Usage: bench/ai_stream_memory.sh [TOKENS] [RATE]
#   TOKENS  completion tokens of the stream (default 300000, about 53 MB)
#   RATE    curl --limit-rate of the slow read (default 10M)
# Everything runs on 127.0.0.1; nothing is left running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

TOKENS="${1:-300000}"
RATE="${2:-10M}"
MOCK_PORT=19102
GATEWAY_PORT=19282
ADMIN_PORT=19445
PASSWORD=bench-password

install_missing curl
cargo build --release --quiet --bin sluice
BIN=target/release/sluice

WORK=$(mktemp -d)
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

cat > "$WORK/sluice.toml" <<TOML
[gateway]
listen = "127.0.0.1:$GATEWAY_PORT"
[admin]
listen = "127.0.0.1:$ADMIN_PORT"
[store]
url = "sqlite://$WORK/sluice.db"
[log]
level = "warn"
TOML

"$BIN" mock-backend --listen "127.0.0.1:$MOCK_PORT" >"$WORK/mock.log" 2>&1 & PIDS+=($!)
SLUICE_ADMIN_PASSWORD=$PASSWORD "$BIN" serve --config "$WORK/sluice.toml" >"$WORK/sluice.log" 2>&1 & PIDS+=($!)
SLUICE_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ADMIN_PORT/healthz" >/dev/null && break; sleep 0.1; done

admin() { curl -sf -u "admin:$PASSWORD" -H 'content-type: application/json' "$@"; }
API=$(admin -X POST "http://127.0.0.1:$ADMIN_PORT/api/am/publisher/v4/apis" -d "{
  \"name\": \"stream\", \"context\": \"/stream\", \"version\": \"v1\",
  \"endpointConfig\": {\"endpoint_type\": \"http\",
    \"production_endpoints\": {\"url\": \"http://127.0.0.1:$MOCK_PORT\"}},
  \"subtypeConfiguration\": {\"subtype\": \"AIAPI\", \"configuration\": {\"llmProviderName\": \"OpenAI\"}},
  \"maxTps\": {\"productionTimeUnit\": \"HOUR\", \"tokenBasedThrottlingConfiguration\": {
    \"isTokenBasedThrottlingEnabled\": true, \"productionMaxTotalTokenCount\": 1000000000}}}" | field id)
APP=$(admin -X POST "http://127.0.0.1:$ADMIN_PORT/api/am/devportal/v3/applications" -d '{"name":"bench"}' | field applicationId)
admin -X POST "http://127.0.0.1:$ADMIN_PORT/api/am/devportal/v3/subscriptions" \
  -d "{\"apiId\":\"$API\",\"applicationId\":\"$APP\",\"throttlingPolicy\":\"Unlimited\"}" >/dev/null
KEY=$(admin -X POST "http://127.0.0.1:$ADMIN_PORT/api/am/devportal/v3/applications/$APP/api-keys/PRODUCTION/generate" \
  -d '{"validityPeriod":-1}' | field apikey)

# A streamed chat completion that does not ask for usage: the gateway adds
# `include_usage`, counts the usage chunk and hides it from the client.
BODY="{\"model\":\"gpt-bench\",\"stream\":true,\"max_tokens\":$TOKENS,\"messages\":[{\"role\":\"user\",\"content\":\"Tell me a very long story.\"}]}"
mb() { awk -v kb="$1" 'BEGIN {printf "%.1f MB", kb / 1024}'; }

# The reference: the same request straight to the mock.
EXPECTED=$(curl -s -H 'content-type: application/json' -d "$BODY" \
  "http://127.0.0.1:$MOCK_PORT/chat/completions" | wc -c)

stream_through() { # label [curl options...]
  local label="$1"; shift
  local before peak=0 received sample after
  before=$(rss_kb "$SLUICE_PID")
  curl -s "$@" -H "Authorization: Bearer $KEY" -H 'content-type: application/json' -d "$BODY" \
    "http://127.0.0.1:$GATEWAY_PORT/stream/v1/chat/completions" -o "$WORK/received" &
  local client=$!
  while kill -0 "$client" 2>/dev/null; do
    sample=$(rss_kb "$SLUICE_PID"); [ "$sample" -gt "$peak" ] && peak=$sample
    sleep 0.05
  done
  wait "$client"
  received=$(wc -c < "$WORK/received")
  sleep 0.2
  after=$(rss_kb "$SLUICE_PID")
  printf '%-22s %12s %14s %14s %14s %10s\n' "$label" "$received" "$(mb "$before")" "$(mb "$peak")" "$(mb "$after")" \
    "$([ "$received" -eq "$EXPECTED" ] && echo complete || echo SHORT)"
}

echo "stream of $TOKENS tokens: the mock sends $EXPECTED bytes ($(awk -v b="$EXPECTED" 'BEGIN {printf "%.1f", b / 1048576}') MiB)"
echo "gateway VmRSS at idle: $(mb "$(rss_kb "$SLUICE_PID")")"
printf '%-22s %12s %14s %14s %14s %10s\n' read bytes "RSS before" "RSS peak" "RSS after" ""
stream_through "full speed"
stream_through "--limit-rate $RATE" --limit-rate "$RATE"
grep -q '"usage"' "$WORK/received" && echo "a usage chunk reached the client" || echo "no usage chunk reached the client"
echo "tokens counted (completion, reported):"
curl -s -u "admin:$PASSWORD" "http://127.0.0.1:$ADMIN_PORT/metrics" \
  | grep '^sluice_backend_tokens_total' | grep 'environment="production",dimension="completion_tokens"' | grep 'source="reported"' | sed 's/^/  /'
