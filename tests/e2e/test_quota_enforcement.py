"""Token quotas enforced end to end: the openai SDK, a real Envoy, a real Redis."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import openai
import pytest

from extproc.apis.openai_chat import ChatCompletions
from tests.harness.rules import quota, rule_set
from tests.harness.stack import Stack

pytestmark = pytest.mark.e2e

KEYS = {"alice": "sk-alice-0123456789", "bob": "sk-bob-0123456789"}
MESSAGES = [{"role": "user", "content": "Say hello."}]
# The fake provider reports these numbers when told to, through headers.
REPORTED = {"x-fake-prompt-tokens": "7", "x-fake-completion-tokens": "5"}


def daily_counter(stack: Stack, consumer: str, rule: str) -> dict[str, str]:
    day = stack.clock().astimezone(_shanghai()).strftime("%Y%m%d")
    key = f"llmq:{{{consumer}}}:q:{rule}:day@Asia/Shanghai:{day}"
    return stack.redis().hgetall(key)


def _shanghai():
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


def events(stack: Stack) -> list[dict]:
    """The usage events' data, oldest first, read from their CloudEvent JSON."""
    entries = stack.redis().xrange("llmq:events")
    return [json.loads(fields["event"])["data"] for _, fields in entries]


@pytest.fixture
def alice(fresh_stack: Stack, sdk) -> openai.OpenAI:
    fresh_stack.use_rules(rule_set(KEYS, {quota("daily", 10_000): ("alice", "bob")}))
    return sdk(KEYS["alice"])


def test_json_call_is_charged_the_reported_tokens(
    fresh_stack: Stack, alice: openai.OpenAI
) -> None:
    """A non-streaming call is admitted and charged the provider's total."""
    reply = alice.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=50, extra_headers=REPORTED
    )
    fresh_stack.settled()

    assert 12 == reply.usage.total_tokens
    assert daily_counter(fresh_stack, "alice", "daily") == {
        "used": "12",
        "reserved": "0",
    }


def test_streamed_call_is_charged_the_reported_tokens(
    fresh_stack: Stack, alice: openai.OpenAI
) -> None:
    """A streamed call gets usage reporting added and is charged from it."""
    stream = alice.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        max_tokens=50,
        stream=True,
        extra_headers=REPORTED,
    )
    contents = [c.choices[0].delta.content for c in stream if c.choices]
    fresh_stack.settled()

    forwarded = fresh_stack.upstream.received[-1].json()
    assert 5 == len(contents)
    assert {"include_usage": True} == forwarded["stream_options"]
    assert "12" == daily_counter(fresh_stack, "alice", "daily")["used"]


def test_admitted_calls_carry_remaining_quota_headers(
    fresh_stack: Stack, alice: openai.OpenAI
) -> None:
    """An admitted response says the limit and what is left after its hold."""
    raw = alice.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=50, extra_headers=REPORTED
    )
    estimate = _estimate(max_tokens=50)

    assert "10000" == raw.headers["x-ratelimit-limit-tokens"]
    assert str(10_000 - estimate) == raw.headers["x-ratelimit-remaining-tokens"]


def test_call_past_the_quota_is_refused_with_429(
    fresh_stack: Stack, alice: openai.OpenAI
) -> None:
    """The call that would exceed the quota gets 429 and the SDK's rate-limit error."""
    big = {"x-fake-prompt-tokens": "9900", "x-fake-completion-tokens": "50"}
    alice.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=50, extra_headers=big
    )
    fresh_stack.settled()

    with pytest.raises(openai.RateLimitError) as refused:
        alice.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, max_tokens=100
        )

    response = refused.value.response
    assert "application/json" == response.headers["content-type"]
    assert "quota_exceeded" == refused.value.code
    assert "'daily'" in refused.value.message
    assert "50" == response.headers["x-ratelimit-remaining-tokens"]
    reset = fresh_stack.clock().astimezone(_shanghai()).replace(
        hour=0, minute=0, second=0, microsecond=0
    ) + timedelta(days=1)
    expected_wait = int((reset - fresh_stack.clock()).total_seconds())
    assert abs(expected_wait - int(response.headers["retry-after"])) <= 1
    assert daily_counter(fresh_stack, "alice", "daily") == {
        "used": "9950",
        "reserved": "0",
    }


def test_quota_is_back_in_the_next_window(
    fresh_stack: Stack, alice: openai.OpenAI
) -> None:
    """After local midnight in the rule's zone the consumer is admitted again."""
    start = datetime(2026, 12, 4, 15, 59, 0, tzinfo=UTC)  # 23:59 in Shanghai
    fresh_stack.clock.set(start)
    spend = {"x-fake-prompt-tokens": "9990", "x-fake-completion-tokens": "10"}
    alice.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=10, extra_headers=spend
    )
    fresh_stack.settled()
    with pytest.raises(openai.RateLimitError):
        alice.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, max_tokens=10
        )

    fresh_stack.clock.set(start + timedelta(minutes=1))  # 00:00 the next day
    reply = alice.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=10, extra_headers=REPORTED
    )
    fresh_stack.settled()

    assert 12 == reply.usage.total_tokens
    assert "12" == daily_counter(fresh_stack, "alice", "daily")["used"]


