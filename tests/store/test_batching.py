"""Settlements with events share round trips, and each is still exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from extproc.errors import StoreUnavailable
from extproc.store.batching import SettlementBatcher
from extproc.store.keys import KeySpace
from extproc.store.quota_store import Charge, QuotaStore
from extproc.windows import window_at
from tests.harness.processes import RedisServer
from tests.harness.rules import quota

RULE = quota("daily", 1_000_000)
NOW = datetime.now(UTC)
WINDOW = window_at(NOW, RULE.cycle, RULE.zone)


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[QuotaStore]:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield QuotaStore(client, KeySpace("b"))
    await client.aclose()


async def test_concurrent_settlements_share_pipelines(
    store: QuotaStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forty settlements at once land in fewer round trips, each charged once
    and each with its event."""
    sent: list[int] = []
    original = SettlementBatcher._send

    async def counting(self: SettlementBatcher, batch: list) -> None:
        sent.append(len(batch))
        await original(self, batch)

    monkeypatch.setattr(SettlementBatcher, "_send", counting)
    ids = [f"r{n}" for n in range(40)]
    for request_id in ids:
        await store.reserve("alice", request_id, [Charge(RULE, WINDOW, 10)], NOW)

    results = await asyncio.gather(
        *(
            store.settle("alice", i, [Charge(RULE, WINDOW, 3)], event={"id": i})
            for i in ids
        )
    )

    counter = store.keys.counter("alice", RULE.name, WINDOW.key)
    assert [True] * 40 == [result.charged for result in results]
    assert {"used": "120", "reserved": "0"} == await store.redis.hgetall(counter)
    assert 40 == await store.redis.xlen(store.keys.events())
    assert 40 == sum(sent)
    assert len(sent) < 40


async def test_a_failed_round_trip_fails_every_member() -> None:
    """With Redis gone, every settlement of the batch raises StoreUnavailable."""
    server = RedisServer().start()
    client = aioredis.Redis.from_url(server.url, socket_connect_timeout=0.5)
    store = QuotaStore(client, KeySpace("b"))
    server.stop()
    try:
        results = await asyncio.gather(
            *(
                store.settle("alice", f"r{n}", [Charge(RULE, WINDOW, 3)], event={})
                for n in range(5)
            ),
            return_exceptions=True,
        )
    finally:
        await client.aclose()

    assert [StoreUnavailable] * 5 == [type(result) for result in results]
