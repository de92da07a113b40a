"""A sidecar never shares its ports with another one."""

from __future__ import annotations

import pytest

from extproc.rules.source import RuleSource
from extproc.server import Sidecar, connect_redis
from extproc.settings import Settings
from tests.harness.processes import free_port
from tests.harness.stack import empty_rules


@pytest.mark.parametrize("shared", ["port", "admin_port"])
async def test_second_sidecar_on_a_taken_port_fails_to_start(
    redis_url: str, shared: str
) -> None:
    """gRPC's port sharing is off: a second sidecar on a taken ext_proc or admin
    port fails instead of silently splitting calls between two rule sets."""
    taken = free_port()
    first = _sidecar(redis_url, {shared: taken})
    second = _sidecar(redis_url, {shared: taken})
    await first.start()
    try:
        with pytest.raises(RuntimeError):
            await second.start()
    finally:
        await first.stop()
        await second.redis.aclose()


def _sidecar(redis_url: str, fixed: dict[str, int]) -> Sidecar:
    ports = {"port": free_port(), "admin_port": free_port(), **fixed}
    settings = Settings.from_env(
        {}, redis_url=redis_url, metrics_port=free_port(), **ports
    )
    return Sidecar(settings, RuleSource(empty_rules()), connect_redis(settings))