def test_wrong_and_missing_keys_get_401(fresh_stack: Stack, alice, sdk) -> None:
    """An unknown key and no key at all are refused before the provider."""
    stranger = sdk("sk-not-a-known-key")

    with pytest.raises(openai.AuthenticationError) as refused:
        stranger.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    with fresh_stack.http() as http:
        anonymous = http.post("/v1/chat/completions", json={"model": "m"})

    assert "invalid_api_key" == refused.value.code
    assert 401 == anonymous.status_code
    assert "application/json" == anonymous.headers["content-type"]
    assert 0 == len(fresh_stack.upstream.received)


def test_identity_header_is_replaced_and_key_not_forwarded(
    fresh_stack: Stack, alice: openai.OpenAI
) -> None:
    """A client-sent x-consumer-id is replaced and the key never reaches upstream."""
    alice.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        extra_headers={"x-consumer-id": "bob", "x-api-key": KEYS["alice"]},
    )

    forwarded = fresh_stack.upstream.received[-1].headers
    assert "alice" == forwarded["x-consumer-id"]
    assert "authorization" not in forwarded
    assert "x-api-key" not in forwarded
    assert KEYS["alice"] not in json.dumps(forwarded)


@pytest.mark.parametrize(
    ("body", "message_part"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "JSON request body"),
        (b"[1, 2]", "JSON object"),
        (b'{"messages": []}', "'model'"),
        (b'{"model": "m", "messages": [], "max_tokens": -3}', "'max_tokens'"),
        (b'{"model": "m", "messages": [], "max_tokens": 1e40}', "'max_tokens'"),
        (
            b'{"model": "m", "messages": [], "max_tokens": 99999999999999999999}',
            "at most 2147483647",
        ),
        (b'{"model": "gpt-4o", "model": "free", "messages": []}', "repeats"),
        (b'{"model": "gpt-4o", "mod\\u0065l": "free", "messages": []}', "repeats"),
        (b'{"model": "m", "stream": false, "stream": true, "messages": []}', "repeats"),
        (b'{"model": "' + b"m" * 300 + b'", "messages": []}', "printable"),
        (b'{"model": "gpt\\n4o", "messages": []}', "printable"),
    ],
)
def test_unreadable_bodies_get_a_clear_400(
    fresh_stack: Stack, alice, body: bytes, message_part: str
) -> None:
    """Malformed or incomplete bodies get a JSON 400 and never reach the provider."""
    headers = {"authorization": f"Bearer {KEYS['alice']}"}
    with fresh_stack.http() as http:
        response = http.post("/v1/chat/completions", content=body, headers=headers)

    assert 400 == response.status_code
    assert message_part in response.json()["error"]["message"]
    assert 0 == len(fresh_stack.upstream.received)


def test_failed_upstream_call_releases_its_hold(
    fresh_stack: Stack, alice: openai.OpenAI
) -> None:
    """A provider error charges nothing and frees the reservation."""
    with pytest.raises(openai.InternalServerError):
        alice.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            extra_headers={"x-fake-status": "500"},
        )
    fresh_stack.settled()

    assert {"reserved": "0"} == daily_counter(fresh_stack, "alice", "daily")
    assert 500 == events(fresh_stack)[-1]["status"]


def test_provider_failing_before_headers_gets_a_json_502(
    fresh_stack: Stack, alice: openai.OpenAI
) -> None:
    """Envoy's own 502, when the provider hangs up at once, is JSON too."""
    cut = {**REPORTED, "x-fake-cut-after": "0"}
    with pytest.raises(openai.InternalServerError) as failed:
        alice.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=cut
        )

    assert 502 == failed.value.status_code
    assert "upstream_unavailable" == failed.value.code


def test_stream_cut_short_is_charged_an_estimate(
    fresh_stack: Stack, alice: openai.OpenAI
) -> None:
    """A stream the provider cuts is charged prompt estimate plus content seen."""
    cut = {
        **REPORTED,
        "x-fake-chunks": "20",
        "x-fake-cut-after": "6",
        "x-fake-delay-ms": "30",  # lets each chunk reach the client before the cut
    }
    received = []
    with pytest.raises(openai.APIError):
        for chunk in alice.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=cut
        ):
            received.append(chunk)
    fresh_stack.settled()

    prompt_estimate = _estimate(max_tokens=1) - 1
    event = events(fresh_stack)[-1]
    assert 6 == len(received)
    assert event["estimated"] is True
    assert prompt_estimate + 6 == event["charged_tokens"]
    assert {"used": str(prompt_estimate + 6), "reserved": "0"} == daily_counter(
        fresh_stack, "alice", "daily"
    )


