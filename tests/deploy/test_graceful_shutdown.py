"""SIGTERM during streamed calls: they finish, are charged, and leave no hold."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
import redis
from grpc_health.v1 import health_pb2, health_pb2_grpc

from extproc.devstack.fake_upstream import FakeUpstream
from extproc.rules.source import RuleSource
from extproc.server import EXT_PROC_SERVICE, Sidecar, connect_redis
from extproc.settings import Settings
from tests.harness.processes import (
    REPO,
    EnvoyProcess,
    free_port,
    render_envoy_config,
    wait_for_port,
)
from tests.harness.rules import daily_rule_yaml
from tests.harness.stack import LoopThread, empty_rules

pytestmark = pytest.mark.e2e

KEY = "sk-shutdown-test"
CALLS = 4
CHUNKS = 10
DELAY_MS = 200  # between chunks: each call streams for about 2 s
PROMPT_TOKENS, COMPLETION_TOKENS = 30, 12


@dataclass
class Gateway:
    envoy: EnvoyProcess
    sidecar: subprocess.Popen[str]

    def logs(self) -> str:
        assert self.sidecar.stdout is not None
        return self.sidecar.stdout.read()


RULES = daily_rule_yaml("alice", KEY, 1_000_000)


@pytest.fixture
def start_gateway(
    redis_url: str, tmp_path: Path
) -> Iterator[Callable[[float], Gateway]]:
    """Starts the fake provider, `extproc serve` as a process (with a given
    grace, in s) and Envoy; stops whatever is left at the end."""
    (tmp_path / "rules.yaml").write_text(RULES)
    loop = LoopThread("upstream")
    upstream = FakeUpstream()
    upstream_port = loop.run(upstream.start())
    started: list[Gateway] = []

    def start(grace: float) -> Gateway:
        sidecar_port = free_port()
        command = [
            sys.executable, "-m", "extproc", "serve",
            "--rules", str(tmp_path), "--redis-url", redis_url,
            "--port", str(sidecar_port), "--admin-port", str(free_port()),
            "--log-format", "json",
        ]  # fmt: skip
        env = {
            **os.environ,
            "EXTPROC_SHUTDOWN_GRACE_SECONDS": str(grace),
            "EXTPROC_METRICS_PORT": str(free_port()),
        }
        sidecar = subprocess.Popen(
            command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=env,
        )  # fmt: skip
        wait_for_port(sidecar_port)
        ports = (free_port(), sidecar_port, upstream_port, free_port())
        started.append(Gateway(EnvoyProcess(render_envoy_config(*ports)), sidecar))
        started[-1].envoy.start()
        return started[-1]

    yield start
    for gateway in started:
        _stop(gateway)
    loop.run(upstream.stop())
    loop.close()


def _stop(gateway: Gateway) -> None:
    gateway.envoy.stop()
    if gateway.sidecar.poll() is None:
        gateway.sidecar.kill()
        gateway.sidecar.wait()
    if gateway.sidecar.stdout is not None:
        gateway.sidecar.stdout.close()


def _stream(base_url: str) -> str:
    body = {
        "model": "gpt-4o",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hi"}],
    }
    headers = {
        "authorization": f"Bearer {KEY}",
        "x-fake-chunks": str(CHUNKS),
        "x-fake-delay-ms": str(DELAY_MS),
        "x-fake-prompt-tokens": str(PROMPT_TOKENS),
        "x-fake-completion-tokens": str(COMPLETION_TOKENS),
    }
    text, status = "", 0
    with httpx.Client(base_url=base_url, trust_env=False, timeout=30) as client:
        try:
            with client.stream(
                "POST", "/v1/chat/completions", json=body, headers=headers
            ) as reply:
                status = reply.status_code
                for piece in reply.iter_text():
                    text += piece
        except httpx.RemoteProtocolError:
            status = -1  # cut mid-stream
    chunks = len(re.findall(r"tok\d+ ", text))
    return f"{status} {chunks} {'[DONE]' in text}"


def _counters(url: str) -> dict[str, str]:
    """The fields of every quota counter hash, merged (one rule, one window)."""
    client = redis.Redis.from_url(url, decode_responses=True)
    merged: dict[str, str] = {}
    for key in client.scan_iter("llmq:*:q:*"):
        if client.type(key) == "hash":
            merged.update(client.hgetall(key))
    return merged


def _sigterm_during_streams(gateway: Gateway) -> tuple[list[str], int, str]:
    """Streams CALLS calls, sends SIGTERM mid-way; outcomes, exit code, late call."""
    with ThreadPoolExecutor(CALLS) as pool:
        calls = [pool.submit(_stream, gateway.envoy.base_url) for _ in range(CALLS)]
        time.sleep(DELAY_MS * 3 / 1000)  # every stream is mid-way
        gateway.sidecar.send_signal(signal.SIGTERM)
        time.sleep(DELAY_MS / 1000)
        late = pool.submit(_stream, gateway.envoy.base_url).result(timeout=30)
        outcomes = [call.result(timeout=30) for call in calls]
    return outcomes, gateway.sidecar.wait(timeout=30), late


def test_sigterm_lets_streams_finish_and_settle(
    start_gateway: Callable[[float], Gateway], redis_url: str
) -> None:
    """Streams in flight at SIGTERM complete and are charged; new calls are not
    admitted; no hold is left in Redis."""
    gateway = start_gateway(10.0)
    outcomes, exit_code, late = _sigterm_during_streams(gateway)
    expected_used = CALLS * (PROMPT_TOKENS + COMPLETION_TOKENS)

    assert [f"200 {CHUNKS} True"] * CALLS == outcomes
    assert "500 0 False" == late
    assert 0 == exit_code, gateway.logs()
    counters = _counters(redis_url)
    holds = sorted(name for name in counters if name.startswith("h:"))
    assert ([], "0", str(expected_used)) == (
        holds,
        counters.get("reserved"),
        counters.get("used"),
    )


def test_streams_cut_by_the_grace_period_are_settled(
    start_gateway: Callable[[float], Gateway], redis_url: str
) -> None:
    """Streams still open when the grace period ends are settled with what was
    delivered, and their holds are released."""
    gateway = start_gateway(0.5)
    outcomes, exit_code, _ = _sigterm_during_streams(gateway)

    assert CALLS == sum(1 for outcome in outcomes if outcome != f"200 {CHUNKS} True")
    assert 0 == exit_code, gateway.logs()
    counters = _counters(redis_url)
    holds = sorted(name for name in counters if name.startswith("h:"))
    assert ([], "0", True) == (
        holds,
        counters.get("reserved"),
        int(counters.get("used", "0")) > 0,
    )


async def test_health_watch_does_not_hold_shutdown(redis_url: str) -> None:
    """A client watching health sees NOT_SERVING, its stream ends, and the stop
    takes well under the 5 s grace when no call is in flight."""
    settings = Settings.from_env(
        {},
        port=free_port(),
        metrics_port=free_port(),
        redis_url=redis_url,
        shutdown_grace_seconds=5.0,
    )
    sidecar = Sidecar(settings, RuleSource(empty_rules()), connect_redis(settings))
    port = await sidecar.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=EXT_PROC_SERVICE)
        )
        seen = [(await watch.read()).status]
        started = time.monotonic()
        await sidecar.stop()
        took = time.monotonic() - started
        while (reply := await watch.read()) is not grpc.aio.EOF:
            seen.append(reply.status)
        code = await watch.code()
    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    assert ([serving, not_serving], grpc.StatusCode.OK) == (seen, code)
    assert took < 1.0
