"""Reservation and settlement of quota charges in Redis, one round trip each.

A call reserves its estimate on the current window of every rule that binds it
(all or nothing); at its end the reservation is replaced by what the provider
reported (settlement), exactly once. Rate limits ride in the same two scripts:
token limits reserve and settle like quotas, request limits count on admission,
concurrency limits take a slot on admission and free it on settlement. Redis
failures become `StoreUnavailable`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError, ResponseError

from extproc.errors import StoreUnavailable
from extproc.rules.model import Mode, QuotaRule, RateLimit, RateMeasure
from extproc.sliding import SlidingWindow
from extproc.store.batching import SettlementBatcher
from extproc.store.keys import KeySpace
from extproc.store.scripts import RESERVE, SETTLE, Arg
from extproc.windows import Window

T = TypeVar("T")

# Told of every Redis round trip: operation, seconds, whether it succeeded.
RedisObserver = Callable[[str, float, bool], None]


@dataclass(frozen=True, slots=True)
class Charge:
    """An amount (in the rule's unit) put on one rule's current window."""

    rule: QuotaRule
    window: Window
    amount: int


@dataclass(frozen=True, slots=True)
class CounterState:
    """A window's numbers as the reservation script saw them."""

    rule: QuotaRule
    window: Window
    limit: int
    used: int
    reserved: int
    over: bool = False  # the call did not fit (a shadow rule admits it anyway)

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used - self.reserved)


@dataclass(frozen=True, slots=True)
class RateCharge:
    """An amount put on one rate limit: tokens, or one request or one slot."""

    limit: RateLimit
    window: SlidingWindow | None  # at admission; None for a concurrency limit
    amount: int


@dataclass(frozen=True, slots=True)
class RateState:
    """A rate limit's numbers as the reservation script saw them."""

    limit: RateLimit
    window: SlidingWindow | None
    previous: int  # the previous fixed window's count (0 for concurrency)
    current: int  # the current window's count, or the calls in flight
    over: bool  # the call did not fit

    @property
    def remaining(self) -> int:
        if self.window is None:
            return max(0, self.limit.amount - self.current)
        return self.window.remaining(self.previous, self.current, self.limit.amount)

    @property
    def reset_ms(self) -> int:
        """Time until the count is back to nothing; 0 for a concurrency limit."""
        if self.window is None:
            return 0
        return self.window.reset_ms(self.previous, self.current)


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to a reservation: admitted, or refused by one rule or limit."""

    counters: tuple[CounterState, ...]
    refused_by: CounterState | None = None
    rates: tuple[RateState, ...] = ()
    rate_refused_by: RateState | None = None

    @property
    def admitted(self) -> bool:
        return self.refused_by is None and self.rate_refused_by is None

    @property
    def shadow_refusals(self) -> tuple[str, ...]:
        """Names of the shadow rules and limits that had no room for the call."""
        shadow = Mode.SHADOW
        quotas = [
            c.rule.name for c in self.counters if c.over and c.rule.mode is shadow
        ]
        rates = [r.limit.name for r in self.rates if r.over and r.limit.mode is shadow]
        return (*quotas, *rates)

    def tightest(self) -> CounterState | None:
        """The counter with the least left: what the remaining-quota headers show."""
        if self.refused_by is not None:
            return self.refused_by
        enforced = [c for c in self.counters if c.rule.mode is Mode.ENFORCE]
        return min(enforced, key=lambda c: c.remaining, default=None)


@dataclass(frozen=True, slots=True)
class Increment:
    """An extra counter bumped in the settlement script (usage aggregates)."""

    key: str
    field: str
    delta: int
    expire_at: int  # Unix s


@dataclass(frozen=True, slots=True)
class Crossing:
    """A threshold of a rule that this settlement was the first to reach."""

    rule: QuotaRule
    window: Window
    percent: int
    used: int  # in the rule's unit, after the charge
    limit: int  # quota plus top-ups of the window


@dataclass(frozen=True, slots=True)
class Settlement:
    """The answer to a settlement: charged now (False: settled before), and the
    thresholds it crossed first, across every replica."""

    charged: bool
    crossings: tuple[Crossing, ...] = ()


@dataclass(frozen=True, slots=True)
class StoreTimings:
    """Lifetimes of the store's keys, in seconds."""

    hold_s: int = 600  # a reservation frees itself after this if never settled
    settled_marker_s: int = 86_400  # longer than any settlement retry
    retention_s: int = 90 * 86_400  # counters outlive their window by this
    usage_retention_s: int = 90 * 86_400  # usage buckets outlive their end by this


