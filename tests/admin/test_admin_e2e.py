"""The admin service against real calls through Envoy, the sidecar and Redis."""

from __future__ import annotations

from datetime import datetime, timedelta

import grpc
import openai
import pytest

from extproc.admin.v1 import admin_pb2 as pb
from extproc.windows import Cycle
from tests.admin.conftest import Admin, Llm, chat
from tests.harness.rules import quota, rule_set
from tests.harness.stack import Stack

pytestmark = pytest.mark.e2e

KEY = "sk-team-a-test-key"
CONSUMER = "team-a"


def use_rules(stack: Stack, *rules: object) -> None:
    stack.use_rules(rule_set({CONSUMER: KEY}, {rule: (CONSUMER,) for rule in rules}))


def status_of(admin: Admin, rule: str) -> pb.QuotaStatus:
    reply = admin.GetQuotaStatus(pb.GetQuotaStatusRequest(consumer=CONSUMER, rule=rule))
    (status,) = reply.statuses
    return status


def usage(admin: Admin, start: str, end: str, **options: object) -> list[pb.UsageRow]:
    request = pb.QueryUsageRequest(start=start, end=end, **options)  # type: ignore[arg-type]
    return list(admin.QueryUsage(request).rows)


def test_usage_over_a_window_equals_its_used_counter(
    quota_stack: Stack, admin: Admin, llm: Llm
) -> None:
    """Usage summed over each rule's current window equals the window's `used`."""
    use_rules(
        quota_stack,
        quota("daily", 100_000),
        quota("monthly", 1_000_000, Cycle.MONTH, "Asia/Kolkata"),
    )
    client = llm(KEY)
    chat(client, "gpt-4o-mini", 100, 20)
    chat(client, "claude-3-haiku", 50, 10)
    stream = chat(
        client,
        "gpt-4o-mini",
        30,
        5,
        stream=True,
        stream_options={"include_usage": True},
    )
    list(stream)
    quota_stack.settled()

    for rule in ("daily", "monthly"):
        status = status_of(admin, rule)
        rows = usage(
            admin,
            status.window_start,
            status.window_end,
            filter=pb.UsageFilter(consumer=CONSUMER, rule=rule),
        )
        assert status.used == 215
        assert [status.used] == [row.total_tokens for row in rows]


def test_a_call_bound_by_two_rules_counts_once_per_consumer(
    quota_stack: Stack, admin: Admin, llm: Llm
) -> None:
    """Grouped by consumer or model a call counts once; grouped by rule, per rule."""
    use_rules(
        quota_stack, quota("daily", 100_000), quota("weekly", 500_000, Cycle.WEEK)
    )
    client = llm(KEY)
    chat(client, "gpt-4o-mini", 100, 20)
    chat(client, "claude-3-haiku", 50, 10)
    quota_stack.settled()
    window = status_of(admin, "daily")
    span = (window.window_start, window.window_end)

    by_consumer = usage(admin, *span, group_by=[pb.DIMENSION_CONSUMER])
    by_model = usage(admin, *span, group_by=[pb.DIMENSION_MODEL])
    by_rule = usage(admin, *span, group_by=[pb.DIMENSION_RULE])

    assert [(r.consumer, r.requests, r.total_tokens) for r in by_consumer] == [
        (CONSUMER, 2, 180)
    ]
    assert [(r.model, r.total_tokens) for r in by_model] == [
        ("claude-3-haiku", 60),
        ("gpt-4o-mini", 120),
    ]
    assert [(r.rule, r.total_tokens) for r in by_rule] == [
        ("daily", 180),
        ("weekly", 180),
    ]


def test_refused_calls_are_counted_under_the_refusing_rule(
    quota_stack: Stack, admin: Admin, llm: Llm
) -> None:
    """A call refused by a quota adds one request and one refusal, with status 429."""
    use_rules(quota_stack, quota("tiny", 10))
    with pytest.raises(openai.RateLimitError):
        chat(llm(KEY))
    quota_stack.settled()
    window = status_of(admin, "tiny")

    rows = usage(
        admin,
        window.window_start,
        window.window_end,
        group_by=[pb.DIMENSION_RULE, pb.DIMENSION_STATUS, pb.DIMENSION_MODEL],
    )

    assert [
        (r.rule, r.status, r.model, r.requests, r.refused_requests, r.total_tokens)
        for r in rows
    ] == [("tiny", "429", "gpt-4o-mini", 1, 1, 0)]


