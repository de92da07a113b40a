"""Who may call the admin service, and which port answers which service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import redis
from envoy.service.ext_proc.v3 import external_processor_pb2 as ext_pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as ext_grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from extproc.admin.auth import TokenFileError, TokenRegistry, parse_tokens, token_digest
from extproc.admin.v1 import admin_pb2 as pb
from tests.admin.conftest import TOKEN, Admin, Llm, admin_address, chat, local_channel
from tests.harness.rules import quota, rule_set
from tests.harness.stack import Stack

KEY = "sk-team-a-test-key"
CONSUMER = "team-a"

# One valid request per method: without a token, none of them may change anything.
REQUESTS: dict[str, Message] = {
    "GetQuotaStatus": pb.GetQuotaStatusRequest(consumer=CONSUMER),
    "AdjustQuota": pb.AdjustQuotaRequest(
        consumer=CONSUMER, rule="daily", add_tokens=100, reason="x"
    ),
    "ResetQuota": pb.ResetQuotaRequest(consumer=CONSUMER, reason="x"),
    "QueryUsage": pb.QueryUsageRequest(
        start="2025-01-01T00:00:00Z", end="2025-01-02T00:00:00Z"
    ),
    "ListAudit": pb.ListAuditRequest(),
}


def snapshot(url: str) -> dict[bytes, bytes]:
    client = redis.Redis.from_url(url)
    return {key: client.dump(key) for key in client.keys("*")}


def test_every_admin_method_has_a_request_here() -> None:
    """The unauthenticated test below covers every method of the service."""
    methods = pb.DESCRIPTOR.services_by_name["Admin"].methods_by_name
    assert sorted(methods) == sorted(REQUESTS)


@pytest.mark.e2e
@pytest.mark.parametrize("token", [None, "wrong-token", TOKEN + "x"])
def test_no_valid_token_is_unauthenticated_and_changes_nothing(
    quota_stack: Stack, llm: Llm, token: str | None
) -> None:
    """Without a valid token every method is UNAUTHENTICATED; Redis is unchanged."""
    quota_stack.use_rules(
        rule_set({CONSUMER: KEY}, {quota("daily", 9000): (CONSUMER,)})
    )
    chat(llm(KEY))
    quota_stack.settled()
    before = snapshot(quota_stack.redis_server.url)
    client = Admin(admin_address(quota_stack), token)

    codes = {}
    for method, request in REQUESTS.items():
        with pytest.raises(grpc.RpcError) as caught:
            getattr(client, method)(request)
        codes[method] = caught.value.code()
    client.close()

    assert codes == dict.fromkeys(REQUESTS, grpc.StatusCode.UNAUTHENTICATED)
    assert snapshot(quota_stack.redis_server.url) == before


@pytest.mark.e2e
def test_the_admin_port_does_not_answer_ext_proc(quota_stack: Stack) -> None:
    """An ext_proc stream sent to the admin port is UNIMPLEMENTED."""
    with local_channel(admin_address(quota_stack)) as channel:
        stub = ext_grpc.ExternalProcessorStub(channel)
        replies = stub.Process(iter([ext_pb.ProcessingRequest()]), timeout=5)
        with pytest.raises(grpc.RpcError) as caught:
            list(replies)

    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.e2e
def test_the_ext_proc_port_does_not_answer_admin_calls(quota_stack: Stack) -> None:
    """An admin call with a valid token sent to the ext_proc port is UNIMPLEMENTED."""
    assert quota_stack.sidecar is not None
    client = Admin(f"127.0.0.1:{quota_stack.sidecar.port}")
    with pytest.raises(grpc.RpcError) as caught:
        client.ListAudit(pb.ListAuditRequest())
    client.close()

    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.e2e
def test_health_and_reflection_need_no_token(quota_stack: Stack) -> None:
    """The admin port reports health and lists its services to anyone."""
    with local_channel(admin_address(quota_stack)) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="extproc.admin.v1.Admin"), timeout=5
        )
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        ask = reflection_pb2.ServerReflectionRequest(list_services="")
        (answer,) = list(reflection.ServerReflectionInfo(iter([ask]), timeout=5))

    services = sorted(s.name for s in answer.list_services_response.service)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert services == [
        "extproc.admin.v1.Admin",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ]


def test_tokens_file_lines_and_yaml_both_parse() -> None:
    """`name:digest` lines and `name: "digest"` YAML give the same tokens."""
    digest = token_digest("abc")
    text = f"# comment\nalice:{digest}\n\nbob: '{digest.upper()}'  # rotated\n"

    assert parse_tokens(text, "tokens") == {digest: "bob"}
    assert parse_tokens(f"alice:{digest}", "t") == {digest: "alice"}


def test_a_plain_token_in_the_file_is_refused_with_its_line() -> None:
    """A line holding a token instead of its digest names the file and line."""
    with pytest.raises(TokenFileError) as caught:
        parse_tokens("# ok\nalice:not-a-digest\n", "/etc/tokens")

    assert str(caught.value).startswith("/etc/tokens:2: expected 'name:sha256-hex'")


@pytest.fixture
def tokens_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "tokens"
    path.write_text(f"alice:{token_digest('one')}\n")
    yield path


def test_tokens_are_reread_when_the_file_changes(tokens_path: Path) -> None:
    """A rotated token is accepted, and the old one refused, without a restart."""
    registry = TokenRegistry(tokens_path, environ={})
    first = registry.name_of("one")
    tokens_path.write_text(f"carol:{token_digest('two-longer')}\n")

    assert (first, registry.name_of("one"), registry.name_of("two-longer")) == (
        "alice",
        None,
        "carol",
    )


def test_the_environment_token_is_named_env() -> None:
    """EXTPROC_ADMIN_TOKEN is one more valid token, whose audit name is "env"."""
    registry = TokenRegistry(None, environ={"EXTPROC_ADMIN_TOKEN": "plain"})

    assert (registry.name_of("plain"), registry.name_of("other")) == ("env", None)
