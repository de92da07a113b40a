"""Admin reads and edits of the counters, each one round trip to Redis.

Edits (a quota set for the current window, a top-up, a reset) are Lua scripts on
one consumer's keys (one hash tag) that append their audit entry to the
consumer's capped audit list in the same script, so no edit goes unaudited.
The entry is then copied to the deployment's audit stream, a separate command:
the stream has no consumer's hash tag, and it is what lists every consumer's
edits at once. Every replica reads the same counters, so an edit is seen at
once by every sidecar.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import structlog

from extproc.aggregates import bucket_id
from extproc.errors import ExtprocError, StoreUnavailable
from extproc.rules.model import QuotaRule
from extproc.store.quota_store import QuotaStore
from extproc.store.scripts import _PURGE, Arg, LuaScript
from extproc.windows import Window

log = structlog.get_logger("extproc.admin")

# Entries kept in each consumer's audit list, and (about) in the global stream.
AUDIT_LIST_LEN = 1_000
AUDIT_STREAM_LEN = 100_000

# Completes an audit entry (a JSON object) with the values the script saw.
_AUDITED = """
local function audited(entry, before, after)
  return string.sub(entry, 1, -2) .. ',"before":' .. string.format('%d', before)
    .. ',"after":' .. string.format('%d', after) .. '}'
end
"""

STATUS = LuaScript(
    "status",
    _PURGE
    + """
