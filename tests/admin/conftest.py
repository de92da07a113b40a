"""A stack whose admin service knows one token, and clients for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import pytest

from extproc.admin.auth import token_digest
from extproc.admin.v1 import admin_pb2_grpc as pb_grpc
from tests.harness.processes import RedisServer
from tests.harness.stack import Stack

TOKEN = "s3cret-admin-token"
TOKEN_NAME = "ops-alice"

Llm = Callable[[str], openai.OpenAI]


@pytest.fixture(scope="module")
def tokens_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("admin") / "tokens"
    path.write_text(f"# admin tokens\n{TOKEN_NAME}:{token_digest(TOKEN)}\n")
    return path


@pytest.fixture(scope="module")
def admin_stack(redis_server: RedisServer, tokens_file: Path) -> Iterator[Stack]:
    """Fake provider, sidecar with its admin port, and a real Envoy."""
    running = Stack(
        redis_server, settings_overrides={"admin_tokens_file": tokens_file}
    ).start()
    yield running
    running.stop()


@pytest.fixture
def quota_stack(admin_stack: Stack) -> Iterator[Stack]:
    """The admin stack, reset after the test (Redis, clock, provider)."""
    yield admin_stack
    admin_stack.reset()


def admin_address(stack: Stack) -> str:
    assert stack.sidecar is not None
    return f"127.0.0.1:{stack.sidecar.admin.port}"


def local_channel(address: str) -> grpc.Channel:
    """A channel to a loopback address that no proxy setting can divert."""
    return grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)])


class Admin:
    """A blocking Admin client that sends the bearer token with every call."""

    def __init__(self, address: str, token: str | None = TOKEN) -> None:
        self.channel = local_channel(address)
        self.stub = pb_grpc.AdminStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()

    def __getattr__(self, method: str) -> Any:
        call = getattr(self.stub, method)
        return lambda request: call(request, metadata=self.metadata, timeout=10)

    def close(self) -> None:
        self.channel.close()


@pytest.fixture
def admin(quota_stack: Stack) -> Iterator[Admin]:
    client = Admin(admin_address(quota_stack))
    yield client
    client.close()


@pytest.fixture
def llm(quota_stack: Stack) -> Iterator[Llm]:
    """Makes OpenAI SDK clients pointed at Envoy (no proxies, no retries), and
    closes them after the test."""
    made: list[openai.OpenAI] = []

    def client(key: str) -> openai.OpenAI:
        made.append(
            openai.OpenAI(
                base_url=f"{quota_stack.base_url}/v1",
                api_key=key,
                http_client=httpx.Client(trust_env=False, timeout=30),
                max_retries=0,
            )
        )
        return made[-1]

    yield client
    for each in made:
        each.close()


def chat(
    client: openai.OpenAI,
    model: str = "gpt-4o-mini",
    prompt_tokens: int = 100,
    completion_tokens: int = 20,
    **extra: Any,
) -> Any:
    """One chat call whose usage the fake provider reports as asked."""
    return client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=64,
        extra_headers={
            "x-fake-prompt-tokens": str(prompt_tokens),
            "x-fake-completion-tokens": str(completion_tokens),
        },
        **extra,
    )
