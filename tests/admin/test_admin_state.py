"""Resets across replicas, holds kept through a reset, exact zone buckets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openai
import pytest
from redis.asyncio import Redis

from extproc.admin.v1 import admin_pb2 as pb
from extproc.rules.model import LimitType, RuleSet
from extproc.rules.source import RuleSource
from extproc.server import Sidecar, connect_redis
from extproc.settings import Settings
from extproc.store.admin_store import AdminStore, AuditRecord
from extproc.store.quota_store import Charge
from extproc.windows import window_at
from tests.admin.conftest import Admin, Llm, chat
from tests.harness.processes import free_port
from tests.harness.rules import quota, rule_set
from tests.harness.stack import LoopThread, Stack

KEY = "sk-team-a-test-key"
CONSUMER = "team-a"


def rules(*quotas: object) -> RuleSet:
    return rule_set({CONSUMER: KEY}, {rule: (CONSUMER,) for rule in quotas})


@pytest.fixture
def second_sidecar(
    quota_stack: Stack, tokens_file: Path
) -> Iterator[Callable[[], Sidecar]]:
    """Starts another sidecar (another replica) on the same Redis, in this
    process, with its own rule source, loop and ports."""
    loop = LoopThread("second-sidecar")
    started: list[Sidecar] = []

    def start() -> Sidecar:
        settings = Settings.from_env(
            {},
            port=free_port(),
            admin_port=free_port(),
            metrics_port=free_port(),
            redis_url=quota_stack.redis_server.url,
            admin_tokens_file=tokens_file,
        )
        source = RuleSource(quota_stack.rules.current())

        async def make() -> Sidecar:
            sidecar = Sidecar(
                settings, source, connect_redis(settings), quota_stack.clock
            )
            await sidecar.start()
            return sidecar

        started.append(loop.run(make()))
        return started[-1]

    yield start
    for sidecar in started:
        loop.run(sidecar.stop())
    loop.close()


@pytest.mark.e2e
def test_a_reset_on_one_replica_admits_the_next_call_on_another(
    quota_stack: Stack,
    admin: Admin,
    llm: Llm,
    second_sidecar: Callable[[], Sidecar],
) -> None:
    """A reset made through a second sidecar is seen at once through Envoy's."""
    quota_stack.use_rules(rules(quota("daily", 300)))
    client = llm(KEY)
    chat(client, prompt_tokens=250, completion_tokens=50)
    quota_stack.settled()
    with pytest.raises(openai.RateLimitError):
        chat(client)
    other = Admin(f"127.0.0.1:{second_sidecar().admin.port}")

    reset = other.ResetQuota(pb.ResetQuotaRequest(consumer=CONSUMER, reason="refund"))
    other.close()
    seen_here = admin.GetQuotaStatus(pb.GetQuotaStatusRequest(consumer=CONSUMER))
    reply = chat(client, prompt_tokens=10, completion_tokens=5)

    assert [(a.before, a.after) for a in reset.audit] == [(300, 0)]
    assert [(s.used, s.remaining) for s in seen_here.statuses] == [(0, 300)]
    assert reply.usage is not None and reply.usage.total_tokens == 15


async def test_a_reset_keeps_the_holds_of_calls_in_flight(redis_url: str) -> None:
    """A call in flight across a reset keeps its hold, then is charged in full."""
    store = AdminStore(Redis.from_url(redis_url))
    rule = quota("daily", 1000)
    now = datetime.now(UTC)
    window = window_at(now, rule.cycle, rule.zone)
    await store.reserve(CONSUMER, "r1", [Charge(rule, window, 600)], now)
    await store.settle(CONSUMER, "r0", [Charge(rule, window, 100)])
    record = AuditRecord("a1", "t", "ops", "reset", CONSUMER, rule.name, window.id, "x")

    await store.reset([(window, record)])
    (during,) = await store.status(CONSUMER, [(rule, window)], now)
    await store.settle(CONSUMER, "r1", [Charge(rule, window, 450)])
    (after,) = await store.status(CONSUMER, [(rule, window)], now)
    await store.redis.aclose()

    assert (during.used, during.reserved, during.remaining) == (0, 600, 400)
    assert (after.used, after.reserved, after.remaining) == (450, 0, 550)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("zone", "days"),
    [
        # Local midnight falls at 18:15 UTC (+05:45) and 18:30 UTC (+05:30).
        ("Asia/Kathmandu", [110, 220 + 330 + 440]),
        ("Asia/Kolkata", [110 + 220, 330 + 440]),
        ("UTC", [110 + 220 + 330 + 440]),
    ],
)
def test_days_in_quarter_hour_zones_are_exact(
    quota_stack: Stack, admin: Admin, llm: Llm, zone: str, days: list[int]
) -> None:
    """Calls a quarter hour apart around local midnight land on the right day."""
    quota_stack.use_rules(rules(quota("daily", 1_000_000)))
    client = llm(KEY)
    evening = datetime.now(UTC).replace(hour=18, minute=0, second=0, microsecond=0)
    evening += timedelta(days=2)  # later than now: buckets are kept from their end
    for step, tokens in enumerate((110, 220, 330, 440)):
        quota_stack.clock.set(evening + timedelta(minutes=15 * step, seconds=7))
        chat(client, prompt_tokens=tokens - 10, completion_tokens=10)
    quota_stack.settled()
    first_day = evening.astimezone(ZoneInfo(zone)).replace(hour=0, minute=0)

    rows = admin.QueryUsage(
        pb.QueryUsageRequest(
            start=first_day.isoformat(),
            end=(first_day + timedelta(days=2)).isoformat(),
            time_zone=zone,
            bucket=pb.BUCKET_DAY,
        )
    ).rows

    assert [row.total_tokens for row in rows] == days
    assert rows[0].bucket_start == first_day.isoformat()


@pytest.mark.e2e
def test_status_names_the_unit_of_each_rule(quota_stack: Stack, admin: Admin) -> None:
    """Token, request and cost rules say what their numbers count."""
    requests = quota("calls", 100, limit_type=LimitType.REQUESTS)
    cost = quota("spend", 5_000_000, limit_type=LimitType.COST, currency="USD")
    quota_stack.use_rules(rules(quota("daily", 300), requests, cost))

    reply = admin.GetQuotaStatus(pb.GetQuotaStatusRequest(consumer=CONSUMER))

    assert {"calls": "requests", "daily": "tokens", "spend": "USD micros"} == {
        status.rule: status.unit for status in reply.statuses
    }
