"""Helpers for end-to-end tests: SDK clients aimed at the test stack's Envoy."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import openai
import pytest

from tests.harness.stack import Stack


def openai_client(stack: Stack, key: str) -> openai.OpenAI:
    """The official SDK, pointed at Envoy, with retries off and no proxies."""
    return openai.OpenAI(
        base_url=stack.base_url + "/v1",
        api_key=key,
        max_retries=0,
        http_client=httpx.Client(trust_env=False),
    )


@pytest.fixture
def sdk(fresh_stack: Stack) -> Iterator[Callable[[str], openai.OpenAI]]:
    """Makes SDK clients for a key, and closes them all after the test."""
    made: list[openai.OpenAI] = []

    def make(key: str) -> openai.OpenAI:
        client = openai_client(fresh_stack, key)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
