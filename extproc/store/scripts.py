"""Lua scripts that keep the counters right under concurrency, and their runner.

Each script touches the keys of one consumer only (one hash tag). Scripts are
called by SHA; a Redis that lost its script cache (restart, SCRIPT FLUSH, a new
replica promoted) answers NOSCRIPT, and the runner loads the script and retries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

Arg = str | int | float


@dataclass(frozen=True, slots=True)
class LuaScript:
    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha1(self.source.encode(), usedforsecurity=False)
        object.__setattr__(self, "sha", digest.hexdigest())

    async def run(self, redis: Redis, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        """Run by SHA in one round trip; on NOSCRIPT load the source and retry."""
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await redis.script_load(self.source)
            return await redis.evalsha(self.sha, len(keys), *keys, *args)


# Expired holds are dropped lazily by every script that reads a window, so that
# `reserved` never counts a reservation whose sidecar died. At most 100 per call
# keeps the script's run time bounded; the rest go on the next call.
_PURGE = """
local function purge(counter, holds, now)
  local expired = redis.call('ZRANGEBYSCORE', holds, '-inf', now, 'LIMIT', 0, 100)
  for _, id in ipairs(expired) do
    local amount = redis.call('HGET', counter, 'h:' .. id)
    if amount then
      redis.call('HINCRBY', counter, 'reserved', -tonumber(amount))
      redis.call('HDEL', counter, 'h:' .. id)
    end
    redis.call('ZREM', holds, id)
  end
end
"""

# Rate limits beside quotas: check and apply one limit of a call (see the
# RATE LIMITS segment of RESERVE). Token limits hold their estimate like quota
# windows; request limits count at once; concurrency limits take a slot.
_RATE_RESERVE = """
local function rate_check(key, arg)
  local r = {kind = ARGV[arg], limit = tonumber(ARGV[arg + 1]),
    amount = tonumber(ARGV[arg + 2]), shadow = ARGV[arg + 5] == '1',
    expire_at = ARGV[arg + 6], counter = KEYS[key], holds = KEYS[key + 1],
    previous = 0, held = false}
  local now = tonumber(ARGV[2])
  if r.kind == 'concurrent' then
    redis.call('ZREMRANGEBYSCORE', r.counter, '-inf', now)
    r.held = redis.call('ZSCORE', r.counter, ARGV[1]) ~= false
    r.current = redis.call('ZCARD', r.counter)
    r.over = (not r.held) and r.current + r.amount > r.limit
    return r
  end
  purge(r.counter, r.holds, now)
  purge(KEYS[key + 2], KEYS[key + 3], now)
  local v = redis.call('HMGET', r.counter, 'used', 'reserved', 'h:' .. ARGV[1])
  local p = redis.call('HMGET', KEYS[key + 2], 'used', 'reserved')
  r.held = r.kind == 'tokens' and v[3] ~= false
  r.current = tonumber(v[1] or 0) + tonumber(v[2] or 0)
  r.previous = tonumber(p[1] or 0) + tonumber(p[2] or 0)
  local elapsed, width = tonumber(ARGV[arg + 3]), tonumber(ARGV[arg + 4])
  -- The sliding count: as extproc.sliding computes it, operation for operation.
  local count = r.previous * (width - elapsed) / width + r.current
  r.over = (not r.held) and count + r.amount > r.limit
  return r
end

local function rate_apply(r)
  local now, hold_ms = tonumber(ARGV[2]), tonumber(ARGV[3])
  if r.held then
    return
  end
  if r.kind == 'concurrent' then
    redis.call('ZADD', r.counter, now + hold_ms, ARGV[1])
  elseif r.kind == 'tokens' then
    redis.call('HINCRBY', r.counter, 'reserved', r.amount)
    redis.call('HSET', r.counter, 'h:' .. ARGV[1], r.amount)
    redis.call('ZADD', r.holds, now + hold_ms, ARGV[1])
    redis.call('EXPIREAT', r.holds, r.expire_at)
  else
    redis.call('HINCRBY', r.counter, 'used', r.amount)
  end
  redis.call('EXPIREAT', r.counter, r.expire_at)
  r.current = r.current + r.amount
end
"""

RESERVE = LuaScript(
    "reserve",
    _PURGE
    + _RATE_RESERVE
    + """
