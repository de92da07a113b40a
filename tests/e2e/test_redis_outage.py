"""Redis unreachable: refuse with 503 by default, admit for fail-open rules."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from extproc.rules.model import FailurePolicy
from tests.harness.processes import RedisServer
from tests.harness.rules import quota, rule_set
from tests.harness.stack import Stack

pytestmark = pytest.mark.e2e

KEYS = {"strict": "sk-strict-0123456789", "lenient": "sk-lenient-0123456789"}
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def outage_stack() -> Iterator[Stack]:
    """A stack with a Redis of its own, which the tests stop and start."""
    server = RedisServer().start()
    stack = Stack(server).start()
    stack.use_rules(
        rule_set(
            KEYS,
            {
                quota("strict-daily", 100_000): ("strict",),
                quota("lenient-daily", 100_000, failure_policy=FailurePolicy.OPEN): (
                    "lenient",
                ),
            },
        )
    )
    yield stack
    stack.stop()
    server.stop()


def post(stack: Stack, consumer: str) -> tuple[int, dict]:
    headers = {"authorization": f"Bearer {KEYS[consumer]}"}
    with stack.http(timeout=10) as http:
        response = http.post("/v1/chat/completions", json=BODY, headers=headers)
    return response.status_code, response.json()


def test_outage_refuses_closed_rules_and_admits_open_ones(outage_stack: Stack) -> None:
    """With Redis stopped, a closed rule answers 503 JSON and an open rule admits."""
    outage_stack.redis_server.stop()
    try:
        strict_status, strict_body = post(outage_stack, "strict")
        lenient_status, _ = post(outage_stack, "lenient")
    finally:
        outage_stack.redis_server.start()

    assert 503 == strict_status
    assert "quota_service_unavailable" == strict_body["error"]["code"]
    assert 200 == lenient_status


def test_serving_resumes_when_redis_returns(outage_stack: Stack) -> None:
    """After Redis comes back, calls are admitted and charged again by themselves."""
    outage_stack.redis_server.stop()
    down_status, _ = post(outage_stack, "strict")
    outage_stack.redis_server.start()

    up_status, body = post(outage_stack, "strict")
    outage_stack.settled()

    used = outage_stack.redis().hget(_strict_counter(outage_stack), "used")
    assert (down_status, up_status) == (503, 200)
    assert str(body["usage"]["total_tokens"]) == used


def _strict_counter(stack: Stack) -> str:
    keys = stack.redis().keys("llmq:{strict}:q:strict-daily:*")
    return next(k for k in keys if not k.endswith(":holds"))


def test_settlement_waits_out_an_outage(outage_stack: Stack) -> None:
    """A call that ends while Redis is away is charged once Redis is back."""
    slow = {
        "authorization": f"Bearer {KEYS['strict']}",
        "x-fake-prompt-tokens": "30",
        "x-fake-completion-tokens": "12",
        "x-fake-delay-ms": "100",
    }
    body = {**BODY, "stream": True}
    with (
        outage_stack.http(timeout=20) as http,
        http.stream("POST", "/v1/chat/completions", json=body, headers=slow) as reply,
    ):
        chunks = reply.iter_bytes()
        next(chunks)  # admitted and streaming: now take Redis away
        outage_stack.redis_server.stop()
        for _ in chunks:
            pass
    try:
        time.sleep(0.5)  # the settlement fails at least once meanwhile
    finally:
        outage_stack.redis_server.start()
    outage_stack.settled(timeout=15)

    assert "42" == outage_stack.redis().hget(_strict_counter(outage_stack), "used")
