//! The Lua scripts every node runs on Redis. Each touches the keys of one
//! (API, environment) only, all under one hash tag, so it runs on one slot of
//! a Redis Cluster. Windows come from Redis server time (`TIME`), so every
//! node counts in the same window whatever its own clock says.
//!
//! Window key: `{prefix:api:env}:<unit ms>:<window index>`, a hash with the
//! fields `r`, `p`, `c`, `t` (requests, prompt, completion, total tokens),
//! expiring by itself two windows after its end.

use redis::Script;
use std::sync::LazyLock;

/// Check every limited dimension and count the cost, all or nothing.
///
/// ARGV: unit ms, then 4 caps (-1 unlimited), then 4 costs.
/// Returns `{admitted, window, window_end_ms, now_ms, refused_dimension
/// (-1), used r, p, c, t}` (used after counting when admitted).
pub(crate) static ADMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local unit = tonumber(ARGV[1])
local window = math.floor(now / unit)
local key = KEYS[1] .. ':' .. unit .. ':' .. window
local fields = {'r', 'p', 'c', 't'}
local used = redis.call('HMGET', key, 'r', 'p', 'c', 't')
for i = 1, 4 do used[i] = tonumber(used[i] or '0') or 0 end
for i = 1, 4 do
  local cap = tonumber(ARGV[1 + i])
  local cost = tonumber(ARGV[5 + i])
  if cap >= 0 then
    local fits
    if cost == 0 then fits = used[i] < cap else fits = used[i] + cost <= cap end
    if not fits then
      return {0, window, (window + 1) * unit, now, i - 1, used[1], used[2], used[3], used[4]}
    end
  end
end
for i = 1, 4 do
  local cost = tonumber(ARGV[5 + i])
  if cost > 0 then used[i] = redis.call('HINCRBY', key, fields[i], cost) end
end
redis.call('PEXPIRE', key, unit * 2 + 1000)
return {1, window, (window + 1) * unit, now, -1, used[1], used[2], used[3], used[4]}
"#,
    )
});

/// Claim a block of the window's remaining budget for one node (`leased`).
///
/// For each limited dimension: `need` is all-or-nothing (a reservation that
/// does not fit the node's block claims exactly what is missing); `extra` is
/// granted up to `ceil((cap - granted - need) / (2 * nodes))`, so blocks
/// shrink to single units as the budget runs out (and a last unit left is
/// still granted whole).
///
/// ARGV: unit ms, nodes, 4 caps (-1 unlimited), 4 needs, 4 extras.
/// Returns `{granted (1/0), window, window_end_ms, now_ms, refused dimension
/// (-1), grant r, p, c, t, total r, p, c, t}`.
pub(crate) static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local unit = tonumber(ARGV[1])
local nodes = math.max(1, tonumber(ARGV[2]))
local window = math.floor(now / unit)
local key = KEYS[1] .. ':' .. unit .. ':' .. window
local fields = {'r', 'p', 'c', 't'}
local used = redis.call('HMGET', key, 'r', 'p', 'c', 't')
local grant = {0, 0, 0, 0}
for i = 1, 4 do used[i] = tonumber(used[i] or '0') or 0 end
for i = 1, 4 do
  local cap = tonumber(ARGV[2 + i])
  local need = tonumber(ARGV[6 + i])
  local extra = tonumber(ARGV[10 + i])
  if cap >= 0 then
    local left = cap - used[i]
    if need > left or (need == 0 and extra > 0 and left <= 0) then
      return {0, window, (window + 1) * unit, now, i - 1, 0, 0, 0, 0, used[1], used[2], used[3], used[4]}
    end
    grant[i] = need + math.min(extra, math.ceil((left - need) / (2 * nodes)))
  else
    grant[i] = need + extra
  end
end
for i = 1, 4 do
  if grant[i] > 0 then used[i] = redis.call('HINCRBY', key, fields[i], grant[i]) end
end
redis.call('PEXPIRE', key, unit * 2 + 1000)
return {1, window, (window + 1) * unit, now, -1, grant[1], grant[2], grant[3], grant[4], used[1], used[2], used[3], used[4]}
"#,
    )
});

/// Settle an admission: in its own window still current, add `actual -
/// counted` (never below zero); once closed, charge only the overrun
/// `max(0, actual - counted)` to the current window. A refund is a
/// settlement with `actual` all zero.
///
/// ARGV: unit ms, admission window, 4 counted, 4 actual.
pub(crate) static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local unit = tonumber(ARGV[1])
local window = math.floor(now / unit)
local same = window == tonumber(ARGV[2])
local key = KEYS[1] .. ':' .. unit .. ':' .. window
local fields = {'r', 'p', 'c', 't'}
for i = 1, 4 do
  local counted = tonumber(ARGV[2 + i])
  local actual = tonumber(ARGV[6 + i])
  local delta
  if same then delta = actual - counted else delta = math.max(0, actual - counted) end
  if delta ~= 0 then
    local after = redis.call('HINCRBY', key, fields[i], delta)
    if after < 0 then redis.call('HSET', key, fields[i], 0) end
  end
end
redis.call('PEXPIRE', key, unit * 2 + 1000)
return window
"#,
    )
});

/// Add what a node admitted on its own while Redis was unreachable to the
/// window it admitted it in, if that window is still current; and raise each
/// count to at least the floor the node knows the cluster had reached (so a
/// Redis restarted empty gets the window's usage back).
///
/// ARGV: unit ms, window, 4 amounts, 4 floors. Returns 1 when applied.
pub(crate) static RECOVER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local unit = tonumber(ARGV[1])
if math.floor(now / unit) ~= tonumber(ARGV[2]) then return 0 end
local key = KEYS[1] .. ':' .. unit .. ':' .. ARGV[2]
local fields = {'r', 'p', 'c', 't'}
for i = 1, 4 do
  local amount = tonumber(ARGV[2 + i])
  local floor = tonumber(ARGV[6 + i])
  local value = tonumber(redis.call('HGET', key, fields[i]) or '0') or 0
  if amount > 0 then value = redis.call('HINCRBY', key, fields[i], amount) end
  if value < floor then redis.call('HSET', key, fields[i], floor) end
end
redis.call('PEXPIRE', key, unit * 2 + 1000)
return 1
"#,
    )
});

/// Heartbeat: record this node alive until `now + ttl`, drop expired nodes,
/// and return Redis now, whether this node's entry was there before this
/// call (1 or 0: a node that heartbeated before and finds itself missing
/// knows that Redis lost its data), then the live node ids in order.
///
/// KEYS[1]: the nodes sorted set. ARGV: node id, ttl ms, leave (1 removes).
pub(crate) static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local present = '0'
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then present = '1' end
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 10)
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(ids)
table.insert(ids, 1, present)
table.insert(ids, 1, tostring(now))
return ids
"#,
    )
});
