"""The production Envoy config end to end: HTTPS in, HTTPS to the provider."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from extproc.devstack.fake_upstream import FakeUpstream
from tests.harness.processes import RedisServer, render_production_config
from tests.harness.rules import quota, rule_set
from tests.harness.stack import Stack
from tests.harness.tls import TlsFiles, make_tls_files

pytestmark = pytest.mark.e2e

CLIENT_KEY = "sk-gateway-alice"
OPENAI_KEY = "sk-provider-openai"
ANTHROPIC_KEY = "sk-provider-anthropic"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_stack(redis_server: RedisServer, tls: TlsFiles) -> Iterator[Stack]:
    provider_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    provider_tls.load_cert_chain(tls.provider_cert, tls.provider_key)
    stack = Stack(
        redis_server,
        upstream=FakeUpstream(tls=provider_tls),
        render=partial(render_production_config, tls),
        envoy_env={"OPENAI_API_KEY": OPENAI_KEY, "ANTHROPIC_API_KEY": ANTHROPIC_KEY},
    ).start()
    # Only GPT models are metered, so the Anthropic route stays open after the
    # OpenAI test spends the quota.
    daily = quota("daily", 100, models=("gpt-*",))
    stack.use_rules(rule_set({"alice": CLIENT_KEY}, {daily: ("alice",)}))
    yield stack
    stack.stop()
    stack.redis().flushall()


def _client(stack: Stack, tls: TlsFiles) -> httpx.Client:
    assert stack.envoy is not None
    verify = ssl.create_default_context(cafile=str(tls.ca_cert))
    return httpx.Client(
        base_url=f"https://localhost:{stack.envoy.port}",
        verify=verify,
        trust_env=False,
        headers={"authorization": f"Bearer {CLIENT_KEY}"},
    )


def _chat(client: httpx.Client) -> httpx.Response:
    body = {"model": "gpt-4o", "max_tokens": 8, "messages": [{"role": "user"}]}
    usage = {"x-fake-prompt-tokens": "70", "x-fake-completion-tokens": "40"}
    return client.post("/v1/chat/completions", json=body, headers=usage)


def test_quota_is_enforced_over_https(tls_stack: Stack, tls: TlsFiles) -> None:
    """A call over HTTPS is charged 110 tokens, so the next one gets 429."""
    with _client(tls_stack, tls) as client:
        first = _chat(client)
        tls_stack.settled()
        second = _chat(client)
    assert (200, 429) == (first.status_code, second.status_code)
    assert "quota_exceeded" == second.json()["error"]["code"]


def test_provider_gets_its_own_key_only(tls_stack: Stack, tls: TlsFiles) -> None:
    """Each provider receives its own key from Envoy and never the client's."""
    tls_stack.upstream.received.clear()
    with _client(tls_stack, tls) as client:
        message = {"role": "user", "content": "hi"}
        body = {"model": "claude-haiku", "max_tokens": 8, "messages": [message]}
        client.post("/v1/messages", json=body)
    seen = tls_stack.upstream.received[-1].headers
    expected = (ANTHROPIC_KEY, None, "alice", "api.anthropic.com")
    actual = (
        seen.get("x-api-key"),
        seen.get("authorization"),
        seen.get("x-consumer-id"),
        seen.get("host"),
    )
    assert expected == actual


def test_access_log_names_the_consumer(tls_stack: Stack, tls: TlsFiles) -> None:
    """Envoy's access log carries the verified consumer, never a client-sent
    one (not even on a 401), and never a key sent in the query string."""
    with _client(tls_stack, tls) as client:
        client.get("/v1/models", headers={"x-consumer-id": "mallory"})
        client.post(
            "/v1/chat/completions?key=sk-in-the-query",
            headers={"authorization": "Bearer sk-unknown", "x-consumer-id": "bob"},
            json={"model": "gpt-4o"},
        )
    assert tls_stack.envoy is not None and tls_stack.envoy.log_path is not None
    known = _access_log_entry(tls_stack.envoy.log_path, "/v1/models")
    unknown = _access_log_entry(tls_stack.envoy.log_path, "/v1/chat/completions", 401)
    log_text = tls_stack.envoy.log_path.read_text()
    assert ("alice", 404) == (known["consumer"], known["status"])
    assert (None, 401) == (unknown["consumer"], unknown["status"])
    assert "sk-in-the-query" not in log_text


def _access_log_entry(
    path: Path, request_path: str, status: int | None = None
) -> dict[str, object]:
    """The last access log line for `request_path` (with `status`, if given);
    Envoy flushes every 10 s."""
    deadline = time.monotonic() + 15
    while True:
        lines = path.read_text().splitlines()
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        matching = [
            entry
            for entry in entries
            if entry["path"] == request_path and status in (None, entry["status"])
        ]
        if matching or time.monotonic() > deadline:
            return matching[-1]
        time.sleep(0.1)
