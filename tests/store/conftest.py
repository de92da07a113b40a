"""The store under test, on the session's real Redis (emptied after each test)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from extproc.store.keys import KeySpace
from extproc.store.quota_store import QuotaStore, StoreTimings


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[QuotaStore]:
    """A store with keys under `t` and holds that expire after 60 s."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield QuotaStore(client, KeySpace("t"), StoreTimings(hold_s=60))
    await client.aclose()