-- Read the current window of each rule, dropping its expired holds first.
-- KEYS[2i-1]  counter hash of rule i's window; KEYS[2i] its holds sorted set
-- ARGV[1]     now, Unix ms
-- Returns per rule: used, reserved, quota set at run time (-1: none), topup.
local reply = {}
for i = 1, #KEYS / 2 do
  purge(KEYS[2 * i - 1], KEYS[2 * i], tonumber(ARGV[1]))
  local v = redis.call('HMGET', KEYS[2 * i - 1], 'used', 'reserved', 'quota', 'topup')
  reply[#reply + 1] = tonumber(v[1] or 0)
  reply[#reply + 1] = tonumber(v[2] or 0)
  reply[#reply + 1] = tonumber(v[3] or -1)
  reply[#reply + 1] = tonumber(v[4] or 0)
end
return reply
""",
)

ADJUST = LuaScript(
    "adjust",
    _AUDITED
    + """
-- Set or add to one field of a window's counter, and audit it.
-- KEYS[1]  counter hash of the rule's current window
-- KEYS[2]  the consumer's audit list
-- ARGV[1]  field: quota (this window's quota) or topup (tokens added to it)
-- ARGV[2]  set or add
-- ARGV[3]  value, tokens
-- ARGV[4]  the field's value when absent (the configured quota, or 0), tokens
-- ARGV[5]  counter expiry, Unix s (window end plus retention)
-- ARGV[6]  audit entry, a JSON object; before and after are added here
-- ARGV[7]  audit list length
-- ARGV[8]  the configured quota, tokens
-- Returns {before, after, entry}; {before} alone when after would be negative
-- or would take the window's limit (quota plus topup) past 2^53 - 1, the
-- largest integer Lua's numbers hold exactly.
local before = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or ARGV[4])
local after = tonumber(ARGV[3])
if ARGV[2] == 'add' then after = before + after end
local other = 'quota'
if ARGV[1] == 'quota' then other = 'topup' end
local fallback = ARGV[8]
if other == 'topup' then fallback = 0 end
local limit = after + tonumber(redis.call('HGET', KEYS[1], other) or fallback)
if after < 0 or limit > 9007199254740991 then return {before} end
redis.call('HSET', KEYS[1], ARGV[1], after)
redis.call('EXPIREAT', KEYS[1], ARGV[5])
local entry = audited(ARGV[6], before, after)
redis.call('LPUSH', KEYS[2], entry)
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[7]) - 1)
return {before, after, entry}
""",
)

RESET = LuaScript(
    "reset",
    _AUDITED
    + """
-- Clear `used` of the current windows of rules, keeping the holds of calls in
-- flight (their settlement charges the new window as usual), and audit it.
-- KEYS[i]     counter hash of rule i's current window (i = 1..n)
-- KEYS[n+1]   the consumer's audit list
-- ARGV[1]     audit list length
-- ARGV[2i]    counter i's expiry, Unix s; ARGV[2i+1] its audit entry (JSON)
-- Returns the completed audit entries, one per rule.
local rules = #KEYS - 1
local audit = KEYS[rules + 1]
local reply = {}
for i = 1, rules do
  local before = tonumber(redis.call('HGET', KEYS[i], 'used') or 0)
  redis.call('HSET', KEYS[i], 'used', 0)
  redis.call('EXPIREAT', KEYS[i], ARGV[2 * i])
  local entry = audited(ARGV[2 * i + 1], before, 0)
  redis.call('LPUSH', audit, entry)
  reply[i] = entry
end
redis.call('LTRIM', audit, 0, tonumber(ARGV[1]) - 1)
return reply
""",
)


class EditRefused(ExtprocError):
    """An edit would leave a counter with a value it cannot hold."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """Who changed what, when and why; `before`/`after` are the changed field."""

    id: str
    time: str  # RFC 3339, UTC
    who: str
    action: str  # set_quota, add_tokens or reset
    consumer: str
    rule: str
    window_id: str
    reason: str
    before: int = 0
    after: int = 0

    def template(self) -> str:
        """The entry as JSON without before/after, which the script adds."""
        fields = asdict(self)
        del fields["before"], fields["after"]
        return json.dumps(fields, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> AuditRecord:
        return cls(**json.loads(text))


@dataclass(frozen=True, slots=True)
class WindowStatus:
    """A rule's current window as stored: what the admin service reports."""

    rule: QuotaRule
    window: Window
    used: int
    reserved: int
    quota_override: int | None
    topup: int

    @property
    def quota(self) -> int:
        return self.rule.quota if self.quota_override is None else self.quota_override

    @property
    def limit(self) -> int:
        return self.quota + self.topup

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used - self.reserved)


class AdminStore(QuotaStore):
    """The quota store, plus the reads and audited edits of the admin service."""

    async def status(
        self, consumer: str, windows: Sequence[tuple[QuotaRule, Window]], now: datetime
    ) -> list[WindowStatus]:
        keys: list[str] = []
        for rule, window in windows:
            keys.append(self.keys.counter(consumer, rule.name, window.key))
            keys.append(self.keys.holds(consumer, rule.name, window.key))
        now_ms = int(now.timestamp() * 1000)
        reply = await self._run(STATUS.run(self.redis, keys, [now_ms]))
        statuses = []
        for i, (rule, window) in enumerate(windows):
            used, reserved, override, topup = map(int, reply[4 * i : 4 * i + 4])
            quota = None if override < 0 else override
            statuses.append(WindowStatus(rule, window, used, reserved, quota, topup))
        return statuses

    async def adjust(
        self,
        rule: QuotaRule,
        window: Window,
        change: tuple[str, bool, int],
        record: AuditRecord,
    ) -> AuditRecord:
        """Apply `change` (field, add or set, tokens) to the window's counter:
        field `quota` is this window's quota, `topup` tokens added to it."""
        field, add, value = change
        absent = rule.quota if field == "quota" else 0
        keys = [
            self.keys.counter(record.consumer, rule.name, window.key),
            self.keys.audit(record.consumer),
        ]
        args: list[Arg] = [field, "add" if add else "set", value, absent]
        args += [self._expiry(window), record.template(), AUDIT_LIST_LEN]
        args.append(rule.quota)
        reply = await self._run(ADJUST.run(self.redis, keys, args))
        if len(reply) == 1:
            raise EditRefused(
                f"{field} would fall below 0, or the window's limit past 2^53 - 1 "
                f"(it is {int(reply[0])})"
            )
        saved = AuditRecord.from_json(reply[2])
        await self._publish([saved])
        return saved

    async def reset(
        self, targets: Sequence[tuple[Window, AuditRecord]]
    ) -> list[AuditRecord]:
        """Clear `used` of each window, all in one script (one consumer's keys)."""
        if not targets:
            return []
        consumer = targets[0][1].consumer
        keys = [self.keys.counter(consumer, r.rule, w.key) for w, r in targets]
        keys.append(self.keys.audit(consumer))
        args: list[Arg] = [AUDIT_LIST_LEN]
        for window, record in targets:
            args += [self._expiry(window), record.template()]
        reply = await self._run(RESET.run(self.redis, keys, args))
        saved = [AuditRecord.from_json(entry) for entry in reply]
        await self._publish(saved)
        return saved

    async def audit_entries(self, consumer: str, limit: int) -> list[AuditRecord]:
        """The latest edits, newest first: of one consumer, or of all ("")."""
        if consumer:
            key = self.keys.audit(consumer)
            entries = await self._run(self.redis.lrange(key, 0, limit - 1))
            return [AuditRecord.from_json(entry) for entry in entries]
        stream = self.keys.audit_stream()
        items = await self._run(self.redis.xrevrange(stream, count=limit))
        return [
            AuditRecord.from_json(fields[b"entry"])
            for _, fields in items or ()
            if fields is not None
        ]

    async def usage_buckets(
        self, consumer: str, starts: Sequence[datetime], batch: int = 500
    ) -> list[dict[bytes, bytes]]:
        """The usage hash of each bucket (empty when it saw no call), in order."""
        found: list[dict[bytes, bytes]] = []
        for first in range(0, len(starts), batch):
            async with self.redis.pipeline(transaction=False) as pipe:
                for start in starts[first : first + batch]:
                    pipe.hgetall(self.keys.usage(consumer, bucket_id(start)))
                found += await self._run(pipe.execute())
        return found

    async def _publish(self, records: Sequence[AuditRecord]) -> None:
        """Copy audit entries to the global stream; the consumer's list, written
        by the edit's own script, stays the record if this fails."""
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for record in records:
                    fields: dict[Any, Any] = {
                        "consumer": record.consumer,
                        "entry": json.dumps(asdict(record), separators=(",", ":")),
                    }
                    pipe.xadd(
                        self.keys.audit_stream(),
                        fields,
                        maxlen=AUDIT_STREAM_LEN,
                        approximate=True,
                    )
                await self._run(pipe.execute())
        except StoreUnavailable as exc:
            log.warning("audit_not_streamed", reason=str(exc), count=len(records))