-- Reserve one call's estimate on the windows of all its rules, all or nothing.
-- KEYS[2i-1]  counter hash of rule i's window (used, reserved, quota, topup, h:*)
-- KEYS[2i]    holds sorted set of that window: request id scored by expiry (ms)
-- ARGV[1]     request id
-- ARGV[2]     now, Unix ms
-- ARGV[3]     hold lifetime, ms
-- ARGV[3i+1]  rule i's quota from the rules (a `quota` field overrides it)
-- ARGV[3i+2]  amount to reserve on rule i, in the rule's unit
-- ARGV[3i+3]  counter expiry, Unix s (window end plus retention)
-- Returns {refused rule index or 0, then per rule: limit, used, reserved},
-- followed by the RATE LIMITS reply below.
-- A repeated reservation for the same request id is admitted without a second
-- hold, so a retried message never reserves twice.
--
-- RATE LIMITS segment, at the tail of KEYS and ARGV (m limits, n quota rules):
-- ARGV[#ARGV]  m, the number of rate limits (0 when the call has none)
-- the 7m ARGV before it, per rate limit j:
--              kind ('tokens', 'requests' or 'concurrent'), limit (units),
--              amount to add (tokens; 1 for requests and concurrent calls),
--              ms elapsed in the current fixed window, window width (ms),
--              shadow (1: count but never refuse), counter expiry (Unix s)
-- the n ARGV before those: quota rule i's mode, 1 shadow, 0 enforce
-- the last 4m KEYS, per rate limit j: current window's counter hash (a
--              concurrency limit's slots sorted set), its holds sorted set,
--              previous window's counter hash, its holds sorted set
-- Reply tail: refused rate limit index or 0; per rate limit: previous window's
-- count, current count (after this call), 1 if it had no room else 0; then per
-- quota rule: 1 if it had no room else 0. A shadow rule with no room refuses
-- nothing: the call is admitted and reserved on it all the same.
local request_id, now, hold_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local hold = 'h:' .. request_id
local rate_count = tonumber(ARGV[#ARGV])
local rules = (#KEYS - 4 * rate_count) / 2
local seen, refused = {}, 0

for i = 1, rules do
  local counter, holds = KEYS[2 * i - 1], KEYS[2 * i]
  purge(counter, holds, now)
  local v = redis.call('HMGET', counter, 'used', 'reserved', 'quota', 'topup', hold)
  local limit = tonumber(v[3] or ARGV[3 * i + 1]) + tonumber(v[4] or 0)
  local used, reserved = tonumber(v[1] or 0), tonumber(v[2] or 0)
  local amount = tonumber(ARGV[3 * i + 2])
  local held = v[5] ~= false
  if refused == 0 and not held and used + reserved + amount > limit then
    refused = i
  end
  seen[i] = {limit, used, reserved, held, amount}
end

-- RATE LIMITS: check (and quota modes: a shadow quota rule refuses nothing)
local rate_argv = #ARGV - 7 * rate_count
local quota_over, rate_seen, rate_refused = {}, {}, 0
refused = 0
for i = 1, rules do
  local q = seen[i]
  quota_over[i] = (not q[4]) and q[2] + q[3] + q[5] > q[1]
  if refused == 0 and quota_over[i] and ARGV[rate_argv - rules - 1 + i] == '0' then
    refused = i
  end
end
for j = 1, rate_count do
  rate_seen[j] = rate_check(#KEYS - 4 * (rate_count - j) - 3, rate_argv + 7 * (j - 1))
  if rate_refused == 0 and rate_seen[j].over and rate_seen[j].shadow == false then
    rate_refused = j
  end
end
-- RATE LIMITS: end of check

if refused == 0 and rate_refused == 0 then
  for i = 1, rules do
    local counter, holds = KEYS[2 * i - 1], KEYS[2 * i]
    if not seen[i][4] then
      redis.call('HINCRBY', counter, 'reserved', seen[i][5])
      redis.call('HSET', counter, hold, seen[i][5])
      redis.call('ZADD', holds, now + hold_ms, request_id)
      seen[i][3] = seen[i][3] + seen[i][5]
    end
    redis.call('EXPIREAT', counter, ARGV[3 * i + 3])
    redis.call('EXPIREAT', holds, ARGV[3 * i + 3])
  end
end

local reply = {refused}
for i = 1, rules do
  reply[#reply + 1] = seen[i][1]
  reply[#reply + 1] = seen[i][2]
  reply[#reply + 1] = seen[i][3]
end

-- RATE LIMITS: apply when admitted, then the reply tail
if refused == 0 and rate_refused == 0 then
  for j = 1, rate_count do
    rate_apply(rate_seen[j])
  end
end
reply[#reply + 1] = rate_refused
for j = 1, rate_count do
  reply[#reply + 1] = rate_seen[j].previous
  reply[#reply + 1] = rate_seen[j].current
  reply[#reply + 1] = rate_seen[j].over and 1 or 0
end
for i = 1, rules do
  reply[#reply + 1] = quota_over[i] and 1 or 0
end
-- RATE LIMITS: end
return reply
""",
)

SETTLE = LuaScript(
    "settle",
    """
-- Replace a call's holds by what it really cost, exactly once per request id.
-- KEYS[1]     settled marker of the request
-- KEYS[2i]    counter hash of rule i's window; KEYS[2i+1] its holds sorted set
-- KEYS[...]   further keys named by the increments below
-- ARGV[1]     request id
-- ARGV[2]     settled-marker lifetime, s (longer than any retry of a settlement)
-- ARGV[3]     number of rules n
-- ARGV[2i+2]  charge on rule i, in the rule's unit (0 releases the hold only)
-- ARGV[2i+3]  counter expiry, Unix s
-- ARGV[2n+4]  number of increments m; then per increment four values:
--             KEYS index, hash field, delta, key expiry (Unix s)
-- ARGV[2n+5+4m]  number of threshold checks t; then per check three values
--             (see the thresholds block below): rule index i, percent, rule
--             i's quota from the rules
-- Returns {0} when the call had been settled before; else {1, then per
-- threshold crossed now: rule index, percent, used, limit}.
--
-- RATE LIMITS segment, at the tail of ARGV (keys named by index, like the
-- increments'; their KEYS follow the increments' keys):
-- ARGV[#ARGV]  r, the number of rate limits to settle (request limits need none)
-- the 5r ARGV before it, per rate limit: kind ('tokens' or 'concurrent'),
--              KEYS index of the admission window's counter hash (or of the
--              slots sorted set), KEYS index of that window's holds sorted set,
--              charge (tokens), counter expiry (Unix s)
-- Holds and slots are released on every settlement, repeated ones included;
-- token charges land once, with the quota charges.
local request_id, marker_ttl = ARGV[1], tonumber(ARGV[2])
local rules = tonumber(ARGV[3])
local hold = 'h:' .. request_id
local rate_count = tonumber(ARGV[#ARGV])
local rate_argv = #ARGV - 5 * rate_count

for i = 1, rules do
  local counter, holds = KEYS[2 * i], KEYS[2 * i + 1]
  local amount = redis.call('HGET', counter, hold)
  if amount then
    redis.call('HINCRBY', counter, 'reserved', -tonumber(amount))
    redis.call('HDEL', counter, hold)
  end
  redis.call('ZREM', holds, request_id)
end

-- RATE LIMITS: release holds and slots
for j = 0, rate_count - 1 do
  local at = rate_argv + 5 * j
  local counter = KEYS[tonumber(ARGV[at + 1])]
  if ARGV[at] == 'concurrent' then
    redis.call('ZREM', counter, request_id)
  else
    local amount = redis.call('HGET', counter, hold)
    if amount then
      redis.call('HINCRBY', counter, 'reserved', -tonumber(amount))
      redis.call('HDEL', counter, hold)
    end
    redis.call('ZREM', KEYS[tonumber(ARGV[at + 2])], request_id)
  end
end
-- RATE LIMITS: end of release

if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', marker_ttl) then
  return {0}
end

for i = 1, rules do
  local charge = tonumber(ARGV[2 * i + 2])
  if charge ~= 0 then
    redis.call('HINCRBY', KEYS[2 * i], 'used', charge)
    redis.call('EXPIREAT', KEYS[2 * i], ARGV[2 * i + 3])
  end
end

local base = 2 * rules + 4
for j = 0, tonumber(ARGV[base]) - 1 do
  local at = base + 1 + 4 * j
  local key = KEYS[tonumber(ARGV[at])]
  redis.call('HINCRBY', key, ARGV[at + 1], ARGV[at + 2])
  redis.call('EXPIREAT', key, ARGV[at + 3])
end

-- RATE LIMITS: charge token limits
for j = 0, rate_count - 1 do
  local at = rate_argv + 5 * j
  local charge = tonumber(ARGV[at + 3])
  if ARGV[at] == 'tokens' and charge ~= 0 then
    local counter = KEYS[tonumber(ARGV[at + 1])]
    redis.call('HINCRBY', counter, 'used', charge)
    redis.call('EXPIREAT', counter, ARGV[at + 4])
  end
end
-- RATE LIMITS: end of charge

-- [thresholds] Usage alerts. A rule's threshold p is crossed once `used`
-- reaches p percent of the window's limit (a `quota` field overrides the
-- rule's quota, plus `topup`). HSETNX of the flag field `t:<p>` in the
-- window's counter hash lets exactly one settlement, on any replica, report
-- each crossing per window; the flag expires with the counter.
local crossed = {1}
local checks = base + 1 + 4 * tonumber(ARGV[base])
for k = 0, tonumber(ARGV[checks]) - 1 do
  local at = checks + 1 + 3 * k
  local i, percent = tonumber(ARGV[at]), tonumber(ARGV[at + 1])
  local counter = KEYS[2 * i]
  local v = redis.call('HMGET', counter, 'used', 'quota', 'topup')
  local used = tonumber(v[1] or 0)
  local limit = tonumber(v[2] or ARGV[at + 2]) + tonumber(v[3] or 0)
  if used * 100 >= limit * percent
      and redis.call('HSETNX', counter, 't:' .. percent, 1) == 1 then
    crossed[#crossed + 1] = i
    crossed[#crossed + 1] = percent
    crossed[#crossed + 1] = used
    crossed[#crossed + 1] = limit
  end
end
-- [/thresholds]
return crossed
""",
)
