"""The reply bodies of the fake provider, one builder per API family.

Each builder is written from the provider's documented wire format and takes the
call's tokens in the sidecar's normalized terms (input including cached and
cache-write tokens, output including reasoning), converting them to what that
provider reports: Anthropic counts cache reads and writes outside
`input_tokens`, Gemini counts thoughts outside `candidatesTokenCount`.

A builder returns a `Reply`: one JSON value, or the pieces of a stream (each
piece is one server-sent event, or one element of Gemini's JSON array).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tokens:
    prompt: int  # all input, cached and cache-write included
    completion: int  # all output, reasoning included
    cached: int = 0
    cache_write: int = 0
    reasoning: int = 0


@dataclass(frozen=True)
class Call:
    """What a builder needs: the request and its steering headers, read."""

    path: str
    payload: Mapping[str, Any]
    tokens: Tokens
    chunks: int  # content pieces in a stream
    with_usage: bool  # False when x-fake-no-usage asks for no report

    @property
    def model(self) -> Any:
        return self.payload.get("model", "unknown")


@dataclass(frozen=True)
class Reply:
    json_body: Any = None
    pieces: tuple[bytes, ...] = ()  # a stream: content pieces, then the closing
    content_pieces: int = 0  # how many leading pieces carry content
    content_type: str = "application/json"
    prefix: bytes = b""  # written before the pieces (a JSON array's bracket)
    suffix: bytes = b""  # written after them


def sse(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    named = f"event: {event}\n" if event else ""
    return f"{named}data: {text}\n\n".encode()


def stream(pieces: list[bytes], content: int) -> Reply:
    return Reply(
        pieces=tuple(pieces), content_pieces=content, content_type="text/event-stream"
    )


def _word(index: int) -> str:
    return f"tok{index} "


# OpenAI Chat Completions and legacy Completions


def openai_usage(tokens: Tokens) -> dict[str, Any]:
    return {
        "prompt_tokens": tokens.prompt,
        "completion_tokens": tokens.completion,
        "total_tokens": tokens.prompt + tokens.completion,
        "prompt_tokens_details": {"cached_tokens": tokens.cached},
        "completion_tokens_details": {"reasoning_tokens": tokens.reasoning},
    }


def chat(call: Call) -> Reply:
    message = {"role": "assistant", "content": "Hello from the fake."}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return _openai_reply(call, "chat.completion", choice, _chat_delta)


def completions(call: Call) -> Reply:
    choice = {"index": 0, "text": "Hello from the fake.", "finish_reason": "stop"}
    return _openai_reply(call, "text_completion", choice, _text_delta)


def _chat_delta(index: int) -> dict[str, Any]:
    return {"index": 0, "delta": {"content": _word(index)}, "finish_reason": None}


def _text_delta(index: int) -> dict[str, Any]:
    return {"index": 0, "text": _word(index), "finish_reason": None}


def _openai_reply(call: Call, kind: str, choice: Any, delta: Any) -> Reply:
    head = {"id": "fake-1", "created": int(time.time()), "model": call.model}
    if call.payload.get("stream") is not True:
        body = {**head, "object": kind, "choices": [choice]}
        if call.with_usage:
            body["usage"] = openai_usage(call.tokens)
        return Reply(json_body=body)
    kind = kind + ".chunk" if kind == "chat.completion" else kind
    pieces = [
        sse({**head, "object": kind, "choices": [delta(i)]}) for i in range(call.chunks)
    ]
    options = call.payload.get("stream_options") or {}
    if options.get("include_usage") and call.with_usage:
        report = {**head, "object": kind, "choices": [], "usage": None}
        report["usage"] = openai_usage(call.tokens)
        pieces.append(sse(report))
    pieces.append(sse("[DONE]"))
    return stream(pieces, call.chunks)


def embeddings(call: Call) -> Reply:
    inputs = call.payload.get("input")
    count = len(inputs) if isinstance(inputs, list) else 1
    data = [
        {"object": "embedding", "index": i, "embedding": [0.01, -0.02, 0.03]}
        for i in range(count)
    ]
    body: dict[str, Any] = {"object": "list", "data": data, "model": call.model}
    if call.with_usage:
        prompt = call.tokens.prompt
        body["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt}
    return Reply(json_body=body)


# OpenAI Responses


def responses(call: Call) -> Reply:
    tokens = call.tokens
    usage = {
        "input_tokens": tokens.prompt,
        "input_tokens_details": {"cached_tokens": tokens.cached},
        "output_tokens": tokens.completion,
        "output_tokens_details": {"reasoning_tokens": tokens.reasoning},
        "total_tokens": tokens.prompt + tokens.completion,
    }
    text = "".join(_word(i) for i in range(call.chunks))
    part = {"type": "output_text", "text": text, "annotations": []}
    item = {"id": "msg_fake", "type": "message", "role": "assistant"}
    done_item = {**item, "status": "completed", "content": [part]}

    def response(status: str, report: Any) -> dict[str, Any]:
        output = [done_item] if status == "completed" else []
        return {
            "id": "resp_fake",
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "model": call.model,
            "output": output,
            "usage": report,
        }

    final = response("completed", usage if call.with_usage else None)
    if call.payload.get("stream") is not True:
        return Reply(json_body=final)
    sequence = iter(range(1 << 30))

    def event(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, "sequence_number": next(sequence), **fields}, kind)

    where = {"item_id": "msg_fake", "output_index": 0, "content_index": 0}
    deltas = [
        event("response.output_text.delta", **where, delta=_word(i), logprobs=[])
        for i in range(call.chunks)
    ]
    opening = [
        event("response.created", response=response("in_progress", None)),
        event("response.in_progress", response=response("in_progress", None)),
        event(
            "response.output_item.added",
            output_index=0,
            item={**item, "status": "in_progress", "content": []},
        ),
        event("response.content_part.added", **where, part={**part, "text": ""}),
    ]
    closing = [
        event("response.output_text.done", **where, text=text, logprobs=[]),
        event("response.content_part.done", **where, part=part),
        event("response.output_item.done", output_index=0, item=done_item),
        event("response.completed", response=final),
    ]
    return stream(opening + deltas + closing, len(opening) + call.chunks)


# Anthropic Messages


def anthropic_usage(tokens: Tokens, output: int) -> dict[str, Any]:
    """Anthropic's counts: cache reads and writes are outside `input_tokens`."""
    return {
        "input_tokens": tokens.prompt - tokens.cached - tokens.cache_write,
        "cache_creation_input_tokens": tokens.cache_write,
        "cache_read_input_tokens": tokens.cached,
        "output_tokens": output,
    }


