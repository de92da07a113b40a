"""Rate limits and shadow rules end to end: a real Envoy, a real Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from extproc.apis.openai_chat import ChatCompletions
from extproc.identity import hash_key
from extproc.rules.model import (
    ApiKey,
    Consumer,
    Counts,
    Mode,
    RateLimit,
    RateMeasure,
    RateUnit,
    RuleSet,
)
from tests.harness.rules import quota
from tests.harness.stack import Stack

pytestmark = pytest.mark.e2e

KEY = "sk-rate-0123456789"
PATH = "/v1/chat/completions"
HEADERS = {
    "authorization": f"Bearer {KEY}",
    "content-type": "application/json",
    "x-fake-prompt-tokens": "7",
    "x-fake-completion-tokens": "5",
}
BODY = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hello."}],
    "max_tokens": 20,
}
RPM = RateLimit("rpm", RateMeasure.REQUESTS, 10, RateUnit.MINUTE)


def limits_set(*limits: RateLimit, rules: tuple = ()) -> RuleSet:
    """One consumer, `alice`, bound by `limits` and quota `rules`."""
    alice = Consumer("alice", (ApiKey(hash_key(KEY)),))
    return RuleSet.build(
        "test",
        {"alice": alice},
        {rule.name: rule for rule in rules},
        {rule.name: ("alice",) for rule in rules},
        rate_limits={limit.name: limit for limit in limits},
        rate_bindings={limit.name: ("alice",) for limit in limits},
    )


def at_second(stack: Stack, second: int) -> datetime:
    """Puts the clock `second` s into the current minute of the real time."""
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    stack.clock.set(minute + timedelta(seconds=second))
    return stack.clock.now


def call(stack: Stack, **extra: str) -> httpx.Response:
    with stack.http(timeout=30) as http:
        return http.post(PATH, content=json.dumps(BODY), headers=HEADERS | extra)


def events(stack: Stack) -> list[dict]:
    """The usage events' data, oldest first, read from their CloudEvent JSON."""
    entries = stack.redis().xrange("llmq:events")
    return [json.loads(fields["event"])["data"] for _, fields in entries]


async def burst(
    stack: Stack, calls: int, body: dict, headers: dict[str, str]
) -> Counter[int]:
    """`calls` requests released at once; their status codes."""
    limits = httpx.Limits(max_connections=calls)
    async with httpx.AsyncClient(
        base_url=stack.base_url, trust_env=False, limits=limits, timeout=30
    ) as client:
        start = asyncio.Event()

        async def one() -> int:
            await start.wait()
            response = await client.post(PATH, json=body, headers=headers)
            return response.status_code

        tasks = [asyncio.create_task(one()) for _ in range(calls)]
        await asyncio.sleep(0.05)
        start.set()
        return Counter(await asyncio.gather(*tasks))


def test_requests_per_minute_admit_exactly_the_amount_in_a_burst(
    fresh_stack: Stack,
) -> None:
    """Forty calls at once against ten a minute: ten admitted, thirty refused."""
    fresh_stack.use_rules(limits_set(RPM))
    at_second(fresh_stack, 30)

    statuses = asyncio.run(burst(fresh_stack, 40, BODY, HEADERS))
    fresh_stack.settled()

    assert {200: 10, 429: 30} == dict(statuses)
    assert 10 == len(fresh_stack.upstream.received)


def test_requests_recover_as_the_window_slides(fresh_stack: Stack) -> None:
    """A minute after a full window, half of it has slid out: five more fit."""
    fresh_stack.use_rules(limits_set(RPM))
    start = at_second(fresh_stack, 30)
    first = [call(fresh_stack).status_code for _ in range(11)]

    fresh_stack.clock.set(start + timedelta(minutes=1))
    second = [call(fresh_stack).status_code for _ in range(6)]
    fresh_stack.clock.set(start + timedelta(minutes=2))
    third = [call(fresh_stack).status_code for _ in range(8)]

    assert [200] * 10 + [429] == first
    assert [200] * 5 + [429] == second
    # 2.5 of the previous window's 5 still count: 7 more fit, the 8th does not.
    assert [200] * 7 + [429] == third


