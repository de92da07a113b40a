"""The reservation and settlement scripts against a real redis-server."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from extproc.errors import StoreUnavailable
from extproc.store.keys import KeySpace
from extproc.store.quota_store import Charge, Increment, QuotaStore
from extproc.windows import Cycle, window_at
from tests.harness.processes import RedisServer
from tests.harness.rules import quota

NOW = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
DAILY = quota("daily", 1000)
WEEKLY = quota("weekly", 5000, Cycle.WEEK)


def charge(rule=DAILY, amount: int = 100, now: datetime = NOW) -> Charge:
    return Charge(rule, window_at(now, rule.cycle, rule.zone), amount)


async def counter(store: QuotaStore, rule=DAILY, consumer: str = "alice") -> dict:
    key = store.keys.counter(consumer, rule.name, charge(rule).window.key)
    return await store.redis.hgetall(key)


async def test_reserve_holds_the_estimate(store: QuotaStore) -> None:
    """An admitted reservation raises `reserved` by the estimate and leaves `used`."""
    admission = await store.reserve("alice", "r1", [charge(amount=300)], NOW)

    assert admission.admitted
    assert (
        admission.counters[0].limit,
        admission.counters[0].used,
        admission.counters[0].reserved,
    ) == (1000, 0, 300)
    assert {"reserved": "300", "h:r1": "300"} == await counter(store)


async def test_reserve_refuses_past_the_quota(store: QuotaStore) -> None:
    """A reservation that does not fit is refused and changes nothing."""
    await store.reserve("alice", "r1", [charge(amount=700)], NOW)

    admission = await store.reserve("alice", "r2", [charge(amount=301)], NOW)

    assert not admission.admitted
    assert admission.refused_by is not None
    assert 300 == admission.refused_by.remaining
    assert {"reserved": "700", "h:r1": "700"} == await counter(store)


async def test_reserve_is_all_or_nothing_across_rules(store: QuotaStore) -> None:
    """When one rule refuses, no other rule of the call keeps a hold."""
    weekly_full = charge(WEEKLY, 5000)
    await store.reserve("alice", "r0", [weekly_full], NOW)

    admission = await store.reserve(
        "alice", "r1", [charge(amount=10), charge(WEEKLY, 10)], NOW
    )

    assert admission.refused_by is not None
    assert "weekly" == admission.refused_by.rule.name
    assert {} == await counter(store)


async def test_repeated_reservation_holds_once(store: QuotaStore) -> None:
    """The same request id reserving twice (a repeated message) holds once."""
    await store.reserve("alice", "r1", [charge(amount=100)], NOW)
    again = await store.reserve("alice", "r1", [charge(amount=100)], NOW)

    assert again.admitted
    assert (await counter(store))["reserved"] == "100"


async def test_settle_replaces_the_hold_with_the_actual(store: QuotaStore) -> None:
    """Settlement drops the hold and charges what the provider reported."""
    await store.reserve("alice", "r1", [charge(amount=300)], NOW)

    charged = (await store.settle("alice", "r1", [charge(amount=123)])).charged

    assert charged
    assert {"reserved": "0", "used": "123"} == await counter(store)


async def test_settlement_happens_exactly_once(store: QuotaStore) -> None:
    """A second settlement of the same request charges nothing."""
    await store.reserve("alice", "r1", [charge(amount=300)], NOW)
    await store.settle("alice", "r1", [charge(amount=123)])

    again = (await store.settle("alice", "r1", [charge(amount=123)])).charged

    assert not again
    assert {"reserved": "0", "used": "123"} == await counter(store)


async def test_concurrent_duplicate_settlements_charge_once(store: QuotaStore) -> None:
    """Ten settlements of one request racing each other charge it once."""
    await store.reserve("alice", "r1", [charge(amount=300)], NOW)

    results = await asyncio.gather(
        *(store.settle("alice", "r1", [charge(amount=50)]) for _ in range(10))
    )

    assert 1 == sum(result.charged for result in results)
    assert (await counter(store))["used"] == "50"


async def test_release_frees_the_hold_without_charge(store: QuotaStore) -> None:
    """A failed upstream call settles at zero: the hold goes, `used` stays."""
    await store.reserve("alice", "r1", [charge(amount=300)], NOW)

    await store.settle("alice", "r1", [charge(amount=0)])

    assert {"reserved": "0"} == await counter(store)


async def test_abandoned_hold_expires(store: QuotaStore) -> None:
    """A hold never settled (its sidecar died) stops counting after its lifetime."""
    await store.reserve("alice", "dead", [charge(amount=900)], NOW)
    later = NOW + timedelta(seconds=61)

    admission = await store.reserve("alice", "r2", [charge(amount=900)], later)

    assert admission.admitted
    assert {"reserved": "900", "h:r2": "900"} == await counter(store)


async def test_late_settlement_after_expiry_still_charges(store: QuotaStore) -> None:
    """A settlement arriving after its hold expired still charges, once."""
    await store.reserve("alice", "r1", [charge(amount=300)], NOW)
    await store.reserve("alice", "r2", [charge(amount=1)], NOW + timedelta(hours=1))

    await store.settle("alice", "r1", [charge(amount=250)])

    assert (await counter(store))["used"] == "250"
    assert (await counter(store))["reserved"] == "1"


async def test_counter_expires_after_window_and_retention(store: QuotaStore) -> None:
    """Counters carry an expiry at window end plus retention, in Unix seconds."""
    await store.reserve("alice", "r1", [charge(amount=1)], NOW)
    key = store.keys.counter("alice", "daily", charge().window.key)

    ttl = await store.redis.ttl(key)  # Redis 6.2 has no EXPIRETIME

    expected = charge().window.end_epoch + store.timings.retention_s
    assert abs(expected - (time.time() + ttl)) <= 2


async def test_quota_and_topup_fields_change_the_limit(store: QuotaStore) -> None:
    """An edited quota and a top-up in the window's counter set its limit."""
    key = store.keys.counter("alice", "daily", charge().window.key)
    await store.redis.hset(key, mapping={"quota": 50, "topup": 25})

    admission = await store.reserve("alice", "r1", [charge(amount=76)], NOW)

    assert not admission.admitted
    assert 75 == admission.counters[0].limit


