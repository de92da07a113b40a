"""Settlements and event writes, run beside the ext_proc streams.

A call's settlement must not hold up the last chunk of its response, and must not
be lost when Redis is briefly away: it runs as a task, retried with backoff until
it lands or `retry_seconds` pass. The settled marker in Redis makes a retry that
raced a success harmless. Shutdown waits for the tasks in flight.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

import structlog

from extproc.errors import StoreUnavailable
from extproc.events import UsageEvent, threshold_entry
from extproc.store.quota_store import (
    Charge,
    Crossing,
    Increment,
    QuotaStore,
    RateCharge,
)

log = structlog.get_logger("extproc.settlement")

# Backoff between attempts, in seconds: doubles from the first to the cap.
_FIRST_BACKOFF_S = 0.1
_MAX_BACKOFF_S = 5.0


class Settler:
    def __init__(
        self, store: QuotaStore, retry_seconds: float, events_max_len: int
    ) -> None:
        self._store = store
        self._retry_seconds = retry_seconds
        self._events_max_len = events_max_len
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def settle(
        self,
        consumer: str,
        request_id: str,
        charges: Sequence[Charge],
        event: UsageEvent,
        increments: Sequence[Increment] = (),
        rates: Sequence[RateCharge] = (),
    ) -> None:
        """Charge `charges` and `rates`, bump `increments` and record `event`, in
        the background; the increments land with the charge, exactly once."""
        work = self._settle(
            consumer, request_id, tuple(charges), event, increments, tuple(rates)
        )
        self._spawn(work)

    def record(self, event: UsageEvent, increments: Sequence[Increment] = ()) -> None:
        """Record the event of a call that reserved nothing (refused, invalid)."""
        self._spawn(self._record(event, tuple(increments)))

    def publish(self, entries: Sequence[Mapping[str, str]]) -> None:
        """Append events (warnings, alerts) to the stream, in the background."""
        if entries:
            self._spawn(self._publish(tuple(entries)))

    async def drain(self, timeout: float) -> int:
        """Wait up to `timeout` seconds for tasks in flight; return how many remain."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        return len(self._tasks)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(
        self,
        consumer: str,
        request_id: str,
        charges: tuple[Charge, ...],
        event: UsageEvent,
        increments: Sequence[Increment],
        rates: tuple[RateCharge, ...],
    ) -> None:
        entry = event.stream_entry()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._retry_seconds
        backoff = _FIRST_BACKOFF_S
        while True:
            try:
                settlement = await self._store.settle(
                    consumer,
                    request_id,
                    charges,
                    increments,
                    event=entry,
                    events_max_len=self._events_max_len,
                    rates=rates,
                )
            except StoreUnavailable as exc:
                if loop.time() + backoff >= deadline:
                    log.error("settlement_lost", reason=str(exc), **event.fields())
                    return
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                continue
            if settlement.charged:
                log.info("call", **event.fields())
                await self._alert(consumer, settlement.crossings, event.time)
            else:
                log.warning("settlement_repeated", id=event.id)
            return

    async def _alert(
        self, consumer: str, crossings: Sequence[Crossing], time: str
    ) -> None:
        """Announce thresholds that this settlement was the first to cross."""
        for crossing in crossings:
            log.warning(
                "quota_threshold",
                consumer=consumer,
                rule=crossing.rule.name,
                window=crossing.window.id,
                percent=crossing.percent,
                used=crossing.used,
                limit=crossing.limit,
            )
        await self._publish(
            tuple(threshold_entry(consumer, c, time) for c in crossings)
        )

    async def _publish(self, entries: tuple[Mapping[str, str], ...]) -> None:
        for entry in entries:
            try:
                await self._store.append_event(entry, self._events_max_len)
            except StoreUnavailable as exc:
                # The log line said it already; the stream misses this one.
                log.warning("event_not_streamed", id=entry["type"], reason=str(exc))

    async def _record(
        self, event: UsageEvent, increments: tuple[Increment, ...]
    ) -> None:
        log.info("call", **event.fields())
        try:
            await self._store.append_event(
                event.stream_entry(), self._events_max_len, increments
            )
        except StoreUnavailable as exc:
            # The log line above already holds the whole event.
            log.warning("event_not_streamed", id=event.id, reason=str(exc))
