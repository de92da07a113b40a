"""Shared fixtures: one real Redis per session, one full stack per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from extproc import logs
from tests.harness.processes import RedisServer
from tests.harness.stack import Stack

# One line per call at info would drown test output; warnings still show.
logs.configure("console", "warning")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The session's Redis, emptied after each test."""
    yield redis_server.url
    redis.Redis.from_url(redis_server.url).flushall()


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer) -> Iterator[Stack]:
    """Fake provider, sidecar and a real Envoy, shared by a module's tests."""
    running = Stack(redis_server).start()
    yield running
    running.stop()


@pytest.fixture
def fresh_stack(stack: Stack) -> Iterator[Stack]:
    """The module's stack, reset after the test (Redis, clock, provider)."""
    yield stack
    stack.reset()
