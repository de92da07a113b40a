"""Rate limits in the reservation and settlement scripts, against a real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from extproc.rules.model import Mode, RateLimit, RateMeasure, RateUnit
from extproc.sliding import SlidingWindow
from extproc.store.keys import KeySpace
from extproc.store.quota_store import Charge, QuotaStore, RateCharge
from extproc.windows import window_at
from tests.harness.rules import quota

# Redis expires keys on its own clock: test instants lie a little ahead of the
# real time (10 min, longer than any test run), so no key has expired on arrival.
MINUTE = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=10)
# 30 s into a minute: a sliding minute still covers half of the previous one.
NOW = MINUTE + timedelta(seconds=30)
RPM = RateLimit("rpm", RateMeasure.REQUESTS, 10, RateUnit.MINUTE)
TPM = RateLimit("tpm", RateMeasure.TOKENS, 1000, RateUnit.MINUTE)
SLOTS = RateLimit("slots", RateMeasure.CONCURRENT, 2)
DAILY = quota("daily", 1000)


def rate(limit: RateLimit, amount: int = 1, now: datetime = NOW) -> RateCharge:
    if limit.unit is None:
        return RateCharge(limit, None, amount)
    now_ms = int(now.timestamp() * 1000)
    return RateCharge(limit, SlidingWindow.at(now_ms, limit.width_ms), amount)


def daily(amount: int) -> Charge:
    return Charge(DAILY, window_at(NOW, DAILY.cycle, DAILY.zone), amount)


async def admit_all(
    store: QuotaStore, limit: RateLimit, calls: int, now: datetime, first: int = 0
) -> list[bool]:
    results = []
    for n in range(first, first + calls):
        admission = await store.reserve(
            "alice", f"r{n}", [], now, [rate(limit, now=now)]
        )
        results.append(admission.admitted)
    return results


async def test_request_limit_admits_its_amount_then_refuses(store: QuotaStore) -> None:
    """Ten requests a minute: ten calls admitted, the eleventh refused by the limit."""
    admitted = await admit_all(store, RPM, 10, NOW)
    refused = await store.reserve("alice", "r10", [], NOW, [rate(RPM)])

    assert [True] * 10 == admitted
    assert refused.rate_refused_by is not None
    assert ("rpm", 0, 10, True) == (
        refused.rate_refused_by.limit.name,
        refused.rate_refused_by.remaining,
        refused.rate_refused_by.current,
        refused.rate_refused_by.over,
    )


async def test_request_limit_recovers_as_the_window_slides(store: QuotaStore) -> None:
    """Half a window after a full one, half the previous window still counts."""
    await admit_all(store, RPM, 10, NOW)

    later = await admit_all(store, RPM, 6, NOW + timedelta(minutes=1), first=10)

    assert [True] * 5 + [False] == later


@pytest.mark.parametrize(
    ("previous", "current", "elapsed_s"),
    [(10, 0, 30), (7, 3, 15), (9, 0, 6), (4, 5, 59), (10, 9, 1), (3, 3, 45)],
)
async def test_script_decides_as_the_sliding_arithmetic(
    store: QuotaStore, previous: int, current: int, elapsed_s: int
) -> None:
    """The script admits exactly when the Python arithmetic says the call fits."""
    await admit_all(store, RPM, previous, MINUTE - timedelta(seconds=30))
    now = MINUTE + timedelta(seconds=elapsed_s)
    await admit_all(store, RPM, current, now, first=100)

    admission = await store.reserve("alice", "probe", [], now, [rate(RPM, now=now)])

    window = rate(RPM, now=now).window
    assert window is not None
    assert window.fits(previous, current, 1, RPM.amount) == admission.admitted


async def test_token_limit_reserves_then_settles_the_actual(store: QuotaStore) -> None:
    """A token limit holds the estimate, then is charged the reported count once."""
    await store.reserve("alice", "r1", [], NOW, [rate(TPM, 300)])
    key = store.keys.rate_window("alice", "tpm", rate(TPM).window.index)  # type: ignore[union-attr]
    held = await store.redis.hgetall(key)

    await store.settle("alice", "r1", [], rates=[rate(TPM, 120)])
    await store.settle("alice", "r1", [], rates=[rate(TPM, 120)])

    assert {"reserved": "300", "h:r1": "300"} == held
    assert {"reserved": "0", "used": "120"} == await store.redis.hgetall(key)


async def test_concurrency_limit_frees_slots_on_settlement(store: QuotaStore) -> None:
    """Two slots: a third call waits for one of the first two to end."""
    first = await admit_all(store, SLOTS, 3, NOW)
    await store.settle("alice", "r0", [], rates=[rate(SLOTS)])
    again = await store.reserve("alice", "r3", [], NOW, [rate(SLOTS)])

    assert [True, True, False] == first
    assert again.admitted
    slots = await store.redis.zrange(store.keys.rate_slots("alice", "slots"), 0, -1)
    assert ["r1", "r3"] == slots


async def test_repeated_settlement_still_frees_the_slot(store: QuotaStore) -> None:
    """A slot is freed even by a settlement that finds the call settled before."""
    await admit_all(store, SLOTS, 1, NOW)
    await store.settle("alice", "r0", [], rates=[])
    await store.settle("alice", "r0", [], rates=[rate(SLOTS)])

    assert 0 == await store.redis.zcard(store.keys.rate_slots("alice", "slots"))


async def test_slots_of_a_dead_sidecar_expire(store: QuotaStore) -> None:
    """Slots never settled free themselves after the hold lifetime (60 s here)."""
    await admit_all(store, SLOTS, 2, NOW)
    later = NOW + timedelta(seconds=61)

    admission = await store.reserve("alice", "r9", [], later, [rate(SLOTS, now=later)])

    assert admission.admitted
    assert 1 == admission.rates[0].current


async def test_rate_refusal_reserves_nothing_anywhere(store: QuotaStore) -> None:
    """A call refused by a rate limit leaves its quotas and other limits alone."""
    await admit_all(store, SLOTS, 2, NOW)

    admission = await store.reserve(
        "alice", "r9", [daily(100)], NOW, [rate(TPM, 100), rate(SLOTS)]
    )

    assert "slots" == getattr(admission.rate_refused_by, "limit", RPM).name
    assert admission.refused_by is None
    key = store.keys.counter("alice", "daily", daily(0).window.key)
    assert {} == await store.redis.hgetall(key)
    tpm_key = store.keys.rate_window("alice", "tpm", rate(TPM).window.index)  # type: ignore[union-attr]
    assert {} == await store.redis.hgetall(tpm_key)


async def test_quota_refusal_takes_no_slot(store: QuotaStore) -> None:
    """A call refused by a quota takes no concurrency slot and counts no request."""
    admission = await store.reserve(
        "alice", "r1", [daily(5000)], NOW, [rate(SLOTS), rate(RPM)]
    )

    assert admission.refused_by is not None
    assert 0 == await store.redis.zcard(store.keys.rate_slots("alice", "slots"))
    assert [] == await store.redis.keys("t:{alice}:r:rpm:*")


async def test_shadow_rules_count_but_never_refuse(store: QuotaStore) -> None:
    """Shadow rules without room admit the call, reserve on it, and are named."""
    shadow_daily = quota("daily", 1000, mode=Mode.SHADOW)
    shadow_slots = RateLimit("slots", RateMeasure.CONCURRENT, 1, mode=Mode.SHADOW)
    window = window_at(NOW, shadow_daily.cycle, shadow_daily.zone)
    await store.reserve("alice", "r0", [], NOW, [rate(shadow_slots)])

    admission = await store.reserve(
        "alice", "r1", [Charge(shadow_daily, window, 1500)], NOW, [rate(shadow_slots)]
    )

    assert admission.admitted
    assert ("daily", "slots") == admission.shadow_refusals
    assert None is admission.tightest()
    key = store.keys.counter("alice", "daily", window.key)
    assert "1500" == await store.redis.hget(key, "reserved")
    assert 2 == await store.redis.zcard(store.keys.rate_slots("alice", "slots"))


async def test_quota_reply_is_unchanged_beside_rate_limits(store: QuotaStore) -> None:
    """Quota counters read the same with and without rate limits in the call."""
    alone = await store.reserve("alice", "r1", [daily(100)], NOW)
    beside = await store.reserve(
        "bob", "r2", [daily(100)], NOW, [rate(RPM), rate(SLOTS)]
    )

    assert (1000, 0, 100) == (
        alone.counters[0].limit,
        alone.counters[0].used,
        alone.counters[0].reserved,
    )
    assert alone.counters[0].remaining == beside.counters[0].remaining
    assert (0, 1) == (beside.rates[0].previous, beside.rates[0].current)


def test_rate_keys_are_named_under_the_consumer_tag() -> None:
    """Rate keys carry the consumer's hash tag, the limit's name and the window."""
    keys = KeySpace("llmq")

    assert [
        "llmq:{alice}:r:rpm:29847120",
        "llmq:{alice}:r:rpm:29847120:holds",
        "llmq:{alice}:r:slots:slots",
    ] == [
        keys.rate_window("alice", "rpm", 29_847_120),
        keys.rate_holds("alice", "rpm", 29_847_120),
        keys.rate_slots("alice", "slots"),
    ]
