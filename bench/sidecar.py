"""The product's sidecar as its own process, with a rule set built in code.

Every consumer has one API key (`bench.workload.api_key`) and is bound to a daily and a
monthly token quota far too large to refuse anything, so every call is reserved
and settled in Redis as in production. Logging is configured as in production
(JSON, info): one line per call goes to stderr.

At exit it prints one JSON line to stdout: how many times the Redis client
wrote to a socket. redis-py sends one command, or one whole pipeline, per write,
so that count is the client's own count of round trips.

Run: `python -m bench.sidecar --port N --redis-url URL [--consumers N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
from typing import Any

from redis.asyncio.connection import AbstractConnection

from bench.workload import CONSUMERS, api_key
from extproc.logs import configure
from extproc.rules.model import RuleSet
from extproc.rules.source import RuleSource
from extproc.server import Sidecar, connect_redis, run_until_signalled
from extproc.settings import Settings
from extproc.windows import Cycle
from tests.harness.rules import quota, rule_set

# Far above anything the benchmark can spend, in tokens.
ADMIT_ALL_TOKENS = 10**15

REDIS_WRITES = 0


def bench_rules(consumers: int) -> RuleSet:
    keys = {f"consumer-{i:05d}": api_key(i) for i in range(consumers)}
    names = tuple(keys)
    daily = quota("bench-daily", ADMIT_ALL_TOKENS, Cycle.DAY)
    monthly = quota("bench-monthly", ADMIT_ALL_TOKENS, Cycle.MONTH)
    return rule_set(keys, {daily: names, monthly: names})


def count_redis_writes() -> None:
    """Wrap redis-py's one socket-write entry point with a counter."""
    original = AbstractConnection.send_packed_command

    async def counted(self: AbstractConnection, *args: Any, **kwargs: Any) -> None:
        global REDIS_WRITES
        REDIS_WRITES += 1
        await original(self, *args, **kwargs)

    AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]


async def serve(settings: Settings, consumers: int) -> None:
    rules = RuleSource(bench_rules(consumers))
    sidecar = Sidecar(settings, rules, connect_redis(settings))
    await run_until_signalled(sidecar)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--consumers", type=int, default=CONSUMERS)
    args = parser.parse_args()
    configure("json", "info")
    count_redis_writes()
    settings = Settings.from_env(
        {}, port=args.port, redis_url=args.redis_url, shutdown_grace_seconds=5.0
    )
    asyncio.run(serve(settings, args.consumers))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"redis_writes": REDIS_WRITES, "peak_rss_kib": peak_kib}))


if __name__ == "__main__":
    main()
