"""Each supported API through a real Envoy, with the official SDKs as clients.

The fake provider answers in each API's own wire format and token conventions;
the quota counter in Redis must end up holding exactly the provider's total, in
normalized terms (input with cached and cache-write tokens, output with
reasoning).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest

from extproc.store.keys import KeySpace
from extproc.windows import Cycle, window_at
from tests.harness.rules import quota, rule_set
from tests.harness.stack import Stack

pytestmark = pytest.mark.e2e

KEY = "sk-usage-team"
RULE = quota("daily", 10_000_000)

# Normalized tokens the fake reports for every call, and their total.
PROMPT, CACHED, CACHE_WRITE, COMPLETION, REASONING = 1200, 800, 100, 90, 40
TOTAL = PROMPT + COMPLETION
STEER = {
    "x-fake-prompt-tokens": str(PROMPT),
    "x-fake-cached-tokens": str(CACHED),
    "x-fake-completion-tokens": str(COMPLETION),
    "x-fake-reasoning-tokens": str(REASONING),
    "x-fake-chunks": "12",
}
# Anthropic alone reports cache writes; the others have no such count.
ANTHROPIC_STEER = {**STEER, "x-fake-cache-write-tokens": str(CACHE_WRITE)}


@pytest.fixture
def team(fresh_stack: Stack) -> Iterator[Stack]:
    fresh_stack.use_rules(rule_set({"team": KEY}, {RULE: ("team",)}))
    yield fresh_stack


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """The SDKs' HTTP client: no proxy settings, closed after the test."""
    with httpx.Client(trust_env=False) as client:
        yield client


def used(stack: Stack) -> int:
    """The team's `used` counter for today's window, once settlement landed."""
    stack.settled()
    window = window_at(stack.clock(), Cycle.DAY, RULE.zone)
    key = KeySpace().counter("team", RULE.name, window.key)
    return int(stack.redis().hget(key, "used") or 0)


def openai_client(
    stack: Stack, http: httpx.Client, headers: dict[str, str]
) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=KEY,
        base_url=stack.base_url + "/v1",
        max_retries=0,
        default_headers=headers,
        http_client=http,
    )


@pytest.fixture
def claude(team: Stack) -> Iterator[anthropic.Anthropic]:
    """An Anthropic client steering the fake; its SDK brings its own HTTP package."""
    with anthropic.Anthropic(
        api_key=KEY,
        base_url=team.base_url,
        max_retries=0,
        default_headers=ANTHROPIC_STEER,
        http_client=anthropic.DefaultHttpxClient(trust_env=False),
    ) as client:
        yield client


def test_chat_json(team: Stack, http: httpx.Client) -> None:
    """A chat completion is charged the provider's prompt plus completion."""
    client = openai_client(team, http, STEER)
    reply = client.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.usage is not None and TOTAL == reply.usage.total_tokens
    assert TOTAL == used(team)


def test_chat_stream_without_usage_request(team: Stack, http: httpx.Client) -> None:
    """A stream whose client did not ask for usage is charged, yet gets no report."""
    client = openai_client(team, http, STEER)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert 12 == len(chunks)
    assert [] == [chunk for chunk in chunks if not chunk.choices]
    assert TOTAL == used(team)
    sent = team.upstream.received[-1].json()
    assert {"include_usage": True} == sent["stream_options"]


def test_chat_stream_with_usage_request(team: Stack, http: httpx.Client) -> None:
    """A client that asked for usage receives the provider's report unchanged."""
    client = openai_client(team, http, STEER)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4.1",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    reports = [chunk.usage for chunk in chunks if chunk.usage is not None]
    assert [TOTAL] == [report.total_tokens for report in reports]
    assert TOTAL == used(team)


