"""Wires the sidecar: Redis, the rule source, the ext_proc service and health.

The admin server (its own port) starts and stops with the ext_proc server.
Shutdown runs in order: health turns NOT_SERVING, the servers stop taking new
streams and let open ones finish within the grace period, settlements in flight
are awaited, then Redis is closed.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass, field

import grpc
import structlog
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from extproc.admin.server import AdminServer
from extproc.clock import Clock, system_clock
from extproc.errors import RulesError
from extproc.health import HealthService
from extproc.metrics import Metrics
from extproc.processor import ExternalProcessor
from extproc.rules.model import RuleSet
from extproc.rules.source import RuleSource
from extproc.settings import Settings
from extproc.settlement import Settler
from extproc.store.admin_store import AdminStore
from extproc.store.keys import KeySpace
from extproc.store.quota_store import QuotaStore, StoreTimings

log = structlog.get_logger("extproc.server")

EXT_PROC_SERVICE = "envoy.service.ext_proc.v3.ExternalProcessor"

# Envoy sends a buffered request body as one gRPC message, as large as the
# listener's buffer (8 MiB in the shipped configs); gRPC's default 4 MiB cap
# would fail such calls with an empty 500. 64 MiB leaves room for larger buffers.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

GRPC_OPTIONS = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    # A second sidecar on the same port must fail to start, not split traffic.
    ("grpc.so_reuseport", 0),
)


def connect_redis(settings: Settings) -> Redis:
    """A Redis client that fails fast: the hot path must answer within Envoy's
    message timeout, so one quick retry (for a connection Redis dropped) and no
    backoff.

    The pool is bounded: a burst of calls waits briefly for a connection instead
    of opening hundreds at once, which under load costs more than it saves.
    """
    timeout = settings.redis_timeout_ms / 1000
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )
    return Redis.from_pool(pool)  # the client owns the pool and closes it


@dataclass
class Sidecar:
    settings: Settings
    rules: RuleSource
    redis: Redis
    clock: Clock = system_clock
    server: grpc.aio.Server = field(init=False)
    settler: Settler = field(init=False)
    health: HealthService = field(init=False)
    admin: AdminServer = field(init=False)
    metrics: Metrics = field(init=False)
    port: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        settings = self.settings
        self.metrics = Metrics()
        store = QuotaStore(
            self.redis,
            KeySpace(settings.key_prefix),
            StoreTimings(
                hold_s=settings.hold_seconds,
                retention_s=settings.retention_days * 86_400,
                usage_retention_s=settings.usage_retention_days * 86_400,
            ),
            observe=self.metrics.redis,
        )
        self.settler = Settler(
            store, settings.settle_retry_seconds, settings.events_max_len
        )
        processor = ExternalProcessor(
            self.rules,
            store,
            self.settler,
            settings.default_output_tokens,
            self.clock,
            self.metrics,
            settings.passthrough_paths,
        )
        self.server = grpc.aio.server(options=GRPC_OPTIONS)
        pb_grpc.add_ExternalProcessorServicer_to_server(processor, self.server)
        self.health = HealthService()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        admin_store = AdminStore(self.redis, store.keys, store.timings)
        self.admin = AdminServer(settings, self.rules, admin_store, self.clock)

    async def start(self) -> int:
        """Bind and start serving; returns the port (useful when asked for 0)."""
        address = f"{self.settings.host}:{self.settings.port}"
        self.port = self.server.add_insecure_port(address)
        await self.server.start()
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        await self.admin.start()
        self.metrics.serve(self.settings.metrics_host, self.settings.metrics_port)
        log.info(
            "serving",
            address=f"{self.settings.host}:{self.port}",
            rules_revision=self.rules.current().revision,
        )
        return self.port

    async def stop(self) -> None:
        grace = self.settings.shutdown_grace_seconds
        # Watchers see NOT_SERVING and their streams end, so only calls in
        # flight can hold the stop below.
        await self.health.shut_down()
        await asyncio.gather(self.server.stop(grace), self.admin.stop(grace))
        left = await self.settler.drain(grace)
        if left:
            log.error("shutdown_settlements_left", count=left)
        await self.redis.aclose()
        self.metrics.stop()
        log.info("stopped")

    async def _set_health(self, status: int) -> None:
        for service in ("", EXT_PROC_SERVICE):
            await self.health.set(service, status)


async def run_until_signalled(sidecar: Sidecar) -> None:
    """Serve until SIGTERM or SIGINT, then shut down in order."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await sidecar.start()
    await stop.wait()
    log.info("stopping", grace_seconds=sidecar.settings.shutdown_grace_seconds)
    await sidecar.stop()


async def serve_forever(settings: Settings, clock: Clock = system_clock) -> None:
    """Load and watch the rules, then serve until a signal; for `extproc serve`.

    Rules that fail to load at start stop the start (RulesError); a bad change
    later is refused by the watcher while the last good rules keep serving.
    """
    from extproc.rules.watcher import RulesWatcher

    rules = RuleSource.from_folder(settings.rules_dir)
    sidecar = Sidecar(settings, rules, connect_redis(settings), clock)
    metrics = sidecar.metrics

    def accepted(new: RuleSet) -> None:
        rules.swap(new)
        metrics.rules_reloaded(True)

    def refused(error: RulesError) -> None:
        rules.refuse(error)
        metrics.rules_reloaded(False)

    watcher = RulesWatcher(
        settings.rules_dir, accepted, on_refused=refused, serving=rules.current()
    )
    watching = asyncio.create_task(watcher.run())
    try:
        await run_until_signalled(sidecar)
    finally:
        watcher.stop()
        await watching