async def test_settle_applies_increments(store: QuotaStore) -> None:
    """Extra increments land in the same script run as the charge."""
    await store.reserve("alice", "r1", [charge(amount=10)], NOW)
    key = store.keys.tag("alice") + ":agg"

    await store.settle(
        "alice", "r1", [charge(amount=7)], [Increment(key, "t", 7, 2**31)]
    )

    assert {"t": "7"} == await store.redis.hgetall(key)


async def test_settle_with_event_appends_to_the_stream(store: QuotaStore) -> None:
    """An event given to settle is appended to the bounded events stream."""
    await store.reserve("alice", "r1", [charge(amount=10)], NOW)

    await store.settle("alice", "r1", [charge(amount=7)], event={"id": "r1"})

    entries = await store.redis.xrange(store.keys.events())
    assert [fields for _, fields in entries] == [{"id": "r1"}]


async def test_flushed_script_cache_is_recovered(store: QuotaStore) -> None:
    """After SCRIPT FLUSH both scripts load themselves again, alone or piped."""
    await store.redis.script_flush()
    admission = await store.reserve("alice", "r1", [charge(amount=10)], NOW)
    await store.redis.script_flush()

    settled = await store.settle("alice", "r1", [charge(amount=7)], event={"id": "1"})

    assert admission.admitted and settled.charged
    assert (await counter(store))["used"] == "7"


async def test_keys_share_the_consumer_hash_tag(store: QuotaStore) -> None:
    """Every per-consumer key carries `{consumer}`, so a script stays on one slot."""
    keys = store.keys
    window = charge().window.key
    names = [
        keys.counter("alice", "daily", window),
        keys.holds("alice", "daily", window),
        keys.settled("alice", "r1"),
    ]

    assert names == [
        "t:{alice}:q:daily:day@Asia/Shanghai:20261204",
        "t:{alice}:q:daily:day@Asia/Shanghai:20261204:holds",
        "t:{alice}:settled:r1",
    ]


async def test_redis_down_then_back() -> None:
    """A stopped Redis raises StoreUnavailable; after restart serving resumes."""
    server = RedisServer().start()
    client = aioredis.Redis.from_url(
        server.url, socket_timeout=0.5, socket_connect_timeout=0.5
    )
    store = QuotaStore(client, KeySpace("t"))
    try:
        assert (await store.reserve("alice", "r1", [charge()], NOW)).admitted
        server.stop()
        with pytest.raises(StoreUnavailable):
            await store.reserve("alice", "r2", [charge()], NOW)
        server.start()

        admission = await store.reserve("alice", "r3", [charge()], NOW)

        assert admission.admitted
        assert 100  # a fresh, empty Redis == admission.counters[0].reserved
    finally:
        await client.aclose()
        server.stop()


async def test_changed_cycle_or_zone_starts_new_windows(store: QuotaStore) -> None:
    """A rule whose cycle or zone changes counts in fresh windows, even when the
    new window starts on the same local date as the old one."""
    # A Monday (12:00 in Shanghai) in the future, so no key has expired yet.
    monday = datetime(2027, 3, 1, 4, 0, tzinfo=UTC)
    daily = quota("limits", 1000)
    await store.reserve("alice", "r1", [charge(daily, 600, monday)], monday)
    await store.settle("alice", "r1", [charge(daily, 600, monday)])

    weekly = quota("limits", 1000, Cycle.WEEK)
    in_tokyo = quota("limits", 1000, zone="Asia/Tokyo")
    as_weekly = await store.reserve("alice", "r2", [charge(weekly, 1, monday)], monday)
    in_zone = await store.reserve("alice", "r3", [charge(in_tokyo, 1, monday)], monday)

    assert (0, 0) == (as_weekly.counters[0].used, in_zone.counters[0].used)