def test_refusal_names_the_limit_and_says_when_to_retry(fresh_stack: Stack) -> None:
    """A refused call gets 429, Retry-After and the requests headers."""
    fresh_stack.use_rules(limits_set(RPM))
    at_second(fresh_stack, 30)
    admitted = [call(fresh_stack) for _ in range(10)]

    refused = call(fresh_stack)

    error = refused.json()["error"]
    assert 429 == refused.status_code
    assert ("rate_limit_exceeded", "requests") == (error["code"], error["type"])
    assert "'rpm'" in error["message"]
    # Next window, the ten slide out at one per 6 s: the first fits 36 s from now.
    expected = {
        "retry-after": "36",
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1m30s",
    }
    assert expected == {name: refused.headers[name] for name in expected}
    last = admitted[-1].headers
    assert ("10", "0") == (
        last["x-ratelimit-limit-requests"],
        last["x-ratelimit-remaining-requests"],
    )


def test_tokens_per_minute_settle_the_reported_tokens(fresh_stack: Stack) -> None:
    """Token limits hold the estimate, then keep what the provider reported."""
    total = RateLimit("tpm", RateMeasure.TOKENS, 10_000, RateUnit.MINUTE)
    output = RateLimit(
        "otpm", RateMeasure.TOKENS, 10_000, RateUnit.MINUTE, counts=Counts.OUTPUT
    )
    fresh_stack.use_rules(limits_set(total, output))
    now = at_second(fresh_stack, 10)

    response = call(fresh_stack)
    fresh_stack.settled()

    index = int(now.timestamp()) // 60
    redis = fresh_stack.redis()
    assert 200 == response.status_code
    assert {"used": "12", "reserved": "0"} == redis.hgetall(
        f"llmq:{{alice}}:r:tpm:{index}"
    )
    assert {"used": "5", "reserved": "0"} == redis.hgetall(
        f"llmq:{{alice}}:r:otpm:{index}"
    )
    # Admission saw the estimate held on both; the total limit has less left.
    estimate = ChatCompletions().read_request(PATH, json.dumps(BODY).encode(), 1024)
    assert ("10000", str(10_000 - estimate.estimated_tokens)) == (
        response.headers["x-ratelimit-limit-tokens"],
        response.headers["x-ratelimit-remaining-tokens"],
    )


SLOTS = RateLimit("slots", RateMeasure.CONCURRENT, 2)
# Ten pieces 300 ms apart: a stream lasts about three seconds.
SLOW = HEADERS | {"x-fake-chunks": "10", "x-fake-delay-ms": "300"}


def test_concurrency_limit_holds_under_parallel_streams(fresh_stack: Stack) -> None:
    """Fifty streams at once against two slots: two run, the others are refused."""
    fresh_stack.use_rules(limits_set(SLOTS))

    statuses = asyncio.run(burst(fresh_stack, 50, BODY | {"stream": True}, SLOW))
    fresh_stack.settled()

    assert {200: 2, 429: 48} == dict(statuses)
    assert 0 == fresh_stack.redis().zcard("llmq:{alice}:r:slots:slots")


