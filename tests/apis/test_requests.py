"""Reading each API's request: model, stream flag, output allowance, routing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from extproc.apis import LlmRequest, ShapeTable, shape_for_body, shape_for_path
from extproc.errors import BadRequest

TABLE = ShapeTable()
DEFAULT_OUTPUT = 1000


def read(path: str, payload: dict[str, Any]) -> LlmRequest:
    shape = TABLE.for_path(path)
    assert shape is not None
    return shape.read_request(path, json.dumps(payload).encode(), DEFAULT_OUTPUT)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/v1/chat/completions", "openai.chat_completions"),
        ("/compatible-mode/v1/chat/completions", "openai.chat_completions"),
        (
            "/openai/deployments/gpt4o/chat/completions?api-version=1",
            "openai.chat_completions",
        ),
        ("/v1/completions", "openai.completions"),
        ("/v1/embeddings/", "openai.embeddings"),
        ("/v1/responses", "openai.responses"),
        ("/v1/messages", "anthropic.messages"),
        ("/v1beta/models/gemini-2.5-pro:generateContent", "gemini.generate_content"),
        ("/v1beta/models/g:streamGenerateContent?alt=sse", "gemini.generate_content"),
    ],
)
def test_paths_route_to_their_api(path: str, name: str) -> None:
    """Each documented path suffix selects its API shape."""
    shape = shape_for_path(path)
    assert shape is not None and name == shape.name


@pytest.mark.parametrize(
    "path", ["/v1/models", "/v1/messages/count_tokens", "/v1/responses/resp_1", "/"]
)
def test_other_paths_are_not_llm_calls(path: str) -> None:
    """Paths that are not generation calls are not metered."""
    assert None is shape_for_path(path)


def test_overrides_win_over_the_default_table() -> None:
    """An override maps a suffix to another shape, or to none at all."""
    overrides = {"/v1/chat": "anthropic.messages", "/v1/chat/completions": None}
    shape = shape_for_path("/proxy/v1/chat", overrides)
    assert shape is not None and "anthropic.messages" == shape.name
    assert None is shape_for_path("/v1/chat/completions", overrides)


@pytest.mark.parametrize(
    ("payload", "name"),
    [
        ({"model": "m", "messages": []}, "openai.chat_completions"),
        ({"model": "m", "messages": [], "system": "s"}, "anthropic.messages"),
        ({"model": "m", "prompt": "p"}, "openai.completions"),
        ({"model": "m", "input": ["a", "b"]}, "openai.embeddings"),
        ({"model": "m", "input": "a", "instructions": "i"}, "openai.responses"),
        (
            {"model": "m", "input": [{"role": "user", "content": "c"}]},
            "openai.responses",
        ),
        ({"contents": []}, "gemini.generate_content"),
    ],
)
def test_bodies_are_recognized_when_the_path_is_unknown(
    payload: dict[str, Any], name: str
) -> None:
    """A body that plainly is one API is recognized by its fields."""
    shape = shape_for_body(json.dumps(payload).encode())
    assert shape is not None and name == shape.name


@pytest.mark.parametrize("body", [b"", b"[1]", b"{not json", b'{"model": "m"}'])
def test_other_bodies_are_not_recognized(body: bytes) -> None:
    """A body that is no LLM call leaves the request unmetered."""
    assert None is shape_for_body(body)


def test_chat_stream_asks_for_usage_and_remembers_the_client_did_not() -> None:
    """A chat stream without include_usage is rewritten to ask for it."""
    request = read(
        "/v1/chat/completions", {"model": "m", "messages": [], "stream": True}
    )
    assert request.forwarded_body is not None
    sent = json.loads(request.forwarded_body)
    assert {"include_usage": True} == sent["stream_options"]
    assert False is request.client_wants_usage


def test_completions_stream_asks_for_usage() -> None:
    """Legacy completions streams are rewritten to ask for usage too."""
    payload = {"model": "m", "prompt": "p", "stream": True, "stream_options": {}}
    request = read("/v1/completions", payload)
    assert request.forwarded_body is not None
    assert True is json.loads(request.forwarded_body)["stream_options"]["include_usage"]


def test_client_that_asked_for_usage_is_sent_unchanged() -> None:
    """A stream that already asks for usage is forwarded as the client sent it."""
    payload = {
        "model": "m",
        "messages": [],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    request = read("/v1/chat/completions", payload)
    assert (None, True) == (request.forwarded_body, request.client_wants_usage)


def test_completions_allowance_uses_the_api_default_and_best_of() -> None:
    """max_tokens defaults to 16, times the larger of n and best_of, per prompt."""
    request = read(
        "/v1/completions", {"model": "m", "prompt": ["a", "b"], "best_of": 3}
    )
    assert 16 * 3 * 2 == request.output_allowance


def test_completions_accept_token_id_prompts() -> None:
    """Token-id prompts count one token per id."""
    request = read("/v1/completions", {"model": "m", "prompt": [[1, 2, 3], [4]]})
    assert 4 == request.prompt_tokens


def test_embeddings_allow_no_output() -> None:
    """An embedding call reserves its input only."""
    request = read("/v1/embeddings", {"model": "m", "input": "hello world!"})
    assert (3, 0) == (request.prompt_tokens, request.output_allowance)


def test_responses_output_limit_is_max_output_tokens() -> None:
    """The Responses API's limit is max_output_tokens."""
    payload = {"model": "m", "input": "hi", "max_output_tokens": 77, "stream": True}
    request = read("/v1/responses", payload)
    assert (77, True) == (request.output_allowance, request.stream)


def test_anthropic_requires_max_tokens() -> None:
    """A Messages call without max_tokens is refused, as Anthropic would."""
    with pytest.raises(BadRequest) as caught:
        read("/v1/messages", {"model": "claude", "messages": []})
    assert "max_tokens" == caught.value.param


def test_anthropic_allowance_is_max_tokens() -> None:
    """The Messages allowance is max_tokens, which covers thinking too."""
    payload = {"model": "claude", "messages": [], "max_tokens": 2048}
    assert 2048 == read("/v1/messages", payload).output_allowance


def test_gemini_model_and_stream_come_from_the_path() -> None:
    """Gemini names the model and streaming in the path, not the body."""
    path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    payload = {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"maxOutputTokens": 100, "candidateCount": 2},
    }
    request = read(path, payload)
    assert ("gemini-2.5-flash", True, 200) == (
        request.model,
        request.stream,
        request.output_allowance,
    )


def test_gemini_accepts_snake_case_and_a_thinking_budget() -> None:
    """snake_case config works, and a thinking budget is allowed for on top."""
    path = (
        "/v1/projects/p/locations/l/publishers/google/models/gemini-pro:generateContent"
    )
    config = {"max_output_tokens": 50, "thinking_config": {"thinking_budget": 25}}
    request = read(path, {"contents": [], "generation_config": config})
    assert ("gemini-pro", False, 75) == (
        request.model,
        request.stream,
        request.output_allowance,
    )


def test_azure_model_defaults_to_the_deployment() -> None:
    """An Azure body without a model is metered under its deployment name."""
    path = "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
    assert "gpt-4o-prod" == read(path, {"messages": []}).model


def test_model_is_required_outside_azure() -> None:
    """Without a model and without a deployment in the path, the call is refused."""
    with pytest.raises(BadRequest):
        read("/v1/chat/completions", {"messages": []})
