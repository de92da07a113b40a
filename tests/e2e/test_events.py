"""CloudEvents on the Redis stream, read back by a consumer group (XREADGROUP)."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from extproc.rules.model import LimitType, UnknownPrice
from tests.harness.rules import quota, rule_set
from tests.harness.stack import Stack

pytestmark = pytest.mark.e2e

KEYS = {"dave": "sk-dave-0123456789"}
STREAM = "llmq:events"
# 50 input and 10 output tokens: 60 per call.
REPORTED = {"x-fake-prompt-tokens": "50", "x-fake-completion-tokens": "10"}


def post_calls(stack: Stack, calls: int) -> list[int]:
    """`calls` chat calls at once through Envoy; their status codes."""
    headers = {"authorization": f"Bearer {KEYS['dave']}", **REPORTED}
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 10,
    }

    def one(_: int) -> int:
        with stack.http() as http:
            reply = http.post("/v1/chat/completions", json=body, headers=headers)
            return reply.status_code

    with ThreadPoolExecutor(max_workers=calls) as pool:
        return list(pool.map(one, range(calls)))


def read_group(stack: Stack, group: str) -> list[dict]:
    """Every entry delivered to a new consumer group, parsed and acknowledged."""
    client = stack.redis()
    client.xgroup_create(STREAM, group, id="0")
    replies = client.xreadgroup(group, "reader-1", {STREAM: ">"}, count=1000)
    events = []
    for _, entries in replies:
        for entry_id, fields in entries:
            event = json.loads(fields["event"])
            assert (event["type"], event["subject"]) == (
                fields["type"],
                fields["subject"],
            )
            events.append(event)
            client.xack(STREAM, group, entry_id)
    return events


def test_threshold_event_once_among_concurrent_calls(fresh_stack: Stack) -> None:
    """Ten concurrent calls of 60 tokens against 1000 cross 50 % once: ten usage
    events and one threshold event reach the consumer group, all CloudEvents."""
    rule = quota("daily", 1000, thresholds=(50, 100))
    fresh_stack.use_rules(rule_set(KEYS, {rule: ("dave",)}))

    statuses = post_calls(fresh_stack, 10)
    fresh_stack.settled()
    events = read_group(fresh_stack, "billing")

    assert [200] * 10 == statuses
    assert {"dev.extproc.usage.v1": 10, "dev.extproc.quota.threshold.v1": 1} == (
        Counter(event["type"] for event in events)
    )
    envelope = {"specversion", "id", "source", "type", "time", "subject"}
    assert all(envelope <= event.keys() for event in events)
    assert {"dave"} == {event["subject"] for event in events}
    [alert] = [e for e in events if e["type"].endswith("threshold.v1")]
    assert (50, 1000, "daily", "token") == (
        alert["data"]["threshold_percent"],
        alert["data"]["limit"],
        alert["data"]["rule"],
        alert["data"]["limit_type"],
    )
    assert 500 <= alert["data"]["used"] <= 600


def test_usage_event_data(fresh_stack: Stack) -> None:
    """A usage event carries tokens, cost, model, windows, status and latency."""
    rule = quota("daily", 1000)
    fresh_stack.use_rules(rule_set(KEYS, {rule: ("dave",)}))

    post_calls(fresh_stack, 1)
    fresh_stack.settled()
    [event] = read_group(fresh_stack, "audit")

    data = event["data"]
    assert "application/json" == event["datacontenttype"]
    assert ("admitted", 200, "gpt-4o-mini", 60, None) == (
        data["decision"],
        data["status"],
        data["model"],
        data["tokens"]["total"],
        data["cost"],
    )
    assert ["daily"] == [window["rule"] for window in data["windows"]]
    assert data["latency_ms"] > 0


def test_unknown_price_warns_on_every_call(fresh_stack: Stack) -> None:
    """A tokensOnly cost rule admits unpriced calls, warning once per call."""
    budget = quota(
        "budget",
        1_000_000,
        limit_type=LimitType.COST,
        currency="USD",
        unknown_price=UnknownPrice.TOKENS_ONLY,
    )
    fresh_stack.use_rules(rule_set(KEYS, {budget: ("dave",)}))

    statuses = post_calls(fresh_stack, 2)
    fresh_stack.settled()
    events = read_group(fresh_stack, "alerts")

    warnings = [e for e in events if e["type"] == "dev.extproc.price.unknown.v1"]
    assert [200, 200] == statuses
    assert 2 == len(warnings)
    assert {("budget", "gpt-4o-mini", "tokensOnly")} == {
        (w["data"]["rule"], w["data"]["model"], w["data"]["policy"]) for w in warnings
    }
