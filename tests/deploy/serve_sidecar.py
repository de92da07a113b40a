"""Runs the sidecar as a process of its own, as `extproc serve` will, for tests.

Usage: python -m tests.deploy.serve_sidecar PORT REDIS_URL CONSUMER KEY QUOTA GRACE

One consumer with one daily token quota, built in code so the test needs no rule
files; the process serves until SIGTERM or SIGINT and then shuts down in order.
"""

from __future__ import annotations

import asyncio
import sys

from extproc import logs
from extproc.rules.source import RuleSource
from extproc.server import Sidecar, connect_redis, run_until_signalled
from extproc.settings import Settings
from tests.harness.rules import quota, rule_set


async def serve(
    port: int, redis_url: str, consumer: str, key: str, amount: int, grace: float
) -> None:
    settings = Settings.from_env(
        port=port, redis_url=redis_url, shutdown_grace_seconds=grace
    )
    rules = RuleSource(rule_set({consumer: key}, {quota("daily", amount): (consumer,)}))
    await run_until_signalled(Sidecar(settings, rules, connect_redis(settings)))


def main() -> None:
    port, redis_url, consumer, key, amount, grace = sys.argv[1:7]
    logs.configure("json", "info")
    asyncio.run(serve(int(port), redis_url, consumer, key, int(amount), float(grace)))


if __name__ == "__main__":
    main()