def test_client_leaving_mid_stream_is_settled(fresh_stack: Stack, alice) -> None:
    """A client that disconnects mid-stream still has its call settled."""
    slow = {**REPORTED, "x-fake-chunks": "50", "x-fake-delay-ms": "20"}
    stream = alice.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, extra_headers=slow
    )
    next(iter(stream))
    stream.close()
    fresh_stack.settled()
    _wait_for_event(fresh_stack)

    counter = daily_counter(fresh_stack, "alice", "daily")
    assert "0" == counter["reserved"]
    assert int(counter["used"]) > 0
    assert "stream_ended_early" == events(fresh_stack)[-1]["reason"]


def test_other_consumers_keep_their_own_quota(fresh_stack: Stack, alice, sdk) -> None:
    """Spending by one consumer does not touch another's card."""
    spend = {"x-fake-prompt-tokens": "9990", "x-fake-completion-tokens": "10"}
    alice.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=10, extra_headers=spend
    )
    bob = sdk(KEYS["bob"])

    reply = bob.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers=REPORTED
    )

    assert 12 == reply.usage.total_tokens


def test_usage_event_records_estimate_and_actual(
    fresh_stack: Stack, alice: openai.OpenAI
) -> None:
    """Each settled call leaves one event with estimate, actual and window."""
    alice.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=50, extra_headers=REPORTED
    )
    fresh_stack.settled()

    [event] = events(fresh_stack)
    window = fresh_stack.clock().astimezone(_shanghai()).strftime("%Y%m%d")
    assert {
        "decision": "admitted",
        "model": "gpt-4o-mini",
        "status": 200,
        "windows": [
            {"rule": "daily", "window": window, "limit_type": "token", "charged": 12}
        ],
        "estimate_tokens": _estimate(max_tokens=50),
        "tokens": {
            "input": 7,
            "output": 5,
            "total": 12,
            "cached_input": 0,
            "cache_write_input": 0,
            "reasoning": 0,
        },
        "estimated": False,
    } == {name: event[name] for name in (
        "decision", "model", "status", "windows", "estimate_tokens", "tokens",
        "estimated",
    )}  # fmt: skip


def _estimate(max_tokens: int) -> int:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": max_tokens}
    request = ChatCompletions().read_request("", json.dumps(body).encode(), 1024)
    return request.estimated_tokens


def _wait_for_event(stack: Stack, timeout: float = 5.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not events(stack) and time.monotonic() < deadline:
        time.sleep(0.05)
        stack.settled()


def test_http_client_has_no_proxy() -> None:
    """The test clients never follow proxy settings off this machine."""
    assert httpx.Client(trust_env=False).trust_env is False


def test_huge_body_is_refused_and_others_keep_being_served(
    fresh_stack: Stack, alice: openai.OpenAI
) -> None:
    """A body past Envoy's 8 MiB buffer gets 413; the next call is served."""
    text = "x" * (9 * 1024 * 1024)
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    headers = {"authorization": f"Bearer {KEYS['alice']}"}
    with fresh_stack.http(timeout=30) as http:
        huge = http.post("/v1/chat/completions", json=body, headers=headers)

    reply = alice.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, max_tokens=5, extra_headers=REPORTED
    )

    assert (413, "application/json") == (
        huge.status_code,
        huge.headers["content-type"],
    )
    assert "request_too_large" == huge.json()["error"]["code"]
    assert 12 == reply.usage.total_tokens
    assert 1 == len(fresh_stack.upstream.received)


def test_large_body_under_envoys_buffer_is_served(
    fresh_stack: Stack, alice: openai.OpenAI
) -> None:
    """A 6 MiB body (an inline image, say) passes gRPC's own 4 MiB default."""
    text = "x" * (6 * 1024 * 1024)
    messages = [{"role": "user", "content": text}]

    with pytest.raises(openai.RateLimitError) as refused:
        alice.chat.completions.create(model="gpt-4o-mini", messages=messages)

    # 6 MiB of ASCII is estimated at about 1.6 million tokens: over the quota.
    assert "quota_exceeded" == refused.value.code


def test_usage_event_carries_envoys_request_id(
    fresh_stack: Stack, alice: openai.OpenAI
) -> None:
    """The event names Envoy's x-request-id, which its access log carries."""
    raw = alice.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        max_tokens=5,
        extra_headers={**REPORTED, "x-request-id": "trace-0123"},
    )
    fresh_stack.settled()

    [event] = events(fresh_stack)
    forwarded = fresh_stack.upstream.received[-1].headers["x-request-id"]
    assert (forwarded, 200) == (event["request_id"], raw.http_response.status_code)


def test_call_that_can_never_fit_gets_no_retry_after(
    fresh_stack: Stack, alice: openai.OpenAI
) -> None:
    """An estimate over the whole quota is told so, with no time to wait for."""
    with pytest.raises(openai.RateLimitError) as refused:
        alice.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, max_tokens=20_000
        )

    headers = refused.value.response.headers
    assert ("false", None) == (headers["x-should-retry"], headers.get("retry-after"))
    assert "exceeds the whole" in refused.value.message
