"""The product's stack for tests: fake provider, sidecar, real Envoy, real Redis.

The sidecar runs in this process, on an event loop of its own thread, so a test
can swap its rules and move its clock; Envoy and Redis are real processes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis

from extproc.devstack.fake_upstream import FakeUpstream
from extproc.rules.loader import load_rules
from extproc.rules.model import RuleSet
from extproc.rules.source import RuleSource
from extproc.rules.watcher import RulesWatcher
from extproc.server import Sidecar, connect_redis
from extproc.settings import Settings
from tests.harness.processes import (
    EnvoyProcess,
    RedisServer,
    free_port,
    render_envoy_config,
)

T = TypeVar("T")


class LoopThread:
    """An asyncio loop on a daemon thread; `run` waits for a coroutine's result."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name=name, daemon=True
        )
        self._thread.start()

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()  # else its self-pipe sockets leak as ResourceWarnings


@dataclass
class ManualClock:
    """A clock the test moves; it starts at the real time, then is set by hand."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def set(self, instant: datetime) -> None:
        self.now = instant

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def empty_rules() -> RuleSet:
    return RuleSet.build("empty", {}, {}, {})


@dataclass
class Stack:
    redis_server: RedisServer
    settings_overrides: dict[str, Any] = field(default_factory=dict)
    clock: ManualClock = field(default_factory=ManualClock)
    rules: RuleSource = field(default_factory=lambda: RuleSource(empty_rules()))
    upstream: FakeUpstream = field(default_factory=FakeUpstream)
    # Envoy's config from (listen, sidecar, upstream, admin) ports, and its env.
    render: Callable[[int, int, int, int], dict[str, Any]] = render_envoy_config
    envoy_env: dict[str, str] = field(default_factory=dict)
    sidecar: Sidecar | None = None
    envoy: EnvoyProcess | None = None
    _loop: LoopThread | None = None
    _watchers: list[tuple[RulesWatcher, Future[None]]] = field(default_factory=list)

    def start(self) -> Stack:
        self._loop = LoopThread("sidecar")
        upstream_port = self._loop.run(self.upstream.start())
        settings = Settings.from_env(
            {},
            port=free_port(),
            admin_port=free_port(),
            metrics_port=free_port(),
            redis_url=self.redis_server.url,
            rules_dir=None,
            **self.settings_overrides,
        )
        self.sidecar = self._loop.run(self._make_sidecar(settings))
        sidecar_port = self._loop.run(self.sidecar.start())
        config = self.render(free_port(), sidecar_port, upstream_port, free_port())
        self.envoy = EnvoyProcess(config, env=self.envoy_env).start()
        return self

    async def _make_sidecar(self, settings: Settings) -> Sidecar:
        return Sidecar(settings, self.rules, connect_redis(settings), self.clock)

    def watch_rules(self, folder: Path) -> RulesWatcher:
        """Serve the rules of `folder` and reload them as they change, as
        `extproc serve` does; returns once the watcher is ready."""
        assert self._loop is not None
        self.rules.swap(load_rules(folder))
        watcher = RulesWatcher(folder, self.rules, debounce_ms=50)
        running = asyncio.run_coroutine_threadsafe(watcher.run(), self._loop.loop)
        self._watchers.append((watcher, running))
        self._loop.run(watcher.ready.wait())
        return watcher

    def stop(self) -> None:
        assert self._loop is not None
        for watcher, running in self._watchers:
            self._loop.loop.call_soon_threadsafe(watcher.stop)
            running.result(timeout=10)
        if self.envoy is not None:
            self.envoy.stop()
        if self._loop is not None:
            if self.sidecar is not None:
                self._loop.run(self.sidecar.stop())
            self._loop.run(self.upstream.stop())
            self._loop.close()

    @property
    def base_url(self) -> str:
        assert self.envoy is not None
        return self.envoy.base_url

    def reset(self) -> None:
        """After a test: settlements landed, Redis emptied, the provider's
        record cleared and the clock back at the real time."""
        self.settled()
        self.upstream.received.clear()
        self.redis().flushall()
        self.clock.set(datetime.now(UTC))

    def use_rules(self, rules: RuleSet) -> None:
        self.rules.swap(rules)

    def settled(self, timeout: float = 10.0) -> None:
        """Wait until every settlement the sidecar started has landed in Redis."""
        assert self._loop is not None and self.sidecar is not None
        self._loop.run(self.sidecar.settler.drain(timeout))

    def http(self, **kwargs: Any) -> httpx.Client:
        """A plain HTTP client to Envoy that ignores any proxy settings."""
        return httpx.Client(base_url=self.base_url, trust_env=False, **kwargs)

    def redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_server.url, decode_responses=True)
