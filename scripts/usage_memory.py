"""Redis memory of one consumer's usage aggregates after a simulated day.

Writes a day of calls (one every `--every` seconds, spread over three models,
two rules, a few statuses) through the settlement script into a throwaway
redis-server, then sums MEMORY USAGE over the consumer's usage keys.
Run: `python scripts/usage_memory.py [--every 30]`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from extproc.aggregates import Cell, Metric, UsageAggregates
from extproc.store.keys import KeySpace
from extproc.store.quota_store import QuotaStore
from tests.harness.processes import RedisServer

MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet-20241022")
RULES = ("daily-tokens", "monthly-tokens")


def counts_for(status: str, rng: random.Random) -> dict[Metric, int]:
    if status == "429":
        return {Metric.REQUESTS: 1, Metric.REFUSED: 1}
    if status != "200":
        return {Metric.REQUESTS: 1}
    prompt, output = rng.randint(50, 4000), rng.randint(10, 1000)
    return {
        Metric.REQUESTS: 1,
        Metric.INPUT: prompt,
        Metric.OUTPUT: output,
        Metric.TOTAL: prompt + output,
        Metric.CACHED: prompt // 2 if rng.random() < 0.3 else 0,
        Metric.REASONING: output // 3 if rng.random() < 0.2 else 0,
    }


async def simulate(url: str, every_s: int) -> tuple[int, int, int]:
    """Returns (calls, usage keys, bytes) for one consumer's day."""
    redis = Redis.from_url(url)
    store = QuotaStore(redis, KeySpace())
    aggregates = UsageAggregates(KeySpace(), retention_s=90 * 86_400)
    rng = random.Random(7)
    day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    calls = 86_400 // every_s
    for n in range(calls):
        at = day + timedelta(seconds=n * every_s)
        status = rng.choices(("200", "429", "500"), weights=(90, 8, 2))[0]
        rules = RULES if status != "429" else RULES[:1]
        cell = Cell(status, rules, rng.choice(MODELS))
        increments = aggregates.increments("team-a", at, cell, counts_for(status, rng))
        await store.settle("team-a", f"r{n}", (), increments)
    keys = [key async for key in redis.scan_iter(match="llmq:{team-a}:u:*")]
    sizes = [await redis.memory_usage(key) or 0 for key in keys]
    await redis.aclose()
    return calls, len(keys), sum(sizes)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=30, help="seconds between calls")
    every = parser.parse_args().every
    server = RedisServer().start()
    try:
        calls, keys, size = asyncio.run(simulate(server.url, every))
    finally:
        server.stop()
    print(f"calls={calls} usage_keys={keys} bytes={size} per_key={size // keys}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