def test_a_top_up_lasts_for_the_current_window_only(
    quota_stack: Stack, admin: Admin, llm: Llm
) -> None:
    """A top-up admits a call the quota refused, and is gone in the next window."""
    use_rules(quota_stack, quota("daily", 300))
    client = llm(KEY)
    chat(client, prompt_tokens=200, completion_tokens=50)
    quota_stack.settled()
    with pytest.raises(openai.RateLimitError):
        chat(client)

    reply = admin.AdjustQuota(
        pb.AdjustQuotaRequest(
            consumer=CONSUMER, rule="daily", add_tokens=1000, reason="launch day"
        )
    )
    chat(client, prompt_tokens=10, completion_tokens=10)
    quota_stack.settled()
    topped = status_of(admin, "daily")
    quota_stack.clock.set(
        datetime.fromisoformat(topped.window_end) + timedelta(seconds=1)
    )
    following = status_of(admin, "daily")

    assert (reply.status.limit, reply.status.remaining) == (1300, 1050)
    assert (topped.limit, topped.used, topped.remaining) == (1300, 270, 1030)
    assert (
        following.limit,
        following.quota,
        following.topup,
        following.used,
    ) == (300, 300, 0, 0)
    assert topped.window_end == following.window_start


def test_a_set_quota_applies_to_the_current_window_only(
    quota_stack: Stack, admin: Admin
) -> None:
    """A quota set at run time replaces the configured one until the window ends."""
    use_rules(quota_stack, quota("daily", 300))

    reply = admin.AdjustQuota(
        pb.AdjustQuotaRequest(
            consumer=CONSUMER, rule="daily", set_quota=5000, reason="pilot"
        )
    )
    quota_stack.clock.set(
        datetime.fromisoformat(reply.status.window_end) + timedelta(seconds=1)
    )
    following = status_of(admin, "daily")

    assert (
        reply.status.quota,
        reply.status.configured_quota,
        reply.status.quota_overridden,
    ) == (5000, 300, True)
    assert (following.quota, following.quota_overridden) == (300, False)


def test_edits_are_audited_with_who_and_why(quota_stack: Stack, admin: Admin) -> None:
    """Every edit leaves an entry naming the token, the change and the reason."""
    use_rules(quota_stack, quota("daily", 300))
    admin.AdjustQuota(
        pb.AdjustQuotaRequest(
            consumer=CONSUMER, rule="daily", add_tokens=50, reason="incident 42"
        )
    )
    admin.ResetQuota(pb.ResetQuotaRequest(consumer=CONSUMER, reason="new contract"))

    mine = admin.ListAudit(pb.ListAuditRequest(consumer=CONSUMER)).entries
    every = admin.ListAudit(pb.ListAuditRequest()).entries

    expected = [
        ("ops-alice", "reset", "daily", 0, 0, "new contract"),
        ("ops-alice", "add_tokens", "daily", 0, 50, "incident 42"),
    ]
    for entries in (mine, every):
        assert expected == [
            (e.who, e.action, e.rule, e.before, e.after, e.reason) for e in entries
        ]


def test_an_invalid_query_range_is_refused(quota_stack: Stack, admin: Admin) -> None:
    """A range that does not start on a quarter hour is INVALID_ARGUMENT."""
    with pytest.raises(grpc.RpcError) as caught:
        usage(admin, "2025-01-01T00:05:00Z", "2025-01-02T00:00:00Z")

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


INVALID, REFUSED = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"set_quota": 2**53}, INVALID),
        ({"add_tokens": 2**63 - 1}, INVALID),
        # Fine alone, but with the window's quota of 300 the limit overflows.
        ({"add_tokens": 2**53 - 300}, REFUSED),
        ({"add_tokens": 5, "reason": "x" * 1001}, INVALID),
    ],
)
def test_edits_past_exact_integers_are_refused(
    quota_stack: Stack,
    admin: Admin,
    change: dict[str, object],
    code: grpc.StatusCode,
) -> None:
    """Quotas and top-ups stay at or below 2^53 - 1, where Lua's numbers are
    exact, and reasons stay short; a refused edit changes nothing."""
    use_rules(quota_stack, quota("daily", 300))
    request = {"consumer": CONSUMER, "rule": "daily", "reason": "big", **change}

    with pytest.raises(grpc.RpcError) as caught:
        admin.AdjustQuota(pb.AdjustQuotaRequest(**request))  # type: ignore[arg-type]
    after = status_of(admin, "daily")

    assert code == caught.value.code()
    assert (300, 0, 300) == (after.limit, after.topup, after.quota)
