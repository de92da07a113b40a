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

RESERVE = LuaScript(
    "reserve",
    _PURGE
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
-- Returns {refused rule index or 0, then per rule: limit, used, reserved}.
-- A repeated reservation for the same request id is admitted without a second
-- hold, so a retried message never reserves twice.
local request_id, now, hold_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local hold = 'h:' .. request_id
local rules = #KEYS / 2
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

if refused == 0 then
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
-- Returns 1 when the call was charged now, 0 when it had been settled before.
local request_id, marker_ttl = ARGV[1], tonumber(ARGV[2])
local rules = tonumber(ARGV[3])
local hold = 'h:' .. request_id

for i = 1, rules do
  local counter, holds = KEYS[2 * i], KEYS[2 * i + 1]
  local amount = redis.call('HGET', counter, hold)
  if amount then
    redis.call('HINCRBY', counter, 'reserved', -tonumber(amount))
    redis.call('HDEL', counter, hold)
  end
  redis.call('ZREM', holds, request_id)
end

if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', marker_ttl) then
  return 0
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
return 1
""",
)
