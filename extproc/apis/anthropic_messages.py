"""Anthropic Messages (`/v1/messages`), JSON and streamed.

Anthropic's `input_tokens` EXCLUDES cached input: `cache_read_input_tokens` and
`cache_creation_input_tokens` are counted beside it. The normalized record puts
all three in `input_tokens`, with the cache read as `cached_input_tokens` and
the cache creation as `cache_write_input_tokens`. `output_tokens` INCLUDES
extended-thinking tokens, which are not reported apart (so reasoning is 0).

A stream reports usage twice: `message_start` carries the input counts and an
initial output count, and `message_delta` a running total of output (and, when
server tools ran, updated input counts). Totals are cumulative, never summed:
the latest value of each field wins. A stream that ends without `message_delta`
has an exact input and an estimated output. `max_tokens` is required by the
API, and so it is here.
"""

from __future__ import annotations

import json
from typing import Any

from extproc.apis.base import LlmRequest, UsageExtractor, is_event_stream
from extproc.apis.decoding import reading_encoding
from extproc.apis.estimate import content_tokens, conversation_tokens
from extproc.apis.json_capture import JsonUsage
from extproc.apis.payload import load_json_object, positive_int
from extproc.apis.sse import SseEvent, SseReader
from extproc.apis.usage import Usage, count, normalized
from extproc.errors import BadRequest

_FIELDS = (
    "input_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "output_tokens",
)


def usage_from_anthropic(report: dict[str, Any], estimated: bool = False) -> Usage:
    """Normalize an Anthropic `usage` object (cache counts moved into input)."""
    cached = count(report, "cache_read_input_tokens")
    written = count(report, "cache_creation_input_tokens")
    return normalized(
        count(report, "input_tokens") + cached + written,
        count(report, "output_tokens"),
        cached=cached,
        cache_write=written,
        estimated=estimated,
    )


def _json_usage(report: dict[str, Any]) -> Usage | None:
    if not isinstance(report.get("input_tokens"), int):
        return None
    return usage_from_anthropic(report)


class Messages:
    name = "anthropic.messages"

    def read_request(
        self, path: str, body: bytes, default_output_tokens: int
    ) -> LlmRequest:
        payload = load_json_object(body)
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("'model' is required and must be a string", param="model")
        messages = payload.get("messages")
        if not isinstance(messages, list):
            raise BadRequest("'messages' must be a list", param="messages")
        max_tokens = positive_int(payload, "max_tokens")
        if max_tokens is None:
            raise BadRequest("'max_tokens' is required", param="max_tokens")
        return LlmRequest(
            api=self.name,
            model=model,
            stream=payload.get("stream") is True,
            prompt_tokens=self._prompt_tokens(payload, messages),
            output_allowance=max_tokens,
        )

    def extractor(
        self, request: LlmRequest, content_type: str, *, content_encoding: str = ""
    ) -> UsageExtractor:
        if is_event_stream(content_type):
            return reading_encoding(content_encoding, lambda _: MessagesStream())
        return reading_encoding(content_encoding, lambda _: JsonUsage(_json_usage))

    @staticmethod
    def _prompt_tokens(payload: dict[str, Any], messages: list[Any]) -> int:
        tools = payload.get("tools")
        return content_tokens(payload.get("system")) + conversation_tokens(
            messages, "content", tools=tools
        )


class MessagesStream:
    def __init__(self) -> None:
        self._reader = SseReader()
        self._report: dict[str, int] = {}  # latest value of each usage field
        self._final = False  # message_delta seen: the output count is final
        self._deltas = 0

    def feed(self, chunk: bytes) -> bytes | None:
        for event in self._reader.feed(chunk):
            kind = _kind(event)
            if kind == "message_start":
                self._merge(event.data, "message")
            elif kind == "message_delta":
                self._final = self._merge(event.data, None) or self._final
            elif kind == "content_block_delta":
                self._deltas += 1  # about one token per delta event
        return None

    def usage(self) -> Usage | None:
        if "input_tokens" not in self._report:
            return None
        if self._final:
            return usage_from_anthropic(self._report)
        report = dict(self._report)
        report["output_tokens"] = max(count(report, "output_tokens"), self._deltas)
        return usage_from_anthropic(report, estimated=True)

    def delivered_output_tokens(self) -> int:
        return max(self._deltas, self._report.get("output_tokens", 0))

    def _merge(self, data: bytes, holder: str | None) -> bool:
        """Take the usage fields of one event; True when it had a usage object."""
        try:
            payload = json.loads(data)
        except ValueError:
            return False
        if holder is not None and isinstance(payload, dict):
            payload = payload.get(holder)
        report = payload.get("usage") if isinstance(payload, dict) else None
        if not isinstance(report, dict):
            return False
        for name in _FIELDS:
            value = report.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                self._report[name] = value
        return True


def _kind(event: SseEvent) -> str:
    """The event's type: its `event:` name, else the `type` its data starts with."""
    if event.event != "message":
        return event.event
    head = event.data[:40]
    for kind in ("message_start", "message_delta", "content_block_delta"):
        if b'"' + kind.encode() + b'"' in head:
            return kind
    return ""
