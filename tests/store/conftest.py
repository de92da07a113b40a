"""A QuotaStore on the session's Redis, for the store's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from extproc.store.keys import KeySpace
from extproc.store.quota_store import QuotaStore, StoreTimings


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[QuotaStore]:
    """A store under the key prefix `t`, whose holds live 60 s."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield QuotaStore(client, KeySpace("t"), StoreTimings(hold_s=60))
    await client.aclose()