class QuotaStore:
    """Runs the reservation and settlement scripts for one consumer at a time."""

    def __init__(
        self,
        redis: Redis,
        keys: KeySpace | None = None,
        timings: StoreTimings | None = None,
        observe: RedisObserver | None = None,
    ) -> None:
        self.redis = redis
        self.keys = keys or KeySpace()
        self.timings = timings or StoreTimings()
        self._observe = observe
        # Settlements with events share pipelines, one batcher per stream cap.
        self._batchers: dict[int, SettlementBatcher] = {}

    async def reserve(
        self,
        consumer: str,
        request_id: str,
        charges: Sequence[Charge],
        now: datetime,
        rates: Sequence[RateCharge] = (),
    ) -> Admission:
        """Reserve every charge or none; the first enforced rule or rate limit
        that cannot fit refuses."""
        now_ms = int(now.timestamp() * 1000)
        keys: list[str] = []
        args: list[Arg] = [request_id, now_ms, self.timings.hold_s * 1000]
        for charge in charges:
            keys += self._window_keys(consumer, charge)
            args += [charge.rule.quota, charge.amount, self._expiry(charge.window)]
        self._reserve_rates(consumer, charges, rates, now_ms, keys, args)

        reply = [
            int(value)
            for value in await self._run(RESERVE.run(self.redis, keys, args), "reserve")
        ]
        return _admission(charges, rates, reply)

    def _reserve_rates(
        self,
        consumer: str,
        charges: Sequence[Charge],
        rates: Sequence[RateCharge],
        now_ms: int,
        keys: list[str],
        args: list[Arg],
    ) -> None:
        """The RATE LIMITS segment of the reservation script's KEYS and ARGV."""
        args += [int(c.rule.mode is Mode.SHADOW) for c in charges]
        for rate in rates:
            keys += self._rate_keys(consumer, rate)
            window = rate.window
            elapsed, width = (window.elapsed_ms, window.width_ms) if window else (0, 0)
            args += [str(rate.limit.measure), rate.limit.amount, rate.amount]
            args += [elapsed, width, int(rate.limit.mode is Mode.SHADOW)]
            args.append(self._rate_expiry(rate, now_ms))
        args.append(len(rates))

    async def settle(
        self,
        consumer: str,
        request_id: str,
        charges: Sequence[Charge],
        increments: Sequence[Increment] = (),
        event: Mapping[str, str] | None = None,
        events_max_len: int = 100_000,
        rates: Sequence[RateCharge] = (),
    ) -> Settlement:
        """Charge the actual amounts and drop the holds, exactly once per request.

        `rates` carry the actual tokens of token limits (request limits are
        skipped: they counted on admission); concurrency slots are freed.

        A usage event, when given, is appended to the events stream in the same
        round trip (a pipeline), outside the script: the stream is shared by all
        consumers and so has no consumer's hash tag.
        """
        keys = [self.keys.settled(consumer, request_id)]
        args: list[Arg] = [request_id, self.timings.settled_marker_s, len(charges)]
        for charge in charges:
            keys += self._window_keys(consumer, charge)
            args += [charge.amount, self._expiry(charge.window)]
        args.append(len(increments))
        for increment in increments:
            keys.append(increment.key)
            args += [len(keys), increment.field, increment.delta, increment.expire_at]
        args += _threshold_args(charges)
        self._settle_rates(consumer, rates, keys, args)

        if event is None:
            reply = await self._run(SETTLE.run(self.redis, keys, args), "settle")
        else:
            reply = await self._settle_with_event(keys, args, event, events_max_len)
        return _settlement(reply, charges)

    async def append_event(
        self,
        event: Mapping[str, str],
        max_len: int = 100_000,
        increments: Sequence[Increment] = (),
    ) -> None:
        """Append one usage event to the bounded stream (refused calls use this),
        with `increments` bumped in the same round trip (a pipeline)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for increment in increments:
                pipe.hincrby(increment.key, increment.field, increment.delta)
                pipe.expireat(increment.key, increment.expire_at)
            pipe.xadd(
                self.keys.events(), _fields(event), maxlen=max_len, approximate=True
            )
            await self._run(pipe.execute(), "append")

    async def _settle_with_event(
        self,
        keys: list[str],
        args: list[Arg],
        event: Mapping[str, str],
        max_len: int,
    ) -> Any:
        batcher = self._batchers.get(max_len)
        if batcher is None:
            stream = self.keys.events()
            batcher = SettlementBatcher(self.redis, SETTLE, stream, max_len)
            self._batchers[max_len] = batcher
        reply, appended = await self._run(
            batcher.run(keys, args, _fields(event)), "settle"
        )
        if isinstance(reply, NoScriptError):
            reply = await self._run(SETTLE.run(self.redis, keys, args), "settle")
        for result in (reply, appended):
            if isinstance(result, Exception):
                raise StoreUnavailable(f"settlement failed: {result}") from result
        return reply

    def _settle_rates(
        self,
        consumer: str,
        rates: Sequence[RateCharge],
        keys: list[str],
        args: list[Arg],
    ) -> None:
        """The RATE LIMITS segment of the settlement script's KEYS and ARGV."""
        settled = [r for r in rates if r.limit.measure is not RateMeasure.REQUESTS]
        for rate in settled:
            counter, holds = self._rate_keys(consumer, rate)[:2]
            keys += [counter, holds]
            args += [str(rate.limit.measure), len(keys) - 1, len(keys), rate.amount]
            # The window counter's expiry as reserved: settling never shortens it.
            args.append(self._rate_expiry(rate, 0))
        args.append(len(settled))

    def _rate_keys(self, consumer: str, rate: RateCharge) -> list[str]:
        """Current window's counter and holds, then the previous window's."""
        name = rate.limit.name
        if rate.window is None:
            slots = self.keys.rate_slots(consumer, name)
            return [slots, slots, slots, slots]
        index = rate.window.index
        return [
            self.keys.rate_window(consumer, name, index),
            self.keys.rate_holds(consumer, name, index),
            self.keys.rate_window(consumer, name, index - 1),
            self.keys.rate_holds(consumer, name, index - 1),
        ]

    def _rate_expiry(self, rate: RateCharge, now_ms: int) -> int:
        """Unix s: a window's counter serves as the previous one until the next
        window ends, and outlives that by the hold lifetime so that a long
        call's settlement finds it; slots outlive the newest slot."""
        if rate.window is None:
            return now_ms // 1000 + self.timings.hold_s + 1
        next_end_ms = rate.window.end_ms + rate.window.width_ms
        return next_end_ms // 1000 + self.timings.hold_s

    def _window_keys(self, consumer: str, charge: Charge) -> list[str]:
        window_id = charge.window.key
        return [
            self.keys.counter(consumer, charge.rule.name, window_id),
            self.keys.holds(consumer, charge.rule.name, window_id),
        ]

    def _expiry(self, window: Window) -> int:
        return window.end_epoch + self.timings.retention_s

    async def _run(self, awaitable: Awaitable[T], operation: str = "admin") -> T:
        """Await a Redis call, mapping every Redis failure to StoreUnavailable;
        the observer, if any, is told its duration and outcome."""
        started, ok = time.perf_counter(), False
        try:
            result = await awaitable
            ok = True
            return result
        except RedisError as exc:
            if isinstance(exc, ResponseError) and not _is_transient(exc):
                raise
            raise StoreUnavailable(f"redis: {exc}") from exc
        except OSError as exc:
            raise StoreUnavailable(f"redis: {exc}") from exc
        finally:
            if self._observe is not None:
                self._observe(operation, time.perf_counter() - started, ok)


