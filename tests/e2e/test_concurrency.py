"""No overshoot by concurrency: admitted estimates never exceed what is left."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from extproc.apis.openai_chat import ChatCompletions
from tests.harness.processes import RedisServer, render_envoy_config
from tests.harness.rules import quota, rule_set
from tests.harness.stack import Stack

pytestmark = pytest.mark.e2e


def _patient_envoy(*ports: int) -> dict[str, Any]:
    """The shipped config with a 10 s ext_proc message timeout instead of 2 s.

    Here the sidecar shares one Python process, and two cores, with the test's
    200 clients; a burst can hold a message past 2 s for reasons that are the
    test's, not the product's. What this test checks is the count."""
    config = render_envoy_config(*ports)
    listener = config["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    for http_filter in manager["http_filters"]:
        if http_filter["name"] == "envoy.filters.http.ext_proc":
            http_filter["typed_config"]["message_timeout"] = "10s"
    return config


@pytest.fixture(scope="module")
def stack(redis_server: RedisServer) -> Iterator[Stack]:
    """This module's stack, with the patient Envoy above."""
    running = Stack(redis_server, render=_patient_envoy).start()
    yield running
    running.stop()


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
