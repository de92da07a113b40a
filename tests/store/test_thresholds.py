"""Threshold crossings decided by the settlement script: once per window."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from extproc.store.quota_store import Charge, QuotaStore, Settlement
from extproc.windows import window_at
from tests.harness.rules import quota

NOW = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
ALERTED = quota("daily", 1000, thresholds=(80, 100))


def charge(amount: int, rule=ALERTED, now: datetime = NOW) -> Charge:
    return Charge(rule, window_at(now, rule.cycle, rule.zone), amount)


async def spend(store: QuotaStore, request_id: str, amount: int) -> Settlement:
    await store.reserve("alice", request_id, [charge(amount)], NOW)
    return await store.settle("alice", request_id, [charge(amount)])


def crossed(settlement: Settlement) -> list[tuple[str, int, int, int]]:
    return [(c.rule.name, c.percent, c.used, c.limit) for c in settlement.crossings]


async def test_crossing_is_reported_by_the_settlement_that_reaches_it(
    store: QuotaStore,
) -> None:
    """700 crosses nothing; reaching 850 crosses 80 %; reaching 1000 crosses 100 %."""
    first = await spend(store, "r1", 700)
    second = await spend(store, "r2", 150)
    third = await spend(store, "r3", 150)

    assert [] == crossed(first)
    assert [("daily", 80, 850, 1000)] == crossed(second)
    assert [("daily", 100, 1000, 1000)] == crossed(third)


async def test_one_settlement_may_cross_several_thresholds(store: QuotaStore) -> None:
    """A single charge from 0 to 1000 reports both 80 % and 100 %."""
    settlement = await spend(store, "r1", 1000)

    assert [("daily", 80, 1000, 1000), ("daily", 100, 1000, 1000)] == crossed(
        settlement
    )


async def test_racing_settlements_report_a_crossing_once(store: QuotaStore) -> None:
    """Twenty calls settling at once past 80 % report that crossing exactly once."""
    ids = [f"r{n}" for n in range(20)]
    for request_id in ids:
        await store.reserve("alice", request_id, [charge(45)], NOW)

    results = await asyncio.gather(
        *(store.settle("alice", request_id, [charge(45)]) for request_id in ids)
    )

    reports = [c.percent for result in results for c in result.crossings]
    assert [80] == reports  # 20 x 45 = 900: past 80 %, short of 100 %


async def test_a_repeated_settlement_reports_nothing(store: QuotaStore) -> None:
    """A settlement of an already settled request is not charged and crosses none."""
    await spend(store, "r1", 900)

    again = await store.settle("alice", "r1", [charge(900)])

    assert Settlement(charged=False) == again


async def test_top_up_and_configured_quota_set_the_limit(store: QuotaStore) -> None:
    """The limit is the window's quota field, if set, plus its top-up."""
    key = store.keys.counter("alice", "daily", charge(0).window.key)
    await store.redis.hset(key, mapping={"quota": 2000, "topup": 500})

    settlement = await spend(store, "r1", 2000)

    assert [("daily", 80, 2000, 2500)] == crossed(settlement)


async def test_next_window_alerts_again(store: QuotaStore) -> None:
    """The flags live in the window's counter: a new window reports again."""
    await spend(store, "r1", 900)
    tomorrow = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
    later = charge(900, now=tomorrow)
    await store.reserve("alice", "r2", [later], tomorrow)

    settlement = await store.settle("alice", "r2", [later])

    assert [("daily", 80, 900, 1000)] == crossed(settlement)
