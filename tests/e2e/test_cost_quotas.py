"""Cost and requests quotas enforced through a real Envoy and a real Redis."""

from __future__ import annotations

import json

import openai
import pytest

from extproc.apis.openai_chat import ChatCompletions
from extproc.rules.model import LimitType, UnknownPrice
from tests.harness.rules import price, quota, rule_set
from tests.harness.stack import Stack

pytestmark = pytest.mark.e2e

KEYS = {"carol": "sk-carol-0123456789"}
MESSAGES = [{"role": "user", "content": "Say hello."}]
# 100 input tokens at 1.00 and 50 output at 2.00 per million: 200 micro-units.
REPORTED = {"x-fake-prompt-tokens": "100", "x-fake-completion-tokens": "50"}
MINI = price("mini", ("gpt-4o-mini*",), "1.00", "2.00")


def budget(micros: int, policy: UnknownPrice = UnknownPrice.REFUSE):
    return quota(
        "budget",
        micros,
        limit_type=LimitType.COST,
        currency="USD",
        unknown_price=policy,
    )


def call(client: openai.OpenAI, model: str = "gpt-4o-mini", **headers: str):
    return client.chat.completions.with_raw_response.create(
        model=model,
        messages=MESSAGES,
        max_tokens=50,
        extra_headers={**REPORTED, **headers},
    )


def test_cost_quota_refuses_the_call_that_no_longer_fits(
    fresh_stack: Stack, sdk
) -> None:
    """With 1000 micro-units and 200 per call, calls 1 to 5 pass and call 6 is
    refused with 429, the remaining cost header reading 0."""
    estimate = _estimate_micros()
    assert estimate <= 200  # so call 5 fits in the 200 left after call 4
    rules = {budget(1_000): ("carol",)}
    fresh_stack.use_rules(rule_set(KEYS, rules, (MINI,)))
    carol = sdk(KEYS["carol"])

    for _ in range(5):
        call(carol)
        fresh_stack.settled()
    with pytest.raises(openai.RateLimitError) as refused:
        call(carol)

    headers = refused.value.response.headers
    assert ("0", "0.001") == (
        headers["x-ratelimit-remaining-cost"],
        headers["x-ratelimit-limit-cost"],
    )
    assert "0 USD of 0.001 USD remain" in refused.value.message
    assert "1000" == _counter(fresh_stack, "budget")["used"]
    assert 1000 == _usage_cost(fresh_stack)  # monitoring agrees with the counter


def test_unpriced_model_is_refused_by_a_refusing_cost_rule(
    fresh_stack: Stack, sdk
) -> None:
    """A model without a price gets 403 model_not_priced and reaches no provider."""
    fresh_stack.use_rules(rule_set(KEYS, {budget(1_000): ("carol",)}, (MINI,)))
    carol = sdk(KEYS["carol"])

    with pytest.raises(openai.PermissionDeniedError) as refused:
        call(carol, model="llama-3-70b")

    assert "model_not_priced" == refused.value.code
    assert 0 == len(fresh_stack.upstream.received)


def test_requests_quota_admits_exactly_n(fresh_stack: Stack, sdk) -> None:
    """A requests quota of 3 admits three successful calls, not counting a failed
    one, and refuses the fourth."""
    rules = {quota("calls", 3, limit_type=LimitType.REQUESTS): ("carol",)}
    fresh_stack.use_rules(rule_set(KEYS, rules))
    carol = sdk(KEYS["carol"])

    with pytest.raises(openai.InternalServerError):
        call(carol, **{"x-fake-status": "500"})
    fresh_stack.settled()
    remaining = []
    for _ in range(3):
        remaining.append(call(carol).headers["x-ratelimit-remaining-requests"])
        fresh_stack.settled()
    with pytest.raises(openai.RateLimitError) as refused:
        call(carol)

    assert ["2", "1", "0"] == remaining
    assert "0" == refused.value.response.headers["x-ratelimit-remaining-requests"]
    assert {"used": "3", "reserved": "0"} == _counter(fresh_stack, "calls")


def _counter(stack: Stack, rule: str) -> dict[str, str]:
    [key] = [
        key
        for key in stack.redis().keys(f"llmq:{{carol}}:q:{rule}:*")
        if not key.endswith(":holds")
    ]
    return stack.redis().hgetall(key)


def _usage_cost(stack: Stack) -> int:
    """The cost (micro-units) summed over carol's usage buckets."""
    client = stack.redis()
    return sum(
        int(value)
        for key in client.keys("llmq:{carol}:u:*")
        for field, value in client.hgetall(key).items()
        if field.startswith("$|")
    )


def _estimate_micros() -> int:
    """Prompt estimate at 1.00 plus 50 output tokens at 2.00 per million."""
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 50}
    request = ChatCompletions().read_request("", json.dumps(body).encode(), 1024)
    return request.prompt_tokens + 2 * 50