def _threshold_args(charges: Sequence[Charge]) -> list[Arg]:
    """The SETTLE script's threshold checks: count, then per check the rule's
    index (1-based), the percent and the rule's quota."""
    checks: list[Arg] = []
    for index, charge in enumerate(charges, start=1):
        for percent in charge.rule.thresholds:
            checks += [index, percent, charge.rule.quota]
    return [len(checks) // 3, *checks]


def _settlement(reply: Sequence[Any], charges: Sequence[Charge]) -> Settlement:
    """Reads the SETTLE script's reply: {charged, then 4 values per crossing}."""
    crossings = []
    for at in range(1, len(reply), 4):
        index, percent, used, limit = (int(value) for value in reply[at : at + 4])
        charge = charges[index - 1]
        crossings.append(Crossing(charge.rule, charge.window, percent, used, limit))
    return Settlement(bool(int(reply[0])), tuple(crossings))


def _admission(
    charges: Sequence[Charge], rates: Sequence[RateCharge], reply: list[int]
) -> Admission:
    """Reads the reservation script's reply: the quota part, then the rate part."""
    tail = 1 + 3 * len(charges)
    quota_over = reply[tail + 1 + 3 * len(rates) :]
    counters = tuple(
        CounterState(c.rule, c.window, *_triple(reply, 1 + 3 * i), quota_over[i] == 1)
        for i, c in enumerate(charges)
    )
    states = []
    for j, rate in enumerate(rates):
        previous, current, over = _triple(reply, tail + 1 + 3 * j)
        states.append(RateState(rate.limit, rate.window, previous, current, over == 1))
    refused, rate_refused = reply[0], reply[tail]
    return Admission(
        counters,
        counters[refused - 1] if refused else None,
        tuple(states),
        states[rate_refused - 1] if rate_refused else None,
    )


def _triple(reply: list[int], at: int) -> tuple[int, int, int]:
    return reply[at], reply[at + 1], reply[at + 2]


def _is_transient(exc: ResponseError) -> bool:
    """Replies that mean "try later" rather than a bug in the script or its call."""
    text = str(exc)
    return text.startswith(("LOADING", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN"))


def _fields(event: Mapping[str, str]) -> dict[Any, Any]:
    """A stream entry's fields, typed as redis-py's XADD wants them."""
    return dict(event)
