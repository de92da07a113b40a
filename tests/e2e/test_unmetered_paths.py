"""Billable endpoints the sidecar cannot meter are no way around the limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.processes import RedisServer
from tests.harness.rules import quota, rule_set
from tests.harness.stack import Stack

pytestmark = pytest.mark.e2e

KEYS = {"limited": "sk-limited-0123456789", "free": "sk-free-0123456789"}
# A batch job: billed later by the provider, with no usage in this reply.
BATCH = {
    "input_file_id": "file-abc123",
    "endpoint": "/v1/chat/completions",
    "completion_window": "24h",
}


@pytest.fixture(scope="module")
def open_files_stack(redis_server: RedisServer) -> Iterator[Stack]:
    """A stack whose operator opened /v1/files to limited consumers."""
    stack = Stack(
        redis_server, settings_overrides={"passthrough_paths": ("/v1/files",)}
    ).start()
    stack.use_rules(rule_set(KEYS, {quota("daily", 10_000): ("limited",)}))
    yield stack
    stack.stop()


def post(stack: Stack, consumer: str, path: str) -> tuple[int, dict]:
    headers = {"authorization": f"Bearer {KEYS[consumer]}"}
    with stack.http(timeout=10) as http:
        response = http.post(path, json=BATCH, headers=headers)
    return response.status_code, response.json()


def test_unmetered_endpoint_is_refused_to_limited_consumers(
    open_files_stack: Stack,
) -> None:
    """A body sent to a path no API shape reads gets 403 under a quota."""
    status, body = post(open_files_stack, "limited", "/v1/batches")

    assert 403 == status
    assert "unmetered_endpoint" == body["error"]["code"]
    assert 0 == len(
        [r for r in open_files_stack.upstream.received if "batches" in r.path]
    )


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/images/generations", {"model": "dall-e-3", "prompt": "a cat"}),
        ("/v1/audio/speech", {"model": "tts-1", "input": "hi", "voice": "alloy"}),
        ("/v1/batches", {"model": "gpt-4o", "messages": [], **BATCH}),
    ],
)
def test_bodies_that_look_like_llm_calls_are_still_refused(
    open_files_stack: Stack, path: str, body: dict[str, object]
) -> None:
    """A body shaped like a completion on another path is not metered as one:
    it is refused like any unmeterable endpoint."""
    headers = {"authorization": f"Bearer {KEYS['limited']}"}
    with open_files_stack.http(timeout=10) as http:
        response = http.post(path, json=body, headers=headers)

    assert (403, "unmetered_endpoint") == (
        response.status_code,
        response.json()["error"]["code"],
    )


def test_consumers_without_limits_and_opened_paths_pass(
    open_files_stack: Stack,
) -> None:
    """A consumer under no limit, and an opened path, reach the provider."""
    free_status, _ = post(open_files_stack, "free", "/v1/batches")
    opened_status, _ = post(open_files_stack, "limited", "/v1/files")

    assert (200, 200) == (free_status, opened_status)


def test_requests_without_a_body_pass(open_files_stack: Stack) -> None:
    """A GET (listing models, say) carries nothing to meter and passes."""
    headers = {"authorization": f"Bearer {KEYS['limited']}"}
    with open_files_stack.http(timeout=10) as http:
        response = http.get("/v1/models", headers=headers)

    assert 200 == response.status_code