def test_disconnected_streams_free_their_slots(fresh_stack: Stack) -> None:
    """Clients that leave mid-stream give their slots back."""
    fresh_stack.use_rules(limits_set(SLOTS))
    slots = "llmq:{alice}:r:slots:slots"
    # A hundred pieces 100 ms apart: the streams would last ten seconds.
    slow = HEADERS | {"x-fake-chunks": "100", "x-fake-delay-ms": "100"}
    body = json.dumps(BODY | {"stream": True})

    with ExitStack() as streams:
        # Kept referenced: a collected iterator would close its response early.
        readers = []
        for _ in range(2):
            http = streams.enter_context(fresh_stack.http(timeout=30))
            stream = streams.enter_context(
                http.stream("POST", PATH, content=body, headers=slow)
            )
            readers.append(stream.iter_bytes())
            next(readers[-1])  # a piece arrived: the call is running
        held_while_open = fresh_stack.redis().zcard(slots)
        third = call(fresh_stack)
    # Leaving the `with` closed both connections mid-stream.
    held_after = wait_for(lambda: fresh_stack.redis().zcard(slots), 0)

    assert (2, 429) == (held_while_open, third.status_code)
    assert 0 == held_after
    assert 200 == call(fresh_stack).status_code


def wait_for(read: Callable[[], int], wanted: int, seconds: float = 5.0) -> int:
    """Polls `read` until it gives `wanted` or `seconds` pass; its last value."""
    deadline = time.monotonic() + seconds
    value = read()
    while value != wanted and time.monotonic() < deadline:
        time.sleep(0.02)
        value = read()
    return value


def test_shadow_rules_never_refuse_but_are_reported(fresh_stack: Stack) -> None:
    """Shadow limits and quotas past their room admit calls and name themselves."""
    shadow_rpm = RateLimit(
        "shadow-rpm", RateMeasure.REQUESTS, 1, RateUnit.MINUTE, mode=Mode.SHADOW
    )
    # Room for the first call's estimate, not for a second one beside its charge.
    estimate = ChatCompletions().read_request(PATH, json.dumps(BODY).encode(), 1024)
    shadow_daily = quota(
        "shadow-daily", estimate.estimated_tokens + 1, mode=Mode.SHADOW
    )
    fresh_stack.use_rules(limits_set(shadow_rpm, rules=(shadow_daily,)))

    statuses = [call(fresh_stack).status_code for _ in range(3)]
    fresh_stack.settled()

    reported = [event["shadow_refusals"] for event in events(fresh_stack)]
    assert [200, 200, 200] == statuses
    both = ["shadow-daily", "shadow-rpm"]
    assert [[], both, both] == reported
    assert "x-ratelimit-limit-requests" not in call(fresh_stack).headers


# What a client sends: scripts by SHA and the event, pipelined with settlement.
# INFO commandstats also counts the commands a script runs inside Redis (those
# differ with rate limits by design) and connection handshakes of the pool.
CLIENT_COMMANDS = ("evalsha", "eval", "xadd", "script")


def command_calls(stack: Stack) -> Counter[str]:
    """Client commands Redis has run so far, from its own INFO commandstats."""
    stats = stack.redis().info("commandstats")
    calls = {name.removeprefix("cmdstat_"): s["calls"] for name, s in stats.items()}
    return Counter({name: calls.get(name, 0) for name in CLIENT_COMMANDS})


def commands_per_call(stack: Stack, rules: RuleSet, calls: int = 5) -> Counter[str]:
    stack.use_rules(rules)
    call(stack)  # loads the scripts, so every measured call runs them by SHA
    stack.settled()
    before = command_calls(stack)
    for _ in range(calls):
        call(stack)
    stack.settled()
    delta = command_calls(stack) - before
    return Counter({name: count / calls for name, count in delta.items()})


def test_rate_limits_add_no_redis_round_trip(fresh_stack: Stack) -> None:
    """A call runs the same Redis commands with and without rate limits."""
    daily = quota("daily", 1_000_000)
    tokens = RateLimit("tpm", RateMeasure.TOKENS, 100_000, RateUnit.MINUTE)

    quotas_only = commands_per_call(fresh_stack, limits_set(rules=(daily,)))
    requests = RateLimit("rpm", RateMeasure.REQUESTS, 1000, RateUnit.MINUTE)
    with_limits = commands_per_call(
        fresh_stack, limits_set(requests, tokens, SLOTS, rules=(daily,))
    )

    assert {"evalsha": 2, "xadd": 1} == quotas_only
    assert quotas_only == with_limits