def test_legacy_completions_stream(team: Stack, http: httpx.Client) -> None:
    """A legacy completions stream is charged and its added report removed."""
    client = openai_client(team, http, STEER)
    chunks = list(
        client.completions.create(model="davinci-002", prompt="Say hi", stream=True)
    )
    assert 12 == len(chunks) and all(chunk.choices for chunk in chunks)
    assert TOTAL == used(team)


def test_embeddings(team: Stack, http: httpx.Client) -> None:
    """An embedding call is charged its prompt tokens alone."""
    client = openai_client(team, http, STEER)
    reply = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert PROMPT == reply.usage.total_tokens
    assert PROMPT == used(team)


@pytest.mark.parametrize("stream", [False, True])
def test_responses(team: Stack, http: httpx.Client, stream: bool) -> None:
    """A Responses call, JSON or streamed, is charged input plus output."""
    client = openai_client(team, http, STEER)
    if stream:
        with client.responses.stream(model="o4-mini", input="hi") as events:
            final = events.get_final_response()
    else:
        final = client.responses.create(model="o4-mini", input="hi")
    assert final.usage is not None
    assert (CACHED, REASONING) == (
        final.usage.input_tokens_details.cached_tokens,
        final.usage.output_tokens_details.reasoning_tokens,
    )
    assert TOTAL == used(team)


def test_anthropic_json(team: Stack, claude: anthropic.Anthropic) -> None:
    """Cache reads and writes, reported outside input_tokens, are charged too."""
    reply = claude.messages.create(
        model="claude-sonnet-4-0",
        max_tokens=512,
        messages=[{"role": "user", "content": "hi"}],
    )
    outside = (
        reply.usage.cache_read_input_tokens,
        reply.usage.cache_creation_input_tokens,
    )
    assert (PROMPT - CACHED - CACHE_WRITE, (CACHED, CACHE_WRITE)) == (
        reply.usage.input_tokens,
        outside,
    )
    assert TOTAL == used(team)


def test_anthropic_stream(team: Stack, claude: anthropic.Anthropic) -> None:
    """A Messages stream is charged message_start's input and the final output."""
    with claude.messages.stream(
        model="claude-sonnet-4-0",
        max_tokens=512,
        messages=[{"role": "user", "content": "hi"}],
    ) as events:
        final = events.get_final_message()
    assert COMPLETION == final.usage.output_tokens
    assert TOTAL == used(team)


@pytest.mark.parametrize(
    ("method", "query"),
    [
        ("generateContent", ""),
        ("streamGenerateContent", "?alt=sse"),
        ("streamGenerateContent", ""),
    ],
)
def test_gemini(team: Stack, http: httpx.Client, method: str, query: str) -> None:
    """Gemini, JSON, SSE or JSON array, is charged prompt, candidates and thoughts."""
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    path = f"/v1beta/models/gemini-2.5-flash:{method}{query}"
    with team.http() as client:
        reply = client.post(path, json=body, headers={"x-api-key": KEY, **STEER})
    assert 200 == reply.status_code
    assert TOTAL == used(team)


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_compressed_reply_is_still_read(
    team: Stack, http: httpx.Client, encoding: str
) -> None:
    """A provider that compresses despite the stripped accept-encoding is read."""
    client = openai_client(team, http, {**STEER, "x-fake-content-encoding": encoding})
    reply = client.chat.completions.create(
        model="gpt-4.1", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.usage is not None and TOTAL == reply.usage.total_tokens
    assert TOTAL == used(team)


def test_stream_without_usage_is_charged_an_estimate(
    team: Stack, http: httpx.Client
) -> None:
    """A provider that reports nothing is charged an estimate, never zero."""
    client = openai_client(team, http, {**STEER, "x-fake-no-usage": "1"})
    chunks = list(
        client.chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert 12 == len(chunks)
    request = json.loads(team.upstream.received[-1].body)
    assert request["stream_options"] == {"include_usage": True}
    # Estimated prompt: 3 reply-priming + 4 message-framing + 1 text token;
    # output: one token per content event.
    assert 3 + 4 + 1 + 12 == used(team)
