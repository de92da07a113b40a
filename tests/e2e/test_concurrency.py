"""No overshoot by concurrency: admitted estimates never exceed what is left."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
import pytest

from extproc.apis.openai_chat import ChatCompletions
from tests.harness.rules import quota, rule_set
from tests.harness.stack import Stack

pytestmark = pytest.mark.e2e

KEY = "sk-burst-0123456789"
BODY = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Count to three."}],
    "max_tokens": 20,
}


def test_burst_admits_exactly_what_fits(fresh_stack: Stack) -> None:
    """200 calls at once against a quota for 50: 50 admitted, counter at quota."""
    body = json.dumps(BODY).encode()
    estimate = ChatCompletions().read_request("", body, 1024).estimated_tokens
    fresh_stack.use_rules(
        rule_set({"burst": KEY}, {quota("daily", 50 * estimate): ("burst",)})
    )
    # The provider reports exactly the estimate, so the counter can end at the
    # quota only if exactly 50 calls were admitted.
    headers = {
        "authorization": f"Bearer {KEY}",
        "content-type": "application/json",
        "x-fake-prompt-tokens": str(estimate - 20),
        "x-fake-completion-tokens": "20",
    }

    statuses = asyncio.run(_fire(fresh_stack.base_url, body, headers, calls=200))
    fresh_stack.settled()

    counter = fresh_stack.redis().hgetall(_counter_key(fresh_stack))
    assert {200: 50, 429: 150} == dict(statuses)
    assert {"used": str(50 * estimate), "reserved": "0"} == counter


def _counter_key(stack: Stack) -> str:
    keys = [k for k in stack.redis().keys("llmq:{burst}:q:daily:*") if "holds" not in k]
    assert 1 == len(keys)
    return keys[0]


async def _fire(
    base_url: str, body: bytes, headers: dict[str, str], calls: int
) -> Counter[int]:
    limits = httpx.Limits(max_connections=calls)
    async with httpx.AsyncClient(
        base_url=base_url, trust_env=False, limits=limits, timeout=30
    ) as client:
        start = asyncio.Event()

        async def one() -> int:
            await start.wait()
            response = await client.post(
                "/v1/chat/completions", content=body, headers=headers
            )
            return response.status_code

        tasks = [asyncio.create_task(one()) for _ in range(calls)]
        await asyncio.sleep(0.05)
        start.set()
        return Counter(await asyncio.gather(*tasks))