def messages(call: Call) -> Reply:
    text = "".join(_word(i) for i in range(call.chunks))
    message: dict[str, Any] = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
    }
    if call.payload.get("stream") is not True:
        if call.with_usage:
            message["usage"] = anthropic_usage(call.tokens, call.tokens.completion)
        return Reply(json_body=message)
    start = {**message, "content": [], "stop_reason": None}
    if call.with_usage:
        start["usage"] = anthropic_usage(call.tokens, 1)
    opening = [
        sse({"type": "message_start", "message": start}, "message_start"),
        sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        sse({"type": "ping"}, "ping"),
    ]
    deltas = [
        sse(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": _word(i)},
            },
            "content_block_delta",
        )
        for i in range(call.chunks)
    ]
    delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
    }
    if call.with_usage:
        delta["usage"] = {"output_tokens": call.tokens.completion}
    closing = [
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse(delta, "message_delta"),
        sse({"type": "message_stop"}, "message_stop"),
    ]
    return stream(opening + deltas + closing, len(opening) + call.chunks)


# Google Gemini


def gemini(call: Call) -> Reply:
    chunks = max(call.chunks, 1)
    replies = [_gemini_reply(call, i, chunks) for i in range(chunks)]
    if ":streamGenerateContent" not in call.path:
        return Reply(json_body=replies[-1])
    if "alt=sse" in call.path:
        pieces = [sse(reply).replace(b"\n", b"\r\n") for reply in replies]
        return stream(pieces, chunks)
    # Without alt=sse the stream is one JSON array, written element by element.
    pieces = [
        (b"," if i else b"") + json.dumps(reply).encode() + b"\r\n"
        for i, reply in enumerate(replies)
    ]
    return Reply(pieces=tuple(pieces), content_pieces=chunks, prefix=b"[", suffix=b"]")


def _gemini_reply(call: Call, index: int, chunks: int) -> dict[str, Any]:
    tokens = call.tokens
    last = index == chunks - 1
    candidates_total = tokens.completion - tokens.reasoning
    # Each reply repeats running totals; the last one holds the final counts.
    candidates = candidates_total * (index + 1) // chunks
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": [{"text": _word(index)}]},
        "index": 0,
    }
    if last:
        candidate["finishReason"] = "STOP"
    reply: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": call.path.rsplit("/", 1)[-1].split(":", 1)[0],
        "responseId": "fake",
    }
    if call.with_usage:
        reply["usageMetadata"] = {
            "promptTokenCount": tokens.prompt,
            "candidatesTokenCount": candidates,
            "cachedContentTokenCount": tokens.cached,
            "thoughtsTokenCount": tokens.reasoning,
            "totalTokenCount": tokens.prompt + candidates + tokens.reasoning,
        }
    return reply


def builder_for(path: str) -> Any:
    """The reply builder of the API that `path` names (Chat Completions else)."""
    bare = path.split("?", 1)[0].rstrip("/")
    if ":generateContent" in bare or ":streamGenerateContent" in bare:
        return gemini
    for suffix, build in (
        ("/chat/completions", chat),
        ("/completions", completions),
        ("/embeddings", embeddings),
        ("/responses", responses),
        ("/v1/messages", messages),
    ):
        if bare.endswith(suffix):
            return build
    return chat
